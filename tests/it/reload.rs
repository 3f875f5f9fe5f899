//! Hot reload: a changed file (also behind a Kubernetes ConfigMap's
//! symlink swap) or SIGHUP puts a new config in force without dropping a
//! request; a broken file is refused, logged with file and line, counted,
//! and the running config stays. Requests in flight finish on their snapshot.

use crate::support::configmap::{replace_file, ConfigMap};
use crate::support::gate::empty;
use crate::support::token;
use crate::support::upstream::Behaviour;
use crate::support::{eventually, key_path, metric, Cfg, Gate, Rsp, Upstream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RELOAD_FAILED: &str = "config reload failed";

/// `/flip` is `auth: none` (200 without a token) or `auth: deny` (403);
/// `/api` always needs a token; `/held` as `/flip`, for in-flight requests.
fn yaml(app: &Upstream, flip: &str, watch: bool) -> String {
    let routes = format!(
        "
  - match: {{ path: /flip }}
    auth: {flip}
  - match: {{ path: /held }}
    auth: {flip}
  - match: {{ path_prefix: /api }}
    auth: required
"
    );
    let reload = format!("reload:\n  watch: {watch}\n  poll_interval: 100ms\n");
    Cfg::new(app).admin().routes(&routes).extra(&reload).yaml()
}

fn expected_status(flip: &str) -> u16 {
    if flip == "none" {
        200
    } else {
        403
    }
}

/// A config that would flip the rule were it applied, broken in one of
/// three ways: YAML syntax, an unknown field, a key file that is missing.
fn broken(app: &Upstream, flip: &str, kind: usize) -> String {
    let good = yaml(app, flip, true);
    match kind % 3 {
        0 => format!("{good}  - match: {{ path: /unclosed\n"),
        1 => good.replacen(&format!("    auth: {flip}\n"), &format!("    auth: {flip}\n    colour: blue\n"), 1),
        _ => good.replacen(&key_path("ec.pub.pem"), &key_path("no-such-key.pub.pem"), 1),
    }
}

async fn flip_status(gate: &Gate) -> u16 {
    gate.send(gate.req("GET", "/flip").body(empty()).expect("request")).await.status
}

async fn wait_for_flip(gate: &Gate, flip: &str, round: usize) {
    let want = expected_status(flip);
    eventually(Duration::from_secs(5), &format!("round {round}: /flip answers {want} (auth: {flip})"), || async {
        (flip_status(gate).await == want).then_some(())
    })
    .await;
}

/// Waits for one more `config reload failed` line than `before`; checks it
/// names the file with a line number.
async fn wait_for_failure(gate: &Gate, before: usize, path: &str, round: usize) {
    let line = eventually(Duration::from_secs(5), &format!("round {round}: reload failure logged"), || async {
        let logs = gate.logs();
        let failures: Vec<&str> = logs.lines().filter(|l| l.contains(RELOAD_FAILED)).collect();
        (failures.len() > before).then(|| failures[before].to_owned())
    })
    .await;
    let located =
        line.split(&format!("{path}:")).nth(1).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    assert!(located, "round {round}: failure does not name {path}:LINE: {line}");
}

fn failures(gate: &Gate) -> usize {
    gate.logs().lines().filter(|l| l.contains(RELOAD_FAILED)).count()
}

/// What the client tasks saw: statuses other than expected, and transport errors.
#[derive(Default)]
struct Tally {
    sent: usize,
    unexpected: Vec<(String, u16, String)>,
    errors: Vec<String>,
}

/// Sends `/api/steady` with and without a token until `stop`: 200 and 401 expected.
async fn client(gate: Arc<Gate>, token: String, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    while !stop.load(Ordering::Relaxed) {
        for (with_token, want) in [(true, 200), (false, 401)] {
            let mut req = gate.req("GET", "/api/steady");
            if with_token {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            let got: Result<Rsp, String> = gate.try_send(req.body(empty()).expect("request")).await;
            let mut t = tally.lock().expect("tally");
            t.sent += 1;
            match got {
                Ok(rsp) if rsp.status == want => {}
                Ok(rsp) => t.unexpected.push((format!("token: {with_token}"), rsp.status, rsp.text())),
                Err(e) => t.errors.push(e),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dozen_reloads_under_traffic_fail_no_request_and_apply_only_good_files() {
    let app = Upstream::spawn().await;
    let mut map = ConfigMap::new(&yaml(&app, "none", true));
    let path = map.path().display().to_string();
    let mut gate = Gate::spawn_file(&map.path()).await;
    gate.admin_token = Some(crate::support::config::ADMIN_TOKEN.into());
    let gate = Arc::new(gate);
    wait_for_flip(&gate, "none", 0).await;

    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Tally::default())));
    let clients: Vec<_> =
        (0..2).map(|_| tokio::spawn(client(gate.clone(), token::mint(), stop.clone(), tally.clone()))).collect();

    let mut in_force = "none";
    for round in 1..=24 {
        let next = if in_force == "none" { "deny" } else { "none" };
        let good = round % 2 == 0;
        let text = if good { yaml(&app, next, true) } else { broken(&app, next, round / 2) };
        let before = failures(&gate);
        match round % 3 {
            0 => map.swap(&text),
            1 => {
                map.swap(&text);
                gate.sighup();
            }
            _ => map.rewrite(&text),
        }
        if good {
            wait_for_flip(&gate, next, round).await;
            in_force = next;
        } else {
            wait_for_failure(&gate, before, &path, round).await;
            assert_eq!(flip_status(&gate).await, expected_status(in_force), "round {round}: broken file applied");
        }
    }

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }
    let t = std::mem::take(&mut *tally.lock().expect("tally"));
    assert!(t.errors.is_empty(), "{} of {} requests failed or were reset: {:?}", t.errors.len(), t.sent, t.errors);
    assert!(t.unexpected.is_empty(), "unexpected answers during reloads: {:?}", t.unexpected);
    assert!(t.sent >= 100, "only {} requests sent during the reloads", t.sent);
    let text = gate.metrics().await;
    let ok = metric(&text, "jwtgate_config_reloads_total", &[r#"result="ok""#]).unwrap_or(0.0);
    let err = metric(&text, "jwtgate_config_reloads_total", &[r#"result="error""#]).unwrap_or(0.0);
    assert!(ok >= 12.0 && err >= 12.0, "reload counters ok={ok} error={err}:\n{text}");
}

#[tokio::test]
async fn sighup_alone_reloads_when_file_watching_is_off_and_refuses_a_broken_file() {
    let app = Upstream::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwtgate.yaml");
    let path = file.display().to_string();
    std::fs::write(&file, yaml(&app, "none", false)).expect("write config");
    let mut gate = Gate::spawn_file(&file).await;
    gate.admin_token = Some(crate::support::config::ADMIN_TOKEN.into());
    assert_eq!(flip_status(&gate).await, 200, "control");

    replace_file(&file, &yaml(&app, "deny", false));
    gate.sighup();
    wait_for_flip(&gate, "deny", 1).await;
    let reached = app.seen("/flip");

    let before = failures(&gate);
    replace_file(&file, &broken(&app, "none", 1).replace("watch: true", "watch: false"));
    gate.sighup();
    wait_for_failure(&gate, before, &path, 2).await;
    assert_eq!(flip_status(&gate).await, 403, "broken file applied");
    assert!(gate.logs().contains("unknown field `colour`"), "the error says what is wrong:\n{}", gate.logs());

    let text = gate.metrics().await;
    assert_eq!(metric(&text, "jwtgate_config_reloads_total", &[r#"result="ok""#]), Some(1.0), "{text}");
    assert_eq!(metric(&text, "jwtgate_config_reloads_total", &[r#"result="error""#]), Some(1.0), "{text}");
    assert_eq!(app.seen("/flip"), reached, "a denied /flip reached the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_in_flight_finishes_on_the_config_it_started_with() {
    let app = Upstream::spawn().await;
    let release = Arc::new(tokio::sync::Notify::new());
    app.on("/held", Behaviour::Hold(release.clone()));
    let mut map = ConfigMap::new(&yaml(&app, "none", true));
    let gate = Arc::new(Gate::spawn_file(&map.path()).await);

    let g = gate.clone();
    let in_flight = tokio::spawn(async move { g.send(g.req("GET", "/held").body(empty()).expect("request")).await });
    eventually(Duration::from_secs(5), "held request reached the app", || async {
        (app.seen("/held") == 1).then_some(())
    })
    .await;
    map.swap(&yaml(&app, "deny", true));
    wait_for_flip(&gate, "deny", 1).await;
    let rsp = gate.send(gate.req("GET", "/held").body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 403, "new requests get the new rule");
    assert!(!in_flight.is_finished(), "held request answered before release");

    release.notify_one();
    let rsp = in_flight.await.expect("in-flight task");
    assert_eq!(rsp.status, 200, "request in flight cut off by the reload: {}", rsp.text());
    assert_eq!(rsp.text(), "released");
    assert_eq!(app.seen("/held"), 1, "the refused request reached the app");
}

#[tokio::test]
async fn sighup_right_after_the_listening_line_reloads_instead_of_killing_the_gate() {
    let (app, idp) = (Upstream::spawn().await, crate::support::idp::Idp::spawn().await);
    // A slow IdP stretches start-up; the gate has announced itself all the same.
    idp.delay(Duration::from_millis(500));
    let keys = format!("        - {{ jwks_url: \"{}\" }}\n", idp.url());
    let yaml = Cfg::new(&app).yaml().replacen("        - { kid: rsa-1,", &format!("{keys}        - {{ kid: rsa-1,"), 1);
    let gate = Gate::spawn_yaml(&yaml).await;
    gate.sighup();
    let raw = token::mint();
    let served = eventually(Duration::from_secs(5), "the gate serves, or is gone", || async {
        if !gate.alive() {
            return Some(false);
        }
        let req = gate.req("GET", "/api/after-hup").header("authorization", format!("Bearer {raw}"));
        gate.try_send(req.body(empty()).expect("request")).await.ok().filter(|r| r.status == 200).map(|_| true)
    })
    .await;
    assert!(served, "SIGHUP sent after `jwtgate listening` killed the gate (JWKS still loading)");
    assert_eq!(idp.hits(), 1, "the JWK Set was fetched once");
}

/// The `fixed at start` warnings naming `setting` in the gate's log so far.
fn fixed_at_start_warnings(gate: &Gate, setting: &str) -> usize {
    let named = format!("setting=\"{setting}\"");
    gate.logs().lines().filter(|l| l.contains("fixed at start") && l.contains(&named)).count()
}

/// Waits until the gate has logged `n` successful reloads in all.
async fn wait_for_reloads(gate: &Gate, n: usize, what: &str) {
    eventually(Duration::from_secs(5), what, || async {
        (gate.logs().lines().filter(|l| l.contains("config reloaded")).count() >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_listen_change_warns_once_and_restoring_it_ends_the_warning_while_other_changes_apply() {
    let app = Upstream::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwtgate.yaml");
    let started = yaml(&app, "none", true);
    let with_listen = |addr: &str| {
        let moved: Vec<String> = started
            .lines()
            .map(|l| if l.starts_with("listen: ") { format!("listen: {addr}") } else { l.to_owned() })
            .collect();
        moved.join("\n") + "\n"
    };
    assert_eq!(with_listen("127.0.0.1:0"), started, "the file starts with `listen: 127.0.0.1:0`");
    std::fs::write(&file, &started).expect("write config");
    let gate = Gate::spawn_file(&file).await;
    assert_eq!(flip_status(&gate).await, 200, "control");

    replace_file(&file, &with_listen("127.0.0.1:1"));
    wait_for_reloads(&gate, 1, "the changed listen reloaded").await;
    assert_eq!(fixed_at_start_warnings(&gate, "listen"), 1, "a changed listen is warned about:\n{}", gate.logs());

    replace_file(&file, &started);
    wait_for_reloads(&gate, 2, "the restored listen reloaded").await;
    assert_eq!(fixed_at_start_warnings(&gate, "listen"), 1, "the restored listen warned again:\n{}", gate.logs());

    replace_file(&file, &yaml(&app, "deny", true));
    wait_for_flip(&gate, "deny", 3).await;
    wait_for_reloads(&gate, 3, "the rule change reloaded").await;
    let warnings = gate.logs().lines().filter(|l| l.contains("fixed at start")).count();
    assert_eq!(warnings, 1, "only the changed listen is warned about, once:\n{}", gate.logs());
}

/// A reload registers the new rules' series at 0 too, before any request
/// reaches them (the recorder was installed long before this config).
#[tokio::test]
async fn a_reloaded_rule_has_its_series_at_zero_before_its_first_request() {
    let app = Upstream::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwtgate.yaml");
    std::fs::write(&file, yaml(&app, "none", false)).expect("write config");
    let mut gate = Gate::spawn_file(&file).await;
    gate.admin_token = Some(crate::support::config::ADMIN_TOKEN.into());
    let added = r#"route="path:/added""#;
    assert_eq!(metric(&gate.metrics().await, "jwtgate_requests_total", &[added]), None, "control: not there yet");

    let with_rule =
        yaml(&app, "none", false).replace("routes:\n", "routes:\n  - match: { path: /added }\n    auth: none\n");
    replace_file(&file, &with_rule);
    gate.sighup();
    eventually(Duration::from_secs(5), "reload logged", || async {
        gate.logs().contains("config reloaded").then_some(())
    })
    .await;
    let text = gate.metrics().await;
    for outcome in ["forwarded", "refused", "upstream_error"] {
        let outcome = format!("outcome=\"{outcome}\"");
        assert_eq!(metric(&text, "jwtgate_requests_total", &[added, &outcome]), Some(0.0), "{outcome}\n{text}");
    }
    assert_eq!(metric(&text, "jwtgate_refusals_total", &[added, r#"reason="missing_token""#]), Some(0.0));
    assert_eq!(metric(&text, "jwtgate_upstream_duration_seconds_count", &[added]), Some(0.0));
}
