//! Transfer codings (RFC 9112 §6.1): the upstream gets a body only when the
//! gate could decode every coding the client applied, which is `chunked`
//! alone. Other codings are answered 501 by the gate or 400 by hyper, and
//! never reach the app; over HTTP/2 a `transfer-encoding` field is a
//! stream error in h2 itself. Malformed bodies: `protocol_bodies.rs`;
//! header limits: `protocol_limits.rs`.

use crate::support::h2raw::{self, Outcome, H2};
use crate::support::token;
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};

async fn fixture() -> (Upstream, Gate, String) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    (app, gate, token::mint())
}

/// A chunked `hello world` POST to `path` with `te` as its
/// Transfer-Encoding line(s), verbatim.
fn chunked_post(path: &str, tok: &str, te: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n{te}Connection: close\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn chunked_alone_in_any_spelling_is_forwarded_with_its_whole_body() {
    let (app, gate, tok) = fixture().await;
    let spellings = [
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: Chunked\r\n",
        "transfer-encoding: CHUNKED\r\n",
        "Transfer-Encoding:   chunked \t\r\n",
        // RFC 9110 §5.6.1: empty list elements are ignored.
        "Transfer-Encoding: , chunked\r\n",
    ];
    for (i, te) in spellings.iter().enumerate() {
        let path = format!("/api/te-ok-{i}");
        let rsp = gate.raw(&chunked_post(&path, &tok, te)).await;
        assert_eq!(rsp.status, 200, "{te:?}: {}", rsp.text());
        assert_eq!(&rsp.body[..], b"hello world", "{te:?}");
        let seen = app.one(&path);
        assert_eq!(&seen.body[..], b"hello world", "{te:?}");
        assert_eq!(seen.body_error, None, "{te:?}");
        // Re-framed by the gate's client: its own, plain `chunked`.
        assert_eq!(seen.header("transfer-encoding"), Some("chunked"), "{te:?}");
    }
}

#[tokio::test]
async fn any_other_transfer_coding_is_501_and_never_reaches_the_upstream() {
    let (app, gate, tok) = fixture().await;
    let control = gate.raw(&chunked_post("/api/te-control", &tok, "Transfer-Encoding: chunked\r\n")).await;
    assert_eq!(control.status, 200, "control: {}", control.text());
    assert_eq!(app.seen("/api/te-control"), 1);
    // hyper accepts each of these (chunked is last) and decodes the body
    // as chunked alone, dropping the rest.
    let spellings: &[&[u8]] = &[
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: deflate, chunked\r\n",
        b"Transfer-Encoding: compress, chunked\r\n",
        b"Transfer-Encoding: x-gzip, chunked\r\n",
        b"Transfer-Encoding: br, chunked\r\n",
        b"Transfer-Encoding: identity, chunked\r\n",
        b"Transfer-Encoding: chunked, chunked\r\n",
        b"Transfer-Encoding: x-unknown-coding, chunked\r\n",
        b"Transfer-Encoding: GZIP,CHUNKED\r\n",
        b"Transfer-Encoding: gzip ,\t chunked\r\n",
        b"Transfer-Encoding: gzip;q=1, chunked\r\n",
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: \r\nTransfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: \xff\r\nTransfer-Encoding: chunked\r\n",
    ];
    for te in spellings {
        let before = app.total();
        let mut req = format!("POST /api/te HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n").into_bytes();
        req.extend_from_slice(te);
        req.extend_from_slice(b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        let rsp = gate.raw(&req).await;
        let what = String::from_utf8_lossy(te);
        assert_eq!(rsp.status, 501, "{what:?}: {}", rsp.text());
        assert_refused(&rsp, 501, "unsupported_transfer_coding", Challenge::Absent);
        assert_eq!(app.total(), before, "{what:?} reached the upstream");
        assert_eq!(app.heads(), before, "{what:?}: a head reached the upstream");
    }
}

#[tokio::test]
async fn unsupported_transfer_coding_is_refused_before_the_token_is_looked_at() {
    let (app, gate, _) = fixture().await;
    let req = b"POST /api/anon HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: gzip, chunked\r\n\
                Connection: close\r\n\r\n0\r\n\r\n";
    assert_refused(&gate.raw(req).await, 501, "unsupported_transfer_coding", Challenge::Absent);
    let public = b"POST /public/te HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: gzip, chunked\r\n\
                   Connection: close\r\n\r\n0\r\n\r\n";
    assert_refused(&gate.raw(public).await, 501, "unsupported_transfer_coding", Challenge::Absent);
    assert_eq!(app.total(), 0);
    assert_eq!(gate.get_anon("/public/control").await.status, 200, "control");
}

#[tokio::test]
async fn transfer_codings_hyper_refuses_are_400_and_never_reach_the_upstream() {
    let (app, gate, tok) = fixture().await;
    // chunked not last, or not a bare token: hyper cannot find the body's
    // end and answers 400 itself (no JSON body), then closes.
    let refused: &[&[u8]] = &[
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: gzip\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: identity\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: chunked;ext=1\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding:\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding : chunked\r\n",
        b"POST /api/te HTTP/1.1\r\nTransfer-Encoding: chunked\r\n x-folded\r\n",
        b"POST /api/te HTTP/1.0\r\nTransfer-Encoding: chunked\r\n",
    ];
    for head in refused {
        let mut req = head.to_vec();
        req.extend_from_slice(
            format!("Host: g\r\nAuthorization: Bearer {tok}\r\n\r\n5\r\nhello\r\n0\r\n\r\n").as_bytes(),
        );
        let rsp = gate.raw(&req).await;
        let what = String::from_utf8_lossy(head);
        assert_eq!(rsp.status, 400, "{what:?}: {}", rsp.text());
    }
    assert_eq!(app.heads(), 0, "a refused request reached the upstream");
    let control = gate.raw(&chunked_post("/api/te-control", &tok, "Transfer-Encoding: chunked\r\n")).await;
    assert_eq!(control.status, 200, "control: {}", control.text());
    assert_eq!(app.heads(), 1);
}

#[tokio::test]
async fn content_length_beside_chunked_is_ignored_and_nothing_is_smuggled_behind_it() {
    let (app, gate, tok) = fixture().await;
    // CL.TE and TE.CL: hyper frames by Transfer-Encoding, drops
    // Content-Length and closes the connection after the response, so the
    // bytes after the chunked body are never read as a second request.
    let smuggled = format!("GET /api/smuggled HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n\r\n");
    let orders = [
        ("/api/cl-te", format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", 5 + smuggled.len())),
        ("/api/te-cl", format!("Transfer-Encoding: chunked\r\nContent-Length: {}\r\n", 5 + smuggled.len())),
    ];
    for (path, framing) in orders {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n{framing}\r\n0\r\n\r\n{smuggled}"
        );
        let rsp = gate.raw(req.as_bytes()).await;
        assert_eq!(rsp.status, 200, "{path}: {}", rsp.text());
        let seen = app.one(path);
        assert_eq!(&seen.body[..], b"", "{path}: the chunked body is empty");
        assert_ne!(seen.header("content-length"), Some(&*(5 + smuggled.len()).to_string()), "{path}");
    }
    assert_eq!(app.seen("/api/smuggled"), 0, "a request hidden in a body reached the upstream");
}

#[tokio::test]
async fn content_length_hyper_cannot_read_as_one_number_is_400_and_never_reaches_the_upstream() {
    let (app, gate, tok) = fixture().await;
    // Two equal lines are one length (RFC 9110 §8.6): forwarded.
    let twice = format!(
        "POST /api/cl-twice HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n\
         Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    );
    let rsp = gate.raw(twice.as_bytes()).await;
    assert_eq!(rsp.status, 200, "control: {}", rsp.text());
    assert_eq!(&app.one("/api/cl-twice").body[..], b"hello");
    let lengths = [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 0x5\r\n",
        "Content-Length: 5 5\r\n",
        "Content-Length: 99999999999999999999\r\n",
    ];
    for cl in lengths {
        let req = format!("POST /api/cl HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n{cl}\r\nhello");
        assert_eq!(gate.raw(req.as_bytes()).await.status, 400, "{cl:?}");
    }
    assert_eq!(app.heads(), 1, "a refused request reached the upstream");
}

/// A raw h2 GET of `path` with `fields`, on a connection whose SETTINGS
/// were acknowledged.
async fn h2_get(gate: &Gate, path: &str, fields: &[(&str, &[u8])]) -> Outcome {
    let mut h2 = H2::connect(gate.addr, true).await;
    h2.headers("GET", path, fields, false).await;
    h2.outcome().await
}

#[tokio::test]
async fn connection_specific_fields_over_http2_are_reset_by_h2_and_never_reach_the_upstream() {
    let (app, gate, tok) = fixture().await;
    let auth = format!("Bearer {tok}");
    let control = h2_get(&gate, "/api/h2-control", &[("authorization", auth.as_bytes())]).await;
    assert!(matches!(control, Outcome::Response { status: 200, .. }), "control: {control:?}");
    assert_eq!(app.seen("/api/h2-control"), 1);
    // RFC 9113 §8.2.2: a request with these is malformed; h2 resets the
    // stream (PROTOCOL_ERROR) before hyper or the gate see it.
    let fields: &[(&str, &[u8])] = &[
        ("transfer-encoding", b"chunked"),
        ("transfer-encoding", b"gzip, chunked"),
        ("connection", b"keep-alive"),
        ("keep-alive", b"timeout=5"),
        ("proxy-connection", b"keep-alive"),
        ("upgrade", b"h2c"),
        ("te", b"gzip"),
    ];
    for field in fields {
        let outcome = h2_get(&gate, "/api/h2-te", &[("authorization", auth.as_bytes()), *field]).await;
        assert_eq!(outcome, Outcome::Reset(h2raw::PROTOCOL_ERROR), "{field:?}");
    }
    assert_eq!(app.heads(), 1, "a malformed HTTP/2 request reached the upstream");
    let trailers =
        h2_get(&gate, "/api/h2-te-trailers", &[("authorization", auth.as_bytes()), ("te", b"trailers")]).await;
    assert!(matches!(trailers, Outcome::Response { status: 200, .. }), "`te: trailers` is allowed: {trailers:?}");
    assert_eq!(app.one("/api/h2-te-trailers").header("te"), None, "TE is hop-by-hop");
}
