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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The command name as a RESP bulk string (redis-rs sends it upper-case;
/// matched in any case). No key or value can be exactly this string: every
/// key jwtgate writes carries its prefix.
const SUBSCRIBE: &[u8] = b"\r\nSUBSCRIBE\r\n";

#[derive(Default)]
struct Flow {
    subscription: AtomicBool,
    silenced: AtomicBool,
    closed: AtomicBool,
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
    /// Owns every flow's tasks: aborting it closes all sockets.
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free loopback port; each connection is relayed to `to`.
    pub async fn spawn(to: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let flows = Flows::default();
        let accept = tokio::spawn(accept_loop(listener, to, flows.clone()));
        Relay { addr, flows, accept }
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

async fn accept_loop(listener: TcpListener, to: SocketAddr, flows: Flows) {
    let mut pumps = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        // Redis down: dropping the client closes it, as a refusal would.
        let Ok(server) = TcpStream::connect(to).await else { continue };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let flow = Arc::new(Flow::default());
        flows.lock().expect("relay flows").push(flow.clone());
        let ((client_read, client_write), (server_read, server_write)) = (client.into_split(), server.into_split());
        pumps.spawn(pump(client_read, server_write, flow.clone(), true));
        pumps.spawn(pump(server_read, client_write, flow, false));
    }
}

/// Copies `from` to `to` until either end closes, spotting `SUBSCRIBE` in
/// what the client sends. Once the flow is silenced, what arrives is read
/// and dropped, and at the end `to` is kept open: a black hole passes no
/// close either. Otherwise dropping `to` passes the close on.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, flow: Arc<Flow>, from_client: bool) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut tail = Vec::new();
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
        if to.write_all(&buf[..n]).await.is_err() {
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
