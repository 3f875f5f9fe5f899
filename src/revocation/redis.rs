//! Redis store, shared by every replica. One multiplexed connection
//! (redis-rs `ConnectionManager`, reconnecting on its own); every command
//! runs under a deadline so a slow or dead Redis costs at most that long.

use super::{BoxFuture, RevocationStore, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

pub struct RedisStore {
    conn: ConnectionManager,
    deadline: Duration,
}

impl RedisStore {
    /// Prepares the connection without waiting for Redis: jwtgate starts
    /// (and answers per `on_store_error`) even while Redis is down.
    pub fn connect_lazy(url: &str, deadline: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid redis url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(deadline))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| format!("redis: {e}"))?;
        Ok(Self { conn, deadline })
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.deadline, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError(format!("redis: {e}"))),
            Err(_) => Err(StoreError(format!("redis: no answer within {:?}", self.deadline))),
        }
    }
}

impl RevocationStore for RedisStore {
    fn is_revoked<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(key);
            Ok(self.run::<i64>(cmd).await? > 0)
        })
    }

    fn revoke<'a>(&'a self, key: &'a str, expires_at_unix: i64) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(1).arg("EXAT").arg(expires_at_unix.max(1));
            self.run::<()>(cmd).await
        })
    }
}
