//! Which rule a request falls under: host (exact and `*.domain`), path
//! (exact, segment-aware prefix, anchored regex, glob), methods and header.
//! Every matcher rule below opens its requests (`auth: none`) and a final
//! catch-all closes everything else (`auth: deny`), so a request that a
//! matcher does not take is observably refused: 403 and nothing upstream.

use crate::support::gate::empty;
use crate::support::{assert_refused, Cfg, Challenge, Gate, Upstream};
use hyper::http::request::Builder;

const ROUTES: &str = r#"
  - match: { host: api.example.com, path_prefix: /h }
    auth: none
  - match: { host: "*.example.org", path_prefix: /h }
    auth: none
  - match: { path: /exact }
    auth: none
  - match: { path_prefix: /prefix/ }
    auth: none
  - match: { path_regex: "/orders/[0-9]+" }
    auth: none
  - match: { path_glob: "/files/*/raw" }
    auth: none
  - match: { path_glob: "/static/**/*.css" }
    auth: none
  - match: { path_prefix: /m, methods: [GET, PUT] }
    auth: none
  - match: { path_prefix: /present, header: { name: X-Beta } }
    auth: none
  - match: { path_prefix: /valued, header: { name: X-Tenant, value: acme } }
    auth: none
  - match: { path_prefix: / }
    auth: deny
"#;

/// A gate on [`ROUTES`] and its upstream; each probe checks status and
/// whether exactly one request (or none) reached the upstream.
pub struct Probe {
    pub app: Upstream,
    pub gate: Gate,
}

impl Probe {
    pub async fn new(routes: &str) -> Probe {
        let app = Upstream::spawn().await;
        let gate = Gate::spawn(&Cfg::new(&app).routes(routes)).await;
        Probe { app, gate }
    }

    pub fn req(&self, method: &str, path: &str) -> Builder {
        self.gate.req(method, path)
    }

    /// Sent without a token: the matcher rule forwards it.
    pub async fn forwarded(&self, req: Builder, what: &str) {
        let before = self.app.total();
        let rsp = self.gate.send(req.body(empty()).expect("request")).await;
        assert_eq!(rsp.status, 200, "{what}: expected the matcher rule to forward; body: {}", rsp.text());
        assert_eq!(rsp.header("x-upstream").as_deref(), Some("yes"), "{what}");
        assert_eq!(self.app.total(), before + 1, "{what}: upstream did not see it exactly once");
    }

    /// Sent without a token: falls through to the catch-all `deny`.
    pub async fn denied(&self, req: Builder, what: &str) {
        let before = self.app.total();
        let rsp = self.gate.send(req.body(empty()).expect("request")).await;
        assert_refused(&rsp, 403, "forbidden", Challenge::Absent);
        assert_eq!(self.app.total(), before, "{what}: a request the matcher must not take reached the upstream");
    }
}

#[tokio::test]
async fn exact_host_matches_in_any_case_with_or_without_port_and_nothing_else() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/h").header("host", "api.example.com"), "exact host").await;
    p.forwarded(p.req("GET", "/h/x").header("host", "API.Example.COM"), "host is case-insensitive").await;
    p.forwarded(p.req("GET", "/h").header("host", "api.example.com:8443"), "port is ignored").await;
    p.denied(p.req("GET", "/h").header("host", "www.example.com"), "another host").await;
    p.denied(p.req("GET", "/h").header("host", "x.api.example.com"), "a subdomain of an exact host").await;
    p.denied(p.req("GET", "/h").header("host", "api.example.com.evil.test"), "exact host as a prefix").await;
    p.denied(p.req("GET", "/other").header("host", "api.example.com"), "right host, other path").await;
}

#[tokio::test]
async fn wildcard_host_matches_any_subdomain_but_not_the_apex() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/h").header("host", "a.example.org"), "one label").await;
    p.forwarded(p.req("GET", "/h").header("host", "a.b.EXAMPLE.org:80"), "two labels, any case, port").await;
    p.denied(p.req("GET", "/h").header("host", "example.org"), "the apex").await;
    p.denied(p.req("GET", "/h").header("host", "badexample.org"), "suffix without the dot").await;
    p.denied(p.req("GET", "/h").header("host", "a.example.org.test"), "wildcard domain as a prefix").await;
}

