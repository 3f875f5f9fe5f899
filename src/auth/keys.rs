//! Decoded verification keys of one issuer, prepared once at config load.
//! Each key carries its algorithm family, and a key is only ever tried with
//! algorithms of that family: an HMAC secret never verifies an RS256 token
//! and an RSA public key is never used as an HMAC secret.

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use std::collections::HashMap;

/// One decoded key and the family it belongs to.
pub struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    pub family: AlgorithmFamily,
}

/// The keys of an issuer: by `kid`, plus all of them for tokens without one.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Key>,
    by_kid: HashMap<String, usize>,
}

impl KeySet {
    pub fn add(&mut self, key: Key) -> Result<(), String> {
        if let Some(kid) = &key.kid {
            if self.by_kid.insert(kid.clone(), self.keys.len()).is_some() {
                return Err(format!("duplicate kid `{kid}`"));
            }
        }
        self.keys.push(key);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn families(&self) -> impl Iterator<Item = AlgorithmFamily> + '_ {
        self.keys.iter().map(|k| k.family)
    }

    /// The candidate keys for a token: the one named by `kid`, or, without a
    /// `kid`, every key of the algorithm's family. Empty means "unknown key".
    pub fn candidates<'a>(&'a self, kid: Option<&str>, alg: Algorithm) -> impl Iterator<Item = &'a Key> + 'a {
        let family = alg.family();
        let by_kid = kid.map(|k| self.by_kid.get(k).map(|&i| &self.keys[i]));
        let (named, all) = match by_kid {
            Some(found) => (found, None),
            None => (None, Some(self.keys.iter())),
        };
        named.into_iter().chain(all.into_iter().flatten()).filter(move |k| k.family == family)
    }
}

/// Decodes a public key PEM of any supported type (RSA, EC, Ed25519).
pub fn from_pem(kid: Option<String>, pem: &[u8]) -> Result<Key, String> {
    type Decode = fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>;
    let attempts: [(Decode, AlgorithmFamily); 3] = [
        (DecodingKey::from_rsa_pem, AlgorithmFamily::Rsa),
        (DecodingKey::from_ec_pem, AlgorithmFamily::Ec),
        (DecodingKey::from_ed_pem, AlgorithmFamily::Ed),
    ];
    for (decode, family) in attempts {
        if let Ok(decoding) = decode(pem) {
            return Ok(Key { kid, decoding, family });
        }
    }
    Err("not a PEM public key of a supported type (RSA, EC P-256/P-384, Ed25519)".into())
}

/// An HMAC secret.
pub fn from_secret(kid: Option<String>, secret: &[u8]) -> Key {
    Key { kid, decoding: DecodingKey::from_secret(secret), family: AlgorithmFamily::Hmac }
}

/// Every signing key of a JWK Set (keys marked `use: enc` are skipped).
pub fn from_jwks(json: &[u8]) -> Result<Vec<Key>, String> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWK Set: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        // One key of an unsupported type (another curve, an encryption
        // key without `use`) must not take the issuer's other keys down.
        let decoding = match DecodingKey::from_jwk(jwk) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(kid = ?jwk.common.key_id, error = %e, "skipping a JWK this gate cannot use");
                continue;
            }
        };
        let family = decoding.family();
        keys.push(Key { kid: jwk.common.key_id.clone(), decoding, family });
    }
    if keys.is_empty() {
        return Err("JWK Set holds no signing key".into());
    }
    Ok(keys)
}
