//! `access_log: true`: one `jwtgate::access` line per request, with the
//! outcome and status, never the token, the query or a header value.

use crate::support::gate::{empty, full};
use crate::support::token;
use crate::support::{eventually, Cfg, Gate, Upstream};
use std::time::Duration;

fn access_lines(gate: &Gate) -> Vec<String> {
    gate.logs().lines().filter(|l| l.contains("jwtgate::access")).map(str::to_owned).collect()
}

#[tokio::test]
async fn each_request_gets_one_line_with_its_outcome_and_no_secret() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).extra("access_log: true\n")).await;
    let raw = token::mint();

    assert_eq!(gate.get("/api/orders?api_key=q-secret-1", &raw).await.status, 200);
    assert_eq!(gate.get_anon("/api/orders?api_key=q-secret-2").await.status, 401);
    let lines = eventually(Duration::from_secs(5), "two access lines", || async {
        let lines = access_lines(&gate);
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    assert_eq!(lines.len(), 2, "one line per request: {lines:#?}");
    let (ok, refused) = (&lines[0], &lines[1]);
    for (line, status, outcome) in [(ok, 200, "forwarded"), (refused, 401, "refused")] {
        assert!(line.contains("method=\"GET\"") && line.contains("path=\"/api/orders\""), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(line.contains(&format!("outcome=\"{outcome}\"")), "{line}");
        assert!(line.contains("client=127.0.0.1:") && line.contains("duration_us="), "{line}");
    }
    assert!(refused.contains("reason=\"missing_token\""), "{refused}");
    assert!(!ok.contains("reason="), "{ok}");
    let logs = gate.logs();
    for secret in [raw.as_str(), "q-secret-1", "q-secret-2", "Bearer"] {
        assert!(!logs.contains(secret), "{secret:?} reached the logs");
    }
}

#[tokio::test]
async fn without_access_log_there_is_no_line_per_request() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app)).await;
    assert_eq!(gate.get("/api/quiet", &token::mint()).await.status, 200);
    assert_eq!(app.seen("/api/quiet"), 1, "the request was served");
    // A later line (a reload) has reached the log, so an access line of
    // the request before it would have too.
    gate.sighup();
    eventually(Duration::from_secs(5), "reload logged", || async {
        gate.logs().contains("config reloaded").then_some(())
    })
    .await;
    assert!(access_lines(&gate).is_empty(), "{}", gate.logs());
}

