//! Hot reload: on SIGHUP, and when the file's content changes (polled every
//! `reload.poll_interval`; reading through the path follows the symlinks a
//! Kubernetes ConfigMap mount swaps atomically). A new config is parsed,
//! validated and compiled completely before it is swapped in; a bad one is
//! logged with file and line and the running config stays. Requests in
//! flight finish on the snapshot they started with.
//!
//! What a reload cannot change ([`StartSettings`]) is compared with the
//! settings the process started with, never with a previous file: a change
//! is warned about once per reload that still has it, and a file that
//! restores the started value is quiet again.

use crate::config::Overrides;
use crate::proxy::{Gate, Live};
use crate::runtime::{Compiled, ListenerTls, StartSettings};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where reloads read the config: the file, the command-line overrides
/// that keep winning over it, and what the running config was loaded from.
pub(super) struct Source {
    pub path: PathBuf,
    pub overrides: Overrides,
    pub loaded: Watched,
}

/// The SIGHUP stream (unix); install it early, before anything slow, so a
/// SIGHUP during start-up reloads instead of ending the process.
#[cfg(unix)]
pub(super) type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
pub(super) type Hangup = ();

pub(super) fn hangup_signal() -> Option<Hangup> {
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

/// Reloads on each trigger, forever. `source.loaded` is what the running
/// config was loaded from ([`Watched::before_load`] and
/// [`Watched::add_tls`]), so a change made while jwtgate was starting is
/// still seen; `started` the settings the process started with.
pub(super) async fn run(gate: Arc<Gate>, source: Source, started: StartSettings, mut hup: Option<Hangup>) {
    let Source { path, overrides, mut loaded } = source;
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
        if !by_signal && (current.config.is_none() || current == loaded) {
            continue;
        }
        loaded = current;
        let trigger = if by_signal { "SIGHUP" } else { "file change" };
        reload(&gate, &path, &overrides, &started, trigger).await;
    }
}

/// The contents whose change triggers a reload: the config file and, with
/// TLS, the certificate and key files the running config names (a
/// cert-manager renewal changes only those).
#[derive(PartialEq)]
pub(super) struct Watched {
    config: Option<Vec<u8>>,
    /// Certificate and key contents (empty without TLS).
    tls: Vec<Option<Vec<u8>>>,
}

impl Watched {
    /// The config file, read before it is loaded: a change after this
    /// point triggers a reload.
    pub async fn before_load(path: &Path) -> Self {
        Watched { config: tokio::fs::read(path).await.ok(), tls: Vec::new() }
    }

    /// Adds the certificate and key bytes the running config was built
    /// from (not read again: a renewal landing after the load is a change).
    pub fn add_tls(mut self, tls: Option<&ListenerTls>) -> Self {
        if let Some(t) = tls {
            self.tls = t.loaded.iter().map(|bytes| Some(bytes.clone())).collect();
        }
        self
    }
}

/// The files as they are now: the config, and the TLS files the running
/// config names.
async fn watched(gate: &Gate, path: &Path) -> Watched {
    let files = gate.live.load().rt.tls.as_ref().map(|t| [t.cert_file.clone(), t.key_file.clone()]);
    let mut now = Watched::before_load(path).await;
    if let Some(files) = files {
        for file in files {
            now.tls.push(tokio::fs::read(file).await.ok());
        }
    }
    now
}

async fn reload(gate: &Gate, path: &Path, overrides: &Overrides, started: &StartSettings, trigger: &'static str) {
    let failed = |error: &dyn std::fmt::Display| {
        metrics::counter!("jwtgate_config_reloads_total", "result" => "error").increment(1);
        tracing::error!(trigger, error = %error, "config reload failed; keeping the running config");
    };
    match crate::runtime::load_file(path, overrides) {
        Ok(compiled) if compiled.start.tls != started.tls => failed(&"turning `tls` on or off needs a restart"),
        Ok(Compiled { start, mut runtime }) => {
            let old = gate.live.load_full();
            runtime.verifier.adopt_jwks(&old.rt.verifier);
            runtime.verifier.start_jwks().await;
            for note in started.differences(&start) {
                tracing::warn!(setting = note, "changed in the file but fixed at start; restart to apply");
            }
            // The snapshot carries the revocation settings in force, not
            // the file's unapplied ones.
            (runtime.store, runtime.policy) = (started.store.clone(), started.policy.clone());
            gate.live.store(Arc::new(Live::new(runtime)));
            metrics::counter!("jwtgate_config_reloads_total", "result" => "ok").increment(1);
            tracing::info!(trigger, "config reloaded");
        }
        Err(err) => failed(&err),
    }
}
