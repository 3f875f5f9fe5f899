//! Revocation: is this token still live, and revoke tokens, subjects and
//! sessions. A bounded local cache ([`LocalCache`], kept current by pub/sub)
//! sits in front of a [`RevocationStore`] (`memory` for one instance, `redis`
//! for a fleet); look-ups are single-flight and pass a circuit breaker.
//! Key layout: [`keys`]. `compile` reads the `revocation:` section.

mod breaker;
mod cache;
mod error;
mod flight;
pub mod keys;
pub mod legacy;
mod log;
mod memory;
mod redis;
mod sentinel;
mod settings;
mod single;
pub mod subscriber;
#[cfg(test)]
mod tests;
mod watch;

pub use breaker::Breaker;
pub use cache::{LocalCache, Slot};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use settings::{compile, Policy, SentinelSettings, StoreSettings};
pub use watch::{Covered, Watch, Watcher};

use crate::auth::Claims;
use crate::config::{MissingJti, OnStoreError};
use crate::error::{Causes, ProxyError, Rejection};
use breaker::Permit;
use flight::SingleFlight;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One write to the store, as also announced to the other replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    /// `None` deletes the key (admin un-revoke).
    pub value: Option<String>,
    /// When the record lapses (Unix seconds).
    pub expires_at: i64,
    /// Publish time (Unix milliseconds), for the propagation-lag metric.
    #[serde(default)]
    pub sent_ms: u64,
}

/// Where revocations live. Two implementations: `memory` and `redis`.
pub trait RevocationStore: Send + Sync {
    /// The values of `keys`, in order, in one round trip.
    fn fetch<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<String>>, StoreError>>;
    /// Applies `change` and announces it to the other replicas.
    fn write<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Called just before the circuit's half-open probe, so that the probe
    /// makes a real attempt to reach the store instead of being answered
    /// with a failure a client library kept from the outage. Default:
    /// nothing is kept.
    fn reconnect(&self) {}
}

/// A recorded revocation, as logout and the admin API report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    pub expires_at: i64,
}

/// What a key stands for, which decides how its slot is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Token,
    /// Subject or session cut-off: tokens issued at or before T are revoked.
    CutOff,
    Legacy,
}

type Fetched = Result<Flown, StoreError>;

/// A flight's answer, shared by every request that joined it.
#[derive(Clone)]
struct Flown {
    slots: Arc<Vec<Slot>>,
    /// Found in the cache by the leader: no store round trip was made.
    from_cache: bool,
}

/// `jwtgate_revocation_checks_total` by source, resolved at the first
/// check (after the recorder is installed) instead of once per request.
#[derive(Default)]
struct CheckCounters {
    cache: OnceLock<metrics::Counter>,
    store_hit: OnceLock<metrics::Counter>,
    store_miss: OnceLock<metrics::Counter>,
}

/// Where a revocation verdict came from (the `source` label).
#[derive(Clone, Copy)]
enum CheckSource {
    Cache,
    StoreHit,
    StoreMiss,
}

impl CheckCounters {
    fn count(&self, source: CheckSource) {
        let (cell, label) = match source {
            CheckSource::Cache => (&self.cache, "cache"),
            CheckSource::StoreHit => (&self.store_hit, "store_hit"),
            CheckSource::StoreMiss => (&self.store_miss, "store_miss"),
        };
        cell.get_or_init(|| metrics::counter!("jwtgate_revocation_checks_total", "source" => label)).increment(1);
    }
}

/// The kind of each of a token's store keys, in [`Revocations::lookup_keys`]
/// order: the token's own key, then its subject and session cut-offs, then
/// legacy keys.
#[derive(Clone, Copy)]
struct Kinds {
    cut_offs: usize,
}

impl Kinds {
    fn of(claims: &Claims) -> Self {
        Self { cut_offs: usize::from(claims.sub.is_some()) + usize::from(claims.sid.is_some()) }
    }

    fn iter(self) -> impl Iterator<Item = KeyKind> {
        (0..).map(move |i| match i {
            0 => KeyKind::Token,
            i if i <= self.cut_offs => KeyKind::CutOff,
            _ => KeyKind::Legacy,
        })
    }
}

/// Cache + store + policy: the revocation phase of the request path.
pub struct Revocations {
    store: Arc<dyn RevocationStore>,
    cache: Arc<LocalCache>,
    flights: SingleFlight<Fetched>,
    breaker: Breaker,
    policy: Policy,
    checks: CheckCounters,
}

