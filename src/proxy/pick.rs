//! Phase 2, pick: the route that decides the request. jwtgate's own paths
//! (logout, logout-all, the back-channel receiver) are routes with an
//! action, consulted before the config's rules so they take precedence;
//! every other request gets the first matching rule (or the default).
//! A method override (`X-HTTP-Method-Override`, `_method`) the app may act
//! on is picked too, and refused unless it picks the same.

use super::admit::Admitted;
use super::headers;
use crate::config::AuthMode;
use crate::error::ProxyError;
use crate::routes::{PathMatch, RequestHead, Route};
use crate::runtime::{LogoutRule, Runtime};
use http::request::Parts;
use std::sync::Arc;

/// What a picked route does besides (or instead of) forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A rule of the config (or the default): forward when allowed.
    Forward,
    /// Revoke the caller's token (answer, or forward with `logout.forward`).
    Logout,
    /// Revoke every token of the caller's subject.
    LogoutAll,
    /// The OIDC back-channel logout receiver answers (never forwarded).
    ReceiveBackchannel,
}

/// The route a request falls under and what it does.
#[derive(Clone, Copy)]
pub struct Picked<'a> {
    pub route: &'a Route,
    pub action: Action,
}

/// jwtgate's own paths as routes, built once per config snapshot.
pub struct OwnPaths(Vec<(Route, Action)>);

impl OwnPaths {
    pub fn of(rt: &Runtime) -> Self {
        let mut own = Vec::new();
        let mut add = |rule: &LogoutRule, label: &str, action: Action| {
            // A path rule without methods answers none (as configured).
            if !rule.methods.is_empty() {
                let mut route =
                    Route::simple(PathMatch::Exact(rule.path.clone()), rule.methods.clone(), AuthMode::Required);
                route.label = Arc::from(label);
                route.cors.clone_from(&rule.cors);
                own.push((route, action));
            }
        };
        add(&rt.logout, "logout", Action::Logout);
        if let Some(rule) = &rt.logout_all {
            add(rule, "logout_all", Action::LogoutAll);
        }
        if let Some(bcl) = &rt.backchannel {
            // Any method: the receiver itself answers a GET with 400. It
            // verifies the logout token in the body, not a bearer token.
            let mut route = Route::simple(PathMatch::Exact(bcl.path.clone()), Vec::new(), AuthMode::None);
            route.label = Arc::from("backchannel_logout");
            own.push((route, Action::ReceiveBackchannel));
        }
        Self(own)
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.0.iter().map(|(route, _)| route)
    }

    fn pick<'a>(&'a self, rt: &'a Runtime, request: &RequestHead<'_>) -> Picked<'a> {
        match self.0.iter().find(|(route, _)| route.matches(request)) {
            Some((route, action)) => Picked { route, action: *action },
            None => Picked { route: rt.routes.pick(request), action: Action::Forward },
        }
    }
}

/// The route a request with `method` instead of its own would get (a
/// CORS preflight's actual request); no method override is read.
pub fn pick_as<'a>(
    rt: &'a Runtime,
    own: &'a OwnPaths,
    admitted: &Admitted<'_>,
    head: &Parts,
    method: &http::Method,
) -> Picked<'a> {
    own.pick(rt, &RequestHead { method, host: admitted.host, path: &admitted.path.decide, headers: &head.headers })
}

pub fn pick<'a>(
    rt: &'a Runtime,
    own: &'a OwnPaths,
    head: &Parts,
    admitted: &Admitted<'_>,
) -> Result<Picked<'a>, ProxyError> {
    let request =
        RequestHead { method: &head.method, host: admitted.host, path: &admitted.path.decide, headers: &head.headers };
    let picked = own.pick(rt, &request);
    if let Some(other) = headers::method_override(&head.method, &head.headers, head.uri.query())? {
        // The rules decided on one method; the app may act on the other.
        let again = own.pick(rt, &RequestHead { method: &other, ..request });
        if again.action != picked.action || !std::ptr::eq(again.route, picked.route) {
            return Err(ProxyError::AmbiguousMethod);
        }
    }
    Ok(picked)
}
