//! Why a command failed. `cli::main` prints it with its causes
//! (`jwtgate: what: why`) and exits 1.

use crate::config::ConfigError;
use crate::k8s::webhook::WebhookError;
use crate::StartError;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    /// `jwtgate demo` could not bind: says how to pick another address.
    #[error("cannot listen on {addr} (pick another address with `jwtgate demo --listen 127.0.0.1:18080`)")]
    DemoListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot mint the demo token")]
    DemoToken(#[source] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Revoke(#[from] super::revoke::RevokeError),
}
