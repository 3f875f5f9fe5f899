//! `require:` on a route: scopes (`scope` string or `scp` array), issuers,
//! audiences and claim conditions (equals / one_of / contains, dotted
//! paths). A valid token that falls short is 403 `insufficient_scope`
//! (RFC 6750 §3.1, `scope` attribute only when the route lists scopes);
//! a bad token on the same route is still 401.

use crate::support::token::{claims, Key, Tok, AUDIENCE};
use crate::support::{assert_insufficient_scope, assert_refused, Cfg, Challenge, Gate, Upstream};
use serde_json::json;

const ROUTES: &str = r#"
  - match: { path_prefix: /scoped }
    require: { scopes: ["orders:read", "orders:write"] }
  - match: { path_prefix: /hs-only }
    require: { issuers: [hs-issuer] }
  - match: { path_prefix: /reports }
    require: { audiences: [reports] }
  - match: { path_prefix: /tenant }
    require: { claims: [ { claim: tenant, equals: acme } ] }
  - match: { path_prefix: /plan }
    require: { claims: [ { claim: billing.plan, one_of: [gold, platinum] } ] }
  - match: { path_prefix: /admin }
    require:
      scopes: [admin]
      claims: [ { claim: realm_access.roles, contains: admin } ]
"#;

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES)).await;
    (app, gate)
}

/// `tok` passes on `path` (control) and reaches the app once.
async fn passes(gate: &Gate, app: &Upstream, path: &str, tok: Tok) {
    let rsp = gate.get(path, &tok.sign()).await;
    assert_eq!(rsp.status, 200, "{path}: {}", rsp.text());
    assert_eq!(app.seen(path), 1, "{path}");
}

/// `tok` is valid but refused on `path` with 403 and the given scope attribute.
async fn falls_short(gate: &Gate, app: &Upstream, path: &str, tok: Tok, scope: Option<&str>) {
    assert_insufficient_scope(&gate.get(path, &tok.sign()).await, scope);
    assert_eq!(app.seen(path), 0, "{path}: a token short of the requirements reached the app");
}

/// On a route with requirements, a forged token is 401, not 403.
async fn bad_token_is_401(gate: &Gate, app: &Upstream, path: &str) {
    let forged = claims().hs256().key(Key::Hmac(b"wrong-secret".to_vec())).sign();
    assert_refused(&gate.get(path, &forged).await, 401, "invalid_signature", Challenge::InvalidToken);
    assert_refused(&gate.get_anon(path).await, 401, "missing_token", Challenge::Bare);
    assert_eq!(app.seen(path), 0);
}

#[tokio::test]
async fn scopes_granted_in_a_scope_string_or_an_scp_array_pass() {
    let (app, gate) = fixture().await;
    passes(&gate, &app, "/scoped/string", claims().claim("scope", json!("openid orders:write orders:read"))).await;
    passes(&gate, &app, "/scoped/array", claims().claim("scp", json!(["orders:read", "orders:write"]))).await;
    passes(
        &gate,
        &app,
        "/scoped/split",
        claims().claim("scope", json!("orders:read")).claim("scp", json!(["orders:write"])),
    )
    .await;
}

#[tokio::test]
async fn missing_scope_is_403_naming_every_required_scope() {
    let (app, gate) = fixture().await;
    let want = Some("orders:read orders:write");
    passes(&gate, &app, "/scoped/control", claims().claim("scope", json!("orders:read orders:write"))).await;
    falls_short(&gate, &app, "/scoped/one", claims().claim("scope", json!("orders:read")), want).await;
    falls_short(&gate, &app, "/scoped/scp-one", claims().claim("scp", json!(["orders:write"])), want).await;
    falls_short(&gate, &app, "/scoped/none", claims(), want).await;
    falls_short(&gate, &app, "/scoped/substring", claims().claim("scope", json!("orders:reader orders:write")), want)
        .await;
    falls_short(&gate, &app, "/scoped/not-split", claims().claim("scp", json!(["orders:read orders:write"])), want)
        .await;
    bad_token_is_401(&gate, &app, "/scoped/bad").await;
}

#[tokio::test]
async fn token_from_an_issuer_the_route_does_not_list_is_403() {
    let (app, gate) = fixture().await;
    passes(&gate, &app, "/hs-only/control", claims().hs256()).await;
    falls_short(&gate, &app, "/hs-only/rs", claims(), None).await;
    bad_token_is_401(&gate, &app, "/hs-only/bad").await;
}

#[tokio::test]
async fn token_without_a_route_audience_is_403() {
    let (app, gate) = fixture().await;
    passes(&gate, &app, "/reports/control", claims().claim("aud", json!([AUDIENCE, "reports"]))).await;
    falls_short(&gate, &app, "/reports/api-only", claims(), None).await;
    falls_short(&gate, &app, "/reports/other", claims().claim("aud", json!([AUDIENCE, "billing"])), None).await;
    bad_token_is_401(&gate, &app, "/reports/bad").await;
}

#[tokio::test]
async fn claim_equals_needs_that_exact_value() {
    let (app, gate) = fixture().await;
    passes(&gate, &app, "/tenant/control", claims().claim("tenant", json!("acme"))).await;
    falls_short(&gate, &app, "/tenant/other", claims().claim("tenant", json!("globex")), None).await;
    falls_short(&gate, &app, "/tenant/case", claims().claim("tenant", json!("ACME")), None).await;
    falls_short(&gate, &app, "/tenant/array", claims().claim("tenant", json!(["acme"])), None).await;
    falls_short(&gate, &app, "/tenant/absent", claims(), None).await;
    bad_token_is_401(&gate, &app, "/tenant/bad").await;
}

#[tokio::test]
async fn claim_one_of_at_a_dotted_path_needs_a_listed_value() {
    let (app, gate) = fixture().await;
    passes(&gate, &app, "/plan/gold", claims().claim("billing", json!({"plan": "gold"}))).await;
    passes(&gate, &app, "/plan/platinum", claims().claim("billing", json!({"plan": "platinum", "seats": 3}))).await;
    falls_short(&gate, &app, "/plan/free", claims().claim("billing", json!({"plan": "free"})), None).await;
    falls_short(&gate, &app, "/plan/top-level", claims().claim("plan", json!("gold")), None).await;
    falls_short(&gate, &app, "/plan/absent", claims().claim("billing", json!({})), None).await;
    bad_token_is_401(&gate, &app, "/plan/bad").await;
}

#[tokio::test]
async fn claim_contains_at_a_dotted_path_needs_the_value_in_the_array() {
    let (app, gate) = fixture().await;
    let roles =
        |r: serde_json::Value| claims().claim("scope", json!("admin")).claim("realm_access", json!({ "roles": r }));
    passes(&gate, &app, "/admin/control", roles(json!(["user", "admin"]))).await;
    falls_short(&gate, &app, "/admin/user", roles(json!(["user", "administrator"])), Some("admin")).await;
    falls_short(&gate, &app, "/admin/empty", roles(json!([])), Some("admin")).await;
    // Both requirements: the role alone is not enough without the scope.
    let no_scope = claims().claim("realm_access", json!({ "roles": ["admin"] }));
    falls_short(&gate, &app, "/admin/no-scope", no_scope, Some("admin")).await;
    bad_token_is_401(&gate, &app, "/admin/bad").await;
}
