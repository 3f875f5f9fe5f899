//! The compiled configuration. [`compile`] assembles what each section's
//! own compiler builds (`tls`, `upstream`, `auth`, `routes`, `revocation`,
//! `trust`) into a [`Compiled`] config, split by lifetime:
//!
//! - [`Runtime`], everything the request path reads: one consistent
//!   snapshot, swapped whole on reload;
//! - [`StartSettings`], what the process keeps from start to end (sockets,
//!   revocation store and policy): a reload compares it with the settings
//!   the process started with, and never swaps it.

mod start;

pub use crate::revocation::{Policy, SentinelSettings, StoreSettings};
pub use crate::routes::{BackchannelRule, LogoutRule};
pub use crate::tls::ListenerTls;
pub use crate::upstream::UpstreamSettings;
pub use start::{AdminSettings, ForwardAuthListeners, ForwardAuthRule, StartSettings};

use crate::auth::Verifier;
use crate::config::{secret, ConfigError, FileConfig, Origin, Overrides, SecretSource};
use crate::error::Causes;
use crate::routes::{PathPolicy, RouteTable};
use std::path::Path;
use std::sync::Arc;

/// One config file, compiled.
pub struct Compiled {
    pub start: StartSettings,
    pub runtime: Runtime,
}

/// What a request is decided with; a reload swaps it as a whole.
pub struct Runtime {
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
    /// One `jwtgate::access` log line per request, when set.
    pub access_log: Option<AccessLog>,
    /// "Log out everywhere": revokes every token of the caller's subject.
    pub logout_all: Option<LogoutRule>,
    pub backchannel: Option<BackchannelRule>,
    pub realm: Arc<str>,
    pub cookie: Option<String>,
    /// How the HTTP forward-auth listener reads a check, when it is on.
    pub forward_auth: Option<ForwardAuthRule>,
    /// The revocation settings in force: the ones of [`StartSettings`]
    /// (after a reload too), here for `explain`, which builds a store of
    /// its own from them.
    pub store: StoreSettings,
    pub policy: Policy,
}

/// What the access log adds to its lines.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// Key of the `sub_hmac` field (`access_log_subject_key_*`).
    pub subject_key: Option<SecretSource>,
}

fn access_log(file: &FileConfig, origin: &Origin<'_>) -> Result<Option<AccessLog>, ConfigError> {
    let at = |field: &'static str| move |e: secret::SecretError| ConfigError::at(origin, field, Causes(&e).to_string());
    let (field, key) = match (&file.access_log_subject_key_env, &file.access_log_subject_key_file) {
        (None, None) => return Ok(file.access_log.then_some(AccessLog { subject_key: None })),
        (Some(var), None) => {
            let field = "access_log_subject_key_env";
            (field, secret::from_env(var).map_err(at(field))?)
        }
        (None, Some(path)) => {
            let field = "access_log_subject_key_file";
            (field, secret::from_file(&origin.dir.join(path)).map_err(at(field))?)
        }
        (Some(_), Some(_)) => {
            let message = "set one of access_log_subject_key_env, access_log_subject_key_file";
            return Err(ConfigError::at(origin, "access_log_subject_key_file", message));
        }
    };
    if key.expose().len() < 16 {
        return Err(ConfigError::at(origin, field, "the key must be at least 16 bytes"));
    }
    if !file.access_log {
        return Err(ConfigError::at(origin, field, "a subject key logs nothing without access_log: true"));
    }
    Ok(Some(AccessLog { subject_key: Some(key) }))
}

/// Reads, parses and compiles a config file (command-line overrides win
/// over the file).
pub fn load_file(path: &Path, overrides: &Overrides) -> Result<Compiled, ConfigError> {
    let (file, source) = crate::config::read_file(path, overrides)?;
    compile(file, &source.origin()).map_err(|err| overrides.attribute(err))
}

/// Validates and compiles a parsed config. Reads key files and secret env
/// vars; errors name the field (and its line when `origin` has the text).
pub fn compile(file: FileConfig, origin: &Origin<'_>) -> Result<Compiled, ConfigError> {
    let listen = start::listen(&file.listen, origin)?;
    let tls = file.tls.as_ref().map(|t| crate::tls::compile(t, origin)).transpose()?;
    let (upstream, upstreams) = crate::upstream::compile(&file.upstream, &file.upstreams, tls.is_some(), origin)?;
    let verifier = crate::auth::compile(&file.jwt, origin)?;
    let upstream_names: Vec<String> = file.upstreams.keys().cloned().collect();
    let routes = crate::routes::compile(&file.routes, &upstream_names, file.case_sensitive_paths, origin)?;
    let special = crate::routes::compile_special(&file, origin)?;
    let (store, policy) = crate::revocation::compile(&file.revocation, file.jwt.leeway, origin)?;
    let admin = file.admin.as_ref().map(|a| start::admin(a, origin)).transpose()?;
    let trusted_proxies = crate::trust::compile(&file.trusted_proxies, origin)?;
    let access_log = access_log(&file, origin)?;
    let (listeners, forward_auth_rule) = start::forward_auth(&file, listen, admin.as_ref(), origin)?;
    let start = StartSettings {
        listen,
        tls: tls.is_some(),
        admin,
        forward_auth: listeners,
        store: store.clone(),
        policy: policy.clone(),
    };
    let runtime = Runtime {
        tls,
        upstream,
        upstreams,
        reload: file.reload,
        verifier,
        routes,
        logout: special.logout,
        paths: PathPolicy { case_sensitive: file.case_sensitive_paths, repeated_slashes: file.repeated_slashes },
        trusted_proxies,
        access_log,
        logout_all: special.logout_all,
        backchannel: special.backchannel,
        realm: file.jwt.realm.replace('"', "").into(),
        cookie: file.jwt.cookie,
        forward_auth: forward_auth_rule,
        store,
        policy,
    };
    Ok(Compiled { start, runtime })
}
