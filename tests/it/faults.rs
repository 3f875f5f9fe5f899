//! Redis failing in the ways it does in production: killed, hung
//! (SIGSTOP), restarted empty on the same port. Every request is answered
//! within the store deadline plus a margin, logouts are never acknowledged
//! while nothing was stored, and service resumes without restarting jwtgate.

use crate::support::token::{self, claims};
use crate::support::{assert_refused, eventually, metric, Cfg, Challenge, Gate, Redis, Rsp, Upstream};
use std::time::{Duration, Instant};

/// Deadline 50 ms (the default) + a generous margin for a loaded CI box.
const ANSWER_BOUND: Duration = Duration::from_millis(500);

fn cfg(app: &Upstream, redis: &Redis) -> Cfg {
    Cfg::new(app).redis(redis).logout_all()
}

async fn timed<F: std::future::Future<Output = Rsp>>(what: &str, call: F) -> Rsp {
    let started = Instant::now();
    let rsp = call.await;
    let took = started.elapsed();
    assert!(took < ANSWER_BOUND, "{what} took {took:?} (bound {ANSWER_BOUND:?})");
    rsp
}

/// With the store down under fail_closed: reads, logout and logout-all all
/// 503 store_unavailable quickly, and nothing reaches the app.
async fn every_answer_is_a_quick_503(gate: &Gate, app: &Upstream) {
    for i in 0..10 {
        let rsp = timed(&format!("GET #{i}"), gate.get("/api/down", &token::mint())).await;
        assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
        let rsp = timed(&format!("logout #{i}"), gate.logout(&token::mint())).await;
        assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
        let rsp = timed(&format!("logout_all #{i}"), gate.logout_all(&token::mint())).await;
        assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    }
    assert_eq!(app.seen("/api/down") + app.seen("/logout") + app.seen("/logout/all"), 0);
}

/// Service is back on the same jwtgate process: a logout is stored and
/// enforced again, fresh tokens pass.
async fn service_resumes(gate: &Gate, pid: u32) {
    let started = Instant::now();
    let tok = eventually(Duration::from_secs(15), "a logout is stored again", || async {
        let tok = token::mint();
        (gate.logout(&tok).await.status == 200).then_some(tok)
    })
    .await;
    eprintln!("store usable again {:?} after recovery", started.elapsed());
    assert_refused(&gate.get("/api/revoked", &tok).await, 401, "token_revoked", Challenge::InvalidToken);
    assert_eq!(gate.get("/api/back", &token::mint()).await.status, 200, "fresh tokens accepted again");
    assert_eq!(gate.pid, pid);
    assert!(gate.alive(), "jwtgate was restarted or died");
}

#[tokio::test]
async fn killed_redis_gets_quick_503s_and_service_resumes_when_it_restarts_on_the_same_port() {
    let (mut redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let pid = gate.pid;
    assert_eq!(gate.get("/api/up", &token::mint()).await.status, 200, "control");

    redis.stop().await; // SIGKILL
    every_answer_is_a_quick_503(&gate, &app).await;
    // Each 503 is logged with the store's cause (the client never sees it).
    let line = eventually(Duration::from_secs(5), "a failure logged", || async {
        gate.logs().lines().find(|l| l.contains("request failed")).map(str::to_owned)
    })
    .await;
    assert!(line.contains("revocation store unavailable: "), "{line}");
    assert!(line.contains("redis") || line.contains("circuit open"), "the cause is named: {line}");
    redis.restart().await;
    service_resumes(&gate, pid).await;
}

#[tokio::test]
async fn hung_redis_gets_503s_within_the_deadline_and_service_resumes_when_it_continues() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&cfg(&app, &redis)).await;
    let pid = gate.pid;
    let before = claims().sub("alice");
    let before_raw = before.sign();
    assert_eq!(gate.get("/api/up", &before_raw).await.status, 200, "control");

    redis.pause(); // SIGSTOP: connections stay open, nothing answers
    every_answer_is_a_quick_503(&gate, &app).await;
    redis.resume();
    service_resumes(&gate, pid).await;
    // Nothing "half-written" while hung: the earlier token is still accepted.
    assert_eq!(gate.get("/api/still", &before_raw).await.status, 200);
}

