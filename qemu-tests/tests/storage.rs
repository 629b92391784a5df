//! Storage lock: the PC's own disks (NVMe with another OS's ESP and ext4,
//! SATA/vfat+swap, virtio/LUKS, made here with real filesystems) are seen, set
//! read-only, never mounted, never swap, and hash the same after the session as
//! before. The stick's own partitions are read-only too. A PC disk holding a copy
//! of the stick (its partition UUIDs are public) is a foreign disk like the
//! others, reported as a copy. One boot with all of them: a PC has them together.

use std::time::Duration;

use qemu_tests::machine::disks::{make_hostile_disks, Bus, HostileDisk};
use qemu_tests::machine::qemu::{Machine, MachineConfig, SecureBootKeys};
use qemu_tests::machine::serial::{
    find_forbidden, parse_status, parse_storage, storage_lock_times, STORAGE_LOCK_PREFIX,
};

const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// Block devices the disks show up as: NVMe disk with 2 partitions (ESP, ext4),
/// SATA disk with 2 partitions, virtio disk (LUKS on the whole disk), and the
/// clone of the stick on a second NVMe disk (disk, ESP, root, verity). The USB
/// stick present at power-on is no block device at all: it never gets a driver.
const EXPECTED_FOREIGN: usize = 3 + 3 + 1 + 4;
/// The clone's disk and its three partitions.
const CLONE_DEVICES: usize = 4;

/// A byte-for-byte copy of the stick with one root block and the ESP's manifest
/// changed, as a hostile PC could hold it on an internal disk.
fn stick_clone(image: &std::path::Path) -> qemu_tests::machine::tamper::TamperedStick {
    use image_builder::disk::gpt::ROOT_X86_64_TYPE;
    use stick_manifest::MANIFEST_FILE;
    let clone = qemu_tests::machine::tamper::TamperedStick::copy_of(image).expect("copy");
    let root = clone.partition(ROOT_X86_64_TYPE).expect("root").offset();
    clone
        .xor_byte(root + (1 << 20), 0x01)
        .expect("root block changed");
    // One more byte: its signature no longer holds.
    let mut manifest = clone.read_esp_file(MANIFEST_FILE).expect("manifest");
    manifest.push(b'\n');
    clone
        .write_esp_file(MANIFEST_FILE, &manifest)
        .expect("manifest changed");
    clone
}

