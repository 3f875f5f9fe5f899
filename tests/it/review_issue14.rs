//! Adversarial review of issue 14's tunnels closing on revocation, HTTPS
//! upstreams and OIDC discovery: each test is one attack or failure class,
//! asserting the safe behaviour beside a positive control.
//!
//! Tunnels: a frame that never ends (a 64-bit length of u64::MAX) cannot
//! hold a revoked tunnel open past the close grace, nor can a client that
//! never reads; a revocation landing
//! while the app is still answering the handshake closes the tunnel as soon
//! as it opens; a subject cut-off closes only the tunnels of tokens issued
//! at or before it; fragmented messages with control frames between the
//! fragments get the close between two frames; many tunnels ended in every
//! way leave nothing registered (seen through the re-check's key count).
//! HTTPS upstreams: a reload that swaps the CA also ends a client
//! connection's own (pinned) upstream connection made under the old trust.
//! Discovery: a redirect is not followed; a huge, deeply nested or
//! wrongly typed document is refused without harm.

use crate::support::idp::{self, Answer, Idp, DISCOVERY_PATH};
use crate::support::token::{claims, Tok};
use crate::support::upstream::{websocket_accept, TlsOptions};
use crate::support::ws::{self, client_frame, Ws, OP_CLOSE};
use crate::support::{eventually, key_path, metric, token, Behaviour, Cfg, Gate, Redis, Relay, Upstream};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ROUTES: &str = "
  - match: { path_prefix: /ws }
    auth: required
  - match: { path_prefix: /api }
    auth: required
";
const WAIT: Duration = Duration::from_secs(10);
const POLICY_VIOLATION: u16 = 1008;
/// upgrade.rs `CLOSE_GRACE` (2 s), with room for a loaded machine.
const GRACE_BOUND: Duration = Duration::from_secs(6);
const CHANNEL: &str = "jwtgate:revocations";
const OP_TEXT: u8 = 0x1;
const OP_CONTINUATION: u8 = 0x0;
const OP_PING: u8 = 0x9;

async fn echo_app() -> Upstream {
    let app = Upstream::spawn().await;
    app.on("/ws", Behaviour::WebSocketEcho);
    app
}

/// An access token of the HMAC issuer for `sub`, issued `ago` seconds ago.
fn access(sub: &str, ago: i64) -> Tok {
    claims().hs256().sub(sub).iat(crate::support::now_unix() - ago)
}

async fn open_tunnels(gate: &Gate) -> Option<f64> {
    metric(&gate.metrics().await, "jwtgate_websocket_tunnels_open", &[])
}

async fn closed_as(gate: &Gate, reason: &str) -> f64 {
    let text = gate.metrics().await;
    metric(&text, "jwtgate_websocket_tunnels_closed_total", &[&format!("reason=\"{reason}\"")]).unwrap_or(0.0)
}

/// Reads `s` until EOF or an error (a reset), within `within`: the bytes.
async fn read_to_end_or_reset(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the connection was still open after {within:?}"));
    got
}

/// A masked client frame with `fin` and `opcode` as given.
fn fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = client_frame(opcode, payload);
    if !fin {
        f[0] &= 0x7f;
    }
    f
}

#[tokio::test]
async fn a_frame_that_never_ends_cannot_hold_a_revoked_tunnel_open() {
    // A client declares a frame of u64::MAX bytes (64-bit length) and sends
    // a few: the echo app mirrors it, so both directions stay inside one
    // frame for ever. No close frame can go in without corrupting it; the
    // tunnel must still end within the close grace after the logout.
    let app = echo_app().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).admin()).await;
    let (victim, bystander) = (access("alice", 5).sign(), access("bob", 5).sign());
    let mut doomed = Ws::open(&gate, "/ws/doomed", &victim).await;
    let mut control = Ws::open(&gate, "/ws/control", &bystander).await;
    doomed.echo(b"first").await;

    let mut endless = vec![0x82, 0x80 | 127];
    endless.extend_from_slice(&u64::MAX.to_be_bytes());
    endless.extend_from_slice(&[1, 2, 3, 4]);
    endless.extend_from_slice(&[0x88; 40]); // payload that looks like close frames
    doomed.send_raw(&endless).await;
    let mut mirrored = vec![0u8; endless.len()];
    tokio::time::timeout(WAIT, doomed.s.read_exact(&mut mirrored)).await.expect("echo in time").expect("echo");
    assert_eq!(mirrored, endless, "relayed untouched while live");

    assert_eq!(gate.logout(&victim).await.status, 200, "logout");
    let revoked_at = Instant::now();
    doomed.send_raw(&[0x88; 40]).await; // more of the same endless frame
    let after = read_to_end_or_reset(&mut doomed.s, GRACE_BOUND).await;
    let took = revoked_at.elapsed();
    assert!(took < GRACE_BOUND, "tunnel held open {took:?} by a frame that never ends");
    assert!(after.iter().all(|&b| b == 0x88), "only the endless frame's own payload, no frame cut into it: {after:?}");
    eventually(WAIT, "the app's side dropped too", || async { (app.tunnels_closed() >= 1).then_some(()) }).await;
    eventually(WAIT, "counted as revoked, one tunnel left", || async {
        (closed_as(&gate, "revoked").await == 1.0 && open_tunnels(&gate).await == Some(1.0)).then_some(())
    })
    .await;
    // Positive control: the other token's tunnel is untouched.
    control.echo(b"still open").await;
}

