//! The admin listener: its own address (default 127.0.0.1:9901), never the
//! public port. `/healthz` and `/readyz` answer without credentials (they
//! reveal nothing, and probes should not carry secrets); everything else
//! needs `Authorization: Bearer <admin token>`, compared in constant time,
//! but `/metrics` under `admin.metrics_auth: none` (an explicit opt-in for
//! scrapers; the revocation endpoints never open).
//!
//! - `POST /revocations` with one of `{"iss","jti","exp"}`, `{"token"}` (a
//!   valid token, verified), `{"iss","sub","before"?}` or `{"iss","sid","before"?}`
//! - `GET /revocations?iss=..&jti=..` (or `sub=` / `sid=`): the stored record
//! - `DELETE /revocations?iss=..&jti=..` (or `sub=` / `sid=`): un-revoke (logged)
//! - `GET /metrics`: Prometheus text

use crate::auth::now_unix;
use crate::config::{MetricsAuth, OnStoreError};
use crate::error::{error_response, json_response, Body, Causes, ErrorFields, ProxyError};
use crate::proxy::Gate;
use crate::revocation::{keys, Change};
use crate::runtime::AdminSettings;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

const MAX_BODY: usize = 64 * 1024;

pub struct Admin {
    pub gate: Arc<Gate>,
    /// SHA-256 of the admin token: comparing digests keeps the comparison
    /// constant-time regardless of the presented token's length.
    token_sha256: [u8; 32],
    pub metrics: Option<PrometheusHandle>,
    /// `none`: `GET /metrics` without the token (`admin.metrics_auth`).
    metrics_auth: MetricsAuth,
}

impl Admin {
    pub fn new(gate: Arc<Gate>, settings: &AdminSettings, metrics: Option<PrometheusHandle>) -> Self {
        let token_sha256 = Sha256::digest(settings.token.expose()).into();
        Self { gate, token_sha256, metrics, metrics_auth: settings.metrics_auth }
    }
}

