//! One HTTP(S) GET of a JWK Set and what its answer says: the decoded
//! [`KeySet`] and how long it may be kept (`Cache-Control`). Scheduling,
//! swapping and metrics are left to [`super::JwksSource`].

use super::ExtraRoots;
use crate::auth::keys::{self, KeySet};
use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::error::Error;
use std::time::Duration;

/// A JWK Set is a few KiB; anything near this is not one, and an IdP (or
/// whatever answers at its address) must not make us buffer without bound.
pub(super) const MAX_BODY_BYTES: usize = 1 << 20;

/// What the answer's `Cache-Control` says about freshness (RFC 9111 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// `max-age=N`, in seconds.
    MaxAge(Duration),
    /// `no-store` or `no-cache`: refetch as soon as we allow ourselves to.
    Revalidate,
    /// No usable directive.
    Unstated,
}

/// A good answer: the keys and how long the IdP says they stay fresh.
pub(super) struct Fetched {
    pub keys: KeySet,
    pub freshness: Freshness,
}

/// GETs one URL over http or https (webpki roots plus any private CA,
/// ring provider given explicitly so a missing process default cannot
/// panic).
pub(super) struct Fetcher {
    url: Uri,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Fetcher {
    pub fn new(url: Uri, timeout: Duration, extra_roots: Option<&ExtraRoots>) -> Result<Self, String> {
        let provider = rustls::crypto::ring::default_provider();
        let https = match extra_roots {
            None => hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)
                .map_err(|e| format!("TLS setup: {e}"))?,
            Some(extra) => {
                let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                for cert in extra.certs() {
                    roots.add(cert.clone()).map_err(|e| format!("CA certificate: {e}"))?;
                }
                let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS setup: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls)
            }
        }
        .https_or_http()
        .enable_http1()
        .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { url, timeout, client })
    }

    /// One fetch, bounded by the timeout as a whole (connect, headers, body).
    pub async fn fetch(&self) -> Result<Fetched, String> {
        let (headers, body) = tokio::time::timeout(self.timeout, self.get())
            .await
            .map_err(|_| format!("no complete answer within {:?}", self.timeout))??;
        let keys = key_set(&body)?;
        Ok(Fetched { keys, freshness: freshness(&headers) })
    }

    async fn get(&self) -> Result<(HeaderMap, Bytes), String> {
        let req = Request::get(self.url.clone())
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .body(Empty::new())
            .map_err(|e| format!("request: {e}"))?;
        let rsp = self.client.request(req).await.map_err(|e| format!("request failed: {}", chain(&e)))?;
        if rsp.status() != StatusCode::OK {
            return Err(format!("answered {}, expected 200", rsp.status()));
        }
        let (parts, body) = rsp.into_parts();
        let body = Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("body (limit {MAX_BODY_BYTES} bytes): {}", chain(e.as_ref())))?
            .to_bytes();
        Ok((parts.headers, body))
    }
}

/// Decodes a JWK Set into a [`KeySet`]; a duplicate kid refuses the set.
/// Error texts are cut before any detail that could quote the body.
pub(super) fn key_set(body: &[u8]) -> Result<KeySet, String> {
    let mut set = KeySet::default();
    for key in keys::from_jwks(body).map_err(|e| redact(&e))? {
        set.add(key)?;
    }
    Ok(set)
}

/// Keeps the summary of a `from_jwks` error ("not a JWK Set", "key
/// Some(\"kid\")") and drops the parser's detail, which may quote the body.
fn redact(error: &str) -> String {
    error.split(": ").next().unwrap_or(error).to_string()
}

/// Reads `max-age`, `no-store` and `no-cache` from every `Cache-Control`
/// header; other directives do not concern a client's refresh schedule.
pub(super) fn freshness(headers: &HeaderMap) -> Freshness {
    let mut found = Freshness::Unstated;
    let directives = headers.get_all(CACHE_CONTROL).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    for directive in directives {
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Freshness::Revalidate;
        }
        if name.eq_ignore_ascii_case("max-age") {
            if let Some(secs) = value.and_then(|v| v.parse::<u64>().ok()) {
                found = Freshness::MaxAge(Duration::from_secs(secs));
            }
        }
    }
    found
}

/// An error and its sources, so "client error (Connect)" says why.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
