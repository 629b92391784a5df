//! Which way the IPsec tunnel goes: UDP straight to the gateway, or, where the
//! PC's network lets no UDP out, in TLS on TCP 443 through the organisation's
//! relay. UDP is always tried first; the relay after UDP got no answer; UDP again
//! after the relay failed. The relay client runs only while its path is in use.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stick_manifest::network::{
    RelayPolicy, CHARON_NAT_T_PORT, IPSEC_CONNECTION, RELAY_CA_PATH, RELAY_CONNECTION,
    RELAY_LOCAL_PORT,
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

/// The relay client while the relay path is in use.
#[derive(Debug)]
pub struct RelayLink {
    policy: Option<RelayPolicy>,
    client: Option<RelayClient>,
}

impl RelayLink {
    pub fn new(policy: Option<RelayPolicy>) -> RelayLink {
        RelayLink {
            policy,
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
            self.client = Some(start(policy)?);
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

fn start(policy: &RelayPolicy) -> Result<RelayClient, String> {
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
    let local = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, RELAY_LOCAL_PORT));
    let charon = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, CHARON_NAT_T_PORT));
    let client = RelayClient::start(target, local, charon)
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
}
