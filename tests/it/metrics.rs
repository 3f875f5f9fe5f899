//! Prometheus metrics on the admin listener: after a small run covering
//! each outcome, every documented series is present with plausible values.

use crate::support::token::{self, claims, jti_key, ISSUER};
use crate::support::{assert_refused, eventually, metric, Cfg, Challenge, Gate, Redis, Upstream};
use std::time::Duration;

#[track_caller]
fn at_least(text: &str, name: &str, labels: &[&str], min: f64) {
    let v = metric(text, name, labels).unwrap_or_else(|| panic!("no series {name}{labels:?} in:\n{text}"));
    assert!(v >= min, "{name}{labels:?} = {v}, expected >= {min}\n{text}");
}

#[tokio::test]
async fn metrics_after_a_small_run_show_every_documented_series() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    // Long heartbeat: the cached answer below must come from the cache.
    let cfg =
        Cfg { heartbeat: Some("1h".into()), not_revoked_ttl: "60s".into(), ..Cfg::new(&app).redis(&redis).admin() };
    let gate = Gate::spawn(&cfg).await;
    redis.await_subscribers("jwtgate:revocations", 1).await;

    let ok = token::mint();
    assert_eq!(gate.get("/api/a", &ok).await.status, 200); // store_miss
    assert_eq!(gate.get("/api/a", &ok).await.status, 200); // cache
    assert_refused(&gate.get_anon("/api/anon").await, 401, "missing_token", Challenge::Bare);
    let out = token::mint();
    assert_eq!(gate.logout(&out).await.status, 200); // logouts_total, published and received back
    assert_refused(&gate.get("/api/out", &out).await, 401, "token_revoked", Challenge::InvalidToken);
    // Revoked behind jwtgate's back (no announcement): found in the store.
    let behind = claims();
    let key = jti_key("jwtgate:", ISSUER, &behind.jti_value());
    let _: () = redis.cmd(redis::cmd("SET").arg(&key).arg("1").arg("EX").arg(600)).await;
    assert_refused(&gate.get("/api/behind", &behind.sign()).await, 401, "token_revoked", Challenge::InvalidToken);
    eventually(Duration::from_secs(5), "own announcement received", || async {
        metric(&gate.metrics().await, "jwtgate_pubsub_messages_total", &[]).filter(|v| *v >= 1.0)
    })
    .await;
    redis.stop().await;
    let rsp = gate.get("/api/down", &token::mint()).await;
    assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    assert_eq!(app.seen("/api/a"), 2);
    assert_eq!(app.total(), 2, "only the two accepted requests reached the app");

    let text = gate.metrics().await;
    at_least(&text, "jwtgate_requests_total", &["route=\"", "outcome=\"forwarded\""], 2.0);
    at_least(&text, "jwtgate_requests_total", &["outcome=\"token_revoked\""], 2.0);
    at_least(&text, "jwtgate_requests_total", &["outcome=\"missing_token\""], 1.0);
    at_least(&text, "jwtgate_requests_total", &["outcome=\"store_unavailable\""], 1.0);
    at_least(&text, "jwtgate_requests_total", &["route=\"logout\""], 1.0);
    at_least(&text, "jwtgate_revocation_checks_total", &["source=\"cache\""], 2.0);
    at_least(&text, "jwtgate_revocation_checks_total", &["source=\"store_hit\""], 1.0);
    at_least(&text, "jwtgate_revocation_checks_total", &["source=\"store_miss\""], 2.0);
    at_least(&text, "jwtgate_store_errors_total", &[], 1.0);
    at_least(&text, "jwtgate_store_latency_seconds_bucket", &["le=\"+Inf\""], 3.0);
    at_least(&text, "jwtgate_store_latency_seconds_sum", &[], 0.0);
    at_least(&text, "jwtgate_store_latency_seconds_count", &[], 3.0);
    at_least(&text, "jwtgate_store_circuit_open", &[], 0.0);
    at_least(&text, "jwtgate_pubsub_messages_total", &[], 1.0);
    at_least(&text, "jwtgate_pubsub_reconnects_total", &[], 0.0);
    at_least(&text, "jwtgate_pubsub_connected", &[], 0.0);
    at_least(&text, "jwtgate_propagation_lag_seconds_count", &[], 1.0);
    at_least(&text, "jwtgate_logouts_total", &["kind=\"token\""], 1.0);
    assert!(text.contains("# TYPE jwtgate_store_latency_seconds histogram"), "{text}");
    assert!(text.contains("# TYPE jwtgate_propagation_lag_seconds histogram"), "{text}");
    for line in text.lines().filter(|l| l.starts_with("jwtgate_")) {
        assert!(!line.contains(&behind.jti_value()) && !line.contains("user-1"), "sub/jti in a label: {line}");
    }
}

/// Every replica that is subscribed must say so: the gauge is what an
/// alert on "replica not receiving revocations" watches. Several replicas
/// are started because the gauge is set by a background task at start-up.
#[tokio::test]
async fn pubsub_connected_reads_1_on_every_freshly_subscribed_replica() {
    const REPLICAS: usize = 8;
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let cfg = Cfg { heartbeat: Some("1h".into()), ..Cfg::new(&app).redis(&redis).admin() };
    let gates = futures_util::future::join_all((0..REPLICAS).map(|_| Gate::spawn(&cfg))).await;
    redis.await_subscribers("jwtgate:revocations", REPLICAS as i64).await;
    for (i, gate) in gates.iter().enumerate() {
        let text =
            eventually(Duration::from_secs(3), &format!("replica {i} reports jwtgate_pubsub_connected"), || async {
                let text = gate.metrics().await;
                (metric(&text, "jwtgate_pubsub_connected", &[]) == Some(1.0)).then_some(text)
            })
            .await;
        assert_eq!(metric(&text, "jwtgate_pubsub_reconnects_total", &[]), Some(0.0), "replica {i}");
    }
    // Control: the gauge does follow the subscription when it drops.
    redis.kill_pubsub_clients().await;
    redis.await_subscribers("jwtgate:revocations", REPLICAS as i64).await;
    let text = gates[0].metrics().await;
    assert!(metric(&text, "jwtgate_pubsub_reconnects_total", &[]).unwrap_or(0.0) >= 1.0, "{text}");
}
