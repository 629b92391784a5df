//! The network a VPN scenario runs in, built from network namespaces on this
//! machine and torn down when dropped:
//!
//! ```text
//!  guest --tap0-- [uplink ns] ----------- [gateway ns] ----------- [inner ns]
//!                 10.20.0.1/24           198.51.100.1             10.99.0.10 HTTPS
//!                 dnsmasq (DHCP)         strongSwan responder     10.99.0.53 (resolver address)
//!                 routes to the gateway  or WireGuard peer
//!                                        inner: 10.99.0.1/24, tunnel 10.99.1.0/24
//! ```
//!
//! The gateway is userspace (charon with kernel-libipsec, boringtun for WireGuard):
//! this machine's kernel has neither ESP nor WireGuard. The guest's side is the
//! image's own kernel, strongSwan and WireGuard.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::machine::qemu::{wait_until, Nic};
use crate::run_tool;

pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The TLS-on-443 relay (stick-relay) beside the gateway, as in
/// `configs/conference-ipsec.toml`.
pub const RELAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
pub const RELAY_PORT: u16 = 443;
pub const UPLINK_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 1);
pub const WEB_SERVER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);
pub const GUEST_MAC: &str = "52:54:00:12:34:56";
/// Addresses the gateway hands out inside the tunnel (IPsec pool; WireGuard's
/// configured 10.99.1.2 lies in it too).
pub const TUNNEL_NETWORK: &str = "10.99.1.0/24";
const IPSEC_POOL: &str = "10.99.1.16/28";
const WIREGUARD_PORT: u16 = 51820;

/// Which gateway, and whether it presents the credential the image expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// strongSwan; `wrong_certificate`: a certificate from another CA;
    /// `refuses_stick`: trusts another CA for its clients, so it answers the
    /// stick's authentication with AUTHENTICATION_FAILED.
    Ipsec {
        wrong_certificate: bool,
        refuses_stick: bool,
    },
    /// WireGuard; `wrong_key`: a private key the image does not know.
    Wireguard { wrong_key: bool },
}

/// A process the lab started; killed when dropped.
#[derive(Debug)]
struct Daemon {
    child: Child,
}

impl Daemon {
    fn spawn(name: &'static str, command: &mut Command, log: &Path) -> Result<Daemon> {
        let out = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone().context("log file")?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        Ok(Daemon { child })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The namespaces, links and daemons of one scenario.
#[derive(Debug)]
pub struct NetLab {
    pub uplink_ns: String,
    pub gateway_ns: String,
    pub inner_ns: String,
    gateway: Gateway,
    wireguard_interface: String,
    dir: tempfile::TempDir,
    fixtures: PathBuf,
    daemons: Vec<Daemon>,
    gateway_daemon: Option<Daemon>,
    /// IPsec: accounts whose password the gateway checks in a second round
    /// (EAP-MSCHAPv2), with their passwords; none: certificates only.
    eap_users: Vec<(String, String)>,
    /// stick-relay, while it runs.
    relay_daemon: Option<Daemon>,
    /// Whether the relay's address is in this lab (the capture allows TCP to it).
    relay_placed: bool,
}

static LABS: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<()> {
    run_tool(Command::new("ip").args(args)).map(drop)
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns, program]);
    command
}

impl NetLab {
    /// Builds the namespaces and starts DHCP and the web server; the gateway is
    /// started by [`NetLab::start_gateway`], so a scenario can begin without it.
    pub fn new(gateway: Gateway) -> Result<NetLab> {
        let id = format!(
            "sl{}x{}",
            std::process::id() % 100_000,
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("netlab-{id}-"))
            .tempdir()
            .context("cannot create the lab's folder")?;
        let mut lab = NetLab {
            uplink_ns: format!("{id}-up"),
            gateway_ns: format!("{id}-gw"),
            inner_ns: format!("{id}-in"),
            gateway,
            wireguard_interface: format!("{id}wg"),
            dir,
            fixtures: crate::workspace_root().join("qemu-tests/fixtures/vpn"),
            daemons: Vec::new(),
            gateway_daemon: None,
            eap_users: Vec::new(),
            relay_daemon: None,
            relay_placed: false,
        };
        lab.build_links().context("building the lab's namespaces")?;
        lab.start_dhcp()?;
        lab.start_web_server()?;
        Ok(lab)
    }

