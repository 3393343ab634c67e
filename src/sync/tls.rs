//! TLS trust for `OPENK_CA_CERT`: the file's certificates are roots (a
//! private CA) and pinned server certificates (self-signed), and TLS
//! failures get messages that say what to check.

use std::path::Path;
use std::sync::Arc;

use super::client::CA_CERT_ENV;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Accepts a server certificate that is exactly one of the pinned ones,
/// else verifies the chain against the roots (built-in plus the file's
/// CA certificates) and the server name. Handshake signatures are always
/// verified with the provider's algorithms, so only the holder of the
/// pinned certificate's private key gets through.
#[derive(Debug)]
pub(super) struct PinnedOrWebPki {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The certificates of a PEM file.
pub(super) fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read {CA_CERT_ENV}={}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "{CA_CERT_ENV}={} is not a PEM certificate file: {e}",
                path.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{CA_CERT_ENV}={} holds no certificate (expected `-----BEGIN CERTIFICATE-----` blocks)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The TLS client setup for the certificates in `path`.
pub(super) fn config(path: &Path) -> Result<rustls::ClientConfig, String> {
    let certs = read_pem(path)?;
    config_for(certs)
}

pub(super) fn config_for(
    certs: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A certificate that is no valid trust anchor is still pinned.
    let _ = roots.add_parsable_certificates(certs.iter().cloned());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("cannot use the certificates of {CA_CERT_ENV}: {e}"))?;
    let verifier = PinnedOrWebPki {
        pinned: certs,
        webpki,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // reqwest speaks HTTP/1.1 only (no http2 feature).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// What went wrong with the server's certificate, in words.
fn certificate_problem(e: &CertificateError) -> String {
    match e {
        CertificateError::UnknownIssuer => {
            "it is not signed by a certificate authority this device trusts".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it is not valid for this server's name".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (check this machine's clock)".into()
        }
        CertificateError::Revoked => "it has been revoked".into(),
        CertificateError::BadSignature => "its signature does not verify".into(),
        CertificateError::Other(o)
            if matches!(
                o.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::CaUsedAsEndEntity)
            ) =>
        {
            "it is a self-signed (CA) certificate that is not pinned here".into()
        }
        CertificateError::Other(o) => format!("it was refused: {o}"),
        other => format!("it was refused: {other:?}"),
    }
}

/// The message of a TLS failure with the server at `base`.
pub(super) fn message(base: &str, e: &rustls::Error) -> String {
    let file = std::env::var_os(CA_CERT_ENV)
        .filter(|p| !p.is_empty())
        .map(|p| Path::new(&p).display().to_string());
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let what = certificate_problem(c);
            let todo = match &file {
                Some(f) => format!(
                    "check {CA_CERT_ENV}={f}: it must hold the server's own certificate (self-signed) or the CA that signed it"
                ),
                None => format!(
                    "if the server uses a private CA or a self-signed certificate, set {CA_CERT_ENV} to that PEM file"
                ),
            };
            format!(
                "the server at {base} presented a TLS certificate this device does not trust ({what}); {todo}"
            )
        }
        other => format!(
            "the TLS handshake with the server at {base} failed ({other}); check the URL (https:// only for a server with TLS) and {CA_CERT_ENV}"
        ),
    }
}
