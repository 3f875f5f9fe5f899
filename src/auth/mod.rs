//! Turning a request's credentials into verified [`Claims`]: `extract` finds
//! the raw token, `keys` holds the decoded keys per issuer, `verify` checks
//! signature and claims. Only `Verifier::verify` produces `Claims`.
//! `compile` builds the [`Verifier`] from the `jwt:` section.

pub mod claims;
mod compile;
pub mod cookie;
pub mod extract;
pub mod jwks;
pub mod keys;
pub mod verify;

pub use claims::Claims;
pub use compile::compile;
pub use extract::extract;
pub use verify::{IssuerRule, Verifier};

/// Current Unix time in seconds; the one clock the checks use.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The short tag of an issuer that store keys carry instead of its name
/// (the first 16 hex chars of SHA-256(iss); see `revocation::keys`).
pub fn issuer_tag(iss: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(iss.as_bytes()))[..16].to_string()
}
