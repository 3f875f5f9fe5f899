//! `discovery: true`: the issuer's keys come from the `jwks_uri` of its
//! `/.well-known/openid-configuration`, against an IdP stand-in serving
//! the document and the sets on paths of their own. A document naming
//! another issuer (even by one slash) or an http `jwks_uri` is refused and
//! the issuer stays unready, its tokens refused as those of an issuer whose
//! JWK Set never loaded; readiness waits for document and keys, and
//! follows a fixed IdP without a restart; rotation and a moved `jwks_uri`
//! are picked up under the JWKS refresh and cool-down rules.

use crate::support::config::ADMIN_TOKEN;
use crate::support::gate::{cli, write_config};
use crate::support::idp::{self, Answer, Idp, DISCOVERY_PATH};
use crate::support::token::claims;
use crate::support::{assert_refused, eventually, metric, Challenge, Gate, Upstream};
use serde_json::json;
use std::time::Duration;

/// One issuer with `discovery: true`; `jwks` is the flow-style `jwt.jwks`
/// map; with the admin listener (readiness, metrics).
fn yaml(app: &Upstream, issuer: &str, jwks: &str) -> String {
    format!(
        "listen: 127.0.0.1:0
upstream:
  url: {app}
jwt:
  jwks: {jwks}
  issuers:
    - issuer: \"{issuer}\"
      audiences: [api]
      algorithms: [RS256, ES256]
      discovery: true
revocation:
  store: memory
admin:
  listen: 127.0.0.1:0
  insecure_token: \"{ADMIN_TOKEN}\"
routes:
  - match: {{ path_prefix: /api }}
    auth: required
",
        app = app.url(),
    )
}

async fn gate(app: &Upstream, issuer: &str, jwks: &str) -> Gate {
    let mut gate = Gate::spawn_yaml(&yaml(app, issuer, jwks)).await;
    gate.admin_token = Some(ADMIN_TOKEN.into());
    gate
}

async fn readyz(gate: &Gate) -> u16 {
    gate.admin_send("GET", "/readyz", None).await.status
}

/// A fresh RS256 token of `iss` signed with `rsa.key.pem` under `kid`.
fn rsa(iss: &str, kid: &str) -> String {
    claims().iss(iss).jwks_rs256().header("kid", json!(kid)).sign()
}

/// A fresh ES256 token of `iss` signed with `ec.key.pem` (kid `jwks-ec`).
fn ec(iss: &str) -> String {
    claims().iss(iss).jwks_es256().sign()
}

/// `tests/keys/jwks.json` with only its RSA key (`jwks-rsa`).
fn rsa_only() -> String {
    let mut set: serde_json::Value = serde_json::from_str(&idp::jwks()).expect("jwks.json");
    let keys = set["keys"].as_array_mut().expect("keys");
    keys.retain(|k| k["kid"] == "jwks-rsa");
    assert_eq!(keys.len(), 1, "jwks-rsa in jwks.json");
    set.to_string()
}

