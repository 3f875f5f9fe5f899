//! The compiled route table: (host, method, path, headers) → the rule that
//! decides the request. Ordered rules, first match wins; a request matching
//! no rule needs a token (`default`). Matching borrows from the request and
//! allocates nothing. `compile` builds the table from `routes:`, `special`
//! the logout paths that come before it.

mod claim_headers;
mod compile;
mod cors;
mod matcher;
mod path;
mod require;
mod special;

pub use claim_headers::{ClaimHeader, ClaimPath, ClaimPathError};
pub use compile::compile;
pub use cors::{Cors, CorsPolicy};
pub use matcher::{HeaderMatch, HostMatch, MatchError, PathMatch};
pub use path::{
    configured as configured_path, normalize as normalize_path, PathPolicy, PathRefusal, RepeatedSlashes, RequestPath,
};
pub use require::{ClaimCondition, Requirements};
pub use special::{compile_special, BackchannelRule, LogoutRule, SpecialPaths};

use crate::config::AuthMode;
#[cfg(test)]
use crate::error::ProxyError;
use crate::metrics::RouteMetrics;
use http::{HeaderMap, HeaderName, Method};
use std::sync::{Arc, OnceLock};

/// What a request looks like to the matcher.
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// Host without port, as sent (Host header or HTTP/2 authority).
    pub host: Option<&'a str>,
    /// The path in its decision form (see [`path::normalize`]).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// True when `method` is one of `listed` (empty: any). A rule that lists
/// GET covers HEAD too: Express, Flask, Rails, Spring and Go's ServeMux run
/// the GET handler for a HEAD, as nginx's `limit_except GET` counts it.
pub fn method_listed(listed: &[Method], method: &Method) -> bool {
    listed.is_empty() || listed.contains(method) || (method == Method::HEAD && listed.contains(&Method::GET))
}

#[derive(Debug, Clone)]
pub struct Route {
    /// Metric label (`prefix:/api`), shared: labelling costs a refcount.
    pub label: Arc<str>,
    pub host: Option<HostMatch>,
    pub path: PathMatch,
    /// Empty: any method.
    pub methods: Vec<Method>,
    pub header: Option<HeaderMatch>,
    pub auth: AuthMode,
    pub require: Requirements,
    pub forward_claims: Vec<ClaimHeader>,
    pub strip_authorization: bool,
    /// Index into the runtime's upstreams (0 = the default upstream).
    pub upstream: usize,
    /// `cors:` (absent: preflights are requests like any other).
    pub cors: Option<Arc<Cors>>,
    /// This route's metric handles, registered when its snapshot goes live
    /// (the recorder is installed after the config is compiled), so a
    /// request bumps a handle instead of building and looking up a key.
    metrics: OnceLock<RouteMetrics>,
}

impl Route {
    /// A rule on path and methods only (tests, benches, the default rule).
    pub fn simple(path: PathMatch, methods: Vec<Method>, auth: AuthMode) -> Self {
        Route {
            label: Arc::from(path.label()),
            host: None,
            path,
            methods,
            header: None,
            auth,
            require: Requirements::default(),
            forward_claims: Vec::new(),
            strip_authorization: false,
            upstream: 0,
            cors: None,
            metrics: OnceLock::new(),
        }
    }

    /// This route's metric handles (registered on first use: see
    /// `proxy::Live::new`, which uses them all before serving).
    pub fn metrics(&self) -> &RouteMetrics {
        self.metrics.get_or_init(|| RouteMetrics::register(self.label.clone(), crate::error::REFUSAL_CODES))
    }

    pub fn matches(&self, head: &RequestHead<'_>) -> bool {
        method_listed(&self.methods, head.method)
            && self.host.as_ref().is_none_or(|h| head.host.is_some_and(|host| h.matches(host)))
            && self.path.matches(head.path)
            && self.header.as_ref().is_none_or(|h| h.matches(head.headers))
    }

    /// True when this rule matches every request (nothing after it can).
    pub fn is_catch_all(&self) -> bool {
        self.methods.is_empty()
            && self.host.is_none()
            && self.header.is_none()
            && matches!(&self.path, PathMatch::Prefix(p) if p == "/")
    }
}

#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    default: Route,
    /// Every header any rule sets from claims: stripped from every inbound
    /// request (public routes too) so a client can never spoof one.
    claim_headers: Vec<HeaderName>,
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        let mut default = Route::simple(PathMatch::Prefix("/".into()), Vec::new(), AuthMode::Required);
        default.label = Arc::from("default");
        let mut claim_headers: Vec<HeaderName> =
            routes.iter().flat_map(|r| r.forward_claims.iter().map(|c| c.header.clone())).collect();
        claim_headers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        claim_headers.dedup();
        Self { routes, default, claim_headers }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The rule for requests no rule matches, and for the logout paths.
    pub fn default_route(&self) -> &Route {
        &self.default
    }

    pub fn claim_headers(&self) -> &[HeaderName] {
        &self.claim_headers
    }

    /// The first matching rule, or the default (`auth: required`).
    pub fn pick(&self, head: &RequestHead<'_>) -> &Route {
        self.routes.iter().find(|r| r.matches(head)).unwrap_or(&self.default)
    }

    /// Indexes of rules no request can reach: after a catch-all, or equal
    /// in every match field to an earlier rule.
    pub fn unreachable(&self) -> Vec<(usize, String)> {
        let mut found = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            if let Some(j) = self.routes[..i].iter().position(Route::is_catch_all) {
                found.push((i, format!("routes[{i}] can never match: routes[{j}] before it matches every request")));
            } else if let Some(j) = self.routes[..i].iter().position(|earlier| same_match(earlier, route)) {
                found.push((i, format!("routes[{i}] can never match: routes[{j}] has the same match")));
            }
        }
        found
    }
}

fn same_match(a: &Route, b: &Route) -> bool {
    a.path.label() == b.path.label()
        && a.host == b.host
        && a.header == b.header
        && (a.methods.is_empty() || (!b.methods.is_empty() && b.methods.iter().all(|m| a.methods.contains(m))))
}

#[cfg(test)]
mod tests;
