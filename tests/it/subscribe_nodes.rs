//! Issue 15, part 2: `revocation.redis.subscribe_nodes` holds the pub/sub
//! subscription on a replica of the master. Every `PUBLISH` reaches the
//! replica through replication, so its fan-out (whose cost grows with the
//! number of subscribers) leaves the master, which answers logouts and
//! look-ups, alone. Real master, real replica (`REPLICAOF`), real replicas
//! of jwtgate.

use crate::support::token::claims;
use crate::support::{assert_refused, eventually, metric, Cfg, Challenge, Gate, Redis, Upstream};
use std::time::{Duration, Instant};

const CHANNEL: &str = "jwtgate:revocations";
/// `heartbeat + timeout` with the defaults (README), plus slack for a
/// loaded CI box.
const LOG_BOUND: Duration = Duration::from_millis(1050 + 950);

/// A master and a replica of it, in sync.
async fn replicated() -> (Redis, Redis) {
    let (master, replica) = (Redis::spawn().await, Redis::spawn().await);
    let port = master.addr().port().to_string();
    let _: () = replica.cmd(redis::cmd("REPLICAOF").arg("127.0.0.1").arg(&port)).await;
    eventually(Duration::from_secs(10), "replica in sync", || async {
        let info: String = replica.cmd(redis::cmd("INFO").arg("replication")).await;
        info.contains("master_link_status:up").then_some(())
    })
    .await;
    (master, replica)
}

