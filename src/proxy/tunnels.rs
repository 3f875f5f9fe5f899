//! The open WebSocket tunnels of this process, indexed by the store keys
//! whose revocation covers their handshake token, so that a logout (or a
//! subject, session or admin revocation), made here or announced by
//! another replica, ends the tunnels it covers. Cost: one map look-up per
//! revocation and one registration per tunnel; ordinary requests never
//! come here.
//!
//! Process-wide, like the open-tunnel count in [`super::upgrade`]: a tunnel
//! outlives the connection and the config snapshot that opened it. The
//! revocation layer calls in through [`Watcher`] (it cannot know the proxy).
//! Two instances in one process (tests) share it: a revocation of one
//! reaches the other's tunnels only under an equal key, the same token.

use crate::auth::Claims;
use crate::error::ProxyError;
use crate::revocation::{Covered, Revocations, Slot, Watcher};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

static OPEN: LazyLock<Arc<Registry>> = LazyLock::new(Arc::default);

#[derive(Default)]
struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    tunnels: HashMap<u64, Entry>,
    by_key: HashMap<String, Vec<u64>>,
}

struct Entry {
    covered: Covered,
    revoked: oneshot::Sender<()>,
}

/// One registered tunnel: `revoked` resolves when a revocation covers its
/// token. Dropping it takes the tunnel out of the registry.
pub struct Registration {
    id: u64,
    registry: Arc<Registry>,
    pub revoked: oneshot::Receiver<()>,
}

/// Registers a tunnel about to open on `claims`, then checks the token once
/// more: a revocation applied between the handshake's check and this
/// registration had no tunnel to end. `None` when there is no token (an
/// `auth: none` route) or it was never checked.
pub async fn register(revocations: &Revocations, claims: Option<&Claims>) -> Result<Option<Registration>, ProxyError> {
    let Some(claims) = claims else { return Ok(None) };
    let Some(covered) = Covered::of(claims) else { return Ok(None) };
    let watcher: Arc<dyn Watcher> = OPEN.clone();
    revocations.cache().watch().set(watcher);
    let registration = OPEN.add(covered);
    revocations.ensure_still_live(claims).await?;
    Ok(Some(registration))
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing here panics while holding it; a poisoned map is still whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(self: &Arc<Self>, covered: Covered) -> Registration {
        let (revoked, rx) = oneshot::channel();
        let mut inner = self.lock();
        let id = inner.next;
        inner.next = inner.next.wrapping_add(1);
        for key in covered.keys() {
            inner.by_key.entry(key.clone()).or_default().push(id);
        }
        inner.tunnels.insert(id, Entry { covered, revoked });
        Registration { id, registry: self.clone(), revoked: rx }
    }
}

impl Inner {
    /// Takes tunnel `id` out of both maps.
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.tunnels.remove(&id)?;
        for key in entry.covered.keys() {
            if let Some(ids) = self.by_key.get_mut(key) {
                ids.retain(|&other| other != id);
                if ids.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
        Some(entry)
    }
}

impl Watcher for Registry {
    fn revoked(&self, key: &str, slot: Slot) -> usize {
        let mut inner = self.lock();
        let Some(ids) = inner.by_key.get(key) else { return 0 };
        let covered: Vec<u64> =
            ids.iter().copied().filter(|id| inner.tunnels.get(id).is_some_and(|e| e.covered.by(key, slot))).collect();
        let mut ended = 0;
        for id in covered {
            if let Some(entry) = inner.remove(id) {
                // The tunnel may be ending by itself: nothing left to tell.
                ended += usize::from(entry.revoked.send(()).is_ok());
            }
        }
        ended
    }

    fn watched_keys(&self) -> Vec<String> {
        self.lock().by_key.keys().cloned().collect()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, sub: &str, iat: i64) -> Claims {
        let claims = Claims {
            iss: "iss".into(),
            issuer_tag: Arc::from("tag"),
            sub: Some(sub.into()),
            jti: Some(jti.into()),
            sid: None,
            exp_unix: None,
            nbf_unix: None,
            iat_unix: Some(iat),
            content_sha256: [0; 32],
            payload: Default::default(),
            store_keys: Default::default(),
            verdict: Default::default(),
        };
        let keys = [format!("jti:{jti}"), format!("sub:{sub}")];
        let _ = claims.store_keys.set(keys.into());
        claims
    }

    #[test]
    fn a_revocation_ends_the_tunnels_it_covers_and_only_those() {
        let registry = Arc::new(Registry::default());
        let mut a = registry.add(Covered::of(&claims("a", "alice", 100)).unwrap());
        let mut b = registry.add(Covered::of(&claims("b", "alice", 200)).unwrap());
        let mut c = registry.add(Covered::of(&claims("c", "carol", 100)).unwrap());
        assert_eq!(registry.revoked("jti:a", Slot::Present(1)), 1);
        assert!(a.revoked.try_recv().is_ok(), "a's own key");
        assert!(b.revoked.try_recv().is_err());
        assert_eq!(registry.revoked("sub:alice", Slot::Present(150)), 0, "b was issued after the cut-off");
        assert_eq!(registry.revoked("sub:alice", Slot::Present(200)), 1);
        assert!(b.revoked.try_recv().is_ok(), "cut-off at b's iat");
        assert!(c.revoked.try_recv().is_err(), "another subject stays open");
        let mut keys = registry.watched_keys();
        keys.sort();
        assert_eq!(keys, ["jti:c", "sub:carol"], "ended tunnels are no longer watched");
        drop(c);
        assert!(registry.watched_keys().is_empty());
    }
}
