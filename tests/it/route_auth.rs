//! What a matched rule does with the token: `required` (also the default
//! for unmatched requests), `optional` (no token passes, a bad or revoked
//! one does not), `none` (no check at all) and `deny` (closed).

use crate::support::gate::empty;
use crate::support::token::{self, claims, Key};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};

const ROUTES: &str = "
  - match: { path_prefix: /req }
    auth: required
    forward_claims: { sub: X-User-Id }
  - match: { path_prefix: /opt }
    auth: optional
    forward_claims: { sub: X-User-Id }
  - match: { path_prefix: /open }
    auth: none
  - match: { path_prefix: /closed }
    auth: deny
";

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES)).await;
    (app, gate)
}

fn forged() -> String {
    claims().hs256().key(Key::Hmac(b"wrong-secret".to_vec())).sign()
}

#[tokio::test]
async fn required_rule_forwards_a_valid_token_and_refuses_none_or_a_bad_one() {
    let (app, gate) = fixture().await;
    let rsp = gate.get("/req/ok", &claims().sub("alice").sign()).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(app.one("/req/ok").header("x-user-id"), Some("alice"));

    assert_refused(&gate.get_anon("/req/anon").await, 401, "missing_token", Challenge::Bare);
    assert_refused(&gate.get("/req/bad", &forged()).await, 401, "invalid_signature", Challenge::InvalidToken);
    assert_eq!(app.seen("/req/anon") + app.seen("/req/bad"), 0, "a refused request reached the app");
}

#[tokio::test]
async fn request_matching_no_rule_needs_a_token() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get("/elsewhere/ok", &token::mint()).await.status, 200, "control");
    assert_refused(&gate.get_anon("/elsewhere/anon").await, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.seen("/elsewhere/anon"), 0);
    assert_eq!(app.seen("/elsewhere/ok"), 1);
}

#[tokio::test]
async fn optional_rule_forwards_without_a_token_and_without_claim_headers() {
    let (app, gate) = fixture().await;
    let req = gate.req("GET", "/opt/anon").header("x-user-id", "spoofed-admin");
    let rsp = gate.send(req.body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let seen = app.one("/opt/anon");
    assert_eq!(seen.header("x-user-id"), None, "claim header on an anonymous request");
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn optional_rule_sets_claim_headers_for_a_valid_token() {
    let (app, gate) = fixture().await;
    let raw = claims().sub("bob").sign();
    assert_eq!(gate.get("/opt/me", &raw).await.status, 200);
    let seen = app.one("/opt/me");
    assert_eq!(seen.header("x-user-id"), Some("bob"));
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {raw}").as_str()), "token kept for the app");
}

#[tokio::test]
async fn optional_rule_refuses_a_presented_token_that_is_invalid_expired_or_revoked() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get_anon("/opt/control").await.status, 200, "control: no token passes");
    assert_refused(&gate.get("/opt/forged", &forged()).await, 401, "invalid_signature", Challenge::InvalidToken);
    let expired = claims().exp_in(-3600).sign();
    assert_refused(&gate.get("/opt/expired", &expired).await, 401, "token_expired", Challenge::InvalidToken);
    assert_refused(&gate.get("/opt/junk", "not-a-jwt").await, 401, "malformed_token", Challenge::InvalidToken);
    let revoked = token::mint();
    assert_eq!(gate.get("/opt/before-logout", &revoked).await.status, 200, "control");
    assert_eq!(gate.logout(&revoked).await.status, 200);
    assert_refused(&gate.get("/opt/revoked", &revoked).await, 401, "token_revoked", Challenge::InvalidToken);
    for path in ["/opt/forged", "/opt/expired", "/opt/junk", "/opt/revoked"] {
        assert_eq!(app.seen(path), 0, "{path} reached the app");
    }
}

#[tokio::test]
async fn none_rule_forwards_without_looking_at_the_token() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get_anon("/open/anon").await.status, 200);
    let rsp = gate.get("/open/junk", "not-a-jwt").await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(app.one("/open/junk").header("authorization"), Some("Bearer not-a-jwt"), "forwarded as is");
    let revoked = token::mint();
    assert_eq!(gate.logout(&revoked).await.status, 200);
    assert_eq!(gate.get("/open/revoked", &revoked).await.status, 200, "no revocation check either");
    assert_eq!(app.seen("/open/anon") + app.seen("/open/revoked"), 2);
}

#[tokio::test]
async fn deny_rule_refuses_even_a_valid_token_without_a_challenge() {
    let (app, gate) = fixture().await;
    let raw = token::mint();
    assert_eq!(gate.get("/req/control", &raw).await.status, 200, "control: the token is valid");
    assert_refused(&gate.get("/closed/x", &raw).await, 403, "forbidden", Challenge::Absent);
    assert_refused(&gate.get_anon("/closed").await, 403, "forbidden", Challenge::Absent);
    assert_refused(&gate.get("/closed/junk", "not-a-jwt").await, 403, "forbidden", Challenge::Absent);
    assert_eq!(app.seen("/closed/x") + app.seen("/closed") + app.seen("/closed/junk"), 0);
}
