//! Repeated slashes: nginx (`merge_slashes`), Express, Spring and Tomcat
//! serve `//internal/x` as `/internal/x`, so every decision (rules of each
//! auth mode, logout, logout-all, back-channel logout, `explain`) is made
//! on the merged path, and the upstream receives the path it was decided
//! on. `repeated_slashes: reject` answers 400 instead and rewrites nothing.
//! Every case asserts what reached the app, beside a positive control.

use crate::support::config::BACKCHANNEL_PATH;
use crate::support::gate::{cli, full, write_config};
use crate::support::token::{self, claims, HS_ISSUER};
use crate::support::{assert_refused, now_unix, Cfg, Challenge, Gate, Rsp, Upstream};
use serde_json::json;

/// Spellings of `/internal/x` (an `auth: deny` prefix in `ROUTES`) that an
/// app merging slashes, dropping `;params` and folding case routes there.
const DENIED: &[&str] = &[
    "//internal/x",
    "///internal/x",
    "////internal",
    "//internal",
    "//internal/",
    "/internal//x",
    "//internal//x//",
    "//INTERNAL/x",
    "//Internal;v=1//x",
    "/;v=1//internal/x",
    "/;v=1/internal/x",
];

/// The same request every test sends: exact bytes on the request line.
fn request(method: &str, target: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!("{method} {target} HTTP/1.1\r\nHost: g\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

async fn send(gate: &Gate, method: &str, target: &str, token: Option<&str>) -> Rsp {
    gate.raw(&request(method, target, token)).await
}

/// The request line targets the upstream saw, oldest first.
fn targets(app: &Upstream) -> Vec<String> {
    app.requests().into_iter().map(|s| s.target).collect()
}

#[tokio::test]
async fn deny_rule_refuses_every_repeated_slash_spelling_even_with_a_valid_token() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    let tok = token::mint();
    assert_eq!(send(&gate, "GET", "/api/control", Some(&tok)).await.status, 200, "control: the token is valid");
    assert_refused(&send(&gate, "GET", "/internal/x", Some(&tok)).await, 403, "forbidden", Challenge::Absent);
    for target in DENIED {
        let rsp = send(&gate, "GET", target, Some(&tok)).await;
        assert_eq!(rsp.status, 403, "{target}: {}", rsp.text());
        assert_refused(&rsp, 403, "forbidden", Challenge::Absent);
    }
    assert_eq!(targets(&app), ["/api/control"], "only the control reached the app");
}

#[tokio::test]
async fn forwarded_requests_reach_the_app_with_the_path_they_were_decided_on() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    let tok = token::mint();
    let cases: &[(&str, Option<&str>, &str)] = &[
        // auth: none
        ("//healthz", None, "/healthz"),
        ("//public//x", None, "/public/x"),
        ("///public/a//b?q=//keep//", None, "/public/a/b?q=//keep//"),
        // auth: required, with a token
        ("//api//orders", Some(&tok), "/api/orders"),
        // the default rule (required): no protocol-relative URL reaches the app
        ("//evil.example/steal", Some(&tok), "/evil.example/steal"),
        // no repeated slash: the received bytes, untouched (control)
        ("/Public;v=1/y", None, "/Public;v=1/y"),
    ];
    for (target, token, seen) in cases {
        let before = app.total();
        let rsp = send(&gate, "GET", target, *token).await;
        assert_eq!(rsp.status, 200, "{target}: {}", rsp.text());
        assert_eq!(app.total(), before + 1, "{target}: not forwarded exactly once");
        assert_eq!(app.requests().last().map(|s| s.target.clone()).as_deref(), Some(*seen), "{target}");
    }
}

#[tokio::test]
async fn required_rule_still_asks_for_a_token_under_repeated_slashes() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    for target in ["//api/x", "/api//x", "///API/x", "//evil.example/x"] {
        assert_refused(&send(&gate, "GET", target, None).await, 401, "missing_token", Challenge::Bare);
    }
    // `/healthz` is exact and public; `//healthz//deep` is not it.
    assert_refused(&send(&gate, "GET", "//healthz//deep", None).await, 401, "missing_token", Challenge::Bare);
    assert_eq!(send(&gate, "GET", "//healthz", None).await.status, 200, "control: the public path itself");
    assert_eq!(targets(&app), ["/healthz"]);
}

