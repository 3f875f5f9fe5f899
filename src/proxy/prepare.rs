//! Phase 6, prepare: the request headers the upstream gets. Hop-by-hop
//! headers go first (so `Connection: X-User-Id` cannot remove a claim
//! header set after), then the claim headers (spoofed copies stripped on
//! every route), the credential as the route asks (`strip_authorization`,
//! only the verified cookie), the forwarding headers, and the path the
//! rules decided on.

use super::authenticate::Caller;
use super::pick::{Action, Picked};
use super::{forwarding, headers, upgrade};
use crate::auth::cookie;
use crate::config::AuthMode;
use crate::error::ProxyError;
use crate::routes::Route;
use crate::runtime::Runtime;
use http::header::AUTHORIZATION;
use http::request::Parts;

/// Rewrites `head` for the upstream; true when it is a WebSocket handshake
/// to forward with its upgrade pair (jwtgate's own paths never switch).
pub fn prepare(
    rt: &Runtime,
    picked: &Picked<'_>,
    head: &mut Parts,
    caller: &Caller,
    peer: &forwarding::Peer,
    rewritten: Option<String>,
) -> Result<bool, ProxyError> {
    let route = picked.route;
    // Read before hop-by-hop stripping removes the upgrade pair.
    let websocket =
        picked.action == Action::Forward && upgrade::is_websocket(head.version, &head.method, &head.headers);
    headers::strip_hop_by_hop(&mut head.headers);
    if websocket {
        upgrade::restore_request_headers(&mut head.headers);
    }
    let claims = caller.claims().map(|c| &**c);
    headers::set_claims(&mut head.headers, rt.routes.claim_headers(), &route.forward_claims, claims)?;
    if route.strip_authorization {
        head.headers.remove(AUTHORIZATION);
    }
    let credential = credential_cookie(rt, route, claims.is_some(), &head.headers);
    cookie::forward(&mut head.headers, rt.cookie.as_deref(), credential);
    let authority = head.uri.authority().map(|a| a.as_str());
    let proto = rt.upstream.forwarded_proto;
    forwarding::set(&mut head.headers, peer, authority, &rt.trusted_proxies, proto);
    if let Some(path) = rewritten {
        head.uri = with_path(&head.uri, &path)?;
    }
    Ok(websocket)
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
