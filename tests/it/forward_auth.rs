//! Forward-auth over HTTP, spoken directly the way each proxy asks
//! (nginx `X-Original-*`, Traefik `X-Forwarded-*`, Envoy's own request
//! line under a path prefix): the same rules, tokens, revocation and
//! logout as the proxy, answered as a verdict; nothing is forwarded. The
//! real nginx and Traefik in front are in `forward_auth_proxies.rs`.

use crate::support::gate::read_response;
use crate::support::token::{claims, mint};
use crate::support::{assert_refused, metric, Cfg, Challenge, Gate, Redis, Upstream};
use std::net::{IpAddr, Ipv4Addr};

const ROUTES: &str = "
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /internal }
    auth: deny
  - match: { path_prefix: /api/admin, methods: [DELETE] }
    auth: deny
  - match: { path_prefix: /api }
    forward_claims: { sub: X-User-Id, email: X-Email }
";

/// The authorizer on its own port for `proxy` (Envoy's behind the path
/// prefix `/authz`), answering 127.0.0.1 (the test client).
fn cfg_for(app: &Upstream, proxy: &str) -> Cfg {
    let prefix = if proxy == "envoy" { "\n  path_prefix: /authz" } else { "" };
    let section =
        format!("forward_auth:\n  listen: 127.0.0.1:0\n  proxy: {proxy}{prefix}\ntrusted_proxies: [\"127.0.0.1\"]\n");
    Cfg::new(app).routes(ROUTES).extra(&section)
}

fn cfg(app: &Upstream) -> Cfg {
    cfg_for(app, "nginx")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// nginx's check: `GET /auth` with the original method and URI.
async fn nginx(
    gate: &Gate,
    method: &str,
    uri: &str,
    token: Option<&str>,
    more: &[(&str, &str)],
) -> crate::support::Rsp {
    let auth = token.map(bearer);
    let mut headers = vec![("x-original-method", method), ("x-original-uri", uri)];
    if let Some(auth) = auth.as_deref() {
        headers.push(("authorization", auth));
    }
    headers.extend_from_slice(more);
    gate.check("GET", "/auth", &headers).await
}

#[tokio::test]
async fn a_live_token_is_allowed_with_its_claim_headers_and_nothing_is_forwarded() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app)).await;
    let token = claims().sub("user-7").sign();
    // A client's own X-User-Id is passed on by nginx to the check: the
    // verdict carries the verified one, and no X-Email (no such claim).
    let rsp = nginx(&gate, "GET", "/api/orders?id=1", Some(&token), &[("x-user-id", "admin")]).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.header("x-user-id").as_deref(), Some("user-7"));
    assert_eq!(rsp.header("x-email"), None);
    assert_eq!(rsp.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(rsp.header("x-envoy-auth-headers-to-remove"), None, "only Envoy is told to remove");
    // The rules decide on the original request, not the check request.
    assert_eq!(nginx(&gate, "GET", "/public/x", None, &[]).await.status, 200, "a public path needs no token");
    assert_refused(&nginx(&gate, "GET", "/api/orders", None, &[]).await, 401, "missing_token", Challenge::Bare);
    let closed = nginx(&gate, "GET", "/internal/x", Some(&token), &[]).await;
    assert_refused(&closed, 403, "forbidden", Challenge::Absent);
    let deleted = nginx(&gate, "DELETE", "/api/admin/users", Some(&token), &[]).await;
    assert_refused(&deleted, 403, "forbidden", Challenge::Absent);
    assert_eq!(nginx(&gate, "GET", "/api/admin/users", Some(&token), &[]).await.status, 200, "only DELETE is denied");
    let forged = claims().sub("user-7").sign().replace('.', "x");
    let bad = nginx(&gate, "GET", "/api/orders", Some(&forged), &[]).await;
    assert_eq!(bad.status, 401);
    assert_eq!(app.total(), 0, "forward-auth forwards nothing: {:?}", app.requests());
}

