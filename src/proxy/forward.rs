//! Forwarding to the route's upstream over HTTP/1.1 (over TLS to an
//! `https://` upstream, with one client config for both paths): the client
//! connection's own upstream connection when it has one (see
//! [`super::affinity`]), else a pooled keep-alive client. Bodies stream
//! both ways; the response head must arrive within
//! `upstream.timeout` (504), a refused or failed connection is a 502, a
//! request body the client broke aborts the upstream request (400).
//! WebSocket handshakes use the same client (see [`super::upgrade`]).

use super::affinity::{self, Affine, Pinned, RoundTrip, Target};
use super::authenticate::Caller;
use super::pick::{Action, Picked};
use super::protocol::{self, BodyWatch, Inbound};
use super::{backchannel, headers, tunnels, upgrade, Live};
use crate::error::{Body, Cause, ProxyError};
use crate::revocation::Revocations;
use crate::runtime::UpstreamSettings;
use futures_util::future::Either as EitherFuture;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Phase 7, deliver: to the back-channel receiver, or to the route's
/// upstream; a WebSocket handshake with its upgrade pair, spliced on a 101
/// for as long as the handshake's token lives (a token without `exp`,
/// under `require_exp: false`, gets `max_token_lifetime`, as its
/// revocation does; no token, no bound).
pub fn deliver<'a>(
    live: &'a Live,
    revocations: &'a Revocations,
    picked: &Picked<'_>,
    outgoing: Outgoing<'a>,
    caller: &Caller,
    pinned: &'a Pinned,
) -> impl Future<Output = Result<Response<Body>, ProxyError>> + Send + 'a {
    let Outgoing { req, body, websocket } = outgoing;
    // Not an async fn: an ordinary request awaits `send`'s future itself,
    // one nesting level (and one copy of it) fewer. The rare paths are
    // boxed, so that future does not carry their state either.
    let Some(upstream) = live.upstreams.get(picked.route.upstream) else {
        return EitherFuture::Right(Box::pin(std::future::ready(Err(Fault::NotConfigured.into()))) as Rare<'a>);
    };
    if picked.action == Action::ReceiveBackchannel {
        return EitherFuture::Right(Box::pin(backchannel::receive(&live.rt, revocations, req)));
    }
    if !websocket {
        return EitherFuture::Left(upstream.send(req, body, pinned));
    }
    let longest = revocations.policy().max_token_lifetime.as_secs() as i64;
    let exp = caller.claims().map(|c| c.exp_unix.unwrap_or(crate::auth::now_unix().saturating_add(longest)));
    let claims = caller.claims().cloned();
    EitherFuture::Right(Box::pin(async move {
        let registration = tunnels::register(revocations, claims.as_deref()).await?;
        upstream.upgrade(req, body, exp, registration).await
    }))
}

/// An upstream response as the client gets it: hop-by-hop headers gone,
/// and HTTP/1.1 whatever the upstream spoke. hyper's server writes a
/// response in the version it carries: an HTTP/1.0 one would be written
/// as `HTTP/1.0` without chunked framing, so the client's keep-alive
/// connection would be closed after it (hyper downgrades to 1.0 itself
/// for a 1.0 client).
fn relayable(rsp: &mut Response<Incoming>) {
    headers::strip_hop_by_hop(rsp.headers_mut());
    *rsp.version_mut() = Version::HTTP_11;
}

/// The request as the phases prepared it, the watch on its body, and
/// whether it is a WebSocket handshake.
pub struct Outgoing<'a> {
    pub req: Request<Inbound>,
    pub body: &'a BodyWatch,
    pub websocket: bool,
}

/// A boxed response future of a path few requests take.
type Rare<'a> = std::pin::Pin<Box<dyn Future<Output = Result<Response<Body>, ProxyError>> + Send + 'a>>;