#[tokio::test]
async fn the_discovered_jwks_uri_verifies_tokens_and_a_key_it_does_not_publish_is_refused() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    // The IdP's default answer (any other path) holds the EC key too: an EC
    // token accepted would mean the gate fetched a set it was not pointed at.
    idp.route("/keys/rsa-only", Answer::Set(rsa_only()));
    idp.discovery(&idp.issuer(), &idp.url_of("/keys/rsa-only"));
    let iss = idp.issuer();
    let gate = gate(&app, &iss, "{ min_refresh: 1h, max_refresh: 1h }").await;
    assert_eq!(readyz(&gate).await, 200, "ready once document and keys are loaded");
    assert_eq!((idp.hits_on(DISCOVERY_PATH), idp.hits_on("/keys/rsa-only")), (1, 1), "one document, one set");
    assert_eq!(idp.hits(), 2, "no other fetch");

    let rsp = gate.get("/api/good", &rsa(&iss, "jwks-rsa")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(app.seen("/api/good"), 1);

    let rsp = gate.get("/api/other-key", &ec(&iss)).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/other-key"), 0, "a token of a key the jwks_uri does not publish reached the app");
    // The right kid with another token's signature: the key is tried and fails.
    let other = rsa(&iss, "jwks-rsa");
    let forged = format!(
        "{}.{}",
        rsa(&iss, "jwks-rsa").rsplit_once('.').expect("jws").0,
        other.rsplit('.').next().expect("sig")
    );
    let rsp = gate.get("/api/forged", &forged).await;
    assert_refused(&rsp, 401, "invalid_signature", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/forged"), 0);

    // The EC token's kid is unknown: one refetch of the set, not of the document.
    let metrics = eventually(Duration::from_secs(5), "the unknown kid's refetch is counted", || async {
        let text = gate.metrics().await;
        (metric(&text, "jwtgate_jwks_fetches_total", &["result=\"ok\""]) == Some(2.0)).then_some(text)
    })
    .await;
    assert_eq!(idp.hits_on("/keys/rsa-only"), 2);
    assert_eq!(metric(&metrics, "jwtgate_discovery_fetches_total", &["result=\"ok\""]), Some(1.0), "{metrics}");
    assert_eq!(idp.hits_on(DISCOVERY_PATH), 1, "the document was fetched again although its jwks_uri works");
    assert_eq!(metric(&metrics, "jwtgate_jwks_keys", &["source=\"127.0.0.1\""]), Some(1.0));
}

/// The configured issuer, what the document says instead, and the words
/// the error log must hold.
struct Refusal {
    configured: String,
    document_issuer: String,
    jwks_uri: String,
    logged: Vec<String>,
}

#[tokio::test]
async fn a_document_of_another_issuer_or_with_an_http_jwks_uri_leaves_the_issuer_unready_and_its_tokens_refused() {
    let idp = Idp::spawn().await;
    let (base, port) = (idp.issuer(), idp.addr.port());
    let mismatch = |configured: &str, found: &str| {
        vec![format!("names issuer \"{found}\", not the configured \"{configured}\""), "refused".into()]
    };
    let cases = [
        Refusal {
            configured: format!("{base}/"),
            document_issuer: base.clone(),
            jwks_uri: idp.url(),
            logged: mismatch(&format!("{base}/"), &base),
        },
        Refusal {
            configured: base.clone(),
            document_issuer: format!("{base}/"),
            jwks_uri: idp.url(),
            logged: mismatch(&base, &format!("{base}/")),
        },
        Refusal {
            configured: base.clone(),
            document_issuer: format!("http://localhost:{port}"),
            jwks_uri: idp.url(),
            logged: mismatch(&base, &format!("http://localhost:{port}")),
        },
        Refusal {
            configured: base.clone(),
            document_issuer: base.clone(),
            jwks_uri: "http://idp.example/jwks.json".into(),
            logged: vec!["jwks_uri \"http://idp.example/jwks.json\" is refused".into(), "must be https".into()],
        },
    ];
    // How a token of an issuer whose JWK Set never loaded is refused today.
    let never = Idp::spawn().await;
    never.answer(Answer::Status(500));
    let (app, never_iss) = (Upstream::spawn().await, "https://never.test/");
    let never_yaml = yaml(&app, never_iss, "{}")
        .replace("      discovery: true\n", &format!("      keys: [{{ jwks_url: \"{}\" }}]\n", never.url()));
    let never_gate = Gate::spawn_yaml(&never_yaml).await;
    let baseline = never_gate.get("/api/never", &rsa(never_iss, "jwks-rsa")).await;
    assert_refused(&baseline, 401, "unknown_key", Challenge::InvalidToken);

    for case in &cases {
        idp.discovery(&case.document_issuer, &case.jwks_uri);
        let before = idp.hits();
        let gate = gate(&app, &case.configured, "{ min_refresh: 100ms }").await;
        let what = format!("configured {} / document {} / {}", case.configured, case.document_issuer, case.jwks_uri);
        assert_eq!(idp.hits_on("/jwks.json"), 0, "{what}: a set fetched from a refused document");
        assert_eq!(readyz(&gate).await, 503, "{what}: ready");
        let rsp = gate.get("/api/refused", &rsa(&case.configured, "jwks-rsa")).await;
        assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
        assert_eq!(rsp.json(), baseline.json(), "{what}: refused unlike a never-loaded JWK Set");
        assert_eq!(app.seen("/api/refused"), 0, "{what}: the app saw a token");
        // It keeps trying (the IdP may be fixed) and keeps refusing.
        eventually(Duration::from_secs(5), "a second attempt", || async { (idp.hits() >= before + 2).then_some(()) })
            .await;
        assert_eq!(readyz(&gate).await, 503, "{what}: ready after a retry");
        let logs = gate.logs();
        let line = logs
            .lines()
            .find(|l| l.contains("OIDC discovery document refused"))
            .unwrap_or_else(|| panic!("{what}: no refusal logged:\n{logs}"));
        assert!(line.contains("ERROR"), "{what}: not an error: {line}");
        for words in &case.logged {
            assert!(line.contains(words.as_str()), "{what}: no {words:?} in {line}");
        }
        let refused = metric(&gate.metrics().await, "jwtgate_discovery_fetches_total", &["result=\"refused\""]);
        assert!(refused >= Some(2.0), "{what}: refusals counted: {refused:?}");
    }
    assert_eq!(idp.hits_on("/jwks.json"), 0, "a refused document's jwks_uri was fetched");

    // Positive control: the same IdP with a matching document.
    idp.discovery(&base, &idp.url());
    let good = gate(&app, &base, "{}").await;
    assert_eq!(readyz(&good).await, 200);
    assert_eq!(good.get("/api/control", &rsa(&base, "jwks-rsa")).await.status, 200);
    assert_eq!(app.seen("/api/control"), 1);
}

#[tokio::test]
async fn readiness_waits_for_document_and_keys_and_follows_a_fixed_idp_without_restart() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let iss = idp.issuer();
    idp.discovery(&iss, &idp.url());
    // A slow IdP: every answer comes after the fetch timeout.
    idp.delay(Duration::from_millis(1500));
    let settings = "{ min_refresh: 100ms, max_refresh: 1h, unknown_kid_cooldown: 30s, fetch_timeout: 300ms }";
    let gate = gate(&app, &iss, settings).await;
    let refused = |path: &'static str| {
        let (gate, app, iss) = (&gate, &app, iss.clone());
        async move {
            assert_eq!(readyz(gate).await, 503, "{path}: ready");
            let rsp = gate.get(path, &rsa(&iss, "jwks-rsa")).await;
            assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
            assert_eq!(app.seen(path), 0, "{path}: the app saw a token");
        }
    };
    refused("/api/slow").await;
    assert!(gate.logs().contains("no complete answer within 300ms"), "{}", gate.logs());

    idp.delay(Duration::ZERO);
    idp.route(DISCOVERY_PATH, Answer::Status(500));
    let before = idp.hits_on(DISCOVERY_PATH);
    eventually(Duration::from_secs(5), "the document answered 500", || async {
        (idp.hits_on(DISCOVERY_PATH) > before && idp.answered() >= 1).then_some(())
    })
    .await;
    refused("/api/status-500").await;
    assert_eq!(idp.hits_on("/jwks.json"), 0, "a set fetched without a document");

    // The document is fixed, the set is not yet.
    idp.answer(Answer::Status(500));
    idp.discovery(&iss, &idp.url());
    eventually(Duration::from_secs(5), "the set fetched from the discovered jwks_uri", || async {
        (idp.hits_on("/jwks.json") >= 2).then_some(())
    })
    .await;
    refused("/api/no-keys").await;
    let documents = idp.hits_on(DISCOVERY_PATH);

    idp.answer(Answer::Set(idp::jwks()));
    eventually(Duration::from_secs(5), "ready once the keys load", || async {
        (readyz(&gate).await == 200).then_some(())
    })
    .await;
    let rsp = gate.get("/api/ready", &rsa(&iss, "jwks-rsa")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(app.seen("/api/ready"), 1);
    assert_eq!(
        idp.hits_on(DISCOVERY_PATH),
        documents,
        "the document was fetched again within the cool-down although it had just been loaded"
    );
}

