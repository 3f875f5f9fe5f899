//! The admin API on its own listener: probes without credentials,
//! revocations and metrics behind the admin token, never on the public
//! port; and the `jwtgate revoke` CLI that drives it.

use crate::support::config::ADMIN_TOKEN;
use crate::support::gate::{cli_env, empty, full};
use crate::support::token::{self, claims, jti_key, sid_key, sub_key, ISSUER};
use crate::support::{assert_refused, eventually, now_unix, Cfg, Challenge, Gate, Redis, Rsp, Upstream};
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN_CHALLENGE: &str = r#"Bearer realm="jwtgate-admin""#;

fn cfg(app: &Upstream, redis: &Redis) -> Cfg {
    Cfg::new(app).redis(redis).admin()
}

/// `?iss=<ISSUER>&<name>=<value>`, encoded.
fn query(name: &str, value: &str) -> String {
    let q =
        form_urlencoded::Serializer::new(String::new()).append_pair("iss", ISSUER).append_pair(name, value).finish();
    format!("/revocations?{q}")
}

#[track_caller]
fn assert_admin_unauthorized(rsp: &Rsp, what: &str) {
    assert_eq!(rsp.status, 401, "{what}: {}", rsp.text());
    assert_eq!(rsp.header("www-authenticate").as_deref(), Some(ADMIN_CHALLENGE), "{what}");
    assert_eq!(rsp.json()["error"], "unauthorized", "{what}");
}

#[track_caller]
fn assert_admin_error(rsp: &Rsp, status: u16, code: &str, what: &str) {
    assert_eq!(rsp.status, status, "{what}: {}", rsp.text());
    let body = rsp.json();
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_token() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let rsp = gate.send(gate.admin_req("GET", "/healthz").body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json(), json!({ "status": "alive" }));
    let rsp = gate.send(gate.admin_req("GET", "/readyz").body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json()["status"], "ready");
    assert_eq!(app.total(), 0, "admin probes are not forwarded");
}

async fn readyz(gate: &Gate) -> Rsp {
    gate.send(gate.admin_req("GET", "/readyz").body(empty()).expect("request")).await
}

#[tokio::test]
async fn readiness_is_503_while_redis_is_down_under_fail_closed_and_recovers() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    assert_eq!(readyz(&gate).await.status, 200, "control");
    redis.stop().await;
    let rsp = readyz(&gate).await;
    assert_eq!(rsp.status, 503, "{}", rsp.text());
    assert_eq!(rsp.json()["status"], "not_ready");
    let rsp = gate.send(gate.admin_req("GET", "/healthz").body(empty()).expect("request")).await;
    assert_eq!(rsp.status, 200, "liveness does not depend on Redis");
    redis.restart().await;
    eventually(Duration::from_secs(10), "/readyz back to 200 after Redis restart", || async {
        (readyz(&gate).await.status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn readiness_stays_200_while_redis_is_down_under_fail_open() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg { on_store_error: "fail_open".into(), ..cfg(&app, &redis) }).await;
    redis.stop().await;
    let rsp = readyz(&gate).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json()["status"], "ready");
    assert!(rsp.json()["store"].as_str().is_some_and(|s| s.contains("unreachable")), "{}", rsp.text());
}

#[tokio::test]
async fn admin_endpoints_refuse_requests_without_the_admin_token() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let tok = claims();
    let raw = tok.sign();
    // One revocation exists, so a DELETE that got through would be visible.
    let revoked = claims();
    let body = json!({ "iss": ISSUER, "jti": revoked.jti_value(), "exp": revoked.exp() });
    assert_eq!(gate.admin_send("POST", "/revocations", Some(body)).await.status, 200);
    let revoked_key = jti_key("jwtgate:", ISSUER, &revoked.jti_value());

    let credentials = [
        None,
        Some("Bearer wrong-admin-token-0123456789".to_owned()),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Bearer {raw}")), // a valid user JWT is no admin credential
        Some(format!("Basic {ADMIN_TOKEN}")),
    ];
    let new_revocation = json!({ "iss": ISSUER, "jti": tok.jti_value(), "exp": tok.exp() }).to_string();
    let requests = [
        ("GET", "/metrics".to_owned(), None),
        ("POST", "/revocations".to_owned(), Some(new_revocation)),
        ("GET", query("jti", &revoked.jti_value()), None),
        ("DELETE", query("jti", &revoked.jti_value()), None),
        ("GET", "/no-such-endpoint".to_owned(), None),
    ];
    for auth in &credentials {
        for (method, path, body) in &requests {
            let mut req = gate.admin_req(method, path);
            if let Some(auth) = auth {
                req = req.header("authorization", auth.as_str());
            }
            let body = body.clone().map_or_else(empty, full);
            let rsp = gate.send(req.body(body).expect("request")).await;
            assert_admin_unauthorized(&rsp, &format!("{method} {path} with {auth:?}"));
        }
    }
    assert_eq!(redis.keys("jwtgate:*").await, [revoked_key], "an unauthorized request changed the store");
    assert_eq!(gate.get("/api/still", &raw).await.status, 200, "token not revoked");
    assert_eq!(app.seen("/metrics") + app.seen("/revocations"), 0);
    // Control: the right token opens the same endpoint.
    assert!(gate.metrics().await.contains("jwtgate_"), "metrics text");
}

