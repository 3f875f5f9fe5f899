//! CORS on routes with a `cors:` policy: preflights answered without the
//! app (or sent to it, unauthenticated, under `preflight: forward`), the
//! headers a page needs on the actual responses, and everything unchanged
//! on routes without a policy. Closed routes stay closed.

use crate::support::gate::empty;
use crate::support::{assert_refused, metric, token, Cfg, Challenge, Gate, Rsp, Upstream};

const APP_ORIGIN: &str = "https://app.example.test";

const ROUTES: &str = r#"
  - match: { path_prefix: /spa, methods: [GET, POST] }
    auth: required
    cors:
      allow_origins: [https://app.example.test]
      allow_headers: [authorization, content-type]
      expose_headers: [x-request-id]
      max_age: 1h
  - match: { path_prefix: /reports }
    auth: required
    cors: { allow_origins: [https://app.example.test], allow_methods: [GET] }
  - match: { path_prefix: /legacy }
    auth: required
    cors: { preflight: forward }
  - match: { path_prefix: /closed }
    auth: deny
    cors: { allow_origins: ["*"] }
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /api }
    auth: required
"#;

async fn gate(app: &Upstream) -> Gate {
    Gate::spawn(&Cfg::new(app).admin().routes(ROUTES)).await
}

async fn preflight(gate: &Gate, path: &str, origin: &str, method: &str, headers: Option<&str>) -> Rsp {
    let mut req = gate.req("OPTIONS", path).header("origin", origin).header("access-control-request-method", method);
    if let Some(headers) = headers {
        req = req.header("access-control-request-headers", headers);
    }
    gate.send(req.body(empty()).unwrap()).await
}

#[tokio::test]
async fn a_preflight_is_answered_from_the_policy_without_the_app() {
    let app = Upstream::spawn().await;
    let gate = gate(&app).await;
    let rsp = preflight(&gate, "/spa/orders", APP_ORIGIN, "POST", Some("Authorization, Content-Type")).await;
    assert_eq!(rsp.status, 204, "{}", rsp.text());
    assert_eq!(rsp.header("access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    assert_eq!(rsp.header("access-control-allow-methods").as_deref(), Some("GET, POST"));
    assert_eq!(rsp.header("access-control-allow-headers").as_deref(), Some("authorization, content-type"));
    assert_eq!(rsp.header("access-control-max-age").as_deref(), Some("3600"));
    assert_eq!(rsp.header("vary").as_deref(), Some("origin"));
    assert_eq!(rsp.header("access-control-allow-credentials"), None);
    assert_eq!(app.total(), 0, "the app never saw the preflight");
    let text = gate.metrics().await;
    let labels = ["route=\"prefix:/spa\"", "outcome=\"preflight\""];
    assert_eq!(metric(&text, "jwtgate_requests_total", &labels), Some(1.0), "{text}");
}

#[tokio::test]
async fn a_preflight_outside_the_policy_is_refused_and_never_forwarded() {
    let app = Upstream::spawn().await;
    let gate = gate(&app).await;
    for (path, origin, method, headers, why) in [
        ("/spa/orders", "https://evil.example.test", "GET", None, "origin"),
        ("/spa/orders", "https://app.example.test.evil.test", "GET", None, "origin"),
        ("/spa/orders", "http://app.example.test", "GET", None, "origin (scheme)"),
        ("/spa/orders", APP_ORIGIN, "POST", Some("authorization, x-admin"), "header"),
        ("/reports/q1", APP_ORIGIN, "DELETE", None, "method"),
    ] {
        let rsp = preflight(&gate, path, origin, method, headers).await;
        assert_refused(&rsp, 403, "cors_not_allowed", Challenge::Absent);
        assert_eq!(rsp.header("access-control-allow-origin"), None, "{why}");
    }
    // Control: the same policy grants what it lists.
    assert_eq!(preflight(&gate, "/reports/q1", APP_ORIGIN, "GET", None).await.status, 204);
    // A DELETE on /spa would match no CORS rule (the /spa rule lists GET
    // and POST), so its preflight is decided as before: a token is needed.
    let rsp = preflight(&gate, "/spa/orders", APP_ORIGIN, "DELETE", None).await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.total(), 0);
}

#[tokio::test]
async fn actual_responses_carry_the_headers_a_page_needs_even_refusals() {
    let app = Upstream::spawn().await;
    let gate = gate(&app).await;
    let raw = token::mint();
    let req =
        gate.req("GET", "/spa/orders").header("origin", APP_ORIGIN).header("authorization", format!("Bearer {raw}"));
    let ok = gate.send(req.body(empty()).unwrap()).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    assert_eq!(ok.header("access-control-expose-headers").as_deref(), Some("x-request-id"));
    assert_eq!(app.seen("/spa/orders"), 1);
    // The page can read jwtgate's 401 (and so knows to log in again).
    let req = gate.req("GET", "/spa/orders").header("origin", APP_ORIGIN);
    let refused = gate.send(req.body(empty()).unwrap()).await;
    assert_refused(&refused, 401, "missing_token", Challenge::Bare);
    assert_eq!(refused.header("access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    // Another origin gets no grant, but the answer still varies by Origin.
    let req = gate.req("GET", "/spa/orders").header("origin", "https://evil.example.test");
    let req = req.header("authorization", format!("Bearer {raw}"));
    let other = gate.send(req.body(empty()).unwrap()).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(other.header("vary").as_deref(), Some("origin"));
    assert_eq!(app.seen("/spa/orders"), 2);
}

#[tokio::test]
async fn without_a_policy_a_preflight_is_a_request_like_any_other() {
    let app = Upstream::spawn().await;
    let gate = gate(&app).await;
    // Authenticated route: a browser's preflight has no token, so 401, as before.
    let rsp = preflight(&gate, "/api/orders", APP_ORIGIN, "GET", None).await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    assert_eq!(rsp.header("access-control-allow-origin"), None);
    assert_eq!(app.seen("/api/orders"), 0);
    // Public route: forwarded to the app as it always was.
    let rsp = preflight(&gate, "/public/x", APP_ORIGIN, "GET", None).await;
    assert_eq!(rsp.status, 200);
    let seen = app.one("/public/x");
    assert_eq!(seen.method, "OPTIONS");
    assert_eq!(seen.header("origin"), Some(APP_ORIGIN));
}

#[tokio::test]
async fn preflight_forward_sends_it_to_the_app_unauthenticated_and_nothing_else() {
    let app = Upstream::spawn().await;
    let gate = gate(&app).await;
    let req = gate
        .req("OPTIONS", "/legacy/items")
        .header("origin", APP_ORIGIN)
        .header("access-control-request-method", "PUT")
        .header("authorization", "Bearer not-a-verified-token")
        .header("x-user-id", "spoofed");
    let rsp = gate.send(req.body(empty()).unwrap()).await;
    assert_eq!(rsp.status, 200, "the app's own answer");
    let seen = app.one("/legacy/items");
    assert_eq!(seen.method, "OPTIONS");
    assert_eq!(seen.header("access-control-request-method"), Some("PUT"));
    assert_eq!(seen.header("authorization"), None, "an unverified credential never reaches the app");
    // Not a preflight (no Access-Control-Request-Method): a token is needed.
    let req = gate.req("OPTIONS", "/legacy/other").header("origin", APP_ORIGIN);
    assert_refused(&gate.send(req.body(empty()).unwrap()).await, 401, "missing_token", Challenge::Bare);
    let req = gate.req("PUT", "/legacy/other").header("origin", APP_ORIGIN);
    assert_refused(&gate.send(req.body(empty()).unwrap()).await, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.seen("/legacy/other"), 0);
}

#[tokio::test]
async fn a_closed_route_stays_closed_to_preflights() {
    let app = Upstream::spawn().await;
    let gate = gate(&app).await;
    let rsp = preflight(&gate, "/closed/x", APP_ORIGIN, "GET", None).await;
    assert_refused(&rsp, 403, "forbidden", Challenge::Absent);
    assert_eq!(rsp.header("access-control-allow-origin"), None);
    assert_eq!(app.total(), 0);
}

/// `explain` tells a preflight the way the proxy decides it.
#[tokio::test]
async fn explain_decides_a_preflight_as_the_proxy_does() {
    let app = Upstream::spawn().await;
    let config = crate::support::gate::write_config(&Cfg::new(&app).routes(ROUTES).yaml());
    let path = config.path().to_str().unwrap();
    let explain = |url: &'static str, origin: &'static str, method: &'static str| {
        let (origin, method) = (format!("Origin: {origin}"), format!("Access-Control-Request-Method: {method}"));
        async move {
            let args = ["explain", "-c", path, "OPTIONS", url, "-H", &origin, "-H", &method];
            let out = crate::support::gate::cli(&args).await;
            (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
        }
    };
    let check = crate::support::gate::cli(&["check", "--offline", "-c", path]).await;
    let summary = String::from_utf8_lossy(&check.stdout);
    assert!(summary.contains("cors: preflights answered"), "{summary}");
    assert!(summary.contains("cors: preflights forwarded unauthenticated"), "{summary}");
    let (code, out) = explain("/spa/orders", APP_ORIGIN, "POST").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("204 prefix:/spa: CORS preflight answered by jwtgate"), "{out}");
    let (code, out) = explain("/spa/orders", "https://evil.example.test", "POST").await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cors_not_allowed"), "{out}");
    let (code, out) = explain("/legacy/x", APP_ORIGIN, "PUT").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("unauthenticated"), "{out}");
    let (code, out) = explain("/api/x", APP_ORIGIN, "GET").await;
    assert_eq!(code, Some(1), "a rule without a policy: a token is needed, as for any request\n{out}");
    assert!(out.contains("no cors policy"), "{out}");
}

/// `logout.cors` (and `logout_all.cors`): a page on another origin can log
/// out: the preflight is answered, the logout's answer readable. jwtgate
/// answers these paths, so `preflight: forward` is refused there.
#[tokio::test]
async fn a_page_on_another_origin_can_log_out() {
    let app = Upstream::spawn().await;
    let policy = "  cors: { allow_origins: [https://app.example.test], allow_headers: [authorization] }\n";
    let mut cfg = Cfg::new(&app).routes(ROUTES);
    cfg.logout_all = true;
    let all = "logout_all:\n  path: /logout/all\n  methods: [POST]\n";
    let yaml = cfg.yaml().replacen("  forward: false\n", &format!("  forward: false\n{policy}"), 1).replacen(
        all,
        &format!("{all}{policy}"),
        1,
    );
    assert_eq!(yaml.matches(policy).count(), 2, "{yaml}");
    let gate = Gate::spawn_yaml(&yaml).await;
    for path in ["/logout", "/logout/all"] {
        let rsp = preflight(&gate, path, APP_ORIGIN, "POST", Some("authorization")).await;
        assert_eq!(rsp.status, 204, "{path}: {}", rsp.text());
        assert_eq!(rsp.header("access-control-allow-origin").as_deref(), Some(APP_ORIGIN), "{path}");
        assert_eq!(rsp.header("access-control-allow-methods").as_deref(), Some("POST"), "{path}");
    }
    let raw = token::mint();
    let req = gate.req("POST", "/logout").header("origin", APP_ORIGIN).header("authorization", format!("Bearer {raw}"));
    let out = gate.send(req.body(empty()).unwrap()).await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.header("access-control-allow-origin").as_deref(), Some(APP_ORIGIN));
    assert_refused(&gate.get("/api/after", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.total(), 0, "neither the preflights nor the logout reached the app");

    let forward =
        Cfg::new(&app).yaml().replace("  forward: false\n", "  forward: false\n  cors: { preflight: forward }\n");
    let file = crate::support::gate::write_config(&forward);
    let out = crate::support::gate::cli(&["check", "--offline", "-c", file.path().to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logout.cors.preflight") && err.contains("answer policy"), "{err}");
}

/// A browser sends one `Origin` and one `Access-Control-Request-Method`:
/// a request repeating either is no preflight, so it is authenticated like
/// any `OPTIONS` (never forwarded unauthenticated, never granted).
#[tokio::test]
async fn repeated_cors_headers_make_no_preflight() {
    let app = Upstream::spawn().await;
    let gate = gate(&app).await;
    for (path, headers) in [
        (
            "/legacy/twice",
            [("origin", APP_ORIGIN), ("origin", "https://evil.example.test"), ("access-control-request-method", "PUT")],
        ),
        (
            "/legacy/twice",
            [
                ("origin", APP_ORIGIN),
                ("access-control-request-method", "PUT"),
                ("access-control-request-method", "GET"),
            ],
        ),
        (
            "/spa/twice",
            [
                ("origin", APP_ORIGIN),
                ("access-control-request-method", "POST"),
                ("access-control-request-method", "POST"),
            ],
        ),
    ] {
        let mut req = gate.req("OPTIONS", path);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let rsp = gate.send(req.body(empty()).unwrap()).await;
        assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
        assert_eq!(rsp.header("access-control-allow-origin"), None, "{path} {headers:?}");
    }
    // An actual request with two Origins gets no grant either.
    let req = gate
        .req("GET", "/spa/orders")
        .header("origin", APP_ORIGIN)
        .header("origin", APP_ORIGIN)
        .header("authorization", format!("Bearer {}", token::mint()));
    let rsp = gate.send(req.body(empty()).unwrap()).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("access-control-allow-origin"), None);
    assert_eq!(app.seen("/legacy/twice") + app.seen("/spa/twice"), 0);
    // Control: the single-header preflight on the forward rule does reach the app.
    assert_eq!(preflight(&gate, "/legacy/once", APP_ORIGIN, "PUT", None).await.status, 200);
    assert_eq!(app.seen("/legacy/once"), 1);
}
