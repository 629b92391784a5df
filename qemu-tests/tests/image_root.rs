//! What the built images' roots hold, read from the images' bytes (not from the
//! tree they were made of): no program that gains rights by being run, no tool
//! to change accounts, no perl, no package manager, none of the kernel modules
//! the builder removes (network protocols the stick never speaks, Thunderbolt,
//! FireWire, hardware classes the stick never drives, the Wi-Fi stack where
//! nothing joins Wi-Fi), and no Mesa driver or LLVM.
//! No boot needed.

use std::collections::BTreeSet;

use image_builder::config::wifi::FirmwareFamily;
use image_builder::root::harden::REMOVED_MODULES;
use image_builder::root::module_file::is_module_file;
use image_builder::root::privileges::REMOVED_PROGRAMS;
use qemu_tests::machine::root_listing::{RootEntry, RootSquashfs};

const WIFI_IMAGE: (&str, &str) = ("qemu-tests/configs/conference-wifi.toml", "conference-wifi");

/// Named here as well as in the builder, so that emptying the builder's lists
/// cannot make this test pass.
const NEVER_IN_A_ROOT: &[&str] = &[
    "usr/bin/su",
    "usr/bin/passwd",
    "usr/bin/perl",
    "usr/lib/x86_64-linux-gnu/perl-base",
    // No package manager (`root/package_manager.rs`).
    "usr/bin/apt",
    "usr/bin/apt-get",
    "usr/bin/dpkg",
    "usr/bin/sqv",
];
const NEVER_A_MODULE: &[&str] = &[
    "kernel/net/rxrpc",
    "kernel/net/sctp",
    "kernel/drivers/thunderbolt",
    // It would write crash logs into the PC's firmware.
    "kernel/drivers/firmware/efi/efi-pstore.ko",
    // Storage stacks that would assemble the PC's disks, a self-test
    // (`root/unused_stacks.rs`).
    "kernel/drivers/md/md-mod.ko",
    "kernel/drivers/md/raid456.ko",
    "kernel/drivers/md/dm-thin-pool.ko",
    "kernel/lib/test_bpf.ko",
    // A server's RAID adapter, network disks (iSCSI).
    "kernel/drivers/scsi/hpsa.ko",
    "kernel/drivers/scsi/iscsi_tcp.ko",
];
/// Nothing under these module folders: hardware classes the stick never drives
/// whose modules no kept module needs (`root/module_classes.rs`).
const NO_MODULE_UNDER: &[&str] = &[
    "kernel/drivers/infiniband/hw/",
    "kernel/drivers/comedi/",
    "kernel/drivers/iio/light/",
    "kernel/drivers/scsi/qla2xxx/",
    "kernel/drivers/media/usb/dvb-usb-v2/",
    "kernel/drivers/net/can/",
    "kernel/drivers/md/dm-vdo/",
    "kernel/drivers/md/bcache/",
    "kernel/sound/firewire/",
    "kernel/drivers/media/usb/em28xx/",
];
/// The Wi-Fi stack: in a root with iwd only (`root/module_classes.rs`).
const WIFI_MODULES_UNDER: &[&str] = &[
    "kernel/drivers/net/wireless/",
    "kernel/net/mac80211/",
    "kernel/net/wireless/",
];
const WIFI_DAEMON: &str = "usr/libexec/iwd";

/// Module files under [`WIFI_MODULES_UNDER`] in a root listing.
fn wifi_modules(entries: &[RootEntry]) -> Vec<&str> {
    entries
        .iter()
        .filter(|e| e.kind == "file")
        .filter_map(|e| e.path.strip_prefix("usr/lib/modules/"))
        .filter(|rest| {
            let in_kernel = rest.split_once('/').map_or("", |(_, p)| p);
            WIFI_MODULES_UNDER.iter().any(|f| in_kernel.starts_with(f))
        })
        .collect()
}

