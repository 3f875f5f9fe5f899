//! The logout answer: jwtgate's own 200 when `logout.forward` is false.

use crate::error::{json_response, Body};
use crate::revocation::Revoked;
use http::{Response, StatusCode};

/// `{"revoked": true, "jti": ..., "expires_at": ...}`; `expires_at` is when
/// the revocation record lapses (token exp + leeway), in Unix seconds.
pub fn answer(revoked: &Revoked) -> Response<Body> {
    json_response(
        StatusCode::OK,
        &serde_json::json!({ "revoked": true, "jti": revoked.jti, "expires_at": revoked.expires_at_unix }),
    )
}
