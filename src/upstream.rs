//! The upstreams requests are forwarded to, compiled from `upstream:` (the
//! default) and `upstreams:` (named ones a route may pick). Their pools
//! and the forwarding itself are `proxy::forward`'s.

use crate::config::{ConfigError, Origin, UpstreamSpec};
use http::uri::Authority;
use http::Uri;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub authority: Authority,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
    /// Client connections that may have an upstream connection of their
    /// own (0: none, every request takes the pool), and how long one may
    /// go unused before it is handed back.
    pub affinity_max: usize,
    pub affinity_idle_timeout: Duration,
    /// `X-Forwarded-Proto`: how clients reached jwtgate (`https` with `tls`).
    pub forwarded_proto: &'static str,
    pub websocket_idle_timeout: Duration,
}

/// More upstream connections than an app would want from one sidecar.
const MAX_AFFINITY: usize = 100_000;

/// The default upstream, and every upstream in route order: the default
/// first (a route's index 0), then the named ones by name.
pub fn compile(
    default: &UpstreamSpec,
    named: &BTreeMap<String, UpstreamSpec>,
    tls: bool,
    origin: &Origin<'_>,
) -> Result<(UpstreamSettings, Vec<UpstreamSettings>), ConfigError> {
    let forwarded_proto = if tls { "https" } else { "http" };
    let first = compile_one(default, "upstream", forwarded_proto, origin)?;
    let mut all = vec![first.clone()];
    for (name, spec) in named {
        all.push(compile_one(spec, &format!("upstreams.{name}"), forwarded_proto, origin)?);
    }
    Ok((first, all))
}

fn compile_one(
    spec: &UpstreamSpec,
    at: &str,
    forwarded_proto: &'static str,
    origin: &Origin<'_>,
) -> Result<UpstreamSettings, ConfigError> {
    let bad = |msg: &str| ConfigError::at(origin, format!("{at}.url"), msg);
    let uri: Uri = spec.url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http://host:port upstreams are supported"));
    }
    if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(bad("the upstream URL must not have a path (paths are forwarded as received)"));
    }
    let authority = uri.authority().cloned().ok_or_else(|| bad("missing host"))?;
    if spec.affinity_max > MAX_AFFINITY {
        return Err(ConfigError::at(origin, format!("{at}.affinity_max"), format!("at most {MAX_AFFINITY}")));
    }
    if spec.affinity_idle_timeout.is_zero() {
        return Err(ConfigError::at(origin, format!("{at}.affinity_idle_timeout"), "must be more than zero"));
    }
    if spec.websocket_idle_timeout.is_zero() {
        return Err(ConfigError::at(origin, format!("{at}.websocket_idle_timeout"), "must be more than zero"));
    }
    Ok(UpstreamSettings {
        authority,
        timeout: spec.timeout,
        connect_timeout: spec.connect_timeout,
        pool_max_idle: spec.pool_max_idle,
        pool_idle_timeout: spec.pool_idle_timeout,
        affinity_max: spec.affinity_max,
        affinity_idle_timeout: spec.affinity_idle_timeout,
        forwarded_proto,
        websocket_idle_timeout: spec.websocket_idle_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{origin, section};

    const UPSTREAMS: &str = "\
upstream: { url: \"http://127.0.0.1:3000\", timeout: 1m30s }
upstreams:
  files:
    url: http://files.internal:8080
    websocket_idle_timeout: 10s
";

    fn compiled(text: &str, tls: bool) -> Result<(UpstreamSettings, Vec<UpstreamSettings>), ConfigError> {
        let default = section::<UpstreamSpec>(text, "upstream");
        compile(&default, &section(text, "upstreams"), tls, &origin(text))
    }

    #[test]
    fn upstream_sections_compile_from_yaml() {
        let (default, all) = compiled(UPSTREAMS, true).unwrap();
        assert_eq!((default.authority.as_str(), default.timeout), ("127.0.0.1:3000", Duration::from_secs(90)));
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].authority, "files.internal:8080");
        assert_eq!(all[1].websocket_idle_timeout, Duration::from_secs(10));
        assert!(all.iter().all(|u| u.forwarded_proto == "https"), "clients reach jwtgate over TLS");
    }

    #[test]
    fn an_upstream_url_with_a_path_or_another_scheme_is_refused_at_its_line() {
        let err =
            compiled(&UPSTREAMS.replace("http://files.internal:8080", "https://files.internal"), false).unwrap_err();
        assert_eq!((err.field.as_str(), err.line_col.map(|(l, _)| l)), ("upstreams.files.url", Some(4)), "{err}");
        let err = compiled(&UPSTREAMS.replace(":3000", ":3000/api"), false).unwrap_err();
        assert_eq!((err.field.as_str(), err.line_col.map(|(l, _)| l)), ("upstream.url", Some(1)), "{err}");
    }
}
