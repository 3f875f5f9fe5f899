//! Forward-auth under attack: a client of the front proxy controls its
//! request line and every header, and each proxy passes those headers on
//! to the check. Each test is one attack class and asserts the safe
//! answer (a refusal, or a verdict on the request the app then gets), with
//! a positive control; where the outcome depends on what the proxy really
//! sends, the request goes through a real nginx (`auth_request`) or
//! Traefik (`ForwardAuth`) to a recording app (support/front.rs).

use crate::support::config::BACKCHANNEL_PATH;
use crate::support::front::Front;
use crate::support::gate::read_response;
use crate::support::token::{claims, mint};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Rsp, Upstream};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const ROUTES: &str = "
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /optional }
    auth: optional
    forward_claims: { sub: X-User-Id }
  - match: { path_prefix: /internal }
    auth: deny
  - match: { path_prefix: /api/admin, methods: [DELETE] }
    auth: deny
  - match: { host: open.example, path_prefix: /api }
    auth: none
  - match: { path_prefix: /api }
    forward_claims: { sub: X-User-Id, email: X-Email }
";

/// The claim headers the routes set (the nginx front copies these).
const CLAIM_HEADERS: [&str; 2] = ["X-User-Id", "X-Email"];

/// A gate whose forward-auth listener answers loopback for `proxy`, with
/// the credential cookie `at` and a logout-all path.
async fn gate(app: &Upstream, proxy: &str) -> Gate {
    let section = format!(
        "forward_auth:\n  listen: 127.0.0.1:0\n  proxy: {proxy}\n  grpc_listen: 127.0.0.1:0\n\
         trusted_proxies: [\"127.0.0.1\"]\nlogout_all: {{ path: /logout/all, methods: [POST] }}\n"
    );
    Gate::spawn(&Cfg { cookie: Some("at".into()), ..Cfg::new(app).routes(ROUTES).extra(&section) }).await
}

async fn nginx_front(gate: &Gate, app: &Upstream) -> Front {
    Front::nginx(gate.forward_auth.expect("forward-auth listener"), app.addr, &CLAIM_HEADERS).await
}

async fn traefik_front(gate: &Gate, app: &Upstream) -> Front {
    let (front, _) = Front::traefik(gate.forward_auth.expect("forward-auth listener"), app.addr).await;
    // Traefik loads its routers after it listens: wait for the router.
    crate::support::eventually(Duration::from_secs(15), "traefik router loaded", || async {
        (raw(&front, "GET /public/ready HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n").await.status == 200)
            .then_some(())
    })
    .await;
    front
}

/// Bytes as a client writes them to the front proxy (request lines no
/// HTTP client library would send), answered within 10 s.
async fn raw(front: &Front, request: &str) -> Rsp {
    let mut s = tokio::net::TcpStream::connect(front.addr).await.expect("connect to the front proxy");
    s.write_all(request.as_bytes()).await.expect("write the request");
    tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
        .await
        .expect("front answers within 10 s")
        .unwrap_or_else(|partial| panic!("front closed before answering: {partial:?}\n{}", front.log()))
}

