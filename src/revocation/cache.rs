//! The local answer cache in front of the store: bounded (`max_entries`,
//! quick_cache's sharded CLOCK-Pro, no global lock), keyed by store key.
//!
//! Staleness bound. Every write to the shared store is announced on pub/sub
//! and applied here on arrival (`apply`), and logged: the subscriber reads
//! the log every heartbeat and applies what the pub/sub missed (applying a
//! write twice is harmless: the same answer again). While that subscription
//! is up, cached answers are trusted for `not_revoked_ttl`; a revocation on
//! another replica is seen here after the pub/sub delivery delay
//! (milliseconds), or at the next read of the log when its message was lost
//! or is late. When the subscription drops, every cached answer is
//! discarded at once and nothing new is cached until it is back; when the
//! log cannot be read (or was trimmed past what was applied), every cached
//! answer is discarded ([`LocalCache::forget_answers`]). So a lost message
//! can never keep a stale answer alive past one heartbeat round (see
//! [`super::subscriber`]).
//!
//! A look-up races with invalidations: it reads the store, a revocation
//! arrives, then it caches its (now stale) answer. `epoch` counts
//! invalidations; an answer is cached only if no invalidation happened
//! since its look-up began. It moves both before and after each change of
//! the answers, so a verdict memoised on a token at some epoch never
//! outlives a change it could have raced.
//!
//! Time is `tokio::time::Instant`: the same clock as `std`'s in the binary,
//! and one that tokio's paused test time moves.

use super::watch::Watch;
use quick_cache::sync::Cache;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// What the store holds under one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Absent,
    /// Present, with its value when numeric (a subject cut-off time) or 1.
    Present(i64),
}

#[derive(Clone, Copy)]
struct Answer {
    slot: Slot,
    valid_until: Instant,
}

/// Taken before a store look-up; caching its answer needs it unchanged.
/// A verdict memoised on a token ([`crate::auth::VerdictMemo`]) holds only
/// while it is unchanged too: it moves on every applied write, lost or
/// restored push, and fetched answer that revokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch(pub(super) u64);

pub struct LocalCache {
    answers: Cache<String, Answer>,
    not_revoked_ttl: Duration,
    epoch: AtomicU64,
    /// True while every write will reach us (pub/sub up, or a local store).
    push_healthy: AtomicBool,
    /// Told of every revocation applied here: every write reaches the
    /// cache, so this is where open tunnels learn of theirs.
    watch: Watch,
}

impl LocalCache {
    pub fn new(max_entries: usize, not_revoked_ttl: Duration, push_healthy: bool) -> Self {
        Self {
            answers: Cache::new(max_entries.max(1)),
            not_revoked_ttl,
            epoch: AtomicU64::new(0),
            push_healthy: AtomicBool::new(push_healthy),
            watch: Watch::default(),
        }
    }

    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    pub fn lookup(&self, key: &str) -> Option<Slot> {
        self.lookup_at(key, Instant::now()).map(|(slot, _)| slot)
    }

    /// The cached answer at `now` and until when it holds.
    pub fn lookup_at(&self, key: &str, now: Instant) -> Option<(Slot, Instant)> {
        let answer = self.answers.get(key)?;
        (answer.valid_until > now).then_some((answer.slot, answer.valid_until))
    }

    /// Current epoch, to be passed back to [`LocalCache::remember_fetched`].
    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// Caches a fetched answer unless an invalidation happened since `since`
    /// or pushes are not arriving. Present token keys are kept until
    /// `present_until` (the revocation's own expiry). True when it cached
    /// a present answer: the caller then calls [`LocalCache::fetched_present`].
    pub fn remember_fetched(&self, key: String, slot: Slot, since: Epoch, present_until: Option<Instant>) -> bool {
        if !self.push_healthy.load(Ordering::Acquire) || self.epoch() != since {
            return false;
        }
        let ttl_end = Instant::now() + self.not_revoked_ttl;
        let valid_until = match (slot, present_until) {
            (Slot::Present(_), Some(until)) => until,
            _ if self.not_revoked_ttl.is_zero() => return false,
            _ => ttl_end,
        };
        // A fetched "absent" never replaces a fresher "present" (a pushed
        // revocation that arrived while this look-up was in flight).
        if slot == Slot::Absent && self.lookup(&key).is_some_and(|s| s != Slot::Absent) {
            return false;
        }
        self.answers.insert(key.clone(), Answer { slot, valid_until });
        // An invalidation between the check above and the insert: undo.
        if self.epoch() != since {
            self.answers.remove(key.as_str());
            return false;
        }
        slot != Slot::Absent
    }

    /// Like `remember_fetched` with an explicit TTL, for keys no replica
    /// announces (legacy blacklists written by the app itself).
    pub fn remember_fetched_for(&self, key: String, slot: Slot, since: Epoch, ttl: Duration) -> bool {
        if ttl.is_zero() || !self.push_healthy.load(Ordering::Acquire) || self.epoch() != since {
            return false;
        }
        self.answers.insert(key, Answer { slot, valid_until: Instant::now() + ttl });
        slot != Slot::Absent
    }

