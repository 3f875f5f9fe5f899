//! Recovery when the store comes back: once Redis answers again, service
//! resumes within one circuit cool-down (issue 10, point 5). The circuit's
//! half-open probe must make a real attempt to reach Redis, not be answered
//! with a failure remembered from the outage. Run with `--nocapture` to see
//! the measured figures.

use crate::support::token::claims;
use crate::support::{metric, token, Cfg, Gate, Redis, Upstream};
use std::time::{Duration, Instant};

const COOLDOWN: Duration = Duration::from_secs(1);
const FAILURES: u32 = 3;
/// Beyond the cool-down: the probe's own round trip, the 10 ms poll, a
/// request's verification, and scheduling on a loaded 2-core CI box.
const MARGIN: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_millis(10);
/// When, after the circuit opened, each trial brings Redis back: early and
/// late in the first cool-down, and after a probe already failed on a dead
/// Redis (the second cool-down).
const RESTART_AFTER: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(300),
    Duration::from_millis(600),
    Duration::from_millis(900),
    Duration::from_millis(1300),
];

/// Polls with a fresh (never cached) token every [`POLL`] until one is
/// forwarded; returns when that answer arrived and how many were refused.
/// HS256: minting must not slow the poll down (RSA signing does in a debug
/// build).
async fn first_forwarded(gate: &Gate) -> (Instant, usize) {
    let mut refused = 0;
    loop {
        let rsp = gate.get("/api/recovering", &claims().hs256().sign()).await;
        if (200..300).contains(&rsp.status) {
            return (Instant::now(), refused);
        }
        assert_eq!(rsp.status, 503, "only store_unavailable while Redis is away: {}", rsp.text());
        refused += 1;
        tokio::time::sleep(POLL).await;
    }
}

/// Kills redis-server, fails requests until the circuit is open, restarts
/// Redis on the same port `restart_after` later while polling, and returns
/// the time from the restarted Redis's first PONG to the first forwarded
/// request.
async fn one_outage(gate: &Gate, redis: &mut Redis, restart_after: Duration) -> Duration {
    redis.stop().await; // SIGKILL; returns once the port refuses connections
    let mut failed = 0;
    let opened = loop {
        assert_eq!(gate.get("/api/down", &token::mint()).await.status, 503);
        failed += 1;
        if metric(&gate.metrics().await, "jwtgate_store_circuit_open", &[]) == Some(1.0) {
            break Instant::now();
        }
        assert!(failed < 10 * FAILURES, "circuit still closed after {failed} store failures");
    };
    let restart = async {
        tokio::time::sleep_until((opened + restart_after).into()).await; // places the restart in the cool-down
        redis.restart().await
    };
    let (pong, (forwarded, refused)) = tokio::join!(restart, async {
        tokio::time::sleep(POLL).await;
        first_forwarded(gate).await
    });
    let recovered = forwarded.saturating_duration_since(pong);
    eprintln!(
        "redis back {restart_after:?} after the circuit opened: first 2xx {recovered:?} after its first PONG \
         ({refused} requests refused meanwhile)"
    );
    recovered
}

#[tokio::test]
async fn service_resumes_within_one_cooldown_of_a_restarted_redis_answering_again() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    // A deadline roomy enough for a fresh connection's handshake on a loaded
    // CI box: measured is whether the probe tries at all, not how fast a
    // handshake is (a failure remembered from the outage answers at once,
    // whatever the deadline).
    let cfg = Cfg {
        circuit: Some((FAILURES, "1s".into())),
        redis_timeout: "500ms".into(),
        ..Cfg::new(&app).redis(&redis).admin()
    };
    let gate = Gate::spawn(&cfg).await;
    assert_eq!(gate.get("/api/up", &token::mint()).await.status, 200, "control");

    let mut took = Vec::new();
    for restart_after in RESTART_AFTER {
        took.push(one_outage(&gate, &mut redis, restart_after).await);
        assert_eq!(metric(&gate.metrics().await, "jwtgate_store_circuit_open", &[]), Some(0.0), "circuit closed");
    }
    let slowest = took.iter().max().copied().unwrap_or_default();
    eprintln!("recovery after a restart, per trial: {took:?}; slowest {slowest:?} (bound {:?})", COOLDOWN + MARGIN);
    for (restart_after, recovered) in RESTART_AFTER.iter().zip(&took) {
        assert!(
            *recovered <= COOLDOWN + MARGIN,
            "redis back {restart_after:?} into the cool-down: service resumed {recovered:?} after it answered \
             (bound: cool-down {COOLDOWN:?} + {MARGIN:?}); all trials: {took:?}"
        );
    }
    assert!(gate.alive(), "jwtgate died");
}
