//! Keys from a JWKS URL, against an IdP stand-in that counts its fetches:
//! loaded before the gate announces itself, refreshed on the IdP's
//! `Cache-Control` within `[min_refresh, max_refresh]`, refetched early for
//! an unknown kid at most once per cool-down, and kept when the IdP fails.

use crate::support::config::ADMIN_TOKEN;
use crate::support::idp::{self, Answer, Idp};
use crate::support::token::{self, claims, Key, Tok};
use crate::support::{assert_refused, eventually, metric, Challenge, Gate, Upstream};
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;

const ISS: &str = "https://idp.test/";

/// A gate whose only issuer takes its keys from `idp`; `jwks` is the
/// flow-style `jwt.jwks` map; `admin` adds the admin listener (metrics).
async fn gate(app: &Upstream, idp: &Idp, jwks: &str, admin: bool) -> Gate {
    let mut gate = Gate::spawn_yaml(&yaml(app, idp, jwks, admin)).await;
    if admin {
        gate.admin_token = Some(ADMIN_TOKEN.into());
    }
    gate
}

fn yaml(app: &Upstream, idp: &Idp, jwks: &str, admin: bool) -> String {
    let admin_yaml = if admin {
        format!("admin:\n  listen: 127.0.0.1:0\n  insecure_token: \"{ADMIN_TOKEN}\"\n")
    } else {
        String::new()
    };
    format!(
        "listen: 127.0.0.1:0
upstream:
  url: {app}
jwt:
  jwks: {jwks}
  issuers:
    - issuer: \"{ISS}\"
      audiences: [api]
      algorithms: [RS256, ES256]
      keys:
        - {{ jwks_url: \"{url}\" }}
revocation:
  store: memory
{admin_yaml}routes:
  - match: {{ path_prefix: /api }}
    auth: required
",
        app = app.url(),
        url = idp.url(),
    )
}

/// A fresh RS256 token (never seen by the gate's verified-token cache)
/// signed with `rsa.key.pem` under `kid`.
fn rsa(kid: &str) -> String {
    claims().iss(ISS).jwks_rs256().header("kid", json!(kid)).sign()
}

fn ec() -> String {
    claims().iss(ISS).jwks_es256().sign()
}

/// A token naming `kid` with a well-formed but borrowed signature: the
/// gate never gets to the signature when no key has that kid.
fn unknown_kid(kid: &str, signature: &str) -> String {
    let tok: Tok = claims().iss(ISS).jwks_rs256().header("kid", json!(kid));
    let (header, payload) = tok.json_parts();
    let unsigned = token::raw(header.as_bytes(), payload.as_bytes(), &Key::Unsigned);
    format!("{unsigned}{signature}")
}

#[tokio::test]
async fn jwk_set_is_loaded_before_the_gate_announces_it_is_listening() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    idp.delay(Duration::from_millis(300));
    let gate = gate(&app, &idp, "{ fetch_timeout: 5s }", false).await;
    assert_eq!(idp.answered(), 1, "`jwtgate listening` printed before the JWK Set was loaded");
    let rsp = gate.get("/api/first", &rsa("jwks-rsa")).await;
    assert_eq!(rsp.status, 200, "first request after readiness: {}", rsp.text());
}

#[tokio::test]
async fn rotated_kid_becomes_valid_after_a_single_unknown_kid_refetch() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let gate = gate(&app, &idp, "{ min_refresh: 1h, max_refresh: 1h, unknown_kid_cooldown: 30s }", false).await;
    assert_eq!(gate.get("/api/before", &rsa("jwks-rsa")).await.status, 200, "control");
    assert_eq!(idp.hits(), 1);

    idp.answer(Answer::Set(idp::renamed("jwks-rsa", "rsa-2027")));
    let rsp = gate.get("/api/new-kid", &rsa("rsa-2027")).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/new-kid"), 0);
    eventually(Duration::from_secs(5), "the rotated kid is accepted", || async {
        (gate.get("/api/rotated", &rsa("rsa-2027")).await.status == 200).then_some(())
    })
    .await;
    assert_eq!(idp.hits(), 2, "one refetch for the unknown kid, however many polls");
    assert_eq!(gate.get("/api/ec", &ec()).await.status, 200, "the unchanged key still works");
    let rsp = gate.get("/api/old-kid", &rsa("jwks-rsa")).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/old-kid"), 0, "a kid the IdP dropped still reached the app");
}

