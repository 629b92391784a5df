//! The network of the sign-in page's browser (captive portal): a namespace of its
//! own, linked to the stick by a veth pair. The egress policy forwards only DNS
//! and HTTP(S) from it to the PC's network, never into the inner networks, and
//! gives its packets the uplink's address (so the network's portal signs in this
//! PC). It exists only while the page is open: no tunnel attempt is made then,
//! and it is deleted before the next.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use stick_manifest::network::{
    PORTAL_BROWSER_ADDRESS, PORTAL_HOST_ADDRESS, PORTAL_HOST_INTERFACE, PORTAL_INNER_INTERFACE,
    PORTAL_NAMESPACE, PORTAL_PREFIX,
};

/// The sign-in page is open: the watcher starts no tunnel attempt.
static OPEN: AtomicBool = AtomicBool::new(false);
/// The last attempt got no answer (the gateway or the relay): a portal may be
/// holding the packets, so the screen offers the sign-in page.
static UNANSWERED: AtomicBool = AtomicBool::new(false);

/// Where systemd-networkd keeps each interface's DHCP lease (by ifindex).
const LEASES_DIR: &str = "/run/systemd/netif/leases";
/// The kernel's switch for forwarding between interfaces.
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Whether the sign-in page is open (the tunnel waits).
pub fn is_open() -> bool {
    OPEN.load(Ordering::SeqCst)
}

/// Whether the last tunnel attempt got no answer.
pub fn unanswered() -> bool {
    UNANSWERED.load(Ordering::SeqCst)
}

/// Set after each tunnel attempt: `true` when nothing answered it.
pub fn set_unanswered(unanswered: bool) {
    UNANSWERED.store(unanswered, Ordering::SeqCst);
}

/// The namespace, its link and forwarding, while the sign-in page is open.
#[derive(Debug)]
pub struct PortalNet {
    /// The resolv.conf the browser's mount namespace gets (the network's resolvers).
    pub resolv_conf: String,
}

/// What [`PortalNet::close`] left behind: nothing, if all went well.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetClosed {
    /// `/run/netns/stick-portal` is gone.
    pub namespace_removed: bool,
    /// The stick's end of the link is gone.
    pub link_removed: bool,
    /// Forwarding is off again.
    pub forwarding_off: bool,
}

impl PortalNet {
    /// Makes the namespace and its link to the uplink; the watcher pauses from
    /// here on. The resolvers are the uplink's own (from its DHCP lease): the
    /// portal's names resolve only there.
    pub fn open() -> Result<PortalNet, (String, NetClosed)> {
        OPEN.store(true, Ordering::SeqCst);
        let made = uplink_resolvers().and_then(|resolvers| {
            remove_namespace();
            make_namespace()?;
            Ok(PortalNet {
                resolv_conf: resolv_conf(&resolvers),
            })
        });
        // Whatever was made is taken away again (the report says so).
        made.map_err(|reason| (reason, PortalNet::close_now()))
    }

    /// Deletes the namespace (and with it the link), turns forwarding off and
    /// lets the watcher go on.
    pub fn close(self) -> NetClosed {
        PortalNet::close_now()
    }

    fn close_now() -> NetClosed {
        let forwarding_off = std::fs::write(IP_FORWARD, "0").is_ok();
        remove_namespace();
        let closed = NetClosed {
            namespace_removed: !Path::new(&namespace_path()).exists(),
            link_removed: !Path::new(&format!("/sys/class/net/{PORTAL_HOST_INTERFACE}")).exists(),
            forwarding_off,
        };
        OPEN.store(false, Ordering::SeqCst);
        closed
    }
}

/// `/run/netns/NAME`, which `setns` opens.
pub fn namespace_path() -> String {
    format!("/run/netns/{PORTAL_NAMESPACE}")
}

fn ip(args: &[&str]) -> Result<(), String> {
    crate::command::run("ip", args)
        .map(drop)
        .map_err(|err| format!("{err}"))
}

