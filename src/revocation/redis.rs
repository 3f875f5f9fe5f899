//! Redis store, shared by every replica. One multiplexed connection
//! (redis-rs `ConnectionManager`, reconnecting on its own); every command
//! runs under a deadline so a slow or dead Redis costs at most that long.
//! Writes are `SET key value EXAT t` (or `DEL`) pipelined with a `PUBLISH`
//! on the revocation channel; look-ups are one `MGET`.
//! `redis://` and `rediss://` (TLS via rustls), ACL user:password and the db
//! index all come from the URL.

use super::{BoxFuture, Change, RevocationStore, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    deadline: Duration,
    channel: String,
}

impl RedisStore {
    /// Prepares the connection without waiting for Redis: jwtgate starts
    /// (and answers per `on_store_error`) even while Redis is down.
    pub fn connect_lazy(url: &str, deadline: Duration, channel: String) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid redis url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(deadline))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|e| format!("redis: {e}"))?;
        Ok(Self { client, conn, deadline, channel })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Runs a query under the deadline.
    async fn within<T>(
        &self,
        query: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, query).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
            Err(_) => Err(StoreError(format!("redis: no answer within {:?}", self.deadline))),
        }
    }
}

impl RevocationStore for RedisStore {
    fn fetch<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<String>>, StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("MGET");
            cmd.arg(keys);
            let mut conn = self.conn.clone();
            self.within(cmd.query_async::<Vec<Option<String>>>(&mut conn)).await
        })
    }

    fn write<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let message = serde_json::to_string(change).map_err(|e| StoreError(e.to_string()))?;
            let mut pipe = redis::pipe();
            match &change.value {
                Some(value) => {
                    pipe.cmd("SET").arg(&change.key).arg(value).arg("EXAT").arg(change.expires_at.max(1)).ignore()
                }
                None => pipe.cmd("DEL").arg(&change.key).ignore(),
            };
            pipe.cmd("PUBLISH").arg(&self.channel).arg(message).ignore();
            let mut conn = self.conn.clone();
            self.within(pipe.query_async::<()>(&mut conn)).await
        })
    }
}