#[tokio::test]
async fn a_rotated_kid_at_the_discovered_jwks_uri_is_picked_up_by_one_refetch_under_the_cooldown() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let iss = idp.issuer();
    idp.discovery(&iss, &idp.url());
    let gate = gate(&app, &iss, "{ min_refresh: 1h, max_refresh: 1h, unknown_kid_cooldown: 30s }").await;
    assert_eq!(gate.get("/api/before", &rsa(&iss, "jwks-rsa")).await.status, 200, "control");

    idp.answer(Answer::Set(idp::renamed("jwks-rsa", "rsa-2027")));
    let rsp = gate.get("/api/new-kid", &rsa(&iss, "rsa-2027")).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/new-kid"), 0);
    eventually(Duration::from_secs(5), "the rotated kid is accepted", || async {
        (gate.get("/api/rotated", &rsa(&iss, "rsa-2027")).await.status == 200).then_some(())
    })
    .await;
    assert_eq!(idp.hits_on("/jwks.json"), 2, "one refetch for the unknown kid, however many polls");
    assert_eq!(idp.hits_on(DISCOVERY_PATH), 1, "the document was refetched although its jwks_uri works");

    // Within the cool-down another new kid costs the IdP nothing.
    idp.answer(Answer::Set(idp::renamed("jwks-rsa", "rsa-2028")));
    let rsp = gate.get("/api/within-cooldown", &rsa(&iss, "rsa-2028")).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/within-cooldown"), 0);
    assert_eq!(gate.get("/api/ec", &ec(&iss)).await.status, 200, "the unchanged key still works");
    assert_eq!(idp.hits(), 3, "a fetch within the cool-down");
}

