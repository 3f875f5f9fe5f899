//! Mints JWTs byte by byte so tests control every header and claim,
//! including the malformed and hostile ones a real issuer never produces.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The asymmetric issuer: RS256, ES256, EdDSA keys plus a JWKS file.
pub const ISSUER: &str = "https://issuer.test/";
/// The HMAC issuer.
pub const HS_ISSUER: &str = "hs-issuer";
pub const AUDIENCE: &str = "api";
pub const HS_SECRET: &str = "hs-secret-for-tests-0123456789abcdef";

#[derive(Clone, Debug)]
pub enum Key {
    Rsa,
    Ec,
    Ed,
    Hmac(Vec<u8>),
    /// Empty signature part (for `alg: none`).
    Unsigned,
}

#[derive(Clone, Debug)]
pub struct Tok {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    key: Key,
}

/// A valid RS256 token: iss, aud, sub, random jti, iat now, exp in 5 min.
pub fn claims() -> Tok {
    let now = super::now_unix();
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-1",
        "jti": format!("jti-{:016x}", rand::random::<u64>()),
        "iat": now, "exp": now + 300,
    });
    Tok { header: obj(json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"})), claims: obj(claims), key: Key::Rsa }
}

/// A valid token that is ready to use.
pub fn mint() -> String {
    claims().sign()
}

impl Tok {
    pub fn rs256(self) -> Tok {
        self.alg("RS256", "rsa-1", Key::Rsa)
    }
    pub fn es256(self) -> Tok {
        self.alg("ES256", "ec-1", Key::Ec)
    }
    pub fn eddsa(self) -> Tok {
        self.alg("EdDSA", "ed-1", Key::Ed)
    }
    /// RS256 under a kid that only the JWKS file provides.
    pub fn jwks_rs256(self) -> Tok {
        self.alg("RS256", "jwks-rsa", Key::Rsa)
    }
    pub fn jwks_es256(self) -> Tok {
        self.alg("ES256", "jwks-ec", Key::Ec)
    }
    /// HS256 for the HMAC issuer.
    pub fn hs256(self) -> Tok {
        self.alg("HS256", "hs-1", Key::Hmac(HS_SECRET.into())).iss(HS_ISSUER)
    }

    fn alg(mut self, alg: &str, kid: &str, key: Key) -> Tok {
        self.header.insert("alg".into(), json!(alg));
        self.header.insert("kid".into(), json!(kid));
        self.key = key;
        self
    }

    pub fn key(mut self, key: Key) -> Tok {
        self.key = key;
        self
    }
    pub fn header(mut self, name: &str, v: Value) -> Tok {
        self.header.insert(name.into(), v);
        self
    }
    pub fn without_header(mut self, name: &str) -> Tok {
        self.header.remove(name);
        self
    }
    pub fn claim(mut self, name: &str, v: Value) -> Tok {
        self.claims.insert(name.into(), v);
        self
    }
    pub fn without(mut self, name: &str) -> Tok {
        self.claims.remove(name);
        self
    }
    pub fn iss(self, iss: &str) -> Tok {
        self.claim("iss", json!(iss))
    }
    pub fn jti(self, jti: &str) -> Tok {
        self.claim("jti", json!(jti))
    }
    pub fn sub(self, sub: &str) -> Tok {
        self.claim("sub", json!(sub))
    }
    pub fn sid(self, sid: &str) -> Tok {
        self.claim("sid", json!(sid))
    }
    /// `iat` as absolute Unix seconds.
    pub fn iat(self, iat: i64) -> Tok {
        self.claim("iat", json!(iat))
    }
    /// `exp` relative to now, in seconds (negative: in the past).
    pub fn exp_in(self, secs: i64) -> Tok {
        self.claim("exp", json!(super::now_unix() + secs))
    }
    pub fn nbf_in(self, secs: i64) -> Tok {
        self.claim("nbf", json!(super::now_unix() + secs))
    }

    pub fn exp(&self) -> i64 {
        self.claims["exp"].as_i64().expect("numeric exp")
    }
    pub fn jti_value(&self) -> String {
        self.claims["jti"].as_str().expect("string jti").to_owned()
    }

    /// Header and payload JSON exactly as encoded into the token.
    pub fn json_parts(&self) -> (String, String) {
        let h = serde_json::to_string(&self.header).expect("header json");
        let p = serde_json::to_string(&self.claims).expect("claims json");
        (h, p)
    }

    /// Hex SHA-256 of `header JSON + "." + payload JSON` (the missing_jti hash).
    pub fn content_hash(&self) -> String {
        let (h, p) = self.json_parts();
        hex::encode(Sha256::digest(format!("{h}.{p}")))
    }

    pub fn sign(&self) -> String {
        let (h, p) = self.json_parts();
        raw(h.as_bytes(), p.as_bytes(), &self.key)
    }
}

/// Encodes arbitrary header/payload bytes and signs them with `key`.
pub fn raw(header: &[u8], payload: &[u8], key: &Key) -> String {
    let msg = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let read = |name: &str| std::fs::read(super::key_path(name)).expect("test key file");
    let (enc, alg) = match key {
        Key::Unsigned => return format!("{msg}."),
        Key::Hmac(secret) => (EncodingKey::from_secret(secret), Algorithm::HS256),
        Key::Rsa => (EncodingKey::from_rsa_pem(&read("rsa.key.pem")).expect("rsa key"), Algorithm::RS256),
        Key::Ec => (EncodingKey::from_ec_pem(&read("ec.key.pem")).expect("ec key"), Algorithm::ES256),
        Key::Ed => (EncodingKey::from_ed_pem(&read("ed25519.key.pem")).expect("ed key"), Algorithm::EdDSA),
    };
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &enc, alg).expect("sign");
    format!("{msg}.{sig}")
}

/// The RSA public key PEM bytes: the classic HS256 key-confusion secret.
pub fn rsa_public_pem() -> Vec<u8> {
    std::fs::read(super::key_path("rsa.pub.pem")).expect("rsa public key")
}

/// Redis key under which jwtgate stores a revoked jti.
pub fn jti_key(prefix: &str, iss: &str, jti: &str) -> String {
    format!("{prefix}jti:{}:{jti}", issuer_tag(iss))
}

/// Redis key of a subject cut-off ("log out everywhere").
pub fn sub_key(prefix: &str, iss: &str, sub: &str) -> String {
    format!("{prefix}sub:{}:{sub}", issuer_tag(iss))
}

/// Redis key of a session (sid) cut-off.
pub fn sid_key(prefix: &str, iss: &str, sid: &str) -> String {
    format!("{prefix}sid:{}:{sid}", issuer_tag(iss))
}

/// First 16 hex chars of SHA-256(iss), as in every store key.
pub fn issuer_tag(iss: &str) -> String {
    hex::encode(Sha256::digest(iss.as_bytes()))[..16].to_owned()
}

/// Hex SHA-256 of the token text (legacy `{sha256}` keys).
pub fn text_sha256(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! object literal"),
    }
}