#[tokio::test]
async fn fragments_with_control_frames_between_them_get_the_close_at_a_frame_boundary() {
    // A fragmented text message with a ping and a 0-length continuation
    // between its fragments, a non-minimal 64-bit length on a short frame,
    // and the logout landing mid-fragment: everything before the close must
    // parse as whole frames on both sides, the close right after the
    // fragment that was in flight.
    let app = echo_app().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).admin()).await;
    let victim = access("alice", 5).sign();
    let mut doomed = Ws::open(&gate, "/ws/doomed", &victim).await;
    let mut sent = Vec::new();
    let mut long_short = vec![0x00, 0x80 | 127]; // continuation, 64-bit length 3
    long_short.extend_from_slice(&3u64.to_be_bytes());
    long_short.extend_from_slice(&[0, 0, 0, 0]);
    long_short.extend_from_slice(b"abc");
    for f in [
        fragment(false, OP_TEXT, b"part one "),
        client_frame(OP_PING, b""),
        fragment(false, OP_CONTINUATION, b""),
        long_short,
    ] {
        doomed.send_raw(&f).await;
        sent.extend(f);
    }
    let in_flight = fragment(false, OP_CONTINUATION, &[0x7e; 200]);
    let (head, tail) = in_flight.split_at(9); // inside the 16-bit length's mask
    doomed.send_raw(head).await;
    let mut echoed = vec![0u8; sent.len() + head.len()];
    tokio::time::timeout(WAIT, doomed.s.read_exact(&mut echoed)).await.expect("echo in time").expect("echo");

    assert_eq!(gate.logout(&victim).await.status, 200, "logout");
    eventually(WAIT, "the gate acted on it", || async { gate.logs().contains("its token was revoked").then_some(()) })
        .await;
    doomed.send_raw(tail).await;
    doomed.send_raw(&fragment(true, OP_CONTINUATION, b"never relayed")).await;
    let rest = read_to_end_or_reset(&mut doomed.s, WAIT).await;
    echoed.extend(rest);
    let frames = ws::parse_all(&echoed);
    let ops: Vec<(bool, u8, usize)> = frames.iter().map(|f| (f.fin, f.opcode, f.payload.len())).collect();
    assert_eq!(
        ops,
        [(false, OP_TEXT, 9), (true, OP_PING, 0), (false, 0, 0), (false, 0, 3), (false, 0, 200), (true, OP_CLOSE, 15)],
        "client side: the fragments whole, then the close"
    );
    assert_eq!(frames[5].close_code(), Some(POLICY_VIOLATION));
    assert!(!frames[5].masked);
    eventually(WAIT, "the app's side closed", || async { (app.tunnels_closed() >= 1).then_some(()) }).await;
    let to_app = ws::parse_all(app.tunnel_bytes().last().expect("the tunnel's bytes"));
    assert_eq!(to_app.len(), 6, "{to_app:?}");
    assert_eq!(to_app[4].payload, [0x7e; 200], "the fragment in flight, whole");
    assert!(to_app[5].masked && to_app[5].close_code() == Some(POLICY_VIOLATION), "{:?}", to_app[5]);
    assert!(!echoed.windows(13).any(|w| w == b"never relayed"), "nothing after the close");
}

