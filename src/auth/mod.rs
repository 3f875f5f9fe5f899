//! Turning a request's credentials into verified [`Claims`]: `extract` finds
//! the raw token, `keys` holds the decoded keys per issuer, `verify` checks
//! signature and claims. Only `Verifier::verify` produces `Claims`.

pub mod claims;
pub mod cookie;
pub mod extract;
pub mod jwks;
pub mod keys;
pub mod verify;

pub use claims::Claims;
pub use extract::extract;
pub use verify::{IssuerRule, Verifier};

/// Current Unix time in seconds; the one clock the checks use.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
