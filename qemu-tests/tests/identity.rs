//! Personal sticks on the conference image behind IPsec, as staff meet them:
//! a stick never personalised shows its screen and sends nothing; a personal
//! stick asks its person's password on its own screen, the gateway checks it in
//! a second IKEv2 round (EAP-MSCHAPv2) and counts the wrong ones; a revoked stick
//! is refused with the helpdesk's screen; a stick whose key is on the person's
//! smartcard (QEMU's emulated CCID reader and card) asks the card's PIN, and the
//! card, not the stick, decides. Screens are looked at as screendumps
//! (kept in target/qemu-tests/artifacts), the uplink capture judged at power-off.

use std::time::Duration;

use qemu_tests::lab::conference_lab::conference_machine;
use qemu_tests::lab::netlab::{Gateway, NetLab};
use qemu_tests::lab::smartcard::EmulatedCard;
use qemu_tests::lab::vpn_session::{screens_shown, VpnSession, BOOT_TIMEOUT, NET_TIMEOUT};
use qemu_tests::machine::qemu::wait_until;
use qemu_tests::OkOrPanic;

/// The conference image for personal sticks with a password round
/// (`(config, output folder)`).
const IMAGE: (&str, &str) = (
    "qemu-tests/configs/conference-ipsec.toml",
    "conference-ipsec",
);
/// The lab gateway's account for stick-a's person, and its password (typed on
/// the US keyboard: capitals, a space and a symbol exercise the keymap).
const USER: &str = "alice";
const PASSWORD: &str = "Sommer 2026!";
const WRONG_PASSWORD: &str = "Winter 2025?";
/// The conference image whose key is on the person's smartcard.
const TOKEN_IMAGE: (&str, &str) = (
    "qemu-tests/configs/conference-token.toml",
    "conference-token",
);
/// The card's PIN, and a wrong one.
const PIN: &str = "482916";
const WRONG_PIN: &str = "731904";

const IPSEC: Gateway = Gateway::Ipsec {
    wrong_certificate: false,
    refuses_stick: false,
};

/// A copy of the image personalised as `stick_id` with the TEST certificate
/// `name` and `user`'s account.
fn personal(dir: &std::path::Path, stick_id: &str, name: &str, user: &str) -> std::path::PathBuf {
    qemu_tests::personalised_ipsec_copy(dir, IMAGE, stick_id, name, user).ok_or_panic()
}

/// Waits for the screen `name`, checks its code, keeps its screendump; returns
/// how much it covers.
fn screen_shown(s: &VpnSession, name: &str, code: &str, timeout: Duration) -> f64 {
    s.screen_shown(name, code, timeout).ok_or_panic()
}

/// The first `tunnel-waiting` reason that names `cause`.
fn waiting_reason(s: &VpnSession, cause: &str) -> String {
    s.waiting_reason(cause).ok_or_panic()
}

/// A stick written from the image but never personalised: its screen, no
/// network started, not one packet sent.
#[test]
fn a_stick_never_personalised_shows_its_screen_and_sends_nothing() {
    let built = qemu_tests::built_image(IMAGE.0, IMAGE.1).ok_or_panic();
    let s = VpnSession::start_on(
        "identity-none",
        IPSEC,
        true,
        &built.image,
        conference_machine,
    )
    .ok_or_panic();
    let cover = screen_shown(&s, "not-personalised", "SBS-ID-01", BOOT_TIMEOUT);
    let disabled = s
        .net_lines()
        .into_iter()
        .find(|n| n.state == "disabled")
        .and_then(|n| n.reason)
        .unwrap_or_default();
    assert!(disabled.contains("never personalised"), "{disabled:?}");
    // Time for anything that would go out.
    std::thread::sleep(Duration::from_secs(10));
    let (report, console) = s.power_off_with_console().ok_or_panic();
    assert!(
        report.leaks.is_empty() && report.sent_by_guest == 0,
        "a stick never personalised sent packets: {report}"
    );
    println!(
        "identity-none: {disabled}; the screen covers {cover:.2}; screens {:?}; {report}",
        screens_shown(&console)
    );
}

