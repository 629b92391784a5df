//! The demo image boots under OVMF from a USB stick to a verified kiosk status,
//! and in the same boot its USB device policy holds from power-on to the
//! session. Present at power-on beside the boot stick: a USB network adapter and
//! a second USB stick get no driver, a keyboard does (USBGuard's rules apply to
//! present devices too); the boot stick is the one the firmware's boot path
//! names. Then devices are hot-plugged through QMP: a keyboard and a headset
//! (audio) get a driver; a USB stick stays unauthorized, never becomes a block
//! device, and is reported. With Secure Boot off, the same image is refused.

use std::time::Duration;

use qemu_tests::machine::disks::{make_usb_stick, HostileDisk};
use qemu_tests::machine::qemu::{wait_until, Machine, MachineConfig, SecureBootKeys};
use qemu_tests::machine::serial::{
    find_forbidden, parse_egress, parse_event, parse_net, parse_status, parse_storage, parse_usb,
    UsbDevice, UsbReport, KIOSK_MARKER,
};
use serde_json::json;

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

/// From a device's arrival to the USB policy's decision on it.
const DECISION_TIMEOUT: Duration = Duration::from_secs(120);

/// USB interface classes (the policy allows hubs, keyboards/mice, audio).
const CLASS_AUDIO: &str = "01";
const CLASS_HID: &str = "03";
const CLASS_MASS_STORAGE: &str = "08";
const CLASS_HUB: &str = "09";
const CLASS_COMM: &str = "02";
const CLASS_CDC_DATA: &str = "0a";

/// The kiosk's latest `usb` line.
fn last_usb_report(console: &str) -> Option<UsbReport> {
    console.lines().rev().find_map(parse_usb)
}

/// QEMU arguments for what is plugged in at power-on, after the boot stick: a
/// network adapter (no peer: it must not even get a driver), a second stick, a
/// keyboard.
fn power_on_devices(second_stick: &std::path::Path) -> Vec<String> {
    [
        "-device",
        "usb-net,bus=xhci.0,id=early-net",
        "-drive",
        &format!(
            "if=none,id=earlystick,format=raw,file={}",
            second_stick.display()
        ),
        "-device",
        "usb-storage,bus=xhci.0,drive=earlystick,id=early-stick",
        "-device",
        "usb-kbd,bus=xhci.0,id=early-kbd",
    ]
    .map(String::from)
    .to_vec()
}

/// Waits until the policy has decided on the four devices present at power-on
/// (once USBGuard ran) and checks each decision; returns that usb line.
fn power_on_decisions(vm: &Machine) -> UsbReport {
    let at_power_on = wait_until(DECISION_TIMEOUT, Duration::from_secs(1), || {
        let report = last_usb_report(&vm.console())?;
        let has = |classes: &[&str], authorized: bool| {
            report
                .devices
                .iter()
                .any(|d| d.classes == classes && d.authorized == authorized)
        };
        (report.devices.len() >= 4
            && has(&[CLASS_COMM, CLASS_CDC_DATA], false)
            && has(&[CLASS_HID], true)
            && report
                .devices
                .iter()
                .filter(|d| d.classes == [CLASS_MASS_STORAGE])
                .count()
                == 2)
            .then_some(report)
    })
    .unwrap_or_else(|| {
        panic!(
            "power-on devices: adapter blocked, keyboard allowed expected; last usb line: {:?}\n{}",
            last_usb_report(&vm.console()),
            vm.diagnostics()
        )
    });
    let sticks: Vec<_> = at_power_on
        .devices
        .iter()
        .filter(|d| d.classes == [CLASS_MASS_STORAGE])
        .collect();
    let boot: Vec<_> = sticks.iter().filter(|d| d.boot.is_some()).collect();
    assert_eq!(boot.len(), 1, "one boot stick: {sticks:?}");
    assert_eq!(boot[0].boot.as_deref(), Some("firmware-path"), "{sticks:?}");
    assert!(boot[0].authorized, "{sticks:?}");
    assert!(
        sticks.iter().all(|d| d.boot.is_some() || !d.authorized),
        "the second stick present at power-on stays out: {sticks:?}\n{}",
        vm.diagnostics()
    );
    at_power_on
}

