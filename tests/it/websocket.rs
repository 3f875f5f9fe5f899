//! WebSocket pass-through: the handshake is checked like any request (token,
//! revocation, route rules, claim headers), then a `101` from the app is
//! relayed and both connections are spliced until they close or the token
//! expires. The client speaks raw HTTP/1.1 over a TCP socket; past the 101
//! the bytes are opaque (no WebSocket framing needed: the upstream echoes).

use crate::support::token::{self, claims};
use crate::support::{eventually, metric, Behaviour, Cfg, Gate, Upstream};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROUTES: &str = "
  - match: { path_prefix: /ws/open }
    auth: none
  - match: { path_prefix: /ws/closed }
    auth: deny
  - match: { path_prefix: /ws }
    auth: required
    forward_claims: { sub: X-User-Id }
";

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455's example: the accept for [`KEY`].
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// Every wait on the network is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

async fn fixture(cfg: impl FnOnce(Cfg) -> Cfg) -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    app.on("/ws", Behaviour::WebSocketEcho);
    let gate = Gate::spawn(&cfg(Cfg::new(&app).routes(ROUTES))).await;
    (app, gate)
}

/// A response head as the client read it, plus any bytes read past it.
struct Head {
    status: u16,
    headers: HashMap<String, String>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A WebSocket handshake for `path`; `extra` is more header lines, each
/// ending in `\r\n` (e.g. `Authorization`).
fn handshake(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: g\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

async fn connect(gate: &Gate) -> TcpStream {
    tokio::time::timeout(WAIT, TcpStream::connect(gate.addr)).await.expect("connect in time").expect("connect")
}

/// Writes `request` and reads the response head (to the blank line).
async fn exchange(s: &mut TcpStream, request: &str) -> Head {
    s.write_all(request.as_bytes()).await.expect("write request");
    tokio::time::timeout(WAIT, read_head(s)).await.expect("response head in time")
}

async fn read_head(s: &mut TcpStream) -> Head {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read_buf(&mut buf).await.expect("read response head");
        assert!(n > 0, "EOF before a response head: {:?}", String::from_utf8_lossy(&buf));
    };
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    assert!(status_line.starts_with("HTTP/1.1 "), "status line {status_line:?}");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let mut headers = HashMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').expect("header line");
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    Head { status, headers, rest: buf.split_off(end) }
}

/// Reads the `Content-Length` body of a non-101 response.
async fn read_body(s: &mut TcpStream, head: &Head) -> Vec<u8> {
    let len: usize = head.header("content-length").expect("content-length").parse().expect("length");
    let mut body = head.rest.clone();
    let rest = len.checked_sub(body.len()).expect("no bytes past the body");
    let mut more = vec![0; rest];
    tokio::time::timeout(WAIT, s.read_exact(&mut more)).await.expect("body in time").expect("read body");
    body.extend(more);
    body
}

/// Sends `n` bytes of a pattern through the tunnel while reading the echo;
/// asserts every byte came back in order.
async fn echo(s: &mut TcpStream, n: usize) {
    let sent: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let (mut rd, mut wr) = s.split();
    let write = async {
        wr.write_all(&sent).await.expect("write into the tunnel");
    };
    let mut got = vec![0; n];
    let read = async {
        rd.read_exact(&mut got).await.expect("read the echo");
    };
    tokio::time::timeout(WAIT, async { tokio::join!(write, read) }).await.expect("echo in time");
    assert!(got == sent, "echo differs from what was sent ({n} bytes)");
}

/// Asserts a 101 with the upstream's switch headers, nothing past the head.
#[track_caller]
fn assert_switched(head: &Head) {
    assert_eq!(head.status, 101, "headers {:?}", head.headers);
    assert_eq!(head.header("upgrade"), Some("websocket"));
    let connection = head.header("connection").unwrap_or_default().to_ascii_lowercase();
    assert!(connection.split(',').any(|t| t.trim() == "upgrade"), "connection {connection:?}");
    assert_eq!(head.header("sec-websocket-accept"), Some(ACCEPT), "Sec-WebSocket-* are end-to-end");
    assert_eq!(head.header("x-upstream"), Some("yes"), "the app's 101, not one of jwtgate's");
    assert!(head.rest.is_empty(), "bytes before any were sent: {:?}", head.rest);
}

/// Reads until EOF (bounded); fails on any data.
async fn expect_eof(s: &mut TcpStream, within: Duration) {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(within, s.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("tunnel still open after {within:?}"))
        .unwrap_or(0); // a reset is a close too
    assert_eq!(n, 0, "data instead of EOF: {:?}", &buf[..n]);
}

#[tokio::test]
async fn valid_token_handshake_is_switched_and_spliced_both_ways() {
    let (app, gate) = fixture(Cfg::admin).await;
    let tok = claims().sub("alice").sign();
    let mut s = connect(&gate).await;
    let request = handshake("/ws/chat?room=1", &format!("{}X-User-Id: spoofed\r\n", bearer(&tok)))
        .replace("Connection: Upgrade\r\n", "Connection: keep-alive, Upgrade, X-Named-Hop\r\nX-Named-Hop: 1\r\n");
    let head = exchange(&mut s, &request).await;
    assert_switched(&head);
    echo(&mut s, 64 * 1024).await;
    echo(&mut s, 3).await;

    let seen = app.one("/ws/chat");
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/ws/chat?room=1");
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(seen.header("connection"), Some("upgrade"), "exactly the upgrade pair: {:?}", seen.headers);
    assert_eq!(seen.header("x-named-hop"), None, "other headers named in Connection are still hop-by-hop");
    assert_eq!(seen.header("sec-websocket-key"), Some(KEY));
    assert_eq!(seen.header("sec-websocket-version"), Some("13"));
    assert_eq!(seen.header("x-user-id"), Some("alice"), "claim header set, client copy dropped");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {tok}").as_str()));

    let text = gate.metrics().await;
    assert_eq!(metric(&text, "jwtgate_websocket_tunnels_total", &[]), Some(1.0), "{text}");
    assert_eq!(metric(&text, "jwtgate_websocket_tunnels_open", &[]), Some(1.0), "{text}");
    assert_eq!(metric(&text, "jwtgate_requests_total", &["outcome=\"forwarded\""]), Some(1.0), "{text}");

    // A logout closing the tunnel: tests/it/websocket_revocation.rs.

    // The client closing ends both sides and the gauge.
    s.shutdown().await.expect("shutdown");
    expect_eof(&mut s, WAIT).await;
    eventually(WAIT, "the app's side closed", || async { (app.tunnels_closed() == 1).then_some(()) }).await;
    eventually(WAIT, "open tunnels back to 0", || async {
        (metric(&gate.metrics().await, "jwtgate_websocket_tunnels_open", &[]) == Some(0.0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn refused_handshakes_never_reach_the_app() {
    let (app, gate) = fixture(|c| c).await;

    let mut s = connect(&gate).await;
    let head = exchange(&mut s, &handshake("/ws/anon", "")).await;
    assert_eq!(head.status, 401);
    assert_eq!(head.header("www-authenticate"), Some(r#"Bearer realm="jwtgate""#));
    assert_eq!(head.header("upgrade"), None);
    let body: serde_json::Value = serde_json::from_slice(&read_body(&mut s, &head).await).expect("json");
    assert_eq!(body["error"], "missing_token");

    let revoked = token::mint();
    assert_eq!(gate.logout(&revoked).await.status, 200, "logout");
    let mut s = connect(&gate).await;
    let head = exchange(&mut s, &handshake("/ws/revoked", &bearer(&revoked))).await;
    assert_eq!(head.status, 401);
    assert!(head.header("www-authenticate").is_some_and(|w| w.contains(r#"error="invalid_token""#)));
    let body: serde_json::Value = serde_json::from_slice(&read_body(&mut s, &head).await).expect("json");
    assert_eq!(body["error"], "token_revoked");

    let mut s = connect(&gate).await;
    let head = exchange(&mut s, &handshake("/ws/closed/x", &bearer(&token::mint()))).await;
    assert_eq!(head.status, 403, "deny route");

    // Positive control: the same handshake with a live token is switched.
    let mut s = connect(&gate).await;
    assert_switched(&exchange(&mut s, &handshake("/ws/control", &bearer(&token::mint()))).await);

    assert_eq!(app.seen("/ws/anon") + app.seen("/ws/revoked") + app.seen("/ws/closed/x"), 0, "refused reached the app");
    assert_eq!(app.seen("/ws/control"), 1);
}

#[tokio::test]
async fn non_websocket_upgrades_are_still_stripped() {
    let (app, gate) = fixture(|c| c).await;
    let tok = token::mint();
    let cases = [
        ("/api/h2c", "Connection: Upgrade\r\nUpgrade: h2c\r\n"),
        ("/api/tls", "Connection: Upgrade\r\nUpgrade: TLS/1.2\r\n"),
        ("/api/no-connection-token", "Connection: keep-alive\r\nUpgrade: websocket\r\n"),
    ];
    for (path, upgrade) in cases {
        let mut s = connect(&gate).await;
        let request = format!("GET {path} HTTP/1.1\r\nHost: g\r\n{upgrade}{}\r\n", bearer(&tok));
        let head = exchange(&mut s, &request).await;
        assert_eq!(head.status, 200, "{path}: a normal response");
        assert_eq!(head.header("upgrade"), None, "{path}");
        let seen = app.one(path);
        assert_eq!(seen.header("upgrade"), None, "{path}: {:?}", seen.header_names());
        assert_eq!(seen.header("connection"), None, "{path}: {:?}", seen.header_names());
    }
}

#[tokio::test]
async fn app_refusing_the_upgrade_is_relayed_as_a_normal_response() {
    let (app, gate) = fixture(|c| c).await;
    app.on("/api/refuse", Behaviour::Status(400));
    app.on("/api/plain", Behaviour::Status(200));
    let tok = token::mint();
    let mut s = connect(&gate).await;
    for (path, status) in [("/api/refuse", 400), ("/api/plain", 200)] {
        let head = exchange(&mut s, &handshake(path, &bearer(&tok))).await;
        assert_eq!(head.status, status, "{path}: {:?}", head.headers);
        assert_eq!(head.header("upgrade"), None, "{path}: not switched");
        assert_eq!(read_body(&mut s, &head).await, b"not switching", "{path}");
        assert_eq!(app.one(path).header("upgrade"), Some("websocket"), "{path}: the app was asked");
    }
    // Same connection, still plain HTTP: not hung, not half-switched.
    let head = exchange(&mut s, &format!("GET /api/after HTTP/1.1\r\nHost: g\r\n{}\r\n", bearer(&tok))).await;
    assert_eq!(head.status, 200);
    assert_eq!(read_body(&mut s, &head).await, b"");
    assert_eq!(app.seen("/api/after"), 1);
}

#[tokio::test]
async fn tunnel_closes_when_the_token_expires() {
    let (app, gate) = fixture(Cfg::admin).await;
    let tok = claims().exp_in(3);
    let exp = tok.exp();
    let started = Instant::now();
    let mut s = connect(&gate).await;
    assert_switched(&exchange(&mut s, &handshake("/ws/expiring", &bearer(&tok.sign()))).await);
    echo(&mut s, 4096).await;

    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3 + 30 + 5), s.read(&mut buf)).await;
    let n = read.expect("tunnel not closed within exp + leeway + 5 s").unwrap_or(0);
    assert_eq!(n, 0, "data instead of EOF");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64();
    assert!(now >= exp as f64 - 0.5, "closed {:.2} s before exp", exp as f64 - now);
    assert!(started.elapsed() >= Duration::from_secs(1), "closed after {:?}", started.elapsed());
    assert!(now <= exp as f64 + 5.0, "closed {:.2} s after exp", now - exp as f64);

    eventually(WAIT, "the app's side closed", || async { (app.tunnels_closed() == 1).then_some(()) }).await;
    eventually(WAIT, "open tunnels back to 0", || async {
        (metric(&gate.metrics().await, "jwtgate_websocket_tunnels_open", &[]) == Some(0.0)).then_some(())
    })
    .await;
    let text = gate.metrics().await;
    assert_eq!(metric(&text, "jwtgate_websocket_tunnels_total", &[]), Some(1.0), "{text}");
}

#[tokio::test]
async fn auth_none_route_switches_without_a_token() {
    let (app, gate) = fixture(|c| c).await;
    let mut s = connect(&gate).await;
    let head = exchange(&mut s, &handshake("/ws/open/feed", "X-User-Id: spoofed\r\n")).await;
    assert_switched(&head);
    echo(&mut s, 8192).await;
    let seen = app.one("/ws/open/feed");
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(seen.header("x-user-id"), None, "client copy of a claim header dropped");
}

#[tokio::test]
async fn a_101_without_the_accept_of_this_key_is_not_spliced() {
    // An app answering 101 without really switching (a reflected status,
    // say) would otherwise hand the client a raw pipe past every rule.
    let (app, gate) = fixture(Cfg::admin).await;
    app.on("/liar", Behaviour::WebSocketWrongAccept);
    let tok = token::mint();
    let mut s = connect(&gate).await;
    let head = exchange(&mut s, &handshake("/liar", &bearer(&tok))).await;
    assert_eq!(head.status, 502, "{:?}", head.headers);
    assert_eq!(head.header("upgrade"), None);
    assert_eq!(app.one("/liar").header("upgrade"), Some("websocket"), "the app was asked");
    assert_eq!(metric(&gate.metrics().await, "jwtgate_websocket_tunnels_total", &[]), Some(0.0), "nothing spliced");

    // Positive control: the honest app on the same gate is spliced.
    let mut s = connect(&gate).await;
    assert_eq!(exchange(&mut s, &handshake("/ws/echo", &bearer(&tok))).await.status, 101);
}

#[tokio::test]
async fn a_half_formed_handshake_never_asks_the_app_to_switch() {
    let (app, gate) = fixture(|c| c).await;
    let tok = token::mint();
    let pair = "Connection: Upgrade\r\nUpgrade: websocket\r\n";
    let cases = [
        ("GET", "/ws/no-key", format!("{pair}Sec-WebSocket-Version: 13\r\n")),
        ("GET", "/ws/bad-key", format!("{pair}Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n")),
        ("GET", "/ws/old-version", format!("{pair}Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n")),
        (
            "POST",
            "/ws/post",
            format!("{pair}Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n"),
        ),
    ];
    for (method, path, headers) in cases {
        let mut s = connect(&gate).await;
        let head =
            exchange(&mut s, &format!("{method} {path} HTTP/1.1\r\nHost: g\r\n{headers}{}\r\n", bearer(&tok))).await;
        assert_eq!(head.status, 426, "{path}: the app answered as to a plain request");
        let seen = app.one(path);
        assert_eq!(seen.header("upgrade"), None, "{path}: {:?}", seen.header_names());
    }
}

#[tokio::test]
async fn an_idle_tunnel_is_closed_and_an_active_one_is_not() {
    let app = Upstream::spawn().await;
    app.on("/ws", Behaviour::WebSocketEcho);
    let yaml = Cfg::new(&app).routes(ROUTES).yaml();
    let idle = "  connect_timeout: 2s\n  websocket_idle_timeout: 2s\n";
    let gate = Gate::spawn_yaml(&yaml.replacen("  connect_timeout: 2s\n", idle, 1)).await;
    let mut s = connect(&gate).await;
    assert_switched(&exchange(&mut s, &handshake("/ws/open/idle", "")).await);

    // Traffic every 200 ms for 5 s (2.5 idle timeouts): the tunnel stays.
    let started = Instant::now();
    loop {
        let last_sent = Instant::now();
        echo(&mut s, 16).await;
        if started.elapsed() >= Duration::from_secs(5) {
            // Silence from here: closed no sooner than one idle timeout
            // after this last byte was sent (the gate read it later still).
            let mut buf = [0u8; 16];
            let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("idle tunnel never closed").unwrap_or(0);
            assert_eq!(n, 0, "data instead of EOF");
            let waited = last_sent.elapsed();
            assert!(waited >= Duration::from_millis(1950), "closed {waited:?} after the last byte was sent");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // pacing the client's traffic, not a sync point
    }
    eventually(WAIT, "the app's side closed", || async { (app.tunnels_closed() == 1).then_some(()) }).await;
}

#[tokio::test]
async fn shutdown_lets_an_open_tunnel_finish_and_exits_when_it_closes() {
    let (app, gate) = fixture(|c| c).await;
    let mut s = connect(&gate).await;
    assert_switched(&exchange(&mut s, &handshake("/ws/open/drain", "")).await);
    echo(&mut s, 64).await;

    gate.sigterm();
    eventually(WAIT, "the listener closed", || async { TcpStream::connect(gate.addr).await.is_err().then_some(()) })
        .await;
    echo(&mut s, 64).await; // the tunnel still carries data while draining
    assert!(gate.alive(), "exited with a tunnel open");

    drop(s); // the client ends its session
    eventually(WAIT, "jwtgate exits once the tunnel has closed", || async { (!gate.alive()).then_some(()) }).await;
    eventually(WAIT, "the app's side closed too", || async { (app.tunnels_closed() == 1).then_some(()) }).await;
}
