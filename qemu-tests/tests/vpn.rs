//! VPN and kill switch, against real peers in network namespaces (lab/netlab.rs): a
//! DHCP server on the PC's LAN, a strongSwan or WireGuard gateway, and an HTTPS
//! server behind it. Every frame the guest sends on its uplink, from power-on to
//! power-off, is captured by QEMU and judged: ARP, DHCP, or IKE/NAT-T/WireGuard to
//! the gateway; anything else fails the test.

use std::time::{Duration, Instant};

use qemu_tests::lab::netlab::Gateway;
use qemu_tests::lab::pcap::LeakReport;
use qemu_tests::lab::vpn_session::{VpnSession, NET_TIMEOUT};
use qemu_tests::machine::serial::parse_event;

/// Test failures print the whole error chain (console and lab logs included).
trait OkOrPanic<T> {
    fn ok_or_panic(self) -> T;
}

impl<T> OkOrPanic<T> for anyhow::Result<T> {
    fn ok_or_panic(self) -> T {
        self.unwrap_or_else(|e| panic!("{e:#}"))
    }
}

fn judged(session: VpnSession) -> LeakReport {
    let name = session.name.clone();
    let report = session.power_off_and_judge().ok_or_panic();
    assert!(
        report.leaks.is_empty(),
        "{name}: packets outside the tunnel: {:?}",
        report.leaks
    );
    assert!(report.dhcp > 0, "{name}: no DHCP seen: {report}");
    assert!(
        report.to_gateway > 0,
        "{name}: the guest never tried the gateway"
    );
    report
}

/// Gateway down at boot, then up; the tunnel comes up by itself and carries an
/// HTTPS request; the gateway dies mid-session and comes back; the tunnel comes
/// back by itself; for IPsec the gateway then deletes the SA, and the tunnel comes
/// back again. Nothing leaks at any point.
fn late_gateway_cut_and_reconnect(name: &str, gateway: Gateway, waiting_reason: &str) {
    let ipsec = matches!(gateway, Gateway::Ipsec { .. });
    let mut s = VpnSession::start(name, gateway, false).ok_or_panic();
    let waiting = s.boot_to_tunnel_waiting().ok_or_panic();
    let reason = waiting.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(waiting_reason),
        "{name}: waiting reason {reason:?}"
    );
    assert!(
        !s.net_lines().iter().any(|n| n.state == "tunnel-up"),
        "{name}: tunnel up without a gateway"
    );

    s.lab.start_gateway().ok_or_panic();
    let started = Instant::now();
    let up = s
        .wait_net(waiting.uptime_ms, NET_TIMEOUT, "tunnel-up", |n| {
            n.state == "tunnel-up"
        })
        .ok_or_panic();
    let up_after_gateway = started.elapsed();
    let inner = up.inner_address.clone().expect("inner address");
    assert!(
        inner.starts_with("10.99.1."),
        "{name}: inner address {inner}"
    );
    if ipsec {
        // The conference account's only route leaves from the virtual IP
        // (kiosk/src/network/session_route.rs); WireGuard's is static.
        let routes: Vec<serde_json::Value> =
            s.vm.console()
                .lines()
                .filter_map(|l| parse_event(l, "session_route"))
                .collect();
        assert!(
            routes.iter().any(|r| r["src"] == inner.as_str()),
            "{name}: the session's route from {inner}: {routes:?}"
        );
    }
    let reachable = s
        .wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
            n.state == "reachable"
        })
        .ok_or_panic();
    assert_eq!(reachable.status, Some(200));
    let requests = s.wait_web_request_from(&inner, 0).ok_or_panic();

    // The cut: the gateway dies without a word to the guest.
    s.lab.stop_gateway();
    let lost = s
        .wait_net(reachable.uptime_ms, NET_TIMEOUT, "tunnel-lost", |n| {
            n.state == "tunnel-lost"
        })
        .ok_or_panic();
    s.lab.start_gateway().ok_or_panic();
    let restarted = Instant::now();
    let again = s
        .wait_net(lost.uptime_ms, NET_TIMEOUT, "tunnel-up again", |n| {
            n.state == "tunnel-up"
        })
        .ok_or_panic();
    let reconnect_after_gateway = restarted.elapsed();
    let inner_again = again.inner_address.clone().expect("inner address");
    s.wait_net(again.uptime_ms, NET_TIMEOUT, "reachable again", |n| {
        n.state == "reachable"
    })
    .ok_or_panic();
    let requests = s
        .wait_web_request_from(&inner_again, requests)
        .ok_or_panic();
    assert!(s.lab.gateway_running(), "{name}: gateway died");

    // IPsec only: the gateway deletes the SA and says so; the kiosk reconnects.
    let mut sa_deleted_to_up = None;
    if let Gateway::Ipsec { .. } = gateway {
        let last = s.net_lines().last().map(|n| n.uptime_ms).unwrap_or(0);
        s.lab.delete_ipsec_sa().ok_or_panic();
        let deleted = Instant::now();
        let lost = s
            .wait_net(
                last,
                NET_TIMEOUT,
                "tunnel-lost after the SA was deleted",
                |n| n.state == "tunnel-lost",
            )
            .ok_or_panic();
        let up = s
            .wait_net(
                lost.uptime_ms,
                NET_TIMEOUT,
                "tunnel-up after the SA was deleted",
                |n| n.state == "tunnel-up",
            )
            .ok_or_panic();
        sa_deleted_to_up = Some(deleted.elapsed());
        let inner = up.inner_address.clone().expect("inner address");
        s.wait_web_request_from(&inner, requests).ok_or_panic();
    }

    let lines = s.net_lines();
    let report = judged(s);
    println!(
        "{name}: gateway started -> tunnel up {:.1} s; cut -> tunnel-lost {:.1} s after the \
         last good check; gateway back -> tunnel up {:.1} s (lost -> up {:.1} s, guest clock); \
         SA deleted by the gateway -> tunnel up again {}; \
         inner {inner}; {} net lines; packets {}, not allowed {}",
        up_after_gateway.as_secs_f64(),
        (lost.uptime_ms - reachable.uptime_ms) as f64 / 1000.0,
        reconnect_after_gateway.as_secs_f64(),
        (again.uptime_ms - lost.uptime_ms) as f64 / 1000.0,
        sa_deleted_to_up.map_or("n/a".to_string(), |d| format!("{:.1} s", d.as_secs_f64())),
        lines.len(),
        report.sent_by_guest,
        report.leaks.len(),
    );
}

/// The gateway answers with a credential the image does not trust: no tunnel,
/// a reason on the console, nothing leaks.
fn wrong_gateway_credential(name: &str, gateway: Gateway, reason_contains: &str) {
    let mut s = VpnSession::start(name, gateway, true).ok_or_panic();
    let waiting = s.boot_to_tunnel_waiting().ok_or_panic();
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
    let report = judged(s);
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
            refuses_stick: false,
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
            refuses_stick: false,
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
