//! The demo image boots under OVMF from a USB stick to a verified kiosk status.

use std::time::Duration;

use qemu_tests::machine::qemu::{Machine, MachineConfig, SecureBootKeys};
use qemu_tests::machine::serial::{
    find_forbidden, parse_egress, parse_event, parse_net, parse_status, parse_storage, parse_usb,
    KIOSK_MARKER,
};

/// The kiosk's other line kinds (`"event":"KIND"`, a JSON object each). The demo
/// has a `[conference]` without a VPN: its session shows the starting screen.
const KIOSK_EVENTS: &[&str] = &[
    "session",
    "blocked",
    "shortcut",
    "clock",
    "screen",
    "indicator",
    "mute",
    "key",
    "leave",
];

fn boot_timeout() -> Duration {
    let secs = std::env::var("QEMU_BOOT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

#[test]
fn demo_image_boots_to_verified_kiosk_status() {
    let built = qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds");
    let mut config = MachineConfig::new("demo-boot")
        .stick(&built.image)
        .secure_boot(SecureBootKeys::test_keys());
    // A PC whose clock was set back years: the kiosk sets it forward to the
    // image's build time before any network or certificate is used.
    config
        .extra_args
        .extend(["-rtc".into(), "base=2015-06-01T12:00:00".into()]);
    // A PC with an IOMMU: the signed cmdline turns it on, strict.
    config.iommu = true;
    let mut vm = Machine::start(&config).expect("QEMU starts");
    let line = vm
        .wait_for_line(boot_timeout(), |l| parse_status(l).is_some())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let boot_secs = vm.elapsed().as_secs_f64();
    let status = parse_status(&line).expect("status parses");
    eprintln!("boot: QEMU start -> kiosk status line in {boot_secs:.1} s");

    let clock = vm
        .wait_for_line(Duration::from_secs(30), |l| {
            parse_event(l, "clock").is_some()
        })
        .unwrap_or_else(|e| panic!("no clock line: {e:#}"));
    let clock = parse_event(&clock, "clock").expect("clock line");
    let build_time = built.manifest["build-time"]
        .as_u64()
        .expect("the manifest has build-time");
    assert_eq!(clock["floor"], build_time, "{clock}");
    assert_eq!(clock["corrected"], true, "{clock}");
    let (was, now) = (
        clock["was"].as_u64().expect("was"),
        clock["now"].as_u64().expect("now"),
    );
    assert!(was < build_time && now >= build_time, "{clock}");

    // The demo has no [vpn]: the egress policy drops everything and the kiosk
    // configures no network.
    let net = vm
        .wait_for_line(Duration::from_secs(60), |l| parse_net(l).is_some())
        .unwrap_or_else(|e| panic!("no net line: {e:#}"));
    let net = parse_net(&net).expect("net line parses");
    assert_eq!(net.state, "disabled", "{net:?}");

    // The demo has a [conference]: the session starts the locked browser (which
    // reaches nothing without a VPN), with real capture devices.
    let starting = vm
        .wait_for_line(Duration::from_secs(60), |l| {
            parse_event(l, "session").is_some_and(|e| e["state"] == "starting")
        })
        .unwrap_or_else(|e| panic!("no session line: {e:#}"));
    let starting = parse_event(&starting, "session").expect("session line");
    assert_eq!(starting["fake_capture"], false, "{starting}");
    assert_eq!(
        starting["keyboard"], "de",
        "examples/demo.toml asks for keyboard-layout \"de\": {starting}"
    );
    vm.wait_for_line(Duration::from_secs(180), |l| {
        parse_event(l, "session").is_some_and(|e| e["state"] == "browser-started")
    })
    .unwrap_or_else(|e| panic!("the browser did not start: {e:#}"));

    // Let the rest of the boot run: a getty or shell would show up here.
    std::thread::sleep(Duration::from_secs(5));
    let console = vm.console();
    let egress = console
        .lines()
        .find_map(parse_egress)
        .expect("the kiosk reports the egress policy");
    assert!(egress.enforcing, "{egress:?}");
    let log = vm
        .keep_console("demo_image_boots_to_verified_kiosk_status")
        .expect("keeps log");
    let context = || {
        format!(
            "status line: {line}\nconsole log: {}\n{}",
            log.display(),
            vm.diagnostics()
        )
    };

    assert_eq!(status.verity, "active", "{}", context());
    assert_eq!(status.iommu, ["dmar0"], "{}", context());
    assert!(status.warnings.is_empty(), "{}", context());
    assert!(status.root_read_only, "{}", context());
    assert_eq!(status.root_fs.as_deref(), Some("squashfs"), "{}", context());
    assert_eq!(status.signature, "valid", "{}", context());
    assert!(status.manifest_root_hash_matches, "{}", context());
    assert!(status.cmdline_signed, "{}", context());
    assert!(status.ok, "{}", context());
    let want_hash = built.root_hash().expect("manifest has verity.root-hash");
    assert_eq!(
        status.cmdline_root_hash.as_deref(),
        Some(want_hash),
        "{}",
        context()
    );
    assert_eq!(
        status.dm_root_hash.as_deref(),
        Some(want_hash),
        "{}",
        context()
    );
    assert_eq!(
        status.manifest_version.as_deref(),
        built.manifest["version"].as_str()
    );
    assert_eq!(
        status.test_keys,
        Some(true),
        "the demo is signed with the test key"
    );
    assert_eq!(
        console.matches(KIOSK_MARKER).count(),
        console
            .lines()
            .filter(|l| parse_status(l).is_some()
                || parse_storage(l).is_some()
                || parse_usb(l).is_some()
                || parse_egress(l).is_some()
                || parse_net(l).is_some()
                || KIOSK_EVENTS
                    .iter()
                    .any(|kind| parse_event(l, kind).is_some()))
            .count(),
        "every kiosk line is a well-formed status, storage, usb, egress, net line or one \
         of {KIOSK_EVENTS:?}\n{}",
        context()
    );
    if let Some((pattern, at)) = find_forbidden(&console) {
        panic!(
            "forbidden console output {pattern:?} in line {at:?}\n{}",
            context()
        );
    }
}

/// The same image with Secure Boot off: `require-secure-boot = true` in the demo
/// config, so the kiosk refuses, says why, and the machine powers off by itself.
#[test]
fn secure_boot_off_is_refused_and_powers_off() {
    let built = qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds");
    let mut vm = Machine::start(&MachineConfig::new("demo-no-secure-boot").stick(&built.image))
        .expect("QEMU starts");
    let line = vm
        .wait_for_line(boot_timeout(), |l| parse_status(l).is_some())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let status = parse_status(&line).expect("status parses");
    let exit = vm.wait_for_exit(Duration::from_secs(120));
    let console = vm.console();
    vm.keep_console("secure_boot_off_is_refused_and_powers_off")
        .expect("keeps log");
    let context = || format!("status line: {line}\n{}", vm.diagnostics());
    assert!(!status.ok, "{}", context());
    // Plain OVMF variables have no keys enrolled: setup mode, nothing verified.
    assert_eq!(status.secure_boot, "setup-mode", "{}", context());
    assert_eq!(
        status.verity,
        "active",
        "only Secure Boot is wrong here: {}",
        context()
    );
    assert_eq!(status.signature, "valid", "{}", context());
    assert_eq!(status.refusals.len(), 1, "{}", context());
    assert!(
        status.refusals[0].contains("require-secure-boot"),
        "{}",
        context()
    );
    assert!(
        console.contains("REFUSED: UEFI Secure Boot is in setup mode"),
        "{}",
        context()
    );
    assert_eq!(
        status.lockdown.as_deref(),
        Some("integrity"),
        "lockdown from the cmdline even without Secure Boot: {}",
        context()
    );
    exit.unwrap_or_else(|e| panic!("the machine must power off by itself: {e:#}"));
    if let Some((pattern, at)) = find_forbidden(&console) {
        panic!(
            "forbidden console output {pattern:?} in line {at:?}\n{}",
            context()
        );
    }
}
