//! The Grafana dashboard (`k8s/monitoring/grafana-dashboard.json`) asks only
//! for what jwtgate exports: it is importable (uid, title, a datasource and
//! a `route` variable), every panel's PromQL parses with a real PromQL
//! parser, and every metric an expression selects — inside functions,
//! aggregations, binary operations and subqueries — is in a live `/metrics`
//! of a real jwtgate with a Redis store, after a short run that touches
//! each area the dashboard shows.

use crate::support::config::ADMIN_TOKEN;
use crate::support::idp::{Answer, Idp};
use crate::support::{eventually, metric, token, Cfg, Gate, Redis, Upstream};
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/monitoring/grafana-dashboard.json");

/// One query of the dashboard: where it sits and its PromQL.
struct Query {
    panel: String,
    expr: String,
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).expect("read the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every `targets[].expr` of every panel (rows' nested panels too), and the
/// selector of each `label_values(selector, label)` variable query.
fn queries(dash: &Value) -> Vec<Query> {
    fn walk(panels: &Value, out: &mut Vec<Query>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("(untitled)");
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
                out.push(Query { panel: title.to_owned(), expr: expr.to_owned() });
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"].as_str().or_else(|| v["query"].as_str()).unwrap_or("");
        if let Some(args) = q.strip_prefix("label_values(").and_then(|a| a.strip_suffix(')')) {
            let (selector, _label) = args.rsplit_once(',').unwrap_or_else(|| panic!("variable query {q:?}"));
            out.push(Query {
                panel: format!("variable ${}", v["name"].as_str().unwrap_or("?")),
                expr: selector.into(),
            });
        }
    }
    out
}

/// The PromQL Prometheus receives once Grafana has filled in its variables:
/// intervals become a duration, every other `$var` / `${var}` the regex
/// `.*` (all of them sit inside `=~"..."`, where that is what "All" sends).
fn with_variables_filled(expr: &str) -> String {
    let mut s = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h");
    while let Some(at) = s.find('$') {
        let rest = &s[at + 1..];
        let len = match rest.strip_prefix('{') {
            Some(inner) => inner.find('}').map_or(rest.len(), |end| end + 2),
            None => rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len()),
        };
        s.replace_range(at..at + 1 + len, ".*");
    }
    s
}

fn name_of(v: &VectorSelector) -> Option<String> {
    v.name.clone().or_else(|| {
        v.matchers.matchers.iter().find(|m| m.name == "__name__" && m.op == MatchOp::Equal).map(|m| m.value.clone())
    })
}

