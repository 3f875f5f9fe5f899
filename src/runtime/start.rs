//! Settings fixed at start: the listeners' addresses (and whether the
//! public one speaks TLS), the admin token, the revocation store and its
//! policy. The process binds, connects and builds its cache once from
//! them; a reload compiles them again only to say what it cannot apply.

use crate::config::{secret, AdminSpec, ConfigError, FileConfig, FrontProxy, MetricsAuth, Origin, SecretSource};
use crate::error::Causes;
use crate::revocation::{Policy, StoreSettings};
use std::net::SocketAddr;

/// What a process keeps from start to end. `PartialEq`, so a reloaded
/// file's settings are compared with the ones the process started with.
#[derive(Debug, Clone, PartialEq)]
pub struct StartSettings {
    pub listen: SocketAddr,
    /// The public listener speaks TLS (its certificate may be renewed).
    pub tls: bool,
    pub admin: Option<AdminSettings>,
    /// The forward-auth listeners (HTTP, gRPC), when configured.
    pub forward_auth: ForwardAuthListeners,
    pub store: StoreSettings,
    pub policy: Policy,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardAuthListeners {
    pub http: Option<SocketAddr>,
    pub grpc: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub token: SecretSource,
    pub metrics_auth: MetricsAuth,
}

impl StartSettings {
    /// The settings in `file` that differ from these (the ones in force),
    /// as the reload warning names them; `tls` is not among them (turning
    /// it on or off makes the whole reload fail).
    pub fn differences(&self, file: &StartSettings) -> Vec<&'static str> {
        let admin_listen = |s: &StartSettings| s.admin.as_ref().map(|a| a.listen);
        let admin_token = |s: &StartSettings| s.admin.as_ref().map(|a| a.token.clone());
        let metrics_auth = |s: &StartSettings| s.admin.as_ref().map(|a| a.metrics_auth);
        [
            ("listen", self.listen != file.listen),
            ("revocation store", self.store != file.store),
            ("revocation policy and cache", self.policy != file.policy),
            ("admin.listen", admin_listen(self) != admin_listen(file)),
            ("forward_auth.listen", self.forward_auth.http != file.forward_auth.http),
            ("forward_auth.grpc_listen", self.forward_auth.grpc != file.forward_auth.grpc),
            ("admin token", admin_listen(self) == admin_listen(file) && admin_token(self) != admin_token(file)),
            (
                "admin.metrics_auth",
                admin_listen(self) == admin_listen(file) && metrics_auth(self) != metrics_auth(file),
            ),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect()
    }
}

pub(super) fn listen(text: &str, origin: &Origin<'_>) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|e| ConfigError::at(origin, "listen", format!("not an ip:port address: {e}")))
}

/// The forward-auth listeners: off the public and admin ports, and only
/// with `trusted_proxies` (nobody else is answered there).
pub(super) fn forward_auth(
    file: &FileConfig,
    listen: SocketAddr,
    admin: Option<&AdminSettings>,
    origin: &Origin<'_>,
) -> Result<(ForwardAuthListeners, Option<ForwardAuthRule>), ConfigError> {
    let Some(spec) = &file.forward_auth else { return Ok((ForwardAuthListeners::default(), None)) };
    let address = |text: &Option<String>, field: &'static str| {
        let parsed = text.as_deref().map(str::parse::<SocketAddr>).transpose();
        let addr = parsed.map_err(|e| ConfigError::at(origin, field, format!("not an ip:port address: {e}")))?;
        let taken = [Some(listen), admin.map(|a| a.listen)];
        match addr {
            Some(a) if a.port() != 0 && taken.contains(&Some(a)) => {
                Err(ConfigError::at(origin, field, "must differ from listen and admin.listen"))
            }
            _ => Ok(addr),
        }
    };
    let listeners = ForwardAuthListeners {
        http: address(&spec.listen, "forward_auth.listen")?,
        grpc: address(&spec.grpc_listen, "forward_auth.grpc_listen")?,
    };
    if listeners.http.is_none() && listeners.grpc.is_none() {
        return Err(ConfigError::at(origin, "forward_auth", "set listen, grpc_listen or both"));
    }
    if matches!((listeners.http, listeners.grpc), (Some(h), Some(g)) if h == g && h.port() != 0) {
        return Err(ConfigError::at(origin, "forward_auth.grpc_listen", "must differ from forward_auth.listen"));
    }
    if file.trusted_proxies.is_empty() {
        let message = "forward-auth answers only peers in trusted_proxies: list the ingress or mesh proxies there";
        return Err(ConfigError::at(origin, "forward_auth", message));
    }
    let proxy = match (listeners.http, spec.proxy) {
        (Some(_), Some(proxy)) => Some(proxy),
        (Some(_), None) => {
            let message = "which proxy asks on listen: nginx, traefik or envoy (its headers, and only its, \
                           name the original request)";
            return Err(ConfigError::at(origin, "forward_auth.proxy", message));
        }
        (None, Some(_)) => return Err(ConfigError::at(origin, "forward_auth.proxy", "needs forward_auth.listen")),
        (None, None) => None,
    };
    let path_prefix = match spec.path_prefix.as_deref() {
        None | Some("/") => None,
        Some(_) if proxy != Some(FrontProxy::Envoy) => {
            return Err(ConfigError::at(origin, "forward_auth.path_prefix", "only with proxy: envoy"));
        }
        Some(p) if p.starts_with('/') && !p.contains(['?', '#']) => Some(p.trim_end_matches('/').to_owned()),
        Some(_) => return Err(ConfigError::at(origin, "forward_auth.path_prefix", "a path starting with /")),
    };
    Ok((listeners, proxy.map(|proxy| ForwardAuthRule { proxy, path_prefix })))
}

