//! "Log out everywhere" (`logout_all`): a valid token revokes every token
//! of its subject issued at or before the moment of the call, on every
//! replica, for `revocation.max_token_lifetime`.

use crate::support::gate::empty;
use crate::support::token::{claims, sub_key, Key, ISSUER};
use crate::support::{assert_refused, eventually, now_unix, Cfg, Challenge, Gate, Redis, Upstream};
use std::time::Duration;

fn cfg(app: &Upstream, redis: &Redis) -> Cfg {
    Cfg::new(app).redis(redis).logout_all()
}

/// Logs `raw` out everywhere; checks the answer and returns the cut-off T.
async fn logout_all_ok(gate: &Gate, raw: &str, sub: &str) -> (i64, i64) {
    let before = now_unix();
    let rsp = gate.logout_all(raw).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let body = rsp.json();
    assert_eq!(body["revoked"], true, "{body}");
    assert_eq!(body["sub"], sub, "{body}");
    let cut_off = body["issued_before"].as_i64().expect("issued_before is a number");
    assert!((before..=now_unix()).contains(&cut_off), "issued_before {cut_off} is not the time of the call");
    let expires_at = body["expires_at"].as_i64().expect("expires_at is a number");
    (cut_off, expires_at)
}

#[tokio::test]
async fn logout_all_refuses_every_token_of_the_subject_issued_until_then() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let older = claims().sub("alice").iat(now_unix() - 600).sign();
    let current = claims().sub("alice").sign();
    let bob = claims().sub("bob").sign();
    for raw in [&older, &current, &bob] {
        assert_eq!(gate.get("/api/before", raw).await.status, 200, "control");
    }

    let (cut_off, expires_at) = logout_all_ok(&gate, &current, "alice").await;
    assert_eq!(app.seen("/logout/all"), 0, "logout_all answered by jwtgate, not forwarded");
    let key = sub_key("jwtgate:", ISSUER, "alice");
    assert_eq!(redis.get(&key).await, Some(cut_off.to_string()), "sub key holds the cut-off");
    let ttl = redis.ttl(&key).await;
    assert!((ttl - 24 * 3600).abs() <= 5, "TTL {ttl}, expected the default max_token_lifetime (24h)");
    assert!((expires_at - (cut_off + 24 * 3600)).abs() <= 2, "expires_at {expires_at}");

    for raw in [&older, &current] {
        let rsp = gate.get("/api/after", raw).await;
        assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    }
    assert_eq!(app.seen("/api/after"), 0, "a token of the logged-out subject reached the app");
    assert_eq!(gate.get("/api/bob", &bob).await.status, 200, "other subjects unaffected");
    assert_eq!(app.seen("/api/bob"), 1);
}

#[tokio::test]
async fn token_issued_after_the_cut_off_is_accepted_and_one_without_iat_is_refused() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let (cut_off, _) = logout_all_ok(&gate, &claims().sub("alice").sign(), "alice").await;

    let at_cut_off = claims().sub("alice").iat(cut_off).sign();
    let rsp = gate.get("/api/at", &at_cut_off).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    // Documented: without iat the gate cannot tell when it was issued, so it is refused.
    let no_iat = claims().sub("alice").without("iat").sign();
    let rsp = gate.get("/api/no-iat", &no_iat).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/at") + app.seen("/api/no-iat"), 0);

    let newer = claims().sub("alice").iat(cut_off + 1).sign();
    assert_eq!(gate.get("/api/newer", &newer).await.status, 200, "a login after the cut-off works");
    let bob_no_iat = claims().sub("bob").without("iat").sign();
    assert_eq!(gate.get("/api/bob", &bob_no_iat).await.status, 200, "control: tokens without iat are accepted");
    assert_eq!(app.seen("/api/newer") + app.seen("/api/bob"), 2);
}

#[tokio::test]
async fn logout_all_record_lives_for_the_configured_max_token_lifetime() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg { max_token_lifetime: Some("2h".into()), ..cfg(&app, &redis) }).await;
    let (cut_off, expires_at) = logout_all_ok(&gate, &claims().sub("alice").sign(), "alice").await;
    let ttl = redis.ttl(&sub_key("jwtgate:", ISSUER, "alice")).await;
    assert!((ttl - 7200).abs() <= 5, "TTL {ttl}, expected ≈ 7200");
    assert!((expires_at - (cut_off + 7200)).abs() <= 2, "expires_at {expires_at}, cut-off {cut_off}");
}

#[tokio::test]
async fn logout_all_on_one_replica_is_enforced_at_once_by_another_that_cached_the_token() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    // Long TTL and heartbeat: only the pushed cut-off can make replica two refuse quickly.
    let replica = || Cfg { not_revoked_ttl: "300s".into(), heartbeat: Some("1h".into()), ..cfg(&app, &redis) };
    let one = Gate::spawn(&replica()).await;
    let two = Gate::spawn(&replica()).await;
    redis.await_subscribers("jwtgate:revocations", 2).await;
    let alice = claims().sub("alice").iat(now_unix() - 5).sign();
    let bob = claims().sub("bob").sign();
    assert_eq!(two.get("/api/warm", &alice).await.status, 200, "replica two caches alice's token");
    assert_eq!(two.get("/api/warm", &bob).await.status, 200);

    logout_all_ok(&one, &claims().sub("alice").sign(), "alice").await;
    let rsp = eventually(Duration::from_secs(2), "replica two refuses alice", || async {
        let rsp = two.get("/api/poll", &alice).await;
        (rsp.status != 200).then_some(rsp)
    })
    .await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    let polls = app.seen("/api/poll");
    assert_refused(&two.get("/api/poll", &alice).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/poll"), polls);
    assert_eq!(two.get("/api/bob", &bob).await.status, 200, "other subjects unaffected");
}

#[tokio::test]
async fn logout_all_without_a_valid_token_revokes_nothing() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let alice = claims().sub("alice").sign();

    let rsp = gate.send(gate.req("POST", "/logout/all").body(empty()).expect("request")).await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    let forged = claims().sub("alice").hs256().key(Key::Hmac(b"wrong-secret".to_vec())).sign();
    assert_refused(&gate.logout_all(&forged).await, 401, "invalid_signature", Challenge::InvalidToken);
    let expired = claims().sub("alice").exp_in(-3600).sign();
    assert_refused(&gate.logout_all(&expired).await, 401, "token_expired", Challenge::InvalidToken);

    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new(), "something was revoked");
    assert_eq!(app.seen("/logout/all"), 0);
    assert_eq!(gate.get("/api/still", &alice).await.status, 200, "alice's tokens still valid");
}

#[tokio::test]
async fn logout_all_path_with_an_unlisted_method_is_an_ordinary_request() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let alice = claims().sub("alice").sign();
    let rsp = gate.get("/logout/all", &alice).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.header("x-upstream").as_deref(), Some("yes"), "GET is forwarded, methods: [POST]");
    assert_eq!(app.seen("/logout/all"), 1);
    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new(), "GET revoked the subject");
    assert_eq!(gate.get("/api/still", &alice).await.status, 200);
}
