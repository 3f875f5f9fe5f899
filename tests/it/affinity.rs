//! Upstream affinity: a keep-alive client connection gets an upstream
//! connection of its own from its second request, and the number of those
//! is bounded: past `affinity_max` requests share the pool, an idle client
//! hands its connection back, and nothing idle keeps one of the app's
//! connections past `pool_idle_timeout`.

use crate::support::gate::{cli, write_config};
use crate::support::token;
use crate::support::upstream::Behaviour;
use crate::support::{Cfg, Gate, Upstream};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use std::time::Duration;

/// A gate whose upstream section has these extra fields.
async fn gate_with(app: &Upstream, upstream_fields: &str) -> Gate {
    gate_on(Cfg::new(app), upstream_fields).await
}

async fn gate_on(cfg: Cfg, upstream_fields: &str) -> Gate {
    let yaml = cfg.yaml();
    let fields: String = upstream_fields.lines().map(|l| format!("  {}\n", l.trim())).collect();
    let yaml = yaml.replacen("  connect_timeout: 2s\n", &format!("  connect_timeout: 2s\n{fields}"), 1);
    assert!(yaml.contains(upstream_fields.lines().next().unwrap_or_default().trim()), "{yaml}");
    Gate::spawn_yaml(&yaml).await
}

/// One keep-alive HTTP/1.1 connection to the gate.
struct Client {
    send: SendRequest<Empty<Bytes>>,
    token: String,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(gate: &Gate) -> Client {
        let stream = tokio::net::TcpStream::connect(gate.addr).await.expect("connect to the gate");
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake with the gate");
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Client { send, token: token::mint(), task }
    }

    /// GET `path` on this connection (the response head).
    async fn head(&mut self, path: &str) -> hyper::Response<hyper::body::Incoming> {
        self.send.ready().await.expect("gate connection ready");
        let req = hyper::Request::get(path)
            .header("host", "api.example")
            .header("authorization", format!("Bearer {}", self.token))
            .body(Empty::new())
            .expect("request");
        self.send.send_request(req).await.expect("response from the gate")
    }

    /// GET `path` on this connection; the upstream connection it arrived
    /// on, as `app` saw it.
    async fn get(&mut self, app: &Upstream, path: &str) -> usize {
        let rsp = self.head(path).await;
        assert_eq!(rsp.status(), 200, "{path}");
        rsp.into_body().collect().await.expect("body");
        let seen = app.requests().into_iter().rev().find(|s| s.target == path).expect("the app saw the request");
        assert_eq!(seen.header("host"), Some("api.example"), "the client's Host, origin-form target");
        seen.conn
    }

