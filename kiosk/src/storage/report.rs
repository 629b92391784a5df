//! What the storage lock achieved: every block device the kernel knows, its role,
//! whether it is read-only, mounted or used as swap. Printed as one console line.

use std::path::Path;

use serde::Serialize;

use crate::boot::mounts::{DevNum, MountEntry};
use crate::storage::lock::{holds_stick_root, role_of, Role};

/// One block device as seen at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    pub name: String,
    /// udev has processed the device (and so the lock rule has run for it).
    pub settled: bool,
    pub role: Role,
    pub read_only: bool,
    pub mounted: bool,
    pub swap: bool,
    /// A foreign device on a disk whose GPT carries the stick's root partition
    /// UUID: a copy of the stick's table (or of the whole stick) on the PC.
    pub copies_stick: bool,
}

/// The `"event":"storage"` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageReport {
    pub event: &'static str,
    pub ok: bool,
    /// Storage hardware seen (stick and foreign; virtual devices not counted).
    pub seen: usize,
    /// Foreign devices that are read-only, unmounted and not swap.
    pub locked: usize,
    pub foreign: usize,
    /// Foreign devices that copy the stick's partition UUIDs (locked like any other).
    pub copies_of_stick: usize,
    pub swap_active: bool,
    /// Block filesystems the kernel has or can load (built in or a module).
    pub filesystems: Vec<String>,
    pub devices: Vec<BlockDevice>,
    /// What is wrong (empty when `ok`).
    pub problems: Vec<String>,
}

impl StorageReport {
    pub fn new(
        devices: Vec<BlockDevice>,
        swap_active: bool,
        filesystems: Vec<String>,
    ) -> StorageReport {
        let mut problems = Vec::new();
        // A device the kernel has just added but udev not yet seen is not locked
        // yet; it is reported as unsettled, not as a failure.
        for d in devices
            .iter()
            .filter(|d| d.role == Role::Foreign && d.settled)
        {
            if !d.read_only {
                problems.push(format!("{} (not the stick) is writable", d.name));
            }
            if d.mounted {
                problems.push(format!("{} (not the stick) is mounted", d.name));
            }
            if d.swap {
                problems.push(format!("{} (not the stick) is used as swap", d.name));
            }
        }
        for d in devices
            .iter()
            .filter(|d| d.role == Role::Stick && d.settled)
        {
            if !d.read_only {
                problems.push(format!("{} (the stick) is writable", d.name));
            }
        }
        if swap_active {
            problems.push("swap is active".to_string());
        }
        let foreign: Vec<&BlockDevice> =
            devices.iter().filter(|d| d.role == Role::Foreign).collect();
        StorageReport {
            event: "storage",
            ok: problems.is_empty(),
            seen: devices.iter().filter(|d| d.role != Role::Virtual).count(),
            locked: foreign
                .iter()
                .filter(|d| d.read_only && !d.mounted && !d.swap)
                .count(),
            foreign: foreign.len(),
            copies_of_stick: foreign.iter().filter(|d| d.copies_stick).count(),
            swap_active,
            filesystems,
            devices,
            problems,
        }
    }

    pub fn console_line(&self) -> String {
        crate::console::console_json(self)
    }
}

/// udev's database: one file `bMAJOR:MINOR` per processed block device.
const UDEV_DATA: &str = "/run/udev/data";

impl StorageReport {
    /// Every device has been through udev.
    pub fn settled(&self) -> bool {
        self.devices.iter().all(|d| d.settled)
    }
}

/// Device names listed in `/proc/swaps` (first column, `/dev/` stripped).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(|p| p.strip_prefix("/dev/").unwrap_or(p).to_string())
        .collect()
}

