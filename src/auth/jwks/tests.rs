//! `JwksSource` against a real IdP stand-in on a loopback port: loads,
//! rotation, Cache-Control, failures that must keep the last good keys, the
//! unknown-kid cool-down and the background task's lifetime.

use super::*;
use crate::error::Causes;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const JWKS: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/jwks.json"));

fn rotated() -> Bytes {
    let text = String::from_utf8(JWKS.to_vec()).unwrap();
    Bytes::from(text.replace("\"jwks-rsa\"", "\"rotated-rsa\""))
}

/// What the IdP answers next.
#[derive(Clone)]
enum Answer {
    Set(Bytes),
    Body(&'static str),
    Status(StatusCode),
    Huge,
    Hang,
}

struct State {
    answer: Answer,
    cache_control: Option<&'static str>,
}

struct Shared {
    hits: AtomicUsize,
    state: Mutex<State>,
}

/// The IdP: hyper on 127.0.0.1:0, counting requests; aborting its task
/// closes the listener and every open connection (they live in a JoinSet).
struct Idp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Idp {
    async fn spawn() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = State { answer: Answer::Set(Bytes::from_static(JWKS)), cache_control: None };
        let shared = Arc::new(Shared { hits: AtomicUsize::new(0), state: Mutex::new(state) });
        let task = tokio::spawn(accept(listener, shared.clone()));
        Self { addr, shared, task }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    fn serve(&self, answer: Answer) {
        lock(&self.shared.state).answer = answer;
    }

    fn cache_control(&self, value: Option<&'static str>) {
        lock(&self.shared.state).cache_control = value;
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        let svc = service_fn(move |_req| answer(shared.clone()));
        conns.spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc));
    }
}

async fn answer(shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let (answer, cache_control) = {
        let state = lock(&shared.state);
        (state.answer.clone(), state.cache_control)
    };
    let (status, body) = match answer {
        Answer::Set(set) => (StatusCode::OK, set),
        Answer::Body(text) => (StatusCode::OK, Bytes::from_static(text.as_bytes())),
        Answer::Status(status) => (status, Bytes::from_static(b"{}")),
        Answer::Huge => (StatusCode::OK, Bytes::from(vec![b' '; fetch::MAX_BODY_BYTES + 1])),
        Answer::Hang => std::future::pending().await,
    };
    let mut rsp = Response::builder().status(status).header("content-type", "application/json");
    if let Some(value) = cache_control {
        rsp = rsp.header("cache-control", value);
    }
    Ok(rsp.body(Full::new(body)).unwrap())
}

fn settings() -> JwksSettings {
    JwksSettings { fetch_timeout: Duration::from_secs(2), ..JwksSettings::default() }
}

fn has(source: &JwksSource, kid: &str, alg: Algorithm) -> bool {
    source.keys().candidates(Some(kid), alg).count() == 1
}

/// Bounded poll for a condition another task brings about.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let poll = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), poll).await.unwrap_or_else(|_| panic!("timed out: {what}"));
}

