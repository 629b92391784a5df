//! The tunnel where the PC's network lets no UDP out (hotel and guest networks
//! that open only TCP 80/443): the stick tries UDP, gets no answer, and turns
//! to stick-relay beside the gateway, saying so on its screen. At first the
//! network also holds everything behind a captive portal: the relay gets no
//! answer either, the stick offers the network's sign-in page (F8), which opens
//! in the throwaway browser (its own account and network namespace); the lab's
//! form is posted with Enter, F8 closes and wipes it. Once the relay runs, the
//! same IPsec tunnel, password round included, comes up in TLS on TCP 443.
//! Then, in the same boot, the relay goes away and UDP opens: the stick comes
//! back by UDP. The uplink capture is judged (TCP to the relay is the only new
//! thing allowed), and the round trips of the tunnel's exchanges on the wire
//! are compared, relay against UDP.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qemu_tests::lab::conference_lab::{conference_machine, CONFERENCE_IMAGE};
use qemu_tests::lab::netlab::{Gateway, NetLab, GATEWAY, GUEST_MAC, RELAY};
use qemu_tests::lab::pcap;
use qemu_tests::lab::vpn_session::{screens_shown, VpnSession, BOOT_TIMEOUT, NET_TIMEOUT};
use qemu_tests::machine::qemu::wait_until;
use qemu_tests::machine::screen::Region;
use qemu_tests::machine::serial::NetLine;
use qemu_tests::OkOrPanic;

const IMAGE: (&str, &str) = (
    "qemu-tests/configs/conference-ipsec.toml",
    "conference-ipsec",
);
const USER: &str = "alice";
const PASSWORD: &str = "Sommer 2026!";
/// How long the tunnel's exchanges are sampled on each path.
const SAMPLE: Duration = Duration::from_secs(30);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Waits for the tunnel up after `after_ms` (guest uptime), checks it took
/// `path`, then waits for `check-url` to answer through it; the tunnel-up line.
fn up_and_reachable(s: &mut VpnSession, after_ms: u64, path: &str) -> NetLine {
    let up = s
        .wait_net(after_ms, NET_TIMEOUT, "the tunnel up", |n| {
            n.state == "tunnel-up"
        })
        .ok_or_panic();
    assert_eq!(up.path.as_deref(), Some(path), "{up:?}");
    s.wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
        n.state == "reachable"
    })
    .ok_or_panic();
    up
}

/// Judges `frames` (a window while the tunnel ran by the relay): the stick sent
/// TCP to the relay and nothing else (ARP and DHCP aside); the window's report.
fn only_tcp_to_the_relay(frames: &[pcap::Frame], mac: [u8; 6]) -> pcap::LeakReport {
    let allowed = pcap::AllowedEgress {
        gateway: GATEWAY,
        gateway_udp_ports: vec![],
        gateway_esp: false,
        relay: Some((RELAY, qemu_tests::lab::netlab::RELAY_PORT)),
        portal_open: vec![],
        access_point: false,
    };
    let report = pcap::leak_report(frames, mac, &allowed);
    assert!(
        report.leaks.is_empty() && report.to_relay > 0,
        "while the tunnel ran by the relay, the stick sent more than TCP to it: {report}"
    );
    report
}

/// The sign-in strip's colour (the stick's amber, `overlay::full_screen`).
const STRIP_AMBER: [u8; 3] = [0xe0, 0xa0, 0x00];
/// The lab's sign-in page: black on white.
const PAGE_WHITE: [u8; 3] = [0xff, 0xff, 0xff];
/// The sign-in page may take this long to load in the throwaway browser (TCG;
/// stop 32's CI, beside the conference scenario: not within 180 s).
const PORTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// What the sign-in phase saw.
struct PortalPhase {
    /// The portal's client address (the stick's, masqueraded).
    client: String,
    /// Share of the strip over the top of the screen in the stick's amber.
    strip: f64,
    open_ms: u64,
    /// The names the sign-in browser asked the network's resolver for.
    names: Vec<String>,
}

