//! Proof that the tunnel carries traffic: an HTTPS GET of the config's `check-url`,
//! whose server must chain to the CA the image trusts for it (no other roots, no
//! click-through). Only the status line of the answer is read.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0:?} is not an https:// URL with a host")]
    Url(String),
    #[error("cannot read the trusted CA {path}: {message}")]
    Trust { path: String, message: String },
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("TLS with {host}: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} answered something that is not HTTP: {line:?}")]
    NotHttp { host: String, line: String },
}

pub use stick_manifest::https_url::HttpsUrl;

/// A reusable client trusting only the CAs in `ca_pem_path`.
#[derive(Debug, Clone)]
pub struct ReachCheck {
    url: HttpsUrl,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
}

impl ReachCheck {
    pub fn new(url: &str, ca_pem_path: &str, timeout: Duration) -> Result<ReachCheck, CheckError> {
        let url = HttpsUrl::parse(url).map_err(|_| CheckError::Url(url.to_string()))?;
        let trust = |message: String| CheckError::Trust {
            path: ca_pem_path.to_string(),
            message,
        };
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca_pem_path).map_err(|e| trust(e.to_string()))?;
        for cert in certs {
            let cert = cert.map_err(|e| trust(e.to_string()))?;
            roots.add(cert).map_err(|e| trust(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(trust("no certificate in the file".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| trust(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ReachCheck {
            url,
            config: Arc::new(config),
            timeout,
        })
    }

    /// The URL's host.
    pub fn host(&self) -> &str {
        &self.url.host
    }

    /// GETs the URL; returns the HTTP status code.
    pub fn fetch_status(&self) -> Result<u16, CheckError> {
        let host = &self.url.host;
        let address = (host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(|source| CheckError::Resolve {
                host: host.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| CheckError::Resolve {
                host: host.clone(),
                source: std::io::Error::other("no address"),
            })?;
        let connect = |source| CheckError::Connect {
            address: address.to_string(),
            source,
        };
        let tcp = TcpStream::connect_timeout(&address, self.timeout).map_err(connect)?;
        tcp.set_read_timeout(Some(self.timeout)).map_err(connect)?;
        tcp.set_write_timeout(Some(self.timeout)).map_err(connect)?;
        let tls_error = |source| CheckError::Tls {
            host: host.clone(),
            source,
        };
        let name = ServerName::try_from(host.clone())
            .map_err(|e| tls_error(std::io::Error::other(e.to_string())))?;
        let connection = rustls::ClientConnection::new(self.config.clone(), name)
            .map_err(|e| tls_error(std::io::Error::other(e)))?;
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: secure-stick-kiosk\r\nConnection: close\r\n\r\n",
            self.url.path
        );
        stream.write_all(request.as_bytes()).map_err(tls_error)?;
        let mut head = [0u8; 64];
        let mut filled = 0;
        while filled < head.len() && !head[..filled].contains(&b'\n') {
            let n = stream.read(&mut head[filled..]).map_err(tls_error)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        let line = String::from_utf8_lossy(&head[..filled]);
        let line = line.lines().next().unwrap_or_default().to_string();
        parse_status_line(&line).ok_or(CheckError::NotHttp {
            host: host.clone(),
            line,
        })
    }
}

/// `HTTP/1.1 200 OK` -> 200.
fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        let cases: &[(&str, Option<u16>)] = &[
            ("HTTP/1.1 200 OK", Some(200)),
            ("HTTP/1.0 404 Not Found", Some(404)),
            ("SSH-2.0-OpenSSH", None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_status_line(line), *want, "{line}");
        }
    }
}
