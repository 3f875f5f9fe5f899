//! Black-box integration tests: the real `jwtgate` binary between a test
//! client and a recording upstream, with a real redis-server where the
//! behaviour under test involves the shared revocation store.
//!
//! One test binary keeps link time low; each module is one area of the
//! contract. Modules are `#[cfg(test)]` so clippy's `allow-*-in-tests`
//! (clippy.toml) covers the helpers too, not only the `#[test]` bodies.

#[cfg(test)]
mod support;

#[cfg(test)]
mod access_log;
#[cfg(test)]
mod admin;
#[cfg(test)]
mod affinity;
#[cfg(test)]
mod announce;
#[cfg(test)]
mod auth;
#[cfg(test)]
mod auth_claims;
#[cfg(test)]
mod backchannel;
#[cfg(test)]
mod claim_headers;
#[cfg(test)]
mod cli_check;
#[cfg(test)]
mod cli_explain;
#[cfg(test)]
mod cli_flags;
#[cfg(test)]
mod cli_logs;
#[cfg(test)]
mod client_address;
#[cfg(test)]
mod cluster;
#[cfg(test)]
mod config_errors;
#[cfg(test)]
mod cookies;
#[cfg(test)]
mod cors;
#[cfg(test)]
mod dashboard;
#[cfg(test)]
mod discovery;
#[cfg(test)]
mod explain_vs_proxy;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod fleet;
#[cfg(test)]
mod flight;
#[cfg(test)]
mod forward_auth;
#[cfg(test)]
mod forward_auth_attacks;
#[cfg(test)]
mod forward_auth_grpc;
#[cfg(test)]
mod forward_auth_proxies;
#[cfg(test)]
mod hardening;
#[cfg(test)]
mod http10_upstream;
#[cfg(test)]
mod https_upstream;
#[cfg(test)]
mod in_process;
#[cfg(test)]
mod inject;
#[cfg(test)]
mod inspect;
#[cfg(test)]
mod jwks;
#[cfg(test)]
mod legacy;
#[cfg(test)]
mod logout;
#[cfg(test)]
mod metrics;
#[cfg(test)]
mod paths;
#[cfg(test)]
mod protocol;
#[cfg(test)]
mod protocol_bodies;
#[cfg(test)]
mod protocol_limits;
#[cfg(test)]
mod proxy;
#[cfg(test)]
mod recovery;
#[cfg(test)]
mod redis_auth;
#[cfg(test)]
mod reload;
#[cfg(test)]
mod requirements;
#[cfg(test)]
mod review_issue14;
#[cfg(test)]
mod revocation;
#[cfg(test)]
mod route_auth;
#[cfg(test)]
mod route_match;
#[cfg(test)]
mod sentinel;
#[cfg(test)]
mod silent_subscription;
#[cfg(test)]
mod slashes;
#[cfg(test)]
mod streaming;
#[cfg(test)]
mod subject;
#[cfg(test)]
mod subscribe_nodes;
#[cfg(test)]
mod tls;
#[cfg(test)]
mod upstreams;
#[cfg(test)]
mod webhook;
#[cfg(test)]
mod websocket;
#[cfg(test)]
mod websocket_revocation;
