//! Redis store, shared by every replica: one server (redis-rs
//! `ConnectionManager`, reconnecting on its own; see [`Single`]) or a Redis Cluster
//! (`ClusterConnection`, slot-aware; `MGET` is split across shards by the
//! client). Every command runs under a deadline so a slow or dead Redis costs
//! at most that long. Look-ups are one `MGET`.
//!
//! Writes: `SET key value EXAT t` (or `DEL`) and an `XADD` to the
//! announcement log ([`super::log`]), in one `MULTI` (Cluster: the log is on
//! another slot, so the `SET` and then the `XADD`, retried once), plus `WAIT`
//! under Sentinel's `min_replicas_acked`. The answer waits for that and
//! nothing else. The `PUBLISH` on the revocation channel (the fast path to
//! the other replicas) then goes out in a task of its own on a connection of
//! its own: Redis answers a `PUBLISH` only once it has written the message
//! to every subscriber, and clones of one connection manager share one
//! connection, so on the write connection a slow fan-out would delay this
//! answer and queue the next write behind it. A `PUBLISH` that fails or is
//! slow costs nothing but speed: the other replicas read the log.
//! `redis://` and `rediss://` (TLS via rustls), ACL `user:password@` and the
//! db index all come from the URL.
//!
//! Redis Sentinel: the sentinels are asked for the master, and asked again
//! after any failed command: a failover shows as a dropped connection (the
//! sentinels kill the old master's clients) or as `READONLY` from the
//! demoted master, and the next command then goes to the new one.
//!
//! The circuit's half-open probe ([`RevocationStore::reconnect`]) must make a
//! real attempt. The single server needs a fresh manager for it ([`Single`]).
//! Cluster and Sentinel keep no failed outcome to hand it. A cluster connect
//! that failed leaves the `OnceCell` empty (the next call connects again);
//! once connected, redis-rs repairs nodes itself (`reconnect_loop`) and meets
//! a request that finds no connection by reconnecting to the seed nodes and
//! refreshing the slot map, so the probe after an outage does that work (it
//! may take longer than a 50 ms deadline: then it finishes in the
//! background and the next probe succeeds). A Sentinel master's connections
//! are forgotten after any failed command and a look-up that failed is not
//! kept, so the probe asks the sentinels and connects again.

use super::log::{self, Batch, LogId};
use super::sentinel::SentinelMaster;
use super::single::Single;
use super::{BoxFuture, Change, RevocationStore, SentinelSettings, StoreError, StoreSettings};
use crate::config::redact_url;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long an announcement may take (see [`RedisStore::announce`]).
const ANNOUNCE_PATIENCE: Duration = Duration::from_secs(2);

enum Backend {
    Single(Box<Single>),
    /// Connected on first use (and retried until it works), so jwtgate
    /// starts while the cluster is still forming.
    Cluster {
        client: Box<ClusterClient>,
        conn: OnceCell<ClusterConnection>,
    },
    Sentinel(Box<SentinelMaster>),
}

pub struct RedisStore {
    backend: Backend,
    /// Clients for the pub/sub subscription (one per node, tried in turn).
    subscribe_to: Vec<redis::Client>,
    /// True when `subscribe_to` was configured (`subscribe_nodes`): held
    /// there under Sentinel too, and not left when the master changes.
    subscribe_elsewhere: bool,
    /// The connection announcements go out on (Sentinel: the master's).
    announcer: Announcer,
    deadline: Duration,
    channel: String,
    /// The announcement log's key ([`super::keys::log`]).
    log: String,
}

/// A connection of its own for `PUBLISH`, never the one writes use.
enum Announcer {
    Single(ConnectionManager),
    /// A cluster connection of its own (pub/sub is cluster-wide: any node).
    Cluster {
        client: Arc<ClusterClient>,
        conn: Arc<OnceCell<ClusterConnection>>,
    },
    /// The master's `announce` connection, found with its write connection.
    Sentinel,
}

