//! Kernel modules the image must not carry: every filesystem it does not mount
//! itself (the PC's ext4, NTFS, btrfs, XFS, HFS+... can then never be mounted,
//! and their parsers never see a hostile disk), network filesystems, network
//! protocols the stick never speaks (each one a parser a local process could
//! reach with a socket), the buses that give a plugged-in device DMA (Thunderbolt,
//! FireWire), Bluetooth, and efi-pstore (which would write crash logs into the PC's firmware
//! NVRAM). The kernel enforces module signatures, so what is removed here cannot
//! come back from anywhere else.
//!
//! What stays is recorded in the manifest (`kernel-filesystems`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::root::module_file::PACKED_SUFFIXES;
use crate::runner::CommandRunExt;

/// Filesystem module folders under `kernel/fs` that the image needs: the ESP
/// (fat + nls), the root (squashfs under overlayfs), and what systemd mounts.
pub const KEPT_FILESYSTEMS: &[&str] = &[
    "autofs",
    "configfs",
    "efivarfs",
    "fat",
    "nls",
    "overlayfs",
    "squashfs",
];

/// Other modules and module folders removed by path (relative to the kernel's
/// module folder); one module by its `.ko`, packed or not (`module_file.rs`).
pub const REMOVED_MODULES: &[&str] = &[
    "kernel/drivers/firmware/efi/efi-pstore.ko",
    // DMA from a plugged-in device: PCIe tunnelled over Thunderbolt/USB4, FireWire.
    "kernel/drivers/thunderbolt",
    "kernel/drivers/net/thunderbolt",
    "kernel/drivers/firewire",
    // Bluetooth: a radio the stick never uses (no pairing, no daemon), and a
    // kernel stack reachable from anyone within range while a controller is up.
    "kernel/net/bluetooth",
    "kernel/drivers/bluetooth",
    // Network protocols: the stick speaks IPv4/IPv6 (TCP, UDP, ESP) over Ethernet
    // or Wi-Fi, and nothing else.
    "kernel/net/6lowpan",
    "kernel/net/9p",
    "kernel/net/appletalk",
    "kernel/net/atm",
    "kernel/net/ax25",
    "kernel/net/batman-adv",
    "kernel/net/can",
    "kernel/net/ceph",
    "kernel/net/dccp",
    "kernel/net/hsr",
    "kernel/net/ieee802154",
    "kernel/net/kcm",
    "kernel/net/l2tp",
    "kernel/net/lapb",
    "kernel/net/mac802154",
    "kernel/net/mpls",
    "kernel/net/netrom",
    "kernel/net/nfc",
    "kernel/net/nsh",
    "kernel/net/openvswitch",
    "kernel/net/phonet",
    "kernel/net/qrtr",
    "kernel/net/rds",
    "kernel/net/rose",
    "kernel/net/rxrpc",
    "kernel/net/sctp",
    "kernel/net/smc",
    "kernel/net/tipc",
];

/// What the pruning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePruning {
    /// Folders and files under `kernel/fs` kept (sorted).
    pub kept_filesystems: Vec<String>,
    /// Folders and files under `kernel/fs` removed (sorted).
    pub removed_filesystems: Vec<String>,
}

/// Splits the entries of `kernel/fs` into kept and removed (pure; for tests).
pub fn plan(fs_entries: &[String]) -> ModulePruning {
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for entry in fs_entries {
        if KEPT_FILESYSTEMS.contains(&entry.as_str()) {
            kept.push(entry.clone());
        } else {
            removed.push(entry.clone());
        }
    }
    kept.sort();
    removed.sort();
    ModulePruning {
        kept_filesystems: kept,
        removed_filesystems: removed,
    }
}

