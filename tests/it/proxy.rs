//! Forwarding: what the upstream receives for an accepted request, and
//! how upstream failures and unsupported methods are answered.

use crate::support::gate::full;
use crate::support::token;
use crate::support::{assert_refused, Behaviour, Cfg, Challenge, Gate, Upstream};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    (app, gate)
}

#[tokio::test]
async fn valid_token_request_reaches_upstream_unchanged() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    let req = gate
        .req("PUT", "/api/a%20b?x=1&y=%2F&z")
        .header("host", "app.example:8443")
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/octet-stream")
        .header("x-custom", "Mixed Case, value")
        .header("x-forwarded-for", "203.0.113.7")
        .body(full(&b"\x00binary body\xff"[..]))
        .unwrap();
    let rsp = gate.send(req).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("x-upstream").as_deref(), Some("yes"), "upstream response headers");
    assert_eq!(&rsp.body[..], b"\x00binary body\xff", "upstream response body");

    let seen = app.one("/api/a%20b");
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.target, "/api/a%20b?x=1&y=%2F&z");
    assert_eq!(&seen.body[..], b"\x00binary body\xff");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {tok}").as_str()));
    assert_eq!(seen.header("content-type"), Some("application/octet-stream"));
    assert_eq!(seen.header("x-custom"), Some("Mixed Case, value"));
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.7, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("app.example:8443"));
}

#[tokio::test]
async fn request_target_bytes_reach_upstream_verbatim() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    let targets =
        ["/api/caf%C3%A9/%7e?a=%26&b=1+2&&c=", "/api/x?q=%2e%2e%2F&redirect=http://h/p?x", "/api/UPPER/lower?Z=z"];
    for target in targets {
        let req =
            format!("GET {target} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\nConnection: close\r\n\r\n");
        let rsp = gate.raw(req.as_bytes()).await;
        assert_eq!(rsp.status, 200, "{target}: {}", rsp.text());
        let path = target.split('?').next().unwrap();
        assert_eq!(app.one(path).target, target);
    }
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    let req = format!(
        "GET /api/hop HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n\
         Connection: keep-alive, X-Named-Hop\r\nX-Named-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
         Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\
         TE: trailers\r\nTrailer: X-Checksum\r\nX-End-To-End: kept\r\n\r\n"
    );
    let rsp = gate.raw(req.as_bytes()).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let seen = app.one("/api/hop");
    assert_eq!(seen.header("x-end-to-end"), Some("kept"));
    assert!(seen.header("authorization").is_some(), "Authorization is end-to-end");
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    for hop in ["x-named-hop", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer"] {
        assert_eq!(seen.header(hop), None, "{hop} forwarded; got {:?}", seen.header_names());
    }
    let connection = seen.header("connection").unwrap_or_default().to_ascii_lowercase();
    assert!(!connection.contains("x-named-hop"), "client's Connection forwarded");
}

#[tokio::test]
async fn h2c_upgrade_headers_are_not_forwarded() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    let req = format!(
        "GET /api/h2c HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n\
         Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    );
    let rsp = gate.raw(req.as_bytes()).await;
    assert_eq!(rsp.status, 200, "no 101: h2c upgrade is not offered; {}", rsp.text());
    let seen = app.one("/api/h2c");
    assert_eq!(seen.header("upgrade"), None, "{:?}", seen.header_names());
    assert_eq!(seen.header("http2-settings"), None, "{:?}", seen.header_names());
}

#[tokio::test]
async fn chunked_request_body_is_reframed_intact() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    let req = format!(
        "POST /api/chunked HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    let rsp = gate.raw(req.as_bytes()).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(&rsp.body[..], b"hello world");
    assert_eq!(&app.one("/api/chunked").body[..], b"hello world");
}

#[tokio::test]
async fn http2_prior_knowledge_request_is_served_and_forwarded() {
    let (app, gate) = fixture().await;
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let req = gate
        .req("POST", "/api/h2?v=2")
        .header("authorization", format!("Bearer {}", token::mint()))
        .body(full(Bytes::from_static(b"over h2")))
        .unwrap();
    let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("h2 response in time")
        .expect("h2 request");
    assert_eq!(rsp.version(), hyper::Version::HTTP_2);
    assert_eq!(rsp.status(), 200);
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"over h2");
    let seen = app.one("/api/h2");
    assert_eq!(seen.target, "/api/h2?v=2");
    assert_eq!(&seen.body[..], b"over h2");
}

#[tokio::test]
async fn public_route_is_forwarded_without_token_and_denied_route_is_forbidden() {
    let (app, gate) = fixture().await;
    assert_eq!(gate.get_anon("/healthz").await.status, 200);
    assert_eq!(app.seen("/healthz"), 1);
    let rsp = gate.get("/internal/metrics", &token::mint()).await;
    assert_refused(&rsp, 403, "forbidden", Challenge::Absent);
    assert_eq!(app.seen("/internal/metrics"), 0);
}

#[tokio::test]
async fn connect_is_method_not_allowed() {
    let (app, gate) = fixture().await;
    let tok = token::mint();
    assert_eq!(gate.get("/api/ok", &tok).await.status, 200, "control");
    let req =
        format!("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nAuthorization: Bearer {tok}\r\n\r\n");
    let rsp = gate.raw(req.as_bytes()).await;
    assert_refused(&rsp, 405, "method_not_allowed", Challenge::Absent);
    assert_eq!(app.total(), 1, "CONNECT reached the app: {:?}", app.requests());
}

#[tokio::test]
async fn refused_upstream_connection_is_bad_gateway() {
    let port = crate::support::redis::free_port();
    let gate = Gate::spawn(&Cfg::to_url(&format!("http://127.0.0.1:{port}"))).await;
    let tok = token::mint();
    let rsp = gate.get("/api/x", &tok).await;
    assert_refused(&rsp, 502, "upstream_unavailable", Challenge::Absent);
    // The client gets the fixed message; the log says why, never the token.
    assert!(!rsp.text().contains("refused"), "{}", rsp.text());
    let line = crate::support::eventually(Duration::from_secs(5), "the failure logged", || async {
        gate.logs().lines().find(|l| l.contains("request failed")).map(str::to_owned)
    })
    .await;
    assert!(line.contains("upstream unavailable: upstream request failed: "), "{line}");
    assert!(line.to_lowercase().contains("connection refused"), "the root cause is logged: {line}");
    assert!(!gate.logs().contains(&tok), "a token reached the log");
}

#[tokio::test]
async fn upstream_slower_than_timeout_is_gateway_timeout() {
    let app = Upstream::spawn().await;
    app.on("/api/slow", Behaviour::Sleep(Duration::from_secs(5)));
    let gate = Gate::spawn(&Cfg { upstream_timeout: "300ms".into(), ..Cfg::new(&app) }).await;
    assert_eq!(gate.get("/api/fast", &token::mint()).await.status, 200, "control");
    let started = Instant::now();
    let rsp = gate.get("/api/slow", &token::mint()).await;
    assert_refused(&rsp, 504, "upstream_timeout", Challenge::Absent);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(app.seen("/api/slow"), 1, "the slow request did reach the app");
}