/// Metric names `expr` selects; `Err` for a selector without a name.
fn selected(expr: &Expr, out: &mut BTreeSet<String>) -> Result<(), String> {
    let mut select = |v: &VectorSelector| match name_of(v) {
        Some(n) => {
            out.insert(n);
            Ok(())
        }
        None => Err(format!("selector {v} names no metric")),
    };
    match expr {
        Expr::VectorSelector(v) => select(v),
        Expr::MatrixSelector(m) => select(&m.vs),
        Expr::Aggregate(a) => {
            selected(&a.expr, out)?;
            a.param.as_ref().map_or(Ok(()), |p| selected(p, out))
        }
        Expr::Binary(b) => selected(&b.lhs, out).and_then(|()| selected(&b.rhs, out)),
        Expr::Unary(u) => selected(&u.expr, out),
        Expr::Paren(p) => selected(&p.expr, out),
        Expr::Subquery(s) => selected(&s.expr, out),
        Expr::Call(c) => c.args.args.iter().try_for_each(|a| selected(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::Extension(_) => Err("an extension node (the parser never makes one)".into()),
    }
}

/// Parses every query; panics listing each one that does not parse or
/// selects nothing. Returns (panel, metric) for every selected metric.
fn selected_by_panel(queries: &[Query]) -> BTreeSet<(String, String)> {
    let (mut found, mut broken) = (BTreeSet::new(), Vec::new());
    for q in queries {
        let mut names = BTreeSet::new();
        let parsed = parser::parse(&with_variables_filled(&q.expr)).and_then(|e| selected(&e, &mut names));
        match parsed {
            Err(e) => broken.push(format!("panel {:?}: {}: {e}", q.panel, q.expr)),
            Ok(()) if names.is_empty() => broken.push(format!("panel {:?}: {}: selects no metric", q.panel, q.expr)),
            Ok(()) => found.extend(names.into_iter().map(|n| (q.panel.clone(), n))),
        }
    }
    assert!(broken.is_empty(), "dashboard queries that do not parse:\n{}", broken.join("\n"));
    found
}

#[test]
fn dashboard_is_importable_with_datasource_and_route_variables() {
    let dash = dashboard();
    assert!(dash["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40), "uid: {}", dash["uid"]);
    assert!(dash["title"].as_str().is_some_and(|t| !t.is_empty()), "title");
    let vars = dash["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no variable {name}"));
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    assert_eq!(var("route")["type"], "query");
    let (mut ids, mut panels) = (BTreeSet::new(), 0);
    for p in dash["panels"].as_array().expect("panels") {
        assert!(ids.insert(p["id"].as_u64().expect("panel id")), "duplicate panel id {}", p["id"]);
        if p["type"] != "row" {
            panels += 1;
            assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {} ignores $datasource", p["title"]);
            assert!(p["targets"].as_array().is_some_and(|t| !t.is_empty()), "panel {} has no targets", p["title"]);
        }
    }
    assert!(panels >= 20, "only {panels} panels");
    // Control: the parser does refuse broken PromQL, and the walk reaches
    // selectors nested in a subquery inside a binary operation.
    assert!(parser::parse("sum(rate(x[5m])").is_err(), "the parser accepted an unclosed call");
    let mut names = BTreeSet::new();
    let nested = parser::parse("max_over_time((a / on() b)[5m:1m]) + c").expect("parses");
    selected(&nested, &mut names).expect("names");
    assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
}

/// The harness config plus an issuer whose keys come from `idp`, refreshed
/// every 150 ms so a failing IdP shows up as fetch errors quickly.
fn yaml_with_jwks(cfg: &Cfg, idp: &Idp) -> String {
    let yaml = cfg.yaml();
    assert_eq!(yaml.matches("\n  issuers:\n").count(), 1, "one issuers list in:\n{yaml}");
    let issuer = format!(
        "\n  jwks: {{ min_refresh: 150ms, max_refresh: 150ms }}\n  issuers:\n    - issuer: \"https://idp.test/\"\n      \
         audiences: [api]\n      algorithms: [RS256]\n      keys:\n        - {{ jwks_url: \"{}\" }}\n",
        idp.url()
    );
    yaml.replace("\n  issuers:\n", &issuer)
}

/// Metric names of a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    let name = |l: &str| l.split(['{', ' ']).next().unwrap_or("").to_owned();
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(name).collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_in_a_live_scrape() {
    let wanted = selected_by_panel(&queries(&dashboard()));
    let (mut redis, app, idp) = (Redis::spawn().await, Upstream::spawn().await, Idp::spawn().await);
    let mut gate = Gate::spawn_yaml(&yaml_with_jwks(&Cfg::new(&app).redis(&redis).admin(), &idp)).await;
    gate.admin_token = Some(ADMIN_TOKEN.into());
    redis.await_subscribers("jwtgate:revocations", 1).await;

    let tok = token::mint();
    assert_eq!(gate.get("/api/a", &tok).await.status, 200, "control: forwarded");
    assert_eq!(gate.get_anon("/api/a").await.status, 401, "refused without a token");
    assert_eq!(gate.logout(&tok).await.status, 200);
    let grown = |name: &'static str| {
        let gate = &gate;
        move || async move { metric(&gate.metrics().await, name, &[]).filter(|v| *v >= 1.0) }
    };
    eventually(Duration::from_secs(5), "own announcement applied", grown("jwtgate_propagation_lag_seconds_count"))
        .await;
    idp.answer(Answer::Status(500));
    eventually(Duration::from_secs(5), "a failed JWKS refresh", grown("jwtgate_jwks_fetch_errors_total")).await;
    gate.sighup();
    eventually(Duration::from_secs(5), "a config reload", grown("jwtgate_config_reloads_total")).await;
    redis.stop().await;
    assert_eq!(gate.get("/api/down", &token::mint()).await.status, 503, "store down: fail_closed");
    assert_eq!(app.total(), 1, "only the control reached the app");

    let have = exported(&gate.metrics().await);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(_, name)| !have.contains(name))
        .map(|(panel, name)| format!("panel {panel:?} selects {name}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} dashboard metric(s) absent from the live /metrics:\n{}\n(exported: {})",
        missing.len(),
        missing.join("\n"),
        have.into_iter().collect::<Vec<_>>().join(" ")
    );
}
