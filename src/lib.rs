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
//! `config` reads the YAML, `runtime` is its compiled form, `demo` is the
//! self-contained showcase behind `jwtgate demo`.

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
