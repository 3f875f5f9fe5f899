//! The application behind jwtgate: a hyper server on 127.0.0.1:0 that
//! records every request exactly as it arrived on the wire; over HTTPS
//! too ([`Upstream::spawn_tls`]), optionally requiring a client certificate.
//!
//! Behaviour is chosen per path prefix; large bodies are generated and
//! consumed in chunks so neither side of a test holds them in memory.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

pub type BoxedBody = BoxBody<Bytes, Infallible>;

#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with the request body echoed back (the default).
    Echo,
    /// Wait this long before sending the response head.
    Sleep(Duration),
    /// 200 with a body of this many bytes, produced chunk by chunk.
    Stream(u64),
    /// Count the request body without keeping it; answer `{"received": n}`.
    Consume,
    /// Record the request, then hold the response until the test calls
    /// `notify_one` (or `notify_waiters`) on this.
    Hold(Arc<tokio::sync::Notify>),
    /// A WebSocket handshake gets `101` (with the key's
    /// `Sec-WebSocket-Accept`), then every byte is echoed back until the
    /// gate closes the connection (no framing: past the 101 it is an opaque
    /// stream). Anything else: 426.
    WebSocketEcho,
    /// Like `WebSocketEcho`, but the 101 carries an accept value that does
    /// not belong to the key: an app that did not really switch.
    WebSocketWrongAccept,
    /// Answer with this status and a short text body, whatever was asked
    /// (an app refusing an upgrade).
    Status(u16),
    /// 200 with `Connection: close`: the app ends the keep-alive connection.
    Close,
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// `path?query` exactly as on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The body, except under `Behaviour::Consume` (then empty); under
    /// `Echo`, what arrived before `body_error`.
    pub body: Bytes,
    pub body_len: u64,
    /// Under `Echo`: why the body did not arrive complete (the gate
    /// aborted the request, or the connection closed before its end).
    pub body_error: Option<String>,
    /// Which of the upstream's connections it came on (1 for the first
    /// connection accepted, and so on).
    pub conn: usize,
    /// What the connection's TLS handshake settled (`None`: plain HTTP).
    pub tls: Option<TlsSeen>,
}

/// How [`Upstream::spawn_tls`] serves HTTPS: `tests/keys/redis-tls/server.pem`
/// (for `localhost` and `127.0.0.1`, signed by that directory's `ca.pem`),
/// offering ALPN `h2` and `http/1.1`.
#[derive(Clone, Debug)]
pub struct TlsOptions {
    /// Where to listen: another loopback address than 127.0.0.1 is one the
    /// certificate is not valid for.
    pub ip: IpAddr,
    /// A CA file (under tests/keys/) client certificates must chain to:
    /// a handshake without one fails.
    pub client_ca: Option<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), client_ca: None }
    }
}

/// A connection's TLS handshake, as the upstream saw it.
#[derive(Clone, Debug)]
pub struct TlsSeen {
    /// The ALPN protocol agreed on.
    pub alpn: Option<Vec<u8>>,
    /// The client's certificate (DER), under mutual TLS.
    pub client_cert: Option<Vec<u8>>,
    /// The server name the client sent (SNI; none for an IP address).
    pub sni: Option<String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[derive(Default)]
struct State {
    seen: Mutex<Vec<Seen>>,
    rules: Mutex<Vec<(String, Behaviour)>>,
    /// `WebSocketEcho` tunnels whose gate side reached EOF or failed.
    tunnels_closed: std::sync::atomic::AtomicUsize,
    /// Every byte each ended `WebSocketEcho` tunnel received, in order.
    tunnel_bytes: Mutex<Vec<Vec<u8>>>,
    /// Request heads received, including those still reading their body.
    heads: std::sync::atomic::AtomicUsize,
    /// Connections accepted so far.
    accepted: std::sync::atomic::AtomicUsize,
    /// Connections open now (watched: tests wait for it to change).
    open: tokio::sync::watch::Sender<usize>,
    /// TLS handshakes that failed, and the last one's error.
    tls_failed: Mutex<Vec<String>>,
}

pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
    scheme: &'static str,
}

impl Upstream {
    pub async fn spawn() -> Upstream {
        Upstream::start(IpAddr::V4(Ipv4Addr::LOCALHOST), None).await
    }

