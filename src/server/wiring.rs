//! What a running instance is made of, built once at start: the gate with
//! its revocation state (store, local cache and, for Redis, the warm-up and
//! the pub/sub subscriber), the admin listener and the metrics recorder's
//! upkeep. Background tasks go into the instance's task set, which ends
//! them when the instance stops.

use super::StartError;
use crate::proxy::{Gate, Live};
use crate::revocation::subscriber::Subscriber;
use crate::revocation::{keys, MemoryStore, Policy, RedisStore, RevocationStore, Revocations, StoreSettings};
use crate::runtime::{AdminSettings, Runtime, StartSettings};
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinSet;

/// The gate serving `runtime`, with the revocation state `start` asks for.
pub(super) fn gate(runtime: Runtime, start: &StartSettings, tasks: &mut JoinSet<()>) -> Result<Arc<Gate>, StartError> {
    let revocations = revocations(&start.store, start.policy.clone(), tasks)?;
    Ok(Arc::new(Gate { live: ArcSwap::from_pointee(Live::new(runtime)), revocations }))
}

/// Cache + store: the memory store, or Redis with the subscriber that keeps
/// the cache current (the cache stays off until it reports in).
fn revocations(store: &StoreSettings, policy: Policy, tasks: &mut JoinSet<()>) -> Result<Arc<Revocations>, StartError> {
    let channel = keys::channel(&policy.key_prefix);
    let redis = RedisStore::from_settings(store, channel.clone()).map_err(StartError::Store)?;
    let (Some(redis), StoreSettings::Redis { timeout, heartbeat, ping_timeout, .. }) = (redis, store) else {
        return Ok(Arc::new(Revocations::new(Arc::new(MemoryStore::new()), policy, false)));
    };
    let redis = Arc::new(redis);
    let warming = redis.clone();
    tasks.spawn(async move { warming.warm_up().await });
    let shared: Arc<dyn RevocationStore> = redis.clone();
    let revocations = Arc::new(Revocations::new(shared, policy, true));
    let subscriber = Subscriber {
        store: redis,
        channel,
        cache: revocations.cache().clone(),
        heartbeat: *heartbeat,
        ping_timeout: *ping_timeout,
        deadline: *timeout,
    };
    tasks.spawn(subscriber.run());
    Ok(revocations)
}

/// The metrics recorder (installed once per process) with its upkeep task.
pub(super) fn metrics(tasks: &mut JoinSet<()>) -> Result<PrometheusHandle, StartError> {
    let handle = crate::metrics::install().map_err(StartError::Metrics)?;
    tasks.spawn(crate::metrics::upkeep(handle.clone()));
    Ok(handle)
}

/// Binds the admin listener and serves it in the background; `metrics`
/// renders `/metrics`.
pub(super) async fn admin(
    settings: &AdminSettings,
    gate: Arc<Gate>,
    metrics: Option<PrometheusHandle>,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, StartError> {
    let bound = tokio::net::TcpListener::bind(settings.listen).await;
    let admin_listen = |source| StartError::AdminListen { addr: settings.listen, source };
    let listener = bound.map_err(admin_listen)?;
    let local = listener.local_addr().map_err(admin_listen)?;
    let admin = Arc::new(crate::admin::Admin::new(gate, settings, metrics));
    tasks.spawn(crate::admin::serve(listener, admin));
    Ok(local)
}
