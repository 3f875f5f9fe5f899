//! A JWK Set fetched from an IdP's URL and kept current: [`JwksSource`]
//! holds the last good [`KeySet`], refreshes it on the schedule the IdP's
//! `Cache-Control` asks for (clamped), and refetches early when a token
//! names an unknown `kid`, at most once per cool-down however many kids
//! arrive. The HTTP side is in `fetch`; choosing keys for a token is left
//! to `verify`. An issuer with `discovery: true` has a source whose URL
//! comes from its OIDC discovery document (`discovery`).

mod discovery;
mod fetch;
#[cfg(test)]
mod tests;

use super::keys::KeySet;
use crate::config::JwksSpec;
use crate::error::Causes;
use arc_swap::ArcSwap;
use discovery::Discoverer;
use fetch::{Fetcher, Freshness};
use http::Uri;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

pub use discovery::{discovery_url, UrlRule};
pub use fetch::{FetchError, KeySummary};

/// Why a JWKS source (or its CA file) was refused at config load. A failed
/// fetch is a [`FetchError`].
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read {}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid PEM", path.display())]
    CaPem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{}: no PEM certificate in the file", path.display())]
    NoCertificate { path: PathBuf },
    /// Zero would turn the background task into a busy loop.
    #[error("{0} must be more than zero")]
    ZeroInterval(&'static str),
    #[error("min_refresh must not exceed max_refresh")]
    MinAboveMax,
    #[error("JWKS URL: not a URI")]
    Url(#[source] http::uri::InvalidUri),
    #[error("JWKS URL: scheme must be http or https")]
    Scheme,
    #[error("JWKS URL: host missing")]
    NoHost,
    /// Credentials would travel into logs and error texts.
    #[error("JWKS URL: credentials in the URL are not supported")]
    Credentials,
    /// The HTTP client could not be built (TLS setup, a CA certificate).
    #[error(transparent)]
    Client(FetchError),
    /// `discovery: true` on an issuer that is no URL to discover from.
    #[error("discovery needs the issuer as its URL")]
    Issuer(#[source] UrlRule),
}

/// Where a source's JWK Set is fetched from.
enum Locator {
    /// `jwks_url`: one fixed URL.
    Fixed(Arc<Fetcher>),
    /// `discovery: true`: the `jwks_uri` of the issuer's discovery document.
    Discovered(Box<Discoverer>),
}

/// What `jwtgate check` learns from one fetch of a source.
#[derive(Debug, Clone)]
pub struct Probed {
    /// The JWK Set URL fetched (for a discovery source, its `jwks_uri`).
    pub jwks_url: String,
    pub keys: Vec<KeySummary>,
}

/// How often a source refetches, and how hard it can be pushed to.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// Lower bound for `max-age`, and the interval under `no-store`/`no-cache`.
    pub min_refresh: Duration,
    /// Upper bound for `max-age`, and the interval when the IdP states none.
    pub max_refresh: Duration,
    /// At most one refetch per this period on unknown kids, across all kids.
    pub unknown_kid_cooldown: Duration,
    /// Bound on one fetch: connect, headers and body.
    pub fetch_timeout: Duration,
    /// Delay before the next attempt after a failed fetch.
    pub retry: Duration,
    /// CA certificates trusted besides the public roots (`jwt.jwks.ca_file`).
    pub extra_roots: Option<ExtraRoots>,
}

/// Private CA roots for https JWKS URLs. `Debug` (part of a source's
/// identity across reloads) shows the file and a digest of its content, so
/// a changed CA file makes a new source.
#[derive(Clone)]
pub struct ExtraRoots {
    label: String,
    certs: Arc<Vec<rustls::pki_types::CertificateDer<'static>>>,
}

impl ExtraRoots {
    /// Reads every certificate of a PEM file; an empty file is an error.
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, JwksError> {
        use rustls::pki_types::pem::PemObject;
        use sha2::Digest;
        let pem = std::fs::read(path).map_err(|source| JwksError::ReadCa { path: path.to_path_buf(), source })?;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| JwksError::CaPem { path: path.to_path_buf(), source })?;
        if certs.is_empty() {
            return Err(JwksError::NoCertificate { path: path.to_path_buf() });
        }
        let digest = sha2::Sha256::digest(&pem);
        let label =
            format!("{} sha256:{:02x}{:02x}{:02x}{:02x}", path.display(), digest[0], digest[1], digest[2], digest[3]);
        Ok(Self { label, certs: Arc::new(certs) })
    }

    pub fn certs(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        &self.certs
    }
}

