//! OpenID Connect Discovery 1.0 for `discovery: true`: the issuer's
//! `/.well-known/openid-configuration` names the `jwks_uri` its keys are
//! fetched from. A document is used only when its `issuer` is the
//! configured one byte for byte (§4.3: otherwise it may be another IdP's),
//! and its `jwks_uri` only over https (plain http only to a loopback host).
//!
//! [`Discoverer::jwks`] is asked before every JWKS fetch of its source and
//! fetches the document again only when no `jwks_uri` is known yet, when
//! the last JWKS fetch failed (at most once per `unknown_kid_cooldown`),
//! or when the document is older than `max_refresh`: at most once per
//! attempt to load the set, which the JWKS schedule, retry delay and
//! unknown-kid cool-down already bound.

use super::fetch::{FetchError, Fetcher};
use super::{lock, JwksError, JwksSettings};
use crate::error::Causes;
use http::Uri;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// The path OIDC Discovery 1.0 §4 appends to the issuer.
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// A document's issuer is quoted in logs and errors; an IdP (or whatever
/// answers at its address) must not fill them without bound.
const QUOTED_AT_MOST: usize = 256;

/// Why an issuer (at config load) or a discovered `jwks_uri` (at fetch)
/// cannot be used. `Clone` as part of a shared [`FetchError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlRule {
    #[error("not an absolute http(s) URL")]
    NotAUrl,
    /// Keys fetched in clear could be swapped by anyone on the path.
    #[error("must be https (plain http only to a loopback host: 127.0.0.0/8, ::1, localhost)")]
    NotHttps,
    #[error("host missing")]
    NoHost,
    /// Credentials would travel into logs and error texts.
    #[error("credentials in the URL are not supported")]
    Credentials,
    /// OIDC Core §2: an issuer is a URL with no query or fragment.
    #[error("an issuer has no query or fragment")]
    QueryOrFragment,
}

/// Accepts `https://host[:port]/path`, or `http://` to a loopback host;
/// returns the URL and its host (the metric label and log field).
pub(super) fn checked_url(url: &str) -> Result<(Uri, String), UrlRule> {
    let uri: Uri = url.parse().map_err(|_| UrlRule::NotAUrl)?;
    let authority = uri.authority().ok_or(UrlRule::NotAUrl)?;
    if authority.as_str().contains('@') {
        return Err(UrlRule::Credentials);
    }
    let host = authority.host().to_string();
    if host.is_empty() {
        return Err(UrlRule::NoHost);
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback(&host) => {}
        Some("http") => return Err(UrlRule::NotHttps),
        _ => return Err(UrlRule::NotAUrl),
    }
    Ok((uri, host))
}

/// `localhost`, or an IP literal that is a loopback address.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The discovery document URL of `issuer` (OIDC Discovery 1.0 §4: one
/// trailing `/` stripped, `/.well-known/openid-configuration` appended),
/// and the issuer's host.
pub fn discovery_url(issuer: &str) -> Result<(Uri, String), UrlRule> {
    if issuer.contains(['?', '#']) {
        return Err(UrlRule::QueryOrFragment);
    }
    checked_url(issuer)?;
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    checked_url(&format!("{base}{WELL_KNOWN}"))
}

/// The `jwks_uri` last discovered.
#[derive(Clone)]
struct Found {
    jwks: Arc<Fetcher>,
    /// When the document was last fetched (successfully or not).
    at: Instant,
    /// The last JWKS fetch from `jwks` failed: the IdP may have moved it.
    failing: bool,
}

/// The discovery document of one issuer and the `jwks_uri` it named.
pub(super) struct Discoverer {
    issuer: String,
    document: Fetcher,
    found: Mutex<Option<Found>>,
}

impl Discoverer {
    /// Checks the issuer (see [`discovery_url`]); no I/O.
    pub fn new(issuer: &str, settings: &JwksSettings) -> Result<(Self, String), JwksError> {
        let (url, host) = discovery_url(issuer).map_err(JwksError::Issuer)?;
        let document =
            Fetcher::new(url, settings.fetch_timeout, settings.extra_roots.as_ref()).map_err(JwksError::Client)?;
        Ok((Self { issuer: issuer.to_string(), document, found: Mutex::new(None) }, host))
    }

    /// The discovery document's URL.
    pub fn url(&self) -> &Uri {
        self.document.url()
    }

