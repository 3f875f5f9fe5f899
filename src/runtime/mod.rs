//! The compiled configuration: everything the request path reads, built
//! once from a [`FileConfig`] (keys decoded, routes compiled, values
//! checked). One `Runtime` is one consistent snapshot.

use crate::auth::jwks::{JwksSettings, JwksSource};
use crate::auth::keys::{self, KeySet};
use crate::auth::{IssuerRule, Verifier};
use crate::config::load::Origin;
use crate::config::{
    AdminSpec, ConfigError, FileConfig, IssuerSpec, KeySpec, PathSpec, SecretSource, StoreKind, UpstreamSpec,
};
use crate::revocation::legacy::LegacyRules;
use crate::revocation::Policy;
use crate::routes::{PathPolicy, RouteTable};
use http::uri::Authority;
use http::{Method, Uri};
use jsonwebtoken::Algorithm;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod routes;

pub struct Runtime {
    pub listen: SocketAddr,
    /// TLS on the public listener (certificate files read and checked).
    pub tls: Option<ListenerTls>,
    /// The default upstream; `upstreams[0]` is the same, named ones follow.
    pub upstream: UpstreamSettings,
    pub upstreams: Vec<UpstreamSettings>,
    pub reload: crate::config::ReloadSpec,
    pub verifier: Verifier,
    pub routes: RouteTable,
    pub logout: LogoutRule,
    /// How request paths are read for every decision (case, repeated slashes).
    pub paths: PathPolicy,
    /// Peers whose `X-Forwarded-For`, `Forwarded`, `X-Real-IP` are kept.
    pub trusted_proxies: crate::trust::TrustedProxies,
    /// One `jwtgate::access` log line per request.
    pub access_log: bool,
    /// "Log out everywhere": revokes every token of the caller's subject.
    pub logout_all: Option<LogoutRule>,
    pub backchannel: Option<BackchannelRule>,
    pub admin: Option<AdminSettings>,
    pub realm: Arc<str>,
    pub cookie: Option<String>,
    pub store: StoreSettings,
    pub policy: Policy,
}

/// The public listener's TLS: the compiled rustls config and the files it
/// came from (watched for renewal by the reload loop).
#[derive(Clone)]
pub struct ListenerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub handshake_timeout: Duration,
    /// The certificate and key bytes `config` was built from.
    pub loaded: [Vec<u8>; 2],
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub authority: Authority,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
    /// `X-Forwarded-Proto`: how clients reached jwtgate (`https` with `tls`).
    pub forwarded_proto: &'static str,
    pub websocket_idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct LogoutRule {
    pub path: String,
    pub methods: Vec<Method>,
    pub forward: bool,
}

impl LogoutRule {
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        path == self.path && !self.methods.is_empty() && crate::routes::method_listed(&self.methods, method)
    }
}

#[derive(Debug, Clone)]
pub struct BackchannelRule {
    pub path: String,
    pub issuer: String,
}

#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub token: SecretSource,
}

#[derive(Debug, Clone)]
pub enum StoreSettings {
    Memory,
    /// `nodes`: the server's URL, a cluster's seed nodes, or (with
    /// `sentinel`) the sentinels.
    Redis {
        nodes: Vec<String>,
        cluster: bool,
        sentinel: Option<SentinelSettings>,
        timeout: Duration,
        heartbeat: Duration,
        ping_timeout: Duration,
        tls_ca: Option<Vec<u8>>,
    },
}

/// The master a Redis Sentinel deployment hands out, and how to log in to it.
#[derive(Debug, Clone)]
pub struct SentinelSettings {
    pub master_name: String,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub db: i64,
    pub min_replicas_acked: u32,
}

