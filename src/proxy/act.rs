//! Phase 5, act: what jwtgate's own paths do before anything is forwarded.
//! [`plan`] says what a request would change (so `explain` can tell it
//! without writing anything); [`apply`] does it and answers, or lets the
//! request go on (`logout.forward`).

use super::authenticate::Caller;
use super::pick::{Action, Picked};
use crate::auth::Claims;
use crate::error::{json_response, Body, ProxyError, Rejection};
use crate::revocation::{keys, Revocations};
use crate::runtime::Runtime;
use http::{Response, StatusCode};

/// A change to the revocation store a request asks for.
pub enum Effect<'a> {
    /// Logout. `again`: the token was already revoked (logout is
    /// idempotent: the record is stored again, answered, never forwarded).
    RevokeToken { claims: &'a Claims, again: bool, answer: bool },
    /// Log out everywhere: every token of the caller's subject.
    RevokeSubject { claims: &'a Claims },
}

pub fn plan<'a>(rt: &Runtime, picked: &Picked<'_>, caller: &'a Caller) -> Option<Effect<'a>> {
    let again = matches!(caller, Caller::Revoked(_));
    match (picked.action, caller.claims()) {
        (Action::Logout, Some(claims)) => {
            Some(Effect::RevokeToken { claims, again, answer: again || !rt.logout.forward })
        }
        (Action::LogoutAll, Some(claims)) => Some(Effect::RevokeSubject { claims }),
        _ => None,
    }
}

/// The phase: applies the plan; `Some` is jwtgate's answer.
pub async fn act(
    rt: &Runtime,
    revocations: &Revocations,
    picked: &Picked<'_>,
    caller: &Caller,
) -> Result<Option<Response<Body>>, ProxyError> {
    match plan(rt, picked, caller) {
        // Boxed: only logouts carry the store write's future.
        Some(effect) => Box::pin(apply(effect, revocations)).await,
        None => Ok(None),
    }
}

async fn apply(effect: Effect<'_>, revocations: &Revocations) -> Result<Option<Response<Body>>, ProxyError> {
    match effect {
        Effect::RevokeToken { claims, again, answer } => {
            let revoked = match again {
                true => revocations.revoke_token_again(claims).await?,
                false => revocations.revoke_token(claims).await?,
            };
            tracing::info!(iss = %claims.iss, jti = claims.jti.as_deref().unwrap_or("(none)"), again, "token revoked by logout");
            let body = serde_json::json!({ "revoked": true, "jti": revoked.jti, "expires_at": revoked.expires_at });
            Ok(answer.then(|| json_response(StatusCode::OK, &body)))
        }
        Effect::RevokeSubject { claims } => everywhere(revocations, claims).await.map(Some),
    }
}

/// Log out everywhere: every token of the caller's subject issued at or
/// before now is refused from now on (this one included).
async fn everywhere(revocations: &Revocations, claims: &Claims) -> Result<Response<Body>, ProxyError> {
    let sub = subject(claims)?;
    let cut_off = cut_off(claims);
    let key = keys::subject(&revocations.policy().key_prefix, &claims.issuer_tag, sub);
    let revoked = revocations.revoke_cut_off(key, cut_off, "subject").await?;
    tracing::info!(iss = %claims.iss, "subject revoked by logout-all");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "revoked": true, "sub": sub, "issued_before": cut_off, "expires_at": revoked.expires_at }),
    ))
}

pub fn subject(claims: &Claims) -> Result<&str, ProxyError> {
    Ok(claims.sub.as_deref().ok_or(Rejection::InvalidClaims("sub is required to log out everywhere"))?)
}

/// The caller's own iat shows how far ahead the IdP's clock runs: tokens
/// it stamped up to that "time" are cut off too. Not now + leeway: that
/// would refuse the user's fresh login for the next `leeway` seconds.
pub fn cut_off(claims: &Claims) -> i64 {
    crate::auth::now_unix().max(claims.iat_unix.unwrap_or(i64::MIN))
}
