//! jwtgate's own answers on the logout paths.

use crate::auth::Claims;
use crate::error::{json_response, Body, ProxyError, Rejection};
use crate::revocation::{keys, Revocations, Revoked};
use http::{Response, StatusCode};

/// `{"revoked": true, "jti": ..., "expires_at": ...}`; `expires_at` is when
/// the revocation record lapses (token exp + leeway), in Unix seconds.
pub fn answer(revoked: &Revoked) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "revoked": true, "jti": revoked.jti, "expires_at": revoked.expires_at }),
    )
}

/// Log out everywhere: every token of the caller's subject issued at or
/// before now is refused from now on (this one included).
pub async fn everywhere(revocations: &Revocations, claims: &Claims) -> Result<Response<Body>, ProxyError> {
    let sub = claims.sub.as_deref().ok_or(Rejection::InvalidClaims("sub is required to log out everywhere"))?;
    // The caller's own iat shows how far ahead the IdP's clock runs: tokens
    // it stamped up to that "time" are cut off too. Not now + leeway: that
    // would refuse the user's fresh login for the next `leeway` seconds.
    let cut_off = crate::auth::now_unix().max(claims.iat_unix.unwrap_or(i64::MIN));
    let key = keys::subject(&revocations.policy().key_prefix, &claims.issuer_tag, sub);
    let revoked = revocations.revoke_cut_off(key, cut_off, "subject").await?;
    tracing::info!(iss = %claims.iss, "subject revoked by logout-all");
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "revoked": true, "sub": sub, "issued_before": cut_off, "expires_at": revoked.expires_at }),
    ))
}
