//! Forward-auth over gRPC: Envoy's (and Istio's) ext_authz `Check`, called
//! by a client that shares no code with jwtgate (tests/grpc/check.py:
//! Python grpcio with the Envoy protos of the PyPI package xds-protos,
//! over HTTP/2 as Envoy speaks it). The same rules, tokens, revocation and
//! logout as the proxy; the answer is a `CheckResponse`, nothing is
//! forwarded. Python, grpcio or xds-protos missing fails the test.

use crate::support::token::{claims, mint};
use crate::support::{assert_refused, eventually, metric, Cfg, Challenge, Gate, Redis, Rsp, Upstream};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const ROUTES: &str = "
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /internal }
    auth: deny
  - match: { path_prefix: /api/admin, methods: [DELETE] }
    auth: deny
  - match: { host: open.example, path_prefix: /api }
    auth: none
  - match: { path_prefix: /api }
    forward_claims: { sub: X-User-Id, email: X-Email }
";

/// Only the gRPC authorizer, answering 127.0.0.1 (the Python client).
const FORWARD_AUTH_GRPC: &str = "
forward_auth:
  grpc_listen: 127.0.0.1:0
trusted_proxies: [\"127.0.0.1\"]
";

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/grpc/check.py");
const CHANNEL: &str = "jwtgate:revocations";

/// Runs `checks` through tests/grpc/check.py against `gate`'s gRPC
/// listener, one result per check (bounded to 30 s).
async fn check(gate: &Gate, checks: &[Value]) -> Vec<Value> {
    let mut child = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .arg(gate.grpc_target())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs tests/grpc/check.py (scripts/test.sh installs grpcio and xds-protos)");
    let input = serde_json::to_vec(checks).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("check.py answers within 30 s")
        .expect("check.py output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "check.py failed ({}): {stderr}", out.status);
    let results: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check.py printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(results.len(), checks.len(), "one result per check: {results:?}");
    results
}

/// One check: the original request's method, path (with query), host and
/// headers, the token as its `Authorization`.
fn original(method: &str, path: &str, token: Option<&str>, more: &[(&str, &str)]) -> Value {
    let mut headers = serde_json::Map::new();
    if let Some(token) = token {
        headers.insert("authorization".into(), format!("Bearer {token}").into());
    }
    for (name, value) in more {
        headers.insert((*name).into(), (*value).into());
    }
    json!({ "method": method, "path": path, "host": "app.example", "headers": headers })
}

/// The `OkHttpResponse` of an allowed check (status OK, code 0).
#[track_caller]
fn allowed(result: &Value) -> &Value {
    assert_eq!(result["code"], 0, "allowed: {result}");
    assert!(result["denied"].is_null(), "{result}");
    &result["ok"]
}

/// A denied check as the HTTP response Envoy sends the client, with the
/// gRPC status code checked: `assert_refused` then reads it like any other.
#[track_caller]
fn denied(result: &Value, grpc_code: i64) -> Rsp {
    assert_eq!(result["code"], grpc_code, "gRPC status: {result}");
    assert!(result["ok"].is_null(), "{result}");
    let denied = &result["denied"];
    let mut headers = http::HeaderMap::new();
    for (name, value) in denied["headers"].as_object().expect("denied headers") {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        headers.insert(name, value.as_str().unwrap().parse().unwrap());
    }
    let status = denied["status"].as_u64().expect("denied status") as u16;
    Rsp { status, headers, body: denied["body"].as_str().unwrap().to_owned().into() }
}

fn removed(ok: &Value) -> Vec<&str> {
    ok["headers_to_remove"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[tokio::test]
async fn a_live_token_is_allowed_with_its_claim_headers_and_a_spoofed_copy_never_survives() {
    let app = Upstream::spawn().await;
    // Both forward-auth listeners and an admin one: the ready lines in order.
    let both = FORWARD_AUTH_GRPC.replace("forward_auth:\n", "forward_auth:\n  listen: 127.0.0.1:0\n  proxy: envoy\n");
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).extra(&both).admin()).await;
    assert!(gate.forward_auth.is_some() && gate.admin.is_some());
    let token = claims().sub("user-7").sign();
    let forged = claims().sub("user-7").sign().replace('.', "x");
    let results = check(
        &gate,
        &[
            // A client's own X-User-Id reaches the check: the verdict overwrites it.
            original("GET", "/api/orders?id=1", Some(&token), &[("x-user-id", "admin")]),
            original("GET", "/api/orders", None, &[("x-user-id", "admin")]),
            original("GET", "/public/x", None, &[]),
            original("GET", "/internal/x", Some(&token), &[]),
            original("DELETE", "/api/admin/users", Some(&token), &[]),
            original("GET", "/api/admin/users", Some(&token), &[]),
            original("GET", "/api/orders", Some(&forged), &[]),
            // The host field decides as the Host header does.
            json!({ "method": "GET", "path": "/api/x", "host": "open.example", "headers": {} }),
        ],
    )
    .await;

    let ok = allowed(&results[0]);
    assert_eq!(ok["headers"]["x-user-id"], "user-7", "the verified sub, not the spoofed one: {ok}");
    assert_eq!(ok["append_actions"]["x-user-id"], "OVERWRITE_IF_EXISTS_OR_ADD", "{ok}");
    assert_eq!(ok["appends"], json!({}), "the deprecated append stays unset: {ok}");
    assert_eq!(ok["response_headers_to_add"], json!({}), "the claims are for the app, not the client: {ok}");
    assert!(ok["headers"].get("x-email").is_none(), "no such claim: {ok}");
    assert!(
        ok["headers"].get("cache-control").is_none() && ok["headers"].get("x-envoy-auth-headers-to-remove").is_none()
    );
    let gone = removed(ok);
    assert!(gone.contains(&"x-email") && !gone.contains(&"x-user-id"), "{gone:?}");

    let anonymous = denied(&results[1], 16);
    assert_refused(&anonymous, 401, "missing_token", Challenge::Bare);
    assert!(anonymous.header("content-type").unwrap().starts_with("application/json"));

    let public = allowed(&results[2]);
    let gone = removed(public);
    for name in ["x-user-id", "x-email"] {
        assert!(gone.contains(&name), "{name} in {gone:?}: a client's copy must not reach the app");
    }
    assert!(public["headers"].get("x-user-id").is_none(), "{public}");

    assert_refused(&denied(&results[3], 7), 403, "forbidden", Challenge::Absent);
    assert_refused(&denied(&results[4], 7), 403, "forbidden", Challenge::Absent);
    assert_eq!(allowed(&results[5])["headers"]["x-user-id"], "user-7", "only DELETE is denied");
    assert_eq!(denied(&results[6], 16).status, 401, "a forged signature");
    assert!(allowed(&results[7])["headers"].get("x-user-id").is_none(), "open.example's /api needs no token");

    let metrics = gate.metrics().await;
    let counted = metric(&metrics, "jwtgate_requests_total", &["outcome=\"allowed\""]);
    assert!(counted.unwrap_or(0.0) >= 4.0, "allowed checks are counted: {counted:?}");
    assert_eq!(app.total(), 0, "forward-auth forwards nothing: {:?}", app.requests());
}

#[tokio::test]
async fn a_check_request_without_a_readable_request_is_refused_400() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).extra(FORWARD_AUTH_GRPC)).await;
    let token = mint();
    let results = check(
        &gate,
        &[
            json!({ "no_http": true }),
            original("GET", "api/x", Some(&token), &[]),
            original("", "/api/x", Some(&token), &[]),
            original("GET", "/api/x", Some(&token), &[]),
        ],
    )
    .await;
    for (i, result) in results[..3].iter().enumerate() {
        let rsp = denied(result, 3);
        assert_refused(&rsp, 400, "invalid_forward_auth_request", Challenge::Absent);
        assert!(rsp.text().contains("attributes.request.http"), "check {i}: {}", rsp.text());
        assert!(rsp.header("x-request-id").is_some(), "refused by the phases, as any request: {i}");
    }
    allowed(&results[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_through_check_revokes_the_token_on_every_listener_and_replica() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let authorizer = Gate::spawn(&Cfg::new(&app).routes(ROUTES).extra(FORWARD_AUTH_GRPC).redis(&redis)).await;
    let replica = Gate::spawn(&Cfg::new(&app).routes(ROUTES).redis(&redis)).await;
    redis.await_subscribers(CHANNEL, 2).await;
    let (token, other, elsewhere) = (mint(), mint(), mint());
    // Every token live first; the replica caches "not revoked" for them.
    for raw in [&token, &other, &elsewhere] {
        assert_eq!(replica.get("/api/warm", raw).await.status, 200, "control: the replica accepts");
    }
    let before = check(&authorizer, &[original("GET", "/api/x", Some(&token), &[])]).await;
    allowed(&before[0]);
    // A logout elsewhere (the replica's proxy listener) is seen by Check too.
    assert_eq!(replica.logout(&elsewhere).await.status, 200);

    // Through Check the logout is allowed (the app's own logout runs) and revokes.
    let logout = check(&authorizer, &[original("POST", "/logout", Some(&token), &[])]).await;
    allowed(&logout[0]);
    let after = check(
        &authorizer,
        &[
            original("GET", "/api/x", Some(&token), &[]),
            original("POST", "/logout", Some(&token), &[]),
            original("GET", "/api/x", Some(&other), &[]),
            original("GET", "/api/x", Some(&elsewhere), &[]),
        ],
    )
    .await;
    assert_refused(&denied(&after[0], 16), 401, "token_revoked", Challenge::InvalidToken);
    assert_refused(&denied(&after[1], 16), 401, "token_revoked", Challenge::InvalidToken);
    allowed(&after[2]);
    assert_refused(&denied(&after[3], 16), 401, "token_revoked", Challenge::InvalidToken);

    // The authorizer's proxy listener and the other replica refuse it too.
    assert_refused(&authorizer.get("/api/x", &token).await, 401, "token_revoked", Challenge::InvalidToken);
    let refused = eventually(Duration::from_secs(5), "the replica refuses the revoked token", || async {
        let rsp = replica.get("/api/x", &token).await;
        (rsp.status == 401).then_some(rsp)
    })
    .await;
    assert_refused(&refused, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(replica.get("/api/x", &other).await.status, 200, "another token stays live");
    let seen: Vec<String> = app.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(seen, ["/api/warm", "/api/warm", "/api/warm", "/api/x"], "only the proxy's requests reach the app");
}

#[tokio::test]
async fn only_trusted_proxies_get_a_verdict() {
    let app = Upstream::spawn().await;
    let yaml = Cfg::new(&app)
        .routes(ROUTES)
        .extra(FORWARD_AUTH_GRPC)
        .yaml()
        .replace("trusted_proxies: [\"127.0.0.1\"]", "trusted_proxies: [\"10.0.0.0/8\"]");
    let gate = Gate::spawn_yaml(&yaml).await;
    let token = mint();
    let results = check(&gate, &[original("GET", "/api/x", Some(&token), &[]), json!({ "no_http": true })]).await;
    // Trust is decided first: an unreadable check from a stranger is no 400.
    for result in &results {
        assert_refused(&denied(result, 7), 403, "untrusted_peer", Challenge::Absent);
    }
    assert_eq!(app.total(), 0);
}

#[tokio::test]
async fn a_store_outage_is_unavailable() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).extra(FORWARD_AUTH_GRPC).redis(&redis)).await;
    let seen = mint();
    allowed(&check(&gate, &[original("GET", "/api/x", Some(&seen), &[])]).await[0]);
    redis.pause();
    // A token this replica has not seen: its revocation state is unknown.
    let unseen = mint();
    let results = check(&gate, &[original("GET", "/api/x", Some(&unseen), &[])]).await;
    redis.resume();
    assert_refused(&denied(&results[0], 14), 503, "store_unavailable", Challenge::Absent);
    assert_eq!(app.total(), 0);
}

#[tokio::test]
async fn sigterm_stops_the_grpc_listener_with_the_others() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).extra(FORWARD_AUTH_GRPC)).await;
    allowed(&check(&gate, &[original("GET", "/public/x", None, &[])]).await[0]);
    gate.sigterm();
    eventually(Duration::from_secs(10), "jwtgate exits after SIGTERM", || async { (!gate.alive()).then_some(()) })
        .await;
    assert!(gate.logs().contains("forward-auth grpc shutting down"), "{}", gate.logs());
    let refused = tokio::net::TcpStream::connect(gate.grpc_target()).await;
    assert!(refused.is_err(), "the gRPC listener is closed");
}
