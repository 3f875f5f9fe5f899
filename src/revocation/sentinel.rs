//! The master of a Redis Sentinel deployment, as the store reaches it.
//!
//! - Found by asking the sentinels, in a task of its own: a request waits
//!   for the look-up at most its own deadline but never cancels it, so a
//!   slow sentinel (a dead first one costs its connect timeout) cannot keep
//!   every request restarting the look-up from scratch.
//! - Looked up again after a failed command (a failover shows as a dropped
//!   connection or `READONLY` from the demoted master), and when the
//!   subscriber's periodic check finds the sentinels naming another master
//!   (a partition can leave the old one reachable and writable).
//! - Three connections: reads, writes (a write's `WAIT` for replicas
//!   blocks its connection, and must not hold the look-ups behind it), and
//!   announcements (a `PUBLISH` answers only once Redis has written it to
//!   every subscriber, and must not hold the next write behind it).

use super::StoreError;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A look-up that takes longer than this is abandoned (the next request
/// starts another): a hung sentinel must not wedge the store for ever.
const LOOKUP_PATIENCE: Duration = Duration::from_secs(10);

/// Connections to the master as last found.
#[derive(Clone)]
pub struct Master {
    pub read: MultiplexedConnection,
    pub write: MultiplexedConnection,
    pub announce: MultiplexedConnection,
    /// `host:port` the sentinels named, to notice a move.
    addr: String,
    /// Which look-up found it: a failure forgets only its own master.
    pub generation: u64,
}

type Lookup = Shared<BoxFuture<'static, Result<Master, StoreError>>>;

#[derive(Default)]
struct State {
    current: Option<Master>,
    finding: Option<Lookup>,
    generation: u64,
}

pub struct SentinelMaster {
    /// Serialises questions to the sentinels.
    sentinels: Arc<tokio::sync::Mutex<SentinelClient>>,
    state: Arc<Mutex<State>>,
    config: redis::AsyncConnectionConfig,
    /// Replicas that must confirm a write (`WAIT`) before it counts.
    pub min_replicas_acked: u32,
}

impl SentinelMaster {
    pub fn new(
        sentinels: &[String],
        settings: &super::SentinelSettings,
        deadline: Duration,
    ) -> Result<Self, StoreError> {
        let mut login = redis::RedisConnectionInfo::default().set_db(settings.db);
        if let Some(user) = &settings.username {
            login = login.set_username(user);
        }
        if let Some(password) = &settings.password {
            login = login.set_password(String::from_utf8_lossy(password.expose()));
        }
        let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(login);
        // Sentinels reached over TLS hand out masters reached over TLS.
        if sentinels.iter().any(|s| s.starts_with("rediss://")) {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        let client = SentinelClient::build(
            sentinels.to_vec(),
            settings.master_name.clone(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(StoreError::setup)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(deadline.max(Duration::from_secs(1))))
            .set_response_timeout(Some(deadline));
        Ok(Self {
            sentinels: Arc::new(tokio::sync::Mutex::new(client)),
            state: Arc::new(Mutex::new(State::default())),
            config,
            min_replicas_acked: settings.min_replicas_acked,
        })
    }

    /// The master's connections: the ones last found, or those of the
    /// look-up in flight (started here when none is).
    pub async fn get(&self) -> Result<Master, StoreError> {
        let lookup = {
            let mut state = self.state.lock().map_err(|_| StoreError::SentinelPoisoned)?;
            if let Some(master) = &state.current {
                return Ok(master.clone());
            }
            match &state.finding {
                Some(lookup) => lookup.clone(),
                None => {
                    let lookup = self.spawn_lookup();
                    state.finding = Some(lookup.clone());
                    lookup
                }
            }
        };
        lookup.await
    }

    fn spawn_lookup(&self) -> Lookup {
        let (sentinels, state, config) = (self.sentinels.clone(), self.state.clone(), self.config.clone());
        let task = tokio::spawn(async move {
            let found = match tokio::time::timeout(LOOKUP_PATIENCE, find(&sentinels, &config)).await {
                Ok(found) => found,
                Err(_) => Err(StoreError::NoMaster(LOOKUP_PATIENCE)),
            };
            let mut st = match state.lock() {
                Ok(st) => st,
                Err(poisoned) => poisoned.into_inner(),
            };
            st.finding = None;
            let (read, write, announce, addr) = found?;
            st.generation += 1;
            let master = Master { read, write, announce, addr, generation: st.generation };
            tracing::info!(master = %master.addr, "redis master found through sentinel");
            st.current = Some(master.clone());
            Ok(master)
        });
        let state = self.state.clone();
        async move {
            match task.await {
                Ok(found) => found,
                Err(e) => {
                    // The task died before clearing `finding`: clear it, or
                    // every later request would get this error for ever.
                    if let Ok(mut st) = state.lock() {
                        st.finding = None;
                    }
                    Err(StoreError::LookupEnded(Arc::new(e)))
                }
            }
        }
        .boxed()
        .shared()
    }

    /// After a failed command on `generation`'s connections: the next
    /// request asks the sentinels again.
    pub fn forget(&self, generation: u64) {
        if let Ok(mut st) = self.state.lock() {
            if st.current.as_ref().is_some_and(|m| m.generation == generation) {
                st.current = None;
            }
        }
    }

    /// The master's client as the sentinels name it now (the subscriber's).
    pub async fn client(&self) -> Result<redis::Client, StoreError> {
        master_client(&self.sentinels).await
    }

    /// The master the sentinels name now, as `host:port`; the store's
    /// connections are forgotten when they lead elsewhere (a partition can
    /// leave the old master reachable and writable). The subscriber compares
    /// it with the master it subscribed to.
    pub async fn named(&self) -> Option<String> {
        let before = self.state.lock().ok()?.current.as_ref().map(|m| m.generation);
        let named = self.client().await.ok()?.get_connection_info().addr().to_string();
        let mut st = self.state.lock().ok()?;
        // Only the master that was current when the sentinels were asked: a
        // newer one found meanwhile is already the sentinels' latest word.
        if st.current.as_ref().is_some_and(|m| Some(m.generation) == before && m.addr != named) {
            tracing::warn!(master = %named, "sentinels name another redis master; reconnecting");
            st.current = None;
        }
        Some(named)
    }
}

async fn find(
    sentinels: &tokio::sync::Mutex<SentinelClient>,
    config: &redis::AsyncConnectionConfig,
) -> Result<(MultiplexedConnection, MultiplexedConnection, MultiplexedConnection, String), StoreError> {
    let client = master_client(sentinels).await?;
    let addr = client.get_connection_info().addr().to_string();
    let connect = || client.get_multiplexed_async_connection_with_config(config);
    let (read, write, announce) = tokio::try_join!(connect(), connect(), connect())
        .map_err(|e| StoreError::Master { addr: addr.clone(), source: Arc::new(e) })?;
    Ok((read, write, announce, addr))
}

/// Asks the sentinels (one question at a time) for the master's client.
async fn master_client(sentinels: &tokio::sync::Mutex<SentinelClient>) -> Result<redis::Client, StoreError> {
    let client = sentinels.lock().await.async_get_client().await;
    client.map_err(|e| StoreError::Sentinel(Arc::new(e)))
}
