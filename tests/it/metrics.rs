//! Prometheus metrics on the admin listener: after a small run covering
//! each outcome, every documented series is present with plausible values.

use crate::support::gate::empty;
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
    at_least(&text, "jwtgate_requests_total", &["outcome=\"refused\""], 3.0);
    at_least(&text, "jwtgate_refusals_total", &["reason=\"token_revoked\""], 2.0);
    at_least(&text, "jwtgate_refusals_total", &["reason=\"missing_token\""], 1.0);
    at_least(&text, "jwtgate_requests_total", &["outcome=\"store_unavailable\""], 1.0);
    at_least(&text, "jwtgate_requests_total", &["route=\"logout\"", "outcome=\"logged_out\""], 1.0);
    assert_eq!(metric(&text, "jwtgate_requests_total", &["route=\"logout\"", "outcome=\"forwarded\""]), Some(0.0));
    let forwarded = ["outcome=\"forwarded\"", "status_class=\"2xx\"", "le=\"+Inf\""];
    at_least(&text, "jwtgate_request_duration_seconds_bucket", &forwarded, 2.0);
    let unavailable = ["outcome=\"store_unavailable\"", "status_class=\"5xx\"", "le=\"+Inf\""];
    at_least(&text, "jwtgate_request_duration_seconds_bucket", &unavailable, 1.0);
    at_least(&text, "jwtgate_upstream_duration_seconds_count", &[], 2.0);
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

/// Right after start, before any request: every counter with a known label
/// set, per route, reads 0, and the histograms are there (empty), so a
/// dashboard or a `rate()` alert has a series from the first scrape.
#[tokio::test]
async fn right_after_start_every_known_series_exists_at_zero() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let routes =
        "\n  - match: { path_prefix: /public }\n    auth: none\n  - match: { path_prefix: /api }\n    auth: required\n";
    let gate = Gate::spawn(&Cfg::new(&app).redis(&redis).admin().routes(routes)).await;
    let text = gate.metrics().await;
    for route in ["prefix:/public", "prefix:/api", "default", "logout", "unmatched"] {
        let route = format!("route=\"{route}\"");
        for outcome in ["forwarded", "refused", "logged_out", "store_unavailable", "upstream_error", "upstream_timeout"]
        {
            let outcome = format!("outcome=\"{outcome}\"");
            assert_eq!(metric(&text, "jwtgate_requests_total", &[&route, &outcome]), Some(0.0), "{route} {outcome}");
        }
        for reason in ["missing_token", "token_revoked", "invalid_signature", "forbidden", "ambiguous_path"] {
            let reason = format!("reason=\"{reason}\"");
            assert_eq!(metric(&text, "jwtgate_refusals_total", &[&route, &reason]), Some(0.0), "{route} {reason}");
        }
        let head = [route.as_str(), "outcome=\"forwarded\"", "status_class=\"2xx\"", "le=\"+Inf\""];
        assert_eq!(metric(&text, "jwtgate_request_duration_seconds_bucket", &head), Some(0.0), "{route}");
        assert_eq!(metric(&text, "jwtgate_upstream_duration_seconds_count", &[&route]), Some(0.0), "{route}");
    }
    for (name, labels) in [
        ("jwtgate_revocation_checks_total", "source=\"store_miss\""),
        ("jwtgate_store_errors_total", "kind=\"circuit_open\""),
        ("jwtgate_logouts_total", "kind=\"backchannel\""),
        ("jwtgate_config_reloads_total", "result=\"error\""),
        ("jwtgate_tls_handshake_failures_total", "reason=\"timeout\""),
        ("jwtgate_store_latency_seconds_count", "op=\"write\""),
        ("jwtgate_propagation_lag_seconds_count", ""),
        ("jwtgate_websocket_tunnels_total", ""),
    ] {
        assert_eq!(metric(&text, name, &[labels]), Some(0.0), "{name}{{{labels}}}\n{text}");
    }
    assert!(text.contains("# TYPE jwtgate_request_duration_seconds histogram"), "{text}");
    let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
    assert_eq!(metric(&text, "jwtgate_build_info", &[&version, "commit=\""]), Some(1.0), "{text}");
    // Process metrics: plausible for a live sidecar.
    let rss = metric(&text, "process_resident_memory_bytes", &[]).unwrap_or(0.0);
    assert!(rss > 1e6 && rss < 1e9, "resident memory {rss}");
    assert!(metric(&text, "process_open_fds", &[]).unwrap_or(0.0) >= 3.0, "{text}");
    assert!(metric(&text, "process_cpu_seconds_total", &[]).is_some_and(|v| v >= 0.0), "{text}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let started = metric(&text, "process_start_time_seconds", &[]).unwrap_or(0.0);
    assert!((now - started).abs() < 120.0, "start time {started} vs now {now}");

    // Positive control: the zeros move.
    assert_eq!(gate.get("/api/x", &token::mint()).await.status, 200);
    assert_eq!(gate.get_anon("/api/x").await.status, 401);
    let text = gate.metrics().await;
    let api = "route=\"prefix:/api\"";
    assert_eq!(metric(&text, "jwtgate_requests_total", &[api, "outcome=\"forwarded\""]), Some(1.0), "{text}");
    assert_eq!(metric(&text, "jwtgate_refusals_total", &[api, "reason=\"missing_token\""]), Some(1.0), "{text}");
    assert_eq!(metric(&text, "jwtgate_upstream_duration_seconds_count", &[api]), Some(1.0), "{text}");
    assert_eq!(app.seen("/api/x"), 1);
}

/// `admin.metrics_auth: none` opens `GET /metrics` only: the revocation
/// API still needs the token, and the public listener never serves either.
#[tokio::test]
async fn metrics_auth_none_opens_metrics_and_nothing_else() {
    let app = Upstream::spawn().await;
    let cfg = Cfg::new(&app).admin();
    let open = Gate::spawn_yaml(&cfg.yaml().replace("admin:\n", "admin:\n  metrics_auth: none\n")).await;
    let closed = Gate::spawn(&cfg).await;
    // admin_req carries no credentials.
    let anonymous = |gate: &Gate, method: &str, path: &str| gate.admin_req(method, path).body(empty()).unwrap();
    let rsp = open.send(anonymous(&open, "GET", "/metrics")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert!(rsp.text().contains("jwtgate_requests_total"), "{}", rsp.text());
    for (method, path) in
        [("GET", "/revocations?iss=x&jti=y"), ("DELETE", "/revocations?iss=x&jti=y"), ("POST", "/revocations")]
    {
        assert_eq!(open.send(anonymous(&open, method, path)).await.status, 401, "{method} {path} stays closed");
    }
    assert_eq!(open.get_anon("/metrics").await.status, 401, "the public listener proxies /metrics like any path");
    assert_eq!(app.seen("/metrics"), 0);
    // The default keeps /metrics behind the token; with it, 200.
    assert_eq!(closed.send(anonymous(&closed, "GET", "/metrics")).await.status, 401);
    assert!(closed.metrics().await.contains("jwtgate_requests_total"));
}