#[tokio::test]
async fn a_subject_cut_off_closes_only_tunnels_of_tokens_issued_at_or_before_it() {
    let app = echo_app().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).admin()).await;
    let now = crate::support::now_unix();
    let cut_off = now - 50;
    let old = claims().hs256().sub("alice").iat(now - 100).sign();
    let at = claims().hs256().sub("alice").iat(cut_off).sign();
    let later = claims().hs256().sub("alice").iat(now - 5).sign();
    let (mut t_old, mut t_at, mut t_later) = (
        Ws::open(&gate, "/ws/old", &old).await,
        Ws::open(&gate, "/ws/at", &at).await,
        Ws::open(&gate, "/ws/later", &later).await,
    );
    for t in [&mut t_old, &mut t_at, &mut t_later] {
        t.echo(b"hi").await;
    }
    let body = json!({ "iss": token::HS_ISSUER, "sub": "alice", "before": cut_off });
    let rsp = gate.admin_send("POST", "/revocations", Some(body)).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(t_old.closed_by_gate(WAIT).await, POLICY_VIOLATION, "issued before the cut-off");
    assert_eq!(t_at.closed_by_gate(WAIT).await, POLICY_VIOLATION, "issued at the cut-off");
    t_later.echo(b"still open").await;
    assert_eq!(gate.get("/api/later", &later).await.status, 200, "the later token is live");
    assert_eq!(gate.get("/api/old", &old).await.status, 401, "positive control: the old one is refused");
    eventually(WAIT, "two revoked, one open", || async {
        (closed_as(&gate, "revoked").await == 2.0 && open_tunnels(&gate).await == Some(1.0)).then_some(())
    })
    .await;
}

/// A WebSocket app on a raw socket: it tells `got_head` when a handshake
/// head arrived, answers 101 only once `release` is sent, then records
/// what it receives until EOF into `received`.
struct HeldApp {
    url: String,
    got_head: tokio::sync::mpsc::Receiver<()>,
    release: tokio::sync::mpsc::Sender<()>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn held_app() -> HeldApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (head_tx, got_head) = tokio::sync::mpsc::channel(8);
    let (release, release_rx) = tokio::sync::mpsc::channel::<()>(8);
    let release_rx = Arc::new(tokio::sync::Mutex::new(release_rx));
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (head_tx, release_rx, store) = (head_tx.clone(), release_rx.clone(), store.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let key = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("sec-websocket-key: ").or_else(|| l.strip_prefix("Sec-WebSocket-Key: "))
                    })
                    .expect("a key")
                    .trim()
                    .to_owned();
                let _ = head_tx.send(()).await;
                let _ = release_rx.lock().await.recv().await;
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {}\r\n\r\n",
                    websocket_accept(&key)
                );
                if s.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                let mut got = buf.split_off(end);
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            got.extend_from_slice(&chunk[..n]);
                            // Echo, so the client sees the tunnel work.
                            if s.write_all(&chunk[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                store.lock().expect("lock").push(got);
            });
        }
    });
    HeldApp { url, got_head, release, received }
}

#[tokio::test]
async fn a_revocation_while_the_app_answers_the_handshake_closes_the_tunnel_as_it_opens() {
    // The token is checked, the handshake goes to the app, and the logout
    // lands before the app's 101: nothing was open to close yet, so the
    // tunnel must be closed the moment it opens, not live on.
    let mut app = held_app().await;
    let gate = Gate::spawn(&Cfg::to_url(&app.url).routes(ROUTES).admin()).await;
    let victim = access("alice", 5).sign();
    let (mut raced, ()) = tokio::join!(Ws::open(&gate, "/ws/raced", &victim), async {
        tokio::time::timeout(WAIT, app.got_head.recv()).await.expect("the handshake reached the app");
        assert_eq!(gate.logout(&victim).await.status, 200, "logout while the app holds the 101");
        app.release.send(()).await.expect("release");
    });
    assert_eq!(raced.closed_by_gate(WAIT).await, POLICY_VIOLATION, "closed as soon as it opened");
    drop(raced);
    let to_app =
        eventually(WAIT, "the app's side ended", || async { app.received.lock().expect("lock").first().cloned() })
            .await;
    let frames = ws::parse_all(&to_app);
    assert_eq!(frames.len(), 1, "only the close reached the app: {frames:?}");
    assert!(frames[0].masked && frames[0].close_code() == Some(POLICY_VIOLATION), "{frames:?}");

    // Positive control: the same race without a logout stays open.
    let bystander = access("bob", 5).sign();
    let (mut fine, ()) = tokio::join!(Ws::open(&gate, "/ws/fine", &bystander), async {
        tokio::time::timeout(WAIT, app.got_head.recv()).await.expect("the second handshake reached the app");
        app.release.send(()).await.expect("release");
    });
    fine.echo(b"open").await;
    assert_eq!(closed_as(&gate, "revoked").await, 1.0);
}

