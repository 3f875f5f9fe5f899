//! `POST /logout`: revokes the presented token in the shared store, on
//! this instance at once and on every other instance within
//! `not_revoked_ttl`.

use crate::support::token::{self, claims};
use crate::support::{assert_refused, eventually, Cfg, Challenge, Gate, Redis, Upstream};
use std::time::{Duration, Instant};

async fn logout_then_refused(cfg: impl Fn(&Upstream) -> Cfg) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app)).await;
    let tok = claims();
    let raw = tok.sign();
    assert_eq!(gate.get("/api/before", &raw).await.status, 200, "control");

    let rsp = gate.logout(&raw).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let body = rsp.json();
    assert_eq!(body["revoked"], true);
    assert_eq!(body["jti"], tok.jti_value());
    let expires_at = body["expires_at"].as_i64().expect("expires_at is a number");
    assert!((tok.exp()..=tok.exp() + 30).contains(&expires_at), "expires_at {expires_at}");
    assert_eq!(app.seen("/logout"), 0, "logout answered by jwtgate, not forwarded");

    let rsp = gate.get("/api/after", &raw).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/after"), 0);
    assert_eq!(gate.get("/api/other", &token::mint()).await.status, 200, "other tokens unaffected");
}

#[tokio::test]
async fn logout_revokes_token_on_same_instance_with_memory_store() {
    logout_then_refused(Cfg::new).await;
}

#[tokio::test]
async fn logout_revokes_token_on_same_instance_with_redis_store() {
    let redis = Redis::spawn().await;
    logout_then_refused(|app| Cfg::new(app).redis(&redis)).await;
}

#[tokio::test]
async fn logout_on_one_instance_is_enforced_by_another_within_not_revoked_ttl() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let one = Gate::spawn(&Cfg::new(&app).redis(&redis)).await;
    let two = Gate::spawn(&Cfg { not_revoked_ttl: "200ms".into(), ..Cfg::new(&app).redis(&redis) }).await;
    let raw = token::mint();
    assert_eq!(two.get("/api/warm", &raw).await.status, 200, "warms gate two's cache");

    assert_eq!(one.logout(&raw).await.status, 200);
    let started = Instant::now();
    let rsp = eventually(Duration::from_secs(3), "gate two refuses the revoked token", || async {
        let rsp = two.get("/api/poll", &raw).await;
        (rsp.status == 401).then_some(rsp)
    })
    .await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    let polls_forwarded = app.seen("/api/poll");
    assert_eq!(two.get("/api/poll", &raw).await.status, 401, "stays revoked");
    assert_eq!(app.seen("/api/poll"), polls_forwarded);
}

#[tokio::test]
async fn logout_with_invalid_token_revokes_nothing() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg::new(&app).redis(&redis)).await;
    let tok = claims();
    let raw = tok.sign();
    let other = token::mint();
    let mut parts: Vec<&str> = raw.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap(); // someone else's jti
    let rsp = gate.logout(&parts.join(".")).await;
    assert_refused(&rsp, 401, "invalid_signature", Challenge::InvalidToken);
    let rsp = gate.send(gate.req("POST", "/logout").body(crate::support::gate::empty()).unwrap()).await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);

    assert_eq!(redis.keys("*").await, Vec::<String>::new(), "something was revoked");
    assert_eq!(app.seen("/logout"), 0);
    assert_eq!(gate.get("/api/still", &raw).await.status, 200, "token still valid");
    assert_eq!(gate.get("/api/other", &other).await.status, 200, "token still valid");
}

#[tokio::test]
async fn logout_with_forward_revokes_then_forwards_to_app() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg { logout_forward: true, ..Cfg::new(&app).redis(&redis) }).await;
    let tok = claims();
    let raw = tok.sign();
    let rsp = gate.logout(&raw).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("x-upstream").as_deref(), Some("yes"), "answer comes from the app");
    let seen = app.one("/logout");
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {raw}").as_str()));
    let key = token::jti_key("jwtgate:", token::ISSUER, &tok.jti_value());
    assert_eq!(redis.keys("jwtgate:*").await, [key]);
    let rsp = gate.get("/api/after", &raw).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
}

#[tokio::test]
async fn logout_again_stores_the_revocation_again_and_is_never_forwarded() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg { logout_forward: true, ..Cfg::new(&app).redis(&redis) }).await;
    let tok = claims();
    let raw = tok.sign();
    assert_eq!(gate.logout(&raw).await.status, 200, "first logout");
    assert_eq!(app.seen("/logout"), 1, "first logout forwarded (forward: true)");
    let key = token::jti_key("jwtgate:", token::ISSUER, &tok.jti_value());

    // The record vanishes from Redis (as a write lost in a failover would);
    // the gate still refuses the token from its cache.
    let _: i64 = redis.cmd(redis::cmd("DEL").arg(&key)).await;
    assert_refused(&gate.get("/api/after", &raw).await, 401, "token_revoked", Challenge::InvalidToken);

    let again = gate.logout(&raw).await;
    assert_eq!(again.status, 200, "logout is idempotent: {}", again.text());
    assert_eq!(again.json()["jti"], tok.jti_value());
    assert_eq!(redis.keys("jwtgate:*").await, [key], "the revocation is stored again");
    assert_eq!(app.seen("/logout"), 1, "a revoked token never reaches the app, not even its logout");
    assert_eq!(app.seen("/api/after"), 0);

    // With the record in place, repeating the logout reads, and writes and
    // announces nothing: no fan-out to every replica per repeat.
    redis.reset_stats().await;
    assert_eq!(gate.logout(&raw).await.status, 200, "third logout");
    assert_eq!((redis.calls("set").await, redis.calls("publish").await), (0, 0), "a repeat wrote");
    assert!(redis.calls("mget").await + redis.calls("get").await >= 1, "the repeat checked the store");
}
