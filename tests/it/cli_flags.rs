//! Flags of the real binary: a bad value is refused naming its flag (not a
//! line of the config file it did not come from), `--listen` takes host
//! names for every command that listens, and `revoke` says why it could
//! not reach the admin API.

use crate::support::gate::{cli, cli_env, write_config};
use crate::support::redis::free_port;
use crate::support::{Cfg, Gate, Upstream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

fn valid_config() -> tempfile::NamedTempFile {
    write_config(&Cfg::to_url("http://127.0.0.1:3000").yaml())
}

#[tokio::test]
async fn a_bad_upstream_or_listen_flag_is_reported_as_the_flag() {
    let file = valid_config();
    let path = file.path().display().to_string();
    let out = cli(&["run", "-c", &path, "--upstream", "ftp://x"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("jwtgate: --upstream: only http://host:port upstreams"), "{stderr}");
    assert!(!stderr.contains(&path) && !stderr.contains("upstream.url"), "blamed on the file: {stderr}");

    let out = cli(&["run", "-c", &path, "--listen", "not an address"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("'--listen <ADDR>'") && !stderr.contains(&path), "{stderr}");

    // Control: the same mistake in the file is the file's, at its line.
    let yaml = Cfg::to_url("ftp://x").yaml();
    let file = write_config(&yaml);
    let out = cli(&["check", "-c", &file.path().display().to_string()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:3:", file.path().display())) && stderr.contains("upstream.url"), "{stderr}");
}

#[tokio::test]
async fn run_listens_on_a_host_name() {
    let app = Upstream::spawn().await;
    let port = free_port();
    let listen = format!("localhost:{port}");
    let gate = Gate::spawn_yaml_with(&Cfg::new(&app).yaml(), &["--listen", &listen], &[]).await;
    assert_eq!(gate.addr, ([127, 0, 0, 1], port).into(), "localhost resolved to IPv4 loopback");
    assert_eq!(gate.get_anon("/healthz").await.status, 200);
    assert_eq!(app.seen("/healthz"), 1);
}

/// Starts `jwtgate args...` and waits for the stdout line starting with
/// `ready`; returns the rest of that line and the child (killed on drop).
async fn started(args: &[&str], ready: &str) -> (String, tokio::process::Child) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_jwtgate"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start jwtgate");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix(ready) {
                return Some(rest.trim().to_owned());
            }
        }
        None
    })
    .await;
    let rest = found.ok().flatten().unwrap_or_else(|| panic!("`jwtgate {}` never printed `{ready}`", args.join(" ")));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (rest, child)
}

#[tokio::test]
async fn demo_upstream_and_webhook_listen_on_a_host_name() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keys/redis-tls");
    let (cert, key) =
        (keys.join("server.pem").display().to_string(), keys.join("server.key.pem").display().to_string());
    for (command, ready) in [
        (vec!["demo"], "jwtgate listening on http://"),
        (vec!["upstream"], "jwtgate upstream listening on http://"),
        (vec!["webhook", "--tls-cert", &cert, "--tls-key", &key], "jwtgate webhook listening on https://"),
    ] {
        let port = free_port();
        let listen = format!("localhost:{port}");
        let mut args = command.clone();
        args.extend(["--listen", &listen]);
        let (addr, _child) = started(&args, ready).await;
        assert_eq!(addr, format!("127.0.0.1:{port}"), "{command:?}");
        let connected = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        assert!(connected.is_ok(), "{command:?}: nothing listens on {addr}");
    }
}

#[tokio::test]
async fn revoke_against_an_unreachable_admin_api_says_why() {
    let admin = format!("http://127.0.0.1:{}", free_port());
    let env = [("JWTGATE_ADMIN_TOKEN", "admin-token-for-tests-0123456789")];
    let out = cli_env(&["revoke", "--admin", &admin, "--iss", "idp", "--sub", "u-1"], &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with(&format!("jwtgate: cannot reach {admin}/revocations: ")), "{stderr}");
    assert!(stderr.contains("Connection refused (os error 111)"), "the root cause: {stderr}");
    assert!(!stderr.contains("admin-token-for-tests"), "token printed: {stderr}");

    let with_password = admin.replace("http://", "http://ops:hunter2@");
    let out = cli_env(&["revoke", "--admin", &with_password, "--iss", "idp", "--sub", "u-1"], &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach http://ops:***@127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "password printed: {stderr}");
}
