//! The hyper service: the phases of a request, in order. Each phase passes
//! the request on or ends it with a [`ProxyError`]; `handle` turns errors
//! into responses and owns logging.
//!
//! 1. refuse CONNECT;
//! 2. refuse ambiguous paths;
//! 3. pick the route (the logout path is always `required`);
//! 4. extract and verify the token;
//! 5. check revocation;
//! 6. logout: revoke and answer (or forward); logout-all: revoke the
//!    subject; back-channel logout: verify the logout token, revoke;
//! 7. forward.

mod backchannel;
mod forward;
pub mod headers;
mod logout;

pub use forward::Upstream;

use crate::auth::{self, Claims};
use crate::config::AuthMode;
use crate::error::{Body, ProxyError};
use crate::revocation::Revocations;
use crate::routes::matchable_path;
use crate::runtime::Runtime;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything a request needs, shared by all connections.
pub struct Gate {
    pub runtime: Arc<Runtime>,
    pub revocations: Arc<Revocations>,
    pub upstream: Upstream,
}

impl Gate {
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Response<Body>, Infallible> {
        let method = req.method().clone();
        let mut route = labels::UNMATCHED.clone();
        let rsp = match self.phases(req, client, &mut route).await {
            Ok(rsp) => {
                metrics::counter!("jwtgate_requests_total", "route" => route, "outcome" => "forwarded").increment(1);
                rsp
            }
            Err(err) => {
                let (code, _) = err.code_and_message();
                match err {
                    ProxyError::StoreUnavailable | ProxyError::UpstreamUnavailable | ProxyError::UpstreamTimeout => {
                        tracing::warn!(%method, %client, code, "request failed")
                    }
                    _ => tracing::debug!(%method, %client, code, "request refused"),
                }
                metrics::counter!("jwtgate_requests_total", "route" => route, "outcome" => code).increment(1);
                err.into_response(&self.runtime.realm)
            }
        };
        Ok(rsp)
    }

    /// The phases in order; `route` is set to the matched rule's metric label.
    async fn phases(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        route: &mut Arc<str>,
    ) -> Result<Response<Body>, ProxyError> {
        let rt = &self.runtime;
        if req.method() == Method::CONNECT {
            return Err(ProxyError::MethodNotAllowed);
        }
        let path = matchable_path(req.uri().path()).ok_or(ProxyError::AmbiguousPath)?;
        let special = Special::of(rt, req.method(), &path);
        let auth = match special {
            Special::Backchannel => {
                *route = labels::BACKCHANNEL.clone();
                return backchannel::receive(rt, &self.revocations, req).await;
            }
            Special::Logout => {
                *route = labels::LOGOUT.clone();
                AuthMode::Required
            }
            Special::LogoutAll => {
                *route = labels::LOGOUT_ALL.clone();
                AuthMode::Required
            }
            Special::None => {
                let (auth, label) = rt.routes.pick_labelled(req.method(), &path);
                *route = label.clone();
                auth
            }
        };
        drop(path);
        let claims = match auth {
            AuthMode::Deny => return Err(ProxyError::Forbidden),
            AuthMode::None => None,
            AuthMode::Required => Some(self.authenticate(&req).await?),
        };
        match (special, &claims) {
            (Special::Logout, Some(claims)) => {
                let revoked = self.revocations.revoke_token(claims).await?;
                tracing::info!(iss = %claims.iss, jti = ?claims.jti, "token revoked by logout");
                if !rt.logout.forward {
                    return Ok(logout::answer(&revoked));
                }
            }
            (Special::LogoutAll, Some(claims)) => return logout::everywhere(&self.revocations, claims).await,
            _ => {}
        }
        self.upstream.send(req, client).await
    }

    /// Token → verified claims → not revoked.
    async fn authenticate(&self, req: &Request<Incoming>) -> Result<Arc<Claims>, ProxyError> {
        let rt = &self.runtime;
        let raw = auth::extract(req.headers(), rt.cookie.as_deref())?;
        let claims = rt.verifier.verify(raw, auth::now_unix())?;
        self.revocations.ensure_live(&claims, raw).await?;
        Ok(claims)
    }
}

/// Metric labels of jwtgate's own paths.
mod labels {
    use std::sync::{Arc, LazyLock};
    pub static UNMATCHED: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("unmatched"));
    pub static LOGOUT: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("logout"));
    pub static LOGOUT_ALL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("logout_all"));
    pub static BACKCHANNEL: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("backchannel_logout"));
}

/// Paths jwtgate answers itself (or acts on before forwarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    Logout,
    LogoutAll,
    Backchannel,
}

impl Special {
    fn of(rt: &Runtime, method: &Method, path: &str) -> Self {
        if rt.logout.matches(method, path) {
            Special::Logout
        } else if rt.logout_all.as_ref().is_some_and(|r| r.matches(method, path)) {
            Special::LogoutAll
        } else if rt.backchannel.as_ref().is_some_and(|b| b.path == path) {
            Special::Backchannel
        } else {
            Special::None
        }
    }
}
