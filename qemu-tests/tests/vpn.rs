//! VPN and kill switch, against real peers in network namespaces (lab/netlab.rs): a
//! DHCP server on the PC's LAN, a strongSwan or WireGuard gateway, and an HTTPS
//! server behind it. Every frame the guest sends on its uplink, from power-on to
//! power-off, is captured by QEMU and judged: ARP, DHCP, or IKE/NAT-T/WireGuard to
//! the gateway; anything else fails the test.

use std::time::{Duration, Instant};

use qemu_tests::lab::lab_ca;
use qemu_tests::lab::netlab::Gateway;
use qemu_tests::lab::pcap::LeakReport;
use qemu_tests::lab::vpn_session::{VpnSession, NET_TIMEOUT};
use qemu_tests::machine::serial::parse_event;
use qemu_tests::OkOrPanic;

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

/// A copy of the personal test image `(config, out)` (no credential in it),
/// personalised as `stick_id` with `credential` (personalize's options).
fn personal_stick(
    dir: &std::path::Path,
    image: (&str, &str),
    stick_id: &str,
    credential: &[&std::ffi::OsStr],
) -> std::path::PathBuf {
    qemu_tests::personalised_copy(dir, image, stick_id, credential).ok_or_panic()
}

/// A TEST fixture of qemu-tests/fixtures/vpn.
fn fixture(name: &str) -> std::path::PathBuf {
    qemu_tests::vpn_fixture(name)
}

/// Boots `image` on `gateway`'s lab to a tunnel that carries the check; the
/// stick's `credential` line and `tunnel-up` line; nothing leaks.
fn boot_personal(
    name: &str,
    gateway: Gateway,
    image: &std::path::Path,
    stick_id: &str,
) -> (VpnSession, qemu_tests::machine::serial::NetLine) {
    let lab = qemu_tests::lab::netlab::NetLab::new(gateway).ok_or_panic();
    boot_personal_in(name, lab, image, stick_id)
}

/// [`boot_personal`] in a lab the caller prepared.
fn boot_personal_in(
    name: &str,
    lab: qemu_tests::lab::netlab::NetLab,
    image: &std::path::Path,
    stick_id: &str,
) -> (VpnSession, qemu_tests::machine::serial::NetLine) {
    let mut s = VpnSession::start_in(name, lab, true, image, |_| {}).ok_or_panic();
    let credential = s
        .wait_net(
            0,
            qemu_tests::lab::vpn_session::BOOT_TIMEOUT,
            "the credential",
            |n| n.state == "credential",
        )
        .ok_or_panic();
    assert_eq!(credential.stick_id.as_deref(), Some(stick_id), "{name}");
    let up = s
        .wait_net(credential.uptime_ms, NET_TIMEOUT, "tunnel-up", |n| {
            n.state == "tunnel-up"
        })
        .ok_or_panic();
    s.wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
        n.state == "reachable"
    })
    .ok_or_panic();
    println!(
        "{name}: credential of {stick_id} from {:?}; tunnel up, inner address {:?}",
        credential.partition, up.inner_address
    );
    (s, up)
}

/// The image of personal sticks: IPsec, no client credential (config, output folder).
const PERSONAL_IMAGE: (&str, &str) = (
    "qemu-tests/configs/ipsec-personal.toml",
    "vpn-ipsec-personal",
);

/// The image of personal WireGuard sticks: no key or address in it.
const WIREGUARD_PERSONAL_IMAGE: (&str, &str) = (
    "qemu-tests/configs/wireguard-personal.toml",
    "vpn-wireguard-personal",
);
/// The conference image whose key is on the person's smartcard (the token
/// scenario of tests/identity.rs boots it).
const TOKEN_IMAGE: (&str, &str) = (
    "qemu-tests/configs/conference-token.toml",
    "conference-token",
);