/// Each spelling of the logout path, on a fresh token: jwtgate answers and
/// revokes (the app never sees it), and the token is refused afterwards.
#[tokio::test]
async fn logout_in_every_repeated_slash_spelling_revokes_and_is_never_forwarded() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    for target in ["//logout", "/logout//", "///logout", "//Logout/", "/;x//logout", "//logout;x//"] {
        let raw = claims().sign();
        assert_eq!(send(&gate, "GET", "/api/before", Some(&raw)).await.status, 200, "{target}: control");
        let rsp = send(&gate, "POST", target, Some(&raw)).await;
        assert_eq!(rsp.status, 200, "{target}: {}", rsp.text());
        assert_eq!(rsp.json()["revoked"], true, "{target}: {}", rsp.text());
        let after = send(&gate, "GET", "/api/after", Some(&raw)).await;
        assert_refused(&after, 401, "token_revoked", Challenge::InvalidToken);
    }
    let seen = targets(&app);
    assert!(seen.iter().all(|t| t == "/api/before"), "a logout or a revoked token reached the app: {seen:?}");
}

#[tokio::test]
async fn forwarded_logout_revokes_and_the_app_sees_the_merged_path() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg { logout_forward: true, ..Cfg::new(&app) }).await;
    for (target, seen) in [("//logout", "/logout"), ("/logout//", "/logout/")] {
        let raw = claims().sign();
        let rsp = send(&gate, "POST", target, Some(&raw)).await;
        assert_eq!(rsp.status, 200, "{target}: {}", rsp.text());
        assert_eq!(app.requests().last().map(|s| s.target.clone()).as_deref(), Some(seen), "{target}");
        let after = send(&gate, "GET", "/api/after", Some(&raw)).await;
        assert_refused(&after, 401, "token_revoked", Challenge::InvalidToken);
    }
    assert_eq!(app.seen("/api/after"), 0, "a logged-out token reached the app");
}

#[tokio::test]
async fn logout_all_in_every_repeated_slash_spelling_revokes_the_subject() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).logout_all()).await;
    for (i, target) in ["//logout/all", "/logout//all", "/logout/all//", "///logout///all"].into_iter().enumerate() {
        let sub = format!("user-{i}");
        let older = claims().sub(&sub).iat(now_unix() - 10).sign();
        let caller = claims().sub(&sub).iat(now_unix() - 5).sign();
        assert_eq!(send(&gate, "GET", "/api/before", Some(&older)).await.status, 200, "{target}: control");
        let rsp = send(&gate, "POST", target, Some(&caller)).await;
        assert_eq!(rsp.status, 200, "{target}: {}", rsp.text());
        for raw in [&older, &caller] {
            let after = send(&gate, "GET", "/api/after", Some(raw)).await;
            assert_refused(&after, 401, "token_revoked", Challenge::InvalidToken);
        }
    }
    assert_eq!(app.seen("/logout/all") + app.seen("/api/after"), 0, "logout-all or a revoked token forwarded");
}

#[tokio::test]
async fn backchannel_logout_in_repeated_slash_spellings_is_received_by_jwtgate() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).backchannel(HS_ISSUER)).await;
    let event = json!({ "http://schemas.openid.net/event/backchannel-logout": {} });
    for (i, target) in [format!("/{BACKCHANNEL_PATH}"), format!("{BACKCHANNEL_PATH}//")].iter().enumerate() {
        let sub = format!("user-{i}");
        let access = claims().hs256().sub(&sub).iat(now_unix() - 5).sign();
        assert_eq!(send(&gate, "GET", "/api/before", Some(&access)).await.status, 200, "{target}: control");
        let logout_token = claims().hs256().sub(&sub).claim("events", event.clone()).sign();
        let req = gate
            .req("POST", target)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(full(format!("logout_token={logout_token}")))
            .expect("request");
        let rsp = gate.send(req).await;
        assert_eq!(rsp.status, 200, "{target}: {}", rsp.text());
        let after = send(&gate, "GET", "/api/after", Some(&access)).await;
        assert_refused(&after, 401, "token_revoked", Challenge::InvalidToken);
    }
    let seen = targets(&app);
    assert!(seen.iter().all(|t| t == "/api/before"), "the receiver or a revoked token was forwarded: {seen:?}");
}

