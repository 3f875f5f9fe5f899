//! jwtgate: a reverse-proxy sidecar that verifies Bearer JWTs, refuses
//! revoked ones and forwards the rest to an unmodified upstream.
//!
//! Life of a request (`proxy::Gate::phases`, one function of named phases):
//! `server` accepts it and hands it to the gate; **admit** reads the path
//! once (ambiguous spellings refused, repeated slashes merged) and the
//! host; **pick** chooses the route (jwtgate's own logout paths first);
//! **authenticate** finds the token, verifies it and asks `revocation`
//! (local cache, then the store) whether it is live; **require** applies
//! the route's claims; **act** revokes on a logout path; **prepare** sets
//! the headers the upstream gets; **deliver** streams it there and back.
//! Every early end is an `error::ProxyError`, mapped to HTTP in one table.
//!
//! Modules, bottom-up (each uses only those above it; `scripts/module-deps.sh`
//! prints the graph and fails on a cycle):
//!
//! - [`config`]: the YAML as written, read with file/field/line errors; secrets, durations.
//! - [`error`]: every early end of a request and its status, challenge and JSON body.
//! - [`auth`]: token extraction, keys and JWKS, verification into `Claims`; compiles `jwt:`.
//! - [`revocation`]: the stores (memory, Redis single/cluster/sentinel), cache, pub/sub, breaker.
//! - [`routes`]: the normalized path, matchers and the route table; compiles `routes:`.
//! - [`tls`]: certificate and key read from PEM, checked as a pair (listener and webhook); https upstreams' client configs.
//! - [`trust`]: which peers' forwarding headers are believed (`trusted_proxies`).
//! - [`upstream`]: the upstreams a route may forward to; compiles `upstream(s):`.
//! - [`runtime`]: assembles the sections into the swappable snapshot and the start-time settings.
//! - [`proxy`]: the gate: the request's phases, forwarding, WebSockets, back-channel logout.
//! - [`admin`]: the admin listener: health, readiness, metrics, the revocation API.
//! - [`metrics`]: the Prometheus recorder and the metric descriptions.
//! - [`k8s`]: `inject` (sidecar patching of manifests) and the admission webhook.
//! - [`server`]: a running instance, [`start`]: accept, TLS and drain, reload, wiring.
//! - [`cli`]: the subcommands (`run`, `demo`, `check`, `explain`, `revoke`, ...).

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
