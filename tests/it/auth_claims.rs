//! Registered claims: time windows with leeway, issuer, audience, claim
//! types and the jti policy. Gates here run with `leeway: 30s`.

use crate::support::token::{self, claims};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};
use serde_json::json;

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    (app, gate)
}

async fn refused_beside_control(bad: token::Tok, code: &str) {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get("/api/ok", &token::mint()).await.status, 200, "control");
    let rsp = gate.get("/api/refused", &bad.sign()).await;
    assert_refused(&rsp, 401, code, Challenge::InvalidToken);
    assert_eq!(app.seen("/api/refused"), 0, "refused request reached the app");
}

#[tokio::test]
async fn token_expired_beyond_leeway_is_refused() {
    refused_beside_control(claims().exp_in(-120), "token_expired").await;
}

#[tokio::test]
async fn token_expired_within_leeway_still_passes() {
    let (app, gate) = fixture().await;
    let rsp = gate.get("/api/grace", &claims().exp_in(-10).sign()).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(app.seen("/api/grace"), 1);
}

#[tokio::test]
async fn token_not_yet_valid_beyond_leeway_is_refused() {
    refused_beside_control(claims().nbf_in(120), "token_not_yet_valid").await;
}

#[tokio::test]
async fn token_with_nbf_within_leeway_passes() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get("/api/early", &claims().nbf_in(10).sign()).await.status, 200);
    assert_eq!(app.seen("/api/early"), 1);
}

#[tokio::test]
async fn token_from_unknown_issuer_is_refused() {
    refused_beside_control(claims().iss("https://evil.test/"), "wrong_issuer").await;
}

#[tokio::test]
async fn token_without_issuer_is_refused() {
    refused_beside_control(claims().without("iss"), "wrong_issuer").await;
}

#[tokio::test]
async fn token_for_another_audience_is_refused() {
    refused_beside_control(claims().claim("aud", json!("billing")), "wrong_audience").await;
}

#[tokio::test]
async fn audience_list_containing_ours_passes() {
    let (app, gate) = fixture().await;
    let tok = claims().claim("aud", json!(["billing", token::AUDIENCE])).sign();
    assert_eq!(gate.get("/api/auds", &tok).await.status, 200);
    assert_eq!(app.seen("/api/auds"), 1);
}

#[tokio::test]
async fn exp_given_as_string_is_invalid_claims() {
    let exp = (crate::support::now_unix() + 300).to_string();
    refused_beside_control(claims().claim("exp", json!(exp)), "invalid_claims").await;
}

#[tokio::test]
async fn nbf_given_as_string_is_invalid_claims() {
    refused_beside_control(claims().claim("nbf", json!("0")), "invalid_claims").await;
}

#[tokio::test]
async fn iat_given_as_string_is_invalid_claims() {
    refused_beside_control(claims().claim("iat", json!("yesterday")), "invalid_claims").await;
}

#[tokio::test]
async fn token_without_exp_is_invalid_claims_when_exp_is_required() {
    refused_beside_control(claims().without("exp"), "invalid_claims").await;
}

#[tokio::test]
async fn token_without_jti_is_refused_under_reject_policy() {
    refused_beside_control(claims().without("jti"), "missing_jti").await;
}
