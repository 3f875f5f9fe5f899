//! An identity provider stand-in publishing a JWK Set: hyper on
//! 127.0.0.1:0, counting every fetch, answering what the test says next
//! (a key set, an error status, garbage), optionally slowly. `stop` closes
//! the listener and every open connection.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
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
    cache_control: Option<String>,
    delay: Duration,
    hits: Vec<Instant>,
    answered: usize,
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
            cache_control: None,
            delay: Duration::ZERO,
            hits: Vec::new(),
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

async fn handle(state: &Mutex<State>, _req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (answer, cache_control, delay) = {
        let mut s = state.lock().expect("idp state");
        s.hits.push(Instant::now());
        (s.answer.clone(), s.cache_control.clone(), s.delay)
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
