//! Wi-Fi where no cable is: the Wi-Fi test image carries a TEST access point
//! (two `mac80211_hwsim` radios, hostapd on one, bridged to the wired card in
//! a namespace of its own, qemu-tests/configs/conference-wifi.toml). The stick
//! keeps the other radio and no cable: the kiosk's real path runs. iwd scans,
//! the network list shows on the stick's screen, the person chooses with
//! Enter, types a wrong passphrase (refused, the screen says so), goes back to
//! the list with Esc, chooses again and types the right one; networkd takes
//! the address by DHCP over the air, the password round and the tunnel follow
//! as on a cable, the conference page renders through it and its echo call
//! runs (the image's virtual camera and microphone, Janus' echo test). The uplink
//! capture is judged for the Wi-Fi card's address: nothing but DHCP, ARP and
//! the gateway's ports; the wired card's own address sends nothing.

use std::time::Duration;

use qemu_tests::lab::conference_lab::{conference_machine, ConferenceLab};
use qemu_tests::lab::netlab::{Gateway, NetLab, GUEST_MAC};
use qemu_tests::lab::pcap;
use qemu_tests::lab::vpn_session::{VpnSession, BOOT_TIMEOUT, NET_TIMEOUT};
use qemu_tests::machine::qemu::wait_until;
use qemu_tests::OkOrPanic;

const IMAGE: (&str, &str) = ("qemu-tests/configs/conference-wifi.toml", "conference-wifi");
const USER: &str = "alice";
const PASSWORD: &str = "Sommer 2026!";
/// The lab access point's network (qemu-tests/configs/conference-wifi.toml).
const SSID: &str = "stick-lab";
const PASSPHRASE: &str = "Lab passphrase 2026";
/// Chromium's first page under TCG, after the tunnel is up.
const PAGE_TIMEOUT: Duration = Duration::from_secs(300);
/// From the page to media both ways through the echo test (as tests/conference.rs).
const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Audio and video packets each way that make a call.
const MEDIA_PACKETS: u64 = 100;