/// Mesa's GPU drivers and LLVM (the stick draws in software): no file whose
/// path starts so.
const NEVER_A_PATH_PREFIX: &[&str] = &[
    "usr/lib/x86_64-linux-gnu/libgallium-",
    "usr/lib/x86_64-linux-gnu/libLLVM",
    "usr/lib/x86_64-linux-gnu/libz3.so",
    "usr/lib/x86_64-linux-gnu/dri/",
    "usr/lib/x86_64-linux-gnu/gbm/",
    // udev's database is compiled at build time; its sources go (`root/hwdb.rs`).
    "usr/lib/udev/hwdb.d/",
    // No package manager, library or database (`root/package_manager.rs`).
    "usr/lib/x86_64-linux-gnu/libapt-",
    "var/lib/dpkg/",
    "var/lib/apt/",
    "var/cache/apt/",
    "etc/apt/",
];

fn problems(entries: &[RootEntry]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in entries {
        if entry.kind == "file" && entry.mode & 0o6000 != 0 {
            found.push(format!("setuid/setgid {:o} {}", entry.mode, entry.path));
        }
        let removed = REMOVED_PROGRAMS.iter().chain(NEVER_IN_A_ROOT);
        if removed.clone().any(|p| entry.path == *p) {
            found.push(format!("present: {}", entry.path));
        }
        if entry.path.starts_with("usr/bin/perl5.")
            || NEVER_A_PATH_PREFIX
                .iter()
                .any(|p| entry.path.starts_with(p))
        {
            found.push(format!("present: {}", entry.path));
        }
        if let Some(rest) = entry.path.strip_prefix("usr/lib/modules/") {
            let in_kernel = rest.split_once('/').map_or("", |(_, p)| p);
            let doomed = REMOVED_MODULES.iter().chain(NEVER_A_MODULE);
            if doomed
                .clone()
                .any(|m| in_kernel == *m || is_module_file(in_kernel, m))
                || (entry.kind == "file"
                    && NO_MODULE_UNDER.iter().any(|f| in_kernel.starts_with(f)))
            {
                found.push(format!("module present: {}", entry.path));
            }
            // The root's compressor packs the modules (`trees/base.rs`).
            if entry.path.ends_with(".ko.xz") {
                found.push(format!("module packed twice: {}", entry.path));
            }
        }
    }
    found
}

#[test]
fn the_demo_and_conference_roots_hold_no_setuid_program_account_tool_perl_or_removed_module() {
    for (config, out) in [
        ("examples/demo.toml", "demo"),
        qemu_tests::lab::conference_lab::CONFERENCE_IMAGE,
    ] {
        let built = qemu_tests::built_image(config, out).expect("image builds");
        let root = RootSquashfs::open(&built.image).expect("root read");
        let entries = root.listing().expect("root listed");
        assert!(
            entries.iter().any(|e| e.path == "usr/bin/kiosk") && entries.len() > 1000,
            "{config}: the listing is not a whole root ({} entries)",
            entries.len()
        );
        let found = problems(&entries);
        assert!(found.is_empty(), "{config}:\n{}", found.join("\n"));
        // Neither joins Wi-Fi: no daemon, so no Wi-Fi stack either.
        assert!(!entries.iter().any(|e| e.path == WIFI_DAEMON), "{config}");
        let wifi = wifi_modules(&entries);
        assert!(
            wifi.is_empty(),
            "{config}: Wi-Fi modules without Wi-Fi: {wifi:?}"
        );
        let hwdb = root
            .read(image_builder::root::hwdb::HWDB_BIN)
            .expect("udev's database read");
        let holds = |what: &[u8]| hwdb.windows(what.len()).any(|w| w == what);
        assert!(
            holds(b"KEYBOARD_KEY_") && holds(b"EVDEV_ABS_") && holds(b"MOUSE_DPI"),
            "{config}: the database lost what the stick reads (key remaps, touchpads, mice)"
        );
        // The name lists are 12.5 of Debian's 13.0 MiB (PCI, USB, network
        // cards' address blocks, ...); the DMI and Hyper-V lists stay.
        assert!(
            !holds(b"ID_OUI_FROM_DATABASE") && hwdb.len() < 2 << 20,
            "{config}: the database still names devices ({} bytes)",
            hwdb.len()
        );
        eprintln!(
            "{config}: {} entries, none setuid/setgid, no account tools, no perl, no package manager; \
             udev's database {} bytes, without device names",
            entries.len(),
            hwdb.len()
        );
    }
}

