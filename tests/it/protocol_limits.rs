//! Header limits, the same on both protocols: at most 100 fields, and a
//! header list below 64 KiB as RFC 9113 §6.5.2 measures it (name, value
//! and 32 octets per field). HTTP/1.1: hyper counts lines and bounds the
//! raw head by its read buffer, the gate measures what hyper parsed.
//! HTTP/2: the gate counts (h2 does not; split cookies count as one), h2
//! refuses an oversized list itself, by the same measure. Every refusal is
//! 431 and reaches nothing upstream.

use crate::support::gate::{empty, read_response};
use crate::support::h2raw::{self, Outcome, H2};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const LIMIT: usize = 64 * 1024;

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    (app, gate)
}

/// `n` fields `x-f-<i>: <value>`.
fn fields(n: usize, value: &str) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("x-f-{i:02}"), value.to_owned())).collect()
}

/// A raw HTTP/1.1 GET with `Host` and `fields` (so `fields.len() + 1` fields).
fn h1_get(path: &str, fields: &[(String, String)]) -> Vec<u8> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: g\r\n");
    for (name, value) in fields {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// A GET over HTTP/2 (h2c prior knowledge, hyper's client) with `fields`.
async fn h2_get(gate: &Gate, path: &str, fields: &[(String, String)]) -> (u16, Bytes) {
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let mut req = gate.req("GET", path);
    for (name, value) in fields {
        req = req.header(name.as_str(), value.as_str());
    }
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req.body(empty()).unwrap()))
        .await
        .expect("h2 response in time")
        .expect("h2 response");
    assert_eq!(rsp.version(), hyper::Version::HTTP_2);
    let status = rsp.status().as_u16();
    (status, rsp.into_body().collect().await.unwrap().to_bytes())
}

#[track_caller]
fn assert_forwarded_with(app: &Upstream, path: &str, sent: &[(String, String)]) {
    let seen = app.one(path);
    for (name, value) in sent {
        assert_eq!(seen.header(name), Some(value.as_str()), "{path}: {name} not forwarded");
    }
}

#[tokio::test]
async fn http1_more_than_100_header_fields_is_431_and_never_reaches_the_upstream() {
    let (app, gate) = fixture().await;
    for n in [98, 99] {
        let path = format!("/public/h1-{}", n + 1);
        let sent = fields(n, "v");
        let rsp = gate.raw(&h1_get(&path, &sent)).await;
        assert_eq!(rsp.status, 200, "{} fields: {}", n + 1, rsp.text());
        assert_forwarded_with(&app, &path, &sent);
    }
    // hyper's parser has room for 100 fields: it answers 431 itself.
    let rsp = gate.raw(&h1_get("/public/h1-101", &fields(100, "v"))).await;
    assert_eq!(rsp.status, 431, "{}", rsp.text());
    // HTTP/1.1 Cookie lines are fields like any other there.
    let mut with_cookies = fields(97, "v");
    with_cookies.extend((0..3).map(|i| ("cookie".to_owned(), format!("c{i}=v"))));
    assert_eq!(gate.raw(&h1_get("/public/h1-cookies", &with_cookies)).await.status, 431);
    assert_eq!(app.heads(), 2, "a refused request reached the upstream");
}

#[tokio::test]
async fn http2_more_than_100_header_fields_is_431_and_never_reaches_the_upstream() {
    let (app, gate) = fixture().await;
    for n in [99, 100] {
        let path = format!("/public/h2-{n}");
        let sent = fields(n, "v");
        let (status, body) = h2_get(&gate, &path, &sent).await;
        assert_eq!(status, 200, "{n} fields: {body:?}");
        assert_forwarded_with(&app, &path, &sent);
    }
    let (status, body) = h2_get(&gate, "/public/h2-101", &fields(101, "v")).await;
    assert_eq!(status, 431, "{body:?}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"], "headers_too_large", "{json}");
    assert_eq!(app.heads(), 2, "a refused request reached the upstream");
}

