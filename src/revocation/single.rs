//! One Redis server, reached through redis-rs's `ConnectionManager` (one
//! multiplexed connection, re-established by the manager after an I/O
//! error), and a fresh manager for a half-open probe of the circuit.
//!
//! Why a fresh manager. The manager keeps its connection as a shared future
//! that resolves once (redis-rs 1.8 `aio/connection_manager.rs`,
//! `Internals::connection`). `send_packed_command` awaits the future it
//! finds; one that already failed answers at once with its old error, and
//! only then does `reconnect_if_io_error!` swap in and spawn a new attempt.
//! While the circuit is open no command is sent, so the probe would find the
//! reconnect that failed while Redis was down, get its `Connection refused`
//! although Redis answers again, and keep the circuit open for one more
//! cool-down. A failure that is not an I/O error (`WRONGPASS` during the
//! handshake) is never replaced at all. A probe is rare (one per cool-down,
//! only while the circuit is open), so when the last command failed it gets
//! a manager of its own, whose first command makes a real connection
//! attempt.

use super::StoreError;
use arc_swap::ArcSwap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct Single {
    client: redis::Client,
    config: ConnectionManagerConfig,
    current: ArcSwap<Managed>,
}

/// A manager and whether its last command was answered.
pub struct Managed {
    pub conn: ConnectionManager,
    last_ok: AtomicBool,
}

impl Managed {
    /// Notes how a command on this manager ended.
    pub fn record<T, E>(&self, answer: &Result<T, E>) {
        self.last_ok.store(answer.is_ok(), Ordering::Release);
    }
}

impl Single {
    /// Prepares the manager without connecting (the first command does).
    pub fn new(client: redis::Client, config: ConnectionManagerConfig) -> Result<Self, StoreError> {
        let first = Self::manager(&client, &config)?;
        Ok(Self { client, config, current: ArcSwap::from_pointee(first) })
    }

    fn manager(client: &redis::Client, config: &ConnectionManagerConfig) -> Result<Managed, StoreError> {
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).map_err(StoreError::setup)?;
        Ok(Managed { conn, last_ok: AtomicBool::new(false) })
    }

    /// The manager to send a command through; pass the answer to `record`.
    pub fn current(&self) -> Arc<Managed> {
        self.current.load_full()
    }

    /// Before a half-open probe: unless the current manager's last command
    /// was answered, later commands go through a new one. Its first connect
    /// runs in a task of its own (as the manager's own reconnects do), so a
    /// TLS handshake longer than the probe's deadline still completes, and
    /// the next probe keeps that connection (its PING was answered) instead
    /// of starting another handshake. Commands in flight on the old manager
    /// finish on it; it closes with its last handle.
    pub fn renew(&self) {
        if self.current.load().last_ok.load(Ordering::Acquire) {
            return;
        }
        match Self::manager(&self.client, &self.config) {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                self.current.store(fresh.clone());
                tokio::spawn(connect(fresh));
            }
            // Only a config the first manager accepted gets here, so this
            // does not happen; the probe then uses the old manager.
            Err(err) => tracing::warn!(error = %err, "cannot renew the redis connection"),
        }
    }
}

/// Drives a lazy manager's first connection attempt to its end; a PING is
/// the command that needs the connection and changes nothing.
async fn connect(managed: Arc<Managed>) {
    let answer = redis::cmd("PING").query_async::<redis::Value>(&mut managed.conn.clone()).await;
    managed.record(&answer);
}
