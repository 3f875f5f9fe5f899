//! `jwtgate::start`, the library entry point `jwtgate run` is built on,
//! called in this process: it binds port 0, says where, serves, and stops
//! when its shutdown future resolves.

use crate::support::{token, Cfg, Upstream};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::time::Duration;

async fn status(addr: SocketAddr, path: &str, token: Option<&str>) -> u16 {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = Request::get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let rsp = client.request(req.body(Empty::new()).expect("request")).await.expect("an answer");
    let status = rsp.status().as_u16();
    let _ = rsp.into_body().collect().await;
    status
}

#[tokio::test]
async fn start_serves_in_process_on_port_zero_and_stops_when_told() {
    let app = Upstream::spawn().await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jwtgate.yaml");
    std::fs::write(&file, Cfg::new(&app).admin().yaml()).expect("write config");
    let config = jwtgate::Config::from_file(&file, Default::default()).await.expect("the config compiles");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let running = jwtgate::start(config, shutdown).await.expect("jwtgate starts");
    let (public, admin) = (running.public_addr(), running.admin_addr().expect("the admin listener"));
    assert!(public.port() != 0 && admin.port() != 0, "bound addresses are readable: {public}, {admin}");
    assert!(!running.tls());

    assert_eq!(status(public, "/api/in-process", Some(&token::mint())).await, 200);
    assert_eq!(app.seen("/api/in-process"), 1);
    assert_eq!(status(public, "/api/refused", None).await, 401);
    assert_eq!(app.seen("/api/refused"), 0, "a refused request reached the app");
    assert_eq!(status(admin, "/healthz", None).await, 200);

    stop.send(()).expect("the instance listens for shutdown");
    tokio::time::timeout(Duration::from_secs(10), running.stopped()).await.expect("the instance stops");
    assert!(tokio::net::TcpStream::connect(public).await.is_err(), "the public listener is closed");
    assert!(tokio::net::TcpStream::connect(admin).await.is_err(), "the admin listener is closed");
}
