//! The store key layout, in one place.
//!
//! | key | value | written by |
//! |---|---|---|
//! | `<prefix>jti:<tag>:<jti>` | `1` | logout, admin |
//! | `<prefix>tok:<hex sha256(header "." payload)>` | `1` | logout of a token without jti (`missing_jti: hash`) |
//! | `<prefix>sub:<tag>:<sub>` | T (Unix seconds) | log out everywhere, admin, back-channel logout |
//! | `<prefix>sid:<tag>:<sid>` | T (Unix seconds) | back-channel logout by session |
//!
//! `<tag>` is the first 16 hex chars of SHA-256(iss), so equal ids of two
//! issuers never collide. Replicas learn of every write on the pub/sub
//! channel `<prefix>revocations` and, should a message be lost or late,
//! from the announcement log, the stream `<prefix>revocations:log`
//! ([`super::log`]).

use crate::auth::Claims;

pub fn token_jti(prefix: &str, issuer_tag: &str, jti: &str) -> String {
    format!("{prefix}jti:{issuer_tag}:{jti}")
}

pub fn token_hash(prefix: &str, content_sha256: &[u8; 32]) -> String {
    format!("{prefix}tok:{}", hex::encode(content_sha256))
}

pub fn subject(prefix: &str, issuer_tag: &str, sub: &str) -> String {
    format!("{prefix}sub:{issuer_tag}:{sub}")
}

pub fn session(prefix: &str, issuer_tag: &str, sid: &str) -> String {
    format!("{prefix}sid:{issuer_tag}:{sid}")
}

pub fn channel(prefix: &str) -> String {
    format!("{prefix}revocations")
}

/// The announcement log (a Redis Stream) beside `channel`.
pub fn log(channel: &str) -> String {
    format!("{channel}:log")
}

/// Subject and session keys a token is checked against.
pub fn grouping_keys(prefix: &str, claims: &Claims) -> (Option<String>, Option<String>) {
    (
        claims.sub.as_deref().map(|s| subject(prefix, &claims.issuer_tag, s)),
        claims.sid.as_deref().map(|s| session(prefix, &claims.issuer_tag, s)),
    )
}

/// The SHA-256 tag of an issuer used in keys (computed by `auth`, which
/// puts it in every `Claims`).
pub use crate::auth::issuer_tag;
