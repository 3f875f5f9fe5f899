//! Prometheus metrics (served on the admin listener only). Names are
//! `jwtgate_*` (and the standard `process_*`), units in the name; labels
//! never carry `sub` or `jti`. Every series with a known label set exists
//! at 0 from the start (per route once its config snapshot is live), so a
//! dashboard or an alert sees it before the first event.
//!
//! | metric | labels |
//! |---|---|
//! | `jwtgate_requests_total` | `route`, `outcome` ([`Outcome`]) |
//! | `jwtgate_refusals_total` | `route`, `reason` (the refusal code of the 4xx/501 body) |
//! | `jwtgate_request_duration_seconds` | `route`, `outcome`, `status_class`: histogram, until the response head |
//! | `jwtgate_upstream_duration_seconds` | `route`: histogram, request sent → upstream response head |
//! | `jwtgate_revocation_checks_total` | `source`: `cache`, `store_hit`, `store_miss` |
//! | `jwtgate_store_errors_total` | `op`: `fetch`, `write`; `kind`: `error`, `circuit_open` |
//! | `jwtgate_store_latency_seconds` | `op` (histogram) |
//! | `jwtgate_store_circuit_open` | gauge, 1 while the breaker is open |
//! | `jwtgate_store_circuit_opened_total` | |
//! | `jwtgate_pubsub_connected` | gauge |
//! | `jwtgate_pubsub_messages_total` / `jwtgate_pubsub_reconnects_total` | |
//! | `jwtgate_propagation_lag_seconds` | histogram: publish → applied here |
//! | `jwtgate_logouts_total` | `kind`: `token`, `subject`, `backchannel`, `admin` |
//! | `jwtgate_config_reloads_total` | `result`: `ok`, `error` |
//! | `jwtgate_jwks_fetches_total` / `jwtgate_jwks_fetch_errors_total` / `jwtgate_jwks_keys` | `source` (+ `result`) |
//! | `jwtgate_discovery_fetches_total` | `source`, `result` (`ok`, `error`, `refused`) |
//! | `jwtgate_tls_handshake_failures_total` | `reason`: `error`, `timeout` |
//! | `jwtgate_websocket_tunnels_total` / `jwtgate_websocket_tunnels_open` | counter / gauge |
//! | `jwtgate_websocket_tunnels_closed_total` | `reason`: `closed`, `revoked`, `expired`, `idle` |
//! | `jwtgate_build_info` | `version`, `commit`: gauge, 1 |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds` | refreshed on each scrape |

pub mod process;
mod route;

pub use route::{status_class, Ended, Outcome, RouteMetrics};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::Mutex;

const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How often histogram samples are folded into their buckets. The recorder
/// keeps every sample until a render or `run_upkeep` drains it, so with
/// nobody scraping `/metrics` memory grew by each store call's sample
/// (found by `bench/soak.sh`: 16 MiB over a million uncached tokens).
/// Every request now records two samples (request and upstream duration):
/// at 30k requests/s, 5 s between drains can hold ~300k of them (RSS after
/// a bench run was 18.7 MiB against 14.2 before them), so they are drained
/// each second.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("the installed recorder's lock is poisoned")]
    Poisoned,
    #[error("cannot build the recorder")]
    Build(#[source] metrics_exporter_prometheus::BuildError),
}

