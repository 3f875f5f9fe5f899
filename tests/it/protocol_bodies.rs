//! Request bodies that break on the client's side: malformed chunked
//! framing, a connection closed before the body's end, an HTTP/2 stream
//! reset or cut short. The client is answered 400 (when it is still there
//! to read it), and the request the upstream had started to receive is
//! aborted, so the app never sees it complete.

use crate::support::gate::read_response;
use crate::support::h2raw::{self, Outcome, H2};
use crate::support::upstream::Seen;
use crate::support::{assert_refused, eventually, token, Behaviour, Cfg, Challenge, Gate, Upstream};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn fixture() -> (Upstream, Gate, String) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    (app, gate, token::mint())
}

fn head(path: &str, tok: &str, framing: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n{framing}\r\n")
}

/// Waits until every request head the upstream got has been recorded
/// (its body ended or failed), then returns those for `path`.
async fn settled(app: &Upstream, path: &str) -> Vec<Seen> {
    eventually(Duration::from_secs(10), "upstream requests settled", || async {
        (app.heads() == app.total()).then_some(())
    })
    .await;
    app.requests().into_iter().filter(|s| s.target == path).collect()
}

#[track_caller]
fn assert_never_complete(seen: &[Seen], what: &str) {
    for s in seen {
        assert!(s.body_error.is_some(), "{what}: the upstream received a complete request: {s:?}");
        assert!(b"hello".starts_with(&s.body), "{what}: the upstream got more than was sent: {s:?}");
    }
}

