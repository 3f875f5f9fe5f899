//! Header hygiene between client and upstream: hop-by-hop headers removed
//! (RFC 9110 §7.6.1, plus `Proxy-Connection`, `Keep-Alive` and the h2c
//! upgrade pair of RFC 7540 §3.2); claim headers set (forwarding headers:
//! `forwarding.rs`). A WebSocket handshake gets its upgrade pair back
//! afterwards (see `upgrade.rs`).

use crate::auth::Claims;
use crate::error::Rejection;
use crate::routes::ClaimHeader;
use http::header::{
    HeaderName, CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::HeaderMap;

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// The hop-by-hop headers removed in both directions (RFC 9110 §7.6.1,
/// plus `Keep-Alive`, `Proxy-Connection` and the h2c upgrade pair).
/// `Proxy-Authenticate` is hop-by-hop too, but only on responses; it is
/// removed from requests as well (no client should send it).
static HOP_BY_HOP: [&HeaderName; 10] = [
    &CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &PROXY_AUTHORIZATION,
    &PROXY_AUTHENTICATE,
    &TE,
    &TRAILER,
    &TRANSFER_ENCODING,
    &UPGRADE,
    &HTTP2_SETTINGS,
];

/// Removes hop-by-hop headers, including every header `Connection` names,
/// except `Host`: routing decided on it, so `Connection: host` must not
/// leave the app reading another one. Written for the common cases, which
/// profiles showed: no hop-by-hop header at all, or only `Connection:
/// keep-alive` (nginx and most servers send it on every response); each
/// name is hashed only when present.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = [false; HOP_BY_HOP.len()];
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| *hop == name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    if present[1..] == [false; HOP_BY_HOP.len() - 1] && connection_names_nothing(headers) {
        headers.remove(CONNECTION);
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        // Removed below in any case: no name to parse.
        .filter(|token| !token.eq_ignore_ascii_case("keep-alive"))
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .filter(|name| *name != http::header::HOST)
        .collect();
    for name in named {
        headers.remove(name);
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, present)| *present) {
        headers.remove(*name);
    }
}

/// True when the only `Connection` value is `keep-alive` (what nginx and
/// most servers put on every response): no other header to look for.
/// (`close` is a name too: a header called `close` goes with it.)
fn connection_names_nothing(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONNECTION).iter();
    match (values.next(), values.next()) {
        (Some(only), None) => only.as_bytes().trim_ascii().eq_ignore_ascii_case(b"keep-alive"),
        _ => false,
    }
}

/// Headers through which app frameworks (Express `method-override`,
/// Symfony, ASP.NET, Google APIs) let a POST act as another method; their
/// underscore spellings reach CGI-style servers (Rack) as the same.
const METHOD_OVERRIDES: &[&str] = &["x-http-method-override", "x-http-method", "x-method-override"];

/// The method the app may act on instead of the request line's: an
/// override header (any spelling), or a `_method` query parameter (Express
/// `method-override('_method')`, Laravel, Symfony). `Ok(None)` when there is
/// none or it names the request's own method (any case); an override that
/// is not a method is refused.
pub fn method_override(
    method: &http::Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<http::Method>, crate::error::ProxyError> {
    let from_headers = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            METHOD_OVERRIDES.iter().any(|o| {
                name.len() == o.len() && name.bytes().zip(o.bytes()).all(|(a, b)| a == b || (a == b'_' && b == b'-'))
            })
        })
        .map(|(_, v)| v.as_bytes().trim_ascii().to_vec());
    let from_query = query
        .filter(|q| q.contains("_method") || q.contains('%'))
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .filter(|(name, _)| name == "_method")
        .map(|(_, v)| v.trim().as_bytes().to_vec());
    let mut other = None;
    for value in from_headers.chain(from_query) {
        if value.eq_ignore_ascii_case(method.as_str().as_bytes()) {
            continue;
        }
        let upper = value.to_ascii_uppercase();
        let named = http::Method::from_bytes(&upper).map_err(|_| crate::error::ProxyError::AmbiguousMethod)?;
        match &other {
            Some(seen) if *seen != named => return Err(crate::error::ProxyError::AmbiguousMethod),
            _ => other = Some(named),
        }
    }
    Ok(other)
}

/// Claim headers: every configured one removed from the inbound request
/// (so no client can spoof one, on any route), then this route's set from
/// the verified claims.
pub fn set_claims(
    headers: &mut HeaderMap,
    all_claim_headers: &[HeaderName],
    route_claims: &[ClaimHeader],
    claims: Option<&Claims>,
) -> Result<(), Rejection> {
    for name in all_claim_headers {
        headers.remove(name);
    }
    // `X_User_Id` reaches CGI/WSGI/Rack apps as HTTP_X_USER_ID, the same as
    // `X-User-Id`: drop underscore spellings of claim headers too.
    if !all_claim_headers.is_empty() && headers.keys().any(|k| k.as_str().contains('_')) {
        let lookalikes: Vec<HeaderName> = headers
            .keys()
            .filter(|k| {
                let dashed = k.as_str().replace('_', "-");
                all_claim_headers.iter().any(|c| c.as_str() == dashed)
            })
            .cloned()
            .collect();
        for name in lookalikes {
            headers.remove(name);
        }
    }
    if let Some(claims) = claims {
        for claim in route_claims {
            if let Some(value) = claim.value(&claims.payload)? {
                headers.insert(claim.header.clone(), value);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn connection_and_the_headers_it_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade, X-Secret-Hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(UPGRADE, HeaderValue::from_static("h2c"));
        h.insert("http2-settings", HeaderValue::from_static("AAMAAABkAAQAAP__"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert("x-end-to-end", HeaderValue::from_static("kept"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-end-to-end"));
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close, Keep-Alive"));
        h.insert("close", HeaderValue::from_static("named too"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-end-to-end", HeaderValue::from_static("kept"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-end-to-end"]);
    }

    #[test]
    fn a_lone_keep_alive_goes_and_the_headers_other_connection_values_name_go_too() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static(" Keep-Alive "));
        h.insert("close", HeaderValue::from_static("kept: not named"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["close"]);
        // Two Connection lines, or one that names more: the full pass.
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("keep-alive"));
        h.append(CONNECTION, HeaderValue::from_static("x-hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("x-end-to-end", HeaderValue::from_static("kept"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-end-to-end"]);
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("close"));
        h.insert("close", HeaderValue::from_static("named"));
        strip_hop_by_hop(&mut h);
        assert!(h.is_empty(), "{h:?}");
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_removed_and_others_are_kept() {
        for name in HOP_BY_HOP {
            let mut h = HeaderMap::new();
            h.insert(name.clone(), HeaderValue::from_static("x-also-gone"));
            h.insert("x-also-gone", HeaderValue::from_static("1"));
            h.insert("x-end-to-end", HeaderValue::from_static("kept"));
            strip_hop_by_hop(&mut h);
            let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
            left.sort_unstable();
            let want: &[&str] = if *name == CONNECTION { &["x-end-to-end"] } else { &["x-also-gone", "x-end-to-end"] };
            assert_eq!(left, want, "{name}");
        }
    }
}
