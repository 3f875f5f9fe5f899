//! The floor under jwtgate: a reverse proxy with nothing but hyper, driven
//! the way jwtgate drives it (an HTTP/1.1 server connection and its own
//! upstream connection polled in one task, hop-by-hop headers left alone,
//! no auth, no routing, no metrics). `bench/run.sh` measures it next to
//! nginx and jwtgate (scenario `bare-hyper`), so the report can say which
//! part of the gap to nginx is hyper's and which is jwtgate's.
//!
//! cargo run --release --example bare_proxy -- LISTEN UPSTREAM
//! (e.g. 127.0.0.1:8081 127.0.0.1:8080); prints the bound address.

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::error::Error;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Failure = Box<dyn Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_proxy LISTEN UPSTREAM";
    let listen: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let upstream: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("bare proxy listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(err) = connection(stream, upstream).await {
                eprintln!("connection: {err}");
            }
        });
    }
}

/// One client connection and its upstream connection, in one task.
async fn connection(stream: tokio::net::TcpStream, upstream: SocketAddr) -> Result<(), Failure> {
    stream.set_nodelay(true)?;
    let up = tokio::net::TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (sender, up_conn) = hyper::client::conn::http1::handshake(TokioIo::new(up)).await?;
    let sender = Arc::new(Mutex::new(sender));
    let service = service_fn(move |req: Request<Incoming>| forward(sender.clone(), req));
    let server = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        served = server => served?,
        ended = up_conn => ended?,
    }
    Ok(())
}

async fn forward(
    sender: Arc<Mutex<SendRequest<Incoming>>>,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, Failure> {
    let response = sender.lock().map_err(|_| "poisoned")?.send_request(req);
    Ok(response.await?)
}
