//! One boot of a VPN test image inside a [`NetLab`]: QEMU on the lab's uplink with
//! every frame captured, the kiosk's net lines read from the console, and the whole
//! capture judged at power-off. Used by `tests/vpn.rs` and the `bench-vpn` binary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::lab::netlab::{Gateway, NetLab, GATEWAY, GUEST_MAC};
use crate::lab::pcap::{leak_report, parse_mac, AllowedEgress, LeakReport};
use crate::machine::qemu::{wait_until, Machine, MachineConfig, SecureBootKeys};
use crate::machine::serial::{parse_egress, parse_net, NetLine};

/// From power-on to the kiosk's first lines (TCG, one vCPU).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// From a change at the gateway to the kiosk noticing it.
pub const NET_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a stick screen may take to cover the display once it was shown.
const SCREEN_COVER_TIMEOUT: Duration = Duration::from_secs(60);

/// The `screen shown` names of a console, in order.
pub fn screens_shown(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|l| crate::machine::serial::parse_event(l, "screen"))
        .filter(|e| e["state"] == "shown")
        .filter_map(|e| e["screen"].as_str().map(String::from))
        .collect()
}

/// The test image for a gateway kind: (config, output folder).
pub fn image_config(gateway: Gateway) -> (&'static str, &'static str) {
    match gateway {
        Gateway::Ipsec { .. } => ("qemu-tests/configs/ipsec.toml", "vpn-ipsec"),
        Gateway::Wireguard { .. } => ("qemu-tests/configs/wireguard.toml", "vpn-wireguard"),
    }
}

/// A running VPN scenario.
#[derive(Debug)]
pub struct VpnSession {
    // Fields drop in order: QEMU must be gone before its namespace is.
    pub vm: Machine,
    pub lab: NetLab,
    capture: PathBuf,
    allowed: AllowedEgress,
    pub name: String,
    /// Whose frames are judged: the wired card's, or the Wi-Fi card's address
    /// once the stick joined the lab's access point.
    guest_mac: String,
}

impl VpnSession {
    /// Builds the lab, optionally starts the gateway, boots the image on it.
    pub fn start(name: &str, gateway: Gateway, gateway_at_boot: bool) -> Result<VpnSession> {
        VpnSession::start_image(
            name,
            gateway,
            gateway_at_boot,
            image_config(gateway),
            |_| {},
        )
    }

    /// Like [`VpnSession::start`] with another test image (`(config, output folder)`)
    /// and changes to the machine (memory, sound card).
    pub fn start_image(
        name: &str,
        gateway: Gateway,
        gateway_at_boot: bool,
        (config, out): (&str, &str),
        adjust: impl FnOnce(&mut MachineConfig),
    ) -> Result<VpnSession> {
        let built = crate::built_image(config, out).context("VPN test image")?;
        VpnSession::start_on(name, gateway, gateway_at_boot, &built.image, adjust)
    }

    /// Like [`VpnSession::start_image`] with an image file already at hand (a
    /// personalised copy).
    pub fn start_on(
        name: &str,
        gateway: Gateway,
        gateway_at_boot: bool,
        image: &std::path::Path,
        adjust: impl FnOnce(&mut MachineConfig),
    ) -> Result<VpnSession> {
        let lab = NetLab::new(gateway).context("network lab")?;
        VpnSession::start_in(name, lab, gateway_at_boot, image, adjust)
    }

    /// Boots `image` in a lab the caller has prepared (a CRL already at the
    /// gateway, for example).
    pub fn start_in(
        name: &str,
        mut lab: NetLab,
        gateway_at_boot: bool,
        image: &std::path::Path,
        adjust: impl FnOnce(&mut MachineConfig),
    ) -> Result<VpnSession> {
        let gateway = lab.gateway();
        if gateway_at_boot {
            lab.start_gateway()?;
        }
        let artifacts = crate::artifacts_dir();
        std::fs::create_dir_all(&artifacts)
            .with_context(|| format!("cannot create {}", artifacts.display()))?;
        let capture = artifacts.join(format!("{name}.pcap"));
        let mut machine = MachineConfig::new(name)
            .stick(image)
            .secure_boot(SecureBootKeys::test_keys());
        machine.nic = Some(lab.nic(&capture));
        adjust(&mut machine);
        let vm = Machine::start(&machine)?;
        let allowed = AllowedEgress {
            gateway: GATEWAY,
            gateway_udp_ports: match gateway {
                Gateway::Ipsec { .. } => vec![500, 4500],
                Gateway::Wireguard { .. } => vec![51820],
            },
            gateway_esp: false,
            relay: lab.relay_endpoint(),
            portal_open: vec![],
            access_point: false,
        };
        Ok(VpnSession {
            vm,
            lab,
            capture,
            allowed,
            name: name.to_string(),
            guest_mac: GUEST_MAC.to_string(),
        })
    }

