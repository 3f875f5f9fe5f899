//! The hyper service: a request's phases, in order. Each is a function in
//! the module that owns its concern, and passes the request on or ends it
//! with a [`ProxyError`]; `handle` turns errors into responses and owns
//! logging and metrics. `jwtgate explain` runs the same phases on a
//! synthetic request, all but the side effects and the upstream call.
//!
//! 1. [`admit`]: framing and header limits, no CONNECT, an upper-case
//!    method, the path read once for every decision and the upstream, one
//!    host;
//! 2. [`pick`]: the route (jwtgate's own paths first, as routes with an
//!    action), the same under a method override;
//! 3. [`authenticate`]: token → claims → live or revoked;
//! 4. [`require`]: a revoked token ends here (but on the logout path),
//!    then the route's requirements;
//! 5. [`act`]: logout and logout-all revoke (and answer);
//! 6. [`prepare`]: the headers and path the upstream gets;
//! 7. [`forward::deliver`]: the upstream (a WebSocket handshake spliced on a
//!    101, see [`upgrade`]), or the back-channel receiver.

pub mod act;
pub mod admit;
mod affinity;
pub mod authenticate;
mod backchannel;
mod forward;
pub mod forwarding;
pub mod headers;
pub mod pick;
pub mod prepare;
mod protocol;
mod upgrade;

pub use upgrade::drain as drain_websockets;

pub use affinity::{Driver as AffinityDriver, Pinned};
pub use forward::Upstream;
pub use protocol::{MAX_HEADER_FIELDS, MAX_HEADER_LIST_BYTES};

use crate::error::{Body, Causes, ProxyError, Rejection};
use crate::revocation::Revocations;
use crate::routes::Route;
use crate::runtime::Runtime;
use act::act;
use admit::admit;
use arc_swap::ArcSwap;
use authenticate::{authenticate, Caller};
use http::{Request, Response};
use hyper::body::Incoming;
use pick::{pick, Action, OwnPaths, Picked};
use prepare::prepare;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// One config snapshot with the upstream pools built for it; swapped as a
/// whole on reload, so a request never mixes two configs.
pub struct Live {
    pub rt: Runtime,
    pub upstreams: Vec<Upstream>,
    /// The logout, logout-all and back-channel paths as routes.
    pub own_paths: OwnPaths,
}

impl Live {
    pub fn new(rt: Runtime) -> Self {
        let upstreams = rt.upstreams.iter().map(Upstream::new).collect();
        let own_paths = OwnPaths::of(&rt);
        Self { rt, upstreams, own_paths }
    }
}

/// Everything a request needs, shared by all connections. The revocation
/// state (store connection, cache, subscriber) outlives config reloads.
pub struct Gate {
    pub live: ArcSwap<Live>,
    pub revocations: Arc<Revocations>,
}

/// One client connection: the gate it is served by, who it is, and its
/// upstream affinity (one `Arc` of it per request).
pub struct Downstream {
    gate: Arc<Gate>,
    addr: SocketAddr,
    peer: forwarding::Peer,
    pinned: Pinned,
}

impl Downstream {
    pub fn new(gate: Arc<Gate>, addr: SocketAddr, pinned: Pinned) -> Self {
        Self { gate, addr, peer: forwarding::Peer::new(addr.ip()), pinned }
    }

