//! Small readers for sysfs folders.

use std::path::Path;

use anyhow::{Context, Result};

/// Names of the entries of `dir`, sorted; empty when it cannot be read (a
/// missing bus or class simply has no devices).
pub fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The whole-disk kernel name of block device `name` (itself for a disk), from
/// `sys_block` (`/sys/class/block`).
pub fn whole_disk(sys_block: &Path, name: &str) -> Result<String> {
    let dev = sys_block.join(name);
    if !dev.join("partition").exists() {
        return Ok(name.to_string());
    }
    let real =
        std::fs::canonicalize(&dev).with_context(|| format!("cannot resolve {}", dev.display()))?;
    let parent = real
        .parent()
        .and_then(|p| p.file_name())
        .with_context(|| format!("{} has no parent disk", real.display()))?;
    Ok(parent.to_string_lossy().into_owned())
}

/// The kernel name of partition `number` of `disk` (`sda`, 2 -> `sda2`; `nvme0n1`,
/// 1 -> `nvme0n1p1`), found in sysfs, not derived from the names.
pub fn partition_name(sys_block: &Path, disk: &str, number: u32) -> Option<String> {
    entry_names(&sys_block.join(disk))
        .into_iter()
        .find(|entry| {
            std::fs::read_to_string(sys_block.join(disk).join(entry).join("partition"))
                .is_ok_and(|n| n.trim().parse() == Ok(number))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_a_missing_folder_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["sdb", "nvme0n1", "sda1"] {
            std::fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        assert_eq!(entry_names(dir.path()), ["nvme0n1", "sda1", "sdb"]);
        assert!(entry_names(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn partitions_are_found_by_number_and_lead_to_their_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = dir.path().join("devices");
        let sys = dir.path().join("class");
        std::fs::create_dir_all(&sys).expect("mkdir");
        for (disk, parts) in [
            ("sda", &["sda1", "sda2"][..]),
            ("nvme0n1", &["nvme0n1p1"][..]),
        ] {
            std::fs::create_dir_all(devices.join(disk)).expect("disk");
            std::os::unix::fs::symlink(devices.join(disk), sys.join(disk)).expect("link");
            for (number, part) in (1..).zip(parts) {
                std::fs::create_dir_all(devices.join(disk).join(part)).expect("part");
                std::fs::write(
                    devices.join(disk).join(part).join("partition"),
                    format!("{number}\n"),
                )
                .expect("number");
                std::os::unix::fs::symlink(devices.join(disk).join(part), sys.join(part))
                    .expect("link");
            }
        }
        let cases = [
            ("sda", 2, Some("sda2")),
            ("nvme0n1", 1, Some("nvme0n1p1")),
            ("sda", 3, None),
        ];
        for (disk, number, want) in cases {
            assert_eq!(
                partition_name(&sys, disk, number).as_deref(),
                want,
                "{disk} {number}"
            );
        }
        for (name, want) in [("sda2", "sda"), ("nvme0n1p1", "nvme0n1"), ("sda", "sda")] {
            assert_eq!(whole_disk(&sys, name).expect("resolves"), want, "{name}");
        }
    }
}
