//! Push invalidation: every replica subscribes to `<prefix>revocations`
//! (Redis pub/sub) and applies each announced write to its local cache.
//!
//! Why pub/sub and not RESP3 client-side tracking: tracking only says "this
//! key changed" for keys this replica has read, so a revocation of a token
//! it has cached as "not revoked" arrives, but a *subject* cut-off it never
//! read does not, and each notice costs a re-read. A published write carries
//! its value and expiry, works the same on Redis 5+ and Cluster (classic
//! pub/sub is broadcast to every node), and its publish time gives the
//! propagation-lag metric.
//!
//! Loss handling: when the subscription drops (or a heartbeat PING fails),
//! the cache is emptied and stops caching until re-subscribed, then the
//! subscriber reconnects with capped exponential backoff. Once back, it
//! re-reads the store keys of every open tunnel (see [`super::watch`]): a
//! revocation announced while it was away would otherwise never close one.
//!
//! A silently dead connection (a dropped NAT or conntrack entry: the socket
//! stays open, nothing arrives) is found by the heartbeat: a PING every
//! `heartbeat`, each allowed `ping_timeout` for its answer. The next PING
//! leaves at most `heartbeat` after the last answered one, so the cache is
//! emptied at most `heartbeat + ping_timeout` after the connection died
//! (1.25 s by default). PINGs never overlap: with `ping_timeout` above
//! `heartbeat`, a slow answer delays the next PING, and the bound holds.
//! The Sentinel master check runs beside the PINGs, so a slow sentinel
//! cannot hold one back.
//!
//! A message lost or late on a connection that stays alive (a `PUBLISH`
//! that failed or is stuck on the writing replica: no loss signal here) is
//! made good from the announcement log ([`super::log`]): beside each PING
//! the log is read from the last entry applied, and what it holds is
//! applied. A write confirmed at `t` is seen by the first read sent after
//! `t`, which is answered (entries applied), fails or is cut off at
//! `timeout` (cache emptied), or loses the race to an unanswered PING
//! (subscription lost: cache emptied) within `timeout` of leaving. Reads
//! leave with the PINGs, `heartbeat` apart while a round (the slower of the
//! PING and the read) fits in it, so the write is applied or the cache
//! emptied within **`heartbeat + timeout`** of `t` (1.05 s by default);
//! `max(heartbeat, ping_timeout, timeout) + timeout` when `ping_timeout`
//! exceeds `heartbeat`, plus one `timeout` per further 500 entries to read.
//! A read that fails, or finds the log trimmed past the last entry
//! applied, empties the cache (the subscription stays: fresh answers are
//! cached again and the next read catches up). The log is also read on
//! every re-subscription, so open tunnels learn of what was missed.
//! Where the log starts for this replica is read before it first
//! subscribes: every write after that is replayed, and before it nothing
//! was cached.

use super::cache::Slot;
use super::log::{LogId, READ_BATCH};
use super::{now_ms, Change, LocalCache, RedisStore, RevocationStore, StoreError};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// How often a subscription on a Sentinel master asks whether the
/// sentinels still name it (each check opens one connection to a sentinel
/// and one to the master it names).
const MASTER_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Keys per store round trip when re-checking open tunnels.
const RECHECK_KEYS_PER_FETCH: usize = 256;

pub struct Subscriber {
    /// Gives the node to subscribe through on each attempt: the server, each
    /// seed node of a cluster in turn (PUBLISH reaches all nodes), or the
    /// master the sentinels name at that moment.
    pub store: Arc<RedisStore>,
    pub channel: String,
    pub cache: Arc<LocalCache>,
    /// PING interval on the subscription.
    pub heartbeat: Duration,
    /// How long each PING waits for its answer; a silently dead connection
    /// is found within `heartbeat + ping_timeout`.
    pub ping_timeout: Duration,
    /// The store's command deadline; subscribing may take
    /// `deadline.max(500 ms)`.
    pub deadline: Duration,
}