#[tokio::test]
async fn rotation_is_picked_up_by_the_scheduled_refresh_capped_at_max_refresh() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    // The IdP asks for a day; max_refresh caps it. No unknown kid is ever sent.
    idp.cache_control(Some("public, max-age=86400"));
    let gate = gate(&app, &idp, "{ min_refresh: 100ms, max_refresh: 300ms, unknown_kid_cooldown: 1h }", false).await;
    idp.answer(Answer::Set(idp::renamed("jwks-rsa", "rsa-2027")));
    let before = idp.hits();
    // Fetches are sequential: a second fetch after the switch means the first one landed.
    eventually(Duration::from_secs(5), "two scheduled refreshes", || async {
        (idp.hits() >= before + 2).then_some(())
    })
    .await;
    let rsp = gate.get("/api/rotated", &rsa("rsa-2027")).await;
    assert_eq!(rsp.status, 200, "rotated kid on its first use: {}", rsp.text());
}

#[tokio::test]
async fn refresh_never_comes_sooner_than_min_refresh_even_when_the_idp_says_max_age_zero() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    idp.cache_control(Some("max-age=0"));
    let _gate = gate(&app, &idp, "{ min_refresh: 250ms, max_refresh: 1h }", false).await;
    eventually(Duration::from_secs(5), "four fetches", || async { (idp.hits() >= 4).then_some(()) }).await;
    let times = idp.hit_times();
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(200), "fetches {gap:?} apart, min_refresh is 250ms: {times:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tokens_with_random_unknown_kids_cost_the_idp_at_most_a_few_fetches() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let gate = gate(&app, &idp, "{ min_refresh: 1h, max_refresh: 1h, unknown_kid_cooldown: 30s }", false).await;
    let signed = rsa("jwks-rsa");
    let signature = signed.rsplit('.').next().expect("signature").to_owned();
    let statuses: Vec<(u16, String)> = futures_util::stream::iter(0..1000)
        .map(|_| {
            let raw = unknown_kid(&format!("kid-{:016x}", rand::random::<u64>()), &signature);
            let gate = &gate;
            async move {
                let rsp = gate.get("/api/storm", &raw).await;
                (rsp.status, rsp.json()["error"].as_str().unwrap_or_default().to_owned())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|(s, e)| *s == 401 && e == "unknown_key"), "{:?}", &statuses[..5]);
    assert_eq!(app.seen("/api/storm"), 0);
    // The one refetch the first unknown kid asked for lands; no other follows.
    eventually(Duration::from_secs(5), "the refetch lands", || async { (idp.answered() >= 2).then_some(()) }).await;
    assert!(idp.hits() <= 3, "{} IdP fetches for 1,000 unknown kids", idp.hits());
    assert_eq!(gate.get("/api/control", &signed).await.status, 200, "control");
}

/// Waits until the IdP has been asked `n` more times (so the gate has
/// tried, and failed, to replace its keys), then checks fresh tokens.
async fn still_valid_after_failed_fetches(gate: &Gate, idp: &Idp, app: &Upstream, what: &str) {
    let before = idp.hits();
    eventually(Duration::from_secs(5), what, || async { (idp.hits() >= before + 2).then_some(()) }).await;
    let path = format!("/api/{what}");
    for raw in [rsa("jwks-rsa"), ec()] {
        let rsp = gate.get(&path, &raw).await;
        assert_eq!(rsp.status, 200, "{what}: last good keys dropped: {}", rsp.text());
    }
    assert_eq!(app.seen(&path), 2);
}