#[tokio::test]
async fn hung_redis_under_fail_open_forwards_within_the_deadline_but_never_acknowledges_a_logout() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    let gate = Gate::spawn(&Cfg { on_store_error: "fail_open".into(), ..cfg(&app, &redis) }).await;
    assert_eq!(gate.get("/api/up", &token::mint()).await.status, 200, "control");

    redis.pause();
    for i in 0..10 {
        let rsp = timed(&format!("GET #{i}"), gate.get("/api/open", &token::mint())).await;
        assert_eq!(rsp.status, 200, "fail_open forwards: {}", rsp.text());
        let rsp = timed(&format!("logout #{i}"), gate.logout(&token::mint())).await;
        assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
        let rsp = timed(&format!("logout_all #{i}"), gate.logout_all(&token::mint())).await;
        assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    }
    assert_eq!(app.seen("/api/open"), 10);
    assert_eq!(app.seen("/logout") + app.seen("/logout/all"), 0);
    redis.resume();
    service_resumes(&gate, gate.pid).await;
}

#[tokio::test]
async fn open_circuit_answers_at_once_instead_of_waiting_out_the_store_deadline() {
    let (redis, app) = (Redis::spawn().await, Upstream::spawn().await);
    // A long deadline makes "waited for the store" and "skipped it" easy to tell apart.
    let cfg = Cfg {
        redis_timeout: "600ms".into(),
        circuit: Some((3, "4s".into())),
        heartbeat: Some("1h".into()),
        ..Cfg::new(&app).redis(&redis).admin()
    };
    let gate = Gate::spawn(&cfg).await;
    assert_eq!(gate.get("/api/up", &token::mint()).await.status, 200, "control");
    assert_eq!(metric(&gate.metrics().await, "jwtgate_store_circuit_open", &[]), Some(0.0));

    // Minted beforehand: RSA signing in a debug build on a loaded box takes
    // long enough to blur "answered at once" and to outlast the cool-down.
    let minted: Vec<String> = (0..10).map(|_| token::mint()).collect();
    redis.pause();
    for i in 0..3 {
        let started = Instant::now();
        let rsp = gate.get("/api/slow", &token::mint()).await;
        let took = started.elapsed();
        assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
        assert!(took >= Duration::from_millis(400), "failure #{i} took {took:?}: did it wait for the store?");
        assert!(took < Duration::from_millis(600) + ANSWER_BOUND, "failure #{i} took {took:?}");
    }
    let opened = Instant::now();
    let mut fast = Vec::new();
    for tok in &minted {
        let started = Instant::now();
        let rsp = gate.get("/api/fast", tok).await;
        fast.push(started.elapsed());
        assert_refused(&rsp, 503, "store_unavailable", Challenge::Absent);
    }
    assert!(opened.elapsed() < Duration::from_secs(3), "still inside the 4 s cool-down");
    let slowest = fast.iter().max().copied().unwrap_or_default();
    assert!(slowest < Duration::from_millis(300), "open circuit answers took up to {slowest:?}: {fast:?}");
    let text = gate.metrics().await;
    assert_eq!(metric(&text, "jwtgate_store_circuit_open", &[]), Some(1.0), "{text}");
    assert!(metric(&text, "jwtgate_store_errors_total", &["kind=\"circuit_open\""]).unwrap_or(0.0) >= 10.0, "{text}");
    assert_eq!(app.seen("/api/slow") + app.seen("/api/fast"), 0);

    redis.resume();
    eventually(Duration::from_secs(15), "circuit closes after the cool-down probe", || async {
        (gate.get("/api/back", &token::mint()).await.status == 200).then_some(())
    })
    .await;
    assert_eq!(metric(&gate.metrics().await, "jwtgate_store_circuit_open", &[]), Some(0.0));
}
