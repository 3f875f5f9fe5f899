//! The access log: one `jwtgate::access` line per request (`access_log:
//! true`), written when the response body has been handed to the
//! connection (or dropped, when the client went away), so it carries the
//! whole latency and the bytes both ways. Its fields never hold the
//! token, the query, a cookie or any credential header; the subject only
//! as a keyed hash, when a key is configured.

use super::protocol::BodyWatch;
use crate::auth::Claims;
use crate::config::SecretSource;
use crate::error::Body;
use crate::metrics::Outcome;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderValue, Method};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

/// What the line says, gathered as the request goes.
pub struct Record {
    pub started: Instant,
    pub request_id: HeaderValue,
    pub method: Method,
    /// Without the query: it can carry secrets (and is the app's business).
    pub path: String,
    pub user_agent: Option<HeaderValue>,
    pub client: SocketAddr,
    pub body_in: BodyWatch,
    pub rule: Arc<str>,
    pub status: u16,
    pub outcome: Outcome,
    pub reason: Option<&'static str>,
    pub upstream: Option<Duration>,
    pub issuer: Option<String>,
    pub sub_hmac: Option<String>,
}

impl Record {
    /// The caller's issuer, and its subject's keyed hash when `key` is set.
    pub fn caller(&mut self, claims: Option<&Claims>, key: Option<&SecretSource>) {
        let Some(claims) = claims else { return };
        self.issuer = Some(claims.iss.clone());
        self.sub_hmac = key.zip(claims.sub.as_deref()).map(|(key, sub)| subject_hmac(key, sub));
    }

    fn write(&self, bytes_out: u64, complete: bool) {
        let micros = |d: Duration| d.as_micros() as u64;
        tracing::info!(
            target: "jwtgate::access",
            request_id = self.request_id.to_str().unwrap_or_default(),
            method = self.method.as_str(),
            path = self.path,
            rule = &*self.rule,
            status = self.status,
            outcome = self.outcome.as_str(),
            reason = self.reason,
            duration_us = micros(self.started.elapsed()),
            upstream_us = self.upstream.map(micros),
            bytes_in = self.body_in.bytes(),
            bytes_out,
            complete,
            user_agent = self.user_agent.as_ref().and_then(|v| v.to_str().ok()),
            client = %self.client,
            issuer = self.issuer.as_deref(),
            sub_hmac = self.sub_hmac.as_deref(),
        );
    }
}

/// HMAC-SHA256(key, sub), the first 128 bits in hex: stable per user and
/// key, not reversible without the key.
pub fn subject_hmac(key: &SecretSource, sub: &str) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.expose()) else { return String::new() };
    mac.update(sub.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The response body, counting what goes out; the line is written when it
/// is dropped (after its end, or when the connection goes first).
pub struct Logged {
    inner: Body,
    bytes_out: u64,
    ended: bool,
    record: Option<Box<Record>>,
}

impl Logged {
    pub fn new(inner: Body, record: Option<Box<Record>>) -> Self {
        Self { inner, bytes_out: 0, ended: false, record }
    }
}

/// What [`Body`] fails with.
type BodyError = Box<dyn std::error::Error + Send + Sync>;

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                self.bytes_out += len;
            }
            None => self.ended = true,
            Some(Err(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            // hyper stops polling a body that says it ended (a Full one
            // after its one frame), so the end is that or a None.
            let complete = self.ended || self.inner.is_end_stream();
            record.write(self.bytes_out, complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_hash_is_keyed_and_stable() {
        let key = SecretSource::new(b"0123456789abcdef".to_vec());
        let other = SecretSource::new(b"fedcba9876543210".to_vec());
        let a = subject_hmac(&key, "alice");
        assert_eq!(a.len(), 32);
        assert_eq!(a, subject_hmac(&key, "alice"));
        assert_ne!(a, subject_hmac(&key, "bob"));
        assert_ne!(a, subject_hmac(&other, "alice"));
        assert!(!a.contains("alice"));
    }
}
