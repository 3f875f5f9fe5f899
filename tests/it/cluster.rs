//! Redis Cluster: a real local 3-master cluster (`redis-server
//! --cluster-enabled yes` ×3 + `redis-cli --cluster create`), two jwtgate
//! replicas on it. Revocations land on several shards; look-ups (`MGET` over
//! keys of different slots) and pub/sub propagation work across them.

use crate::support::redis::{free_port, Servers};
use crate::support::token::claims;
use crate::support::{assert_refused, eventually, Cfg, Challenge, Gate, Upstream};
use std::process::Command;
use std::time::Duration;

struct Cluster {
    ports: Vec<u16>,
    _servers: Servers,
    _dir: tempfile::TempDir,
}

/// A port whose cluster-bus twin (port + 10000) is free as well.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl Cluster {
    async fn spawn() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| cluster_port()).collect();
        let mut servers = Servers::default();
        let dir_arg = dir.path().to_str().unwrap().to_owned();
        for port in &ports {
            let (port, conf) = (port.to_string(), format!("nodes-{port}.conf"));
            let base = ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir_arg];
            servers.start(&[&base[..], &["--cluster-enabled", "yes", "--cluster-config-file", &conf]].concat());
        }
        let cluster = Cluster { ports, _servers: servers, _dir: dir };
        for port in &cluster.ports {
            let url = format!("redis://127.0.0.1:{port}/");
            eventually(Duration::from_secs(10), "cluster node answers PING", || {
                let url = url.clone();
                async move { query::<String>(&url, &redis::cmd("PING")).await.filter(|p| p == "PONG") }
            })
            .await;
        }
        let nodes: Vec<String> = cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&out.stdout));
        for port in &cluster.ports {
            let url = format!("redis://127.0.0.1:{port}/");
            eventually(Duration::from_secs(20), "cluster_state:ok on every node", || {
                let url = url.clone();
                async move {
                    let info = query::<String>(&url, &redis::cmd("CLUSTER").arg("INFO").clone()).await?;
                    info.contains("cluster_state:ok").then_some(())
                }
            })
            .await;
        }
        cluster
    }

    fn node_urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("redis://127.0.0.1:{p}/")).collect()
    }

    async fn key_counts(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for url in self.node_urls() {
            counts.push(query::<i64>(&url, &redis::cmd("DBSIZE")).await.unwrap_or(-1));
        }
        counts
    }

    async fn subscribers(&self) -> i64 {
        let mut total = 0;
        for url in self.node_urls() {
            let mut cmd = redis::cmd("PUBSUB");
            cmd.arg("NUMSUB").arg("jwtgate:revocations");
            let reply: Option<(String, i64)> = query(&url, &cmd).await;
            total += reply.map_or(0, |(_, n)| n);
        }
        total
    }
}

async fn query<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(url).ok()?;
    let mut con = client.get_multiplexed_async_connection().await.ok()?;
    cmd.query_async(&mut con).await.ok()
}

fn cluster_cfg(app: &Upstream, cluster: &Cluster) -> String {
    let cfg = Cfg { redis_url: Some("CLUSTER".into()), ..Cfg::new(app) };
    let nodes = cluster.node_urls().iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ");
    let yaml = cfg.yaml().replace("    url: CLUSTER\n", &format!("    cluster_nodes: [{nodes}]\n"));
    assert!(yaml.contains("cluster_nodes"), "config template changed: {yaml}");
    yaml
}

#[tokio::test]
async fn revocations_spread_over_cluster_shards_and_reach_every_replica() {
    let (cluster, app) = (Cluster::spawn().await, Upstream::spawn().await);
    let yaml = cluster_cfg(&app, &cluster);
    let (one, two) = (Gate::spawn_yaml(&yaml).await, Gate::spawn_yaml(&yaml).await);
    eventually(Duration::from_secs(10), "both replicas subscribed", || async {
        (cluster.subscribers().await >= 2).then_some(())
    })
    .await;

    let tokens: Vec<String> = (0..24).map(|i| claims().jti(&format!("cluster-jti-{i}")).sign()).collect();
    for tok in &tokens {
        assert_eq!(two.get("/api/warm", tok).await.status, 200, "control: valid before logout");
    }
    for tok in &tokens {
        assert_eq!(one.logout(tok).await.status, 200);
    }
    let counts = cluster.key_counts().await;
    assert_eq!(counts.iter().sum::<i64>(), 24, "one key per revoked token: {counts:?}");
    assert!(counts.iter().filter(|c| **c > 0).count() >= 2, "keys on a single shard: {counts:?}");

    // Publishes go to any node and reach the others over the cluster bus,
    // in no guaranteed order: wait for each, then check all at once.
    for tok in &tokens {
        eventually(Duration::from_secs(5), "replica two refuses the revoked token", || async {
            (two.get("/api/poll", tok).await.status == 401).then_some(())
        })
        .await;
    }
    for tok in &tokens {
        let rsp = two.get("/api/after", tok).await;
        assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    }
    assert_eq!(app.seen("/api/after"), 0, "a revoked token reached the app");
    assert_eq!(two.get("/api/other", &claims().jti("never-revoked").sign()).await.status, 200, "control");
}
