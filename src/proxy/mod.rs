//! The hyper service: the phases of a request, in order. Each phase passes
//! the request on or ends it with a [`ProxyError`]; `handle` turns errors
//! into responses and owns logging.
//!
//! 0. refuse transfer codings other than `chunked` and oversized header
//!    blocks (see [`protocol`]);
//! 1. refuse CONNECT;
//! 2. read the path once for every decision and the upstream (ambiguous
//!    paths refused, repeated slashes merged or refused);
//! 3. pick the route (the logout path is always `required`);
//! 4. extract and verify the token;
//! 5. check revocation;
//! 6. logout: revoke and answer (or forward); logout-all: revoke the
//!    subject; back-channel logout: verify the logout token, revoke;
//! 7. forward; a WebSocket handshake is forwarded with its upgrade pair
//!    and, on a 101, spliced (see [`upgrade`]).

mod backchannel;
mod forward;
pub mod forwarding;
pub mod headers;
mod logout;
mod protocol;
mod upgrade;

pub use upgrade::drain as drain_websockets;

pub use forward::Upstream;

use crate::auth::{self, cookie, Claims};
use crate::config::AuthMode;
use crate::error::{Body, ProxyError, Rejection};
use crate::revocation::Revocations;
use crate::routes::{normalize_path, RequestHead, RequestPath, Route};
use crate::runtime::Runtime;
use arc_swap::ArcSwap;
use http::header::{AUTHORIZATION, HOST};
use http::{Method, Request, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// One config snapshot with the upstream pools built for it; swapped as a
/// whole on reload, so a request never mixes two configs.
pub struct Live {
    pub rt: Runtime,
    pub upstreams: Vec<Upstream>,
}

impl Live {
    pub fn new(rt: Runtime) -> Self {
        let upstreams = rt.upstreams.iter().map(Upstream::new).collect();
        Self { rt, upstreams }
    }
}

/// Everything a request needs, shared by all connections. The revocation
/// state (store connection, cache, subscriber) outlives config reloads.
pub struct Gate {
    pub live: ArcSwap<Live>,
    pub revocations: Arc<Revocations>,
}

impl Gate {
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Response<Body>, Infallible> {
        // One snapshot per request: a reload never changes a request midway.
        let live = self.live.load_full();
        let method = req.method().clone();
        // The path only: a query can carry secrets (and is the app's business).
        let access = live.rt.access_log.then(|| (std::time::Instant::now(), req.uri().path().to_owned()));
        let mut route = labels::UNMATCHED.clone();
        let (rsp, outcome) = match self.phases(&live, req, client, &mut route).await {
            Ok(rsp) => (rsp, "forwarded"),
            Err(err) => {
                let (code, _) = err.code_and_message();
                match err {
                    ProxyError::StoreUnavailable | ProxyError::UpstreamUnavailable | ProxyError::UpstreamTimeout => {
                        tracing::warn!(%method, %client, code, "request failed")
                    }
                    _ => tracing::debug!(%method, %client, code, "request refused"),
                }
                (err.into_response(&live.rt.realm), code)
            }
        };
        if let Some((started, path)) = access {
            tracing::info!(
                target: "jwtgate::access",
                %method,
                path,
                status = rsp.status().as_u16(),
                rule = %route,
                outcome,
                %client,
                duration_us = started.elapsed().as_micros() as u64,
            );
        }
        metrics::counter!("jwtgate_requests_total", "route" => route, "outcome" => outcome).increment(1);
        Ok(rsp)
    }

    /// The phases in order; `label` is set to the matched rule's metric label.
    async fn phases(
        &self,
        live: &Live,
        mut req: Request<Incoming>,
        client: SocketAddr,
        label: &mut Arc<str>,
    ) -> Result<Response<Body>, ProxyError> {
        let rt = &live.rt;
        protocol::check_head(&req)?;
        if req.method() == Method::CONNECT {
            return Err(ProxyError::MethodNotAllowed);
        }
        // Frameworks upper-case the method before routing (Django, Werkzeug,
        // Symfony); rules compare it as sent.
        if req.method().as_str().bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(ProxyError::AmbiguousMethod);
        }
        // One reading of the path for every decision below and for the upstream.
        let RequestPath { decide: path, rewritten } = normalize_path(req.uri().path(), rt.paths)?;
        let host = request_host(&req)?;
        let special = Special::of(rt, req.method(), &path);
        let route: &Route = match special {
            Special::Backchannel => {
                *label = labels::BACKCHANNEL.clone();
                return backchannel::receive(rt, &self.revocations, req).await;
            }
            Special::Logout | Special::LogoutAll => {
                *label = if special == Special::Logout { labels::LOGOUT.clone() } else { labels::LOGOUT_ALL.clone() };
                rt.routes.default_route()
            }
            Special::None => {
                let head = RequestHead { method: req.method(), host, path: &path, headers: req.headers() };
                let route = rt.routes.pick(&head);
                *label = route.label.clone();
                route
            }
        };
        let overridden = headers::method_override(req.method(), req.headers(), req.uri().query())?;
        if let Some(other) = overridden {
            refuse_if_decided_otherwise(rt, &other, host, &path, req.headers(), special, route)?;
        }
        drop(path);
        let (claims, was_revoked) = match self.authenticate(rt, route.auth, &req).await {
            // Logout is idempotent: a retry after a 503 (or after a write a
            // Redis failover lost) stores the revocation again. Answered
            // here, never forwarded: the app never sees a revoked token.
            Err(Revoked { claims }) if special == Special::Logout => (Some(claims), true),
            other => (other.map_err(ProxyError::from)?, false),
        };
        if let Some(claims) = &claims {
            route.require.check(claims)?;
        }
        match (special, &claims) {
            (Special::Logout, Some(claims)) => {
                let revoked = match was_revoked {
                    true => self.revocations.revoke_token_again(claims).await?,
                    false => self.revocations.revoke_token(claims).await?,
                };
                tracing::info!(iss = %claims.iss, jti = ?claims.jti, again = was_revoked, "token revoked by logout");
                if !rt.logout.forward || was_revoked {
                    return Ok(logout::answer(&revoked));
                }
            }
            (Special::LogoutAll, Some(claims)) => return logout::everywhere(&self.revocations, claims).await,
            _ => {}
        }
        // Read before hop-by-hop stripping removes the upgrade pair. The
        // gate's own paths (logout) never switch protocols.
        let websocket = special == Special::None && upgrade::is_websocket(&req);
        // Hop-by-hop first: `Connection: X-User-Id` must not remove a claim
        // header set below.
        headers::strip_hop_by_hop(req.headers_mut());
        if websocket {
            upgrade::restore_request_headers(req.headers_mut());
        }
        headers::set_claims(req.headers_mut(), rt.routes.claim_headers(), &route.forward_claims, claims.as_deref())?;
        if route.strip_authorization {
            req.headers_mut().remove(AUTHORIZATION);
        }
        let credential = credential_cookie(rt, route, claims.is_some(), req.headers());
        cookie::forward(req.headers_mut(), rt.cookie.as_deref(), credential);
        let authority = req.uri().authority().map(|a| a.as_str().to_owned());
        let forwarded_proto = rt.upstream.forwarded_proto;
        forwarding::set(req.headers_mut(), client.ip(), authority.as_deref(), &rt.trusted_proxies, forwarded_proto);
        if let Some(path) = rewritten {
            *req.uri_mut() = with_path(req.uri(), &path)?;
        }
        let upstream = live.upstreams.get(route.upstream).ok_or(ProxyError::UpstreamUnavailable)?;
        if websocket {
            // The token's lifetime bounds the tunnel (a token without `exp`,
            // under `require_exp: false`, gets `max_token_lifetime`, as its
            // revocation does); no token, no bound.
            let longest = self.revocations.policy().max_token_lifetime.as_secs() as i64;
            let exp = claims.as_ref().map(|c| c.exp_unix.unwrap_or(auth::now_unix().saturating_add(longest)));
            return upstream.upgrade(req, exp).await;
        }
        upstream.send(req).await
    }

    /// The auth phase: token → verified claims → not revoked, as the
    /// route's mode asks. `optional`: no token passes, a bad one does not.
    async fn authenticate(
        &self,
        rt: &Runtime,
        mode: AuthMode,
        req: &Request<Incoming>,
    ) -> Result<Option<Arc<Claims>>, AuthFailure> {
        if matches!(mode, AuthMode::Required | AuthMode::Optional) {
            auth::extract::refuse_query_token(req.uri().query())?;
        }
        let raw = match (mode, auth::extract(req.headers(), rt.cookie.as_deref())) {
            (AuthMode::Deny, _) => return Err(ProxyError::Forbidden.into()),
            (AuthMode::None, _) | (AuthMode::Optional, Err(Rejection::NoToken)) => return Ok(None),
            (_, Err(rejection)) => return Err(rejection.into()),
            (AuthMode::Required | AuthMode::Optional, Ok(raw)) => raw,
        };
        let claims = rt.verifier.verify(raw, auth::now_unix())?;
        if backchannel::is_logout_token(&claims.payload) {
            return Err(Rejection::InvalidClaims("a logout token is not an access token").into());
        }
        match self.revocations.ensure_live(&claims, raw).await {
            Ok(()) => Ok(Some(claims)),
            Err(ProxyError::Refused(Rejection::Revoked)) => Err(Revoked { claims }),
            Err(err) => Err(AuthFailure::Other(err)),
        }
    }
}

