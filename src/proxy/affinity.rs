//! Upstream affinity: an HTTP/1.1 client connection gets an upstream
//! connection of its own, driven in the client connection's task. A
//! request then goes straight to that connection's dispatcher: no pool
//! checkout under a lock, no absolute URI to rebuild, no hand-off to a
//! connection task on another queue (bench/results/issue12-*.md has the
//! figures).
//!
//! Bounded, so a legacy app with a thread per connection does not get one
//! per idle client:
//! - at most `affinity_max` upstream connections per upstream are pinned
//!   or parked (a semaphore); past that, requests use the shared pool;
//! - a client connection is pinned from its second request (one-shot
//!   clients stay on the pool);
//! - a pinned connection unused for `affinity_idle_timeout`, or whose
//!   client connection closed, is parked: driven by a task of its own and
//!   kept for the next client connection that needs one (which takes its
//!   future back into its own task), for up to `pool_idle_timeout`.
//!
//! WebSocket handshakes and HTTP/2 clients (concurrent requests on one
//! connection) use the pool.
//!
//! To an `https://` upstream these connections speak TLS with the pool's
//! client config (same roots, client certificate and name check).

use super::protocol::Inbound;
use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_rustls::TlsConnector;

/// Plain or TLS, as the pool's connections are.
type Io = MaybeHttpsStream<TokioIo<TcpStream>>;
type Conn = Connection<Io, Inbound>;

/// Where an upstream's affine connections go.
pub struct Target {
    /// As in the URL, for messages.
    pub authority: Authority,
    /// `host:port` to connect to.
    pub addr: String,
    /// For an `https://` upstream: the TLS client and the name the
    /// upstream's certificate must be valid for (and SNI, if a DNS name).
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// How an upstream's affine connections are made and bounded.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max: usize,
    pub idle_timeout: Duration,
    pub parked_timeout: Duration,
    pub connect_timeout: Duration,
    /// `upstream.timeout`: the response head is due this long after the
    /// request was handed to the connection.
    pub response_timeout: Duration,
}

/// One upstream's affine connections: the cap, and the parked ones.
pub struct Affine {
    target: Target,
    limits: Limits,
    permits: Arc<Semaphore>,
    parked: Mutex<Vec<Parked>>,
    sweeping: AtomicBool,
}

/// An idle upstream connection between two client connections; its
/// connection future runs in a task of its own meanwhile ([`keep_parked`]).
struct Parked {
    sender: SendRequest<Inbound>,
    permit: OwnedSemaphorePermit,
    since: Instant,
    give_back: oneshot::Sender<()>,
    returned: oneshot::Receiver<Pin<Box<Conn>>>,
}

