//! `jwtgate check` and `jwtgate explain`: a summary of a valid config, the
//! rules no request can reach, and one request walked through the phases
//! to its verdict, without ever printing the token.

use crate::support::gate::{cli, cli_env, write_config};
use crate::support::token::{claims, Key};
use crate::support::Cfg;
use serde_json::json;

const GATEWAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples/gateway.yaml");

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str]) -> Out {
    let out = cli(args).await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Out { code: out.status.code(), stdout: text(&out.stdout), stderr: text(&out.stderr) }
}

impl Out {
    /// The `=> ...` verdict line (the last line of stdout).
    fn verdict(&self) -> &str {
        let last = self.stdout.lines().last().unwrap_or_default();
        last.strip_prefix("=> ").unwrap_or_else(|| panic!("no verdict line:\n{}\n{}", self.stdout, self.stderr))
    }

    fn line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line:\n{}", self.stdout))
    }
}

/// Explains one request; `code` is the exit code its verdict must give
/// (0 forwarded or answered, 1 refused).
async fn explain(config: &str, method: &str, url: &str, code: i32) -> Out {
    let out = run(&["explain", "-c", config, method, url]).await;
    assert_eq!(out.code, Some(code), "exit code of explain:\n{}\n{}", out.stdout, out.stderr);
    out
}

#[tokio::test]
async fn check_accepts_the_example_gateway_config_and_summarises_every_rule() {
    let out = run(&["check", "--offline", "-c", GATEWAY]).await;
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(out.stdout.lines().next(), Some(format!("{GATEWAY}: ok").as_str()));
    assert!(out.stdout.contains("upstream   http://127.0.0.1:3000"), "{}", out.stdout);
    assert!(out.stdout.contains("upstream+  http://127.0.0.1:3001"), "named upstream: {}", out.stdout);
    assert!(out.line("  issuer ").contains("https://auth.example.com/"));
    assert!(out.line("  routes ").contains("8 rule(s)"), "{}", out.stdout);
    let rules = [
        (0, "path: /healthz"),
        (1, "path_glob: /static/**"),
        (2, "path_prefix: /internal"),
        (4, "path_regex: /orders/"),
    ];
    for (i, label) in rules.into_iter().chain([(6, "path: /,"), (7, "path_prefix: /beta")]) {
        let line = out.line(&format!("    [{i}] "));
        assert!(line.contains(label), "rule {i}: {line}");
    }
    assert!(!out.stderr.contains("can never match"), "{}", out.stderr);
}

#[tokio::test]
async fn explain_an_order_lookup_without_a_token_ends_in_missing_token() {
    let out = explain(GATEWAY, "GET", "http://api.example.com/orders/42", 1).await;
    assert_eq!(out.line("request"), "request    GET /orders/42 (host api.example.com)");
    let route = out.line("route");
    assert!(route.starts_with("route      routes[4] path_regex: /orders/[0-9]+ -> auth: required"), "{route}");
    assert!(out.verdict().starts_with("401 missing_token"), "{}", out.stdout);
}

#[tokio::test]
async fn explain_the_health_check_forwards_without_a_token_check() {
    let out = explain(GATEWAY, "GET", "/healthz", 0).await;
    assert!(out.line("route").contains("routes[0] path: /healthz -> auth: none"), "{}", out.stdout);
    assert!(out.verdict().starts_with("forwarded to http://127.0.0.1:3000"), "{}", out.stdout);
}

#[tokio::test]
async fn explain_a_dot_segment_path_is_400_ambiguous_path() {
    let out = explain(GATEWAY, "GET", "http://api.example.com/x/../y", 1).await;
    assert!(out.verdict().starts_with("400 ambiguous_path"), "{}", out.stdout);
    assert!(!out.stdout.contains("route "), "no rule is picked for an ambiguous path:\n{}", out.stdout);
}

