//! The verdict memoised on a cached token ([`crate::auth::VerdictMemo`]):
//! it must end exactly when the cache answers it rests on would stop
//! giving "not revoked". Each test also checks the memo was in use (a
//! store change the cache was not told about goes unseen while it holds),
//! so a build that never memoised could not pass them.

use super::*;
use crate::config::{MissingJti, OnStoreError};
use std::sync::Arc;

const TTL: Duration = Duration::from_secs(60);

pub(super) fn policy() -> Policy {
    Policy {
        key_prefix: "t:".into(),
        on_store_error: OnStoreError::FailClosed,
        missing_jti: MissingJti::Reject,
        leeway_secs: 0,
        max_token_lifetime: Duration::from_secs(86_400),
        not_revoked_ttl: TTL,
        cache_entries: 1000,
        circuit_failures: 5,
        circuit_cooldown: Duration::from_secs(1),
        legacy: Default::default(),
    }
}

pub(super) fn claims(jti: &str, sub: &str, iat: i64) -> Claims {
    Claims {
        iss: "iss".into(),
        issuer_tag: Arc::from("tag"),
        sub: Some(sub.into()),
        jti: Some(jti.into()),
        sid: None,
        exp_unix: Some(crate::auth::now_unix() + 3600),
        nbf_unix: None,
        iat_unix: Some(iat),
        content_sha256: [0; 32],
        payload: Default::default(),
        store_keys: Default::default(),
        verdict: Default::default(),
    }
}

/// A gate over a memory store, and the store itself, to change behind the
/// cache's back (as a write whose announcement was lost would).
fn gate() -> (Revocations, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    (Revocations::new(store.clone(), policy(), false), store)
}

/// Writes `key` to the store only: no replica, this one included, hears of it.
async fn unannounced(store: &MemoryStore, key: String, value: &str) {
    let change = Change { key, value: Some(value.into()), expires_at: crate::auth::now_unix() + 3600, sent_ms: 0 };
    store.write(&change).await.unwrap();
}

fn is_live(result: Result<(), ProxyError>) -> bool {
    match result {
        Ok(()) => true,
        Err(ProxyError::Refused(Rejection::Revoked)) => false,
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

/// Three checks: the store, then the cache (memoised), then the memo.
async fn memoised(gate: &Revocations, token: &Claims) {
    for _ in 0..3 {
        assert!(is_live(gate.ensure_live(token, "raw").await));
    }
    assert!(token.verdict.get().is_some(), "the cached verdict was memoised");
}

/// A token with a memoised verdict, then revoked in the store only.
async fn memoised_then_revoked_unseen() -> (Revocations, Claims) {
    let (gate, store) = gate();
    let token = claims("j1", "alice", 100);
    memoised(&gate, &token).await;
    unannounced(&store, gate.token_key(&token).unwrap(), "1").await;
    (gate, token)
}

#[tokio::test]
async fn a_logout_ends_the_memoised_verdict_at_once() {
    let (gate, _) = gate();
    let token = claims("j1", "alice", 100);
    memoised(&gate, &token).await;
    gate.revoke_token(&token).await.unwrap();
    assert!(!is_live(gate.ensure_live(&token, "raw").await), "refused right after its logout");
    let other = claims("j2", "alice", 100);
    assert!(is_live(gate.ensure_live(&other, "raw").await), "positive control: another token of the subject");
}

#[tokio::test]
async fn an_announced_write_for_another_key_also_ends_it() {
    // Unseen while the memo holds: the cache says "not revoked" for its keys.
    let (gate, token) = memoised_then_revoked_unseen().await;
    assert!(is_live(gate.ensure_live(&token, "raw").await), "the memo (and the cache) still answer");
    // Any applied write moves the epoch: the memo is dropped, the cache
    // answers again (still the stale "absent" it holds for this token).
    let bob = claims("j9", "bob", 100);
    gate.revoke_token(&bob).await.unwrap();
    assert!(token.verdict.get().is_some_and(|(e, _)| cache::Epoch(e) != gate.cache().epoch()), "memo outdated");
    assert!(is_live(gate.ensure_live(&token, "raw").await), "the cache's own answer, within not_revoked_ttl");
}

#[tokio::test]
async fn a_cut_off_fetched_for_another_token_of_the_subject_ends_it() {
    let (gate, store) = gate();
    let first = claims("j1", "alice", 100);
    memoised(&gate, &first).await;
    // A "log out everywhere" whose announcement was lost: only a fetch finds it.
    let (subject_key, _) = keys::grouping_keys("t:", &first);
    unannounced(&store, subject_key.unwrap(), "200").await;
    assert!(is_live(gate.ensure_live(&first, "raw").await), "unseen while the memo holds");
    // A second token of the subject misses the cache (its jti is new), so
    // its check fetches both keys and caches the cut-off: it is refused,
    // and so is the first token, at once, not when its memo would expire.
    let second = claims("j2", "alice", 150);
    assert!(!is_live(gate.ensure_live(&second, "raw").await), "the fetched cut-off refuses the second token");
    assert!(!is_live(gate.ensure_live(&first, "raw").await), "and ends the first token's memo");
    let later = claims("j3", "alice", 250);
    assert!(is_live(gate.ensure_live(&later, "raw").await), "positive control: issued after the cut-off");
}

#[tokio::test(start_paused = true)]
async fn the_memo_expires_with_the_answers_it_rests_on() {
    let (gate, token) = memoised_then_revoked_unseen().await;
    tokio::time::advance(TTL - Duration::from_millis(1)).await;
    assert!(is_live(gate.ensure_live(&token, "raw").await), "within not_revoked_ttl: memo and cache agree");
    tokio::time::advance(Duration::from_millis(2)).await;
    assert!(!is_live(gate.ensure_live(&token, "raw").await), "past it the store is asked and refuses");
}

#[tokio::test]
async fn a_lost_push_ends_it() {
    let store = Arc::new(MemoryStore::new());
    let gate = Revocations::new(store.clone(), policy(), true);
    gate.cache().push_restored();
    let token = claims("j1", "alice", 100);
    memoised(&gate, &token).await;
    unannounced(&store, gate.token_key(&token).unwrap(), "1").await;
    assert!(is_live(gate.ensure_live(&token, "raw").await), "unseen while pushes look healthy");
    gate.cache().push_lost();
    assert!(!is_live(gate.ensure_live(&token, "raw").await), "refused once the push channel is lost");
}