#[tokio::test]
async fn first_load_makes_the_source_ready_with_every_key() {
    let idp = Idp::spawn().await;
    let source = JwksSource::new(&idp.url(), settings()).unwrap();
    assert!(!source.is_ready());
    assert!(source.keys().is_empty(), "keys before any load");
    assert_eq!(idp.hits(), 0, "new() does no I/O");

    let delay = source.refresh().await.unwrap();
    assert!(source.is_ready());
    assert_eq!(source.keys().len(), 2);
    assert!(has(&source, "jwks-rsa", Algorithm::RS256));
    assert!(has(&source, "jwks-ec", Algorithm::ES256));
    assert_eq!(delay, settings().max_refresh, "no Cache-Control: the longest interval");
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn refresh_picks_up_a_rotated_set() {
    let idp = Idp::spawn().await;
    let source = JwksSource::new(&idp.url(), settings()).unwrap();
    source.refresh().await.unwrap();
    idp.serve(Answer::Set(rotated()));

    source.refresh().await.unwrap();
    assert!(has(&source, "rotated-rsa", Algorithm::RS256));
    assert!(!has(&source, "jwks-rsa", Algorithm::RS256), "retired key still trusted");
    assert!(has(&source, "jwks-ec", Algorithm::ES256));
}

#[tokio::test]
async fn max_age_sets_the_next_refresh_within_bounds() {
    let idp = Idp::spawn().await;
    let source = JwksSource::new(&idp.url(), settings()).unwrap();
    let secs = Duration::from_secs;
    let cases = [
        (Some("public, max-age=120"), secs(120)),
        (Some("max-age=\"300\", must-revalidate"), secs(300)),
        (Some("max-age=5"), secs(60)),
        (Some("max-age=999999"), secs(3600)),
        (Some("no-cache"), secs(60)),
        (Some("max-age=600, no-store"), secs(60)),
        (Some("max-age=soon"), secs(3600)),
        (None, secs(3600)),
    ];
    for (header, want) in cases {
        idp.cache_control(header);
        assert_eq!(source.refresh().await.unwrap(), want, "Cache-Control: {header:?}");
    }
}

#[tokio::test]
async fn failed_fetches_keep_the_last_good_keys() {
    let idp = Idp::spawn().await;
    let source = JwksSource::new(&idp.url(), settings()).unwrap();
    source.refresh().await.unwrap();
    let mut dup = String::from_utf8(JWKS.to_vec()).unwrap();
    dup = dup.replace("\"jwks-ec\"", "\"jwks-rsa\"");
    let failures = [
        Answer::Body("<html>SECRET-BODY</html>"),
        Answer::Body(r#"{"keys": "SECRET-BODY"}"#),
        Answer::Body(r#"{"keys": []}"#),
        Answer::Set(Bytes::from(dup)),
        Answer::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Answer::Status(StatusCode::FOUND),
        Answer::Huge,
    ];
    for (i, failure) in failures.into_iter().enumerate() {
        idp.serve(failure);
        let error = Causes(&source.refresh().await.unwrap_err()).to_string();
        assert!(!error.contains("SECRET"), "case {i}: body quoted in error: {error}");
        assert!(source.is_ready(), "case {i}");
        assert!(has(&source, "jwks-rsa", Algorithm::RS256), "case {i}: {error}");
        assert!(has(&source, "jwks-ec", Algorithm::ES256), "case {i}: {error}");
    }

    idp.stop().await;
    let error = Causes(&source.refresh().await.unwrap_err()).to_string();
    assert!(error.contains("request failed"), "{error}");
    assert_eq!(source.keys().len(), 2, "server down dropped the keys");
}

#[tokio::test]
async fn fetch_timeout_bounds_a_hanging_idp() {
    let idp = Idp::spawn().await;
    idp.serve(Answer::Hang);
    let source = JwksSource::new(&idp.url(), JwksSettings { fetch_timeout: Duration::from_millis(200), ..settings() });
    let source = source.unwrap();

    let result = tokio::time::timeout(Duration::from_secs(5), source.refresh()).await.unwrap();
    assert!(Causes(&result.unwrap_err()).to_string().contains("no complete answer"));
    assert!(!source.is_ready());
}

#[tokio::test]
async fn a_thousand_unknown_kids_cause_one_refetch_per_cooldown() {
    let idp = Idp::spawn().await;
    let source = JwksSource::new(&idp.url(), settings()).unwrap();
    let _task = source.spawn();
    wait_until("first load", || source.is_ready()).await;
    assert_eq!(idp.hits(), 1);

    idp.serve(Answer::Set(rotated()));
    for _ in 0..1000 {
        source.unknown_kid(&format!("kid-{}", rand::random::<u64>()));
    }
    wait_until("refetch after unknown kid", || has(&source, "rotated-rsa", Algorithm::RS256)).await;
    for _ in 0..1000 {
        source.unknown_kid(&format!("kid-{}", rand::random::<u64>()));
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(idp.hits(), 2, "one load plus one refetch within the cool-down");
}

#[test]
fn cooldown_lets_one_kick_through_per_period_across_kids() {
    let source = JwksSource::new("http://idp.test/jwks", settings()).unwrap();
    let start = Instant::now();
    assert!(source.allow_kick(start));
    let later = (1..1000).filter(|ms| source.allow_kick(start + Duration::from_millis(*ms))).count();
    assert_eq!(later, 0, "kicks within the cool-down");
    assert!(source.allow_kick(start + settings().unknown_kid_cooldown));
}

#[tokio::test]
async fn background_task_retries_after_a_failure_then_loads() {
    let idp = Idp::spawn().await;
    idp.serve(Answer::Status(StatusCode::SERVICE_UNAVAILABLE));
    let source = JwksSource::new(&idp.url(), JwksSettings { retry: Duration::from_millis(20), ..settings() }).unwrap();
    let _task = source.spawn();
    wait_until("a retry", || idp.hits() >= 2).await;
    assert!(!source.is_ready());

    idp.serve(Answer::Set(Bytes::from_static(JWKS)));
    wait_until("load after retries", || source.is_ready()).await;
}

#[tokio::test]
async fn background_task_stops_when_the_source_is_dropped() {
    let idp = Idp::spawn().await;
    let source = JwksSource::new(&idp.url(), settings()).unwrap();
    let task = source.spawn();
    wait_until("first load", || source.is_ready()).await;

    drop(source);
    let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(matches!(ended, Ok(Ok(()))), "task outlived its source");
}

#[test]
fn new_refuses_what_it_cannot_fetch_safely() {
    for url in ["ftp://idp.test/jwks", "idp.test/jwks", "/jwks", "https://user:pw@idp.test/jwks", "not a url"] {
        assert!(JwksSource::new(url, settings()).is_err(), "{url}");
    }
    let bad = [
        JwksSettings { min_refresh: Duration::from_secs(7200), ..settings() },
        JwksSettings { retry: Duration::ZERO, ..settings() },
        JwksSettings { fetch_timeout: Duration::ZERO, ..settings() },
    ];
    for s in bad {
        assert!(JwksSource::new("https://idp.test/jwks", s.clone()).is_err(), "{s:?}");
    }
    for url in ["https://idp.test/.well-known/jwks.json", "http://127.0.0.1:8080/jwks?tenant=a"] {
        assert!(JwksSource::new(url, settings()).is_ok(), "{url}");
    }
}

#[test]
fn refusals_say_which_rule_was_broken() {
    let refused = |url: &str, s: JwksSettings| JwksSource::new(url, s).err();
    assert!(matches!(refused("ftp://idp.test/jwks", settings()), Some(JwksError::Scheme)));
    assert!(matches!(refused("https://user:pw@idp.test/jwks", settings()), Some(JwksError::Credentials)));
    assert!(matches!(refused("/jwks", settings()), Some(JwksError::Scheme)));
    let unparsable = refused("not a url", settings());
    assert!(matches!(unparsable, Some(JwksError::Url(_))), "{unparsable:?}");
    let chain = unparsable.map(|e| Causes(&e).to_string()).unwrap_or_default();
    assert!(chain.starts_with("JWKS URL: not a URI: "), "the parser's reason follows: {chain}");
    let zero = refused("https://idp.test/jwks", JwksSettings { retry: Duration::ZERO, ..settings() });
    assert_eq!(zero.map(|e| e.to_string()).as_deref(), Some("retry must be more than zero"));
}

#[test]
fn a_ca_file_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ca.pem");
    let err = ExtraRoots::from_pem_file(&missing).err().unwrap();
    assert!(matches!(&err, JwksError::ReadCa { path, .. } if path == &missing), "{err:?}");
    assert!(std::error::Error::source(&err).is_some(), "the io error is the source");
    std::fs::write(&missing, "no certificate here\n").unwrap();
    let err = ExtraRoots::from_pem_file(&missing).err().unwrap();
    assert_eq!(err.to_string(), format!("{}: no PEM certificate in the file", missing.display()));
}

#[tokio::test]
async fn a_failed_fetch_keeps_its_cause_and_every_waiter_gets_it() {
    let idp = Idp::spawn().await;
    let source = JwksSource::new(&idp.url(), settings()).unwrap();
    idp.stop().await;
    let (a, b) = tokio::join!(source.refresh(), source.refresh());
    for err in [a.unwrap_err(), b.unwrap_err()] {
        assert!(matches!(err, FetchError::Send(_)), "{err:?}");
        let chain = Causes(&err).to_string();
        assert!(chain.starts_with("request failed: ") && chain.len() > "request failed: ".len(), "{chain}");
    }
}

/// A discovery document of `issuer` as JSON, with the given `jwks_uri` field.
fn document(issuer: &str, jwks_uri: serde_json::Value) -> Answer {
    Answer::Set(Bytes::from(serde_json::json!({ "issuer": issuer, "jwks_uri": jwks_uri }).to_string()))
}

#[tokio::test]
async fn a_discovery_document_is_refused_for_what_it_gets_wrong() {
    let idp = Idp::spawn().await;
    let issuer = format!("http://{}", idp.addr);
    let (discoverer, host) = discovery::Discoverer::new(&issuer, &settings()).unwrap();
    assert_eq!(host, "127.0.0.1");
    assert_eq!(discoverer.url().to_string(), format!("{issuer}/.well-known/openid-configuration"));
    let refused = |answer: Answer| {
        idp.serve(answer);
        async { discoverer.discover().await.err() }
    };
    for body in ["<html>", r#"{"issuer": 5}"#, r#"{"jwks_uri": "https://idp/jwks"}"#, r#"["issuer"]"#] {
        let err = refused(Answer::Body(body)).await;
        assert!(matches!(err, Some(FetchError::NotADiscoveryDocument)), "{body}: {err:?}");
    }
    let err = refused(document(&issuer, serde_json::Value::Null)).await;
    assert!(matches!(err, Some(FetchError::NoJwksUri)), "{err:?}");
    for (uri, rule) in [
        ("http://idp.example/jwks", UrlRule::NotHttps),
        ("/jwks", UrlRule::NotAUrl),
        ("https://user:pw@idp.example/jwks", UrlRule::Credentials),
    ] {
        let err = refused(document(&issuer, uri.into())).await;
        assert!(
            matches!(&err, Some(FetchError::JwksUri { uri: u, rule: r }) if u == uri && *r == rule),
            "{uri}: {err:?}"
        );
    }
    let err = refused(document(&format!("{issuer}/"), "https://idp.example/jwks".into())).await.unwrap();
    assert_eq!(
        err.to_string(),
        format!("the discovery document names issuer \"{issuer}/\", not the configured \"{issuer}\"")
    );
    assert!(err.is_refused_document());
    let err = refused(Answer::Status(StatusCode::NOT_FOUND)).await.unwrap();
    assert!(matches!(err, FetchError::Status(StatusCode::NOT_FOUND)) && !err.is_refused_document(), "{err:?}");

    let ok = discoverer.discover();
    idp.serve(document(&issuer, "https://keys.idp.example/jwks".into()));
    assert_eq!(ok.await.unwrap().url().to_string(), "https://keys.idp.example/jwks");
}

#[tokio::test]
async fn a_later_refused_document_keeps_the_last_good_jwks_uri() {
    let idp = Idp::spawn().await;
    let issuer = format!("http://{}/", idp.addr);
    // max_refresh zero: the document is due before every JWKS fetch.
    let every_time = JwksSettings { min_refresh: Duration::ZERO, max_refresh: Duration::ZERO, ..settings() };
    let (discoverer, _) = discovery::Discoverer::new(&issuer, &every_time).unwrap();
    idp.serve(document(&issuer, "https://keys.idp.example/v1".into()));
    let first = discoverer.jwks(&every_time, "test").await.unwrap();
    assert_eq!(first.url().to_string(), "https://keys.idp.example/v1");

    idp.serve(document("http://evil.example/", "https://evil.example/jwks".into()));
    let kept = discoverer.jwks(&every_time, "test").await.unwrap();
    assert_eq!(kept.url().to_string(), "https://keys.idp.example/v1", "a refused document replaced the jwks_uri");
    assert_eq!(idp.hits(), 2, "the document was asked again");

    idp.serve(document(&issuer, "https://keys.idp.example/v2".into()));
    assert_eq!(discoverer.jwks(&every_time, "test").await.unwrap().url().to_string(), "https://keys.idp.example/v2");

    // Without a jwks_uri known, the refusal is the answer.
    let (fresh, _) = discovery::Discoverer::new(&issuer, &every_time).unwrap();
    idp.serve(document("http://evil.example/", "https://evil.example/jwks".into()));
    assert!(matches!(fresh.jwks(&every_time, "test").await, Err(FetchError::IssuerMismatch { .. })));
}