/// The firmware names a module declares (`MODULE_FIRMWARE`), read from its
/// bytes: `firmware=NAME` strings of its modinfo section.
fn declared_firmware(data: &[u8]) -> Vec<String> {
    let key = b"\0firmware=";
    let mut names = Vec::new();
    let mut at = 0;
    while let Some(i) = data[at..].windows(key.len()).position(|w| w == key) {
        let start = at + i + key.len();
        let end = data[start..]
            .iter()
            .position(|b| *b == 0)
            .map_or(data.len(), |e| start + e);
        names.push(String::from_utf8_lossy(&data[start..end]).into_owned());
        at = end;
    }
    names
}

/// `iwlwifi-cc-a0-77.ucode` -> `iwlwifi-cc-a0`.
fn ucode_base(name: &str) -> Option<&str> {
    let (base, version) = name.strip_suffix(".ucode")?.rsplit_once('-')?;
    version.bytes().all(|b| b.is_ascii_digit()).then_some(base)
}

/// The Wi-Fi image carries firmware for each family's cards, as their drivers
/// in the image declare it (read from the modules' own bytes), one loadable
/// version per Intel card, and no Bluetooth firmware: the image has no
/// Bluetooth driver.
#[test]
fn the_wifi_root_carries_what_its_wifi_drivers_name_and_no_bluetooth() {
    let built = qemu_tests::built_image(WIFI_IMAGE.0, WIFI_IMAGE.1).expect("image builds");
    let root = RootSquashfs::open(&built.image).expect("root read");
    let entries = root.listing().expect("root listed");
    let firmware: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.kind != "dir")
        .filter_map(|e| e.path.strip_prefix("usr/lib/firmware/"))
        .collect();
    let bluetooth: Vec<&&str> = firmware
        .iter()
        .filter(|p| {
            [
                "rtl_bt/",
                "ibt-",
                "intel/ibt-",
                "qca/",
                "mediatek/BT_RAM_CODE",
            ]
            .iter()
            .any(|prefix| p.starts_with(prefix))
        })
        .collect();
    assert!(bluetooth.is_empty(), "Bluetooth firmware: {bluetooth:?}");
    let bluetooth_modules: Vec<&str> = entries
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| {
            p.contains("/kernel/net/bluetooth/") || p.contains("/kernel/drivers/bluetooth/")
        })
        .collect();
    assert!(bluetooth_modules.is_empty(), "{bluetooth_modules:?}");
    assert!(entries.iter().any(|e| e.path == WIFI_DAEMON), "no iwd");
    let wifi = wifi_modules(&entries);
    for stack in [
        "/kernel/net/mac80211/mac80211.ko",
        "/kernel/net/wireless/cfg80211.ko",
    ] {
        assert!(
            wifi.iter().any(|m| m.ends_with(stack)),
            "{stack} missing: {wifi:?}"
        );
    }
    let mut intel_bases = BTreeSet::new();
    for family in FirmwareFamily::ALL {
        let folder = format!("/{}/", family.driver_folder());
        let modules: Vec<&RootEntry> = entries
            .iter()
            .filter(|e| e.kind == "file" && e.path.contains(&folder) && e.path.ends_with(".ko"))
            .collect();
        let mut named = BTreeSet::new();
        for module in &modules {
            named.extend(declared_firmware(
                &root.read(&module.path).expect("module read"),
            ));
        }
        let present = named
            .iter()
            .filter(|n| firmware.contains(n.as_str()))
            .count();
        println!(
            "{}: {} modules declare {} firmware names; {present} of them are in the image",
            family.name(),
            modules.len(),
            named.len()
        );
        assert!(
            present > 0,
            "{}: none of {named:?} is in the image",
            family.name()
        );
        if family == FirmwareFamily::Intel {
            intel_bases.extend(
                named
                    .iter()
                    .filter_map(|n| ucode_base(n).map(str::to_string)),
            );
        }
    }
    // Intel ships several API versions of each card's code; the driver loads
    // one, and that one is all the image carries.
    let mut ucode_per_card: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for file in firmware.iter().filter(|f| f.starts_with("iwlwifi-")) {
        if let Some(base) = ucode_base(file) {
            ucode_per_card.entry(base).or_default().push(file);
        }
    }
    assert!(
        !ucode_per_card.is_empty(),
        "no Intel Wi-Fi code in the image"
    );
    for (base, files) in &ucode_per_card {
        assert!(
            intel_bases.contains(*base),
            "{base}: no Intel driver declares it"
        );
        assert_eq!(files.len(), 1, "{base}: {files:?}");
    }
    let counted: u64 = built.manifest["firmware"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|share| share["files"].as_u64())
        .sum();
    assert_eq!(
        counted,
        firmware.len() as u64,
        "the manifest counts the firmware files"
    );
    println!(
        "firmware: {} files, {} Intel cards with one version each, no Bluetooth",
        firmware.len(),
        ucode_per_card.len()
    );
}