/// An announcement's connection, owned by its task.
enum AnnounceOn {
    Single(ConnectionManager),
    Cluster(Arc<ClusterClient>, Arc<OnceCell<ClusterConnection>>),
    Sentinel(MultiplexedConnection),
}

impl AnnounceOn {
    async fn connect(self) {
        let _ = self.send(&redis::cmd("PING")).await;
    }

    async fn send(self, publish: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            AnnounceOn::Single(mut conn) => publish.query_async(&mut conn).await,
            AnnounceOn::Cluster(client, cell) => {
                let mut conn = cell.get_or_try_init(|| client.get_async_connection()).await?.clone();
                publish.query_async(&mut conn).await
            }
            AnnounceOn::Sentinel(mut conn) => publish.query_async(&mut conn).await,
        }
    }
}

/// A command or a pipeline, run the same way on any backend.
#[derive(Clone, Copy)]
enum Query<'a> {
    Cmd(&'a redis::Cmd),
    Pipe(&'a redis::Pipeline),
}

impl Query<'_> {
    async fn on<T: redis::FromRedisValue, C: redis::aio::ConnectionLike + Send>(
        self,
        conn: &mut C,
    ) -> redis::RedisResult<T> {
        match self {
            Query::Cmd(cmd) => cmd.query_async(conn).await,
            Query::Pipe(pipe) => pipe.query_async(conn).await,
        }
    }
}

/// A client for `url`; `tls_ca`: PEM roots for `rediss://` servers with a
/// private CA (the system's otherwise).
fn client_for(url: &str, tls_ca: Option<&[u8]>) -> Result<redis::Client, StoreError> {
    match tls_ca {
        None => redis::Client::open(url),
        Some(ca) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates { client_tls: None, root_cert: Some(ca.to_vec()) },
        ),
    }
    .map_err(|e| StoreError::InvalidUrl { url: redact_url(url), source: Arc::new(e) })
}

impl RedisStore {
    /// Prepares the connection without waiting for Redis: jwtgate starts
    /// (and answers per `on_store_error`) even while Redis is down.
    /// `tls_ca`: PEM roots for `rediss://` servers with a private CA.
    pub fn connect_lazy(
        url: &str,
        tls_ca: Option<&[u8]>,
        deadline: Duration,
        channel: String,
    ) -> Result<Self, StoreError> {
        let client = client_for(url, tls_ca)?;
        let config = ConnectionManagerConfig::new()
            // A TLS handshake may need longer than one command's deadline;
            // requests still wait at most `deadline` (see `within`).
            .set_connection_timeout(Some(deadline.max(Duration::from_secs(1))))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        // Nobody waits for an announcement: it may take longer than a
        // command (connecting, a fan-out to thousands of subscribers), and
        // one cut off before it was sent is lost until the next log read.
        let announcing = config.clone().set_response_timeout(Some(ANNOUNCE_PATIENCE));
        let announcer =
            ConnectionManager::new_lazy_with_config(client.clone(), announcing).map_err(StoreError::setup)?;
        let single = Single::new(client.clone(), config)?;
        Ok(Self {
            backend: Backend::Single(Box::new(single)),
            subscribe_to: vec![client],
            subscribe_elsewhere: false,
            announcer: Announcer::Single(announcer),
            deadline,
            log: super::keys::log(&channel),
            channel,
        })
    }

    /// The store a config asks for; `None` for the memory store.
    pub fn from_settings(store: &StoreSettings, channel: String) -> Result<Option<Self>, StoreError> {
        let StoreSettings::Redis { nodes, cluster, sentinel, timeout, tls_ca, subscribe_nodes, .. } = store else {
            return Ok(None);
        };
        let built = match (sentinel, cluster, nodes.first()) {
            (Some(master), _, _) => Self::sentinel(nodes, master, *timeout, channel),
            (None, true, _) => Self::cluster(nodes, *timeout, channel),
            (None, false, Some(url)) => Self::connect_lazy(url, tls_ca.as_deref(), *timeout, channel),
            (None, false, None) => Err(StoreError::NoNode),
        };
        built?.subscribing_on(subscribe_nodes, tls_ca.as_deref()).map(Some)
    }

