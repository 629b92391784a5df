//! Moves datagrams between a UDP socket and an established TLS stream, both ways,
//! in one thread: poll on both sockets, frames out of TLS into UDP, UDP datagrams
//! framed into TLS. The UDP socket is connected: it sends to and hears from one
//! peer only (the stick's charon on the stick, the gateway on the relay).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::frame::{encode, FrameError, FrameReader};

/// How often the pump looks at its stop flag and idle time.
const TICK_MS: u16 = 500;
/// Frames queued while TCP cannot take more before further datagrams are dropped,
/// as a congested UDP path would drop them (IKE and ESP retransmit or tolerate it).
const MAX_CONGESTED_FRAMES: u32 = 512;

/// Why a pump ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// The TLS peer closed the connection.
    PeerClosed,
    /// Nothing came from the TLS peer for the idle time.
    Idle,
    /// The owner asked it to stop.
    Stopped,
}

/// Why a pump failed.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    #[error("TCP: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the peer sent a bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("poll: {0}")]
    Poll(#[from] nix::Error),
}

/// What went through one pump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpStats {
    /// Datagrams from the UDP peer into TLS.
    pub into_tls: u64,
    /// Datagrams from TLS to the UDP peer.
    pub out_of_tls: u64,
    /// Datagrams dropped because TCP was congested.
    pub dropped: u64,
}

/// The sockets of one relayed session.
#[derive(Debug)]
pub struct Pump<'a> {
    pub tls: &'a mut rustls::Connection,
    pub tcp: &'a mut TcpStream,
    pub udp: &'a UdpSocket,
    /// Bytes read past the upgrade's head: the first frames.
    pub frames: FrameReader,
    /// Ends the pump when nothing comes from the TLS peer for this long.
    pub idle: Duration,
}

impl Pump<'_> {
    /// Runs until the peer closes, the session idles, `stop` is set, or an error.
    pub fn run(mut self, stop: &AtomicBool, stats: &mut PumpStats) -> Result<PumpEnd, PumpError> {
        self.tcp.set_nonblocking(true)?;
        self.udp.set_nonblocking(true)?;
        // Whole frames only: the congestion rule below bounds the queue instead.
        self.tls.set_buffer_limit(None);
        let mut buffer = vec![0u8; 65_536];
        // What came in one record with the upgrade's head is already decrypted.
        if self.drain_plaintext(&mut buffer)?.is_none() {
            return Ok(PumpEnd::PeerClosed);
        }
        let mut heard = Instant::now();
        let mut congested_frames = 0u32;
        loop {
            if stop.load(Ordering::SeqCst) {
                self.tls.send_close_notify();
                let _ = self.flush();
                return Ok(PumpEnd::Stopped);
            }
            self.deliver(stats)?;
            self.flush()?;
            if !self.tls.wants_write() {
                congested_frames = 0;
            }
            let (tcp_ready, udp_ready) = self.wait()?;
            if tcp_ready {
                match self.read_tls(&mut buffer)? {
                    Some(()) => heard = Instant::now(),
                    None => return Ok(PumpEnd::PeerClosed),
                }
            }
            if udp_ready {
                self.take_datagrams(&mut buffer, &mut congested_frames, stats)?;
            }
            if heard.elapsed() > self.idle {
                return Ok(PumpEnd::Idle);
            }
        }
    }

    /// Polls both sockets for one tick: (TCP has something, UDP has something).
    fn wait(&self) -> Result<(bool, bool), PumpError> {
        let mut tcp_events = PollFlags::POLLIN;
        if self.tls.wants_write() {
            tcp_events |= PollFlags::POLLOUT;
        }
        let mut fds = [
            PollFd::new(self.tcp.as_fd(), tcp_events),
            PollFd::new(self.udp.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::from(TICK_MS)) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => return Ok((false, false)),
            Err(err) => return Err(err.into()),
        }
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        let has = |fd: &PollFd| fd.revents().is_some_and(|r| r.intersects(readable));
        Ok((has(&fds[0]), has(&fds[1])))
    }

    /// Reads what TCP holds into TLS and its plaintext into frames; `None` when
    /// the peer closed.
    fn read_tls(&mut self, buffer: &mut [u8]) -> Result<Option<()>, PumpError> {
        match self.tls.read_tls(self.tcp) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(Some(())),
            Err(err) => return Err(err.into()),
        }
        let state = self.tls.process_new_packets()?;
        if self.drain_plaintext(buffer)?.is_none() || state.peer_has_closed() {
            return Ok(None);
        }
        Ok(Some(()))
    }

    /// Moves the plaintext TLS holds into frames; `None` when the peer closed.
    fn drain_plaintext(&mut self, buffer: &mut [u8]) -> Result<Option<()>, PumpError> {
        loop {
            match self.tls.reader().read(buffer) {
                Ok(0) => return Ok(None),
                Ok(n) => self.frames.push(&buffer[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(Some(())),
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Sends every whole datagram received over TLS to the UDP peer.
    fn deliver(&mut self, stats: &mut PumpStats) -> Result<(), PumpError> {
        while let Some(datagram) = self.frames.next_datagram()? {
            match self.udp.send(&datagram) {
                Ok(_) => stats.out_of_tls += 1,
                // The peer's port is closed for now (charon restarting): UDP loses it.
                Err(err) if err.kind() == ErrorKind::ConnectionRefused => stats.dropped += 1,
                Err(err) if err.kind() == ErrorKind::WouldBlock => stats.dropped += 1,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Frames every datagram waiting on the UDP socket into TLS.
    fn take_datagrams(
        &mut self,
        buffer: &mut [u8],
        congested_frames: &mut u32,
        stats: &mut PumpStats,
    ) -> Result<(), PumpError> {
        loop {
            let n = match self.udp.recv(buffer) {
                Ok(n) => n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == ErrorKind::ConnectionRefused => continue,
                Err(err) => return Err(err.into()),
            };
            if n == 0 {
                continue;
            }
            if self.tls.wants_write() {
                *congested_frames += 1;
                if *congested_frames > MAX_CONGESTED_FRAMES {
                    stats.dropped += 1;
                    continue;
                }
            }
            self.tls.writer().write_all(&encode(&buffer[..n])?)?;
            stats.into_tls += 1;
        }
    }

    /// Writes what TLS holds to TCP until TCP would block.
    fn flush(&mut self) -> Result<(), PumpError> {
        while self.tls.wants_write() {
            match self.tls.write_tls(self.tcp) {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}
