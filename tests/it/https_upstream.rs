//! `https://` upstreams: jwtgate speaks TLS to the app with the test CA
//! (`ca_file`), checks the certificate's name against the URL's host,
//! presents a client certificate when configured (mTLS), over the pool,
//! over a client connection's own upstream connection (affinity) and for
//! WebSocket handshakes. A certificate it cannot verify is a 502
//! `upstream_unavailable` that the app never sees, logged with the reason.

use crate::support::gate::{cli, read_response, write_config};
use crate::support::upstream::{Behaviour, TlsOptions};
use crate::support::{assert_refused, eventually, key_path, token, Cfg, Challenge, Gate, Upstream};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUTES: &str = "
  - match: { path_prefix: /api }
    auth: required
    forward_claims: { sub: X-User-Id }
";
const WAIT: Duration = Duration::from_secs(10);

/// The test CA: it signed the upstream's certificate (`redis-tls/server.pem`).
fn test_ca() -> String {
    key_path("redis-tls/ca.pem")
}

/// A gate in front of `app` whose `upstream:` has these extra fields.
async fn gate_with(app: &Upstream, fields: &str) -> Gate {
    Gate::spawn_yaml(&yaml_with(app, fields)).await
}

fn yaml_with(app: &Upstream, fields: &str) -> String {
    let yaml = Cfg::new(app).routes(ROUTES).yaml();
    let fields: String = fields.lines().map(|l| format!("  {}\n", l.trim())).collect();
    let with = yaml.replacen("  connect_timeout: 2s\n", &format!("  connect_timeout: 2s\n{fields}"), 1);
    assert!(fields.is_empty() || with != yaml, "fields inserted");
    with
}

/// One keep-alive HTTP/1.1 connection to the gate: its first request goes
/// through the pool, the later ones over its own upstream connection.
struct Client {
    send: SendRequest<Empty<Bytes>>,
    token: String,
}

impl Client {
    async fn connect(gate: &Gate) -> Client {
        let stream = tokio::net::TcpStream::connect(gate.addr).await.expect("connect to the gate");
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake with the gate");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Client { send, token: token::mint() }
    }