    /// Holds the subscription on `nodes` (in turn) rather than on the
    /// store's own; no change when empty. Every node of a replication
    /// group gets each `PUBLISH` (replicas through replication), so
    /// subscribing on replicas moves the fan-out, whose cost grows with
    /// the number of subscribers, off the master that answers logouts and
    /// look-ups. A replica cut off from its master hears nothing while its
    /// PINGs still answer: the announcement log, read from the master
    /// every heartbeat, keeps the bound.
    fn subscribing_on(mut self, nodes: &[String], tls_ca: Option<&[u8]>) -> Result<Self, StoreError> {
        if nodes.is_empty() {
            return Ok(self);
        }
        self.subscribe_to = nodes.iter().map(|url| client_for(url, tls_ca)).collect::<Result<_, _>>()?;
        self.subscribe_elsewhere = true;
        Ok(self)
    }

    /// A Redis Cluster reached through any of `nodes`.
    pub fn cluster(nodes: &[String], deadline: Duration, channel: String) -> Result<Self, StoreError> {
        let subscribe_to = nodes.iter().map(|n| client_for(n, None)).collect::<Result<Vec<_>, _>>()?;
        let client = ClusterClient::builder(nodes.to_vec())
            .connection_timeout(deadline)
            .response_timeout(deadline)
            .retries(1)
            .build()
            .map_err(StoreError::setup)?;
        Ok(Self {
            announcer: Announcer::Cluster { client: Arc::new(client.clone()), conn: Arc::new(OnceCell::new()) },
            backend: Backend::Cluster { client: Box::new(client), conn: OnceCell::new() },
            subscribe_to,
            subscribe_elsewhere: false,
            deadline,
            log: super::keys::log(&channel),
            channel,
        })
    }

    /// A master watched by Redis Sentinel, found through `sentinels`.
    pub fn sentinel(
        sentinels: &[String],
        master: &SentinelSettings,
        deadline: Duration,
        channel: String,
    ) -> Result<Self, StoreError> {
        let master = SentinelMaster::new(sentinels, master, deadline)?;
        Ok(Self {
            backend: Backend::Sentinel(Box::new(master)),
            subscribe_to: Vec::new(),
            subscribe_elsewhere: false,
            announcer: Announcer::Sentinel,
            deadline,
            log: super::keys::log(&channel),
            channel,
        })
    }

    /// Connects now rather than on the first request (errors are the
    /// first request's to report).
    pub async fn warm_up(&self) {
        const PATIENCE: Duration = Duration::from_secs(5);
        let ping = redis::cmd("PING");
        let _ = match &self.backend {
            Backend::Single(single) => {
                let managed = single.current();
                let mut conn = managed.conn.clone();
                let answer = tokio::time::timeout(PATIENCE, ping.query_async::<redis::Value>(&mut conn)).await;
                answer.map(|answer| managed.record(&answer))
            }
            Backend::Cluster { client, conn } => {
                tokio::time::timeout(PATIENCE, conn.get_or_try_init(|| client.get_async_connection())).await.map(|_| ())
            }
            Backend::Sentinel(master) => tokio::time::timeout(PATIENCE, master.get()).await.map(|_| ()),
        };
        // The announcement connection too, so the first logout's message
        // does not wait for a connect.
        if let Some(on) = self.announce_on() {
            let _ = tokio::time::timeout(PATIENCE, on.connect()).await;
        }
    }

    /// A client for the pub/sub subscription's `attempt`-th try: the nodes
    /// in turn, or the master the sentinels name now.
    pub async fn subscribe_client(&self, attempt: usize) -> Result<redis::Client, StoreError> {
        match &self.backend {
            Backend::Sentinel(master) if !self.subscribe_elsewhere => master.client().await,
            _ => self.subscribe_to.get(attempt % self.subscribe_to.len().max(1)).cloned().ok_or(StoreError::NoNode),
        }
    }

