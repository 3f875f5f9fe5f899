//! `X-Request-Id`: one id per request, in the access log line, sent to the
//! upstream and returned to the client, so one request can be followed
//! through the ingress, jwtgate and the app. A client's (or an ingress's)
//! id is kept when it is one header of at most 128 characters of
//! `[A-Za-z0-9._:-]` (a UUID, a W3C trace id, nginx's `$request_id`), from
//! any peer: it is a correlation id, never trusted for a decision, and the
//! character set keeps it safe in logs and headers. Anything else is
//! replaced by a generated one.

use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub const MAX_LEN: usize = 128;

/// The request's id: its own when acceptable, else a new one.
pub fn of(headers: &HeaderMap) -> HeaderValue {
    let mut sent = headers.get_all(&X_REQUEST_ID).iter();
    match (sent.next(), sent.next()) {
        (Some(id), None) if acceptable(id.as_bytes()) => id.clone(),
        _ => generate(),
    }
}

pub fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// 32 hex digits, like nginx's `$request_id`: 16 random per process, then
/// a counter. Unique across replicas without a random draw per request;
/// no `format!` (it cost ~1,800 instructions a request, a twentieth of the
/// whole proxy's).
fn generate() -> HeaderValue {
    static PREFIX: LazyLock<u64> = LazyLock::new(rand::random);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&PREFIX.to_be_bytes());
    raw[8..].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let mut text = [0u8; 32];
    // Hex digits are always a valid header value; 32 bytes fit 16 encoded.
    match hex::encode_to_slice(raw, &mut text) {
        Ok(()) => HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("0")),
        Err(_) => HeaderValue::from_static("0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(&X_REQUEST_ID, HeaderValue::from_bytes(v.as_bytes()).unwrap());
        }
        headers
    }

    #[test]
    fn generated_ids_are_the_process_prefix_then_a_counter() {
        let (a, b) = (generate(), generate());
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert!(a.bytes().chain(b.bytes()).all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')), "{a} {b}");
        assert_eq!(a[..16], b[..16], "one prefix per process");
        let (n, m) = (u64::from_str_radix(&a[16..], 16).unwrap(), u64::from_str_radix(&b[16..], 16).unwrap());
        assert!(m > n, "the counter moves on: {a} then {b}");
    }

    #[test]
    fn a_well_formed_id_is_kept() {
        for id in ["abc", "550e8400-e29b-41d4-a716-446655440000", "00-4bf92f35-01", "a.b_c:d", &"x".repeat(128)] {
            assert_eq!(of(&with(&[id])), id);
        }
    }

    #[test]
    fn anything_else_is_replaced_by_a_fresh_one() {
        for bad in [vec![""], vec!["has space"], vec!["a/b"], vec!["a\"b"], vec!["ü"], vec!["x"; 2]] {
            let id = of(&with(&bad));
            assert_eq!(id.len(), 32, "{bad:?}");
            assert!(acceptable(id.as_bytes()));
        }
        assert_ne!(of(&with(&[&"x".repeat(129)])), "x".repeat(129).as_str());
        assert_ne!(of(&HeaderMap::new()), of(&HeaderMap::new()), "two requests, two ids");
    }
}