/// Block filesystems: the ones `/proc/filesystems` lists without `nodev`, and the
/// folders under `kernel/fs/` that `modules.dep` lists (module folder names, such
/// as `fat` for vfat). Sorted, unique.
pub fn parse_filesystems(proc_filesystems: &str, modules_dep: &str) -> Vec<String> {
    let mut names: Vec<String> = proc_filesystems
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .chain(modules_dep.lines().filter_map(|l| {
            let path = l.split(':').next()?.strip_prefix("kernel/fs/")?;
            let first = path.split('/').next()?;
            Some(first.split('.').next().unwrap_or(first).to_string())
        }))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Reads sysfs, mountinfo and `/proc/swaps` into a report.
pub fn observe(sys_block: &Path, root_hash: Option<&str>, mounts: &[MountEntry]) -> StorageReport {
    let swaps = parse_swaps(&std::fs::read_to_string("/proc/swaps").unwrap_or_default());
    let stick_disks = crate::boot::device_mapper::verity_root_disks(sys_block);
    let names = crate::sysfs::entry_names(sys_block);
    let devices = names
        .into_iter()
        .map(|name| {
            let read = |file: &str| std::fs::read_to_string(sys_block.join(&name).join(file));
            let devnum: Option<DevNum> = read("dev").ok().and_then(|s| s.trim().parse().ok());
            let role = role_of(sys_block, &name, &stick_disks);
            BlockDevice {
                settled: devnum
                    .is_some_and(|n| Path::new(UDEV_DATA).join(format!("b{n}")).exists()),
                role,
                read_only: read("ro").map(|s| s.trim() == "1").unwrap_or(false),
                mounted: devnum.is_some_and(|n| mounts.iter().any(|m| m.device == n)),
                swap: swaps.contains(&name),
                copies_stick: role == Role::Foreign
                    && holds_stick_root(sys_block, Path::new("/dev"), &name, root_hash),
                name,
            }
        })
        .collect();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let filesystems = parse_filesystems(
        &std::fs::read_to_string("/proc/filesystems").unwrap_or_default(),
        &std::fs::read_to_string(format!("/usr/lib/modules/{release}/modules.dep"))
            .unwrap_or_default(),
    );
    StorageReport::new(devices, !swaps.is_empty(), filesystems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(name: &str, role: Role, read_only: bool, mounted: bool, swap: bool) -> BlockDevice {
        BlockDevice {
            name: name.into(),
            settled: true,
            role,
            read_only,
            mounted,
            swap,
            copies_stick: false,
        }
    }

    #[test]
    fn every_unlocked_foreign_device_is_a_problem() {
        // (name, devices, swap active, problems, locked)
        type Case = (
            &'static str,
            Vec<BlockDevice>,
            bool,
            Vec<&'static str>,
            usize,
        );
        let cases: Vec<Case> = vec![
            (
                "all locked",
                vec![
                    dev("sda", Role::Stick, true, false, false),
                    dev("sda2", Role::Stick, true, false, false),
                    dev("nvme0n1", Role::Foreign, true, false, false),
                    dev("dm-0", Role::Virtual, true, true, false),
                ],
                false,
                vec![],
                1,
            ),
            (
                "writable and mounted",
                vec![dev("vda1", Role::Foreign, false, true, false)],
                false,
                vec![
                    "vda1 (not the stick) is writable",
                    "vda1 (not the stick) is mounted",
                ],
                0,
            ),
            (
                "the stick writable",
                vec![
                    dev("sda", Role::Stick, false, false, false),
                    dev("sda2", Role::Stick, true, false, false),
                ],
                false,
                vec!["sda (the stick) is writable"],
                0,
            ),
            (
                "a copy of the stick, locked",
                vec![
                    dev("sda", Role::Stick, true, false, false),
                    BlockDevice {
                        copies_stick: true,
                        ..dev("nvme0n1", Role::Foreign, true, false, false)
                    },
                ],
                false,
                vec![],
                1,
            ),
            (
                "not yet seen by udev",
                vec![BlockDevice {
                    settled: false,
                    ..dev("nvme0n1", Role::Foreign, false, false, false)
                }],
                false,
                vec![],
                0,
            ),
            (
                "swap",
                vec![dev("sdb2", Role::Foreign, true, false, true)],
                true,
                vec!["sdb2 (not the stick) is used as swap", "swap is active"],
                0,
            ),
        ];
        for (name, devices, swap, problems, locked) in cases {
            let report = StorageReport::new(devices, swap, vec![]);
            assert_eq!(report.problems, problems, "{name}");
            assert_eq!(report.ok, problems.is_empty(), "{name}");
            assert_eq!(report.locked, locked, "{name}");
        }
    }

    #[test]
    fn filesystems_come_from_proc_and_modules_dep() {
        let proc = "nodev\tsysfs\nnodev\ttmpfs\n\text2\n\tsquashfs\n";
        let dep = "kernel/fs/fat/vfat.ko.xz: kernel/fs/fat/fat.ko.xz\n\
                   kernel/fs/fat/fat.ko.xz:\n\
                   kernel/fs/binfmt_misc.ko.xz:\n\
                   kernel/drivers/usb/storage/usb-storage.ko.xz:\n";
        assert_eq!(
            parse_filesystems(proc, dep),
            ["binfmt_misc", "ext2", "fat", "squashfs"]
        );
        assert!(parse_filesystems("", "").is_empty());
    }

    #[test]
    fn swaps_are_parsed_by_device_name() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/sdb2                               partition\t1048572\t\t0\t\t-2\n\
                    /swapfile                               file\t\t1024\t\t0\t\t-3\n";
        assert_eq!(parse_swaps(text), vec!["sdb2", "/swapfile"]);
        assert!(parse_swaps("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
    }

    #[test]
    fn report_line_is_marked_json() {
        let line = StorageReport::new(
            vec![dev("sda", Role::Stick, true, false, false)],
            false,
            vec!["vfat".into()],
        )
        .console_line();
        assert_eq!(
            line,
            "@kiosk@ {\"event\":\"storage\",\"ok\":true,\"seen\":1,\"locked\":0,\"foreign\":0,\
             \"copies_of_stick\":0,\"swap_active\":false,\"filesystems\":[\"vfat\"],\"devices\":[{\"name\":\"sda\",\"settled\":true,\"role\":\"stick\",\
             \"read_only\":true,\"mounted\":false,\"swap\":false,\"copies_stick\":false}],\"problems\":[]}"
        );
    }
}
