//! `jwtgate demo` and `jwtgate upstream`: a tiny built-in upstream, and the
//! embedded demo config with a fresh HS256 secret and a minted token, so
//! the whole request path can be tried with nothing else installed.

use crate::config::{self, FileConfig, KeySpec, SecretSource};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::RngCore;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub const DEMO_YAML: &str = include_str!("../../config/demo.yaml");
pub const DEMO_ISSUER: &str = "jwtgate-demo";
pub const DEMO_AUDIENCE: &str = "demo-api";

/// Serves a fixed JSON answer naming the method and path it received, on
/// an already bound listener, forever.
pub async fn serve_upstream(listener: TcpListener) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(upstream_answer)).into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

async fn upstream_answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let user = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or("-");
    let body = serde_json::json!({
        "upstream": "jwtgate built-in demo upstream",
        "method": req.method().as_str(),
        "path": req.uri().path_and_query().map_or("/", |p| p.as_str()),
        "forwarded_for": user,
    });
    let mut rsp = Response::new(Full::new(Bytes::from(body.to_string())));
    rsp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    Ok(rsp)
}

/// Random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The demo config with `listen`, the upstream address and the secret filled in.
pub fn demo_config(listen: SocketAddr, upstream: SocketAddr, secret: &[u8]) -> Result<FileConfig, config::ConfigError> {
    let mut file = config::parse_str(DEMO_YAML, "config/demo.yaml (embedded)")?;
    file.listen = listen.to_string();
    file.upstream.url = format!("http://{upstream}");
    for issuer in &mut file.jwt.issuers {
        for key in &mut issuer.keys {
            *key = KeySpec {
                kid: key.kid.clone(),
                insecure_secret: Some(SecretSource::new(secret.to_vec())),
                ..KeySpec::default()
            };
        }
    }
    Ok(file)
}

/// An HS256 token for the demo issuer, valid for `ttl_secs`.
pub fn mint_demo_token(secret: &[u8], ttl_secs: i64) -> Result<String, jsonwebtoken::errors::Error> {
    let now = crate::auth::now_unix();
    let claims = serde_json::json!({
        "iss": DEMO_ISSUER, "aud": DEMO_AUDIENCE, "sub": "demo-user",
        "jti": random_hex(12), "iat": now, "exp": now + ttl_secs,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("demo".into());
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret))
}

/// What `jwtgate demo` prints once it listens: the token and curl lines.
pub fn instructions(gate: SocketAddr, token: &str) -> String {
    format!(
        "\n\
jwtgate demo: memory revocation store, built-in upstream, fresh HS256 secret.\n\
A token for issuer `{DEMO_ISSUER}` (valid 1 hour):\n\n\
TOKEN={token}\n\n\
# 1. allowed: forwarded to the upstream (200)\n\
curl -i -H \"Authorization: Bearer $TOKEN\" http://{gate}/api/hello\n\n\
# 2. no token: refused by jwtgate (401, never reaches the upstream)\n\
curl -i http://{gate}/api/hello\n\n\
# 3. logout: jwtgate revokes the token's jti (200)\n\
curl -i -X POST -H \"Authorization: Bearer $TOKEN\" http://{gate}/logout\n\n\
# 4. the same token again: refused, error=\"invalid_token\" (401 token_revoked)\n\
curl -i -H \"Authorization: Bearer $TOKEN\" http://{gate}/api/hello\n\n\
Ctrl-C stops the demo.\n"
    )
}
