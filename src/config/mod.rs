//! The YAML configuration as written (serde types), read and parsed by
//! `load`; the bottom layer: it uses no other module of the crate. Each
//! section is compiled beside the types it becomes (`auth::compile`,
//! `routes::compile`, `revocation::compile`, `upstream::compile`), and
//! `runtime::compile` assembles them; nothing here is used on the request
//! path. Defaults live here, in `defaults` (the JWKS ones too).

mod duration;
pub mod load;
mod method;
mod position;
mod route_spec;
pub mod secret;

pub use duration::{parse_duration, DurationError};
pub use load::{parse_str, read_file, ConfigError, Origin, Overrides, Source};
pub use method::check_method;
pub use route_spec::{
    AuthMode, ClaimConditionSpec, CorsSpec, HeaderMatchSpec, MatchSpec, PreflightMode, RequireSpec, RouteSpec,
};
pub use secret::{redact_url, SecretSource};

use serde::Deserialize;
use std::time::Duration;

/// Section tests: one section of the YAML (`jwt:`, `routes:`, ...) parsed
/// from a string, and the origin its errors are placed in.
#[cfg(test)]
pub(crate) mod testing {
    use super::load::Origin;
    use serde::de::DeserializeOwned;

    /// The `key:` section of `text`, as its type.
    pub fn section<T: DeserializeOwned>(text: &str, key: &str) -> T {
        let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        serde_yaml::from_value(doc.get(key).cloned().unwrap_or_default()).unwrap()
    }

    pub fn origin(text: &str) -> Origin<'_> {
        Origin { name: "test.yaml", dir: std::path::Path::new("."), text: Some(text) }
    }
}

/// The whole file. Every struct refuses unknown fields so a typo is an error,
/// not a silently ignored setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: String,
    /// TLS on the public listener; absent = plain HTTP (h1 + h2c).
    #[serde(default)]
    pub tls: Option<TlsSpec>,
    pub upstream: UpstreamSpec,
    /// Named upstreams a route may pick with `upstream: <name>`.
    #[serde(default)]
    pub upstreams: std::collections::BTreeMap<String, UpstreamSpec>,
    pub jwt: JwtSpec,
    #[serde(default)]
    pub revocation: RevocationSpec,
    #[serde(default)]
    pub logout: LogoutSpec,
    #[serde(default)]
    pub logout_all: Option<PathSpec>,
    #[serde(default)]
    pub backchannel_logout: Option<BackchannelSpec>,
    #[serde(default)]
    pub admin: Option<AdminSpec>,
    /// Forward-auth: jwtgate answers an ingress's or a mesh's "may this
    /// request pass?" instead of forwarding it.
    #[serde(default)]
    pub forward_auth: Option<ForwardAuthSpec>,
    #[serde(default)]
    pub reload: ReloadSpec,
    /// Match paths with case. Default false: `/Admin` is matched as
    /// `/admin`, as Express and IIS route it (a rule then covers every
    /// spelling the app would serve).
    #[serde(default)]
    pub case_sensitive_paths: bool,
    /// `//internal/x`: merged into `/internal/x` for every decision and in
    /// the forwarded path (default), or refused with 400.
    #[serde(default)]
    pub repeated_slashes: RepeatedSlashes,
    /// Peers (CIDR blocks or addresses) whose forwarding headers are
    /// believed: an ingress or load balancer in front. Default: none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// One log line per request (target `jwtgate::access`, level info),
    /// written when the response body ends: request id, method, path
    /// without the query, rule, status, outcome and reason, latencies,
    /// bytes, user agent, client, issuer. Never the token, the query, a
    /// cookie or a credential header.
    #[serde(default)]
    pub access_log: bool,
    /// With `access_log`: a key (env var or file, >= 16 bytes) to log
    /// `sub_hmac`, HMAC-SHA256(key, sub) truncated to 128 bits in hex, so
    /// one user's requests can be followed without the log holding who.
    #[serde(default)]
    pub access_log_subject_key_env: Option<String>,
    #[serde(default)]
    pub access_log_subject_key_file: Option<String>,
    /// Log line format of `jwtgate run` (`--log-format` and
    /// `JWTGATE_LOG_FORMAT` win). Read once at start, before the first log
    /// line: a reload does not change it.
    #[serde(default)]
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: `time` (RFC 3339, UTC), `level`, `target`,
    /// `message` and the event's own fields, all at the top level.
    Json,
}

