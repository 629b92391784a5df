//! The uplink as the kernel sees it: which link (a cable first, else Wi-Fi), its
//! carrier, DHCP address and default router. Read with `ip -j` (JSON), parsed
//! apart from running it. The egress policy names no interface: whichever link
//! this picks, the same rules hold.

use std::net::Ipv4Addr;

use serde::Deserialize;

/// What kind of network card a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    Wired,
    Wifi,
}

/// The uplink and its IPv4 state: the link with a route, else one with carrier,
/// a cable before Wi-Fi at each step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uplink {
    pub interface: Option<String>,
    pub kind: Option<LinkKind>,
    /// Carrier and administratively up.
    pub link_up: bool,
    /// Address with prefix length, from DHCP.
    pub address: Option<(Ipv4Addr, u8)>,
    /// Default router on this interface.
    pub router: Option<Ipv4Addr>,
}

impl Uplink {
    /// Ready to reach the VPN gateway.
    pub fn routable(&self) -> bool {
        self.link_up && self.address.is_some() && self.router.is_some()
    }
}

#[derive(Debug, Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    link_type: String,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    operstate: String,
    #[serde(default)]
    addr_info: Vec<IpAddress>,
}

#[derive(Debug, Deserialize)]
struct IpAddress {
    #[serde(default)]
    family: String,
    #[serde(default)]
    local: Option<Ipv4Addr>,
    #[serde(default)]
    prefixlen: Option<u8>,
}

#[derive(Debug, Deserialize)]
struct IpRoute {
    dst: String,
    #[serde(default)]
    gateway: Option<Ipv4Addr>,
    #[serde(default)]
    dev: Option<String>,
}

/// Parses `ip -j addr show` and `ip -j -4 route show default`. (`ip -4 addr` would
/// leave out `link_type`, and links without an IPv4 address altogether.)
/// `kind_of` tells a network card's kind, and `None` for virtual Ethernet
/// devices (bridges, ifb, veth).
pub fn parse(
    addresses_json: &str,
    routes_json: &str,
    kind_of: impl Fn(&str) -> Option<LinkKind>,
) -> Result<Uplink, String> {
    let links: Vec<IpLink> =
        serde_json::from_str(addresses_json).map_err(|e| format!("ip addr JSON: {e}"))?;
    let routes: Vec<IpRoute> =
        serde_json::from_str(routes_json).map_err(|e| format!("ip route JSON: {e}"))?;
    let candidates = links
        .into_iter()
        .filter(|l| l.link_type == "ether")
        .filter_map(|link| {
            let kind = kind_of(&link.ifname)?;
            let link_up = link.flags.iter().any(|f| f == "LOWER_UP") && link.operstate == "UP";
            let address = link
                .addr_info
                .iter()
                .filter(|a| a.family == "inet")
                .find_map(|a| Some((a.local?, a.prefixlen?)));
            let router = routes
                .iter()
                .filter(|r| r.dst == "default" && r.dev.as_deref() == Some(link.ifname.as_str()))
                .find_map(|r| r.gateway);
            Some(Uplink {
                interface: Some(link.ifname),
                kind: Some(kind),
                link_up,
                address,
                router,
            })
        });
    // The first of the best: routed, then carrier, then a cable.
    let best = candidates.fold(None::<Uplink>, |best, next| match best {
        Some(best) if rank(&best) >= rank(&next) => Some(best),
        _ => Some(next),
    });
    Ok(best.unwrap_or_default())
}

fn rank(uplink: &Uplink) -> (bool, bool, bool) {
    (
        uplink.routable(),
        uplink.link_up,
        uplink.kind == Some(LinkKind::Wired),
    )
}

/// The first IPv4 address of interface `name` in `ip -j addr show` output.
pub fn interface_ipv4(addresses_json: &str, name: &str) -> Option<Ipv4Addr> {
    let links: Vec<IpLink> = serde_json::from_str(addresses_json).ok()?;
    links
        .into_iter()
        .find(|l| l.ifname == name)?
        .addr_info
        .iter()
        .filter(|a| a.family == "inet")
        .find_map(|a| a.local)
}

