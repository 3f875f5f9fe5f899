//! `jwtgate explain`: one request walked through the phases of
//! `proxy::Gate`, printing each decision. The token itself is never printed.

use super::check::describe_store;
use crate::proxy::Special;
use crate::runtime::Runtime;
use std::fmt::Write;

/// `jwtgate explain`: how this config would treat one request, step by
/// step, including a revocation look-up against the configured store.
/// The token itself is never printed.
/// The request to explain, as given on the command line.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub token: Option<&'a str>,
    /// `Name: value` lines.
    pub headers: &'a [String],
}

pub async fn explain(rt: &Runtime, request: &Request<'_>) -> String {
    let mut out = String::new();
    let verdict = explain_steps(rt, request, &mut out).await;
    let _ = writeln!(out, "=> {verdict}");
    out
}

/// `Name: value` lines as a header map; the first line that is not one is
/// the error, named by its position only (it may hold a token).
fn parse_headers(lines: &[String]) -> Result<http::HeaderMap, String> {
    let mut headers = http::HeaderMap::new();
    for (i, line) in lines.iter().enumerate() {
        let parsed = line.split_once(':').and_then(|(name, value)| {
            let name = http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
            Some((name, http::HeaderValue::from_str(value.trim()).ok()?))
        });
        let Some((name, value)) = parsed else {
            return Err(format!("header #{} is not `NAME: VALUE` (not shown: it may hold a token)", i + 1));
        };
        headers.append(name, value);
    }
    Ok(headers)
}

