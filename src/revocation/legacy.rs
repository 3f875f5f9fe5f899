//! Read-only compatibility with blacklists that apps already keep, so an
//! app can move its check into the sidecar without a flag day. The common
//! recipes key entries by the raw token (`SETEX <token> <ttl> blacklisted`,
//! `SET <token> invalid` + `EXPIREAT`), by its SHA-256 hex, or by jti.
//!
//! Security caveat: a raw-token key only matches the exact token text. The
//! same signed claims can be re-encoded (ECDSA signatures are malleable;
//! padding and base64 variants), so a blacklist keyed by token text can be
//! bypassed. jwtgate's own records are keyed by `jti`; prefer that.

use crate::auth::Claims;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Key templates with `{token}`, `{sha256}` (hex of the token text),
/// `{jti}` and `{sub}`; a template whose placeholder the token lacks is skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyRules {
    pub templates: Vec<String>,
    /// Values that mean "revoked"; empty means any value does.
    pub values: Vec<String>,
    /// How long a legacy answer is cached (these keys are not announced).
    pub cache_ttl: Duration,
}

impl LegacyRules {
    pub fn keys_for(&self, claims: &Claims, raw: &str) -> Vec<String> {
        if self.templates.is_empty() {
            return Vec::new();
        }
        let sha = if self.templates.iter().any(|t| t.contains("{sha256}")) {
            hex::encode(Sha256::digest(raw.as_bytes()))
        } else {
            String::new()
        };
        self.templates
            .iter()
            .filter_map(|t| {
                let mut key = t.replace("{token}", raw).replace("{sha256}", &sha);
                for (name, value) in [("{jti}", &claims.jti), ("{sub}", &claims.sub)] {
                    if key.contains(name) {
                        key = key.replace(name, value.as_deref()?);
                    }
                }
                Some(key)
            })
            .collect()
    }

    pub fn value_means_revoked(&self, value: &str) -> bool {
        self.values.is_empty() || self.values.iter().any(|v| v == value)
    }
}