/// stick-a's person types a wrong password, sees it rejected, then types the
/// right one: the tunnel comes up. The gateway counted the wrong one; neither
/// password appears on the console.
#[test]
fn the_gateway_checks_the_persons_password_typed_on_the_stick() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = personal(dir.path(), "stick-a", "test-stick-a", USER);
    let mut lab = NetLab::new(IPSEC).ok_or_panic();
    lab.add_eap_user(USER, PASSWORD);
    let mut s = VpnSession::start_in("identity-password", lab, true, &image, conference_machine)
        .ok_or_panic();
    let asked = screen_shown(&s, "enter-password", "SBS-ID-02", BOOT_TIMEOUT);
    // Half typed: the dots show (looked at in the screendump), then Escape
    // empties the field and the whole wrong password goes.
    s.vm.type_text("Wint").ok_or_panic();
    std::thread::sleep(Duration::from_secs(3));
    let typing = qemu_tests::artifacts_dir().join("screen-enter-password-typing.png");
    s.vm.screenshot(&typing).ok_or_panic();
    s.vm.send_keys("esc").ok_or_panic();
    s.vm.type_text(WRONG_PASSWORD).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let rejected = screen_shown(&s, "password-rejected", "SBS-ID-03", NET_TIMEOUT);
    let reason = waiting_reason(&s, "EAP");
    assert!(
        reason.contains("password"),
        "the rejection's reason: {reason:?}"
    );
    assert_eq!(
        s.lab.eap_rejections(USER),
        1,
        "the gateway's count of {USER}'s wrong passwords:\n{}",
        s.lab.log("charon.log")
    );
    assert!(
        !s.net_lines().iter().any(|n| n.state == "tunnel-up"),
        "a tunnel with a wrong password"
    );

    s.vm.type_text(PASSWORD).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let up = s
        .wait_net(0, NET_TIMEOUT, "tunnel-up", |n| n.state == "tunnel-up")
        .ok_or_panic();
    s.wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
        n.state == "reachable"
    })
    .ok_or_panic();
    let gateway = s.lab.log("charon.log");
    assert!(
        gateway.contains(&format!("received EAP identity '{USER}'")),
        "the gateway's log does not name {USER}:\n{gateway}"
    );
    assert_eq!(s.lab.eap_rejections(USER), 1, "a right password counted");
    let (report, console) = s.power_off_with_console().ok_or_panic();
    for secret in [PASSWORD, WRONG_PASSWORD] {
        let hex = hex::encode(secret.as_bytes());
        assert!(
            !console.contains(secret) && !console.contains(&hex),
            "a password on the console"
        );
    }
    assert!(
        report.leaks.is_empty(),
        "packets outside the tunnel: {report}"
    );
    println!(
        "identity-password: asked (covers {asked:.2}), typing kept in {}; wrong password: \
         {reason:?}, the gateway counted 1 (covers {rejected:.2}); right password: tunnel up, \
         inner address {:?}; screens {:?}; {report}",
        typing.display(),
        up.inner_address,
        screens_shown(&console)
    );
}

