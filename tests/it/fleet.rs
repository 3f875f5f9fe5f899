//! A fleet of replicas on one Redis: a revocation made on one replica is
//! pushed (pub/sub) to the others, which refuse the token within
//! milliseconds even though they cached it as "not revoked" for minutes.
//! Run with `--nocapture` to see the measured propagation percentiles.

use crate::support::token::claims;
use crate::support::{assert_refused, eventually, metric, percentile, Cfg, Challenge, Gate, Redis, Rsp, Upstream};
use std::time::{Duration, Instant};

const CHANNEL: &str = "jwtgate:revocations";
/// Logouts measured (each one observed on two replicas).
const LOGOUTS: usize = 200;
/// Un-measured rounds first: connection pools, verifier caches, page faults.
const WARM_UP: usize = 10;
/// Per token and replica: past this the refusal is not "propagation" at all.
const POLL_DEADLINE: Duration = Duration::from_secs(2);
const P99_BOUND: Duration = Duration::from_millis(100);

/// A replica trusting cached "not revoked" answers for 5 minutes, so only
/// the push can make it refuse quickly. The heartbeat is long so that the
/// subscription is never dropped on purpose here and every fast refusal is
/// the pub/sub message (heartbeats are covered by their own test).
fn replica(app: &Upstream, redis: &Redis) -> Cfg {
    Cfg { not_revoked_ttl: "300s".into(), heartbeat: Some("1h".into()), ..Cfg::new(app).redis(redis) }
}

async fn fleet(app: &Upstream, redis: &Redis) -> (Gate, Gate, Gate) {
    let one = Gate::spawn(&replica(app, redis).admin()).await;
    let two = Gate::spawn(&replica(app, redis)).await;
    let three = Gate::spawn(&replica(app, redis)).await;
    redis.await_subscribers(CHANNEL, 3).await;
    (one, two, three)
}

/// Polls `gate` with `raw` back to back until it refuses; the time since `since`.
async fn time_until_refused(gate: &Gate, raw: &str, since: Instant) -> (Duration, Rsp) {
    loop {
        let rsp = gate.get("/api/poll", raw).await;
        let elapsed = since.elapsed();
        if rsp.status != 200 {
            return (elapsed, rsp);
        }
        assert!(elapsed < POLL_DEADLINE, "replica {} still accepts a revoked token after {elapsed:?}", gate.addr);
    }
}

/// Mints a token, warms `warm` (each caches "not revoked"), logs it out on
/// `on`, and returns how long each warmed replica took to refuse it,
/// counted from the moment the logout was acknowledged.
async fn logout_and_measure(on: &Gate, warm: [&Gate; 2]) -> [Duration; 2] {
    let raw = claims().hs256().sign();
    for gate in warm {
        assert_eq!(gate.get("/api/warm", &raw).await.status, 200, "control: replica {} accepts", gate.addr);
    }
    let rsp = on.logout(&raw).await;
    assert_eq!(rsp.status, 200, "logout: {}", rsp.text());
    let acked = Instant::now();
    let ((a, rsp_a), (b, rsp_b)) =
        tokio::join!(time_until_refused(warm[0], &raw, acked), time_until_refused(warm[1], &raw, acked));
    assert_refused(&rsp_a, 401, "token_revoked", Challenge::InvalidToken);
    assert_refused(&rsp_b, 401, "token_revoked", Challenge::InvalidToken);
    [a, b]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_one_replica_is_refused_by_two_others_within_100ms_at_p99() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let (one, two, three) = fleet(&app, &redis).await;

    for _ in 0..WARM_UP {
        logout_and_measure(&one, [&two, &three]).await;
    }
    redis.reset_stats().await;
    let started = Instant::now();
    let (mut on_two, mut on_three) = (Vec::with_capacity(LOGOUTS), Vec::with_capacity(LOGOUTS));
    for _ in 0..LOGOUTS {
        let [a, b] = logout_and_measure(&one, [&two, &three]).await;
        on_two.push(a);
        on_three.push(b);
    }
    let mut all: Vec<Duration> = on_two.iter().chain(&on_three).copied().collect();
    let (p50, p99, max) = (percentile(&mut all, 50), percentile(&mut all, 99), percentile(&mut all, 100));
    eprintln!(
        "propagation p50={p50:?} p99={p99:?} max={max:?} (replica 2: p50={:?} p99={:?}; replica 3: p50={:?} p99={:?}; \
         {LOGOUTS} logouts x 2 replicas in {:?})",
        percentile(&mut on_two, 50),
        percentile(&mut on_two, 99),
        percentile(&mut on_three, 50),
        percentile(&mut on_three, 99),
        started.elapsed(),
    );
    assert!(p99 <= P99_BOUND, "propagation p99 {p99:?} exceeds {P99_BOUND:?} (p50 {p50:?}, max {max:?})");
    // The refusals came from the push, not from the store: per logout, Redis
    // saw one MGET per warm-up request and one for the logout itself, while
    // every poll (at least one refused poll per replica) was a cache hit.
    let mget = redis.calls("mget").await;
    assert!(mget <= (3 * LOGOUTS + LOGOUTS / 20) as u64, "{mget} MGETs for {LOGOUTS} logouts: polls went to Redis");

    // The refusals above were jwtgate's: a refused token never reaches the app.
    let raw = claims().hs256().sign();
    assert_eq!(three.get("/api/warm", &raw).await.status, 200);
    assert_eq!(one.logout(&raw).await.status, 200);
    time_until_refused(&three, &raw, Instant::now()).await;
    let rsp = two.get("/api/after", &raw).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/after"), 0, "a revoked token reached the app");
    assert_eq!(app.seen("/logout"), 0);
}