impl LogFormat {
    /// The spelling in the YAML and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// What a request path with repeated slashes gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepeatedSlashes {
    /// Merged for every decision and in the path sent upstream, as nginx
    /// (`merge_slashes`), Express and Spring read it.
    #[default]
    Merge,
    /// Refused with 400 `repeated_slashes`: nothing is rewritten.
    Reject,
}

/// Certificate and key of the public listener, PEM. Relative paths are
/// relative to the config file. Both files are watched like the config:
/// a renewed pair is used for new connections without a restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub cert_file: String,
    pub key_file: String,
    /// A client must finish its TLS handshake within this.
    #[serde(default = "defaults::tls_handshake_timeout", with = "duration::serde_fmt")]
    pub handshake_timeout: Duration,
}

/// Hot reload: SIGHUP always reloads; `watch` also polls the file (and
/// the symlinks a Kubernetes ConfigMap mount swaps) for changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadSpec {
    #[serde(default = "defaults::yes")]
    pub watch: bool,
    #[serde(default = "defaults::reload_poll", with = "duration::serde_fmt")]
    pub poll_interval: Duration,
}

impl Default for ReloadSpec {
    fn default() -> Self {
        Self { watch: true, poll_interval: defaults::reload_poll() }
    }
}

/// A path and the methods it answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    pub path: String,
    #[serde(default = "defaults::logout_methods")]
    pub methods: Vec<String>,
    /// As `logout.cors`.
    #[serde(default)]
    pub cors: Option<CorsSpec>,
}

/// OpenID Connect Back-Channel Logout receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackchannelSpec {
    pub path: String,
    /// The issuer (one of `jwt.issuers`) whose logout tokens are accepted.
    pub issuer: String,
}

/// The admin listener; never the public one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    #[serde(default = "defaults::admin_listen")]
    pub listen: String,
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub token_file: Option<String>,
    #[serde(default)]
    pub insecure_token: Option<SecretSource>,
    /// `none` serves `GET /metrics` without the admin token (to a
    /// Prometheus that should not hold it; restrict the port with a
    /// NetworkPolicy). Every other admin endpoint keeps the token.
    #[serde(default)]
    pub metrics_auth: MetricsAuth,
}

/// The forward-auth listeners; never the public one. Only peers in
/// `trusted_proxies` get an answer there: the original request's method
/// and URI come from headers any other client could forge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthSpec {
    /// The HTTP authorizer (nginx `auth_request`, ingress-nginx
    /// `auth-url`, Traefik `ForwardAuth`, Envoy `ext_authz` HTTP service).
    #[serde(default)]
    pub listen: Option<String>,
    /// Which proxy asks on `listen`: the original request is read from
    /// that proxy's headers and no other's (each passes a client's own
    /// headers of the others' kind on to the check).
    #[serde(default)]
    pub proxy: Option<FrontProxy>,
    /// Envoy's `http_service.path_prefix`: taken off the path of a check
    /// request that carries no `X-Original-*` or `X-Forwarded-Uri` header
    /// (Envoy sends the original method and path as its own).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// The Envoy `envoy.service.auth.v3.Authorization` gRPC service
    /// (Envoy `ext_authz` with `grpc_service`, Istio `CUSTOM` action).
    #[serde(default)]
    pub grpc_listen: Option<String>,
}

/// The proxy in front that asks jwtgate on the forward-auth listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontProxy {
    /// nginx `auth_request`, ingress-nginx `auth-url`: `X-Original-Method`
    /// with `X-Original-URI` or `X-Original-URL`.
    Nginx,
    /// Traefik `ForwardAuth`: `X-Forwarded-Method`, `-Uri`, `-Host`.
    Traefik,
    /// Envoy's `ext_authz` HTTP service: its own method, host and path
    /// (behind `path_prefix`).
    Envoy,
}