impl Revocations {
    /// `push` says whether writes of other replicas arrive by pub/sub (then
    /// the cache stays off until the subscriber reports in).
    pub fn new(store: Arc<dyn RevocationStore>, policy: Policy, push: bool) -> Self {
        let cache = Arc::new(LocalCache::new(policy.cache_entries, policy.not_revoked_ttl, !push));
        let breaker = Breaker::new(policy.circuit_failures, policy.circuit_cooldown);
        Self { store, cache, flights: SingleFlight::default(), breaker, policy, checks: CheckCounters::default() }
    }

    pub fn cache(&self) -> &Arc<LocalCache> {
        &self.cache
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn circuit_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// The store key of a token, or `MissingJti` under `missing_jti: reject`.
    pub fn token_key(&self, claims: &Claims) -> Result<String, Rejection> {
        let prefix = &self.policy.key_prefix;
        match (&claims.jti, self.policy.missing_jti) {
            (Some(jti), _) => Ok(keys::token_jti(prefix, &claims.issuer_tag, jti)),
            (None, MissingJti::Hash) => Ok(keys::token_hash(prefix, &claims.content_sha256)),
            (None, MissingJti::Reject) => Err(Rejection::MissingJti),
        }
    }

    /// The token's store keys (see [`Kinds`] for their order), worked out
    /// once per verified token: the policy outlives reloads, and `raw` is
    /// the text the cached claims were verified from.
    fn lookup_keys<'c>(&self, claims: &'c Claims, raw: &str) -> Result<&'c [String], Rejection> {
        if let Some(keys) = claims.store_keys.get() {
            return Ok(keys);
        }
        let mut keys = vec![self.token_key(claims)?];
        let (sub, sid) = keys::grouping_keys(&self.policy.key_prefix, claims);
        keys.extend([sub, sid].into_iter().flatten());
        keys.extend(self.policy.legacy.keys_for(claims, raw));
        Ok(claims.store_keys.get_or_init(|| keys.into_boxed_slice()))
    }

    /// Ok when the token is not revoked (or the store is down under
    /// `fail_open`). When every key is cached, no store call is made.
    pub async fn ensure_live(&self, claims: &Claims, raw: &str) -> Result<(), ProxyError> {
        // Subject cut-offs live `max_token_lifetime`: a token that outlives
        // them could come back to life after a "log out everywhere".
        let max = self.policy.max_token_lifetime.as_secs() as i64;
        if claims.exp_unix.is_some_and(|exp| exp.saturating_sub(crate::auth::now_unix()) > max) {
            return Err(Rejection::InvalidClaims("token lives longer than revocation.max_token_lifetime").into());
        }
        let keys = self.lookup_keys(claims, raw)?;
        let kinds = Kinds::of(claims);
        let now = Instant::now();
        let cached = match self.memoised_live(claims, now) {
            true => Some(false),
            false => self.cached_verdict(keys, kinds, claims, now),
        };
        let is_revoked = match cached {
            Some(is_revoked) => {
                self.checks.count(CheckSource::Cache);
                is_revoked
            }
            // Boxed: the store round trip is the rare path, and its future
            // would otherwise grow every request's.
            None => match Box::pin(self.fetch(keys, kinds, claims)).await {
                Ok(slots) => revoked(claims, kinds, &slots),
                Err(err) => return self.on_store_error(err),
            },
        };
        if is_revoked {
            return Err(Rejection::Revoked.into());
        }
        Ok(())
    }

    /// [`Self::ensure_live`] again, for a token it has checked (its keys
    /// memoised then): a WebSocket tunnel, once registered to be told of
    /// later revocations, makes sure none came in between.
    pub async fn ensure_still_live(&self, claims: &Claims) -> Result<(), ProxyError> {
        self.ensure_live(claims, "").await
    }

    /// True when the token's memoised "not revoked" still holds: reached
    /// at the cache's current epoch (nothing revoked, deleted, fetched as
    /// present or lost since) and before the earliest expiry of the answers
    /// it rests on. The same answers would give the same verdict now.
    fn memoised_live(&self, claims: &Claims, now: Instant) -> bool {
        claims.verdict.get().is_some_and(|(epoch, until)| now < until && self.cache.epoch() == cache::Epoch(epoch))
    }

    /// The verdict from the cache alone, `None` when a key is not cached.
    /// One cached key that revokes settles it (the verdict is an "any").
    /// A "not revoked" is memoised on the token with the epoch read before
    /// the look-ups, so an invalidation racing them voids it.
    fn cached_verdict(&self, keys: &[String], kinds: Kinds, claims: &Claims, now: Instant) -> Option<bool> {
        let epoch = self.cache.epoch();
        let mut until: Option<Instant> = None;
        let mut all_cached = true;
        for (key, kind) in keys.iter().zip(kinds.iter()) {
            match self.cache.lookup_at(key, now) {
                Some((slot, _)) if revokes(claims.iat_unix, kind, slot) => return Some(true),
                Some((_, valid_until)) => until = Some(until.map_or(valid_until, |u| u.min(valid_until))),
                None => all_cached = false,
            }
        }
        if !all_cached {
            return None;
        }
        if let Some(until) = until {
            claims.verdict.set(epoch.0, until);
        }
        Some(false)
    }

    fn cached(&self, keys: &[String]) -> Option<Vec<Slot>> {
        keys.iter().map(|k| self.cache.lookup(k)).collect()
    }

    async fn fetch(&self, keys: &[String], kinds: Kinds, claims: &Claims) -> Result<Vec<Slot>, StoreError> {
        // Keyed by the whole key list: two tokens sharing a jti but not a
        // sub (an issuer reusing jtis) must not share an answer. The leader
        // caches the answer *inside* the flight, with the epoch taken before
        // its round trip: a request arriving as the flight lands finds the
        // cache filled, and one joining after an invalidation cannot cache
        // the older answer. A new leader looks at the cache once more: a
        // request that missed it just before the previous flight landed
        // would otherwise make a second round trip for the same answer.
        let flight_key = keys.join("\n");
        let fetched = self
            .flights
            .run(&flight_key, || async {
                if let Some(slots) = self.cached(keys) {
                    return Ok(Flown { slots: Arc::new(slots), from_cache: true });
                }
                let epoch = self.cache.epoch();
                let values = self.guarded_fetch(keys).await?;
                let slots = Arc::new(self.slots(&values, kinds));
                self.remember(keys, kinds, &slots, claims, epoch);
                Ok(Flown { slots, from_cache: false })
            })
            .await?;
        self.checks.count(match (fetched.from_cache, revoked(claims, kinds, &fetched.slots)) {
            (true, _) => CheckSource::Cache,
            (false, true) => CheckSource::StoreHit,
            (false, false) => CheckSource::StoreMiss,
        });
        Ok(fetched.slots.to_vec())
    }

    /// Store values as slots; a legacy value not in `values` means absent.
    fn slots(&self, values: &[Option<String>], kinds: Kinds) -> Vec<Slot> {
        values
            .iter()
            .zip(kinds.iter())
            .map(|(value, kind)| match (value, kind) {
                (None, _) => Slot::Absent,
                (Some(v), KeyKind::Legacy) if !self.policy.legacy.value_means_revoked(v) => Slot::Absent,
                (Some(v), _) => Slot::Present(v.trim().parse().unwrap_or(1)),
            })
            .collect()
    }

    fn remember(&self, keys: &[String], kinds: Kinds, slots: &[Slot], claims: &Claims, epoch: cache::Epoch) {
        let token_until = Instant::now() + secs_until(self.expires_at(claims));
        let mut present = false;
        for ((key, kind), slot) in keys.iter().zip(kinds.iter()).zip(slots) {
            let present_until = (kind == KeyKind::Token).then_some(token_until);
            present |= if kind == KeyKind::Legacy {
                // Legacy lists are written by the app, not announced: cache briefly.
                self.cache.remember_fetched_for(key.clone(), *slot, epoch, self.policy.legacy.cache_ttl)
            } else {
                self.cache.remember_fetched(key.clone(), *slot, epoch, present_until)
            };
        }
        if present {
            self.cache.fetched_present();
        }
    }

    async fn guarded_fetch(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        self.guarded("fetch", self.store.fetch(keys)).await
    }

    async fn guarded<T>(&self, op: &'static str, call: BoxFuture<'_, Result<T, StoreError>>) -> Result<T, StoreError> {
        let permit = self.breaker.permit();
        // If this future is dropped mid-call (client gone), the guard frees
        // the half-open probe slot so the circuit can still close.
        let _probe = breaker::ProbeGuard::new(&self.breaker, permit);
        if permit == Permit::Refuse {
            metrics::counter!("jwtgate_store_errors_total", "op" => op, "kind" => "circuit_open").increment(1);
            return Err(StoreError::CircuitOpen);
        }
        if permit == Permit::Probe {
            // `call` has not started yet (futures are lazy): it runs on
            // whatever connection this leaves in place.
            self.store.reconnect();
        }
        let started = Instant::now();
        let result = call.await;
        metrics::histogram!("jwtgate_store_latency_seconds", "op" => op).record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("jwtgate_store_errors_total", "op" => op, "kind" => "error").increment(1);
        }
        self.breaker.record(permit, result.is_ok());
        result
    }

    fn on_store_error(&self, err: StoreError) -> Result<(), ProxyError> {
        match self.policy.on_store_error {
            // Logged by whoever answers the request, with this cause.
            OnStoreError::FailClosed => Err(err.into()),
            OnStoreError::FailOpen => {
                tracing::warn!(error = %Causes(&err), "revocation check failed; forwarding unchecked (fail_open)");
                Ok(())
            }
        }
    }

    /// When a token's revocation may be forgotten: its expiry plus leeway,
    /// or the longest accepted lifetime for a token without `exp`.
    fn expires_at(&self, claims: &Claims) -> i64 {
        match claims.exp_unix {
            Some(exp) => exp.saturating_add(self.policy.leeway_secs),
            None => crate::auth::now_unix().saturating_add(self.policy.max_token_lifetime.as_secs() as i64),
        }
    }

    /// Writes `change` (store + announcement) and applies it locally. A
    /// failure is always an error, whatever `on_store_error` says: a logout
    /// must never report a false success.
    pub async fn write(&self, mut change: Change) -> Result<(), ProxyError> {
        change.sent_ms = now_ms();
        self.guarded("write", self.store.write(&change)).await?;
        let slot = change.value.as_deref().map(|v| Slot::Present(v.parse().unwrap_or(1)));
        self.cache.apply(change.key, slot, Instant::now() + secs_until(change.expires_at));
        Ok(())
    }

    /// Revokes one token (logout).
    pub async fn revoke_token(&self, claims: &Claims) -> Result<Record, ProxyError> {
        let key = self.token_key(claims)?;
        let expires_at = self.expires_at(claims);
        self.write(Change { key: key.clone(), value: Some("1".into()), expires_at, sent_ms: 0 }).await?;
        metrics::counter!("jwtgate_logouts_total", "kind" => "token").increment(1);
        Ok(Record { key, jti: claims.jti.clone(), expires_at })
    }

    /// A logout repeated with a token already refused as revoked: written
    /// again only when the store lacks the record (a write a failover lost,
    /// a 503 the client retries), so repeating a logout costs a read, not a
    /// write and a message to every replica.
    pub async fn revoke_token_again(&self, claims: &Claims) -> Result<Record, ProxyError> {
        let key = self.token_key(claims)?;
        if self.read(&key).await?.is_none() {
            return self.revoke_token(claims).await;
        }
        Ok(Record { key, jti: claims.jti.clone(), expires_at: self.expires_at(claims) })
    }

    /// Revokes every token of `key`'s subject or session issued at or before
    /// `cut_off` (Unix seconds). The record lives for the longest token lifetime.
    pub async fn revoke_cut_off(&self, key: String, cut_off: i64, kind: &'static str) -> Result<Record, ProxyError> {
        let expires_at = crate::auth::now_unix().saturating_add(self.policy.max_token_lifetime.as_secs() as i64);
        self.write(Change { key: key.clone(), value: Some(cut_off.to_string()), expires_at, sent_ms: 0 }).await?;
        metrics::counter!("jwtgate_logouts_total", "kind" => kind).increment(1);
        Ok(Record { key, jti: None, expires_at })
    }

    /// Reads one key from the store, bypassing the cache (admin API).
    pub async fn read(&self, key: &str) -> Result<Option<String>, ProxyError> {
        let keys = [key.to_string()];
        let values = self.guarded_fetch(&keys).await?;
        Ok(values.into_iter().next().flatten())
    }
}

/// The decision: any present token key, a cut-off at or after the token's
/// `iat` (or any cut-off when the token has no `iat`), or a legacy hit.
fn revoked(claims: &Claims, kinds: Kinds, slots: &[Slot]) -> bool {
    kinds.iter().zip(slots).any(|(kind, slot)| revokes(claims.iat_unix, kind, *slot))
}

/// Whether `slot` under a key of `kind` revokes a token issued at `iat`.
fn revokes(iat: Option<i64>, kind: KeyKind, slot: Slot) -> bool {
    match (kind, slot) {
        (_, Slot::Absent) => false,
        (KeyKind::Token | KeyKind::Legacy, Slot::Present(_)) => true,
        (KeyKind::CutOff, Slot::Present(cut_off)) => iat.is_none_or(|iat| iat <= cut_off),
    }
}

fn secs_until(unix: i64) -> Duration {
    Duration::from_secs(unix.saturating_sub(crate::auth::now_unix()).max(0) as u64)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
