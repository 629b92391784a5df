//! Firmware: only what the image's drivers can load. Debian's firmware packages
//! carry every card's files (Wi-Fi, Bluetooth, GPUs of whole product lines);
//! the image keeps what its kernel modules name, read from the modules
//! themselves with modinfo, and nothing else (`plan` has the rules). What stays
//! is recorded in the manifest (`firmware`), per Wi-Fi family.

pub mod plan;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use stick_manifest::FirmwareShare;

use crate::root::diet::{remove_empty_folders, walk};
use crate::runner::CommandRunExt;
use plan::{FirmwareFile, ModuleFirmware, Owner};

/// The firmware folder, relative to the root (`/lib` is a link to `/usr/lib`).
pub const FIRMWARE_FOLDER: &str = "usr/lib/firmware";

/// What the pruning kept (per owner) and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareReport {
    pub kept: Vec<FirmwareShare>,
    pub removed_files: u64,
    pub removed_bytes: u64,
}

/// Parses modinfo's output for many modules: each starts with `filename:`.
pub fn parse_modinfo(text: &str) -> Vec<ModuleFirmware> {
    let mut modules: Vec<ModuleFirmware> = Vec::new();
    for line in text.lines() {
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        match (field, modules.last_mut()) {
            ("filename", _) => modules.push(ModuleFirmware {
                module: value.trim().to_string(),
                names: Vec::new(),
            }),
            ("firmware", Some(module)) => module.names.push(value.trim().to_string()),
            _ => {}
        }
    }
    modules
}

/// Removes from `root`'s firmware folder every file no module of
/// `kernel_version` can load.
pub fn prune(root: &Path, kernel_version: &str) -> Result<FirmwareReport> {
    let folder = root.join(FIRMWARE_FOLDER);
    let files = firmware_files(&folder)?;
    if files.is_empty() {
        return Ok(FirmwareReport::default());
    }
    let modules = modules_of(root, kernel_version)?;
    let plan = plan::plan(&modules, &files);
    let mut report = FirmwareReport::default();
    let mut kept: BTreeMap<String, FirmwareShare> = BTreeMap::new();
    for file in &files {
        match plan.kept.get(&file.path) {
            Some(owner) => add_share(&mut kept, *owner, file.size),
            None => {
                let path = folder.join(&file.path);
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                report.removed_files += 1;
                report.removed_bytes += file.size;
            }
        }
    }
    remove_empty_folders(&folder)?;
    report.kept = kept.into_values().collect();
    for share in &report.kept {
        tracing::info!(
            "firmware for {}: {} files, {:.1} MiB",
            share.drivers,
            share.files,
            share.bytes as f64 / (1024.0 * 1024.0)
        );
    }
    tracing::info!(
        "firmware no driver of the image loads: {} files, {:.1} MiB left out",
        report.removed_files,
        report.removed_bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(report)
}

fn add_share(shares: &mut BTreeMap<String, FirmwareShare>, owner: Owner, bytes: u64) {
    let drivers = match owner {
        Some(family) => format!("{}-wifi", family.name()),
        None => "other".to_string(),
    };
    let share = shares.entry(drivers.clone()).or_insert(FirmwareShare {
        drivers,
        files: 0,
        bytes: 0,
    });
    share.files += 1;
    share.bytes += bytes;
}

/// Every file and symlink under `folder`, relative to it.
fn firmware_files(folder: &Path) -> Result<Vec<FirmwareFile>> {
    let mut files = Vec::new();
    walk(folder, &mut |path, meta| {
        let relative = path.strip_prefix(folder).unwrap_or(path);
        let link = meta
            .file_type()
            .is_symlink()
            .then(|| std::fs::read_link(path).ok())
            .flatten()
            .and_then(|target| link_target(relative, &target));
        files.push(FirmwareFile {
            path: relative.to_string_lossy().into_owned(),
            size: if meta.is_file() { meta.len() } else { 0 },
            link,
        });
    })?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// A symlink's target relative to the firmware folder (`None` outside it).
fn link_target(link: &Path, target: &Path) -> Option<String> {
    let joined = if target.is_absolute() {
        ["/usr/lib/firmware", "/lib/firmware"]
            .iter()
            .find_map(|prefix| target.strip_prefix(prefix).ok())?
            .to_path_buf()
    } else {
        link.parent().unwrap_or(Path::new("")).join(target)
    };
    let mut parts: Vec<String> = Vec::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// Every module of the kernel and the firmware it names, read by the image's
/// own modinfo.
fn modules_of(root: &Path, kernel_version: &str) -> Result<Vec<ModuleFirmware>> {
    let folder = Path::new("/usr/lib/modules").join(kernel_version);
    let script = format!(
        "find '{}' -name '*.ko*' -print0 | sort -z | xargs -0 modinfo -k '{kernel_version}'",
        folder.display()
    );
    let out = Command::new("chroot")
        .arg(root)
        .args(["sh", "-c", &script])
        .run_capture()
        .context("modinfo: the firmware the image's modules name")?;
    Ok(parse_modinfo(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modinfo_output_is_read_per_module() {
        let text = "filename:       /usr/lib/modules/6.12/kernel/a/iwlwifi.ko.xz\n\
                    license:        GPL\n\
                    firmware:       iwlwifi-cc-a0-77.ucode\n\
                    firmware:       iwlwifi-so-a0-gf-a0-89.ucode\n\
                    alias:          pci:v00008086d*\n\
                    filename:       /usr/lib/modules/6.12/kernel/b/vfat.ko.xz\n\
                    description:    VFAT filesystem support: not firmware\n";
        let modules = parse_modinfo(text);
        assert_eq!(
            modules,
            vec![
                ModuleFirmware {
                    module: "/usr/lib/modules/6.12/kernel/a/iwlwifi.ko.xz".into(),
                    names: vec![
                        "iwlwifi-cc-a0-77.ucode".into(),
                        "iwlwifi-so-a0-gf-a0-89.ucode".into()
                    ],
                },
                ModuleFirmware {
                    module: "/usr/lib/modules/6.12/kernel/b/vfat.ko.xz".into(),
                    names: vec![],
                },
            ]
        );
    }

    #[test]
    fn link_targets_are_read_relative_to_the_firmware_folder() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("a/b.bin", "c.bin", Some("a/c.bin")),
            ("a/b.bin", "../c/d.bin", Some("c/d.bin")),
            ("b.bin", "/lib/firmware/x/y.bin", Some("x/y.bin")),
            ("b.bin", "/usr/lib/firmware/y.bin", Some("y.bin")),
            ("b.bin", "/etc/y.bin", None),
            ("b.bin", "../../y.bin", None),
        ];
        for (link, target, want) in cases {
            assert_eq!(
                link_target(Path::new(link), Path::new(target)).as_deref(),
                *want,
                "{link} -> {target}"
            );
        }
    }

    #[test]
    fn shares_are_counted_per_owner_in_name_order() {
        use crate::config::wifi::FirmwareFamily;
        let mut shares = BTreeMap::new();
        for (owner, bytes) in [
            (Some(FirmwareFamily::Realtek), 10),
            (None, 1),
            (Some(FirmwareFamily::Intel), 5),
            (Some(FirmwareFamily::Realtek), 7),
        ] {
            add_share(&mut shares, owner, bytes);
        }
        let got: Vec<(&str, u32, u64)> = shares
            .values()
            .map(|s| (s.drivers.as_str(), s.files, s.bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                ("intel-wifi", 1, 5),
                ("other", 1, 1),
                ("realtek-wifi", 2, 17)
            ]
        );
    }
}
