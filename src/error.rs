//! Every way a request can end early, and the one table that maps each to
//! an HTTP status, an RFC 6750 challenge and a JSON body. Messages are fixed
//! strings: no token content, no internals.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use std::sync::Arc;

/// A response body: streamed from the upstream, or a small one of ours.
pub type Body = Either<Incoming, Full<Bytes>>;

/// Why a token (or the lack of one) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    NoToken,
    InvalidRequest(&'static str),
    Malformed,
    TooLarge,
    UnsupportedCrit,
    AlgorithmNotAllowed,
    UnknownKey,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    Expired,
    NotYetValid,
    InvalidClaims(&'static str),
    MissingJti,
    Revoked,
}

/// Why a request was not forwarded.
#[derive(Debug, Clone)]
pub enum ProxyError {
    Refused(Rejection),
    /// A valid token that does not meet the route's requirements (403);
    /// `scope` lists the route's required scopes (may be empty).
    InsufficientScope {
        why: &'static str,
        scope: std::sync::Arc<str>,
    },
    AmbiguousPath,
    /// `//x` under `repeated_slashes: reject`.
    RepeatedSlashes,
    /// A method not in upper case, or a method override (`X-HTTP-Method-
    /// Override`, `_method`) under which the rules would decide otherwise:
    /// rules decided on one reading, the app would act on the other.
    AmbiguousMethod,
    /// Two Host headers, or a Host that is not ASCII.
    AmbiguousHost,
    Forbidden,
    /// A CORS preflight the route's policy does not allow: the origin, the
    /// method or a requested header (the message says which).
    CorsRefused(&'static str),
    MethodNotAllowed,
    /// A `Transfer-Encoding` other than `chunked` alone (RFC 9112 §6.1).
    UnsupportedTransferCoding,
    /// The request body broke on the client side: bad chunk framing, EOF
    /// before its end, a reset stream. The upstream request was aborted.
    MalformedBody,
    /// More header fields, or a larger header list, than the server limits.
    HeadersTooLarge,
    /// The revocation store failed (and `on_store_error` refuses), or a
    /// logout's write did: the cause is the store's error.
    StoreUnavailable(Cause),
    /// The upstream could not be reached or answered in a way jwtgate
    /// cannot relay; the cause says which.
    UpstreamUnavailable(Cause),
    /// No response head within the upstream's `timeout`.
    UpstreamTimeout(std::time::Duration),
    /// A forward-auth check from a peer not in `trusted_proxies`.
    UntrustedForwardAuthPeer,
    /// A forward-auth check whose original request cannot be read (the
    /// message names the header).
    InvalidForwardAuth(&'static str),
    /// The back-channel path asked about through forward-auth: the
    /// receiver reads the logout token from the body, which no auth
    /// request carries.
    BackchannelElsewhere,
}

/// Every code [`ProxyError::code_and_message`] gives a refusal (an error
/// that is not [`ProxyError::is_server_fault`]): the `reason` label values
/// registered at 0 for each route. A test checks each refusal is listed.
pub const REFUSAL_CODES: &[&str] = &[
    "missing_token",
    "invalid_request",
    "malformed_token",
    "token_too_large",
    "unsupported_critical_header",
    "algorithm_not_allowed",
    "unknown_key",
    "invalid_signature",
    "wrong_issuer",
    "wrong_audience",
    "token_expired",
    "token_not_yet_valid",
    "invalid_claims",
    "missing_jti",
    "token_revoked",
    "insufficient_scope",
    "ambiguous_path",
    "repeated_slashes",
    "ambiguous_method",
    "ambiguous_host",
    "forbidden",
    "cors_not_allowed",
    "method_not_allowed",
    "unsupported_transfer_coding",
    "malformed_body",
    "headers_too_large",
    "untrusted_peer",
    "invalid_forward_auth_request",
    "backchannel_elsewhere",
];

/// What made the store or the upstream fail, for the log line (the client
/// gets the fixed message). Type-erased so this module, at the bottom of
/// the crate, names no store or client type; shared because a failed store
/// look-up can answer several waiting requests.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(err))
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code_and_message().1)
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyError::StoreUnavailable(cause) | ProxyError::UpstreamUnavailable(cause) => Some(&*cause.0),
            _ => None,
        }
    }
}

/// An error and the chain of its causes, `what: why: root cause`, for log
/// lines and the command line (an error's own `Display` leaves its source
/// out, as the convention is, so printing only it would lose the why).
pub struct Causes<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

impl From<Rejection> for ProxyError {
    fn from(r: Rejection) -> Self {
        ProxyError::Refused(r)
    }
}

