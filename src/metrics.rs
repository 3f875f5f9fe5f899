//! Prometheus metrics (served on the admin listener only). Names are
//! `jwtgate_*`, units in the name; labels never carry `sub` or `jti`.
//!
//! | metric | labels |
//! |---|---|
//! | `jwtgate_requests_total` | `route`, `outcome` (`forwarded` or the refusal code) |
//! | `jwtgate_revocation_checks_total` | `source`: `cache`, `store_hit`, `store_miss` |
//! | `jwtgate_store_errors_total` | `op`, `kind`: `error`, `circuit_open` |
//! | `jwtgate_store_latency_seconds` | `op` (histogram) |
//! | `jwtgate_store_circuit_open` | gauge, 1 while the breaker is open |
//! | `jwtgate_store_circuit_opened_total` | |
//! | `jwtgate_pubsub_connected` | gauge |
//! | `jwtgate_pubsub_messages_total` / `jwtgate_pubsub_reconnects_total` | |
//! | `jwtgate_propagation_lag_seconds` | histogram: publish → applied here |
//! | `jwtgate_logouts_total` | `kind`: `token`, `subject`, `backchannel`, `admin` |
//! | `jwtgate_config_reloads_total` | `result`: `ok`, `error` |
//! | `jwtgate_tls_handshake_failures_total` | `reason`: `error`, `timeout` |
//! | `jwtgate_websocket_tunnels_total` / `jwtgate_websocket_tunnels_open` | counter / gauge |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::Mutex;

const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How often histogram samples are folded into their buckets. The recorder
/// keeps every sample until a render or `run_upkeep` drains it, so with
/// nobody scraping `/metrics` memory grew by each store call's sample
/// (found by `bench/soak.sh`: 16 MiB over a million uncached tokens).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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
    // Zero-valued series exist from the start, so dashboards and alerts see them.
    metrics::gauge!("jwtgate_store_circuit_open").set(0.0);
    metrics::counter!("jwtgate_pubsub_reconnects_total").increment(0);
    metrics::counter!("jwtgate_pubsub_messages_total").increment(0);
    metrics::counter!("jwtgate_store_circuit_opened_total").increment(0);
    metrics::counter!("jwtgate_websocket_tunnels_total").increment(0);
    metrics::gauge!("jwtgate_websocket_tunnels_open").set(0.0);
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

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("jwtgate_requests_total", "Requests by route and outcome");
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
}