/// Why no affine connection could be opened (the request gets a 502).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {0}")]
    Connect(Authority, #[source] std::io::Error),
    #[error("no connection to {0} within {1:?}")]
    Timeout(Authority, Duration),
    /// The error says why: an unknown CA, a name the certificate is not
    /// valid for, a client certificate the upstream refused.
    #[error("TLS handshake with {0} failed")]
    Tls(Authority, #[source] std::io::Error),
    #[error("HTTP/1.1 handshake with the upstream failed")]
    Handshake(#[source] hyper::Error),
}

impl Affine {
    pub fn new(target: Target, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            target,
            permits: Arc::new(Semaphore::new(limits.max)),
            limits,
            parked: Mutex::new(Vec::new()),
            sweeping: AtomicBool::new(false),
        })
    }

    fn lock_parked(&self) -> MutexGuard<'_, Vec<Parked>> {
        // A poisoned list only ever lost a push or a pop: still consistent.
        self.parked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A parked connection still open and fresh, newest first, with its
    /// connection future handed back by its parking task.
    async fn unpark(&self) -> Option<(SendRequest<Inbound>, OwnedSemaphorePermit, Pin<Box<Conn>>)> {
        loop {
            let p = {
                let mut parked = self.lock_parked();
                let fresh = |p: &Parked| {
                    !p.sender.is_closed() && p.sender.is_ready() && p.since.elapsed() < self.limits.parked_timeout
                };
                loop {
                    match parked.pop() {
                        Some(p) if fresh(&p) => break p,
                        Some(_) => continue,
                        None => return None,
                    }
                }
            };
            if p.give_back.send(()).is_err() {
                continue;
            }
            // Gone only if the upstream closed it meanwhile: try the next.
            if let Ok(conn) = p.returned.await {
                return Some((p.sender, p.permit, conn));
            }
        }
    }

    /// Keeps an idle connection for the next client connection: its future
    /// is driven by a task of its own meanwhile (so a close by the upstream
    /// is noticed), which hands it back on request. A busy or closed one is
    /// dropped (which closes it).
    fn park(self: &Arc<Self>, sender: SendRequest<Inbound>, permit: OwnedSemaphorePermit, conn: Pin<Box<Conn>>) {
        if sender.is_closed() || !sender.is_ready() {
            return;
        }
        let (give_back, asked) = oneshot::channel();
        let (hand_back, returned) = oneshot::channel();
        tokio::spawn(keep_parked(conn, asked, hand_back));
        self.lock_parked().push(Parked { sender, permit, since: Instant::now(), give_back, returned });
        if !self.sweeping.swap(true, Ordering::AcqRel) {
            tokio::spawn(sweep(Arc::downgrade(self)));
        }
    }

    async fn connect(&self) -> Result<(SendRequest<Inbound>, Conn), ConnectError> {
        let timeout = self.limits.connect_timeout;
        let io = match tokio::time::timeout(timeout, self.open()).await {
            Ok(io) => io?,
            Err(_) => return Err(ConnectError::Timeout(self.target.authority.clone(), timeout)),
        };
        http1::Builder::new()
            .max_buf_size(super::protocol::UPSTREAM_READ_BUF_BYTES)
            .handshake(io)
            .await
            .map_err(ConnectError::Handshake)
    }

    /// The TCP connection, and the TLS handshake over it for an https
    /// upstream (both within `connect_timeout`).
    async fn open(&self) -> Result<Io, ConnectError> {
        let authority = || self.target.authority.clone();
        let stream = TcpStream::connect(&self.target.addr).await.map_err(|e| ConnectError::Connect(authority(), e))?;
        let _ = stream.set_nodelay(true);
        let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
        let Some((connector, name)) = &self.target.tls else { return Ok(MaybeHttpsStream::Http(TokioIo::new(stream))) };
        // As the pool's connector wraps it: hyper's IO around tokio's.
        let tls = connector
            .connect(name.clone(), TokioIo::new(TokioIo::new(stream)))
            .await
            .map_err(|e| ConnectError::Tls(authority(), e))?;
        Ok(MaybeHttpsStream::Https(TokioIo::new(tls)))
    }
}

/// A parked connection's task: drives it until it is asked back (then
/// hands it over) or the upstream closes it; ends when its [`Parked`] is
/// dropped (swept), closing it.
async fn keep_parked(
    mut conn: Pin<Box<Conn>>,
    mut asked: oneshot::Receiver<()>,
    hand_back: oneshot::Sender<Pin<Box<Conn>>>,
) {
    let asked_back = std::future::poll_fn(|cx| {
        if let Poll::Ready(asked) = Pin::new(&mut asked).poll(cx) {
            return Poll::Ready(asked.is_ok());
        }
        conn.as_mut().poll(cx).map(|_| false)
    })
    .await;
    if asked_back {
        let _ = hand_back.send(conn);
    }
}

/// Drops parked connections older than `parked_timeout`, until none is left
/// (a later `park` starts another sweep).
async fn sweep(affine: std::sync::Weak<Affine>) {
    loop {
        let Some(period) = affine.upgrade().map(|a| a.limits.parked_timeout) else { return };
        tokio::time::sleep(period / 2).await;
        let Some(affine) = affine.upgrade() else { return };
        let mut parked = affine.lock_parked();
        parked.retain(|p| !p.sender.is_closed() && p.since.elapsed() < affine.limits.parked_timeout);
        if parked.is_empty() {
            affine.sweeping.store(false, Ordering::Release);
            return;
        }
    }
}

/// A client connection's affine upstream connection, shared between its
/// requests and its [`Driver`] (all in the client connection's task).
#[derive(Clone, Default)]
pub struct Pinned(Arc<Mutex<Slot>>);