#[tokio::test]
async fn logout_while_subscriptions_are_killed_is_still_refused_by_other_replicas() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let (one, two, three) = fleet(&app, &redis).await;
    let reconnects = |text: &str| metric(text, "jwtgate_pubsub_reconnects_total", &[]).unwrap_or(0.0);
    let reconnects_before = reconnects(&one.metrics().await);

    let raw = claims().hs256().sign();
    let other = claims().hs256().sign();
    for gate in [&two, &three] {
        assert_eq!(gate.get("/api/warm", &raw).await.status, 200, "control: cached as not revoked");
        assert_eq!(gate.get("/api/warm", &other).await.status, 200);
    }
    assert_eq!(redis.kill_pubsub_clients().await, 3, "one subscription per replica");
    // Logged out at once: the announcement may reach nobody.
    assert_eq!(one.logout(&raw).await.status, 200);
    let since = Instant::now();
    for gate in [&two, &three] {
        let rsp = eventually(Duration::from_secs(5), "replica refuses the token logged out unannounced", || async {
            let rsp = gate.get("/api/poll", &raw).await;
            (rsp.status != 200).then_some(rsp)
        })
        .await;
        assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
        assert_eq!(gate.get("/api/other", &other).await.status, 200, "control: other tokens still accepted");
    }
    // 5 s, far inside the 300 s not_revoked_ttl: the caches were emptied when the subscriptions dropped.
    eprintln!("refused by both replicas {:?} after an unannounced logout", since.elapsed());
    let polls = app.seen("/api/poll");
    assert_refused(&three.get("/api/poll", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/poll"), polls, "refused request reached the app");

    // Every replica subscribes again, the loss was counted, and pushes work again.
    redis.await_subscribers(CHANNEL, 3).await;
    eventually(Duration::from_secs(5), "jwtgate_pubsub_reconnects_total increased", || async {
        (reconnects(&one.metrics().await) > reconnects_before).then_some(())
    })
    .await;
    let [a, b] = logout_and_measure(&one, [&two, &three]).await;
    assert!(a.max(b) < Duration::from_secs(1), "push after re-subscribing took {:?}", a.max(b));
}

/// The subscription is PINGed every `heartbeat`; a healthy Redis answers, so
/// the subscription (and with it the local cache) must survive heartbeats.
#[tokio::test]
async fn heartbeats_on_a_healthy_redis_keep_the_subscription_and_the_cache() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let cfg = Cfg { heartbeat: Some("100ms".into()), ..replica(&app, &redis).admin() };
    let gate = Gate::spawn(&cfg).await;
    redis.await_subscribers(CHANNEL, 1).await;
    // Redis counts the subscriber a moment before the gate turns its cache
    // on (the gauge's moment): a request in between would not be cached.
    eventually(Duration::from_secs(5), "the gate reports the subscription", || async {
        (metric(&gate.metrics().await, "jwtgate_pubsub_connected", &[]) == Some(1.0)).then_some(())
    })
    .await;
    let raw = claims().hs256().sign();
    assert_eq!(gate.get("/api/first", &raw).await.status, 200);
    redis.reset_stats().await;

    eventually(Duration::from_secs(5), "three heartbeat PINGs answered", || async {
        (redis.calls("ping").await >= 3).then_some(())
    })
    .await;
    let text = gate.metrics().await;
    assert_eq!(metric(&text, "jwtgate_pubsub_reconnects_total", &[]), Some(0.0), "subscription dropped");
    assert_eq!(metric(&text, "jwtgate_pubsub_connected", &[]), Some(1.0));
    assert_eq!(gate.get("/api/again", &raw).await.status, 200);
    assert_eq!(redis.calls("mget").await, 0, "cached answer was forgotten across heartbeats");
    // Control: the measurement sees a look-up for a token not cached.
    assert_eq!(gate.get("/api/fresh", &claims().hs256().sign()).await.status, 200);
    assert_eq!(redis.calls("mget").await, 1);
    assert!(!gate.logs().contains("subscription lost"), "logs:\n{}", gate.logs());
}
