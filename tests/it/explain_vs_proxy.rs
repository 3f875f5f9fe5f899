//! `jwtgate explain` is a dry run of the proxy's own phases, so for any
//! request its verdict is the live proxy's answer. Differential: a table of
//! requests (each rule kind, each refusal reason, each of jwtgate's own
//! paths, header rules, a logout token as an access token, two Host
//! headers, a revoked token), each sent to a real gate in front of a
//! recording upstream and explained against the same config and Redis.

use crate::support::gate::{cli, write_config};
use crate::support::token::{claims, HS_ISSUER};
use crate::support::{now_unix, Cfg, Gate, Redis, Rsp, Upstream};
use serde_json::json;

const ROUTES: &str = r#"
  - match: { path: /healthz }
    auth: none
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /internal }
    auth: deny
  - match: { path_regex: "/orders/[0-9]+" }
    auth: required
  - match: { path_glob: "/static/**" }
    auth: none
  - match: { host: admin.example.com }
    auth: deny
  - match: { path_prefix: /m, methods: [GET] }
    auth: none
  - match: { path_prefix: /beta, header: { name: X-Tenant, value: acme } }
    require: { scopes: [beta] }
  - match: { path_prefix: /opt }
    auth: optional
  - match: { path_prefix: /claims }
    forward_claims: { sub: X-User-Id }
"#;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One request: method, path, header lines (Host is always `g` unless given).
struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<String>,
}

