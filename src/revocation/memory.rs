//! In-process store: the embedded default for a single instance. Lost on
//! restart and not shared; use `redis` for more than one replica.

use super::{BoxFuture, RevocationStore, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;

/// `jti` key → expiry (Unix seconds). A std `Mutex` is enough: it is only
/// taken on a local-cache miss or a logout, never held across an await.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, i64>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl RevocationStore for MemoryStore {
    fn is_revoked<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let now = crate::auth::now_unix();
        let hit = match self.entries.lock() {
            Ok(map) => map.get(key).is_some_and(|&exp| exp > now),
            Err(_) => return Box::pin(async { Err(StoreError("memory store lock poisoned".into())) }),
        };
        Box::pin(async move { Ok(hit) })
    }

    fn revoke<'a>(&'a self, key: &'a str, expires_at_unix: i64) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = crate::auth::now_unix();
        let result = match self.entries.lock() {
            Ok(mut map) => {
                // Expired entries are dropped on write, so the map stays as
                // small as the set of live revocations.
                if map.len() >= 1024 && map.len().is_power_of_two() {
                    map.retain(|_, exp| *exp > now);
                }
                map.insert(key.to_string(), expires_at_unix);
                Ok(())
            }
            Err(_) => Err(StoreError("memory store lock poisoned".into())),
        };
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn revoked_until_expiry_only() {
        let store = MemoryStore::new();
        let now = crate::auth::now_unix();
        store.revoke("live", now + 60).await.unwrap();
        store.revoke("gone", now - 1).await.unwrap();
        assert!(store.is_revoked("live").await.unwrap());
        assert!(!store.is_revoked("gone").await.unwrap());
        assert!(!store.is_revoked("never").await.unwrap());
    }
}