/// Two sticks personalised from one signed image connect with their own
/// certificates (the gateway's log names both). Then stick-b is revoked while
/// it is connected: the gateway loads the CRL and ends its SA; stick-b gets no
/// tunnel again, and stick-a, booted again on that gateway, still does. A stick
/// never personalised gets no network at all. Nothing leaks.
#[test]
fn personal_sticks_connect_with_their_own_identity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ipsec = Gateway::Ipsec {
        wrong_certificate: false,
        refuses_stick: false,
    };
    let mut images = Vec::new();
    for (stick_id, name) in [("stick-a", "test-stick-a"), ("stick-b", "test-stick-b")] {
        let cert = fixture(&format!("{name}.pem"));
        let key = fixture(&format!("{name}.key"));
        let image = personal_stick(
            dir.path(),
            PERSONAL_IMAGE,
            stick_id,
            &[
                "--client-cert".as_ref(),
                cert.as_os_str(),
                "--client-key".as_ref(),
                key.as_os_str(),
            ],
        );
        images.push(image);
    }
    let subject_a = "CN=stick-a.test";
    let (s, _) = boot_personal("vpn-personal-stick-a", ipsec, &images[0], "stick-a");
    assert!(
        s.lab.log("charon.log").contains(subject_a),
        "the gateway's log does not name {subject_a}"
    );
    println!(
        "vpn-personal-stick-a: the gateway saw {subject_a}; {}",
        judged(s)
    );

    // stick-b connects, then is revoked while connected.
    let run = "vpn-personal-stick-b";
    let subject_b = "CN=stick-b.test";
    let (mut s, up) = boot_personal(run, ipsec, &images[1], "stick-b");
    assert!(
        s.lab.log("charon.log").contains(subject_b),
        "{run}: the gateway's log does not name {subject_b}"
    );
    let last = s.net_lines().last().map_or(up.uptime_ms, |n| n.uptime_ms);
    let crl = s.lab.revoke("test-stick-b.pem").ok_or_panic();
    let lost = s
        .wait_net(last, NET_TIMEOUT, "tunnel-lost after revocation", |n| {
            n.state == "tunnel-lost"
        })
        .ok_or_panic();
    let refused = s
        .wait_net(
            lost.uptime_ms,
            NET_TIMEOUT,
            "refused after revocation",
            |n| {
                n.state == "tunnel-waiting"
                    && n.reason
                        .as_deref()
                        .is_some_and(|r| r.contains("AUTHENTICATION_FAILED"))
            },
        )
        .ok_or_panic();
    // The kiosk keeps trying; the gateway keeps refusing.
    std::thread::sleep(Duration::from_secs(30));
    let after: Vec<_> = s
        .net_lines()
        .into_iter()
        .filter(|n| n.uptime_ms > lost.uptime_ms && n.state == "tunnel-up")
        .collect();
    assert!(
        after.is_empty(),
        "{run}: a tunnel after revocation: {after:?}"
    );
    let charon = s.lab.log("charon.log");
    let revoked_line = charon
        .lines()
        .find(|l| l.contains("revoked"))
        .unwrap_or_else(|| panic!("{run}: the gateway's log names no revoked certificate"))
        .to_string();
    println!(
        "{run}: the gateway saw {subject_b}; revoked (CRL {}): tunnel lost, then {:?}; \
         gateway: {}; {}",
        crl.display(),
        refused.reason.clone().unwrap_or_default(),
        revoked_line.trim(),
        judged(s)
    );

    // stick-a on a gateway that holds the CRL: still in.
    let mut lab = qemu_tests::lab::netlab::NetLab::new(ipsec).ok_or_panic();
    lab.revoke("test-stick-b.pem").ok_or_panic();
    let run = "vpn-personal-stick-a-after";
    let (s, _) = boot_personal_in(run, lab, &images[0], "stick-a");
    let listed = s.lab.gateway_crls().ok_or_panic();
    let serial_b = lab_ca::serial(&fixture("test-stick-b.pem")).ok_or_panic();
    assert!(
        listed.contains(&lab_ca::colon_hex(&serial_b)),
        "{run}: the gateway's CRLs do not list stick-b ({serial_b}): {listed}"
    );
    println!(
        "{run}: stick-a still connects with stick-b revoked; {}",
        judged(s)
    );

    // The same image, never personalised: no credential, no network.
    let built = qemu_tests::built_image(PERSONAL_IMAGE.0, PERSONAL_IMAGE.1).ok_or_panic();
    let mut s =
        VpnSession::start_on("vpn-personal-none", ipsec, true, &built.image, |_| {}).ok_or_panic();
    let disabled = s
        .wait_net(
            0,
            qemu_tests::lab::vpn_session::BOOT_TIMEOUT,
            "disabled",
            |n| n.state == "disabled",
        )
        .ok_or_panic();
    let reason = disabled.reason.unwrap_or_default();
    assert!(reason.contains("never personalised"), "{reason}");
    std::thread::sleep(Duration::from_secs(10));
    let report = s.power_off_and_judge().ok_or_panic();
    assert!(
        report.leaks.is_empty() && report.sent_by_guest == 0,
        "a stick without a credential sent packets: {report}"
    );
    println!("vpn-personal-none: {reason}; {report}");
}

