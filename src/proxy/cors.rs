//! CORS on the routes that have a policy (Fetch standard, "CORS
//! protocol"). A browser sends a preflight without credentials, so on an
//! authenticated route it would get a 401 and the page could never call
//! the API: a rule's `cors:` answers it (or sends it to the app, under
//! `preflight: forward`), and adds the response headers the page needs to
//! read the answers (jwtgate's own 401s and 403s included).

use super::pick::Picked;
use crate::error::{Body, ProxyError};
use crate::routes::{Cors, CorsPolicy};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{Either, Full};

/// The method a CORS preflight asks about: `OPTIONS` with one `Origin`
/// and one valid `Access-Control-Request-Method`; `None` for any other
/// request. A browser never repeats them: two of either leave the request
/// an ordinary `OPTIONS` (authenticated as the rule says), so no reading
/// of a second value can pick another rule or skip authentication.
pub fn preflight_method(head: &Parts) -> Option<Method> {
    if head.method != Method::OPTIONS {
        return None;
    }
    single(&head.headers, &ORIGIN)?;
    Method::from_bytes(single(&head.headers, &ACCESS_CONTROL_REQUEST_METHOD)?.as_bytes()).ok()
}

/// The request's `Origin`, when it sent exactly one.
pub fn origin(headers: &HeaderMap) -> Option<&HeaderValue> {
    single(headers, &ORIGIN)
}

fn single<'h>(headers: &'h HeaderMap, name: &http::HeaderName) -> Option<&'h HeaderValue> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// What a preflight gets from the rule its actual request would match.
pub enum Preflight {
    /// The rule has no policy: the preflight is a request like any other.
    NoPolicy,
    /// Answered here: a 204 with the policy's headers, or a refusal.
    Answered(Result<Response<Body>, ProxyError>),
    /// `preflight: forward`: to the app, without authentication.
    Forward,
}

pub fn preflight(target: &Picked<'_>, head: &Parts, requested: &Method) -> Preflight {
    let Some(cors) = target.route.cors.as_deref() else { return Preflight::NoPolicy };
    // A closed rule stays closed, to preflights too.
    if target.route.auth == crate::config::AuthMode::Deny {
        return Preflight::Answered(Err(ProxyError::Forbidden));
    }
    match cors {
        Cors::Forward => Preflight::Forward,
        Cors::Answer(policy) => Preflight::Answered(answer(policy, &head.headers, requested)),
    }
}

fn answer(policy: &CorsPolicy, headers: &HeaderMap, requested: &Method) -> Result<Response<Body>, ProxyError> {
    let origin = single(headers, &ORIGIN).filter(|o| policy.allows_origin(o.as_bytes()));
    let Some(origin) = origin else {
        return Err(ProxyError::CorsRefused("origin not allowed by this route's CORS policy"));
    };
    if !policy.allows_method(requested) {
        return Err(ProxyError::CorsRefused("method not allowed by this route's CORS policy"));
    }
    let mut asked = headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS).iter();
    if !asked.all(|h| policy.allows_headers(h.as_bytes())) {
        return Err(ProxyError::CorsRefused("request header not allowed by this route's CORS policy"));
    }
    let mut rsp = Response::new(Either::Right(Full::default()));
    *rsp.status_mut() = StatusCode::NO_CONTENT;
    let out = rsp.headers_mut();
    out.insert(VARY, HeaderValue::from_static("origin"));
    allow_origin(policy, origin, out);
    // Without a list (a rule on any method), the method asked for.
    let methods = policy.allow_methods.clone().or_else(|| HeaderValue::from_str(requested.as_str()).ok());
    if let Some(methods) = methods {
        out.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    if let Some(allowed) = &policy.allow_headers {
        out.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed.clone());
    }
    out.insert(ACCESS_CONTROL_MAX_AGE, policy.max_age.clone());
    Ok(rsp)
}

/// The headers an actual response on a rule with a policy carries, so the
/// page may read it: always `Vary: Origin` (the answer depends on it), the
/// rest for an allowed origin only.
pub fn decorate(policy: &CorsPolicy, origin: Option<&HeaderValue>, out: &mut HeaderMap) {
    out.append(VARY, HeaderValue::from_static("origin"));
    let Some(origin) = origin.filter(|o| policy.allows_origin(o.as_bytes())) else { return };
    allow_origin(policy, origin, out);
    if let Some(expose) = &policy.expose_headers {
        out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
    }
}

fn allow_origin(policy: &CorsPolicy, origin: &HeaderValue, out: &mut HeaderMap) {
    let value = if policy.any_origin() { HeaderValue::from_static("*") } else { origin.clone() };
    out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
    if policy.credentials {
        out.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}
