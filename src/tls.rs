//! TLS (rustls, ring provider). Server side, shared by the public listener
//! and `jwtgate webhook`: a certificate chain and key read from PEM files
//! into a `ServerConfig`, checked to belong together, so a bad pair is an
//! error at load or reload instead of a handshake failure on every client.
//! [`compile`] reads the public listener's `tls:` section. Client side,
//! for https upstreams: [`client_config`] (roots, optional client
//! certificate, ALPN).

use crate::config::{ConfigError, Origin, TlsSpec};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Which file was wrong, and why; callers add the config field.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct TlsError {
    pub path: PathBuf,
    /// True when the key file is at fault (the caller names its field).
    pub key: bool,
    pub why: String,
}

/// ALPN protocols a server offers, most preferred first.
pub const ALPN_H2_AND_HTTP1: &[&[u8]] = &[b"h2", b"http/1.1"];
pub const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];

/// Reads `cert` (a PEM chain, leaf first) and `key` (PKCS#8, PKCS#1 or
/// SEC1 PEM) into a server config offering `alpn`. TLS 1.2 and 1.3 only.
pub fn server_config(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(load(cert, key, alpn)?.config)
}

/// A server config and the exact file bytes it was built from.
pub struct Loaded {
    pub config: Arc<ServerConfig>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Like [`server_config`], keeping the bytes read: a watcher comparing
/// against them sees a renewal that lands right after this read.
pub fn load(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Loaded, TlsError> {
    let Pair { certs, private, cert_pem, key_pem } = read_pair(cert, key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::cert(cert, e.to_string()))?
        .with_no_client_auth()
        // Also checks that the key is the certificate's (rustls ≥ 0.23.14).
        .with_single_cert(certs, private)
        .map_err(|e| TlsError::key(key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Loaded { config: Arc::new(config), cert_pem, key_pem })
}

/// A certificate chain and its key as read, with the file bytes.
struct Pair {
    certs: Vec<CertificateDer<'static>>,
    private: PrivateKeyDer<'static>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl TlsError {
    fn cert(path: &Path, why: String) -> Self {
        TlsError { path: path.to_owned(), key: false, why }
    }

    fn key(path: &Path, why: String) -> Self {
        TlsError { path: path.to_owned(), key: true, why }
    }
}

/// Reads `cert` (a PEM chain, leaf first, not empty) and `key` (PKCS#8,
/// PKCS#1 or SEC1 PEM); whether they belong together is left to rustls.
fn read_pair(cert: &Path, key: &Path) -> Result<Pair, TlsError> {
    let (cert_err, key_err) = (|why| TlsError::cert(cert, why), |why| TlsError::key(key, why));
    let cert_pem = std::fs::read(cert).map_err(|e| cert_err(format!("cannot read: {e}")))?;
    let key_pem = std::fs::read(key).map_err(|e| key_err(format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no PEM certificate in the file".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| key_err(e.to_string()))?;
    Ok(Pair { certs, private, cert_pem, key_pem })
}

/// How a TLS client checks the server's certificate.
pub enum ServerAuth<'a> {
    /// Chains to a public (webpki) root.
    PublicRoots,
    /// Chains to one of these CA certificates, and to nothing else.
    Roots(&'a [CertificateDer<'static>]),
    /// Not checked at all: anyone on the path can pose as the server.
    /// Development only; the handshake signatures are still verified, so
    /// the connection is at least encrypted to whoever answered.
    InsecureSkipVerify,
}

/// Why a client config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("CA certificate refused")]
    CaCertificate(#[source] rustls::Error),
    #[error("TLS setup failed")]
    Setup(#[source] rustls::Error),
    /// The client certificate or key file (`TlsError::key` says which).
    #[error(transparent)]
    ClientCert(TlsError),
}

/// A client config offering `alpn`: TLS 1.2 and 1.3, the server checked as
/// `server_auth` says, and `client_cert` (chain file, key file) presented
/// when the server asks for one (mutual TLS).
pub fn client_config(
    server_auth: ServerAuth<'_>,
    client_cert: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, ClientTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ClientTlsError::Setup)?;
    let builder = match server_auth {
        ServerAuth::PublicRoots => {
            builder.with_root_certificates(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })
        }
        ServerAuth::Roots(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone()).map_err(ClientTlsError::CaCertificate)?;
            }
            builder.with_root_certificates(roots)
        }
        ServerAuth::InsecureSkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider.signature_verification_algorithms))),
    };
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let Pair { certs, private, .. } = read_pair(cert, key).map_err(ClientTlsError::ClientCert)?;
            // Also checks that the key is the certificate's.
            let misfit =
                |e| ClientTlsError::ClientCert(TlsError::key(key, format!("does not fit the certificate: {e}")));
            builder.with_client_auth_cert(certs, private).map_err(misfit)?
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// `ServerAuth::InsecureSkipVerify`: any certificate for any name, but
/// the handshake signed by its key.
#[derive(Debug)]
struct SkipVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Certificate and key file contents (`None`: unreadable).
pub type Fingerprint = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The contents of the files a TLS config was read from, to notice a
/// renewal (Secret mounts swap symlinks, so compare bytes, not mtimes).
pub fn fingerprint(cert: &Path, key: &Path) -> Fingerprint {
    (std::fs::read(cert).ok(), std::fs::read(key).ok())
}

/// The public listener's TLS: the compiled rustls config and the files it
/// came from (watched for renewal by the reload loop).
#[derive(Clone)]
pub struct ListenerTls {
    pub config: Arc<ServerConfig>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub handshake_timeout: Duration,
    /// The certificate and key bytes `config` was built from.
    pub loaded: [Vec<u8>; 2],
}

/// Reads and checks the listener's certificate and key (a key that is not
/// the certificate's is refused here, naming `tls.key_file`).
pub fn compile(spec: &TlsSpec, origin: &Origin<'_>) -> Result<ListenerTls, ConfigError> {
    let (cert_file, key_file) = (origin.dir.join(&spec.cert_file), origin.dir.join(&spec.key_file));
    if spec.handshake_timeout.is_zero() {
        return Err(ConfigError::at(origin, "tls.handshake_timeout", "must be more than zero"));
    }
    let loaded = load(&cert_file, &key_file, ALPN_H2_AND_HTTP1).map_err(|e| {
        let field = if e.key { "tls.key_file" } else { "tls.cert_file" };
        ConfigError::at(origin, field, e.to_string())
    })?;
    Ok(ListenerTls {
        config: loaded.config,
        cert_file,
        key_file,
        handshake_timeout: spec.handshake_timeout,
        loaded: [loaded.cert_pem, loaded.key_pem],
    })
}
