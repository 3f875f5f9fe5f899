//! A revocation covering a tunnel's handshake token closes the tunnel:
//! logout, log out everywhere, the admin API and back-channel logout, made
//! on another replica (heard of by pub/sub) or on the same single instance
//! (memory store), and one made while the replica's subscription was dead
//! (found by its re-check once re-subscribed). The client gets a close
//! frame 1008 and EOF; the app gets a masked close frame 1008 after the
//! last whole frame; a tunnel on another token stays open and still echoes.

use crate::support::config::BACKCHANNEL_PATH;
use crate::support::gate::full;
use crate::support::token::{claims, Tok, HS_ISSUER};
use crate::support::ws::{self, client_frame, Ws, OP_BINARY, OP_CLOSE};
use crate::support::{eventually, metric, Behaviour, Cfg, Gate, Redis, Relay, Upstream};
use serde_json::json;
use std::time::Duration;

const ROUTES: &str = "
  - match: { path_prefix: /ws }
    auth: required
  - match: { path_prefix: /api }
    auth: required
";
const CHANNEL: &str = "jwtgate:revocations";
/// A revocation heard of by pub/sub closes the tunnel well within this.
const PROPAGATION: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(10);
const POLICY_VIOLATION: u16 = 1008;

async fn app() -> Upstream {
    let app = Upstream::spawn().await;
    app.on("/ws", Behaviour::WebSocketEcho);
    app
}

/// A replica on `redis_url` with the admin API, log out everywhere and
/// back-channel logout of the HMAC issuer. A long cache TTL and heartbeat:
/// only the push (or the re-check) can close a tunnel quickly.
fn replica(app: &Upstream, redis_url: String) -> Cfg {
    let cfg = Cfg { redis_url: Some(redis_url), not_revoked_ttl: "300s".into(), ..Cfg::new(app) };
    cfg.routes(ROUTES).admin().logout_all().backchannel(HS_ISSUER)
}

/// Replicas A and B on one redis-server, both subscribed.
async fn fleet(app: &Upstream, redis: &Redis) -> (Gate, Gate) {
    let a = Gate::spawn(&Cfg { heartbeat: Some("1h".into()), ..replica(app, redis.url()) }).await;
    let b = Gate::spawn(&Cfg { heartbeat: Some("1h".into()), ..replica(app, redis.url()) }).await;
    redis.await_subscribers(CHANNEL, 2).await;
    (a, b)
}

/// An access token of the HMAC issuer (the back-channel OP) for `sub`.
fn access(sub: &str) -> Tok {
    claims().hs256().sub(sub).iat(crate::support::now_unix() - 5)
}

/// Asserts the close reached the app as a masked close 1008 right after
/// the last whole frame it was sent (every byte it got parses as frames).
async fn app_got_close_after(app: &Upstream, tunnels_before: usize, last_payload: &[u8]) {
    eventually(WAIT, "the app's side of the tunnel closed", || async {
        (app.tunnels_closed() > tunnels_before).then_some(())
    })
    .await;
    let received = app.tunnel_bytes();
    let frames = ws::parse_all(received.last().expect("bytes of the closed tunnel"));
    let [.., data, close] = frames.as_slice() else { panic!("fewer than two frames: {frames:?}") };
    assert_eq!((data.opcode, data.payload.as_slice()), (OP_BINARY, last_payload), "the last data frame, whole");
    assert_eq!(close.opcode, OP_CLOSE, "{frames:?}");
    assert!(close.masked, "a frame to the server is masked");
    assert_eq!(close.close_code(), Some(POLICY_VIOLATION));
    assert_eq!(&close.payload[2..], b"token revoked");
}

async fn closed_with_reason(gate: &Gate, reason: &str) -> f64 {
    let text = gate.metrics().await;
    metric(&text, "jwtgate_websocket_tunnels_closed_total", &[&format!("reason=\"{reason}\"")]).unwrap_or(0.0)
}