#[tokio::test]
async fn admin_revokes_a_jti_and_every_replica_refuses_the_token() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let replica = |c: Cfg| Cfg { not_revoked_ttl: "300s".into(), heartbeat: Some("1h".into()), ..c };
    let one = Gate::spawn(&replica(cfg(&app, &redis))).await;
    let two = Gate::spawn(&replica(Cfg::new(&app).redis(&redis))).await;
    redis.await_subscribers("jwtgate:revocations", 2).await;
    let tok = claims().exp_in(600);
    let raw = tok.sign();
    let other = token::mint();
    for gate in [&one, &two] {
        assert_eq!(gate.get("/api/warm", &raw).await.status, 200, "control");
    }

    let rsp = one
        .admin_send("POST", "/revocations", Some(json!({ "iss": ISSUER, "jti": tok.jti_value(), "exp": tok.exp() })))
        .await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let key = jti_key("jwtgate:", ISSUER, &tok.jti_value());
    assert_eq!(rsp.json(), json!({ "revoked": true, "key": key, "expires_at": tok.exp() + 30 }));
    let ttl = redis.ttl(&key).await;
    assert!((ttl - (tok.exp() + 30 - now_unix())).abs() <= 5, "TTL {ttl}");

    assert_refused(&one.get("/api/after", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    let rsp = eventually(Duration::from_secs(2), "replica two refuses the admin-revoked token", || async {
        let rsp = two.get("/api/poll", &raw).await;
        (rsp.status != 200).then_some(rsp)
    })
    .await;
    assert_refused(&rsp, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/after"), 0);
    assert_eq!(two.get("/api/other", &other).await.status, 200, "other tokens unaffected");
}

#[tokio::test]
async fn admin_revokes_a_presented_token_after_verifying_it() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let tok = claims();
    let raw = tok.sign();
    assert_eq!(gate.get("/api/before", &raw).await.status, 200, "control");

    let forged = claims().hs256().key(token::Key::Hmac(b"wrong-secret".to_vec())).sign();
    let rsp = gate.admin_send("POST", "/revocations", Some(json!({ "token": forged }))).await;
    assert_admin_error(&rsp, 400, "invalid_signature", "forged token");
    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new());

    let rsp = gate.admin_send("POST", "/revocations", Some(json!({ "token": raw }))).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let body = rsp.json();
    assert_eq!(body["revoked"], true);
    assert_eq!(body["key"], jti_key("jwtgate:", ISSUER, &tok.jti_value()));
    assert_eq!(body["expires_at"], tok.exp() + 30);
    assert_refused(&gate.get("/api/after", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(app.seen("/api/after"), 0);
}

#[tokio::test]
async fn admin_revokes_a_subject_or_a_session_up_to_a_given_time() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let now = now_unix();
    let before = now - 100;
    let old = claims().sub("alice").iat(now - 200).sign();
    let recent = claims().sub("alice").iat(now - 50).sign();
    let old_session = claims().sub("bob").sid("s-1").iat(now - 10).sign();
    let other_session = claims().sub("bob").sid("s-2").iat(now - 10).sign();
    for raw in [&old, &recent, &old_session, &other_session] {
        assert_eq!(gate.get("/api/before", raw).await.status, 200, "control");
    }

    let rsp =
        gate.admin_send("POST", "/revocations", Some(json!({ "iss": ISSUER, "sub": "alice", "before": before }))).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    let key = sub_key("jwtgate:", ISSUER, "alice");
    assert_eq!(rsp.json()["key"], key);
    assert_eq!(redis.get(&key).await, Some(before.to_string()));
    let ttl = redis.ttl(&key).await;
    assert!((ttl - 24 * 3600).abs() <= 5, "TTL {ttl}");
    assert_refused(&gate.get("/api/after", &old).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(gate.get("/api/recent", &recent).await.status, 200, "issued after `before`: still valid");

    // Without `before`: everything of the session issued until now.
    let rsp = gate.admin_send("POST", "/revocations", Some(json!({ "iss": ISSUER, "sid": "s-1" }))).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json()["key"], sid_key("jwtgate:", ISSUER, "s-1"));
    assert_refused(&gate.get("/api/after", &old_session).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(gate.get("/api/s2", &other_session).await.status, 200, "another session unaffected");
    assert_eq!(app.seen("/api/after"), 0);
}

#[tokio::test]
async fn admin_reads_and_deletes_a_revocation_and_every_replica_accepts_the_token_again() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let replica = |c: Cfg| Cfg { not_revoked_ttl: "300s".into(), heartbeat: Some("1h".into()), ..c };
    let one = Gate::spawn(&replica(cfg(&app, &redis))).await;
    let two = Gate::spawn(&replica(Cfg::new(&app).redis(&redis))).await;
    redis.await_subscribers("jwtgate:revocations", 2).await;
    let tok = claims();
    let raw = tok.sign();
    let path = query("jti", &tok.jti_value());
    let key = jti_key("jwtgate:", ISSUER, &tok.jti_value());

    let rsp = one.admin_send("GET", &path, None).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json(), json!({ "key": key, "revoked": false, "value": null }));

    assert_eq!(two.logout(&raw).await.status, 200, "logged out on replica two");
    let rsp = one.admin_send("GET", &path, None).await;
    assert_eq!(rsp.json(), json!({ "key": key, "revoked": true, "value": "1" }));
    for gate in [&one, &two] {
        assert_refused(&gate.get("/api/revoked", &raw).await, 401, "token_revoked", Challenge::InvalidToken);
    }
    assert_eq!(app.seen("/api/revoked"), 0);

    let rsp = one.admin_send("DELETE", &path, None).await;
    assert_eq!(rsp.status, 200, "{}", rsp.text());
    assert_eq!(rsp.json()["revoked"], false);
    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new(), "record deleted");
    for gate in [&one, &two] {
        eventually(Duration::from_secs(2), "token accepted again after un-revoke", || async {
            (gate.get("/api/again", &raw).await.status == 200).then_some(())
        })
        .await;
    }
    assert_eq!(one.admin_send("GET", &path, None).await.json()["revoked"], false);

    // Subject records read back with their cut-off.
    let sub_path = query("sub", "alice");
    assert_eq!(
        one.admin_send("POST", "/revocations", Some(json!({ "iss": ISSUER, "sub": "alice", "before": 1234 })))
            .await
            .status,
        200
    );
    assert_eq!(one.admin_send("GET", &sub_path, None).await.json()["value"], "1234");
}

