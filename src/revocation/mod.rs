//! Revocation: is this token still live, and revoke it. A bounded local
//! cache sits in front of a [`RevocationStore`] (`memory` for one instance,
//! `redis` for a fleet).
//!
//! Key layout (one string key per revoked token, value `1`):
//! - `<prefix>jti:<tag>:<jti>` where `<tag>` is the first 16 hex chars of
//!   SHA-256(iss), so equal `jti`s of two issuers never collide;
//! - `<prefix>tok:<hex SHA-256(decoded header "." decoded payload)>` for a
//!   token without `jti` under `missing_jti: hash`.
//!
//! Entries are written with `EXAT exp + leeway`: they vanish when the token
//! would have been refused as expired anyway, so the list needs no cleanup.

mod cache;
mod memory;
mod redis;

pub use cache::LocalCache;
pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::auth::Claims;
use crate::config::{MissingJti, OnStoreError};
use crate::error::{ProxyError, Rejection};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The store failed or missed its deadline; the source is for logs only.
#[derive(Debug, thiserror::Error)]
#[error("revocation store: {0}")]
pub struct StoreError(pub String);

/// Where revocations live. Two implementations: `memory` and `redis`.
pub trait RevocationStore: Send + Sync {
    fn is_revoked<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Records `key` as revoked until `expires_at_unix` (seconds).
    fn revoke<'a>(&'a self, key: &'a str, expires_at_unix: i64) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// How revocation behaves, from the config.
#[derive(Debug, Clone)]
pub struct Policy {
    pub key_prefix: String,
    pub on_store_error: OnStoreError,
    pub missing_jti: MissingJti,
    pub leeway_secs: i64,
    pub max_token_lifetime: Duration,
    pub not_revoked_ttl: Duration,
    pub cache_entries: usize,
}

/// A recorded revocation, as the logout answer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub jti: Option<String>,
    pub expires_at_unix: i64,
}

/// Cache + store + policy: the revocation phase of the request path.
pub struct Revocations {
    store: Arc<dyn RevocationStore>,
    cache: LocalCache,
    policy: Policy,
}

impl Revocations {
    pub fn new(store: Arc<dyn RevocationStore>, policy: Policy) -> Self {
        let cache = LocalCache::new(policy.cache_entries, policy.not_revoked_ttl);
        Self { store, cache, policy }
    }

    /// The store key of a token, or `MissingJti` under `missing_jti: reject`.
    pub fn key_for(&self, claims: &Claims) -> Result<String, Rejection> {
        let prefix = &self.policy.key_prefix;
        match (&claims.jti, self.policy.missing_jti) {
            (Some(jti), _) => Ok(format!("{prefix}jti:{}:{jti}", claims.issuer_tag)),
            (None, MissingJti::Hash) => Ok(format!("{prefix}tok:{}", hex::encode(claims.content_sha256))),
            (None, MissingJti::Reject) => Err(Rejection::MissingJti),
        }
    }

    /// When a revocation of this token may be forgotten: its expiry plus
    /// leeway, or the longest accepted lifetime for a token without `exp`.
    fn expires_at(&self, claims: &Claims, now: i64) -> i64 {
        match claims.exp_unix {
            Some(exp) => exp.saturating_add(self.policy.leeway_secs),
            None => now.saturating_add(self.policy.max_token_lifetime.as_secs() as i64),
        }
    }

    /// Ok when the token is not revoked (or the store is down under
    /// `fail_open`). A cache hit makes no store call.
    pub async fn ensure_live(&self, claims: &Claims, now: i64) -> Result<(), ProxyError> {
        let key = self.key_for(claims)?;
        if let Some(revoked) = self.cache.lookup(&key) {
            return if revoked { Err(Rejection::Revoked.into()) } else { Ok(()) };
        }
        match self.store.is_revoked(&key).await {
            Ok(true) => {
                self.cache.remember_revoked(key, self.expires_at(claims, now), now);
                Err(Rejection::Revoked.into())
            }
            Ok(false) => {
                self.cache.remember_live(key);
                Ok(())
            }
            Err(err) => match self.policy.on_store_error {
                OnStoreError::FailClosed => {
                    tracing::warn!(error = %err, "revocation check failed; refusing (fail_closed)");
                    Err(ProxyError::StoreUnavailable)
                }
                OnStoreError::FailOpen => {
                    tracing::warn!(error = %err, "revocation check failed; forwarding unchecked (fail_open)");
                    Ok(())
                }
            },
        }
    }

    /// Revokes the token. A store failure is always an error (whatever
    /// `on_store_error` says): a logout must never report a false success.
    pub async fn revoke(&self, claims: &Claims, now: i64) -> Result<Revoked, ProxyError> {
        let key = self.key_for(claims)?;
        let expires_at_unix = self.expires_at(claims, now);
        self.store.revoke(&key, expires_at_unix).await.map_err(|err| {
            tracing::warn!(error = %err, "revocation not stored; logout refused");
            ProxyError::StoreUnavailable
        })?;
        self.cache.remember_revoked(key, expires_at_unix, now);
        Ok(Revoked { jti: claims.jti.clone(), expires_at_unix })
    }
}
