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

mod access;
pub mod act;
pub mod admit;
mod affinity;
pub mod authenticate;
pub mod authorize;
mod backchannel;
pub mod cors;
mod forward;
pub mod forwarding;
mod frames;
pub mod headers;
pub mod pick;
pub mod prepare;
mod protocol;
pub mod request_id;
mod tunnels;
mod upgrade;

pub use upgrade::drain as drain_websockets;

pub use affinity::{Driver as AffinityDriver, Pinned};
pub use forward::Upstream;
pub use protocol::{MAX_HEADER_FIELDS, MAX_HEADER_LIST_BYTES};

use crate::error::{Body, Causes, ProxyError, Rejection};
use crate::metrics::{self, Outcome, RouteMetrics};
use crate::revocation::Revocations;
use crate::routes::{Cors, CorsPolicy};
use crate::runtime::Runtime;
use access::Logged;
use act::act;
use admit::admit;
use arc_swap::ArcSwap;
use authenticate::{authenticate, Caller};
use http::{Request, Response};
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
    /// The metrics of requests refused before a route was picked.
    unmatched: RouteMetrics,
}

impl Live {
    /// The snapshot, with every route's metric series registered (at 0).
    pub fn new(rt: Runtime) -> Self {
        let upstreams = rt.upstreams.iter().map(Upstream::new).collect();
        let own_paths = OwnPaths::of(&rt);
        for route in rt.routes.routes().iter().chain([rt.routes.default_route()]).chain(own_paths.routes()) {
            route.metrics();
        }
        let unmatched = RouteMetrics::register(labels::UNMATCHED.clone(), crate::error::REFUSAL_CODES);
        Self { rt, upstreams, own_paths, unmatched }
    }
}

/// Everything a request needs, shared by all connections. The revocation
/// state (store connection, cache, subscriber) outlives config reloads.
pub struct Gate {
    pub live: ArcSwap<Live>,
    pub revocations: Arc<Revocations>,
}

/// One client connection: the gate it is served by, who it is, its
/// upstream affinity (one `Arc` of it per request), and what its requests
/// get: forwarded, or a forward-auth verdict.
pub struct Downstream {
    gate: Arc<Gate>,
    addr: SocketAddr,
    peer: forwarding::Peer,
    pinned: Pinned,
    role: Role,
}

/// What a listener does with a request that passes every phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Forwards it to the route's upstream (the public listener).
    Proxy,
    /// Answers whether it may pass (the forward-auth listener): the
    /// request asked about is read from the check request's headers.
    Authorize,
    /// Answers a gRPC `Check`, whose request is the one asked about.
    AuthorizeGrpc,
}

impl Downstream {
    pub fn new(gate: Arc<Gate>, addr: SocketAddr, pinned: Pinned, role: Role) -> Self {
        Self { gate, addr, peer: forwarding::Peer::new(addr.ip()), pinned, role }
    }

    /// The service: one request through the phases, answered, counted and
    /// (with `access_log`) logged. Written as one async fn over as few
    /// nested ones as the phases allow: hyper moves this future into its
    /// dispatcher whole, and every nested future is copied into its
    /// caller's state (a profile showed `memmove` as the largest single
    /// cost over a bare hyper proxy).
    pub async fn handle<B: protocol::Arriving>(
        self: Arc<Self>,
        req: Request<B>,
    ) -> Result<Response<Logged>, Infallible> {
        let started = std::time::Instant::now();
        let (gate, client) = (&*self.gate, self.addr);
        // One snapshot per request: a reload never changes a request midway.
        let live = gate.live.load_full();
        let request_id = request_id::of(req.headers());
        let (req, body_in) = B::watch(req);
        let mut record =
            live.rt.access_log.as_ref().map(|_| access_record(&req, started, &request_id, client, &body_in));
        let method = req.method().clone();
        let verdict = match self.role {
            Role::Proxy => None,
            Role::Authorize => Some(authorize::Flavour::of(live.rt.forward_auth.as_ref())),
            Role::AuthorizeGrpc => Some(authorize::Flavour::Grpc),
        };
        let ended = gate.phases(&live, req, &body_in, &request_id, &self, verdict).await;
        let (route, action) = match ended.picked {
            Some(picked) => (picked.route.metrics(), picked.action),
            None => (&live.unmatched, Action::Forward),
        };
        let (mut rsp, outcome, reason) = match ended.result {
            Ok(rsp) => {
                let (outcome, reason) = answered(action, ended.preflight, verdict.is_some(), rsp.status());
                (rsp, outcome, reason)
            }
            Err(err) => {
                let (code, _) = err.code_and_message();
                if err.is_server_fault() {
                    let request_id = request_id.to_str().unwrap_or_default();
                    tracing::warn!(%method, %client, code, request_id, error = %Causes(&err), "request failed")
                } else {
                    tracing::debug!(%method, %client, code, "request refused")
                }
                let (outcome, reason) = failed(&err);
                let rsp = match verdict {
                    Some(flavour) => authorize::refusal(flavour, err.into_response(&live.rt.realm)),
                    None => err.into_response(&live.rt.realm),
                };
                (rsp, outcome, reason)
            }
        };
        let status = rsp.status().as_u16();
        let upstream = ended.upstream;
        route.record(&metrics::Ended { outcome, reason, status, duration: started.elapsed(), upstream });
        rsp.headers_mut().insert(&request_id::X_REQUEST_ID, request_id);
        if let Some((policy, origin)) = &ended.cors {
            cors::decorate(policy, origin.as_ref(), rsp.headers_mut());
        }
        if let Some(record) = record.as_mut() {
            record.rule = ended.picked.map_or_else(|| labels::UNMATCHED.clone(), |p| p.route.label.clone());
            (record.status, record.outcome, record.reason, record.upstream) = (status, outcome, reason, upstream);
            let key = live.rt.access_log.as_ref().and_then(|a| a.subject_key.as_ref());
            record.caller(ended.claims.as_deref(), key);
        }
        Ok(rsp.map(|body| Logged::new(body, record)))
    }
}