#[tokio::test]
async fn malformed_admin_requests_are_400_and_write_nothing() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let tok = claims();
    let (jti, exp) = (tok.jti_value(), tok.exp());
    let cases: Vec<(&str, String, &str)> = vec![
        ("not JSON", "revoke it".into(), "invalid_request"),
        ("empty object", "{}".into(), "invalid_request"),
        ("unknown field", json!({ "iss": ISSUER, "jti": jti, "exp": exp, "why": "x" }).to_string(), "invalid_request"),
        ("no iss", json!({ "jti": jti, "exp": exp }).to_string(), "invalid_request"),
        (
            "unknown issuer",
            json!({ "iss": "https://evil.test/", "jti": jti, "exp": exp }).to_string(),
            "invalid_request",
        ),
        ("jti without exp", json!({ "iss": ISSUER, "jti": jti }).to_string(), "invalid_request"),
        (
            "jti and sub",
            json!({ "iss": ISSUER, "jti": jti, "exp": exp, "sub": "alice" }).to_string(),
            "invalid_request",
        ),
        ("exp not a number", json!({ "iss": ISSUER, "jti": jti, "exp": "soon" }).to_string(), "invalid_request"),
        ("token not a JWT", json!({ "token": "not-a-jwt" }).to_string(), "malformed_token"),
        ("expired token", json!({ "token": claims().exp_in(-3600).sign() }).to_string(), "token_expired"),
    ];
    for (case, body, code) in &cases {
        let rsp = gate.admin_send_raw("POST", "/revocations", body).await;
        assert_admin_error(&rsp, 400, code, case);
    }
    let rsp = gate.admin_send("GET", "/revocations?jti=x", None).await;
    assert_admin_error(&rsp, 400, "invalid_request", "GET without iss");
    let rsp = gate.admin_send("DELETE", "/revocations", None).await;
    assert_admin_error(&rsp, 400, "invalid_request", "DELETE without target");
    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new(), "a bad request wrote something");
    assert_eq!(gate.get("/api/still", &tok.sign()).await.status, 200);
}

