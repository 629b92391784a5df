//! udev's hardware database, rebuilt without its name lists. The vendor and
//! model names of PCI, USB, ACPI, Bluetooth and SDIO devices and the owners of
//! network cards' address blocks (`20-*-vendor-*.hwdb`, `20-OUI.hwdb`) only
//! label devices for people reading `lsusb` or `udevadm info`; the stick shows
//! no device names and nothing on it reads them. What it does read stays: key
//! remaps of laptops' keyboards, touchpads, mice, pointing sticks, sensors,
//! autosuspend quirks. The database's sources go as well: only
//! `systemd-hwdb update`, run here at build time, reads them.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::runner::CommandRunExt;

/// The compiled database, and its sources, in the tree.
pub const HWDB_BIN: &str = "usr/lib/udev/hwdb.bin";
pub const HWDB_SOURCES: &str = "usr/lib/udev/hwdb.d";

/// Whether a source file of the database only names devices (left out).
pub fn only_names(file: &str) -> bool {
    file.starts_with("20-")
        && (file.contains("-vendor") || file == "20-OUI.hwdb")
        && file.ends_with(".hwdb")
}

/// What the rebuild changed: the compiled database's size before and after,
/// and the sources left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HwdbRebuild {
    pub bin_before: u64,
    pub bin_after: u64,
    pub sources_removed: u64,
}

/// Rebuilds the tree's database from its sources but the name lists (with the
/// tree's own `systemd-hwdb`), then removes the sources. A tree without udev's
/// database is left as it is.
pub fn rebuild(root: &Path) -> Result<Option<HwdbRebuild>> {
    let bin = root.join(HWDB_BIN);
    let sources = root.join(HWDB_SOURCES);
    if !bin.exists() || !sources.is_dir() {
        return Ok(None);
    }
    let bin_before = len(&bin)?;
    let mut files: Vec<_> = std::fs::read_dir(&sources)
        .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
        .with_context(|| format!("cannot list {}", sources.display()))?;
    files.sort_by_key(|e| e.file_name());
    let mut sources_removed = 0;
    for entry in files
        .iter()
        .filter(|e| only_names(&e.file_name().to_string_lossy()))
    {
        sources_removed += remove(&entry.path())?;
    }
    // systemd-hwdb links its new file into place through /proc (ENOSYS
    // without): a private mount namespace gives the tree one for this run only.
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(concat!(
            "set -e; mount -t proc proc \"$1/proc\"; ",
            "exec chroot \"$1\" systemd-hwdb update --usr --strict"
        ))
        .arg("hwdb-update")
        .arg(root)
        .run_logged()
        .context("systemd-hwdb update in the tree")?;
    for entry in &files {
        if entry.path().exists() {
            sources_removed += remove(&entry.path())?;
        }
    }
    let bin_after = len(&bin)?;
    tracing::info!(
        "udev's hardware database without device names: {:.1} -> {:.1} MiB, its sources \
         ({:.1} MiB) left out",
        bin_before as f64 / (1024.0 * 1024.0),
        bin_after as f64 / (1024.0 * 1024.0),
        sources_removed as f64 / (1024.0 * 1024.0)
    );
    Ok(Some(HwdbRebuild {
        bin_before,
        bin_after,
        sources_removed,
    }))
}

/// A file's size (not followed through a link).
fn len(path: &Path) -> Result<u64> {
    Ok(std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len())
}

/// Removes one source file; its size.
fn remove(path: &Path) -> Result<u64> {
    let len = len(path)?;
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_lists_go_and_what_the_stick_reads_stays() {
        // (source file of systemd 257, only names?)
        let cases = [
            ("20-pci-vendor-model.hwdb", true),
            ("20-usb-vendor-model.hwdb", true),
            ("20-OUI.hwdb", true),
            ("20-acpi-vendor.hwdb", true),
            ("20-bluetooth-vendor-product.hwdb", true),
            ("20-sdio-vendor-model.hwdb", true),
            ("20-pci-classes.hwdb", false),
            ("20-usb-classes.hwdb", false),
            ("20-dmi-id.hwdb", false),
            ("60-keyboard.hwdb", false),
            ("60-evdev.hwdb", false),
            ("60-sensor.hwdb", false),
            ("65-libwacom.hwdb", false),
            ("70-mouse.hwdb", false),
            ("70-touchpad.hwdb", false),
            ("60-autosuspend.hwdb", false),
            ("20-vendor-notes.txt", false),
        ];
        for (file, names) in cases {
            assert_eq!(only_names(file), names, "{file}");
        }
    }

    #[test]
    fn a_tree_without_udevs_database_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(rebuild(dir.path()).expect("no database"), None);
    }
}