/// Validates and compiles a parsed config. Reads key files and secret env
/// vars; errors name the field (and its line when `origin` has the text).
pub fn compile(file: FileConfig, origin: &Origin<'_>) -> Result<Runtime, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::at(origin, field, msg);
    let listen = file.listen.parse().map_err(|e| err("listen", format!("not an ip:port address: {e}")))?;
    let tls = file.tls.as_ref().map(|t| compile_tls(t, origin)).transpose()?;
    let forwarded_proto = if tls.is_some() { "https" } else { "http" };
    let upstream = UpstreamSettings { forwarded_proto, ..compile_upstream(&file.upstream, "upstream", origin)? };
    if file.jwt.issuers.is_empty() {
        return Err(err("jwt.issuers", "at least one issuer is required".into()));
    }
    let j = &file.jwt.jwks;
    if j.min_refresh > j.max_refresh || j.min_refresh.is_zero() || j.fetch_timeout.is_zero() {
        return Err(err("jwt.jwks", "need 0 < min_refresh <= max_refresh and a non-zero fetch_timeout".into()));
    }
    let jwks_settings = JwksSettings {
        min_refresh: j.min_refresh,
        max_refresh: j.max_refresh,
        unknown_kid_cooldown: j.unknown_kid_cooldown,
        fetch_timeout: j.fetch_timeout,
        retry: j.min_refresh.min(std::time::Duration::from_secs(10)),
        extra_roots: match &j.ca_file {
            None => None,
            Some(p) => Some(
                crate::auth::jwks::ExtraRoots::from_pem_file(&origin.dir.join(p))
                    .map_err(|m| err("jwt.jwks.ca_file", m))?,
            ),
        },
    };
    let mut rules = Vec::new();
    for (i, spec) in file.jwt.issuers.iter().enumerate() {
        if file.jwt.issuers[..i].iter().any(|o| o.issuer == spec.issuer) {
            return Err(err(&format!("jwt.issuers[{i}].issuer"), format!("duplicate issuer `{}`", spec.issuer)));
        }
        rules.push(compile_issuer(spec, &format!("jwt.issuers[{i}]"), &jwks_settings, origin)?);
    }
    let leeway_secs = file.jwt.leeway.as_secs() as i64;
    let verifier = Verifier::new(
        rules,
        leeway_secs,
        file.jwt.max_token_bytes,
        file.jwt.require_exp,
        file.jwt.verified_cache_entries,
    );
    let upstream_names: Vec<String> = file.upstreams.keys().cloned().collect();
    let routes = routes::compile(&file.routes, &upstream_names, file.case_sensitive_paths, origin)?;
    let mut upstreams = vec![upstream.clone()];
    for (name, spec) in &file.upstreams {
        upstreams.push(UpstreamSettings {
            forwarded_proto,
            ..compile_upstream(spec, &format!("upstreams.{name}"), origin)?
        });
    }
    let logout = LogoutRule {
        path: compile_path(&file.logout.path, file.case_sensitive_paths, "logout.path", origin)?,
        methods: compile_methods(&file.logout.methods, "logout.methods", origin)?,
        forward: file.logout.forward,
    };
    let rev = &file.revocation;
    let store = match (rev.store, &rev.redis) {
        (StoreKind::Memory, _) => StoreSettings::Memory,
        (StoreKind::Redis, None) => {
            return Err(err("revocation.redis", "store: redis needs a `redis:` section with a url".into()))
        }
        (StoreKind::Redis, Some(r)) => {
            let one_of = "exactly one of url, cluster_nodes, sentinel is required";
            let (nodes, list): (Vec<String>, &str) = match (&r.url, r.cluster_nodes.is_empty(), &r.sentinel) {
                (Some(url), true, None) => (vec![url.clone()], "url"),
                (None, false, None) => (r.cluster_nodes.clone(), "cluster_nodes"),
                (None, true, Some(s)) => (s.nodes.clone(), "sentinel.nodes"),
                _ => return Err(err("revocation.redis", one_of.into())),
            };
            if nodes.is_empty() {
                return Err(err(&format!("revocation.redis.{list}"), "at least one node is required".into()));
            }
            let sentinel = r.sentinel.as_ref().map(|s| compile_sentinel(s, origin)).transpose()?;
            for (i, node) in nodes.iter().enumerate() {
                let field = if r.url.is_some() {
                    "revocation.redis.url".to_string()
                } else {
                    format!("revocation.redis.{list}[{i}]")
                };
                redis::Client::open(node.as_str()).map_err(|e| err(&field, format!("not a usable redis url: {e}")))?;
            }
            let tls_ca = match &r.tls_ca_file {
                None => None,
                Some(p) => Some(std::fs::read(origin.dir.join(p)).map_err(|e| {
                    err("revocation.redis.tls_ca_file", format!("cannot read {}: {e}", origin.dir.join(p).display()))
                })?),
            };
            if tls_ca.is_some() && r.url.is_none() {
                return Err(err("revocation.redis.tls_ca_file", "a private CA is supported with `url` only".into()));
            }
            // A zero interval would stop the subscriber; a zero PING timeout
            // would drop every subscription at its first heartbeat.
            for (field, value) in [("heartbeat", r.heartbeat), ("ping_timeout", r.ping_timeout)] {
                if value.is_zero() {
                    return Err(err(&format!("revocation.redis.{field}"), "must be more than zero".into()));
                }
            }
            let cluster = !r.cluster_nodes.is_empty();
            let (timeout, heartbeat, ping_timeout) = (r.timeout, r.heartbeat, r.ping_timeout);
            StoreSettings::Redis { nodes, cluster, sentinel, timeout, heartbeat, ping_timeout, tls_ca }
        }
    };
    let policy = Policy {
        key_prefix: rev.redis.as_ref().map_or_else(|| "jwtgate:".into(), |r| r.key_prefix.clone()),
        on_store_error: rev.on_store_error,
        missing_jti: rev.missing_jti,
        leeway_secs,
        max_token_lifetime: rev.max_token_lifetime,
        not_revoked_ttl: rev.cache.not_revoked_ttl,
        cache_entries: rev.cache.max_entries,
        circuit_failures: rev.circuit.failures,
        circuit_cooldown: rev.circuit.cooldown,
        legacy: rev.legacy.as_ref().map_or_else(LegacyRules::default, |l| LegacyRules {
            templates: l.keys.clone(),
            values: l.values.clone(),
            cache_ttl: l.cache_ttl,
        }),
    };
    if rev.legacy.as_ref().is_some_and(|l| l.keys.is_empty()) {
        return Err(err("revocation.legacy.keys", "at least one key template is required".into()));
    }
    let cs = file.case_sensitive_paths;
    let logout_all = file.logout_all.as_ref().map(|p| compile_path_rule(p, cs, "logout_all", origin)).transpose()?;
    let backchannel = match &file.backchannel_logout {
        None => None,
        Some(b) => {
            if !file.jwt.issuers.iter().any(|i| i.issuer == b.issuer) {
                return Err(err("backchannel_logout.issuer", format!("`{}` is not one of jwt.issuers", b.issuer)));
            }
            Some(BackchannelRule {
                path: compile_path(&b.path, cs, "backchannel_logout.path", origin)?,
                issuer: b.issuer.clone(),
            })
        }
    };
    let admin = file.admin.as_ref().map(|a| compile_admin(a, origin)).transpose()?;
    let trusted_proxies = file
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, block)| {
            crate::trust::Cidr::parse(block).map_err(|m| ConfigError::at(origin, format!("trusted_proxies[{i}]"), m))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(crate::trust::TrustedProxies::new)?;
    Ok(Runtime {
        listen,
        tls,
        upstream,
        upstreams,
        reload: file.reload.clone(),
        verifier,
        routes,
        logout,
        paths: PathPolicy { case_sensitive: file.case_sensitive_paths, repeated_slashes: file.repeated_slashes },
        trusted_proxies,
        access_log: file.access_log,
        logout_all,
        backchannel,
        admin,
        realm: file.jwt.realm.replace('"', "").into(),
        cookie: file.jwt.cookie.clone(),
        store,
        policy,
    })
}

