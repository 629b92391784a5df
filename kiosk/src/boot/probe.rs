//! Reads the running system: kernel command line, device-mapper, mounts, ESP.
//! Each probe logs what it found (or why it found nothing) and never aborts the
//! others: a failure becomes a value in the status line.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use anyhow::{Context, Result};

use crate::boot::cmdline::{parse_cmdline_root_hash, PROC_CMDLINE};
use crate::boot::device_mapper::{
    parse_dm_status, parse_dm_table, VerityHealth, VerityTable, ROOT_DM_NAME, ROOT_DM_NODE,
};
use crate::boot::esp::{self, ManifestCheck};
use crate::boot::mounts::{
    detect_read_only_fs, locate_verity_root, parse_dev_block_link, parse_mountinfo, DevNum,
    VerityRoot, PROC_MOUNTINFO, SUPERBLOCK_PROBE_LEN, VOLATILE_ROOT_LINK,
};
use crate::boot::policy::{
    parse_lockdown, secure_boot_state, SecureBootState, LOCKDOWN_FILE, SECURE_BOOT_VAR,
    SETUP_MODE_VAR,
};
use crate::boot::status::{Observations, RootCheck, RootLayout, VerityState};
use crate::command;
use stick_manifest::{KioskPolicy, KIOSK_POLICY_PATH};

const DMSETUP: &str = "dmsetup";

/// Gathers everything the status line reports.
pub fn observe() -> Observations {
    let cmdline = read_cmdline();
    let cmdline_root_hash = cmdline.as_deref().and_then(cmdline_root_hash);
    let (table, verity) = read_root_verity();
    let root = check_root(table.as_ref());
    let dm_root_hash = table.map(|t| t.root_hash);
    let manifest = check_manifest();
    let secure_boot = read_secure_boot();
    let lockdown = read_lockdown();
    let iommu =
        crate::sysfs::entry_names(std::path::Path::new(crate::boot::policy::IOMMU_CLASS_DIR));
    tracing::info!("IOMMU units: {iommu:?}");
    let policy = read_policy();
    let boot_trust = crate::boot::boot_trust::boot_trust(
        &crate::boot::boot_trust::TrustVariables::read(),
        secure_boot,
        policy.as_ref().and_then(|p| p.boot_trust.as_ref()),
    );
    tracing::info!("boot trust: {boot_trust:?}");
    Observations {
        boot_trust,
        cmdline,
        cmdline_root_hash,
        dm_root_hash,
        verity,
        root,
        manifest,
        secure_boot,
        lockdown,
        iommu,
        policy,
    }
}

fn read_secure_boot() -> SecureBootState {
    let secure_boot = std::fs::read(SECURE_BOOT_VAR).ok();
    let setup_mode = std::fs::read(SETUP_MODE_VAR).ok();
    let state = secure_boot_state(secure_boot.as_deref(), setup_mode.as_deref());
    tracing::info!("UEFI Secure Boot: {state:?}");
    state
}

fn read_lockdown() -> Option<String> {
    match std::fs::read_to_string(LOCKDOWN_FILE) {
        Ok(text) => {
            let mode = parse_lockdown(&text);
            tracing::info!("kernel lockdown: {}", mode.as_deref().unwrap_or("unknown"));
            mode
        }
        Err(err) => {
            tracing::warn!("reading {LOCKDOWN_FILE}: {err}");
            None
        }
    }
}

fn read_policy() -> Option<KioskPolicy> {
    let parsed = std::fs::read(KIOSK_POLICY_PATH)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| {
            serde_json::from_slice::<KioskPolicy>(&bytes).map_err(anyhow::Error::from)
        });
    match parsed {
        Ok(policy) => {
            tracing::info!(
                "policy: require-secure-boot = {}, min-rollback-index = {}",
                policy.require_secure_boot,
                policy.min_rollback_index
            );
            Some(policy)
        }
        Err(err) => {
            tracing::error!("policy {KIOSK_POLICY_PATH}: {err:#}");
            None
        }
    }
}

fn read_cmdline() -> Option<String> {
    std::fs::read_to_string(PROC_CMDLINE)
        .inspect_err(|err| tracing::warn!("reading {PROC_CMDLINE}: {err}"))
        .ok()
}

fn cmdline_root_hash(cmdline: &str) -> Option<String> {
    let hash = parse_cmdline_root_hash(cmdline);
    match &hash {
        Some(hash) => tracing::info!("kernel cmdline roothash={hash}"),
        None => tracing::warn!("kernel cmdline has no roothash="),
    }
    hash
}

/// The active verity table of `root`, and whether it is verity and uncorrupted.
fn read_root_verity() -> (Option<VerityTable>, VerityState) {
    let table = command::run(DMSETUP, &["table", ROOT_DM_NAME])
        .map_err(anyhow::Error::from)
        .and_then(|text| parse_dm_table(&text).context("dm table of `root`"));
    let table = match table {
        Ok(table) => table,
        Err(err) => {
            tracing::warn!("no verity device `{ROOT_DM_NAME}`: {err:#}");
            return (None, VerityState::Missing);
        }
    };
    tracing::info!(
        "dm `{ROOT_DM_NAME}`: verity over {} (hashes on {}), {} root hash {}",
        table.data_device,
        table.hash_device,
        table.algorithm,
        table.root_hash
    );
    let health = command::run(DMSETUP, &["status", ROOT_DM_NAME])
        .map_err(anyhow::Error::from)
        .and_then(|text| parse_dm_status(&text).context("dm status of `root`"));
    let state = match health {
        Ok(VerityHealth::Verified) => VerityState::Active,
        Ok(VerityHealth::Corrupted) => {
            tracing::error!("dm `{ROOT_DM_NAME}` has read corrupted blocks");
            VerityState::Corrupted
        }
        Err(err) => {
            tracing::warn!("verity status of `{ROOT_DM_NAME}` unknown: {err:#}");
            VerityState::Missing
        }
    };
    (Some(table), state)
}