/// Serves the admin API until the process ends.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Slow-loris bound, as on the public listener.
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(std::time::Duration::from_secs(10));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let admin = admin.clone();
        let service = service_fn(move |req| {
            let admin = admin.clone();
            async move { Ok::<_, Infallible>(admin.handle(req).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    iss: Option<String>,
    jti: Option<String>,
    exp: Option<i64>,
    token: Option<String>,
    sub: Option<String>,
    sid: Option<String>,
    before: Option<i64>,
}

/// An admin request that failed; becomes a JSON error response.
#[derive(Debug)]
struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    fn into_response(self) -> Response<Body> {
        error_response(self.status, ErrorFields::Jwtgate, self.code, &self.message)
    }
}

type AdminResult = Result<Response<Body>, AdminError>;

impl Admin {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        match (&method, path.as_str()) {
            (&Method::GET, "/healthz") => return json_response(StatusCode::OK, &json!({ "status": "alive" })),
            (&Method::GET, "/readyz") => return self.ready().await,
            (&Method::GET, "/metrics") if self.metrics_auth == MetricsAuth::None => return self.metrics(),
            _ => {}
        }
        if !self.authorized(&req) {
            let mut rsp = error(StatusCode::UNAUTHORIZED, "unauthorized", "admin token required").into_response();
            rsp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"jwtgate-admin\""));
            return rsp;
        }
        let result = match (&method, path.as_str()) {
            (&Method::GET, "/metrics") => Ok(self.metrics()),
            (&Method::POST, "/revocations") => self.revoke(req).await,
            (&Method::GET, "/revocations") => self.show(&query(&req)).await,
            (&Method::DELETE, "/revocations") => self.unrevoke(&query(&req)).await,
            _ => Err(error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")),
        };
        result.unwrap_or_else(AdminError::into_response)
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(presented) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.token_sha256).into()
    }

    async fn ready(&self) -> Response<Body> {
        let live = self.gate.live.load();
        if live.rt.verifier.jwks_sources().any(|s| !s.is_ready()) {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "not_ready", "jwks": "not loaded yet" }),
            );
        }
        let revocations = &self.gate.revocations;
        let probe = format!("{}readyz", revocations.policy().key_prefix);
        match revocations.read(&probe).await {
            Ok(_) => json_response(StatusCode::OK, &json!({ "status": "ready", "store": "reachable" })),
            Err(_) if revocations.policy().on_store_error == OnStoreError::FailOpen => {
                json_response(StatusCode::OK, &json!({ "status": "ready", "store": "unreachable (fail_open)" }))
            }
            Err(_) => json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "not_ready", "store": "unreachable" }),
            ),
        }
    }

    fn metrics(&self) -> Response<Body> {
        crate::metrics::process::refresh();
        let text = self.metrics.as_ref().map(PrometheusHandle::render).unwrap_or_default();
        let mut rsp = Response::new(Either::Right(Full::new(Bytes::from(text))));
        rsp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
        rsp
    }

    async fn revoke(&self, req: Request<Incoming>) -> AdminResult {
        let body = Limited::new(req.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid_request", "body unreadable or too large"))?
            .to_bytes();
        let target: Target = serde_json::from_slice(&body)
            .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_request", &format!("bad JSON: {e}")))?;
        let revocations = &self.gate.revocations;
        let store_down = store_failed("revocation not stored");
        if let Some(token) = &target.token {
            let claims = self.gate.live.load().rt.verifier.verify(token, now_unix()).map_err(|r| {
                let (code, message) = r.code_and_message();
                error(StatusCode::BAD_REQUEST, code, message)
            })?;
            let revoked = revocations.revoke_token(&claims).await.map_err(store_down)?;
            tracing::info!(iss = %claims.iss, jti = claims.jti.as_deref().unwrap_or("(none)"), "token revoked by admin");
            return Ok(json_response(
                StatusCode::OK,
                &json!({ "revoked": true, "key": revoked.key, "expires_at": revoked.expires_at }),
            ));
        }
        let (key, kind) = self.key(&target)?;
        let (value, expires_at) = match kind {
            "jti" => {
                let exp =
                    target.exp.ok_or_else(|| bad("exp (the token's expiry, Unix seconds) is required with jti"))?;
                ("1".to_string(), exp.saturating_add(revocations.policy().leeway_secs))
            }
            _ => {
                let lifetime = revocations.policy().max_token_lifetime.as_secs() as i64;
                (target.before.unwrap_or_else(now_unix).to_string(), now_unix().saturating_add(lifetime))
            }
        };
        revocations
            .write(Change { key: key.clone(), value: Some(value), expires_at, sent_ms: 0 })
            .await
            .map_err(store_down)?;
        metrics::counter!("jwtgate_logouts_total", "kind" => "admin").increment(1);
        tracing::info!(kind, "revocation written by admin");
        Ok(json_response(StatusCode::OK, &json!({ "revoked": true, "key": key, "expires_at": expires_at })))
    }

    async fn show(&self, target: &Target) -> AdminResult {
        let (key, _) = self.key(target)?;
        let value = self.gate.revocations.read(&key).await.map_err(store_failed("revocation store unavailable"))?;
        Ok(json_response(StatusCode::OK, &json!({ "key": key, "revoked": value.is_some(), "value": value })))
    }

    async fn unrevoke(&self, target: &Target) -> AdminResult {
        let (key, kind) = self.key(target)?;
        let change = Change { key: key.clone(), value: None, expires_at: 0, sent_ms: 0 };
        self.gate.revocations.write(change).await.map_err(store_failed("revocation store unavailable"))?;
        tracing::warn!(kind, key = %key, "revocation deleted by admin");
        Ok(json_response(StatusCode::OK, &json!({ "key": key, "revoked": false })))
    }

    /// The store key a target names: `iss` plus one of `jti`, `sub`, `sid`.
    fn key(&self, target: &Target) -> Result<(String, &'static str), AdminError> {
        let iss = target.iss.as_deref().ok_or_else(|| bad("iss is required"))?;
        if !self.gate.live.load().rt.verifier.issuers().any(|i| i.issuer == iss) {
            return Err(bad("iss is not a configured issuer"));
        }
        let tag = keys::issuer_tag(iss);
        let prefix = &self.gate.revocations.policy().key_prefix;
        match (&target.jti, &target.sub, &target.sid) {
            (Some(jti), None, None) => Ok((keys::token_jti(prefix, &tag, jti), "jti")),
            (None, Some(sub), None) => Ok((keys::subject(prefix, &tag, sub), "sub")),
            (None, None, Some(sid)) => Ok((keys::session(prefix, &tag, sid), "sid")),
            _ => Err(bad("exactly one of jti, sub, sid (or token) is required")),
        }
    }
}

fn query(req: &Request<Incoming>) -> Target {
    let pairs: HashMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    Target {
        iss: pairs.get("iss").cloned(),
        jti: pairs.get("jti").cloned(),
        sub: pairs.get("sub").cloned(),
        sid: pairs.get("sid").cloned(),
        ..Target::default()
    }
}

fn error(status: StatusCode, code: &'static str, message: &str) -> AdminError {
    AdminError { status, code, message: message.to_string() }
}

fn bad(message: &str) -> AdminError {
    error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// A revocation call that failed: the store's fault is a 503 (its cause
/// logged, `message` answered); a token the revocation refuses (no `jti`
/// to key it by) is the caller's 400.
fn store_failed(message: &'static str) -> impl Fn(ProxyError) -> AdminError {
    move |err| {
        if err.is_server_fault() {
            tracing::warn!(error = %Causes(&err), "admin: revocation store failed");
            return error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", message);
        }
        let (code, why) = err.code_and_message();
        error(StatusCode::BAD_REQUEST, code, why)
    }
}
