//! Requests shaped to slip past a rule: paths and hosts spelled the way the
//! app routes them but the rules did not, hop-by-hop and underscore tricks
//! on claim headers, credentials the gate never checked, tokens that would
//! outlive their revocation records, logout tokens as access tokens and an
//! IdP clock running ahead of the gate's.

use crate::route_match::Probe;
use crate::support::gate::empty;
use crate::support::token::{self, claims};
use crate::support::{assert_refused, now_unix, Cfg, Challenge, Gate, Rsp, Upstream};
use serde_json::json;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Sends `req` and asserts the refusal and that nothing new reached the app.
async fn refused(
    gate: &Gate,
    app: &Upstream,
    req: hyper::http::request::Builder,
    status: u16,
    code: &str,
    ch: Challenge,
) {
    let before = app.total();
    let rsp = gate.send(req.body(empty()).expect("request")).await;
    assert_refused(&rsp, status, code, ch);
    assert_eq!(app.total(), before, "a refused request ({code}) reached the upstream");
}

/// Writes `request` raw and asserts the refusal and that nothing new reached the app.
async fn refused_raw(gate: &Gate, app: &Upstream, request: &[u8], status: u16, code: &str) -> Rsp {
    let before = app.total();
    let rsp = gate.raw(request).await;
    assert_refused(&rsp, status, code, Challenge::Absent);
    assert_eq!(app.total(), before, "a refused request ({code}) reached the upstream");
    rsp
}

#[tokio::test]
async fn deny_rule_covers_every_spelling_of_its_path_that_the_app_would_route() {
    let p = Probe::new(crate::support::config::ROUTES).await;
    p.forwarded(p.req("GET", "/public/x"), "control: an open rule").await;
    p.denied(p.req("GET", "/internal/x"), "control: the rule as written").await;
    p.denied(p.req("GET", "/INTERNAL/x"), "upper case").await;
    p.denied(p.req("GET", "/Internal"), "mixed case, the prefix itself").await;
    p.denied(p.req("GET", "/internal;x/y"), "a ;param on the segment").await;
    p.denied(p.req("GET", "/internal/"), "a trailing slash").await;
}

#[tokio::test]
async fn case_sensitive_paths_leaves_other_spellings_to_the_default_rule() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).extra("case_sensitive_paths: true")).await;
    assert_eq!(gate.get_anon("/public/x").await.status, 200, "control: an open rule");
    assert_eq!(app.seen("/public/x"), 1);
    refused(&gate, &app, gate.req("GET", "/internal/x"), 403, "forbidden", Challenge::Absent).await;
    // Not the deny rule any more: the default (`auth: required`) asks for a token.
    refused(&gate, &app, gate.req("GET", "/INTERNAL/x"), 401, "missing_token", Challenge::Bare).await;
    refused(&gate, &app, gate.req("GET", "/PUBLIC/x"), 401, "missing_token", Challenge::Bare).await;
}

#[tokio::test]
async fn upstream_receives_the_path_bytes_the_client_sent_not_the_matching_form() {
    let p = Probe::new(crate::support::config::ROUTES).await;
    p.forwarded(p.req("GET", "/Public;v=1/x?q=A"), "matched by the /public rule").await;
    assert_eq!(p.app.one("/Public;v=1/x").target, "/Public;v=1/x?q=A");
}

#[tokio::test]
async fn logout_path_spelled_as_the_app_would_route_it_revokes_and_is_answered_by_the_gate() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    for path in ["/Logout", "/logout/", "/logout;x"] {
        let raw = claims().sign();
        assert_eq!(gate.get("/api/before", &raw).await.status, 200, "{path}: control");
        let req = gate.req("POST", path).header("authorization", format!("Bearer {raw}"));
        let rsp = gate.send(req.body(empty()).expect("request")).await;
        assert_eq!(app.seen(path), 0, "{path}: logout forwarded");
        assert_eq!(rsp.status, 200, "{path}: {}", rsp.text());
        assert_eq!(rsp.json()["revoked"], true, "{path}: {}", rsp.text());
        let rsp = gate.get("/api/after", &raw).await;
        assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
        assert_eq!(app.seen("/api/after"), 0, "{path}: a logged-out token reached the app");
    }
    assert_eq!(gate.get("/api/other", &token::mint()).await.status, 200, "other tokens unaffected");
}

