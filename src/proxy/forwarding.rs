//! The headers that tell the app who the client is and how it arrived,
//! written so the app can tell what jwtgate vouches for.
//!
//! From a peer not in `trusted_proxies` (the client itself), nothing the
//! client wrote about addresses survives as if jwtgate had set it:
//! `X-Real-IP` becomes the peer, `Forwarded` one element for the peer (RFC
//! 7239: `for`, `proto`, `host`), `X-Forwarded-Proto`/`-Host` what jwtgate
//! saw, and the other client-address and scheme headers apps and rate
//! limiters read (`True-Client-IP`, `X-Forwarded-Ssl`, …) are removed.
//! From a trusted peer (an ingress in front), its chains are kept and
//! extended and `X-Real-IP` kept. `X-Forwarded-For` is always appended to
//! (the convention): the app must read its right-most entry that is not a
//! trusted proxy.
//!
//! Always, whoever the peer: `X-Original-URL` and `X-Rewrite-URL` (which
//! Symfony and IIS-era frameworks route on instead of the request line) are
//! removed, since jwtgate decided on the request line; and underscore
//! spellings of every header here (`X_Real_IP`, read by CGI/WSGI/Rack
//! servers as `HTTP_X_REAL_IP`) are removed.

use crate::trust::TrustedProxies;
use http::header::{HeaderName, FORWARDED, HOST};
use http::{HeaderMap, HeaderValue};
use std::net::IpAddr;
use std::sync::OnceLock;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// A test for membership in a list of header names, as a `match` over
/// them: one comparison by length and bytes per name looked at, not one
/// per listed name.
macro_rules! header_names {
    ($(#[$doc:meta])* fn $is:ident; [$($name:literal),* $(,)?]) => {
        $(#[$doc])*
        fn $is(name: &str) -> bool {
            matches!(name, $($name)|*)
        }
    };
}

header_names! {
    /// Client-address and scheme headers only a trusted proxy may set; from
    /// anyone else they are removed (what `request-ip`, Rack, Django's
    /// `SECURE_PROXY_SSL_HEADER` recipes and CDNs' conventions read).
    fn is_proxy_only; [
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
        "x-forwarded",
        "forwarded-for",
        "client-ip",
        "x-original-forwarded-for",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-forwarded-prefix",
        "x-forwarded-scheme",
        "x-forwarded-ssl",
        "x-scheme",
        "x-url-scheme",
        "front-end-https",
    ]
}

header_names! {
    /// Headers that replace the request line at the app; removed always.
    fn is_path_override; ["x-original-url", "x-rewrite-url"]
}

/// What one pass over the request's header names found: what `write`
/// must remove or extend, so that the usual request, which carries none
/// of these, costs no lookup for them.
#[derive(Default)]
struct Found {
    path_override: bool,
    proxy_only: bool,
    underscore: bool,
    forwarded_for: bool,
}

impl Found {
    fn in_names(headers: &HeaderMap) -> Self {
        let mut found = Found::default();
        for name in headers.keys() {
            let name = name.as_str();
            found.path_override |= is_path_override(name);
            found.proxy_only |= is_proxy_only(name);
            found.underscore |= name.as_bytes().contains(&b'_');
            found.forwarded_for |= name == X_FORWARDED_FOR.as_str();
        }
        found
    }
}

/// A client connection's peer, with the header values that depend on it
/// alone made once per connection instead of once per request.
pub struct Peer {
    ip: IpAddr,
    /// The address as text (`X-Real-IP`, a new `X-Forwarded-For`).
    text: HeaderValue,
    /// The `Forwarded` element for the first request's proto and host
    /// (later requests on the connection nearly always send the same).
    element: OnceLock<(&'static str, Option<HeaderValue>, HeaderValue)>,
}

impl Peer {
    pub fn new(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        let text = HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self { ip, text, element: OnceLock::new() }
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    fn element(&self, proto: &'static str, host: Option<&HeaderValue>) -> HeaderValue {
        let make = || value(&forwarded_element(self.ip, proto, host));
        let (p, h, element) = self.element.get_or_init(|| (proto, host.cloned(), make()));
        if *p == proto && h.as_ref() == host {
            element.clone()
        } else {
            make()
        }
    }
}

/// Writes the forwarding headers for a request from `peer` (see the module
/// doc); `authority` is the HTTP/2 `:authority` (used when there is no
/// Host header), `proto` how the peer reached jwtgate. Returns the client
/// address jwtgate believes: the peer, or behind a trusted proxy the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy.
pub fn set(
    headers: &mut HeaderMap,
    peer: &Peer,
    authority: Option<&str>,
    trusted_proxies: &TrustedProxies,
    proto: &'static str,
) -> IpAddr {
    let trusted = trusted_proxies.contains(peer.ip);
    let client = match trusted {
        true => {
            let chain = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok());
            let entries: Vec<&str> = chain.flat_map(|v| v.split(',')).collect();
            trusted_proxies.client_from_chain(peer.ip, entries.into_iter()).to_canonical()
        }
        false => peer.ip,
    };
    let (host, host_header) = match headers.get(HOST) {
        Some(host) => (Some(host.clone()), true),
        None => (authority.and_then(|a| HeaderValue::from_str(a).ok()), false),
    };
    write(headers, &Hop { peer, trusted, proto, host: host.as_ref(), host_header, client });
    client
}

/// How a request reached jwtgate.
struct Hop<'a> {
    peer: &'a Peer,
    trusted: bool,
    proto: &'static str,
    host: Option<&'a HeaderValue>,
    /// `host` is the request's Host header (else the HTTP/2 `:authority`).
    host_header: bool,
    client: IpAddr,
}

fn write(headers: &mut HeaderMap, hop: &Hop<'_>) {
    let found = Found::in_names(headers);
    if found.underscore {
        remove_underscore_spellings(headers);
    }
    if found.path_override {
        remove_listed(headers, is_path_override);
    }
    // Room for the headers written below, made once.
    headers.reserve(5);
    let peer = &hop.peer.text;
    let prior = found.forwarded_for.then(|| joined(headers, &X_FORWARDED_FOR)).flatten();
    let xff = match prior {
        Some(prior) => value(&format!("{prior}, {}", hop.peer.ip)),
        None => peer.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), xff);
    let element = hop.peer.element(hop.proto, hop.host);
    if hop.trusted {
        let chain = match joined(headers, &FORWARDED) {
            Some(prior) => value(&format!("{prior}, {}", element.to_str().unwrap_or_default())),
            None => element,
        };
        headers.insert(FORWARDED, chain);
        if !headers.contains_key(&X_REAL_IP) {
            let client = match hop.client == hop.peer.ip {
                true => peer.clone(),
                false => value(&hop.client.to_string()),
            };
            headers.insert(X_REAL_IP.clone(), client);
        }
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(hop.proto));
        }
        if let Some(host) = hop.host.filter(|_| !headers.contains_key(&X_FORWARDED_HOST)) {
            headers.insert(X_FORWARDED_HOST.clone(), host.clone());
        }
    } else {
        if found.proxy_only {
            remove_listed(headers, is_proxy_only);
        }
        headers.insert(FORWARDED, element);
        headers.insert(X_REAL_IP.clone(), peer.clone());
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(hop.proto));
        match hop.host {
            Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
            None => headers.remove(&X_FORWARDED_HOST),
        };
    }
    // Only an HTTP/2 request's `:authority` lacks a Host header here, and
    // nothing above writes one.
    if let Some(host) = hop.host.filter(|_| !hop.host_header) {
        headers.insert(HOST, host.clone());
    }
}

