//! Named upstreams: a rule with `upstream: <name>` forwards to that
//! upstream, every other request to the default one; auth applies the same
//! on every upstream; a name that `upstreams:` does not define is a config
//! error naming the rule's field.

use crate::support::gate::{cli, write_config};
use crate::support::token::{self, claims};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};

const ROUTES: &str = "
  - match: { path_prefix: /reports }
    upstream: reports
  - match: { path_prefix: /billing/public }
    auth: none
    upstream: billing
  - match: { path_prefix: /billing }
    upstream: billing
    forward_claims: { sub: X-User-Id }
";

struct Three {
    main: Upstream,
    reports: Upstream,
    billing: Upstream,
    gate: Gate,
}

async fn fixture() -> Three {
    let (main, reports, billing) = (Upstream::spawn().await, Upstream::spawn().await, Upstream::spawn().await);
    let upstreams = format!(
        "upstreams:\n  reports:\n    url: {}\n    timeout: 5s\n  billing:\n    url: {}\n",
        reports.url(),
        billing.url()
    );
    let gate = Gate::spawn(&Cfg::new(&main).routes(ROUTES).extra(&upstreams)).await;
    Three { main, reports, billing, gate }
}

impl Three {
    /// (default, reports, billing) request counts.
    fn totals(&self) -> (usize, usize, usize) {
        (self.main.total(), self.reports.total(), self.billing.total())
    }
}

#[tokio::test]
async fn each_rule_forwards_to_its_named_upstream_and_the_rest_to_the_default() {
    let t = fixture().await;
    let raw = claims().sub("dana").sign();
    for path in ["/reports/q1", "/billing/invoices", "/orders/7"] {
        let rsp = t.gate.get(path, &raw).await;
        assert_eq!(rsp.status, 200, "{path}: {}", rsp.text());
    }
    assert_eq!(t.gate.get_anon("/billing/public/prices").await.status, 200);
    assert_eq!(t.reports.seen("/reports/q1"), 1);
    assert_eq!(t.billing.one("/billing/invoices").header("x-user-id"), Some("dana"), "rule's claims go along");
    assert_eq!(t.billing.seen("/billing/public/prices"), 1);
    assert_eq!(t.main.seen("/orders/7"), 1);
    assert_eq!(t.totals(), (1, 1, 2), "a request went to the wrong upstream");
}

#[tokio::test]
async fn refusals_on_a_named_upstream_route_reach_no_upstream() {
    let t = fixture().await;
    assert_eq!(t.gate.get("/reports/control", &token::mint()).await.status, 200, "control");
    assert_refused(&t.gate.get_anon("/reports/anon").await, 401, "missing_token", Challenge::Bare);
    let expired = claims().exp_in(-3600).sign();
    assert_refused(&t.gate.get("/billing/expired", &expired).await, 401, "token_expired", Challenge::InvalidToken);
    assert_eq!(t.totals(), (0, 1, 0), "only the control was forwarded");
}

#[tokio::test]
async fn unknown_upstream_name_is_a_config_error_naming_the_rule_field() {
    let cfg = Cfg::to_url("http://127.0.0.1:3000")
        .routes("\n  - match: { path: /a }\n    auth: none\n  - match: { path: /b }\n    upstream: nope\n")
        .extra("upstreams:\n  reports:\n    url: http://127.0.0.1:3001\n");
    let file = write_config(&cfg.yaml());
    let path = file.path().display().to_string();
    let out = cli(&["check", "-c", &path]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let line = stderr.lines().find(|l| l.contains("routes[1].upstream")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&path), "file named: {line}");
    assert!(line.contains("nope") && line.contains("reports"), "names the bad and the known upstreams: {line}");

    let valid = write_config(&cfg.yaml().replace("upstream: nope", "upstream: reports"));
    let out = cli(&["check", "-c", &valid.path().display().to_string()]).await;
    assert_eq!(out.status.code(), Some(0), "control: {}", String::from_utf8_lossy(&out.stderr));
}