fn compile_path_rule(spec: &PathSpec, cs: bool, at: &str, origin: &Origin<'_>) -> Result<LogoutRule, ConfigError> {
    Ok(LogoutRule {
        path: compile_path(&spec.path, cs, &format!("{at}.path"), origin)?,
        methods: compile_methods(&spec.methods, &format!("{at}.methods"), origin)?,
        forward: false,
    })
}

fn compile_admin(spec: &AdminSpec, origin: &Origin<'_>) -> Result<AdminSettings, ConfigError> {
    let listen = spec
        .listen
        .parse()
        .map_err(|e| ConfigError::at(origin, "admin.listen", format!("not an ip:port address: {e}")))?;
    let token = match (&spec.token_env, &spec.token_file, &spec.insecure_token) {
        (Some(var), None, None) => {
            crate::config::secret::from_env(var).map_err(|m| ConfigError::at(origin, "admin.token_env", m))?
        }
        (None, Some(p), None) => crate::config::secret::from_file(&origin.dir.join(p))
            .map_err(|m| ConfigError::at(origin, "admin.token_file", m))?,
        (None, None, Some(t)) => t.clone(),
        _ => {
            return Err(ConfigError::at(
                origin,
                "admin",
                "exactly one of token_env, token_file, insecure_token is required",
            ))
        }
    };
    if token.expose().len() < 16 {
        return Err(ConfigError::at(origin, "admin", "the admin token must be at least 16 bytes"));
    }
    Ok(AdminSettings { listen, token })
}

