//! Compiling `routes:` into the [`RouteTable`]: every regex, glob, host
//! pattern, header name, claim path and upstream name checked here, so a
//! bad rule is a config error with its field, never a request-time surprise.
//! [`path`] and [`methods`] also serve the logout paths (`special`).

use super::{
    ClaimCondition, ClaimHeader, ClaimPath, HeaderMatch, HostMatch, PathMatch, Requirements, Route, RouteTable,
};
use crate::config::{ConfigError, HeaderMatchSpec, MatchSpec, Origin, RequireSpec, RouteSpec};
use crate::error::Causes;
use http::{HeaderName, HeaderValue, Method};
use std::collections::BTreeMap;
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

/// The table of `routes:`; `upstreams` are the names a rule may pick.
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
    let path = path_match(m, at, cs, origin)?;
    let path = if cs { path } else { path.case_insensitive().map_err(|e| err("match", Causes(&e).to_string()))? };
    let host =
        m.host.as_deref().map(HostMatch::parse).transpose().map_err(|e| err("match.host", Causes(&e).to_string()))?;
    let header = m.header.as_ref().map(|h| header_match(h, at, origin)).transpose()?;
    let methods = methods(&m.methods, &format!("{at}.match.methods"), origin)?;
    let require = match &spec.require {
        None => Requirements::default(),
        Some(r) => compile_require(r, &format!("{at}.require"), origin)?,
    };
    let forward_claims = forward_claims(&spec.forward_claims, at, origin)?;
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
    let cors = spec.cors.as_ref().map(|c| super::cors::compile(c, &route.methods, &format!("{at}.cors"), origin));
    route.cors = cors.transpose()?.map(Arc::new);
    Ok(route)
}

/// A rule's path form: at most one of path, path_prefix, path_regex,
/// path_glob (none: every path).
fn path_match(m: &MatchSpec, at: &str, cs: bool, origin: &Origin<'_>) -> Result<PathMatch, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::at(origin, format!("{at}.{field}"), msg);
    Ok(match (&m.path, &m.path_prefix, &m.path_regex, &m.path_glob) {
        (Some(p), None, None, None) => PathMatch::Exact(path(p, cs, &format!("{at}.match.path"), origin)?),
        (None, Some(p), None, None) => PathMatch::prefix(&path(p, cs, &format!("{at}.match.path_prefix"), origin)?),
        (None, None, Some(re), None) => {
            PathMatch::regex(re).map_err(|e| err("match.path_regex", Causes(&e).to_string()))?
        }
        (None, None, None, Some(g)) if g.starts_with('/') => {
            PathMatch::glob(g).map_err(|e| err("match.path_glob", Causes(&e).to_string()))?
        }
        (None, None, None, Some(_)) => return Err(err("match.path_glob", "a glob must start with /".into())),
        (None, None, None, None) => PathMatch::Prefix("/".into()),
        _ => return Err(err("match", "at most one of path, path_prefix, path_regex, path_glob".into())),
    })
}

fn header_match(spec: &HeaderMatchSpec, at: &str, origin: &Origin<'_>) -> Result<HeaderMatch, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::at(origin, format!("{at}.{field}"), msg);
    Ok(HeaderMatch {
        name: HeaderName::from_bytes(spec.name.as_bytes())
            .map_err(|_| err("match.header.name", format!("`{}` is not a header name", spec.name)))?,
        value: spec
            .value
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| err("match.header.value", "not a valid header value".into()))?,
    })
}

