//! `[network]` and `[vpn]`: the uplink and the tunnel every packet must take.
//!
//! Validation turns the text of the config into the kiosk's [`NetworkPolicy`]; the
//! credential files it names are checked separately (see `vpn_credentials.rs`),
//! because that needs the files.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::Deserialize;
use stick_manifest::network::{Ipv4Net, NetworkPolicy, RelayPolicy, TunnelKind};

/// IKE and NAT-T: the gateway's UDP ports for IPsec.
pub const IKE_PORT: u16 = 500;
pub const NAT_T_PORT: u16 = 4500;
/// WireGuard's customary port.
pub const WIREGUARD_DEFAULT_PORT: u16 = 51820;

/// `[network]`: the PC's uplink (Ethernet with DHCP).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NetworkSection {
    /// Allow IPv6 on the uplink (router and neighbour discovery only; the tunnel is
    /// IPv4). Off by default: the kernel gets `ipv6.disable=1`.
    #[serde(default)]
    pub ipv6: bool,
    /// `[network.portal]`: a sign-in page (captive portal) the person may open
    /// before the tunnel, in a throwaway browser.
    #[serde(default)]
    pub portal: Option<crate::config::portal::PortalSection>,
    /// `[network.wifi]`: Wi-Fi when no cable has a link (iwd, chosen on the screen).
    #[serde(default)]
    pub wifi: Option<crate::config::wifi::WifiSection>,
}

/// `[vpn]`: the gateway, what lies behind it, and one of `[vpn.ipsec]` or
/// `[vpn.wireguard]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VpnSection {
    /// The gateway's public IPv4 address (no host name: resolving it would need
    /// DNS outside the tunnel).
    pub gateway: String,
    /// Networks behind the gateway, CIDR; reached only through the tunnel.
    pub inner_networks: Vec<String>,
    /// Resolvers inside `inner-networks`; DNS goes nowhere else.
    #[serde(default)]
    pub dns: Vec<String>,
    /// An `https://` URL behind the tunnel the kiosk fetches to prove the tunnel
    /// carries traffic.
    #[serde(default)]
    pub check_url: Option<String>,
    /// CA certificate(s), PEM, that `check-url`'s server must chain to.
    #[serde(default)]
    pub check_ca: Option<PathBuf>,
    #[serde(default)]
    pub ipsec: Option<IpsecSection>,
    #[serde(default)]
    pub wireguard: Option<WireguardSection>,
    /// Where only TCP 443 leaves the PC's network (hotels, guest networks), the
    /// tunnel's UDP travels in TLS to this relay next to the gateway
    /// (`stick-relay`, docs/relay.md). UDP is always tried first.
    #[serde(default)]
    pub relay: Option<RelaySection>,
    /// TEST images only: the stick's private key (and certificate or address) in
    /// the image itself, shared by every stick written from it. Real images leave
    /// the credential out; `image-builder personalize` gives each stick its own.
    #[serde(default)]
    pub test_credential_in_image: bool,
}

/// `[vpn.ipsec]`: IKEv2 with X.509 certificates (strongSwan).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct IpsecSection {
    /// CA certificate (PEM) that signed the gateway's certificate; the only one trusted.
    pub gateway_ca: PathBuf,
    /// Identity the gateway's certificate must carry (a subjectAltName DNS name or
    /// the subject DN).
    pub gateway_id: String,
    /// TEST images only (with `vpn.test-credential-in-image`): the stick's
    /// certificate (PEM). Real sticks get theirs from `image-builder personalize`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// TEST images only: its private key (PEM).
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Send ESP inside UDP 4500 always (NAT-T), so raw ESP never needs to pass the
    /// PC's network; the egress policy then allows no IP protocol 50.
    #[serde(default = "default_true")]
    pub udp_encapsulation: bool,
    /// After the stick's certificate, the gateway checks the person's password in
    /// a second IKEv2 round (EAP-MSCHAPv2, RFC 4739), and counts and locks out
    /// wrong ones. The person types it on the stick's screen (needs
    /// `[conference]`); each stick's credential names the account
    /// (`image-builder personalize --user`).
    #[serde(default)]
    pub user_password: bool,
    /// The stick's key and certificate are on the person's smartcard or token,
    /// not on the stick: the CKA_ID (hex) of the key and its certificate there
    /// (`pkcs11-tool -O` lists them). The person types the token's PIN on the
    /// stick's screen (needs `[conference]`); the token counts wrong PINs. The
    /// image gets pcscd, the CCID driver, OpenSC and charon's PKCS#11 plugin,
    /// and its USB policy lets smart-card readers in. Sticks need no
    /// personalisation.
    #[serde(default)]
    pub token_key_id: Option<String>,
}

