//! The stick's end: a local UDP socket that charon (or WireGuard) sends to as if
//! it were the gateway, carried in TLS to the relay. Runs in a thread of its own,
//! reconnects by itself while it is wanted, and says how it is doing.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use crate::frame::FrameReader;
use crate::pump::{Pump, PumpStats};
use crate::upgrade;

/// How long connecting and the TLS and HTTP handshakes may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(8);
/// Nothing from the relay for this long ends the session (charon's DPD and NAT-T
/// keepalives pass every few seconds while the tunnel lives).
const IDLE: Duration = Duration::from_secs(60);
/// Pause between attempts to reach the relay.
const RETRY: Duration = Duration::from_secs(2);

/// Where the relay is and what its certificate must say.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    pub address: SocketAddr,
    /// The relay's DNS name in its certificate (checked against the trusted CA).
    pub server_name: String,
    pub tls: Arc<rustls::ClientConfig>,
}

/// Why the relay could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0:?} is not a valid server name")]
    Name(String),
    #[error("TLS with {name}: {source}")]
    Tls {
        name: String,
        source: std::io::Error,
    },
    #[error("{name}: {source}")]
    Upgrade {
        name: String,
        source: upgrade::UpgradeError,
    },
}

/// A TLS session with the relay, switched to datagrams.
#[derive(Debug)]
pub struct Session {
    pub tls: rustls::Connection,
    pub tcp: TcpStream,
    pub frames: FrameReader,
}

/// Connects, checks the relay's certificate and asks it to switch to datagrams.
pub fn connect(target: &RelayTarget) -> Result<Session, ConnectError> {
    let address = target.address;
    let tcp = TcpStream::connect_timeout(&address, HANDSHAKE_TIMEOUT)
        .map_err(|source| ConnectError::Connect { address, source })?;
    let tls_error = |source| ConnectError::Tls {
        name: target.server_name.clone(),
        source,
    };
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(tls_error)?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(tls_error)?;
    tcp.set_nodelay(true).map_err(tls_error)?;
    let name = ServerName::try_from(target.server_name.clone())
        .map_err(|_| ConnectError::Name(target.server_name.clone()))?;
    let connection = rustls::ClientConnection::new(target.tls.clone(), name)
        .map_err(|e| tls_error(std::io::Error::other(e)))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream
        .write_all(upgrade::request(&target.server_name).as_bytes())
        .map_err(tls_error)?;
    let (head, rest) =
        upgrade::read_head(&mut stream).map_err(|source| match stream.conn.is_handshaking() {
            // The handshake failed: say why (an untrusted certificate, say).
            true => tls_error(std::io::Error::other(source.to_string())),
            false => ConnectError::Upgrade {
                name: target.server_name.clone(),
                source,
            },
        })?;
    upgrade::check_response(&head).map_err(|source| ConnectError::Upgrade {
        name: target.server_name.clone(),
        source,
    })?;
    let (connection, tcp) = (stream.conn, stream.sock);
    let mut frames = FrameReader::new();
    frames.push(&rest);
    Ok(Session {
        tls: rustls::Connection::Client(connection),
        tcp,
        frames,
    })
}

/// How the relay client is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayStatus {
    Connecting,
    /// The relay switched to datagrams; they flow.
    Up,
    /// The last attempt or session failed, and why; it tries again.
    Failed(String),
}

/// How long [`RelayClient::start`] waits for a stopped client's thread to let go
/// of the local port: it notices the stop at the latest after a TLS handshake's
/// timeout.
const BIND_PATIENCE: Duration = Duration::from_secs(HANDSHAKE_TIMEOUT.as_secs() + 2);

/// Binds `local`, waiting while a stopped client's thread still holds it.
fn bind_when_free(local: SocketAddr) -> std::io::Result<UdpSocket> {
    let deadline = Instant::now() + BIND_PATIENCE;
    loop {
        match UdpSocket::bind(local) {
            Err(err)
                if err.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            bound => return bound,
        }
    }
}

/// The relay client thread; told to stop when dropped, and left to end by
/// itself (it may be in a TCP connect for a few seconds, which the caller's
/// loop must not wait for).
#[derive(Debug)]
pub struct RelayClient {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<RelayStatus>>,
    thread: Option<JoinHandle<()>>,
    local: SocketAddr,
}

impl RelayClient {
    /// Binds `local` (where charon sends as if to the gateway), hears only from
    /// `peer` (charon's own socket), and starts reaching the relay.
    pub fn start(
        target: RelayTarget,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> std::io::Result<RelayClient> {
        let udp = bind_when_free(local)?;
        udp.connect(peer)?;
        let local = udp.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(RelayStatus::Connecting));
        let thread = {
            let (stop, status) = (stop.clone(), status.clone());
            std::thread::Builder::new()
                .name("relay-client".into())
                .spawn(move || keep_relaying(&target, &udp, &stop, &status))?
        };
        Ok(RelayClient {
            stop,
            status,
            thread: Some(thread),
            local,
        })
    }

    /// The local address charon sends to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn status(&self) -> RelayStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Waits up to `timeout` for the relay to be up; the last failure otherwise.
    pub fn wait_up(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.status() {
                RelayStatus::Up => return Ok(()),
                RelayStatus::Failed(reason) if Instant::now() >= deadline => return Err(reason),
                _ if Instant::now() >= deadline => {
                    return Err(format!("no answer within {} s", timeout.as_secs()))
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for RelayClient {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Detached: the next client binds the port once this thread lets go.
        drop(self.thread.take());
    }
}

fn set(status: &Mutex<RelayStatus>, value: RelayStatus) {
    match status.lock() {
        Ok(mut s) => *s = value,
        Err(e) => *e.into_inner() = value,
    }
}

fn keep_relaying(
    target: &RelayTarget,
    udp: &UdpSocket,
    stop: &AtomicBool,
    status: &Mutex<RelayStatus>,
) {
    while !stop.load(Ordering::SeqCst) {
        let reason = match connect(target) {
            Ok(mut session) => {
                tracing::info!("relay {} is up", target.address);
                set(status, RelayStatus::Up);
                let mut stats = PumpStats::default();
                let pump = Pump {
                    tls: &mut session.tls,
                    tcp: &mut session.tcp,
                    udp,
                    frames: std::mem::take(&mut session.frames),
                    idle: IDLE,
                };
                let end = pump.run(stop, &mut stats);
                tracing::info!(
                    "relay session ended ({end:?}): {} datagrams in, {} out, {} dropped",
                    stats.into_tls,
                    stats.out_of_tls,
                    stats.dropped
                );
                match end {
                    Ok(end) => format!("the relay session ended ({end:?})"),
                    Err(err) => format!("the relay session failed: {err}"),
                }
            }
            Err(err) => err.to_string(),
        };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        tracing::warn!("relay {}: {reason}", target.address);
        set(status, RelayStatus::Failed(reason));
        let until = Instant::now() + RETRY;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
