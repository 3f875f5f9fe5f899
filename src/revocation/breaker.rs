//! Circuit breaker around the store: after `failures` consecutive errors the
//! store is skipped for `cooldown` (requests get the store-down answer at
//! once instead of each waiting out the deadline), then one probe request
//! is let through (half-open); its success closes the circuit.
//!
//! Time is `tokio::time::Instant` (tokio's paused test time moves it).
//!
//! Why not a crate: `failsafe` (0.3), the well-kept one, lets every call
//! through while half-open, so a Redis coming back would get the whole
//! backlog at once instead of one probe; it has no notion of a probe
//! abandoned by a request that was dropped (here [`ProbeGuard`] frees the
//! slot), and the probe is where the store renews its connection
//! (`RevocationStore::reconnect`), which needs to know which call is it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    consecutive_failures: AtomicU32,
    /// When the breaker was made: `open_until_ms` counts from here.
    origin: Instant,
    /// Milliseconds since `origin` until which the circuit is open; 0 = closed.
    open_until_ms: AtomicU64,
    probing: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Circuit closed: call the store.
    Call,
    /// Half-open: this call is the probe.
    Probe,
    /// Open: do not call the store.
    Refuse,
}

/// Frees the probe slot when a probe's caller is dropped before `record`
/// (otherwise the breaker would refuse forever: nobody left to record).
pub struct ProbeGuard<'a> {
    breaker: &'a Breaker,
    permit: Permit,
}

impl<'a> ProbeGuard<'a> {
    pub fn new(breaker: &'a Breaker, permit: Permit) -> Self {
        Self { breaker, permit }
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.permit == Permit::Probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            consecutive_failures: AtomicU32::new(0),
            origin: Instant::now(),
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// Milliseconds since `origin`, plus one (0 means closed).
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64 + 1
    }

    pub fn permit(&self) -> Permit {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Permit::Call;
        }
        if self.now_ms() < until {
            return Permit::Refuse;
        }
        match self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Permit::Probe,
            Err(_) => Permit::Refuse,
        }
    }

    pub fn record(&self, permit: Permit, ok: bool) {
        if ok {
            self.consecutive_failures.store(0, Ordering::Release);
            if self.open_until_ms.swap(0, Ordering::AcqRel) != 0 {
                tracing::info!("revocation store reachable again; circuit closed");
                metrics::gauge!("jwtgate_store_circuit_open").set(0.0);
            }
        } else {
            let failures = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
            if permit == Permit::Probe || failures >= self.threshold {
                let was = self.open_until_ms.swap(self.now_ms() + self.cooldown.as_millis() as u64, Ordering::AcqRel);
                if was == 0 {
                    tracing::warn!(failures, cooldown = %humantime::format_duration(self.cooldown), "revocation store failing; circuit opened");
                    metrics::counter!("jwtgate_store_circuit_opened_total").increment(1);
                }
                metrics::gauge!("jwtgate_store_circuit_open").set(1.0);
            }
        }
        if permit == Permit::Probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_probes_after_cooldown_and_closes_on_success() {
        let b = Breaker::new(3, Duration::from_millis(20));
        for _ in 0..2 {
            assert_eq!(b.permit(), Permit::Call);
            b.record(Permit::Call, false);
        }
        assert!(!b.is_open());
        b.record(Permit::Call, false);
        assert!(b.is_open());
        assert_eq!(b.permit(), Permit::Refuse);
        tokio::time::advance(Duration::from_millis(19)).await;
        assert_eq!(b.permit(), Permit::Refuse, "still cooling down");
        tokio::time::advance(Duration::from_millis(6)).await;
        assert_eq!(b.permit(), Permit::Probe);
        assert_eq!(b.permit(), Permit::Refuse, "only one probe at a time");
        b.record(Permit::Probe, false);
        assert_eq!(b.permit(), Permit::Refuse, "failed probe reopens");
        tokio::time::advance(Duration::from_millis(25)).await;
        let p = b.permit();
        assert_eq!(p, Permit::Probe);
        b.record(p, true);
        assert!(!b.is_open());
        assert_eq!(b.permit(), Permit::Call);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_the_slot() {
        let b = Breaker::new(1, Duration::from_millis(10));
        b.record(Permit::Call, false);
        tokio::time::advance(Duration::from_millis(15)).await;
        let p = b.permit();
        assert_eq!(p, Permit::Probe);
        drop(ProbeGuard::new(&b, p)); // the caller went away before recording
        assert_eq!(b.permit(), Permit::Probe, "a new probe may run");
    }
}
