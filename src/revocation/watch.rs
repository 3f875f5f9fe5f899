//! Telling what is held open on a token (a WebSocket tunnel) that a
//! revocation now covers it. The revocation layer cannot know the proxy, so
//! the proxy hands it a [`Watcher`]; the local cache calls it on every
//! revocation it applies, since every write this replica makes and every
//! one it hears of from another replica goes through
//! [`super::LocalCache::apply`]. After the push channel was lost (and
//! writes may have been missed), the subscriber replays what the store
//! holds for the watched keys ([`Watch::watched_keys`]) through the same
//! call.

use super::cache::Slot;
use super::KeyKind;
use crate::auth::Claims;
use std::sync::{Arc, OnceLock};

/// Implemented by whoever holds things open on tokens.
pub trait Watcher: Send + Sync {
    /// `key` now holds `slot` (never `Absent`): end whatever it covers.
    /// Returns how many were ended. Called on the writer's or subscriber's
    /// task: it must not block.
    fn revoked(&self, key: &str, slot: Slot) -> usize;
    /// Every key something open is watched by (each once), for the
    /// re-check after the push channel came back.
    fn watched_keys(&self) -> Vec<String>;
}

/// What decides whether a revocation covers one token: its own key, its
/// subject and session cut-off keys, and its `iat` (legacy keys are left
/// out: the app writes them without an announcement to react to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    /// The token key first, then the cut-off keys.
    keys: Box<[String]>,
    iat: Option<i64>,
}

impl Covered {
    /// From the keys the handshake's revocation check used (memoised on
    /// `claims`); `None` when there were none (no check was made).
    pub fn of(claims: &Claims) -> Option<Self> {
        let memoised = claims.store_keys.get()?;
        let own = 1 + usize::from(claims.sub.is_some()) + usize::from(claims.sid.is_some());
        let keys = memoised.get(..own)?.to_vec().into_boxed_slice();
        Some(Self { keys, iat: claims.iat_unix })
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether `key` holding `slot` revokes this token, as
    /// [`super::Revocations::ensure_live`] would decide.
    pub fn by(&self, key: &str, slot: Slot) -> bool {
        let Some(at) = self.keys.iter().position(|k| k == key) else { return false };
        let kind = if at == 0 { KeyKind::Token } else { KeyKind::CutOff };
        super::revokes(self.iat, kind, slot)
    }
}

/// The watcher slot, set once by the first thing opened on a token.
#[derive(Default)]
pub struct Watch {
    watcher: OnceLock<Arc<dyn Watcher>>,
}

impl Watch {
    /// Installs `watcher` unless one already is (it is process-wide).
    pub fn set(&self, watcher: Arc<dyn Watcher>) {
        let _ = self.watcher.set(watcher);
    }

    pub(super) fn revoked(&self, key: &str, slot: Slot) -> usize {
        match (self.watcher.get(), slot) {
            (Some(watcher), Slot::Present(_)) => watcher.revoked(key, slot),
            _ => 0,
        }
    }

    pub(super) fn watched_keys(&self) -> Vec<String> {
        self.watcher.get().map(|w| w.watched_keys()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::{Change, MemoryStore, Revocations};
    use std::sync::Mutex;

    /// Records what it is told.
    #[derive(Default)]
    struct Told(Mutex<Vec<(String, Slot)>>);

    impl Watcher for Told {
        fn revoked(&self, key: &str, slot: Slot) -> usize {
            self.0.lock().unwrap().push((key.to_owned(), slot));
            1
        }
        fn watched_keys(&self) -> Vec<String> {
            Vec::new()
        }
    }

    #[tokio::test]
    async fn every_revocation_written_here_is_told_and_a_deletion_is_not() {
        let policy = crate::revocation::tests::policy();
        let revocations = Revocations::new(Arc::new(MemoryStore::new()), policy, false);
        let told = Arc::new(Told::default());
        revocations.cache().watch().set(told.clone());
        let claims = crate::revocation::tests::claims("j", "alice", 100);
        revocations.revoke_token(&claims).await.unwrap();
        revocations.revoke_cut_off("t:sub:tag:alice".into(), 150, "subject").await.unwrap();
        let delete = Change { key: "t:jti:tag:j".into(), value: None, expires_at: 0, sent_ms: 0 };
        revocations.write(delete).await.unwrap();
        let seen = told.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            [("t:jti:tag:j".to_string(), Slot::Present(1)), ("t:sub:tag:alice".to_string(), Slot::Present(150))]
        );
    }

    fn covered(iat: Option<i64>) -> Covered {
        let keys = ["t:jti:tag:j".to_string(), "t:sub:tag:alice".to_string()];
        Covered { keys: keys.into(), iat }
    }

    #[test]
    fn a_token_key_covers_and_a_cut_off_covers_from_iat_on() {
        let c = covered(Some(100));
        assert!(c.by("t:jti:tag:j", Slot::Present(1)), "its own key");
        assert!(c.by("t:sub:tag:alice", Slot::Present(100)), "cut-off at iat");
        assert!(c.by("t:sub:tag:alice", Slot::Present(150)), "cut-off after iat");
        assert!(!c.by("t:sub:tag:alice", Slot::Present(99)), "cut-off before iat: a later token");
        assert!(!c.by("t:jti:tag:other", Slot::Present(1)), "another token");
        assert!(!c.by("t:jti:tag:j", Slot::Absent), "deleted");
        assert!(covered(None).by("t:sub:tag:alice", Slot::Present(1)), "no iat: any cut-off");
    }
}