fn compile_sentinel(spec: &crate::config::SentinelSpec, origin: &Origin<'_>) -> Result<SentinelSettings, ConfigError> {
    if spec.master_name.is_empty() {
        return Err(ConfigError::at(origin, "revocation.redis.sentinel.master_name", "must not be empty".to_string()));
    }
    let password = match &spec.password_env {
        None => None,
        Some(name) => Some(
            crate::config::secret::from_env(name)
                .map_err(|m| ConfigError::at(origin, "revocation.redis.sentinel.password_env", m))?,
        ),
    };
    Ok(SentinelSettings {
        master_name: spec.master_name.clone(),
        username: spec.username.clone(),
        password,
        db: spec.db,
        min_replicas_acked: spec.min_replicas_acked,
    })
}

/// Reads and checks the listener's certificate and key (a key that is not
/// the certificate's is refused here, naming `tls.key_file`).
fn compile_tls(spec: &crate::config::TlsSpec, origin: &Origin<'_>) -> Result<ListenerTls, ConfigError> {
    let (cert_file, key_file) = (origin.dir.join(&spec.cert_file), origin.dir.join(&spec.key_file));
    if spec.handshake_timeout.is_zero() {
        return Err(ConfigError::at(origin, "tls.handshake_timeout", "must be more than zero".to_string()));
    }
    let loaded = crate::tls::load(&cert_file, &key_file, crate::tls::ALPN_H2_AND_HTTP1).map_err(|e| {
        let field = if e.key { "tls.key_file" } else { "tls.cert_file" };
        ConfigError::at(origin, field, e.to_string())
    })?;
    Ok(ListenerTls {
        config: loaded.config,
        cert_file,
        key_file,
        handshake_timeout: spec.handshake_timeout,
        loaded: [loaded.cert_pem, loaded.key_pem],
    })
}

fn compile_upstream(spec: &UpstreamSpec, at: &str, origin: &Origin<'_>) -> Result<UpstreamSettings, ConfigError> {
    let bad = |msg: &str| ConfigError::at(origin, format!("{at}.url"), msg.to_string());
    let uri: Uri = spec.url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http://host:port upstreams are supported"));
    }
    if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(bad("the upstream URL must not have a path (paths are forwarded as received)"));
    }
    let authority = uri.authority().cloned().ok_or_else(|| bad("missing host"))?;
    if spec.websocket_idle_timeout.is_zero() {
        return Err(ConfigError::at(
            origin,
            format!("{at}.websocket_idle_timeout"),
            "must be more than zero".to_string(),
        ));
    }
    Ok(UpstreamSettings {
        authority,
        timeout: spec.timeout,
        connect_timeout: spec.connect_timeout,
        pool_max_idle: spec.pool_max_idle,
        pool_idle_timeout: spec.pool_idle_timeout,
        forwarded_proto: "http",
        websocket_idle_timeout: spec.websocket_idle_timeout,
    })
}