/// Installs the global recorder, once per process (a second instance
/// started in the same process shares it); returns the handle `/metrics`
/// renders. Run [`upkeep`] beside it.
pub fn install() -> Result<PrometheusHandle, InstallError> {
    // A std Mutex: taken once per instance start, never across an await.
    static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = INSTALLED.lock().map_err(|_| InstallError::Poisoned)?;
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .map_err(InstallError::Build)?
        .install_recorder()
        .map_err(InstallError::Build)?;
    describe();
    zero_series();
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Folds histogram samples into their buckets every `UPKEEP_EVERY`,
/// forever; spawn it.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

/// The series with a fixed label set, at 0 (route series are registered
/// with their config snapshot, see [`RouteMetrics`]).
fn zero_series() {
    use metrics::{counter, gauge, histogram};
    let commit = option_env!("JWTGATE_COMMIT").unwrap_or("unknown");
    gauge!("jwtgate_build_info", "version" => env!("CARGO_PKG_VERSION"), "commit" => commit).set(1.0);
    gauge!("jwtgate_store_circuit_open").set(0.0);
    gauge!("jwtgate_pubsub_connected").set(0.0);
    gauge!("jwtgate_websocket_tunnels_open").set(0.0);
    for name in [
        "jwtgate_pubsub_reconnects_total",
        "jwtgate_pubsub_messages_total",
        "jwtgate_store_circuit_opened_total",
        "jwtgate_websocket_tunnels_total",
    ] {
        counter!(name).increment(0);
    }
    for source in ["cache", "store_hit", "store_miss"] {
        counter!("jwtgate_revocation_checks_total", "source" => source).increment(0);
    }
    for op in ["fetch", "write"] {
        for kind in ["error", "circuit_open"] {
            counter!("jwtgate_store_errors_total", "op" => op, "kind" => kind).increment(0);
        }
        let _ = histogram!("jwtgate_store_latency_seconds", "op" => op);
    }
    let _ = histogram!("jwtgate_propagation_lag_seconds");
    for kind in ["token", "subject", "backchannel", "admin"] {
        counter!("jwtgate_logouts_total", "kind" => kind).increment(0);
    }
    for result in ["ok", "error"] {
        counter!("jwtgate_config_reloads_total", "result" => result).increment(0);
    }
    for reason in ["error", "timeout"] {
        counter!("jwtgate_tls_handshake_failures_total", "reason" => reason).increment(0);
    }
    for reason in ["closed", "revoked", "expired", "idle"] {
        counter!("jwtgate_websocket_tunnels_closed_total", "reason" => reason).increment(0);
    }
    process::refresh();
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("jwtgate_requests_total", "Requests by route and outcome");
    describe_counter!("jwtgate_refusals_total", "Refused requests by route and reason");
    describe_histogram!(
        "jwtgate_request_duration_seconds",
        Unit::Seconds,
        "Request arrival to response head, by route, outcome and status class"
    );
    describe_histogram!("jwtgate_upstream_duration_seconds", Unit::Seconds, "Request sent to upstream response head");
    describe_gauge!("jwtgate_build_info", "1, labelled with the running version and commit");
    describe_counter!("jwtgate_jwks_fetches_total", "JWK Set fetches by source and result");
    describe_counter!("jwtgate_jwks_fetch_errors_total", "Failed JWK Set fetches by source");
    describe_gauge!("jwtgate_jwks_keys", "Keys in the last good JWK Set, by source");
    describe_counter!("jwtgate_discovery_fetches_total", "OIDC discovery document fetches by source and result");
    describe_counter!("jwtgate_revocation_checks_total", "Revocation checks by answer source");
    describe_counter!("jwtgate_store_errors_total", "Revocation store failures");
    describe_histogram!("jwtgate_store_latency_seconds", Unit::Seconds, "Revocation store call latency");
    describe_gauge!("jwtgate_store_circuit_open", "1 while the store circuit breaker is open");
    describe_counter!("jwtgate_store_circuit_opened_total", "Times the store circuit opened");
    describe_gauge!("jwtgate_pubsub_connected", "1 while subscribed to revocation announcements");
    describe_counter!("jwtgate_pubsub_messages_total", "Revocation announcements received");
    describe_counter!("jwtgate_pubsub_reconnects_total", "Revocation subscription losses");
    describe_histogram!("jwtgate_propagation_lag_seconds", Unit::Seconds, "Publish-to-apply delay of revocations");
    describe_counter!("jwtgate_logouts_total", "Revocations written, by kind");
    describe_counter!("jwtgate_config_reloads_total", "Config reloads, by result");
    describe_counter!("jwtgate_tls_handshake_failures_total", "TLS handshakes that failed or timed out");
    describe_counter!("jwtgate_websocket_tunnels_total", "WebSocket tunnels opened");
    describe_gauge!("jwtgate_websocket_tunnels_open", "WebSocket tunnels open now");
    describe_counter!("jwtgate_websocket_tunnels_closed_total", "WebSocket tunnels closed, by why");
    process::describe();
}
