//! Compiling `routes:` into the [`RouteTable`]: every regex, glob, host
//! pattern, header name, claim path and upstream name checked here, so a
//! bad rule is a config error with its field, never a request-time surprise.

use super::{compile_methods, compile_path};
use crate::config::load::Origin;
use crate::config::{ConfigError, RequireSpec, RouteSpec};
use crate::routes::{
    ClaimCondition, ClaimHeader, ClaimPath, HeaderMatch, HostMatch, PathMatch, Requirements, Route, RouteTable,
};
use http::{HeaderName, HeaderValue};
use std::sync::Arc;

/// Headers jwtgate owns: a claim may not be forwarded under these names.
const RESERVED: &[&str] = &[
    "authorization",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "cookie",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

pub fn compile(
    specs: &[RouteSpec],
    upstreams: &[String],
    case_sensitive: bool,
    origin: &Origin<'_>,
) -> Result<RouteTable, ConfigError> {
    let mut routes = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        routes.push(compile_route(spec, &format!("routes[{i}]"), upstreams, case_sensitive, origin)?);
    }
    Ok(RouteTable::new(routes))
}

fn compile_route(
    spec: &RouteSpec,
    at: &str,
    upstreams: &[String],
    cs: bool,
    origin: &Origin<'_>,
) -> Result<Route, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::at(origin, format!("{at}.{field}"), msg);
    let m = &spec.matcher;
    let path = match (&m.path, &m.path_prefix, &m.path_regex, &m.path_glob) {
        (Some(p), None, None, None) => PathMatch::Exact(compile_path(p, cs, &format!("{at}.match.path"), origin)?),
        (None, Some(p), None, None) => {
            PathMatch::prefix(&compile_path(p, cs, &format!("{at}.match.path_prefix"), origin)?)
        }
        (None, None, Some(re), None) => {
            PathMatch::regex(re).map_err(|e| err("match.path_regex", format!("invalid regex: {e}")))?
        }
        (None, None, None, Some(g)) if g.starts_with('/') => {
            PathMatch::glob(g).map_err(|e| err("match.path_glob", format!("invalid glob: {e}")))?
        }
        (None, None, None, Some(_)) => return Err(err("match.path_glob", "a glob must start with /".into())),
        (None, None, None, None) => PathMatch::Prefix("/".into()),
        _ => return Err(err("match", "at most one of path, path_prefix, path_regex, path_glob".into())),
    };
    let path = if cs { path } else { path.case_insensitive().map_err(|e| err("match", e))? };
    let host = m.host.as_deref().map(HostMatch::parse).transpose().map_err(|e| err("match.host", e))?;
    let header = match &m.header {
        None => None,
        Some(h) => Some(HeaderMatch {
            name: HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| err("match.header.name", format!("`{}` is not a header name", h.name)))?,
            value: h
                .value
                .as_deref()
                .map(HeaderValue::from_str)
                .transpose()
                .map_err(|_| err("match.header.value", "not a valid header value".into()))?,
        }),
    };
    let methods = compile_methods(&m.methods, &format!("{at}.match.methods"), origin)?;
    let require = match &spec.require {
        None => Requirements::default(),
        Some(r) => compile_require(r, &format!("{at}.require"), origin)?,
    };
    let mut forward_claims = Vec::new();
    for (claim, name) in &spec.forward_claims {
        let field = format!("forward_claims.{claim}");
        let claim = ClaimPath::parse(claim).map_err(|e| err(&field, e))?;
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| err(&field, format!("`{name}` is not a header name")))?;
        if RESERVED.contains(&header.as_str()) {
            return Err(err(&field, format!("`{name}` is managed by jwtgate and cannot carry a claim")));
        }
        forward_claims.push(ClaimHeader { claim, header });
    }
    let upstream = match &spec.upstream {
        None => 0,
        Some(name) => {
            1 + upstreams
                .iter()
                .position(|u| u == name)
                .ok_or_else(|| err("upstream", format!("`{name}` is not one of upstreams: {upstreams:?}")))?
        }
    };
    let mut route = Route::simple(path, methods, spec.auth);
    route.label = Arc::from(route.path.label());
    route.host = host;
    route.header = header;
    route.require = require;
    route.forward_claims = forward_claims;
    route.strip_authorization = spec.strip_authorization;
    route.upstream = upstream;
    Ok(route)
}

fn compile_require(spec: &RequireSpec, at: &str, origin: &Origin<'_>) -> Result<Requirements, ConfigError> {
    let mut claims = Vec::new();
    for (i, c) in spec.claims.iter().enumerate() {
        let field = format!("{at}.claims[{i}]");
        let path = ClaimPath::parse(&c.claim).map_err(|e| ConfigError::at(origin, format!("{field}.claim"), e))?;
        claims.push(match (&c.equals, &c.one_of, &c.contains) {
            (Some(v), None, None) => ClaimCondition::Equals(path, v.clone()),
            (None, Some(set), None) => ClaimCondition::OneOf(path, set.clone()),
            (None, None, Some(v)) => ClaimCondition::Contains(path, v.clone()),
            _ => return Err(ConfigError::at(origin, field, "exactly one of equals, one_of, contains is required")),
        });
    }
    Ok(Requirements {
        issuers: spec.issuers.clone(),
        audiences: spec.audiences.clone(),
        scopes: spec.scopes.clone(),
        claims,
        scope_attr: Arc::from(spec.scopes.join(" ")),
    })
}
