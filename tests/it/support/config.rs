//! The YAML each test hands to jwtgate, with the knobs tests turn.

use super::token::{AUDIENCE, HS_ISSUER, HS_SECRET, ISSUER};
use super::{key_path, Redis, Upstream};

/// Routes shared by most tests: `/healthz` and `/public/*` need no token,
/// `/internal/*` is denied, everything else needs a valid token.
pub const ROUTES: &str = "
  - match: { path: /healthz }
    auth: none
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /internal }
    auth: deny
  - match: { path_prefix: /api }
    auth: required
";

#[derive(Clone, Debug)]
pub struct Cfg {
    pub upstream: String,
    pub upstream_timeout: String,
    pub leeway: String,
    pub max_token_bytes: u32,
    pub require_exp: bool,
    pub cookie: Option<String>,
    /// `None`: memory store; `Some(url)`: redis.
    pub redis_url: Option<String>,
    pub redis_timeout: String,
    pub key_prefix: String,
    pub on_store_error: String,
    pub missing_jti: String,
    pub not_revoked_ttl: String,
    pub logout_forward: bool,
    /// Extra entries under the HMAC issuer's `keys:` (flow-style YAML maps).
    pub hs_keys: Vec<String>,
    pub routes: String,
    /// `revocation.redis.heartbeat` (absent: the default, 1s).
    pub heartbeat: Option<String>,
    /// `revocation.redis.subscribe_nodes` (empty: absent).
    pub subscribe_nodes: Vec<String>,
    /// `revocation.max_token_lifetime` (absent: the default, 24h).
    pub max_token_lifetime: Option<String>,
    /// `revocation.circuit` as `(failures, cooldown)` (absent: 5, 1s).
    pub circuit: Option<(u32, String)>,
    /// `revocation.legacy` as a flow-style YAML map, e.g.
    /// `{ keys: ["{token}"], values: [blacklisted] }`.
    pub legacy: Option<String>,
    /// Enables `logout_all: { path: /logout/all, methods: [POST] }`.
    pub logout_all: bool,
    /// Enables `backchannel_logout: { path: /bcl, issuer: <this> }`.
    pub backchannel_issuer: Option<String>,
    /// Enables the admin listener on `127.0.0.1:0` with this inline token.
    pub admin_token: Option<String>,
    /// Extra top-level YAML sections (`upstreams:`, `reload:`), inserted
    /// verbatim before `routes:`; each line starts at column 0.
    pub extra: String,
}

/// The admin token `Cfg::admin` configures.
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";
/// Where `Cfg::backchannel` mounts the back-channel logout receiver.
pub const BACKCHANNEL_PATH: &str = "/bcl";

impl Cfg {
    pub fn new(upstream: &Upstream) -> Cfg {
        Cfg::to_url(&upstream.url())
    }

    pub fn to_url(upstream: &str) -> Cfg {
        Cfg {
            upstream: upstream.to_owned(),
            upstream_timeout: "10s".into(),
            leeway: "30s".into(),
            max_token_bytes: 8192,
            require_exp: true,
            cookie: None,
            redis_url: None,
            redis_timeout: "50ms".into(),
            key_prefix: "jwtgate:".into(),
            on_store_error: "fail_closed".into(),
            missing_jti: "reject".into(),
            not_revoked_ttl: "5s".into(),
            logout_forward: false,
            hs_keys: vec![format!("{{ kid: hs-1, insecure_secret: \"{HS_SECRET}\" }}")],
            routes: ROUTES.into(),
            heartbeat: None,
            subscribe_nodes: Vec::new(),
            max_token_lifetime: None,
            circuit: None,
            legacy: None,
            logout_all: false,
            backchannel_issuer: None,
            admin_token: None,
            extra: String::new(),
        }
    }

    /// These rules instead of [`ROUTES`] (YAML list items, two-space indent).
    pub fn routes(mut self, routes: &str) -> Cfg {
        self.routes = routes.into();
        self
    }

    /// Appends top-level YAML (see [`Cfg::extra`]).
    pub fn extra(mut self, yaml: &str) -> Cfg {
        self.extra.push_str(yaml.trim_start_matches('\n'));
        if !self.extra.ends_with('\n') {
            self.extra.push('\n');
        }
        self
    }

    /// Adds the admin listener (token [`ADMIN_TOKEN`]).
    pub fn admin(mut self) -> Cfg {
        self.admin_token = Some(ADMIN_TOKEN.into());
        self
    }

