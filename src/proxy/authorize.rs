//! Forward-auth: the request an ingress or a mesh asks about, read from
//! the headers it sends, goes through the same phases as a proxied one
//! (route, token, revocation, requirements, logout), and the answer is the
//! verdict instead of the upstream's response.
//!
//! Who sends what (`forward_auth.proxy` says who asks, never the check
//! itself: every one of these proxies passes a client's own headers on to
//! the check, so a client could name the original request in another
//! proxy's headers):
//!
//! - nginx `auth_request` and ingress-nginx `auth-url`
//!   ([`Flavour::Nginx`]): `X-Original-Method` with `X-Original-URI`
//!   (origin form, the host from `Host`) or `X-Original-URL` (absolute),
//!   not both (the config sets one, a client may add the other);
//! - Traefik `ForwardAuth` ([`Flavour::Traefik`]): `X-Forwarded-Method`,
//!   `X-Forwarded-Uri`, `X-Forwarded-Host` (Traefik overwrites them);
//! - Envoy's `ext_authz` HTTP service ([`Flavour::Envoy`]): the original
//!   method, `:authority` and path as its own, the path behind
//!   `forward_auth.path_prefix`.
//! - Envoy's `ext_authz` gRPC service and Istio's `CUSTOM` action
//!   ([`Flavour::Grpc`]): the `CheckRequest` carries the original request,
//!   read (and the verdict written) by [`grpc`].
//!
//! Only a peer in `trusted_proxies` is answered: anyone else could name
//! any method and URI. An allowed request gets 200 with the claim headers
//! for the proxy to copy onto the request it forwards; a refused one the
//! proxy's error response. nginx turns every auth status but 401 and 403
//! into a 500, so for it other refusals (400, 405, 413, 431) become 403;
//! a store outage stays 503, which nginx answers with 500: closed either
//! way.

pub mod grpc;

use super::forwarding::Peer;
use crate::config::FrontProxy;
use crate::error::{Body, ProxyError, Rejection};
use crate::runtime::{ForwardAuthRule, Runtime};
use bytes::Bytes;
use http::header::{HeaderName, COOKIE, HOST};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use http_body_util::{Either, Full};

/// Which proxy is asking, told by the headers it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Nginx,
    Traefik,
    Envoy,
    /// Envoy's (or Istio's) gRPC `Check`: the request it carries is the
    /// original already.
    Grpc,
    /// The HTTP listener (bound at start) after a reload that took
    /// `forward_auth.proxy` away: no way to read a check, every one refused.
    Unconfigured,
}

static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// Envoy removes the listed headers from the request it forwards (the
/// gRPC answer lists them in `headers_to_remove`).
pub static ENVOY_HEADERS_TO_REMOVE: HeaderName = HeaderName::from_static("x-envoy-auth-headers-to-remove");

impl Flavour {
    /// The configured proxy's; none after a reload dropped it (never a
    /// guess: read as another proxy's, the check's own request line would
    /// be decided on).
    pub fn of(rule: Option<&ForwardAuthRule>) -> Flavour {
        match rule.map(|r| r.proxy) {
            Some(FrontProxy::Nginx) => Flavour::Nginx,
            Some(FrontProxy::Traefik) => Flavour::Traefik,
            Some(FrontProxy::Envoy) => Flavour::Envoy,
            None => Flavour::Unconfigured,
        }
    }
}

/// Why a check request could not be read as an original request (400
/// `invalid_forward_auth_request`; the message names the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    NoOriginalMethod,
    NoForwardedMethod,
    Repeated,
    BadMethod,
    BadUri,
    OutsidePrefix,
    ClaimLookalike,
    Unconfigured,
}