/// stick-b was revoked (the gateway holds the CA's CRL): after its person's
/// password the gateway refuses the stick, the stick shows the helpdesk's
/// screen, no browser starts, nothing leaks.
#[test]
fn a_revoked_stick_is_refused_with_the_helpdesk_screen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = personal(dir.path(), "stick-b", "test-stick-b", "bob");
    let mut lab = NetLab::new(IPSEC).ok_or_panic();
    lab.add_eap_user("bob", PASSWORD);
    lab.revoke("test-stick-b.pem").ok_or_panic();
    let s = VpnSession::start_in("identity-revoked", lab, true, &image, conference_machine)
        .ok_or_panic();
    screen_shown(&s, "enter-password", "SBS-ID-02", BOOT_TIMEOUT);
    s.vm.type_text(PASSWORD).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let cover = screen_shown(&s, "vpn-refused", "SBS-VPN-03", NET_TIMEOUT);
    let reason = waiting_reason(&s, "AUTHENTICATION_FAILED");
    // charon writes its log in pieces: wait for the line rather than read once.
    let revoked = wait_until(Duration::from_secs(20), Duration::from_millis(500), || {
        s.lab
            .log("charon.log")
            .lines()
            .find(|l| l.contains("revoked"))
            .map(|l| l.trim().to_string())
    })
    .unwrap_or_else(|| {
        panic!(
            "the gateway's log names no revocation:\n{}",
            s.lab.log("charon.log")
        )
    });
    let (report, console) = s.power_off_with_console().ok_or_panic();
    assert!(
        !console.contains("\"browser-started\""),
        "a browser started for a refused stick"
    );
    assert!(
        report.leaks.is_empty(),
        "packets outside the tunnel: {report}"
    );
    println!(
        "identity-revoked: {reason}; gateway: {revoked}; the screen covers {cover:.2}; \
         screens {:?}; {report}",
        screens_shown(&console)
    );
}

/// The key is on the person's smartcard: with an empty reader the stick asks
/// for the card; once it is in, for the card's PIN; a wrong PIN is refused by
/// the card (no tunnel), the right one lets charon sign with the card's key and
/// the gateway names the card's certificate. The
/// stick's image holds no key; the PINs never reach the console.
#[test]
fn the_card_holds_the_key_and_checks_its_pin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = EmulatedCard::issue(dir.path(), "card-alice.test", PIN).ok_or_panic();
    let built = qemu_tests::built_image(TOKEN_IMAGE.0, TOKEN_IMAGE.1).ok_or_panic();
    let mut s = VpnSession::start_on("identity-token", IPSEC, true, &built.image, |m| {
        conference_machine(m);
        m.extra_args.extend(EmulatedCard::reader_args());
    })
    .ok_or_panic();
    // The reader is there, the card not yet: the stick asks for it.
    let insert = screen_shown(&s, "insert-token", "SBS-ID-08", BOOT_TIMEOUT);
    waiting_reason(&s, "smartcard");
    s.vm.qmp(&card.insert_command()).ok_or_panic();
    let asked = screen_shown(&s, "enter-pin", "SBS-ID-04", NET_TIMEOUT);
    s.vm.type_text(WRONG_PIN).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let rejected = screen_shown(&s, "pin-rejected", "SBS-ID-05", NET_TIMEOUT);
    let reason = waiting_reason(&s, "rejected the PIN");
    assert!(
        !s.net_lines().iter().any(|n| n.state == "tunnel-up"),
        "a tunnel with a wrong PIN"
    );

    s.vm.type_text(PIN).ok_or_panic();
    s.vm.send_keys("ret").ok_or_panic();
    let up = s
        .wait_net(0, NET_TIMEOUT, "tunnel-up", |n| n.state == "tunnel-up")
        .ok_or_panic();
    s.wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
        n.state == "reachable"
    })
    .ok_or_panic();
    let gateway = s.lab.log("charon.log");
    let card_id = format!("CN={}", card.common_name);
    assert!(
        gateway.contains(&card_id),
        "the gateway's log does not name {card_id}:\n{gateway}"
    );
    let (report, console) = s.power_off_with_console().ok_or_panic();
    for secret in [PIN, WRONG_PIN] {
        let hex = hex::encode(secret.as_bytes());
        assert!(
            !console.contains(secret) && !console.contains(&hex),
            "a PIN on the console"
        );
    }
    assert!(
        report.leaks.is_empty(),
        "packets outside the tunnel: {report}"
    );
    println!(
        "identity-token: no card: asked for it (covers {insert:.2}); card inserted: PIN \
         asked (covers {asked:.2}); wrong PIN: {reason:?} (covers \
         {rejected:.2}); right PIN: tunnel up, inner address {:?}, the gateway names \
         {card_id}; screens {:?}; {report}",
        up.inner_address,
        screens_shown(&console)
    );
}
