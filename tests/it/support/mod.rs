//! Test harness: real processes and sockets, no mocks inside jwtgate.
//!
//! `Redis` is a real redis-server, `Upstream` a recording hyper server,
//! `Gate` the real `jwtgate` binary, `token` mints JWTs. Helpers that
//! several test files share (config, refusal assertions) live here too.

pub mod config;
pub mod configmap;
pub mod front;
pub mod gate;
pub mod h2raw;
pub mod idp;
pub mod redis;
pub mod relay;
pub mod token;
pub mod upstream;
pub mod ws;

pub use config::Cfg;
pub use gate::{Gate, Rsp};
pub use redis::Redis;
pub use relay::{Announcements, Relay};
pub use upstream::{Behaviour, Upstream};

use std::future::Future;
use std::time::Duration;

/// Which `WWW-Authenticate` a refusal must carry.
#[derive(Debug, Clone, Copy)]
pub enum Challenge {
    /// No challenge header at all.
    Absent,
    /// `Bearer realm="jwtgate"` and nothing else (RFC 6750 §3.1).
    Bare,
    /// `Bearer realm="jwtgate", error="invalid_token", error_description="..."`.
    InvalidToken,
    /// `Bearer realm="jwtgate", error="invalid_request", ...`.
    InvalidRequest,
}

/// Asserts status, challenge and the JSON `{"error": code, "message": ...}` body.
#[track_caller]
pub fn assert_refused(rsp: &Rsp, status: u16, code: &str, challenge: Challenge) {
    assert_eq!(rsp.status, status, "status for {code}; body: {}", rsp.text());
    let www = rsp.header("www-authenticate");
    match challenge {
        Challenge::Absent => assert_eq!(www, None, "{code} must not carry a challenge"),
        Challenge::Bare => assert_eq!(www.as_deref(), Some(r#"Bearer realm="jwtgate""#)),
        Challenge::InvalidToken | Challenge::InvalidRequest => {
            let err = match challenge {
                Challenge::InvalidToken => "invalid_token",
                _ => "invalid_request",
            };
            let www = www.unwrap_or_else(|| panic!("{code}: no WWW-Authenticate"));
            let prefix = format!(r#"Bearer realm="jwtgate", error="{err}""#);
            assert!(www.starts_with(&prefix), "{code}: challenge {www:?}");
            assert!(www.contains("error_description=\""), "{code}: challenge {www:?}");
        }
    }
    let json = rsp.json();
    assert_eq!(json["error"], code, "error code; body: {json}");
    assert!(json["message"].is_string(), "message missing; body: {json}");
}

/// Asserts a 403 `insufficient_scope` refusal (RFC 6750 §3.1): the JSON
/// code and a challenge that carries `scope="<scope>"` exactly when the
/// route lists scopes (`scope: None`: no `scope` attribute at all).
#[track_caller]
pub fn assert_insufficient_scope(rsp: &Rsp, scope: Option<&str>) {
    assert_eq!(rsp.status, 403, "status; body: {}", rsp.text());
    let www = rsp.header("www-authenticate").unwrap_or_else(|| panic!("403 without WWW-Authenticate"));
    let prefix = r#"Bearer realm="jwtgate", error="insufficient_scope", error_description=""#;
    assert!(www.starts_with(prefix), "challenge {www:?}");
    match scope {
        Some(scope) => assert!(www.ends_with(&format!(r#"", scope="{scope}""#)), "challenge {www:?}, scope {scope:?}"),
        None => assert!(!www.contains(", scope="), "challenge {www:?} names scopes the route does not list"),
    }
    let json = rsp.json();
    assert_eq!(json["error"], "insufficient_scope", "error code; body: {json}");
    assert!(json["message"].is_string(), "message missing; body: {json}");
}

/// Polls `check` until it yields `Some`, failing after `deadline`.
/// Used for eventual effects across processes (cache TTLs, reconnects).
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let poll = async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    match tokio::time::timeout(deadline, poll).await {
        Ok(v) => v,
        Err(_) => panic!("not reached within {deadline:?}: {what}"),
    }
}

/// Until `raw` is answered from `gate`'s cache ("not revoked"): a second
/// request makes no `MGET`.
pub async fn cached_on(gate: &Gate, redis: &Redis, raw: &str) {
    eventually(Duration::from_secs(5), "token cached as not revoked", || async {
        assert_eq!(gate.get("/api/warm", raw).await.status, 200, "control: accepted before logout");
        let before = redis.calls("mget").await;
        assert_eq!(gate.get("/api/warm", raw).await.status, 200);
        (redis.calls("mget").await == before).then_some(())
    })
    .await;
}

/// Sends `raw` to `path` on `gate` every 10 ms until it is refused;
/// fails once `deadline` has passed since `since` (the event the refusal
/// should follow). For bounds measured in milliseconds, where the 25 ms
/// step of [`eventually`] is too coarse.
pub async fn refused_by(gate: &Gate, path: &str, raw: &str, since: std::time::Instant, deadline: Duration) -> Rsp {
    const PAUSE: Duration = Duration::from_millis(10);
    loop {
        let rsp = gate.get(path, raw).await;
        if rsp.status != 200 {
            return rsp;
        }
        let elapsed = since.elapsed();
        assert!(elapsed < deadline, "{} still accepts the revoked token after {elapsed:?}", gate.addr);
        tokio::time::sleep(PAUSE).await;
    }
}

/// Sum of the Prometheus samples of `name` whose label set contains every
/// `labels` fragment (e.g. `outcome="forwarded"`); `None` when no series matches.
pub fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name || !labels.iter().all(|l| series_labels.contains(l)) {
            continue;
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("sample value in {line:?}"));
        found = Some(found.unwrap_or(0.0) + v);
    }
    found
}

/// Nearest-rank percentile (`p` in 0..=100) of `samples`, which it sorts.
pub fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    samples.sort();
    let rank = (samples.len() * p).div_ceil(100).max(1);
    samples[rank - 1]
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock before 1970").as_secs() as i64
}

/// Absolute path of a file in `tests/keys/`.
pub fn key_path(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}
