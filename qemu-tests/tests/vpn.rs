//! VPN and kill switch, against real peers in network namespaces (netlab.rs): a
//! DHCP server on the PC's LAN, a strongSwan or WireGuard gateway, and an HTTPS
//! server behind it. Every frame the guest sends on its uplink, from power-on to
//! power-off, is captured by QEMU and judged: ARP, DHCP, or IKE/NAT-T/WireGuard to
//! the gateway; anything else fails the test.

use std::time::{Duration, Instant};

use qemu_tests::machine::{Machine, MachineConfig, SecureBootKeys};
use qemu_tests::netlab::{Gateway, NetLab, GATEWAY, GUEST_MAC};
use qemu_tests::pcap::{leak_report, parse_mac, AllowedEgress, LeakReport};
use qemu_tests::serial::{parse_egress, parse_net, NetLine};

const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// From a change at the gateway to the kiosk noticing it.
const NET_TIMEOUT: Duration = Duration::from_secs(180);

struct Scenario {
    // Dropped first: QEMU must be gone before its namespace is.
    vm: Machine,
    lab: NetLab,
    capture: std::path::PathBuf,
    allowed: AllowedEgress,
    name: String,
}

impl Scenario {
    fn start(name: &str, gateway: Gateway, gateway_at_boot: bool) -> Scenario {
        let (config, out) = match gateway {
            Gateway::Ipsec { .. } => ("qemu-tests/configs/ipsec.toml", "vpn-ipsec"),
            Gateway::Wireguard { .. } => ("qemu-tests/configs/wireguard.toml", "vpn-wireguard"),
        };
        let built = qemu_tests::built_image(config, out).expect("VPN test image builds");
        let mut lab = NetLab::new(gateway).expect("the network lab is built");
        if gateway_at_boot {
            lab.start_gateway().expect("gateway starts");
        }
        let artifacts = qemu_tests::artifacts_dir();
        std::fs::create_dir_all(&artifacts).expect("artifacts folder");
        let capture = artifacts.join(format!("{name}.pcap"));
        let mut config = MachineConfig::new(name)
            .stick(&built.image)
            .secure_boot(SecureBootKeys::test_keys());
        config.nic = Some(lab.nic(&capture));
        let vm = Machine::start(&config).expect("QEMU starts");
        let allowed = AllowedEgress {
            gateway: GATEWAY,
            gateway_udp_ports: match gateway {
                Gateway::Ipsec { .. } => vec![500, 4500],
                Gateway::Wireguard { .. } => vec![51820],
            },
            gateway_esp: false,
        };
        Scenario {
            vm,
            lab,
            capture,
            allowed,
            name: name.to_string(),
        }
    }

    /// The first net line at or after `after_ms` (guest uptime) that `matches`.
    fn wait_net(
        &mut self,
        after_ms: u64,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&NetLine) -> bool,
    ) -> NetLine {
        let line = self
            .vm
            .wait_for_line(timeout, |l| {
                parse_net(l).is_some_and(|n| n.uptime_ms >= after_ms && matches(&n))
            })
            .unwrap_or_else(|e| {
                panic!(
                    "{}: waiting for {what}: {e:#}\n{}",
                    self.name,
                    self.lab.diagnostics()
                )
            });
        parse_net(&line).expect("net line parses")
    }

    fn net_lines(&self) -> Vec<NetLine> {
        self.vm.console().lines().filter_map(parse_net).collect()
    }

    /// Egress policy in force, DHCP address on the uplink.
    fn boot_to_address(&mut self) -> NetLine {
        let line = self
            .vm
            .wait_for_line(BOOT_TIMEOUT, |l| parse_egress(l).is_some())
            .unwrap_or_else(|e| panic!("{}: no egress line: {e:#}", self.name));
        let egress = parse_egress(&line).expect("egress line");
        assert!(
            egress.enforcing,
            "{}: egress policy not enforcing: {line}",
            self.name
        );
        for hook in ["input", "output", "forward"] {
            assert_eq!(
                egress.chains.get(hook).map(String::as_str),
                Some("drop"),
                "{hook}"
            );
        }
        self.wait_net(0, NET_TIMEOUT, "a DHCP address", |n| n.state == "address")
    }

    /// The web server saw a request from `client`.
    fn wait_web_request_from(&self, client: &str, after: usize) -> usize {
        let seen = qemu_tests::machine::wait_until(
            Duration::from_secs(30),
            Duration::from_millis(500),
            || {
                let requests = self.lab.web_requests();
                (requests.len() > after && requests[after..].iter().any(|(c, _)| c == client))
                    .then_some(requests.len())
            },
        );
        seen.unwrap_or_else(|| {
            panic!(
                "{}: the web server logged no request from {client}: {:?}",
                self.name,
                self.lab.web_requests()
            )
        })
    }

    /// Powers off by ACPI, then judges the whole capture.
    fn power_off_and_judge(mut self) -> LeakReport {
        self.vm
            .qmp(&serde_json::json!({"execute": "system_powerdown"}))
            .expect("QMP system_powerdown");
        let exit = self.vm.wait_for_exit(Duration::from_secs(120));
        assert!(exit.is_ok(), "{}: no power-off: {exit:?}", self.name);
        self.vm.keep_console(&self.name).expect("console kept");
        let frames = qemu_tests::pcap::read(&self.capture).expect("capture readable");
        let mac = parse_mac(GUEST_MAC).expect("mac");
        let report = leak_report(&frames, mac, &self.allowed);
        println!(
            "{}: {report} (capture {})",
            self.name,
            self.capture.display()
        );
        assert!(
            report.leaks.is_empty(),
            "{}: packets outside the tunnel: {:?}",
            self.name,
            report.leaks
        );
        assert!(report.dhcp > 0, "{}: no DHCP seen: {report}", self.name);
        report
    }
}