/// Why the auth phase ended a request. A revoked token keeps its verified
/// claims: the logout path revokes it again instead of refusing it.
enum AuthFailure {
    Revoked { claims: Arc<Claims> },
    Other(ProxyError),
}
use AuthFailure::Revoked;

impl From<AuthFailure> for ProxyError {
    fn from(failure: AuthFailure) -> Self {
        match failure {
            Revoked { .. } => ProxyError::Refused(Rejection::Revoked),
            AuthFailure::Other(err) => err,
        }
    }
}

impl From<ProxyError> for AuthFailure {
    fn from(err: ProxyError) -> Self {
        AuthFailure::Other(err)
    }
}

impl From<Rejection> for AuthFailure {
    fn from(rejection: Rejection) -> Self {
        AuthFailure::Other(rejection.into())
    }
}

/// The request's host without port or trailing dot: the Host header, else
/// the HTTP/2 `:authority`. Two Host headers, or one that is not ASCII, are
/// refused: an upstream could read a different host than the rules did.
fn request_host(req: &Request<Incoming>) -> Result<Option<&str>, ProxyError> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let raw = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(ProxyError::AmbiguousHost),
        (Some(h), None) => h.to_str().map_err(|_| ProxyError::AmbiguousHost)?,
        (None, _) => match req.uri().authority() {
            Some(a) => a.as_str(),
            None => return Ok(None),
        },
    };
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => raw.rsplit_once(':').map_or(raw, |(host, _)| host),
    };
    Ok(Some(host.strip_suffix('.').unwrap_or(host)))
}

