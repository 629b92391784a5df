//! Which way the tunnel goes: UDP straight to the gateway, or, where the PC's
//! network lets no UDP out, in TLS on TCP 443 through the organisation's relay.
//! UDP is always tried first; the relay after UDP got no answer; UDP again after
//! the relay failed. The relay client runs only while its path is in use.
//!
//! IPsec takes the relay through a second swanctl connection to the client on
//! loopback; WireGuard by pointing its peer's endpoint at the client.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stick_manifest::network::{
    RelayPolicy, TunnelKind, CHARON_NAT_T_PORT, IPSEC_CONNECTION, RELAY_CA_PATH, RELAY_CONNECTION,
    RELAY_LOCAL_PORT, WIREGUARD_LOCAL_PORT,
};
use stick_relay::client::{RelayClient, RelayTarget};

use crate::network::tunnel::{FailureKind, TunnelPath};

/// Linux turns IPsec off on the loopback device (`disable_xfrm`): a route out
/// of `lo` skips the kernel's IPsec policies. Through the relay the gateway's
/// address is charon's peer on loopback, so charon's routes to the inner networks
/// leave by `lo`, and their packets must still be encrypted, not delivered
/// locally in clear. Only the tunnel's policies (the virtual IP to the inner
/// networks) match anything there.
const LOOPBACK_XFRM: &str = "/proc/sys/net/ipv4/conf/lo/disable_xfrm";

/// How long the relay may take to answer (TCP, TLS, upgrade) before an attempt.
const RELAY_UP_TIMEOUT: Duration = Duration::from_secs(12);

/// Whether the path in use is the relay (the session's screen says so).
static RELAY_IN_USE: AtomicBool = AtomicBool::new(false);

/// Whether the tunnel is being built, or runs, through the relay.
pub fn relay_in_use() -> bool {
    RELAY_IN_USE.load(Ordering::SeqCst)
}

/// The swanctl connection that takes `path`.
pub fn connection(path: TunnelPath) -> &'static str {
    match path {
        TunnelPath::Udp => IPSEC_CONNECTION,
        TunnelPath::Relay => RELAY_CONNECTION,
    }
}

/// The path of the next attempt after one on `path` failed with `kind`: the
/// relay when UDP got no answer, UDP when the relay failed, else the same.
pub fn after_failure(path: TunnelPath, kind: FailureKind, relay_configured: bool) -> TunnelPath {
    match (path, kind) {
        (TunnelPath::Udp, FailureKind::NoAnswer) if relay_configured => TunnelPath::Relay,
        (TunnelPath::Relay, FailureKind::NoAnswer | FailureKind::Transient) => TunnelPath::Udp,
        (path, _) => path,
    }
}

/// WireGuard has no attempt that fails: after this long without a handshake by
/// UDP, the relay.
const WIREGUARD_UDP_PATIENCE: Duration = Duration::from_secs(15);
/// After this long without a handshake through the relay, UDP again.
const WIREGUARD_RELAY_PATIENCE: Duration = Duration::from_secs(20);

/// WireGuard: the path to switch to after `waited` without a handshake on
/// `path`, if it is time to.
pub fn wireguard_switch(
    path: TunnelPath,
    waited: Duration,
    relay_configured: bool,
) -> Option<TunnelPath> {
    match path {
        TunnelPath::Udp if relay_configured && waited >= WIREGUARD_UDP_PATIENCE => {
            Some(TunnelPath::Relay)
        }
        TunnelPath::Relay if waited >= WIREGUARD_RELAY_PATIENCE => Some(TunnelPath::Udp),
        _ => None,
    }
}

/// Where the tunnel's datagrams go on the relay path: the relay client.
pub fn relay_client_address() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, RELAY_LOCAL_PORT)
}

/// The relay client while the relay path is in use.
#[derive(Debug)]
pub struct RelayLink {
    policy: Option<RelayPolicy>,
    /// The tunnel's own socket on loopback: the only one the client hears.
    tunnel_port: u16,
    client: Option<RelayClient>,
}