/// Reads the live state.
pub fn observe() -> Result<Uplink, String> {
    let addresses =
        crate::command::run("ip", &["-j", "addr", "show"]).map_err(|e| e.to_string())?;
    let routes = crate::command::run("ip", &["-j", "-4", "route", "show", "default"])
        .map_err(|e| e.to_string())?;
    parse(&addresses, &routes, |name| {
        let sys = std::path::Path::new("/sys/class/net").join(name);
        if !sys.join("device").exists() {
            None
        } else if sys.join("wireless").exists() || sys.join("phy80211").exists() {
            Some(LinkKind::Wifi)
        } else {
            Some(LinkKind::Wired)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IFB: &str = r#"{"ifindex":4,"ifname":"ifb0","flags":["BROADCAST","NOARP","UP","LOWER_UP"],"mtu":1500,"operstate":"UNKNOWN","link_type":"ether","addr_info":[]}"#;
    const LO: &str = r#"{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"operstate":"UNKNOWN","link_type":"loopback","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]}"#;
    const ETH_DOWN: &str = r#"{"ifindex":2,"ifname":"enp0s2","flags":["BROADCAST","MULTICAST"],"mtu":1500,"operstate":"DOWN","link_type":"ether","addr_info":[]}"#;
    const ETH_UP: &str = r#"{"ifindex":2,"ifname":"enp0s2","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","addr_info":[]}"#;
    const ETH_ADDR: &str = r#"{"ifindex":2,"ifname":"enp0s2","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP","link_type":"ether","addr_info":[{"family":"inet","local":"10.20.0.100","prefixlen":24,"dynamic":true}]}"#;
    const WG: &str = r#"{"ifindex":3,"ifname":"wg0","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"],"mtu":1420,"operstate":"UNKNOWN","link_type":"none","addr_info":[{"family":"inet","local":"10.99.1.2","prefixlen":32}]}"#;
    const ROUTE: &str = r#"[{"dst":"default","gateway":"10.20.0.1","dev":"enp0s2","protocol":"dhcp","prefsrc":"10.20.0.100","metric":1024,"flags":[]}]"#;

    #[test]
    fn uplink_states() {
        let cases: &[(&str, String, &str, Uplink)] = &[
            ("no ethernet", format!("[{LO}]"), "[]", Uplink::default()),
            (
                "cable out",
                format!("[{LO},{ETH_DOWN}]"),
                "[]",
                Uplink {
                    interface: Some("enp0s2".into()),
                    kind: Some(LinkKind::Wired),
                    ..Uplink::default()
                },
            ),
            (
                "link up, no lease",
                format!("[{LO},{ETH_UP}]"),
                "[]",
                Uplink {
                    interface: Some("enp0s2".into()),
                    kind: Some(LinkKind::Wired),
                    link_up: true,
                    ..Uplink::default()
                },
            ),
            (
                "lease with router, wg0 beside",
                format!("[{LO},{IFB},{ETH_ADDR},{WG}]"),
                ROUTE,
                Uplink {
                    interface: Some("enp0s2".into()),
                    kind: Some(LinkKind::Wired),
                    link_up: true,
                    address: Some((Ipv4Addr::new(10, 20, 0, 100), 24)),
                    router: Some(Ipv4Addr::new(10, 20, 0, 1)),
                },
            ),
        ];
        for (name, addresses, routes, want) in cases {
            let got = parse(addresses, routes, |n| {
                (n != "ifb0").then_some(LinkKind::Wired)
            })
            .expect(name);
            assert_eq!(&got, want, "{name}");
        }
        let wg = format!("[{LO},{ETH_ADDR},{WG}]");
        let cases = [
            ("wg0", Some(Ipv4Addr::new(10, 99, 1, 2))),
            ("enp0s2", Some(Ipv4Addr::new(10, 20, 0, 100))),
            ("wg1", None),
        ];
        for (name, want) in cases {
            assert_eq!(interface_ipv4(&wg, name), want, "{name}");
        }
        assert_eq!(interface_ipv4("not json", "wg0"), None);
        let physical = |_: &str| Some(LinkKind::Wired);
        assert!(parse(&format!("[{ETH_ADDR}]"), ROUTE, physical)
            .expect("parses")
            .routable());
        assert!(!parse(&format!("[{ETH_ADDR}]"), "[]", physical)
            .expect("parses")
            .routable());
    }

    #[test]
    fn the_uplink_is_a_routed_link_then_a_cable_then_wifi() {
        let wlan = |flags: &str, operstate: &str, addr: &str| {
            format!(
                r#"{{"ifindex":5,"ifname":"wlan0","flags":[{flags}],"operstate":"{operstate}","link_type":"ether","addr_info":[{addr}]}}"#
            )
        };
        let wlan_down = wlan(r#""BROADCAST""#, "DOWN", "");
        let wlan_up = wlan(r#""UP","LOWER_UP""#, "UP", "");
        let wlan_addr = wlan(
            r#""UP","LOWER_UP""#,
            "UP",
            r#"{"family":"inet","local":"192.168.178.20","prefixlen":24}"#,
        );
        let wlan_route =
            r#"[{"dst":"default","gateway":"192.168.178.1","dev":"wlan0","metric":600}]"#;
        let both_routes = format!(
            "[{},{}]",
            &ROUTE[1..ROUTE.len() - 1],
            &wlan_route[1..wlan_route.len() - 1]
        );
        let kinds = |n: &str| match n {
            "wlan0" => Some(LinkKind::Wifi),
            "ifb0" => None,
            _ => Some(LinkKind::Wired),
        };
        let picks: &[(&str, String, &str, &str)] = &[
            (
                "nothing up: the cable's card",
                format!("[{wlan_down},{ETH_DOWN}]"),
                "[]",
                "enp0s2",
            ),
            (
                "Wi-Fi associated, no cable",
                format!("[{ETH_DOWN},{wlan_up}]"),
                "[]",
                "wlan0",
            ),
            (
                "Wi-Fi routed, no cable",
                format!("[{ETH_DOWN},{wlan_addr}]"),
                wlan_route,
                "wlan0",
            ),
            (
                "cable plugged in, no lease yet",
                format!("[{wlan_addr},{ETH_UP}]"),
                wlan_route,
                "wlan0",
            ),
            (
                "both routed: the cable",
                format!("[{wlan_addr},{ETH_ADDR},{IFB}]"),
                &both_routes,
                "enp0s2",
            ),
            (
                "both up, neither routed: the cable",
                format!("[{wlan_up},{ETH_UP}]"),
                "[]",
                "enp0s2",
            ),
        ];
        for (name, addresses, routes, want) in picks {
            let got = parse(addresses, routes, kinds).expect(name);
            assert_eq!(got.interface.as_deref(), Some(*want), "{name}");
            assert_eq!(got.kind, kinds(want), "{name}");
        }
    }
}