#[tokio::test]
async fn a_failing_jwks_uri_sends_the_gate_back_to_the_document_at_most_once_per_cooldown() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let iss = idp.issuer();
    idp.route("/keys/a", Answer::Set(idp::jwks()));
    idp.discovery(&iss, &idp.url_of("/keys/a"));
    let settings = "{ min_refresh: 100ms, max_refresh: 1h, unknown_kid_cooldown: 400ms }";
    let gate = gate(&app, &iss, settings).await;
    assert_eq!(gate.get("/api/control", &rsa(&iss, "jwks-rsa")).await.status, 200, "control");

    // The set moves; the document still names the old place for a while.
    idp.route("/keys/a", Answer::Status(404));
    idp.route("/keys/b", Answer::Set(idp::renamed("jwks-rsa", "rsa-2027")));
    let rsp = gate.get("/api/moved", &rsa(&iss, "rsa-2027")).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    let failed = idp.hits_on("/keys/a");
    eventually(Duration::from_secs(10), "retries of the failing jwks_uri", || async {
        (idp.hits_on("/keys/a") >= failed + 10).then_some(())
    })
    .await;
    let documents = idp.hit_times_on(DISCOVERY_PATH);
    assert!(documents.len() >= 2, "the document was not fetched again after failed JWKS fetches: {documents:?}");
    for pair in documents.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(350), "documents {gap:?} apart, the cool-down is 400ms");
    }
    assert!(documents.len() <= 4, "{} documents for ~1s of failures", documents.len());
    assert_eq!(gate.get("/api/old-keys", &rsa(&iss, "jwks-rsa")).await.status, 200, "last good keys dropped");

    idp.discovery(&iss, &idp.url_of("/keys/b"));
    eventually(Duration::from_secs(5), "the moved set is found through the document", || async {
        (gate.get("/api/rotated", &rsa(&iss, "rsa-2027")).await.status == 200).then_some(())
    })
    .await;
    assert!(idp.hits_on("/keys/b") >= 1);
}

#[tokio::test]
async fn https_discovery_is_trusted_through_jwks_ca_file_only() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn_tls().await);
    let iss = idp.issuer();
    assert!(iss.starts_with("https://"), "{iss}");
    idp.discovery(&iss, &idp.url());
    let ca = crate::support::key_path("redis-tls/ca.pem");
    let trusted = gate(&app, &iss, &format!("{{ ca_file: \"{ca}\" }}")).await;
    assert_eq!(readyz(&trusted).await, 200);
    assert_eq!(trusted.get("/api/tls", &rsa(&iss, "jwks-rsa")).await.status, 200, "document and keys over https");
    assert_eq!((idp.hits_on(DISCOVERY_PATH), idp.hits_on("/jwks.json")), (1, 1));
    assert_eq!(app.seen("/api/tls"), 1);

    let untrusted = gate(&app, &iss, "{}").await;
    assert_eq!(readyz(&untrusted).await, 503);
    let rsp = untrusted.get("/api/untrusted", &rsa(&iss, "jwks-rsa")).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/untrusted"), 0);
    assert_eq!(idp.hits(), 2, "the untrusted gate completed a fetch");
    assert!(untrusted.logs().contains("certificate"), "the TLS failure is logged: {}", untrusted.logs());
}