#[derive(Default)]
struct Slot {
    held: Option<Held>,
    /// The held connection's future, driven here (`None` once it ended).
    driving: Option<Pin<Box<Conn>>>,
    waker: Option<Waker>,
    /// A request used the held connection since the driver last looked.
    used: bool,
    /// Requests seen on this client connection.
    requests: u32,
    /// When the response head of the request in flight is due.
    awaiting: Option<Instant>,
    /// The request in flight missed `awaiting`: its round trip ends in 504.
    timed_out: bool,
    /// The driver's one timer, for the next idle check or response deadline:
    /// one timer per connection instead of a timeout per request.
    timer: Option<Pin<Box<Sleep>>>,
}

struct Held {
    affine: Arc<Affine>,
    sender: SendRequest<Inbound>,
    permit: OwnedSemaphorePermit,
}

/// How a request offered to the client connection's own upstream
/// connection fared.
#[allow(clippy::large_enum_variant)] // moved once per request; boxing would allocate
pub enum RoundTrip {
    Answered(Response<Incoming>),
    /// Not taken (first request, cap reached, connection busy), or the
    /// connection closed before the request was written: use the pool.
    Declined(Request<Inbound>),
    /// No response head within the upstream's timeout; the connection is
    /// closed.
    TimedOut,
    Failed(hyper::Error),
}

impl Pinned {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `req` over this client connection's upstream connection to
    /// `affine`'s upstream (opening or unparking one when allowed) and
    /// waits for the response head.
    pub async fn round_trip(&self, affine: &Arc<Affine>, req: Request<Inbound>) -> Result<RoundTrip, ConnectError> {
        let ready = {
            let mut slot = self.lock();
            slot.requests = slot.requests.saturating_add(1);
            if slot.requests < 2 {
                return Ok(RoundTrip::Declined(req));
            }
            slot.ready_for(affine)
        };
        // Boxed: connecting is once per connection, and its future (TCP
        // connect, handshake) would otherwise be in every request's.
        if !ready && !Box::pin(self.acquire(affine)).await? {
            return Ok(RoundTrip::Declined(req));
        }
        let response = {
            let mut slot = self.lock();
            let Some(held) = slot.held.as_mut() else { return Ok(RoundTrip::Declined(req)) };
            let response = held.sender.try_send_request(req);
            let due = Instant::now() + held.affine.limits.response_timeout;
            slot.sent(due);
            response
        };
        let mut response = std::pin::pin!(response);
        let answered = std::future::poll_fn(|cx| match response.as_mut().poll(cx) {
            Poll::Ready(answered) => Poll::Ready(Some(answered)),
            Poll::Pending if self.lock().timed_out => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        {
            let mut slot = self.lock();
            slot.awaiting = None;
            slot.timed_out = false;
        }
        Ok(match answered {
            Some(Ok(rsp)) => RoundTrip::Answered(rsp),
            Some(Err(mut unsent)) => match unsent.take_message() {
                Some(req) => RoundTrip::Declined(req),
                None => RoundTrip::Failed(unsent.into_error()),
            },
            // Dropping the response future closes the connection (hyper
            // cannot abort one HTTP/1.1 request and keep it).
            None => RoundTrip::TimedOut,
        })
    }

    /// Pins a parked or new connection to `affine`; false when the cap is
    /// reached.
    async fn acquire(&self, affine: &Arc<Affine>) -> Result<bool, ConnectError> {
        if let Some((sender, permit, conn)) = affine.unpark().await {
            self.lock().pin(Held { affine: affine.clone(), sender, permit }, conn);
            return Ok(true);
        }
        let Ok(permit) = affine.permits.clone().try_acquire_owned() else { return Ok(false) };
        let (sender, conn) = affine.connect().await?;
        self.lock().pin(Held { affine: affine.clone(), sender, permit }, Box::pin(conn));
        Ok(true)
    }

    /// Parks the held connection (the client connection has ended).
    pub fn release(&self) {
        self.lock().park();
    }
}

impl Slot {
    /// True when the held connection goes to `affine` and is idle. One
    /// held for another upstream (a route's, or the one before a reload)
    /// is parked when idle, so the caller may pin a new one; a closed one
    /// is dropped. Asked without waiting: a busy connection (a response
    /// body the client never read to its end) sends this request to the
    /// pool.
    fn ready_for(&mut self, affine: &Arc<Affine>) -> bool {
        let Some(held) = self.held.as_mut() else { return false };
        let mut cx = Context::from_waker(Waker::noop());
        match held.sender.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) if Arc::ptr_eq(&held.affine, affine) => true,
            Poll::Ready(Ok(())) => {
                self.park();
                false
            }
            Poll::Ready(Err(_)) => {
                self.held = None;
                self.driving = None;
                false
            }
            Poll::Pending => false,
        }
    }