    /// GET `path` on this connection: status and body.
    async fn get(&mut self, path: &str) -> (u16, String) {
        self.send.ready().await.expect("gate connection ready");
        let req = hyper::Request::get(path)
            .header("host", "api.example")
            .header("authorization", format!("Bearer {}", self.token))
            .header("x-user-id", "spoofed")
            .body(Empty::new())
            .expect("request");
        let rsp = tokio::time::timeout(WAIT, self.send.send_request(req)).await.expect("in time").expect("response");
        let status = rsp.status().as_u16();
        let body = rsp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// The request the app saw for `path`, checked as forwarded over TLS.
#[track_caller]
fn seen_over_tls(app: &Upstream, path: &str) -> crate::support::upstream::Seen {
    let seen = app.one(path);
    assert_eq!(seen.target, path);
    assert_eq!(seen.header("host"), Some("api.example"), "the client's Host, unchanged");
    assert_eq!(seen.header("x-user-id"), Some("user-1"), "the claim header, the spoofed one replaced");
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"), "describes the client's hop, not jwtgate's");
    assert!(seen.header("authorization").is_some(), "the credential forwarded as before");
    let tls = seen.tls.as_ref().expect("the request came over TLS");
    assert_eq!(tls.alpn.as_deref(), Some(&b"http/1.1"[..]), "jwtgate offers http/1.1 only (the app offered h2 too)");
    seen
}

/// Waits for a warn-or-worse log line of a failed request containing all of `parts`.
async fn logged(gate: &Gate, parts: &[&str]) -> String {
    eventually(WAIT, &format!("a log line with {parts:?}"), || async {
        gate.logs()
            .lines()
            .find(|l| l.contains("request failed") && parts.iter().all(|p| l.contains(p)))
            .map(str::to_owned)
    })
    .await
}

/// Waits until `app` has seen at least `n` TLS handshakes fail: jwtgate
/// reached it, and the handshake, not something before it, went wrong.
async fn handshakes_failed(app: &Upstream, n: usize) {
    eventually(WAIT, &format!("{n} failed TLS handshake(s) at the app"), || async {
        (app.tls_failures().len() >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn requests_reach_a_tls_upstream_over_the_pool_and_the_client_connections_own() {
    let app = Upstream::spawn_tls(TlsOptions::default()).await;
    let gate = gate_with(&app, &format!("ca_file: {}", test_ca())).await;
    let mut client = Client::connect(&gate).await;
    for i in 0..3 {
        let (status, body) = client.get(&format!("/api/r{i}")).await;
        assert_eq!(status, 200, "{body}");
    }
    let pooled = seen_over_tls(&app, "/api/r0");
    let own = seen_over_tls(&app, "/api/r1");
    assert_ne!(pooled.conn, own.conn, "the first request took the pool, the second opened the client's own");
    assert_eq!(seen_over_tls(&app, "/api/r2").conn, own.conn, "and kept it: the affinity path, over TLS");
    assert_eq!(app.connections_accepted(), 2);
    assert!(app.tls_failures().is_empty(), "{:?}", app.tls_failures());
    // By name too: `localhost` is the certificate's DNS name (sent as SNI),
    // as 127.0.0.1 is its IP address.
    let app2 = Upstream::spawn_tls(TlsOptions::default()).await;
    let yaml = yaml_with(&app2, &format!("ca_file: {}", test_ca())).replace("https://127.0.0.1:", "https://localhost:");
    let gate = Gate::spawn_yaml(&yaml).await;
    let rsp = gate.get("/api/by-name", &token::mint()).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let tls = app2.one("/api/by-name").tls.expect("over TLS");
    assert_eq!((tls.sni.as_deref(), tls.alpn), (Some("localhost"), Some(b"http/1.1".to_vec())));
    assert_eq!(own.tls.and_then(|t| t.sni), None, "no SNI for an IP address (verified against the IP SAN)");
}

#[tokio::test]
async fn a_certificate_of_an_unknown_ca_is_a_502_the_app_never_sees() {
    let app = Upstream::spawn_tls(TlsOptions::default()).await;
    // No ca_file: the public roots, which never signed the test CA.
    let gate = gate_with(&app, "").await;
    let rsp = gate.get("/api/public-roots", &token::mint()).await;
    assert_refused(&rsp, 502, "upstream_unavailable", Challenge::Absent);
    let line = logged(&gate, &["upstream_unavailable", "UnknownIssuer"]).await;
    assert!(!line.contains(&token::mint()[..20]), "no token in the log line");
    // Another CA (the listener tests' second one), on both paths: the
    // pool's first request and the client connection's own connection.
    let gate = gate_with(&app, &format!("ca_file: {}", key_path("tls-rotated/ca.pem"))).await;
    let mut client = Client::connect(&gate).await;
    assert_eq!(client.get("/api/other-ca-pooled").await.0, 502);
    assert_eq!(client.get("/api/other-ca-own").await.0, 502);
    logged(&gate, &["upstream_unavailable", "TLS handshake with", "UnknownIssuer"]).await;
    assert_eq!(app.total(), 0, "no request reached the app: {:?}", app.requests());
    // The app notices a handshake's end after jwtgate has answered.
    handshakes_failed(&app, 3).await;
    // Positive control: the same app with the right CA.
    let gate = gate_with(&app, &format!("ca_file: {}", test_ca())).await;
    assert_eq!(gate.get("/api/right-ca", &token::mint()).await.status, 200);
    assert_eq!(app.total(), 1);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_502() {
    // 127.0.0.2 is loopback too, but not among the certificate's names.
    let app = Upstream::spawn_tls(TlsOptions { ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), client_ca: None }).await;
    let gate = gate_with(&app, &format!("ca_file: {}", test_ca())).await;
    let rsp = gate.get("/api/wrong-name", &token::mint()).await;
    assert_refused(&rsp, 502, "upstream_unavailable", Challenge::Absent);
    logged(&gate, &["certificate not valid for name", "127.0.0.2"]).await;
    assert_eq!(app.total(), 0);
    handshakes_failed(&app, 1).await;
}

#[tokio::test]
async fn an_upstream_requiring_a_client_certificate_gets_the_configured_one() {
    let mtls = TlsOptions { client_ca: Some("upstream-mtls/ca.pem".into()), ..TlsOptions::default() };
    let app = Upstream::spawn_tls(mtls).await;
    let without = gate_with(&app, &format!("ca_file: {}", test_ca())).await;
    let rsp = without.get("/api/no-client-cert", &token::mint()).await;
    assert_refused(&rsp, 502, "upstream_unavailable", Challenge::Absent);
    handshakes_failed(&app, 1).await;
    // TLS 1.3: the app's refusal arrives as an alert after jwtgate's side of the handshake.
    logged(&without, &["upstream_unavailable", "CertificateRequired"]).await;
    assert_eq!(app.total(), 0, "refused without a client certificate: {:?}", app.requests());
    let with = gate_with(
        &app,
        &format!(
            "ca_file: {}\nclient_cert_file: {}\nclient_key_file: {}",
            test_ca(),
            key_path("upstream-mtls/client.pem"),
            key_path("upstream-mtls/client.key.pem")
        ),
    )
    .await;
    let mut client = Client::connect(&with).await;
    assert_eq!(client.get("/api/mtls-pooled").await.0, 200);
    assert_eq!(client.get("/api/mtls-own").await.0, 200);
    let pem = std::fs::read(key_path("upstream-mtls/client.pem")).expect("client.pem");
    let expected = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("client certificate").to_vec()
    };
    for path in ["/api/mtls-pooled", "/api/mtls-own"] {
        let seen = seen_over_tls(&app, path);
        assert_eq!(seen.tls.and_then(|t| t.client_cert), Some(expected.clone()), "{path}: the configured certificate");
    }
}

#[tokio::test]
async fn a_websocket_handshake_is_switched_and_spliced_over_tls() {
    let app = Upstream::spawn_tls(TlsOptions::default()).await;
    app.on("/api/ws", Behaviour::WebSocketEcho);
    let gate = gate_with(&app, &format!("ca_file: {}", test_ca())).await;
    let mut s = tokio::net::TcpStream::connect(gate.addr).await.expect("connect");
    let request = format!(
        "GET /api/ws HTTP/1.1\r\nHost: g\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        token::mint()
    );
    s.write_all(request.as_bytes()).await.expect("write handshake");
    let head = tokio::time::timeout(WAIT, read_response(&mut s)).await.expect("in time").expect("a response");
    assert_eq!(head.status, 101, "{:?}", head.text());
    assert_eq!(head.header("sec-websocket-accept").as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    let seen = app.one("/api/ws");
    assert_eq!(seen.header("x-user-id"), Some("user-1"));
    assert!(seen.tls.is_some(), "the handshake went over TLS");
    for round in 0..3 {
        let msg = format!("frame {round} over tls");
        s.write_all(msg.as_bytes()).await.expect("write");
        let mut back = vec![0; msg.len()];
        tokio::time::timeout(WAIT, s.read_exact(&mut back)).await.expect("echo in time").expect("echo");
        assert_eq!(back, msg.as_bytes());
    }
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_ca_and_warns_at_start_and_reload() {
    let app = Upstream::spawn_tls(TlsOptions::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jwtgate.yaml");
    let yaml = yaml_with(&app, "insecure_skip_verify: true");
    std::fs::write(&path, &yaml).expect("write config");
    let gate = Gate::spawn_file(&path).await;
    let warned = |gate: &Gate| {
        gate.logs()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("insecure_skip_verify") && l.contains("upstream=upstream"))
            .count()
    };
    eventually(WAIT, "the warning at start", || async { (warned(&gate) == 1).then_some(()) }).await;
    let rsp = gate.get("/api/insecure", &token::mint()).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert!(app.one("/api/insecure").tls.is_some());
    gate.sighup();
    eventually(WAIT, "the warning again, by the reload that keeps it", || async { (warned(&gate) == 2).then_some(()) })
        .await;
    assert!(gate.logs().contains("config reloaded"));
    // Positive control: the same config without it refuses the unknown CA.
    let strict = gate_with(&app, "").await;
    assert_eq!(strict.get("/api/strict", &token::mint()).await.status, 502);
    logged(&strict, &["UnknownIssuer"]).await;
    assert_eq!(warned(&strict), 0);
}

#[tokio::test]
async fn a_reload_rereads_the_ca_file_and_a_bad_one_keeps_the_running_config() {
    let app = Upstream::spawn_tls(TlsOptions::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("upstream-ca.pem");
    std::fs::copy(test_ca(), &ca).expect("copy the CA");
    let path = dir.path().join("jwtgate.yaml");
    std::fs::write(&path, yaml_with(&app, "ca_file: upstream-ca.pem")).expect("write config");
    let gate = Gate::spawn_file(&path).await;
    assert_eq!(gate.get("/api/before", &token::mint()).await.status, 200, "ca_file relative to the config file");
    let reloads = |gate: &Gate, what: &str| gate.logs().matches(what).count();
    // Not PEM: the reload fails, naming the field, and the old CA stays in force.
    std::fs::write(&ca, "not a certificate\n").expect("break the CA file");
    gate.sighup();
    let line = eventually(WAIT, "the failed reload", || async {
        gate.logs().lines().find(|l| l.contains("config reload failed")).map(str::to_owned)
    })
    .await;
    assert!(line.contains("upstream.ca_file") && line.contains("upstream-ca.pem"), "{line}");
    assert_eq!(gate.get("/api/kept", &token::mint()).await.status, 200, "the running config kept");
    // Another CA's certificate: valid PEM, read by the reload, and the
    // upstream's certificate no longer verifies.
    std::fs::copy(key_path("tls-rotated/ca.pem"), &ca).expect("swap the CA");
    gate.sighup();
    eventually(WAIT, "the reload", || async { (reloads(&gate, "config reloaded") == 1).then_some(()) }).await;
    assert_eq!(gate.get("/api/after", &token::mint()).await.status, 502, "the new CA file is in force");
    assert_eq!(app.seen("/api/after"), 0);
}

#[tokio::test]
async fn bad_tls_fields_are_refused_by_check_with_file_field_and_line() {
    let app = Upstream::spawn_tls(TlsOptions::default()).await;
    // The fields go under `connect_timeout:` on line 5.
    let cases = [
        ("ca_file: no-such-ca.pem".to_owned(), "upstream.ca_file", "no-such-ca.pem", 6),
        (
            format!("client_cert_file: {}", key_path("upstream-mtls/client.pem")),
            "upstream.client_cert_file",
            "needs client_key_file",
            6,
        ),
        (
            format!("ca_file: {}\ninsecure_skip_verify: true", test_ca()),
            "upstream.insecure_skip_verify",
            "would not be used",
            7,
        ),
    ];
    for (fields, field, why, line) in cases {
        let config = write_config(&yaml_with(&app, &fields));
        let out = cli(&["check", "-c", config.path().to_str().expect("utf-8 path")]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{fields}: refused");
        let file = config.path().file_name().and_then(|n| n.to_str()).expect("file name");
        assert!(stderr.contains(file) && stderr.contains(field) && stderr.contains(why), "{fields}: {stderr}");
        assert!(stderr.contains(&format!("{file}:{line}:")), "{fields}: the field's line {line}: {stderr}");
    }
    let plain = Upstream::spawn().await;
    let config = write_config(&yaml_with(&plain, &format!("ca_file: {}", test_ca())));
    let out = cli(&["check", "-c", config.path().to_str().expect("utf-8 path")]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("only for an https:// upstream"), "{out:?}");
    // Positive control: a good https upstream passes and is shown as https.
    let config = write_config(&yaml_with(&app, &format!("ca_file: {}", test_ca())));
    let out = cli(&["check", "-c", config.path().to_str().expect("utf-8 path")]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("https://{}", app.addr)), "{out:?}");
}
