//! `jwtgate explain`: a dry run of the proxy's phases (`proxy::admit`,
//! `pick`, `authenticate`, `require`, `act::plan`, `prepare`) on a
//! synthetic request, printing each decision. Everything runs as the
//! proxy runs it, revocation look-up included, but the side effects (a
//! logout writes nothing: the plan is printed) and the upstream call. The
//! token itself is never printed.

use super::check::describe_store;
use crate::error::{Causes, ProxyError};
use crate::proxy::act::{plan, Effect};
use crate::proxy::authenticate::{authenticate, Caller};
use crate::proxy::cors;
use crate::proxy::pick::{pick, pick_as, Action, Picked};
use crate::proxy::{admit::admit, prepare::prepare, require, Live};
use crate::revocation::{MemoryStore, RedisStore, RevocationStore, Revocations, StoreError};
use crate::runtime::Runtime;
use http::request::Parts;
use std::fmt::Write;
use std::sync::Arc;

/// The request to explain, as given on the command line.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// The bearer token (sent as `Authorization: Bearer`, replacing one in
    /// `headers`).
    pub token: Option<&'a str>,
    /// `Name: value` lines.
    pub headers: &'a [String],
}

/// What became of the request, as the exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded, or answered by jwtgate itself (a logout, the back-channel
    /// receiver): exit 0.
    Passed,
    /// The proxy would answer with an error status: exit 1.
    Refused,
    /// The config or the request on the command line is not usable: exit 2
    /// (clap's own code for a usage error, too).
    Unusable,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::Refused => 1,
            Verdict::Unusable => 2,
        }
    }
}

/// How `rt` treats `request`, step by step, ending in a `=> verdict` line:
/// `<status> <code>: <message>` for a refusal (the proxy's own status and
/// code), `200 ...` for an answer jwtgate gives itself, `forwarded to ...`.
pub async fn explain(rt: Runtime, request: &Request<'_>) -> (String, Verdict) {
    let mut out = String::new();
    let (line, verdict) = match synthetic(request) {
        Ok(mut head) => {
            let live = Live::new(rt);
            match steps(&live, &mut head, &mut out).await {
                Ok(line) => (line, Verdict::Passed),
                Err(err) => (refusal(&err), Verdict::Refused),
            }
        }
        Err(why) => (why.to_string(), Verdict::Unusable),
    };
    let _ = writeln!(out, "=> {line}");
    (out, verdict)
}

fn refusal(err: &ProxyError) -> String {
    let (code, message) = err.code_and_message();
    let status = err.status().as_u16();
    match std::error::Error::source(err) {
        // An operator runs explain: the cause is theirs to read.
        Some(_) => format!("{status} {code}: {}", Causes(err)),
        None => format!("{status} {code}: {message}"),
    }
}

/// A command-line request explain cannot build. Header lines and the
/// token are never echoed: they may hold credentials.
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error("`{0}` is not an HTTP method")]
    Method(String),
    #[error("`{0}` is not a URL or path")]
    Url(String),
    #[error("`{0}` has no usable host")]
    Host(String),
    #[error("the --token value is not a header value (not shown)")]
    Token,
    #[error("header #{0} is not `NAME: VALUE` (not shown: it may hold a token)")]
    Header(usize),
}

/// The request as a client would send it: the URL's host as Host, the
/// `-H` headers, `--token` as the Authorization header.
fn synthetic(request: &Request<'_>) -> Result<Parts, BadRequest> {
    let method = request.method;
    let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| BadRequest::Method(method.to_string()))?;
    let url = request.url;
    let uri: http::Uri = url.parse().map_err(|_| BadRequest::Url(url.to_string()))?;
    let mut headers = parse_headers(request.headers)?;
    if let (Some(host), false) = (uri.authority(), headers.contains_key(http::header::HOST)) {
        let host = http::HeaderValue::from_str(host.as_str()).map_err(|_| BadRequest::Host(url.to_string()))?;
        headers.insert(http::header::HOST, host);
    }
    if let Some(token) = request.token {
        let value = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| BadRequest::Token)?;
        headers.insert(http::header::AUTHORIZATION, value);
    }
    let (mut head, ()) = http::Request::new(()).into_parts();
    (head.method, head.uri, head.headers) = (method, uri, headers);
    Ok(head)
}