/// The access record's request half (boxed: only with `access_log`).
fn access_record<B>(
    req: &Request<B>,
    started: std::time::Instant,
    request_id: &http::HeaderValue,
    client: SocketAddr,
    body_in: &protocol::BodyWatch,
) -> Box<access::Record> {
    Box::new(access::Record {
        started,
        request_id: request_id.clone(),
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
        client,
        body_in: body_in.clone(),
        rule: labels::UNMATCHED.clone(),
        status: 0,
        outcome: Outcome::Refused,
        reason: None,
        upstream: None,
        issuer: None,
        sub_hmac: None,
    })
}

/// The outcome of a request that got an answer (the upstream's, or one of
/// jwtgate's own paths).
fn answered(
    action: Action,
    preflight: bool,
    verdict: bool,
    status: http::StatusCode,
) -> (Outcome, Option<&'static str>) {
    match action {
        _ if preflight => (Outcome::Preflight, None),
        Action::Forward if verdict => (Outcome::Allowed, None),
        Action::Forward => (Outcome::Forwarded, None),
        Action::Logout => (Outcome::LoggedOut, None),
        Action::LogoutAll => (Outcome::LoggedOutEverywhere, None),
        Action::ReceiveBackchannel if status.is_success() => (Outcome::BackchannelLogout, None),
        // The receiver's own 400 (OIDC Back-Channel Logout §2.8).
        Action::ReceiveBackchannel => (Outcome::Refused, Some("invalid_request")),
    }
}

/// The outcome of a request that ended in an error.
fn failed(err: &ProxyError) -> (Outcome, Option<&'static str>) {
    match err {
        ProxyError::StoreUnavailable(_) => (Outcome::StoreUnavailable, None),
        ProxyError::UpstreamUnavailable(_) => (Outcome::UpstreamError, None),
        ProxyError::UpstreamTimeout(_) => (Outcome::UpstreamTimeout, None),
        refusal => (Outcome::Refused, Some(refusal.code_and_message().0)),
    }
}

/// How a request went through the phases.
struct Passage<'l> {
    /// `None`: refused before a route was picked.
    picked: Option<Picked<'l>>,
    result: Result<Response<Body>, ProxyError>,
    /// Request sent → upstream response head, when it was sent.
    upstream: Option<std::time::Duration>,
    /// The verified caller, for the access log.
    claims: Option<Arc<crate::auth::Claims>>,
    /// Answered as a CORS preflight by the route's policy.
    preflight: bool,
    /// The route's CORS policy and the request's `Origin`: the response
    /// gets the policy's headers.
    cors: Option<(&'l CorsPolicy, Option<http::HeaderValue>)>,
}

