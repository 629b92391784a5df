//! `write`: puts a signed image onto a USB stick, safely.
//!
//! The image is verified before anything is written (a foreign or damaged image
//! never reaches a stick); the target must pass [`target::judge`] (a removable
//! whole disk with nothing mounted, or a loop device); the copy is hashed, synced,
//! read back past the page cache and compared; then the stick itself is verified
//! against the manifest like `verify` does.

pub mod copy;
pub mod target;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use stick_manifest::ManifestVerifyingKey;

use crate::commands::verify::verify_image;
use crate::runner::CommandRunExt;
pub use copy::Progress;

/// What was written, for people and (`--json`) for scripts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct WriteReport {
    pub device: String,
    /// Model and transport, or `loop device`.
    pub device_description: String,
    pub image: PathBuf,
    pub image_name: String,
    pub image_version: String,
    pub bytes: u64,
    pub write_seconds: f64,
    pub mib_per_second: f64,
    /// SHA-256 of the image, which the device's first `bytes` read back as.
    pub sha256: String,
    /// Partitions and ESP files of the stick that matched the signed manifest.
    pub partitions_checked: usize,
    pub esp_files_checked: usize,
}

/// Asks lsblk about `device` and [judges](target::judge) it as a target for
/// `needed` bytes; a refusal says that nothing was written.
pub fn checked_target(device: &Path, needed: u64) -> Result<target::WriteTarget> {
    let shown = device.display().to_string();
    let lsblk = Command::new("lsblk")
        .args(["-J", "-b", "-o", target::LSBLK_COLUMNS])
        .arg(device)
        .run_capture()
        .with_context(|| format!("{shown} is not a block device lsblk knows"))?;
    target::judge(&shown, &lsblk, needed)
        .with_context(|| format!("{shown} refused: nothing was written"))
}

/// Writes `image` to `device`; `progress` sees the copy and the read-back.
pub fn write_stick(
    image: &Path,
    device: &Path,
    key: &ManifestVerifyingKey,
    progress: &mut dyn FnMut(&Progress),
) -> Result<WriteReport> {
    let source = verify_image(image, key)
        .with_context(|| format!("{} does not verify: nothing was written", image.display()))?;
    let bytes = std::fs::metadata(image)
        .with_context(|| format!("cannot read the size of {}", image.display()))?
        .len();
    let device_text = device.display().to_string();
    let target = checked_target(device, bytes)?;
    tracing::info!(
        "writing {} ({} {}) to {} ({}, {} bytes)",
        image.display(),
        source.manifest.name,
        source.manifest.version,
        target.path,
        target.description,
        target.size
    );
    let started = Instant::now();
    let written = copy::copy_to_device(image, device, bytes, progress)?;
    let write_seconds = started.elapsed().as_secs_f64();
    let read = copy::read_back(device, bytes, progress)?;
    if read != written {
        bail!(
            "{device_text} reads back other bytes than were written (SHA-256 {} instead of {}): \
             the stick is faulty or was pulled; do not hand it out",
            hex::encode(read),
            hex::encode(written)
        );
    }
    let on_stick = verify_image(device, key).with_context(|| {
        format!("{device_text} was written but does NOT verify: do not hand it out")
    })?;
    Ok(WriteReport {
        device: target.path,
        device_description: target.description,
        image: image.to_path_buf(),
        image_name: on_stick.manifest.name,
        image_version: on_stick.manifest.version,
        bytes,
        write_seconds,
        mib_per_second: bytes as f64 / (1u64 << 20) as f64 / write_seconds.max(f64::EPSILON),
        sha256: hex::encode(written),
        partitions_checked: on_stick.partitions_checked,
        esp_files_checked: on_stick.esp_files_checked,
    })
}