#[tokio::test]
async fn tunnels_ended_every_way_leave_nothing_registered() {
    // The registry is only observable through the re-check after a lost
    // subscription, which logs how many keys it re-read: with one tunnel
    // (jti + sub) left open out of many, it must be 2.
    let (redis, app) = (Redis::spawn().await, echo_app().await);
    app.on("/api/refused", Behaviour::Status(426));
    app.on("/api/liar", Behaviour::WebSocketWrongAccept);
    let relay = Relay::spawn(redis.addr()).await;
    let cfg = Cfg {
        redis_url: Some(relay.url()),
        redis_timeout: "500ms".into(),
        not_revoked_ttl: "300s".into(),
        ..Cfg::new(&app)
    };
    let a = Gate::spawn(&cfg.routes(ROUTES).admin()).await;
    redis.await_subscribers(CHANNEL, 1).await;
    eventually(WAIT, "A subscribed through the relay", || async { (relay.live_subscriptions() == 1).then_some(()) })
        .await;

    for i in 0..40 {
        // Closed by the client.
        let mut t = Ws::open(&a, "/ws/brief", &access(&format!("u{i}"), 5).sign()).await;
        t.echo(b"x").await;
        drop(t);
        // Revoked.
        let tok = access(&format!("r{i}"), 5).sign();
        let mut t = Ws::open(&a, "/ws/revoked", &tok).await;
        assert_eq!(a.logout(&tok).await.status, 200);
        assert_eq!(t.closed_by_gate(WAIT).await, POLICY_VIOLATION);
        // Handshakes the app refused, or answered with a lie (502).
        let tok = access(&format!("n{i}"), 5).sign();
        let refused = a.raw(handshake("/api/refused", &tok).as_bytes()).await;
        assert_eq!(refused.status, 426);
        let liar = a.raw(handshake("/api/liar", &tok).as_bytes()).await;
        assert_eq!(liar.status, 502);
    }
    let keep = access("keeper", 5).sign();
    let mut kept = Ws::open(&a, "/ws/kept", &keep).await;
    kept.echo(b"x").await;
    eventually(WAIT, "every other tunnel ended", || async { (open_tunnels(&a).await == Some(1.0)).then_some(()) })
        .await;

    assert_eq!(relay.silence_subscriptions(), 1, "A's subscription silenced");
    let line = eventually(Duration::from_secs(20), "A re-checks its open tunnels", || async {
        a.logs().lines().find(|l| l.contains("re-checked open tunnels")).map(str::to_owned)
    })
    .await;
    assert!(line.contains("keys=2") && line.contains("closed=0"), "one tunnel's keys, nothing else: {line}");
    kept.echo(b"still open").await;
    // Positive control: the one registered is still the one a logout closes.
    assert_eq!(a.logout(&keep).await.status, 200);
    assert_eq!(kept.closed_by_gate(WAIT).await, POLICY_VIOLATION);
}

fn handshake(path: &str, token: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: g\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
}

/// `upstream:` of a gate in front of a TLS `app`, with `ca_file` at `ca`.
fn tls_yaml(app: &Upstream, ca: &str) -> String {
    let yaml = Cfg::new(app).routes(ROUTES).yaml();
    let with = yaml.replacen("  connect_timeout: 2s\n", &format!("  connect_timeout: 2s\n  ca_file: {ca}\n"), 1);
    assert_ne!(with, yaml, "ca_file inserted");
    with
}

