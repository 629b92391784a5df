//! The VPN's UDP in TLS on TCP 443, for networks that let only HTTPS out.
//!
//! strongSwan has no IKE/ESP over TCP (RFC 9329) and Debian's kernel no espintcp,
//! so the stick carries the tunnel's own datagrams (IKE and ESP in UDP 4500, or
//! WireGuard's) to a relay in the organisation's DMZ, which sends them on to the
//! gateway. The relay adds no trust: IKE authenticates both ends through it, and
//! it forwards to one configured gateway port only.
//!
//! ```text
//! charon --udp--> 127.0.0.1:4501 [client] ==TLS 1.3, TCP 443==> [relay] --udp--> gateway:4500
//! ```

pub mod client;
pub mod frame;
pub mod pump;
pub mod server;
pub mod tls;
pub mod upgrade;
