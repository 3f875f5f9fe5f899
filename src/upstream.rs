//! The upstreams requests are forwarded to, compiled from `upstream:` (the
//! default) and `upstreams:` (named ones a route may pick). Their pools
//! and the forwarding itself are `proxy::forward`'s. An `https://`
//! upstream's TLS client config is built here, its files read at every
//! load, so a bad certificate file is a config error (and a reload keeps
//! the running config) rather than a 502 on every request.

use crate::auth::jwks::ExtraRoots;
use crate::config::{ConfigError, Origin, UpstreamSpec};
use crate::error::Causes;
use crate::tls::{self, ClientTlsError, ServerAuth};
use http::uri::{Authority, Scheme};
use http::Uri;
use rustls::pki_types::ServerName;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// `upstream` or `upstreams.<name>`, as logs name it.
    pub name: String,
    /// As in the URL: the pool's key, and the `Host` of a request that
    /// came without one.
    pub authority: Authority,
    /// `host:port` to connect to (the scheme's port when the URL has none).
    pub addr: String,
    /// `Some` for an `https://` upstream.
    pub tls: Option<UpstreamTls>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub pool_max_idle: usize,
    pub pool_idle_timeout: Duration,
    /// Client connections that may have an upstream connection of their
    /// own (0: none, every request takes the pool), and how long one may
    /// go unused before it is handed back.
    pub affinity_max: usize,
    pub affinity_idle_timeout: Duration,
    /// `X-Forwarded-Proto`: how clients reached jwtgate (`https` with `tls`).
    pub forwarded_proto: &'static str,
    pub websocket_idle_timeout: Duration,
}

/// How jwtgate speaks TLS to an `https://` upstream: one client config for
/// the pool and the client connections' own upstream connections alike.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    pub config: Arc<rustls::ClientConfig>,
    /// The URL's host: sent as SNI when it is a DNS name (an IP address is
    /// never sent), and what the certificate must be valid for (a DNS or
    /// an IP subjectAltName).
    pub server_name: ServerName<'static>,
    /// `insecure_skip_verify: true`: logged at warn whenever it is put in
    /// force.
    pub insecure_skip_verify: bool,
}

impl UpstreamSettings {
    /// `http` or `https`: how jwtgate reaches this upstream.
    pub fn scheme(&self) -> Scheme {
        if self.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }
}

/// Only HTTP/1.1 is offered: h2 to an upstream is not implemented (the
/// forwarding path speaks HTTP/1.1 to every upstream).
const UPSTREAM_ALPN: &[&[u8]] = tls::ALPN_HTTP1;

/// More upstream connections than an app would want from one sidecar.
const MAX_AFFINITY: usize = 100_000;

/// The default upstream, and every upstream in route order: the default
/// first (a route's index 0), then the named ones by name.
pub fn compile(
    default: &UpstreamSpec,
    named: &BTreeMap<String, UpstreamSpec>,
    tls: bool,
    origin: &Origin<'_>,
) -> Result<(UpstreamSettings, Vec<UpstreamSettings>), ConfigError> {
    let forwarded_proto = if tls { "https" } else { "http" };
    let first = compile_one(default, "upstream", forwarded_proto, origin)?;
    let mut all = vec![first.clone()];
    for (name, spec) in named {
        all.push(compile_one(spec, &format!("upstreams.{name}"), forwarded_proto, origin)?);
    }
    Ok((first, all))
}

