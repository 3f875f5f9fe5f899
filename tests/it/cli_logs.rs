//! `--log-format json` (or `JWTGATE_LOG_FORMAT`, or the file's
//! `log_format`): every stderr line one JSON object with `time` (RFC 3339,
//! UTC), `level`, `target`, `message` and the event's fields at the top
//! level. The flag wins over the file.

use crate::support::{eventually, Cfg, Gate, Upstream};
use serde_json::Value;
use std::time::Duration;

/// Every stderr line as JSON; panics naming the first that is not.
fn json_lines(logs: &str) -> Vec<serde_json::Map<String, Value>> {
    logs.lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(object)) => object,
            _ => panic!("not a JSON object: {line:?}\nin:\n{logs}"),
        })
        .collect()
}

#[track_caller]
fn assert_log_line(line: &serde_json::Map<String, Value>) {
    for key in ["time", "level", "target", "message"] {
        assert!(line.get(key).is_some_and(Value::is_string), "`{key}` in {line:?}");
    }
    let time = line["time"].as_str().unwrap_or_default();
    assert!(humantime::parse_rfc3339(time).is_ok() && time.ends_with('Z'), "RFC 3339 UTC: {time}");
    assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&line["level"].as_str().unwrap_or_default()));
    assert!(!line.contains_key("fields") && !line.contains_key("timestamp"), "nested or renamed: {line:?}");
}

/// Waits for the access-log line of `path` and returns every line so far.
async fn lines_after_request(gate: &Gate, app: &Upstream, path: &str) -> Vec<serde_json::Map<String, Value>> {
    assert_eq!(gate.get_anon(path).await.status, 200);
    assert_eq!(app.seen(path), 1);
    eventually(Duration::from_secs(5), "the access log line", || async {
        gate.logs().contains("jwtgate::access").then_some(())
    })
    .await;
    json_lines(&gate.logs())
}

#[tokio::test]
async fn run_with_log_format_json_writes_one_flat_json_object_per_line() {
    let app = Upstream::spawn().await;
    let yaml = Cfg::new(&app).extra("access_log: true").yaml();
    let gate = Gate::spawn_yaml_with(&yaml, &["--log-format", "json"], &[]).await;
    let lines = lines_after_request(&gate, &app, "/healthz").await;
    assert!(lines.len() >= 2, "start-up and access lines: {lines:?}");
    lines.iter().for_each(assert_log_line);
    let listening = lines.iter().find(|l| l["message"] == "listening").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(listening["level"], "INFO");
    assert!(
        listening["local"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")),
        "a field at the top: {listening:?}"
    );
    let access = lines.iter().find(|l| l["target"] == "jwtgate::access").unwrap_or_else(|| panic!("{lines:?}"));
    assert!(access.len() > 4, "the access line's own fields sit at the top level: {access:?}");
}

#[tokio::test]
async fn the_config_files_log_format_applies_and_the_flag_or_variable_wins_over_it() {
    let app = Upstream::spawn().await;
    let yaml = Cfg::new(&app).extra("access_log: true\nlog_format: json").yaml();
    let gate = Gate::spawn_yaml(&yaml).await;
    lines_after_request(&gate, &app, "/healthz").await.iter().for_each(assert_log_line);

    let text = Gate::spawn_yaml_with(&yaml, &["--log-format", "text"], &[]).await;
    assert_eq!(text.get_anon("/healthz").await.status, 200);
    eventually(Duration::from_secs(5), "the access log line", || async {
        text.logs().contains("jwtgate::access").then_some(())
    })
    .await;
    let logs = text.logs();
    assert!(logs.lines().all(|l| !l.starts_with('{')), "--log-format text lost to the file:\n{logs}");

    let plain = Cfg::new(&app).extra("access_log: true").yaml();
    let env = Gate::spawn_yaml_with(&plain, &[], &[("JWTGATE_LOG_FORMAT", "json")]).await;
    assert_eq!(env.get_anon("/healthz").await.status, 200);
    eventually(Duration::from_secs(5), "the access log line", || async {
        env.logs().contains("jwtgate::access").then_some(())
    })
    .await;
    json_lines(&env.logs()).iter().for_each(assert_log_line);
}