/// Every value of `name`, comma-joined in order (RFC 9110 §5.3); `None`
/// when absent or blank.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> =
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty()).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// A header value of text jwtgate wrote (addresses, and hosts that passed
/// as header values already): never invalid, but not a reason to panic.
fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// One RFC 7239 element: `for=192.0.2.1;proto=https;host=api.example`
/// (an IPv6 address, and a host with a port, quoted as §6 and §4 ask; a
/// host that cannot be quoted plainly is left out).
fn forwarded_element(peer: IpAddr, proto: &str, host: Option<&HeaderValue>) -> String {
    let mut element = match peer {
        IpAddr::V4(v4) => format!("for={v4}"),
        IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
    };
    element.push_str(";proto=");
    element.push_str(proto);
    let host = host.and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty() && !h.contains(['"', '\\']));
    if let Some(host) = host {
        let token = host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'*+^`|".contains(&b));
        element.push_str(if token { ";host=" } else { ";host=\"" });
        element.push_str(host);
        if !token {
            element.push('"');
        }
    }
    element
}

/// Removes every header `listed` names. One pass over the request's names
/// (a handful) instead of a lookup per listed name, each of which parses
/// and hashes the name.
fn remove_listed(headers: &mut HeaderMap, listed: fn(&str) -> bool) {
    let present: Vec<HeaderName> = headers.keys().filter(|name| listed(name.as_str())).cloned().collect();
    for name in present {
        headers.remove(name);
    }
}

