//! Heap allocations per proxied request, counted by dhat as the global
//! allocator (issue 12 asks for the count before and after each change).
//!
//! cargo run --release --example alloc_count [REQUESTS]
//! ALLOC_SITES=sites.json cargo run --release --example alloc_count
//!     # also writes dhat's profile with deep backtraces, for
//!     # `scripts/alloc-sites.py sites.json` (the sites by count)
//!
//! One process: an HTTP/1.1 upstream answering 200, jwtgate started in
//! process (`jwtgate::start`) with the production-like config of
//! `bench/run.sh` (HS256, admin listener so the metrics recorder runs,
//! access log off) but the memory store, and one keep-alive client
//! connection sending the same token. The client and the upstream allocate
//! too, so the same requests are also sent directly to the upstream: the
//! difference is what jwtgate allocates per request (its server side, its
//! phases and its upstream connection). A current-thread runtime keeps
//! the count free of other threads' work.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

type Failure = Box<dyn Error + Send + Sync>;

const SECRET: &str = "alloc-count-secret-of-at-least-32-bytes!";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let requests: u64 = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(5_000);
    let _profiler = match std::env::var_os("ALLOC_SITES") {
        Some(path) => dhat::Profiler::builder().file_name(path).trim_backtraces(Some(24)).build(),
        None => dhat::Profiler::builder().testing().trim_backtraces(Some(1)).build(),
    };
    let upstream = spawn_upstream().await?;
    let dir = tempfile::tempdir()?;
    let gate = start_gate(upstream, dir.path()).await?;
    let token = mint()?;

    let direct = per_request(upstream, &token, requests).await?;
    let through = per_request(gate.public_addr(), &token, requests).await?;
    println!("requests measured: {requests} each way (after {WARMUP} warm-up requests)");
    println!("direct to the upstream: {:.2} allocations, {:.0} bytes per request", direct.0, direct.1);
    println!("through jwtgate:        {:.2} allocations, {:.0} bytes per request", through.0, through.1);
    println!(
        "jwtgate's share:        {:.2} allocations, {:.0} bytes per request",
        through.0 - direct.0,
        through.1 - direct.1
    );
    Ok(())
}

const WARMUP: u64 = 500;

/// (allocations, bytes) per request over `requests` requests on one
/// keep-alive connection, after a warm-up on the same connection.
async fn per_request(addr: SocketAddr, token: &str, requests: u64) -> Result<(f64, f64), Failure> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let authorization = format!("Bearer {token}");
    for _ in 0..WARMUP {
        send(&mut sender, &authorization).await?;
    }
    let before = dhat::HeapStats::get();
    for _ in 0..requests {
        send(&mut sender, &authorization).await?;
    }
    let after = dhat::HeapStats::get();
    let n = requests as f64;
    Ok(((after.total_blocks - before.total_blocks) as f64 / n, (after.total_bytes - before.total_bytes) as f64 / n))
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    authorization: &str,
) -> Result<(), Failure> {
    let req = Request::get("/api/bench")
        .header("host", "127.0.0.1")
        .header("authorization", authorization)
        .body(Empty::new())?;
    let rsp = sender.send_request(req).await?;
    if !rsp.status().is_success() {
        return Err(format!("answered {}", rsp.status()).into());
    }
    rsp.into_body().collect().await?;
    Ok(())
}

async fn spawn_upstream() -> Result<SocketAddr, Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
            });
            tokio::spawn(server_http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Ok(addr)
}

async fn start_gate(upstream: SocketAddr, dir: &std::path::Path) -> Result<jwtgate::Running, Failure> {
    std::fs::write(dir.join("admin-token"), "alloc-count-admin-token")?;
    let yaml = format!(
        "listen: 127.0.0.1:0\n\
         upstream: {{ url: \"http://{upstream}\" }}\n\
         jwt:\n  issuers:\n    - {{ issuer: jwtgate-bench, audiences: [bench-api], algorithms: [HS256], \
         keys: [{{ kid: k1, insecure_secret: \"{SECRET}\" }}] }}\n\
         revocation: {{ store: memory }}\n\
         admin: {{ listen: 127.0.0.1:0, token_file: admin-token }}\n"
    );
    let file = dir.join("jwtgate.yaml");
    std::fs::write(&file, yaml)?;
    let config = jwtgate::Config::from_file(&file, Default::default()).await?;
    Ok(jwtgate::start(config, std::future::pending()).await?)
}

fn mint() -> Result<String, Failure> {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": "jwtgate-bench", "aud": "bench-api", "sub": "alloc", "jti": "alloc-count-1",
        "iat": now, "exp": now + 3600,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".into());
    Ok(jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()))?)
}