#[tokio::test]
async fn admin_revocation_is_503_while_the_store_is_down() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let tok = claims();
    let body = json!({ "iss": ISSUER, "jti": tok.jti_value(), "exp": tok.exp() });
    redis.stop().await;
    let rsp = gate.admin_send("POST", "/revocations", Some(body.clone())).await;
    assert_admin_error(&rsp, 503, "store_unavailable", "POST");
    let rsp = gate.admin_send("POST", "/revocations", Some(json!({ "token": tok.sign() }))).await;
    assert_admin_error(&rsp, 503, "store_unavailable", "POST token");
    let path = query("jti", &tok.jti_value());
    assert_admin_error(&gate.admin_send("GET", &path, None).await, 503, "store_unavailable", "GET");
    assert_admin_error(&gate.admin_send("DELETE", &path, None).await, 503, "store_unavailable", "DELETE");

    redis.restart().await;
    let rsp = eventually(Duration::from_secs(10), "admin revocation works again", || async {
        let rsp = gate.admin_send("POST", "/revocations", Some(body.clone())).await;
        (rsp.status == 200).then_some(rsp)
    })
    .await;
    assert_eq!(rsp.json()["revoked"], true);
    assert_refused(&gate.get("/api/after", &tok.sign()).await, 401, "token_revoked", Challenge::InvalidToken);
}

#[tokio::test]
async fn admin_paths_on_the_public_port_are_ordinary_proxied_requests() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let tok = claims();
    let raw = tok.sign();
    let bearer = format!("Bearer {raw}");

    let rsp = gate.get("/metrics", &raw).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("x-upstream").as_deref(), Some("yes"), "answered by the app");
    assert!(!rsp.text().contains("jwtgate_"), "public port rendered metrics: {}", rsp.text());

    let revoke = json!({ "iss": ISSUER, "jti": tok.jti_value(), "exp": tok.exp() }).to_string();
    let req =
        gate.req("POST", "/revocations").header("authorization", &bearer).header("content-type", "application/json");
    let rsp = gate.send(req.body(full(revoke.clone())).expect("request")).await;
    assert_eq!(rsp.status, 200);
    assert_eq!(rsp.header("x-upstream").as_deref(), Some("yes"));
    assert_eq!(rsp.text(), revoke, "the app's echo, not the admin answer");
    let req = gate.req("DELETE", &query("jti", &tok.jti_value())).header("authorization", &bearer);
    assert_eq!(gate.send(req.body(empty()).expect("request")).await.header("x-upstream").as_deref(), Some("yes"));
    assert_eq!(redis.keys("jwtgate:*").await, Vec::<String>::new(), "the public port wrote a revocation");

    // The admin token is no credential on the public port.
    let rsp = gate.get("/metrics", ADMIN_TOKEN).await;
    assert_refused(&rsp, 401, "malformed_token", Challenge::InvalidToken);
    let rsp = gate.get_anon("/readyz").await;
    assert_refused(&rsp, 401, "missing_token", Challenge::Bare);
    let rsp = gate.get_anon("/healthz").await; // a public route of the app, not the admin probe
    assert_eq!(rsp.header("x-upstream").as_deref(), Some("yes"));
    assert_ne!(rsp.text(), json!({ "status": "alive" }).to_string());
    assert_eq!(app.seen("/metrics"), 1);
    assert_eq!(app.seen("/revocations"), 2);
    assert_eq!(app.seen("/readyz"), 0);
    assert_eq!(gate.get("/api/still", &raw).await.status, 200);
}