#[tokio::test]
async fn request_with_two_host_headers_or_a_non_ascii_host_is_refused() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    let one = gate.raw(b"GET /public/one HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n").await;
    assert_eq!(one.status, 200, "control: {}", one.text());
    assert_eq!(app.seen("/public/one"), 1);

    let two = b"GET /public/two HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n";
    refused_raw(&gate, &app, two, 400, "ambiguous_host").await;
    let non_ascii = b"GET /public/utf8 HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\nConnection: close\r\n\r\n";
    refused_raw(&gate, &app, non_ascii, 400, "ambiguous_host").await;
}

#[tokio::test]
async fn host_rule_catches_a_trailing_dot_and_any_case_with_a_port() {
    let routes = "
  - match: { host: admin.example.com }
    auth: deny
  - match: { path_prefix: / }
    auth: none
";
    let p = Probe::new(routes).await;
    p.forwarded(p.req("GET", "/x").header("host", "www.example.com"), "control: another host").await;
    p.denied(p.req("GET", "/x").header("host", "admin.example.com"), "control: the host as written").await;
    p.denied(p.req("GET", "/x").header("host", "admin.example.com."), "a trailing dot").await;
    p.denied(p.req("GET", "/x").header("host", "ADMIN.example.com:8080"), "upper case with a port").await;
}

const CLAIM_ROUTES: &str = "
  - match: { path_prefix: /claims }
    forward_claims: { sub: X-User-Id, roles: X-Roles }
  - match: { path_prefix: /open }
    auth: none
";

#[tokio::test]
async fn connection_header_cannot_remove_a_claim_header_the_gate_sets() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(CLAIM_ROUTES)).await;
    let raw = claims().sub("alice").sign();
    let req = gate
        .req("GET", "/claims/conn")
        .header("authorization", format!("Bearer {raw}"))
        .header("connection", "X-User-Id");
    let rsp = gate.send(req.body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let seen = app.one("/claims/conn");
    let ids: Vec<&str> = seen.headers.iter().filter(|(k, _)| k == "x-user-id").map(|(_, v)| v.as_str()).collect();
    assert_eq!(ids, ["alice"], "exactly the verified sub");
    assert_eq!(seen.header("connection"), None, "hop-by-hop header forwarded");
}

#[tokio::test]
async fn underscore_spelling_of_a_claim_header_is_stripped() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(CLAIM_ROUTES)).await;
    let req = gate.req("GET", "/open/x").header("X_User_Id", "root").header("x_unrelated", "kept");
    let rsp = gate.send(req.body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let seen = app.one("/open/x");
    assert_eq!(seen.header("x_user_id"), None, "underscore lookalike of X-User-Id reached the app");
    assert_eq!(seen.header("x-user-id"), None);
    assert_eq!(seen.header("x_unrelated"), Some("kept"), "control: other underscore headers pass");
}

#[tokio::test]
async fn array_claim_element_holding_a_comma_is_refused_and_never_forwarded() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(CLAIM_ROUTES)).await;
    let plain = claims().claim("roles", json!(["a", "admin"])).sign();
    assert_eq!(gate.get("/claims/plain", &plain).await.status, 200, "control");
    assert_eq!(app.one("/claims/plain").header("x-roles"), Some("a,admin"));

    let smuggled = claims().claim("roles", json!(["a,admin"])).sign();
    let req = gate.req("GET", "/claims/comma").header("authorization", format!("Bearer {smuggled}"));
    refused(&gate, &app, req, 401, "invalid_claims", Challenge::InvalidToken).await;
}

#[tokio::test]
async fn non_bearer_authorization_on_an_optional_route_is_refused_not_passed_through() {
    let routes = "
  - match: { path_prefix: /opt }
    auth: optional
";
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(routes)).await;
    assert_eq!(gate.get_anon("/opt/anon").await.status, 200, "control: no Authorization");
    assert_eq!(app.seen("/opt/anon"), 1);

    let basic = gate.req("GET", "/opt/basic").header("authorization", "Basic dXNlcjpwYXNz");
    refused(&gate, &app, basic, 400, "invalid_request", Challenge::InvalidRequest).await;
    let tab = gate.req("GET", "/opt/tab").header("authorization", format!("Bearer\t{}", token::mint()));
    refused(&gate, &app, tab, 400, "invalid_request", Challenge::InvalidRequest).await;
}

