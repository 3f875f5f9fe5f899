//! Where the token comes from and what its signature proves: every
//! refusal is checked for status, challenge, error code and silence
//! upstream, beside a valid token on the same gate.

use crate::support::gate::empty;
use crate::support::token::{self, claims, Key};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};
use serde_json::json;

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    (app, gate)
}

/// A valid token passes (control), then `bad` is refused with `code`
/// and never reaches the upstream.
async fn refused_beside_control(bad: &str, code: &str) {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get("/api/ok", &token::mint()).await.status, 200, "control");
    let rsp = gate.get("/api/refused", bad).await;
    assert_refused(&rsp, 401, code, Challenge::InvalidToken);
    assert_eq!(app.seen("/api/refused"), 0, "refused request reached the app");
    assert_eq!(app.seen("/api/ok"), 1);
}

#[tokio::test]
async fn request_without_token_gets_bare_bearer_challenge() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get("/api/ok", &token::mint()).await.status, 200, "control");
    let rsp = gate.get_anon("/api/x").await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.seen("/api/x"), 0);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let (app, gate) = fixture().await;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let req = gate.req("GET", "/api/scheme").header("authorization", format!("{scheme} {}", token::mint()));
        assert_eq!(gate.send(req.body(empty()).unwrap()).await.status, 200, "{scheme}");
    }
    assert_eq!(app.seen("/api/scheme"), 3);
}

#[tokio::test]
async fn non_bearer_authorization_is_refused_not_passed_through() {
    let (app, gate) = fixture().await;
    let req = gate.req("GET", "/api/basic").header("authorization", "Basic dXNlcjpwYXNz");
    let rsp = gate.send(req.body(empty()).unwrap()).await;
    assert_refused(&rsp, 400, "invalid_request", Challenge::InvalidRequest);
    let tab = gate.req("GET", "/api/basic").header("authorization", format!("Bearer\t{}", token::mint()));
    let rsp = gate.send(tab.body(empty()).unwrap()).await;
    assert_refused(&rsp, 400, "invalid_request", Challenge::InvalidRequest);
    assert_eq!(app.seen("/api/basic"), 0);
    assert_eq!(gate.get("/api/ok", &token::mint()).await.status, 200, "control");
}

#[tokio::test]
async fn token_in_configured_cookie_is_accepted() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg { cookie: Some("access_token".into()), ..Cfg::new(&app) }).await;
    let cookie = format!("theme=dark; access_token={}; x=1", token::mint());
    let req = gate.req("GET", "/api/cookie").header("cookie", cookie);
    assert_eq!(gate.send(req.body(empty()).unwrap()).await.status, 200);
    assert_eq!(app.seen("/api/cookie"), 1);

    let req = gate.req("GET", "/api/no-cookie").header("cookie", "other=1");
    let rsp = gate.send(req.body(empty()).unwrap()).await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.seen("/api/no-cookie"), 0);
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let (app, gate) = fixture().await;
    let (a, b) = (token::mint(), token::mint());
    assert_eq!(gate.get("/api/ok", &a).await.status, 200, "control");
    let req = gate
        .req("GET", "/api/two")
        .header("authorization", format!("Bearer {a}"))
        .header("authorization", format!("Bearer {b}"));
    let rsp = gate.send(req.body(empty()).unwrap()).await;
    assert_refused(&rsp, 400, "invalid_request", Challenge::InvalidRequest);
    assert_eq!(app.seen("/api/two"), 0);
}

#[tokio::test]
async fn header_and_cookie_with_different_tokens_are_an_invalid_request() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg { cookie: Some("access_token".into()), ..Cfg::new(&app) }).await;
    let (a, b) = (token::mint(), token::mint());
    let same = gate
        .req("GET", "/api/same")
        .header("authorization", format!("Bearer {a}"))
        .header("cookie", format!("access_token={a}"));
    assert_eq!(gate.send(same.body(empty()).unwrap()).await.status, 200, "control");
    let differ = gate
        .req("GET", "/api/differ")
        .header("authorization", format!("Bearer {a}"))
        .header("cookie", format!("access_token={b}"));
    let rsp = gate.send(differ.body(empty()).unwrap()).await;
    assert_refused(&rsp, 400, "invalid_request", Challenge::InvalidRequest);
    assert_eq!(app.seen("/api/differ"), 0);
}

#[tokio::test]
async fn text_that_is_not_a_jwt_is_malformed() {
    refused_beside_control("not-a-jwt", "malformed_token").await;
}