/// Removes the modules from the tree at `root` and rebuilds modules.dep inside it.
pub fn prune_modules(root: &Path, kernel_version: &str) -> Result<ModulePruning> {
    let modules = root.join("usr/lib/modules").join(kernel_version);
    let fs_dir = modules.join("kernel/fs");
    let entries: Vec<String> = std::fs::read_dir(&fs_dir)
        .with_context(|| format!("cannot list {}", fs_dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", fs_dir.display()))?;
    let pruning = plan(&entries);
    let doomed = pruning
        .removed_filesystems
        .iter()
        .map(|e| fs_dir.join(e))
        .chain(
            REMOVED_MODULES
                .iter()
                .flat_map(|m| removal_paths(&modules, m)),
        );
    for path in doomed {
        remove(&path)?;
    }
    crate::root::module_classes::prune(&modules, root)?;
    Command::new("chroot")
        .arg(root)
        .args(["depmod", "-a", kernel_version])
        .run_logged()
        .context("depmod after removing modules")?;
    tracing::info!(
        "kernel filesystems kept: {}; removed {} others",
        pruning.kept_filesystems.join(" "),
        pruning.removed_filesystems.len()
    );
    Ok(pruning)
}

/// The paths that `entry` of [`REMOVED_MODULES`] stands for: a folder, or a
/// module's file in each form it may take.
fn removal_paths(modules: &Path, entry: &str) -> Vec<PathBuf> {
    if entry.ends_with(".ko") {
        PACKED_SUFFIXES
            .iter()
            .map(|suffix| modules.join(format!("{entry}{suffix}")))
            .collect()
    } else {
        vec![modules.join(entry)]
    }
}

fn remove(path: &PathBuf) -> Result<()> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_goes_in_any_form_and_a_folder_as_named() {
        let modules = Path::new("/m");
        let cases: [(&str, &[&str]); 2] = [
            (
                "kernel/drivers/firmware/efi/efi-pstore.ko",
                &[
                    "/m/kernel/drivers/firmware/efi/efi-pstore.ko",
                    "/m/kernel/drivers/firmware/efi/efi-pstore.ko.xz",
                    "/m/kernel/drivers/firmware/efi/efi-pstore.ko.zst",
                    "/m/kernel/drivers/firmware/efi/efi-pstore.ko.gz",
                ],
            ),
            ("kernel/net/sctp", &["/m/kernel/net/sctp"]),
        ];
        for (entry, want) in cases {
            let want: Vec<PathBuf> = want.iter().map(PathBuf::from).collect();
            assert_eq!(removal_paths(modules, entry), want, "{entry}");
        }
    }

    #[test]
    fn every_removed_module_is_named_by_its_ko_or_is_a_folder() {
        for entry in REMOVED_MODULES {
            assert!(!entry.contains(".ko."), "{entry}: name the .ko");
        }
    }

    #[test]
    fn foreign_filesystems_go_and_the_stick_s_own_stay() {
        let entries: Vec<String> = [
            "ext4",
            "btrfs",
            "xfs",
            "ntfs3",
            "hfsplus",
            "fat",
            "nls",
            "squashfs",
            "overlayfs",
            "efivarfs",
            "autofs",
            "configfs",
            "jbd2",
            "nfs",
            "smb",
            "fuse",
            "pstore",
            "binfmt_misc.ko.xz",
            "mbcache.ko.xz",
            "isofs",
            "udf",
            "exfat",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let plan = plan(&entries);
        assert_eq!(
            plan.kept_filesystems,
            [
                "autofs",
                "configfs",
                "efivarfs",
                "fat",
                "nls",
                "overlayfs",
                "squashfs"
            ]
        );
        assert_eq!(
            plan.removed_filesystems,
            [
                "binfmt_misc.ko.xz",
                "btrfs",
                "exfat",
                "ext4",
                "fuse",
                "hfsplus",
                "isofs",
                "jbd2",
                "mbcache.ko.xz",
                "nfs",
                "ntfs3",
                "pstore",
                "smb",
                "udf",
                "xfs"
            ]
        );
    }
}