/// Writes to and reads from `master`, subscribes on `replica`; trusts a
/// cached "not revoked" for 5 minutes, so only an announcement (or the log)
/// can make it refuse soon.
fn gate_cfg(app: &Upstream, master: &Redis, replica: &Redis, heartbeat: &str) -> Cfg {
    Cfg {
        not_revoked_ttl: "300s".into(),
        heartbeat: Some(heartbeat.into()),
        subscribe_nodes: vec![replica.url()],
        ..Cfg::new(app).redis(master)
    }
    .admin()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_on_a_replica_bring_a_logout_to_every_replica_and_none_to_the_master() {
    let (app, (master, replica)) = (Upstream::spawn().await, replicated().await);
    // A one-hour heartbeat: no log read, so a fast refusal is the message
    // that came through the replica.
    let cfg = gate_cfg(&app, &master, &replica, "1h");
    let (one, two, three) = (Gate::spawn(&cfg).await, Gate::spawn(&cfg).await, Gate::spawn(&cfg).await);
    replica.await_subscribers(CHANNEL, 3).await;
    assert_eq!(master.numsub(CHANNEL).await, 0, "no subscription is held on the master");

    let (raw, other) = (claims().hs256().sign(), claims().hs256().sign());
    for gate in [&two, &three] {
        assert_eq!(gate.get("/api/warm", &raw).await.status, 200, "control: accepted before the logout");
        assert_eq!(gate.get("/api/warm", &other).await.status, 200);
    }
    master.reset_stats().await;
    assert_eq!(one.logout(&raw).await.status, 200);
    let acked = Instant::now();
    for gate in [&two, &three] {
        let rsp = eventually(Duration::from_secs(2), "refused through the replica's subscription", || async {
            let rsp = gate.get("/api/poll", &raw).await;
            (rsp.status != 200).then_some(rsp)
        })
        .await;
        assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
        assert_eq!(gate.get("/api/other", &other).await.status, 200, "control: another token still accepted");
    }
    eprintln!("refused by both replicas {:?} after the logout's 200", acked.elapsed());
    let mget = master.calls("mget").await;
    assert!(mget <= 1, "{mget} MGETs: the refusals were cached answers (at most the logout's own look-up on one)");
    assert_eq!(master.calls("publish").await, 1, "one announcement, published on the master");
    for gate in [&two, &three] {
        let text = gate.metrics().await;
        assert_eq!(metric(&text, "jwtgate_revocation_log_replayed_total", &[]).unwrap_or(0.0), 0.0, "not from the log");
    }
    let polls = app.seen("/api/poll");
    assert_refused(&two.get("/api/poll", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/poll"), polls, "a refused request reached the app");
    assert_eq!(app.seen("/api/other"), 2, "control: the accepted ones did");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_its_master_hears_nothing_and_the_log_keeps_the_bound() {
    let (app, (master, replica)) = (Upstream::spawn().await, replicated().await);
    let cfg = gate_cfg(&app, &master, &replica, "1s");
    let (one, two) = (Gate::spawn(&cfg).await, Gate::spawn(&cfg).await);
    replica.await_subscribers(CHANNEL, 2).await;

    let raw = claims().hs256().sign();
    assert_eq!(two.get("/api/warm", &raw).await.status, 200, "control: accepted before the logout");
    // The replica leaves its master: its subscriptions stay up and its
    // PINGs answer, but no PUBLISH reaches it any more.
    let _: () = replica.cmd(redis::cmd("REPLICAOF").arg("NO").arg("ONE")).await;
    assert_eq!(replica.numsub(CHANNEL).await, 2, "the subscriptions survive the cut");
    assert_eq!(one.logout(&raw).await.status, 200);
    let acked = Instant::now();
    let rsp = eventually(Duration::from_secs(5), "refused from the log", || async {
        let rsp = two.get("/api/poll", &raw).await;
        (rsp.status != 200).then_some(rsp)
    })
    .await;
    let took = acked.elapsed();
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    eprintln!("refused {took:?} after the logout's 200, from the log");
    assert!(took <= LOG_BOUND, "refused {took:?} after the 200, past the bound {LOG_BOUND:?}");
    let text = two.metrics().await;
    assert!(metric(&text, "jwtgate_revocation_log_replayed_total", &[]).unwrap_or(0.0) >= 1.0, "applied from the log");
    assert_eq!(metric(&text, "jwtgate_pubsub_messages_total", &[]).unwrap_or(0.0), 0.0, "no message came through");
    let polls = app.seen("/api/poll");
    assert!(polls > 0, "control: the token was accepted until the log brought its revocation");
    assert_refused(&two.get("/api/poll", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/poll"), polls, "a refused request reached the app");
}

#[tokio::test]
async fn a_subscribe_node_that_is_down_is_skipped_for_the_next_one() {
    let (app, (master, replica)) = (Upstream::spawn().await, replicated().await);
    let down = format!("redis://127.0.0.1:{}/0", crate::support::redis::free_port());
    let cfg = Cfg { subscribe_nodes: vec![down, replica.url()], ..gate_cfg(&app, &master, &replica, "1h") };
    let (one, two) = (Gate::spawn(&cfg).await, Gate::spawn(&cfg).await);
    replica.await_subscribers(CHANNEL, 2).await;
    let raw = claims().hs256().sign();
    assert_eq!(two.get("/api/warm", &raw).await.status, 200, "control: accepted before the logout");
    assert_eq!(one.logout(&raw).await.status, 200);
    let rsp = eventually(Duration::from_secs(2), "refused through the second node", || async {
        let rsp = two.get("/api/poll", &raw).await;
        (rsp.status != 200).then_some(rsp)
    })
    .await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    let polls = app.seen("/api/poll");
    assert_refused(&two.get("/api/poll", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/poll"), polls, "a refused request reached the app");
}

/// Each replica starts at a random place in `subscribe_nodes`, so a fleet
/// spreads its subscriptions (and the fan-out) over the nodes. 16 replicas
/// on two nodes all land on one with probability 2^-15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_spreads_its_subscriptions_over_the_subscribe_nodes() {
    let (app, (master, first)) = (Upstream::spawn().await, replicated().await);
    let second = Redis::spawn().await;
    let port = master.addr().port().to_string();
    let _: () = second.cmd(redis::cmd("REPLICAOF").arg("127.0.0.1").arg(&port)).await;
    let cfg = Cfg { subscribe_nodes: vec![first.url(), second.url()], ..gate_cfg(&app, &master, &first, "1h") };
    let mut fleet = Vec::new();
    for _ in 0..16 {
        fleet.push(Gate::spawn(&cfg).await);
    }
    eventually(Duration::from_secs(10), "16 subscriptions held", || async {
        (first.numsub(CHANNEL).await + second.numsub(CHANNEL).await == 16).then_some(())
    })
    .await;
    let (on_first, on_second) = (first.numsub(CHANNEL).await, second.numsub(CHANNEL).await);
    eprintln!("subscriptions: {on_first} on the first node, {on_second} on the second");
    assert!(on_first > 0 && on_second > 0, "all on one node: {on_first} + {on_second}");
    assert_eq!(master.numsub(CHANNEL).await, 0);
}