#[tokio::test]
async fn a_reload_that_swaps_the_ca_ends_pinned_connections_made_under_the_old_trust() {
    let app = Upstream::spawn_tls(TlsOptions::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("upstream-ca.pem");
    std::fs::copy(key_path("redis-tls/ca.pem"), &ca).expect("copy the CA");
    let path = dir.path().join("jwtgate.yaml");
    std::fs::write(&path, tls_yaml(&app, "upstream-ca.pem")).expect("write config");
    let gate = Gate::spawn_file(&path).await;

    // A keep-alive client: request 2 and 3 go over its own pinned upstream connection.
    let stream = TcpStream::connect(gate.addr).await.expect("connect");
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let tok = token::mint();
    for path in ["/api/r0", "/api/r1", "/api/r2"] {
        send.ready().await.expect("ready");
        let req = hyper::Request::get(path)
            .header("host", "api.example")
            .header("authorization", format!("Bearer {tok}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let rsp = tokio::time::timeout(WAIT, send.send_request(req)).await.expect("in time").expect("rsp");
        assert_eq!(rsp.status(), 200, "{path}");
        let _ = http_body_util::BodyExt::collect(rsp.into_body()).await;
    }
    assert_eq!(app.one("/api/r1").conn, app.one("/api/r2").conn, "pinned");

    std::fs::copy(key_path("tls-rotated/ca.pem"), &ca).expect("swap the CA");
    gate.sighup();
    eventually(WAIT, "the reload", || async { gate.logs().contains("config reloaded").then_some(()) }).await;
    for path in ["/api/after-1", "/api/after-2"] {
        send.ready().await.expect("ready");
        let req = hyper::Request::get(path)
            .header("host", "api.example")
            .header("authorization", format!("Bearer {tok}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .expect("request");
        let rsp = tokio::time::timeout(WAIT, send.send_request(req)).await.expect("in time").expect("rsp");
        assert_eq!(rsp.status(), 502, "{path}: the old trust's pinned connection was used");
        let _ = http_body_util::BodyExt::collect(rsp.into_body()).await;
        assert_eq!(app.seen(path), 0, "{path} reached the app");
    }
    // Positive control: a new connection is refused too, and the old CA back makes it work.
    assert_eq!(gate.get("/api/fresh", &token::mint()).await.status, 502);
    std::fs::copy(key_path("redis-tls/ca.pem"), &ca).expect("restore the CA");
    gate.sighup();
    eventually(WAIT, "the second reload", || async {
        (gate.logs().matches("config reloaded").count() == 2).then_some(())
    })
    .await;
    assert_eq!(gate.get("/api/restored", &token::mint()).await.status, 200);
}

/// A gate whose one issuer has `discovery: true`.
async fn discovery_gate(app: &Upstream, issuer: &str) -> Gate {
    let yaml = format!(
        "listen: 127.0.0.1:0
upstream:
  url: {app}
jwt:
  jwks: {{ min_refresh: 200ms, max_refresh: 1h, unknown_kid_cooldown: 200ms }}
  issuers:
    - issuer: \"{issuer}\"
      audiences: [api]
      algorithms: [RS256]
      discovery: true
revocation:
  store: memory
admin:
  listen: 127.0.0.1:0
  insecure_token: \"{token}\"
routes:
  - match: {{ path_prefix: /api }}
    auth: required
",
        app = app.url(),
        token = crate::support::config::ADMIN_TOKEN,
    );
    let mut gate = Gate::spawn_yaml(&yaml).await;
    gate.admin_token = Some(crate::support::config::ADMIN_TOKEN.into());
    gate
}

fn rsa(iss: &str) -> String {
    claims().iss(iss).jwks_rs256().header("kid", json!("jwks-rsa")).sign()
}

/// Waits until `idp` served the document `n` times.
async fn documents(idp: &Idp, n: usize) {
    eventually(WAIT, &format!("{n} document fetches"), || async { (idp.hits_on(DISCOVERY_PATH) >= n).then_some(()) })
        .await;
}

#[tokio::test]
async fn hostile_discovery_documents_are_refused_and_the_gate_keeps_serving() {
    let app = Upstream::spawn().await;
    let idp = Idp::spawn().await;
    let iss = idp.issuer();
    let jwks = idp.url_of("/keys");
    idp.route("/keys", Answer::Set(idp::jwks()));
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let huge = json!({ "issuer": iss, "jwks_uri": jwks, "padding": "x".repeat(2 << 20) }).to_string();
    let cases = [
        ("deep", deep),
        ("huge", huge),
        ("issuer a number", json!({ "issuer": 1, "jwks_uri": jwks }).to_string()),
        ("jwks_uri an array", json!({ "issuer": iss, "jwks_uri": [jwks] }).to_string()),
        ("an array", json!([{ "issuer": iss, "jwks_uri": jwks }]).to_string()),
        ("issuer differs in case", json!({ "issuer": iss.to_uppercase(), "jwks_uri": jwks }).to_string()),
        ("issuer with a trailing space", json!({ "issuer": format!("{iss} "), "jwks_uri": jwks }).to_string()),
    ];
    let gate = discovery_gate(&app, &iss).await;
    for (what, document) in cases {
        let before = idp.hits_on(DISCOVERY_PATH);
        idp.route(DISCOVERY_PATH, Answer::Set(document));
        documents(&idp, before + 1).await;
        let rsp = gate.get("/api/x", &rsa(&iss)).await;
        assert_eq!(rsp.status, 401, "{what}: {}", rsp.text());
        assert!(gate.alive(), "{what}: the gate died");
        assert_eq!(idp.hits_on("/keys"), 0, "{what}: keys fetched from a refused document");
    }
    assert_eq!(app.total(), 0, "a token reached the app");
    // Positive control: a good document, and the same token passes.
    idp.discovery(&iss, &jwks);
    eventually(WAIT, "the good document is used", || async {
        (gate.get("/api/ok", &rsa(&iss)).await.status == 200).then_some(())
    })
    .await;
    assert_eq!(app.seen("/api/ok"), 1);
}

#[tokio::test]
async fn a_redirected_discovery_document_is_not_followed() {
    // The issuer's address answers 302 to a document (naming that issuer)
    // on another server: following it would let whoever controls the
    // redirect choose the keys. The target is counted: it is never asked.
    let app = Upstream::spawn().await;
    let idp = Idp::spawn().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let issuer = format!("http://{}", listener.local_addr().expect("addr"));
    idp.route("/keys", Answer::Set(idp::jwks()));
    idp.discovery(&issuer, &idp.url_of("/keys"));
    let target = idp.url_of(DISCOVERY_PATH);
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = asked.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let target = target.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let rsp = format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(rsp.as_bytes()).await;
            });
        }
    });
    let gate = discovery_gate(&app, &issuer).await;
    eventually(WAIT, "the issuer's address asked twice", || async {
        (asked.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    let rsp = gate.get("/api/x", &rsa(&issuer)).await;
    assert_eq!(rsp.status, 401, "{}", rsp.text());
    assert_eq!(app.total(), 0);
    assert_eq!(idp.hits_on(DISCOVERY_PATH), 0, "the redirect was followed");
    assert_eq!(idp.hits_on("/keys"), 0);
    assert!(gate.logs().contains("302"), "the refusal says why:\n{}", gate.logs());
    // Positive control: the same document served at the issuer's own
    // address (the IdP as issuer) is used.
    let direct = discovery_gate(&app, &idp.issuer()).await;
    idp.discovery(&idp.issuer(), &idp.url_of("/keys"));
    eventually(WAIT, "the direct document is used", || async {
        (direct.get("/api/ok", &rsa(&idp.issuer())).await.status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_client_that_never_reads_cannot_hold_a_revoked_tunnel_open() {
    // The client writes and never reads: the echo fills every buffer back
    // to it, so both relays are stuck writing when the logout lands. The
    // close frames can never be written; the tunnel must still be dropped
    // within the close grace, on the app's side too.
    let app = echo_app().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).admin()).await;
    let (victim, bystander) = (access("alice", 5).sign(), access("bob", 5).sign());
    let mut stuck = Ws::open(&gate, "/ws/stuck", &victim).await;
    let mut control = Ws::open(&gate, "/ws/control", &bystander).await;
    let frame = client_frame(0x2, &[0x55; 64 * 1024]);
    let mut full = false;
    for _ in 0..4096 {
        // Bounded: at most 256 MiB before the buffers must be full.
        if tokio::time::timeout(Duration::from_millis(500), stuck.s.write_all(&frame)).await.is_err() {
            full = true;
            break;
        }
    }
    assert!(full, "the buffers never filled: the client's writes never blocked");
    assert_eq!(gate.logout(&victim).await.status, 200, "logout");
    let revoked_at = Instant::now();
    eventually(GRACE_BOUND, "the app's side dropped", || async { (app.tunnels_closed() >= 1).then_some(()) }).await;
    assert!(revoked_at.elapsed() < GRACE_BOUND, "held {:?}", revoked_at.elapsed());
    eventually(WAIT, "counted as revoked, one tunnel left", || async {
        (closed_as(&gate, "revoked").await == 1.0 && open_tunnels(&gate).await == Some(1.0)).then_some(())
    })
    .await;
    control.echo(b"still open").await;
    drop(stuck);
}