/// What a scan of an image's root, ESP and manifest finds that looks like a
/// private key: PEM private keys, and the WireGuard test key's text.
fn private_keys_in(image: &std::path::Path) -> Vec<String> {
    use image_builder::disk::gpt::{GptTable, ROOT_X86_64_TYPE};
    use std::io::{Read, Seek, SeekFrom};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = std::fs::File::open(image).expect("image");
    let table = GptTable::read_from(&mut file).expect("gpt");
    let root = table.find(ROOT_X86_64_TYPE).expect("root partition");
    let mut squashfs = vec![0u8; root.size() as usize];
    file.seek(SeekFrom::Start(root.offset())).expect("seek");
    file.read_exact(&mut squashfs).expect("root");
    let squashfs_path = dir.path().join("root.sqfs");
    std::fs::write(&squashfs_path, &squashfs).expect("root copy");
    let tree = dir.path().join("root");
    qemu_tests::run_tool(
        std::process::Command::new("rdsquashfs")
            .args(["--unpack-path", "/", "--no-dev", "--no-sock", "--no-fifo"])
            .args(["--no-slink", "--unpack-root"])
            .arg(&tree)
            .arg(&squashfs_path),
    )
    .ok_or_panic();
    let wireguard_key = std::fs::read_to_string(
        qemu_tests::workspace_root().join("qemu-tests/fixtures/vpn/test-wg-client.key"),
    )
    .expect("wg test key");
    // Shared libraries carry public test vectors: GnuTLS' self-tests hold PEM
    // private keys (libgnutls comes with Chromium's printing stack and with
    // libcurl). A stick's credential is never an ELF file, so PEM keys count in
    // every other file; the WireGuard test key counts everywhere.
    let looks_like_key = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let elf = bytes.starts_with(b"\x7fELF");
        (!elf && pem_private_key(&text)) || text.contains(wireguard_key.trim())
    };
    let mut found = Vec::new();
    let mut stack = vec![tree.clone()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if meta.is_file() && std::fs::read(&path).is_ok_and(|b| looks_like_key(&b)) {
            found.push(
                path.strip_prefix(&tree)
                    .expect("inside")
                    .display()
                    .to_string(),
            );
        }
    }
    let esp = image_builder::commands::verify::read_esp(image).expect("ESP");
    for esp_file in &esp.files {
        if looks_like_key(&esp_file.contents) {
            found.push(format!("ESP {}", esp_file.path));
        }
    }
    found.sort();
    found
}

/// Whether `text` holds a PEM private key: a `-----BEGIN ... PRIVATE KEY-----`
/// line followed by base64 (programs that parse PEM hold the marker alone).
fn pem_private_key(text: &str) -> bool {
    const MARK: &str = "PRIVATE KEY-----";
    text.match_indices(MARK).any(|(at, _)| {
        let before = &text.as_bytes()[at.saturating_sub(24)..at];
        let begins = before.windows(10).any(|b| b == b"-----BEGIN");
        let body = text.as_bytes()[at + MARK.len()..]
            .iter()
            .skip_while(|b| matches!(b, b'\r' | b'\n'))
            .take(48)
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            .count();
        begins && body == 48
    })
}

/// A scan finds the shared key of a TEST image that carries one (so it can find
/// keys), and no private key in the root, ESP or manifest of the personal
/// images, nor of the image whose key is on the person's smartcard.
#[test]
fn a_personal_image_holds_no_private_key() {
    let shared =
        qemu_tests::built_image("qemu-tests/configs/ipsec.toml", "vpn-ipsec").ok_or_panic();
    let in_shared = private_keys_in(&shared.image);
    assert!(
        in_shared.iter().any(|f| f.contains("stick-client.key")),
        "the scan does not find the TEST image's shared key: {in_shared:?}"
    );
    for (config, out) in [PERSONAL_IMAGE, WIREGUARD_PERSONAL_IMAGE, TOKEN_IMAGE] {
        let personal = qemu_tests::built_image(config, out).ok_or_panic();
        let found = private_keys_in(&personal.image);
        assert!(found.is_empty(), "private keys in {out}: {found:?}");
    }
    println!(
        "private keys: the shared TEST image holds {in_shared:?}; the personal IPsec and \
         WireGuard images and the smartcard image none"
    );
}

/// A WireGuard stick personalised with its own key and address connects; the
/// image holds neither.
#[test]
fn personal_wireguard_stick_connects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = fixture("test-wg-client.key");
    let image = personal_stick(
        dir.path(),
        WIREGUARD_PERSONAL_IMAGE,
        "stick-wg",
        &[
            "--wireguard-key".as_ref(),
            key.as_os_str(),
            "--wireguard-address".as_ref(),
            "10.99.1.2/32".as_ref(),
        ],
    );
    let (s, up) = boot_personal(
        "vpn-personal-wireguard",
        Gateway::Wireguard { wrong_key: false },
        &image,
        "stick-wg",
    );
    let report = judged(s);
    println!(
        "vpn-personal-wireguard: tunnel up at {:?}; {report}",
        up.inner_address
    );
}