/// `METHOD target HTTP/1.1` with `Host: app`, `headers` (`Name: value`
/// lines) and `Connection: close`.
fn request(method: &str, target: &str, headers: &[String]) -> String {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: app\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// An nginx check straight to the forward-auth listener.
async fn nginx_check(gate: &Gate, method: &str, uri: &str, more: &[(&str, &str)]) -> Rsp {
    let mut headers = vec![("x-original-method", method), ("x-original-uri", uri)];
    headers.extend_from_slice(more);
    gate.check("GET", "/auth", &headers).await
}

/// A fragment is never part of a request target, but nginx and Traefik
/// both pass one on, in the check's URI and to the app. jwtgate used to
/// parse it away (`http::Uri` drops it) and decide on the rest: the app
/// got `?x#&_method=DELETE`, which a Go app parses as `_method=DELETE`
/// (and `#&access_token=` as a query token), and `/public#/../api`.
#[tokio::test]
async fn a_fragment_in_the_original_uri_is_refused_through_nginx_and_traefik() {
    let app = Upstream::spawn().await;
    let (ngx_gate, trf_gate) = (gate(&app, "nginx").await, gate(&app, "traefik").await);
    let (ngx, trf) = (nginx_front(&ngx_gate, &app).await, traefik_front(&trf_gate, &app).await);
    let token = claims().sub("user-1").sign();
    for (i, (front, refusal)) in [(&ngx, 403), (&trf, 400)].into_iter().enumerate() {
        // Positive control: the same request without a fragment passes.
        let control = raw(front, &request("GET", "/api/admin/users?x=1", &[bearer(&token)])).await;
        assert_eq!(control.status, 200, "{}\n{}", control.text(), front.log());
        assert_eq!(app.seen("/api/admin/users"), i + 1);
        // An override in the query is seen and refused.
        let plain = raw(front, &request("GET", "/api/admin/users?_method=DELETE", &[bearer(&token)])).await;
        assert_eq!(plain.status, refusal, "{}", plain.text());
        let before = app.total();
        for target in ["/api/admin/users?x=1#&_method=DELETE", "/api/x?#&access_token=forged", "/api/x#frag"] {
            let rsp = raw(front, &request("GET", target, &[bearer(&token)])).await;
            assert_eq!(rsp.status, refusal, "{target}: {}", rsp.text());
        }
        assert_eq!(app.total(), before, "a fragment reached the app: {:?}", app.requests());
    }
    // nginx even takes one in the path: decided on `/public`, the app got it all.
    let rsp = raw(&ngx, &request("GET", "/public#/../api/x", &[])).await;
    assert_eq!(rsp.status, 403, "{}", rsp.text());
    // The check itself says why (nginx's 400 as 403).
    let why = nginx_check(&ngx_gate, "GET", "/public#/../api/x", &[]).await;
    assert_refused(&why, 403, "invalid_forward_auth_request", Challenge::Absent);
    let url = [("x-original-method", "GET"), ("x-original-url", "http://app/public#/../api/x")];
    assert_refused(&ngx_gate.check("GET", "/auth", &url).await, 403, "invalid_forward_auth_request", Challenge::Absent);
    assert_eq!(app.seen("/public"), 0);
}

/// `X_User_Id` reaches a CGI/WSGI/Rack app as `HTTP_X_USER_ID`, the same
/// as `X-User-Id`. The proxy listener drops such spellings; Traefik passes
/// them on (its `authResponseHeaders` removes only the dashed name), so
/// the check must refuse them. nginx drops them itself
/// (`ignore_invalid_headers`): there the request passes, without it.
#[tokio::test]
async fn an_underscore_spelling_of_a_claim_header_never_reaches_the_app() {
    let app = Upstream::spawn().await;
    let (ngx_gate, trf_gate) = (gate(&app, "nginx").await, gate(&app, "traefik").await);
    let (ngx, trf) = (nginx_front(&ngx_gate, &app).await, traefik_front(&trf_gate, &app).await);
    let token = claims().sub("user-1").sign();
    let spoof = ["X_User_Id: admin".to_owned()];
    let before = app.total();
    for path in ["/public/p", "/api/x"] {
        let rsp = raw(&trf, &request("GET", path, &[bearer(&token), spoof[0].clone()])).await;
        assert_eq!(rsp.status, 400, "{path}: {}", rsp.text());
        assert_eq!(rsp.json()["error"], "invalid_forward_auth_request", "{}", rsp.text());
    }
    assert_eq!(app.total(), before, "the spoofed spelling reached the app: {:?}", app.requests());
    // Positive control: the dashed spoof is replaced, the request passes.
    let rsp = raw(&trf, &request("GET", "/api/t", &[bearer(&token), "X-User-Id: admin".into()])).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(app.one("/api/t").header("x-user-id"), Some("user-1"));
    // nginx: dropped before the check and before the app.
    let rsp = raw(&ngx, &request("GET", "/api/n", &[bearer(&token), spoof[0].clone()])).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let seen = app.one("/api/n");
    assert_eq!(seen.header("x-user-id"), Some("user-1"));
    assert!(seen.headers.iter().all(|(k, _)| !k.contains('_')), "{:?}", seen.headers);
}

/// The proxy listener leaves the app exactly one credential cookie, the
/// verified one; a front proxy forwards the Cookie header as sent. A
/// second `at` (Django reads the last), an `AT` (ASP.NET ignores case) or
/// an `a%74` (PHP decodes names) next to the verified token, or beside a
/// verified Authorization header, would be a credential jwtgate never
/// checked: refused on every route jwtgate authenticates.
#[tokio::test]
async fn a_credential_cookie_the_app_could_read_but_jwtgate_did_not_check_is_refused() {
    let app = Upstream::spawn().await;
    let ngx_gate = gate(&app, "nginx").await;
    let ngx = nginx_front(&ngx_gate, &app).await;
    let (token, revoked) = (claims().sub("user-1").sign(), mint());
    assert_eq!(ngx_gate.logout(&revoked).await.status, 200, "revoked on the proxy listener");
    let forged = claims().sub("admin").sign().replace('.', "x");
    // Positive control: the verified cookie beside another cookie.
    let ok = raw(&ngx, &request("GET", "/api/c", &[format!("Cookie: at={token}; theme=dark")])).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(app.one("/api/c").header("cookie"), Some(format!("at={token}; theme=dark").as_str()));
    let before = app.total();
    for (path, headers) in [
        ("/api/x", vec![format!("Cookie: at={token}; at={revoked}")]),
        ("/api/x", vec![format!("Cookie: at={token}"), format!("Cookie: AT={forged}")]),
        ("/api/x", vec![format!("Cookie: at={token}; a%74={forged}")]),
        ("/api/x", vec![bearer(&token), format!("Cookie: AT={forged}")]),
        ("/optional/x", vec![format!("Cookie: AT={forged}")]),
    ] {
        let rsp = raw(&ngx, &request("GET", path, &headers)).await;
        assert_eq!(rsp.status, 403, "{path} {headers:?}: {}", rsp.text());
    }
    assert_eq!(app.total(), before, "an unchecked credential reached the app: {:?}", app.requests());
    // A route jwtgate does not authenticate: cookies pass as sent (as on the proxy).
    let public = raw(&ngx, &request("GET", "/public/c", &[format!("Cookie: at=x; AT={forged}")])).await;
    assert_eq!(public.status, 200, "{}", public.text());
}

/// HEAD is forwarded as HEAD, and is checked as HEAD; a method override
/// (header, any spelling, or `_method`) naming a method another rule
/// decides is refused, through the real front.
#[tokio::test]
async fn method_overrides_and_head_are_decided_as_the_app_reads_them() {
    let app = Upstream::spawn().await;
    let ngx_gate = gate(&app, "nginx").await;
    let ngx = nginx_front(&ngx_gate, &app).await;
    let token = mint();
    let head = raw(&ngx, &request("HEAD", "/api/admin/h", &[bearer(&token)])).await;
    assert_eq!(head.status, 200);
    assert_eq!(app.one("/api/admin/h").method, "HEAD");
    let before = app.total();
    for headers in [
        vec![bearer(&token), "X-HTTP-Method-Override: DELETE".into()],
        vec![bearer(&token), "X-Method-Override: delete".into()],
    ] {
        assert_eq!(raw(&ngx, &request("POST", "/api/admin/users", &headers)).await.status, 403, "{headers:?}");
    }
    assert_eq!(raw(&ngx, &request("POST", "/api/admin/users?_method=DELETE", &[bearer(&token)])).await.status, 403);
    assert_eq!(raw(&ngx, &request("DELETE", "/api/admin/users", &[bearer(&token)])).await.status, 403);
    assert_eq!(app.total(), before, "{:?}", app.requests());
    // Underscore spellings (Rack) are read too; straight to the check.
    let auth = format!("Bearer {token}");
    let rsp = nginx_check(
        &ngx_gate,
        "POST",
        "/api/admin/users",
        &[("authorization", &auth), ("x_http_method_override", "DELETE")],
    )
    .await;
    assert_refused(&rsp, 403, "ambiguous_method", Challenge::Absent);
}

/// Repeated slashes, `;params`, dot segments and encoded separators in
/// the URI the front proxy passes on: decided as the app reads them, or
/// refused when they could be read two ways.
#[tokio::test]
async fn paths_the_front_passes_raw_are_read_as_the_app_reads_them() {
    let app = Upstream::spawn().await;
    let (ngx_gate, trf_gate) = (gate(&app, "nginx").await, gate(&app, "traefik").await);
    let (ngx, trf) = (nginx_front(&ngx_gate, &app).await, traefik_front(&trf_gate, &app).await);
    let token = mint();
    for (front, ambiguous) in [(&ngx, 403), (&trf, 400)] {
        let before = app.total();
        // Denied whichever way the slashes and params are written.
        for target in ["//api/admin/users", "/api//admin/users", "/api;x/admin/users", "/API/Admin/users/"] {
            let rsp = raw(front, &request("DELETE", target, &[bearer(&token)])).await;
            assert_eq!(rsp.status, 403, "{target}: {}", rsp.text());
        }
        // A public prefix walked out of, plainly or encoded: never public.
        for target in ["/public/..;/api/x", "/public/%2e%2e/api/x", "/public%2f..%2fapi/x", "/public/..%3bx/api/x"] {
            let rsp = raw(front, &request("GET", target, &[])).await;
            assert!(rsp.status == ambiguous || rsp.status == 401, "{target}: {} {}", rsp.status, rsp.text());
        }
        assert_eq!(app.total(), before, "{:?}", app.requests());
    }
    // nginx passes `/public/../api/x` raw: ambiguous, refused.
    assert_eq!(raw(&ngx, &request("GET", "/public/../api/x", &[])).await.status, 403);
    // Positive control: a public page with params and doubled slashes.
    assert_eq!(raw(&ngx, &request("GET", "/public//p;v=1", &[])).await.status, 200);
    assert_eq!(app.seen("/public//p;v=1"), 1);
}

/// The host the verdict is decided on is the one the proxy routes and
/// forwards with: Traefik's `X-Forwarded-Host` is the request's host, also
/// for an absolute-form request line; a client's own copy is overwritten;
/// an HTTP/1.0 request without Host through nginx has none.
#[tokio::test]
async fn the_host_is_the_one_the_front_forwards_with() {
    let app = Upstream::spawn().await;
    let (ngx_gate, trf_gate) = (gate(&app, "nginx").await, gate(&app, "traefik").await);
    let (ngx, trf) = (nginx_front(&ngx_gate, &app).await, traefik_front(&trf_gate, &app).await);
    // The client names the open host in X-Forwarded-Host: Traefik overwrites it.
    let spoof = raw(&trf, &request("GET", "/api/s", &["X-Forwarded-Host: open.example".into()])).await;
    assert_eq!(spoof.status, 401, "{}", spoof.text());
    assert_eq!(app.seen("/api/s"), 0);
    // Absolute form: Traefik forwards to the app with the request line's host, the one decided on.
    let open = raw(&trf, "GET http://open.example/api/o HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n").await;
    assert_eq!(open.status, 200, "{}", open.text());
    assert_eq!(app.one("/api/o").header("host"), Some("open.example"));
    // HTTP/1.0, no Host: the check has none, the open-host rule does not apply.
    let bare = raw(&ngx, "GET /api/h HTTP/1.0\r\n\r\n").await;
    assert_eq!(bare.status, 401, "{}", bare.text());
    // Two Host headers: nginx refuses, and the check refuses them too.
    assert_eq!(raw(&ngx, &request("GET", "/api/h", &["Host: open.example".into()])).await.status, 400);
    let twice = [("x-original-method", "GET"), ("x-original-uri", "/api/h"), ("host", "app"), ("host", "open.example")];
    assert_refused(&ngx_gate.check("GET", "/auth", &twice).await, 403, "ambiguous_host", Challenge::Absent);
    assert_eq!(app.seen("/api/h"), 0);
}

/// Logout with a revoked token is 401, logout-all too; a live token's
/// logout-all revokes the subject and lets the app's own run; the
/// back-channel path never gets a verdict.
#[tokio::test]
async fn logout_logout_all_and_back_channel_paths_through_forward_auth() {
    let app = Upstream::spawn().await;
    let g = gate(&app, "nginx").await;
    let (a, b) = (claims().sub("user-5").sign(), claims().sub("user-5").sign());
    let (auth_a, auth_b) = (format!("Bearer {a}"), format!("Bearer {b}"));
    assert_eq!(nginx_check(&g, "GET", "/api/x", &[("authorization", &auth_b)]).await.status, 200, "live");
    assert_eq!(nginx_check(&g, "POST", "/logout/all", &[("authorization", &auth_a)]).await.status, 200);
    for (method, uri) in [("POST", "/logout"), ("POST", "/logout/all"), ("GET", "/api/x")] {
        let rsp = nginx_check(&g, method, uri, &[("authorization", &auth_b)]).await;
        assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    }
    // Back-channel: configured on a second gate; through forward-auth, 403.
    let section = "forward_auth:\n  listen: 127.0.0.1:0\n  proxy: nginx\ntrusted_proxies: [\"127.0.0.1\"]\n";
    let bcl =
        Gate::spawn(&Cfg::new(&app).routes(ROUTES).extra(section).backchannel(crate::support::token::ISSUER)).await;
    let rsp = nginx_check(&bcl, "POST", BACKCHANNEL_PATH, &[]).await;
    assert_refused(&rsp, 403, "backchannel_elsewhere", Challenge::Absent);
    assert_eq!(app.total(), 0);
}

/// `auth: optional`: no token passes without claim headers (Envoy is told
/// to remove a client's copy); a bad or revoked one is refused. A CORS
/// preflight to a route without a `cors:` policy is checked like any
/// request (no token: 401).
#[tokio::test]
async fn optional_routes_and_preflights_without_a_policy() {
    let app = Upstream::spawn().await;
    let g = gate(&app, "envoy").await;
    let anon = g.check("GET", "/optional/x", &[("x-user-id", "admin")]).await;
    assert_eq!(anon.status, 200, "{}", anon.text());
    assert_eq!(anon.header("x-user-id"), None);
    assert!(anon.header("x-envoy-auth-headers-to-remove").unwrap_or_default().contains("x-user-id"));
    let forged = format!("Bearer {}", claims().sub("a").sign().replace('.', "x"));
    assert_eq!(g.check("GET", "/optional/x", &[("authorization", &forged)]).await.status, 401);
    let revoked = mint();
    assert_eq!(g.logout(&revoked).await.status, 200);
    let auth = format!("Bearer {revoked}");
    let rsp = g.check("GET", "/optional/x", &[("authorization", &auth)]).await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    let preflight = [("origin", "https://evil.example"), ("access-control-request-method", "DELETE")];
    assert_eq!(g.check("OPTIONS", "/api/x", &preflight).await.status, 401, "no policy: not a free pass");
    assert_eq!(app.total(), 0);
}

/// Only `trusted_proxies` get a verdict: another peer naming a public
/// request is refused, as is one with a valid token.
#[tokio::test]
async fn an_untrusted_peer_gets_no_verdict() {
    let app = Upstream::spawn().await;
    let g = gate(&app, "nginx").await;
    let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let token = mint();
    let check = format!(
        "GET /auth HTTP/1.1\r\nHost: a\r\nX-Original-Method: GET\r\nX-Original-URI: /public/x\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    assert_refused(&g.check_raw_from(other, check.as_bytes()).await, 403, "untrusted_peer", Challenge::Absent);
    let trusted = g.check_raw_from(IpAddr::V4(Ipv4Addr::LOCALHOST), check.as_bytes()).await;
    assert_eq!(trusted.status, 200, "positive control: {}", trusted.text());
}

/// tests/grpc/check.py (Python grpcio, Envoy's protos) against `gate`'s
/// gRPC listener: one result per check.
async fn grpc_checks(gate: &Gate, checks: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/check.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(gate.grpc_target())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs tests/grpc/check.py (scripts/test.sh installs grpcio and xds-protos)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&serde_json::to_vec(checks).expect("json")).await.expect("write checks");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("check.py answers within 30 s")
        .expect("check.py output");
    assert!(out.status.success(), "check.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("check.py JSON");
    assert_eq!(results.len(), checks.len());
    results
}

/// The gRPC check: the `path` field decides, not a `:path` in the headers
/// map; a fragment or an absolute URL in `path` is refused (a fragment
/// used to be parsed away); an underscore claim spelling is refused; a
/// header map over the field limit is 431, not a panic or a hang.
#[tokio::test]
async fn grpc_checks_are_decided_on_the_fields_and_refuse_what_could_be_read_two_ways() {
    use serde_json::json;
    let app = Upstream::spawn().await;
    let g = gate(&app, "envoy").await;
    let token = mint();
    let auth = format!("Bearer {token}");
    let mut huge = serde_json::Map::new();
    for i in 0..150 {
        huge.insert(format!("x-h{i}"), "v".into());
    }
    let at = |path: &str, headers: serde_json::Value| json!({ "method": "GET", "path": path, "host": "app.example", "headers": headers });
    let results = grpc_checks(
        &g,
        &[
            at("/api/x", json!({ "authorization": auth })),
            // check.py sets `:path` from `path`: this one overrides it in the map.
            at("/internal/x", json!({ ":path": "/public/x", "authorization": auth })),
            at("/public#/../internal/x", json!({})),
            at("/api/x?a#&_method=DELETE", json!({ "authorization": auth })),
            at("http://open.example/api/x", json!({})),
            at("/public/x", json!({ "x_user_id": "admin" })),
            at("/public/x", serde_json::Value::Object(huge)),
        ],
    )
    .await;
    assert_eq!(results[0]["code"], 0, "positive control: {}", results[0]);
    let denied = |i: usize| (results[i]["code"].clone(), results[i]["denied"]["status"].clone());
    assert_eq!(denied(1), (json!(7), json!(403)), "{}", results[1]);
    for (i, result) in results.iter().enumerate().take(6).skip(2) {
        assert_eq!(denied(i), (json!(3), json!(400)), "check {i}: {result}");
        assert!(result["denied"]["body"].as_str().unwrap_or_default().contains("invalid_forward_auth_request"));
    }
    assert_eq!(denied(6), (json!(3), json!(431)), "{}", results[6]);
    assert_eq!(app.total(), 0);
}