/// Who may scrape `/metrics` on the admin listener.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsAuth {
    /// The admin token, like every other admin endpoint.
    #[default]
    Token,
    /// Anyone who reaches the admin port (an explicit opt-in).
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    pub url: String,
    #[serde(default = "defaults::upstream_timeout", with = "duration::serde_fmt")]
    pub timeout: Duration,
    #[serde(default = "defaults::connect_timeout", with = "duration::serde_fmt")]
    pub connect_timeout: Duration,
    #[serde(default = "defaults::pool_max_idle")]
    pub pool_max_idle: usize,
    #[serde(default = "defaults::pool_idle_timeout", with = "duration::serde_fmt")]
    pub pool_idle_timeout: Duration,
    /// HTTP/1.1 client connections that get an upstream connection of
    /// their own (from their second request); past this, the pool.
    #[serde(default = "defaults::affinity_max")]
    pub affinity_max: usize,
    /// An own upstream connection unused this long goes back to the pool
    /// (so an idle client holds none of the app's connections).
    #[serde(default = "defaults::affinity_idle_timeout", with = "duration::serde_fmt")]
    pub affinity_idle_timeout: Duration,
    /// A WebSocket tunnel with no byte in either direction for this long is
    /// closed (apps that keep sockets open send pings more often).
    #[serde(default = "defaults::websocket_idle_timeout", with = "duration::serde_fmt")]
    pub websocket_idle_timeout: Duration,
    /// An https upstream's CA certificates (PEM): its certificate must
    /// chain to one of them, and the public roots are then not trusted.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// A client certificate chain (PEM, leaf first) and its key, for an
    /// https upstream that requires mutual TLS; both or neither.
    #[serde(default)]
    pub client_cert_file: Option<String>,
    #[serde(default)]
    pub client_key_file: Option<String>,
    /// Development only: an https upstream's certificate is not checked
    /// at all (warned about at every start and reload).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSpec {
    #[serde(default = "defaults::realm")]
    pub realm: String,
    #[serde(default = "defaults::leeway", with = "duration::serde_fmt")]
    pub leeway: Duration,
    #[serde(default = "defaults::max_token_bytes")]
    pub max_token_bytes: usize,
    #[serde(default = "defaults::yes")]
    pub require_exp: bool,
    #[serde(default)]
    pub cookie: Option<String>,
    #[serde(default = "defaults::cache_entries")]
    pub verified_cache_entries: usize,
    #[serde(default)]
    pub jwks: JwksSpec,
    pub issuers: Vec<IssuerSpec>,
}

/// How `jwks_url` key sets are kept current.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSpec {
    /// Bounds for the IdP's `Cache-Control: max-age`; `max_refresh` is
    /// also the interval when it sends none.
    #[serde(default = "defaults::jwks_min_refresh", with = "duration::serde_fmt")]
    pub min_refresh: Duration,
    #[serde(default = "defaults::jwks_max_refresh", with = "duration::serde_fmt")]
    pub max_refresh: Duration,
    /// A token with an unknown `kid` triggers at most one refetch per this.
    #[serde(default = "defaults::jwks_cooldown", with = "duration::serde_fmt")]
    pub unknown_kid_cooldown: Duration,
    #[serde(default = "defaults::jwks_fetch_timeout", with = "duration::serde_fmt")]
    pub fetch_timeout: Duration,
    /// PEM CA certificate(s) trusted for `jwks_url` over https besides the
    /// public (webpki) roots: an IdP with a company-internal CA.
    #[serde(default)]
    pub ca_file: Option<String>,
}

