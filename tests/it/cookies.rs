//! The credential cookie (`jwt.cookie: access_token`): jwtgate checks the
//! first cookie of that name, read as apps read names (whitespace around
//! them trimmed), and on every route where it read the credential the app
//! receives only that one: other same-name cookies, and names some parser
//! would read as it (case, PHP's `.`/` `/`%5F`, space- and comma-split
//! pairs), are removed from every Cookie header. Several Cookie fields
//! (HTTP/2) reach the app as one header.

use crate::support::gate::empty;
use crate::support::token::{self, claims};
use crate::support::{assert_refused, Cfg, Challenge, Gate, Rsp, Upstream};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

const ROUTES: &str = "
  - match: { path_prefix: /public }
    auth: none
  - match: { path_prefix: /opt }
    auth: optional
  - match: { path_prefix: /stripped }
    strip_authorization: true
";

async fn fixture() -> (Upstream, Gate) {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg { cookie: Some("access_token".into()), ..Cfg::new(&app).routes(ROUTES) }).await;
    (app, gate)
}

/// A validly signed token whose signature is then broken: a forgery.
fn forged() -> String {
    let mut raw = token::mint();
    let last = raw.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    raw.push(last);
    raw
}

/// Raw GET with these Cookie header lines (bytes as given) and optional Authorization.
async fn get(gate: &Gate, path: &str, cookies: &[&[u8]], bearer: Option<&str>) -> Rsp {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: g\r\nConnection: close\r\n").into_bytes();
    if let Some(t) = bearer {
        req.extend_from_slice(format!("Authorization: Bearer {t}\r\n").as_bytes());
    }
    for c in cookies {
        req.extend_from_slice(b"Cookie: ");
        req.extend_from_slice(c);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    gate.raw(&req).await
}

/// The Cookie header values the app received for `path`.
fn cookies_seen(app: &Upstream, path: &str) -> Vec<String> {
    let seen = app.one(path);
    seen.headers.iter().filter(|(k, _)| k == "cookie").map(|(_, v)| v.clone()).collect()
}

#[tokio::test]
async fn a_forged_first_cookie_with_whitespace_before_equals_is_the_one_checked() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    let control = format!("access_token={valid}");
    assert_eq!(get(&gate, "/api/control", &[control.as_bytes()], None).await.status, 200, "control");
    assert_eq!(cookies_seen(&app, "/api/control"), [control.as_str()]);
    let forged = forged();
    // SP and HTAB (every parser), a lone 0xA0 (NBSP once Node or Python decode the header as Latin-1).
    for sep in [b" ".as_slice(), b"\t", b"  \t", b"\xa0"] {
        for path in ["/api/spaced", "/stripped/spaced", "/opt/spaced"] {
            let after_name = [b"access_token", sep, format!("={forged}; access_token={valid}").as_bytes()].concat();
            let before_name =
                [b"x=1;", sep, format!("access_token={forged}; access_token={valid}").as_bytes()].concat();
            for cookie in [after_name, before_name] {
                let rsp = get(&gate, path, &[&cookie], None).await;
                assert_refused(&rsp, 401, "invalid_signature", Challenge::InvalidToken);
            }
        }
    }
    assert_eq!(app.total(), 1, "only the control reached the app");
}

#[tokio::test]
async fn a_valid_authorization_header_beside_a_forged_cookie_is_an_invalid_request() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    let forged = forged();
    for path in ["/api/both", "/stripped/both", "/opt/both"] {
        for cookie in [format!("access_token ={forged}"), format!("access_token\t={forged}; access_token={valid}")] {
            let rsp = get(&gate, path, &[cookie.as_bytes()], Some(&valid)).await;
            assert_refused(&rsp, 400, "invalid_request", Challenge::InvalidRequest);
        }
    }
    let agreeing = format!("access_token={valid}");
    assert_eq!(get(&gate, "/api/agree", &[agreeing.as_bytes()], Some(&valid)).await.status, 200, "control");
    assert_eq!(app.total(), 1, "only the control reached the app");
}

