//! The hyper service: the phases of a request, in order. Each phase passes
//! the request on or ends it with a [`ProxyError`]; `handle` turns errors
//! into responses and owns logging.
//!
//! 1. refuse CONNECT;
//! 2. refuse ambiguous paths;
//! 3. pick the route (the logout path is always `required`);
//! 4. extract and verify the token;
//! 5. check revocation;
//! 6. logout: revoke and answer (or forward);
//! 7. forward.

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
        Ok(match self.phases(req, client).await {
            Ok(rsp) => rsp,
            Err(err) => {
                let (code, _) = err.code_and_message();
                match err {
                    ProxyError::StoreUnavailable | ProxyError::UpstreamUnavailable | ProxyError::UpstreamTimeout => {
                        tracing::warn!(%method, %client, code, "request failed")
                    }
                    _ => tracing::debug!(%method, %client, code, "request refused"),
                }
                err.into_response(&self.runtime.realm)
            }
        })
    }

    async fn phases(&self, req: Request<Incoming>, client: SocketAddr) -> Result<Response<Body>, ProxyError> {
        let rt = &self.runtime;
        if req.method() == Method::CONNECT {
            return Err(ProxyError::MethodNotAllowed);
        }
        let path = matchable_path(req.uri().path()).ok_or(ProxyError::AmbiguousPath)?;
        let is_logout = rt.logout.matches(req.method(), &path);
        let auth = if is_logout { AuthMode::Required } else { rt.routes.pick(req.method(), &path) };
        drop(path);
        let claims = match auth {
            AuthMode::Deny => return Err(ProxyError::Forbidden),
            AuthMode::None => None,
            AuthMode::Required => Some(self.authenticate(&req).await?),
        };
        if let (true, Some(claims)) = (is_logout, &claims) {
            let revoked = self.revocations.revoke(claims, auth::now_unix()).await?;
            tracing::info!(iss = %claims.iss, jti = ?claims.jti, "token revoked by logout");
            if !rt.logout.forward {
                return Ok(logout::answer(&revoked));
            }
        }
        self.upstream.send(req, client).await
    }

    /// Token → verified claims → not revoked.
    async fn authenticate(&self, req: &Request<Incoming>) -> Result<Arc<Claims>, ProxyError> {
        let rt = &self.runtime;
        let raw = auth::extract(req.headers(), rt.cookie.as_deref())?;
        let now = auth::now_unix();
        let claims = rt.verifier.verify(raw, now)?;
        self.revocations.ensure_live(&claims, now).await?;
        Ok(claims)
    }
}