/// `Name: value` lines as a header map; the first line that is not one is
/// the error, named by its position only (it may hold a token).
fn parse_headers(lines: &[String]) -> Result<http::HeaderMap, BadRequest> {
    let mut headers = http::HeaderMap::new();
    for (i, line) in lines.iter().enumerate() {
        let parsed = line.split_once(':').and_then(|(name, value)| {
            let name = http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
            Some((name, http::HeaderValue::from_str(value.trim()).ok()?))
        });
        let Some((name, value)) = parsed else {
            return Err(BadRequest::Header(i + 1));
        };
        headers.append(name, value);
    }
    Ok(headers)
}

/// The phases, as `proxy::Gate::phases` runs them.
async fn steps(live: &Live, head: &mut Parts, out: &mut String) -> Result<String, ProxyError> {
    let rt = &live.rt;
    let host = head.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("-");
    let _ = writeln!(out, "request    {} {} (host {host})", head.method, head.uri.path());
    let (picked, preflight, rewritten) = {
        let admitted = admit(rt, head)?;
        if let Some(forwarded) = &admitted.path.rewritten {
            let _ = writeln!(out, "path       decided and forwarded as {forwarded} (repeated slashes merged)");
        }
        let picked = pick(rt, &live.own_paths, head, &admitted)?;
        let preflight = cors::preflight_method(head).map(|m| (pick_as(rt, &live.own_paths, &admitted, head, &m), m));
        (picked, preflight, admitted.path.rewritten)
    };
    if let Some((target, requested)) = preflight {
        let rule = &target.route.label;
        match cors::preflight(&target, head, &requested) {
            cors::Preflight::NoPolicy => {
                let _ = writeln!(out, "cors       preflight for {requested}: rule {rule} has no cors policy, so it is a request like any other");
            }
            cors::Preflight::Answered(answer) => {
                let _ = writeln!(out, "cors       preflight for {requested}, decided by rule {rule}");
                return answer.map(|rsp| {
                    format!("{} {rule}: CORS preflight answered by jwtgate, not forwarded", rsp.status().as_u16())
                });
            }
            cors::Preflight::Forward => {
                let upstream = rt.upstreams.get(target.route.upstream).map(|u| u.authority.to_string());
                let upstream = upstream.unwrap_or_else(|| "?".into());
                return Ok(format!(
                    "forwarded to http://{upstream} unauthenticated (rule {rule}: cors preflight: forward)"
                ));
            }
        }
    }
    let _ = writeln!(out, "route      {}", route_line(rt, &picked));
    let revocations = revocations(rt).await?;
    let caller = authenticate(rt, &revocations, picked.route, head).await?;
    describe_caller(rt, &caller, out);
    let caller = require(&picked, caller, true)?;
    if !picked.route.require.is_empty() {
        let _ = writeln!(out, "require    met");
    }
    if let Some(effect) = plan(rt, &picked, &caller) {
        let (line, answers) = describe_effect(&effect);
        let _ = writeln!(out, "logout     {line} (dry run: nothing written)");
        if answers {
            return Ok(format!("200 {}: answered by jwtgate, not forwarded", picked.route.label));
        }
    }
    let peer = crate::proxy::forwarding::Peer::new(std::net::Ipv4Addr::LOCALHOST.into());
    let sent_authorization = head.headers.contains_key(http::header::AUTHORIZATION);
    prepare(rt, &picked, head, &caller, &peer, rewritten)?;
    let forwarded_authorization = head.headers.contains_key(http::header::AUTHORIZATION);
    let _ = writeln!(
        out,
        "header     authorization: {} (strip_authorization: {})",
        authorization_fate(sent_authorization, forwarded_authorization),
        picked.route.strip_authorization
    );
    for claim in &picked.route.forward_claims {
        let value = head.headers.get(&claim.header).map(|v| v.to_str().unwrap_or("<binary>"));
        let _ = writeln!(out, "header     {}: {}", claim.header, value.unwrap_or("(claim absent, header not set)"));
    }
    Ok(match picked.action {
        Action::ReceiveBackchannel => "back-channel logout receiver: expects a POST with logout_token=<JWT> in the \
            form body (verified like the issuer's tokens, then its sid/sub revoked); nothing is forwarded"
            .into(),
        _ => {
            let upstream = rt.upstreams.get(picked.route.upstream).map(|u| u.authority.to_string());
            format!("forwarded to http://{}", upstream.unwrap_or_else(|| "?".into()))
        }
    })
}

