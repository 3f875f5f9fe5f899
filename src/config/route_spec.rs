//! Route rules as written in the YAML.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    #[serde(rename = "match")]
    pub matcher: MatchSpec,
    #[serde(default)]
    pub auth: AuthMode,
    /// What a valid token must also satisfy (403 otherwise).
    #[serde(default)]
    pub require: Option<RequireSpec>,
    /// Claim (dotted path) → request header set from it.
    #[serde(default)]
    pub forward_claims: BTreeMap<String, String>,
    /// Remove the Authorization header before forwarding.
    #[serde(default)]
    pub strip_authorization: bool,
    /// A name from `upstreams:`; the default upstream otherwise.
    #[serde(default)]
    pub upstream: Option<String>,
    /// CORS for browsers on other origins (absent: preflights are treated
    /// like any request, as without jwtgate's help).
    #[serde(default)]
    pub cors: Option<CorsSpec>,
}

/// A route's CORS policy. A preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) is decided by the rule the actual
/// request would match (its method is the requested one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    /// `answer` (default): jwtgate answers preflights from this policy and
    /// adds the CORS headers to the route's responses; the app sees
    /// neither. `forward`: preflights go to the app, unauthenticated (its
    /// CORS code answers them); no other field may be set.
    #[serde(default)]
    pub preflight: PreflightMode,
    /// Exact origins (`https://app.example.com`), or `"*"`.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Default: the rule's `match.methods` (any, when it lists none).
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request headers a cross-origin request may send (`authorization`
    /// must be listed for bearer tokens: `*` never covers it).
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers the browser lets the page read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Cookies and HTTP auth on cross-origin requests (never with `"*"`).
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer (`Access-Control-Max-Age`).
    #[serde(default = "super::defaults::cors_max_age", with = "super::duration::serde_fmt")]
    pub max_age: std::time::Duration,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreflightMode {
    #[default]
    Answer,
    Forward,
}

/// Every field present must match. Exactly one path form.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    /// `api.example.com` or `*.example.com` (any subdomain).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Anchored regular expression on the path.
    #[serde(default)]
    pub path_regex: Option<String>,
    /// Glob: `*` one segment (or part of one), `**` any number of segments.
    #[serde(default)]
    pub path_glob: Option<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub header: Option<HeaderMatchSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatchSpec {
    pub name: String,
    /// Exact value; absent means "header present".
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// A valid, unrevoked token is needed.
    #[default]
    Required,
    /// No token passes; a presented token must be valid and unrevoked.
    Optional,
    /// No check; forwarded as is.
    None,
    /// 403 without touching the upstream.
    Deny,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequireSpec {
    #[serde(default)]
    pub issuers: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    /// All needed, from `scope` (space-separated) or `scp` (array).
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub claims: Vec<ClaimConditionSpec>,
}

/// One condition on a claim at a dotted path (`realm_access.roles`);
/// exactly one of `equals`, `one_of`, `contains`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimConditionSpec {
    pub claim: String,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub one_of: Option<Vec<Value>>,
    /// The claim is an array holding this value.
    #[serde(default)]
    pub contains: Option<Value>,
}