#[tokio::test]
async fn every_other_cookie_an_app_could_read_as_the_credential_is_removed() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    let older = claims().sign();
    let forged = forged();
    // Two Paths' cookies (RFC 6265 §5.4, most specific first): allowed, the first is checked.
    let cookie = format!("theme=dark; access_token={valid}; access_token={older}");
    assert_eq!(get(&gate, "/api/paths", &[cookie.as_bytes()], None).await.status, 200);
    assert_eq!(cookies_seen(&app, "/api/paths"), [format!("theme=dark; access_token={valid}")]);

    // The last three lookalikes (WebOb's findall, PHP's C-string names) were found by fuzzing.
    let lookalikes = format!(
        "a=1; access_token ={valid}; access_token={forged}; ACCESS_TOKEN={forged}; access.token={forged}; \
         access%5Ftoken={forged}; access token={forged}; access_token[]={forged}; b=2 access_token={forged}; \
         c=3,access_token={forged}; access_tokens=kept; e=1,access_token\t={forged}; f=\"q\"access_token={forged}; \
         access_token%00x={forged}"
    );
    let second_line = format!("access_token={forged}; d=4");
    let rsp = get(&gate, "/api/lookalikes", &[lookalikes.as_bytes(), second_line.as_bytes()], None).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(
        cookies_seen(&app, "/api/lookalikes"),
        [format!("a=1; access_token={valid}; access_tokens=kept; d=4")],
        "exactly the verified cookie, written name=value, in one header"
    );
}

#[tokio::test]
async fn strip_authorization_and_optional_routes_leave_no_credential_cookie() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    let forged = forged();
    let cookie = format!("theme=dark; access_token={valid}; access_token={forged}; Access_Token={forged}");
    let rsp = get(&gate, "/stripped/x", &[cookie.as_bytes()], None).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(cookies_seen(&app, "/stripped/x"), ["theme=dark"]);

    // Optional, no credential of that exact name: nothing was checked, so no lookalike passes.
    let lookalike = format!("Access_Token={forged}; theme=dark");
    assert_eq!(get(&gate, "/opt/anon", &[lookalike.as_bytes()], None).await.status, 200);
    assert_eq!(cookies_seen(&app, "/opt/anon"), ["theme=dark"]);
    // Optional with the credential: kept, the rest removed.
    let both = format!("access_token={valid}; access_token={forged}");
    assert_eq!(get(&gate, "/opt/tok", &[both.as_bytes()], None).await.status, 200);
    assert_eq!(cookies_seen(&app, "/opt/tok"), [format!("access_token={valid}")]);
    // Authorization header only: the cookie jwtgate did not check goes.
    let rsp = get(&gate, "/api/header", &[lookalike.as_bytes()], Some(&valid)).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(cookies_seen(&app, "/api/header"), ["theme=dark"]);
}

#[tokio::test]
async fn public_routes_pass_cookies_as_sent() {
    let (app, gate) = fixture().await;
    let cookie = format!("access_token ={}; access_token=x; Theme=dark", forged());
    assert_eq!(get(&gate, "/public/x", &[cookie.as_bytes()], None).await.status, 200);
    assert_eq!(cookies_seen(&app, "/public/x"), [cookie.as_str()], "auth: none routes are the app's business");
}

#[tokio::test]
async fn a_cookie_header_with_non_ascii_bytes_is_read_not_skipped() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    let forged = forged();
    let bad = format!("café=1; access_token={forged}; access_token={valid}");
    assert_refused(
        &get(&gate, "/api/utf8", &[bad.as_bytes()], None).await,
        401,
        "invalid_signature",
        Challenge::InvalidToken,
    );
    let bad = format!("café=1; access_token={forged}");
    let rsp = get(&gate, "/api/utf8-header", &[bad.as_bytes()], Some(&valid)).await;
    assert_refused(&rsp, 400, "invalid_request", Challenge::InvalidRequest);
    assert_eq!(app.total(), 0, "a forged cookie in a non-ASCII header reached the app");

    let good = format!("café=1; access_token={valid}; access_token={forged}");
    assert_eq!(get(&gate, "/api/utf8-ok", &[good.as_bytes()], None).await.status, 200, "control");
    assert_eq!(cookies_seen(&app, "/api/utf8-ok"), [format!("café=1; access_token={valid}")], "other bytes kept");
    let non_text = b"access_token=\xff\xfe";
    assert_refused(
        &get(&gate, "/api/binary", &[non_text], None).await,
        401,
        "malformed_token",
        Challenge::InvalidToken,
    );
}