#[tokio::test]
async fn logout_through_forward_auth_revokes_and_a_revoked_token_is_refused_on_every_uri() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app)).await;
    let token = mint();
    assert_eq!(nginx(&gate, "GET", "/api/x", Some(&token), &[]).await.status, 200, "live before the logout");
    // 200: the proxy goes on to the app's own logout.
    let logout = nginx(&gate, "POST", "/logout", Some(&token), &[]).await;
    assert_eq!(logout.status, 200, "{}", logout.text());
    for (method, uri) in [("GET", "/api/x"), ("POST", "/logout"), ("GET", "/api/admin/users")] {
        let rsp = nginx(&gate, method, uri, Some(&token), &[]).await;
        assert_eq!(rsp.status, 401, "{method} {uri}: {}", rsp.text());
    }
    assert_refused(
        &nginx(&gate, "POST", "/logout", Some(&token), &[]).await,
        401,
        "token_revoked",
        Challenge::InvalidToken,
    );
    // The proxy listener shares the revocation: the token is dead there too.
    assert_refused(&gate.get("/api/x", &token).await, 401, "token_revoked", Challenge::InvalidToken);
    let other = mint();
    assert_eq!(nginx(&gate, "GET", "/api/x", Some(&other), &[]).await.status, 200, "another token stays live");
    assert_eq!(app.total(), 0, "nothing reached the app: {:?}", app.requests());
}

#[tokio::test]
async fn traefik_and_envoy_checks_are_read_from_their_own_headers() {
    let app = Upstream::spawn().await;
    let gate =
        Gate::spawn(&cfg_for(&app, "traefik").extra("logout_all: { path: /logout/all, methods: [POST] }\n")).await;
    let envoy_gate = Gate::spawn(&cfg_for(&app, "envoy")).await;
    let token = claims().sub("user-9").claim("email", serde_json::json!("u9@example.test")).sign();
    let auth = bearer(&token);
    let traefik = |method: &'static str, uri: &'static str| {
        let auth = auth.clone();
        let gate = &gate;
        async move {
            let headers = [
                ("x-forwarded-method", method),
                ("x-forwarded-uri", uri),
                ("x-forwarded-host", "app.example"),
                ("x-forwarded-proto", "https"),
                ("authorization", auth.as_str()),
            ];
            gate.check("GET", "/", &headers).await
        }
    };
    let allowed = traefik("GET", "/api/x").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.header("x-email").as_deref(), Some("u9@example.test"));
    assert_refused(&traefik("DELETE", "/api/admin/1").await, 403, "forbidden", Challenge::Absent);
    // A refusal keeps its status for Traefik (it relays it to the client).
    assert_refused(&traefik("GET", "/api/%2e%2e/internal").await, 400, "ambiguous_path", Challenge::Absent);

    // A client's own nginx headers, passed on by Traefik, count for nothing.
    let headers = [
        ("x-forwarded-method", "DELETE"),
        ("x-forwarded-uri", "/api/admin/1"),
        ("x-original-method", "GET"),
        ("x-original-uri", "/public/x"),
        ("authorization", auth.as_str()),
    ];
    assert_refused(&gate.check("GET", "/", &headers).await, 403, "forbidden", Challenge::Absent);

    // Envoy: the original method and path behind `path_prefix`.
    let gate_traefik = &gate;
    let gate = &envoy_gate;
    let envoy = gate.check("PATCH", "/authz/api/x?y=1", &[("authorization", &auth), ("host", "app.example")]).await;
    assert_eq!(envoy.status, 200, "{}", envoy.text());
    assert_eq!(envoy.header("x-user-id").as_deref(), Some("user-9"));
    let envoy_anon = gate.check("GET", "/authz/public/page", &[]).await;
    assert_eq!(envoy_anon.status, 200);
    let removed = envoy_anon.header("x-envoy-auth-headers-to-remove").expect("Envoy is told what to remove");
    let removed: Vec<&str> = removed.split(',').collect();
    for name in ["x-user-id", "x-email"] {
        assert!(removed.contains(&name), "{name} in {removed:?}: a client's copy must not reach the app");
    }
    let outside = gate.check("GET", "/elsewhere/api/x", &[("authorization", &auth)]).await;
    assert_refused(&outside, 400, "invalid_forward_auth_request", Challenge::Absent);
    // Nor do a client's nginx or Traefik headers, through Envoy.
    let forged = [("authorization", auth.as_str()), ("x-original-method", "GET"), ("x-original-uri", "/public/x")];
    assert_refused(&gate.check("DELETE", "/authz/api/admin/1", &forged).await, 403, "forbidden", Challenge::Absent);
    let gate = gate_traefik;

    // Log out everywhere through Traefik: every token of the subject dies.
    let second = claims().sub("user-9").sign();
    assert_eq!(traefik("POST", "/logout/all").await.status, 200);
    let headers = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/api/x")];
    let auth2 = bearer(&second);
    let dead = gate.check("GET", "/", &[headers[0], headers[1], ("authorization", &auth2)]).await;
    assert_refused(&dead, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.total(), 0);
}