#[tokio::test]
async fn strip_authorization_also_removes_the_token_cookie_and_keeps_the_others() {
    let routes = "
  - match: { path_prefix: /stripped }
    strip_authorization: true
";
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg { cookie: Some("at".into()), ..Cfg::new(&app).routes(routes) }).await;
    let raw = token::mint();
    let cookie = format!("at={raw}; theme=dark");

    let kept = gate.req("GET", "/api/kept").header("cookie", &cookie);
    assert_eq!(gate.send(kept.body(empty()).expect("request")).await.status, 200, "control");
    assert_eq!(app.one("/api/kept").header("cookie"), Some(cookie.as_str()), "control: other routes keep the cookie");

    let req = gate.req("GET", "/stripped/x").header("cookie", &cookie);
    let rsp = gate.send(req.body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let seen = app.one("/stripped/x");
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("cookie"), Some("theme=dark"), "token cookie forwarded, or other cookies lost");
    assert!(!seen.headers.iter().any(|(_, v)| v.contains(&raw)), "token text in another header");

    refused(&gate, &app, gate.req("GET", "/stripped/anon"), 401, "missing_token", Challenge::Bare).await;
}

#[tokio::test]
async fn token_outliving_max_token_lifetime_is_refused() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg { max_token_lifetime: Some("2h".into()), ..Cfg::new(&app) }).await;
    assert_eq!(gate.get("/api/hour", &claims().exp_in(3600).sign()).await.status, 200, "control");
    assert_eq!(app.seen("/api/hour"), 1);

    let long = claims().exp_in(3 * 3600).sign();
    let req = gate.req("GET", "/api/long").header("authorization", format!("Bearer {long}"));
    refused(&gate, &app, req, 401, "invalid_claims", Challenge::InvalidToken).await;
}

#[tokio::test]
async fn backchannel_logout_token_is_not_accepted_as_an_access_token() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    let access = claims().sub("alice");
    assert_eq!(gate.get("/api/access", &access.clone().sign()).await.status, 200, "control");
    assert_eq!(app.seen("/api/access"), 1);

    let logout = access.claim("events", json!({ EVENT: {} })).sign();
    let req = gate.req("GET", "/api/logout-token").header("authorization", format!("Bearer {logout}"));
    refused(&gate, &app, req, 401, "invalid_claims", Challenge::InvalidToken).await;
}

#[tokio::test]
async fn logout_all_with_an_iat_ahead_of_the_gate_clock_cuts_off_every_token_stamped_until_then() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).logout_all()).await;
    let now = now_unix();
    let ahead = now + 10;
    let caller = claims().sub("alice").iat(ahead).sign();
    let sibling = claims().sub("alice").iat(now + 5).sign();
    for raw in [&caller, &sibling] {
        assert_eq!(gate.get("/api/before", raw).await.status, 200, "control");
    }

    let rsp = gate.logout_all(&caller).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let cut_off = rsp.json()["issued_before"].as_i64().expect("issued_before is a number");
    assert_eq!(cut_off, ahead, "the cut-off is the caller's iat, not the gate's clock");
    assert_eq!(app.seen("/logout/all"), 0, "logout_all forwarded");

    for raw in [&caller, &sibling] {
        let req = gate.req("GET", "/api/after").header("authorization", format!("Bearer {raw}"));
        refused(&gate, &app, req, 401, "token_revoked", Challenge::InvalidToken).await;
    }
    let relogin = claims().sub("alice").iat(cut_off + 1).sign();
    assert_eq!(gate.get("/api/relogin", &relogin).await.status, 200, "a token issued after the cut-off works");
    assert_eq!(app.seen("/api/relogin"), 1);
}

