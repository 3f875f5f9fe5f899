//! WebSocket pass-through (HTTP/1.1 `Upgrade: websocket`, RFC 6455 §4).
//!
//! The handshake is an ordinary request: it goes through every phase (route,
//! auth, revocation, requirements, claim headers) before anything reaches
//! the upstream. Only at forwarding is the `Connection: upgrade` /
//! `Upgrade: websocket` pair put back after hop-by-hop stripping. When the
//! upstream answers `101`, the client gets that 101 and both connections are
//! spliced; payloads pass untouched, but each direction's frame boundaries
//! are followed ([`super::frames`]) so that a close frame can be put
//! between two frames. Any other answer is a normal response.
//!
//! Limits, by design:
//! - A tunnel opened with a token that has `exp` is closed at `exp`, so a
//!   WebSocket never outlives its credential. Routes without a token
//!   (`auth: none`, `optional` without one) have no time limit.
//! - A revocation covering the handshake token (its own key, or a subject
//!   or session cut-off at or after its `iat`), written here or announced
//!   by another replica, closes the tunnel ([`super::tunnels`]): the frame
//!   in flight in each direction is let through, then a close frame 1008
//!   goes to the client (unmasked) and to the upstream (masked, as a
//!   client's must be), each side's write half is shut and its remaining
//!   input read and dropped (closing with unread input would reset the
//!   connection, and could lose the close frame), for `CLOSE_GRACE` at most.
//! - At `exp` or after idling both connections are simply dropped.
//! - A tunnel with no byte in either direction for
//!   `upstream.websocket_idle_timeout` (5 min) is closed.
//! - Only `websocket` is passed; other upgrades (`h2c`, ...) are still
//!   stripped, and HTTP/2 extended CONNECT (RFC 8441) is not supported.

use super::frames;
use super::tunnels::Registration;
use base64::Engine;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha1::Digest;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// True for a well-formed RFC 6455 opening handshake: HTTP/1.1 `GET`,
/// `Connection` listing `upgrade`, `Upgrade` listing `websocket`,
/// `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` of 16 base64
/// bytes. Anything else (other upgrades such as `h2c`, a half-formed
/// handshake) is not one: its upgrade headers are stripped like any
/// hop-by-hop header, so the app is never asked to switch.
pub fn is_websocket(version: Version, method: &Method, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && method == Method::GET
        && has_token(headers, &CONNECTION, "upgrade")
        && has_token(headers, &UPGRADE, "websocket")
        && headers.get(SEC_WEBSOCKET_VERSION).is_some_and(|v| v.as_bytes() == b"13")
        && key(headers).is_some()
}

/// The `Sec-WebSocket-Key`, when it is exactly one value of 16 base64 bytes.
pub fn key(headers: &HeaderMap) -> Option<&[u8]> {
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else { return None };
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes()).ok()?;
    (decoded.len() == 16).then_some(key.as_bytes())
}

/// The `Sec-WebSocket-Accept` an upstream that really switched to WebSocket
/// answers for `key` (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).
pub fn accept_for(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let digest = sha1::Sha1::new().chain_update(key).chain_update(GUID).finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Whether any value of `name`, read as a comma list, holds `token`
/// (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: &http::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Puts back exactly `Connection: upgrade` and `Upgrade: websocket` after
/// hop-by-hop stripping (which removed them and anything else `Connection`
/// named): the upstream must see the handshake, and nothing more.
pub fn restore_request_headers(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

/// The headers of a `101` answer to the client: hop-by-hop stripped like any
/// response, then the upstream's `Upgrade` and `Connection: upgrade` put
/// back (`Sec-WebSocket-*` are end-to-end and stay). Returns false (the
/// caller answers 502, nothing is spliced) unless the upstream switched to
/// `websocket` *and* proved it with the `Sec-WebSocket-Accept` of this
/// handshake's key: an app that answers 101 but goes on speaking HTTP (a
/// reflected status, say) would otherwise hand the client a raw pipe to it
/// past every route rule ("WebSocket smuggling").
pub fn restore_response_headers(headers: &mut HeaderMap, expected_accept: &str) -> bool {
    if !has_token(headers, &UPGRADE, "websocket") {
        return false;
    }
    if headers.get(SEC_WEBSOCKET_ACCEPT).is_none_or(|a| a.as_bytes() != expected_accept.as_bytes()) {
        return false;
    }
    let upgrade: Vec<HeaderValue> = headers.get_all(UPGRADE).iter().cloned().collect();
    super::headers::strip_hop_by_hop(headers);
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    for value in upgrade {
        headers.append(UPGRADE, value);
    }
    true
}

/// Splices the two upgraded connections in a task of its own. `exp` is the
/// handshake token's expiry: the tunnel is closed then (both sides
/// dropped), or earlier after `idle` without a byte in either direction.
/// `registration` (a tunnel on a token) tells of a revocation covering
/// the token: the tunnel then ends with close frames 1008 both ways.
pub fn splice(
    client: OnUpgrade,
    upstream: OnUpgrade,
    exp: Option<i64>,
    idle: Duration,
    registration: Option<Registration>,
) {
    // Fixed now, so the wait for the upgrades counts against the token too.
    let deadline = exp.and_then(deadline_of);
    tokio::spawn(async move {
        let tunnel = tunnel(client, upstream, idle, registration);
        let ended = match deadline {
            Some(at) => tokio::time::timeout_at(at, tunnel).await.unwrap_or(Some(Ended::Expired)),
            None => tunnel.await,
        };
        if let Some(ended) = ended {
            tracing::debug!(reason = ended.label(), "websocket tunnel closed");
            metrics::counter!("jwtgate_websocket_tunnels_closed_total", "reason" => ended.label()).increment(1);
        }
    });
}

/// Why a tunnel ended (the `reason` label of
/// `jwtgate_websocket_tunnels_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Either side closed, or a connection failed.
    Closed,
    Revoked,
    Expired,
    Idle,
}

impl Ended {
    fn label(self) -> &'static str {
        match self {
            Ended::Closed => "closed",
            Ended::Revoked => "revoked",
            Ended::Expired => "expired",
            Ended::Idle => "idle",
        }
    }
}

