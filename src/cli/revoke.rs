//! `jwtgate revoke`: a client of the admin API's `POST /revocations`.

use bytes::Bytes;
use clap::Args;
use http::{header, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::PathBuf;

#[derive(Args)]
pub struct RevokeArgs {
    /// Admin API base URL.
    #[arg(long, default_value = "http://127.0.0.1:9901")]
    admin: String,
    /// Environment variable holding the admin token.
    #[arg(long, default_value = "JWTGATE_ADMIN_TOKEN")]
    admin_token_env: String,
    /// Issuer of the jti / sub / sid.
    #[arg(long)]
    iss: Option<String>,
    /// Revoke this jti (needs --exp).
    #[arg(long, requires_all = ["iss", "exp"])]
    jti: Option<String>,
    /// The token's expiry (Unix seconds), with --jti.
    #[arg(long)]
    exp: Option<i64>,
    /// Revoke every token of this subject issued at or before --before (default: now).
    #[arg(long, requires = "iss")]
    sub: Option<String>,
    /// Revoke every token of this session (sid) issued at or before --before.
    #[arg(long, requires = "iss")]
    sid: Option<String>,
    /// With --sub or --sid: revoke tokens issued at or before this time
    /// (Unix seconds); default: now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    before: Option<i64>,
    /// Revoke the token in this file (verified by jwtgate first).
    #[arg(long, conflicts_with_all = ["jti", "sub", "sid"])]
    token_file: Option<PathBuf>,
}

/// Why `jwtgate revoke` failed.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("set the admin token in ${0} (or pass --admin-token-env)")]
    NoAdminToken(String),
    #[error("cannot read {}", .path.display())]
    ReadToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("say what to revoke: --token-file, --jti, --sub or --sid")]
    NothingToRevoke,
    #[error("bad admin URL {url}")]
    BadUrl {
        url: String,
        #[source]
        source: http::Error,
    },
    /// `url` without a password; the causes say why (refused, no route, DNS).
    #[error("cannot reach {url}")]
    Unreachable {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("admin API answered {0}")]
    Refused(http::StatusCode),
}

#[allow(clippy::print_stdout)]
pub async fn run(args: RevokeArgs) -> Result<(), RevokeError> {
    let admin_token =
        std::env::var(&args.admin_token_env).map_err(|_| RevokeError::NoAdminToken(args.admin_token_env.clone()))?;
    let body = match &args.token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .map_err(|source| RevokeError::ReadToken { path: path.clone(), source })?;
            serde_json::json!({ "token": token.trim() })
        }
        None if args.jti.is_some() => serde_json::json!({ "iss": args.iss, "jti": args.jti, "exp": args.exp }),
        None if args.sub.is_some() => serde_json::json!({ "iss": args.iss, "sub": args.sub, "before": args.before }),
        None if args.sid.is_some() => serde_json::json!({ "iss": args.iss, "sid": args.sid, "before": args.before }),
        None => return Err(RevokeError::NothingToRevoke),
    };
    let url = format!("{}/revocations", args.admin.trim_end_matches('/'));
    let req = Request::post(&url)
        .header(header::AUTHORIZATION, format!("Bearer {admin_token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|source| RevokeError::BadUrl { url: crate::config::redact_url(&url), source })?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let shown = crate::config::redact_url(&url);
    let rsp = client.request(req).await.map_err(|source| RevokeError::Unreachable { url: shown, source })?;
    let status = rsp.status();
    let text = rsp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    println!("{}", String::from_utf8_lossy(&text));
    if status.is_success() {
        Ok(())
    } else {
        Err(RevokeError::Refused(status))
    }
}
