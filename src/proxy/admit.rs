//! Phase 1, admit: what every request must be before any rule is read.
//! Framing and header limits ([`super::protocol`]), no CONNECT, a method in
//! upper case (Django, Werkzeug and Symfony upper-case it before routing,
//! rules compare it as sent), one reading of the path for every decision
//! and for the upstream, one unambiguous host.

use super::protocol;
use crate::error::ProxyError;
use crate::routes::{normalize_path, RequestPath};
use crate::runtime::Runtime;
use http::header::HOST;
use http::request::Parts;
use http::Method;

/// An admitted request: its path as decided on, and its host.
pub struct Admitted<'r> {
    pub path: RequestPath<'r>,
    /// Without port or trailing dot; `None` when the request names none.
    pub host: Option<&'r str>,
}

pub fn admit<'r>(rt: &Runtime, head: &'r Parts) -> Result<Admitted<'r>, ProxyError> {
    protocol::check_head(head)?;
    if head.method == Method::CONNECT {
        return Err(ProxyError::MethodNotAllowed);
    }
    if head.method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(ProxyError::AmbiguousMethod);
    }
    let path = normalize_path(head.uri.path(), rt.paths)?;
    Ok(Admitted { path, host: request_host(head)? })
}

/// The request's host without port or trailing dot: the Host header, else
/// the HTTP/2 `:authority`. Two Host headers, or one that is not ASCII, are
/// refused: an upstream could read a different host than the rules did.
fn request_host(head: &Parts) -> Result<Option<&str>, ProxyError> {
    let mut hosts = head.headers.get_all(HOST).iter();
    let raw = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(ProxyError::AmbiguousHost),
        (Some(h), None) => h.to_str().map_err(|_| ProxyError::AmbiguousHost)?,
        (None, _) => match head.uri.authority() {
            Some(a) => a.as_str(),
            None => return Ok(None),
        },
    };
    let host = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => raw.rsplit_once(':').map_or(raw, |(host, _)| host),
    };
    Ok(Some(host.strip_suffix('.').unwrap_or(host)))
}
