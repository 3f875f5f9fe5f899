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
}

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
        }
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
                "  store: redis\n  redis:\n    url: {url}\n    key_prefix: \"{}\"\n    timeout: {}\n",
                self.key_prefix, self.redis_timeout
            ),
        };
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
logout:
  path: /logout
  methods: [POST]
  forward: {forward}
routes:{routes}",
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
        )
    }
}