impl Unreadable {
    fn message(self) -> &'static str {
        match self {
            Unreadable::NoOriginalMethod => "X-Original-URI or X-Original-URL needs X-Original-Method",
            Unreadable::NoForwardedMethod => "X-Forwarded-Uri needs X-Forwarded-Method",
            Unreadable::Repeated => "a forward-auth header is repeated, holds a list, or names the URI twice",
            Unreadable::BadMethod => "the original method is not a method",
            Unreadable::BadUri => "the original URI is missing, has a fragment, or is not in origin or absolute form",
            Unreadable::OutsidePrefix => "the path is not under forward_auth.path_prefix",
            Unreadable::Unconfigured => "forward_auth.proxy is no longer configured: restart to close this listener",
            Unreadable::ClaimLookalike => {
                "a header spells a claim header with underscores, which the proxy would pass on"
            }
        }
    }
}

/// Rewrites the check request `head` into the request it asks about: its
/// method, URI and `Host`, the forward-auth headers gone. Refused unless
/// `peer` is a trusted proxy.
pub fn original(rt: &Runtime, peer: &Peer, flavour: Flavour, head: &mut Parts) -> Result<(), ProxyError> {
    if !rt.trusted_proxies.contains(peer.ip()) {
        return Err(ProxyError::UntrustedForwardAuthPeer);
    }
    if let Some(grpc::Unread(why)) = head.extensions.get() {
        return Err(ProxyError::InvalidForwardAuth(why));
    }
    let prefix = rt.forward_auth.as_ref().and_then(|rule| rule.path_prefix.as_deref());
    read(flavour, prefix, head).map_err(|u| ProxyError::InvalidForwardAuth(u.message()))?;
    if claim_lookalike(&head.headers, rt.routes.claim_headers()) {
        return Err(ProxyError::InvalidForwardAuth(Unreadable::ClaimLookalike.message()));
    }
    let sent = SentCookies(head.headers.get_all(COOKIE).iter().cloned().collect());
    head.extensions.insert(sent);
    Ok(())
}

/// `X_User_Id` reaches CGI/WSGI/Rack apps as `HTTP_X_USER_ID`, like
/// `X-User-Id`. The proxy listener drops such spellings; a front proxy
/// removes or overwrites only the dashed name (Traefik passes the other
/// on), so a check carrying one is refused.
fn claim_lookalike(headers: &HeaderMap, claim_headers: &[HeaderName]) -> bool {
    headers.keys().filter(|k| k.as_str().contains('_')).any(|k| {
        let dashed = k.as_str().replace('_', "-");
        claim_headers.iter().any(|c| c.as_str() == dashed)
    })
}

/// The Cookie fields as the check carried them: the front proxy forwards
/// them so, whatever the phases would have left the app.
#[derive(Debug, Clone)]
struct SentCookies(Vec<HeaderValue>);

/// The `;`-pairs of `values`, trimmed of blanks, empty ones left out.
fn cookie_pairs<'v>(values: impl Iterator<Item = &'v HeaderValue>) -> Vec<&'v [u8]> {
    values
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .collect()
}

fn read(flavour: Flavour, prefix: Option<&str>, head: &mut Parts) -> Result<(), Unreadable> {
    let (method, uri, host) = match flavour {
        Flavour::Nginx => {
            let method = one(&head.headers, &X_ORIGINAL_METHOD)?.ok_or(Unreadable::NoOriginalMethod)?;
            let (uri, host) = match (one(&head.headers, &X_ORIGINAL_URL)?, one(&head.headers, &X_ORIGINAL_URI)?) {
                (Some(url), None) => absolute(url)?,
                (None, Some(uri)) => (origin_form(uri)?, None),
                (Some(_), Some(_)) => return Err(Unreadable::Repeated),
                (None, None) => return Err(Unreadable::BadUri),
            };
            (self::method(method)?, uri, host)
        }
        Flavour::Traefik => {
            let method = one(&head.headers, &X_FORWARDED_METHOD)?.ok_or(Unreadable::NoForwardedMethod)?;
            let uri = origin_form(one(&head.headers, &X_FORWARDED_URI)?.ok_or(Unreadable::BadUri)?)?;
            let host = one(&head.headers, &X_FORWARDED_HOST)?.cloned();
            (self::method(method)?, uri, host)
        }
        Flavour::Envoy => (head.method.clone(), unprefixed(&head.uri, prefix)?, None),
        Flavour::Grpc => return Ok(()),
        Flavour::Unconfigured => return Err(Unreadable::Unconfigured),
    };
    for name in [&X_ORIGINAL_METHOD, &X_ORIGINAL_URI, &X_ORIGINAL_URL, &X_FORWARDED_METHOD, &X_FORWARDED_URI] {
        head.headers.remove(name);
    }
    if let Some(host) = host {
        head.headers.remove(&X_FORWARDED_HOST);
        head.headers.insert(HOST, host);
    }
    (head.method, head.uri) = (method, uri);
    Ok(())
}

