//! Running jwtgate: [`start`] binds the listeners, builds the gate and its
//! revocation store, and hands back a [`Running`] instance whose addresses
//! are known. By concern: `accept` (connections, TLS, drain), `reload`
//! (swapping configs), `wiring` (what an instance is built from).

mod accept;
mod drain;
mod grpc;
mod reload;
mod wiring;

pub use accept::shutdown_signal;

use crate::config::{ConfigError, Overrides};
use crate::proxy::Role;
use crate::runtime::Compiled;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use tokio::task::{JoinHandle, JoinSet};

/// What [`start`] runs: a compiled config and, when it was read from a
/// file, where reloads read it again.
pub struct Config {
    compiled: Compiled,
    reload: Option<reload::Source>,
}

impl Config {
    /// Reads and compiles `path`; the instance reloads it on SIGHUP and
    /// (with `reload.watch`) when it changes, `overrides` winning each time.
    pub async fn from_file(path: &Path, overrides: Overrides) -> Result<Self, ConfigError> {
        let loaded = reload::Watched::before_load(path).await;
        let compiled = crate::runtime::load_file(path, &overrides)?;
        let loaded = loaded.add_tls(compiled.runtime.tls.as_ref());
        Ok(Self { compiled, reload: Some(reload::Source { path: path.to_path_buf(), overrides, loaded }) })
    }

    /// A config compiled by the caller (the demo, tests): never reloaded.
    pub fn fixed(compiled: Compiled) -> Self {
        Self { compiled, reload: None }
    }
}

/// Why an instance did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (forward-auth)")]
    ForwardAuthListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (admin)")]
    AdminListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The Redis client could not be built from the settings.
    #[error("revocation store")]
    Store(#[source] crate::revocation::StoreError),
    #[error("metrics recorder")]
    Metrics(#[source] crate::metrics::InstallError),
}

/// A started instance: serving on its addresses until its `shutdown`
/// future resolves, then draining.
pub struct Running {
    public: SocketAddr,
    admin: Option<SocketAddr>,
    forward_auth: Option<SocketAddr>,
    forward_auth_grpc: Option<SocketAddr>,
    tls: bool,
    served: JoinHandle<()>,
}

impl Running {
    /// The public listener's bound address (port 0 resolved).
    pub fn public_addr(&self) -> SocketAddr {
        self.public
    }

    /// The admin listener's bound address, when the config has `admin`.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The forward-auth (HTTP) listener's bound address, when configured.
    pub fn forward_auth_addr(&self) -> Option<SocketAddr> {
        self.forward_auth
    }

    /// The forward-auth gRPC (`Check`) listener's bound address, when
    /// configured.
    pub fn forward_auth_grpc_addr(&self) -> Option<SocketAddr> {
        self.forward_auth_grpc
    }

    /// The public listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Resolves once the instance has stopped: `shutdown` resolved, the
    /// connections drained, its background tasks (admin, reload,
    /// subscriber) ended.
    pub async fn stopped(self) {
        if let Err(err) = self.served.await {
            tracing::error!(error = %err, "the server task failed");
        }
    }
}

/// Starts jwtgate on `config`: JWKS keys loaded first (listening means
/// ready to verify), then the public listener, the gate, the admin
/// listener and the reload loop. Serves until `shutdown` resolves. Needs a
/// Tokio runtime.
pub async fn start(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<Running, StartError> {
    let Config { compiled: Compiled { start, runtime }, reload } = config;
    let mut tasks = JoinSet::new();
    // The recorder first: the subscriber sets gauges as soon as it starts.
    let metrics = start.admin.as_ref().map(|_| wiring::metrics(&mut tasks)).transpose()?;
    // SIGHUP handled from here on (its default action would end us).
    let hangup = reload.as_ref().and_then(|_| reload::hangup_signal());
    runtime.verifier.start_jwks().await;
    let listen = |source| StartError::Listen { addr: start.listen, source };
    let listener = accept::bind(start.listen, start.tls, Role::Proxy).await.map_err(listen)?;
    let public = listener.local_addr().map_err(listen)?;
    let authorizer = bind_forward_auth(start.forward_auth.http, Role::Authorize).await?;
    let forward_auth = authorizer.as_ref().map(|(_, local)| *local);
    let grpc_authorizer = bind_forward_auth(start.forward_auth.grpc, Role::AuthorizeGrpc).await?;
    let forward_auth_grpc = grpc_authorizer.as_ref().map(|(_, local)| *local);
    let gate = wiring::gate(runtime, &start, &mut tasks)?;
    let admin = match &start.admin {
        Some(settings) => Some(wiring::admin(settings, gate.clone(), metrics, &mut tasks).await?),
        None => None,
    };
    let tls = start.tls;
    if let Some(source) = reload {
        tasks.spawn(reload::run(gate.clone(), source, start, hangup));
    }
    // All listeners stop on `shutdown`, together.
    let (stop, stopping) = tokio::sync::watch::channel(());
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move { while stopping.changed().await.is_ok() {} }
    };
    let authorizing = authorizer
        .map(|(listener, _)| tokio::spawn(accept::serve(listener, gate.clone(), false, Role::Authorize, stopped())));
    let authorizing_grpc =
        grpc_authorizer.map(|(listener, _)| tokio::spawn(grpc::serve(listener, gate.clone(), stopped())));
    let public_stopped = stopped();
    let served = tokio::spawn(async move {
        let signal = async move {
            shutdown.await;
            drop(stop);
        };
        tokio::join!(signal, accept::serve(listener, gate, tls, Role::Proxy, public_stopped));
        for task in authorizing.into_iter().chain(authorizing_grpc) {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "the forward-auth listener task failed");
            }
        }
        tasks.shutdown().await;
    });
    Ok(Running { public, admin, forward_auth, forward_auth_grpc, tls, served })
}

/// Binds a forward-auth listener (HTTP or gRPC, by `role`) when its
/// address is configured.
async fn bind_forward_auth(
    addr: Option<SocketAddr>,
    role: Role,
) -> Result<Option<(tokio::net::TcpListener, SocketAddr)>, StartError> {
    let Some(addr) = addr else { return Ok(None) };
    let listen = |source| StartError::ForwardAuthListen { addr, source };
    let listener = accept::bind(addr, false, role).await.map_err(listen)?;
    let local = listener.local_addr().map_err(listen)?;
    Ok(Some((listener, local)))
}