impl Gate {
    /// The phases in order. Early returns instead of an inner `?` block:
    /// that block would be one more nested future. With a `verdict`
    /// flavour (forward-auth), the request asked about is read from the
    /// check request first, and the end is the verdict, not the upstream.
    async fn phases<'l, B: protocol::Forwardable>(
        &self,
        live: &'l Live,
        req: Request<B>,
        body_in: &protocol::BodyWatch,
        request_id: &http::HeaderValue,
        downstream: &Downstream,
        verdict: Option<authorize::Flavour>,
    ) -> Passage<'l> {
        let (rt, revocations) = (&live.rt, &*self.revocations);
        let (mut head, body) = req.into_parts();
        let ended =
            |picked, result| Passage { picked, result, upstream: None, claims: None, preflight: false, cors: None };
        if let Some(flavour) = verdict {
            if let Err(err) = authorize::original(rt, &downstream.peer, flavour, &mut head) {
                return ended(None, Err(err));
            }
        }
        let decided = admit(rt, &head).and_then(|admitted| {
            let picked = pick(rt, &live.own_paths, &head, &admitted)?;
            // A preflight is decided by the rule its actual request would match.
            let preflight =
                cors::preflight_method(&head).map(|m| (pick::pick_as(rt, &live.own_paths, &admitted, &head, &m), m));
            Ok((picked, preflight, admitted.path.rewritten))
        });
        let (picked, preflight, rewritten) = match decided {
            Ok(decided) => decided,
            Err(err) => return ended(None, Err(err)),
        };
        let forward_preflight = match preflight.map(|(target, m)| (target, cors::preflight(&target, &head, &m))) {
            None | Some((_, cors::Preflight::NoPolicy)) => None,
            Some((target, cors::Preflight::Answered(result))) => {
                return Passage { preflight: result.is_ok(), ..ended(Some(target), result) }
            }
            Some((target, cors::Preflight::Forward)) => Some(target),
        };
        let (picked, caller) = match forward_preflight {
            // Unauthenticated, as a browser sends it: the app's CORS code answers.
            Some(target) => (target, Caller::Anonymous),
            None => match authenticate(rt, revocations, picked.route, &head)
                .await
                .and_then(|c| require(&picked, c, verdict.is_none()))
            {
                Ok(caller) => (picked, caller),
                Err(err) => return Passage { cors: cors_of(&picked, &head), ..ended(Some(picked), Err(err)) },
            },
        };
        let cors = cors_of(&picked, &head);
        let claims = rt.access_log.as_ref().and(caller.claims().cloned());
        match act(rt, revocations, &picked, &caller).await {
            // A verdict lets the logout through: the app's own logout runs.
            Ok(Some(answer)) if verdict.is_none() => {
                return Passage { claims, cors, ..ended(Some(picked), Ok(answer)) }
            }
            Ok(_) => {}
            Err(err) => return Passage { claims, cors, ..ended(Some(picked), Err(err)) },
        }
        let websocket = match prepare(rt, &picked, &mut head, &caller, &downstream.peer, rewritten) {
            Ok(websocket) => websocket,
            Err(err) => return Passage { claims, cors, ..ended(Some(picked), Err(err)) },
        };
        if forward_preflight.is_some() {
            // Never verified: the app must not take it for a checked one.
            head.headers.remove(http::header::AUTHORIZATION);
        }
        if let Some(flavour) = verdict {
            let result = match picked.action {
                Action::ReceiveBackchannel => Err(ProxyError::BackchannelElsewhere),
                _ => authorize::allowed(rt, &head, flavour),
            };
            return Passage { claims, cors, ..ended(Some(picked), result) };
        }
        let Some(body) = body.forwardable() else {
            let err = ProxyError::UpstreamUnavailable(crate::error::Cause::new(protocol::NoBody));
            return Passage { claims, cors, ..ended(Some(picked), Err(err)) };
        };
        head.headers.insert(&request_id::X_REQUEST_ID, request_id.clone());
        let outgoing = forward::Outgoing { req: Request::from_parts(head, body), body: body_in, websocket };
        let sent = std::time::Instant::now();
        let result = forward::deliver(live, revocations, &picked, outgoing, &caller, &downstream.pinned).await;
        Passage { upstream: Some(sent.elapsed()), claims, cors, ..ended(Some(picked), result) }
    }
}

/// The rule's answer policy and the request's `Origin`, for the headers
/// its response gets.
fn cors_of<'l>(
    picked: &Picked<'l>,
    head: &http::request::Parts,
) -> Option<(&'l CorsPolicy, Option<http::HeaderValue>)> {
    match picked.route.cors.as_deref() {
        Some(Cors::Answer(policy)) => Some((policy, cors::origin(&head.headers).cloned())),
        Some(Cors::Forward) | None => None,
    }
}

/// Phase 4: a revoked token is refused, except on the logout path when
/// `relogout` (logout is idempotent: a retry after a 503, or after a write
/// a Redis failover lost, stores the revocation again; a forward-auth
/// verdict has no such exception, since its 200 lets the request reach the
/// app); then the route's requirements.
pub fn require(picked: &Picked<'_>, caller: Caller, relogout: bool) -> Result<Caller, ProxyError> {
    if matches!(caller, Caller::Revoked(_)) && !(relogout && picked.action == Action::Logout) {
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
        F: FnOnce(Arc<Downstream>, Request<hyper::body::Incoming>) -> Fut,
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