/// Hot-plugs a keyboard, a headset and a USB stick through QMP and checks the
/// policy's decisions and that no new block device appeared; returns what was new.
fn hotplug_follows_the_policy(vm: &mut Machine, hot_stick: &HostileDisk) -> Vec<UsbDevice> {
    // Before plugging anything: the block devices as udev has them all, including
    // q35's own CD drive (sr0), which its AHCI controller brings up late.
    vm.wait_for_line(boot_timeout(), |l| {
        parse_storage(l).is_some_and(|r| {
            r.devices.iter().all(|d| d.settled) && r.devices.iter().any(|d| d.name == "sr0")
        })
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    // Counted in whole lines: the console grows, its earlier lines stay.
    let before_plug = vm.console().lines().count();
    let at_boot = last_usb_report(&vm.console()).expect("usb line");
    let ports_at_boot: Vec<String> = at_boot.devices.iter().map(|d| d.port.clone()).collect();

    // (what, QMP device_add arguments)
    let plugs = [
        (
            "keyboard",
            json!({"driver": "usb-kbd", "bus": "xhci.0", "id": "hot-kbd"}),
        ),
        (
            "headset",
            json!({"driver": "usb-audio", "bus": "xhci.0", "id": "hot-audio", "audiodev": "snd0"}),
        ),
        (
            "USB stick",
            json!({"driver": "usb-storage", "bus": "xhci.0", "id": "hot-stick", "drive": "hotstick"}),
        ),
    ];
    vm.qmp(&json!({"execute": "blockdev-add", "arguments": {
        "driver": "raw", "node-name": "hotstick",
        "file": {"driver": "file", "filename": hot_stick.path.to_string_lossy()}
    }}))
    .expect("blockdev-add");
    for (what, args) in &plugs {
        vm.qmp(&json!({"execute": "device_add", "arguments": args}))
            .unwrap_or_else(|e| panic!("device_add {what}: {e:#}"));
    }

    // Settled: three new devices, and the policy has decided on each.
    let settled = wait_until(DECISION_TIMEOUT, Duration::from_secs(1), || {
        let report = last_usb_report(&vm.console())?;
        let new: Vec<_> = report
            .devices
            .iter()
            .filter(|d| !ports_at_boot.contains(&d.port))
            .cloned()
            .collect();
        let has = |class: &str, authorized: bool| {
            new.iter()
                .any(|d| d.classes == [class] && d.authorized == authorized)
        };
        // A hub in between is allowed by class (09); with eight root ports
        // (Machine) QEMU adds none.
        let only_policy = new.iter().all(|d| {
            d.authorized
                == d.classes
                    .iter()
                    .all(|c| [CLASS_HUB, CLASS_HID, CLASS_AUDIO].contains(&c.as_str()))
        });
        (new.len() >= 3
            && only_policy
            && has(CLASS_HID, true)
            && has(CLASS_AUDIO, true)
            && has(CLASS_MASS_STORAGE, false))
        .then_some(new)
    });
    // A little longer: a late driver binding would show up in the storage line.
    std::thread::sleep(Duration::from_secs(10));
    let console = vm.console();
    let new = settled.unwrap_or_else(|| {
        panic!(
            "expected keyboard and headset authorized, USB stick blocked; last usb line: {:?}\n{}",
            last_usb_report(&console),
            vm.diagnostics()
        )
    });
    no_usb_stick_became_a_disk(vm, &console, before_plug);
    new
}

/// Neither the stick present at power-on nor the hot-plugged one became a block
/// device (`before_plug`: the console's lines before the hotplug).
fn no_usb_stick_became_a_disk(vm: &Machine, console: &str, before_plug: usize) {
    // The second stick never was a block device: one USB disk (the boot stick)
    // in every storage line, from the first.
    for report in console.lines().filter_map(parse_storage) {
        let usb_disks: Vec<_> = report
            .devices
            .iter()
            .filter(|d| {
                d.name.starts_with("sd") && !d.name[2..].contains(|c: char| c.is_ascii_digit())
            })
            .map(|d| d.name.clone())
            .collect();
        assert!(
            usb_disks.len() <= 1,
            "a second USB disk appeared: {usb_disks:?}\n{}",
            vm.diagnostics()
        );
    }
    // The blocked stick never became a block device: no storage line after the
    // hotplug names a device that the lines before it did not have.
    let at_boot: Vec<String> = console
        .lines()
        .take(before_plug)
        .filter_map(parse_storage)
        .flat_map(|r| r.devices.into_iter().map(|d| d.name))
        .collect();
    for report in console.lines().skip(before_plug).filter_map(parse_storage) {
        for device in &report.devices {
            assert!(
                at_boot.contains(&device.name),
                "a block device appeared after the hotplug: {device:?}\n{}",
                vm.diagnostics()
            );
        }
    }
}

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
    // USB devices at power-on beside the boot stick, and sticks to check after.
    let dir = tempfile::tempdir().expect("tempdir");
    let hot_stick = make_usb_stick(dir.path()).expect("USB stick image");
    let hot_before = hot_stick.sha256().expect("hash");
    let early_dir = dir.path().join("power-on");
    std::fs::create_dir_all(&early_dir).expect("mkdir");
    let early_stick = make_usb_stick(&early_dir).expect("USB stick image");
    let early_before = early_stick.sha256().expect("hash");
    config
        .extra_args
        .extend(["-audiodev".to_string(), "none,id=snd0".to_string()]);
    config
        .extra_args
        .extend(power_on_devices(&early_stick.path));
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

    // The USB policy, at power-on and for devices plugged in during the session
    // (this also lets the rest of the boot run: a getty or shell would show up).
    let at_power_on = power_on_decisions(&vm);
    let hot_plugged = hotplug_follows_the_policy(&mut vm, &hot_stick);
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
    // The demo boots through shim (`[signing] shim = true`) on a PC with our own
    // keys: the firmware accepts shim by our signature beside Microsoft's, and
    // shim finds our certificate in the firmware's db.
    let trust = status
        .boot_trust
        .as_ref()
        .expect("the status has boot_trust");
    assert_eq!(trust.path, "firmware-db", "{trust:?}");
    assert!(
        trust.shim && trust.shim_verifies && trust.shim_vendor_key,
        "{trust:?}"
    );
    assert_eq!((trust.db_entries, trust.other_moks), (1, 0), "{trust:?}");
    let well_formed = |l: &str| {
        parse_status(l).is_some()
            || parse_storage(l).is_some()
            || parse_usb(l).is_some()
            || parse_egress(l).is_some()
            || parse_net(l).is_some()
            || KIOSK_EVENTS
                .iter()
                .any(|kind| parse_event(l, kind).is_some())
    };
    let malformed: Vec<&str> = console
        .lines()
        .filter(|l| l.contains(KIOSK_MARKER) && !well_formed(l))
        .collect();
    assert!(
        malformed.is_empty()
            && console.matches(KIOSK_MARKER).count()
                == console.lines().filter(|l| well_formed(l)).count(),
        "every kiosk line is a well-formed status, storage, usb, egress, net line or one \
         of {KIOSK_EVENTS:?}, alone on its line; these are not: {malformed:#?}\n{}",
        context()
    );
    if let Some((pattern, at)) = find_forbidden(&console) {
        panic!(
            "forbidden console output {pattern:?} in line {at:?}\n{}",
            context()
        );
    }
    vm.press_power_button(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("powers off: {e:#}"));
    assert_eq!(
        hot_stick.sha256().expect("hash"),
        hot_before,
        "the blocked stick is unchanged"
    );
    assert_eq!(
        early_stick.sha256().expect("hash"),
        early_before,
        "the stick present at power-on is unchanged"
    );
    eprintln!("usb at power-on: {:?}", at_power_on.devices);
    eprintln!(
        "usb: {} new devices (3 hot-plugged), allowed {}, blocked {}: {hot_plugged:?}",
        hot_plugged.len(),
        hot_plugged.iter().filter(|d| d.authorized).count(),
        hot_plugged.iter().filter(|d| !d.authorized).count()
    );
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