fn compile_issuer(
    spec: &IssuerSpec,
    at: &str,
    jwks_settings: &JwksSettings,
    origin: &Origin<'_>,
) -> Result<IssuerRule, ConfigError> {
    let mut algorithms = Vec::new();
    for (i, name) in spec.algorithms.iter().enumerate() {
        let alg: Algorithm = name.parse().map_err(|_| {
            ConfigError::at(origin, format!("{at}.algorithms[{i}]"), format!("unknown algorithm `{name}`; expected one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA (`none` is never accepted)"))
        })?;
        algorithms.push(alg);
    }
    if algorithms.is_empty() {
        return Err(ConfigError::at(origin, format!("{at}.algorithms"), "at least one algorithm is required"));
    }
    let mut keys = KeySet::default();
    let mut jwks = Vec::new();
    for (i, key) in spec.keys.iter().enumerate() {
        let field = format!("{at}.keys[{i}]");
        if let Some(url) = &key.jwks_url {
            if key.kid.is_some()
                || key.pem_file.is_some()
                || key.jwks_file.is_some()
                || key.secret_env.is_some()
                || key.secret_file.is_some()
                || key.insecure_secret.is_some()
            {
                return Err(ConfigError::at(
                    origin,
                    field,
                    "a jwks_url entry has no other field (the set brings its kids)",
                ));
            }
            let source = JwksSource::new(url, jwks_settings.clone())
                .map_err(|e| ConfigError::at(origin, format!("{field}.jwks_url"), e))?;
            jwks.push(source);
            continue;
        }
        for k in load_key(key, origin.dir).map_err(|(f, msg)| ConfigError::at(origin, format!("{field}{f}"), msg))? {
            keys.add(k).map_err(|msg| ConfigError::at(origin, field.clone(), msg))?;
        }
    }
    if keys.is_empty() && jwks.is_empty() {
        return Err(ConfigError::at(origin, format!("{at}.keys"), "at least one key is required"));
    }
    // Families of fetched keys are known only once fetched.
    if jwks.is_empty() {
        for alg in &algorithms {
            if !keys.families().any(|f| f == alg.family()) {
                return Err(ConfigError::at(origin, format!("{at}.algorithms"), format!("{alg:?} is allowed but no key of its family is configured (an HMAC secret never verifies RS/ES/EdDSA, a public key never HS)")));
            }
        }
    }
    let issuer_tag: Arc<str> = crate::revocation::keys::issuer_tag(&spec.issuer).into();
    Ok(IssuerRule {
        issuer: spec.issuer.clone(),
        issuer_tag,
        audiences: spec.audiences.clone(),
        algorithms,
        keys,
        jwks,
    })
}

/// Loads one key source; the error carries the sub-field that failed.
fn load_key(spec: &KeySpec, dir: &Path) -> Result<Vec<keys::Key>, (String, String)> {
    let kid = spec.kid.clone();
    let read = |field: &str, p: &str| {
        std::fs::read(dir.join(p))
            .map_err(|e| (format!(".{field}"), format!("cannot read {}: {e}", dir.join(p).display())))
    };
    let sources = [
        spec.pem_file.is_some(),
        spec.jwks_file.is_some(),
        spec.jwks_url.is_some(),
        spec.secret_env.is_some(),
        spec.secret_file.is_some(),
        spec.insecure_secret.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err((
            String::new(),
            "exactly one of pem_file, jwks_file, jwks_url, secret_env, secret_file, insecure_secret is required".into(),
        ));
    }
    if let Some(p) = &spec.pem_file {
        let pem = read("pem_file", p)?;
        return keys::from_pem(kid, &pem)
            .map(|k| vec![k])
            .map_err(|m| (".pem_file".into(), format!("{}: {m}", dir.join(p).display())));
    }
    if let Some(p) = &spec.jwks_file {
        if kid.is_some() {
            return Err((".kid".into(), "a jwks_file brings its own kids; remove kid".into()));
        }
        let json = read("jwks_file", p)?;
        return keys::from_jwks(&json).map_err(|m| (".jwks_file".into(), format!("{}: {m}", dir.join(p).display())));
    }
    let secret = match (&spec.secret_env, &spec.secret_file, &spec.insecure_secret) {
        (Some(var), _, _) => crate::config::secret::from_env(var).map_err(|m| (".secret_env".into(), m))?,
        (_, Some(p), _) => crate::config::secret::from_file(&dir.join(p)).map_err(|m| (".secret_file".into(), m))?,
        (_, _, Some(s)) => s.clone(),
        _ => return Err((String::new(), "no key source".into())),
    };
    Ok(vec![keys::from_secret(kid, secret.expose())])
}

/// A configured path in the form requests are compared in (see
/// `routes::normalize_path`).
pub(crate) fn compile_path(
    p: &str,
    case_sensitive: bool,
    field: &str,
    origin: &Origin<'_>,
) -> Result<String, ConfigError> {
    match crate::routes::configured_path(p, case_sensitive) {
        Some(path) => Ok(path),
        None => Err(ConfigError::at(
            origin,
            field,
            format!("`{p}` is not an absolute path without dot segments or encoded separators"),
        )),
    }
}

pub(crate) fn compile_methods(names: &[String], field: &str, origin: &Origin<'_>) -> Result<Vec<Method>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let upper = m.to_ascii_uppercase();
            Method::from_bytes(upper.as_bytes())
                .map_err(|_| ConfigError::at(origin, format!("{field}[{i}]"), format!("`{m}` is not an HTTP method")))
        })
        .collect()
}
