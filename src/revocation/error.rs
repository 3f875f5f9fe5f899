//! Why the revocation store did not answer, with the client library's own
//! error as the cause (`source`), so a log line says what failed and why.
//! Causes are behind `Arc` because one failed look-up is shared by every
//! request that waited on it (the sentinel look-up, the single-flight).

use crate::error::{Cause, ProxyError};
use std::sync::Arc;
use std::time::Duration;

type Redis = Arc<redis::RedisError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A node's URL the client library refused (at start).
    #[error("invalid redis url {url}")]
    InvalidUrl {
        url: String,
        #[source]
        source: Redis,
    },
    /// The cluster or sentinel client could not be built (at start).
    #[error("redis client setup failed")]
    Setup(#[source] Redis),
    #[error("redis store without a url")]
    NoNode,
    #[error("redis command failed")]
    Command(#[source] Redis),
    #[error("redis: no answer within {0:?}")]
    Timeout(Duration),
    #[error("redis sentinel: no master within {0:?}")]
    NoMaster(Duration),
    #[error("redis sentinel: asking for the master failed")]
    Sentinel(#[source] Redis),
    #[error("redis master {addr}: cannot connect")]
    Master {
        addr: String,
        #[source]
        source: Redis,
    },
    #[error("redis sentinel: the look-up task ended early")]
    LookupEnded(#[source] Arc<tokio::task::JoinError>),
    #[error("redis sentinel: state lock poisoned")]
    SentinelPoisoned,
    #[error("redis: written but confirmed by {confirmed} of {wanted} replica(s) (failover?)")]
    Unconfirmed { confirmed: i64, wanted: u32 },
    #[error("redis: subscribing failed")]
    Subscribe(#[source] Redis),
    #[error("redis: no subscription within {0:?}")]
    SubscribeTimeout(Duration),
    #[error("revocation message not encodable")]
    Encode(#[source] Arc<serde_json::Error>),
    #[error("circuit open: store skipped during cool-down")]
    CircuitOpen,
    #[error("memory store lock poisoned")]
    MemoryPoisoned,
}

/// A request the store could not serve ends as a 503 carrying this cause.
impl From<StoreError> for ProxyError {
    fn from(err: StoreError) -> Self {
        ProxyError::StoreUnavailable(Cause::new(err))
    }
}

impl StoreError {
    pub fn command(err: redis::RedisError) -> Self {
        StoreError::Command(Arc::new(err))
    }

    pub fn setup(err: redis::RedisError) -> Self {
        StoreError::Setup(Arc::new(err))
    }
}