#[tokio::test]
async fn nginx_gets_401_or_403_for_every_refusal_and_an_incomplete_check_is_refused() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app)).await;
    let token = mint();
    // nginx turns any auth status but 401 and 403 into 500: a 400 becomes 403.
    let dots = nginx(&gate, "GET", "/api/%2e%2e/internal/x", Some(&token), &[]).await;
    assert_refused(&dots, 403, "ambiguous_path", Challenge::Absent);
    let no_method =
        gate.check("GET", "/auth", &[("x-original-uri", "/api/x"), ("authorization", &bearer(&token))]).await;
    assert_refused(&no_method, 403, "invalid_forward_auth_request", Challenge::Absent);
    assert!(no_method.text().contains("X-Original-Method"), "{}", no_method.text());
    let relative = nginx(&gate, "GET", "api/x", Some(&token), &[]).await;
    assert_refused(&relative, 403, "invalid_forward_auth_request", Challenge::Absent);
    // nginx sets one of X-Original-URI and -URL: a client may add the other.
    let auth = bearer(&token);
    let both = [
        ("x-original-method", "DELETE"),
        ("x-original-uri", "/api/admin/1"),
        ("x-original-url", "http://app/public/x"),
        ("authorization", auth.as_str()),
    ];
    assert_refused(&gate.check("GET", "/auth", &both).await, 403, "invalid_forward_auth_request", Challenge::Absent);
    // ingress-nginx sends the whole URL; its host is the original's.
    let url = [("x-original-method", "GET"), ("x-original-url", "https://app.example/api/x"), ("host", "jwtgate")];
    let ingress = gate.check("GET", "/auth", &[url[0], url[1], url[2], ("authorization", &auth)]).await;
    assert_eq!(ingress.status, 200, "{}", ingress.text());
    assert_eq!(app.total(), 0);
}

#[tokio::test]
async fn only_trusted_proxies_get_a_verdict() {
    let app = Upstream::spawn().await;
    let yaml = cfg(&app).yaml().replace("trusted_proxies: [\"127.0.0.1\"]", "trusted_proxies: [\"127.0.0.2\"]");
    let gate = Gate::spawn_yaml(&yaml).await;
    let token = mint();
    let request = format!(
        "GET /auth HTTP/1.1\r\nhost: jwtgate\r\nx-original-method: GET\r\nx-original-uri: /api/x\r\n\
         authorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    let untrusted = gate.check_raw_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), request.as_bytes()).await;
    assert_refused(&untrusted, 403, "untrusted_peer", Challenge::Absent);
    let trusted = gate.check_raw_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), request.as_bytes()).await;
    assert_eq!(trusted.status, 200, "the trusted proxy gets its verdict: {}", trusted.text());
    assert_eq!(app.total(), 0);
}

#[tokio::test]
async fn forward_auth_config_errors_name_the_field_and_check_shows_the_listener() {
    let app = Upstream::spawn().await;
    let check = |yaml: String| async move {
        let file = crate::support::gate::write_config(&yaml);
        let out = crate::support::gate::cli(&["check", "--offline", "-c", file.path().to_str().unwrap()]).await;
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let trusted = "trusted_proxies: [\"127.0.0.1\"]\n";
    let cases = [
        ("forward_auth:\n  listen: 127.0.0.1:0\n  proxy: nginx\n".to_owned(), "trusted_proxies"),
        (format!("forward_auth:\n  listen: 127.0.0.1:0\n{trusted}"), "forward_auth.proxy"),
        (
            format!("forward_auth:\n  listen: 127.0.0.1:0\n  proxy: nginx\n  path_prefix: /a\n{trusted}"),
            "only with proxy: envoy",
        ),
        (format!("forward_auth:\n  proxy: nginx\n{trusted}"), "set listen, grpc_listen or both"),
        (format!("forward_auth:\n  listen: 127.0.0.1:0\n  proxy: haproxy\n{trusted}"), "forward_auth.proxy"),
    ];
    for (section, expected) in cases {
        let (ok, _, stderr) = check(Cfg::new(&app).extra(&section).yaml()).await;
        assert!(!ok, "refused: {section}");
        assert!(stderr.contains(expected) && stderr.contains("forward_auth"), "{section}: {stderr}");
    }
    // A valid one: `check` shows where the authorizer listens, for whom.
    let (ok, stdout, stderr) = check(cfg_for(&app, "envoy").yaml()).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("forward-auth http: 127.0.0.1:0 (proxy: envoy, path_prefix: /authz), grpc: off"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_public_listener_never_answers_as_forward_auth() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app)).await;
    let token = mint();
    // The check's headers mean nothing on the proxy: /auth is a path like
    // any other, decided by the rules and forwarded as itself.
    let req = gate
        .req("GET", "/auth")
        .header("x-original-method", "GET")
        .header("x-original-uri", "/public/x")
        .body(crate::support::gate::empty())
        .unwrap();
    assert_refused(&gate.send(req).await, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.total(), 0);
    let req = gate
        .req("GET", "/auth")
        .header("authorization", bearer(&token))
        .header("x-original-uri", "/public/x")
        .body(crate::support::gate::empty())
        .unwrap();
    let rsp = gate.send(req).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(app.one("/auth").target, "/auth", "proxied as its own path, not answered as a verdict");
}

