//! `access_log: true`: one `jwtgate::access` line per request, with the
//! outcome and status, never the token, the query or a header value.

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
    for (line, status, outcome) in [(ok, 200, "forwarded"), (refused, 401, "missing_token")] {
        assert!(line.contains("method=GET") && line.contains("path=\"/api/orders\""), "{line}");
        assert!(line.contains(&format!("status={status}")), "{line}");
        assert!(line.contains(&format!("outcome=\"{outcome}\"")), "{line}");
        assert!(line.contains("client=127.0.0.1:") && line.contains("duration_us="), "{line}");
    }
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
