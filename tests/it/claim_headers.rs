//! `forward_claims`: verified claims as request headers for apps that
//! cannot read a JWT; hostile claim values refused, client-sent copies of
//! those headers stripped on every route; `strip_authorization`.

use crate::support::gate::empty;
use crate::support::token::{self, claims};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};
use serde_json::{json, Value};

const ROUTES: &str = "
  - match: { path_prefix: /claims }
    forward_claims:
      sub: X-User-Id
      n: X-Num
      ratio: X-Ratio
      verified: X-Verified
      roles: X-Roles
      realm_access.roles: X-Realm-Roles
      profile: X-Profile
      email: X-Email
      nickname: X-Nickname
  - match: { path_prefix: /open }
    auth: none
  - match: { path_prefix: /opt }
    auth: optional
  - match: { path_prefix: /stripped }
    strip_authorization: true
    forward_claims: { sub: X-Subject }
";

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES)).await;
    (app, gate)
}

#[tokio::test]
async fn claims_are_forwarded_as_text_by_type() {
    let (app, gate) = fixture().await;
    let tok = claims()
        .sub("user-42")
        .claim("n", json!(42))
        .claim("ratio", json!(0.5))
        .claim("verified", json!(true))
        .claim("roles", json!(["reader", "writer", 7]))
        .claim("realm_access", json!({ "roles": ["admin", "ops"] }))
        .claim("profile", json!({ "name": "Ada", "langs": ["en", "fr"], "age": 36 }))
        .claim("nickname", Value::Null);
    assert_eq!(gate.get("/claims/all", &tok.sign()).await.status, 200);
    let seen = app.one("/claims/all");
    assert_eq!(seen.header("x-user-id"), Some("user-42"), "string as is");
    assert_eq!(seen.header("x-num"), Some("42"), "integer as text");
    assert_eq!(seen.header("x-ratio"), Some("0.5"), "float as text");
    assert_eq!(seen.header("x-verified"), Some("true"), "boolean as text");
    assert_eq!(seen.header("x-roles"), Some("reader,writer,7"), "array joined with commas");
    assert_eq!(seen.header("x-realm-roles"), Some("admin,ops"), "dotted path into an object");
    let profile = seen.header("x-profile").expect("object claim forwarded");
    assert!(!profile.contains(' '), "compact JSON: {profile:?}");
    let parsed: Value = serde_json::from_str(profile).expect("object claim as JSON");
    assert_eq!(parsed, json!({ "name": "Ada", "langs": ["en", "fr"], "age": 36 }));
    assert_eq!(seen.header("x-email"), None, "absent claim: header not set");
    assert_eq!(seen.header("x-nickname"), None, "null claim: header not set");
}

#[tokio::test]
async fn claim_with_a_control_character_is_refused_and_never_forwarded() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get("/claims/control", &claims().sub("plain").sign()).await.status, 200, "control");
    let hostile = [
        ("crlf", claims().sub("alice\r\nX-Admin: yes")),
        ("lf-in-array", claims().claim("roles", json!(["reader", "x\nX-Admin: yes"]))),
        ("nul-nested", claims().claim("realm_access", json!({ "roles": ["a\u{0}b"] }))),
        ("tab", claims().claim("email", json!("a@b.c\tX"))),
        ("del", claims().claim("n", json!("4\u{7f}2"))),
    ];
    for (name, tok) in hostile {
        let path = format!("/claims/{name}");
        let rsp = gate.get(&path, &tok.sign()).await;
        assert_refused(&rsp, 401, "invalid_claims", Challenge::InvalidToken);
        assert_eq!(app.seen(&path), 0, "{name}: forwarded");
    }
    assert!(app.requests().iter().all(|s| s.header("x-admin").is_none()), "header injected upstream");
}

/// Sends `path` with client-made copies of claim headers (several values,
/// odd case) and returns what the app received.
async fn spoofed(gate: &Gate, app: &Upstream, path: &str, token: Option<&str>) -> crate::support::upstream::Seen {
    let mut req = gate
        .req("GET", path)
        .header("X-User-Id", "admin")
        .header("x-user-id", "root")
        .header("X-ROLES", "admin")
        .header("x-subject", "admin")
        .header("x-unrelated", "kept");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let rsp = gate.send(req.body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "{path}: {}", rsp.text());
    app.one(path)
}

#[tokio::test]
async fn spoofed_claim_headers_are_stripped_on_public_routes() {
    let (app, gate) = fixture().await;
    for path in ["/open/x", "/opt/x"] {
        let seen = spoofed(&gate, &app, path, None).await;
        for h in ["x-user-id", "x-roles", "x-subject"] {
            assert_eq!(seen.header(h), None, "{path}: client-sent {h} reached the app");
        }
        assert_eq!(seen.header("x-unrelated"), Some("kept"), "{path}: other headers untouched");
    }
    // Headers of another route's forward_claims are stripped here too.
    let seen = spoofed(&gate, &app, "/opt/token", Some(&token::mint())).await;
    assert_eq!(seen.header("x-subject"), None);
    assert_eq!(seen.header("x-user-id"), None);
}

#[tokio::test]
async fn spoofed_claim_headers_are_replaced_or_removed_on_protected_routes() {
    let (app, gate) = fixture().await;
    // No `roles` claim: the client's X-Roles must not survive as if it were one.
    let seen = spoofed(&gate, &app, "/claims/spoof", Some(&claims().sub("alice").sign())).await;
    let ids: Vec<&str> = seen.headers.iter().filter(|(k, _)| k == "x-user-id").map(|(_, v)| v.as_str()).collect();
    assert_eq!(ids, ["alice"], "exactly the verified sub");
    assert_eq!(seen.header("x-roles"), None);
    assert_eq!(seen.header("x-subject"), None);
    assert_eq!(seen.header("x-unrelated"), Some("kept"));
}

#[tokio::test]
async fn strip_authorization_removes_the_token_before_forwarding() {
    let (app, gate) = fixture().await;
    let raw = claims().sub("carol").sign();
    assert_eq!(gate.get("/claims/kept", &raw).await.status, 200, "control");
    let kept = app.one("/claims/kept").header("authorization").map(str::to_owned);
    assert_eq!(kept, Some(format!("Bearer {raw}")), "control: other routes keep the token");

    assert_eq!(gate.get("/stripped/x", &raw).await.status, 200);
    let seen = app.one("/stripped/x");
    assert_eq!(seen.header("authorization"), None, "token forwarded despite strip_authorization");
    assert_eq!(seen.header("x-subject"), Some("carol"), "claims still forwarded");
    assert!(!seen.headers.iter().any(|(_, v)| v.contains(&raw)), "token text in another header");

    assert_refused(&gate.get_anon("/stripped/anon").await, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.seen("/stripped/anon"), 0);
}