#[tokio::test]
async fn check_fetches_a_discovery_issuer_reports_a_mismatch_and_offline_skips_it() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let iss = idp.issuer();
    idp.discovery(&iss, &idp.url());
    let file = write_config(&yaml(&app, &iss, "{ fetch_timeout: 2s }"));
    let path = file.path().display().to_string();
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cli(&args).await;
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let args = |offline: bool| {
        let mut a = vec!["check".to_string(), "-c".into(), path.clone()];
        if offline {
            a.insert(1, "--offline".into());
        }
        a
    };
    let doc_url = idp.url_of(DISCOVERY_PATH);

    let (code, stdout, stderr) = run(args(true)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("(algorithms: RS256, ES256; audiences: api; 0 key(s) + 0 jwks_url + discovery)"),
        "{stdout}"
    );
    let line = format!("    discovery {doc_url}: not fetched (--offline)");
    assert!(stdout.lines().any(|l| l == line), "no `{line}` in:\n{stdout}");
    assert_eq!(idp.hits(), 0, "--offline fetched");

    let (code, stdout, stderr) = run(args(false)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().next(), Some(format!("{path}: ok").as_str()));
    let line =
        format!("    discovery {doc_url}: ok, jwks_uri {}, 2 key(s): jwks-rsa (RS256), jwks-ec (ES256)", idp.url());
    assert!(stdout.lines().any(|l| l == line), "no `{line}` in:\n{stdout}");
    assert_eq!((idp.hits_on(DISCOVERY_PATH), idp.hits_on("/jwks.json")), (1, 1));

    idp.discovery(&format!("{iss}/"), &idp.url());
    let (code, stdout, stderr) = run(args(false)).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let problem = stderr.lines().find(|l| l.contains(&doc_url)).unwrap_or_else(|| panic!("{stderr}"));
    assert!(problem.starts_with(&format!("jwtgate: {path}: jwt.issuers[0]: ")), "{problem}");
    assert!(problem.contains(&format!("names issuer \"{iss}/\", not the configured \"{iss}\"")), "{problem}");
    assert_eq!(idp.hits_on("/jwks.json"), 1, "check fetched the set of a refused document");
}

#[tokio::test]
async fn discovery_config_errors_name_the_file_line_and_field() {
    let app = Upstream::spawn().await;
    let base = yaml(&app, "https://idp.example/", "{}");
    let line_of = |text: &str, needle: &str| text[..text.find(needle).expect("needle")].matches('\n').count() + 1;
    let cases = [
        (
            base.replace(
                "      discovery: true\n",
                "      discovery: true\n      keys:\n        - jwks_url: https://idp.example/jwks\n",
            ),
            "jwks_url:",
            "jwt.issuers[0].keys[0].jwks_url",
            "discovery: true finds the issuer's JWK Set",
        ),
        (
            base.replace("https://idp.example/", "http://idp.example/"),
            "- issuer:",
            "jwt.issuers[0].issuer",
            "must be https (plain http only to a loopback host",
        ),
        (
            base.replace("https://idp.example/", "https://idp.example/?tenant=a"),
            "- issuer:",
            "jwt.issuers[0].issuer",
            "no query or fragment",
        ),
        (
            base.replace("      discovery: true\n", ""),
            "- issuer:",
            "jwt.issuers[0].keys",
            "at least one key is required (or discovery: true)",
        ),
    ];
    for (text, needle, field, words) in cases {
        let file = write_config(&text);
        let path = file.path().display().to_string();
        let out = cli(&["check", "--offline", "-c", &path]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{field}: {stderr}");
        let prefix = format!("{path}:{}:", line_of(&text, needle));
        let hit = stderr
            .lines()
            .map(|l| l.strip_prefix("jwtgate: ").unwrap_or(l))
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{stderr}"));
        assert!(hit.contains(&format!(": {field}: ")) && hit.contains(words), "{hit}");
    }
    // Positive control: the same file without the mistakes loads.
    let file = write_config(&base);
    let out = cli(&["check", "--offline", "-c", &file.path().display().to_string()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn reload_keeps_a_running_discovery_source_and_its_keys_without_refetching() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let iss = idp.issuer();
    idp.discovery(&iss, &idp.url());
    let settings = "{ min_refresh: 1h, max_refresh: 1h }";
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwtgate.yaml");
    std::fs::write(&file, yaml(&app, &iss, settings)).expect("write config");
    let gate = Gate::spawn_file(&file).await;
    assert_eq!(gate.get("/api/before", &rsa(&iss, "jwks-rsa")).await.status, 200, "control");
    // The IdP now fails: a source a reload built afresh would have no keys.
    idp.answer(Answer::Status(503));
    idp.route(DISCOVERY_PATH, Answer::Status(503));

    crate::support::configmap::replace_file(&file, &yaml(&app, &iss, settings).replace("/api", "/v2"));
    eventually(Duration::from_secs(5), "reload (file changed)", || async {
        gate.logs().contains("config reloaded").then_some(())
    })
    .await;
    assert_eq!(idp.hits(), 2, "a reload with the same issuer and settings fetched again");
    let rsp = gate.get("/v2/after", &rsa(&iss, "jwks-rsa")).await;
    assert_eq!(rsp.status, 200, "keys lost across the reload: {}", rsp.text());
    assert_eq!(app.seen("/v2/after"), 1);
}