    /// Adds `POST /logout/all`.
    pub fn logout_all(mut self) -> Cfg {
        self.logout_all = true;
        self
    }

    /// Adds the back-channel logout receiver at [`BACKCHANNEL_PATH`] for `issuer`.
    pub fn backchannel(mut self, issuer: &str) -> Cfg {
        self.backchannel_issuer = Some(issuer.into());
        self
    }

    pub fn redis(mut self, redis: &Redis) -> Cfg {
        self.redis_url = Some(redis.url());
        self
    }

    pub fn yaml(&self) -> String {
        let cookie = match &self.cookie {
            Some(c) => format!("  cookie: {c}\n"),
            None => String::new(),
        };
        let store = match &self.redis_url {
            None => "  store: memory\n".to_owned(),
            Some(url) => format!(
                "  store: redis\n  redis:\n    url: {url}\n    key_prefix: \"{}\"\n    timeout: {}\n{}{}",
                self.key_prefix,
                self.redis_timeout,
                self.heartbeat.as_ref().map(|h| format!("    heartbeat: {h}\n")).unwrap_or_default(),
                match self.subscribe_nodes.is_empty() {
                    true => String::new(),
                    false => format!("    subscribe_nodes: [{}]\n", self.subscribe_nodes.join(", ")),
                },
            ),
        };
        let mut revocation_extra = String::new();
        if let Some(lifetime) = &self.max_token_lifetime {
            revocation_extra.push_str(&format!("  max_token_lifetime: {lifetime}\n"));
        }
        if let Some((failures, cooldown)) = &self.circuit {
            revocation_extra.push_str(&format!("  circuit: {{ failures: {failures}, cooldown: {cooldown} }}\n"));
        }
        if let Some(legacy) = &self.legacy {
            revocation_extra.push_str(&format!("  legacy: {legacy}\n"));
        }
        let mut sections = String::new();
        if self.logout_all {
            sections.push_str("logout_all:\n  path: /logout/all\n  methods: [POST]\n");
        }
        if let Some(issuer) = &self.backchannel_issuer {
            sections.push_str(&format!("backchannel_logout:\n  path: {BACKCHANNEL_PATH}\n  issuer: \"{issuer}\"\n"));
        }
        if let Some(token) = &self.admin_token {
            sections.push_str(&format!("admin:\n  listen: 127.0.0.1:0\n  insecure_token: \"{token}\"\n"));
        }
        let hs_keys: String = self.hs_keys.iter().map(|k| format!("        - {k}\n")).collect();
        format!(
            "listen: 127.0.0.1:0
upstream:
  url: {upstream}
  timeout: {timeout}
  connect_timeout: 2s
jwt:
  realm: jwtgate
  leeway: {leeway}
  max_token_bytes: {max}
  require_exp: {require_exp}
{cookie}  issuers:
    - issuer: \"{ISSUER}\"
      audiences: [{AUDIENCE}]
      algorithms: [RS256, ES256, EdDSA]
      keys:
        - {{ kid: rsa-1, pem_file: \"{rsa}\" }}
        - {{ kid: ec-1, pem_file: \"{ec}\" }}
        - {{ kid: ed-1, pem_file: \"{ed}\" }}
        - {{ jwks_file: \"{jwks}\" }}
    - issuer: {HS_ISSUER}
      audiences: [{AUDIENCE}]
      algorithms: [HS256]
      keys:
{hs_keys}revocation:
{store}  on_store_error: {on_err}
  missing_jti: {missing_jti}
  cache:
    max_entries: 1000
    not_revoked_ttl: {ttl}
{revocation_extra}logout:
  path: /logout
  methods: [POST]
  forward: {forward}
{sections}{extra}routes:{routes}",
            upstream = self.upstream,
            timeout = self.upstream_timeout,
            leeway = self.leeway,
            max = self.max_token_bytes,
            require_exp = self.require_exp,
            rsa = key_path("rsa.pub.pem"),
            ec = key_path("ec.pub.pem"),
            ed = key_path("ed25519.pub.pem"),
            jwks = key_path("jwks.json"),
            on_err = self.on_store_error,
            missing_jti = self.missing_jti,
            ttl = self.not_revoked_ttl,
            forward = self.logout_forward,
            routes = self.routes,
            extra = self.extra,
        )
    }
}
