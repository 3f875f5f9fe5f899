//! A TCP relay in front of redis-server that can make the pub/sub
//! subscriptions passing through it go silent as a dropped NAT or conntrack
//! entry does: both sockets stay open, nothing gets through in either
//! direction, and neither end is told (no FIN, no RST).
//!
//! Only subscription flows go silent (a flow is one once its client sent
//! `SUBSCRIBE`), and only those alive when [`Relay::silence_subscriptions`]
//! is called: the command connection of the same jwtgate, which never
//! subscribes, keeps working, and so does a subscription opened later (a new
//! connection gets a new entry). So only the push channel is lost, as when
//! the idle pub/sub connection's entry expires while the busy command
//! connection's does not.
//!
//! It can also hold back what a flow sends once it has sent `PUBLISH` (the
//! announcement connection: [`Relay::announcements`]), delaying it or
//! dropping it, so that an announcement is slow or lost outside jwtgate;
//! and cut every flow and refuse new ones ([`Relay::sever`]) until
//! [`Relay::restore`], as a replica cut off from Redis.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// The command name as a RESP bulk string (redis-rs sends it upper-case;
/// matched in any case). No key or value can be exactly this string: every
/// key jwtgate writes carries its prefix.
const SUBSCRIBE: &[u8] = b"\r\nSUBSCRIBE\r\n";
const PUBLISH: &[u8] = b"\r\nPUBLISH\r\n";

/// What becomes of the bytes a flow sends once it has sent `PUBLISH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcements {
    Pass,
    /// Passed on this much later, in order.
    Delay(Duration),
    /// Read and dropped: Redis never sees them, jwtgate gets no answer.
    Drop,
}

/// The relay's rules, shared by its flows.
struct Rules {
    announcements: Mutex<Announcements>,
    /// Chunks carrying `PUBLISH` delayed or dropped so far.
    held: AtomicUsize,
    severed: AtomicBool,
}

#[derive(Default)]
struct Flow {
    subscription: AtomicBool,
    publisher: AtomicBool,
    silenced: AtomicBool,
    closed: AtomicBool,
    /// Its two pumps, aborted (both sockets closed) by [`Relay::sever`].
    pumps: Mutex<Vec<AbortHandle>>,
}

impl Flow {
    fn live_subscription(&self) -> bool {
        self.subscription.load(SeqCst) && !self.silenced.load(SeqCst) && !self.closed.load(SeqCst)
    }
}

type Flows = Arc<Mutex<Vec<Arc<Flow>>>>;

pub struct Relay {
    addr: SocketAddr,
    flows: Flows,
    rules: Arc<Rules>,
    /// Owns every flow's tasks: aborting it closes all sockets.
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free loopback port; each connection is relayed to `to`.
    pub async fn spawn(to: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let flows = Flows::default();
        let rules = Arc::new(Rules {
            announcements: Mutex::new(Announcements::Pass),
            held: AtomicUsize::new(0),
            severed: AtomicBool::new(false),
        });
        let accept = tokio::spawn(accept_loop(listener, to, flows.clone(), rules.clone()));
        Relay { addr, flows, rules, accept }
    }

    /// From now on, what announcement flows send is passed, delayed or dropped.
    pub fn announcements(&self, rule: Announcements) {
        *self.rules.announcements.lock().expect("relay rules") = rule;
    }

    /// Chunks carrying `PUBLISH` delayed or dropped so far.
    pub fn held_announcements(&self) -> usize {
        self.rules.held.load(SeqCst)
    }

    /// Closes every flow (FIN to both ends) and refuses new ones.
    pub fn sever(&self) {
        self.rules.severed.store(true, SeqCst);
        for flow in self.flows.lock().expect("relay flows").iter() {
            flow.closed.store(true, SeqCst);
            flow.pumps.lock().expect("relay pumps").iter().for_each(AbortHandle::abort);
        }
    }

    /// Accepts new flows again after [`Relay::sever`].
    pub fn restore(&self) {
        self.rules.severed.store(false, SeqCst);
    }

    /// The Redis URL that reaches `to` through this relay.
    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    /// Silences every subscription flow alive now; returns how many.
    pub fn silence_subscriptions(&self) -> usize {
        let flows = self.flows.lock().expect("relay flows");
        flows.iter().filter(|f| f.live_subscription()).map(|f| f.silenced.store(true, SeqCst)).count()
    }