#[tokio::test]
async fn repeated_slashes_reject_answers_400_and_rewrites_nothing() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).extra("repeated_slashes: reject")).await;
    let tok = token::mint();
    assert_eq!(send(&gate, "GET", "/public/x", None).await.status, 200, "control");
    for target in ["//internal/x", "/public//x", "//healthz", "//logout", "/api/x//", "//evil.example/x"] {
        let method = if target == "//logout" { "POST" } else { "GET" };
        let rsp = send(&gate, method, target, Some(&tok)).await;
        assert_refused(&rsp, 400, "repeated_slashes", Challenge::Absent);
    }
    // No repeated slash on the wire: the decision still reads `/;v=1/internal` as `/internal`.
    assert_refused(&send(&gate, "GET", "/;v=1/internal/x", Some(&tok)).await, 403, "forbidden", Challenge::Absent);
    assert_eq!(targets(&app), ["/public/x"], "only the control reached the app");
    assert_eq!(send(&gate, "GET", "/api/after", Some(&tok)).await.status, 200, "the token was never revoked");
}

#[tokio::test]
async fn explain_decides_on_the_merged_path() {
    let app = Upstream::spawn().await;
    let config = write_config(&Cfg::new(&app).yaml());
    let path = config.path().to_str().expect("utf-8 path");
    let tok = token::mint();
    // explain exits 0 for a request that is forwarded or answered, 1 for a refusal.
    let run = |method: &'static str, url: &'static str, exit: i32| {
        let args = vec!["explain", "-c", path, method, url, "--token", tok.as_str()];
        async move {
            let out = cli(&args).await;
            assert_eq!(out.status.code(), Some(exit), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let denied = run("GET", "//internal/x", 1).await;
    assert!(denied.trim_end().ends_with("=> 403 forbidden: this route is closed"), "{denied}");
    let forwarded = run("GET", "//api//x", 0).await;
    assert!(forwarded.contains("decided and forwarded as /api/x"), "{forwarded}");
    assert!(forwarded.trim_end().lines().last().is_some_and(|l| l.starts_with("=> forwarded to")), "{forwarded}");
    let logout = run("POST", "//logout", 0).await;
    assert!(logout.contains("route      logout path"), "{logout}");
}

#[tokio::test]
async fn exact_regex_glob_and_host_rules_see_the_merged_path() {
    let routes = r#"
  - match: { path: /exact/deny }
    auth: deny
  - match: { path_regex: "/orders/[0-9]+/admin" }
    auth: deny
  - match: { path_glob: "/files/*/secret" }
    auth: deny
  - match: { host: admin.example.com, path_prefix: /panel }
    auth: deny
  - match: { path_prefix: / }
    auth: none
"#;
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(routes)).await;
    let raw = |target: &str, host: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
    };
    for (target, host) in [
        ("//exact/deny", "g"),
        ("/exact//deny/", "g"),
        ("//orders//42//admin", "g"),
        ("/orders/42//admin//", "g"),
        ("//files//a//secret", "g"),
        ("//panel//x", "admin.example.com"),
    ] {
        let rsp = gate.raw(&raw(target, host)).await;
        assert_refused(&rsp, 403, "forbidden", Challenge::Absent);
    }
    for (target, seen) in [("//orders//42//view", "/orders/42/view"), ("//files//a//b", "/files/a/b")] {
        assert_eq!(gate.raw(&raw(target, "g")).await.status, 200, "control: {target}");
        assert_eq!(app.requests().last().map(|s| s.target.clone()).as_deref(), Some(seen));
    }
    assert_eq!(app.total(), 2, "only the controls reached the app");
}
