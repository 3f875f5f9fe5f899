//! `jwtgate webhook`: a Kubernetes mutating admission webhook that injects
//! the sidecar into pods as they are created, with the same transformation
//! as `jwtgate inject` (`inject::inject_object`). HTTPS only (the API
//! server insists), HTTP/1.1, two routes: `POST /mutate` answers an
//! AdmissionReview v1, `GET /healthz` answers 200 for kubelet probes.
//!
//! Answers: not a workload, not opted in, or already injected → allowed,
//! no patch. Opted in → allowed with a JSON Patch (RFC 6902) from the
//! request object to the injected one. Opted in but not injectable
//! (ambiguous or missing port, port collision, bad opt-in value) →
//! **denied** with the same message `jwtgate inject` prints: the pod asked
//! for protection, and admitting it without the sidecar would expose the
//! app unauthenticated; the denial shows in `kubectl apply` and in the
//! ReplicaSet's FailedCreate events. The shipped MutatingWebhookConfiguration
//! uses `failurePolicy: Fail` for the same reason (fail closed, like
//! jwtgate's revocation store): while no webhook replica answers, pods
//! labelled `jwtgate.io/inject: "true"` are not created, and only those
//! (objectSelector) — see k8s/webhook/README.md.
//!
//! The certificate and key files are re-read every minute and swapped in
//! when they change (cert-manager renews the mounted Secret in place); a
//! bad pair is logged and the previous one kept.

use super::inject::{self, InjectError, Options};
use arc_swap::ArcSwap;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The API server caps objects near 3 MiB; a review wraps one (or two).
const MAX_BODY_BYTES: usize = 8 << 20;
/// Slow or silent clients must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CERT_POLL: Duration = Duration::from_secs(60);

/// `jwtgate webhook`'s arguments.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub options: Options,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("TLS: {path}: {why}")]
    Tls { path: PathBuf, why: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// A request body that is not an AdmissionReview: answered 400, since the
/// API server sent something this webhook does not understand.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("body is not JSON: {0}")]
    Json(String),
    #[error("AdmissionReview has no request.uid")]
    NoUid,
}

/// Binds, prints `jwtgate webhook listening on https://ADDR` once bound,
/// and serves until `shutdown` completes.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), WebhookError> {
    let (cert, key) = (settings.tls_cert, settings.tls_key);
    let loaded = load_tls(&cert, &key)?;
    let seen = (Some(loaded.cert_pem), Some(loaded.key_pem));
    let tls = Arc::new(ArcSwap::new(loaded.config));
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| WebhookError::Bind { addr: settings.listen, source })?;
    let local = listener.local_addr().map_err(|source| WebhookError::Bind { addr: settings.listen, source })?;
    println!("jwtgate webhook listening on https://{local}");
    tokio::spawn(reload_certs(tls.clone(), cert, key, seen));
    let options = Arc::new(settings.options);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => { tracing::warn!(error = %e, "webhook accept failed"); continue; }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.load_full());
        let options = options.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "webhook TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "webhook TLS handshake timed out"),
            };
            let service = hyper::service::service_fn(move |req| handle(req, options.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "webhook connection ended with an error");
            }
        });
    }
}

async fn handle(req: Request<Incoming>, options: Arc<Options>) -> Result<Response<Full<Bytes>>, Infallible> {
    let rsp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::POST, "/mutate") => match Limited::new(req.into_body(), MAX_BODY_BYTES).collect().await {
            Ok(body) => match review(&body.to_bytes(), &options) {
                Ok(answer) => reply(StatusCode::OK, "application/json", answer.to_string().into()),
                Err(e) => reply(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n").into()),
            },
            Err(e) => reply(StatusCode::BAD_REQUEST, "text/plain", format!("cannot read the body: {e}\n").into()),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    Ok(rsp)
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(body));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    rsp
}

/// Answers one AdmissionReview v1 (the request body) with another.
pub fn review(body: &[u8], options: &Options) -> Result<Value, ReviewError> {
    let review: Value = serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
    let request = review.get("request").unwrap_or(&Value::Null);
    let uid = request.get("uid").and_then(Value::as_str).ok_or(ReviewError::NoUid)?;
    let response = match request.get("object").filter(|o| o.is_object()) {
        Some(object) => decide(uid, request, object, options),
        None => json!({ "uid": uid, "allowed": true }), // e.g. DELETE: nothing to mutate
    };
    Ok(json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response }))
}

fn decide(uid: &str, request: &Value, object: &Value, options: &Options) -> Value {
    // Objects normally carry `kind`; if not, the request's resource kind
    // stands in on both sides of the diff, so the patch never touches it.
    let mut object = object.clone();
    if let (Some(map), Some(kind)) = (object.as_object_mut(), request.pointer("/kind/kind")) {
        map.entry("kind").or_insert_with(|| kind.clone());
    }
    let denied =
        |message: String| json!({ "uid": uid, "allowed": false, "status": { "code": 403, "message": message } });
    match inject::inject_object(&object, options) {
        Ok(None) => json!({ "uid": uid, "allowed": true }),
        Ok(Some(injected)) => match serde_json::to_vec(&json_patch::diff(&object, &injected)) {
            Ok(patch) => json!({
                "uid": uid,
                "allowed": true,
                "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(patch),
            }),
            Err(e) => denied(format!("jwtgate: cannot encode the patch: {e}")),
        },
        Err(mut e) => {
            // Pods from a controller carry their namespace on the request only.
            if let InjectError::Workload { workload, .. } = &mut e {
                if workload.namespace.is_none() {
                    workload.namespace = request.get("namespace").and_then(Value::as_str).map(str::to_owned);
                }
            }
            tracing::info!(uid, error = %e, "webhook denied a pod it cannot inject");
            denied(format!("jwtgate: {e}"))
        }
    }
}

fn load_tls(cert: &Path, key: &Path) -> Result<crate::tls::Loaded, WebhookError> {
    crate::tls::load(cert, key, crate::tls::ALPN_HTTP1).map_err(|e| WebhookError::Tls { path: e.path, why: e.why })
}

/// Swaps in a renewed certificate; new connections use it, open ones keep
/// theirs. Compares file contents, since Secret mounts swap symlinks;
/// `seen` holds the bytes the running config was built from.
async fn reload_certs(tls: Arc<ArcSwap<ServerConfig>>, cert: PathBuf, key: PathBuf, mut seen: crate::tls::Fingerprint) {
    loop {
        tokio::time::sleep(CERT_POLL).await;
        if crate::tls::fingerprint(&cert, &key) == seen {
            continue;
        }
        match load_tls(&cert, &key) {
            Ok(loaded) => {
                tls.store(loaded.config);
                tracing::info!(cert = %cert.display(), "webhook certificate reloaded");
                seen = (Some(loaded.cert_pem), Some(loaded.key_pem));
            }
            // Retried next poll: the files may have been read mid-rotation.
            Err(e) => tracing::warn!(error = %e, "webhook certificate change not applied; keeping the previous one"),
        }
    }
}