    fn build_links(&self) -> Result<()> {
        let (up, gw, inner) = (&self.uplink_ns, &self.gateway_ns, &self.inner_ns);
        for ns in [up, gw, inner] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        // The PC's LAN: the guest's tap and the router towards the gateway.
        ip(&["-n", up, "tuntap", "add", "dev", "tap0", "mode", "tap"])?;
        ip(&[
            "-n",
            up,
            "addr",
            "add",
            &format!("{UPLINK_ROUTER}/24"),
            "dev",
            "tap0",
        ])?;
        ip(&["-n", up, "link", "set", "tap0", "up"])?;
        ip(&[
            "-n", up, "link", "add", "to-gw", "type", "veth", "peer", "name", "to-up", "netns", gw,
        ])?;
        ip(&["-n", up, "addr", "add", "198.51.100.2/24", "dev", "to-gw"])?;
        ip(&["-n", up, "link", "set", "to-gw", "up"])?;
        // The gateway: public side, inner side, forwarding between tunnel and inner.
        ip(&[
            "-n",
            gw,
            "addr",
            "add",
            &format!("{GATEWAY}/24"),
            "dev",
            "to-up",
        ])?;
        ip(&["-n", gw, "link", "set", "to-up", "up"])?;
        ip(&[
            "-n",
            gw,
            "route",
            "add",
            "10.20.0.0/24",
            "via",
            "198.51.100.2",
        ])?;
        ip(&[
            "-n", gw, "link", "add", "to-in", "type", "veth", "peer", "name", "to-gw", "netns",
            inner,
        ])?;
        ip(&["-n", gw, "addr", "add", "10.99.0.1/24", "dev", "to-in"])?;
        ip(&["-n", gw, "link", "set", "to-in", "up"])?;
        // The inner network: the conference stand-in.
        ip(&[
            "-n",
            inner,
            "addr",
            "add",
            &format!("{WEB_SERVER}/24"),
            "dev",
            "to-gw",
        ])?;
        ip(&["-n", inner, "addr", "add", "10.99.0.53/24", "dev", "to-gw"])?;
        ip(&["-n", inner, "link", "set", "to-gw", "up"])?;
        ip(&["-n", inner, "route", "add", "default", "via", "10.99.0.1"])?;
        for ns in [up, gw] {
            run_tool(in_ns(ns, "sysctl").args(["-qw", "net.ipv4.ip_forward=1"]))?;
        }
        Ok(())
    }