/// The single value of `name`, if present.
fn one<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h HeaderValue>, Unreadable> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) if !value.as_bytes().contains(&b',') || name != X_FORWARDED_HOST => Ok(Some(value)),
        _ => Err(Unreadable::Repeated),
    }
}

fn method(value: &HeaderValue) -> Result<Method, Unreadable> {
    Method::from_bytes(value.as_bytes()).map_err(|_| Unreadable::BadMethod)
}

/// A request target never has a fragment, yet nginx and Traefik pass one
/// on (in the check and to the app), and `Uri` parsing drops it: the rules
/// would decide on `/public` while the app reads `/public#/../api` or
/// `?x#&_method=DELETE`.
fn without_fragment(value: &HeaderValue) -> Result<&HeaderValue, Unreadable> {
    match value.as_bytes().contains(&b'#') {
        true => Err(Unreadable::BadUri),
        false => Ok(value),
    }
}

fn origin_form(value: &HeaderValue) -> Result<Uri, Unreadable> {
    let value = without_fragment(value)?;
    let uri: Uri = value.as_bytes().try_into().map_err(|_| Unreadable::BadUri)?;
    match (uri.scheme(), uri.authority(), uri.path().starts_with('/')) {
        (None, None, true) => Ok(uri),
        _ => Err(Unreadable::BadUri),
    }
}

/// ingress-nginx's `X-Original-URL: $scheme://$http_host$request_uri`:
/// the path and query, and the host it names.
fn absolute(value: &HeaderValue) -> Result<(Uri, Option<HeaderValue>), Unreadable> {
    let value = without_fragment(value)?;
    let uri: Uri = value.as_bytes().try_into().map_err(|_| Unreadable::BadUri)?;
    let (Some(authority), Some(path)) = (uri.authority(), uri.path_and_query()) else {
        return Err(Unreadable::BadUri);
    };
    let host = HeaderValue::from_str(authority.as_str()).map_err(|_| Unreadable::BadUri)?;
    let path: Uri = path.as_str().parse().map_err(|_| Unreadable::BadUri)?;
    Ok((path, Some(host)))
}

/// Envoy's check path without `path_prefix` (`/authz` + `/api/x` →
/// `/api/x`); the prefix must end at a segment boundary.
fn unprefixed(uri: &Uri, prefix: Option<&str>) -> Result<Uri, Unreadable> {
    let Some(prefix) = prefix else { return Ok(uri.clone()) };
    let full = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let rest = full.strip_prefix(prefix).ok_or(Unreadable::OutsidePrefix)?;
    match rest.as_bytes().first() {
        Some(b'/') => rest.parse().map_err(|_| Unreadable::BadUri),
        Some(b'?') | None => format!("/{rest}").parse().map_err(|_| Unreadable::BadUri),
        Some(_) => Err(Unreadable::OutsidePrefix),
    }
}

