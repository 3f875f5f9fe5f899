//! One HTTP(S) GET of a JWK Set and what its answer says: the decoded
//! [`KeySet`] and how long it may be kept (`Cache-Control`). Scheduling,
//! swapping and metrics are left to [`super::JwksSource`].

use super::ExtraRoots;
use crate::auth::keys::{self, KeyError, KeySet};
use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

/// A JWK Set is a few KiB; anything near this is not one, and an IdP (or
/// whatever answers at its address) must not make us buffer without bound.
pub(super) const MAX_BODY_BYTES: usize = 1 << 20;

const JWKS_ACCEPT: &str = "application/jwk-set+json, application/json";

/// Why a JWK Set could not be fetched or used. `Clone` (sources behind
/// `Arc`) because one fetch's result answers every caller that waited on
/// it. No variant holds any of the body: the parser's detail, which may
/// quote it, is dropped (see [`key_set`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("TLS setup failed")]
    Tls(#[source] Arc<rustls::Error>),
    #[error("CA certificate refused")]
    CaCertificate(#[source] Arc<rustls::Error>),
    #[error("no complete answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("request not built")]
    Request(#[source] Arc<http::Error>),
    #[error("request failed")]
    Send(#[source] Arc<hyper_util::client::legacy::Error>),
    #[error("answered {0}, expected 200")]
    Status(StatusCode),
    #[error("body not read (limit {MAX_BODY_BYTES} bytes)")]
    Body(#[source] Arc<dyn Error + Send + Sync>),
    #[error("not a JWK Set")]
    NotAJwkSet,
    /// A duplicate kid, no signing key: said as the key set says it.
    #[error(transparent)]
    KeySet(KeyError),
    /// OIDC Discovery: not a JSON object with a string `issuer` (the
    /// parser's detail, which may quote the body, is dropped).
    #[error("not an OpenID Provider configuration document")]
    NotADiscoveryDocument,
    /// OIDC Discovery 1.0 §4.3: the document must name the configured
    /// issuer byte for byte, or it may be another IdP's (or an attacker's).
    #[error("the discovery document names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the discovery document has no jwks_uri")]
    NoJwksUri,
    #[error("the discovery document's jwks_uri {uri:?} is refused")]
    JwksUri {
        uri: String,
        #[source]
        rule: super::discovery::UrlRule,
    },
}

impl FetchError {
    /// A discovery document that was fetched but refused (as opposed to a
    /// fetch that failed): the IdP, or whatever answers in its name, is
    /// misconfigured, and the log says so as an error.
    pub fn is_refused_document(&self) -> bool {
        matches!(
            self,
            FetchError::NotADiscoveryDocument
                | FetchError::IssuerMismatch { .. }
                | FetchError::NoJwksUri
                | FetchError::JwksUri { .. }
        )
    }
}

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
#[derive(Clone)]
pub(super) struct Fetcher {
    url: Uri,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Fetcher {
    pub fn new(url: Uri, timeout: Duration, extra_roots: Option<&ExtraRoots>) -> Result<Self, FetchError> {
        let provider = rustls::crypto::ring::default_provider();
        let https = match extra_roots {
            None => hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(provider)
                .map_err(|e| FetchError::Tls(Arc::new(e)))?,
            Some(extra) => {
                let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                for cert in extra.certs() {
                    roots.add(cert.clone()).map_err(|e| FetchError::CaCertificate(Arc::new(e)))?;
                }
                let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| FetchError::Tls(Arc::new(e)))?
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

    /// The same client (TLS roots, timeout) for another URL: a discovered
    /// `jwks_uri` is fetched as the discovery document was.
    pub fn with_url(&self, url: Uri) -> Self {
        Self { url, ..self.clone() }
    }

    /// One fetch, bounded by the timeout as a whole (connect, headers, body).
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let (headers, body) = self.bounded(JWKS_ACCEPT).await?;
        let keys = key_set(&body)?;
        Ok(Fetched { keys, freshness: freshness(&headers) })
    }

    /// One fetch for `jwtgate check`: what [`fetch`](Self::fetch) would
    /// accept, described key by key.
    pub async fn probe(&self) -> Result<Vec<KeySummary>, FetchError> {
        let (_, body) = self.bounded(JWKS_ACCEPT).await?;
        key_set(&body)?;
        Ok(summaries(&body))
    }

    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The body of a JSON document (an OpenID Provider configuration),
    /// bounded like [`fetch`](Self::fetch).
    pub async fn document(&self) -> Result<Bytes, FetchError> {
        Ok(self.bounded("application/json").await?.1)
    }

    async fn bounded(&self, accept: &'static str) -> Result<(HeaderMap, Bytes), FetchError> {
        tokio::time::timeout(self.timeout, self.get(accept)).await.map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn get(&self, accept: &'static str) -> Result<(HeaderMap, Bytes), FetchError> {
        let req = Request::get(self.url.clone())
            .header(ACCEPT, accept)
            .body(Empty::new())
            .map_err(|e| FetchError::Request(Arc::new(e)))?;
        let rsp = self.client.request(req).await.map_err(|e| FetchError::Send(Arc::new(e)))?;
        if rsp.status() != StatusCode::OK {
            return Err(FetchError::Status(rsp.status()));
        }
        let (parts, body) = rsp.into_parts();
        let body =
            Limited::new(body, MAX_BODY_BYTES).collect().await.map_err(|e| FetchError::Body(Arc::from(e)))?.to_bytes();
        Ok((parts.headers, body))
    }
}

/// Decodes a JWK Set into a [`KeySet`]; a duplicate kid refuses the set.
/// Errors are cut before any detail that could quote the body.
pub(super) fn key_set(body: &[u8]) -> Result<KeySet, FetchError> {
    let mut set = KeySet::default();
    for key in keys::from_jwks(body).map_err(redact)? {
        set.add(key).map_err(redact)?;
    }
    Ok(set)
}

/// One key of a fetched set as `jwtgate check` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    pub kid: Option<String>,
    /// The JWK's `alg`, else its key type (`kty`): what it can verify.
    pub alg: String,
}

/// The keys [`key_set`] keeps (signing keys this gate can decode), with
/// their `kid` and `alg`, which the decoded keys no longer carry. Called
/// on a body `key_set` accepted.
fn summaries(body: &[u8]) -> Vec<KeySummary> {
    use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
    let Ok(set) = serde_json::from_slice::<JwkSet>(body) else { return Vec::new() };
    let usable = |jwk: &&jsonwebtoken::jwk::Jwk| {
        !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
            && jsonwebtoken::DecodingKey::from_jwk(jwk).is_ok()
    };
    let summary = |jwk: &jsonwebtoken::jwk::Jwk| {
        let kty = match jwk.algorithm {
            AlgorithmParameters::RSA(_) => "kty RSA",
            AlgorithmParameters::EllipticCurve(_) => "kty EC",
            AlgorithmParameters::OctetKeyPair(_) => "kty OKP",
            AlgorithmParameters::OctetKey(_) => "kty oct",
            // `#[non_exhaustive]`: a key type added later still decoded.
            _ => "kty other",
        };
        let alg = jwk.common.key_algorithm.map_or_else(|| kty.to_string(), |a| a.to_string());
        KeySummary { kid: jwk.common.key_id.clone(), alg }
    };
    set.keys.iter().filter(usable).map(summary).collect()
}

/// Keeps what a key set error says ("not a JWK Set", "duplicate kid") and
/// drops the JSON parser's error, which may quote the body. No `_` arm: a
/// new `KeyError` is checked for what it carries before it can pass.
fn redact(error: KeyError) -> FetchError {
    match error {
        KeyError::NotAJwkSet(_) => FetchError::NotAJwkSet,
        e @ (KeyError::DuplicateKid(_) | KeyError::NoSigningKey | KeyError::NotAPublicKey) => FetchError::KeySet(e),
    }
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
