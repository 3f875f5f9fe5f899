//! `jwtgate check`: what a valid config does, told in plain text before it
//! is deployed, values spelled as the YAML writes them (`spelling`), and
//! what is wrong although it parses: rules no request can reach, JWKS
//! URLs that do not serve a usable key set. Secrets and credentials never
//! appear.

use super::spelling;
use crate::auth::jwks::{FetchError, JwksSource, Probed};
use crate::config::redact_url;
use crate::error::Causes;
use crate::runtime::{Compiled, Runtime, StoreSettings};
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

/// What `check` found: the summary for stdout and the problems, each of
/// which makes the exit code 1.
pub struct Checked {
    pub summary: String,
    pub problems: Vec<String>,
}

/// One JWKS URL's answer (with discovery: the document's, then its
/// `jwks_uri`'s); `None` under `--offline`.
type Probe = Option<Result<Probed, FetchError>>;

/// Checks a compiled config; fetches every `jwks_url` unless `offline`.
pub async fn check(path: &Path, compiled: &Compiled, offline: bool) -> Checked {
    let probes = probe_all(&compiled.runtime, offline).await;
    let mut problems: Vec<String> = probes
        .iter()
        .filter_map(|(field, source, probe)| match probe {
            Some(Err(err)) => Some(format!("{field}: {}: cannot load the JWK Set: {}", url(source), Causes(err))),
            _ => None,
        })
        .collect();
    problems.extend(compiled.runtime.routes.unreachable().into_iter().map(|(_, why)| why));
    let verdict = match problems.len() {
        0 => format!("{}: ok", path.display()),
        n => format!("{}: {n} problem(s), listed on stderr", path.display()),
    };
    Checked { summary: format!("{verdict}\n{}", summary(compiled, &probes)), problems }
}

/// Every issuer's JWKS sources, fetched at once (each bounded by
/// `jwt.jwks.fetch_timeout`), with the config field they come from.
async fn probe_all(rt: &Runtime, offline: bool) -> Vec<(String, Arc<JwksSource>, Probe)> {
    let sources =
        rt.verifier.issuers().enumerate().flat_map(|(i, issuer)| {
            issuer.jwks.iter().map(move |source| (format!("jwt.issuers[{i}]"), source.clone()))
        });
    let fetches = sources.map(|(field, source)| async move {
        let probe = if offline { None } else { Some(source.probe().await) };
        (field, source, probe)
    });
    futures_util::future::join_all(fetches).await
}

fn url(source: &JwksSource) -> String {
    redact_url(&source.url())
}

/// The summary lines after the verdict.
fn summary(compiled: &Compiled, probes: &[(String, Arc<JwksSource>, Probe)]) -> String {
    let (start, rt) = (&compiled.start, &compiled.runtime);
    let mut out = String::new();
    let _ = writeln!(out, "  listen     {}", start.listen);
    if let Some(tls) = &rt.tls {
        let (cert, key) = (tls.cert_file.display(), tls.key_file.display());
        let _ = writeln!(out, "  tls        cert_file: {cert}, key_file: {key}");
    }
    for (i, up) in rt.upstreams.iter().enumerate() {
        let name = if i == 0 { "upstream  " } else { "upstream+ " };
        let (timeout, connect) = (spelling::duration(up.timeout), spelling::duration(up.connect_timeout));
        let (scheme, authority) = (up.scheme(), &up.authority);
        let _ = writeln!(out, "  {name} {scheme}://{authority} (timeout: {timeout}, connect_timeout: {connect})");
    }
    issuers(rt, probes, &mut out);
    routes(rt, &mut out);
    let logout = &rt.logout;
    let methods = spelling::list(&logout.methods, "none");
    let _ = writeln!(out, "  logout     path: {}, methods: {methods}, forward: {}", logout.path, logout.forward);
    let (on_error, missing_jti) =
        (spelling::on_store_error(start.policy.on_store_error), spelling::missing_jti(start.policy.missing_jti));
    let store = describe_store(&start.store);
    let _ = writeln!(out, "  store      {store}, on_store_error: {on_error}, missing_jti: {missing_jti}");
    let authorizer = &start.forward_auth;
    if authorizer.http.is_some() || authorizer.grpc.is_some() {
        let show = |addr: Option<std::net::SocketAddr>| addr.map_or_else(|| "off".to_owned(), |a| a.to_string());
        let asks = match &rt.forward_auth {
            Some(rule) => {
                let prefix = rule.path_prefix.as_deref().map(|p| format!(", path_prefix: {p}")).unwrap_or_default();
                format!(" (proxy: {}{prefix})", spelling::front_proxy(rule.proxy))
            }
            None => String::new(),
        };
        let (http, grpc) = (show(authorizer.http), show(authorizer.grpc));
        let _ = writeln!(out, "  forward-auth http: {http}{asks}, grpc: {grpc}; answers trusted_proxies only");
    }
    if let Some(admin) = &start.admin {
        let _ = writeln!(out, "  admin      listen: {}", admin.listen);
    }
    out
}