    /// The first net line at or after `after_ms` (guest uptime) that `matches`.
    pub fn wait_net(
        &mut self,
        after_ms: u64,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&NetLine) -> bool,
    ) -> Result<NetLine> {
        let line = self
            .vm
            .wait_for_line(timeout, |l| {
                parse_net(l).is_some_and(|n| n.uptime_ms >= after_ms && matches(&n))
            })
            .with_context(|| {
                format!(
                    "{}: waiting for {what}\n{}",
                    self.name,
                    self.lab.diagnostics()
                )
            })?;
        parse_net(&line).context("net line parses")
    }

    /// The kiosk's console lines of one kind (`screen`, `session`, ...), as JSON,
    /// in order.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.vm
            .console()
            .lines()
            .filter_map(|l| crate::machine::serial::parse_event(l, kind))
            .collect()
    }

    /// The first `kind` line after the first `after` that `matches`, within
    /// `timeout`; the error carries the console.
    pub fn wait_event(
        &self,
        kind: &str,
        after: usize,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value> {
        let found = wait_until(timeout, Duration::from_millis(300), || {
            self.events(kind).into_iter().skip(after).find(&matches)
        });
        found.with_context(|| {
            format!(
                "{}: no {kind} line for {what} within {timeout:?}\n--- console ---\n{}",
                self.name,
                self.vm.console()
            )
        })
    }

    /// Waits until the stick screen `name` was shown (its `screen shown` line);
    /// that line.
    pub fn wait_screen_shown(&self, name: &str, timeout: Duration) -> Result<serde_json::Value> {
        self.wait_screen_shown_since(name, 0, timeout)
    }

    /// [`VpnSession::wait_screen_shown`], counting only lines at or after the
    /// guest's `since_ms` (a screen shown before that has been replaced).
    pub fn wait_screen_shown_since(
        &self,
        name: &str,
        since_ms: u64,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        self.wait_event("screen", 0, timeout, &format!("the {name} screen"), |e| {
            e["state"] == "shown"
                && e["screen"] == name
                && e["uptime_ms"].as_u64().is_some_and(|at| at >= since_ms)
        })
    }

    /// Waits for the stick screen `name`, checks its code, keeps its screendump
    /// as `screen-NAME.png` once it covers the display; how much it covers.
    pub fn screen_shown(&self, name: &str, code: &str, timeout: Duration) -> Result<f64> {
        self.screen_shown_since(name, code, 0, timeout)
    }

    /// [`VpnSession::screen_shown`] for a screen shown at or after `since_ms`.
    pub fn screen_shown_since(
        &self,
        name: &str,
        code: &str,
        since_ms: u64,
        timeout: Duration,
    ) -> Result<f64> {
        let shown = self.wait_screen_shown_since(name, since_ms, timeout)?;
        if shown["code"] != code {
            bail!(
                "{}: the {name} screen has code {}, not {code}",
                self.name,
                shown["code"]
            );
        }
        let cover = self.vm.stick_screen_covers(SCREEN_COVER_TIMEOUT);
        let shot = crate::artifacts_dir().join(format!("screen-{name}.png"));
        self.vm.screenshot(&shot)?;
        cover.with_context(|| format!("the {name} screen does not cover ({})", shot.display()))
    }

    /// The first `tunnel-waiting` reason that names `cause`; the error lists the
    /// net lines when none does.
    pub fn waiting_reason(&self, cause: &str) -> Result<String> {
        let lines = self.net_lines();
        lines
            .iter()
            .filter(|n| n.state == "tunnel-waiting")
            .find_map(|n| n.reason.clone().filter(|r| r.contains(cause)))
            .with_context(|| format!("no waiting reason names {cause}: {lines:?}"))
    }

    /// The network's sign-in page was open from `from` to `to` (seconds since the
    /// epoch): the capture's judgement lets its DNS and HTTP(S) through then.
    pub fn allow_portal(&mut self, from: f64, to: f64) {
        self.allowed.portal_open.push((from, to));
    }

    /// The capture of the guest's uplink (complete once the machine is off).
    pub fn capture(&self) -> PathBuf {
        self.capture.clone()
    }

    /// Every net line so far.
    pub fn net_lines(&self) -> Vec<NetLine> {
        self.vm.console().lines().filter_map(parse_net).collect()
    }

    /// The egress policy is in force with every hook dropping; then the DHCP address.
    pub fn boot_to_address(&mut self) -> Result<NetLine> {
        let line = self
            .vm
            .wait_for_line(BOOT_TIMEOUT, |l| parse_egress(l).is_some())
            .with_context(|| format!("{}: no egress line", self.name))?;
        let egress = parse_egress(&line).context("egress line")?;
        for hook in ["input", "output", "forward"] {
            if egress.chains.get(hook).map(String::as_str) != Some("drop") || !egress.enforcing {
                bail!(
                    "{}: egress policy not enforcing on {hook}: {line}",
                    self.name
                );
            }
        }
        self.wait_net(0, NET_TIMEOUT, "a DHCP address", |n| n.state == "address")
    }

    /// Boots to the DHCP address, then the kiosk's first `tunnel-waiting` line.
    pub fn boot_to_tunnel_waiting(&mut self) -> Result<NetLine> {
        let address = self.boot_to_address()?;
        self.wait_net(address.uptime_ms, NET_TIMEOUT, "tunnel-waiting", |n| {
            n.state == "tunnel-waiting"
        })
    }

    /// Waits until the web server logged a request from `client` beyond the first
    /// `after` requests; returns how many it has logged.
    pub fn wait_web_request_from(&self, client: &str, after: usize) -> Result<usize> {
        let seen = wait_until(Duration::from_secs(30), Duration::from_millis(500), || {
            let requests = self.lab.web_requests();
            (requests.len() > after && requests[after..].iter().any(|(c, _)| c == client))
                .then_some(requests.len())
        });
        seen.with_context(|| {
            format!(
                "{}: the web server logged no request from {client}: {:?}",
                self.name,
                self.lab.web_requests()
            )
        })
    }

    /// Judges the frames of `mac` (the Wi-Fi card's) instead of the wired card's;
    /// the access point's layer-2 updates for it are the access point's.
    pub fn judge_frames_from_wifi(&mut self, mac: &str) {
        self.guest_mac = mac.to_string();
        self.allowed.access_point = true;
    }

    /// Powers off by ACPI, keeps the console, and judges the whole capture.
    pub fn power_off_and_judge(self) -> Result<LeakReport> {
        self.power_off_with_console().map(|(report, _)| report)
    }

    /// [`VpnSession::power_off_and_judge`], and the whole console to the end.
    pub fn power_off_with_console(self) -> Result<(LeakReport, String)> {
        self.end_with_console(|vm| vm.press_power_button(Duration::from_secs(120)).map(drop))
    }

    /// Ends the machine with `end` (which returns once QEMU has exited), keeps
    /// the console, and judges the whole capture.
    pub fn end_with_console(
        mut self,
        end: impl FnOnce(&mut Machine) -> Result<()>,
    ) -> Result<(LeakReport, String)> {
        end(&mut self.vm).with_context(|| format!("{}: no power-off", self.name))?;
        // A relay placed after the boot began is allowed too.
        self.allowed.relay = self.lab.relay_endpoint();
        self.vm.keep_console(&self.name)?;
        let console = self.vm.console();
        let frames = crate::lab::pcap::read(&self.capture)?;
        let mac = parse_mac(&self.guest_mac).context("guest MAC")?;
        let report = leak_report(&frames, mac, &self.allowed);
        println!(
            "{}: {report} (capture {})",
            self.name,
            self.capture.display()
        );
        Ok((report, console))
    }
}