#[tokio::test]
async fn valid_chunked_bodies_with_extensions_and_trailers_arrive_complete() {
    let (app, gate, tok) = fixture().await;
    let bodies: &[&[u8]] = &[
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"5;name=value\r\nhello\r\n6 ; ext\r\n world\r\n0\r\n\r\n",
        b"00005\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    ];
    for (i, body) in bodies.iter().enumerate() {
        let path = format!("/api/chunked-ok-{i}");
        let mut req = head(&path, &tok, "Transfer-Encoding: chunked\r\nConnection: close\r\n").into_bytes();
        req.extend_from_slice(body);
        let rsp = gate.raw(&req).await;
        assert_eq!(rsp.status, 200, "{path}: {}", rsp.text());
        let seen = app.one(&path);
        assert_eq!((&seen.body[..], &seen.body_error), (&b"hello world"[..], &None), "{path}");
    }
}

#[tokio::test]
async fn malformed_chunked_bodies_are_400_and_the_upstream_never_sees_them_complete() {
    let (app, gate, tok) = fixture().await;
    let long_extension = format!("5\r\nhello\r\n5;{}", "a".repeat(16 * 1024));
    let bodies: &[(&str, &[u8])] = &[
        ("bare LF in a chunk extension", b"5\r\nhello\r\n5;ext\nworld\r\n0\r\n\r\n"),
        ("bare CR in a chunk extension", b"5\r\nhello\r\n5;a\rb\r\nworld\r\n0\r\n\r\n"),
        ("a word after the size", b"5\r\nhello\r\n5 x\r\nworld\r\n0\r\n\r\n"),
        ("chunk extensions over 16 KiB", long_extension.as_bytes()),
        ("chunk size over 64 bits", b"5\r\nhello\r\n10000000000000000\r\nworld\r\n0\r\n\r\n"),
        ("17 hex digits of f", b"5\r\nhello\r\nfffffffffffffffff\r\nworld\r\n0\r\n\r\n"),
        ("non-hex size", b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n"),
        ("0x prefix", b"5\r\nhello\r\n0x5\r\nworld\r\n0\r\n\r\n"),
        ("negative size", b"5\r\nhello\r\n-1\r\nworld\r\n0\r\n\r\n"),
        ("empty size line", b"5\r\nhello\r\n\r\nworld\r\n0\r\n\r\n"),
        ("size line ended by a bare LF", b"5\r\nhello\r\n5\nworld\r\n0\r\n\r\n"),
        ("no CRLF after the data", b"5\r\nhelloXX0\r\n\r\n"),
        ("CR without LF after the data", b"5\r\nhello\rX0\r\n\r\n"),
        ("data longer than its size", b"3\r\nhello\r\n0\r\n\r\n"),
        ("last chunk not ended by CRLF", b"5\r\nhello\r\n0\r\n\rX"),
        ("a trailer that is not a field", b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"),
        ("bad size on the first chunk", b"zz\r\nhello\r\n0\r\n\r\n"),
    ];
    for (i, (what, body)) in bodies.iter().enumerate() {
        let path = format!("/api/bad-chunk-{i}");
        let mut req = head(&path, &tok, "Transfer-Encoding: chunked\r\n").into_bytes();
        req.extend_from_slice(body);
        let rsp = gate.raw(&req).await;
        assert_eq!(rsp.status, 400, "{what}: {}", rsp.text());
        assert_refused(&rsp, 400, "malformed_body", Challenge::Absent);
        assert_never_complete(&settled(&app, &path).await, what);
    }
    let control = format!("{}5\r\nhello\r\n0\r\n\r\n", head("/api/ok", &tok, "Transfer-Encoding: chunked\r\n"));
    assert_eq!(gate.raw(control.as_bytes()).await.status, 200, "control");
    assert_eq!(app.one("/api/ok").body_error, None);
}

/// Writes `first` (a head and the start of a body), waits until the
/// upstream has the request's head, then writes `rest` (or, for `None`,
/// closes the sending side) and returns the connection.
async fn staged(gate: &Gate, app: &Upstream, first: &[u8], rest: Option<&[u8]>) -> TcpStream {
    let before = app.heads();
    let mut s = TcpStream::connect(gate.addr).await.unwrap();
    s.write_all(first).await.unwrap();
    eventually(Duration::from_secs(10), "the head reached the upstream", || async {
        (app.heads() > before).then_some(())
    })
    .await;
    match rest {
        Some(rest) => s.write_all(rest).await.unwrap(),
        None => s.shutdown().await.unwrap(),
    }
    s
}

#[tokio::test]
async fn body_that_breaks_after_its_head_reached_the_upstream_is_aborted_there() {
    let (app, gate, tok) = fixture().await;
    let first = format!("{}5\r\nhello\r\n", head("/api/late-break", &tok, "Transfer-Encoding: chunked\r\n"));
    let mut s = staged(&gate, &app, first.as_bytes(), Some(b"zz\r\nworld\r\n0\r\n\r\n")).await;
    let rsp = read_response(&mut s).await.expect("a response");
    assert_refused(&rsp, 400, "malformed_body", Challenge::Absent);
    let seen = settled(&app, "/api/late-break").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_never_complete(&seen, "a bad chunk after the head was forwarded");

    let first = format!("{}5\r\nhello\r\n", head("/api/late-ok", &tok, "Transfer-Encoding: chunked\r\n"));
    let mut s = staged(&gate, &app, first.as_bytes(), Some(b"6\r\n world\r\n0\r\n\r\n")).await;
    assert_eq!(read_response(&mut s).await.expect("a response").status, 200, "control");
    let seen = app.one("/api/late-ok");
    assert_eq!((&seen.body[..], &seen.body_error), (&b"hello world"[..], &None));
}

#[tokio::test]
async fn body_cut_short_by_the_client_is_aborted_upstream() {
    let (app, gate, tok) = fixture().await;
    let cuts = [
        ("/api/cut-length", "Content-Length: 100\r\n", "hello"),
        ("/api/cut-in-chunk", "Transfer-Encoding: chunked\r\n", "a\r\nhello"),
        ("/api/cut-before-last", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n"),
        ("/api/cut-in-size", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n1"),
    ];
    for (path, framing, sent) in cuts {
        let first = format!("{}{sent}", head(path, &tok, framing));
        let mut s = staged(&gate, &app, first.as_bytes(), None).await;
        // The client is gone (it sent EOF); the gate answers 400 if the
        // socket still takes it, or closes.
        match read_response(&mut s).await {
            Ok(rsp) => assert_refused(&rsp, 400, "malformed_body", Challenge::Absent),
            Err(partial) => assert_eq!(partial, "", "{path}"),
        }
        let seen = settled(&app, path).await;
        assert_eq!(seen.len(), 1, "{path}: {seen:?}");
        assert_never_complete(&seen, path);
    }
}

#[tokio::test]
async fn upstream_answer_sent_before_the_body_broke_is_relayed_then_the_connection_closes() {
    let (app, gate, tok) = fixture().await;
    app.on("/api/early", Behaviour::Status(202));
    let first = format!("{}5\r\nhello\r\n", head("/api/early", &tok, "Transfer-Encoding: chunked\r\n"));
    let mut s = TcpStream::connect(gate.addr).await.unwrap();
    s.write_all(first.as_bytes()).await.unwrap();
    let rsp = read_response(&mut s).await.expect("the upstream's answer");
    assert_eq!((rsp.status, rsp.header("x-upstream").as_deref()), (202, Some("yes")));
    s.write_all(b"zz\r\n").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stayed open after a broken body");
    assert_eq!(String::from_utf8_lossy(&rest), "", "nothing after the upstream's answer");
    assert_eq!(app.seen("/api/early"), 1);
}

#[tokio::test]
async fn http2_body_reset_or_cut_short_is_aborted_upstream() {
    let (app, gate, tok) = fixture().await;
    let auth = format!("Bearer {tok}");
    let auth = ("authorization", auth.as_bytes());

    let mut h2 = H2::connect(gate.addr, true).await;
    h2.headers("POST", "/api/h2-ok", &[auth, ("content-length", b"10")], true).await;
    h2.data(b"hello", false).await;
    h2.data(b"world", true).await;
    assert!(matches!(h2.outcome().await, Outcome::Response { status: 200, .. }), "control");
    let seen = app.one("/api/h2-ok");
    assert_eq!((&seen.body[..], &seen.body_error), (&b"helloworld"[..], &None));

    // The client resets its stream mid-body (RST_STREAM CANCEL).
    let mut h2 = H2::connect(gate.addr, true).await;
    h2.headers("POST", "/api/h2-reset", &[auth], true).await;
    h2.data(b"hello", false).await;
    eventually(Duration::from_secs(10), "head upstream", || async { (app.heads() == 2).then_some(()) }).await;
    h2.reset(h2raw::CANCEL).await;
    let seen = settled(&app, "/api/h2-reset").await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_never_complete(&seen, "stream reset mid-body");

    // END_STREAM before the announced content-length: h2 resets the stream.
    let mut h2 = H2::connect(gate.addr, true).await;
    h2.headers("POST", "/api/h2-short", &[auth, ("content-length", b"10")], true).await;
    h2.data(b"hello", true).await;
    let outcome = h2.outcome().await;
    assert_eq!(outcome, Outcome::Reset(h2raw::PROTOCOL_ERROR), "h2-short");
    assert_never_complete(&settled(&app, "/api/h2-short").await, "h2 body shorter than its content-length");
}
