//! An upstream that speaks HTTP/1.0 (an old app server, a CGI gateway)
//! must not cost the client its HTTP/1.1 keep-alive connection: jwtgate
//! relays the answer as HTTP/1.1 (chunked when the upstream delimited the
//! body by closing), and the client's next request goes over the same
//! connection.

use crate::support::gate::read_response;
use crate::support::{token, Cfg, Gate};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.0 app: reads one request head per connection, answers
/// `HTTP/1.0 200` with `response` after the head, then closes. Counts
/// the requests it answered.
async fn http10_app(extra_headers: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut buf = [0u8; 1024];
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&head).split(' ').nth(1).unwrap_or("?").to_owned();
                count.fetch_add(1, Ordering::SeqCst);
                let body = format!("hello from {path}");
                let rsp = format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n{extra_headers}\r\n{body}");
                let _ = conn.write_all(rsp.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (addr, served)
}

async fn gate_before(app: SocketAddr) -> Gate {
    let mut cfg = Cfg::to_url(&format!("http://{app}"));
    cfg.routes = "\n  - match: { path_prefix: / }\n    auth: required\n".into();
    Gate::spawn(&cfg).await
}

async fn three_requests_on_one_connection(gate: &Gate, served: &AtomicUsize) {
    let token = token::mint();
    let mut client = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    for i in 0..3 {
        let req = format!("GET /r{i} HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer {token}\r\n\r\n");
        client.write_all(req.as_bytes()).await.expect("the connection is still open");
        let rsp =
            read_response(&mut client).await.unwrap_or_else(|e| panic!("request {i} on the same connection: {e}"));
        assert_eq!(rsp.status, 200, "request {i}");
        assert_eq!(rsp.text(), format!("hello from /r{i}"), "request {i}: the whole body");
        assert_ne!(rsp.header("connection").as_deref(), Some("close"), "request {i}");
    }
    assert_eq!(served.load(Ordering::SeqCst), 3, "each request reached the app");
}

#[tokio::test]
async fn a_close_delimited_http10_answer_keeps_the_client_connection() {
    let (app, served) = http10_app("").await;
    let gate = gate_before(app).await;
    three_requests_on_one_connection(&gate, &served).await;
}

#[tokio::test]
async fn a_sized_http10_answer_keeps_the_client_connection() {
    let (app, served) = http10_app("Content-Length: 13\r\n").await;
    let gate = gate_before(app).await;
    // "hello from /rN" is 14 bytes: the app's own length cuts it to 13.
    let token = token::mint();
    let mut client = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    for i in 0..2 {
        let req = format!("GET /r{i} HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer {token}\r\n\r\n");
        client.write_all(req.as_bytes()).await.expect("the connection is still open");
        let rsp = read_response(&mut client).await.unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!((rsp.status, rsp.text()), (200, format!("hello from /r{i}")[..13].to_owned()), "request {i}");
    }
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

/// Control: an HTTP/1.0 client still gets an HTTP/1.0 answer (and its
/// connection closed, as it did not ask for keep-alive).
#[tokio::test]
async fn an_http10_client_still_gets_http10() {
    let (app, served) = http10_app("").await;
    let gate = gate_before(app).await;
    let token = token::mint();
    let mut client = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    let req = format!("GET /old HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n");
    client.write_all(req.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    client.read_to_end(&mut all).await.unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    assert!(text.ends_with("hello from /old"), "{text}");
    assert_eq!(served.load(Ordering::SeqCst), 1);
}
