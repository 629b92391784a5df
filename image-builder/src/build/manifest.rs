//! The manifest of one build, signed with the ed25519 key: what the image is, the
//! verity root hash, a sha256 of every partition and of the UKI, the packages.
//! It goes onto the ESP (where the kiosk checks it) and beside the image.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use stick_manifest::{FileDigest, Manifest, PartitionDigest, VerityInfo};

use crate::boot::shim::ShimLoader;
use crate::boot::uki::{Uki, UKI_ESP_PATH};
use crate::build::inputs::BuildInputs;
use crate::build::root_tree::RootTree;
use crate::disk::esp::EspFile;
use crate::disk::squashfs::RootVerity;
use crate::disk::verity::VERITY_BLOCK_SIZE;
use crate::trees::base::BaseTree;

/// The manifest's bytes and its detached signature.
#[derive(Debug)]
pub struct SignedManifest {
    pub bytes: Vec<u8>,
    pub signature: String,
}

/// What the manifest describes.
#[derive(Debug)]
pub struct Described<'a> {
    pub base: &'a BaseTree,
    pub root: &'a RootTree,
    pub verity: &'a RootVerity,
    pub uki: &'a Uki,
    /// Shim and MokManager in front of the UKI (`[signing] shim`).
    pub shim: Option<&'a ShimLoader>,
    pub partitions: &'a [PartitionDigest],
}

/// The files that boot: the UKI at the removable-media path, or shim there with
/// the UKI as its second stage, MokManager and the certificate to enrol.
pub fn boot_files(uki: &Uki, shim: Option<&ShimLoader>) -> Vec<EspFile> {
    match shim {
        Some(shim) => shim.esp_files(&uki.bytes),
        None => vec![EspFile {
            path: UKI_ESP_PATH.into(),
            contents: uki.bytes.clone(),
        }],
    }
}

impl SignedManifest {
    /// Writes the manifest of this build and signs it.
    pub fn sign(inputs: &BuildInputs, built: &Described) -> SignedManifest {
        let manifest = manifest(inputs, built);
        if manifest.test_keys {
            tracing::warn!("signing with a TEST key from keys/: this image is for testing only");
        }
        let config = &inputs.loaded.config;
        if config.kiosk.min_rollback_index > config.image.rollback_index {
            tracing::warn!(
                "kiosk.min-rollback-index ({}) is above image.rollback-index ({}): this image \
                 refuses every session (good only to test anti-rollback)",
                config.kiosk.min_rollback_index,
                config.image.rollback_index
            );
        }
        let (bytes, signature) = manifest.sign(&inputs.signing_key);
        SignedManifest { bytes, signature }
    }

    /// The ESP's files: the boot files, the manifest and its signature.
    pub fn esp_files(&self, boot_files: Vec<EspFile>) -> Vec<EspFile> {
        let mut files = boot_files;
        files.extend([
            EspFile {
                path: stick_manifest::MANIFEST_FILE.into(),
                contents: self.bytes.clone(),
            },
            EspFile {
                path: stick_manifest::SIGNATURE_FILE.into(),
                contents: self.signature.clone().into_bytes(),
            },
        ]);
        files
    }

    /// Writes `STEM.manifest.json` and `STEM.manifest.json.sig` into `dir`, each
    /// under a temporary name first; returns both paths.
    pub fn write_beside(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf)> {
        let manifest = dir.join(format!("{stem}.manifest.json"));
        let signature = dir.join(format!("{stem}.manifest.json.sig"));
        write_atomically(&manifest, &self.bytes)?;
        write_atomically(&signature, self.signature.as_bytes())?;
        Ok((manifest, signature))
    }
}

fn manifest(inputs: &BuildInputs, built: &Described) -> Manifest {
    let loaded = &inputs.loaded;
    let config = &loaded.config;
    let esp_files = boot_files(built.uki, built.shim)
        .iter()
        .map(|file| FileDigest {
            path: file.path.clone(),
            size: file.contents.len() as u64,
            sha256: hex::encode(Sha256::digest(&file.contents)),
        })
        .collect();
    Manifest {
        format: stick_manifest::FORMAT,
        name: config.image.name.clone(),
        version: config.image.version.clone(),
        rollback_index: config.image.rollback_index,
        build_time: inputs.build_time,
        test_keys: stick_manifest::is_test_key(&inputs.signing_key.verifying_key()),
        verity: VerityInfo {
            root_hash: built.verity.root_hash.clone(),
            salt: hex::encode(built.verity.tree.salt),
            hash_algorithm: "sha256".into(),
            data_block_size: VERITY_BLOCK_SIZE,
            hash_block_size: VERITY_BLOCK_SIZE,
        },
        cmdline: built.uki.cmdline.clone(),
        partitions: built.partitions.to_vec(),
        esp_files,
        packages: built.root.packages.clone(),
        kernel_version: built.base.kernel_version.clone(),
        builder_version: env!("CARGO_PKG_VERSION").into(),
        config_sha256: hex::encode(Sha256::digest(&loaded.raw)),
        kernel_filesystems: built.root.pruning.kept_filesystems.clone(),
        firmware: built.root.firmware.kept.clone(),
        uki_signer: built.uki.signer.clone(),
        shim: built.shim.map(|shim| shim.record.clone()),
        test_fake_capture: loaded.session.as_ref().is_some_and(|s| s.test_capture()),
        personal_credential: loaded
            .network
            .as_ref()
            .filter(|n| n.personal)
            .map(|n| n.tunnel),
        personal_user: loaded.network.as_ref().is_some_and(|n| n.user_password),
        wifi: loaded.network.as_ref().is_some_and(|n| n.wifi.is_some()),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}