/// Removes `X_Forwarded_For` and friends: an underscore spelling of a
/// header this module manages, which CGI-style servers read as the same.
fn remove_underscore_spellings(headers: &mut HeaderMap) {
    let managed = |dashed: &str| {
        ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"].contains(&dashed)
            || is_proxy_only(dashed)
            || is_path_override(dashed)
    };
    let lookalikes: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().contains('_') && managed(&k.as_str().replace('_', "-")))
        .cloned()
        .collect();
    for name in lookalikes {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusting(block: &str) -> TrustedProxies {
        TrustedProxies::new(vec![crate::trust::Cidr::parse(block).unwrap()])
    }

    fn spoofed() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.66"));
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.insert("x-real-ip", HeaderValue::from_static("203.0.113.66"));
        h.insert("forwarded", HeaderValue::from_static("for=203.0.113.66"));
        h.insert("true-client-ip", HeaderValue::from_static("203.0.113.66"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x_real_ip", HeaderValue::from_static("203.0.113.66"));
        h.insert("x-original-url", HeaderValue::from_static("/internal/x"));
        h
    }

    #[test]
    fn an_untrusted_peer_can_only_be_itself() {
        let mut h = spoofed();
        h.insert(HOST, HeaderValue::from_static("api.example:8443"));
        let client = set(&mut h, &Peer::new("192.0.2.7".parse().unwrap()), None, &trusting("10.0.0.0/8"), "http");
        assert_eq!(client.to_string(), "192.0.2.7");
        assert_eq!(h["x-forwarded-for"], "203.0.113.66, 198.51.100.1, 192.0.2.7", "appended, the convention");
        assert_eq!(h["x-real-ip"], "192.0.2.7");
        assert_eq!(h["forwarded"], "for=192.0.2.7;proto=http;host=\"api.example:8443\"");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example:8443");
        for gone in ["true-client-ip", "x_real_ip", "x-original-url"] {
            assert!(!h.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn a_connection_reuses_its_forwarded_element_only_for_the_same_host() {
        let peer = Peer::new("192.0.2.7".parse().unwrap());
        for host in ["a.example", "b.example", "a.example"] {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_static(host));
            set(&mut h, &peer, None, &trusting("10.0.0.0/8"), "https");
            assert_eq!(h["forwarded"], format!("for=192.0.2.7;proto=https;host={host}"));
        }
        let mut h = HeaderMap::new();
        set(&mut h, &peer, None, &trusting("10.0.0.0/8"), "https");
        assert_eq!(h["forwarded"], "for=192.0.2.7;proto=https", "no host, none in the element");
        let mapped = Peer::new("::ffff:192.0.2.9".parse().unwrap());
        let mut h = HeaderMap::new();
        set(&mut h, &mapped, None, &trusting("10.0.0.0/8"), "http");
        assert_eq!(
            (&h["x-real-ip"], &h["x-forwarded-for"]),
            (&"192.0.2.9".parse::<HeaderValue>().unwrap(), &"192.0.2.9".parse::<HeaderValue>().unwrap())
        );
    }

    #[test]
    fn a_trusted_peer_keeps_and_extends_its_chains() {
        let mut h = spoofed();
        let client = set(&mut h, &Peer::new("fd00::5".parse().unwrap()), None, &trusting("fd00::/8"), "http");
        assert_eq!(client.to_string(), "198.51.100.1", "the right-most untrusted entry");
        assert_eq!(h["forwarded"], "for=203.0.113.66, for=\"[fd00::5]\";proto=http");
        assert_eq!(h["x-real-ip"], "203.0.113.66", "kept from the trusted proxy");
        assert_eq!(h["x-forwarded-proto"], "https", "kept: the ingress terminated TLS");
        assert_eq!(h["true-client-ip"], "203.0.113.66");
        assert!(!h.contains_key("x-original-url") && !h.contains_key("x_real_ip"), "removed whoever the peer");
    }

    #[test]
    fn every_listed_name_goes_and_others_stay() {
        let proxy_only =
            ["x-client-ip", "true-client-ip", "cf-connecting-ip", "fastly-client-ip", "x-cluster-client-ip"];
        let proxy_only_more =
            ["x-forwarded", "forwarded-for", "client-ip", "x-original-forwarded-for", "x-forwarded-port"];
        let schemes = ["x-forwarded-server", "x-forwarded-prefix", "x-forwarded-scheme", "x-forwarded-ssl", "x-scheme"];
        let rest = ["x-url-scheme", "front-end-https", "x-original-url", "x-rewrite-url", "x_forwarded_ssl"];
        let listed: Vec<&str> = [proxy_only, proxy_only_more, schemes, rest].concat();
        let mut h = HeaderMap::new();
        for name in &listed {
            h.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("203.0.113.66"));
        }
        h.insert("x-request-id", HeaderValue::from_static("kept"));
        h.insert("x_request_id", HeaderValue::from_static("kept too: no header of ours"));
        set(&mut h, &Peer::new("192.0.2.7".parse().unwrap()), None, &trusting("10.0.0.0/8"), "http");
        for name in &listed {
            assert!(!h.contains_key(*name), "{name} reached the app");
        }
        assert_eq!((&h["x-request-id"], h.contains_key("x_request_id")), (&HeaderValue::from_static("kept"), true));
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
    }
}