    /// Present answers were fetched and cached (a write no announcement
    /// brought, or a cut-off other tokens of the subject share): verdicts
    /// memoised on tokens end, as after an applied write. Called once the
    /// whole answer is cached, since moving the epoch earlier would make
    /// the rest of its keys look raced and go uncached.
    pub fn fetched_present(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Applies a write announced by any replica (or made by this one).
    /// `None` means the key was deleted. The watcher is told after the
    /// insert: something registered after it looks here and finds it.
    /// Returns how many watched things the write ended.
    pub fn apply(&self, key: String, slot: Option<Slot>, expires_at: Instant) -> usize {
        self.invalidate(|answers| match slot {
            Some(slot) => answers.insert(key.clone(), Answer { slot, valid_until: expires_at }),
            None => {
                answers.remove(key.as_str());
            }
        });
        match slot {
            Some(slot) => self.watch.revoked(&key, slot),
            None => 0,
        }
    }

    /// Changes the answers between two epoch moves. The one before voids
    /// look-ups in flight (their answers are not cached); the one after
    /// voids every verdict memoised on the old answers: a reader can take
    /// the epoch after the first move and still find the old answer before
    /// the change lands, and its memo must not outlive the change.
    fn invalidate(&self, change: impl FnOnce(&Cache<String, Answer>)) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        change(&self.answers);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// An announcement may have been missed although the push channel is
    /// up (the log could not be read, or was trimmed past what this replica
    /// applied): forget every answer, and go on caching fresh ones.
    pub fn forget_answers(&self) {
        self.invalidate(Cache::clear);
    }

    /// The push channel dropped: forget everything, cache nothing new.
    pub fn push_lost(&self) {
        self.push_healthy.store(false, Ordering::Release);
        self.invalidate(Cache::clear);
    }

    /// The push channel is back (subscribed before this call).
    pub fn push_restored(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.push_healthy.store(true, Ordering::Release);
    }

    pub fn push_healthy(&self) -> bool {
        self.push_healthy.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fetched_absent_answers_expire_and_present_ones_stay() {
        let cache = LocalCache::new(10, Duration::from_millis(30), true);
        let e = cache.epoch();
        cache.remember_fetched("a".into(), Slot::Absent, e, None);
        cache.remember_fetched("b".into(), Slot::Present(1), e, Some(Instant::now() + Duration::from_secs(60)));
        assert_eq!(cache.lookup("a"), Some(Slot::Absent));
        assert_eq!(cache.lookup("b"), Some(Slot::Present(1)));
        tokio::time::advance(Duration::from_millis(29)).await;
        assert_eq!(cache.lookup("a"), Some(Slot::Absent), "still within the TTL");
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(cache.lookup("a"), None);
        assert_eq!(cache.lookup("b"), Some(Slot::Present(1)));
    }

    #[test]
    fn an_invalidation_during_a_lookup_prevents_caching_its_answer() {
        let cache = LocalCache::new(10, Duration::from_secs(60), true);
        let before = cache.epoch();
        cache.apply("other".into(), Some(Slot::Present(1)), Instant::now() + Duration::from_secs(60));
        cache.remember_fetched("a".into(), Slot::Absent, before, None);
        assert_eq!(cache.lookup("a"), None);
    }

    #[test]
    fn losing_push_clears_and_stops_caching_until_restored() {
        let cache = LocalCache::new(10, Duration::from_secs(60), true);
        cache.remember_fetched("a".into(), Slot::Absent, cache.epoch(), None);
        cache.push_lost();
        assert_eq!(cache.lookup("a"), None);
        cache.remember_fetched("a".into(), Slot::Absent, cache.epoch(), None);
        assert_eq!(cache.lookup("a"), None);
        cache.push_restored();
        cache.remember_fetched("a".into(), Slot::Absent, cache.epoch(), None);
        assert_eq!(cache.lookup("a"), Some(Slot::Absent));
    }

    /// A reader that takes the epoch and then looks a key up (what a
    /// memoised verdict rests on) while the answers change: once the change
    /// has returned, no epoch such a reader saw with the old answer may be
    /// current, or its memo would outlive the change. Threads race for
    /// real, many rounds (the window is an instant wide); a build that
    /// moved the epoch only before the change fails within a few thousand.
    fn no_epoch_seen_before_the_change_stays_current(change: impl Fn(&LocalCache, &str)) {
        use std::sync::Arc;
        let mut raced = 0;
        for round in 0..20_000 {
            let cache = Arc::new(LocalCache::new(10, Duration::from_secs(60), true));
            let key = format!("k{round}");
            cache.remember_fetched(key.clone(), Slot::Absent, cache.epoch(), None);
            let stop = Arc::new(AtomicBool::new(false));
            let reader = {
                let (cache, key, stop) = (cache.clone(), key.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut last_absent = None;
                    while !stop.load(Ordering::Acquire) {
                        let epoch = cache.epoch();
                        if cache.lookup(&key) == Some(Slot::Absent) {
                            last_absent = Some(epoch);
                        }
                    }
                    last_absent
                })
            };
            change(&cache, &key);
            stop.store(true, Ordering::Release);
            let seen = reader.join().expect("reader thread");
            raced += usize::from(seen.is_some());
            assert_ne!(seen, Some(cache.epoch()), "round {round}: a verdict memoised before the change still holds");
        }
        assert!(raced > 0, "the reader never ran beside a change: the test proved nothing");
    }

    #[test]
    fn a_verdict_memoised_while_a_write_is_applied_ends_with_it() {
        let far = Instant::now() + Duration::from_secs(60);
        no_epoch_seen_before_the_change_stays_current(|cache, key| {
            cache.apply(key.to_string(), Some(Slot::Present(1)), far);
        });
    }

    #[test]
    fn a_verdict_memoised_while_answers_are_forgotten_ends_with_them() {
        no_epoch_seen_before_the_change_stays_current(|cache, _| cache.forget_answers());
        no_epoch_seen_before_the_change_stays_current(|cache, _| cache.push_lost());
    }
}