/// Why a request got a 502: what the log line says (the client only sees
/// `upstream_unavailable`).
#[derive(Debug, thiserror::Error)]
enum Fault {
    /// A route names an upstream the compiled set lacks (a compiler bug).
    #[error("the route's upstream is not configured")]
    NotConfigured,
    /// Upgrades other than WebSocket are stripped: a 101 here cannot be honoured.
    #[error("upstream switched protocols on a request that did not ask to")]
    UnaskedSwitch,
    #[error("upstream answered 101 without switching to this websocket handshake")]
    WrongSwitch,
    /// Checked by `is_websocket`; gone only if a phase removed it since.
    #[error("the websocket handshake lost its Sec-WebSocket-Key")]
    NoWebSocketKey,
    #[error("cannot build the upstream URI")]
    Uri(#[source] http::Error),
    #[error("upstream request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("cannot open the upstream connection")]
    Connect(#[source] affinity::ConnectError),
    #[error("upstream request failed")]
    Exchange(#[source] hyper::Error),
}

impl From<Fault> for ProxyError {
    fn from(fault: Fault) -> Self {
        ProxyError::UpstreamUnavailable(Cause::new(fault))
    }
}

/// The shared keep-alive pool: plain TCP, or TLS to an `https://` upstream.
enum Pool {
    Plain(Client<HttpConnector, Inbound>),
    Tls(Client<HttpsConnector<HttpConnector>, Inbound>),
}

impl Pool {
    fn request(&self, req: Request<Inbound>) -> ResponseFuture {
        match self {
            Pool::Plain(client) => client.request(req),
            Pool::Tls(client) => client.request(req),
        }
    }
}

pub struct Upstream {
    pool: Pool,
    affine: Arc<Affine>,
    scheme: Scheme,
    authority: Authority,
    /// `Host` for a request that came without one (HTTP/1.0): what the pool
    /// writes from the absolute URI, so both paths send the same.
    host: Option<http::HeaderValue>,
    timeout: Duration,
    websocket_idle_timeout: Duration,
}

impl Upstream {
    pub fn new(settings: &UpstreamSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.connect_timeout));
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle)
            .http1_max_buf_size(protocol::UPSTREAM_READ_BUF_BYTES);
        let pool = match &settings.tls {
            None => Pool::Plain(builder.build(connector)),
            Some(tls) => {
                // It refuses non-http URIs unless told; the TLS connector
                // hands it the https:// ones and does the handshake.
                connector.enforce_http(false);
                // SNI and the name checked come from the URI's host, as
                // `tls.server_name` does (the affine path's).
                Pool::Tls(builder.build(HttpsConnector::from((connector, tls.config.clone()))))
            }
        };
        if settings.tls.as_ref().is_some_and(|tls| tls.insecure_skip_verify) {
            // At every start and reload that keeps it: never silently on.
            tracing::warn!(
                upstream = %settings.name,
                url = %format_args!("https://{}", settings.authority),
                "insecure_skip_verify: this upstream's TLS certificate is NOT verified (anyone on the path can pose \
                 as it); for development only"
            );
        }
        let limits = affinity::Limits {
            max: settings.affinity_max,
            idle_timeout: settings.affinity_idle_timeout,
            parked_timeout: settings.pool_idle_timeout,
            connect_timeout: settings.connect_timeout,
            response_timeout: settings.timeout,
        };
        let target = Target {
            authority: settings.authority.clone(),
            addr: settings.addr.clone(),
            tls: settings.tls.as_ref().map(|tls| (tls.config.clone().into(), tls.server_name.clone())),
        };
        Self {
            pool,
            affine: Affine::new(target, limits),
            scheme: settings.scheme(),
            host: http::HeaderValue::from_str(settings.authority.as_str()).ok(),
            authority: settings.authority.clone(),
            timeout: settings.timeout,
            websocket_idle_timeout: settings.websocket_idle_timeout,
        }
    }