/// Rules decide on the request line's method; Express `method-override`,
/// Symfony and ASP.NET act on an override header or `_method` instead, so
/// an override the rules would decide otherwise is refused.
#[tokio::test]
async fn a_method_override_the_rules_would_decide_otherwise_is_refused() {
    let routes = "
  - match: { path_prefix: /orders, methods: [DELETE] }
    auth: deny
  - match: { path_prefix: /orders }
    auth: none
";
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(routes)).await;
    refused(&gate, &app, gate.req("DELETE", "/orders/1"), 403, "forbidden", Challenge::Absent).await;
    for name in ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X_HTTP_Method_Override"] {
        for value in ["DELETE", "delete", " Delete "] {
            let req = gate.req("POST", "/orders/1").header(name, value);
            refused(&gate, &app, req, 400, "ambiguous_method", Challenge::Absent).await;
        }
    }
    for target in ["/orders/1?_method=DELETE", "/orders/1?a=1&_method=delete", "/orders/1?%5Fmethod=DELETE"] {
        refused(&gate, &app, gate.req("POST", target), 400, "ambiguous_method", Challenge::Absent).await;
    }
    let garbage = gate.req("POST", "/orders/1").header("X-HTTP-Method-Override", "DEL ETE");
    refused(&gate, &app, garbage, 400, "ambiguous_method", Challenge::Absent).await;
    // The logout path is a decision too: POST /logout overridden to GET is not logout.
    let logout = gate.req("POST", "/logout").header("X-HTTP-Method-Override", "GET");
    refused(&gate, &app, logout, 400, "ambiguous_method", Challenge::Absent).await;

    let same = gate.req("POST", "/orders/2").header("X-HTTP-Method-Override", "post");
    assert_eq!(gate.send(same.body(empty()).expect("request")).await.status, 200, "control: the same method");
    let same_rule = gate.req("POST", "/orders/3").header("X-HTTP-Method", "MERGE");
    assert_eq!(
        gate.send(same_rule.body(empty()).expect("request")).await.status,
        200,
        "control: the same rule either way"
    );
    assert_eq!(gate.get_anon("/orders/4").await.status, 200, "control: no override");
    assert_eq!(app.total(), 3);
}

/// Django, Werkzeug and Symfony upper-case the method before routing; a
/// rule or the logout path compared as sent would miss `delete`.
#[tokio::test]
async fn a_method_not_in_upper_case_is_refused() {
    let routes = "
  - match: { path_prefix: /admin, methods: [DELETE] }
    auth: deny
  - match: { path_prefix: /admin }
    auth: none
";
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(routes)).await;
    let tok = token::mint();
    for line in ["delete /admin/x", "Delete /admin/x", "post /logout", "get /admin/x"] {
        let req = format!("{line} HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {tok}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        refused_raw(&gate, &app, req.as_bytes(), 400, "ambiguous_method").await;
    }
    assert_eq!(gate.get("/api/after", &tok).await.status, 200, "the token was never revoked");
    assert_eq!(gate.get_anon("/admin/x").await.status, 200, "control: GET");
}

/// Express, Flask, Rails, Spring and Go run the GET handler for a HEAD.
#[tokio::test]
async fn a_rule_that_lists_get_covers_head() {
    let routes = "
  - match: { path_prefix: /reports, methods: [GET] }
    auth: deny
  - match: { path_prefix: /reports }
    auth: none
";
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(routes)).await;
    refused(&gate, &app, gate.req("GET", "/reports/1"), 403, "forbidden", Challenge::Absent).await;
    let before = app.total();
    let rsp = gate.send(gate.req("HEAD", "/reports/1").body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 403, "HEAD under a GET deny rule");
    assert_eq!(app.total(), before, "a HEAD reached the app");
    assert_eq!(gate.send(gate.req("POST", "/reports/1").body(empty()).expect("request")).await.status, 200, "control");
}

/// A request target that is not a path (`GET host:443`) has nothing to
/// decide on, yet would reach the app as `GET /`.
#[tokio::test]
async fn an_authority_form_target_outside_connect_is_refused() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(
        &Cfg::new(&app)
            .routes("\n  - match: { path: / }\n    auth: deny\n  - match: { path_prefix: / }\n    auth: none\n"),
    )
    .await;
    refused_raw(&gate, &app, b"GET g:443 HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n", 400, "ambiguous_path")
        .await;
    let root = gate.raw(b"GET / HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n").await;
    assert_refused(&root, 403, "forbidden", Challenge::Absent);
    assert_eq!(gate.get_anon("/x").await.status, 200, "control");
}

/// `Connection: host` must not make the app read another Host than the
/// one the host rules decided on.
#[tokio::test]
async fn connection_cannot_remove_the_host_the_rules_decided_on() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    let req = b"GET /public/h HTTP/1.1\r\nHost: api.example\r\nConnection: host, close\r\n\r\n";
    assert_eq!(gate.raw(req).await.status, 200);
    let seen = app.one("/public/h");
    assert_eq!(seen.header("host"), Some("api.example"));
    assert_eq!(seen.header("x-forwarded-host"), Some("api.example"));
}
