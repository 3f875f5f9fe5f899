//! Redis reached the way production reaches it: over TLS (`rediss://` with
//! a private CA via `tls_ca_file`), and as an ACL user with a password and
//! a non-zero db index, all from the URL. Real redis-server processes.

use crate::support::redis::free_port;
use crate::support::token::claims;
use crate::support::{assert_refused, eventually, key_path, Cfg, Challenge, Gate, Upstream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The announcement log beside the records (`<prefix>revocations:log`).
const LOG_KEY: &str = "jwtgate:revocations:log";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Server {
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start redis-server ({e}); these tests never skip"));
    Server(child)
}

async fn query<T: redis::FromRedisValue>(client: &redis::Client, cmd: &redis::Cmd) -> Option<T> {
    let mut con = client.get_multiplexed_async_connection().await.ok()?;
    cmd.query_async(&mut con).await.ok()
}

fn with_store(app: &Upstream, store_yaml: &str) -> String {
    // A generous deadline: a TLS handshake in a debug build on a loaded
    // 2-core CI machine can take longer than the 50 ms default.
    let yaml = Cfg { redis_url: Some("PLACEHOLDER".into()), redis_timeout: "1s".into(), ..Cfg::new(app) }.yaml();
    let yaml = yaml.replace("    url: PLACEHOLDER\n", store_yaml);
    assert!(!yaml.contains("PLACEHOLDER"), "config template changed");
    yaml
}

async fn logout_is_stored_and_enforced(gate: &Gate, app: &Upstream) {
    let tok = claims().sign();
    assert_eq!(gate.get("/api/before", &tok).await.status, 200, "control");
    assert_eq!(gate.logout(&tok).await.status, 200);
    let rsp = gate.get("/api/after", &tok).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/after"), 0);
}

#[tokio::test]
async fn rediss_with_a_private_ca_stores_revocations_over_tls() {
    let port = free_port();
    let (cert, key, ca) =
        (key_path("redis-tls/server.pem"), key_path("redis-tls/server.key.pem"), key_path("redis-tls/ca.pem"));
    let _server = spawn(&[
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{port}/0");
    let admin = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates { client_tls: None, root_cert: Some(std::fs::read(&ca).unwrap()) },
    )
    .unwrap();
    eventually(Duration::from_secs(10), "TLS redis answers PING", || async {
        query::<String>(&admin, &redis::cmd("PING")).await.filter(|p| p == "PONG")
    })
    .await;

    let app = Upstream::spawn().await;
    let yaml = with_store(&app, &format!("    url: {url}\n    tls_ca_file: \"{ca}\"\n"));
    let gate = Gate::spawn_yaml(&yaml).await;
    logout_is_stored_and_enforced(&gate, &app).await;
    let keys: Vec<String> = query(&admin, redis::cmd("KEYS").arg("jwtgate:*")).await.unwrap();
    let (log, records): (Vec<_>, Vec<_>) = keys.iter().partition(|k| k.as_str() == LOG_KEY);
    assert_eq!((records.len(), log.len()), (1, 1), "revocation and its log entry written over TLS: {keys:?}");

    // Without the CA the server certificate is not trusted: fail closed.
    let untrusted = Gate::spawn_yaml(&with_store(&app, &format!("    url: {url}\n"))).await;
    let rsp = untrusted.get("/api/untrusted", &claims().sign()).await;
    assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    assert_eq!(app.seen("/api/untrusted"), 0);
}

#[tokio::test]
async fn acl_user_password_and_db_index_come_from_the_url() {
    let port = free_port();
    let _server = spawn(&[
        "--port",
        &port.to_string(),
        "--user",
        "default",
        "off",
        "--user",
        "gate",
        "on",
        ">s3cret-pass",
        "~jwtgate:*",
        "&*",
        "+@all",
    ]);
    let admin = redis::Client::open(format!("redis://gate:s3cret-pass@127.0.0.1:{port}/3")).unwrap();
    eventually(Duration::from_secs(10), "ACL redis answers PING", || async {
        query::<String>(&admin, &redis::cmd("PING")).await.filter(|p| p == "PONG")
    })
    .await;

    let app = Upstream::spawn().await;
    let url = format!("redis://gate:s3cret-pass@127.0.0.1:{port}/3");
    let gate = Gate::spawn_yaml(&with_store(&app, &format!("    url: \"{url}\"\n"))).await;
    logout_is_stored_and_enforced(&gate, &app).await;
    let in_db3: Vec<String> = query(&admin, redis::cmd("KEYS").arg("jwtgate:*")).await.unwrap();
    let (log, records): (Vec<_>, Vec<_>) = in_db3.iter().partition(|k| k.as_str() == LOG_KEY);
    assert_eq!((records.len(), log.len()), (1, 1), "revocation and its log entry written to db 3: {in_db3:?}");
    let db0 = redis::Client::open(format!("redis://gate:s3cret-pass@127.0.0.1:{port}/0")).unwrap();
    let in_db0: Vec<String> = query(&db0, redis::cmd("KEYS").arg("jwtgate:*")).await.unwrap();
    assert!(in_db0.is_empty(), "db index ignored: {in_db0:?}");

    // A wrong password is a store failure: fail closed, never forwarded.
    let wrong = format!("redis://gate:wrong@127.0.0.1:{port}/3");
    let denied = Gate::spawn_yaml(&with_store(&app, &format!("    url: \"{wrong}\"\n"))).await;
    let rsp = denied.get("/api/denied", &claims().sign()).await;
    assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    assert_eq!(app.seen("/api/denied"), 0);
}
