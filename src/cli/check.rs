//! `jwtgate check` and `jwtgate explain`: what a config does, told in
//! plain text before it is deployed. Secrets and credentials never appear.

use crate::config::redact_url;
use crate::runtime::{Compiled, Runtime, StoreSettings};
use std::fmt::Write;
use std::path::Path;

/// The summary `check` prints for a valid config.
pub fn summary(path: &Path, compiled: &Compiled) -> String {
    let (start, rt) = (&compiled.start, &compiled.runtime);
    let mut out = String::new();
    let _ = writeln!(out, "{}: ok", path.display());
    let _ = writeln!(out, "  listen     {}", start.listen);
    if let Some(tls) = &rt.tls {
        let _ = writeln!(out, "  tls        {} (key {})", tls.cert_file.display(), tls.key_file.display());
    }
    for (i, up) in rt.upstreams.iter().enumerate() {
        let name = if i == 0 { "upstream  " } else { "upstream+ " };
        let _ = writeln!(out, "  {name} http://{} (timeout {:?})", up.authority, up.timeout);
    }
    for issuer in rt.verifier.issuers() {
        let _ = writeln!(
            out,
            "  issuer     {} ({:?}, {} key(s) + {} JWKS URL(s), audiences {:?})",
            issuer.issuer,
            issuer.algorithms,
            issuer.keys.len(),
            issuer.jwks.len(),
            issuer.audiences
        );
    }
    let _ = writeln!(out, "  routes     {} rule(s), first match wins; no match: auth required", rt.routes.len());
    for (i, route) in rt.routes.routes().iter().enumerate() {
        let host = route.host.as_ref().map(|h| format!(" host {h:?}")).unwrap_or_default();
        let _ = writeln!(out, "    [{i}] {}{host} methods {:?} -> auth {:?}", route.label, route.methods, route.auth);
    }
    let _ = writeln!(out, "  logout     {:?} {} (forward: {})", rt.logout.methods, rt.logout.path, rt.logout.forward);
    let _ = writeln!(
        out,
        "  store      {}, on_store_error {:?}, missing_jti {:?}",
        describe_store(&start.store),
        start.policy.on_store_error,
        start.policy.missing_jti
    );
    if let Some(admin) = &start.admin {
        let _ = writeln!(out, "  admin      {}", admin.listen);
    }
    out
}

/// Problems that make a config wrong although it parses: rules no request
/// can reach.
pub fn problems(rt: &Runtime) -> Vec<String> {
    rt.routes.unreachable().into_iter().map(|(_, why)| why).collect()
}

/// The store, without credentials in URLs.
pub fn describe_store(store: &StoreSettings) -> String {
    match store {
        StoreSettings::Memory => "memory".into(),
        StoreSettings::Redis { nodes, cluster, sentinel, timeout, .. } => {
            let nodes: Vec<String> = nodes.iter().map(|n| redact_url(n)).collect();
            let kind = match (sentinel, cluster) {
                (Some(master), _) => format!("redis sentinel master `{}` via", master.master_name),
                (None, true) => "redis cluster".into(),
                (None, false) => "redis".into(),
            };
            format!("{kind} {} (timeout {timeout:?})", nodes.join(", "))
        }
    }
}