    fn close(self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_client_connection_keeps_one_upstream_connection_from_its_second_request() {
    let app = Upstream::spawn().await;
    let gate = gate_with(&app, "affinity_max: 4").await;
    let mut client = Client::connect(&gate).await;
    let first = client.get(&app, "/api/r0").await;
    let mut later = Vec::new();
    for i in 1..20 {
        later.push(client.get(&app, &format!("/api/r{i}")).await);
    }
    assert!(later.iter().all(|&c| c == later[0]), "one upstream connection for requests 2..20: {later:?}");
    assert_ne!(first, later[0], "the first request took the pool, the second opened the client's own");
    assert_eq!(app.connections_accepted(), 2);
    // A second client gets a connection of its own, not the first's.
    let mut other = Client::connect(&gate).await;
    other.get(&app, "/api/o0").await;
    let theirs = other.get(&app, "/api/o1").await;
    assert!(theirs != later[0], "each client connection its own upstream connection");
    assert_eq!(client.get(&app, "/api/r20").await, later[0], "and the first keeps its own");
}

#[tokio::test]
async fn past_affinity_max_clients_share_the_pool_and_idle_ones_hold_no_app_connection() {
    let app = Upstream::spawn().await;
    let gate = gate_with(&app, "affinity_max: 2\npool_max_idle: 2\npool_idle_timeout: 500ms").await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(Client::connect(&gate).await);
    }
    // Three requests each, round robin: every client is pinned or refused a pin.
    let mut conns = vec![Vec::new(); clients.len()];
    for round in 0..3 {
        for (i, client) in clients.iter_mut().enumerate() {
            conns[i].push(client.get(&app, &format!("/api/c{i}/r{round}")).await);
        }
    }
    // A pinned client's second and third requests came on a connection no
    // other client's request used.
    let used_by_others = |i: usize, conn: usize| (0..conns.len()).any(|j| j != i && conns[j].contains(&conn));
    let pinned: Vec<usize> =
        (0..clients.len()).filter(|&i| conns[i][1] == conns[i][2] && !used_by_others(i, conns[i][1])).collect();
    assert_eq!(pinned.len(), 2, "affinity_max clients are pinned (positive control): {conns:?}");
    // Only the two pinned connections are any client's alone; the rest
    // came from the pool, which is bounded by pool_max_idle at rest.
    let open = app.connections_open();
    assert!(open <= 2 + 2, "affinity_max + pool_max_idle upstream connections at most, {open} open: {conns:?}");
    assert!(app.connections_accepted() <= 2 + 2 + 1, "{} opened: {conns:?}", app.connections_accepted());
    // Eight client connections stay open and idle: the pinned ones are
    // handed back after affinity_idle_timeout (1s), and parked and pooled
    // ones closed after pool_idle_timeout.
    let left = app.until_open_at_most(0, Duration::from_secs(5)).await;
    assert_eq!(left, 0, "idle clients hold none of the app's connections");
    // Still served: a fresh upstream connection for a request after that.
    for (i, client) in clients.iter_mut().enumerate() {
        client.get(&app, &format!("/api/c{i}/after")).await;
    }
}

#[tokio::test]
async fn an_idle_or_closed_client_hands_its_upstream_connection_to_the_next() {
    let app = Upstream::spawn().await;
    let gate = gate_with(&app, "affinity_max: 1\naffinity_idle_timeout: 200ms").await;
    let mut a = Client::connect(&gate).await;
    a.get(&app, "/api/a0").await;
    let a_conn = a.get(&app, "/api/a1").await;
    // The cap is reached: b's requests share the pool while a holds it.
    let mut b = Client::connect(&gate).await;
    b.get(&app, "/api/b0").await;
    assert_ne!(b.get(&app, "/api/b1").await, a_conn, "a's connection is a's while it is in use");
    // Once a has been idle for 200 ms, its connection is parked and b takes it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut i = 2;
    loop {
        if b.get(&app, &format!("/api/b{i}")).await == a_conn {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "b never got a's parked connection");
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // b keeps it now; when b closes, the next client gets it in turn.
    assert_eq!(b.get(&app, "/api/b-kept").await, a_conn);
    b.close();
    let mut c = Client::connect(&gate).await;
    c.get(&app, "/api/c0").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut i = 1;
    while c.get(&app, &format!("/api/c{i}")).await != a_conn {
        assert!(tokio::time::Instant::now() < deadline, "c never got b's parked connection");
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.connections_accepted() <= 3, "a's, and the pool's: {}", app.connections_accepted());
    a.close();
}

#[tokio::test]
async fn an_upstream_that_closes_its_connection_gets_a_new_one() {
    let app = Upstream::spawn().await;
    app.on("/api/close", Behaviour::Close);
    let gate = gate_with(&app, "affinity_max: 4").await;
    let mut client = Client::connect(&gate).await;
    client.get(&app, "/api/r0").await;
    let pinned = client.get(&app, "/api/r1").await;
    assert_eq!(client.get(&app, "/api/close/1").await, pinned, "the close came on the pinned connection");
    // Every later request is still served, on a new connection.
    let next = client.get(&app, "/api/r2").await;
    assert_ne!(next, pinned);
    assert_eq!(client.get(&app, "/api/r3").await, next, "pinned again");
    assert_eq!(app.until_open_at_most(2, Duration::from_secs(2)).await, 2, "the closed one is gone");
}

#[tokio::test]
async fn affinity_max_zero_sends_every_request_through_the_pool_and_bad_values_are_refused() {
    let app = Upstream::spawn().await;
    let gate = gate_with(&app, "affinity_max: 0\npool_max_idle: 1").await;
    let (mut a, mut b) = (Client::connect(&gate).await, Client::connect(&gate).await);
    for i in 0..5 {
        a.get(&app, &format!("/api/a{i}")).await;
        b.get(&app, &format!("/api/b{i}")).await;
    }
    assert_eq!(app.connections_accepted(), 1, "two sequential clients share the one pooled connection");
    let bad = "  connect_timeout: 2s\n  affinity_idle_timeout: 0s\n";
    let file = write_config(&Cfg::new(&app).yaml().replacen("  connect_timeout: 2s\n", bad, 1));
    let out = cli(&["check", "-c", &file.path().display().to_string()]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("upstream.affinity_idle_timeout"), "{err}");
    assert!(err.contains(":6:3: upstream.affinity_idle_timeout"), "the line of the field: {err}");
}

#[tokio::test]
async fn a_response_still_streaming_keeps_its_connection_past_the_idle_timeout() {
    let app = Upstream::spawn().await;
    const SIZE: u64 = 32 << 20;
    app.on("/api/big", Behaviour::Stream(SIZE));
    let gate = gate_with(&app, "affinity_idle_timeout: 100ms").await;
    let mut client = Client::connect(&gate).await;
    client.get(&app, "/api/r0").await;
    let pinned = client.get(&app, "/api/r1").await;
    let rsp = client.head("/api/big").await;
    assert_eq!(rsp.status(), 200);
    // A slow reader (the behaviour under test, not a wait for an event):
    // the body is stalled far past the idle timeout, with no new request.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let body = rsp.into_body().collect().await.expect("the whole body").to_bytes();
    assert_eq!(body.len() as u64, SIZE, "a busy connection is never handed back");
    assert_eq!(client.get(&app, "/api/r2").await, pinned, "and stays pinned");
}

#[tokio::test]
async fn a_pinned_request_without_a_response_head_in_time_gets_504_and_the_next_a_new_connection() {
    let app = Upstream::spawn().await;
    app.on("/api/slow", Behaviour::Sleep(Duration::from_secs(5)));
    let cfg = Cfg { upstream_timeout: "300ms".into(), ..Cfg::new(&app) };
    let gate = gate_on(cfg, "affinity_max: 4").await;
    let mut client = Client::connect(&gate).await;
    client.get(&app, "/api/r0").await;
    let pinned = client.get(&app, "/api/r1").await;
    let started = std::time::Instant::now();
    let rsp = client.head("/api/slow").await;
    let took = started.elapsed();
    assert_eq!(rsp.status(), 504);
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
    assert_eq!(app.requests().iter().find(|s| s.target == "/api/slow").map(|s| s.conn), Some(pinned));
    // The timed-out connection is closed; the client's next request is served.
    let next = client.get(&app, "/api/r2").await;
    assert_ne!(next, pinned);
    assert_eq!(client.get(&app, "/api/r3").await, next);
}

#[tokio::test]
async fn a_request_without_host_gets_the_upstream_authority_on_the_pinned_connection_too() {
    let app = Upstream::spawn().await;
    let gate = gate_with(&app, "affinity_max: 4").await;
    let token = token::mint();
    let mut stream = tokio::net::TcpStream::connect(gate.addr).await.expect("connect to the gate");
    for i in 0..3 {
        // HTTP/1.0 keeps the connection open when asked, and needs no Host.
        let req =
            format!("GET /api/no-host/{i} HTTP/1.0\r\nConnection: keep-alive\r\nAuthorization: Bearer {token}\r\n\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut stream, req.as_bytes()).await.expect("send");
        let rsp = crate::support::gate::read_response(&mut stream).await.expect("a response");
        assert_eq!(rsp.status, 200, "request {i}");
    }
    let seen: Vec<_> = (0..3).map(|i| app.one(&format!("/api/no-host/{i}"))).collect();
    assert_ne!(seen[0].conn, seen[1].conn, "the second request went over the client's own connection");
    let authority = app.addr.to_string();
    for s in &seen {
        assert_eq!(s.header("host"), Some(authority.as_str()), "{}: as the pool sends it", s.target);
    }
}
