//! Client-address headers: from a peer not in `trusted_proxies`, what the
//! client wrote about its address or scheme never reaches the app as if
//! jwtgate had set it; from a trusted peer (an ingress) the chains are kept
//! and extended. Each case asserts the headers the app received.

use crate::support::gate::write_config;
use crate::support::token;
use crate::support::{Cfg, Gate, Rsp, Upstream};
use std::net::IpAddr;

/// A request carrying every client-address and scheme claim a client can make.
fn spoofing(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: api.example:8443\r\nAuthorization: Bearer {}\r\n\
         X-Forwarded-For: 203.0.113.66\r\nX-Real-IP: 203.0.113.66\r\nForwarded: for=203.0.113.66;proto=https\r\n\
         True-Client-IP: 203.0.113.66\r\nX-Client-IP: 203.0.113.66\r\nCF-Connecting-IP: 203.0.113.66\r\n\
         X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Host: evil.example\r\n\
         X_Real_IP: 203.0.113.66\r\nX_Forwarded_For: 203.0.113.66\r\nX-Original-URL: /internal/x\r\n\
         Connection: close\r\n\r\n",
        token::mint()
    )
    .into_bytes()
}

fn local(ip: &str) -> IpAddr {
    ip.parse().expect("ip")
}

#[track_caller]
fn forwarded(rsp: &Rsp) {
    assert_eq!(rsp.status, 200, "{}", rsp.text());
}

#[tokio::test]
async fn an_untrusted_client_cannot_choose_the_address_or_scheme_the_app_sees() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    forwarded(&gate.raw(&spoofing("/api/spoof")).await);
    let seen = app.one("/api/spoof");
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.66, 127.0.0.1"), "appended: read the right-most entry");
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("forwarded"), Some(r#"for=127.0.0.1;proto=http;host="api.example:8443""#));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("api.example:8443"), "the Host jwtgate routed on");
    for gone in ["true-client-ip", "x-client-ip", "cf-connecting-ip", "x-forwarded-ssl", "x_real_ip", "x_forwarded_for"]
    {
        assert_eq!(seen.header(gone), None, "{gone} reached the app");
    }
    assert_eq!(seen.header("x-original-url"), None, "a path override reached the app");
    let one = |name: &str| seen.headers.iter().filter(|(k, _)| k == name).count();
    assert_eq!((one("x-real-ip"), one("forwarded"), one("x-forwarded-for")), (1, 1, 1), "one value each");

    // Control: a plain request gets the same headers, set by jwtgate.
    let plain = format!(
        "GET /api/plain HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token::mint()
    );
    forwarded(&gate.raw(plain.as_bytes()).await);
    let seen = app.one("/api/plain");
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("forwarded"), Some("for=127.0.0.1;proto=http;host=g"));
}

#[tokio::test]
async fn a_trusted_proxy_keeps_its_chains_and_the_client_it_names() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).extra("trusted_proxies: [127.0.0.1/32]")).await;
    forwarded(&gate.raw_from(local("127.0.0.1"), &spoofing("/api/ingress")).await);
    let seen = app.one("/api/ingress");
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.66, 127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("203.0.113.66"), "kept from the trusted proxy");
    assert_eq!(
        seen.header("forwarded"),
        Some(r#"for=203.0.113.66;proto=https, for=127.0.0.1;proto=http;host="api.example:8443""#)
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"), "the ingress terminated TLS");
    assert_eq!(seen.header("x-forwarded-host"), Some("evil.example"), "the ingress's to vouch for");
    assert_eq!(seen.header("true-client-ip"), Some("203.0.113.66"));
    assert_eq!(seen.header("x-original-url"), None, "removed whoever the peer: jwtgate decided on the request line");
    assert_eq!(seen.header("x_real_ip"), None);

    // The same gate, another loopback address: not trusted, so nothing kept.
    forwarded(&gate.raw_from(local("127.0.0.2"), &spoofing("/api/direct")).await);
    let seen = app.one("/api/direct");
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.2"));
    assert_eq!(seen.header("forwarded"), Some(r#"for=127.0.0.2;proto=http;host="api.example:8443""#));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("true-client-ip"), None);
}

#[tokio::test]
async fn behind_trusted_proxies_without_x_real_ip_the_client_is_the_rightmost_untrusted_entry() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).extra("trusted_proxies: [127.0.0.0/8, 10.0.0.0/8]")).await;
    let req = format!(
        "GET /api/chain HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {}\r\n\
         X-Forwarded-For: 203.0.113.66, 198.51.100.9\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n",
        token::mint()
    );
    forwarded(&gate.raw(req.as_bytes()).await);
    let seen = app.one("/api/chain");
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.66, 198.51.100.9, 10.1.2.3, 127.0.0.1"),
        "every line kept, in order"
    );
    assert_eq!(seen.header("x-real-ip"), Some("198.51.100.9"), "a client-chosen left entry is not the client");
}

#[tokio::test]
async fn a_bad_trusted_proxies_entry_is_a_config_error_with_its_line() {
    let yaml = Cfg::to_url("http://127.0.0.1:3000").extra("trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n").yaml();
    let file = write_config(&yaml);
    let out = crate::support::gate::cli(&["check", "-c", file.path().to_str().expect("path")]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = yaml.lines().position(|l| l.contains("10.0.0.1/8")).expect("entry") + 1;
    let located = format!("{}:{line}:", file.path().display());
    assert!(stderr.contains(&located) && stderr.contains("trusted_proxies[1]"), "{stderr}");
    assert!(stderr.contains("host bits"), "{stderr}");
}
