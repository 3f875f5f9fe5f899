//! Listener, connections and shutdown. One port serves HTTP/1.1 and
//! HTTP/2: with prior knowledge (h2c), or over TLS chosen by ALPN when the
//! config has `tls`; HTTP/1.1 connections may switch to WebSocket. On
//! SIGTERM/SIGINT the listener closes and in-flight requests get `DRAIN` to
//! finish.

use crate::config::Overrides;
use crate::proxy::{Gate, Live};
use crate::revocation::subscriber::Subscriber;
use crate::revocation::{keys, MemoryStore, RedisStore, RevocationStore, Revocations};
use crate::runtime::{Runtime, StoreSettings};
use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const DRAIN: Duration = Duration::from_secs(30);
/// Slow-loris bound: a client must send its request head within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Most header fields a request may carry, on both protocols (hyper's h1
/// default, Envoy's too); one more is answered 431. hyper counts every
/// HTTP/1.1 header line; h2 has no such limit, so the gate counts HTTP/2
/// fields itself, all `cookie` fields as one (`proxy::protocol`).
pub const MAX_HEADER_FIELDS: usize = 100;
/// A request's header list must stay below this many bytes, measured as
/// RFC 9113 §6.5.2 does (name + value + 32 per field, the request line as
/// pseudo-headers), on both protocols: 431 otherwise. It is h2's
/// `SETTINGS_MAX_HEADER_LIST_SIZE` (h2 measures the same way and answers
/// 431 itself, from the first frame) and the HTTP/1.1 read buffer, so a
/// raw head that does not fit in it is refused by hyper (431) before it is
/// parsed; the gate measures the HTTP/1.1 heads hyper parsed (hyper's
/// buffer bound is approximate: a read may overshoot it). hyper's defaults
/// were 16 KiB (h2) and ~400 KiB (h1); 64 KiB holds a 100-field head of
/// large cookies and an 8 KiB token.
pub const MAX_HEADER_LIST_BYTES: usize = 64 * 1024;

/// Builds the shared state: revocation store (and, for Redis, the pub/sub
/// subscriber task), local cache, upstream pool. Needs a Tokio runtime.
pub fn build_gate(runtime: Runtime) -> Result<Arc<Gate>, String> {
    let policy = runtime.policy.clone();
    let channel = keys::channel(&policy.key_prefix);
    let revocations = match (RedisStore::from_settings(&runtime.store, channel.clone())?, &runtime.store) {
        (Some(store), StoreSettings::Redis { timeout, heartbeat, ping_timeout, .. }) => {
            let store = Arc::new(store);
            let warming = store.clone();
            tokio::spawn(async move { warming.warm_up().await });
            let shared: Arc<dyn RevocationStore> = store.clone();
            let revocations = Arc::new(Revocations::new(shared, policy, true));
            let subscriber = Subscriber {
                store,
                channel,
                cache: revocations.cache().clone(),
                heartbeat: *heartbeat,
                ping_timeout: *ping_timeout,
                deadline: *timeout,
            };
            tokio::spawn(subscriber.run());
            revocations
        }
        _ => Arc::new(Revocations::new(Arc::new(MemoryStore::new()), policy, false)),
    };
    Ok(Arc::new(Gate { live: ArcSwap::from_pointee(Live::new(runtime)), revocations }))
}

/// Binds the public listener and announces it on stdout (one line, for
/// scripts and tests: `jwtgate listening on http://ADDR`, or `https://`).
pub async fn bind(addr: SocketAddr, tls: bool) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let scheme = if tls { "https" } else { "http" };
    println!("jwtgate listening on {scheme}://{local}");
    tracing::info!(%local, tls, "listening");
    Ok(listener)
}

/// Serves until `shutdown` resolves, then drains. With TLS (decided by the
/// config at start), each connection's handshake runs in its own task under
/// `tls.handshake_timeout`, with the certificate of the config snapshot
/// current at accept time, so a renewed certificate serves new connections.
pub async fn serve(listener: TcpListener, gate: Arc<Gate>, shutdown: impl Future<Output = ()>) {
    let tls = gate.live.load().rt.tls.is_some();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // `max_headers` is left at hyper's default, MAX_HEADER_FIELDS (100):
        // setting it moves the parser's header array to the heap, an
        // allocation per request.
        .max_buf_size(MAX_HEADER_LIST_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .max_header_list_size(MAX_HEADER_LIST_BYTES as u32);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let gate = gate.clone();
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let service = {
                let gate = gate.clone();
                service_fn(move |req| gate.clone().handle(req, client))
            };
            let served = if tls {
                let Some(stream) = tls_handshake(&gate, stream, client).await else { return };
                watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned()).await
            } else {
                watcher.watch(builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned()).await
            };
            if let Err(err) = served {
                tracing::debug!(error = %err, %client, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down; draining connections");
    let started = tokio::time::Instant::now();
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("drain timed out; closing remaining connections");
    }
    // WebSocket tunnels left their HTTP connection behind: they get what
    // is left of the drain time to end by themselves.
    let left = crate::proxy::drain_websockets(DRAIN.saturating_sub(started.elapsed())).await;
    if left > 0 {
        tracing::warn!(tunnels = left, "drain timed out; closing open websocket tunnels");
    }
}

/// The server side of a TLS handshake, bounded in time; `None` when it
/// failed (logged at debug: scanners and plain-HTTP clients are routine).
async fn tls_handshake(
    gate: &Gate,
    stream: tokio::net::TcpStream,
    client: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let (config, timeout) = {
        let live = gate.live.load();
        let tls = live.rt.tls.as_ref()?;
        (tls.config.clone(), tls.handshake_timeout)
    };
    match tokio::time::timeout(timeout, tokio_rustls::TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            metrics::counter!("jwtgate_tls_handshake_failures_total", "reason" => "error").increment(1);
            tracing::debug!(%client, error = %err, "TLS handshake failed");
            None
        }
        Err(_) => {
            metrics::counter!("jwtgate_tls_handshake_failures_total", "reason" => "timeout").increment(1);
            tracing::debug!(%client, "TLS handshake timed out");
            None
        }
    }
}

