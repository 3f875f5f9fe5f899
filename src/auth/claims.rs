//! Verified claims: what the rest of the gate may rely on about a token.

use crate::error::Rejection;
use serde_json::Value;
use std::sync::{Arc, Mutex, OnceLock};

/// Claims of a token whose signature, issuer and audience were verified.
/// Time checks (`exp`, `nbf`) are re-run per request by [`Claims::check_times`]
/// because a verified token is cached.
#[derive(Debug, Clone)]
pub struct Claims {
    pub iss: String,
    /// Short tag of the issuer (first 16 hex chars of SHA-256(iss)) used in
    /// store keys, computed once per issuer at config load.
    pub issuer_tag: Arc<str>,
    pub sub: Option<String>,
    pub jti: Option<String>,
    /// OpenID Connect session id, revocable by back-channel logout.
    pub sid: Option<String>,
    pub exp_unix: Option<i64>,
    pub nbf_unix: Option<i64>,
    pub iat_unix: Option<i64>,
    /// SHA-256 of the decoded header and payload JSON (`header "." payload`),
    /// the identity of a token without `jti` (never the token text, whose
    /// encoding and ECDSA signature can vary for the same claims).
    pub content_sha256: [u8; 32],
    /// The whole payload, for route requirements and forwarded claims.
    pub payload: serde_json::Map<String, Value>,
    /// The revocation store keys this token is checked against, worked out
    /// by `revocation` on its first check: a cached token brings them to
    /// every later request instead of formatting them again.
    pub store_keys: OnceLock<Box<[String]>>,
    /// `revocation`'s last "not revoked" verdict for this token, kept with
    /// what it rests on (see [`VerdictMemo`]).
    pub verdict: VerdictMemo,
}

/// A "not revoked" verdict reached from the revocation cache alone: the
/// cache epoch it was reached at and the earliest expiry of the cached
/// answers it rests on. `revocation` trusts it while the epoch is
/// unchanged (no revocation, deletion or lost push since) and that expiry
/// is ahead, so a repeated token skips its key look-ups. Opaque here.
#[derive(Debug, Default)]
pub struct VerdictMemo(Mutex<Option<(u64, tokio::time::Instant)>>);

impl VerdictMemo {
    pub fn get(&self) -> Option<(u64, tokio::time::Instant)> {
        self.0.lock().ok().and_then(|memo| *memo)
    }

    pub fn set(&self, epoch: u64, until: tokio::time::Instant) {
        if let Ok(mut memo) = self.0.lock() {
            *memo = Some((epoch, until));
        }
    }
}

/// A copy starts without a verdict: the memo belongs to one cached token.
impl Clone for VerdictMemo {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Claims {
    /// `exp`/`nbf` against `now`, with `leeway` seconds of clock skew.
    pub fn check_times(&self, now: i64, leeway: i64) -> Result<(), Rejection> {
        if let Some(exp) = self.exp_unix {
            if now > exp.saturating_add(leeway) {
                return Err(Rejection::Expired);
            }
        }
        if let Some(nbf) = self.nbf_unix {
            if now.saturating_add(leeway) < nbf {
                return Err(Rejection::NotYetValid);
            }
        }
        Ok(())
    }
}

/// A registered NumericDate claim (RFC 7519 §2): a JSON number, possibly
/// fractional. Strings such as `"1700000000"` are refused.
pub fn numeric_date(payload: &serde_json::Map<String, Value>, name: &'static str) -> Result<Option<i64>, Rejection> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
            .map(Some)
            .ok_or(Rejection::InvalidClaims(name_must_be_number(name))),
        Some(_) => Err(Rejection::InvalidClaims(name_must_be_number(name))),
    }
}

fn name_must_be_number(name: &str) -> &'static str {
    match name {
        "exp" => "exp must be a number",
        "nbf" => "nbf must be a number",
        _ => "iat must be a number",
    }
}

/// A string claim; any other JSON type is refused.
pub fn string_claim(payload: &serde_json::Map<String, Value>, name: &'static str) -> Result<Option<String>, Rejection> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Rejection::InvalidClaims(match name {
            "iss" => "iss must be a string",
            "sub" => "sub must be a string",
            "sid" => "sid must be a string",
            _ => "jti must be a string",
        })),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
pub fn audience_matches(payload: &serde_json::Map<String, Value>, allowed: &[String]) -> Result<(), Rejection> {
    let hit = |s: &str| allowed.iter().any(|a| a == s);
    match payload.get("aud") {
        Some(Value::String(s)) if hit(s) => Ok(()),
        Some(Value::Array(items)) if items.iter().any(|v| v.as_str().is_some_and(hit)) => Ok(()),
        _ => Err(Rejection::WrongAudience),
    }
}
