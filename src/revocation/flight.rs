//! Single-flight: concurrent look-ups of the same uncached key share one
//! store round trip (100 requests with one fresh token → 1 Redis command).

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
        let value = cell.get_or_init(work).await.clone();
        if leader {
            let mut map = match self.inflight.lock() {
                Ok(map) => map,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.remove(key);
        }
        value
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
}