/// The SIGHUP stream (unix); install it early, before anything slow, so a
/// SIGHUP during start-up reloads instead of ending the process.
#[cfg(unix)]
pub type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
pub type Hangup = ();

pub fn hangup_signal() -> Option<Hangup> {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGHUP; reload on file change only");
            None
        }
    }
    #[cfg(not(unix))]
    None
}

/// Hot reload: on SIGHUP, and when the file's content changes (polled every
/// `reload.poll_interval`; reading through the path follows the symlinks a
/// Kubernetes ConfigMap mount swaps atomically). A new config is parsed,
/// validated and compiled completely before it is swapped in; a bad one is
/// logged with file and line and the running config stays. Requests in
/// flight finish on the snapshot they started with.
///
/// `last` is what the running config was loaded from ([`Watched::before_load`]
/// and [`Watched::add_tls`]), so a change made while jwtgate was starting
/// is still seen.
pub async fn reload_loop(
    gate: Arc<Gate>,
    path: PathBuf,
    overrides: Overrides,
    mut hup: Option<Hangup>,
    mut last: Watched,
) {
    loop {
        let settings = gate.live.load().rt.reload.clone();
        let hangup = async {
            #[cfg(unix)]
            if let Some(hup) = hup.as_mut() {
                hup.recv().await;
                return;
            }
            std::future::pending::<()>().await
        };
        let by_signal = tokio::select! {
            () = hangup => true,
            () = tokio::time::sleep(settings.poll_interval), if settings.watch => false,
        };
        let current = watched(&gate, &path).await;
        if !by_signal && (current.config.is_none() || current == last) {
            continue;
        }
        last = current;
        reload(&gate, &path, &overrides, if by_signal { "SIGHUP" } else { "file change" }).await;
    }
}

/// The contents whose change triggers a reload: the config file and, with
/// TLS, the certificate and key files the running config names (a
/// cert-manager renewal changes only those).
#[derive(PartialEq)]
pub struct Watched {
    config: Option<Vec<u8>>,
    /// Certificate and key contents (empty without TLS).
    tls: Vec<Option<Vec<u8>>>,
}

impl Watched {
    /// The config file, read before it is loaded: a change after this
    /// point triggers a reload.
    pub async fn before_load(path: &std::path::Path) -> Self {
        Watched { config: tokio::fs::read(path).await.ok(), tls: Vec::new() }
    }

    /// Adds the certificate and key bytes the running config was built
    /// from (not read again: a renewal landing after the load is a change).
    pub fn add_tls(mut self, tls: Option<&crate::runtime::ListenerTls>) -> Self {
        if let Some(t) = tls {
            self.tls = t.loaded.iter().map(|bytes| Some(bytes.clone())).collect();
        }
        self
    }
}

/// The files as they are now: the config, and the TLS files the running
/// config names.
async fn watched(gate: &Gate, path: &std::path::Path) -> Watched {
    let files = gate.live.load().rt.tls.as_ref().map(|t| [t.cert_file.clone(), t.key_file.clone()]);
    let mut now = Watched::before_load(path).await;
    if let Some(files) = files {
        for file in files {
            now.tls.push(tokio::fs::read(file).await.ok());
        }
    }
    now
}

/// Loads every `jwks_url` source once (concurrently, each bounded by its
/// fetch timeout) and starts its refresh task. Sources already running are
/// left alone.
pub async fn start_jwks(runtime: &Runtime) {
    futures_util::future::join_all(runtime.verifier.jwks_sources().map(|s| s.start())).await;
}

async fn reload(gate: &Gate, path: &std::path::Path, overrides: &Overrides, trigger: &'static str) {
    match crate::config::load_file_with(path, overrides) {
        Ok(runtime) if gate.live.load().rt.tls.is_some() != runtime.tls.is_some() => {
            metrics::counter!("jwtgate_config_reloads_total", "result" => "error").increment(1);
            let error = "turning `tls` on or off needs a restart";
            tracing::error!(trigger, error, "config reload failed; keeping the running config");
        }
        Ok(mut runtime) => {
            let old = gate.live.load_full();
            runtime.verifier.adopt_jwks(&old.rt.verifier);
            start_jwks(&runtime).await;
            for note in fixed_at_start(&old.rt, &runtime) {
                tracing::warn!(setting = note, "changed in the file but fixed at start; restart to apply");
            }
            gate.live.store(Arc::new(Live::new(runtime)));
            metrics::counter!("jwtgate_config_reloads_total", "result" => "ok").increment(1);
            tracing::info!(trigger, "config reloaded");
        }
        Err(err) => {
            metrics::counter!("jwtgate_config_reloads_total", "result" => "error").increment(1);
            tracing::error!(trigger, error = %err, "config reload failed; keeping the running config");
        }
    }
}

/// Settings a reload cannot change: sockets and the revocation store.
fn fixed_at_start(old: &Runtime, new: &Runtime) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if old.listen != new.listen {
        notes.push("listen");
    }
    if format!("{:?}", old.store) != format!("{:?}", new.store) {
        notes.push("revocation store");
    }
    if format!("{:?}", old.policy) != format!("{:?}", new.policy) {
        notes.push("revocation policy and cache");
    }
    if old.admin.as_ref().map(|a| a.listen) != new.admin.as_ref().map(|a| a.listen) {
        notes.push("admin.listen");
    }
    notes
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