fn check_root(table: Option<&VerityTable>) -> RootCheck {
    match find_root(table) {
        Ok(check) => check,
        Err(err) => {
            tracing::warn!("cannot tell where / comes from: {err:#}");
            RootCheck {
                layout: RootLayout::NotVerity,
                read_only: false,
                fs_type: None,
            }
        }
    }
}

fn find_root(table: Option<&VerityTable>) -> Result<RootCheck> {
    let verity_dev = match std::fs::metadata(ROOT_DM_NODE) {
        Ok(meta) => Some(dev_num(meta.rdev())),
        Err(err) => {
            tracing::warn!("{ROOT_DM_NODE}: {err}");
            None
        }
    };
    let mountinfo = std::fs::read_to_string(PROC_MOUNTINFO)
        .with_context(|| format!("reading {PROC_MOUNTINFO}"))?;
    let entries = parse_mountinfo(&mountinfo)?;
    let volatile_root = match std::fs::read_link(VOLATILE_ROOT_LINK) {
        Ok(target) => parse_dev_block_link(&target.to_string_lossy()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            tracing::warn!("reading {VOLATILE_ROOT_LINK}: {err}");
            None
        }
    };
    let verity_parts: Vec<DevNum> = table
        .map(|table| {
            [&table.data_device, &table.hash_device]
                .into_iter()
                .filter_map(|d| d.parse::<DevNum>().ok())
                .collect()
        })
        .unwrap_or_default();
    let check = match locate_verity_root(&entries, verity_dev, &verity_parts, volatile_root) {
        VerityRoot::Direct(root) => {
            tracing::info!(
                "/ is {} from {} ({})",
                root.fs_type,
                root.source,
                root.device
            );
            RootCheck {
                layout: RootLayout::Direct,
                read_only: root.is_read_only(),
                fs_type: Some(root.fs_type),
            }
        }
        VerityRoot::OverlayVisibleLower { lower, .. } => {
            tracing::info!(
                "/ is an overlay over {} from {} on {}",
                lower.fs_type,
                lower.source,
                lower.mount_point
            );
            RootCheck {
                layout: RootLayout::Overlay,
                read_only: lower.is_read_only(),
                fs_type: Some(lower.fs_type),
            }
        }
        VerityRoot::OverlayHiddenLower { .. } => {
            // The lower mount is not listed; judge the device itself: a read-only
            // block device holding a filesystem the kernel cannot write.
            let dev = verity_dev.context("hidden lower layer without a verity device")?;
            let fs_type = probe_read_only_fs()?;
            let block_ro = block_device_read_only(dev)?;
            tracing::info!(
                "/ is a volatile overlay over {ROOT_DM_NODE} ({dev}): {}, block device {}",
                fs_type.unwrap_or("no read-only filesystem"),
                if block_ro { "read-only" } else { "WRITABLE" }
            );
            RootCheck {
                layout: RootLayout::Overlay,
                read_only: block_ro && fs_type.is_some(),
                fs_type: fs_type.map(str::to_string),
            }
        }
        VerityRoot::NotVerity { root } => {
            tracing::error!(
                "volatile-root record: {volatile_root:?}; verity device {verity_dev:?} over {verity_parts:?}"
            );
            match root {
                Some(root) => tracing::error!(
                    "/ is {} from {} ({}), not the verity device",
                    root.fs_type,
                    root.source,
                    root.device
                ),
                None => tracing::error!("no / in {PROC_MOUNTINFO}"),
            }
            RootCheck {
                layout: RootLayout::NotVerity,
                read_only: false,
                fs_type: None,
            }
        }
    };
    Ok(check)
}

fn dev_num(rdev: u64) -> DevNum {
    // Lossless: Linux majors and minors are 12 and 20 bits wide.
    DevNum {
        major: nix::sys::stat::major(rdev) as u32,
        minor: nix::sys::stat::minor(rdev) as u32,
    }
}

fn probe_read_only_fs() -> Result<Option<&'static str>> {
    let mut start = Vec::with_capacity(SUPERBLOCK_PROBE_LEN);
    std::fs::File::open(ROOT_DM_NODE)
        .with_context(|| format!("opening {ROOT_DM_NODE}"))?
        .take(SUPERBLOCK_PROBE_LEN as u64)
        .read_to_end(&mut start)
        .with_context(|| format!("reading the superblock of {ROOT_DM_NODE}"))?;
    Ok(detect_read_only_fs(&start))
}

fn block_device_read_only(dev: DevNum) -> Result<bool> {
    let path = format!("/sys/dev/block/{dev}/ro");
    let flag = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(flag.trim() == "1")
}

fn check_manifest() -> ManifestCheck {
    let checked =
        esp::read_image_key().and_then(|key| Ok(esp::check_manifest(&esp::read_boot_esp()?, &key)));
    let check = checked.unwrap_or_else(|err| ManifestCheck::error(&err));
    tracing::info!("manifest signature {:?}: {}", check.signature, check.detail);
    check
}
