//! The Redis revocation store: key layout and TTL, the local cache, and
//! behaviour while Redis is down or coming back.

use crate::support::token::{self, claims, jti_key, ISSUER};
use crate::support::{assert_refused, eventually, Cfg, Challenge, Gate, Redis, Upstream};
use std::time::{Duration, Instant};

const LOOKUPS: &[&str] = &["exists", "get", "mget", "ttl", "pttl"];

async fn lookups_seen(redis: &Redis) -> Vec<String> {
    let all = redis.commands_seen().await;
    all.into_iter().filter(|c| LOOKUPS.contains(&c.as_str())).collect()
}

#[tokio::test]
async fn logout_writes_jti_key_expiring_at_exp_plus_leeway() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg::new(&app).redis(&redis)).await;
    let tok = claims().jti("ttl-check").exp_in(600);
    assert_eq!(gate.logout(&tok.sign()).await.status, 200);
    let key = jti_key("jwtgate:", ISSUER, &tok.jti_value());
    assert_eq!(redis.keys("jwtgate:*").await, std::slice::from_ref(&key));
    let ttl = redis.ttl(&key).await;
    let expected = tok.exp() - crate::support::now_unix() + 30;
    assert!((ttl - expected).abs() <= 5, "TTL {ttl}, expected ≈ {expected}");
}

#[tokio::test]
async fn token_without_jti_is_revoked_by_content_hash_under_hash_policy() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg { missing_jti: "hash".into(), ..Cfg::new(&app).redis(&redis) }).await;
    let tok = claims().without("jti");
    let raw = tok.sign();
    assert_eq!(gate.get("/api/before", &raw).await.status, 200);
    assert_eq!(gate.logout(&raw).await.status, 200);
    let key = format!("jwtgate:tok:{}", tok.content_hash());
    assert_eq!(redis.keys("jwtgate:*").await, [key]);
    let rsp = gate.get("/api/after", &raw).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/after"), 0);
}

#[tokio::test]
async fn cached_not_revoked_answer_makes_zero_redis_commands() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let cfg = Cfg { not_revoked_ttl: "60s".into(), ..Cfg::new(&app).redis(&redis) };
    let gate = Gate::spawn(&cfg).await;
    let tok = token::mint();
    assert_eq!(gate.get("/api/first", &tok).await.status, 200);
    redis.reset_stats().await;
    for _ in 0..3 {
        assert_eq!(gate.get("/api/again", &tok).await.status, 200);
    }
    assert_eq!(lookups_seen(&redis).await, Vec::<String>::new(), "cache hit went to Redis");
    // Control: the measurement does see a lookup for a token not yet cached.
    assert_eq!(gate.get("/api/fresh", &token::mint()).await.status, 200);
    assert_eq!(lookups_seen(&redis).await, ["mget"]);
    assert_eq!(app.seen("/api/again"), 3);
}

#[tokio::test]
async fn stopped_redis_fails_closed_quickly_and_recovers_after_restart() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg::new(&app).redis(&redis)).await;
    assert_eq!(gate.get("/api/up", &token::mint()).await.status, 200, "control");

    redis.stop().await;
    let started = Instant::now();
    let rsp = gate.get("/api/down", &token::mint()).await;
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    assert_eq!(app.seen("/api/down"), 0);
    let rsp = gate.logout(&token::mint()).await;
    assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);

    redis.restart().await;
    eventually(Duration::from_secs(10), "jwtgate serving again after Redis restart", || async {
        (gate.get("/api/back", &token::mint()).await.status == 200).then_some(())
    })
    .await;
    let tok = token::mint();
    assert_eq!(gate.logout(&tok).await.status, 200, "logout works again");
    assert_eq!(gate.get("/api/revoked", &tok).await.status, 401);
}

#[tokio::test]
async fn stopped_redis_with_fail_open_forwards_requests() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let cfg = Cfg { on_store_error: "fail_open".into(), ..Cfg::new(&app).redis(&redis) };
    let gate = Gate::spawn(&cfg).await;
    redis.stop().await;
    let started = Instant::now();
    let rsp = gate.get("/api/open", &token::mint()).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    assert_eq!(app.seen("/api/open"), 1);
    // Fail-open applies to the store only: an invalid token is still refused.
    let rsp = gate.get("/api/bad", "not-a-jwt").await;
    assert_refused(&rsp, 401, "malformed_token", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/bad"), 0);
}