fn case(what: &'static str, method: &'static str, path: &'static str, headers: &[String]) -> Case {
    Case { what, method, path, headers: headers.to_vec() }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

fn fresh() -> String {
    claims().hs256().sub("u-1").iat(now_unix() - 5).sign()
}

fn cases(revoked: &str) -> Vec<Case> {
    let logout_token = claims().hs256().sub("u-1").claim("events", json!({ EVENT: {} })).sign();
    let unscoped = claims().hs256().claim("scope", json!("other")).sign();
    let expired = claims().hs256().exp_in(-3600).sign();
    let foreign = claims().hs256().iss("https://elsewhere.test/").sign();
    let mut forged = fresh();
    forged.push('x');
    vec![
        case("exact, none", "GET", "/healthz", &[]),
        case("prefix, none", "GET", "/public/x", &[]),
        case("deny prefix", "GET", "/internal/x", &[bearer(&fresh())]),
        case("deny, repeated slashes", "GET", "//internal//x", &[bearer(&fresh())]),
        case("regex, no token", "GET", "/orders/42", &[]),
        case("regex, token", "GET", "/orders/42", &[bearer(&fresh())]),
        case("glob", "GET", "/static/a/b.css", &[]),
        case("host rule", "GET", "/x", &["Host: Admin.Example.com".into(), bearer(&fresh())]),
        case("methods rule", "GET", "/m/1", &[]),
        case("methods rule, other method", "POST", "/m/1", &[]),
        case("header rule, scope missing", "GET", "/beta/x", &["X-Tenant: acme".into(), bearer(&unscoped)]),
        case("header rule not matched", "GET", "/beta/x", &["X-Tenant: other".into(), bearer(&unscoped)]),
        case("optional, no token", "GET", "/opt/x", &[]),
        case("optional, bad token", "GET", "/opt/x", &[bearer(&forged)]),
        case("claim headers", "GET", "/claims/x", &[bearer(&fresh())]),
        case("forged signature", "GET", "/api/x", &[bearer(&forged)]),
        case("expired", "GET", "/api/x", &[bearer(&expired)]),
        case("unknown issuer", "GET", "/api/x", &[bearer(&foreign)]),
        case("not bearer", "GET", "/api/x", &["Authorization: Basic dTpw".into()]),
        case("query token", "GET", "/api/x?access_token=abc", &[bearer(&fresh())]),
        case("logout token as access token", "GET", "/api/x", &[bearer(&logout_token)]),
        case("revoked token", "GET", "/api/x", &[bearer(revoked)]),
        case("two Host headers", "GET", "/public/x", &["Host: a.example".into(), "Host: b.example".into()]),
        case("dot segments", "GET", "/public/../internal", &[]),
        case("connect", "CONNECT", "/x", &[]),
        case("override decided otherwise", "POST", "/m/1", &["X-HTTP-Method-Override: GET".into()]),
        case("logout", "POST", "/logout", &[bearer(&fresh())]),
        case("logout of a revoked token", "POST", "/logout", &[bearer(revoked)]),
        case("logout without a token", "POST", "/logout", &[]),
        case("logout everywhere", "POST", "/logout/all", &[bearer(&fresh())]),
        case("back-channel receiver", "POST", "/bcl", &[]),
    ]
}

/// What the proxy answered: status, and the JSON `error` code or `forwarded`.
fn proxy_verdict(rsp: &Rsp) -> (u16, String) {
    if rsp.header("x-upstream").as_deref() == Some("yes") {
        return (rsp.status, "forwarded".into());
    }
    let code = serde_json::from_slice::<serde_json::Value>(&rsp.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "answered".into());
    (rsp.status, code)
}

/// What explain said: the verdict line read the same way.
fn explain_verdict(stdout: &str) -> (u16, String) {
    let verdict = stdout.lines().last().and_then(|l| l.strip_prefix("=> ")).unwrap_or_default();
    if verdict.starts_with("forwarded to") {
        return (200, "forwarded".into());
    }
    if verdict.starts_with("back-channel logout receiver") {
        // The body is the request's: explain says what it expects, the
        // proxy (sent none) refuses the empty form.
        return (400, "invalid_request".into());
    }
    let (status, rest) = verdict.split_once(' ').unwrap_or_default();
    let code = rest.split([':', ' ']).next().unwrap_or_default();
    let code = if status == "200" { "answered" } else { code };
    (status.parse().unwrap_or(0), code.to_owned())
}

#[tokio::test]
async fn explain_gives_the_live_proxys_verdict_for_every_kind_of_request() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let cfg = Cfg::new(&app).redis(&redis).logout_all().backchannel(HS_ISSUER).routes(ROUTES);
    let gate = Gate::spawn(&cfg).await;
    let config = write_config(&cfg.yaml());
    let config = config.path().to_str().expect("utf-8 path").to_owned();
    let revoked = fresh();
    assert_eq!(gate.raw(&raw("POST", "/logout", &[bearer(&revoked)])).await.status, 200, "setup: revoke one");

    let mut kinds = std::collections::BTreeSet::new();
    for case in cases(&revoked) {
        // Explain first: a dry run writes nothing, so the proxy then meets
        // the same store.
        let mut args = vec!["explain", "-c", config.as_str(), case.method];
        let url = match case.headers.iter().any(|h| h.starts_with("Host:")) {
            true => case.path.to_owned(),
            false => format!("http://g{}", case.path),
        };
        args.push(&url);
        for header in &case.headers {
            args.extend(["-H", header.as_str()]);
        }
        let out = cli(&args).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let explained = explain_verdict(&stdout);
        let passed = explained.1 == "forwarded" || explained.0 == 200 || stdout.contains("=> back-channel");
        let code = if passed { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(code), "{}: exit code; {}", case.what, String::from_utf8_lossy(&out.stderr));
        let answered = proxy_verdict(&gate.raw(&raw(case.method, case.path, &case.headers)).await);
        assert_eq!(explained, answered, "{}: explain said\n{stdout}", case.what);
        kinds.insert(answered.1);
    }
    // Positive control: the table covers forwarding, answers and many refusals.
    for kind in ["forwarded", "answered", "forbidden", "missing_token", "token_revoked", "invalid_claims"] {
        assert!(kinds.contains(kind), "no case ended in {kind}: {kinds:?}");
    }
    assert!(kinds.len() >= 14, "{kinds:?}");
}

/// The same request on the wire, with `Host: g` unless the case sets one.
fn raw(method: &str, path: &str, headers: &[String]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|h| h.starts_with("Host:")) {
        req.push_str("Host: g\r\n");
    }
    for header in headers {
        req.push_str(header);
        req.push_str("\r\n");
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    req.into_bytes()
}