impl std::fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// A failed fetch is retried after `min_refresh`, but at most this late.
const RETRY_AT_MOST: Duration = Duration::from_secs(10);

/// The defaults of `jwt.jwks` (`config::JwksSpec::default()`, the one place
/// they are written).
impl Default for JwksSettings {
    fn default() -> Self {
        Self::from_spec(&JwksSpec::default(), None)
    }
}

impl JwksSettings {
    /// `jwt.jwks` as written, with the retry delay derived from it.
    pub fn from_spec(spec: &JwksSpec, extra_roots: Option<ExtraRoots>) -> Self {
        Self {
            min_refresh: spec.min_refresh,
            max_refresh: spec.max_refresh,
            unknown_kid_cooldown: spec.unknown_kid_cooldown,
            fetch_timeout: spec.fetch_timeout,
            retry: spec.min_refresh.min(RETRY_AT_MOST),
            extra_roots,
        }
    }

    /// Zero intervals would turn the background task into a busy loop.
    fn check(&self) -> Result<(), JwksError> {
        let nonzero = [("min_refresh", self.min_refresh), ("fetch_timeout", self.fetch_timeout), ("retry", self.retry)];
        if let Some((name, _)) = nonzero.iter().find(|(_, d)| d.is_zero()) {
            return Err(JwksError::ZeroInterval(name));
        }
        if self.min_refresh > self.max_refresh {
            return Err(JwksError::MinAboveMax);
        }
        Ok(())
    }

    /// The next refresh delay for what the IdP said: `max-age` clamped to
    /// [min, max], min when told not to cache, max when told nothing.
    fn delay_for(&self, freshness: Freshness) -> Duration {
        match freshness {
            Freshness::MaxAge(age) => age.max(self.min_refresh).min(self.max_refresh),
            Freshness::Revalidate => self.min_refresh,
            Freshness::Unstated => self.max_refresh,
        }
    }
}

/// The keys published at one JWKS URL, refreshed in the background.
pub struct JwksSource {
    /// URL and settings: a reload keeps a source whose identity is
    /// unchanged, with its keys and its task.
    identity: String,
    started: AtomicBool,
    locator: Locator,
    /// The URL's host: the `source` metric label and log field (the path or
    /// query may carry tenant ids or tokens; the host does not). For a
    /// discovery source, the issuer's host, whatever host its jwks_uri names.
    host: String,
    settings: JwksSettings,
    keys: ArcSwap<KeySet>,
    ready: AtomicBool,
    /// When the background task should fetch next; set by every `refresh`.
    due: Mutex<Instant>,
    /// Last time an unknown kid was allowed to trigger a refetch.
    last_kick: Mutex<Option<Instant>>,
    kick: Arc<Notify>,
    /// Dropped with the source, which ends the background task at once even
    /// in the middle of an hour-long sleep.
    alive: watch::Sender<()>,
    /// Serialises fetches; `completed` lets a waiter reuse the result of the
    /// fetch it waited for instead of fetching again.
    flight: tokio::sync::Mutex<Option<Result<Duration, FetchError>>>,
    completed: AtomicU64,
}

impl JwksSource {
    /// Checks the URL (http or https, with a host, no credentials) and the
    /// settings; no I/O happens until `refresh` or `spawn`.
    pub fn new(url: &str, settings: JwksSettings) -> Result<Arc<Self>, JwksError> {
        settings.check()?;
        let identity = format!("{url} {settings:?}");
        let (url, host) = parse_url(url)?;
        let fetcher =
            Fetcher::new(url, settings.fetch_timeout, settings.extra_roots.as_ref()).map_err(JwksError::Client)?;
        Ok(Self::with(identity, Locator::Fixed(Arc::new(fetcher)), host, settings))
    }

