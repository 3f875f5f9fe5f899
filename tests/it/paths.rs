//! Path handling: ambiguous paths (dot segments, encoded separators) are
//! refused, never normalised, so a public prefix cannot be used to reach a
//! protected one; prefixes match whole segments only. Repeated slashes:
//! `slashes.rs`.

use crate::support::token;
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};

/// `/healthz` is `auth: none`, `/api` is required.
const AMBIGUOUS: &[&str] = &[
    "/healthz/../api",
    "/healthz/%2e%2e/api",
    "/healthz/%2E%2E/api",
    "/healthz%2f..%2fapi",
    "/healthz%2F..%2Fapi",
    "/healthz%5c..%5capi",
    "/healthz\\..\\api",
    "/healthz;x/../api",
    "/api/./x",
    // An app that decodes before cutting `;params` reads `/public/../api`
    // (found by fuzzing; `/public` is `auth: none`).
    "/public/..%3Bx/api",
    "/public/..%3bx/internal",
];

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    (app, gate)
}

fn raw_get(target: &str, token: Option<&str>) -> Vec<u8> {
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    format!("GET {target} HTTP/1.1\r\nHost: g\r\n{auth}Connection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn traversal_from_public_route_is_refused_without_reaching_upstream() {
    let (app, gate) = fixture().await;
    let rsp = gate.raw(&raw_get("/healthz", None)).await;
    assert_eq!(rsp.status, 200, "control: /healthz is public");
    for target in AMBIGUOUS {
        let rsp = gate.raw(&raw_get(target, None)).await;
        assert_refused(&rsp, 400, "ambiguous_path", Challenge::Absent);
    }
    let seen: Vec<String> = app.requests().into_iter().map(|s| s.target).collect();
    assert_eq!(seen, ["/healthz"], "only the control reached the app");
}

#[tokio::test]
async fn ambiguous_paths_are_refused_even_with_a_valid_token() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    assert_eq!(gate.raw(&raw_get("/api/x", Some(&tok))).await.status, 200, "control");
    for target in AMBIGUOUS {
        let rsp = gate.raw(&raw_get(target, Some(&tok))).await;
        assert_refused(&rsp, 400, "ambiguous_path", Challenge::Absent);
    }
    let seen: Vec<String> = app.requests().into_iter().map(|s| s.target).collect();
    assert_eq!(seen, ["/api/x"], "only the control reached the app");
}

#[tokio::test]
async fn path_prefix_rule_matches_whole_segments_only() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    // `/public` is auth: none for /public and /public/x ...
    assert_eq!(gate.get_anon("/public").await.status, 200);
    assert_eq!(gate.get_anon("/public/x").await.status, 200);
    // ... but /publicx falls through to the default (token required).
    let rsp = gate.get_anon("/publicx").await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    // `/internal` is auth: deny for /internal/x, not for /internalx.
    let rsp = gate.get("/internal/x", &tok).await;
    assert_refused(&rsp, 403, "forbidden", Challenge::Absent);
    assert_eq!(gate.get("/internalx", &tok).await.status, 200);
    let seen: Vec<String> = app.requests().into_iter().map(|s| s.target).collect();
    assert_eq!(seen, ["/public", "/public/x", "/internalx"]);
}

#[tokio::test]
async fn exact_path_rule_does_not_cover_subpaths() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get_anon("/healthz").await.status, 200);
    let rsp = gate.get_anon("/healthz/deep").await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.seen("/healthz/deep"), 0);
}

/// Go, Spring, ASP.NET, Django and nginx decode escapes before routing, so
/// a rule covers every escaped spelling of its characters.
#[tokio::test]
async fn escaped_spellings_of_a_rule_path_are_matched_by_the_rule() {
    let routes = "
  - match: { path_prefix: \"/v1/items:purge\" }
    auth: deny
  - match: { path_prefix: \"/café\" }
    auth: deny
  - match: { path_prefix: / }
    auth: none
";
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(routes)).await;
    for target in ["/v1/items:purge", "/v1/items%3Apurge", "/v1/items%3apurge/x", "/caf%C3%A9", "/CAF%C3%A9/menu"] {
        assert_refused(&gate.raw(&raw_get(target, None)).await, 403, "forbidden", Challenge::Absent);
    }
    assert_refused(&gate.raw(&raw_get("/v1/items%+3A", None)).await, 400, "ambiguous_path", Challenge::Absent);
    assert_eq!(gate.raw(&raw_get("/v1/items%3Aread", None)).await.status, 200, "control");
    let seen: Vec<String> = app.requests().into_iter().map(|s| s.target).collect();
    assert_eq!(seen, ["/v1/items%3Aread"], "only the control reached the app, its bytes as sent");
}