/// `[vpn.wireguard]`: a WireGuard peer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WireguardSection {
    #[serde(default = "default_wireguard_port")]
    pub port: u16,
    /// The gateway's public key (base64, as `wg pubkey` prints it).
    pub gateway_public_key: String,
    /// TEST images only (with `vpn.test-credential-in-image`): file holding the
    /// stick's private key (base64, as `wg genkey` prints it). Real sticks get
    /// theirs from `image-builder personalize`.
    #[serde(default)]
    pub private_key: Option<PathBuf>,
    /// TEST images only: the stick's address inside the tunnel (`10.99.1.2/32`).
    #[serde(default)]
    pub address: Option<String>,
    /// Seconds between keepalives (keeps NAT mappings open); 0 turns them off.
    #[serde(default = "default_keepalive")]
    pub keepalive: u16,
}

/// `[vpn.relay]`: the TLS-on-443 relay in the organisation's DMZ.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RelaySection {
    /// The relay's public IPv4 address (no host name: no DNS outside the tunnel).
    pub address: String,
    /// Its TCP port.
    #[serde(default = "default_relay_port")]
    pub port: u16,
    /// The DNS name in the relay's certificate, such as `relay.example.org`.
    pub name: String,
    /// CA certificate (PEM) the relay's certificate must chain to; the only one
    /// trusted for it.
    pub ca: PathBuf,
}

fn default_relay_port() -> u16 {
    443
}

fn default_true() -> bool {
    true
}

fn default_wireguard_port() -> u16 {
    WIREGUARD_DEFAULT_PORT
}

fn default_keepalive() -> u16 {
    25
}