    /// Runs a query under the deadline.
    async fn within<T>(
        &self,
        query: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, query).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::command(e)),
            Err(_) => Err(StoreError::Timeout(self.deadline)),
        }
    }

    async fn cluster_conn(
        &self,
        client: &ClusterClient,
        cell: &OnceCell<ClusterConnection>,
    ) -> Result<ClusterConnection, StoreError> {
        let conn = self.within(async { cell.get_or_try_init(|| client.get_async_connection()).await.cloned() }).await?;
        Ok(conn)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.run(Query::Cmd(cmd)).await
    }

    async fn run<T: redis::FromRedisValue>(&self, query: Query<'_>) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Single(single) => {
                let managed = single.current();
                let answer = self.within(query.on::<T, _>(&mut managed.conn.clone())).await;
                managed.record(&answer);
                answer
            }
            Backend::Cluster { client, conn } => {
                let mut conn = self.cluster_conn(client, conn).await?;
                self.within(query.on::<T, _>(&mut conn)).await
            }
            Backend::Sentinel(sentinel) => {
                let master = self.sentinel_master(sentinel).await?;
                let answer = self.within(query.on::<T, _>(&mut master.read.clone())).await;
                if answer.is_err() {
                    // Dropped, refused, READONLY or silent: ask the sentinels next time.
                    sentinel.forget(master.generation);
                }
                answer
            }
        }
    }

    /// The master's connections within the deadline (the look-up goes on
    /// in the background when the deadline cuts the wait short).
    async fn sentinel_master(&self, sentinel: &SentinelMaster) -> Result<super::sentinel::Master, StoreError> {
        match tokio::time::timeout(self.deadline, sentinel.get()).await {
            Ok(Ok(master)) => Ok(master),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::NoMaster(self.deadline)),
        }
    }

    /// The id of the announcement log's last entry (the start when empty).
    pub async fn log_tail(&self) -> Result<LogId, StoreError> {
        log::parse_tail(self.query::<redis::Value>(&log::tail(&self.log)).await?)
    }

    /// Announcement log entries after `after`, and whether some may have
    /// been trimmed unread ([`super::log`]).
    pub async fn log_after(&self, after: &LogId) -> Result<Batch, StoreError> {
        let pipe = log::read_after(&self.log, after);
        log::parse_read(self.run::<(redis::Value, redis::Value)>(Query::Pipe(&pipe)).await?, after)
    }

    /// Sends `publish` in a task of its own, awaited by nobody: the answer
    /// to the write is already decided. Given up after
    /// [`ANNOUNCE_PATIENCE`], not the command deadline: a `PUBLISH` cut
    /// off while its connection is still being made is never sent.
    /// Counted when it fails.
    fn announce(&self, publish: redis::Cmd, on: AnnounceOn) {
        tokio::spawn(async move {
            let kind = match tokio::time::timeout(ANNOUNCE_PATIENCE, on.send(&publish)).await {
                Ok(Ok(_)) => return,
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "revocation announcement failed; the replicas read it from the log");
                    "error"
                }
                Err(_) => "timeout",
            };
            metrics::counter!("jwtgate_store_errors_total", "op" => "announce", "kind" => kind).increment(1);
        });
    }

    /// This backend's announcement connection; Sentinel's comes with the
    /// master the write went to.
    fn announce_on(&self) -> Option<AnnounceOn> {
        match &self.announcer {
            Announcer::Single(conn) => Some(AnnounceOn::Single(conn.clone())),
            Announcer::Cluster { client, conn } => Some(AnnounceOn::Cluster(client.clone(), conn.clone())),
            Announcer::Sentinel => None,
        }
    }

    /// With Sentinel, the master the sentinels name now (`host:port`); the
    /// store leaves a master they no longer name. `None` without Sentinel
    /// (or when no sentinel answers).
    /// `None` too when the subscription is held on `subscribe_nodes`.
    pub async fn named_master(&self) -> Option<String> {
        match &self.backend {
            Backend::Sentinel(sentinel) if !self.subscribe_elsewhere => sentinel.named().await,
            _ => None,
        }
    }
}