/// `forward_claims`: claim path → header, never a header jwtgate owns.
fn forward_claims(
    specs: &BTreeMap<String, String>,
    at: &str,
    origin: &Origin<'_>,
) -> Result<Vec<ClaimHeader>, ConfigError> {
    let mut forward = Vec::with_capacity(specs.len());
    for (claim, name) in specs {
        let err = |msg: String| ConfigError::at(origin, format!("{at}.forward_claims.{claim}"), msg);
        let claim = ClaimPath::parse(claim).map_err(|e| err(e.to_string()))?;
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| err(format!("`{name}` is not a header name")))?;
        if RESERVED.contains(&header.as_str()) {
            return Err(err(format!("`{name}` is managed by jwtgate and cannot carry a claim")));
        }
        forward.push(ClaimHeader { claim, header });
    }
    Ok(forward)
}

fn compile_require(spec: &RequireSpec, at: &str, origin: &Origin<'_>) -> Result<Requirements, ConfigError> {
    let mut claims = Vec::new();
    for (i, c) in spec.claims.iter().enumerate() {
        let field = format!("{at}.claims[{i}]");
        let path =
            ClaimPath::parse(&c.claim).map_err(|e| ConfigError::at(origin, format!("{field}.claim"), e.to_string()))?;
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

/// A configured path in the form requests are compared in (see
/// `routes::normalize_path`).
pub(crate) fn path(p: &str, case_sensitive: bool, field: &str, origin: &Origin<'_>) -> Result<String, ConfigError> {
    match super::configured_path(p, case_sensitive) {
        Some(path) => Ok(path),
        None => Err(ConfigError::at(
            origin,
            field,
            format!("`{p}` is not an absolute path without dot segments or encoded separators"),
        )),
    }
}

pub(crate) fn methods(names: &[String], field: &str, origin: &Origin<'_>) -> Result<Vec<Method>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, m)| {
            crate::config::check_method(m)
                .map_err(|why| ConfigError::at_value(origin, format!("{field}[{i}]"), why))?;
            let upper = m.to_ascii_uppercase();
            Method::from_bytes(upper.as_bytes())
                .map_err(|_| ConfigError::at(origin, format!("{field}[{i}]"), format!("`{m}` is not an HTTP method")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{origin, section};
    use crate::config::AuthMode;

    const ROUTES: &str = "\
routes:
  - match: { path_prefix: /Admin, methods: [get] }
    require: { scopes: [admin] }
  - match: { path_glob: /files/*.pdf, host: api.example.com }
    auth: none
    upstream: files
  - match: { path: /me }
    forward_claims: { sub: X-User-Id }
";

    fn compiled(text: &str, upstreams: &[&str]) -> Result<RouteTable, ConfigError> {
        let names: Vec<String> = upstreams.iter().map(|s| s.to_string()).collect();
        compile(&section::<Vec<RouteSpec>>(text, "routes"), &names, false, &origin(text))
    }

    #[test]
    fn a_routes_section_compiles_from_yaml() {
        let table = compiled(ROUTES, &["files"]).unwrap();
        let routes = table.routes();
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0].methods, [Method::GET]);
        assert_eq!(&*routes[0].require.scope_attr, "admin");
        assert_eq!((routes[1].auth, routes[1].upstream), (AuthMode::None, 1));
        assert_eq!(routes[2].forward_claims[0].header, "x-user-id");
    }

    #[test]
    fn an_unknown_upstream_is_refused_at_its_line() {
        let err = compiled(ROUTES, &[]).unwrap_err();
        assert_eq!(err.field, "routes[1].upstream");
        assert_eq!(err.line_col.map(|(line, _)| line), Some(6), "{err}");
    }

    #[test]
    fn bad_rules_name_their_field() {
        for (from, to, field) in [
            ("path: /me", "path: /a/../me", "routes[2].match.path"),
            ("X-User-Id", "Authorization", "routes[2].forward_claims.sub"),
            ("path_glob: /files", "path_glob: files", "routes[1].match.path_glob"),
            ("methods: [get]", "methods: [\"g t\"]", "routes[0].match.methods[0]"),
        ] {
            let err = compiled(&ROUTES.replace(from, to), &["files"]).unwrap_err();
            assert_eq!(err.field, field, "{to}: {err}");
        }
    }
}
