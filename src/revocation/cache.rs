//! The local answer cache in front of the store. Bounded (`max_entries`,
//! CLOCK-Pro eviction via quick_cache, sharded, no global lock).
//!
//! Staleness bound: a "not revoked" answer is trusted for `not_revoked_ttl`,
//! so a revocation written by *another* replica is honoured here at most
//! that long after it was stored. "Revoked" answers are kept until the
//! revocation expires: a revocation is never undone by time alone.

use quick_cache::sync::Cache;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
struct Answer {
    revoked: bool,
    valid_until: Instant,
}

pub struct LocalCache {
    answers: Cache<String, Answer>,
    not_revoked_ttl: Duration,
}

impl LocalCache {
    pub fn new(max_entries: usize, not_revoked_ttl: Duration) -> Self {
        Self { answers: Cache::new(max_entries.max(1)), not_revoked_ttl }
    }

    /// `Some(revoked)` while a cached answer is fresh.
    pub fn lookup(&self, key: &str) -> Option<bool> {
        let answer = self.answers.get(key)?;
        (answer.valid_until > Instant::now()).then_some(answer.revoked)
    }

    pub fn remember_live(&self, key: String) {
        if self.not_revoked_ttl.is_zero() {
            return;
        }
        let valid_until = Instant::now() + self.not_revoked_ttl;
        self.answers.insert(key, Answer { revoked: false, valid_until });
    }

    pub fn remember_revoked(&self, key: String, expires_at_unix: i64, now_unix: i64) {
        let secs = expires_at_unix.saturating_sub(now_unix).max(0) as u64;
        let valid_until = Instant::now() + Duration::from_secs(secs);
        self.answers.insert(key, Answer { revoked: true, valid_until });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_answers_expire_and_revoked_ones_stay() {
        let cache = LocalCache::new(10, Duration::from_millis(30));
        cache.remember_live("a".into());
        cache.remember_revoked("b".into(), 1_000 + 3600, 1_000);
        assert_eq!(cache.lookup("a"), Some(false));
        assert_eq!(cache.lookup("b"), Some(true));
        std::thread::sleep(Duration::from_millis(40)); // wall-clock TTL under test
        assert_eq!(cache.lookup("a"), None);
        assert_eq!(cache.lookup("b"), Some(true));
        assert_eq!(cache.lookup("c"), None);
    }

    #[test]
    fn zero_ttl_disables_live_caching() {
        let cache = LocalCache::new(10, Duration::ZERO);
        cache.remember_live("a".into());
        assert_eq!(cache.lookup("a"), None);
    }
}