impl Subscriber {
    /// Runs forever; spawn it.
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(20);
        // Where in the node list (cluster seeds, `subscribe_nodes`) this
        // replica starts: at random, so a fleet spreads its subscriptions,
        // and their fan-out, over the nodes instead of piling onto the first.
        let mut next: usize = rand::random();
        // The last announcement log entry applied; `None` until first read.
        let mut applied: Option<LogId> = None;
        loop {
            let attempt = next;
            next = next.wrapping_add(1);
            let session = match self.store.subscribe_client(attempt).await {
                Ok(client) => self.session(&client, &mut applied).await,
                Err(err) => Err(err),
            };
            match session {
                Ok(()) => backoff = Duration::from_millis(20),
                Err(err) => tracing::warn!(error = %err, "revocation subscription failed"),
            }
            if self.cache.push_healthy() {
                tracing::warn!("revocation subscription lost; local cache emptied until re-subscribed");
            }
            self.cache.push_lost();
            metrics::gauge!("jwtgate_pubsub_connected").set(0.0);
            metrics::counter!("jwtgate_pubsub_reconnects_total").increment(1);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// One subscription, until it drops. `Ok` means it had been established.
    async fn session(&self, client: &redis::Client, applied: &mut Option<LogId>) -> Result<(), StoreError> {
        let subscribed = client.get_connection_info().addr().to_string();
        // Before the first subscription: writes after this are replayed,
        // and nothing was cached before the subscription.
        let applied = match applied {
            Some(id) => id,
            None => applied.insert(self.store.log_tail().await?),
        };
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let patience = self.deadline.max(Duration::from_millis(500));
        let pubsub = match tokio::time::timeout(patience, connect).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(StoreError::Subscribe(Arc::new(e))),
            Err(_) => return Err(StoreError::SubscribeTimeout(patience)),
        };
        let (mut sink, mut stream) = pubsub.split();
        self.cache.push_restored();
        metrics::gauge!("jwtgate_pubsub_connected").set(1.0);
        tracing::info!(channel = %self.channel, "subscribed to revocations");
        // Writes made while unsubscribed were never heard of: what is open
        // on a token they revoked would stay open. The log brings them (and
        // tells the tunnels); the store re-check covers a log trimmed past
        // them. Retried at each heartbeat until the store answers.
        let mut recheck_due = self.catch_up(applied).await == CaughtUp::Gap;
        recheck_due |= !self.recheck().await;
        let mut heartbeat = tokio::time::interval(self.heartbeat);
        // After an answer slower than `heartbeat`, the next PING waits a whole
        // interval rather than leaving at once to catch up.
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut master_check = tokio::time::interval(MASTER_CHECK_EVERY);
        // A check slower than the interval is not followed by catch-up checks.
        master_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        master_check.tick().await;
        let mut asking: Option<BoxFuture<'_, Option<String>>> = None;
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => self.apply(msg.get_payload_bytes()),
                    None => return Ok(()),
                },
                // In subscribed mode RESP2 answers PING with ["pong", ""]:
                // any reply proves the connection alive.
                // The log is read beside the PING; an unanswered PING ends
                // the round at once (a read cut short moves nothing: entries
                // are applied as a batch arrives).
                _ = heartbeat.tick() => {
                    let ping = async {
                        match tokio::time::timeout(self.ping_timeout, sink.ping::<redis::Value>()).await {
                            Ok(Ok(_)) => Ok(()),
                            _ => Err(()),
                        }
                    };
                    let caught_up = async { Ok(self.catch_up(applied).await) };
                    let Ok(((), caught_up)) = tokio::try_join!(ping, caught_up) else {
                        tracing::warn!(timeout = %humantime::format_duration(self.ping_timeout), "revocation subscription: heartbeat PING unanswered");
                        return Ok(());
                    };
                    recheck_due |= caught_up == CaughtUp::Gap;
                    if recheck_due {
                        recheck_due = !self.recheck().await;
                    }
                }
                // Sentinel: a master replaced while this one is still up
                // (a partition) would keep this subscription, and the
                // store's reads, on a master nobody writes to any more.
                _ = master_check.tick(), if asking.is_none() => asking = Some(Box::pin(self.store.named_master())),
                named = async { match asking.as_mut() { Some(q) => q.await, None => std::future::pending().await } },
                    if asking.is_some() => {
                    asking = None;
                    if named.is_some_and(|named| named != subscribed) {
                        tracing::warn!(old = %subscribed, "revocation subscription leaves a replaced redis master");
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Applies the announcement log's entries after `applied` (which moves
    /// on with them). Reads until a batch is short. A failed read or a gap
    /// empties the cache: announcements may have been missed.
    async fn catch_up(&self, applied: &mut LogId) -> CaughtUp {
        let mut gap = false;
        loop {
            let batch = match self.store.log_after(applied).await {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "revocation log unreadable; local cache emptied");
                    self.cache.forget_answers();
                    return CaughtUp::Failed;
                }
            };
            gap |= batch.gap;
            let full = batch.entries.len() >= READ_BATCH;
            for (id, change) in batch.entries {
                if let Some(change) = change {
                    self.replay(&change);
                }
                *applied = id;
            }
            if !full {
                break;
            }
        }
        if !gap {
            return CaughtUp::Current;
        }
        tracing::warn!("revocation log trimmed past the last entry applied here; local cache emptied");
        self.cache.forget_answers();
        // Ids come from the server's clock: after a restart with a clock
        // behind, the log goes on from its tail, not from an id ahead of it.
        // Emptied again once the tail is read: a look-up cached in between
        // may predate a write before the tail, which is not replayed.
        if let Ok(tail) = self.store.log_tail().await {
            *applied = tail;
            self.cache.forget_answers();
        }
        CaughtUp::Gap
    }