impl RedisStore {
    /// A write and its log entry in one `MULTI` on a Sentinel master,
    /// confirmed by `min_replicas_acked` replicas (`WAIT`, after the `EXEC`)
    /// when set. Returns the master's announcement connection.
    async fn sentinel_write(
        &self,
        sentinel: &SentinelMaster,
        write: redis::Cmd,
        append: redis::Cmd,
    ) -> Result<MultiplexedConnection, StoreError> {
        let master = self.sentinel_master(sentinel).await?;
        let mut pipe = redis::pipe();
        pipe.cmd("MULTI").ignore().add_command(write).ignore().add_command(append).ignore().cmd("EXEC").ignore();
        let wanted = sentinel.min_replicas_acked;
        if wanted > 0 {
            // Half the deadline for the replicas, so the answer fits in it.
            let wait_ms = (self.deadline.as_millis() / 2).max(1) as u64;
            pipe.cmd("WAIT").arg(wanted).arg(wait_ms);
        }
        let answer = self.within(pipe.query_async::<Vec<i64>>(&mut master.write.clone())).await;
        if answer.is_err() {
            // The connection failed: ask the sentinels next time.
            sentinel.forget(master.generation);
        }
        match answer?.first() {
            Some(&n) if n < i64::from(wanted) => {
                // A replica lags (keep this master), or the
                // sentinels replaced it (then `named` drops it,
                // and the client's retry reaches the new one).
                let _ = tokio::time::timeout(self.deadline, sentinel.named()).await;
                Err(StoreError::Unconfirmed { confirmed: n, wanted })
            }
            _ => Ok(master.announce),
        }
    }
}

impl RevocationStore for RedisStore {
    fn reconnect(&self) {
        if let Backend::Single(single) = &self.backend {
            single.renew();
        }
    }

    fn fetch<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<String>>, StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("MGET");
            cmd.arg(keys);
            self.query::<Vec<Option<String>>>(&cmd).await
        })
    }

    fn write<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let message = serde_json::to_string(change).map_err(|e| StoreError::Encode(Arc::new(e)))?;
            let write = match &change.value {
                Some(value) => {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&change.key).arg(value).arg("EXAT").arg(change.expires_at.max(1));
                    cmd
                }
                None => {
                    let mut cmd = redis::cmd("DEL");
                    cmd.arg(&change.key);
                    cmd
                }
            };
            let append = log::append(&self.log, &message);
            let on = match &self.backend {
                // One round trip on a single server.
                Backend::Single(single) => {
                    let mut pipe = redis::pipe();
                    pipe.atomic().add_command(write).ignore().add_command(append).ignore();
                    let managed = single.current();
                    let answer = self.within(pipe.query_async::<()>(&mut managed.conn.clone())).await;
                    managed.record(&answer);
                    answer?;
                    self.announce_on()
                }
                Backend::Sentinel(sentinel) => {
                    Some(AnnounceOn::Sentinel(self.sentinel_write(sentinel, write, append).await?))
                }
                // The key's shard, then the log's (another slot: no MULTI).
                // A write whose log entry failed twice answers 503: the
                // client's retry writes both again (both are idempotent in
                // effect), and a 200 always means "logged".
                Backend::Cluster { .. } => {
                    self.query::<redis::Value>(&write).await?;
                    if self.query::<redis::Value>(&append).await.is_err() {
                        self.query::<redis::Value>(&append).await?;
                    }
                    self.announce_on()
                }
            };
            let mut publish = redis::cmd("PUBLISH");
            publish.arg(&self.channel).arg(message);
            if let Some(on) = on {
                self.announce(publish, on);
            }
            Ok(())
        })
    }
}
