//! An identity provider stand-in publishing a JWK Set: hyper on
//! 127.0.0.1:0, counting every fetch, answering what the test says next
//! (a key set, an error status, garbage), optionally slowly. `stop` closes
//! the listener and every open connection. A path can get an answer of its
//! own ([`Idp::route`]): an OIDC discovery document
//! ([`openid_configuration`]) at [`DISCOVERY_PATH`], a moved JWK Set.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// What the IdP answers to the next fetches.
#[derive(Clone, Debug)]
pub enum Answer {
    /// 200 with this JWK Set (JSON text).
    Set(String),
    /// This status, empty body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
}

struct State {
    answer: Answer,
    /// Answers for one path each, before `answer`.
    routes: HashMap<String, Answer>,
    cache_control: Option<String>,
    delay: Duration,
    hits: Vec<Instant>,
    /// The path of each of `hits`.
    paths: Vec<String>,
    answered: usize,
}

/// Where OIDC Discovery 1.0 §4 looks for an issuer without a path.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// An OpenID Provider configuration document naming `issuer` and `jwks_uri`.
pub fn openid_configuration(issuer: &str, jwks_uri: &str) -> String {
    serde_json::json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "authorization_endpoint": format!("{}/authorize", issuer.trim_end_matches('/')),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    })
    .to_string()
}

pub struct Idp {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
    /// Served over TLS with `tests/keys/redis-tls/` (a private test CA).
    tls: bool,
}

/// `tests/keys/jwks.json`: kids `jwks-rsa` (rsa.key.pem) and `jwks-ec` (ec.key.pem).
pub fn jwks() -> String {
    std::fs::read_to_string(super::key_path("jwks.json")).expect("tests/keys/jwks.json")
}

/// The same public keys with the kid `from` renamed to `to` (a rotation).
pub fn renamed(from: &str, to: &str) -> String {
    let set = jwks();
    let quoted = format!("\"{from}\"");
    assert_eq!(set.matches(&quoted).count(), 1, "kid {from} in jwks.json");
    set.replace(&quoted, &format!("\"{to}\""))
}

impl Idp {
    /// Serves [`jwks`] without `Cache-Control`.
    pub async fn spawn() -> Idp {
        Idp::start(None).await
    }

    /// Serves over https with a certificate of the test CA
    /// `tests/keys/redis-tls/ca.pem` (for `127.0.0.1` and `localhost`).
    pub async fn spawn_tls() -> Idp {
        let (cert, key) = (super::key_path("redis-tls/server.pem"), super::key_path("redis-tls/server.key.pem"));
        let config =
            jwtgate::tls::server_config(cert.as_ref(), key.as_ref(), jwtgate::tls::ALPN_HTTP1).expect("idp tls");
        Idp::start(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind idp");
        let addr = listener.local_addr().expect("idp addr");
        let state = Arc::new(Mutex::new(State {
            answer: Answer::Set(jwks()),
            routes: HashMap::new(),
            cache_control: None,
            delay: Duration::ZERO,
            hits: Vec::new(),
            paths: Vec::new(),
            answered: 0,
        }));
        let secure = tls.is_some();
        let task = tokio::spawn(accept(listener, state.clone(), tls));
        Idp { addr, state, task, tls: secure }
    }

    /// The JWKS URL for `jwks_url:`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/jwks.json", self.addr)
    }

    pub fn answer(&self, answer: Answer) {
        self.lock().answer = answer;
    }

    /// Its base URL, `http(s)://127.0.0.1:PORT` (no trailing slash): an
    /// issuer whose discovery document is at [`DISCOVERY_PATH`].
    pub fn issuer(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The URL of `path` on this IdP.
    pub fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// What requests for exactly `path` are answered from now on (other
    /// paths keep getting [`answer`](Self::answer)'s).
    pub fn route(&self, path: &str, answer: Answer) {
        self.lock().routes.insert(path.to_owned(), answer);
    }

    /// Serves the discovery document at [`DISCOVERY_PATH`].
    pub fn discovery(&self, issuer: &str, jwks_uri: &str) {
        self.route(DISCOVERY_PATH, Answer::Set(openid_configuration(issuer, jwks_uri)));
    }

    /// Fetches of `path` received so far.
    pub fn hits_on(&self, path: &str) -> usize {
        self.lock().paths.iter().filter(|p| *p == path).count()
    }

    /// When each fetch of `path` arrived, oldest first.
    pub fn hit_times_on(&self, path: &str) -> Vec<Instant> {
        let state = self.lock();
        state.hits.iter().zip(&state.paths).filter(|(_, p)| *p == path).map(|(t, _)| *t).collect()
    }

    /// The `Cache-Control` header of the next answers (`None`: no header).
    pub fn cache_control(&self, value: Option<&str>) {
        self.lock().cache_control = value.map(str::to_owned);
    }

    /// Holds each answer this long after the request arrives (a slow IdP).
    pub fn delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Fetches received so far.
    pub fn hits(&self) -> usize {
        self.lock().hits.len()
    }

    /// When each fetch arrived, oldest first.
    pub fn hit_times(&self) -> Vec<Instant> {
        self.lock().hits.clone()
    }

    /// Answers fully produced so far (a fetch counts here only once its
    /// delay has passed and the response is handed to the connection).
    pub fn answered(&self) -> usize {
        self.lock().answered
    }

    /// Closes the listener and every open connection: fetches fail to connect.
    pub fn stop(&self) {
        self.task.abort();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("idp state")
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connections live in the JoinSet, so aborting this task closes them too.
async fn accept(listener: tokio::net::TcpListener, state: Arc<Mutex<State>>, tls: Option<tokio_rustls::TlsAcceptor>) {
    let mut conns = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
                // A client that does not trust the CA ends here: no fetch is counted.
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            }
        });
    }
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (answer, cache_control, delay) = {
        let mut s = state.lock().expect("idp state");
        let path = req.uri().path().to_owned();
        s.hits.push(Instant::now());
        let answer = s.routes.get(&path).unwrap_or(&s.answer).clone();
        s.paths.push(path);
        (answer, s.cache_control.clone(), s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await; // the IdP under test is slow, not a sync point
    }
    let (status, body) = match answer {
        Answer::Set(json) => (200, Bytes::from(json)),
        Answer::Status(code) => (code, Bytes::new()),
        Answer::Garbage => (200, Bytes::from_static(b"<html>not a key set</html>")),
    };
    let mut rsp = Response::builder().status(status).header("content-type", "application/json");
    if let Some(cc) = cache_control {
        rsp = rsp.header("cache-control", cc);
    }
    let rsp = rsp.body(Full::new(body)).expect("idp response");
    state.lock().expect("idp state").answered += 1;
    rsp
}
