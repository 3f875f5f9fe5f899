//! JWT verification (RFC 7515/7519) with the checks a gateway must not
//! skip: size limit before any work, `crit` refused, `alg` from a per-issuer
//! allow-list (never `none`), key chosen by `kid` within the algorithm's
//! family, NumericDate claims that really are numbers, iss/aud/exp/nbf.
//! Verified tokens are cached by SHA-256 of their text so ES/RS tokens cost
//! a hash on repeat; exp/nbf are still checked on every request.

use super::claims::{audience_matches, numeric_date, string_claim, Claims};
use super::jwks::JwksSource;
use super::keys::KeySet;
use crate::error::Rejection;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// What one issuer accepts.
pub struct IssuerRule {
    pub issuer: String,
    pub issuer_tag: Arc<str>,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    /// Keys from PEM files, JWKS files and secrets, fixed for this config.
    pub keys: KeySet,
    /// Key sets fetched from `jwks_url`s, refreshed in the background.
    pub jwks: Vec<Arc<JwksSource>>,
}

pub struct Verifier {
    issuers: HashMap<String, IssuerRule>,
    leeway_secs: i64,
    max_token_bytes: usize,
    require_exp: bool,
    verified: quick_cache::sync::Cache<[u8; 32], Arc<Claims>>,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

impl Verifier {
    pub fn new(
        issuers: Vec<IssuerRule>,
        leeway_secs: i64,
        max_token_bytes: usize,
        require_exp: bool,
        cache_entries: usize,
    ) -> Self {
        Self {
            issuers: issuers.into_iter().map(|r| (r.issuer.clone(), r)).collect(),
            leeway_secs,
            max_token_bytes,
            require_exp,
            verified: quick_cache::sync::Cache::new(cache_entries.max(1)),
        }
    }

    pub fn leeway_secs(&self) -> i64 {
        self.leeway_secs
    }

    pub fn issuers(&self) -> impl Iterator<Item = &IssuerRule> {
        self.issuers.values()
    }

    /// Takes over the running sources of `old` whose URL and settings are
    /// unchanged, so a reload neither refetches nor loses good keys.
    pub fn adopt_jwks(&mut self, old: &Verifier) {
        let running: Vec<&Arc<JwksSource>> = old.jwks_sources().collect();
        for rule in self.issuers.values_mut() {
            for source in &mut rule.jwks {
                if let Some(same) = running.iter().find(|o| o.identity() == source.identity()) {
                    *source = Arc::clone(same);
                }
            }
        }
    }

    /// Every `jwks_url` source of every issuer.
    pub fn jwks_sources(&self) -> impl Iterator<Item = &Arc<JwksSource>> {
        self.issuers.values().flat_map(|r| r.jwks.iter())
    }

    /// Loads every `jwks_url` source once (concurrently, each bounded by
    /// its fetch timeout) and starts its refresh task. Sources already
    /// running (adopted from the previous config) are left alone.
    pub async fn start_jwks(&self) {
        futures_util::future::join_all(self.jwks_sources().map(|s| s.start())).await;
    }

    /// Verifies `token` at time `now` and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Claims>, Rejection> {
        if token.len() > self.max_token_bytes {
            return Err(Rejection::TooLarge);
        }
        let fingerprint: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let claims = match self.verified.get(&fingerprint) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.verify_uncached(token)?);
                self.verified.insert(fingerprint, claims.clone());
                claims
            }
        };
        claims.check_times(now, self.leeway_secs)?;
        Ok(claims)
    }

    /// Full verification without the cache and without time checks; `verify`
    /// is the request-path entry point (public for benchmarks).
    pub fn verify_uncached(&self, token: &str) -> Result<Claims, Rejection> {
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(sig64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Rejection::Malformed);
        };
        let header_json = decode_part(h64)?;
        let header: JoseHeader = serde_json::from_slice(&header_json).map_err(|_| Rejection::Malformed)?;
        if header.crit.is_some() {
            return Err(Rejection::UnsupportedCrit);
        }
        let alg: Algorithm = header.alg.parse().map_err(|_| Rejection::AlgorithmNotAllowed)?;
        let payload_json = decode_part(p64)?;
        let payload: Map<String, Value> = serde_json::from_slice(&payload_json).map_err(|_| Rejection::Malformed)?;

        let iss = string_claim(&payload, "iss")?.ok_or(Rejection::WrongIssuer)?;
        let rule = self.issuers.get(&iss).ok_or(Rejection::WrongIssuer)?;
        if !rule.algorithms.contains(&alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        check_signature(rule, header.kid.as_deref(), alg, &token[..h64.len() + 1 + p64.len()], sig64)?;

        let exp_unix = numeric_date(&payload, "exp")?;
        let nbf_unix = numeric_date(&payload, "nbf")?;
        let iat_unix = numeric_date(&payload, "iat")?;
        if self.require_exp && exp_unix.is_none() {
            return Err(Rejection::InvalidClaims("exp is required"));
        }
        if !rule.audiences.is_empty() {
            audience_matches(&payload, &rule.audiences)?;
        }
        let mut hasher = Sha256::new();
        hasher.update(&header_json);
        hasher.update(b".");
        hasher.update(&payload_json);
        Ok(Claims {
            sub: string_claim(&payload, "sub")?,
            jti: string_claim(&payload, "jti")?,
            sid: string_claim(&payload, "sid")?,
            iss,
            issuer_tag: rule.issuer_tag.clone(),
            exp_unix,
            nbf_unix,
            iat_unix,
            content_sha256: hasher.finalize().into(),
            payload,
            store_keys: std::sync::OnceLock::new(),
            verdict: Default::default(),
        })
    }
}

/// Strict base64url without padding; non-canonical encodings are refused.
fn decode_part(part: &str) -> Result<Vec<u8>, Rejection> {
    if part.is_empty() {
        return Err(Rejection::Malformed);
    }
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Rejection::Malformed)
}

fn check_signature(
    rule: &IssuerRule,
    kid: Option<&str>,
    alg: Algorithm,
    message: &str,
    sig64: &str,
) -> Result<(), Rejection> {
    let mut tried_any = false;
    let mut verified = |set: &KeySet| {
        set.candidates(kid, alg).any(|key| {
            tried_any = true;
            matches!(jsonwebtoken::crypto::verify(sig64, message.as_bytes(), &key.decoding, alg), Ok(true))
        })
    };
    if verified(&rule.keys) || rule.jwks.iter().any(|source| verified(&source.keys())) {
        return Ok(());
    }
    if tried_any {
        return Err(Rejection::BadSignature);
    }
    // A kid nobody knows may be a key the IdP just rotated in: ask each
    // source to refetch (rate-limited there), refuse this request.
    if let Some(kid) = kid {
        rule.jwks.iter().for_each(|source| source.unknown_kid(kid));
    }
    Err(Rejection::UnknownKey)
}