#[tokio::test]
async fn idp_errors_garbage_and_outage_keep_the_last_good_keys() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let settings = "{ min_refresh: 150ms, max_refresh: 150ms, unknown_kid_cooldown: 30s, fetch_timeout: 1s }";
    let gate = gate(&app, &idp, settings, true).await;
    assert_eq!(gate.get("/api/control", &rsa("jwks-rsa")).await.status, 200, "control");

    idp.answer(Answer::Status(500));
    still_valid_after_failed_fetches(&gate, &idp, &app, "status-500").await;
    idp.answer(Answer::Status(404));
    still_valid_after_failed_fetches(&gate, &idp, &app, "status-404").await;
    idp.answer(Answer::Garbage);
    still_valid_after_failed_fetches(&gate, &idp, &app, "garbage").await;
    idp.answer(Answer::Set(r#"{"keys":[]}"#.into()));
    still_valid_after_failed_fetches(&gate, &idp, &app, "empty-set").await;

    idp.stop();
    let errors = || async { metric(&gate.metrics().await, "jwtgate_jwks_fetch_errors_total", &[]).unwrap_or(0.0) };
    let before = errors().await;
    eventually(Duration::from_secs(5), "fetches fail while the IdP is down", || async {
        (errors().await >= before + 2.0).then_some(())
    })
    .await;
    for raw in [rsa("jwks-rsa"), ec()] {
        assert_eq!(gate.get("/api/idp-down", &raw).await.status, 200, "last good keys dropped with the IdP down");
    }
    let rsp = gate.get("/api/unknown", &rsa("never-published")).await;
    assert_refused(&rsp, 401, "unknown_key", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/unknown"), 0);
}

#[tokio::test]
async fn reload_keeps_a_running_jwks_source_and_its_keys_without_refetching() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn().await);
    let settings = "{ min_refresh: 1h, max_refresh: 1h }";
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwtgate.yaml");
    std::fs::write(&file, yaml(&app, &idp, settings, false)).expect("write config");
    let gate = Gate::spawn_file(&file).await;
    assert_eq!(gate.get("/api/before", &rsa("jwks-rsa")).await.status, 200, "control");
    // The IdP now fails: keys a reload fetched afresh would be lost.
    idp.answer(Answer::Status(503));

    let reloaded = |n: usize| {
        let gate = &gate;
        async move { (gate.logs().matches("config reloaded").count() >= n).then_some(()) }
    };
    gate.sighup();
    eventually(Duration::from_secs(5), "first reload", || reloaded(1)).await;
    crate::support::configmap::replace_file(&file, &yaml(&app, &idp, settings, false).replace("/api", "/v2"));
    eventually(Duration::from_secs(5), "second reload (file changed)", || reloaded(2)).await;
    assert_eq!(idp.hits(), 1, "a reload with the same jwks_url and settings refetched");
    let rsp = gate.get("/v2/after", &rsa("jwks-rsa")).await;
    assert_eq!(rsp.status, 200, "keys lost across reloads: {}", rsp.text());
    assert_eq!(app.seen("/v2/after"), 1);
}

#[tokio::test]
async fn https_idp_with_a_private_ca_is_trusted_only_through_jwks_ca_file() {
    let (app, idp) = (Upstream::spawn().await, Idp::spawn_tls().await);
    let ca = crate::support::key_path("redis-tls/ca.pem");
    let trusted = Gate::spawn_yaml(&yaml(&app, &idp, &format!("{{ ca_file: \"{ca}\" }}"), false)).await;
    assert_eq!(trusted.get("/api/tls", &rsa("jwks-rsa")).await.status, 200, "keys fetched over https");
    assert_eq!(idp.hits(), 1, "one fetch at start");
    assert_eq!(app.seen("/api/tls"), 1);

    // Without the CA the IdP's certificate is not trusted: no keys, no access.
    let untrusted = Gate::spawn_yaml(&yaml(&app, &idp, "{}", false)).await;
    let rsp = untrusted.get("/api/untrusted", &rsa("jwks-rsa")).await;
    assert_eq!(rsp.status, 401, "{}", rsp.text());
    assert_eq!(app.seen("/api/untrusted"), 0, "a token was accepted without trusted keys");
    assert_eq!(idp.hits(), 1, "the untrusted gate completed a fetch");
    assert!(untrusted.logs().contains("certificate"), "the TLS failure is logged: {}", untrusted.logs());
}