fn compile_one(
    spec: &UpstreamSpec,
    at: &str,
    forwarded_proto: &'static str,
    origin: &Origin<'_>,
) -> Result<UpstreamSettings, ConfigError> {
    let bad = |msg: &str| ConfigError::at(origin, format!("{at}.url"), msg);
    let uri: Uri = spec.url.parse().map_err(|_| bad("not a URL"))?;
    let https =
        match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad(
                "only http://host:port upstreams (and https://host:port) are supported; the port defaults to 80 (443)",
            )),
        };
    if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(bad("the upstream URL must not have a path (paths are forwarded as received)"));
    }
    let authority = uri.authority().cloned().ok_or_else(|| bad("missing host"))?;
    if authority.as_str().contains('@') {
        return Err(bad("the upstream URL must not carry credentials"));
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = format!("{}:{port}", authority.host());
    let tls = match https {
        true => Some(compile_tls(spec, at, authority.host(), origin)?),
        false => {
            refuse_tls_fields(spec, at, origin)?;
            None
        }
    };
    if spec.affinity_max > MAX_AFFINITY {
        return Err(ConfigError::at(origin, format!("{at}.affinity_max"), format!("at most {MAX_AFFINITY}")));
    }
    if spec.affinity_idle_timeout.is_zero() {
        return Err(ConfigError::at(origin, format!("{at}.affinity_idle_timeout"), "must be more than zero"));
    }
    if spec.websocket_idle_timeout.is_zero() {
        return Err(ConfigError::at(origin, format!("{at}.websocket_idle_timeout"), "must be more than zero"));
    }
    Ok(UpstreamSettings {
        name: at.to_owned(),
        authority,
        addr,
        tls,
        timeout: spec.timeout,
        connect_timeout: spec.connect_timeout,
        pool_max_idle: spec.pool_max_idle,
        pool_idle_timeout: spec.pool_idle_timeout,
        affinity_max: spec.affinity_max,
        affinity_idle_timeout: spec.affinity_idle_timeout,
        forwarded_proto,
        websocket_idle_timeout: spec.websocket_idle_timeout,
    })
}

/// TLS settings on an `http://` upstream would be silently unused: a
/// config that asks for verification must get it or be refused.
fn refuse_tls_fields(spec: &UpstreamSpec, at: &str, origin: &Origin<'_>) -> Result<(), ConfigError> {
    let set = [
        ("ca_file", spec.ca_file.is_some()),
        ("client_cert_file", spec.client_cert_file.is_some()),
        ("client_key_file", spec.client_key_file.is_some()),
        ("insecure_skip_verify", spec.insecure_skip_verify),
    ];
    match set.iter().find(|(_, set)| *set) {
        Some((field, _)) => {
            Err(ConfigError::at(origin, format!("{at}.{field}"), "only for an https:// upstream (the url is http://)"))
        }
        None => Ok(()),
    }
}