fn make_namespace() -> Result<(), String> {
    let host = format!("{PORTAL_HOST_ADDRESS}/{PORTAL_PREFIX}");
    let browser = format!("{PORTAL_BROWSER_ADDRESS}/{PORTAL_PREFIX}");
    let gateway = PORTAL_HOST_ADDRESS.to_string();
    let ns = PORTAL_NAMESPACE;
    let steps: [&[&str]; 8] = [
        &["netns", "add", ns],
        &[
            "link",
            "add",
            PORTAL_HOST_INTERFACE,
            "type",
            "veth",
            "peer",
            "name",
            PORTAL_INNER_INTERFACE,
            "netns",
            ns,
        ],
        &["addr", "add", &host, "dev", PORTAL_HOST_INTERFACE],
        &["link", "set", PORTAL_HOST_INTERFACE, "up"],
        &["-n", ns, "link", "set", "lo", "up"],
        &[
            "-n",
            ns,
            "addr",
            "add",
            &browser,
            "dev",
            PORTAL_INNER_INTERFACE,
        ],
        &["-n", ns, "link", "set", PORTAL_INNER_INTERFACE, "up"],
        &["-n", ns, "route", "add", "default", "via", &gateway],
    ];
    for step in steps {
        ip(step).map_err(|err| format!("cannot make the sign-in page's network: {err}"))?;
    }
    std::fs::write(IP_FORWARD, "1").map_err(|err| format!("cannot write {IP_FORWARD}: {err}"))
}

/// Deletes the namespace (its veth end goes with it, and the pair's other end)
/// and any link left on the stick's side; quietly, there may be none.
fn remove_namespace() {
    let _ = ip(&["netns", "del", PORTAL_NAMESPACE]);
    if Path::new(&format!("/sys/class/net/{PORTAL_HOST_INTERFACE}")).exists() {
        let _ = ip(&["link", "del", PORTAL_HOST_INTERFACE]);
    }
}

/// The uplink's resolvers, from networkd's lease of the uplink.
fn uplink_resolvers() -> Result<Vec<Ipv4Addr>, String> {
    let uplink = crate::network::uplink::observe()?;
    let name = uplink
        .interface
        .ok_or_else(|| "no uplink interface".to_string())?;
    let index_file = format!("/sys/class/net/{name}/ifindex");
    let index = std::fs::read_to_string(&index_file)
        .map_err(|err| format!("cannot read {index_file}: {err}"))?;
    let lease_file = format!("{LEASES_DIR}/{}", index.trim());
    let lease = std::fs::read_to_string(&lease_file)
        .map_err(|err| format!("no DHCP lease for {name} ({lease_file}): {err}"))?;
    let resolvers = lease_resolvers(&lease);
    if resolvers.is_empty() {
        return Err(format!(
            "the network gave {name} no resolver (DNS= in {lease_file}): a sign-in page needs one"
        ));
    }
    Ok(resolvers)
}

/// The `DNS=` addresses of a networkd lease file.
pub fn lease_resolvers(lease: &str) -> Vec<Ipv4Addr> {
    lease
        .lines()
        .filter_map(|line| line.strip_prefix("DNS="))
        .flat_map(str::split_whitespace)
        .filter_map(|word| word.parse().ok())
        .collect()
}

/// resolv.conf naming `resolvers`.
pub fn resolv_conf(resolvers: &[Ipv4Addr]) -> String {
    let mut text = String::from("# The PC's network's resolvers, for its sign-in page only.\n");
    for resolver in resolvers {
        text.push_str(&format!("nameserver {resolver}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_come_from_the_lease() {
        let cases: &[(&str, &[Ipv4Addr])] = &[
            (
                "# This is private data. Do not parse.\nADDRESS=10.20.0.120\nDNS=10.20.0.1 192.0.2.53\nROUTER=10.20.0.1\n",
                &[Ipv4Addr::new(10, 20, 0, 1), Ipv4Addr::new(192, 0, 2, 53)],
            ),
            ("ADDRESS=10.20.0.120\n", &[]),
            ("DNS=not-an-address 10.0.0.1\n", &[Ipv4Addr::new(10, 0, 0, 1)]),
            ("NTP=10.0.0.1\nDNSSEC=yes\n", &[]),
        ];
        for (lease, want) in cases {
            assert_eq!(lease_resolvers(lease), *want, "{lease}");
        }
    }

    #[test]
    fn resolv_conf_names_each_resolver() {
        assert_eq!(
            resolv_conf(&[Ipv4Addr::new(10, 20, 0, 1), Ipv4Addr::new(192, 0, 2, 53)]),
            "# The PC's network's resolvers, for its sign-in page only.\n\
             nameserver 10.20.0.1\nnameserver 192.0.2.53\n"
        );
    }
}
