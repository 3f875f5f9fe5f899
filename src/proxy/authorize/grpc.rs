//! Envoy's (and Istio's `CUSTOM` action's) gRPC `Check`, as the phases
//! see it: a `CheckRequest` read as the request it asks about, and the
//! answer written as a `CheckResponse` Envoy applies.
//!
//! - Allowed (2xx): status OK with an `OkHttpResponse` whose headers Envoy
//!   sets on the request it forwards (overwriting a client's copy) and
//!   whose `headers_to_remove` are the claim headers not set (a client's
//!   spoofed copy must not reach the app); a CORS policy's headers go
//!   to the client's response instead (`response_headers_to_add`).
//! - Refused: a `DeniedHttpResponse` with jwtgate's status, headers
//!   (challenge, content type) and JSON body, which Envoy sends to the
//!   client; the gRPC status says why in gRPC's terms.

use super::ENVOY_HEADERS_TO_REMOVE;
use bytes::Bytes;
use envoy_types::ext_authz::v3::pb::{
    CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue as PbHeaderValue,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use http::header::{HeaderName, CACHE_CONTROL, CONTENT_LENGTH, HOST, VARY};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};

/// A refusal's body is jwtgate's own small JSON; anything longer is not
/// one of ours and is not relayed.
const MAX_DENIED_BODY: usize = 16 * 1024;

/// Why a `CheckRequest` could not be read as a request (400
/// `invalid_forward_auth_request`; the message names the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreadable {
    NoHttp,
    BadMethod,
    BadPath,
    BadHost,
    BadHeader,
}

impl Unreadable {
    fn message(self) -> &'static str {
        match self {
            Unreadable::NoHttp => "the CheckRequest has no attributes.request.http",
            Unreadable::BadMethod => "attributes.request.http.method is not a method",
            Unreadable::BadPath => "attributes.request.http.path is not a path (origin form, no fragment)",
            Unreadable::BadHost => "attributes.request.http.host is not a header value",
            Unreadable::BadHeader => "a header in attributes.request.http is not a valid header",
        }
    }
}

/// Marks the request handed to the phases for a check that could not be
/// read: the phases refuse it (400 `invalid_forward_auth_request` with
/// this message, after the peer's trust is decided, as on the HTTP
/// listener), counted and logged like any other refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unread(pub &'static str);

/// The request `check` asks about: its method, path with query, `Host`
/// and headers, without a body (the phases never read one); or, when it
/// cannot be read, an empty request marked [`Unread`].
pub fn original(check: &CheckRequest) -> Request<()> {
    read(check).unwrap_or_else(|unreadable| {
        let mut req = Request::new(());
        req.extensions_mut().insert(Unread(unreadable.message()));
        req
    })
}

fn read(check: &CheckRequest) -> Result<Request<()>, Unreadable> {
    let http = check
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .ok_or(Unreadable::NoHttp)?;
    let method = Method::from_bytes(http.method.as_bytes()).map_err(|_| Unreadable::BadMethod)?;
    // `Uri` parsing drops a fragment: the rules would decide on less than
    // the path Envoy forwards.
    if http.path.contains('#') {
        return Err(Unreadable::BadPath);
    }
    let uri: Uri = http.path.parse().map_err(|_| Unreadable::BadPath)?;
    if uri.scheme().is_some() || uri.authority().is_some() || !uri.path().starts_with('/') {
        return Err(Unreadable::BadPath);
    }
    let mut req = Request::new(());
    (*req.method_mut(), *req.uri_mut()) = (method, uri);
    let headers = req.headers_mut();
    // `header_map` replaces `headers` when Envoy is told to send raw
    // (possibly non-UTF-8) values (`encode_raw_headers`).
    match http.header_map.as_ref().filter(|map| !map.headers.is_empty()) {
        Some(map) => {
            for field in &map.headers {
                let value = if field.raw_value.is_empty() { field.value.as_bytes() } else { &field.raw_value };
                add(headers, &field.key, value)?;
            }
        }
        None => {
            for (name, value) in &http.headers {
                add(headers, name, value.as_bytes())?;
            }
        }
    }
    if !http.host.is_empty() {
        let host = HeaderValue::from_str(&http.host).map_err(|_| Unreadable::BadHost)?;
        headers.insert(HOST, host);
    }
    Ok(req)
}

