//! Single-flight: concurrent requests with the same uncached token share
//! one store round trip.

use crate::support::token::claims;
use crate::support::{Cfg, Gate, Redis, Upstream};
use futures_util::future::join_all;

const BURST: usize = 100;

async fn burst(gate: &Gate, raw: &str, path: &str) {
    let statuses: Vec<u16> = join_all((0..BURST).map(|_| async { gate.get(path, raw).await.status })).await;
    assert!(statuses.iter().all(|s| *s == 200), "statuses: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_requests_with_one_fresh_token_make_one_mget() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    // Long heartbeat: no subscription churn while measuring.
    let cfg = Cfg { not_revoked_ttl: "60s".into(), heartbeat: Some("1h".into()), ..Cfg::new(&app).redis(&redis) };
    let gate = Gate::spawn(&cfg).await;
    // Subscribed, so answers are cached (until then every request asks Redis).
    redis.await_subscribers("jwtgate:revocations", 1).await;
    redis.reset_stats().await;

    let first = claims().hs256().sign();
    burst(&gate, &first, "/api/burst").await;
    assert_eq!(redis.calls("mget").await, 1, "{BURST} concurrent requests with one token");
    assert_eq!(app.seen("/api/burst"), BURST);

    // Control: a second fresh token costs exactly one more look-up.
    let second = claims().hs256().sign();
    burst(&gate, &second, "/api/second").await;
    assert_eq!(redis.calls("mget").await, 2, "a second fresh token");
    assert_eq!(app.seen("/api/second"), BURST);
}