/// How the HTTP authorizer reads a check (reloadable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuthRule {
    pub proxy: FrontProxy,
    /// Envoy's `path_prefix`, without a trailing `/` (`None` for `/`).
    pub path_prefix: Option<String>,
}

pub(super) fn admin(spec: &AdminSpec, origin: &Origin<'_>) -> Result<AdminSettings, ConfigError> {
    let listen = spec
        .listen
        .parse()
        .map_err(|e| ConfigError::at(origin, "admin.listen", format!("not an ip:port address: {e}")))?;
    let token = match (&spec.token_env, &spec.token_file, &spec.insecure_token) {
        (Some(var), None, None) => {
            secret::from_env(var).map_err(|e| ConfigError::at(origin, "admin.token_env", Causes(&e).to_string()))?
        }
        (None, Some(p), None) => secret::from_file(&origin.dir.join(p))
            .map_err(|e| ConfigError::at(origin, "admin.token_file", Causes(&e).to_string()))?,
        (None, None, Some(t)) => t.clone(),
        _ => {
            let message = "exactly one of token_env, token_file, insecure_token is required";
            return Err(ConfigError::at(origin, "admin", message));
        }
    };
    if token.expose().len() < 16 {
        return Err(ConfigError::at(origin, "admin", "the admin token must be at least 16 bytes"));
    }
    Ok(AdminSettings { listen, token, metrics_auth: spec.metrics_auth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::origin;

    const FILE: &str = "\
listen: 127.0.0.1:8080
upstream: { url: http://127.0.0.1:9 }
admin: { listen: 127.0.0.1:9901, insecure_token: 0123456789abcdef }
jwt:
  issuers:
    - { issuer: idp, algorithms: [HS256], keys: [{ insecure_secret: s }] }
";

    fn start(text: &str) -> StartSettings {
        let file = crate::config::parse_str(text, "test.yaml").unwrap();
        super::super::compile(file, &origin(text)).unwrap().start
    }

    #[test]
    fn start_settings_compare_by_value() {
        let started = start(FILE);
        assert_eq!(started, start(FILE), "the same file, compiled twice");
        assert!(started.differences(&start(FILE)).is_empty());
        let moved = start(&FILE.replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:8081"));
        assert_eq!(started.differences(&moved), ["listen"]);
        let rekeyed = start(&FILE.replace("0123456789abcdef", "fedcba9876543210"));
        assert_eq!(started.differences(&rekeyed), ["admin token"]);
        let redis = "revocation: { store: redis, redis: { url: \"redis://127.0.0.1/0\" } }\n";
        assert_eq!(started.differences(&start(&format!("{FILE}{redis}"))), ["revocation store"]);
        let prefixed = redis.replace(" } }", ", key_prefix: \"app:\" } }");
        let both = ["revocation store", "revocation policy and cache"];
        assert_eq!(started.differences(&start(&format!("{FILE}{prefixed}"))), both);
    }

    #[test]
    fn a_short_admin_token_is_refused_at_its_line() {
        let text = FILE.replace("0123456789abcdef", "short");
        let file = crate::config::parse_str(&text, "test.yaml").unwrap();
        let err = super::super::compile(file, &origin(&text)).err().unwrap();
        assert_eq!((err.field.as_str(), err.line_col.map(|(l, _)| l)), ("admin", Some(3)), "{err}");
    }
}
