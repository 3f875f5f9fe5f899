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