/// The verdict for a request that passed: 200, with the claim headers the
/// phases wrote into `prepared` for the proxy to set on its request. Envoy
/// is also told which of them (and `Authorization`, when the route strips
/// it) to remove: a client's spoofed copy would otherwise reach the app.
///
/// Refused instead when the phases changed the cookies (a second or
/// lookalike credential cookie dropped, on a route jwtgate authenticates):
/// the proxy forwards them as sent, so the app could read a credential
/// jwtgate never checked.
pub fn allowed(rt: &Runtime, prepared: &Parts, flavour: Flavour) -> Result<Response<Body>, ProxyError> {
    if let Some(SentCookies(sent)) = prepared.extensions.get() {
        if cookie_pairs(sent.iter()) != cookie_pairs(prepared.headers.get_all(COOKIE).iter()) {
            return Err(
                Rejection::InvalidRequest("a credential cookie jwtgate did not verify would reach the app").into()
            );
        }
    }
    let prepared = &prepared.headers;
    let mut rsp = Response::new(Either::Right(Full::new(Bytes::new())));
    let headers = rsp.headers_mut();
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut absent = Vec::new();
    for name in rt.routes.claim_headers().iter().chain([&http::header::AUTHORIZATION]) {
        match prepared.get(name) {
            Some(value) if name != http::header::AUTHORIZATION => {
                headers.insert(name.clone(), value.clone());
            }
            Some(_) => {}
            None => absent.push(name.as_str()),
        }
    }
    if matches!(flavour, Flavour::Envoy | Flavour::Grpc) && !absent.is_empty() {
        if let Ok(list) = HeaderValue::from_str(&absent.join(",")) {
            headers.insert(ENVOY_HEADERS_TO_REMOVE.clone(), list);
        }
    }
    Ok(rsp)
}

