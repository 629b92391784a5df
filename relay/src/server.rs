//! The relay in the organisation's DMZ: TLS on TCP 443; every session switched
//! to datagrams gets a UDP socket of its own towards the one configured gateway
//! port, and nothing else. One thread per session.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::frame::FrameReader;
use crate::pump::{Pump, PumpStats};
use crate::upgrade;

/// How long a client may take for the TLS handshake and its request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The relay's config file (TOML).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RelayConfig {
    /// Address and port to listen on, `0.0.0.0:443`.
    pub listen: SocketAddr,
    /// The relay's certificate chain (PEM), issued by the CA the sticks trust
    /// for the relay, for the name the sticks' config gives (`[vpn.relay] name`).
    pub certificate: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The VPN gateway's UDP address: IKE/NAT-T `GATEWAY:4500` or WireGuard's
    /// port. Datagrams go here and nowhere else.
    pub gateway: SocketAddr,
    /// Sessions at once; more are refused.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// A session with no datagram from the stick for this long is closed.
    #[serde(default = "default_idle_seconds")]
    pub idle_seconds: u64,
}

fn default_max_sessions() -> usize {
    1024
}

fn default_idle_seconds() -> u64 {
    120
}

impl RelayConfig {
    /// Parses and checks the config text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<RelayConfig> {
        let config: RelayConfig =
            toml::from_str(text).with_context(|| format!("{}", file.display()))?;
        if config.gateway.port() == 0 || config.gateway.ip().is_unspecified() {
            bail!(
                "{}: gateway = \"{}\": give the gateway's address and UDP port, e.g. \"198.51.100.1:4500\"",
                file.display(),
                config.gateway
            );
        }
        if config.max_sessions == 0 {
            bail!("{}: max-sessions must be at least 1", file.display());
        }
        if config.idle_seconds < 10 {
            bail!(
                "{}: idle-seconds = {} is shorter than charon's keepalives; use 10 or more",
                file.display(),
                config.idle_seconds
            );
        }
        Ok(config)
    }

    /// Reads and checks the config file, and its certificate and key.
    pub fn load(file: &Path) -> Result<(RelayConfig, Arc<rustls::ServerConfig>)> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the relay config {}", file.display()))?;
        let config = RelayConfig::parse(&text, file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        let tls =
            crate::tls::server_config(&base.join(&config.certificate), &base.join(&config.key))?;
        Ok((config, tls))
    }
}

/// Serves for good (or until `stop` is set): accepts, hands each session a thread.
pub fn serve(
    config: &RelayConfig,
    tls: Arc<rustls::ServerConfig>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let listener = TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve_on(listener, config, tls, stop)
}

/// [`serve`] on a listener already bound.
pub fn serve_on(
    listener: TcpListener,
    config: &RelayConfig,
    tls: Arc<rustls::ServerConfig>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    tracing::info!(
        "relaying TLS on {} to udp {}",
        listener.local_addr()?,
        config.gateway
    );
    listener.set_nonblocking(true)?;
    let sessions = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        let (tcp, client) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(err) => {
                tracing::warn!("accept: {err}");
                continue;
            }
        };
        if sessions.load(Ordering::SeqCst) >= config.max_sessions {
            tracing::warn!(
                "{client}: refused, {} sessions already",
                config.max_sessions
            );
            continue;
        }
        sessions.fetch_add(1, Ordering::SeqCst);
        let (config, tls, stop, sessions) =
            (config.clone(), tls.clone(), stop.clone(), sessions.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("relay {client}"))
            .spawn(move || {
                let started = Instant::now();
                match session(tcp, &config, tls, &stop) {
                    Ok(stats) => tracing::info!(
                        "{client}: closed after {} s: {} datagrams to the gateway, {} back, {} dropped",
                        started.elapsed().as_secs(),
                        stats.out_of_tls,
                        stats.into_tls,
                        stats.dropped
                    ),
                    Err(err) => tracing::info!("{client}: {err:#}"),
                }
                sessions.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            tracing::error!("cannot start a session thread: {err}");
        }
    }
    Ok(())
}

/// One client: TLS, the upgrade (or a 404), then datagrams to the gateway.
fn session(
    mut tcp: TcpStream,
    config: &RelayConfig,
    tls: Arc<rustls::ServerConfig>,
    stop: &AtomicBool,
) -> Result<PumpStats> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    tcp.set_nodelay(true)?;
    let mut connection = rustls::ServerConnection::new(tls)?;
    let (head, rest) = {
        let mut stream = rustls::Stream::new(&mut connection, &mut tcp);
        upgrade::read_head(&mut stream).context("reading the request")?
    };
    if let Err(refusal) = upgrade::check_request(&head) {
        let mut stream = rustls::Stream::new(&mut connection, &mut tcp);
        std::io::Write::write_all(&mut stream, upgrade::not_found().as_bytes())?;
        connection.send_close_notify();
        let _ = connection.complete_io(&mut tcp);
        bail!("answered 404: {refusal}");
    }
    let udp = UdpSocket::bind(match config.gateway {
        SocketAddr::V4(_) => "0.0.0.0:0",
        SocketAddr::V6(_) => "[::]:0",
    })?;
    udp.connect(config.gateway)?;
    {
        let mut stream = rustls::Stream::new(&mut connection, &mut tcp);
        std::io::Write::write_all(&mut stream, upgrade::switching().as_bytes())?;
    }
    tracing::info!(
        "{}: switched, udp {} -> {}",
        tcp.peer_addr()?,
        udp.local_addr()?,
        config.gateway
    );
    let mut frames = FrameReader::new();
    frames.push(&rest);
    let mut tls = rustls::Connection::Server(connection);
    let mut stats = PumpStats::default();
    let pump = Pump {
        tls: &mut tls,
        tcp: &mut tcp,
        udp: &udp,
        frames,
        idle: Duration::from_secs(config.idle_seconds),
    };
    let end = pump.run(stop, &mut stats)?;
    tracing::debug!("session end: {end:?}");
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_and_what_is_refused() {
        let file = Path::new("/etc/stick-relay/relay.toml");
        let good = "listen = \"0.0.0.0:443\"\ncertificate = \"relay.pem\"\nkey = \"relay.key\"\ngateway = \"198.51.100.1:4500\"\n";
        let config = RelayConfig::parse(good, file).expect("good config");
        assert_eq!(config.max_sessions, 1024);
        assert_eq!(config.idle_seconds, 120);
        let cases: &[(&str, &str)] = &[
            ("gateway = \"198.51.100.1:0\"", "UDP port"),
            ("gateway = \"0.0.0.0:4500\"", "UDP port"),
            ("gateway = \"gw.example:4500\"", "relay.toml"),
            ("max-sessions = 0", "max-sessions"),
            ("idle-seconds = 3", "idle-seconds"),
            ("forward-to = \"anything\"", "unknown field"),
        ];
        for (line, want) in cases {
            let text = if line.starts_with("gateway") {
                good.replace("gateway = \"198.51.100.1:4500\"", line)
            } else {
                format!("{good}{line}\n")
            };
            let err = format!("{:#}", RelayConfig::parse(&text, file).expect_err(line));
            assert!(err.contains(want), "{line}: {err}");
            assert!(err.contains("relay.toml"), "{line}: names the file: {err}");
        }
    }
}