async fn explain_steps(rt: &Runtime, request: &Request<'_>, out: &mut String) -> String {
    use crate::config::AuthMode;
    use crate::routes::{normalize_path, PathRefusal, RequestHead};
    let (method, url) = (request.method, request.url);
    let Ok(method) = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
        return format!("`{method}` is not an HTTP method");
    };
    let Ok(uri) = url.parse::<http::Uri>() else { return format!("`{url}` is not a URL or path") };
    let headers = match parse_headers(request.headers) {
        Ok(headers) => headers,
        Err(why) => return why,
    };
    // The token as the gate would take it: --token (or its env var), else
    // the request's Authorization header (or cookie), refused as the gate
    // refuses it (two headers, a non-Bearer scheme...).
    let from_headers = match (request.token, crate::auth::extract(&headers, rt.cookie.as_deref())) {
        (Some(_), _) | (None, Err(crate::error::Rejection::NoToken)) => None,
        (None, Ok(raw)) => Some(raw.to_owned()),
        (None, Err(rejection)) => {
            let (code, message) = rejection.code_and_message();
            return format!("{} {code}: {message}", crate::error::ProxyError::from(rejection).status().as_u16());
        }
    };
    let token = request.token.or(from_headers.as_deref());
    let host = uri.host();
    let _ = writeln!(out, "request    {method} {} (host {})", uri.path(), host.unwrap_or("-"));
    if method == http::Method::CONNECT {
        return "405 method_not_allowed".into();
    }
    let (path, rewritten) = match normalize_path(uri.path(), rt.paths) {
        Ok(path) => (path.decide, path.rewritten),
        Err(PathRefusal::Ambiguous) => {
            return "400 ambiguous_path (dot segments or encoded separators are refused, never normalised)".into()
        }
        Err(PathRefusal::RepeatedSlashes) => return "400 repeated_slashes (repeated_slashes: reject)".into(),
    };
    if let Some(forwarded) = &rewritten {
        let _ = writeln!(out, "path       decided and forwarded as {forwarded} (repeated slashes merged)");
    }
    let kind = Special::of(rt, &method, &path);
    let special = match kind {
        Special::Backchannel => {
            return "back-channel logout endpoint: verifies a form-posted logout_token (not a bearer token)".into()
        }
        Special::Logout => Some("logout"),
        Special::LogoutAll => Some("logout_all"),
        Special::None => None,
    };
    let route = match special {
        Some(name) => {
            let _ = writeln!(out, "route      {name} path (token required)");
            rt.routes.default_route()
        }
        None => {
            let route = rt.routes.pick(&RequestHead { method: &method, host, path: &path, headers: &headers });
            let index = rt.routes.routes().iter().position(|r| std::ptr::eq(r, route));
            let name = index.map_or_else(|| "no rule matched: default".to_string(), |i| format!("routes[{i}]"));
            let _ = writeln!(out, "route      {name} {} -> auth {:?}", route.label, route.auth);
            route
        }
    };
    let overridden = crate::proxy::headers::method_override(&method, &headers, uri.query());
    let decided_otherwise = match &overridden {
        Ok(Some(other)) => {
            crate::proxy::refuse_if_decided_otherwise(rt, other, host, &path, &headers, kind, route).is_err()
        }
        Ok(None) => false,
        Err(_) => true,
    };
    if decided_otherwise {
        return "400 ambiguous_method (a method override the rules would decide otherwise)".into();
    }
    let upstream = rt.upstreams.get(route.upstream).map_or("?".to_string(), |u| format!("http://{}", u.authority));
    match (route.auth, token) {
        (AuthMode::Deny, _) => return "403 forbidden (auth: deny)".into(),
        (AuthMode::None, _) => return format!("forwarded to {upstream} without a token check"),
        (AuthMode::Optional, None) => return format!("forwarded to {upstream} (auth optional, no token)"),
        (AuthMode::Required, None) => return "401 missing_token (pass --token to go on)".into(),
        (_, Some(_)) => {}
    }
    let raw = token.unwrap_or_default();
    let claims = match rt.verifier.verify(raw, crate::auth::now_unix()) {
        Ok(claims) => claims,
        Err(rejection) => {
            let (code, message) = rejection.code_and_message();
            return format!("401 {code}: {message}");
        }
    };
    let _ = writeln!(
        out,
        "token      valid: iss {}, sub {:?}, jti {:?}, exp {:?}",
        claims.iss, claims.sub, claims.jti, claims.exp_unix
    );
    if let Err(err) = route.require.check(&claims) {
        let (code, message) = err.code_and_message();
        return format!("403 {code}: {message}");
    }
    if !route.require.is_empty() {
        let _ = writeln!(out, "require    met");
    }
    let _ = writeln!(out, "revocation {}", revocation_line(rt, &claims, raw).await);
    for claim in &route.forward_claims {
        match claim.value(&claims.payload) {
            Ok(Some(v)) => {
                let _ = writeln!(out, "header     {}: {}", claim.header, v.to_str().unwrap_or("<binary>"));
            }
            Ok(None) => {
                let _ = writeln!(out, "header     {}: (claim absent, header not set)", claim.header);
            }
            Err(r) => return format!("401 {}", r.code_and_message().0),
        }
    }
    match special {
        Some("logout") if !rt.logout.forward => "200: jwtgate revokes the token and answers".into(),
        Some("logout_all") => "200: jwtgate revokes every token of the subject and answers".into(),
        _ => format!("forwarded to {upstream}"),
    }
}

async fn revocation_line(rt: &Runtime, claims: &crate::auth::Claims, raw: &str) -> String {
    use crate::revocation::{RedisStore, RevocationStore, Revocations};
    use std::sync::Arc;
    let channel = crate::revocation::keys::channel(&rt.policy.key_prefix);
    let store: Arc<dyn RevocationStore> = match RedisStore::from_settings(&rt.store, channel) {
        Ok(None) => return "memory store: starts empty, nothing to look up".into(),
        Ok(Some(store)) => {
            store.warm_up().await;
            Arc::new(store)
        }
        Err(_) => return "redis store cannot be built".into(),
    };
    let revocations = Revocations::new(store, rt.policy.clone(), false);
    match revocations.ensure_live(claims, raw).await {
        Ok(()) => format!("not revoked ({})", describe_store(&rt.store)),
        Err(err) => {
            let (code, message) = err.code_and_message();
            format!("{code}: {message} ({})", describe_store(&rt.store))
        }
    }
}
