//! Read-only compatibility with the blacklists apps already keep in Redis
//! (`revocation.legacy`), seeded here exactly as those apps write them.

use crate::support::token::{self, claims, text_sha256};
use crate::support::{assert_refused, eventually, now_unix, Cfg, Challenge, Gate, Redis, Upstream};
use std::time::{Duration, Instant};

fn cfg(app: &Upstream, redis: &Redis, legacy: &str) -> Cfg {
    Cfg { legacy: Some(legacy.into()), ..Cfg::new(app).redis(redis) }
}

async fn set(redis: &Redis, cmd: &mut redis::Cmd) {
    let _: () = redis.cmd(cmd).await;
}

#[tokio::test]
async fn token_blacklisted_with_setex_recipe_is_refused() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis, r#"{ keys: ["{token}"], values: [blacklisted] }"#)).await;
    let listed = token::mint();
    let other_value = token::mint();
    let unlisted = token::mint();
    set(&redis, redis::cmd("SETEX").arg(&listed).arg(3600).arg("blacklisted")).await;
    set(&redis, redis::cmd("SETEX").arg(&other_value).arg(3600).arg("whitelisted")).await;

    assert_refused(&gate.get("/api/listed", &listed).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/listed"), 0, "a blacklisted token reached the app");
    assert_eq!(gate.get("/api/unlisted", &unlisted).await.status, 200, "control: unlisted token passes");
    assert_eq!(gate.get("/api/other", &other_value).await.status, 200, "a value not in `values` does not revoke");
}

#[tokio::test]
async fn token_marked_invalid_with_set_and_expireat_is_refused_by_token_or_jti_key() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let legacy = r#"{ keys: ["{token}", "bl_{jti}"], values: [invalid] }"#;
    let gate = Gate::spawn(&cfg(&app, &redis, legacy)).await;
    let by_token = token::mint();
    let by_jti = claims();
    let wrong_value = claims();
    let at = now_unix() + 3600;
    set(&redis, redis::cmd("SET").arg(&by_token).arg("invalid")).await;
    set(&redis, redis::cmd("EXPIREAT").arg(&by_token).arg(at)).await;
    let jti_key = format!("bl_{}", by_jti.jti_value());
    set(&redis, redis::cmd("SET").arg(&jti_key).arg("invalid")).await;
    set(&redis, redis::cmd("EXPIREAT").arg(&jti_key).arg(at)).await;
    set(&redis, redis::cmd("SET").arg(format!("bl_{}", wrong_value.jti_value())).arg("valid")).await;

    assert_refused(&gate.get("/api/t", &by_token).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_refused(&gate.get("/api/j", &by_jti.sign()).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/t") + app.seen("/api/j"), 0);
    assert_eq!(gate.get("/api/ok", &token::mint()).await.status, 200, "control: unlisted token passes");
    assert_eq!(gate.get("/api/wrong", &wrong_value.sign()).await.status, 200, "value `valid` does not revoke");
}

#[tokio::test]
async fn sha256_keyed_blacklist_revokes_with_any_value() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis, r#"{ keys: ["{sha256}"] }"#)).await;
    let listed = token::mint();
    set(&redis, redis::cmd("SET").arg(text_sha256(&listed)).arg("1")).await;

    assert_refused(&gate.get("/api/listed", &listed).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/listed"), 0);
    assert_eq!(gate.get("/api/unlisted", &token::mint()).await.status, 200, "control: unlisted token passes");
}

/// Lists `raw` behind a replica that just cached it as not listed; returns
/// how long until the replica refuses it (`not_revoked_ttl` is 300 s, so
/// only the legacy `cache_ttl` can explain a refusal within seconds).
async fn time_until_listed_token_is_refused(legacy: &str, still_cached_for: Option<Duration>) -> Duration {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let cfg = Cfg { not_revoked_ttl: "300s".into(), heartbeat: Some("1h".into()), ..cfg(&app, &redis, legacy) };
    let gate = Gate::spawn(&cfg).await;
    redis.await_subscribers("jwtgate:revocations", 1).await;
    let raw = token::mint();
    assert_eq!(gate.get("/api/before", &raw).await.status, 200, "control: not yet listed");

    let listed_at = Instant::now();
    set(&redis, redis::cmd("SETEX").arg(&raw).arg(3600).arg("blacklisted")).await;
    let rsp = gate.get("/api/cached", &raw).await;
    if let Some(cached_for) = still_cached_for.filter(|c| listed_at.elapsed() < *c) {
        assert_eq!(rsp.status, 200, "the legacy answer is cached for about {cached_for:?}");
    }
    let rsp = eventually(Duration::from_secs(10), "listed token refused once the cached answer lapses", || async {
        let rsp = gate.get("/api/poll", &raw).await;
        (rsp.status != 200).then_some(rsp)
    })
    .await;
    let took = listed_at.elapsed();
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    let polls = app.seen("/api/poll");
    assert_refused(&gate.get("/api/poll", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/poll"), polls, "refused request reached the app");
    took
}

#[tokio::test]
async fn legacy_answers_are_cached_for_the_configured_cache_ttl() {
    let legacy = r#"{ keys: ["{token}"], values: [blacklisted], cache_ttl: 3s }"#;
    let took = time_until_listed_token_is_refused(legacy, Some(Duration::from_secs(2))).await;
    assert!(took < Duration::from_secs(6), "took {took:?} with cache_ttl 3s");
}

#[tokio::test]
async fn legacy_answers_are_cached_for_one_second_by_default() {
    let took = time_until_listed_token_is_refused(r#"{ keys: ["{token}"], values: [blacklisted] }"#, None).await;
    assert!(took < Duration::from_secs(3), "took {took:?} with the default cache_ttl (1s)");
}