/// `X-Request-Id`: a well-formed one is kept end to end (upstream, the
/// response, the log line); a malformed one, or none, is replaced by a
/// fresh id that travels the same way. jwtgate's own answers carry it too.
#[tokio::test]
async fn the_request_id_travels_to_the_upstream_the_client_and_the_log() {
    let app = Upstream::spawn().await;
    let gate = Gate::spawn(&Cfg::new(&app).extra("access_log: true\n")).await;
    let raw = token::mint();
    let send = |path: &'static str, id: Option<&'static str>| {
        let mut req = gate.req("GET", path).header("authorization", format!("Bearer {raw}"));
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        gate.send(req.body(empty()).unwrap())
    };
    let kept = send("/api/kept", Some("req-7f3a:01.b_c")).await;
    assert_eq!(kept.status, 200);
    assert_eq!(kept.header("x-request-id").as_deref(), Some("req-7f3a:01.b_c"));
    assert_eq!(app.one("/api/kept").header("x-request-id"), Some("req-7f3a:01.b_c"));

    let replaced = send("/api/replaced", Some("bad id with spaces")).await;
    let fresh = replaced.header("x-request-id").expect("a generated id");
    assert!(fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");
    assert_eq!(app.one("/api/replaced").header("x-request-id"), Some(fresh.as_str()));

    let none = send("/api/none", None).await;
    let generated = none.header("x-request-id").expect("a generated id");
    assert_ne!(generated, fresh, "each request its own id");

    let refused = gate.get_anon("/api/refused").await;
    assert_eq!(refused.status, 401);
    let refused_id = refused.header("x-request-id").expect("jwtgate's own answer carries an id too");
    assert_eq!(app.seen("/api/refused"), 0);

    let lines = eventually(Duration::from_secs(5), "four access lines", || async {
        let lines = access_lines(&gate);
        (lines.len() >= 4).then_some(lines)
    })
    .await;
    for (line, id) in lines.iter().zip(["req-7f3a:01.b_c", fresh.as_str(), generated.as_str(), refused_id.as_str()]) {
        assert!(line.contains(&format!("request_id=\"{id}\"")), "{id} in {line}");
    }
    assert!(!gate.logs().contains("bad id with spaces"), "a refused id is not logged");
}

/// The fields a forwarded request's line carries: upstream latency, the
/// bytes both ways, user agent, issuer and the keyed subject hash (never
/// the subject, the token, a cookie or the Authorization header).
#[tokio::test]
async fn a_forwarded_line_has_latency_bytes_caller_and_no_credential() {
    let app = Upstream::spawn().await;
    let key_file = crate::support::gate::write_config("0123456789abcdef-log-key\n");
    let extra = format!("access_log: true\naccess_log_subject_key_file: {}\n", key_file.path().display());
    let gate = Gate::spawn(&Cfg::new(&app).extra(&extra)).await;
    let raw = token::claims().sub("alice@example.com").sign();
    let req = gate
        .req("POST", "/api/upload?sig=q-secret")
        .header("authorization", format!("Bearer {raw}"))
        .header("cookie", "session=cookie-secret-1")
        .header("user-agent", "probe/1.0 (tests)")
        .body(full(vec![b'x'; 1000]))
        .unwrap();
    let rsp = gate.send(req).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.body.len(), 1000, "the echo upstream returns the body");
    assert_eq!(app.one("/api/upload").body_len, 1000);
    let line = eventually(Duration::from_secs(5), "the access line", || async { access_lines(&gate).pop() }).await;
    for field in [
        "method=\"POST\"",
        "path=\"/api/upload\"",
        "outcome=\"forwarded\"",
        "bytes_in=1000",
        "bytes_out=1000",
        "complete=true",
        "user_agent=\"probe/1.0 (tests)\"",
        &format!("issuer=\"{}\"", token::ISSUER),
        "upstream_us=",
        "rule=\"prefix:/api\"",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    let hmac = line.split("sub_hmac=\"").nth(1).and_then(|r| r.get(..32)).expect("sub_hmac field");
    assert!(hmac.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    let logs = gate.logs();
    for secret in [raw.as_str(), "alice@example.com", "cookie-secret-1", "q-secret", "Bearer"] {
        assert!(!logs.to_ascii_lowercase().contains(&secret.to_ascii_lowercase()), "{secret:?} reached the logs");
    }
}

/// `--log-format json`: the access line is one JSON object with each
/// documented field at the top level, typed (numbers as numbers), the
/// request id the client sent, and no credential anywhere in the log.
#[tokio::test]
async fn the_json_access_line_has_every_field_typed_and_no_credential() {
    let app = Upstream::spawn().await;
    let key_file = crate::support::gate::write_config("0123456789abcdef-log-key\n");
    let extra = format!("access_log: true\naccess_log_subject_key_file: {}\n", key_file.path().display());
    let gate = Gate::spawn_yaml_with(&Cfg::new(&app).extra(&extra).yaml(), &["--log-format", "json"], &[]).await;
    let raw = token::claims().sub("bob@example.com").sign();
    let req = gate
        .req("PUT", "/api/items/7?token=q-secret")
        .header("authorization", format!("Bearer {raw}"))
        .header("cookie", "sid=cookie-secret-2")
        .header("x-request-id", "trace-0af7651916cd43dd")
        .header("user-agent", "curl/8.5.0")
        .body(full(&b"{\"n\":1}"[..]))
        .unwrap();
    let rsp = gate.send(req).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("x-request-id").as_deref(), Some("trace-0af7651916cd43dd"));
    assert_eq!(app.one("/api/items/7").header("x-request-id"), Some("trace-0af7651916cd43dd"));
    let line = eventually(Duration::from_secs(5), "the JSON access line", || async {
        gate.logs()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every line is JSON"))
            .find(|v| v["target"] == "jwtgate::access")
    })
    .await;
    let text = |k: &str| line[k].as_str().unwrap_or_else(|| panic!("{k} is a string in {line}")).to_owned();
    let number = |k: &str| line[k].as_u64().unwrap_or_else(|| panic!("{k} is a number in {line}"));
    assert!(humantime::parse_rfc3339(&text("time")).is_ok(), "{line}");
    assert_eq!(text("level"), "INFO");
    assert_eq!(text("request_id"), "trace-0af7651916cd43dd");
    assert_eq!(text("method"), "PUT");
    assert_eq!(text("path"), "/api/items/7");
    assert_eq!(text("rule"), "prefix:/api");
    assert_eq!(number("status"), 200);
    assert_eq!(text("outcome"), "forwarded");
    assert!(line.get("reason").is_none(), "{line}");
    assert!(number("duration_us") >= number("upstream_us"), "{line}");
    assert_eq!((number("bytes_in"), number("bytes_out")), (7, 7), "{line}");
    assert_eq!(line["complete"], true);
    assert_eq!(text("user_agent"), "curl/8.5.0");
    assert!(text("client").starts_with("127.0.0.1:"), "{line}");
    assert_eq!(text("issuer"), token::ISSUER);
    assert_eq!(text("sub_hmac").len(), 32);
    let logs = gate.logs();
    for secret in [raw.as_str(), "bob@example.com", "cookie-secret-2", "q-secret", "Bearer"] {
        assert!(!logs.contains(secret), "{secret:?} reached the logs");
    }
}