const OWN_ROUTES: &str = "
  - match: { host: api.test, path_regex: \"/orders/[0-9]+\", methods: [GET] }
    require: { scopes: [orders:read] }
    forward_claims: { sub: X-User-Id, email: X-User-Email, realm_access.roles: X-Roles }
  - match: { path_prefix: /reports }
    upstream: reports
";

fn own_config() -> tempfile::NamedTempFile {
    let cfg = Cfg::to_url("http://127.0.0.1:3999")
        .routes(OWN_ROUTES)
        .extra("upstreams:\n  reports:\n    url: http://127.0.0.1:3998\n");
    write_config(&cfg.yaml())
}

#[tokio::test]
async fn explain_with_a_valid_token_lists_the_headers_and_never_prints_the_token() {
    let file = own_config();
    let config = file.path().display().to_string();
    let raw = claims()
        .sub("u-7")
        .claim("scope", json!("orders:read"))
        .claim("realm_access", json!({ "roles": ["a", "b"] }))
        .sign();
    let out = run(&["explain", "-c", &config, "GET", "http://api.test/orders/7", "--token", &raw]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.line("route").contains("routes[0]"), "{}", out.stdout);
    assert!(out.line("token").contains("valid") && out.line("token").contains("u-7"), "{}", out.stdout);
    assert!(out.line("revocation").contains("not revoked") || out.line("revocation").contains("memory"));
    assert!(out.stdout.contains("header     x-user-id: u-7"), "{}", out.stdout);
    assert!(out.stdout.contains("header     x-roles: a,b"), "{}", out.stdout);
    assert!(out.stdout.contains("header     x-user-email: (claim absent"), "{}", out.stdout);
    assert_eq!(out.verdict(), "forwarded to http://127.0.0.1:3999");
    let signature = raw.rsplit('.').next().expect("signature");
    for shown in [&out.stdout, &out.stderr] {
        assert!(!shown.contains(&raw) && !shown.contains(signature), "token printed:\n{shown}");
    }
}

#[tokio::test]
async fn explain_reports_insufficient_scope_bad_tokens_and_named_upstreams() {
    let file = own_config();
    let config = file.path().display().to_string();
    let no_scope = claims().sign();
    let out = run(&["explain", "-c", &config, "GET", "http://api.test/orders/7", "--token", &no_scope]).await;
    assert!(out.verdict().starts_with("403 insufficient_scope"), "{}", out.stdout);
    assert!(!out.stdout.contains("header "), "headers listed for a refused request:\n{}", out.stdout);

    let forged = claims().hs256().key(Key::Hmac(b"wrong-secret".to_vec())).sign();
    let env = [("JWTGATE_EXPLAIN_TOKEN", forged.as_str())];
    let out = cli_env(&["explain", "-c", &config, "GET", "/reports/q1"], &env).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().last().is_some_and(|l| l.starts_with("=> 401 invalid_signature")), "{stdout}");
    assert!(!stdout.contains(&forged), "token printed:\n{stdout}");

    let out = run(&["explain", "-c", &config, "GET", "/reports/q1", "--token", &claims().sign()]).await;
    assert_eq!(out.verdict(), "forwarded to http://127.0.0.1:3998", "{}", out.stdout);
}

async fn check_routes(routes: &str) -> (Out, String) {
    let file = write_config(&Cfg::to_url("http://127.0.0.1:3000").routes(routes).yaml());
    let path = file.path().display().to_string();
    (run(&["check", "-c", &path]).await, path)
}

#[tokio::test]
async fn check_fails_naming_a_rule_after_a_catch_all() {
    let routes = "
  - match: { path: /healthz }
    auth: none
  - match: { path_prefix: / }
  - match: { path_prefix: /internal }
    auth: deny
";
    let (out, path) = check_routes(routes).await;
    assert_eq!(out.code, Some(1), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let line = out.stderr.lines().find(|l| l.contains("can never match")).unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(line.contains(&path), "{line}");
    assert!(line.contains("routes[2] can never match") && line.contains("routes[1]"), "{line}");
}

#[tokio::test]
async fn check_fails_naming_a_rule_with_the_same_match_as_an_earlier_one() {
    let routes = "
  - match: { path_prefix: /api, methods: [GET, POST] }
  - match: { host: admin.test, path_prefix: /api, methods: [GET] }
    auth: deny
  - match: { path_prefix: /api/, methods: [GET] }
    auth: deny
";
    let (out, _) = check_routes(routes).await;
    assert_eq!(out.code, Some(1), "stderr:\n{}", out.stderr);
    let shadowed: Vec<&str> = out.stderr.lines().filter(|l| l.contains("can never match")).collect();
    assert_eq!(shadowed.len(), 1, "only routes[2] is unreachable (routes[1] has a host): {shadowed:?}");
    assert!(shadowed[0].contains("routes[2] can never match") && shadowed[0].contains("routes[0]"), "{shadowed:?}");

    let (control, _) =
        check_routes(&routes.replace("path_prefix: /api/, methods: [GET]", "path_prefix: /api/v2")).await;
    assert_eq!(control.code, Some(0), "control: {}", control.stderr);
}

#[tokio::test]
async fn explain_takes_request_headers_for_header_rules_and_the_authorization_token() {
    let url = "http://api.example.com/beta/x";
    let with = run(&["explain", "-c", GATEWAY, "GET", url, "-H", "X-Tenant: acme"]).await;
    assert!(with.line("route").contains("routes[7] path_prefix: /beta"), "{}", with.stdout);
    let other = run(&["explain", "-c", GATEWAY, "GET", url, "-H", "X-Tenant: globex"]).await;
    assert!(other.line("route").contains("no rule matched"), "header value must match: {}", other.stdout);

    let file = own_config();
    let config = file.path().display().to_string();
    let raw = claims().sub("u-9").claim("scope", json!("orders:read")).sign();
    let bearer = format!("Authorization: Bearer {raw}");
    let out = run(&["explain", "-c", &config, "GET", "http://api.test/orders/7", "-H", &bearer]).await;
    assert!(out.line("token").contains("u-9"), "the header's token was evaluated: {}", out.stdout);
    assert_eq!(out.verdict(), "forwarded to http://127.0.0.1:3999");
    let bad =
        run(&["explain", "-c", &config, "GET", "/orders/7", "-H", "X-Ok: 1", "-H", &format!("Bearer {raw}")]).await;
    assert!(bad.verdict().starts_with("header #2 is not `NAME: VALUE`"), "{}", bad.stdout);
    // A credential the gate refuses is refused here too, not taken as "no token".
    let basic = run(&["explain", "-c", &config, "GET", "/orders/7", "-H", "Authorization: Basic dTpw"]).await;
    assert!(basic.verdict().starts_with("400 invalid_request"), "{}", basic.stdout);
    for shown in [&out.stdout, &out.stderr, &bad.stdout, &bad.stderr] {
        assert!(!shown.contains(&raw), "token printed:\n{shown}");
    }
}