/// How long a revoked tunnel's two sides get to finish the frame in
/// flight, take the close frame and close; then both are dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The tunnel until it ends; `None` when it never opened (an upgrade failed).
async fn tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    idle: Duration,
    registration: Option<Registration>,
) -> Option<Ended> {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(err) => {
            // Dropping the future drops whichever side did upgrade.
            tracing::debug!(error = %err, "websocket upgrade failed; dropping both sides");
            return None;
        }
    };
    metrics::counter!("jwtgate_websocket_tunnels_total").increment(1);
    let _open = OpenTunnel::new();
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let client = Active { io: TokioIo::new(client), started, last: last.clone() };
    let upstream = Active { io: TokioIo::new(upstream), started, last: last.clone() };
    let (stop, stopped) = watch::channel(false);
    let (from_client, to_client) = tokio::io::split(client);
    let (from_upstream, to_upstream) = tokio::io::split(upstream);
    let up = frames::relay(from_client, to_upstream, stopped.clone(), frames::close_to_server(rand::random()));
    let down = frames::relay(from_upstream, to_client, stopped, frames::close_to_client());
    let mut both = std::pin::pin!(async { tokio::try_join!(up, down) });
    let revoked = async {
        match registration {
            Some(mut r) => (&mut r.revoked).await.is_ok(),
            None => false,
        }
    };
    tokio::select! {
        done = &mut both => {
            if let Err(err) = done {
                tracing::debug!(error = %err, "websocket tunnel ended with an error");
            }
            Some(Ended::Closed)
        }
        () = idle_for(idle, started, &last) => {
            tracing::debug!(idle = %humantime::format_duration(idle), "websocket tunnel closed after idling");
            Some(Ended::Idle)
        }
        true = revoked => {
            tracing::info!("websocket tunnel closed: its token was revoked");
            let _ = stop.send(true);
            if tokio::time::timeout(CLOSE_GRACE, both).await.is_err() {
                tracing::debug!("websocket tunnel: a side did not close in time; dropped");
            }
            Some(Ended::Revoked)
        }
    }
}