#[test]
fn the_stick_joins_wifi_chosen_on_its_screen() {
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
    let mut s = VpnSession::start_in("wifi", lab, true, &image, conference_machine).ok_or_panic();
    let conference = ConferenceLab::start(&s.lab).ok_or_panic();

    // The scan's list, on the screen.
    let listed = s
        .wait_event("wifi", 0, BOOT_TIMEOUT, "the lab's network listed", |e| {
            e["state"] == "networks"
                && e["networks"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n["name"] == SSID))
        })
        .ok_or_panic();
    let lab_network = listed["networks"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == SSID).cloned())
        .unwrap_or_default();
    assert_eq!(lab_network["security"], "psk", "{listed}");
    s.screen_shown("wifi-choose", "SBS-WLAN-01", NET_TIMEOUT)
        .ok_or_panic();
    std::thread::sleep(Duration::from_secs(3));
    s.vm.screenshot(&qemu_tests::artifacts_dir().join("screen-wifi-choose.png"))
        .ok_or_panic();
    // The only network is marked: Enter chooses it, its passphrase is asked.
    s.vm.send_keys("ret").ok_or_panic();
    s.screen_shown("wifi-passphrase", "SBS-WLAN-02", NET_TIMEOUT)
        .ok_or_panic();
    s.vm.type_text("not the passphrase").ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let refused = s
        .wait_event(
            "wifi",
            0,
            NET_TIMEOUT,
            "the wrong passphrase refused",
            |e| e["state"] == "refused",
        )
        .ok_or_panic();
    assert_eq!(refused["network"], SSID, "{refused}");
    s.screen_shown("wifi-refused", "SBS-WLAN-04", NET_TIMEOUT)
        .ok_or_panic();
    std::thread::sleep(Duration::from_secs(3));
    s.vm.screenshot(&qemu_tests::artifacts_dir().join("screen-wifi-refused.png"))
        .ok_or_panic();
    // Esc goes back to the list; Enter on the network asks again.
    let refused_at = refused["uptime_ms"].as_u64().unwrap_or(0);
    s.vm.send_keys("esc").ok_or_panic();
    s.screen_shown_since("wifi-choose", "SBS-WLAN-01", refused_at, NET_TIMEOUT)
        .ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    s.screen_shown_since("wifi-passphrase", "SBS-WLAN-02", refused_at, NET_TIMEOUT)
        .ok_or_panic();
    s.vm.type_text(PASSPHRASE).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let joined = s
        .wait_event("wifi", 0, NET_TIMEOUT, "the network joined", |e| {
            e["state"] == "connected"
        })
        .ok_or_panic();
    assert_eq!(joined["network"], SSID, "{joined}");
    let interface = joined["interface"].as_str().unwrap_or_default().to_string();
    let wifi_mac = joined["address"].as_str().unwrap_or_default().to_string();
    assert_ne!(wifi_mac, GUEST_MAC, "{joined}");
    s.judge_frames_from_wifi(&wifi_mac);

    // DHCP over the air, then the password round and the tunnel as on a cable.
    let address = s
        .wait_net(0, NET_TIMEOUT, "a DHCP address on Wi-Fi", |n| {
            n.state == "address"
        })
        .ok_or_panic();
    assert_eq!(
        address.interface.as_deref(),
        Some(interface.as_str()),
        "{address:?}"
    );
    s.screen_shown("enter-password", "SBS-ID-02", NET_TIMEOUT)
        .ok_or_panic();
    s.vm.type_text(PASSWORD).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let up = s
        .wait_net(address.uptime_ms, NET_TIMEOUT, "the tunnel up", |n| {
            n.state == "tunnel-up"
        })
        .ok_or_panic();
    assert_eq!(up.path.as_deref(), Some("udp"), "{up:?}");
    s.wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
        n.state == "reachable"
    })
    .ok_or_panic();
    // The conference page, through the tunnel over the air.
    let rendered = conference
        .wait_report(0, "rendered", None, PAGE_TIMEOUT)
        .ok_or_panic();
    assert_eq!(
        Some(rendered.client.as_str()),
        up.inner_address.as_deref(),
        "the page came through the tunnel"
    );
    // The call: camera and microphone captured, the peer connection up, media
    // both ways through Janus' echo test, and the kiosk sees it flowing.
    let capture_report = conference
        .wait_report(0, "capture", None, CALL_TIMEOUT)
        .ok_or_panic();
    assert!(
        capture_report.detail.contains("audio:") && capture_report.detail.contains("video:"),
        "{capture_report:?}"
    );
    let connection = conference
        .wait_report(0, "connection", Some("connected"), CALL_TIMEOUT)
        .ok_or_panic();
    let media = wait_until(CALL_TIMEOUT, Duration::from_secs(2), || {
        conference
            .janus_media()
            .ok()
            .filter(|m| m.both_ways(MEDIA_PACKETS))
    })
    .unwrap_or_else(|| {
        panic!(
            "no media both ways over Wi-Fi: {:?}; the page's last reports: {:#?}",
            conference.janus_media(),
            conference.last_reports(12)
        )
    });
    let flowing = s
        .wait_event("session", 0, CALL_TIMEOUT, "media flowing", |e| {
            e["state"] == "media" && e["flowing"] == true
        })
        .ok_or_panic();
    s.vm.screenshot(&qemu_tests::artifacts_dir().join("wifi-call.png"))
        .ok_or_panic();
    println!("wifi: {}", conference.microphone_requests());
    println!(
        "wifi: the call: connected {:.1} s after the page; Janus saw audio {} in / {} out, \
         video {} in / {} out; the kiosk saw media flowing at {} ms",
        connection.t - rendered.t,
        media.audio_packets_in,
        media.audio_packets_out,
        media.video_packets_in,
        media.video_packets_out,
        flowing["uptime_ms"]
    );
    println!(
        "wifi: listed at {} ms, joined at {} ms ({} on {interface}), address at {} ms, \
         tunnel up at {} ms ({} ms after the address)",
        listed["uptime_ms"],
        joined["uptime_ms"],
        wifi_mac,
        address.uptime_ms,
        up.uptime_ms,
        up.uptime_ms.saturating_sub(address.uptime_ms)
    );

    let capture = s.capture();
    let report = s.power_off_and_judge().ok_or_panic();
    assert!(
        report.leaks.is_empty(),
        "the stick leaked on Wi-Fi: {report}\n{}",
        report.leaks.join("\n")
    );
    assert!(report.to_gateway > 0 && report.dhcp > 0, "{report}");
    // The access point tells the wire about each association (two here: the
    // refused one and the one that held), no more.
    assert!(report.access_point_updates <= 2, "{report}");
    // The wired card is the access point's bridge port now: it sends nothing
    // of its own.
    let frames = pcap::read(&capture).ok_or_panic();
    let wired = pcap::parse_mac(GUEST_MAC).expect("mac");
    let from_wired = frames
        .iter()
        .filter(|f| f.data.len() >= 12 && f.data[6..12] == wired)
        .count();
    assert_eq!(from_wired, 0, "frames from the wired card's own address");
}