#[tokio::test]
async fn cookie_fields_are_joined_into_one_header_for_the_upstream() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    // HTTP/1.1 with two Cookie lines.
    let token_cookie = format!("access_token={valid}");
    let rsp = get(&gate, "/public/h1", &[b"a=1", token_cookie.as_bytes(), b"b=2"], None).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(cookies_seen(&app, "/public/h1"), [format!("a=1; access_token={valid}; b=2")]);

    // HTTP/2: one `cookie` field per cookie (RFC 9113 §8.2.3), on a public and an authenticated route.
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    for path in ["/public/h2", "/api/h2"] {
        let req = gate
            .req("GET", path)
            .header("cookie", "a=1")
            .header("cookie", format!("access_token={valid}"))
            .header("cookie", "b=2")
            .body(empty())
            .expect("request");
        let rsp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
            .await
            .expect("h2 response in time")
            .expect("h2 request");
        assert_eq!(rsp.version(), hyper::Version::HTTP_2);
        assert_eq!(rsp.status(), 200, "{path}");
        let _: Bytes = rsp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(cookies_seen(&app, path), [format!("a=1; access_token={valid}; b=2")], "{path}");
    }
}

/// RFC 6750 §2.3's query parameter is a credential jwtgate never reads, so
/// on a route it authenticates the app must not get one either.
#[tokio::test]
async fn an_access_token_query_parameter_is_refused_on_authenticated_routes() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    let forged = forged();
    for (target, bearer) in [
        (format!("/opt/q?access_token={forged}"), None),
        (format!("/api/q?a=1&access_token={forged}"), Some(valid.as_str())),
        (format!("/api/q?access%5Ftoken={forged}"), Some(valid.as_str())),
        (format!("/logout?access_token={forged}"), Some(valid.as_str())),
        // Spellings Rack 2 and PHP read as `access_token` (found by fuzzing).
        (format!("/api/q?a=1;access_token={forged}"), Some(valid.as_str())),
        (format!("/api/q?access_token[]={forged}"), Some(valid.as_str())),
        (format!("/api/q?access.token={forged}"), Some(valid.as_str())),
        (format!("/api/q?Access+Token={forged}"), Some(valid.as_str())),
    ] {
        let rsp = get(&gate, &target, &[], bearer).await;
        assert_refused(&rsp, 400, "invalid_request", Challenge::InvalidRequest);
    }
    assert_eq!(app.total(), 0, "a request carrying an unchecked query token reached the app");
    assert_eq!(get(&gate, "/api/ok?my_access_token=1", &[], Some(&valid)).await.status, 200, "control: other names");
    let public = format!("/public/q?access_token={forged}");
    assert_eq!(get(&gate, &public, &[], None).await.status, 200, "control: auth: none routes are the app's business");
    assert_eq!(app.total(), 2);
}

/// Found in review: PHP reads an unmatched `[` as `_`, WebOb finds
/// `name=` after any delimiter inside a pair, and bytes of UTF-8 letters
/// at a pair's edge (`à` ends in 0xA0) must be written back as sent.
#[tokio::test]
async fn review_findings_php_bracket_webob_delimiters_and_utf8_edges() {
    let (app, gate) = fixture().await;
    let valid = token::mint();
    let forged = forged();
    let cookie = format!(
        "access[token={forged}; lang=à; access_token={valid}; x=[access_token={forged}; y=a\"access_token={forged}; z=name=х"
    );
    let rsp = get(&gate, "/api/review", &[cookie.as_bytes()], None).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(cookies_seen(&app, "/api/review"), [format!("lang=à; access_token={valid}; z=name=х")]);
}
