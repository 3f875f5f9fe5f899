//! OpenID Connect Back-Channel Logout 1.0 receiver (§2.5–2.8): the OP POSTs
//! `logout_token=<JWT>` as a form; the token is verified like any token of
//! the configured issuer, then the spec's own checks: an `events` member
//! `http://schemas.openid.net/event/backchannel-logout` holding a JSON
//! object, no `nonce`, `iat` present, and `sid` and/or `sub`. With a `sid`,
//! tokens of that session issued at or before now are refused; with only a
//! `sub`, every token of that subject (§2.4). 200 on success, 400 with a JSON error
//! otherwise (§2.8), 503 when the store could not record it.

use super::protocol::Inbound;
use crate::auth::now_unix;
use crate::error::{error_response, json_response, Body, ErrorFields, ProxyError};
use crate::revocation::{keys, Revocations};
use crate::runtime::Runtime;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const MAX_FORM_BYTES: usize = 16 * 1024;

pub async fn receive(
    rt: &Runtime,
    revocations: &Revocations,
    req: Request<Inbound>,
) -> Result<Response<Body>, ProxyError> {
    if req.method() != Method::POST {
        return Ok(bad("the back-channel logout endpoint accepts POST only"));
    }
    let Some(issuer) = rt.backchannel.as_ref().map(|b| b.issuer.as_str()) else {
        return Err(ProxyError::Forbidden);
    };
    let body = match Limited::new(req.into_body(), MAX_FORM_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(bad("request body unreadable or too large")),
    };
    let Some(token) = form_urlencoded::parse(&body).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned())
    else {
        return Ok(bad("missing logout_token"));
    };
    let claims = match rt.verifier.verify(&token, now_unix()) {
        Ok(c) => c,
        Err(r) => return Ok(bad(r.code_and_message().1)),
    };
    if claims.iss != issuer {
        return Ok(bad("logout token from an issuer not configured for back-channel logout"));
    }
    if let Err(why) = spec_checks(&token, claims.iat_unix.is_some(), claims.sub.is_some() || claims.sid.is_some()) {
        return Ok(bad(why));
    }
    let prefix = &revocations.policy().key_prefix;
    // As for logout-all: the logout token's iat carries the IdP's clock.
    let now = now_unix().max(claims.iat_unix.unwrap_or(i64::MIN));
    // §2.4: with a sid, that session is logged out; with only a sub, every
    // session of the End-User.
    let (sub_key, sid_key) = keys::grouping_keys(prefix, &claims);
    if let Some(key) = sid_key.or(sub_key) {
        revocations.revoke_cut_off(key, now, "backchannel").await?;
    }
    tracing::info!(iss = %claims.iss, by_sid = claims.sid.is_some(), by_sub = claims.sub.is_some(), "back-channel logout");
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}

/// A logout token (it carries the back-channel logout event) must never
/// pass as an access token (OIDC BCL §2.4 asks RPs to tell them apart).
pub fn is_logout_token(payload: &Map<String, Value>) -> bool {
    payload.get("events").and_then(|e| e.get(EVENT)).is_some()
}

/// The checks of §2.6 beyond ordinary JWT validation.
fn spec_checks(token: &str, has_iat: bool, has_sub_or_sid: bool) -> Result<(), &'static str> {
    let payload: Map<String, Value> = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("logout token payload unreadable")?;
    match payload.get("events").and_then(|e| e.get(EVENT)) {
        Some(Value::Object(_)) => {}
        _ => return Err("events claim lacks the back-channel logout event"),
    }
    if payload.contains_key("nonce") {
        return Err("a logout token must not contain nonce");
    }
    if !has_iat {
        return Err("a logout token must contain iat");
    }
    if !has_sub_or_sid {
        return Err("a logout token must contain sub or sid");
    }
    Ok(())
}

/// §2.8: a 400 with an OAuth-shaped error body.
fn bad(description: &str) -> Response<Body> {
    error_response(StatusCode::BAD_REQUEST, ErrorFields::OAuth, "invalid_request", description)
}