    /// The service: one request through the phases, answered. Written as
    /// one async fn over as few nested ones as the phases allow: hyper
    /// moves this future into its dispatcher whole, and every nested
    /// future is copied into its caller's state (a profile showed
    /// `memmove` as the largest single cost over a bare hyper proxy).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
        let (gate, client) = (&*self.gate, self.addr);
        // One snapshot per request: a reload never changes a request midway.
        let live = gate.live.load_full();
        let method = req.method().clone();
        // The path only: a query can carry secrets (and is the app's business).
        let access = live.rt.access_log.then(|| (std::time::Instant::now(), req.uri().path().to_owned()));
        let (picked, result) = gate.phases(&live, req, &self).await;
        let label = picked.map_or(&*labels::UNMATCHED, |route| &route.label);
        let (rsp, outcome) = match result {
            Ok(rsp) => (rsp, "forwarded"),
            Err(err) => {
                let (code, _) = err.code_and_message();
                if err.is_server_fault() {
                    tracing::warn!(%method, %client, code, error = %Causes(&err), "request failed")
                } else {
                    tracing::debug!(%method, %client, code, "request refused")
                }
                (err.into_response(&live.rt.realm), code)
            }
        };
        if let Some((started, path)) = access {
            tracing::info!(
                target: "jwtgate::access",
                %method,
                path,
                status = rsp.status().as_u16(),
                rule = %label,
                outcome,
                %client,
                duration_us = started.elapsed().as_micros() as u64,
            );
        }
        match (picked, outcome) {
            (Some(route), "forwarded") => route.forwarded_counter().increment(1),
            _ => {
                metrics::counter!("jwtgate_requests_total", "route" => label.clone(), "outcome" => outcome).increment(1)
            }
        }
        Ok(rsp)
    }
}

impl Gate {
    /// The phases in order, with the route picked (`None`: refused before
    /// one was). Early returns instead of an inner `?` block: that block
    /// would be one more nested future.
    async fn phases<'l>(
        &self,
        live: &'l Live,
        req: Request<Incoming>,
        downstream: &Downstream,
    ) -> (Option<&'l Route>, Result<Response<Body>, ProxyError>) {
        let (rt, revocations) = (&live.rt, &*self.revocations);
        let (mut head, body) = req.into_parts();
        let decided =
            admit(rt, &head).and_then(|admitted| Ok((pick(rt, &live.own_paths, &head, &admitted)?, admitted)));
        let (picked, rewritten) = match decided {
            Ok((picked, admitted)) => (picked, admitted.path.rewritten),
            Err(err) => return (None, Err(err)),
        };
        let route = Some(picked.route);
        let caller = match authenticate(rt, revocations, picked.route, &head).await {
            Ok(caller) => caller,
            Err(err) => return (route, Err(err)),
        };
        let caller = match require(&picked, caller) {
            Ok(caller) => caller,
            Err(err) => return (route, Err(err)),
        };
        match act(rt, revocations, &picked, &caller).await {
            Ok(Some(answer)) => return (route, Ok(answer)),
            Ok(None) => {}
            Err(err) => return (route, Err(err)),
        }
        let websocket = match prepare(rt, &picked, &mut head, &caller, &downstream.peer, rewritten) {
            Ok(websocket) => websocket,
            Err(err) => return (route, Err(err)),
        };
        let req = Request::from_parts(head, body);
        (route, forward::deliver(live, revocations, &picked, req, websocket, &caller, &downstream.pinned).await)
    }
}

/// Phase 4: a revoked token is refused, except on the logout path (logout
/// is idempotent: a retry after a 503, or after a write a Redis failover
/// lost, stores the revocation again); then the route's requirements.
pub fn require(picked: &Picked<'_>, caller: Caller) -> Result<Caller, ProxyError> {
    if matches!(caller, Caller::Revoked(_)) && picked.action != Action::Logout {
        return Err(Rejection::Revoked.into());
    }
    if let Some(claims) = caller.claims() {
        picked.route.require.check(claims)?;
    }
    Ok(caller)
}

/// The metric label of a request refused before a route was picked.
mod labels {
    use std::sync::{Arc, LazyLock};
    pub static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unmatched"));
}

#[cfg(test)]
mod future_size {
    use super::*;

    fn size_of_service_future<F, Fut>(_: F) -> usize
    where
        F: FnOnce(Arc<Downstream>, Request<Incoming>) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// hyper moves the service future into its dispatcher, and each nested
    /// future is copied into its caller's state: its size is paid in
    /// `memmove` on every request. 4.3 KB (debug build) before the phases
    /// were flattened and the rare paths boxed; 2.3 KB after.
    #[test]
    fn the_per_request_future_stays_small() {
        let size = size_of_service_future(Downstream::handle);
        assert!(size <= 3072, "Downstream::handle's future grew to {size} bytes: box the new rare path");
    }
}