/// A DNS name as certificates carry it: labels of letters, digits and hyphens,
/// at least two of them, not all digits (that would be an address).
fn dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// A validation failure: the dotted key and what is allowed.
pub type Invalid = (&'static str, String);

impl VpnSection {
    /// Validates the section and derives the kiosk's network policy from it.
    pub fn policy(&self, network: &NetworkSection) -> Result<NetworkPolicy, Invalid> {
        let tunnel = self.tunnel_kind()?;
        let gateway = parse_gateway(&self.gateway)?;
        if self.inner_networks.is_empty() {
            return Err((
                "vpn.inner-networks",
                "list at least one network behind the gateway, such as [\"10.99.0.0/24\"]".into(),
            ));
        }
        let mut inner_networks = Vec::new();
        for text in &self.inner_networks {
            let net: Ipv4Net = text.parse().map_err(|e| ("vpn.inner-networks", e))?;
            if !net.is_network_address() {
                return Err((
                    "vpn.inner-networks",
                    format!("{net} has host bits set: write the network address, such as \"10.99.0.0/24\""),
                ));
            }
            if net.prefix < 8 {
                return Err((
                    "vpn.inner-networks",
                    format!("{net} is wider than /8: list the networks behind the gateway (a default route through the tunnel is not supported)"),
                ));
            }
            if net.contains(gateway) {
                return Err((
                    "vpn.inner-networks",
                    format!("{net} contains the gateway {gateway}: the gateway must be reachable outside the tunnel"),
                ));
            }
            inner_networks.push(net);
        }
        let inside = |address: Ipv4Addr| inner_networks.iter().any(|n| n.contains(address));
        let mut dns = Vec::new();
        for text in &self.dns {
            let address: Ipv4Addr = text
                .parse()
                .map_err(|_| ("vpn.dns", format!("{text:?} is not an IPv4 address")))?;
            if !inside(address) {
                return Err((
                    "vpn.dns",
                    format!("resolver {address} is not inside vpn.inner-networks: DNS goes only through the tunnel"),
                ));
            }
            dns.push(address);
        }
        if let Some(url) = &self.check_url {
            check_url_allowed(url, &inside, !dns.is_empty())?;
            if self.check_ca.is_none() {
                return Err((
                    "vpn.check-ca",
                    "`check-url` needs `check-ca`: the CA certificate (PEM) its server chains to"
                        .into(),
                ));
            }
        } else if self.check_ca.is_some() {
            return Err((
                "vpn.check-url",
                "`check-ca` is set but `check-url` is not: name the URL to fetch".into(),
            ));
        }
        let token_key_id = self.token_key_id()?;
        let personal = self.personal()?;
        let (gateway_udp_ports, gateway_esp) = match (&self.ipsec, &self.wireguard) {
            (Some(ipsec), _) => {
                validate_ipsec(ipsec)?;
                (vec![IKE_PORT, NAT_T_PORT], !ipsec.udp_encapsulation)
            }
            (_, Some(wireguard)) => {
                validate_wireguard(wireguard)?;
                (vec![wireguard.port], false)
            }
            (None, None) => unreachable!("checked above"),
        };
        let relay = self.relay(gateway, &inner_networks)?;
        let portal = network
            .portal
            .as_ref()
            .map(|portal| portal.policy(&inner_networks))
            .transpose()?;
        Ok(NetworkPolicy {
            tunnel,
            gateway,
            gateway_udp_ports,
            gateway_esp,
            inner_networks,
            dns,
            check_url: self.check_url.clone(),
            ipv6: network.ipv6,
            personal,
            user_password: self.user_password(personal)?,
            token_key_id,
            relay,
            portal,
            wifi: None,
        })
    }

    /// The relay, checked: IPsec with UDP encapsulation (ESP must be in UDP to
    /// be relayed), an address outside the inner networks, a DNS name.
    fn relay(
        &self,
        gateway: Ipv4Addr,
        inner_networks: &[Ipv4Net],
    ) -> Result<Option<RelayPolicy>, Invalid> {
        let Some(relay) = &self.relay else {
            return Ok(None);
        };
        if self
            .ipsec
            .as_ref()
            .is_some_and(|ipsec| !ipsec.udp_encapsulation)
        {
            return Err((
                "vpn.relay",
                "needs vpn.ipsec.udp-encapsulation = true: only ESP in UDP can be relayed".into(),
            ));
        }
        let address: Ipv4Addr = relay.address.parse().map_err(|_| {
            (
                "vpn.relay.address",
                format!(
                    "{:?} is not an IPv4 address: give the relay's public address, such as \
                     \"203.0.113.7\" (a name would need DNS outside the tunnel)",
                    relay.address
                ),
            )
        })?;
        if address.is_unspecified() || address.is_loopback() || address.is_broadcast() {
            return Err((
                "vpn.relay.address",
                format!("{address} cannot be the relay: give its public address"),
            ));
        }
        if let Some(net) = inner_networks.iter().find(|n| n.contains(address)) {
            return Err((
                "vpn.relay.address",
                format!("{address} lies in the inner network {net}: the relay must be reachable outside the tunnel"),
            ));
        }
        if relay.port == 0 {
            return Err(("vpn.relay.port", "0 is not a TCP port; 443 is usual".into()));
        }
        if !dns_name(&relay.name) {
            return Err((
                "vpn.relay.name",
                format!(
                    "{:?} is not a DNS name: give the name in the relay's certificate, \
                     such as \"relay.example.org\"",
                    relay.name
                ),
            ));
        }
        if address == gateway && relay.port == NAT_T_PORT {
            return Err((
                "vpn.relay.port",
                format!("{NAT_T_PORT} on the gateway is NAT-T's own port: the relay needs a TCP port of its own, usually 443"),
            ));
        }
        Ok(Some(RelayPolicy {
            address,
            port: relay.port,
            name: relay.name.to_ascii_lowercase(),
        }))
    }

    /// The one tunnel section there is.
    fn tunnel_kind(&self) -> Result<TunnelKind, Invalid> {
        match (&self.ipsec, &self.wireguard) {
            (Some(_), None) => Ok(TunnelKind::Ipsec),
            (None, Some(_)) => Ok(TunnelKind::Wireguard),
            (None, None) => Err((
                "vpn",
                "add a [vpn.ipsec] or a [vpn.wireguard] section: which tunnel to use".into(),
            )),
            (Some(_), Some(_)) => Err((
                "vpn",
                "[vpn.ipsec] and [vpn.wireguard] are both present: keep exactly one".into(),
            )),
        }
    }

    /// Whether the gateway checks a user password; only for personal sticks,
    /// whose credentials name the person's account.
    fn user_password(&self, personal: bool) -> Result<bool, Invalid> {
        match &self.ipsec {
            Some(ipsec) if ipsec.user_password && !personal => Err((
                "vpn.ipsec.user-password",
                "needs personal sticks: the account name comes from each stick's \
                 credential (`image-builder personalize --user`), so remove \
                 vpn.test-credential-in-image and the client certificate"
                    .into(),
            )),
            Some(ipsec) => Ok(ipsec.user_password),
            None => Ok(false),
        }
    }

    /// The CKA_ID of the key on the person's token, when the identity is there.
    fn token_key_id(&self) -> Result<Option<String>, Invalid> {
        let Some(ipsec) = &self.ipsec else {
            return Ok(None);
        };
        let Some(id) = &ipsec.token_key_id else {
            return Ok(None);
        };
        if !stick_manifest::network::valid_token_key_id(id) {
            return Err((
                "vpn.ipsec.token-key-id",
                format!(
                    "{id:?} is not a key id: write the CKA_ID of the key on the token as \
                     an even number of hex digits (2 to 128), such as \"01\" \
                     (`pkcs11-tool -O` lists the token's objects with their ID)"
                ),
            ));
        }
        if ipsec.user_password {
            return Err((
                "vpn.ipsec.token-key-id",
                "and vpn.ipsec.user-password are both set: choose one user factor, the \
                 token's PIN or the password at the gateway"
                    .into(),
            ));
        }
        Ok(Some(id.to_ascii_lowercase()))
    }

    /// Whether each stick carries its own credential (true), or the image holds
    /// one for all (a TEST image, which must say so). With a token the identity is
    /// on the person's token: neither (false), and nothing may be in the image.
    fn personal(&self) -> Result<bool, Invalid> {
        if let Some(ipsec) = self.ipsec.as_ref().filter(|i| i.token_key_id.is_some()) {
            if ipsec.client_cert.is_some() || ipsec.client_key.is_some() {
                return Err((
                    "vpn.ipsec.token-key-id",
                    "the key is on the person's token: remove vpn.ipsec.client-cert and \
                     vpn.ipsec.client-key"
                        .into(),
                ));
            }
            if self.test_credential_in_image {
                return Err((
                    "vpn.test-credential-in-image",
                    "is set, but with vpn.ipsec.token-key-id the key is on the person's \
                     token, not in the image"
                        .into(),
                ));
            }
            return Ok(false);
        }
        let (in_image, key, what) = match (&self.ipsec, &self.wireguard) {
            (Some(ipsec), _) => (
                both_or_neither(
                    ("vpn.ipsec.client-cert", ipsec.client_cert.is_some()),
                    ("vpn.ipsec.client-key", ipsec.client_key.is_some()),
                )?,
                "vpn.ipsec.client-key",
                "a certificate and private key",
            ),
            (_, Some(wireguard)) => (
                both_or_neither(
                    ("vpn.wireguard.private-key", wireguard.private_key.is_some()),
                    ("vpn.wireguard.address", wireguard.address.is_some()),
                )?,
                "vpn.wireguard.private-key",
                "a private key and address",
            ),
            (None, None) => return Ok(true),
        };
        match (in_image, self.test_credential_in_image) {
            (true, true) => Ok(false),
            (false, false) => Ok(true),
            (true, false) => Err((
                key,
                format!(
                    "{what} in the image would be shared by every stick written from it \
                     (anyone holding one stick for a minute can copy it, and one lost stick \
                     revokes them all): leave it out and give each stick its own with \
                     `image-builder personalize` (docs/keys.md). For TEST images only, \
                     vpn.test-credential-in-image = true keeps it"
                ),
            )),
            (false, true) => Err((
                "vpn.test-credential-in-image",
                format!("is set, but the config names no {what} to put into the image"),
            )),
        }
    }
}

/// Two keys that come together; true when both are there.
fn both_or_neither(
    (first, has_first): (&'static str, bool),
    (second, has_second): (&'static str, bool),
) -> Result<bool, Invalid> {
    match (has_first, has_second) {
        (true, false) => Err((first, format!("needs {second} as well"))),
        (false, true) => Err((second, format!("needs {first} as well"))),
        (both, _) => Ok(both),
    }
}

fn parse_gateway(text: &str) -> Result<Ipv4Addr, Invalid> {
    let gateway: Ipv4Addr = text.parse().map_err(|_| {
        (
            "vpn.gateway",
            format!(
                "{text:?} is not an IPv4 address: write the gateway's address, such as \
                 \"198.51.100.1\" (a host name would need DNS outside the tunnel)"
            ),
        )
    })?;
    if gateway.is_unspecified()
        || gateway.is_loopback()
        || gateway.is_multicast()
        || gateway.is_broadcast()
    {
        return Err((
            "vpn.gateway",
            format!("{gateway} cannot be a gateway: use a unicast address"),
        ));
    }
    Ok(gateway)
}

fn check_url_allowed(
    url: &str,
    inside: &dyn Fn(Ipv4Addr) -> bool,
    have_dns: bool,
) -> Result<(), Invalid> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err((
            "vpn.check-url",
            format!("{url:?}: only https:// URLs are allowed"),
        ));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Err((
            "vpn.check-url",
            format!("{url:?} has no host: write it as \"https://10.99.0.10/\""),
        ));
    }
    match host.parse::<Ipv4Addr>() {
        Ok(address) if !inside(address) => Err((
            "vpn.check-url",
            format!(
                "{address} is not inside vpn.inner-networks: the check must go through the tunnel"
            ),
        )),
        Ok(_) => Ok(()),
        Err(_) if !have_dns => Err((
            "vpn.check-url",
            format!(
                "{host:?} is a host name but vpn.dns is empty: add a resolver or use an address"
            ),
        )),
        Err(_) => Ok(()),
    }
}

fn validate_ipsec(ipsec: &IpsecSection) -> Result<(), Invalid> {
    let id = &ipsec.gateway_id;
    if id.is_empty() || id.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err((
            "vpn.ipsec.gateway-id",
            format!("{id:?}: give the gateway certificate's DNS name or subject, without quotes or control characters"),
        ));
    }
    Ok(())
}