/// The upstream's TLS client config: its roots (`ca_file` instead of the
/// public ones, or none at all under `insecure_skip_verify`), its client
/// certificate, and the name its certificate is checked against.
fn compile_tls(spec: &UpstreamSpec, at: &str, host: &str, origin: &Origin<'_>) -> Result<UpstreamTls, ConfigError> {
    let err = |field: &str, msg: String| ConfigError::at(origin, format!("{at}.{field}"), msg);
    // `[::1]` in a URL, `::1` as a name.
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let server_name = ServerName::try_from(bare.to_owned())
        .map_err(|e| err("url", format!("`{bare}` is neither a DNS name nor an IP address: {e}")))?;
    let roots = match &spec.ca_file {
        Some(_) if spec.insecure_skip_verify => {
            let msg = "insecure_skip_verify checks no certificate: a ca_file beside it would not be used".to_owned();
            return Err(err("insecure_skip_verify", msg));
        }
        Some(file) => Some(
            ExtraRoots::from_pem_file(&origin.dir.join(file)).map_err(|e| err("ca_file", Causes(&e).to_string()))?,
        ),
        None => None,
    };
    let server_auth = match (&roots, spec.insecure_skip_verify) {
        (_, true) => ServerAuth::InsecureSkipVerify,
        (Some(roots), false) => ServerAuth::Roots(roots.certs()),
        (None, false) => ServerAuth::PublicRoots,
    };
    let client_cert = match (&spec.client_cert_file, &spec.client_key_file) {
        (Some(cert), Some(key)) => Some((origin.dir.join(cert), origin.dir.join(key))),
        (Some(_), None) => return Err(err("client_cert_file", "needs client_key_file too".into())),
        (None, Some(_)) => return Err(err("client_key_file", "needs client_cert_file too".into())),
        (None, None) => None,
    };
    let client_cert = client_cert.as_ref().map(|(cert, key)| (cert.as_path(), key.as_path()));
    let config = tls::client_config(server_auth, client_cert, UPSTREAM_ALPN).map_err(|e| match e {
        ClientTlsError::ClientCert(e) if e.key => err("client_key_file", e.to_string()),
        ClientTlsError::ClientCert(e) => err("client_cert_file", e.to_string()),
        ClientTlsError::CaCertificate(_) => err("ca_file", Causes(&e).to_string()),
        ClientTlsError::Setup(_) => err("url", Causes(&e).to_string()),
    })?;
    Ok(UpstreamTls { config, server_name, insecure_skip_verify: spec.insecure_skip_verify })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{origin, section};

    const UPSTREAMS: &str = "\
upstream: { url: \"http://127.0.0.1:3000\", timeout: 1m30s }
upstreams:
  files:
    url: http://files.internal:8080
    websocket_idle_timeout: 10s
";

    fn compiled(text: &str, tls: bool) -> Result<(UpstreamSettings, Vec<UpstreamSettings>), ConfigError> {
        let default = section::<UpstreamSpec>(text, "upstream");
        compile(&default, &section(text, "upstreams"), tls, &origin(text))
    }

    #[test]
    fn upstream_sections_compile_from_yaml() {
        let (default, all) = compiled(UPSTREAMS, true).unwrap();
        assert_eq!((default.authority.as_str(), default.timeout), ("127.0.0.1:3000", Duration::from_secs(90)));
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].authority, "files.internal:8080");
        assert_eq!(all[1].websocket_idle_timeout, Duration::from_secs(10));
        assert!(all.iter().all(|u| u.forwarded_proto == "https"), "clients reach jwtgate over TLS");
    }

    #[test]
    fn an_upstream_url_with_a_path_or_another_scheme_is_refused_at_its_line() {
        let err =
            compiled(&UPSTREAMS.replace("http://files.internal:8080", "ftp://files.internal"), false).unwrap_err();
        assert_eq!((err.field.as_str(), err.line_col.map(|(l, _)| l)), ("upstreams.files.url", Some(4)), "{err}");
        let err = compiled(&UPSTREAMS.replace(":3000", ":3000/api"), false).unwrap_err();
        assert_eq!((err.field.as_str(), err.line_col.map(|(l, _)| l)), ("upstream.url", Some(1)), "{err}");
    }

    /// A named https upstream with these extra fields (one per line).
    fn https(fields: &str) -> String {
        let fields: String = fields.lines().map(|l| format!("    {}\n", l.trim())).collect();
        format!("upstream: {{ url: \"http://127.0.0.1:3000\" }}\nupstreams:\n  app:\n    url: https://app.internal\n{fields}")
    }

    fn refused(text: &str) -> (String, Option<usize>, String) {
        let err = compiled(text, false).unwrap_err();
        (err.field.clone(), err.line_col.map(|(l, _)| l), err.to_string())
    }

    #[test]
    fn an_https_upstream_defaults_to_port_443_and_checks_the_url_host() {
        let (default, all) = compiled(&https("ca_file: tests/keys/redis-tls/ca.pem"), false).unwrap();
        assert!(default.tls.is_none());
        assert_eq!((default.scheme(), default.addr.as_str()), (Scheme::HTTP, "127.0.0.1:3000"));
        let app = &all[1];
        assert_eq!(
            (app.name.as_str(), app.scheme(), app.addr.as_str()),
            ("upstreams.app", Scheme::HTTPS, "app.internal:443")
        );
        assert_eq!(app.authority, "app.internal", "the URL's authority as written (the pool's key)");
        let tls = app.tls.as_ref().unwrap();
        assert_eq!(tls.server_name, ServerName::try_from("app.internal").unwrap());
        assert!(!tls.insecure_skip_verify);
        assert_eq!(tls.config.alpn_protocols, vec![b"http/1.1".to_vec()], "h2 is not offered");
        // An IP literal is checked against the certificate's IP SANs (and
        // rustls sends no SNI for it).
        let (_, all) = compiled(&https("").replace("https://app.internal", "https://[::1]:8443"), false).unwrap();
        let ip: std::net::IpAddr = "::1".parse().unwrap();
        assert_eq!(all[1].tls.as_ref().unwrap().server_name, ServerName::from(ip));
        assert_eq!(all[1].addr, "[::1]:8443");
    }

    #[test]
    fn tls_fields_on_an_http_upstream_are_refused_at_their_line() {
        let text = https("ca_file: tests/keys/redis-tls/ca.pem").replace("https://app.internal", "http://app.internal");
        let (field, line, msg) = refused(&text);
        assert_eq!((field.as_str(), line), ("upstreams.app.ca_file", Some(5)), "{msg}");
        assert!(msg.contains("only for an https:// upstream"), "{msg}");
        let text = https("insecure_skip_verify: true").replace("https://", "http://");
        assert_eq!(refused(&text).0, "upstreams.app.insecure_skip_verify");
    }

    #[test]
    fn unreadable_or_bad_pem_files_are_refused_naming_the_file_field_and_line() {
        let (field, line, msg) = refused(&https("ca_file: tests/keys/nope.pem"));
        assert_eq!((field.as_str(), line), ("upstreams.app.ca_file", Some(5)), "{msg}");
        assert!(msg.contains("tests/keys/nope.pem"), "names the file: {msg}");
        let (field, _, msg) = refused(&https("ca_file: tests/keys/README.md"));
        assert_eq!(field, "upstreams.app.ca_file");
        assert!(msg.contains("no PEM certificate"), "{msg}");
        let pair = "client_cert_file: tests/keys/upstream-mtls/client.pem\nclient_key_file: tests/keys/nope.key.pem";
        let (field, line, msg) = refused(&https(pair));
        assert_eq!((field.as_str(), line), ("upstreams.app.client_key_file", Some(6)), "{msg}");
        assert!(msg.contains("tests/keys/nope.key.pem") && msg.contains("cannot read"), "{msg}");
        let not_a_cert = "client_cert_file: tests/keys/ec.key.pem\nclient_key_file: tests/keys/ec.key.pem";
        let (field, line, msg) = refused(&https(not_a_cert));
        assert_eq!((field.as_str(), line), ("upstreams.app.client_cert_file", Some(5)), "{msg}");
        assert!(msg.contains("no PEM certificate"), "{msg}");
    }

    #[test]
    fn a_client_certificate_needs_its_own_key() {
        let (field, line, msg) = refused(&https("client_cert_file: tests/keys/upstream-mtls/client.pem"));
        assert_eq!((field.as_str(), line), ("upstreams.app.client_cert_file", Some(5)), "{msg}");
        assert!(msg.contains("needs client_key_file"), "{msg}");
        assert_eq!(
            refused(&https("client_key_file: tests/keys/upstream-mtls/client.key.pem")).0,
            "upstreams.app.client_key_file"
        );
        // Another certificate's key (both files valid PEM).
        let wrong = "client_cert_file: tests/keys/upstream-mtls/client.pem\nclient_key_file: tests/keys/redis-tls/server.key.pem";
        let (field, line, msg) = refused(&https(wrong));
        assert_eq!((field.as_str(), line), ("upstreams.app.client_key_file", Some(6)), "{msg}");
        assert!(msg.contains("does not fit the certificate"), "{msg}");
        // Positive control: the pair that belongs together.
        let pair = "client_cert_file: tests/keys/upstream-mtls/client.pem\nclient_key_file: tests/keys/upstream-mtls/client.key.pem";
        let (_, all) = compiled(&https(pair), false).unwrap();
        assert!(all[1].tls.as_ref().unwrap().config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn insecure_skip_verify_is_on_its_own_and_said_so() {
        let (field, line, msg) = refused(&https("insecure_skip_verify: true\nca_file: tests/keys/redis-tls/ca.pem"));
        assert_eq!((field.as_str(), line), ("upstreams.app.insecure_skip_verify", Some(5)), "{msg}");
        let (_, all) = compiled(&https("insecure_skip_verify: true"), false).unwrap();
        assert!(all[1].tls.as_ref().unwrap().insecure_skip_verify);
    }

    /// The decision: `ca_file` replaces the public roots (an app behind
    /// a sidecar is reached over its own PKI; any public CA vouching for
    /// it too would widen who can pose as it). rustls shows the root
    /// count only in its `Debug`.
    #[test]
    fn ca_file_replaces_the_public_roots() {
        let roots = |text: &str| {
            let (_, all) = compiled(text, false).unwrap();
            let debug = format!("{:?}", all[1].tls.as_ref().unwrap().config);
            let marker = "RootCertStore { roots: \"(";
            let at = debug.find(marker).unwrap() + marker.len();
            debug[at..].split(' ').next().unwrap().to_owned()
        };
        assert_eq!(roots(&https("ca_file: tests/keys/redis-tls/ca.pem")), "1", "the CA file's one certificate only");
        let public: usize = roots(&https("")).parse().unwrap();
        assert!(public > 50, "without ca_file, the webpki roots: {public}");
    }
}
