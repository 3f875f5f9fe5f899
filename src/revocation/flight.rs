//! Single-flight: concurrent look-ups of the same uncached key share one
//! store round trip (100 requests with one fresh token → 1 Redis command).
//!
//! Why not a crate: `async_singleflight` (0.6) hands followers an error
//! when the leader is dropped (a client that went away), and takes an async
//! mutex on every call; `singleflight-async` (0.2) is a one-maintainer
//! crate of the same size as this. Here a follower takes over from a
//! dropped leader (tokio's `OnceCell` lets the next waiter initialise), the
//! map is behind a std mutex held for a lookup only, and the tests below
//! pin both.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

type Cell<T> = Arc<OnceCell<T>>;

pub struct SingleFlight<T> {
    /// A std `Mutex`: held only to find or insert a cell, never across an await.
    inflight: Mutex<HashMap<String, Cell<T>>>,
}

impl<T: Clone> Default for SingleFlight<T> {
    fn default() -> Self {
        Self { inflight: Mutex::new(HashMap::new()) }
    }
}

impl<T: Clone> SingleFlight<T> {
    /// Runs `work` for `key` unless a run for the same key is in flight, in
    /// which case its result is shared.
    pub async fn run<F, Fut>(&self, key: &str, work: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let (cell, leader) = {
            let mut map = match self.inflight.lock() {
                Ok(map) => map,
                Err(poisoned) => poisoned.into_inner(),
            };
            match map.get(key) {
                Some(cell) => (cell.clone(), false),
                None => {
                    let cell: Cell<T> = Arc::new(OnceCell::new());
                    map.insert(key.to_string(), cell.clone());
                    (cell, true)
                }
            }
        };
        // The leader's entry goes when the leader finishes *or is dropped*
        // (client gone): a cell left behind would hand its answer to every
        // later caller for ever. A follower whose leader vanished runs the
        // work itself (tokio's OnceCell lets the next waiter initialise).
        let _cleanup = leader.then(|| Cleanup { flights: self, key, cell: &cell });
        cell.get_or_init(work).await.clone()
    }
}

struct Cleanup<'a, T> {
    flights: &'a SingleFlight<T>,
    key: &'a str,
    cell: &'a Cell<T>,
}

impl<T> Drop for Cleanup<'_, T> {
    fn drop(&mut self) {
        let mut map = match self.flights.inflight.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.get(self.key).is_some_and(|c| Arc::ptr_eq(c, self.cell)) {
            map.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(SingleFlight::<u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (flights, runs, mut rx) = (flights.clone(), runs.clone(), rx.clone());
            tasks.push(tokio::spawn(async move {
                flights
                    .run("k", || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let _ = rx.wait_for(|go| *go).await;
                        7
                    })
                    .await
            }));
        }
        tokio::task::yield_now().await;
        tx.send(true).unwrap();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // After the flight lands, a new call runs again.
        assert_eq!(flights.run("k", || async { 8 }).await, 8);
    }

    #[tokio::test]
    async fn a_cancelled_leader_leaves_no_answer_behind() {
        let flights = SingleFlight::<u32>::default();
        let never = flights.run("k", std::future::pending::<u32>);
        // Poll the leader once, then drop it, as a disconnecting client would.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(5), never).await.is_err());
        assert!(flights.inflight.lock().unwrap().is_empty(), "entry leaked");
        assert_eq!(flights.run("k", || async { 9 }).await, 9, "fresh run, not a frozen answer");
    }
}
