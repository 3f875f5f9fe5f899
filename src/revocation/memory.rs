//! In-process store: the embedded default for a single instance. Lost on
//! restart and not shared; use `redis` for more than one replica.

use super::{BoxFuture, Change, RevocationStore, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;

/// key → (value, expiry in Unix seconds). A std `Mutex` is enough: it is
/// only taken on a local-cache miss or a write, never across an await.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, (String, i64)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl RevocationStore for MemoryStore {
    fn fetch<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<String>>, StoreError>> {
        let now = crate::auth::now_unix();
        let result = match self.entries.lock() {
            Ok(map) => {
                Ok(keys.iter().map(|k| map.get(k).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone())).collect())
            }
            Err(_) => Err(StoreError::MemoryPoisoned),
        };
        Box::pin(async move { result })
    }

    fn write<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = crate::auth::now_unix();
        let result = match self.entries.lock() {
            Ok(mut map) => {
                // Expired entries are dropped on write, so the map stays as
                // small as the set of live revocations.
                if map.len() >= 1024 && map.len().is_power_of_two() {
                    map.retain(|_, (_, exp)| *exp > now);
                }
                match &change.value {
                    Some(v) => map.insert(change.key.clone(), (v.clone(), change.expires_at)),
                    None => map.remove(&change.key),
                };
                Ok(())
            }
            Err(_) => Err(StoreError::MemoryPoisoned),
        };
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, value: Option<&str>, expires_at: i64) -> Change {
        Change { key: key.into(), value: value.map(Into::into), expires_at, sent_ms: 0 }
    }

    #[tokio::test]
    async fn values_live_until_expiry_and_deletes_remove_them() {
        let store = MemoryStore::new();
        let now = crate::auth::now_unix();
        store.write(&change("live", Some("1"), now + 60)).await.unwrap();
        store.write(&change("gone", Some("1"), now - 1)).await.unwrap();
        store.write(&change("cut", Some("1700000000"), now + 60)).await.unwrap();
        let keys = ["live", "gone", "never", "cut"].map(String::from);
        let got = store.fetch(&keys).await.unwrap();
        assert_eq!(got, [Some("1".into()), None, None, Some("1700000000".into())]);
        store.write(&change("live", None, 0)).await.unwrap();
        assert_eq!(store.fetch(&keys[..1]).await.unwrap(), [None]);
    }
}