fn run_storage_scenario(name: &str) {
    let built = qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds");
    let dir = tempfile::tempdir().expect("tempdir");
    // Another OS's bootloader: a real EFI program, the stick's own UKI without
    // its signature (Secure Boot would refuse it; the boot order puts the stick first).
    let stick = qemu_tests::machine::tamper::TamperedStick::copy_of(&built.image).expect("copy");
    let uki = stick
        .read_esp_file(image_builder::boot::shim::UKI_BEHIND_SHIM_ESP_PATH)
        .expect("UKI");
    let bootloader =
        qemu_tests::machine::tamper::unsigned_uki(&uki, stick.scratch()).expect("sbattach");
    let mut disks: Vec<HostileDisk> =
        make_hostile_disks(dir.path(), Some(&bootloader)).expect("disks are made");
    let clone = stick_clone(&built.image);
    disks.push(HostileDisk {
        path: clone.path.clone(),
        bus: Bus::Nvme,
        what: "NVMe disk holding a changed copy of the stick",
    });
    let before: Vec<String> = disks.iter().map(|d| d.sha256().expect("hash")).collect();

    let mut config = MachineConfig::new(name)
        .stick(&built.image)
        .secure_boot(SecureBootKeys::test_keys());
    for (i, disk) in disks.iter().enumerate() {
        config.extra_args.extend(disk.qemu_args(i));
    }
    let mut vm = Machine::start(&config).expect("QEMU starts");
    // Controllers probe late under TCG: the kiosk prints a new storage line
    // whenever the devices change; wait for the one that has them all, each
    // one processed by udev (under load the first line may come before that).
    let line = vm
        .wait_for_line(BOOT_TIMEOUT, |l| {
            parse_storage(l).is_some_and(|r| {
                r.foreign >= EXPECTED_FOREIGN && r.devices.iter().all(|d| d.settled)
            })
        })
        .unwrap_or_else(|e| panic!("{e:#}"));
    let report = parse_storage(&line).expect("storage line parses");
    let boot_secs = vm.elapsed().as_secs_f64();
    // The session runs a little; then a clean ACPI power-off as a user would do.
    std::thread::sleep(Duration::from_secs(5));
    let exit = vm.press_power_button(Duration::from_secs(120));
    let console = vm.console();
    vm.keep_console(name).expect("keeps log");
    let context = || format!("storage line: {line}\n{}", vm.diagnostics());
    exit.unwrap_or_else(|e| panic!("the machine powers off: {e:#}"));

    let status = console
        .lines()
        .find_map(parse_status)
        .unwrap_or_else(|| panic!("no status line\n{}", context()));
    assert!(status.ok, "the session may start: {}", context());
    assert!(report.ok, "{}", context());
    for earlier in console.lines().filter_map(parse_storage) {
        assert!(
            earlier.ok,
            "every storage line is ok: {earlier:?}\n{}",
            context()
        );
    }
    assert!(!report.swap_active, "{}", context());
    let foreign: Vec<_> = report
        .devices
        .iter()
        .filter(|d| d.role == "foreign")
        .collect();
    assert_eq!(foreign.len(), EXPECTED_FOREIGN, "{}", context());
    for d in &foreign {
        assert!(d.read_only && !d.mounted && !d.swap, "{d:?}\n{}", context());
    }
    let copies = foreign.iter().filter(|d| d.copies_stick).count();
    assert_eq!(
        copies,
        CLONE_DEVICES,
        "the clone's disk and partitions: {}",
        context()
    );
    assert_eq!(report.copies_of_stick, CLONE_DEVICES, "{}", context());
    let stick: Vec<_> = report
        .devices
        .iter()
        .filter(|d| d.role == "stick")
        .collect();
    assert_eq!(
        stick.len(),
        4,
        "stick disk + ESP, root, verity: {}",
        context()
    );
    for d in &stick {
        assert!(
            d.read_only,
            "the stick is read-only too: {d:?}\n{}",
            context()
        );
    }
    assert!(
        foreign.iter().any(|d| d.name.starts_with("nvme"))
            && foreign.iter().any(|d| d.name.starts_with("vd")),
        "{}",
        context()
    );
    // Foreign filesystems are gone from the kernel; the stick's own stay.
    for gone in ["ext4", "btrfs", "xfs", "ntfs3", "hfsplus", "exfat", "isofs"] {
        assert!(
            !report.filesystems.iter().any(|f| f == gone),
            "{gone} is still in the kernel: {:?}",
            report.filesystems
        );
    }
    for needed in ["fat", "squashfs"] {
        assert!(
            report.filesystems.iter().any(|f| f == needed),
            "{needed} missing: {:?}",
            report.filesystems
        );
    }
    let built_fs = built.manifest["kernel-filesystems"]
        .as_array()
        .expect("manifest lists kernel-filesystems");
    assert!(built_fs.iter().any(|f| f == "fat") && !built_fs.iter().any(|f| f == "ext4"));

    // The initrd has drivers only for USB storage, and the second USB stick is
    // not authorized: no foreign disk exists there to lock.
    let switch_root = console
        .find("Starting initrd-switch-root.service")
        .unwrap_or_else(|| panic!("no switch-root on the console\n{}", context()));
    let initrd_locks = console[..switch_root]
        .lines()
        .filter(|l| l.contains(STORAGE_LOCK_PREFIX) && l.contains("is not the stick"))
        .count();
    // What the lock costs: the helper's own time for every device, both phases.
    let (lock_runs, lock_ms) = storage_lock_times(&console);
    assert_eq!(
        initrd_locks,
        0,
        "the second USB stick is no disk in the initrd: {}",
        context()
    );
    if let Some((pattern, at)) = find_forbidden(&console) {
        panic!(
            "forbidden console output {pattern:?} in {at:?}\n{}",
            context()
        );
    }

    let mut changed = 0;
    for (disk, was) in disks.iter().zip(&before) {
        let now = disk.sha256().expect("hash");
        if &now != was {
            changed += 1;
            eprintln!("{}: CHANGED {was} -> {now}", disk.what);
        }
    }
    eprintln!(
        "storage {name}: {} devices seen, {} of {} foreign locked ({initrd_locks} in the initrd), lock helper ran {lock_runs} times for {lock_ms:.0} ms in all, storage line {boot_secs:.1} s after QEMU start, {changed} of {} disks changed",
        report.seen,
        report.locked,
        report.foreign,
        disks.len()
    );
    assert_eq!(changed, 0, "a disk of the PC was written\n{}", context());
}

#[test]
fn pc_disks_another_os_esp_and_a_clone_of_the_stick_are_locked_and_untouched() {
    run_storage_scenario("storage-lock");
}
