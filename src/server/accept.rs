//! The public listener: accepting connections, HTTP/1.1 and HTTP/2 on one
//! port (with prior knowledge, h2c, or over TLS chosen by ALPN when the
//! config has `tls`; HTTP/1.1 connections may switch to WebSocket), and the
//! drain: when `shutdown` resolves the listener closes and in-flight
//! requests get `DRAIN` to finish.

use super::drain::{Drain, Watch};
use crate::proxy::{AffinityDriver, Downstream, Gate, Pinned, Role, MAX_HEADER_LIST_BYTES};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

pub(super) const DRAIN: Duration = Duration::from_secs(30);
/// Slow-loris bound: a client must send its request head within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Binds a listener of `role` (logged; `cli` announces it on stdout).
pub(super) async fn bind(addr: SocketAddr, tls: bool, role: Role) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    match role {
        Role::Proxy => tracing::info!(%local, tls, "listening"),
        Role::Authorize | Role::AuthorizeGrpc => tracing::info!(%local, "forward-auth listening"),
    }
    Ok(listener)
}

/// Serves until `shutdown` resolves, then drains. With TLS (decided by the
/// config at start), each connection's handshake runs in its own task under
/// `tls.handshake_timeout`, with the certificate of the config snapshot
/// current at accept time, so a renewed certificate serves new connections.
/// The forward-auth listener is served the same way, in `Role::Authorize`
/// and without TLS.
pub(super) async fn serve(
    listener: TcpListener,
    gate: Arc<Gate>,
    tls: bool,
    role: Role,
    shutdown: impl Future<Output = ()>,
) {
    let builder = Arc::new(connection_builder());
    let drain = Drain::new();
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
        let accepted = Accepted { stream, client, tls, role };
        tokio::spawn(connection(gate.clone(), builder.clone(), drain.watch(), accepted));
    }
    drop(listener);
    finish(drain).await;
}

/// HTTP/1.1 and HTTP/2 with jwtgate's limits.
fn connection_builder() -> auto::Builder<TokioExecutor> {
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
    builder
}

/// An accepted connection and how it is served.
struct Accepted {
    stream: TcpStream,
    client: SocketAddr,
    tls: bool,
    role: Role,
}

/// One client connection, from the TLS handshake (with `tls`) to its end.
async fn connection(gate: Arc<Gate>, builder: Arc<auto::Builder<TokioExecutor>>, watch: Watch, accepted: Accepted) {
    let Accepted { stream, client, tls, role } = accepted;
    let pinned = Pinned::default();
    let service = {
        let downstream = Arc::new(Downstream::new(gate.clone(), client, pinned.clone(), role));
        service_fn(move |req| downstream.clone().handle(req))
    };
    let driver = AffinityDriver::new(pinned.clone());
    let served = if tls {
        let Some(stream) = tls_handshake(&gate, stream, client).await else { return };
        let serving = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        with_driver(watch.serve(serving), driver).await
    } else {
        let serving = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        with_driver(watch.serve(serving), driver).await
    };
    // Its upstream connection is kept for the next client connection.
    pinned.release();
    if let Err(err) = served {
        tracing::debug!(error = %err, %client, "connection ended with an error");
    }
}

/// Serves a client connection and drives its pinned upstream connection
/// in the same task: a request's round trip wakes no other task.
async fn with_driver<F: Future>(serving: F, driver: AffinityDriver) -> F::Output {
    tokio::select! {
        biased;
        served = serving => served,
        never = driver => match never {},
    }
}

/// Lets open connections finish within `DRAIN`, WebSocket tunnels with
/// what is left of it.
async fn finish(drain: Drain) {
    tracing::info!(connections = drain.open(), "shutting down; draining connections");
    let started = tokio::time::Instant::now();
    if tokio::time::timeout(DRAIN, drain.shutdown()).await.is_err() {
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
    stream: TcpStream,
    client: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
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
