//! Graceful shutdown of the client connections: when the drain starts,
//! each connection is told to finish its request in flight and close, and
//! the drain waits until all have.
//!
//! hyper-util's `GracefulShutdown` does the same with a watch channel
//! whose `changed()` future is polled every time a connection's task wakes
//! (a mutex in tokio's `Notify` each time): about 1,100 instructions per
//! request under callgrind, for a signal that comes once. Here a poll
//! costs an atomic load and a waker registration; the drain wakes every
//! connection's slot once.

use futures_util::task::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::sync::Notify;

/// The listener's side: hands a [`Watch`] to each connection, starts the drain.
#[derive(Default)]
pub struct Drain {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    closing: AtomicBool,
    /// The open connections' wakers; a closed connection leaves a dead
    /// `Weak`, pruned when the list has grown past twice the open count.
    slots: Mutex<Vec<Weak<AtomicWaker>>>,
    open: AtomicUsize,
    all_closed: Notify,
}

/// One connection's part in the drain; dropping it counts the connection closed.
pub struct Watch {
    shared: Arc<Shared>,
    slot: Arc<AtomicWaker>,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    /// The watch for a connection just accepted.
    pub fn watch(&self) -> Watch {
        let slot = Arc::new(AtomicWaker::new());
        let open = self.shared.open.fetch_add(1, Ordering::AcqRel) + 1;
        let mut slots = self.shared.lock_slots();
        if slots.len() >= 2 * open {
            slots.retain(|slot| slot.strong_count() > 0);
        }
        slots.push(Arc::downgrade(&slot));
        Watch { shared: self.shared.clone(), slot }
    }

    /// Open connections (for tests and logs).
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Tells every connection to shut down gracefully and resolves once
    /// all have closed (the caller bounds the wait).
    pub async fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::Release);
        let slots: Vec<Arc<AtomicWaker>> = self.shared.lock_slots().iter().filter_map(Weak::upgrade).collect();
        slots.iter().for_each(|slot| slot.wake());
        loop {
            // Created before the count is read: a close in between still wakes it.
            let closed = self.shared.all_closed.notified();
            if self.open() == 0 {
                return;
            }
            closed.await;
        }
    }
}

impl Shared {
    fn lock_slots(&self) -> MutexGuard<'_, Vec<Weak<AtomicWaker>>> {
        // A poisoned list only ever lost a push or a prune: still usable.
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Watch {
    /// Serves `conn` to its end, starting its graceful shutdown (finish the
    /// request in flight, then close) once the drain has begun.
    pub async fn serve<C: GracefulConnection>(self, conn: C) -> C::Output {
        let mut conn = pin!(conn);
        let mut shutting_down = false;
        std::future::poll_fn(|cx| {
            if !shutting_down {
                // Registered before the flag is read: a drain that starts
                // in between wakes this task again.
                self.slot.register(cx.waker());
                if self.shared.closing.load(Ordering::Acquire) {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            conn.as_mut().poll(cx)
        })
        .await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.shared.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    const BOUND: Duration = Duration::from_secs(5);

    /// A real HTTP/1.1 server connection under `watch` whose first request
    /// says it `entered` and is answered once `release` fires; and a
    /// client connection to it.
    async fn served(
        watch: Watch,
        entered: oneshot::Sender<()>,
        release: oneshot::Receiver<()>,
    ) -> (tokio::task::JoinHandle<()>, hyper::client::conn::http1::SendRequest<Empty<Bytes>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = Arc::new(Mutex::new(Some((entered, release))));
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let service = hyper::service::service_fn(move |_req| {
                let hold = hold.lock().expect("lock").take();
                async move {
                    if let Some((entered, release)) = hold {
                        let _ = entered.send(());
                        let _ = release.await;
                    }
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Empty::<Bytes>::new()))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let _ = watch.serve(conn).await;
        });
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        (server, sender)
    }

    #[tokio::test]
    async fn a_drain_without_connections_ends_at_once() {
        let drain = Drain::new();
        drop(drain.watch());
        tokio::time::timeout(BOUND, drain.shutdown()).await.expect("nothing to wait for");
    }

    #[tokio::test]
    async fn the_request_in_flight_is_answered_then_the_connection_closes() {
        let drain = Drain::new();
        let ((release, held), (entered, entering)) = (oneshot::channel(), oneshot::channel());
        let (server, mut sender) = served(drain.watch(), entered, held).await;
        let request = hyper::Request::get("/").header("host", "x").body(Empty::new()).expect("request");
        let answer = tokio::spawn(sender.send_request(request));
        tokio::time::timeout(BOUND, entering).await.expect("request reached the service").expect("entered");
        let mut draining = std::pin::pin!(drain.shutdown());
        assert!(
            tokio::time::timeout(Duration::from_millis(100), &mut draining).await.is_err(),
            "the drain must wait for the request in flight"
        );
        assert_eq!(drain.open(), 1);
        release.send(()).expect("release");
        let rsp = tokio::time::timeout(BOUND, answer).await.expect("answered").expect("task").expect("response");
        assert_eq!(rsp.status(), 200);
        let _ = rsp.into_body().collect().await;
        tokio::time::timeout(BOUND, draining).await.expect("drained once the answer was written");
        tokio::time::timeout(BOUND, server).await.expect("server connection ended").expect("task");
        assert!(sender.is_closed() || sender.ready().await.is_err(), "the keep-alive connection was closed");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_closes_on_drain() {
        let drain = Drain::new();
        let ((release, held), (entered, _entering)) = (oneshot::channel(), oneshot::channel());
        release.send(()).expect("no hold");
        let (server, mut sender) = served(drain.watch(), entered, held).await;
        let request = hyper::Request::get("/").header("host", "x").body(Empty::new()).expect("request");
        let rsp = tokio::time::timeout(BOUND, sender.send_request(request)).await.expect("in time").expect("response");
        assert_eq!(rsp.status(), 200);
        assert_eq!(drain.open(), 1, "the connection stays open between requests");
        tokio::time::timeout(BOUND, drain.shutdown()).await.expect("the idle connection closed");
        tokio::time::timeout(BOUND, server).await.expect("server connection ended").expect("task");
        assert_eq!(drain.open(), 0);
    }
}