/// A refusal as `flavour` can relay it: nginx `auth_request` honours only
/// 401 and 403 (and 2xx), so other client errors become 403 there; the
/// body and challenge stay.
pub fn refusal(flavour: Flavour, mut rsp: Response<Body>) -> Response<Body> {
    let status = rsp.status();
    if flavour == Flavour::Nginx
        && status.is_client_error()
        && status != StatusCode::UNAUTHORIZED
        && status != StatusCode::FORBIDDEN
    {
        *rsp.status_mut() = StatusCode::FORBIDDEN;
    }
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(()).unwrap().into_parts().0
    }

    /// The flavour these headers are meant for (the config says it in use).
    fn sniff(headers: &HeaderMap) -> Flavour {
        if headers.contains_key(&X_ORIGINAL_URI) || headers.contains_key(&X_ORIGINAL_URL) {
            Flavour::Nginx
        } else if headers.contains_key(&X_FORWARDED_URI) {
            Flavour::Traefik
        } else {
            Flavour::Envoy
        }
    }

    fn read_as(mut head: Parts, prefix: Option<&str>) -> Result<(Method, String, Option<String>), Unreadable> {
        read(sniff(&head.headers), prefix, &mut head)?;
        let host = head.headers.get(HOST).map(|h| h.to_str().unwrap().to_owned());
        assert!(!head.headers.contains_key(&X_ORIGINAL_URI) && !head.headers.contains_key(&X_FORWARDED_URI));
        Ok((head.method, head.uri.to_string(), host))
    }

    #[test]
    fn each_proxy_s_headers_name_the_original_request() {
        let nginx = head("GET", "/auth", &[("x-original-method", "DELETE"), ("x-original-uri", "/api/x?a=1")]);
        assert_eq!(read_as(nginx, None).unwrap(), (Method::DELETE, "/api/x?a=1".into(), None));
        let ingress = head(
            "GET",
            "/auth",
            &[("host", "jwtgate"), ("x-original-method", "POST"), ("x-original-url", "https://app.example/p?q")],
        );
        assert_eq!(read_as(ingress, None).unwrap(), (Method::POST, "/p?q".into(), Some("app.example".into())));
        let traefik =
            head("GET", "/", &[("x-forwarded-method", "PUT"), ("x-forwarded-uri", "/u"), ("x-forwarded-host", "app")]);
        assert_eq!(read_as(traefik, None).unwrap(), (Method::PUT, "/u".into(), Some("app".into())));
        let envoy = head("PATCH", "/authz/api/v?x=1", &[("host", "app")]);
        assert_eq!(read_as(envoy, Some("/authz")).unwrap(), (Method::PATCH, "/api/v?x=1".into(), Some("app".into())));
        assert_eq!(read_as(head("GET", "/authz", &[]), Some("/authz")).unwrap().1, "/");
    }

    #[test]
    fn a_listener_whose_proxy_a_reload_removed_reads_no_check() {
        assert_eq!(Flavour::of(None), Flavour::Unconfigured);
        let mut check = head("GET", "/auth", &[("x-original-method", "GET"), ("x-original-uri", "/public")]);
        assert_eq!(read(Flavour::Unconfigured, None, &mut check), Err(Unreadable::Unconfigured));
    }

    #[test]
    fn each_proxy_reads_only_its_own_headers() {
        // Through Traefik, a client adds nginx's headers: Traefik's decide.
        let mut mixed = head(
            "GET",
            "/",
            &[("x-forwarded-method", "DELETE"), ("x-forwarded-uri", "/api/x"), ("x-original-uri", "/public")],
        );
        read(Flavour::Traefik, None, &mut mixed).unwrap();
        assert_eq!((mixed.method, mixed.uri.path()), (Method::DELETE, "/api/x"));
        // Through Envoy, neither nginx's nor Traefik's headers count.
        let mut envoy = head("DELETE", "/api/x", &[("x-original-method", "GET"), ("x-forwarded-uri", "/public")]);
        read(Flavour::Envoy, None, &mut envoy).unwrap();
        assert_eq!((envoy.method, envoy.uri.path()), (Method::DELETE, "/api/x"));
    }

    #[test]
    fn an_incomplete_or_doubled_original_is_unreadable() {
        let no_method = head("GET", "/", &[("x-original-uri", "/a")]);
        assert_eq!(read_as(no_method, None), Err(Unreadable::NoOriginalMethod));
        let twice =
            head("GET", "/", &[("x-original-method", "GET"), ("x-original-uri", "/a"), ("x-original-uri", "/b")]);
        assert_eq!(read_as(twice, None), Err(Unreadable::Repeated));
        let absolute = head("GET", "/", &[("x-original-method", "GET"), ("x-original-uri", "http://h/a")]);
        assert_eq!(read_as(absolute, None), Err(Unreadable::BadUri));
        // nginx sets one of them; a client may send the other.
        let both = [("x-original-method", "GET"), ("x-original-uri", "/api/x"), ("x-original-url", "http://h/public")];
        assert_eq!(read_as(head("GET", "/", &both), None), Err(Unreadable::Repeated));
        let hosts = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/a"), ("x-forwarded-host", "a, b")];
        assert_eq!(read_as(head("GET", "/", &hosts), None), Err(Unreadable::Repeated));
        // A fragment would be parsed away: decided on `/public`, the app reads more.
        for uri in ["/public#/../api", "/api?x#&_method=DELETE"] {
            let nginx = head("GET", "/", &[("x-original-method", "GET"), ("x-original-uri", uri)]);
            assert_eq!(read_as(nginx, None), Err(Unreadable::BadUri), "{uri}");
            let traefik = head("GET", "/", &[("x-forwarded-method", "GET"), ("x-forwarded-uri", uri)]);
            assert_eq!(read_as(traefik, None), Err(Unreadable::BadUri), "{uri}");
        }
        let url = [("x-original-method", "GET"), ("x-original-url", "http://h/public#/../api")];
        assert_eq!(read_as(head("GET", "/", &url), None), Err(Unreadable::BadUri));
        assert_eq!(read_as(head("GET", "/authzx/a", &[]), Some("/authz")), Err(Unreadable::OutsidePrefix));
        assert_eq!(read_as(head("GET", "/other", &[]), Some("/authz")), Err(Unreadable::OutsidePrefix));
    }
}
