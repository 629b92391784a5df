//! What the kiosk needs to know about the network: the VPN gateway, the inner
//! networks behind it and the resolvers reached through it. The builder derives it
//! from the config; the kiosk reads it from the verity root.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// An IPv4 network in CIDR notation, `10.99.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    pub address: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// True when `address` lies inside this network.
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let mask = self.mask();
        u32::from(address) & mask == u32::from(self.address) & mask
    }

    /// True when no address bits are set beyond the prefix (`10.99.0.0/24`, not `10.99.0.1/24`).
    pub fn is_network_address(&self) -> bool {
        u32::from(self.address) & !self.mask() == 0
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl std::str::FromStr for Ipv4Net {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text.split_once('/').ok_or_else(|| {
            format!("{text:?} is not IPv4 CIDR notation such as \"10.99.0.0/24\"")
        })?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{address:?} in {text:?} is not an IPv4 address"))?;
        let prefix: u8 =
            prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| {
                format!("prefix {prefix:?} in {text:?} is not a number from 0 to 32")
            })?;
        Ok(Ipv4Net { address, prefix })
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which VPN carries the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunnelKind {
    /// IKEv2 with X.509 certificates (strongSwan, swanctl connection [`IPSEC_CONNECTION`]).
    Ipsec,
    /// WireGuard on interface [`WIREGUARD_INTERFACE`].
    Wireguard,
}

impl std::fmt::Display for TunnelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TunnelKind::Ipsec => "ipsec",
            TunnelKind::Wireguard => "wireguard",
        })
    }
}

/// Name of the swanctl connection (IKE SA) the builder writes.
pub const IPSEC_CONNECTION: &str = "stick";
/// Name of its child SA (the tunnel carrying the inner networks).
pub const IPSEC_CHILD: &str = "tunnel";
/// The WireGuard interface the builder configures.
pub const WIREGUARD_INTERFACE: &str = "wg0";
/// nftables table holding the egress policy.
pub const EGRESS_TABLE: &str = "stick_egress";
/// The firewall mark on the tunnel's own packets to the gateway: WireGuard's
/// (networkd `FirewallMark=`) and IPsec's ESP after encapsulation (swanctl
/// `set_mark_out`). The egress policy lets only these, and charon's own IKE
/// packets (uid 0), reach the gateway's ports: never a browser's.
pub const TUNNEL_MARK: u32 = 0x5354;

/// Routing table of the conference account: a policy rule by uid sends the
/// account's route lookups here, and this table holds only a route into the
/// tunnel. WebRTC's "default route" address (the only one Chromium offers under
/// `WebRtcIPHandling`) is then the tunnel's, never the PC's LAN address.
pub const SESSION_ROUTE_TABLE: u32 = 0x5355;
/// Priority of that rule; the one after it refuses whatever the table has no
/// route for (no fallback to the main table, the uplink's).
pub const SESSION_RULE_PRIORITY: u32 = 100;

/// The network part of the kiosk's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NetworkPolicy {
    pub tunnel: TunnelKind,
    /// The gateway's public address: the only destination outside the tunnel.
    pub gateway: Ipv4Addr,
    /// UDP ports on the gateway the egress policy allows (IKE and NAT-T, or WireGuard).
    pub gateway_udp_ports: Vec<u16>,
    /// Whether raw ESP (IP protocol 50) to the gateway is allowed.
    pub gateway_esp: bool,
    /// Networks reached only through the tunnel.
    pub inner_networks: Vec<Ipv4Net>,
    /// Resolvers, all inside `inner_networks`.
    pub dns: Vec<Ipv4Addr>,
    /// An HTTPS URL behind the tunnel the kiosk fetches to prove the tunnel carries
    /// traffic; its server must chain to [`CHECK_CA_PATH`].
    pub check_url: Option<String>,
    pub ipv6: bool,
    /// Each stick carries its own credential in its personal partition
    /// ([`crate::personal`]); false: a TEST image holds one for every stick.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub personal: bool,
    /// IPsec: after the certificate, the gateway checks the person's password in
    /// a second IKEv2 round (EAP-MSCHAPv2, RFC 4739). The person types it on the
    /// stick's screen; the account name comes from the stick's credential.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_password: bool,
    /// IPsec: the key and certificate are on the person's smartcard or token
    /// (PKCS#11 through OpenSC), found by this CKA_ID (hex). The person types the
    /// token's PIN on the stick's screen; the token counts wrong PINs and locks
    /// itself. The stick needs no credential partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_key_id: Option<String>,
    /// Where only TCP 443 leaves the PC's network, the tunnel's UDP travels in
    /// TLS to this relay (stick-relay), which passes it to the gateway's NAT-T
    /// (IPsec) or WireGuard port. UDP is tried first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayPolicy>,
    /// Networks that want a sign-in first (hotels, trains): the person may open
    /// this page in the throwaway portal browser before the tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<PortalPolicy>,
    /// Wi-Fi when no cable has a link (iwd; the network is chosen on the screen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi: Option<WifiPolicy>,
}

/// Wi-Fi: iwd joins the network the person chooses on the stick's screen;
/// networkd takes the address by DHCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WifiPolicy {
    /// TEST IMAGES ONLY: the SSID of the lab's access point the image carries
    /// (`mac80211_hwsim` radios and hostapd at boot, bridged to the wired card,
    /// which the stick then does not have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_access_point: Option<String>,
}