    /// The source of an issuer with `discovery: true`: checks the issuer
    /// (https, or http to a loopback host; no query, fragment or
    /// credentials) and the settings; no I/O happens until `refresh`.
    pub fn discover(issuer: &str, settings: JwksSettings) -> Result<Arc<Self>, JwksError> {
        settings.check()?;
        let identity = format!("discovery {issuer} {settings:?}");
        let (discoverer, host) = Discoverer::new(issuer, &settings)?;
        Ok(Self::with(identity, Locator::Discovered(Box::new(discoverer)), host, settings))
    }

    fn with(identity: String, locator: Locator, host: String, settings: JwksSettings) -> Arc<Self> {
        Arc::new(Self {
            identity,
            started: AtomicBool::new(false),
            locator,
            host,
            settings,
            keys: ArcSwap::from_pointee(KeySet::default()),
            ready: AtomicBool::new(false),
            due: Mutex::new(Instant::now()),
            last_kick: Mutex::new(None),
            kick: Arc::new(Notify::new()),
            alive: watch::channel(()).0,
            flight: tokio::sync::Mutex::new(None),
            completed: AtomicU64::new(0),
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Loads the set once now (bounded by `fetch_timeout`, twice that with
    /// discovery: the document, then the set) and starts the
    /// background task, unless this source was started before (a source
    /// carried over by a reload keeps its keys and task).
    pub async fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(err) = self.refresh().await {
            tracing::warn!(source = %self.host, error = %Causes(&err), "JWKS not loaded at start; retrying in the background");
        }
        self.spawn();
    }

    /// The URL fetched (never with credentials: [`new`](Self::new) refuses
    /// them); for a discovery source, its discovery document's URL.
    pub fn url(&self) -> String {
        match &self.locator {
            Locator::Fixed(fetcher) => fetcher.url().to_string(),
            Locator::Discovered(discoverer) => discoverer.url().to_string(),
        }
    }

    /// Whether the URL is found by OIDC discovery (`discovery: true`).
    pub fn is_discovery(&self) -> bool {
        matches!(self.locator, Locator::Discovered(_))
    }

    /// Fetches once (for a discovery source, the document first) and says
    /// what the set holds, for `jwtgate check`: no keys are swapped in,
    /// nothing is scheduled or counted.
    pub async fn probe(&self) -> Result<Probed, FetchError> {
        let fetcher = match &self.locator {
            Locator::Fixed(fetcher) => Fetcher::clone(fetcher),
            Locator::Discovered(discoverer) => discoverer.discover().await?,
        };
        let keys = fetcher.probe().await?;
        Ok(Probed { jwks_url: fetcher.url().to_string(), keys })
    }

    /// The current keys; empty until the first good load.
    pub fn keys(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Whether a good set has been loaded at least once.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Fetches now and, on success, swaps the keys in and returns the delay
    /// until the next refresh. On failure the last good keys stay. Callers
    /// arriving while a fetch runs share its result rather than fetching again.
    pub async fn refresh(&self) -> Result<Duration, FetchError> {
        let seen = self.completed.load(Ordering::Acquire);
        let mut last = self.flight.lock().await;
        if self.completed.load(Ordering::Acquire) != seen {
            if let Some(result) = last.as_ref() {
                return result.clone();
            }
        }
        let result = self.load().await;
        *last = Some(result.clone());
        self.completed.fetch_add(1, Ordering::Release);
        result
    }

    /// Starts the background loop: fetch at once (unless a `refresh` already
    /// scheduled the next one), then whenever due or kicked by an unknown kid.
    /// The task holds only a `Weak`, so dropping the last `Arc` (a config
    /// reload replacing the source) ends it.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (weak, kick, alive) = (Arc::downgrade(self), self.kick.clone(), self.alive.subscribe());
        tokio::spawn(run(weak, kick, alive))
    }

    /// Told by the verifier that a token names a kid not in [`keys`](Self::keys):
    /// the IdP may have rotated. Never blocks; asks the background task for a
    /// refetch at most once per `unknown_kid_cooldown`, across all kids, so
    /// a flood of made-up kids costs the IdP one request per cool-down.
    /// The refetch is done by the task [`spawn`](Self::spawn) started.
    pub fn unknown_kid(self: &Arc<Self>, kid: &str) {
        if self.allow_kick(Instant::now()) {
            let kid: String = kid.chars().take(64).collect();
            tracing::debug!(source = %self.host, kid = kid.as_str(), "unknown kid; refetching JWK Set");
            self.kick.notify_one();
        }
    }

    /// The cool-down, shared by all kids: a negative answer is cached for
    /// the whole period, whichever kid asks.
    fn allow_kick(&self, now: Instant) -> bool {
        let mut last = lock(&self.last_kick);
        match *last {
            Some(at) if now.saturating_duration_since(at) < self.settings.unknown_kid_cooldown => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    fn due(&self) -> Instant {
        *lock(&self.due)
    }

    /// One fetch with its bookkeeping: swap, schedule, metrics, log. A
    /// discovery source asks its document for the URL first; a failure
    /// there (logged by the discoverer) counts as a failed fetch.
    async fn load(&self) -> Result<Duration, FetchError> {
        let fetcher = match &self.locator {
            Locator::Fixed(fetcher) => fetcher.clone(),
            Locator::Discovered(discoverer) => match discoverer.jwks(&self.settings, &self.host).await {
                Ok(fetcher) => fetcher,
                Err(error) => {
                    self.failed();
                    return Err(error);
                }
            },
        };
        let result = fetcher.fetch().await;
        if let Locator::Discovered(discoverer) = &self.locator {
            discoverer.fetched(result.is_ok());
        }
        match result {
            Ok(fetched) => {
                let delay = self.settings.delay_for(fetched.freshness);
                let count = fetched.keys.len();
                self.keys.store(Arc::new(fetched.keys));
                self.ready.store(true, Ordering::Release);
                *lock(&self.due) = Instant::now() + delay;
                metrics::counter!("jwtgate_jwks_fetches_total", "source" => self.host.clone(), "result" => "ok")
                    .increment(1);
                metrics::gauge!("jwtgate_jwks_keys", "source" => self.host.clone()).set(count as f64);
                tracing::info!(source = %self.host, keys = count, next = %humantime::format_duration(delay), "JWK Set loaded");
                Ok(delay)
            }
            Err(error) => {
                self.failed();
                tracing::warn!(source = %self.host, error = %Causes(&error), retry = %humantime::format_duration(self.settings.retry), "JWK Set fetch failed; keeping last good keys");
                Err(error)
            }
        }
    }

    /// A failed load: retry scheduled, counted.
    fn failed(&self) {
        *lock(&self.due) = Instant::now() + self.settings.retry;
        metrics::counter!("jwtgate_jwks_fetches_total", "source" => self.host.clone(), "result" => "error")
            .increment(1);
        metrics::counter!("jwtgate_jwks_fetch_errors_total", "source" => self.host.clone()).increment(1);
    }
}

/// The background loop. It upgrades its `Weak` only to fetch, never while
/// sleeping, so the source can be dropped at any moment.
async fn run(weak: Weak<JwksSource>, kick: Arc<Notify>, mut alive: watch::Receiver<()>) {
    loop {
        let Some(due) = weak.upgrade().map(|source| source.due()) else { return };
        let kicked = tokio::select! {
            _ = tokio::time::sleep_until(due) => false,
            _ = kick.notified() => true,
            _ = alive.changed() => return,
        };
        let Some(source) = weak.upgrade() else { return };
        // A direct `refresh` may have moved the schedule while we slept.
        if kicked || source.due() <= Instant::now() {
            let _ = source.refresh().await;
        }
    }
}

/// Accepts `http(s)://host[:port]/path`; refuses credentials in the URL,
/// which would otherwise travel into logs and error texts.
fn parse_url(url: &str) -> Result<(Uri, String), JwksError> {
    let uri: Uri = url.parse().map_err(JwksError::Url)?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(JwksError::Scheme);
    }
    let authority = uri.authority().ok_or(JwksError::NoHost)?;
    if authority.as_str().contains('@') {
        return Err(JwksError::Credentials);
    }
    let host = authority.host().to_string();
    if host.is_empty() {
        return Err(JwksError::NoHost);
    }
    Ok((uri, host))
}

/// A std `Mutex`, held for a read or write, never across an await; a panic
/// elsewhere cannot leave these values half-written, so poison is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
