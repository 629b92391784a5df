//! USB device policy from power-on to the session. Present at power-on beside the
//! boot stick: a USB network adapter and a second USB stick get no driver, a
//! keyboard does (USBGuard's rules apply to present devices too); the boot stick
//! is the one the firmware's boot path names. Then devices are hot-plugged
//! through QMP: a keyboard and a headset (audio) get a driver; a USB stick stays
//! unauthorized, never becomes a block device, and is reported.

use std::time::Duration;

use qemu_tests::machine::disks::make_usb_stick;
use qemu_tests::machine::qemu::{wait_until, Machine, MachineConfig, SecureBootKeys};
use qemu_tests::machine::serial::{
    find_forbidden, parse_status, parse_storage, parse_usb, UsbReport,
};
use serde_json::json;

const BOOT_TIMEOUT: Duration = Duration::from_secs(600);
const DECISION_TIMEOUT: Duration = Duration::from_secs(120);

const CLASS_AUDIO: &str = "01";
const CLASS_HID: &str = "03";
const CLASS_MASS_STORAGE: &str = "08";
const CLASS_HUB: &str = "09";
const CLASS_COMM: &str = "02";
const CLASS_CDC_DATA: &str = "0a";

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

#[test]
fn usb_devices_at_power_on_and_hotplugged_follow_the_policy() {
    let built = qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds");
    let dir = tempfile::tempdir().expect("tempdir");
    let hot_stick = make_usb_stick(dir.path()).expect("USB stick image");
    let before = hot_stick.sha256().expect("hash");
    let early_dir = dir.path().join("power-on");
    std::fs::create_dir_all(&early_dir).expect("mkdir");
    let early_stick = make_usb_stick(&early_dir).expect("USB stick image");
    let early_before = early_stick.sha256().expect("hash");

    let mut config = MachineConfig::new("usb-hotplug")
        .stick(&built.image)
        .secure_boot(SecureBootKeys::test_keys());
    config
        .extra_args
        .extend(["-audiodev".to_string(), "none,id=snd0".to_string()]);
    config
        .extra_args
        .extend(power_on_devices(&early_stick.path));
    let mut vm = Machine::start(&config).expect("QEMU starts");
    vm.wait_for_line(BOOT_TIMEOUT, |l| parse_usb(l).is_some())
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Before plugging anything: the block devices as udev has them all, including
    // q35's own CD drive (sr0), which its AHCI controller brings up late.
    vm.wait_for_line(BOOT_TIMEOUT, |l| {
        parse_storage(l).is_some_and(|r| {
            r.devices.iter().all(|d| d.settled) && r.devices.iter().any(|d| d.name == "sr0")
        })
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let at_power_on = power_on_decisions(&vm);
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
    vm.keep_console("usb_hotplug").expect("keeps log");
    let new = settled.unwrap_or_else(|| {
        panic!(
            "expected keyboard and headset authorized, USB stick blocked; last usb line: {:?}\n{}",
            last_usb_report(&console),
            vm.diagnostics()
        )
    });

    let status = console.lines().find_map(parse_status).expect("status line");
    assert!(status.ok, "{}", vm.diagnostics());
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
    if let Some((pattern, at)) = find_forbidden(&console) {
        panic!("forbidden console output {pattern:?} in {at:?}");
    }
    vm.press_power_button(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("powers off: {e:#}"));
    assert_eq!(
        hot_stick.sha256().expect("hash"),
        before,
        "the blocked stick is unchanged"
    );
    assert_eq!(
        early_stick.sha256().expect("hash"),
        early_before,
        "the stick present at power-on is unchanged"
    );
    eprintln!("usb at power-on: {:?}", at_power_on.devices);
    eprintln!(
        "usb: {} new devices (3 hot-plugged), allowed {}, blocked {}: {new:?}",
        new.len(),
        new.iter().filter(|d| d.authorized).count(),
        new.iter().filter(|d| !d.authorized).count()
    );
}
