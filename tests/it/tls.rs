//! TLS on the public listener: HTTP/1.1 and HTTP/2 by ALPN, the same token
//! checks as over plain HTTP, certificate renewal without a restart, and
//! bad certificate files refused naming their field.

use crate::support::gate::{cli, write_config};
use crate::support::token::claims;
use crate::support::{eventually, key_path, Cfg, Gate, Upstream};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CERT_A: &str = "redis-tls/server.pem";
const KEY_A: &str = "redis-tls/server.key.pem";
const CERT_B: &str = "tls-rotated/server.pem";
const KEY_B: &str = "tls-rotated/server.key.pem";
const LIMIT: Duration = Duration::from_secs(10);

/// What one request over a fresh TLS connection saw.
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    alpn: Option<Vec<u8>>,
    server_cert: Vec<u8>,
}

/// A client trusting both test CAs; `alpn` is offered as the only protocol.
fn connector(alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for ca in ["redis-tls/ca.pem", "tls-rotated/ca.pem"] {
        roots.add(CertificateDer::from_pem_file(key_path(ca)).expect("test CA")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(gate: &Gate, alpn: &[u8]) -> TlsStream {
    let tcp = tokio::net::TcpStream::connect(gate.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(LIMIT, connector(alpn).connect(name, tcp)).await.expect("handshake in time").expect("TLS")
}

fn request(path: &str, token: Option<&str>) -> Request<Empty<Bytes>> {
    let mut req = Request::get(format!("https://localhost{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.body(Empty::new()).expect("request")
}

/// One request on a new TLS connection speaking `alpn` (`h2` or `http/1.1`).
async fn fetch(gate: &Gate, alpn: &[u8], path: &str, token: Option<&str>) -> Answer {
    let stream = connect(gate, alpn).await;
    let (_, session) = stream.get_ref();
    let negotiated = session.alpn_protocol().map(<[u8]>::to_vec);
    let server_cert = session.peer_certificates().and_then(|c| c.first()).expect("server certificate").to_vec();
    let req = request(path, token);
    let rsp = tokio::time::timeout(LIMIT, async {
        if alpn == b"h2" {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.expect("h2");
            tokio::spawn(conn);
            send.send_request(req).await
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("h1");
            tokio::spawn(conn);
            send.send_request(req).await
        }
    })
    .await
    .expect("answer in time")
    .expect("response");
    let www_authenticate = rsp.headers().get("www-authenticate").map(|v| v.to_str().unwrap_or_default().to_owned());
    let status = rsp.status().as_u16();
    let _ = rsp.into_body().collect().await;
    Answer { status, www_authenticate, alpn: negotiated, server_cert }
}

fn der(pem_name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(key_path(pem_name)).expect("test cert").to_vec()
}

fn tls_section(cert: &Path, key: &Path) -> String {
    format!(
        "tls:\n  cert_file: \"{}\"\n  key_file: \"{}\"\nreload:\n  poll_interval: 100ms\n",
        cert.display(),
        key.display()
    )
}

/// Replaces `dst` with `src`'s bytes in one rename, as a Secret update does.
fn install(src: &str, dst: &Path) {
    let tmp = dst.with_extension("tmp");
    std::fs::copy(key_path(src), &tmp).expect("copy");
    std::fs::rename(&tmp, dst).expect("rename");
}

#[tokio::test]
async fn https_serves_http1_and_h2_and_checks_tokens_as_plain_http_does() {
    let app = Upstream::spawn().await;
    let (cert, key) = (Path::new(&key_path(CERT_A)).to_owned(), Path::new(&key_path(KEY_A)).to_owned());
    let gate = Gate::spawn(&Cfg::new(&app).extra(&tls_section(&cert, &key))).await;
    let token = claims().hs256().sign();

    for (alpn, path) in [(&b"http/1.1"[..], "/api/h1"), (&b"h2"[..], "/api/h2")] {
        let ok = fetch(&gate, alpn, path, Some(&token)).await;
        assert_eq!(ok.status, 200, "{path}: valid token");
        assert_eq!(ok.alpn.as_deref(), Some(alpn), "{path}: negotiated protocol");
        assert_eq!(ok.server_cert, der(CERT_A));
        let seen = app.one(path);
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"), "{path}: upstream told the client used TLS");

        let refused = fetch(&gate, alpn, &format!("{path}/anon"), None).await;
        assert_eq!(refused.status, 401, "{path}: no token");
        assert!(refused.www_authenticate.is_some_and(|w| w.starts_with("Bearer")), "{path}: challenge");
        assert_eq!(app.seen(&format!("{path}/anon")), 0, "{path}: a refused request reached the upstream");
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_reaches_nothing_and_tls_still_works() {
    let app = Upstream::spawn().await;
    let (cert, key) = (Path::new(&key_path(CERT_A)).to_owned(), Path::new(&key_path(KEY_A)).to_owned());
    let gate = Gate::spawn(&Cfg::new(&app).extra(&tls_section(&cert, &key))).await;
    let token = claims().hs256().sign();

    let mut tcp = tokio::net::TcpStream::connect(gate.addr).await.expect("connect");
    let plain = format!("GET /api/plain HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n");
    tcp.write_all(plain.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    // The gate ends the connection (after a TLS alert at most): no HTTP answer.
    let read = tokio::time::timeout(LIMIT, tcp.read_to_end(&mut answer)).await.expect("connection closed in time");
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP answered: {:?}", String::from_utf8_lossy(&answer));
    drop(read);
    assert_eq!(app.seen("/api/plain"), 0, "plain HTTP reached the upstream");

    assert_eq!(fetch(&gate, b"http/1.1", "/api/after", Some(&token)).await.status, 200, "positive control");
}

#[tokio::test]
async fn renewed_certificate_serves_new_connections_and_a_broken_renewal_keeps_the_last_good_one() {
    let app = Upstream::spawn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    install(CERT_A, &cert);
    install(KEY_A, &key);
    let gate = Gate::spawn(&Cfg::new(&app).extra(&tls_section(&cert, &key))).await;
    let token = claims().hs256().sign();
    assert_eq!(fetch(&gate, b"h2", "/api/a", Some(&token)).await.server_cert, der(CERT_A));

    // A keep-alive connection opened on the old certificate outlives the renewal.
    let (mut old_conn, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(connect(&gate, b"http/1.1").await)).await.expect("h1");
    tokio::spawn(conn);

    // Key first, then certificate: in between the pair does not match, and
    // that reload fails; the certificate's arrival completes the renewal.
    install(KEY_B, &key);
    install(CERT_B, &cert);
    eventually(LIMIT, "new connections get the renewed certificate", || async {
        (fetch(&gate, b"h2", "/api/poll", Some(&token)).await.server_cert == der(CERT_B)).then_some(())
    })
    .await;
    let rsp = old_conn.send_request(request("/api/old-conn", Some(&token))).await.expect("old connection");
    assert_eq!(rsp.status(), 200, "a connection from before the renewal keeps working");

    // A broken certificate is refused and the renewed pair stays in use.
    let failures = |g: &Gate| g.logs().lines().filter(|l| l.contains("config reload failed")).count();
    let before = failures(&gate);
    std::fs::write(&cert, "not a certificate\n").expect("break cert");
    eventually(LIMIT, "broken certificate reported", || async { (failures(&gate) > before).then_some(()) }).await;
    let after = fetch(&gate, b"http/1.1", "/api/b", Some(&token)).await;
    assert_eq!((after.status, after.server_cert), (200, der(CERT_B)), "last good certificate kept");
    assert!(!gate.logs().contains(&token), "a token reached the logs");
}

#[tokio::test]
async fn reload_cannot_turn_tls_off_under_running_clients() {
    let app = Upstream::spawn().await;
    let (cert, key) = (Path::new(&key_path(CERT_A)).to_owned(), Path::new(&key_path(KEY_A)).to_owned());
    let with_tls = Cfg::new(&app).extra(&tls_section(&cert, &key)).yaml();
    let file = write_config(&with_tls);
    let gate = Gate::spawn_file(file.path()).await;
    let token = claims().hs256().sign();

    let without = Cfg::new(&app).extra("reload:\n  poll_interval: 100ms\n").yaml();
    std::fs::write(file.path(), &without).expect("rewrite config");
    eventually(LIMIT, "refusal logged", || async {
        gate.logs().contains("turning `tls` on or off needs a restart").then_some(())
    })
    .await;
    assert_eq!(fetch(&gate, b"http/1.1", "/api/still-tls", Some(&token)).await.status, 200, "still serving TLS");
}

#[tokio::test]
async fn check_names_the_tls_field_and_line_of_a_bad_certificate_or_key() {
    let app = Upstream::spawn().await;
    let cases = [
        (key_path(CERT_A), key_path(KEY_B), "tls.key_file", "does not fit the certificate"),
        (key_path("no-such.pem"), key_path(KEY_A), "tls.cert_file", "no-such.pem"),
        (key_path("rsa.pub.pem"), key_path(KEY_A), "tls.cert_file", "no PEM certificate"),
    ];
    for (cert, key, field, why) in cases {
        let yaml = Cfg::new(&app).extra(&tls_section(Path::new(&cert), Path::new(&key))).yaml();
        let file = write_config(&yaml);
        let out = cli(&["check", "-c", &file.path().display().to_string()]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let key = field.trim_start_matches("tls.");
        let field_line = yaml.lines().position(|l| l.trim_start().starts_with(key)).expect("field in yaml") + 1;
        assert_eq!(out.status.code(), Some(1), "{field}: {stderr}");
        assert!(stderr.contains(&format!(":{field_line}:")), "{field}: no line {field_line} in: {stderr}");
        assert!(stderr.contains(field) && stderr.contains(why), "{field}: {stderr}");
    }
    // Positive control: the matching pair passes and is listed.
    let yaml = Cfg::new(&app).extra(&tls_section(Path::new(&key_path(CERT_A)), Path::new(&key_path(KEY_A)))).yaml();
    let file = write_config(&yaml);
    let out = cli(&["check", "-c", &file.path().display().to_string()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tls "), "summary lists tls");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_cut_off_at_the_handshake_timeout() {
    let app = Upstream::spawn().await;
    let (cert, key) = (Path::new(&key_path(CERT_A)).to_owned(), Path::new(&key_path(KEY_A)).to_owned());
    let tls = tls_section(&cert, &key).replacen("  key_file", "  handshake_timeout: 300ms\n  key_file", 1);
    let gate = Gate::spawn(&Cfg::new(&app).extra(&tls)).await;

    let started = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(gate.addr).await.expect("connect");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(LIMIT, silent.read(&mut buf)).await.expect("cut off in time").unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "the gate wrote to a client that sent nothing");
    assert!(waited >= Duration::from_millis(250), "cut off before the timeout: {waited:?}");
    assert!(waited < Duration::from_secs(5), "held for {waited:?}");

    let token = claims().hs256().sign();
    assert_eq!(fetch(&gate, b"h2", "/api/control", Some(&token)).await.status, 200, "positive control");
}
