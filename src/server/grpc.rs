//! The gRPC forward-auth listener: Envoy's `ext_authz` `grpc_service` and
//! Istio's `CUSTOM` action call `envoy.service.auth.v3.Authorization/Check`
//! here, over plain HTTP/2 (h2c: inside the mesh, no TLS). Each check is
//! one request through the proxy's phases in `Role::AuthorizeGrpc`, from
//! the connection's peer (trusted proxies only); the conversion both ways
//! is `proxy::authorize::grpc`. Stops accepting when `shutdown` resolves,
//! then drains like the HTTP listeners.

use super::accept::DRAIN;
use crate::proxy::authorize::grpc;
use crate::proxy::{Downstream, Gate, Pinned, Role, MAX_HEADER_LIST_BYTES};
use envoy_types::ext_authz::v3::pb::{Authorization, AuthorizationServer, CheckRequest, CheckResponse};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// A `CheckRequest` is headers (and, when Envoy is told to send it, part
/// of the body, which is never read): far below tonic's 4 MiB default.
const MAX_CHECK_REQUEST: usize = 1024 * 1024;

/// The `Authorization` service over the gate the proxy listener serves.
struct Authorizer {
    gate: Arc<Gate>,
}

#[tonic::async_trait]
impl Authorization for Authorizer {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        // tonic records the TCP peer of every connection it accepts from a
        // `TcpStream`; without one, the unspecified address (trusted only
        // by a list that trusts everyone).
        let peer = request.remote_addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let original = grpc::original(&request.into_inner());
        let downstream = Arc::new(Downstream::new(self.gate.clone(), peer, Pinned::default(), Role::AuthorizeGrpc));
        let Ok(rsp) = downstream.handle(original).await;
        Ok(tonic::Response::new(grpc::answer(rsp).await))
    }
}

/// Serves `Check` on `listener` until `shutdown` resolves, then lets open
/// calls finish within the drain time.
pub(super) async fn serve(listener: TcpListener, gate: Arc<Gate>, shutdown: impl Future<Output = ()>) {
    let service = AuthorizationServer::new(Authorizer { gate }).max_decoding_message_size(MAX_CHECK_REQUEST);
    let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
    let serving = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES as u32)
        .serve_with_incoming_shutdown(service, accepted(listener), async {
            let _ = stopping.await;
        });
    tokio::pin!(serving);
    tokio::select! {
        ended = &mut serving => return ended_with(ended),
        () = shutdown => {}
    }
    let _ = stop.send(());
    tracing::info!("forward-auth grpc shutting down; draining calls");
    match tokio::time::timeout(DRAIN, serving).await {
        Ok(ended) => ended_with(ended),
        Err(_) => tracing::warn!("forward-auth grpc drain timed out; closing remaining connections"),
    }
}

fn ended_with(ended: Result<(), tonic::transport::Error>) {
    if let Err(err) = ended {
        tracing::error!(error = %err, "the forward-auth grpc listener failed");
    }
}

/// The accepted connections, as tonic takes them. A failed accept (EMFILE
/// and friends) backs off instead of spinning (tonic's loop would retry at
/// once).
fn accepted(listener: TcpListener) -> impl futures_util::Stream<Item = std::io::Result<TcpStream>> {
    futures_util::stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((Ok(stream), listener));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}
