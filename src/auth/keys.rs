//! Decoded verification keys of one issuer, prepared once at config load.
//! Each key carries its algorithm family, and a key is only ever tried with
//! algorithms of that family: an HMAC secret never verifies an RS256 token
//! and an RSA public key is never used as an HMAC secret.

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a key or a key set was refused. `Clone` (the parser's error behind
/// an `Arc`) because a fetched set's error is shared by every caller that
/// waited on the fetch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("duplicate kid `{0}`")]
    DuplicateKid(String),
    #[error("not a PEM public key of a supported type (RSA, EC P-256/P-384, Ed25519)")]
    NotAPublicKey,
    /// The JSON parser's error may quote the input: a fetched set's error
    /// drops it (see `jwks::fetch`).
    #[error("not a JWK Set")]
    NotAJwkSet(#[source] Arc<serde_json::Error>),
    #[error("JWK Set holds no signing key")]
    NoSigningKey,
}

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
    pub fn add(&mut self, key: Key) -> Result<(), KeyError> {
        if let Some(kid) = &key.kid {
            if self.by_kid.insert(kid.clone(), self.keys.len()).is_some() {
                return Err(KeyError::DuplicateKid(kid.clone()));
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
/// Each decoder's refusal is dropped: the three say the same (not this
/// type), and which type was meant is not known.
pub fn from_pem(kid: Option<String>, pem: &[u8]) -> Result<Key, KeyError> {
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
    Err(KeyError::NotAPublicKey)
}

/// An HMAC secret.
pub fn from_secret(kid: Option<String>, secret: &[u8]) -> Key {
    Key { kid, decoding: DecodingKey::from_secret(secret), family: AlgorithmFamily::Hmac }
}

/// Every signing key of a JWK Set (keys marked `use: enc` are skipped).
pub fn from_jwks(json: &[u8]) -> Result<Vec<Key>, KeyError> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| KeyError::NotAJwkSet(Arc::new(e)))?;
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
                tracing::warn!(kid = jwk.common.key_id.as_deref().unwrap_or("(none)"), error = %e, "skipping a JWK this gate cannot use");
                continue;
            }
        };
        let family = decoding.family();
        keys.push(Key { kid: jwk.common.key_id.clone(), decoding, family });
    }
    if keys.is_empty() {
        return Err(KeyError::NoSigningKey);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/jwks.json"));

    #[test]
    fn a_second_key_with_the_same_kid_is_refused_by_name() {
        let mut set = KeySet::default();
        set.add(from_secret(Some("k1".into()), b"one")).unwrap();
        let err = set.add(from_secret(Some("k1".into()), b"two")).unwrap_err();
        assert!(matches!(&err, KeyError::DuplicateKid(kid) if kid == "k1"), "{err:?}");
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn key_set_errors_say_what_is_wrong_and_keep_the_parser_error_as_source() {
        assert_eq!(from_jwks(JWKS).unwrap().len(), 2);
        let err = from_jwks(br#"{"keys": "x"}"#).err().unwrap();
        assert_eq!(err.to_string(), "not a JWK Set");
        assert!(std::error::Error::source(&err).is_some_and(|e| e.to_string().contains("invalid type")), "{err:?}");
        assert!(matches!(from_jwks(br#"{"keys": []}"#), Err(KeyError::NoSigningKey)));
        assert!(matches!(from_pem(None, b"not a pem"), Err(KeyError::NotAPublicKey)));
    }
}