/// Resolves once no byte has moved for `idle` (checked when the last
/// activity would make it due, so an active tunnel costs one timer).
async fn idle_for(idle: Duration, started: Instant, last: &AtomicU64) {
    loop {
        let since_start = Duration::from_millis(last.load(Ordering::Relaxed));
        let due = started + since_start + idle;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// One side of a tunnel, stamping `last` (ms since `started`) on every read.
struct Active<T> {
    io: T,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Active<T> {
    fn stamp(&self) {
        self.last.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Active<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.stamp();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Active<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Tunnels open in this process, for the shutdown drain (process-wide:
/// tunnels outlive the connection and config snapshot that opened them).
static OPEN: AtomicUsize = AtomicUsize::new(0);
static CLOSED: Notify = Notify::const_new();

/// Waits until no tunnel is open, at most `limit`; the number still open.
/// On shutdown, after the HTTP connections have drained: a tunnel that
/// ends by itself in the meantime (its client closes, its token expires)
/// is not cut; the rest end with the process.
pub async fn drain(limit: Duration) -> usize {
    let all_closed = async {
        loop {
            let closed = CLOSED.notified();
            if OPEN.load(Ordering::Acquire) == 0 {
                return;
            }
            closed.await;
        }
    };
    let _ = tokio::time::timeout(limit, all_closed).await;
    OPEN.load(Ordering::Acquire)
}

/// Held for a tunnel's life: the open count and the
/// `jwtgate_websocket_tunnels_open` gauge, decremented on drop, so every
/// way out (EOF, error, expiry, idle) counts.
struct OpenTunnel;

impl OpenTunnel {
    fn new() -> Self {
        OPEN.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("jwtgate_websocket_tunnels_open").increment(1.0);
        OpenTunnel
    }
}

impl Drop for OpenTunnel {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
        CLOSED.notify_waiters();
        metrics::gauge!("jwtgate_websocket_tunnels_open").decrement(1.0);
    }
}

/// The monotonic instant of Unix time `exp` (now when already past), to
/// the sub-second so never before `exp`; `None` when beyond what the clock
/// can represent (no limit then, rather than a panic).
fn deadline_of(exp: i64) -> Option<Instant> {
    let at = UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(exp).unwrap_or(0)))?;
    Instant::now().checked_add(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn handshake<B>(req: &Request<B>) -> bool {
        is_websocket(req.version(), req.method(), req.headers())
    }

    fn req(version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    /// A full handshake with `headers` added.
    fn ws(version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut all = vec![("sec-websocket-key", KEY), ("sec-websocket-version", "13")];
        all.extend_from_slice(headers);
        req(version, &all)
    }

    #[test]
    fn accept_is_the_rfc_6455_example() {
        assert_eq!(accept_for(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn a_half_formed_handshake_is_not_a_websocket() {
        let (h11, pair) = (Version::HTTP_11, [("connection", "upgrade"), ("upgrade", "websocket")]);
        assert!(handshake(&ws(h11, &pair)), "positive control");
        assert!(!handshake(&req(h11, &pair)), "no key, no version");
        let short_key = [pair[0], pair[1], ("sec-websocket-key", "c2hvcnQ="), ("sec-websocket-version", "13")];
        assert!(!handshake(&req(h11, &short_key)), "key of 5 bytes");
        let old_version = [pair[0], pair[1], ("sec-websocket-key", KEY), ("sec-websocket-version", "8")];
        assert!(!handshake(&req(h11, &old_version)), "version 8");
        let mut post = ws(h11, &pair);
        *post.method_mut() = Method::POST;
        assert!(!handshake(&post), "POST");
    }

    #[test]
    fn websocket_upgrade_is_recognised_case_insensitively_in_lists() {
        let h11 = Version::HTTP_11;
        let req = ws;
        assert!(handshake(&req(h11, &[("connection", "Upgrade"), ("upgrade", "websocket")])));
        assert!(handshake(&req(h11, &[("connection", "keep-alive, UPGRADE"), ("upgrade", "WebSocket")])));
        assert!(handshake(&req(
            h11,
            &[("connection", "keep-alive"), ("connection", "upgrade"), ("upgrade", "websocket")]
        )));
        assert!(!handshake(&req(h11, &[("connection", "Upgrade"), ("upgrade", "h2c")])));
        assert!(!handshake(&req(h11, &[("upgrade", "websocket")])));
        assert!(!handshake(&req(h11, &[("connection", "upgraded"), ("upgrade", "websocket")])));
        assert!(!handshake(&req(Version::HTTP_10, &[("connection", "upgrade"), ("upgrade", "websocket")])));
        assert!(!handshake(&req(Version::HTTP_2, &[("connection", "upgrade"), ("upgrade", "websocket")])));
    }

    #[test]
    fn a_101_keeps_the_switch_and_loses_other_hop_by_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade, X-Hop"));
        h.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("sec-websocket-accept", HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!restore_response_headers(&mut h.clone(), "another-key's-accept="), "accept must match the key");
        assert!(restore_response_headers(&mut h, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(h[CONNECTION], "upgrade");
        assert_eq!(h[UPGRADE], "WebSocket", "the upstream's value");
        assert_eq!(h["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(!h.contains_key("x-hop"));

        let mut other = HeaderMap::new();
        other.insert(UPGRADE, HeaderValue::from_static("h2c"));
        other.insert("sec-websocket-accept", HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(!restore_response_headers(&mut other, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    }

    #[test]
    fn deadline_is_never_before_exp() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let exp = now.as_secs() as i64 + 3;
        let left = deadline_of(exp).unwrap() - Instant::now();
        assert!(left > Duration::from_secs(2) && left <= Duration::from_secs(3), "{left:?}");
        assert!(deadline_of(0).unwrap() <= Instant::now(), "past exp: close now");
        assert!(deadline_of(-5).unwrap() <= Instant::now(), "negative exp: close now");
        let _ = deadline_of(i64::MAX); // unrepresentable on some clocks: `None`, never a panic
    }
}