/// Gateway down at boot, then up; the tunnel comes up by itself and carries an
/// HTTPS request; the gateway dies mid-session and comes back; the tunnel comes
/// back by itself. Nothing leaks at any point.
fn late_gateway_cut_and_reconnect(name: &str, gateway: Gateway, waiting_reason: &str) {
    let mut s = Scenario::start(name, gateway, false);
    let address = s.boot_to_address();
    let waiting = s.wait_net(address.uptime_ms, NET_TIMEOUT, "tunnel-waiting", |n| {
        n.state == "tunnel-waiting"
    });
    let reason = waiting.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(waiting_reason),
        "{name}: waiting reason {reason:?}"
    );
    assert!(
        !s.net_lines().iter().any(|n| n.state == "tunnel-up"),
        "{name}: tunnel up without a gateway"
    );

    s.lab.start_gateway().expect("gateway starts");
    let started = Instant::now();
    let up = s.wait_net(waiting.uptime_ms, NET_TIMEOUT, "tunnel-up", |n| {
        n.state == "tunnel-up"
    });
    let up_after_gateway = started.elapsed();
    let inner = up.inner_address.clone().expect("inner address");
    assert!(
        inner.starts_with("10.99.1."),
        "{name}: inner address {inner}"
    );
    let reachable = s.wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
        n.state == "reachable"
    });
    assert_eq!(reachable.status, Some(200));
    let requests = s.wait_web_request_from(&inner, 0);

    // The cut: the gateway dies without a word to the guest.
    s.lab.stop_gateway();
    let lost = s.wait_net(reachable.uptime_ms, NET_TIMEOUT, "tunnel-lost", |n| {
        n.state == "tunnel-lost"
    });
    s.lab.start_gateway().expect("gateway restarts");
    let restarted = Instant::now();
    let again = s.wait_net(lost.uptime_ms, NET_TIMEOUT, "tunnel-up again", |n| {
        n.state == "tunnel-up"
    });
    let reconnect_after_gateway = restarted.elapsed();
    let inner_again = again.inner_address.clone().expect("inner address");
    s.wait_net(again.uptime_ms, NET_TIMEOUT, "reachable again", |n| {
        n.state == "reachable"
    });
    s.wait_web_request_from(&inner_again, requests);
    assert!(s.lab.gateway_running(), "{name}: gateway died");

    let lines = s.net_lines();
    let report = s.power_off_and_judge();
    println!(
        "{name}: DHCP address -> tunnel up {:.1} s (guest clock, gateway started late); \
         gateway started -> tunnel up {:.1} s; cut -> tunnel-lost reported {:.1} s after the last good check; \
         gateway back -> tunnel up {:.1} s (lost -> up {:.1} s guest clock); inner {inner}; \
         {} net lines; packets {}, not allowed {}",
        up.since_address_ms.unwrap_or(0) as f64 / 1000.0,
        up_after_gateway.as_secs_f64(),
        (lost.uptime_ms - reachable.uptime_ms) as f64 / 1000.0,
        reconnect_after_gateway.as_secs_f64(),
        (again.uptime_ms - lost.uptime_ms) as f64 / 1000.0,
        lines.len(),
        report.sent_by_guest,
        report.leaks.len(),
    );
}

/// The gateway answers with a credential the image does not trust: no tunnel,
/// a reason on the console, nothing leaks.
fn wrong_gateway_credential(name: &str, gateway: Gateway, reason_contains: &str) {
    let mut s = Scenario::start(name, gateway, true);
    let address = s.boot_to_address();
    let waiting = s.wait_net(address.uptime_ms, NET_TIMEOUT, "tunnel-waiting", |n| {
        n.state == "tunnel-waiting"
    });
    let reason = waiting.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(reason_contains),
        "{name}: reason {reason:?} does not say {reason_contains:?}"
    );
    // Keep trying for a while: the kiosk retries, never succeeds, never leaks.
    std::thread::sleep(Duration::from_secs(40));
    let lines = s.net_lines();
    assert!(
        !lines
            .iter()
            .any(|n| n.state == "tunnel-up" || n.state == "reachable"),
        "{name}: a tunnel came up: {lines:?}"
    );
    assert!(
        s.lab.web_requests().is_empty(),
        "{name}: the web server was reached"
    );
    let report = s.power_off_and_judge();
    assert!(
        report.to_gateway > 0,
        "{name}: the guest never tried the gateway"
    );
    println!(
        "{name}: reason {reason:?}; packets {}, not allowed {}",
        report.sent_by_guest,
        report.leaks.len()
    );
}

#[test]
fn ipsec_gateway_late_then_cut_and_back() {
    late_gateway_cut_and_reconnect(
        "vpn-ipsec-late-cut",
        Gateway::Ipsec {
            wrong_certificate: false,
        },
        "did not answer",
    );
}

#[test]
fn wireguard_gateway_late_then_cut_and_back() {
    late_gateway_cut_and_reconnect(
        "vpn-wireguard-late-cut",
        Gateway::Wireguard { wrong_key: false },
        "no handshake",
    );
}

#[test]
fn ipsec_wrong_gateway_certificate() {
    wrong_gateway_credential(
        "vpn-ipsec-wrong-cert",
        Gateway::Ipsec {
            wrong_certificate: true,
        },
        "certificate is not trusted",
    );
}

#[test]
fn wireguard_wrong_gateway_key() {
    wrong_gateway_credential(
        "vpn-wireguard-wrong-key",
        Gateway::Wireguard { wrong_key: true },
        "no handshake",
    );
}