    fn start_dhcp(&mut self) -> Result<()> {
        let dir = self.dir.path();
        let mut command = in_ns(&self.uplink_ns, "dnsmasq");
        command
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
            ])
            .args([
                "--port=0",
                "--interface=tap0",
                "--bind-dynamic",
                "--user=root",
                "--log-dhcp",
            ])
            .arg("--dhcp-range=10.20.0.100,10.20.0.150,255.255.255.0,1h")
            .arg(format!("--dhcp-option=option:router,{UPLINK_ROUTER}"))
            // A lure: a resolver on the LAN, which the stick must never use.
            .arg(format!("--dhcp-option=option:dns-server,{UPLINK_ROUTER}"))
            .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg(format!(
                "--log-facility={}",
                dir.join("dnsmasq.log").display()
            ));
        let daemon = Daemon::spawn("dnsmasq", &mut command, &dir.join("dnsmasq.out"))?;
        self.daemons.push(daemon);
        Ok(())
    }

    fn start_web_server(&mut self) -> Result<()> {
        let dir = self.dir.path();
        let script = dir.join("web.py");
        std::fs::write(&script, WEB_SERVER_PY).context("cannot write web.py")?;
        let mut command = in_ns(&self.inner_ns, "python3");
        command
            .arg(&script)
            .arg(WEB_SERVER.to_string())
            .arg(self.fixtures.join("test-web.pem"))
            .arg(self.fixtures.join("test-web.key"))
            .arg(dir.join("web.log"));
        let daemon = Daemon::spawn("web server", &mut command, &dir.join("web.out"))?;
        self.daemons.push(daemon);
        let listening = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            std::fs::read_to_string(dir.join("web.out"))
                .ok()
                .filter(|t| t.contains("listening"))
        });
        if listening.is_none() {
            bail!("the web server did not start: {}", self.log("web.out"));
        }
        Ok(())
    }

    /// IPsec: the gateway checks `user`'s `password` in a second round after the
    /// stick's certificate (RFC 4739, EAP-MSCHAPv2), as an organisation's
    /// gateway does against its user directory. Takes effect when the gateway
    /// starts.
    pub fn add_eap_user(&mut self, user: &str, password: &str) {
        self.eap_users
            .push((user.to_string(), password.to_string()));
    }

    /// How often the gateway's log says it rejected `user`'s password (the
    /// EAP identity the stick sent).
    pub fn eap_rejections(&self, user: &str) -> usize {
        count_eap_rejections(&self.log("charon.log"), user)
    }

    /// Gives the gateway's namespace the relay's address [`RELAY`], with
    /// nothing listening yet (connections to it are refused).
    pub fn place_relay(&mut self) -> Result<()> {
        if !self.relay_placed {
            let address = format!("{RELAY}/24");
            ip(&[
                "-n",
                &self.gateway_ns,
                "addr",
                "add",
                &address,
                "dev",
                "to-up",
            ])?;
            self.relay_placed = true;
        }
        Ok(())
    }

    /// Starts stick-relay (the workspace's release build) in the gateway's
    /// namespace on [`RELAY`]:[`RELAY_PORT`], relaying to the gateway's NAT-T
    /// (IPsec) or WireGuard port with the TEST certificate `relay.test`; waits
    /// until it listens.
    pub fn start_relay(&mut self) -> Result<()> {
        self.place_relay()?;
        let config = self.dir.path().join("relay.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{RELAY}:{RELAY_PORT}\"\ncertificate = \"{}\"\nkey = \"{}\"\ngateway = \"{GATEWAY}:{port}\"\n",
                self.fixtures.join("test-relay.pem").display(),
                self.fixtures.join("test-relay.key").display(),
                port = match self.gateway {
                    Gateway::Ipsec { .. } => 4500,
                    Gateway::Wireguard { .. } => WIREGUARD_PORT,
                },
            ),
        )
        .context("relay.toml")?;
        let binary = crate::ensure_release_binaries()?.join("stick-relay");
        let mut command = in_ns(&self.gateway_ns, &binary.display().to_string());
        command.arg("--config").arg(&config).env("RUST_LOG", "info");
        let log = self.dir.path().join("relay.out");
        self.relay_daemon = Some(Daemon::spawn("stick-relay", &mut command, &log)?);
        let listening = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            self.log("relay.out")
                .contains("relaying TLS on")
                .then_some(())
        });
        if listening.is_none() {
            bail!("stick-relay did not start: {}", self.log("relay.out"));
        }
        Ok(())
    }

    /// Kills the relay at once.
    pub fn stop_relay(&mut self) {
        self.relay_daemon = None;
    }

    /// The relay's address and port, once it has its place in this lab.
    pub fn relay_endpoint(&self) -> Option<(Ipv4Addr, u16)> {
        self.relay_placed.then_some((RELAY, RELAY_PORT))
    }

    /// Makes the PC's network drop (`true`) or pass (`false`) every UDP packet
    /// it would forward, as hotel networks that open only TCP 80/443 do. DHCP
    /// is the uplink's own and still answers.
    pub fn block_udp(&self, blocked: bool) -> Result<()> {
        let rules = if blocked {
            "table inet lab_firewall {\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n    meta l4proto udp counter drop\n  }\n}\n"
        } else {
            "delete table inet lab_firewall\n"
        };
        let file = self.dir.path().join("lab-firewall.nft");
        std::fs::write(&file, rules).context("lab-firewall.nft")?;
        run_tool(in_ns(&self.uplink_ns, "nft").arg("-f").arg(&file)).map(drop)
    }

    /// Puts a captive portal in front of the PC's network, as hotels do: the
    /// lab's router forwards nothing from the PC until its sign-in form is
    /// posted; every name resolves to the portal ([`UPLINK_ROUTER`], UDP 53),
    /// every HTTP request there is redirected to the form. Its log is
    /// `portal.log` ([`NetLab::portal_log`]).
    pub fn start_portal(&mut self) -> Result<()> {
        let rules = format!(
            "table inet {PORTAL_TABLE} {{\n  set signed_in {{ type ipv4_addr; }}\n  chain forward {{\n    \
             type filter hook forward priority filter - 10; policy accept;\n    \
             iifname \"tap0\" ip saddr != @signed_in counter drop\n  }}\n}}\n"
        );
        let dir = self.dir.path().to_path_buf();
        let file = dir.join("lab-portal.nft");
        std::fs::write(&file, rules).context("lab-portal.nft")?;
        run_tool(in_ns(&self.uplink_ns, "nft").arg("-f").arg(&file))?;
        let script = dir.join("portal.py");
        std::fs::write(&script, PORTAL_PY).context("cannot write portal.py")?;
        let mut command = in_ns(&self.uplink_ns, "python3");
        command
            .arg(&script)
            .arg(UPLINK_ROUTER.to_string())
            .arg(dir.join("portal.log"))
            .arg(PORTAL_TABLE);
        let daemon = Daemon::spawn("portal", &mut command, &dir.join("portal.out"))?;
        self.daemons.push(daemon);
        let listening = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            self.log("portal.out").contains("listening").then_some(())
        });
        if listening.is_none() {
            bail!("the lab's portal did not start: {}", self.log("portal.out"));
        }
        Ok(())
    }

    /// The portal's log: `dns CLIENT NAME type T`, `get CLIENT HOST/PATH`,
    /// `signed-in CLIENT`, one per line.
    pub fn portal_log(&self) -> String {
        self.log("portal.log")
    }

    /// The gateway this lab runs.
    pub fn gateway(&self) -> Gateway {
        self.gateway
    }

    /// The lab's folder (logs, scripts), removed with the lab.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The NIC for the guest, captured to `capture`.
    pub fn nic(&self, capture: &Path) -> Nic {
        Nic {
            netns: self.uplink_ns.clone(),
            tap: "tap0".into(),
            mac: GUEST_MAC.into(),
            capture: capture.to_path_buf(),
        }
    }

    /// Starts (or restarts) the gateway and waits until it listens.
    pub fn start_gateway(&mut self) -> Result<()> {
        self.stop_gateway();
        match self.gateway {
            Gateway::Ipsec {
                wrong_certificate,
                refuses_stick,
            } => self.start_charon(wrong_certificate, refuses_stick),
            Gateway::Wireguard { wrong_key } => self.start_wireguard(wrong_key),
        }
        .context("starting the VPN gateway")
    }

    /// Kills the gateway at once, as a crash or a cut line would: no goodbye to the guest.
    pub fn stop_gateway(&mut self) {
        self.gateway_daemon = None;
        if let Gateway::Wireguard { .. } = self.gateway {
            let _ = std::fs::remove_file(self.wireguard_socket());
        }
    }

    fn start_charon(&mut self, wrong_certificate: bool, refuses_stick: bool) -> Result<()> {
        let dir = self.dir.path().join("charon");
        std::fs::create_dir_all(&dir).context("charon folder")?;
        let vici = dir.join("charon.vici");
        let _ = std::fs::remove_file(&vici);
        let (cert, key) = if wrong_certificate {
            ("test-gateway-other.pem", "test-gateway-other.key")
        } else {
            ("test-gateway.pem", "test-gateway.key")
        };
        let clients_ca = if refuses_stick {
            "test-other-ca.pem"
        } else {
            "test-ca.pem"
        };
        let conf = dir.join("strongswan.conf");
        // flush_line: the tests read the log while charon writes it; block
        // buffering would hide its last lines.
        std::fs::write(
            &conf,
            format!(
                "charon {{\n  load_modular = no\n  load = random nonce openssl kdf hmac sha2 sha1 aes gcm curve25519 pem pkcs1 pkcs8 x509 revocation constraints pubkey attr kernel-libipsec kernel-netlink socket-default vici eap-mschapv2 eap-identity\n  install_routes = yes\n  plugins {{\n    vici {{\n      socket = unix://{vici}\n    }}\n  }}\n  filelog {{\n    charon {{\n      path = {log}\n      flush_line = yes\n      ike_name = yes\n      default = 1\n      ike = 2\n      cfg = 2\n    }}\n  }}\n}}\n",
                vici = vici.display(),
                log = self.dir.path().join("charon.log").display(),
            ),
        )
        .context("strongswan.conf")?;
        // swanctl's own layout beside its config: x509/, x509ca/, private/.
        for (folder, from, to) in [
            ("x509", cert, "gateway.pem"),
            ("x509ca", clients_ca, "ca.pem"),
            ("private", key, "gateway.key"),
        ] {
            let folder = dir.join(folder);
            std::fs::create_dir_all(&folder).context("swanctl folder")?;
            std::fs::copy(self.fixtures.join(from), folder.join(to))
                .with_context(|| format!("cannot copy {from}"))?;
        }
        let swanctl = dir.join("swanctl.conf");
        std::fs::write(&swanctl, gateway_swanctl_conf(&self.eap_users)).context("swanctl.conf")?;
        // charon writes its pid file under /run: give it a /run of its own.
        let mut command = in_ns(&self.gateway_ns, "unshare");
        command
            .args([
                "--mount",
                "sh",
                "-c",
                "mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon",
            ])
            .env("STRONGSWAN_CONF", &conf);
        let daemon = Daemon::spawn("charon", &mut command, &self.dir.path().join("charon.out"))?;
        self.gateway_daemon = Some(daemon);
        let ready = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            vici.exists().then_some(())
        });
        if ready.is_none() {
            bail!(
                "charon did not open {}: {}",
                vici.display(),
                self.log("charon.out")
            );
        }
        run_tool(
            Command::new("swanctl")
                .args(["--load-all", "--noprompt", "--file"])
                .arg(&swanctl)
                .arg("--uri")
                .arg(format!("unix://{}", vici.display())),
        )?;
        // kernel-libipsec's TUN device carries the decrypted traffic.
        let tun = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
            run_tool(Command::new("ip").args(["-n", &self.gateway_ns, "link", "show", "ipsec0"]))
                .ok()
        });
        if tun.is_none() {
            bail!("charon made no ipsec0 device: {}", self.log("charon.log"));
        }
        ip(&["-n", &self.gateway_ns, "link", "set", "ipsec0", "up"])?;
        ip(&[
            "-n",
            &self.gateway_ns,
            "route",
            "replace",
            TUNNEL_NETWORK,
            "dev",
            "ipsec0",
        ])?;
        Ok(())
    }

    fn wireguard_socket(&self) -> PathBuf {
        PathBuf::from(format!(
            "/var/run/wireguard/{}.sock",
            self.wireguard_interface
        ))
    }

    fn start_wireguard(&mut self, wrong_key: bool) -> Result<()> {
        let name = self.wireguard_interface.clone();
        let mut command = in_ns(&self.gateway_ns, &boringtun()?);
        command
            .args([
                "--foreground",
                "--disable-drop-privileges",
                "--threads",
                "1",
            ])
            .arg("--log")
            .arg(self.dir.path().join("boringtun.log"))
            .arg(&name);
        let daemon = Daemon::spawn(
            "boringtun",
            &mut command,
            &self.dir.path().join("boringtun.out"),
        )?;
        self.gateway_daemon = Some(daemon);
        let socket = self.wireguard_socket();
        if wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            socket.exists().then_some(())
        })
        .is_none()
        {
            bail!(
                "boringtun did not open {}: {}",
                socket.display(),
                self.log("boringtun.out")
            );
        }
        let key = if wrong_key {
            "test-wg-other.key"
        } else {
            "test-wg-gateway.key"
        };
        let client = std::fs::read_to_string(self.fixtures.join("test-wg-client.pub"))
            .context("client key")?;
        run_tool(
            in_ns(&self.gateway_ns, "wg")
                .args(["set", &name, "private-key"])
                .arg(self.fixtures.join(key))
                .args([
                    "listen-port",
                    &WIREGUARD_PORT.to_string(),
                    "peer",
                    client.trim(),
                ])
                .args(["allowed-ips", "10.99.1.2/32"]),
        )?;
        ip(&[
            "-n",
            &self.gateway_ns,
            "addr",
            "add",
            "10.99.1.1/24",
            "dev",
            &name,
        ])?;
        ip(&["-n", &self.gateway_ns, "link", "set", &name, "up"])?;
        Ok(())
    }

    /// The gateway deletes the guest's IKE SA (and with it the tunnel), telling the
    /// guest so: an administrator's `swanctl --terminate` on the gateway.
    pub fn delete_ipsec_sa(&self) -> Result<()> {
        let vici = self.dir.path().join("charon/charon.vici");
        run_tool(
            Command::new("swanctl")
                .args(["--terminate", "--ike", "stick", "--timeout", "10", "--uri"])
                .arg(format!("unix://{}", vici.display())),
        )
        .map(drop)
    }

    /// Revokes a stick's certificate (a fixture name) as an admin does: the CA
    /// signs a CRL naming it; the gateway gets the CRL (loaded at once when it
    /// runs, else when it starts) and ends the IKE SA it may have with the stick,
    /// which must then authenticate again. Returns the CRL.
    pub fn revoke(&mut self, certificate: &str) -> Result<PathBuf> {
        let crl = crate::lab::lab_ca::revoke(
            &self.fixtures,
            &self.dir.path().join("ca"),
            &[certificate],
        )?;
        let folder = self.dir.path().join("charon/x509crl");
        std::fs::create_dir_all(&folder).context("swanctl's CRL folder")?;
        std::fs::copy(&crl, folder.join("lab.crl.pem")).context("copying the CRL")?;
        if self.gateway_running() {
            let charon = self.dir.path().join("charon");
            run_tool(
                Command::new("swanctl")
                    .args(["--load-creds", "--noprompt", "--file"])
                    .arg(charon.join("swanctl.conf"))
                    .arg("--uri")
                    .arg(format!("unix://{}", charon.join("charon.vici").display())),
            )
            .context("loading the CRL into the gateway")?;
            // No SA is no error: the stick may be between attempts.
            let _ = self.delete_ipsec_sa();
        }
        Ok(crl)
    }

    /// What the gateway lists as its CRLs (`swanctl --list-certs --type x509_crl`).
    pub fn gateway_crls(&self) -> Result<String> {
        let vici = self.dir.path().join("charon/charon.vici");
        run_tool(
            Command::new("swanctl")
                .args(["--list-certs", "--type", "x509_crl", "--uri"])
                .arg(format!("unix://{}", vici.display())),
        )
    }

    /// Whether the gateway process is running.
    pub fn gateway_running(&mut self) -> bool {
        self.gateway_daemon.as_mut().is_some_and(Daemon::alive)
    }

    /// Requests the web server logged: (client address, request line).
    pub fn web_requests(&self) -> Vec<(String, String)> {
        self.log("web.log")
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(client, request)| (client.to_string(), request.to_string()))
            .collect()
    }

    /// A log file of the lab (`dnsmasq.log`, `charon.log`, `web.log`, ...), or "".
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The tail of every log of the lab, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut text = String::new();
        for name in [
            "dnsmasq.log",
            "charon.log",
            "charon.out",
            "boringtun.out",
            "web.out",
            "web.log",
            "relay.out",
            "portal.out",
            "portal.log",
        ] {
            let log = self.log(name);
            if !log.is_empty() {
                text.push_str(&format!(
                    "--- {name} ---\n{}",
                    crate::log_tail(&log, LOG_TAIL)
                ));
            }
        }
        text
    }
}

