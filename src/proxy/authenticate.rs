//! Phase 3, authenticate: token → verified claims → not revoked, as the
//! route's mode asks (`optional`: no token passes, a bad one does not).
//! A revoked token keeps its claims, so the logout path can revoke it again.

use super::backchannel;
use crate::auth::{self, Claims};
use crate::config::AuthMode;
use crate::error::{ProxyError, Rejection};
use crate::revocation::Revocations;
use crate::routes::Route;
use crate::runtime::Runtime;
use http::request::Parts;
use std::sync::Arc;

/// Who is calling, as far as the route asked.
pub enum Caller {
    /// No token was asked for (`none`), or none was sent (`optional`).
    Anonymous,
    /// A verified token that is not revoked.
    Live(Arc<Claims>),
    /// A verified token that has been revoked.
    Revoked(Arc<Claims>),
}

impl Caller {
    /// The verified claims, revoked or not.
    pub fn claims(&self) -> Option<&Arc<Claims>> {
        match self {
            Caller::Anonymous => None,
            Caller::Live(claims) | Caller::Revoked(claims) => Some(claims),
        }
    }
}

pub async fn authenticate(
    rt: &Runtime,
    revocations: &Revocations,
    route: &Route,
    head: &Parts,
) -> Result<Caller, ProxyError> {
    match route.auth {
        AuthMode::Deny => return Err(ProxyError::Forbidden),
        AuthMode::None => return Ok(Caller::Anonymous),
        AuthMode::Required | AuthMode::Optional => {}
    }
    auth::extract::refuse_query_token(head.uri.query())?;
    let raw = match auth::extract(&head.headers, rt.cookie.as_deref()) {
        Err(Rejection::NoToken) if route.auth == AuthMode::Optional => return Ok(Caller::Anonymous),
        other => other?,
    };
    let claims = rt.verifier.verify(raw, auth::now_unix())?;
    if backchannel::is_logout_token(&claims.payload) {
        return Err(Rejection::InvalidClaims("a logout token is not an access token").into());
    }
    match revocations.ensure_live(&claims, raw).await {
        Ok(()) => Ok(Caller::Live(claims)),
        Err(ProxyError::Refused(Rejection::Revoked)) => Ok(Caller::Revoked(claims)),
        Err(err) => Err(err),
    }
}