/// A request whose app may act on `other` (a method override) instead of
/// its own method must get the same decision under both: the same special
/// path and the same rule. Otherwise it is refused, since the rules
/// decided on one method and the app would act on the other.
pub(crate) fn refuse_if_decided_otherwise(
    rt: &Runtime,
    other: &Method,
    host: Option<&str>,
    path: &str,
    headers: &http::HeaderMap,
    special: Special,
    route: &Route,
) -> Result<(), ProxyError> {
    let same = match Special::of(rt, other, path) {
        Special::None if special == Special::None => {
            std::ptr::eq(rt.routes.pick(&RequestHead { method: other, host, path, headers }), route)
        }
        alt => alt == special,
    };
    if same {
        Ok(())
    } else {
        Err(ProxyError::AmbiguousMethod)
    }
}

/// What the app may read of the credential cookie: on a route jwtgate
/// authenticates, only the cookie it verified (`extract` read the first
/// one, and it equals the verified token), else none of that name.
fn credential_cookie(rt: &Runtime, route: &Route, verified: bool, headers: &http::HeaderMap) -> cookie::Credential {
    let Some(name) = rt.cookie.as_deref() else { return cookie::Credential::Untouched };
    match route.auth {
        AuthMode::None | AuthMode::Deny => cookie::Credential::Untouched,
        AuthMode::Required | AuthMode::Optional
            if verified && !route.strip_authorization && matches!(cookie::credential(headers, name), Ok(Some(_))) =>
        {
            cookie::Credential::KeepVerified
        }
        AuthMode::Required | AuthMode::Optional => cookie::Credential::Remove,
    }
}

/// `uri` with its path replaced (the query kept): the upstream gets the
/// path the decisions were made on.
fn with_path(uri: &http::Uri, path: &str) -> Result<http::Uri, ProxyError> {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| ProxyError::AmbiguousPath)?);
    http::Uri::from_parts(parts).map_err(|_| ProxyError::AmbiguousPath)
}

/// Metric labels of jwtgate's own paths.
mod labels {
    use std::sync::{Arc, LazyLock};
    pub static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unmatched"));
    pub static LOGOUT: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("logout"));
    pub static LOGOUT_ALL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("logout_all"));
    pub static BACKCHANNEL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("backchannel_logout"));
}

/// Paths jwtgate answers itself (or acts on before forwarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    None,
    Logout,
    LogoutAll,
    Backchannel,
}

impl Special {
    pub fn of(rt: &Runtime, method: &Method, path: &str) -> Self {
        if rt.logout.matches(method, path) {
            Special::Logout
        } else if rt.logout_all.as_ref().is_some_and(|r| r.matches(method, path)) {
            Special::LogoutAll
        } else if rt.backchannel.as_ref().is_some_and(|b| b.path == path) {
            Special::Backchannel
        } else {
            Special::None
        }
    }
}