/// Opens a tunnel through A for `victim` and one for `bystander`, revokes
/// with `revoke` on B, and asserts that A closes the victim's tunnel (close
/// 1008 both ways) within the propagation bound and not the other.
async fn revoked_on_b_closes_on_a<F, Fut>(victim: &str, bystander: &str, revoke: F)
where
    F: FnOnce(Gate) -> Fut,
    Fut: std::future::Future<Output = Gate>,
{
    let (redis, app) = (Redis::spawn().await, app().await);
    let (a, b) = fleet(&app, &redis).await;
    let mut doomed = Ws::open(&a, "/ws/doomed", victim).await;
    let mut control = Ws::open(&a, "/ws/control", bystander).await;
    doomed.echo(b"before").await;
    control.echo(b"before").await;

    let b = revoke(b).await;
    let code = doomed.closed_by_gate(PROPAGATION).await;
    assert_eq!(code, POLICY_VIOLATION);
    drop(doomed);
    app_got_close_after(&app, 0, b"before").await;

    control.echo(b"still open").await;
    let rsp = b.get("/api/after", bystander).await;
    assert_eq!(rsp.status, 200, "control token still live: {}", rsp.text());
    assert_eq!(app.tunnels_closed(), 1, "only the revoked token's tunnel");
    eventually(WAIT, "A counts one tunnel closed as revoked", || async {
        (closed_with_reason(&a, "revoked").await == 1.0).then_some(())
    })
    .await;
    assert_eq!(metric(&a.metrics().await, "jwtgate_websocket_tunnels_open", &[]), Some(1.0));
}

#[tokio::test]
async fn logout_on_another_replica_closes_the_tunnel() {
    let (victim, bystander) = (access("alice").sign(), access("bob").sign());
    let to_revoke = victim.clone();
    revoked_on_b_closes_on_a(&victim, &bystander, |b| async move {
        let rsp = b.logout(&to_revoke).await;
        assert_eq!(rsp.status, 200, "logout on B: {}", rsp.text());
        b
    })
    .await;
}

#[tokio::test]
async fn log_out_everywhere_on_another_replica_closes_the_subjects_tunnels() {
    // Another token of alice logs out everywhere: the tunnel's token is
    // revoked by the subject cut-off, not by its own key.
    let (victim, bystander) = (access("alice").sign(), access("bob").sign());
    let other_device = access("alice").sign();
    revoked_on_b_closes_on_a(&victim, &bystander, |b| async move {
        let rsp = b.logout_all(&other_device).await;
        assert_eq!(rsp.status, 200, "log out everywhere on B: {}", rsp.text());
        b
    })
    .await;
}

#[tokio::test]
async fn an_admin_revocation_on_another_replica_closes_the_tunnel() {
    let (victim, bystander) = (access("alice").sign(), access("bob").sign());
    let to_revoke = victim.clone();
    revoked_on_b_closes_on_a(&victim, &bystander, |b| async move {
        let rsp = b.admin_send("POST", "/revocations", Some(json!({ "token": to_revoke }))).await;
        assert_eq!(rsp.status, 200, "admin revocation on B: {}", rsp.text());
        b
    })
    .await;
}

#[tokio::test]
async fn a_back_channel_logout_on_another_replica_closes_the_subjects_tunnels() {
    let (victim, bystander) = (access("alice").sign(), access("bob").sign());
    let logout_token = claims()
        .hs256()
        .sub("alice")
        .claim("events", json!({ "http://schemas.openid.net/event/backchannel-logout": {} }))
        .sign();
    revoked_on_b_closes_on_a(&victim, &bystander, |b| async move {
        let req = b
            .req("POST", BACKCHANNEL_PATH)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(full(format!("logout_token={logout_token}")))
            .expect("request");
        let rsp = b.send(req).await;
        assert_eq!(rsp.status, 200, "back-channel logout on B: {}", rsp.text());
        b
    })
    .await;
}