fn validate_wireguard(wireguard: &WireguardSection) -> Result<(), Invalid> {
    if wireguard.port == 0 {
        return Err((
            "vpn.wireguard.port",
            "0 is not a port: use 1-65535 (WireGuard's usual port is 51820)".into(),
        ));
    }
    if crate::config::wireguard_key::decode(&wireguard.gateway_public_key).is_none() {
        return Err((
            "vpn.wireguard.gateway-public-key",
            format!(
                "{:?} is not a WireGuard key: 44 characters of base64 as `wg pubkey` prints",
                wireguard.gateway_public_key
            ),
        ));
    }
    if let Some(address) = &wireguard.address {
        address
            .parse::<Ipv4Net>()
            .map_err(|e| ("vpn.wireguard.address", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPSEC: &str = r#"
gateway = "198.51.100.1"
inner-networks = ["10.99.0.0/24"]
dns = ["10.99.0.53"]
check-url = "https://10.99.0.10/"
check-ca = "ca.pem"
test-credential-in-image = true
[ipsec]
gateway-ca = "gw-ca.pem"
gateway-id = "gateway.test"
client-cert = "client.pem"
client-key = "client.key"
"#;

    const WIREGUARD: &str = r#"
gateway = "198.51.100.1"
inner-networks = ["10.99.0.0/24", "10.98.0.0/16"]
test-credential-in-image = true
[wireguard]
gateway-public-key = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
private-key = "wg.key"
address = "10.99.1.2/32"
"#;

    fn section(text: &str) -> VpnSection {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn ipsec_policy_allows_ike_and_nat_t_only() {
        let policy = section(IPSEC)
            .policy(&NetworkSection::default())
            .expect("valid");
        assert_eq!(policy.tunnel, TunnelKind::Ipsec);
        assert_eq!(policy.gateway, Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(policy.gateway_udp_ports, vec![500, 4500]);
        assert!(!policy.gateway_esp);
        assert_eq!(policy.dns, vec![Ipv4Addr::new(10, 99, 0, 53)]);
        assert!(!policy.ipv6);
        let raw_esp = section(&IPSEC.replace("[ipsec]", "[ipsec]\nudp-encapsulation = false"))
            .policy(&NetworkSection::default())
            .expect("valid");
        assert!(raw_esp.gateway_esp);
    }

    const RELAY: &str =
        "[relay]\naddress = \"198.51.100.2\"\nname = \"relay.test\"\nca = \"relay-ca.pem\"\n";

    #[test]
    fn the_relay_and_what_it_refuses() {
        let policy = section(&format!("{IPSEC}{RELAY}"))
            .policy(&NetworkSection::default())
            .expect("valid");
        assert_eq!(
            policy.relay,
            Some(RelayPolicy {
                address: Ipv4Addr::new(198, 51, 100, 2),
                port: 443,
                name: "relay.test".into(),
            })
        );
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "\"198.51.100.2\"",
                "\"relay.test\"",
                "vpn.relay.address",
                "a host name",
            ),
            (
                "\"198.51.100.2\"",
                "\"0.0.0.0\"",
                "vpn.relay.address",
                "unspecified",
            ),
            (
                "\"198.51.100.2\"",
                "\"10.99.0.7\"",
                "vpn.relay.address",
                "inner network",
            ),
            ("\"relay.test\"", "\"relay\"", "vpn.relay.name", "one label"),
            (
                "\"relay.test\"",
                "\"198.51.100.2\"",
                "vpn.relay.name",
                "an address",
            ),
            (
                "\"relay.test\"",
                "\"relay.test\"\nport = 0",
                "vpn.relay.port",
                "port 0",
            ),
            (
                "\"198.51.100.2\"",
                "\"198.51.100.1\"\nport = 4500",
                "vpn.relay.port",
                "NAT-T's port",
            ),
            ("name = ", "names = ", "unknown field", "typo"),
        ];
        for (from, to, key, case) in cases {
            let text = format!("{IPSEC}{}", RELAY.replacen(from, to, 1));
            let result = toml::from_str::<VpnSection>(&text)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    s.policy(&NetworkSection::default())
                        .map_err(|(k, m)| format!("{k}: {m}"))
                });
            let err = result.expect_err(case);
            assert!(err.contains(key), "{case}: {err}");
        }
        let raw_esp = IPSEC.replace("[ipsec]", "[ipsec]\nudp-encapsulation = false");
        let (key, _) = section(&format!("{raw_esp}{RELAY}"))
            .policy(&NetworkSection::default())
            .expect_err("raw esp");
        assert_eq!(key, "vpn.relay");
        let wireguard = section(&format!("{WIREGUARD}{RELAY}"))
            .policy(&NetworkSection::default())
            .expect("wireguard through the relay");
        assert!(wireguard.relay.is_some());
    }

    #[test]
    fn wireguard_policy_uses_its_port() {
        let policy = section(WIREGUARD)
            .policy(&NetworkSection {
                ipv6: true,
                ..NetworkSection::default()
            })
            .expect("valid");
        assert_eq!(policy.tunnel, TunnelKind::Wireguard);
        assert_eq!(policy.gateway_udp_ports, vec![51820]);
        assert_eq!(policy.inner_networks.len(), 2);
        assert!(policy.ipv6);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (IPSEC, "\"198.51.100.1\"", "\"vpn.example.org\"", "vpn.gateway"),
            (IPSEC, "\"198.51.100.1\"", "\"127.0.0.1\"", "vpn.gateway"),
            (IPSEC, "\"198.51.100.1\"", "\"10.99.0.1\"", "vpn.inner-networks"),
            (IPSEC, "[\"10.99.0.0/24\"]", "[]", "vpn.inner-networks"),
            (IPSEC, "[\"10.99.0.0/24\"]", "[\"10.99.0.0\"]", "vpn.inner-networks"),
            (IPSEC, "[\"10.99.0.0/24\"]", "[\"10.99.0.1/24\"]", "vpn.inner-networks"),
            (IPSEC, "[\"10.99.0.0/24\"]", "[\"0.0.0.0/0\"]", "vpn.inner-networks"),
            (IPSEC, "[\"10.99.0.53\"]", "[\"9.9.9.9\"]", "vpn.dns"),
            (IPSEC, "[\"10.99.0.53\"]", "[\"dns\"]", "vpn.dns"),
            (IPSEC, "https://10.99.0.10/", "http://10.99.0.10/", "vpn.check-url"),
            (IPSEC, "https://10.99.0.10/", "https://192.0.2.7/", "vpn.check-url"),
            (IPSEC, "check-ca = \"ca.pem\"", "", "vpn.check-ca"),
            (IPSEC, "\"gateway.test\"", "\"a\\\"b\"", "vpn.ipsec.gateway-id"),
            (
                IPSEC,
                "[ipsec]",
                "[wireguard]\ngateway-public-key = \"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\"\nprivate-key = \"k\"\naddress = \"10.99.1.2/32\"\n[ipsec]",
                "vpn",
            ),
            (WIREGUARD, "\"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\"", "\"short\"", "vpn.wireguard.gateway-public-key"),
            (WIREGUARD, "\"10.99.1.2/32\"", "\"10.99.1.2\"", "vpn.wireguard.address"),
            (WIREGUARD, "[wireguard]", "[wireguard]\nport = 0", "vpn.wireguard.port"),
        ];
        for (base, from, to, key) in cases {
            let text = base.replace(from, to);
            assert_ne!(&text, base, "{from} not in base");
            let result = toml::from_str::<VpnSection>(&text)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    s.policy(&NetworkSection::default())
                        .map_err(|(k, m)| format!("{k}: {m}"))
                });
            let err = result.expect_err(to);
            assert!(err.starts_with(&format!("{key}: ")), "{to}: {err}");
        }
    }

    #[test]
    fn credentials_stay_out_of_the_image_unless_a_test_image_says_so() {
        let ipsec_personal = IPSEC
            .replace("test-credential-in-image = true\n", "")
            .replace(
                "client-cert = \"client.pem\"\nclient-key = \"client.key\"\n",
                "",
            );
        let wireguard_personal = WIREGUARD
            .replace("test-credential-in-image = true\n", "")
            .replace("private-key = \"wg.key\"\naddress = \"10.99.1.2/32\"\n", "");
        let no_switch = |text: &str| text.replace("test-credential-in-image = true\n", "");
        let cases: Vec<(&str, String, Result<bool, &str>)> = vec![
            ("ipsec, personal", ipsec_personal.clone(), Ok(true)),
            ("wireguard, personal", wireguard_personal.clone(), Ok(true)),
            ("ipsec, test image", IPSEC.to_string(), Ok(false)),
            ("wireguard, test image", WIREGUARD.to_string(), Ok(false)),
            (
                "ipsec key without the switch",
                no_switch(IPSEC),
                Err("vpn.ipsec.client-key"),
            ),
            (
                "wireguard key without the switch",
                no_switch(WIREGUARD),
                Err("vpn.wireguard.private-key"),
            ),
            (
                "the switch without a credential",
                ipsec_personal.replace("[ipsec]", "test-credential-in-image = true\n[ipsec]"),
                Err("vpn.test-credential-in-image"),
            ),
            (
                "a certificate without its key",
                IPSEC.replace("client-key = \"client.key\"\n", ""),
                Err("vpn.ipsec.client-cert"),
            ),
            (
                "an address without a key",
                WIREGUARD.replace("private-key = \"wg.key\"\n", ""),
                Err("vpn.wireguard.address"),
            ),
        ];
        for (name, text, want) in cases {
            let got = section(&text)
                .policy(&NetworkSection::default())
                .map(|p| p.personal)
                .map_err(|(key, _)| key);
            assert_eq!(got, want, "{name}");
        }
        let (_, message) = section(&no_switch(IPSEC))
            .policy(&NetworkSection::default())
            .expect_err("refused");
        assert!(message.contains("image-builder personalize"), "{message}");
    }

    #[test]
    fn a_user_password_needs_personal_sticks() {
        let personal = IPSEC
            .replace("test-credential-in-image = true\n", "")
            .replace(
                "client-cert = \"client.pem\"\nclient-key = \"client.key\"\n",
                "",
            );
        let with_password =
            |text: &str| text.replace("[ipsec]\n", "[ipsec]\nuser-password = true\n");
        let cases: Vec<(&str, String, Result<bool, &str>)> = vec![
            (
                "personal with a password",
                with_password(&personal),
                Ok(true),
            ),
            ("personal without", personal.clone(), Ok(false)),
            (
                "a TEST image's shared credential",
                with_password(IPSEC),
                Err("vpn.ipsec.user-password"),
            ),
        ];
        for (name, text, want) in cases {
            assert!(text.contains("[ipsec]\n"), "{name}: the fixture changed");
            let got = section(&text)
                .policy(&NetworkSection::default())
                .map(|p| p.user_password)
                .map_err(|(key, _)| key);
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_token_holds_the_identity_and_nothing_else_may() {
        let personal = IPSEC
            .replace("test-credential-in-image = true\n", "")
            .replace(
                "client-cert = \"client.pem\"\nclient-key = \"client.key\"\n",
                "",
            );
        let token = |text: &str, id: &str| {
            text.replace("[ipsec]\n", &format!("[ipsec]\ntoken-key-id = \"{id}\"\n"))
        };
        // (case, config, Ok((token key id, personal)) or the refused key)
        type Want<'a> = Result<(Option<&'a str>, bool), &'a str>;
        let cases: Vec<(&str, String, Want)> = vec![
            ("token", token(&personal, "0001"), Ok((Some("0001"), false))),
            (
                "upper case hex",
                token(&personal, "0A1B"),
                Ok((Some("0a1b"), false)),
            ),
            ("no token", personal.clone(), Ok((None, true))),
            (
                "odd length",
                token(&personal, "001"),
                Err("vpn.ipsec.token-key-id"),
            ),
            (
                "not hex",
                token(&personal, "zz"),
                Err("vpn.ipsec.token-key-id"),
            ),
            ("empty", token(&personal, ""), Err("vpn.ipsec.token-key-id")),
            (
                "with a password as well",
                token(&personal, "01").replace("[ipsec]\n", "[ipsec]\nuser-password = true\n"),
                Err("vpn.ipsec.token-key-id"),
            ),
            (
                "with a key in the image",
                token(
                    &IPSEC.replace("test-credential-in-image = true\n", ""),
                    "01",
                ),
                Err("vpn.ipsec.token-key-id"),
            ),
            (
                "with the test switch",
                token(&personal, "01")
                    .replace("[ipsec]", "test-credential-in-image = true\n[ipsec]"),
                Err("vpn.test-credential-in-image"),
            ),
        ];
        for (name, text, want) in cases {
            assert!(text.contains("[ipsec]\n"), "{name}: the fixture changed");
            let policy = section(&text).policy(&NetworkSection::default());
            let got = match &policy {
                Ok(p) => Ok((p.token_key_id.as_deref(), p.personal)),
                Err((key, _)) => Err(*key),
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn host_name_check_url_needs_dns() {
        let text = IPSEC.replace("https://10.99.0.10/", "https://conference.test/");
        section(&text)
            .policy(&NetworkSection::default())
            .expect("host name with a resolver");
        let no_dns = text.replace("dns = [\"10.99.0.53\"]", "");
        let (key, message) = section(&no_dns)
            .policy(&NetworkSection::default())
            .expect_err("host name without a resolver");
        assert_eq!(key, "vpn.check-url");
        assert!(message.contains("vpn.dns is empty"), "{message}");
    }
}