/// Lines of each lab log in a failure message.
const LOG_TAIL: usize = 25;

impl Drop for NetLab {
    fn drop(&mut self) {
        self.gateway_daemon = None;
        self.relay_daemon = None;
        self.daemons.clear();
        for ns in [&self.uplink_ns, &self.gateway_ns, &self.inner_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_file(self.wireguard_socket());
    }
}

/// The gateway's swanctl.conf: the stick's certificate from the TEST CA; with
/// `eap_users`, their passwords in a second round (EAP-MSCHAPv2).
fn gateway_swanctl_conf(eap_users: &[(String, String)]) -> String {
    let remote = if eap_users.is_empty() {
        "    remote {\n      auth = pubkey\n      cacerts = ca.pem\n    }\n".to_string()
    } else {
        "    remote-1 {\n      auth = pubkey\n      cacerts = ca.pem\n    }\n    \
         remote-2 {\n      auth = eap-mschapv2\n      eap_id = %any\n    }\n"
            .to_string()
    };
    let secrets: String = eap_users
        .iter()
        .enumerate()
        .map(|(i, (user, password))| {
            format!("  eap-{i} {{\n    id = \"{user}\"\n    secret = \"{password}\"\n  }}\n")
        })
        .collect();
    format!(
        "connections {{\n  stick {{\n    version = 2\n    local_addrs = {GATEWAY}\n    \
         pools = tunnel-pool\n    dpd_delay = 10s\n    local {{\n      auth = pubkey\n      \
         certs = gateway.pem\n      id = gateway.test\n    }}\n{remote}    children {{\n      \
         net {{\n        local_ts = 10.99.0.0/24\n      }}\n    }}\n  }}\n}}\n\
         pools {{\n  tunnel-pool {{\n    addrs = {IPSEC_POOL}\n  }}\n}}\n\
         secrets {{\n{secrets}}}\n"
    )
}

/// The rejected passwords of `user` in a gateway log: the IKE SAs (`<stick|N>`,
/// charon's `ike_name`) in which the stick sent `user` as its EAP identity, and
/// in them the lines where MS-CHAPv2 verification failed.
fn count_eap_rejections(log: &str, user: &str) -> usize {
    let sa = |line: &str| -> Option<String> {
        let start = line.find('<')?;
        let end = start + line[start..].find('>')?;
        Some(line[start..=end].to_string())
    };
    let identity = format!("received EAP identity '{user}'");
    let user_sas: Vec<String> = log
        .lines()
        .filter(|l| l.contains(&identity))
        .filter_map(sa)
        .collect();
    log.lines()
        .filter(|l| l.contains("EAP-MS-CHAPv2 verification failed"))
        .filter(|l| sa(l).is_some_and(|id| user_sas.contains(&id)))
        .count()
}

/// boringtun from PATH or cargo's bin folder (`cargo install boringtun-cli`).
fn boringtun() -> Result<String> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")));
    for dir in candidates {
        let path = dir.join("boringtun-cli");
        if path.is_file() {
            return Ok(path.display().to_string());
        }
    }
    bail!("boringtun-cli not found: install it with `cargo install --locked boringtun-cli` (scripts/setup-tests.sh does)")
}