/// What happens to the request's Authorization header on its way
/// upstream, read from the prepared request itself.
fn authorization_fate(sent: bool, forwarded: bool) -> &'static str {
    match (sent, forwarded) {
        (true, false) => "removed before forwarding",
        (true, true) => "forwarded as sent",
        (false, _) => "none sent",
    }
}

fn route_line(rt: &Runtime, picked: &Picked<'_>) -> String {
    let route = picked.route;
    match picked.action {
        Action::Logout | Action::LogoutAll => format!("{} path (token required)", route.label),
        Action::ReceiveBackchannel => "back-channel logout path".into(),
        Action::Forward => {
            let index = rt.routes.routes().iter().position(|r| std::ptr::eq(r, route));
            let name = index.map_or_else(|| "no rule matched: default".to_string(), |i| format!("routes[{i}]"));
            format!("{name} {} -> auth: {}", super::spelling::path(&route.path), super::spelling::auth(route.auth))
        }
    }
}

fn describe_caller(rt: &Runtime, caller: &Caller, out: &mut String) {
    let Some(claims) = caller.claims() else {
        let _ = writeln!(out, "token      none asked for or sent");
        return;
    };
    let _ = writeln!(
        out,
        "token      valid: iss {}, sub {}, jti {}, exp {}",
        claims.iss,
        or_none(claims.sub.as_deref()),
        or_none(claims.jti.as_deref()),
        claims.exp_unix.map_or_else(|| "(none)".to_string(), |exp| exp.to_string())
    );
    let state = if matches!(caller, Caller::Revoked(_)) { "revoked" } else { "not revoked" };
    let _ = writeln!(out, "revocation {state} ({})", describe_store(&rt.store));
}

/// An optional claim's value, or `(none)`.
fn or_none(value: Option<&str>) -> &str {
    value.unwrap_or("(none)")
}

/// What the plan would write, and whether jwtgate then answers itself.
fn describe_effect(effect: &Effect<'_>) -> (String, bool) {
    match effect {
        Effect::RevokeToken { claims, again, answer } => {
            let what = if *again { "would store its revocation again" } else { "would revoke" };
            (format!("{what}: iss {}, jti {}", claims.iss, or_none(claims.jti.as_deref())), *answer)
        }
        Effect::RevokeSubject { claims } => {
            let sub = or_none(claims.sub.as_deref());
            (format!("would revoke every token of iss {}, sub {sub} issued until now", claims.iss), true)
        }
    }
}

/// The configured store, read-only: explain looks up, never writes (the
/// memory store starts empty).
async fn revocations(rt: &Runtime) -> Result<Revocations, StoreError> {
    let channel = crate::revocation::keys::channel(&rt.policy.key_prefix);
    let store: Arc<dyn RevocationStore> = match RedisStore::from_settings(&rt.store, channel)? {
        Some(store) => {
            store.warm_up().await;
            Arc::new(store)
        }
        None => Arc::new(MemoryStore::new()),
    };
    Ok(Revocations::new(store, rt.policy.clone(), false))
}