/// The captive-portal sign-in: a throwaway browser in its own account and
/// network namespace, before the tunnel only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PortalPolicy {
    /// The plain `http://` page the portal browser opens; the network's portal
    /// answers it with its sign-in page.
    pub start_page: String,
}

/// The portal browser's network namespace (`/run/netns/NAME`).
pub const PORTAL_NAMESPACE: &str = "stick-portal";
/// The veth end on the stick's side (the egress policy's forward rules name it).
pub const PORTAL_HOST_INTERFACE: &str = "portal0";
/// The veth end inside [`PORTAL_NAMESPACE`].
pub const PORTAL_INNER_INTERFACE: &str = "uplink";
/// The link between them: a /30 out of the shared address space (RFC 6598),
/// masqueraded to the uplink's address, so the network's portal sees the PC.
pub const PORTAL_HOST_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(100, 127, 255, 253);
pub const PORTAL_BROWSER_ADDRESS: std::net::Ipv4Addr = std::net::Ipv4Addr::new(100, 127, 255, 254);
pub const PORTAL_PREFIX: u8 = 30;
/// The portal browser's managed policy (bind-mounted over Chromium's policy
/// folder in its own mount namespace, so the conference's does not apply).
pub const PORTAL_POLICY_DIR: &str = "/usr/share/secure-stick/portal-policy";

/// The link of the portal browser's namespace, as a network.
pub const PORTAL_LINK: Ipv4Net = Ipv4Net {
    address: std::net::Ipv4Addr::new(100, 127, 255, 252),
    prefix: PORTAL_PREFIX,
};

/// The TLS-on-443 relay next to the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RelayPolicy {
    /// Its public IPv4 address (no DNS outside the tunnel).
    pub address: Ipv4Addr,
    /// Its TCP port, 443 unless the config says otherwise.
    pub port: u16,
    /// The DNS name its certificate must carry; the certificate must chain to
    /// [`RELAY_CA_PATH`].
    pub name: String,
}

/// The swanctl connection through the relay: the same IKE SA as
/// [`IPSEC_CONNECTION`], sent to the relay client on loopback.
pub const RELAY_CONNECTION: &str = "stick-relay";
/// The relay client's UDP port on 127.0.0.1: charon's `remote_port` for
/// [`RELAY_CONNECTION`].
pub const RELAY_LOCAL_PORT: u16 = 4501;
/// charon's own NAT-T port, the only source the relay client hears (IPsec).
pub const CHARON_NAT_T_PORT: u16 = 4500;
/// WireGuard's own UDP port on the stick when a relay is configured (fixed, so
/// that the relay client hears only it); the gateway's port is the config's.
pub const WIREGUARD_LOCAL_PORT: u16 = 51821;
/// CA certificates (PEM) the kiosk trusts for the relay.
pub const RELAY_CA_PATH: &str = "/usr/share/secure-stick/relay-ca.pem";

/// charon's name for OpenSC's PKCS#11 module (`charon.plugins.pkcs11.modules`),
/// which the swanctl connection and the kiosk's PIN secret name.
pub const TOKEN_MODULE: &str = "opensc";
/// OpenSC's PKCS#11 module in the image.
pub const TOKEN_MODULE_PATH: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// Whether `id` is a token key id [`NetworkPolicy::token_key_id`] accepts: an
/// even run of 2 to 128 hex digits.
pub fn valid_token_key_id(id: &str) -> bool {
    (2..=128).contains(&id.len())
        && id.len().is_multiple_of(2)
        && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// The egress table's named counters of UDP packets through the tunnel (the
/// call's media); the kiosk reads them to see whether media flows.
pub const TUNNEL_UDP_IN: &str = "tunnel_udp_in";
pub const TUNNEL_UDP_OUT: &str = "tunnel_udp_out";

/// CA certificates (PEM) the kiosk trusts for `check-url`.
pub const CHECK_CA_PATH: &str = "/usr/share/secure-stick/check-ca.pem";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_rejects() {
        let good: &[(&str, &str, bool)] = &[
            ("10.99.0.0/24", "10.99.0.0/24", true),
            ("10.99.0.7/24", "10.99.0.7/24", false),
            ("0.0.0.0/0", "0.0.0.0/0", true),
            ("192.0.2.1/32", "192.0.2.1/32", true),
        ];
        for (text, shown, network) in good {
            let net: Ipv4Net = text.parse().expect(text);
            assert_eq!(net.to_string(), *shown);
            assert_eq!(net.is_network_address(), *network, "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("10.99.0.0", "CIDR"),
            ("10.99.0/24", "not an IPv4 address"),
            ("10.99.0.0/33", "0 to 32"),
            ("fd00::/8", "not an IPv4 address"),
        ];
        for (text, want) in bad {
            let err = text.parse::<Ipv4Net>().expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn contains_respects_the_prefix() {
        let net: Ipv4Net = "10.99.0.0/24".parse().expect("cidr");
        let cases = [
            ("10.99.0.1", true),
            ("10.99.0.255", true),
            ("10.99.1.0", false),
            ("10.98.255.255", false),
        ];
        for (address, want) in cases {
            let address: Ipv4Addr = address.parse().expect("ip");
            assert_eq!(net.contains(address), want, "{address}");
        }
        let all: Ipv4Net = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
    }
}
