//! Redis Sentinel: a real master, a replica and a sentinel (`redis-server
//! --sentinel`), two jwtgate replicas finding the master through the
//! sentinel. Revocations propagate; after a forced failover (`SENTINEL
//! FAILOVER`) new revocations go to the promoted master and still reach
//! the other replica, and the old ones are still refused.

use crate::support::redis::{free_port, Servers};
use crate::support::token::claims;
use crate::support::{assert_refused, eventually, Cfg, Challenge, Gate, Upstream};
use std::time::Duration;

const MASTER_NAME: &str = "jwtgate-test";
const PREFIX: &str = "sentinel:";
const LIMIT: Duration = Duration::from_secs(30);

/// Master, replica and sentinel processes, killed on drop.
struct Deployment {
    master: u16,
    replica: u16,
    sentinel: u16,
    servers: Servers,
    dir: tempfile::TempDir,
}

async fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut con = client.get_multiplexed_async_connection().await.ok()?;
    cmd.query_async(&mut con).await.ok()
}

async fn role(port: u16) -> Option<String> {
    let info: String = query(port, redis::cmd("INFO").arg("replication")).await?;
    info.lines().find_map(|l| l.strip_prefix("role:")).map(|r| r.trim().to_owned())
}

impl Deployment {
    async fn spawn() -> Deployment {
        let dir = tempfile::tempdir().expect("tempdir");
        let (master, replica, sentinel) = (free_port(), free_port(), free_port());
        // Own dir: a full resync writes dump.rdb, which must not land in
        // the crate (every later redis-server would load it).
        let dir_arg = dir.path().to_str().expect("utf-8 path").to_owned();
        let base = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir_arg];
        // Each server joins `d` as it starts, so a later failure still kills it.
        let mut d = Deployment { master, replica, sentinel, servers: Servers::default(), dir };
        d.servers.start(&[&["--port", &master.to_string()][..], &base].concat());
        let replica_of = ["--replicaof", "127.0.0.1", &master.to_string()];
        d.servers.start(&[&["--port", &replica.to_string()][..], &base, &replica_of].concat());
        // Sentinel rewrites its config file, so it gets its own.
        let conf = d.dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel}\nbind 127.0.0.1\ndir {}\nsentinel monitor {MASTER_NAME} 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\nsentinel failover-timeout {MASTER_NAME} 5000\n",
                d.dir.path().display()
            ),
        )
        .expect("write sentinel.conf");
        d.servers.start(&[conf.to_str().expect("utf-8 path"), "--sentinel"]);
        eventually(LIMIT, "replica in sync with the master", || async {
            let info: String = query(d.replica, redis::cmd("INFO").arg("replication")).await?;
            info.contains("master_link_status:up").then_some(())
        })
        .await;
        eventually(LIMIT, "sentinel knows the master and its replica", || async {
            let replicas: Vec<std::collections::HashMap<String, String>> =
                query(d.sentinel, redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER_NAME)).await?;
            replicas.iter().any(|r| r.get("port") == Some(&d.replica.to_string())).then_some(())
        })
        .await;
        d
    }

    async fn master_port(&self) -> Option<u16> {
        let addr: (String, String) =
            query(self.sentinel, redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME)).await?;
        addr.1.parse().ok()
    }

    /// A generous store deadline: a loaded CI machine can make a replica's
    /// `WAIT` acknowledgement slow, and the deadline is not under test here.
    fn yaml(&self, app: &Upstream) -> String {
        self.yaml_of(&Cfg::new(app))
    }

    /// `cfg`'s config with this deployment as its store.
    fn yaml_of(&self, cfg: &Cfg) -> String {
        let redis = format!(
            "  store: redis\n  redis:\n    sentinel:\n      master_name: {MASTER_NAME}\n      nodes: [\"redis://127.0.0.1:{}\"]\n\
             \x20   key_prefix: \"{PREFIX}\"\n    timeout: 2s\n",
            self.sentinel
        );
        cfg.yaml().replacen("  store: memory\n", &redis, 1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_every_replica_before_and_after_a_sentinel_failover() {
    let redis = Deployment::spawn().await;
    let app = Upstream::spawn().await;
    let yaml = redis.yaml(&app);
    let (one, two) = (Gate::spawn_yaml(&yaml).await, Gate::spawn_yaml(&yaml).await);
    let channel = format!("{PREFIX}revocations");
    eventually(LIMIT, "both replicas subscribed on the master", || async {
        let subs: (String, i64) = query(redis.master, redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel)).await?;
        (subs.1 >= 2).then_some(())
    })
    .await;

    // Before: logout on one, refused by the other; a fresh token passes.
    let before = claims().hs256().sign();
    assert_eq!(two.get("/api/before", &before).await.status, 200, "positive control");
    assert_eq!(one.logout(&before).await.status, 200, "logout through the sentinel's master");
    eventually(LIMIT, "replica two refuses the logged-out token", || async {
        (two.get("/api/before", &before).await.status == 401).then_some(())
    })
    .await;
    let stored: Vec<String> =
        query(redis.master, redis::cmd("KEYS").arg(format!("{PREFIX}jti:*"))).await.expect("keys");
    assert_eq!(stored.len(), 1, "the revocation is on the master");

    // Failover: the replica is promoted, the old master demoted.
    // Refused (NOGOODSLAVE) until the sentinel has fresh INFO from the
    // replica, which a loaded machine can delay: asked until accepted.
    eventually(LIMIT, "sentinel accepts the failover", || async {
        query::<String>(redis.sentinel, redis::cmd("SENTINEL").arg("FAILOVER").arg(MASTER_NAME)).await
    })
    .await;
    eventually(LIMIT, "sentinel names the replica as master", || async {
        (redis.master_port().await == Some(redis.replica)).then_some(())
    })
    .await;
    eventually(LIMIT, "the promoted replica is a master", || async {
        (role(redis.replica).await.as_deref() == Some("master")).then_some(())
    })
    .await;

    // After: a logout is acknowledged only once it is stored on the new
    // master (503 while the gate finds it), and reaches the other replica.
    let after = claims().hs256().sign();
    // Positive control; a read on a connection the demotion killed may be a
    // 503 (fail_closed) until the gate has found the new master.
    eventually(LIMIT, "a fresh token passes after the failover", || async {
        let status = one.get("/api/after", &after).await.status;
        assert!(status == 200 || status == 503, "answer during failover: {status}");
        (status == 200).then_some(())
    })
    .await;
    let mut answers = Vec::new();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while answers.last() != Some(&200) {
        assert!(tokio::time::Instant::now() < deadline, "logout never acknowledged after the failover: {answers:?}");
        answers.push(two.logout(&after).await.status);
        if answers.last() != Some(&200) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(answers.iter().all(|s| *s == 200 || *s == 503), "logout answers during failover: {answers:?}");
    let on_new_master: Vec<String> =
        query(redis.replica, redis::cmd("KEYS").arg(format!("{PREFIX}jti:*"))).await.expect("keys");
    assert_eq!(on_new_master.len(), 2, "both revocations on the promoted master: {on_new_master:?}");
    eventually(LIMIT, "replica one refuses the token logged out after the failover", || async {
        (one.get("/api/after", &after).await.status == 401).then_some(())
    })
    .await;
    for gate in [&one, &two] {
        assert_refused(&gate.get("/api/before-again", &before).await, 401, "token_revoked", Challenge::InvalidToken);
    }
    assert_eq!(app.seen("/api/before-again"), 0, "a revoked token reached the upstream");
}

/// `subscribe_nodes` under Sentinel: the subscriptions are held on the
/// replica, not on the master the sentinels name, and stay there past the
/// subscriber's 5 s master check (which would otherwise see a node other
/// than the named master and leave it); revocations still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_on_the_sentinel_masters_replica_stay_there_and_deliver() {
    use crate::support::config::ADMIN_TOKEN;
    use crate::support::metric;
    let redis = Deployment::spawn().await;
    let app = Upstream::spawn().await;
    let on_replica = format!("    subscribe_nodes: [\"redis://127.0.0.1:{}\"]\n    key_prefix:", redis.replica);
    let yaml = redis.yaml_of(&Cfg::new(&app).admin()).replacen("    key_prefix:", &on_replica, 1);
    let (one, mut two) = (Gate::spawn_yaml(&yaml).await, Gate::spawn_yaml(&yaml).await);
    two.admin_token = Some(ADMIN_TOKEN.into());
    let channel = format!("{PREFIX}revocations");
    let numsub = |port: u16| {
        let channel = channel.clone();
        async move { query::<(String, i64)>(port, redis::cmd("PUBSUB").arg("NUMSUB").arg(channel)).await.map(|s| s.1) }
    };
    eventually(LIMIT, "both replicas subscribed on the sentinel's replica", || async {
        (numsub(redis.replica).await? >= 2).then_some(())
    })
    .await;
    assert_eq!(numsub(redis.master).await, Some(0), "no subscription on the master");
    // Past one master check (every 5 s): a subscriber that left the replica
    // for not being the named master would have counted a reconnect.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let reconnects = metric(&two.metrics().await, "jwtgate_pubsub_reconnects_total", &[]).unwrap_or(0.0);
    assert_eq!(reconnects, 0.0, "the subscription left the replica");
    assert_eq!(numsub(redis.replica).await, Some(2));

    let raw = claims().hs256().sign();
    assert_eq!(two.get("/api/warm", &raw).await.status, 200, "positive control");
    assert_eq!(one.logout(&raw).await.status, 200);
    eventually(LIMIT, "replica two refuses the logged-out token", || async {
        (two.get("/api/poll", &raw).await.status == 401).then_some(())
    })
    .await;
    let polls = app.seen("/api/poll");
    assert_refused(&two.get("/api/poll", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/poll"), polls, "a refused request reached the upstream");
}