/// The person's home network preset on their stick (`personalize --wifi`): iwd
/// joins it by itself, no list and no passphrase on the screen; the password
/// round and the tunnel follow.
#[test]
fn a_preset_home_network_is_joined_without_a_question() {
    let dir = tempfile::tempdir().expect("tempdir");
    let presets = dir.path().join("wifi.toml");
    std::fs::write(
        &presets,
        format!("[[network]]\nname = \"{SSID}\"\npassphrase = \"{PASSPHRASE}\"\n"),
    )
    .expect("presets");
    let cert = qemu_tests::vpn_fixture("test-stick-a.pem");
    let key = qemu_tests::vpn_fixture("test-stick-a.key");
    let args: [&std::ffi::OsStr; 8] = [
        "--client-cert".as_ref(),
        cert.as_os_str(),
        "--client-key".as_ref(),
        key.as_os_str(),
        "--user".as_ref(),
        USER.as_ref(),
        "--wifi".as_ref(),
        presets.as_os_str(),
    ];
    let image = qemu_tests::personalised_copy(dir.path(), IMAGE, "stick-a", &args).ok_or_panic();
    let mut lab = NetLab::new(Gateway::Ipsec {
        wrong_certificate: false,
        refuses_stick: false,
    })
    .ok_or_panic();
    lab.add_eap_user(USER, PASSWORD);
    let mut s =
        VpnSession::start_in("wifi-preset", lab, true, &image, conference_machine).ok_or_panic();
    let credential = s
        .wait_event("net", 0, BOOT_TIMEOUT, "the credential", |e| {
            e["state"] == "credential"
        })
        .ok_or_panic();
    assert_eq!(credential["wifi_networks"], 1, "{credential}");
    let joined = s
        .wait_event("wifi", 0, NET_TIMEOUT, "the preset joined", |e| {
            e["state"] == "connected"
        })
        .ok_or_panic();
    assert_eq!(joined["network"], SSID, "{joined}");
    s.judge_frames_from_wifi(joined["address"].as_str().unwrap_or_default());
    s.screen_shown("enter-password", "SBS-ID-02", NET_TIMEOUT)
        .ok_or_panic();
    s.vm.type_text(PASSWORD).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let up = s
        .wait_net(0, NET_TIMEOUT, "the tunnel up", |n| n.state == "tunnel-up")
        .ok_or_panic();
    let (report, console) = s.power_off_with_console().ok_or_panic();
    let screens = qemu_tests::lab::vpn_session::screens_shown(&console);
    for asked in ["wifi-passphrase", "wifi-refused"] {
        assert!(
            !screens.iter().any(|s| s == asked),
            "the preset network still asked ({asked}): {screens:?}"
        );
    }
    assert!(
        report.leaks.is_empty(),
        "the stick leaked on Wi-Fi: {report}"
    );
    println!(
        "wifi-preset: joined at {} ms, tunnel up at {} ms; screens {screens:?}",
        joined["uptime_ms"], up.uptime_ms
    );
}
