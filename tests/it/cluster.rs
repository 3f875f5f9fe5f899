//! Redis Cluster: a real local 3-master cluster (`redis-server
//! --cluster-enabled yes` ×3 + `redis-cli --cluster create`), two jwtgate
//! replicas on it. Revocations land on several shards; look-ups (`MGET` over
//! keys of different slots) and pub/sub propagation work across them.

use crate::support::redis::{free_port, Servers};
use crate::support::token::claims;
use crate::support::{assert_refused, eventually, metric, Cfg, Challenge, Gate, Upstream};
use std::process::Command;
use std::time::{Duration, Instant};

struct Cluster {
    ports: Vec<u16>,
    servers: Servers,
    dir: tempfile::TempDir,
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
        let mut cluster = Cluster { ports, servers: Servers::default(), dir };
        cluster.start_nodes().await;
        let nodes: Vec<String> = cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&out.stdout));
        cluster.await_ok().await;
        cluster
    }

    /// Starts (or starts again, from their `nodes-<port>.conf`) the three
    /// nodes and waits until each answers PING.
    async fn start_nodes(&mut self) {
        let dir_arg = self.dir.path().to_str().unwrap().to_owned();
        for port in &self.ports {
            let (port, conf) = (port.to_string(), format!("nodes-{port}.conf"));
            let base = ["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", &dir_arg];
            self.servers.start(&[&base[..], &["--cluster-enabled", "yes", "--cluster-config-file", &conf]].concat());
        }
        for port in &self.ports {
            let url = format!("redis://127.0.0.1:{port}/");
            eventually(Duration::from_secs(10), "cluster node answers PING", || {
                let url = url.clone();
                async move { query::<String>(&url, &redis::cmd("PING")).await.filter(|p| p == "PONG") }
            })
            .await;
        }
    }

    /// Waits for `cluster_state:ok` on every node (polled every 5 ms);
    /// returns the moment the last one said so.
    async fn await_ok(&self) -> Instant {
        for port in &self.ports {
            let url = format!("redis://127.0.0.1:{port}/");
            let ok = async {
                loop {
                    let info = query::<String>(&url, &redis::cmd("CLUSTER").arg("INFO").clone()).await;
                    if info.is_some_and(|i| i.contains("cluster_state:ok")) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(20), ok).await.expect("cluster_state:ok on every node");
        }
        Instant::now()
    }

    /// SIGKILL to every node; returns once none accepts connections.
    async fn kill(&mut self) {
        self.servers.kill_all();
        for port in &self.ports {
            let port = *port;
            eventually(Duration::from_secs(5), "cluster node port closed", || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err().then_some(())
            })
            .await;
        }
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
    cluster_yaml(Cfg::new(app), cluster)
}

/// `cfg` with the cluster's nodes as its store.
fn cluster_yaml(cfg: Cfg, cluster: &Cluster) -> String {
    let cfg = Cfg { redis_url: Some("CLUSTER".into()), ..cfg };
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
    // One key per revoked token, and the announcement log (on its own slot)
    // with one entry per logout.
    let counts = cluster.key_counts().await;
    assert_eq!(counts.iter().sum::<i64>(), 24 + 1, "one key per revoked token, and the log: {counts:?}");
    let mut logged = 0;
    for url in cluster.node_urls() {
        logged += query::<i64>(&url, redis::cmd("XLEN").arg("jwtgate:revocations:log")).await.unwrap_or(0);
    }
    assert_eq!(logged, 24, "one log entry per logout");
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

/// The half-open probe on a cluster is not answered from a failure kept
/// from the outage either: after every node was killed and restarted (same
/// ports, same `nodes-*.conf`), with probes failing meanwhile, service
/// resumes within one cool-down of the cluster reporting `cluster_state:ok`.
///
/// Deadline 500 ms: the probe after the outage is where redis-rs reconnects
/// to the seed nodes and refreshes the slot map, which on this box takes
/// longer than the default 50 ms. With 50 ms that probe times out (a real
/// attempt cut short, its work finishing in the background), and the next
/// one succeeds: measured 1.03–1.09 s after `cluster_state:ok`.
#[tokio::test]
async fn service_resumes_within_one_cooldown_of_a_restarted_cluster_being_ok() {
    const COOLDOWN: Duration = Duration::from_secs(1);
    let (mut cluster, app) = (Cluster::spawn().await, Upstream::spawn().await);
    let cfg = Cfg { circuit: Some((3, "1s".into())), redis_timeout: "500ms".into(), ..Cfg::new(&app).admin() };
    let mut gate = Gate::spawn_yaml(&cluster_yaml(cfg.clone(), &cluster)).await;
    gate.admin_token.clone_from(&cfg.admin_token);
    assert_eq!(gate.get("/api/up", &claims().hs256().sign()).await.status, 200, "control");
    let mut took = Vec::new();
    for trial in 0..3 {
        cluster.kill().await;
        eventually(Duration::from_secs(10), "circuit open", || async {
            assert_eq!(gate.get("/api/down", &claims().hs256().sign()).await.status, 503);
            (metric(&gate.metrics().await, "jwtgate_store_circuit_open", &[]) == Some(1.0)).then_some(())
        })
        .await;
        let restarted = Instant::now();
        let back = async {
            cluster.start_nodes().await;
            cluster.await_ok().await
        };
        // Polled throughout, so probes also fail on the dead or forming cluster.
        let (ok, (forwarded, refused)) = tokio::join!(back, async {
            let mut refused = 0;
            loop {
                let rsp = gate.get("/api/recovering", &claims().hs256().sign()).await;
                if rsp.status == 200 {
                    break (Instant::now(), refused);
                }
                assert_eq!(rsp.status, 503, "{}", rsp.text());
                assert!(restarted.elapsed() < Duration::from_secs(30), "no 2xx 30 s after the restart");
                refused += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        took.push(forwarded.saturating_duration_since(ok));
        eprintln!(
            "cluster trial {trial}: ok {:?} after the restart began, first 2xx {:?} after that ({refused} refused)",
            ok - restarted,
            took[trial]
        );
    }
    let slowest = took.iter().max().copied().unwrap_or_default();
    assert!(slowest <= COOLDOWN + Duration::from_millis(200), "recovery took up to {slowest:?}: {took:?}");
}