/// From the screen that offers the sign-in page: F8 opens it, the lab's form
/// is posted with Enter, F8 closes it; checks the page ran in its own
/// namespace behind the stick's address, no tunnel attempt was made
/// meanwhile, and nothing of it is left.
fn sign_in_through_the_portal(s: &mut VpnSession, since_ms: u64) -> PortalPhase {
    s.screen_shown_since("vpn-no-answer", "SBS-VPN-05", since_ms, NET_TIMEOUT)
        .ok_or_panic();
    let from = now();
    s.vm.send_keys("f8").ok_or_panic();
    let opened = s
        .wait_event("portal-opened", 0, NET_TIMEOUT, "the sign-in page", |_| {
            true
        })
        .ok_or_panic();
    assert_eq!(opened["uid"], 902, "not the portal account: {opened}");
    assert_eq!(opened["namespace"], "stick-portal", "{opened}");
    s.wait_screen_shown("portal-open", NET_TIMEOUT)
        .ok_or_panic();
    let form = wait_until(PORTAL_TIMEOUT, Duration::from_secs(1), || {
        let log = s.lab.portal_log();
        log.lines()
            .find(|l| l.starts_with("get ") && l.ends_with("/login"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| {
        panic!(
            "the sign-in form was never asked for:
{}",
            s.lab.diagnostics()
        )
    });
    let client = form
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    // The page on the screen, under the strip: Enter is pressed only once the
    // window shows it (under load, Chromium may paint its window many seconds
    // after the request; a key before that is lost).
    let shot = qemu_tests::artifacts_dir().join("screen-portal-open.png");
    let screen = wait_until(PORTAL_TIMEOUT, Duration::from_secs(2), || {
        let screen = s.vm.screen().ok()?;
        let page = Region {
            x: 0,
            y: 300,
            width: screen.width,
            height: screen.height.saturating_sub(300),
        };
        (screen.share_in(page, PAGE_WHITE, 3) > 0.5).then_some(screen)
    })
    .unwrap_or_else(|| {
        let _ = s.vm.screenshot(&shot);
        panic!("the sign-in page never showed ({})", shot.display())
    });
    s.vm.screenshot(&shot).ok_or_panic();
    let strip_region = Region {
        x: 0,
        y: 0,
        width: screen.width,
        height: 56,
    };
    let strip = screen.share_in(strip_region, STRIP_AMBER, 3);
    assert!(
        strip > 0.6,
        "no sign-in strip over the page ({strip:.2}, {})",
        shot.display()
    );
    s.vm.send_keys("ret").ok_or_panic();
    wait_until(PORTAL_TIMEOUT, Duration::from_secs(1), || {
        s.lab
            .portal_log()
            .contains(&format!("signed-in {client}"))
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the form was not posted:
{}",
            s.lab.diagnostics()
        )
    });
    std::thread::sleep(Duration::from_secs(5));
    s.vm.screenshot(&qemu_tests::artifacts_dir().join("portal-signed-in.png"))
        .ok_or_panic();
    s.vm.send_keys("f8").ok_or_panic();
    let closed = s
        .wait_event(
            "portal-closed",
            0,
            NET_TIMEOUT,
            "the sign-in page closed",
            |_| true,
        )
        .ok_or_panic();
    s.allow_portal(from, now());
    assert!(
        closed["reason"].as_str().is_some_and(|r| r.contains("F8")),
        "{closed}"
    );
    for wiped in [
        "profile_removed",
        "namespace_removed",
        "link_removed",
        "forwarding_off",
    ] {
        assert_eq!(closed[wiped], true, "{wiped}: {closed}");
    }
    assert_eq!(closed["left"], serde_json::json!([]), "{closed}");
    // The page came from the stick's own address on the PC's network (the
    // namespace's traffic masqueraded), and asked the network's resolver.
    assert!(client.starts_with("10.20.0."), "the portal saw {client}");
    let log = s.lab.portal_log();
    assert!(
        log.contains(&format!("dns {client} portal-check.test")),
        "no DNS question for the start page:
{log}"
    );
    // No tunnel attempt while it was open.
    let (open_at, closed_at) = (
        opened["uptime_ms"].as_u64().unwrap_or(0),
        closed["uptime_ms"].as_u64().unwrap_or(u64::MAX),
    );
    let during: Vec<_> = s
        .net_lines()
        .into_iter()
        .filter(|n| {
            n.state == "tunnel-connecting" && n.uptime_ms > open_at && n.uptime_ms < closed_at
        })
        .collect();
    assert!(
        during.is_empty(),
        "tunnel attempts while the sign-in page was open: {during:?}"
    );
    let names = asked_names(&log);
    for own in ["accounts.google.com", "update.googleapis.com"] {
        assert!(
            !names.iter().any(|n| n == own),
            "the sign-in browser asked for {own}: {names:?}"
        );
    }
    PortalPhase {
        client,
        strip,
        open_ms: closed["open_ms"].as_u64().unwrap_or(0),
        names,
    }
}

/// The names in the portal log's DNS questions, each once, in order.
fn asked_names(log: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in log
        .lines()
        .filter_map(|l| l.strip_prefix("dns "))
        .filter_map(|l| l.split_whitespace().nth(1))
    {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// The relay's UDP port towards the gateway, from its `switched, udp ADDR:PORT ->` line.
fn relay_udp_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("switched, udp "))?;
    let (_, rest) = line.split_once("switched, udp ")?;
    let (local, _) = rest.split_once(" ->")?;
    local.rsplit_once(':')?.1.parse().ok()
}

#[test]
fn the_tunnel_takes_the_relay_where_no_udp_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image =
        qemu_tests::personalised_ipsec_copy(dir.path(), IMAGE, "stick-a", "test-stick-a", USER)
            .ok_or_panic();
    let mut lab = NetLab::new(Gateway::Ipsec {
        wrong_certificate: false,
        refuses_stick: false,
    })
    .ok_or_panic();
    lab.add_eap_user(USER, PASSWORD);
    lab.place_relay().ok_or_panic();
    lab.block_udp(true).ok_or_panic();
    lab.start_portal().ok_or_panic();
    let mut s = VpnSession::start_in("relay", lab, true, &image, conference_machine).ok_or_panic();
    s.screen_shown("enter-password", "SBS-ID-02", BOOT_TIMEOUT)
        .ok_or_panic();
    s.vm.type_text(PASSWORD).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();

    // UDP first: no answer through this network.
    let by_udp = s
        .wait_net(0, NET_TIMEOUT, "an attempt by UDP", |n| {
            n.state == "tunnel-connecting" && n.path.as_deref() == Some("udp")
        })
        .ok_or_panic();
    let no_answer = s
        .wait_net(by_udp.uptime_ms, NET_TIMEOUT, "no answer by UDP", |n| {
            n.state == "tunnel-waiting"
                && n.reason
                    .as_deref()
                    .is_some_and(|r| r.contains("did not answer"))
        })
        .ok_or_panic();
    let by_relay = s
        .wait_net(
            no_answer.uptime_ms,
            NET_TIMEOUT,
            "an attempt by the relay",
            |n| n.state == "tunnel-connecting" && n.path.as_deref() == Some("relay"),
        )
        .ok_or_panic();
    let cover = s
        .screen_shown("vpn-connecting-relay", "SBS-VPN-04", NET_TIMEOUT)
        .ok_or_panic();
    // The portal holds the relay's TCP too: the stick says so, and offers the
    // network's sign-in page.
    let relay_down = s
        .wait_net(
            by_relay.uptime_ms,
            NET_TIMEOUT,
            "no answer from the relay",
            |n| {
                n.state == "tunnel-waiting"
                    && n.reason.as_deref().is_some_and(|r| r.contains("relay"))
            },
        )
        .ok_or_panic();
    let portal = sign_in_through_the_portal(&mut s, relay_down.uptime_ms);
    // Signed in; nothing listens at the relay yet: refused, then UDP again.
    let refused = s
        .wait_net(
            relay_down.uptime_ms,
            NET_TIMEOUT,
            "the relay refused",
            |n| {
                n.state == "tunnel-waiting"
                    && n.reason
                        .as_deref()
                        .is_some_and(|r| r.contains("relay") && r.contains("refused"))
            },
        )
        .ok_or_panic();
    s.lab.start_relay().ok_or_panic();
    let udp_again = s
        .wait_net(refused.uptime_ms, NET_TIMEOUT, "UDP again", |n| {
            n.state == "tunnel-connecting" && n.path.as_deref() == Some("udp")
        })
        .ok_or_panic();
    let up = up_and_reachable(&mut s, udp_again.uptime_ms, "relay");
    let relay_from = now();
    std::thread::sleep(SAMPLE);
    let relay_to = now();
    // The gateway met the stick at the relay's UDP port (the relay logs it).
    let relay_log = s.lab.log("relay.out");
    let relay_port = relay_udp_port(&relay_log)
        .unwrap_or_else(|| panic!("the relay switched no session:\n{relay_log}"));
    let gateway_log = s.lab.log("charon.log");
    assert!(
        gateway_log.contains(&format!("received EAP identity '{USER}'"))
            && gateway_log.contains(&format!("[{relay_port}]")),
        "the gateway's log names neither {USER} nor the relay's port {relay_port}:\n{gateway_log}"
    );

    // The relay goes away, UDP opens: the stick comes back by UDP by itself.
    s.lab.stop_relay();
    s.lab.block_udp(false).ok_or_panic();
    let lost = s
        .wait_net(up.uptime_ms, NET_TIMEOUT, "the tunnel lost", |n| {
            n.state == "tunnel-lost"
        })
        .ok_or_panic();
    up_and_reachable(&mut s, lost.uptime_ms, "udp");
    let udp_from = now();
    std::thread::sleep(SAMPLE);
    let udp_to = now();

    let capture = s.capture();
    let (report, console) = s.power_off_with_console().ok_or_panic();
    assert!(report.leaks.is_empty(), "outside the tunnel: {report}");
    assert!(report.to_relay > 0, "nothing went to the relay: {report}");
    assert!(
        report.to_portal > 0,
        "nothing went to the sign-in page: {report}"
    );
    let frames = pcap::read(&capture).ok_or_panic();
    let mac = pcap::parse_mac(GUEST_MAC).expect("mac");
    let relay_window = pcap::between(&frames, relay_from, relay_to);
    let on_relay = only_tcp_to_the_relay(&relay_window, mac);
    let relay_trips = pcap::exchange_round_trips(&relay_window, mac, RELAY);
    let udp_window = pcap::between(&frames, udp_from, udp_to);
    let udp_trips = pcap::exchange_round_trips(&udp_window, mac, GATEWAY);
    assert!(
        relay_trips.len() >= 3 && udp_trips.len() >= 3,
        "too few exchanges to compare: {} by the relay, {} by UDP",
        relay_trips.len(),
        udp_trips.len()
    );
    let (relay_ms, udp_ms) = (
        pcap::median(&relay_trips) * 1000.0,
        pcap::median(&udp_trips) * 1000.0,
    );
    println!(
        "relay: UDP got no answer ({:?}), the relay's screen covered {cover:.2}, behind the portal: \
         {:?}; the sign-in page open {:.1} s from {}, strip {:.2}, names asked {:?}; the relay down: {:?}; tunnel up by the relay {:.1} s after the address; after the relay went and UDP opened, up again by UDP. \
         While on the relay: {on_relay}. Round trips on the wire (median): relay {relay_ms:.1} ms \
         ({} exchanges), UDP {udp_ms:.1} ms ({} exchanges), the relay adds {:.1} ms. Whole boot: \
         {report}. Screens {:?}",
        no_answer.reason.unwrap_or_default(),
        relay_down.reason.unwrap_or_default(),
        portal.open_ms as f64 / 1000.0,
        portal.client,
        portal.strip,
        portal.names,
        refused.reason.unwrap_or_default(),
        up.since_address_ms.unwrap_or(0) as f64 / 1000.0,
        relay_trips.len(),
        udp_trips.len(),
        relay_ms - udp_ms,
        screens_shown(&console)
    );
}

/// WireGuard on the conference image, every UDP packet dropped: no handshake by
/// UDP, so the stick points WireGuard at the relay client; the handshake and
/// the checks run through the relay, and only TCP to it leaves the stick.
#[test]
fn wireguard_takes_the_relay_too() {
    let built = qemu_tests::built_image(CONFERENCE_IMAGE.0, CONFERENCE_IMAGE.1).ok_or_panic();
    let mut lab = NetLab::new(Gateway::Wireguard { wrong_key: false }).ok_or_panic();
    lab.start_relay().ok_or_panic();
    lab.block_udp(true).ok_or_panic();
    let mut s = VpnSession::start_in(
        "relay-wireguard",
        lab,
        true,
        &built.image,
        conference_machine,
    )
    .ok_or_panic();
    let address = s.boot_to_address().ok_or_panic();
    let by_relay = s
        .wait_net(
            address.uptime_ms,
            NET_TIMEOUT,
            "WireGuard by the relay",
            |n| n.state == "tunnel-connecting" && n.path.as_deref() == Some("relay"),
        )
        .ok_or_panic();
    let up = up_and_reachable(&mut s, by_relay.uptime_ms, "relay");
    let from = now();
    std::thread::sleep(Duration::from_secs(20));
    let to = now();
    let capture = s.capture();
    let (report, _) = s.power_off_with_console().ok_or_panic();
    assert!(report.leaks.is_empty(), "outside the tunnel: {report}");
    let frames = pcap::read(&capture).ok_or_panic();
    let mac = pcap::parse_mac(GUEST_MAC).expect("mac");
    let on_relay = only_tcp_to_the_relay(&pcap::between(&frames, from, to), mac);
    println!(
        "relay-wireguard: no handshake by UDP, by the relay {:.1} s after the address, tunnel \
         up {:.1} s later; while on the relay: {on_relay}; whole boot: {report}",
        (by_relay.uptime_ms - address.uptime_ms) as f64 / 1000.0,
        (up.uptime_ms - by_relay.uptime_ms) as f64 / 1000.0,
    );
}