#[tokio::test]
async fn a_revocation_missed_while_unsubscribed_closes_the_tunnel_once_re_subscribed() {
    // A reaches Redis through a relay that silences its subscription (no
    // FIN, no RST): B's announcement never arrives, and A's cache emptying
    // does not close a tunnel. A's read of the announcement log beside its
    // next heartbeat PING (its command connection is healthy) replays the
    // logout and closes it; the store re-check after re-subscribing (for a
    // log trimmed past what A applied) then finds nothing left to close.
    let (redis, app) = (Redis::spawn().await, app().await);
    let relay = Relay::spawn(redis.addr()).await;
    let a = Gate::spawn(&Cfg { redis_timeout: "500ms".into(), ..replica(&app, relay.url()) }).await;
    let b = Gate::spawn(&Cfg { heartbeat: Some("1h".into()), ..replica(&app, redis.url()) }).await;
    redis.await_subscribers(CHANNEL, 2).await;
    eventually(WAIT, "A subscribed through the relay", || async { (relay.live_subscriptions() == 1).then_some(()) })
        .await;
    let (victim, bystander) = (access("alice").sign(), access("bob").sign());
    let mut doomed = Ws::open(&a, "/ws/doomed", &victim).await;
    let mut control = Ws::open(&a, "/ws/control", &bystander).await;
    doomed.echo(b"before").await;

    assert_eq!(relay.silence_subscriptions(), 1, "A's subscription silenced");
    assert_eq!(b.logout(&victim).await.status, 200, "logout on B");
    assert_eq!(doomed.closed_by_gate(WAIT).await, POLICY_VIOLATION);
    drop(doomed);
    app_got_close_after(&app, 0, b"before").await;
    // Logged once the re-check's closes are sent: maybe after the client saw its close.
    eventually(WAIT, "A logs the re-check", || async { a.logs().contains("re-checked open tunnels").then_some(()) })
        .await;
    let logs = a.logs();
    assert!(logs.contains("heartbeat PING unanswered"), "A found its subscription dead:\n{logs}");
    let replayed = metric(&a.metrics().await, "jwtgate_revocation_log_replayed_total", &[]).unwrap_or(0.0);
    assert!(replayed >= 1.0, "A replayed no log entry:\n{logs}");
    assert!(logs.contains("closed=0"), "the log closed the tunnel before the re-check:\n{logs}");

    control.echo(b"still open").await;
    assert_eq!(app.tunnels_closed(), 1, "only the revoked token's tunnel");
    eventually(WAIT, "A counts it as revoked", || async {
        (closed_with_reason(&a, "revoked").await == 1.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn logout_on_a_single_instance_closes_its_tunnel_at_a_frame_boundary() {
    // Memory store. The logout lands while a frame is half sent (both
    // ways: the app echoes at once): the rest of that frame still passes,
    // whole, and only then come the close frames.
    let app = app().await;
    let gate = Gate::spawn(&Cfg::new(&app).routes(ROUTES).admin()).await;
    let (victim, bystander) = (access("alice").sign(), access("bob").sign());
    let mut doomed = Ws::open(&gate, "/ws/doomed", &victim).await;
    let mut control = Ws::open(&gate, "/ws/control", &bystander).await;
    doomed.echo(b"first").await;
    let text = gate.metrics().await;
    let revoked = metric(&text, "jwtgate_websocket_tunnels_closed_total", &["reason=\"revoked\""]);
    assert_eq!(revoked, Some(0.0), "the series exists at 0 before any close:\n{text}");

    let frame = client_frame(OP_BINARY, &[0x7e; 300]);
    let (head, tail) = frame.split_at(100);
    doomed.send_raw(head).await;
    eventually(WAIT, "the app echoed the first part", || async {
        // The echo's first bytes reach the client: the down direction is mid-frame too.
        let mut peek = [0u8; 1];
        (doomed.s.peek(&mut peek).await.is_ok_and(|n| n == 1)).then_some(())
    })
    .await;
    assert_eq!(gate.logout(&victim).await.status, 200, "logout");
    eventually(WAIT, "the gate acted on the revocation", || async {
        gate.logs().contains("its token was revoked").then_some(())
    })
    .await;
    doomed.send_raw(tail).await;
    let echoed = doomed.next_frame(WAIT).await;
    assert_eq!((echoed.opcode, echoed.payload.as_slice()), (OP_BINARY, &[0x7e; 300][..]), "the frame in flight, whole");
    assert_eq!(doomed.closed_by_gate(WAIT).await, POLICY_VIOLATION);
    drop(doomed);
    app_got_close_after(&app, 0, &[0x7e; 300]).await;

    control.echo(b"still open").await;
    assert_eq!(app.tunnels_closed(), 1, "only the revoked token's tunnel");
    eventually(WAIT, "counted as revoked", || async {
        (closed_with_reason(&gate, "revoked").await == 1.0).then_some(())
    })
    .await;
}