/// One line per issuer, then one per JWKS URL (or discovery document):
/// its keys or why none.
fn issuers(rt: &Runtime, probes: &[(String, Arc<JwksSource>, Probe)], out: &mut String) {
    for issuer in rt.verifier.issuers() {
        let _ = writeln!(
            out,
            "  issuer     {} (algorithms: {}; audiences: {}; {} key(s) + {} jwks_url{})",
            issuer.issuer,
            spelling::algorithms(&issuer.algorithms),
            spelling::list(&issuer.audiences, "any"),
            issuer.keys.len(),
            issuer.jwks.iter().filter(|s| !s.is_discovery()).count(),
            if issuer.jwks.iter().any(|s| s.is_discovery()) { " + discovery" } else { "" },
        );
        for source in &issuer.jwks {
            let probe = probes.iter().find(|(_, s, _)| Arc::ptr_eq(s, source)).and_then(|(_, _, p)| p.as_ref());
            let kind = if source.is_discovery() { "discovery" } else { "jwks_url" };
            let _ = writeln!(out, "    {kind} {}: {}", url(source), describe_probe(source, probe));
        }
    }
}

/// A discovery source also names the `jwks_uri` its document gave.
fn describe_probe(source: &JwksSource, probe: Option<&Result<Probed, FetchError>>) -> String {
    match probe {
        None => "not fetched (--offline)".into(),
        Some(Err(err)) => format!("error: {}", Causes(err)),
        Some(Ok(Probed { jwks_url, keys })) => {
            let listed: Vec<String> =
                keys.iter().map(|k| format!("{} ({})", k.kid.as_deref().unwrap_or("no kid"), k.alg)).collect();
            let via =
                if source.is_discovery() { format!("jwks_uri {}, ", redact_url(jwks_url)) } else { String::new() };
            format!("ok, {via}{} key(s): {}", keys.len(), listed.join(", "))
        }
    }
}

fn routes(rt: &Runtime, out: &mut String) {
    let _ = writeln!(out, "  routes     {} rule(s), first match wins; no match: auth: required", rt.routes.len());
    for (i, route) in rt.routes.routes().iter().enumerate() {
        let host = route.host.as_ref().map(|h| format!("host: {}, ", spelling::host(h))).unwrap_or_default();
        let header = route.header.as_ref().map(|h| format!(", header: {}", h.name)).unwrap_or_default();
        let cors = match route.cors.as_deref() {
            Some(crate::routes::Cors::Answer(_)) => ", cors: preflights answered",
            Some(crate::routes::Cors::Forward) => ", cors: preflights forwarded unauthenticated",
            None => "",
        };
        let _ = writeln!(
            out,
            "    [{i}] {host}{}, methods: {}{header} -> auth: {}{cors}",
            spelling::path(&route.path),
            spelling::list(&route.methods, "any"),
            spelling::auth(route.auth)
        );
    }
}

/// The store, without credentials in URLs.
pub fn describe_store(store: &StoreSettings) -> String {
    match store {
        StoreSettings::Memory => "memory".into(),
        StoreSettings::Redis { nodes, cluster, sentinel, timeout, subscribe_nodes, .. } => {
            let redacted = |nodes: &[String]| nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>().join(", ");
            let kind = match (sentinel, cluster) {
                (Some(master), _) => format!("redis sentinel master `{}` via", master.master_name),
                (None, true) => "redis cluster".into(),
                (None, false) => "redis".into(),
            };
            let subscribed = match subscribe_nodes.is_empty() {
                true => String::new(),
                false => format!(", subscribed on {}", redacted(subscribe_nodes)),
            };
            format!("{kind} {} (timeout: {}){subscribed}", redacted(nodes), spelling::duration(*timeout))
        }
    }
}
