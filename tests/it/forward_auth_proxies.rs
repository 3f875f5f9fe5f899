//! Forward-auth behind the real thing: nginx `auth_request` and Traefik
//! `ForwardAuth` in front of a recording app, asking one of two jwtgate
//! replicas that share a real redis-server. A live token reaches the app
//! with the verified claim headers, a revoked one gets 401 and never
//! reaches it, a logout through the proxy revokes on both replicas (and
//! the app's own logout runs), spoofed claim headers never reach it.

use crate::support::front::Front;
use crate::support::gate::empty;
use crate::support::token::{claims, mint};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Redis, Upstream};
use hyper::Request;

const ROUTES: &str = "
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /api/reports }
    require: { scopes: [\"reports:read\"] }
  - match: { path_prefix: /api }
    forward_claims: { sub: X-User-Id, email: X-Email }
";

const CLAIM_HEADERS: [&str; 2] = ["X-User-Id", "X-Email"];

/// Two replicas on one Redis, each with a forward-auth listener that
/// answers loopback (where the front proxy runs).
async fn replicas(app: &Upstream, redis: &Redis, proxy: &str) -> (Gate, Gate) {
    let section = format!("forward_auth:\n  listen: 127.0.0.1:0\n  proxy: {proxy}\ntrusted_proxies: [\"127.0.0.1\"]\n");
    let cfg = Cfg::new(app).routes(ROUTES).redis(redis).extra(&section);
    (Gate::spawn(&cfg).await, Gate::spawn(&cfg).await)
}

/// A request to the front proxy (through `gate`'s client), with headers.
async fn through(
    gate: &Gate,
    front: &Front,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> crate::support::Rsp {
    let mut req = Request::builder().method(method).uri(front.url(path));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    gate.send(req.body(empty()).expect("request")).await
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// The scenarios both proxies must pass; `front` asks replica `one`.
async fn scenarios(front: &Front, app: &Upstream, one: &Gate, two: &Gate) {
    let token = claims().sub("user-1").sign();
    // A live token: forwarded, with the verified sub; the client's own
    // X-User-Id and X-Email (no such claim) are gone.
    let spoofs = [("x-user-id", "admin".to_owned()), ("x-email", "boss@example.test".to_owned())];
    let rsp =
        through(one, front, "GET", "/api/orders?id=7", &[bearer(&token), spoofs[0].clone(), spoofs[1].clone()]).await;
    assert_eq!(rsp.status, 200, "{}\nfront log:\n{}\njwtgate log:\n{}", rsp.text(), front.log(), one.logs());
    let seen = app.one("/api/orders");
    assert_eq!(seen.target, "/api/orders?id=7");
    assert_eq!(seen.header("x-user-id"), Some("user-1"), "the verified sub, not the client's");
    assert_eq!(seen.header("x-email"), None, "a spoofed claim header the token does not back");
    // A public path: no token needed, and still no spoofed claim header.
    assert_eq!(through(one, front, "GET", "/public/page", &spoofs).await.status, 200);
    let public = app.one("/public/page");
    assert_eq!((public.header("x-user-id"), public.header("x-email")), (None, None), "spoofs never reach the app");

    // No token: 401 with jwtgate's challenge; nothing forwarded.
    let before = app.total();
    let anon = through(one, front, "GET", "/api/orders", &[]).await;
    assert_eq!(anon.status, 401);
    assert_eq!(anon.header("www-authenticate").as_deref(), Some("Bearer realm=\"jwtgate\""));
    // A requirement unmet: 403 with the insufficient_scope challenge.
    let scoped = through(one, front, "GET", "/api/reports/q3", &[bearer(&token)]).await;
    assert_eq!(scoped.status, 403);
    let challenge = scoped.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge:?}");
    assert_eq!(app.total(), before, "refused requests never reach the app: {:?}", app.requests());

    // Logout through the proxy: jwtgate revokes, the app's logout runs.
    let logout = through(one, front, "POST", "/logout", &[bearer(&token)]).await;
    assert_eq!(logout.status, 200, "{}", logout.text());
    assert_eq!(app.one("/logout").method, "POST", "the app's own logout ran");
    let before = app.total();
    let revoked = through(one, front, "GET", "/api/orders", &[bearer(&token)]).await;
    assert_eq!(revoked.status, 401);
    assert!(revoked.header("www-authenticate").unwrap_or_default().contains("error=\"invalid_token\""));
    let again = through(one, front, "POST", "/logout", &[bearer(&token)]).await;
    assert_eq!(again.status, 401, "a revoked token never reaches the app, logout included");
    assert_eq!(app.total(), before, "the revoked token reached the app: {:?}", app.requests());
    // Every replica: the other one refuses it too, as forward-auth and as a proxy.
    let auth = format!("Bearer {token}");
    let check = [
        ("x-original-method", "GET"),
        ("x-original-uri", "/api/orders"),
        ("x-forwarded-method", "GET"),
        ("x-forwarded-uri", "/api/orders"),
        ("authorization", auth.as_str()),
    ];
    assert_refused(&two.check("GET", "/auth", &check).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_refused(&two.get("/api/orders", &token).await, 401, "token_revoked", Challenge::InvalidToken);
    // Positive control: another token still passes.
    let other = mint();
    assert_eq!(through(one, front, "GET", "/api/after", &[bearer(&other)]).await.status, 200);
    assert_eq!(app.seen("/api/after"), 1);
}

#[tokio::test]
async fn nginx_auth_request_enforces_revocation_in_front_of_the_app() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let (one, two) = replicas(&app, &redis, "nginx").await;
    let front = Front::nginx(one.forward_auth.expect("forward-auth listener"), app.addr, &CLAIM_HEADERS).await;
    scenarios(&front, &app, &one, &two).await;
}

#[tokio::test]
async fn traefik_forward_auth_enforces_revocation_in_front_of_the_app() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let (one, two) = replicas(&app, &redis, "traefik").await;
    let (front, copied) = Front::traefik(one.forward_auth.expect("forward-auth listener"), app.addr).await;
    assert_eq!(copied, CLAIM_HEADERS, "the k8s/forward-auth example copies the claim headers these routes set");
    // Traefik loads its routers after it listens: wait for the router.
    crate::support::eventually(std::time::Duration::from_secs(15), "traefik router loaded", || async {
        (through(&one, &front, "GET", "/public/ready", &[]).await.status == 200).then_some(())
    })
    .await;
    scenarios(&front, &app, &one, &two).await;
}