#[tokio::test]
async fn exact_path_matches_only_itself() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/exact"), "/exact").await;
    p.forwarded(p.req("GET", "/exact?q=1"), "a query string is not part of the path").await;
    // One trailing slash is ignored, as Express (non-strict routing) does.
    p.forwarded(p.req("GET", "/exact/"), "trailing slash").await;
    p.denied(p.req("GET", "/exact/x"), "below it").await;
    p.denied(p.req("GET", "/exactly"), "longer name").await;
}

#[tokio::test]
async fn path_prefix_matches_whole_segments_only() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/prefix"), "the prefix itself (trailing slash in the rule ignored)").await;
    p.forwarded(p.req("GET", "/prefix/"), "with a slash").await;
    p.forwarded(p.req("GET", "/prefix/a/b"), "deeper").await;
    p.denied(p.req("GET", "/prefixed"), "same characters, longer segment").await;
    p.denied(p.req("GET", "/x/prefix"), "not at the start").await;
}

#[tokio::test]
async fn path_regex_is_anchored_at_both_ends() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/orders/42"), "digits").await;
    p.forwarded(p.req("GET", "/orders/%34%32"), "escaped digits decode for matching").await;
    p.denied(p.req("GET", "/orders/42/items"), "anchored at the end").await;
    p.denied(p.req("GET", "/v1/orders/42"), "anchored at the start").await;
    p.denied(p.req("GET", "/orders/abc"), "not digits").await;
    p.denied(p.req("GET", "/orders/"), "empty id").await;
}

#[tokio::test]
async fn path_glob_star_stays_within_one_segment_and_double_star_spans_many() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/files/report/raw"), "* one segment").await;
    p.denied(p.req("GET", "/files/a/b/raw"), "* does not cross a slash").await;
    p.denied(p.req("GET", "/files/a/raw/x"), "glob is anchored").await;
    p.forwarded(p.req("GET", "/static/site.css"), "** zero segments").await;
    p.forwarded(p.req("GET", "/static/a/b/c/site.css"), "** many segments").await;
    p.denied(p.req("GET", "/static/a/site.js"), "literal suffix").await;
    p.denied(p.req("GET", "/assets/static/site.css"), "glob is anchored at the start").await;
}

#[tokio::test]
async fn methods_restrict_a_rule_to_the_listed_methods() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/m"), "GET listed").await;
    p.forwarded(p.req("PUT", "/m/1"), "PUT listed").await;
    p.denied(p.req("POST", "/m"), "POST not listed").await;
    p.denied(p.req("DELETE", "/m/1"), "DELETE not listed").await;
}

#[tokio::test]
async fn header_rule_matches_on_presence_or_on_the_exact_value() {
    let p = Probe::new(ROUTES).await;
    p.forwarded(p.req("GET", "/present").header("x-beta", "1"), "present").await;
    p.forwarded(p.req("GET", "/present").header("X-BETA", ""), "present, empty, any name case").await;
    p.denied(p.req("GET", "/present").header("x-beta-not", "1"), "absent").await;
    p.forwarded(p.req("GET", "/valued").header("x-tenant", "acme"), "exact value").await;
    p.forwarded(p.req("GET", "/valued").header("x-tenant", "other").header("x-tenant", "acme"), "any of several").await;
    p.denied(p.req("GET", "/valued").header("x-tenant", "ACME"), "value is case-sensitive").await;
    p.denied(p.req("GET", "/valued").header("x-tenant", "acme-corp"), "value is exact").await;
    p.denied(p.req("GET", "/valued"), "header absent").await;
}

#[tokio::test]
async fn first_matching_rule_wins() {
    let routes = r#"
  - match: { path_prefix: /api/admin }
    auth: deny
  - match: { path_prefix: /api }
    auth: none
  - match: { path_prefix: /api/admin/open }
    auth: none
"#;
    let p = Probe::new(routes).await;
    p.forwarded(p.req("GET", "/api/orders"), "the broad rule").await;
    p.denied(p.req("GET", "/api/admin/open"), "an earlier rule shadows a later, narrower one").await;
}