/// One header of the original request. Pseudo-headers (`:path`,
/// `:authority`, ...) are left out: the method, path and host fields carry
/// them.
fn add(headers: &mut HeaderMap, name: &str, value: &[u8]) -> Result<(), Unreadable> {
    if name.starts_with(':') {
        return Ok(());
    }
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Unreadable::BadHeader)?;
    let value = HeaderValue::from_bytes(value).map_err(|_| Unreadable::BadHeader)?;
    headers.append(name, value);
    Ok(())
}

/// The `CheckResponse` for the phases' answer `rsp` (its body read to the
/// end, so the access log line is complete).
pub async fn answer<B>(rsp: Response<B>) -> CheckResponse
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (head, body) = rsp.into_parts();
    let body = match Limited::new(body, MAX_DENIED_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            tracing::debug!(error = %err, "forward-auth answer body not relayed");
            Bytes::new()
        }
    };
    verdict(head.status, &head.headers, &body)
}

fn verdict(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> CheckResponse {
    if status.is_success() {
        let (to_response, to_request): (Vec<_>, Vec<_>) = headers
            .iter()
            .filter(|(name, _)| *name != CACHE_CONTROL && *name != ENVOY_HEADERS_TO_REMOVE)
            .partition(|(name, _)| for_the_client(name));
        let ok = OkHttpResponse {
            headers: to_request.into_iter().map(overwrite).collect(),
            response_headers_to_add: to_response.into_iter().map(overwrite).collect(),
            headers_to_remove: headers
                .get_all(&ENVOY_HEADERS_TO_REMOVE)
                .iter()
                .filter_map(|list| list.to_str().ok())
                .flat_map(|list| list.split(','))
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect(),
            ..OkHttpResponse::default()
        };
        return CheckResponse {
            status: Some(rpc::Status { code: tonic::Code::Ok as i32, ..rpc::Status::default() }),
            http_response: Some(HttpResponse::OkResponse(ok)),
            ..CheckResponse::default()
        };
    }
    let denied = DeniedHttpResponse {
        status: Some(HttpStatus { code: i32::from(status.as_u16()) }),
        // Envoy frames the body itself.
        headers: headers.iter().filter(|(name, _)| *name != CONTENT_LENGTH).map(overwrite).collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    };
    let code = match status {
        StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
        StatusCode::FORBIDDEN => tonic::Code::PermissionDenied,
        s if s.is_server_error() => tonic::Code::Unavailable,
        _ => tonic::Code::InvalidArgument,
    };
    let message = status.canonical_reason().unwrap_or_default().to_owned();
    CheckResponse {
        status: Some(rpc::Status { code: code as i32, message, ..rpc::Status::default() }),
        http_response: Some(HttpResponse::DeniedResponse(denied)),
        ..CheckResponse::default()
    }
}

/// A route's CORS answer policy decorates the verdict with headers meant
/// for the browser: Envoy adds them to the response, not the request.
fn for_the_client(name: &HeaderName) -> bool {
    *name == VARY || name.as_str().starts_with("access-control-")
}

/// A header Envoy sets, replacing any copy already on the request (the
/// client's own `X-User-Id` must not survive next to the verified one).
/// `append` stays unset: Envoy versions without `append_action` then
/// overwrite too. A value that is not UTF-8 travels as `raw_value`.
fn overwrite((name, value): (&HeaderName, &HeaderValue)) -> HeaderValueOption {
    let (value, raw_value) = match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => (text.to_owned(), Vec::new()),
        Err(_) => (String::new(), value.as_bytes().to_vec()),
    };
    HeaderValueOption {
        header: Some(PbHeaderValue { key: name.as_str().to_owned(), value, raw_value }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::HeaderMap as PbHeaderMap;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as PbRequest};
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;

    fn check(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(PbRequest { http: Some(http), ..PbRequest::default() }),
                ..AttributeContext::default()
            }),
        }
    }

    fn http(method: &str, path: &str, host: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            path: path.into(),
            host: host.into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            ..HttpRequest::default()
        }
    }

    #[test]
    fn a_check_request_is_read_as_the_original_request() {
        let headers = [(":authority", "app.example"), (":path", "/x"), ("authorization", "Bearer t"), ("x-a", "1")];
        let req = read(&check(http("DELETE", "/api/x?a=1", "app.example", &headers))).unwrap();
        assert_eq!(req.method(), Method::DELETE);
        assert_eq!(req.uri().to_string(), "/api/x?a=1");
        assert_eq!(req.headers()[HOST], "app.example");
        assert_eq!(req.headers()["authorization"], "Bearer t");
        assert_eq!(req.headers().len(), 3, "pseudo-headers left out: {:?}", req.headers());
        // Raw headers (`encode_raw_headers`) win over the string map.
        let mut raw = http("GET", "/", "", &[("x-a", "ignored")]);
        raw.header_map = Some(PbHeaderMap {
            headers: vec![PbHeaderValue { key: "x-b".into(), value: String::new(), raw_value: b"\xe9t\xe9".to_vec() }],
        });
        let req = read(&check(raw)).unwrap();
        assert_eq!(req.headers()["x-b"].as_bytes(), b"\xe9t\xe9");
        assert!(!req.headers().contains_key("x-a") && !req.headers().contains_key(HOST));
    }

    #[test]
    fn an_incomplete_check_request_is_unreadable() {
        assert_eq!(read(&CheckRequest::default()).unwrap_err(), Unreadable::NoHttp);
        assert_eq!(read(&check(http("", "/", "h", &[]))).unwrap_err(), Unreadable::BadMethod);
        for path in ["", "api/x", "http://h/x", "*", "/public#/../api", "/a?b#c"] {
            assert_eq!(read(&check(http("GET", path, "h", &[]))).unwrap_err(), Unreadable::BadPath, "{path:?}");
        }
        assert_eq!(read(&check(http("GET", "/", "h\n", &[]))).unwrap_err(), Unreadable::BadHost);
        assert_eq!(read(&check(http("GET", "/", "h", &[("bad name", "v")]))).unwrap_err(), Unreadable::BadHeader);
        assert_eq!(read(&check(http("GET", "/", "h", &[("x", "a\r\nb")]))).unwrap_err(), Unreadable::BadHeader);
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn an_allowed_request_sets_its_headers_and_removes_the_absent_ones() {
        let head = headers(&[
            ("cache-control", "no-store"),
            ("x-user-id", "u-1"),
            ("x-request-id", "r"),
            ("x-envoy-auth-headers-to-remove", "x-email,authorization"),
            ("vary", "origin"),
            ("access-control-allow-origin", "https://app.example"),
        ]);
        let rsp = verdict(StatusCode::OK, &head, b"");
        assert_eq!(rsp.status.unwrap().code, 0);
        let Some(HttpResponse::OkResponse(ok)) = rsp.http_response else { panic!("not ok") };
        let set: Vec<(&str, &str, i32)> = ok
            .headers
            .iter()
            .map(|h| {
                (h.header.as_ref().unwrap().key.as_str(), h.header.as_ref().unwrap().value.as_str(), h.append_action)
            })
            .collect();
        let overwrite = HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
        assert_eq!(set, [("x-user-id", "u-1", overwrite), ("x-request-id", "r", overwrite)]);
        assert_eq!(ok.headers_to_remove, ["x-email", "authorization"]);
        let to_client: Vec<&str> =
            ok.response_headers_to_add.iter().map(|h| h.header.as_ref().unwrap().key.as_str()).collect();
        assert_eq!(to_client, ["vary", "access-control-allow-origin"], "CORS headers go to the client");
    }

    #[test]
    fn a_refusal_is_denied_with_its_status_headers_and_body() {
        let head = headers(&[
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("www-authenticate", "Bearer realm=\"r\""),
        ]);
        for (status, code) in [(401, 16), (403, 7), (503, 14), (400, 3)] {
            let rsp = verdict(StatusCode::from_u16(status).unwrap(), &head, b"{}");
            assert_eq!(rsp.status.unwrap().code, code, "{status}");
            let Some(HttpResponse::DeniedResponse(denied)) = rsp.http_response else { panic!("not denied") };
            assert_eq!(denied.status.unwrap().code, i32::from(status));
            assert_eq!(denied.body, "{}");
            let names: Vec<&str> = denied.headers.iter().map(|h| h.header.as_ref().unwrap().key.as_str()).collect();
            assert_eq!(names, ["content-type", "www-authenticate"]);
        }
    }
}
