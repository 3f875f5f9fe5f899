//! jwtgate: a reverse-proxy sidecar that verifies Bearer JWTs, refuses
//! revoked ones and forwards the rest to an unmodified upstream.
//!
//! Life of a request (`proxy::Gate::phases`):
//! 1. `server` accepts it (HTTP/1.1 or h2c) and hands it to the gate;
//! 2. `routes` reads the path once (ambiguous ones refused, repeated slashes
//!    merged) and picks the rule (required/none/deny);
//! 3. `auth::extract` finds the token, `auth::verify` turns it into `Claims`;
//! 4. `revocation` checks the local cache, then the store (memory or Redis);
//! 5. on the logout path, `revocation` records the token as revoked;
//! 6. `proxy::forward` streams it to the upstream and the answer back.
//!
//! Every early end is an `error::ProxyError`, mapped to HTTP in one table.
//! `config` reads the YAML (the bottom layer); `auth`, `routes`,
//! `revocation`, `upstream`, `tls` and `trust` each compile their own
//! section; `runtime` assembles them into the request path's snapshot and
//! the settings fixed at start; `server` runs an instance ([`start`]: the
//! library entry point `cli` and tests call; `accept`, `reload`, `wiring`);
//! `cli` holds the subcommands (`demo` is the self-contained showcase).
//! Modules point one way: `scripts/module-deps.sh` prints the graph and
//! fails on a cycle.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod k8s;
pub mod metrics;
pub mod proxy;
pub mod revocation;
pub mod routes;
pub mod runtime;
pub mod server;
pub mod tls;
pub mod trust;
pub mod upstream;

pub use server::{start, Config, Running, StartError};