#[tokio::test]
async fn the_back_channel_receiver_is_not_reached_through_forward_auth() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app).backchannel(crate::support::token::ISSUER)).await;
    let rsp = nginx(&gate, "POST", crate::support::config::BACKCHANNEL_PATH, None, &[]).await;
    assert_refused(&rsp, 403, "backchannel_elsewhere", Challenge::Absent);
}

#[tokio::test]
async fn a_store_outage_is_a_503_and_allowed_checks_are_counted() {
    let redis = Redis::spawn().await;
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app).redis(&redis).admin()).await;
    let token = mint();
    assert_eq!(nginx(&gate, "GET", "/api/x", Some(&token), &[]).await.status, 200);
    let metrics = gate.metrics().await;
    let allowed = metric(&metrics, "jwtgate_requests_total", &["outcome=\"allowed\"", "route=\""]);
    assert!(allowed.unwrap_or(0.0) >= 1.0, "allowed checks are counted: {allowed:?}");
    redis.pause();
    // A token this replica has not seen: its revocation state is unknown.
    let unseen = mint();
    let rsp = nginx(&gate, "GET", "/api/x", Some(&unseen), &[]).await;
    redis.resume();
    assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    assert_eq!(app.total(), 0);
}

/// The check request read off a raw connection keeps HTTP/1.0 working:
/// nginx's `auth_request` speaks 1.0 unless told otherwise.
#[tokio::test]
async fn an_http_1_0_check_gets_its_verdict() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&cfg(&app)).await;
    let token = mint();
    let addr = gate.forward_auth.unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /auth HTTP/1.0\r\nhost: jwtgate\r\nx-original-method: GET\r\nx-original-uri: /api/x\r\n\
         authorization: Bearer {token}\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await.unwrap();
    let rsp = read_response(&mut stream).await.unwrap();
    assert_eq!(rsp.status, 200, "{}", rsp.text());
}

/// `forward_auth.listen` is fixed at start, `proxy` reloads with the rest:
/// a reload without it leaves the listener up but unable to read a check,
/// so it refuses every one (never reads the check's own request line).
#[tokio::test]
async fn a_reload_that_drops_the_proxy_leaves_the_listener_refusing() {
    let app = Upstream::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwtgate.yaml");
    let yaml = cfg(&app).yaml();
    std::fs::write(&file, &yaml).expect("write config");
    let gate = Gate::spawn_file(&file).await;
    let token = mint();
    assert_eq!(nginx(&gate, "GET", "/api/x", Some(&token), &[]).await.status, 200, "control");
    let without =
        yaml.replace("  proxy: nginx\n", "").replace("  listen: 127.0.0.1:0\n", "  grpc_listen: 127.0.0.1:0\n");
    assert_ne!(without, yaml);
    crate::support::configmap::replace_file(&file, &without);
    gate.sighup();
    let refused = crate::support::eventually(std::time::Duration::from_secs(10), "the reload applied", || async {
        let rsp = nginx(&gate, "GET", "/api/x", Some(&token), &[]).await;
        (rsp.status != 200).then_some(rsp)
    })
    .await;
    assert_refused(&refused, 400, "invalid_forward_auth_request", Challenge::Absent);
    assert!(refused.text().contains("no longer configured"), "{}", refused.text());
    assert!(gate.logs().contains("fixed at start"), "the reload warns:\n{}", gate.logs());
    assert_eq!(app.total(), 0);
}