impl RelayLink {
    pub fn new(policy: Option<RelayPolicy>, tunnel: TunnelKind) -> RelayLink {
        RelayLink {
            policy,
            tunnel_port: match tunnel {
                TunnelKind::Ipsec => CHARON_NAT_T_PORT,
                TunnelKind::Wireguard => WIREGUARD_LOCAL_PORT,
            },
            client: None,
        }
    }

    pub fn configured(&self) -> bool {
        self.policy.is_some()
    }

    /// Makes the relay client run for `path` (started for the relay, stopped
    /// for UDP: no TCP to the relay while it is not needed).
    pub fn follow(&mut self, path: TunnelPath) {
        RELAY_IN_USE.store(path == TunnelPath::Relay, Ordering::SeqCst);
        if path == TunnelPath::Udp && self.client.take().is_some() {
            tracing::info!("relay client stopped: the tunnel goes by UDP");
        }
    }

    /// Starts the relay client if it is not running and waits until the relay
    /// has switched to datagrams; why not, otherwise.
    pub fn ensure_up(&mut self) -> Result<(), String> {
        let Some(policy) = &self.policy else {
            return Err("no relay is configured".into());
        };
        if self.client.is_none() {
            self.client = Some(start(policy, self.tunnel_port)?);
        }
        let client = self
            .client
            .as_ref()
            .ok_or("the relay client did not start")?;
        client.wait_up(RELAY_UP_TIMEOUT).map_err(|reason| {
            format!(
                "the relay {}:{} ({}) cannot be used: {reason}",
                policy.address, policy.port, policy.name
            )
        })
    }
}

fn start(policy: &RelayPolicy, tunnel_port: u16) -> Result<RelayClient, String> {
    std::fs::write(LOOPBACK_XFRM, "0").map_err(|e| {
        format!("cannot let IPsec policies apply on loopback ({LOOPBACK_XFRM}): {e}")
    })?;
    let tls = stick_relay::tls::client_config(Path::new(RELAY_CA_PATH))
        .map_err(|e| format!("the relay's CA: {e}"))?;
    let target = RelayTarget {
        address: SocketAddr::V4(SocketAddrV4::new(policy.address, policy.port)),
        server_name: policy.name.clone(),
        tls,
    };
    let local = SocketAddr::V4(relay_client_address());
    let tunnel = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, tunnel_port));
    let client = RelayClient::start(target, local, tunnel)
        .map_err(|e| format!("cannot start the relay client on {local}: {e}"))?;
    tracing::info!(
        "relay client started: {local} <-> {}:{}",
        policy.address,
        policy.port
    );
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_first_the_relay_when_udp_gets_no_answer() {
        use FailureKind::{NoAnswer, PasswordRejected, Refused, Transient};
        use TunnelPath::{Relay, Udp};
        let cases: &[(TunnelPath, FailureKind, bool, TunnelPath)] = &[
            (Udp, NoAnswer, true, Relay),
            (Udp, NoAnswer, false, Udp),
            (Udp, Transient, true, Udp),
            (Udp, Refused, true, Udp),
            (Relay, NoAnswer, true, Udp),
            (Relay, Transient, true, Udp),
            // The gateway answered through the relay: the person types again there.
            (Relay, PasswordRejected, true, Relay),
            (Relay, Refused, true, Relay),
        ];
        for (path, kind, configured, want) in cases {
            assert_eq!(
                after_failure(*path, *kind, *configured),
                *want,
                "{path:?} after {kind:?} (relay configured: {configured})"
            );
        }
        assert_eq!(connection(Udp), "stick");
        assert_eq!(connection(Relay), "stick-relay");
    }

    #[test]
    fn wireguard_waits_for_a_handshake_before_it_switches() {
        use TunnelPath::{Relay, Udp};
        let s = Duration::from_secs;
        let cases: &[(TunnelPath, Duration, bool, Option<TunnelPath>)] = &[
            (Udp, s(14), true, None),
            (Udp, s(15), true, Some(Relay)),
            (Udp, s(60), false, None),
            (Relay, s(19), true, None),
            (Relay, s(20), true, Some(Udp)),
        ];
        for (path, waited, configured, want) in cases {
            assert_eq!(
                wireguard_switch(*path, *waited, *configured),
                *want,
                "{path:?} after {waited:?} (relay configured: {configured})"
            );
        }
    }
}