/// The RFC 6750 §3.1 error attribute of a challenge, when there is one.
enum Challenge {
    None,
    Bare,
    Error(&'static str),
}

impl Rejection {
    /// (JSON `error` code, human description) — the description doubles as
    /// `error_description` in the challenge, so it stays short and fixed.
    pub fn code_and_message(&self) -> (&'static str, &'static str) {
        use Rejection::*;
        match self {
            NoToken => ("missing_token", "a bearer token is required"),
            InvalidRequest(why) => ("invalid_request", why),
            Malformed => ("malformed_token", "token is not a well-formed JWT"),
            TooLarge => ("token_too_large", "token exceeds the size limit"),
            UnsupportedCrit => ("unsupported_critical_header", "token has a crit header this gate does not understand"),
            AlgorithmNotAllowed => ("algorithm_not_allowed", "token algorithm is not allowed"),
            UnknownKey => ("unknown_key", "no key matches the token"),
            BadSignature => ("invalid_signature", "token signature is invalid"),
            WrongIssuer => ("wrong_issuer", "token issuer is not accepted"),
            WrongAudience => ("wrong_audience", "token audience is not accepted"),
            Expired => ("token_expired", "token has expired"),
            NotYetValid => ("token_not_yet_valid", "token is not valid yet"),
            InvalidClaims(why) => ("invalid_claims", why),
            MissingJti => ("missing_jti", "token has no jti and cannot be revoked"),
            Revoked => ("token_revoked", "token has been revoked"),
        }
    }
}

impl ProxyError {
    /// The only status table. No `_` arm: a new variant forces a decision.
    fn status_and_challenge(&self) -> (StatusCode, Challenge) {
        use Rejection::*;
        match self {
            // RFC 6750 §3.1: no error code when no credentials were sent.
            ProxyError::Refused(NoToken) => (StatusCode::UNAUTHORIZED, Challenge::Bare),
            ProxyError::Refused(InvalidRequest(_)) => (StatusCode::BAD_REQUEST, Challenge::Error("invalid_request")),
            ProxyError::Refused(
                Malformed | TooLarge | UnsupportedCrit | AlgorithmNotAllowed | UnknownKey | BadSignature | WrongIssuer
                | WrongAudience | Expired | NotYetValid | InvalidClaims(_) | MissingJti | Revoked,
            ) => (StatusCode::UNAUTHORIZED, Challenge::Error("invalid_token")),
            ProxyError::InsufficientScope { .. } => (StatusCode::FORBIDDEN, Challenge::Error("insufficient_scope")),
            ProxyError::AmbiguousPath => (StatusCode::BAD_REQUEST, Challenge::None),
            ProxyError::RepeatedSlashes => (StatusCode::BAD_REQUEST, Challenge::None),
            ProxyError::AmbiguousMethod => (StatusCode::BAD_REQUEST, Challenge::None),
            ProxyError::AmbiguousHost => (StatusCode::BAD_REQUEST, Challenge::None),
            ProxyError::Forbidden => (StatusCode::FORBIDDEN, Challenge::None),
            ProxyError::CorsRefused(_) => (StatusCode::FORBIDDEN, Challenge::None),
            ProxyError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, Challenge::None),
            ProxyError::UnsupportedTransferCoding => (StatusCode::NOT_IMPLEMENTED, Challenge::None),
            ProxyError::MalformedBody => (StatusCode::BAD_REQUEST, Challenge::None),
            ProxyError::HeadersTooLarge => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, Challenge::None),
            ProxyError::StoreUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, Challenge::None),
            ProxyError::UpstreamUnavailable(_) => (StatusCode::BAD_GATEWAY, Challenge::None),
            ProxyError::UpstreamTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, Challenge::None),
            ProxyError::UntrustedForwardAuthPeer => (StatusCode::FORBIDDEN, Challenge::None),
            ProxyError::InvalidForwardAuth(_) => (StatusCode::BAD_REQUEST, Challenge::None),
            ProxyError::BackchannelElsewhere => (StatusCode::FORBIDDEN, Challenge::None),
        }
    }

    /// True when the store or the upstream failed, not the client: logged
    /// at warn (client faults at debug). No `_` arm, as in the status table.
    pub fn is_server_fault(&self) -> bool {
        use ProxyError::*;
        match self {
            StoreUnavailable(_) | UpstreamUnavailable(_) | UpstreamTimeout(_) => true,
            Refused(_)
            | InsufficientScope { .. }
            | AmbiguousPath
            | RepeatedSlashes
            | AmbiguousMethod
            | AmbiguousHost
            | Forbidden
            | CorsRefused(_)
            | MethodNotAllowed
            | UnsupportedTransferCoding
            | MalformedBody
            | HeadersTooLarge
            | UntrustedForwardAuthPeer
            | InvalidForwardAuth(_)
            | BackchannelElsewhere => false,
        }
    }

    pub fn code_and_message(&self) -> (&'static str, &'static str) {
        match self {
            ProxyError::Refused(r) => r.code_and_message(),
            ProxyError::InsufficientScope { why, .. } => ("insufficient_scope", why),
            ProxyError::AmbiguousPath => ("ambiguous_path", "path has dot segments or encoded separators"),
            ProxyError::RepeatedSlashes => ("repeated_slashes", "path has repeated slashes"),
            ProxyError::AmbiguousMethod => {
                ("ambiguous_method", "method not in upper case, or overridden to one the rules treat differently")
            }
            ProxyError::AmbiguousHost => ("ambiguous_host", "more than one Host header, or a Host that is not ASCII"),
            ProxyError::Forbidden => ("forbidden", "this route is closed"),
            ProxyError::CorsRefused(why) => ("cors_not_allowed", why),
            ProxyError::MethodNotAllowed => ("method_not_allowed", "CONNECT is not supported"),
            ProxyError::UnsupportedTransferCoding => {
                ("unsupported_transfer_coding", "the only transfer coding accepted is chunked, alone")
            }
            ProxyError::MalformedBody => ("malformed_body", "request body framing is malformed or incomplete"),
            ProxyError::HeadersTooLarge => ("headers_too_large", "too many header fields, or header fields too large"),
            ProxyError::StoreUnavailable(_) => ("store_unavailable", "revocation store unavailable"),
            ProxyError::UpstreamUnavailable(_) => ("upstream_unavailable", "upstream unavailable"),
            ProxyError::UpstreamTimeout(_) => ("upstream_timeout", "upstream did not answer in time"),
            ProxyError::UntrustedForwardAuthPeer => ("untrusted_peer", "forward-auth answers trusted proxies only"),
            ProxyError::InvalidForwardAuth(why) => ("invalid_forward_auth_request", why),
            ProxyError::BackchannelElsewhere => {
                ("backchannel_elsewhere", "back-channel logout is received on jwtgate's own listener")
            }
        }
    }

    /// The response for this error; `realm` goes into the challenge.
    /// The status this error answers with (from the one status table).
    pub fn status(&self) -> StatusCode {
        self.status_and_challenge().0
    }

    pub fn into_response(&self, realm: &str) -> Response<Body> {
        let (status, challenge) = self.status_and_challenge();
        let (code, message) = self.code_and_message();
        let mut rsp = error_response(status, ErrorFields::Jwtgate, code, message);
        let header = match challenge {
            Challenge::None => None,
            Challenge::Bare => Some(format!("Bearer realm=\"{realm}\"")),
            Challenge::Error(e) => {
                Some(format!("Bearer realm=\"{realm}\", error=\"{e}\", error_description=\"{message}\""))
            }
        };
        let header = match (self, header) {
            (ProxyError::InsufficientScope { scope, .. }, Some(h)) if !scope.is_empty() => {
                Some(format!("{h}, scope=\"{scope}\""))
            }
            (_, h) => h,
        };
        if let Some(value) = header.and_then(|h| HeaderValue::from_str(&h).ok()) {
            rsp.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            rsp.headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"));
        }
        rsp
    }
}

