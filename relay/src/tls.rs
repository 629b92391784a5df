//! TLS settings of both ends: TLS 1.3 only, ALPN `http/1.1`, ring. The stick
//! trusts only the organisation's CA for the relay; the relay shows its chain.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::upgrade::ALPN;

/// A PEM file that could not be used, named.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PemError {
    pub path: String,
    pub message: String,
}

fn pem_error(path: &Path, message: impl ToString) -> PemError {
    PemError {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in a PEM file (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "holds no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The stick's side: only the CAs in `ca_path` are trusted.
pub fn client_config(ca_path: &Path) -> Result<Arc<rustls::ClientConfig>, PemError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca_path)? {
        roots.add(cert).map_err(|e| pem_error(ca_path, e))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| pem_error(ca_path, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}

/// The relay's side: its certificate chain and key.
pub fn server_config(
    chain_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, PemError> {
    let chain = certificates(chain_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| pem_error(key_path, e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| pem_error(chain_path, e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| pem_error(key_path, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(Arc::new(config))
}
