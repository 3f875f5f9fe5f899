//! A real `redis-server` per test on a free loopback port, killed on Drop.
//!
//! Never skipped: without `redis-server` on PATH the test panics, so a CI
//! without Redis fails loudly instead of passing vacuously.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the announcement log's key ends (after the key prefix).
pub const LOG_SUFFIX: &str = "revocations:log";

pub struct Redis {
    port: u16,
    child: Option<Child>,
    /// The server's working dir: nothing it might write (dump.rdb) lands in
    /// the crate, where every later redis-server would load it.
    dir: tempfile::TempDir,
}

impl Redis {
    pub async fn spawn() -> Redis {
        let port = free_port();
        let mut redis = Redis { port, child: None, dir: tempfile::tempdir().expect("redis dir") };
        redis.start().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server and waits until the port refuses connections.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill redis-server");
            child.wait().expect("reap redis-server");
        }
        let port = self.port;
        super::eventually(Duration::from_secs(5), "redis port closed", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err().then_some(())
        })
        .await;
    }

    /// PID of the running redis-server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server running").id()
    }

    /// SIGSTOP: the server keeps its sockets open but answers nothing
    /// (a hung Redis, not a dead one) until [`Redis::resume`].
    pub fn pause(&self) {
        signal(self.pid(), "-STOP");
    }

    /// SIGCONT after [`Redis::pause`].
    pub fn resume(&self) {
        signal(self.pid(), "-CONT");
    }

    /// Starts a fresh (empty) server on the same port; returns the moment of
    /// its first PONG (polled every 5 ms: it may have been answering up to
    /// one poll earlier).
    pub async fn restart(&mut self) -> Instant {
        self.stop().await;
        self.start().await
    }

    async fn start(&mut self) -> Instant {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `redis-server` ({e}); install Redis (apt-get install redis-server): these tests never skip")
            });
        self.child = Some(child);
        let answered = async {
            loop {
                let pong: Option<String> = self.try_cmd(&redis::cmd("PING")).await;
                if pong.as_deref() == Some("PONG") {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), answered).await.expect("redis-server answers PING within 10 s")
    }

    async fn try_cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut con = client.get_multiplexed_async_connection().await.ok()?;
        cmd.query_async(&mut con).await.ok()
    }

    /// Runs one command on a fresh connection; panics on error.
    pub async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut con = client.get_multiplexed_async_connection().await.expect("connect to test redis");
        cmd.query_async(&mut con).await.expect("redis command")
    }

    pub async fn reset_stats(&self) {
        let _: () = self.cmd(redis::cmd("CONFIG").arg("RESETSTAT")).await;
    }

    /// Names of commands counted since the last reset, e.g. `["exists", "info"]`.
    pub async fn commands_seen(&self) -> Vec<String> {
        let info: String = self.cmd(redis::cmd("INFO").arg("commandstats")).await;
        info.lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter_map(|l| l.split(':').next())
            .map(str::to_owned)
            .collect()
    }

    /// `calls` of one command since the last reset (`INFO commandstats`), 0 if unseen.
    pub async fn calls(&self, command: &str) -> u64 {
        let info: String = self.cmd(redis::cmd("INFO").arg("commandstats")).await;
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(|rest| rest.split(',').next().unwrap_or("0").parse().expect("calls count"))
            .unwrap_or(0)
    }

    /// Number of subscribers of `channel` (`PUBSUB NUMSUB`).
    pub async fn numsub(&self, channel: &str) -> i64 {
        let reply: (String, i64) = self.cmd(redis::cmd("PUBSUB").arg("NUMSUB").arg(channel)).await;
        reply.1
    }

    /// Waits until `channel` has at least `n` subscribers.
    pub async fn await_subscribers(&self, channel: &str, n: i64) {
        super::eventually(Duration::from_secs(10), &format!("{n} subscriber(s) on {channel}"), || async {
            (self.numsub(channel).await >= n).then_some(())
        })
        .await;
    }

    /// Waits until `channel` has at most `n` subscribers (one went away).
    pub async fn await_subscribers_at_most(&self, channel: &str, n: i64) {
        super::eventually(Duration::from_secs(10), &format!("at most {n} subscriber(s) on {channel}"), || async {
            (self.numsub(channel).await <= n).then_some(())
        })
        .await;
    }

    /// `CLIENT KILL TYPE pubsub`: drops every subscription; returns how many.
    pub async fn kill_pubsub_clients(&self) -> i64 {
        self.cmd(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub")).await
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        self.cmd(redis::cmd("GET").arg(key)).await
    }

    pub async fn ttl(&self, key: &str) -> i64 {
        self.cmd(redis::cmd("TTL").arg(key)).await
    }

    /// Revocation records matching `pattern`: every key but the
    /// announcement log (`<prefix>revocations:log`, see [`Redis::log_len`]),
    /// which every write appends to.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        let keys: Vec<String> = self.cmd(redis::cmd("KEYS").arg(pattern)).await;
        keys.into_iter().filter(|k| !k.ends_with(LOG_SUFFIX)).collect()
    }

    /// Entries in the announcement log `log` (`XLEN`, 0 when absent).
    pub async fn log_len(&self, log: &str) -> i64 {
        self.cmd(redis::cmd("XLEN").arg(log)).await
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `sig` (e.g. `-STOP`) to the redis-server this harness started.
fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status().expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// A port the OS just handed out; released before redis-server binds it.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// `redis-server` processes a test started itself (a cluster, a sentinel
/// deployment), each killed and reaped on drop, also when the test fails
/// half-way through starting them.
#[derive(Default)]
pub struct Servers(Vec<Child>);

impl Servers {
    /// Starts `redis-server ARGS` (output discarded); never skips.
    pub fn start(&mut self, args: &[&str]) {
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}); these tests never skip"));
        self.0.push(child);
    }
}

impl Servers {
    /// Kills and reaps every server started so far.
    pub fn kill_all(&mut self) {
        for mut child in self.0.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