#[tokio::test]
async fn token_with_invalid_base64_is_malformed() {
    refused_beside_control("e30!.e30$.c2ln", "malformed_token").await;
}

#[tokio::test]
async fn token_whose_header_is_not_json_is_malformed() {
    let bad = token::raw(b"not json", br#"{"iss":"x"}"#, &Key::Rsa);
    refused_beside_control(&bad, "malformed_token").await;
}

#[tokio::test]
async fn token_with_altered_payload_has_invalid_signature() {
    let good = token::mint();
    let forged_payload = claims().claim("sub", json!("admin")).sign();
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = forged_payload.split('.').nth(1).unwrap();
    refused_beside_control(&parts.join("."), "invalid_signature").await;
}

#[tokio::test]
async fn hmac_token_signed_with_wrong_secret_has_invalid_signature() {
    let bad = claims().hs256().key(Key::Hmac(b"wrong-secret".to_vec())).sign();
    refused_beside_control(&bad, "invalid_signature").await;
}

#[tokio::test]
async fn unsigned_alg_none_token_is_refused() {
    let bad = claims().header("alg", json!("none")).without_header("kid").key(Key::Unsigned).sign();
    refused_beside_control(&bad, "algorithm_not_allowed").await;
}

#[tokio::test]
async fn hs256_token_keyed_with_the_rsa_public_pem_is_refused() {
    let bad = claims().header("alg", json!("HS256")).key(Key::Hmac(token::rsa_public_pem())).sign();
    refused_beside_control(&bad, "algorithm_not_allowed").await;
}

#[tokio::test]
async fn rs256_token_for_hmac_only_issuer_is_refused() {
    let bad = claims().iss(token::HS_ISSUER).sign();
    refused_beside_control(&bad, "algorithm_not_allowed").await;
}

#[tokio::test]
async fn token_with_unknown_kid_is_refused() {
    let bad = claims().header("kid", json!("no-such-key")).sign();
    refused_beside_control(&bad, "unknown_key").await;
}

#[tokio::test]
async fn token_with_crit_header_is_refused() {
    let bad = claims().header("crit", json!(["x-unknown"])).header("x-unknown", json!(1)).sign();
    refused_beside_control(&bad, "unsupported_critical_header").await;
}

#[tokio::test]
async fn token_longer_than_max_token_bytes_is_refused() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg { max_token_bytes: 1024, ..Cfg::new(&app) }).await;
    assert_eq!(gate.get("/api/ok", &token::mint()).await.status, 200, "control");
    let big = claims().claim("pad", json!("p".repeat(2000))).sign();
    assert!(big.len() > 1024);
    let rsp = gate.get("/api/big", &big).await;
    assert_refused(&rsp, 401, "token_too_large", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/big"), 0);
}

#[tokio::test]
async fn rs256_es256_eddsa_and_jwks_keys_are_accepted() {
    let (app, gate) = fixture().await;
    let cases = [
        ("rs256", claims().rs256()),
        ("es256", claims().es256()),
        ("eddsa", claims().eddsa()),
        ("jwks-rs256", claims().jwks_rs256()),
        ("jwks-es256", claims().jwks_es256()),
        ("hs256", claims().hs256()),
    ];
    for (name, tok) in cases {
        let rsp = gate.get(&format!("/api/{name}"), &tok.sign()).await;
        assert_eq!(rsp.status, 200, "{name}: {}", rsp.text());
        assert_eq!(app.seen(&format!("/api/{name}")), 1, "{name}");
    }
}

#[tokio::test]
async fn hmac_secret_file_is_trimmed_of_one_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hs.secret");
    std::fs::write(&path, "file-secret-value\n").unwrap();
    let app = Upstream::spawn().await;
    let mut cfg = Cfg::new(&app);
    cfg.hs_keys.push(format!("{{ kid: hs-file, secret_file: \"{}\" }}", path.display()));
    let gate = Gate::spawn(&cfg).await;
    let tok = |secret: &str| {
        let key = Key::Hmac(secret.as_bytes().to_vec());
        claims().hs256().header("kid", json!("hs-file")).key(key).sign()
    };
    assert_eq!(gate.get("/api/file", &tok("file-secret-value")).await.status, 200);
    let rsp = gate.get("/api/newline", &tok("file-secret-value\n")).await;
    assert_refused(&rsp, 401, "invalid_signature", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/newline"), 0);
}