/// A small HTTPS server: answers every GET with 200 and logs the client address.
/// The lab's captive portal (DNS and HTTP), run by python3 in the uplink namespace.
const PORTAL_PY: &str = include_str!("portal.py");
/// Its nftables table in the uplink namespace.
const PORTAL_TABLE: &str = "lab_portal";

const WEB_SERVER_PY: &str = r#"
import http.server, ssl, sys
address, cert, key, log = sys.argv[1:5]

class Handler(http.server.BaseHTTPRequestHandler):
    # Seconds a connection may stay quiet, handshake included.
    timeout = 60

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def do_GET(self):
        body = b"conference stand-in\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        with open(log, "a") as f:
            f.write("%s %s\n" % (self.client_address[0], fmt % args))

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        # The handshake in the connection's own thread (Handler.setup): with the
        # listening socket wrapped, accept() would do it, and one client that
        # connects and never says hello would stall every later check.
        sock, client = self.socket.accept()
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), client

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server = Server((address, 443), Handler)
print("listening", flush=True)
server.serve_forever()
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_counts_rejected_passwords_per_account() {
        let log = "10[IKE] <stick|1> received EAP identity 'alice'\n\
                   01[IKE] <stick|1> EAP-MS-CHAPv2 verification failed, retry (1)\n\
                   10[IKE] <stick|2> received EAP identity 'bob'\n\
                   01[IKE] <stick|2> EAP-MS-CHAPv2 verification failed, retry (1)\n\
                   10[IKE] <stick|3> received EAP identity 'alice'\n\
                   16[IKE] <stick|3> EAP-MS-CHAPv2 verification failed, retry (1)\n\
                   10[IKE] <stick|4> received EAP identity 'alice'\n\
                   12[IKE] <stick|4> EAP method EAP_MSCHAPV2 succeeded, MSK established\n";
        for (user, count) in [("alice", 2), ("bob", 1), ("carol", 0), ("ali", 0)] {
            assert_eq!(count_eap_rejections(log, user), count, "{user}");
        }
    }
}
