//! `token`: header bytes → `auth::extract` → `Verifier::verify`, and the
//! query → `refuse_query_token`.
//!
//! Input: one flag byte (bit 0: the credential cookie `access_token` is
//! configured), then `\n`-separated fields, each a letter and a value:
//! `A` an Authorization header, `C` a Cookie header, `Q` the query string,
//! anything else an unrelated header. Values that are not valid header
//! values (or queries) are dropped, as hyper would refuse them.
//!
//! Properties: no panic; a token is only ever taken from an Authorization
//! or Cookie header, from the cookie only when one is configured; a token
//! that verifies carries a genuine signature over its own bytes (HMAC
//! recomputed here from RFC 2104, ES256 checked by the crypto backend on
//! the bytes split here), names a configured issuer and algorithm, and is
//! within its times; the verified-token cache never changes a verdict; a
//! query from which any reference parser reads `access_token` is refused.

use super::reference;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::Algorithm;
use jwtgate::auth::keys::{self, KeySet};
use jwtgate::auth::{extract, IssuerRule, Verifier};
use jwtgate::error::Rejection;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::sync::{Arc, LazyLock};

/// The clock of every check: fixed, so a corpus file means the same thing
/// on every run (seed tokens are valid around it).
pub const NOW: i64 = 1_800_000_000;
pub const LEEWAY: i64 = 30;
pub const MAX_TOKEN_BYTES: usize = 4096;
pub const COOKIE: &str = "access_token";
pub const HS_ISSUER: &str = "fuzz-hs";
pub const ES_ISSUER: &str = "fuzz-es";
pub const HS_SECRET: &[u8] = b"fuzz-secret-0123456789abcdef0123";
pub const EC_PRIVATE: &[u8] = include_bytes!("../../bench/keys/ec-p256.pem");
const EC_PUBLIC: &[u8] = include_bytes!("../../bench/keys/ec-p256.pub.pem");

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let rule = |issuer: &str, algorithms: Vec<Algorithm>, key: keys::Key| {
        let mut set = KeySet::default();
        set.add(key).expect("one key");
        IssuerRule {
            issuer: issuer.into(),
            issuer_tag: Arc::from(issuer),
            audiences: vec!["api".into()],
            algorithms,
            keys: set,
            jwks: Vec::new(),
        }
    };
    let hs =
        rule(HS_ISSUER, vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512], keys::from_secret(None, HS_SECRET));
    let ec = keys::from_pem(Some("ec-1".into()), EC_PUBLIC).expect("bench EC key");
    let es = rule(ES_ISSUER, vec![Algorithm::ES256], ec);
    Verifier::new(vec![hs, es], LEEWAY, MAX_TOKEN_BYTES, true, 64)
});

pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let cookie = (flags & 1 == 1).then_some(COOKIE);
    let mut headers = HeaderMap::new();
    let mut query = None;
    for field in super::fields(rest) {
        let Some((&kind, value)) = field.split_first() else { continue };
        if kind == b'Q' {
            query = http::uri::PathAndQuery::try_from([b"/?", value].concat()).ok();
            continue;
        }
        let Ok(value) = HeaderValue::from_bytes(value) else { continue };
        let name = match kind {
            b'A' => http::header::AUTHORIZATION,
            b'C' => http::header::COOKIE,
            _ => http::HeaderName::from_static("x-fuzz"),
        };
        headers.append(name, value);
    }
    if let Some(query) = query.as_ref().and_then(|pq| pq.query()) {
        check_query(query);
    }
    match extract(&headers, cookie) {
        Ok(raw) => {
            assert!(!raw.is_empty(), "an empty token was extracted");
            let inside = |name| headers.get_all(name).iter().any(|v: &HeaderValue| within(raw, v.as_bytes()));
            let from_cookie = cookie.is_some() && inside(http::header::COOKIE);
            assert!(inside(http::header::AUTHORIZATION) || from_cookie, "token {raw:?} from neither header");
            check_verify(raw);
        }
        Err(Rejection::NoToken) => {
            assert!(!headers.contains_key(http::header::AUTHORIZATION), "an Authorization header read as no token")
        }
        Err(_) => {}
    }
}

fn within(part: &str, whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

fn check_query(query: &str) {
    let refused = jwtgate::auth::extract::refuse_query_token(Some(query)).is_err();
    for (parser, reads) in reference::query::READERS {
        assert!(refused || !reads(query.as_bytes(), "access_token"), "{parser} reads access_token from {query:?}");
    }
}

fn check_verify(raw: &str) {
    let first = VERIFIER.verify(raw, NOW);
    let again = VERIFIER.verify(raw, NOW);
    match (&first, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a.content_sha256, b.content_sha256, "the cache changed the claims"),
        (a, b) => assert_eq!(a.as_ref().err(), b.as_ref().err(), "the cache changed the verdict"),
    }
    if raw.len() > MAX_TOKEN_BYTES {
        assert_eq!(first.as_ref().err(), Some(&Rejection::TooLarge));
        return;
    }
    let Ok(claims) = first else { return };
    assert!(VERIFIER.verify_uncached(raw).is_ok(), "verified from the cache only");
    let parts: Vec<&str> = raw.split('.').collect();
    assert_eq!(parts.len(), 3, "a verified token that is not three parts");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("header base64")).expect("header JSON");
    let payload: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("payload base64")).expect("payload JSON");
    assert_eq!(payload, claims.payload, "the claims are not the payload that was signed");
    assert_eq!(payload.get("iss").and_then(|v| v.as_str()), Some(claims.iss.as_str()));
    let message = format!("{}.{}", parts[0], parts[1]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("signature base64");
    let alg = header.get("alg").and_then(|v| v.as_str()).unwrap_or_default();
    let genuine = match (claims.iss.as_str(), alg) {
        (HS_ISSUER, "HS256") => hmac::<Sha256>(message.as_bytes()) == signature,
        (HS_ISSUER, "HS384") => hmac::<Sha384>(message.as_bytes()) == signature,
        (HS_ISSUER, "HS512") => hmac::<Sha512>(message.as_bytes()) == signature,
        (ES_ISSUER, "ES256") => {
            let key = jsonwebtoken::DecodingKey::from_ec_pem(EC_PUBLIC).expect("EC key");
            jsonwebtoken::crypto::verify(parts[2], message.as_bytes(), &key, Algorithm::ES256).unwrap_or(false)
        }
        (iss, alg) => panic!("{alg} accepted for {iss}"),
    };
    assert!(genuine, "a token without a genuine signature verified: {raw}");
    let exp = claims.exp_unix.expect("exp is required");
    assert!(NOW <= exp + LEEWAY, "an expired token verified");
    assert!(claims.nbf_unix.is_none_or(|nbf| nbf - LEEWAY <= NOW), "a token before its nbf verified");
}

/// HMAC (RFC 2104) over the fuzz secret, written out rather than taken from
/// the crypto backend jwtgate uses.
fn hmac<D: Digest + sha2::digest::core_api::BlockSizeUser>(message: &[u8]) -> Vec<u8> {
    let block = D::block_size();
    let mut key = HS_SECRET.to_vec();
    if key.len() > block {
        key = D::digest(&key).to_vec();
    }
    key.resize(block, 0);
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = D::new().chain_update(pad(0x36)).chain_update(message).finalize();
    D::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

/// Whether the fuzz verifier accepts `raw` at [`NOW`] (positive controls).
pub fn verifies(raw: &str) -> bool {
    VERIFIER.verify(raw, NOW).is_ok()
}