impl Default for JwksSpec {
    fn default() -> Self {
        Self {
            min_refresh: defaults::jwks_min_refresh(),
            max_refresh: defaults::jwks_max_refresh(),
            unknown_kid_cooldown: defaults::jwks_cooldown(),
            fetch_timeout: defaults::jwks_fetch_timeout(),
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpec {
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    /// Fixed keys and `jwks_url` sources; may be empty with `discovery`.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// OpenID Connect Discovery: the key set is the `jwks_uri` named by
    /// `<issuer>/.well-known/openid-configuration`, whose `issuer` must be
    /// this one exactly; refreshed as `jwt.jwks` says. Excludes a
    /// `jwks_url` key (fixed keys may stay beside it).
    #[serde(default)]
    pub discovery: bool,
}

/// One key source; exactly one of the source fields must be set (checked in
/// `load`, where the error can name the field).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub pem_file: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// A JWK Set served by the identity provider (http or https), fetched
    /// at start and refreshed in the background (see `jwt.jwks`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret_file: Option<String>,
    #[serde(default)]
    pub insecure_secret: Option<SecretSource>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Memory,
    Redis,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    #[default]
    FailClosed,
    FailOpen,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingJti {
    #[default]
    Reject,
    Hash,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSpec {
    #[serde(default)]
    pub store: StoreKind,
    #[serde(default)]
    pub redis: Option<RedisSpec>,
    #[serde(default)]
    pub on_store_error: OnStoreError,
    #[serde(default)]
    pub missing_jti: MissingJti,
    #[serde(default = "defaults::max_token_lifetime", with = "duration::serde_fmt")]
    pub max_token_lifetime: Duration,
    #[serde(default)]
    pub cache: CacheSpec,
    #[serde(default)]
    pub circuit: CircuitSpec,
    #[serde(default)]
    pub legacy: Option<LegacySpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitSpec {
    #[serde(default = "defaults::circuit_failures")]
    pub failures: u32,
    #[serde(default = "defaults::circuit_cooldown", with = "duration::serde_fmt")]
    pub cooldown: Duration,
}

impl Default for CircuitSpec {
    fn default() -> Self {
        Self { failures: defaults::circuit_failures(), cooldown: defaults::circuit_cooldown() }
    }
}

/// Read-only lookup in a blacklist the app already keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacySpec {
    /// Key templates: `{token}`, `{sha256}`, `{jti}`, `{sub}`.
    pub keys: Vec<String>,
    /// Values meaning "revoked"; empty or absent: any value.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default = "defaults::legacy_cache_ttl", with = "duration::serde_fmt")]
    pub cache_ttl: Duration,
}

impl Default for RevocationSpec {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            redis: None,
            on_store_error: OnStoreError::FailClosed,
            missing_jti: MissingJti::Reject,
            max_token_lifetime: defaults::max_token_lifetime(),
            cache: CacheSpec::default(),
            circuit: CircuitSpec::default(),
            legacy: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// One server: `redis://[user:password@]host:port/db` or `rediss://` for TLS.
    #[serde(default)]
    pub url: Option<String>,
    /// A Redis Cluster: seed node URLs (instead of `url`).
    #[serde(default)]
    pub cluster_nodes: Vec<String>,
    /// A master watched by Redis Sentinel (instead of `url`).
    #[serde(default)]
    pub sentinel: Option<SentinelSpec>,
    /// Nodes to hold the pub/sub subscription on instead of the store's own
    /// (tried in turn): replicas of the master, which get every `PUBLISH`
    /// through replication, so the fan-out to thousands of replicas costs
    /// the master nothing. Empty: the store's nodes.
    #[serde(default)]
    pub subscribe_nodes: Vec<String>,
    /// PEM CA certificate(s) that sign the server's TLS certificate, for
    /// `rediss://` with a private CA (default: the system trust store).
    #[serde(default)]
    pub tls_ca_file: Option<String>,
    #[serde(default = "defaults::key_prefix")]
    pub key_prefix: String,
    #[serde(default = "defaults::redis_timeout", with = "duration::serde_fmt")]
    pub timeout: Duration,
    /// PING interval on the pub/sub subscription.
    #[serde(default = "defaults::heartbeat", with = "duration::serde_fmt")]
    pub heartbeat: Duration,
    /// How long a heartbeat PING waits for its answer before the
    /// subscription counts as dead: a silently dead one is found within
    /// `heartbeat + ping_timeout`.
    #[serde(default = "defaults::ping_timeout", with = "duration::serde_fmt")]
    pub ping_timeout: Duration,
}

/// Redis Sentinel: the sentinels are asked for the master's address,
/// again after every connection error or `READONLY` answer (a failover).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelSpec {
    /// The name the sentinels monitor the master under.
    pub master_name: String,
    /// Sentinel URLs, `redis://[user:password@]host:26379` (the sentinels'
    /// own credentials); tried in order.
    pub nodes: Vec<String>,
    /// The master's ACL user and db; its password from `password_env`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub db: i64,
    /// A revocation is acknowledged once this many replicas have it
    /// (`WAIT`); 0 = the master's word alone. With 1, a write that lands
    /// on a master the sentinels have just replaced (and whose writes the
    /// failover discards) answers 503 and is retried on the new master,
    /// instead of a logout that is silently lost.
    #[serde(default = "defaults::one")]
    pub min_replicas_acked: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    #[serde(default = "defaults::cache_entries")]
    pub max_entries: usize,
    #[serde(default = "defaults::not_revoked_ttl", with = "duration::serde_fmt")]
    pub not_revoked_ttl: Duration,
}

impl Default for CacheSpec {
    fn default() -> Self {
        Self { max_entries: defaults::cache_entries(), not_revoked_ttl: defaults::not_revoked_ttl() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutSpec {
    #[serde(default = "defaults::logout_path")]
    pub path: String,
    #[serde(default = "defaults::logout_methods")]
    pub methods: Vec<String>,
    #[serde(default)]
    pub forward: bool,
    /// A CORS policy for pages on other origins that log out (an answer
    /// policy only: jwtgate answers this path).
    #[serde(default)]
    pub cors: Option<CorsSpec>,
}

impl Default for LogoutSpec {
    fn default() -> Self {
        Self { path: defaults::logout_path(), methods: defaults::logout_methods(), forward: false, cors: None }
    }
}

mod defaults {
    use std::time::Duration;
    pub fn upstream_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn connect_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub fn one() -> u32 {
        1
    }
    pub fn websocket_idle_timeout() -> Duration {
        Duration::from_secs(300)
    }
    pub fn tls_handshake_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn pool_max_idle() -> usize {
        256
    }
    pub fn pool_idle_timeout() -> Duration {
        Duration::from_secs(90)
    }
    pub fn affinity_max() -> usize {
        64
    }
    pub fn affinity_idle_timeout() -> Duration {
        Duration::from_secs(1)
    }
    pub fn realm() -> String {
        "jwtgate".into()
    }
    pub fn leeway() -> Duration {
        Duration::from_secs(30)
    }
    pub fn max_token_bytes() -> usize {
        8192
    }
    pub fn yes() -> bool {
        true
    }
    pub fn cache_entries() -> usize {
        100_000
    }
    pub fn max_token_lifetime() -> Duration {
        Duration::from_secs(24 * 3600)
    }
    pub fn key_prefix() -> String {
        "jwtgate:".into()
    }
    pub fn redis_timeout() -> Duration {
        Duration::from_millis(50)
    }
    pub fn not_revoked_ttl() -> Duration {
        Duration::from_secs(60)
    }
    pub fn heartbeat() -> Duration {
        Duration::from_secs(1)
    }
    /// 250 ms, the most patient value that keeps the bound for a silently
    /// dead subscription near one heartbeat (1.25 s): a healthy Redis
    /// answers a PING in well under a millisecond, so only a stalled one
    /// (fork for a snapshot, a slow command, a fan-out to thousands of
    /// subscribers) takes longer, and a false alarm there would send every
    /// replica's requests to that Redis at once while it is slow.
    pub fn ping_timeout() -> Duration {
        Duration::from_millis(250)
    }
    pub fn circuit_failures() -> u32 {
        5
    }
    pub fn circuit_cooldown() -> Duration {
        Duration::from_secs(1)
    }
    pub fn legacy_cache_ttl() -> Duration {
        Duration::from_secs(1)
    }
    pub fn jwks_min_refresh() -> Duration {
        Duration::from_secs(60)
    }
    pub fn jwks_max_refresh() -> Duration {
        Duration::from_secs(3600)
    }
    pub fn jwks_cooldown() -> Duration {
        Duration::from_secs(30)
    }
    pub fn jwks_fetch_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn reload_poll() -> Duration {
        Duration::from_secs(1)
    }
    pub fn admin_listen() -> String {
        "127.0.0.1:9901".into()
    }
    pub fn logout_path() -> String {
        "/logout".into()
    }
    /// Browsers cap it (Chromium at 2 h); 10 min spares most preflights.
    pub fn cors_max_age() -> Duration {
        Duration::from_secs(600)
    }
    pub fn logout_methods() -> Vec<String> {
        vec!["POST".into()]
    }
}