    /// Replays what the store holds for every watched key (open tunnels)
    /// through the watcher, which ends those it covers. True when done
    /// (nothing watched, or the store answered).
    async fn recheck(&self) -> bool {
        let keys = self.cache.watch().watched_keys();
        if keys.is_empty() {
            return true;
        }
        let mut closed = 0;
        for chunk in keys.chunks(RECHECK_KEYS_PER_FETCH) {
            let values = match RevocationStore::fetch(&*self.store, chunk).await {
                Ok(values) => values,
                Err(err) => {
                    tracing::warn!(error = %err, "re-check of open tunnels failed; retried at the next heartbeat");
                    return false;
                }
            };
            for (key, value) in chunk.iter().zip(values) {
                if let Some(value) = value {
                    closed += self.cache.watch().revoked(key, Slot::Present(value.trim().parse().unwrap_or(1)));
                }
            }
        }
        tracing::info!(keys = keys.len(), closed, "re-checked open tunnels against the store after re-subscribing");
        true
    }

    /// A pub/sub message.
    fn apply(&self, payload: &[u8]) {
        let Some(change) = decode(payload) else { return };
        metrics::counter!("jwtgate_pubsub_messages_total").increment(1);
        if change.sent_ms > 0 {
            let lag_ms = now_ms().saturating_sub(change.sent_ms);
            metrics::histogram!("jwtgate_propagation_lag_seconds").record(lag_ms as f64 / 1000.0);
        }
        self.apply_change(change);
    }

    /// A log entry: most were applied from pub/sub already, and applying
    /// one again inserts the same answer and tells the tunnels again (none
    /// is left open on it by then).
    fn replay(&self, payload: &[u8]) {
        let Some(change) = decode(payload) else { return };
        metrics::counter!("jwtgate_revocation_log_replayed_total").increment(1);
        self.apply_change(change);
    }

    fn apply_change(&self, change: Change) {
        let slot = change.value.as_deref().map(|v| Slot::Present(v.parse().unwrap_or(1)));
        let remaining = change.expires_at.saturating_sub(crate::auth::now_unix()).max(0) as u64;
        self.cache.apply(change.key, slot, Instant::now() + Duration::from_secs(remaining));
    }
}

/// How a read of the announcement log ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaughtUp {
    Current,
    /// Entries may have been trimmed unread: the cache was emptied.
    Gap,
    /// The log could not be read: the cache was emptied.
    Failed,
}

fn decode(payload: &[u8]) -> Option<Change> {
    let change = serde_json::from_slice::<Change>(payload);
    if change.is_err() {
        tracing::debug!("ignoring a malformed revocation message");
    }
    change.ok()
}