/// The field names of an error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFields {
    /// jwtgate's own (proxy and admin): `{"error": code, "message": text}`.
    Jwtgate,
    /// OAuth 2.0's (RFC 6749 §5.2), which OIDC Back-Channel Logout 1.0 §2.8
    /// prescribes for the receiver: `{"error": code, "error_description": text}`.
    OAuth,
}

/// Every JSON error body jwtgate sends, in one place.
pub fn error_response(status: StatusCode, fields: ErrorFields, code: &str, message: &str) -> Response<Body> {
    let text = match fields {
        ErrorFields::Jwtgate => "message",
        ErrorFields::OAuth => "error_description",
    };
    let mut body = serde_json::Map::new();
    body.insert("error".into(), code.into());
    body.insert(text.into(), message.into());
    json_response(status, &serde_json::Value::Object(body))
}

/// A small JSON response of our own (never cached by intermediaries).
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut rsp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    rsp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause() -> Cause {
        Cause::new(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused"))
    }

    #[test]
    fn causes_print_the_chain_the_client_never_sees() {
        #[derive(Debug, thiserror::Error)]
        #[error("redis command failed")]
        struct Failed(#[source] std::io::Error);
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let err = ProxyError::StoreUnavailable(Cause::new(Failed(root)));
        assert_eq!(Causes(&err).to_string(), "revocation store unavailable: redis command failed: connection refused");
        let body = err.into_response("r");
        assert_eq!(body.status(), 503);
        assert_eq!(Causes(&ProxyError::Forbidden).to_string(), "this route is closed");
    }

    #[test]
    fn every_row_of_the_table() {
        use Rejection::*;
        let rows: &[(ProxyError, u16, Option<&str>, &str)] = &[
            (NoToken.into(), 401, Some(r#"Bearer realm="r""#), "missing_token"),
            (InvalidRequest("x").into(), 400, Some(r#"error="invalid_request""#), "invalid_request"),
            (Malformed.into(), 401, Some(r#"error="invalid_token""#), "malformed_token"),
            (TooLarge.into(), 401, Some(r#"error="invalid_token""#), "token_too_large"),
            (UnsupportedCrit.into(), 401, Some(r#"error="invalid_token""#), "unsupported_critical_header"),
            (AlgorithmNotAllowed.into(), 401, Some(r#"error="invalid_token""#), "algorithm_not_allowed"),
            (UnknownKey.into(), 401, Some(r#"error="invalid_token""#), "unknown_key"),
            (BadSignature.into(), 401, Some(r#"error="invalid_token""#), "invalid_signature"),
            (WrongIssuer.into(), 401, Some(r#"error="invalid_token""#), "wrong_issuer"),
            (WrongAudience.into(), 401, Some(r#"error="invalid_token""#), "wrong_audience"),
            (Expired.into(), 401, Some(r#"error="invalid_token""#), "token_expired"),
            (NotYetValid.into(), 401, Some(r#"error="invalid_token""#), "token_not_yet_valid"),
            (InvalidClaims("x").into(), 401, Some(r#"error="invalid_token""#), "invalid_claims"),
            (MissingJti.into(), 401, Some(r#"error="invalid_token""#), "missing_jti"),
            (Revoked.into(), 401, Some(r#"error="invalid_token""#), "token_revoked"),
            (ProxyError::AmbiguousPath, 400, None, "ambiguous_path"),
            (ProxyError::RepeatedSlashes, 400, None, "repeated_slashes"),
            (ProxyError::AmbiguousMethod, 400, None, "ambiguous_method"),
            (ProxyError::AmbiguousHost, 400, None, "ambiguous_host"),
            (ProxyError::Forbidden, 403, None, "forbidden"),
            (ProxyError::CorsRefused("x"), 403, None, "cors_not_allowed"),
            (ProxyError::MethodNotAllowed, 405, None, "method_not_allowed"),
            (ProxyError::UnsupportedTransferCoding, 501, None, "unsupported_transfer_coding"),
            (ProxyError::MalformedBody, 400, None, "malformed_body"),
            (ProxyError::HeadersTooLarge, 431, None, "headers_too_large"),
            (ProxyError::UntrustedForwardAuthPeer, 403, None, "untrusted_peer"),
            (ProxyError::InvalidForwardAuth("x"), 400, None, "invalid_forward_auth_request"),
            (ProxyError::BackchannelElsewhere, 403, None, "backchannel_elsewhere"),
            (ProxyError::StoreUnavailable(cause()), 503, None, "store_unavailable"),
            (ProxyError::UpstreamUnavailable(cause()), 502, None, "upstream_unavailable"),
            (ProxyError::UpstreamTimeout(std::time::Duration::from_secs(1)), 504, None, "upstream_timeout"),
            (
                ProxyError::InsufficientScope { why: "x", scope: "orders:read admin".into() },
                403,
                Some(r#"error="insufficient_scope", error_description="x", scope="orders:read admin""#),
                "insufficient_scope",
            ),
        ];
        for (err, status, challenge, code) in rows {
            let rsp = err.into_response("r");
            assert_eq!(rsp.status().as_u16(), *status, "{err:?}");
            let got = rsp.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string());
            match challenge {
                Some(part) => assert!(got.as_deref().unwrap_or("").contains(part), "{err:?}: {got:?}"),
                None => assert_eq!(got, None, "{err:?}"),
            }
            assert_eq!(err.code_and_message().0, *code);
            assert_eq!(err.is_server_fault(), matches!(status, 502..=504), "{err:?}: whose fault");
            let listed = REFUSAL_CODES.contains(code);
            assert_eq!(listed, !err.is_server_fault(), "{code}: a refusal iff in REFUSAL_CODES");
        }
        let distinct: std::collections::BTreeSet<_> = rows.iter().map(|r| r.3).collect();
        assert_eq!(distinct.len(), REFUSAL_CODES.len() + 3, "every listed code has a row");
    }
}
