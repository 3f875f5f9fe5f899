//! OpenID Connect Back-Channel Logout 1.0: the OP POSTs
//! `logout_token=<JWT>`; a valid logout token revokes every token of its
//! `sub` and/or `sid` issued until now. Anything else is 400
//! `invalid_request` and revokes nothing (§2.6, §2.8).

use crate::support::config::BACKCHANNEL_PATH;
use crate::support::gate::{empty, full};
use crate::support::token::{claims, sid_key, sub_key, Key, Tok, HS_ISSUER};
use crate::support::{assert_refused, now_unix, Cfg, Challenge, Gate, Redis, Rsp, Upstream};
use serde_json::json;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The OP is the HMAC issuer; its access tokens are the ones logged out.
fn cfg(app: &Upstream, redis: &Redis) -> Cfg {
    Cfg::new(app).redis(redis).backchannel(HS_ISSUER)
}

/// An access token of the OP for `sub`.
fn access(sub: &str) -> Tok {
    claims().hs256().sub(sub).iat(now_unix() - 5)
}

/// A valid logout token for `sub` (add `.sid(..)`, or drop `sub` for a session logout).
fn logout_token(sub: &str) -> Tok {
    claims().hs256().sub(sub).claim("events", json!({ EVENT: {} }))
}

async fn post_form(gate: &Gate, body: &str) -> Rsp {
    let req = gate
        .req("POST", BACKCHANNEL_PATH)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(full(body.to_owned()))
        .expect("request");
    gate.send(req).await
}

async fn backchannel_logout(gate: &Gate, tok: &Tok) -> Rsp {
    post_form(gate, &format!("logout_token={}", tok.sign())).await
}

#[track_caller]
fn assert_invalid_request(rsp: &Rsp, case: &str) {
    assert_eq!(rsp.status, 400, "{case}: {}", rsp.text());
    let body = rsp.json();
    assert_eq!(body["error"], "invalid_request", "{case}: {body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{case}: {body}");
}

#[tokio::test]
async fn backchannel_logout_by_sub_refuses_every_token_of_that_subject() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let alice = access("alice").sign();
    let alice_session = access("alice").sid("sess-1").sign();
    let bob = access("bob").sign();
    let alice_elsewhere = claims().sub("alice").sign(); // same sub, another issuer
    for raw in [&alice, &alice_session, &bob, &alice_elsewhere] {
        assert_eq!(gate.get("/api/before", raw).await.status, 200, "control");
    }

    let rsp = backchannel_logout(&gate, &logout_token("alice")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json(), json!({}));
    assert_eq!(app.seen(BACKCHANNEL_PATH), 0, "answered by jwtgate, not forwarded");
    let key = sub_key("jwtgate:", HS_ISSUER, "alice");
    assert_eq!(redis.keys("jwtgate:*").await, std::slice::from_ref(&key), "exactly the subject was revoked");

    for raw in [&alice, &alice_session] {
        assert_refused(&gate.get("/api/after", raw).await, 401, "token_revoked", Challenge::InvalidToken);
    }
    assert_eq!(app.seen("/api/after"), 0, "a logged-out token reached the app");
    assert_eq!(gate.get("/api/bob", &bob).await.status, 200, "other subjects unaffected");
    assert_eq!(gate.get("/api/other-iss", &alice_elsewhere).await.status, 200, "same sub of another issuer unaffected");
    let relogin = access("alice").iat(now_unix() + 1).sign();
    assert_eq!(gate.get("/api/relogin", &relogin).await.status, 200, "a token issued afterwards works");
}

#[tokio::test]
async fn backchannel_logout_by_sid_refuses_only_that_session() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let session_one = access("alice").sid("sess-1").sign();
    let session_two = access("alice").sid("sess-2").sign();
    let no_session = access("alice").sign();
    for raw in [&session_one, &session_two, &no_session] {
        assert_eq!(gate.get("/api/before", raw).await.status, 200, "control");
    }

    let rsp = backchannel_logout(&gate, &logout_token("alice").without("sub").sid("sess-1")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json(), json!({}));
    assert_eq!(redis.keys("jwtgate:*").await, [sid_key("jwtgate:", HS_ISSUER, "sess-1")]);

    assert_refused(&gate.get("/api/after", &session_one).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/after"), 0);
    assert_eq!(gate.get("/api/two", &session_two).await.status, 200, "another session of the same sub stays valid");
    assert_eq!(gate.get("/api/none", &no_session).await.status, 200, "a token without sid stays valid");
}

#[tokio::test]
async fn invalid_logout_tokens_are_answered_400_and_revoke_nothing() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let alice = access("alice").sid("sess-1").sign();
    assert_eq!(gate.get("/api/before", &alice).await.status, 200, "control");

    let valid = || logout_token("alice").sid("sess-1");
    let cases: Vec<(&str, Tok)> = vec![
        ("no events claim", valid().without("events")),
        ("events without the back-channel member", valid().claim("events", json!({ "urn:other:event": {} }))),
        ("event value is a string", valid().claim("events", json!({ EVENT: "logout" }))),
        ("event value is an array", valid().claim("events", json!({ EVENT: [] }))),
        ("nonce present", valid().claim("nonce", json!("n-0S6_WzA2Mj"))),
        ("neither sub nor sid", valid().without("sub").without("sid")),
        ("no iat", valid().without("iat")),
        ("bad signature", valid().key(Key::Hmac(b"not-the-op-secret".to_vec()))),
        ("issuer not configured for back-channel logout", claims().sub("alice").claim("events", json!({ EVENT: {} }))),
        ("expired", valid().exp_in(-3600)),
        ("wrong audience", valid().claim("aud", json!("someone-else"))),
    ];
    for (case, tok) in &cases {
        assert_invalid_request(&backchannel_logout(&gate, tok).await, case);
    }
    for (case, body) in [
        ("missing logout_token", "id_token_hint=x".to_owned()),
        ("empty body", String::new()),
        ("logout_token not a JWT", "logout_token=not-a-jwt".to_owned()),
    ] {
        assert_invalid_request(&post_form(&gate, &body).await, case);
    }

    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new(), "an invalid logout token revoked something");
    assert_eq!(app.seen(BACKCHANNEL_PATH), 0, "the receiver is never forwarded");
    assert_eq!(gate.get("/api/still", &alice).await.status, 200, "alice is still logged in");
    // Control: the same endpoint accepts the valid token these cases were derived from.
    assert_eq!(backchannel_logout(&gate, &valid()).await.status, 200);
    assert_refused(&gate.get("/api/after", &alice).await, 401, "token_revoked", Challenge::InvalidToken);
}

#[tokio::test]
async fn backchannel_endpoint_answers_other_methods_with_400() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let alice = access("alice").sign();
    let body = format!("logout_token={}", logout_token("alice").sign());
    for method in ["GET", "PUT", "DELETE"] {
        let req = gate
            .req(method, BACKCHANNEL_PATH)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(if method == "GET" { empty() } else { full(body.clone()) })
            .expect("request");
        assert_invalid_request(&gate.send(req).await, method);
    }
    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new());
    assert_eq!(app.seen(BACKCHANNEL_PATH), 0);
    assert_eq!(gate.get("/api/still", &alice).await.status, 200);
}