    /// Sends `req` upstream: same method, path and query, same body stream.
    /// The caller has prepared the request headers (hop-by-hop removed,
    /// forwarding headers set); this removes the response's hop-by-hop ones.
    /// HTTP/1 clients go over their own upstream connection (origin-form
    /// URI, the client's Host, the response deadline kept by its driver),
    /// or the pool when it has none or closed before the request was
    /// written; HTTP/2 clients over the pool. The request is prepared here,
    /// before the returned future, so that future holds it once.
    pub fn send<'a>(
        &'a self,
        mut req: Request<Inbound>,
        body: &'a BodyWatch,
        pinned: &'a Pinned,
    ) -> impl Future<Output = Result<Response<Body>, ProxyError>> + Send + 'a {
        let affine = matches!(req.version(), Version::HTTP_11 | Version::HTTP_10);
        *req.version_mut() = Version::HTTP_11;
        if let Some(host) = self.host.as_ref().filter(|_| affine && !req.headers().contains_key(http::header::HOST)) {
            req.headers_mut().insert(http::header::HOST, host.clone());
        }
        async move {
            let answered = match affine {
                true => match pinned.round_trip(&self.affine, req).await.map_err(Fault::Connect)? {
                    RoundTrip::Answered(rsp) => Ok(rsp),
                    RoundTrip::Declined(req) => Err(req),
                    RoundTrip::TimedOut => return Err(ProxyError::UpstreamTimeout(self.timeout)),
                    RoundTrip::Failed(_) if body.failed() => return Err(ProxyError::MalformedBody),
                    RoundTrip::Failed(err) => return Err(Fault::Exchange(err).into()),
                },
                false => Err(req),
            };
            let mut rsp = match answered {
                Ok(rsp) => rsp,
                // Boxed: a pinned connection's requests (nearly all) do not
                // carry the pool's future in theirs.
                Err(req) => Box::pin(self.pooled(req, body)).await?,
            };
            if rsp.status() == StatusCode::SWITCHING_PROTOCOLS {
                return Err(Fault::UnaskedSwitch.into());
            }
            relayable(&mut rsp);
            Ok(rsp.map(Either::Left))
        }
    }

    /// Sends a WebSocket handshake (`Connection: upgrade` / `Upgrade:
    /// websocket` already put back by the caller). On a `101` the client
    /// gets the 101 and a task splices both connections until they close or
    /// `exp` (the handshake token's expiry) passes; any other answer is
    /// relayed like a normal response and the client connection stays HTTP.
    pub async fn upgrade(
        &self,
        mut req: Request<Inbound>,
        body: &BodyWatch,
        exp: Option<i64>,
        registration: Option<tunnels::Registration>,
    ) -> Result<Response<Body>, ProxyError> {
        // Taken before `req` moves into the upstream call: it resolves to
        // the client connection once hyper has written our 101.
        let from_client = hyper::upgrade::on(&mut req);
        let accept = upgrade::key(req.headers()).map(upgrade::accept_for).ok_or(Fault::NoWebSocketKey)?;
        let mut rsp = self.exchange(req, body).await?;
        if rsp.status() != StatusCode::SWITCHING_PROTOCOLS {
            relayable(&mut rsp);
            return Ok(rsp.map(Either::Left));
        }
        if !upgrade::restore_response_headers(rsp.headers_mut(), &accept) {
            return Err(Fault::WrongSwitch.into());
        }
        let from_upstream = hyper::upgrade::on(&mut rsp);
        upgrade::splice(from_client, from_upstream, exp, self.websocket_idle_timeout, registration);
        Ok(rsp.map(Either::Left))
    }

    /// The round trip over the pool: request rewritten for the upstream,
    /// response head within `timeout`.
    async fn exchange(&self, mut req: Request<Inbound>, body: &BodyWatch) -> Result<Response<Incoming>, ProxyError> {
        *req.version_mut() = Version::HTTP_11;
        // Hop-by-hop and forwarding headers were set by the gate's phases.
        self.pooled(req, body).await
    }

    /// Through the pool, response head within `timeout`.
    async fn pooled(&self, mut req: Request<Inbound>, body: &BodyWatch) -> Result<Response<Incoming>, ProxyError> {
        // The pool is keyed by the absolute URI; it writes origin-form.
        let path_and_query = req.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        let parts =
            Uri::builder().scheme(self.scheme.clone()).authority(self.authority.clone()).path_and_query(path_and_query);
        *req.uri_mut() = parts.build().map_err(Fault::Uri)?;
        match tokio::time::timeout(self.timeout, self.pool.request(req)).await {
            Ok(Ok(rsp)) => Ok(rsp),
            Ok(Err(_)) if body.failed() => Err(ProxyError::MalformedBody),
            Ok(Err(err)) => Err(Fault::Request(err).into()),
            Err(_) => Err(ProxyError::UpstreamTimeout(self.timeout)),
        }
    }
}