    /// Subscription flows alive and not silenced.
    pub fn live_subscriptions(&self) -> usize {
        self.flows.lock().expect("relay flows").iter().filter(|f| f.live_subscription()).count()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, to: SocketAddr, flows: Flows, rules: Arc<Rules>) {
    let mut pumps = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        if rules.severed.load(SeqCst) {
            continue;
        }
        // Redis down: dropping the client closes it, as a refusal would.
        let Ok(server) = TcpStream::connect(to).await else { continue };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let flow = Arc::new(Flow::default());
        flows.lock().expect("relay flows").push(flow.clone());
        let ((client_read, client_write), (server_read, server_write)) = (client.into_split(), server.into_split());
        let (forward, writer) = Forward::new(server_write, rules.clone());
        let up = pumps.spawn(pump(client_read, forward, flow.clone(), true));
        let down = pumps.spawn(pump(server_read, Forward::Now(client_write), flow.clone(), false));
        flow.pumps.lock().expect("relay pumps").extend([up, down, writer]);
    }
}

/// Where a pump writes: at once, or (client to server) through a queue
/// that passes each chunk on when its announcement rule says.
enum Forward {
    Now(OwnedWriteHalf),
    Ruled { queue: mpsc::UnboundedSender<(Instant, Vec<u8>)>, rules: Arc<Rules> },
}

impl Forward {
    /// The forward and its writer task, which passes the close on once
    /// the queue is drained and the pump has dropped the forward.
    fn new(mut to: OwnedWriteHalf, rules: Arc<Rules>) -> (Forward, AbortHandle) {
        let (queue, mut chunks) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((at, chunk)) = chunks.recv().await {
                tokio::time::sleep_until(at).await;
                if to.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        (Forward::Ruled { queue, rules }, writer.abort_handle())
    }

    /// False once the other end is gone.
    async fn send(&mut self, chunk: &[u8], flow: &Flow) -> bool {
        match self {
            Forward::Now(to) => to.write_all(chunk).await.is_ok(),
            Forward::Ruled { queue, rules, .. } => {
                let rule = match flow.publisher.load(SeqCst) {
                    true => *rules.announcements.lock().expect("relay rules"),
                    false => Announcements::Pass,
                };
                let at = match rule {
                    Announcements::Pass => Instant::now(),
                    Announcements::Delay(by) => Instant::now() + by,
                    Announcements::Drop => {
                        rules.held.fetch_add(1, SeqCst);
                        return true;
                    }
                };
                if rule != Announcements::Pass {
                    rules.held.fetch_add(1, SeqCst);
                }
                queue.send((at, chunk.to_vec())).is_ok()
            }
        }
    }
}

/// Copies `from` to `to` until either end closes, spotting `SUBSCRIBE` in
/// what the client sends. Once the flow is silenced, what arrives is read
/// and dropped, and at the end `to` is kept open: a black hole passes no
/// close either. Otherwise dropping `to` passes the close on.
async fn pump(mut from: OwnedReadHalf, mut to: Forward, flow: Arc<Flow>, from_client: bool) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail = Vec::new();
    let mut publish_tail = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if flow.silenced.load(SeqCst) {
            continue;
        }
        if from_client && !flow.subscription.load(SeqCst) {
            tail.extend_from_slice(&buf[..n]);
            if tail.windows(SUBSCRIBE.len()).any(|w| w.eq_ignore_ascii_case(SUBSCRIBE)) {
                flow.subscription.store(true, SeqCst);
            }
            tail.drain(..tail.len().saturating_sub(SUBSCRIBE.len() - 1));
        }
        if from_client && !flow.publisher.load(SeqCst) {
            publish_tail.extend_from_slice(&buf[..n]);
            if publish_tail.windows(PUBLISH.len()).any(|w| w.eq_ignore_ascii_case(PUBLISH)) {
                flow.publisher.store(true, SeqCst);
            }
            publish_tail.drain(..publish_tail.len().saturating_sub(PUBLISH.len() - 1));
        }
        if !to.send(&buf[..n], &flow).await {
            break;
        }
    }
    if from_client {
        flow.closed.store(true, SeqCst);
    }
    if flow.silenced.load(SeqCst) {
        std::future::pending::<()>().await;
    }
}