    /// What the next JWKS fetch should GET: the known `jwks_uri`, unless
    /// the document is due again (see the module doc). A failed or refused
    /// document keeps the last good `jwks_uri`; the error is returned only
    /// when none is known. Logs and counts each document fetch.
    pub async fn jwks(&self, settings: &JwksSettings, source: &str) -> Result<Arc<Fetcher>, FetchError> {
        let known = lock(&self.found).clone();
        let now = Instant::now();
        if let Some(found) = known.as_ref().filter(|f| !due(f, settings, now)) {
            return Ok(found.jwks.clone());
        }
        match self.discover().await {
            Ok(jwks) => {
                let jwks = Arc::new(jwks);
                *lock(&self.found) = Some(Found { jwks: jwks.clone(), at: now, failing: false });
                count(source, "ok");
                let jwks_host = jwks.url().host().unwrap_or_default();
                tracing::info!(source = %source, jwks_host = %jwks_host, "OIDC discovery document loaded");
                Ok(jwks)
            }
            Err(error) => {
                let refused = error.is_refused_document();
                count(source, if refused { "refused" } else { "error" });
                let keeping = if known.is_some() { "keeping the last jwks_uri" } else { "no jwks_uri known yet" };
                if refused {
                    tracing::error!(source = %source, error = %Causes(&error), "OIDC discovery document refused; {keeping}");
                } else {
                    tracing::warn!(source = %source, error = %Causes(&error), "OIDC discovery document fetch failed; {keeping}");
                }
                match known {
                    Some(found) => {
                        // Not again before the next due time: the cool-down holds.
                        *lock(&self.found) = Some(Found { at: now, ..found.clone() });
                        Ok(found.jwks)
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// Told how the JWKS fetch from the `jwks_uri` went.
    pub fn fetched(&self, ok: bool) {
        if let Some(found) = lock(&self.found).as_mut() {
            found.failing = !ok;
        }
    }

    /// Fetches and checks the document: a fetcher for its `jwks_uri`, with
    /// the document's client (TLS roots, timeout). Nothing is stored.
    pub async fn discover(&self) -> Result<Fetcher, FetchError> {
        let body = self.document.document().await?;
        // An object (serde would read a struct from an array too); the
        // fields this gate uses, the others ignored.
        let doc: Map<String, Value> = serde_json::from_slice(&body).map_err(|_| FetchError::NotADiscoveryDocument)?;
        let issuer = doc.get("issuer").and_then(Value::as_str).ok_or(FetchError::NotADiscoveryDocument)?;
        if issuer != self.issuer {
            let found = issuer.chars().take(QUOTED_AT_MOST).collect();
            return Err(FetchError::IssuerMismatch { expected: self.issuer.clone(), found });
        }
        let uri = match doc.get("jwks_uri") {
            None | Some(Value::Null) => return Err(FetchError::NoJwksUri),
            Some(Value::String(uri)) => uri,
            Some(_) => return Err(FetchError::NotADiscoveryDocument),
        };
        let (url, _) = checked_url(uri)
            .map_err(|rule| FetchError::JwksUri { uri: uri.chars().take(QUOTED_AT_MOST).collect(), rule })?;
        Ok(self.document.with_url(url))
    }
}

/// Whether the document should be fetched again before this JWKS fetch.
fn due(found: &Found, settings: &JwksSettings, now: Instant) -> bool {
    let age = now.saturating_duration_since(found.at);
    age >= settings.max_refresh || (found.failing && age >= settings.unknown_kid_cooldown)
}

fn count(source: &str, result: &'static str) {
    metrics::counter!("jwtgate_discovery_fetches_total", "source" => source.to_string(), "result" => result)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_url_strips_one_trailing_slash_and_keeps_the_path() {
        let url = |issuer: &str| discovery_url(issuer).map(|(u, _)| u.to_string());
        assert_eq!(url("https://idp.example").unwrap(), "https://idp.example/.well-known/openid-configuration");
        assert_eq!(url("https://idp.example/").unwrap(), "https://idp.example/.well-known/openid-configuration");
        assert_eq!(
            url("https://idp.example/realms/acme/").unwrap(),
            "https://idp.example/realms/acme/.well-known/openid-configuration"
        );
        assert_eq!(
            url("https://idp.example/tenant//").unwrap(),
            "https://idp.example/tenant//.well-known/openid-configuration",
            "only one slash is stripped"
        );
        assert_eq!(discovery_url("https://idp.example:8443/").unwrap().1, "idp.example");
    }

    #[test]
    fn plain_http_is_allowed_only_to_a_loopback_host() {
        for ok in ["http://127.0.0.1:8080", "http://127.9.0.1/", "http://localhost/x", "http://[::1]:9/", "https://idp"]
        {
            assert!(checked_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(checked_url("http://idp.example/").err(), Some(UrlRule::NotHttps));
        assert_eq!(checked_url("http://10.0.0.1/").err(), Some(UrlRule::NotHttps));
        assert_eq!(checked_url("http://localhost.evil.example/").err(), Some(UrlRule::NotHttps));
        assert_eq!(checked_url("ftp://idp.example/").err(), Some(UrlRule::NotAUrl));
        assert_eq!(checked_url("/relative/jwks.json").err(), Some(UrlRule::NotAUrl));
        assert_eq!(checked_url("https://user:pw@idp.example/").err(), Some(UrlRule::Credentials));
        assert_eq!(discovery_url("https://idp.example/?tenant=1").err(), Some(UrlRule::QueryOrFragment));
        assert_eq!(discovery_url("https://idp.example/#x").err(), Some(UrlRule::QueryOrFragment));
    }

    #[test]
    fn the_document_is_due_at_max_refresh_or_after_a_failed_jwks_fetch_past_the_cooldown() {
        let settings = JwksSettings {
            max_refresh: std::time::Duration::from_secs(3600),
            unknown_kid_cooldown: std::time::Duration::from_secs(30),
            ..JwksSettings::default()
        };
        let jwks = Arc::new(Fetcher::new(Uri::from_static("https://idp/jwks"), settings.fetch_timeout, None).unwrap());
        let at = Instant::now();
        let found = |failing| Found { jwks: jwks.clone(), at, failing };
        let later = |secs| at + std::time::Duration::from_secs(secs);
        assert!(!due(&found(false), &settings, later(3599)));
        assert!(due(&found(false), &settings, later(3600)));
        assert!(!due(&found(true), &settings, later(29)), "within the cool-down");
        assert!(due(&found(true), &settings, later(30)));
    }
}