fn stdout_json(out: &std::process::Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text:?}"))
}

#[tokio::test]
async fn revoke_cli_revokes_a_jti_a_subject_and_a_token_file_through_the_admin_api() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let admin = format!("http://{}", gate.admin.expect("admin listener"));
    let env = [("JWTGATE_TEST_ADMIN", ADMIN_TOKEN)];
    let by_jti = claims();
    let alice = claims().sub("alice").iat(now_unix() - 5).sign();
    let by_file = claims();
    let bystander = token::mint();
    for raw in [&by_jti.sign(), &alice, &by_file.sign(), &bystander] {
        assert_eq!(gate.get("/api/before", raw).await.status, 200, "control");
    }
    let base = ["revoke", "--admin", admin.as_str(), "--admin-token-env", "JWTGATE_TEST_ADMIN"];

    let (jti, exp) = (by_jti.jti_value(), by_jti.exp().to_string());
    let args = [&base[..], &["--iss", ISSUER, "--jti", &jti, "--exp", &exp]].concat();
    let out = cli_env(&args, &env).await;
    assert!(out.status.success(), "exit {:?}, stderr {}", out.status, String::from_utf8_lossy(&out.stderr));
    let answer = stdout_json(&out);
    assert_eq!(answer["revoked"], true);
    assert_eq!(answer["key"], jti_key("jwtgate:", ISSUER, &jti));

    let out = cli_env(&[&base[..], &["--iss", ISSUER, "--sub", "alice"]].concat(), &env).await;
    assert!(out.status.success(), "stderr {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["key"], sub_key("jwtgate:", ISSUER, "alice"));

    let file = crate::support::gate::write_config(&format!("{}\n", by_file.sign()));
    let path = file.path().display().to_string();
    let out = cli_env(&[&base[..], &["--token-file", &path]].concat(), &env).await;
    assert!(out.status.success(), "stderr {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["key"], jti_key("jwtgate:", ISSUER, &by_file.jti_value()));

    for raw in [&by_jti.sign(), &alice, &by_file.sign()] {
        assert_refused(&gate.get("/api/after", raw).await, 401, "token_revoked", Challenge::InvalidToken);
    }
    assert_eq!(app.seen("/api/after"), 0);
    assert_eq!(gate.get("/api/bystander", &bystander).await.status, 200);
}

#[tokio::test]
async fn revoke_cli_exits_non_zero_when_the_admin_api_refuses_or_is_unreachable() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let admin = format!("http://{}", gate.admin.expect("admin listener"));
    let tok = claims();
    let (jti, exp) = (tok.jti_value(), tok.exp().to_string());
    let target = ["--iss", ISSUER, "--jti", jti.as_str(), "--exp", exp.as_str()];
    let run = |admin: String, env: Vec<(&'static str, &'static str)>| {
        let args: Vec<String> = ["revoke", "--admin", &admin, "--admin-token-env", "JWTGATE_TEST_ADMIN"]
            .iter()
            .chain(target.iter())
            .map(|s| s.to_string())
            .collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli_env(&args, &env).await
        }
    };

    let out = run(admin.clone(), vec![("JWTGATE_TEST_ADMIN", "wrong-admin-token-0123456789")]).await;
    assert!(!out.status.success(), "wrong admin token accepted");
    assert!(String::from_utf8_lossy(&out.stdout).contains("unauthorized"), "prints the answer: {out:?}");
    let out = run(admin.clone(), vec![]).await;
    assert!(!out.status.success(), "ran without an admin token");
    let closed = format!("http://127.0.0.1:{}", crate::support::redis::free_port());
    let out = run(closed, vec![("JWTGATE_TEST_ADMIN", ADMIN_TOKEN)]).await;
    assert!(!out.status.success(), "unreachable admin reported success");
    let out = run(admin, vec![("JWTGATE_TEST_ADMIN", ADMIN_TOKEN)]).await;
    assert!(out.status.success(), "control: {out:?}");

    assert_eq!(redis.keys("jwtgate:*").await, [jti_key("jwtgate:", ISSUER, &jti)], "only the control revoked");
}