    fn pin(&mut self, held: Held, conn: Pin<Box<Conn>>) {
        self.park();
        self.held = Some(held);
        self.driving = Some(conn);
        self.used = true;
        self.wake_driver();
    }

    /// A request is on its way; its response head is due at `due`.
    fn sent(&mut self, due: Instant) {
        self.used = true;
        self.awaiting = Some(due);
        // Usually the timer already fires before `due` (the idle check is
        // sooner than any sane upstream timeout); if not, bring it forward.
        if let Some(timer) = self.timer.as_mut() {
            if timer.deadline() > due.into() {
                timer.as_mut().reset(due.into());
                self.wake_driver();
            }
        }
    }

    fn wake_driver(&self) {
        if let Some(waker) = &self.waker {
            waker.wake_by_ref();
        }
    }

    /// Parks the held connection; one whose future has ended is closed
    /// and simply dropped.
    fn park(&mut self) {
        self.timer = None;
        if let (Some(held), Some(conn)) = (self.held.take(), self.driving.take()) {
            held.affine.park(held.sender, held.permit, conn);
        }
    }

    /// The timer's work: a request whose response head is overdue is told
    /// so (it closes the connection); a connection idle (no request since
    /// the last look, and no response still streaming) is parked.
    fn on_timer(&mut self, cx: &mut Context<'_>) {
        let Some(held) = self.held.as_ref() else {
            self.timer = None;
            return;
        };
        let idle_timeout = held.affine.limits.idle_timeout;
        let timer = match self.timer.as_mut() {
            Some(timer) if !timer.is_elapsed() => return,
            Some(timer) => timer,
            None => {
                // Polled once to register this task's waker; from then on
                // it is polled only once elapsed (the driver is polled on
                // every wake of its task, and polling a timer is not free).
                let next =
                    self.awaiting.map_or(Instant::now() + idle_timeout, |due| due.min(Instant::now() + idle_timeout));
                let timer = self.timer.insert(Box::pin(tokio::time::sleep_until(next.into())));
                let _ = timer.as_mut().poll(cx);
                return;
            }
        };
        let now = Instant::now();
        match self.awaiting {
            Some(due) if now >= due => {
                self.awaiting = None;
                self.timed_out = true;
                // The request's future looks at `timed_out` when next polled.
                cx.waker().wake_by_ref();
            }
            Some(_) => {}
            None if !std::mem::take(&mut self.used) && held.sender.is_ready() => {
                self.park();
                return;
            }
            None => {}
        }
        let next = self.awaiting.map_or(now + idle_timeout, |due| due.min(now + idle_timeout));
        timer.as_mut().reset(next.into());
        let _ = timer.as_mut().poll(cx);
    }
}

/// Drives a client connection's pinned upstream connection, polled with
/// the client connection itself: the connection's I/O, the response
/// deadline of the request in flight, and the hand-back after
/// `affinity_idle_timeout` without a request. Never completes.
pub struct Driver {
    pinned: Pinned,
}

impl Driver {
    pub fn new(pinned: Pinned) -> Self {
        Self { pinned }
    }
}

impl Future for Driver {
    type Output = std::convert::Infallible;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.pinned.lock();
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        if let Some(conn) = slot.driving.as_mut() {
            if conn.as_mut().poll(cx).is_ready() {
                // Closed by the upstream, failed, or given up on: its
                // permit goes back (a request in flight got its error).
                slot.driving = None;
                slot.held = None;
            }
        }
        slot.on_timer(cx);
        Poll::Pending
    }
}