    /// Serves HTTPS as `options` says.
    pub async fn spawn_tls(options: TlsOptions) -> Upstream {
        let cert = super::key_path("redis-tls/server.pem");
        let key = super::key_path("redis-tls/server.key.pem");
        let mut config = match &options.client_ca {
            None => (*jwtgate::tls::server_config(cert.as_ref(), key.as_ref(), &[]).expect("upstream tls")).clone(),
            Some(ca) => {
                use rustls::pki_types::pem::PemObject;
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut roots = rustls::RootCertStore::empty();
                for der in rustls::pki_types::CertificateDer::pem_file_iter(super::key_path(ca)).expect("client CA") {
                    roots.add(der.expect("client CA PEM")).expect("client CA certificate");
                }
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .expect("client verifier");
                let chain = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
                    .expect("server cert")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("server cert PEM");
                let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).expect("server key");
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("tls versions")
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain, key)
                    .expect("server config")
            }
        };
        // Both offered: the upstream sees which one jwtgate asked for.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Upstream::start(options.ip, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start(ip: IpAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0)).await.expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let state = Arc::new(State::default());
        let st = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let st = st.clone();
                let conn = st.accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                st.open.send_modify(|n| *n += 1);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let on_close = st.clone();
                    match tls {
                        None => serve(st, TokioIo::new(stream), conn, None).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => {
                                let (_, session) = stream.get_ref();
                                let seen = TlsSeen {
                                    alpn: session.alpn_protocol().map(<[u8]>::to_vec),
                                    client_cert: session
                                        .peer_certificates()
                                        .and_then(|c| c.first())
                                        .map(|c| c.to_vec()),
                                    sni: session.server_name().map(str::to_owned),
                                };
                                serve(st, TokioIo::new(stream), conn, Some(seen)).await
                            }
                            Err(err) => st.tls_failed.lock().expect("tls lock").push(err.to_string()),
                        },
                    }
                    on_close.open.send_modify(|n| *n -= 1);
                });
            }
        });
        Upstream { addr, state, accept, scheme }
    }

    /// `http://` or, for [`Upstream::spawn_tls`], `https://` and the address.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The errors of the TLS handshakes that failed, oldest first.
    pub fn tls_failures(&self) -> Vec<String> {
        self.state.tls_failed.lock().expect("tls lock").clone()
    }

    /// Requests whose path starts with `prefix` get `behaviour`.
    pub fn on(&self, prefix: &str, behaviour: Behaviour) {
        let mut rules = self.state.rules.lock().expect("rules lock");
        rules.push((prefix.to_owned(), behaviour));
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock").clone()
    }

    /// Requests whose path (query excluded) is exactly `path`.
    pub fn seen(&self, path: &str) -> usize {
        self.requests().iter().filter(|s| s.target.split('?').next() == Some(path)).count()
    }

    pub fn total(&self) -> usize {
        self.requests().len()
    }

    /// Request heads received so far, also those whose body is still
    /// arriving (`total` counts a request once its body has ended).
    pub fn heads(&self) -> usize {
        self.state.heads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.state.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn connections_open(&self) -> usize {
        *self.state.open.borrow()
    }

    /// Waits (at most `limit`) until at most `n` connections are open;
    /// returns how many are.
    pub async fn until_open_at_most(&self, n: usize, limit: Duration) -> usize {
        let mut open = self.state.open.subscribe();
        let _ = tokio::time::timeout(limit, open.wait_for(|&now| now <= n)).await;
        self.connections_open()
    }

    /// `WebSocketEcho` tunnels that have ended (the gate closed its side).
    pub fn tunnels_closed(&self) -> usize {
        self.state.tunnels_closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// What each ended `WebSocketEcho` tunnel received from the gate.
    pub fn tunnel_bytes(&self) -> Vec<Vec<u8>> {
        self.state.tunnel_bytes.lock().expect("tunnel bytes lock").clone()
    }

    /// The only request received for `path`; panics unless exactly one.
    pub fn one(&self, path: &str) -> Seen {
        let all: Vec<Seen> = self.requests().into_iter().filter(|s| s.target.split('?').next() == Some(path)).collect();
        assert_eq!(all.len(), 1, "requests for {path}: {all:#?}");
        all.into_iter().next().expect("one request")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves one accepted connection (HTTP/1.1 with upgrades, or h2).
async fn serve<IO>(st: Arc<State>, io: IO, conn: usize, tls: Option<TlsSeen>)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let (st, tls) = (st.clone(), tls.clone());
        async move { Ok::<_, Infallible>(handle(&st, req, conn, tls).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Far above the gate's 100, so the tests see what the gate forwards
    // (X-Forwarded-* added to 100 fields, split HTTP/2 cookies).
    builder.http1().max_headers(500);
    let _ = builder.serve_connection_with_upgrades(io, svc).await;
}

async fn handle(st: &Arc<State>, mut req: Request<Incoming>, conn: usize, tls: Option<TlsSeen>) -> Response<BoxedBody> {
    st.heads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let target = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let behaviour = {
        let rules = st.rules.lock().expect("rules lock");
        let path = target.split('?').next().unwrap_or_default();
        rules.iter().find(|(p, _)| path.starts_with(p.as_str())).map(|(_, b)| b.clone()).unwrap_or(Behaviour::Echo)
    };
    let mut seen = Seen {
        method: req.method().to_string(),
        target,
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: Bytes::new(),
        body_len: 0,
        body_error: None,
        conn,
        tls,
    };
    // Empty unless the request asked for an upgrade (hyper puts it there).
    let on_upgrade = hyper::upgrade::on(&mut req);
    let body = req.into_body();
    let honest_accept = matches!(behaviour, Behaviour::WebSocketEcho);
    match behaviour {
        Behaviour::Echo => {
            let (bytes, error) = read_body(body).await;
            seen.body_len = bytes.len() as u64;
            seen.body = bytes.clone();
            seen.body_error = error;
            record(st, seen);
            reply(200, Full::new(bytes).boxed())
        }
        Behaviour::Sleep(d) => {
            record(st, seen);
            tokio::time::sleep(d).await;
            reply(200, Full::new(Bytes::from_static(b"slow")).boxed())
        }
        Behaviour::Hold(release) => {
            let notified = release.notified();
            record(st, seen);
            notified.await;
            reply(200, Full::new(Bytes::from_static(b"released")).boxed())
        }
        Behaviour::Stream(n) => {
            record(st, seen);
            reply(200, Chunks::new(n).boxed())
        }
        Behaviour::Consume => {
            let n = count_body(body).await;
            seen.body_len = n;
            record(st, seen);
            let json = format!(r#"{{"received":{n}}}"#);
            reply(200, Full::new(Bytes::from(json)).boxed())
        }
        Behaviour::Close => {
            record(st, seen);
            let mut rsp = reply(200, Full::new(Bytes::from_static(b"closing")).boxed());
            rsp.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
            rsp
        }
        Behaviour::Status(status) => {
            record(st, seen);
            reply(status, Full::new(Bytes::from_static(b"not switching")).boxed())
        }
        Behaviour::WebSocketEcho | Behaviour::WebSocketWrongAccept => {
            let asked = seen.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            let accept = match (honest_accept, seen.header("sec-websocket-key")) {
                (true, Some(key)) => websocket_accept(key),
                _ => "bm90IHRoZSBhY2NlcHQgb2YgdGhhdCBrZXk=".to_owned(),
            };
            record(st, seen);
            if !asked {
                return reply(426, Full::new(Bytes::from_static(b"websocket only")).boxed());
            }
            let st = st.clone();
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
                    let received = echo_recording(&mut rd, &mut wr).await;
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
                    st.tunnel_bytes.lock().expect("tunnel bytes lock").push(received);
                }
                st.tunnels_closed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
            Response::builder()
                .status(101)
                .header("upgrade", "websocket")
                .header("connection", "Upgrade")
                .header("sec-websocket-accept", accept)
                .header("x-upstream", "yes")
                .body(http_body_util::Empty::new().boxed())
                .expect("101 response")
        }
    }
}

/// Echoes `rd` into `wr` until EOF or an error; what was read.
async fn echo_recording(
    rd: &mut (impl tokio::io::AsyncRead + Unpin),
    wr: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut received, mut buf) = (Vec::new(), vec![0u8; 8192]);
    while let Ok(n @ 1..) = rd.read(&mut buf).await {
        received.extend_from_slice(&buf[..n]);
        if wr.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    received
}

/// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
pub fn websocket_accept(key: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let digest = sha1::Sha1::new().chain_update(key).chain_update("258EAFA5-E914-47DA-95CA-C5AB0DC85B11").finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn record(st: &State, seen: Seen) {
    st.seen.lock().expect("seen lock").push(seen);
}

fn reply(status: u16, body: BoxedBody) -> Response<BoxedBody> {
    Response::builder().status(status).header("x-upstream", "yes").body(body).expect("response")
}

/// The body's bytes until it ended or failed, and the failure.
async fn read_body(mut body: Incoming) -> (Bytes, Option<String>) {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..])),
            Err(err) => return (Bytes::from(bytes), Some(format!("{err:?}"))),
        }
    }
    (Bytes::from(bytes), None)
}

/// Reads a body frame by frame, keeping only the byte count.
pub async fn count_body<B>(mut body: B) -> u64
where
    B: Body + Unpin,
    B::Data: bytes::Buf,
{
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            n += bytes::Buf::remaining(data) as u64;
        }
    }
    n
}

/// A body of `remaining` bytes sent as 64 KiB slices of one shared buffer.
pub struct Chunks {
    remaining: u64,
    chunk: Bytes,
}

impl Chunks {
    pub fn new(len: u64) -> Chunks {
        Chunks { remaining: len, chunk: Bytes::from(vec![b'x'; 64 * 1024]) }
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= n;
        let data = self.chunk.slice(..n as usize);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