#[test]
fn the_check_names_what_it_finds() {
    let entry = |kind: &str, path: &str, mode: u32| RootEntry {
        kind: kind.into(),
        path: path.into(),
        mode,
        uid: 0,
        gid: 0,
    };
    let entries = [
        entry("file", "usr/bin/mount", 0o4755),
        entry("file", "usr/bin/ls", 0o755),
        entry("dir", "tmp", 0o1777),
        entry("dir", "var/mail", 0o2775),
        entry("file", "usr/bin/su", 0o755),
        entry("file", "usr/bin/perl5.40.1", 0o755),
        entry(
            "dir",
            "usr/lib/modules/6.12.0-amd64/kernel/net/rxrpc",
            0o755,
        ),
        entry("dir", "usr/lib/modules/6.12.0-amd64/kernel/net/ipv4", 0o755),
        entry(
            "file",
            "usr/lib/modules/6.12.0-amd64/kernel/drivers/comedi/comedi.ko",
            0o644,
        ),
        entry(
            "file",
            "usr/lib/modules/6.12.0-amd64/kernel/drivers/firmware/efi/efi-pstore.ko.xz",
            0o644,
        ),
        entry(
            "file",
            "usr/lib/modules/6.12.0-amd64/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz",
            0o644,
        ),
        entry("file", "usr/lib/x86_64-linux-gnu/libLLVM.so.19.1", 0o644),
        entry("file", "usr/lib/x86_64-linux-gnu/libgbm.so.1.0.0", 0o644),
        entry("file", "usr/bin/dpkg", 0o755),
        entry("file", "var/lib/dpkg/status", 0o644),
        entry(
            "file",
            "usr/lib/x86_64-linux-gnu/libapt-pkg.so.7.0.0",
            0o644,
        ),
    ];
    assert_eq!(
        problems(&entries),
        [
            "setuid/setgid 4755 usr/bin/mount",
            "present: usr/bin/su",
            "present: usr/bin/perl5.40.1",
            "module present: usr/lib/modules/6.12.0-amd64/kernel/net/rxrpc",
            "module present: usr/lib/modules/6.12.0-amd64/kernel/drivers/comedi/comedi.ko",
            "module present: usr/lib/modules/6.12.0-amd64/kernel/drivers/firmware/efi/efi-pstore.ko.xz",
            "module packed twice: usr/lib/modules/6.12.0-amd64/kernel/drivers/firmware/efi/efi-pstore.ko.xz",
            "module packed twice: usr/lib/modules/6.12.0-amd64/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz",
            "present: usr/lib/x86_64-linux-gnu/libLLVM.so.19.1",
            "present: usr/bin/dpkg",
            "present: var/lib/dpkg/status",
            "present: usr/lib/x86_64-linux-gnu/libapt-pkg.so.7.0.0",
        ]
    );
}