#[tokio::test]
async fn http2_cookie_fields_count_as_one_header_field() {
    let (app, gate) = fixture().await;
    // RFC 9113 §8.2.3: a client may send each cookie as its own field.
    let cookies: Vec<(String, String)> = (0..150).map(|i| ("cookie".to_owned(), format!("c{i}=v"))).collect();
    let mut sent = fields(99, "v");
    sent.extend(cookies.iter().cloned());
    let (status, body) = h2_get(&gate, "/public/h2-cookies", &sent).await;
    assert_eq!(status, 200, "99 fields and one split Cookie: {body:?}");
    let seen = app.one("/public/h2-cookies");
    let pairs: Vec<String> = seen
        .headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .flat_map(|(_, v)| v.split(';').map(|p| p.trim().to_owned()).collect::<Vec<_>>())
        .collect();
    assert_eq!(pairs, cookies.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(), "every cookie, in order");

    sent.push(("x-one-more".to_owned(), "v".to_owned()));
    let (status, _) = h2_get(&gate, "/public/h2-cookies-101", &sent).await;
    assert_eq!(status, 431, "101 fields besides the cookies");
    assert_eq!(app.heads(), 1);
}

#[tokio::test]
async fn http1_header_list_of_64_kib_is_431_and_never_reaches_the_upstream() {
    let (app, gate) = fixture().await;
    // 15 × 4,000 bytes: under 60 KiB by either measure.
    let sent = fields(15, &"a".repeat(4000));
    let rsp = gate.raw(&h1_get("/public/h1-60k", &sent)).await;
    assert_eq!(rsp.status, 200, "control: {}", rsp.text());
    assert_forwarded_with(&app, "/public/h1-60k", &sent);

    // 91 × 700 bytes: 63.1 KiB on the wire, 65.7 KiB as RFC 9113 counts:
    // parsed by hyper, refused by the gate.
    let rsp = gate.raw(&h1_get("/public/h1-measured", &fields(91, &"a".repeat(700)))).await;
    assert_refused(&rsp, 431, "headers_too_large", Challenge::Absent);

    // A head that does not end within hyper's 64 KiB read buffer: hyper
    // answers 431 (no body) and closes. Exactly the buffer is sent, so
    // nothing is left unread to turn the close into a reset.
    let mut s = tokio::net::TcpStream::connect(gate.addr).await.unwrap();
    let mut head = b"GET /public/h1-raw HTTP/1.1\r\nHost: g\r\nx-big: ".to_vec();
    head.resize(LIMIT, b'a');
    s.write_all(&head).await.unwrap();
    let rsp = read_response(&mut s).await.expect("hyper's answer");
    assert_eq!((rsp.status, rsp.text()), (431, String::new()));
    assert_eq!(app.heads(), 1, "a refused request reached the upstream");
}

/// `n` fields of 4,000 bytes on a raw HTTP/2 connection, the server's
/// SETTINGS acknowledged first or not.
async fn h2_raw_get(gate: &Gate, path: &str, n: usize, ack: bool) -> Outcome {
    let value = vec![b'a'; 4000];
    let names: Vec<String> = (0..n).map(|i| format!("x-f-{i:02}")).collect();
    let fields: Vec<(&str, &[u8])> = names.iter().map(|name| (name.as_str(), &value[..])).collect();
    let mut h2 = H2::connect(gate.addr, ack).await;
    h2.headers("GET", path, &fields, false).await;
    h2.outcome().await
}

#[tokio::test]
async fn http2_header_list_of_64_kib_is_431_from_h2_itself() {
    let (app, gate) = fixture().await;
    let control = h2_raw_get(&gate, "/public/h2-60k", 15, true).await;
    assert!(matches!(control, Outcome::Response { status: 200, .. }), "control: {control:?}");
    assert_eq!(app.heads(), 1);

    // h2 enforces its SETTINGS_MAX_HEADER_LIST_SIZE from the first frame,
    // whether or not the client has acknowledged the SETTINGS that announce
    // it, and answers 431 itself: no body, then a reset of the stream.
    for (path, ack) in [("/public/h2-80k-acked", true), ("/public/h2-80k-early", false)] {
        let outcome = h2_raw_get(&gate, path, 20, ack).await;
        assert_eq!(outcome, Outcome::Response { status: 431, body: Vec::new() }, "{path}");
    }

    // Over h2's CONTINUATION budget for a 64 KiB list (5 frames): the
    // whole connection is refused (GOAWAY ENHANCE_YOUR_CALM).
    let outcome = h2_raw_get(&gate, "/public/h2-300k", 75, true).await;
    assert_eq!(outcome, Outcome::GoAway(h2raw::ENHANCE_YOUR_CALM));

    // hyper's client sends it anyway (it does not read the peer's limit).
    let (status, body) = h2_get(&gate, "/public/h2-hyper", &fields(1, &"a".repeat(70_000))).await;
    assert_eq!((status, &body[..]), (431, &b""[..]));
    assert_eq!(app.heads(), 1, "a refused request reached the upstream");
}
