//! The build pipeline, stage by stage: check inputs -> tools tree -> base tree ->
//! shim (with `[signing] shim`) -> customize (the root tree) -> squashfs ->
//! verity -> UKI -> disk image -> signed manifest (on the ESP and beside the
//! image).
//!
//! Each stage is one call with a typed product; `StageClock` times and logs them
//! all in one place. The image is assembled under a temporary name in the output
//! folder and renamed only when complete, so a failed build never leaves
//! something that looks like an image.
//!
//! - `inputs`: the config, its keys and the host, checked before any work;
//! - `root_tree`: the base tree and the image's root made from it;
//! - `manifest`: the signed manifest;
//! - `stage_clock`: timing and logging of the stages.

pub mod inputs;
pub mod manifest;
pub mod root_tree;
pub mod stage_clock;

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::boot::shim::{certificate_sha256, ShimLoader};
use crate::boot::uki::{kernel_cmdline, Uki, UkiParts, UkiSigning};
use crate::build::inputs::BuildInputs;
use crate::build::manifest::{boot_files, Described, SignedManifest};
use crate::build::root_tree::{base_tree, RootTree};
use crate::build::stage_clock::StageClock;
use crate::disk::image::DiskImage;
use crate::disk::layer_cache::LayerCache;
use crate::disk::squashfs::{RootCompression, RootVerity, Squashfs};
use crate::trees::base::BaseTree;
use crate::trees::cache::TreeCache;
use crate::trees::tools::ToolsTree;

/// What to build and from where.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub config: PathBuf,
    pub output_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub kiosk_binary: PathBuf,
    pub overlays: PathBuf,
    /// Fixed time for file timestamps and the manifest (SOURCE_DATE_EPOCH).
    pub source_date_epoch: Option<u64>,
    /// How the root squashfs is packed.
    pub compression: RootCompression,
}

/// What a build produced and how long each stage took.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildReport {
    pub image: PathBuf,
    pub manifest: PathBuf,
    pub signature: PathBuf,
    pub root_hash: String,
    pub image_size: u64,
    pub root_size: u64,
    pub uki_size: u64,
    pub stages: Vec<(String, f64)>,
}

/// Runs the whole pipeline.
pub fn build(options: &BuildOptions) -> Result<BuildReport> {
    let mut clock = StageClock::default();
    let inputs = clock.run("check inputs", || BuildInputs::check(options))?;
    let config = &inputs.loaded.config;
    let cache = TreeCache::new(&options.cache_dir);
    let tools = clock.run("tools tree", || {
        Ok(ToolsTree::ensure(
            &cache,
            &config.debian.suite,
            &inputs.sources,
        )?)
    })?;
    let base = clock.run("base tree", || base_tree(&inputs, &cache))?;
    let work_dir = work_dir(options)?;
    let work = work_dir.path();
    let signing = uki_signing(&inputs);
    let shim = clock.run("shim", || match (&signing, config.signing.shim) {
        (Some(signing), true) => ShimLoader::prepare(&tools, work, signing).map(Some),
        _ => Ok(None),
    })?;
    let boot_trust = boot_trust(&inputs, signing.as_ref(), shim.as_ref())?;
    let root = clock.run("customize", || {
        RootTree::customize(&inputs, options, &base, work, boot_trust)
    })?;
    let squashfs = clock.run("squashfs", || {
        Squashfs::make(
            &tools,
            work,
            &root.path,
            inputs.fs_time,
            options.compression,
            &LayerCache::new(&options.cache_dir),
        )
    })?;
    let verity = clock.run("verity", || squashfs.verity(work))?;
    let uki = clock.run("uki", || {
        uki(
            &inputs,
            &tools,
            work,
            &base,
            &root,
            &verity,
            signing.as_ref(),
        )
    })?;
    let boot = boot_files(&uki, shim.as_ref());
    let boot_size: u64 = boot.iter().map(|f| f.contents.len() as u64).sum();
    let stem = format!("{}-{}", config.image.name, config.image.version);
    let image_path = options.output_dir.join(format!("{stem}.raw"));
    let disk = clock.run("disk image", || {
        DiskImage::assemble(&image_path, &squashfs, &verity, boot_size)
    })?;
    let (image, image_size, manifest, signature) = clock.run("manifest", || {
        let described = Described {
            base: &base,
            root: &root,
            verity: &verity,
            uki: &uki,
            shim: shim.as_ref(),
            partitions: &disk.partitions,
        };
        let signed = SignedManifest::sign(&inputs, &described);
        let complete = disk.complete(&tools, work, &signed.esp_files(boot), inputs.fs_time)?;
        let (manifest, signature) = signed.write_beside(&options.output_dir, &stem)?;
        let size = complete.size;
        Ok((complete.publish()?, size, manifest, signature))
    })?;
    Ok(BuildReport {
        image,
        manifest,
        signature,
        root_hash: verity.root_hash,
        image_size,
        root_size: squashfs.size,
        uki_size: uki.bytes.len() as u64,
        stages: clock.into_stages(),
    })
}

/// A fresh build folder under the cache, removed when the build ends.
fn work_dir(options: &BuildOptions) -> Result<tempfile::TempDir> {
    let parent = options.cache_dir.join("work");
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a build folder in {}", parent.display()))
}

/// The db key and certificate from the config; `None` (with a warning): unsigned.
fn uki_signing(inputs: &BuildInputs) -> Option<UkiSigning> {
    let loaded = &inputs.loaded;
    let config = &loaded.config;
    match (
        &config.signing.secure_boot_key,
        &config.signing.secure_boot_cert,
    ) {
        (Some(key), Some(cert)) => Some(UkiSigning {
            key: loaded.resolve(key),
            cert: loaded.resolve(cert),
        }),
        _ => {
            tracing::warn!(
                "no signing.secure-boot-key in {}: the UKI is NOT signed and will not boot with Secure Boot on",
                loaded.path.display()
            );
            None
        }
    }
}

/// What the kiosk needs to tell which key trusted the UKI; `None` when unsigned.
fn boot_trust(
    inputs: &BuildInputs,
    signing: Option<&UkiSigning>,
    shim: Option<&ShimLoader>,
) -> Result<Option<stick_manifest::boot_trust::BootTrustPolicy>> {
    let Some(signing) = signing else {
        return Ok(None);
    };
    Ok(Some(stick_manifest::boot_trust::BootTrustPolicy {
        uki_signer_sha256: certificate_sha256(&signing.cert)?,
        shim_vendor_sha256: shim.map(|shim| shim.vendor_sha256.clone()),
        accept_mok: inputs.loaded.config.kiosk.accept_mok,
    }))
}

/// The UKI for this root hash, signed when the config names a db key.
fn uki(
    inputs: &BuildInputs,
    tools: &ToolsTree,
    work: &std::path::Path,
    base: &BaseTree,
    root: &RootTree,
    verity: &RootVerity,
    signing: Option<&UkiSigning>,
) -> Result<Uki> {
    let loaded = &inputs.loaded;
    let config = &loaded.config;
    let ipv6 = loaded.network.as_ref().is_some_and(|p| p.ipv6);
    let cmdline = kernel_cmdline(&verity.root_hash, ipv6, &config.kernel.extra_cmdline);
    let parts = UkiParts {
        vmlinuz: &base.vmlinuz,
        initrd: &base.initrd,
        kernel_version: &base.kernel_version,
        root: &root.path,
        cmdline: &cmdline,
        fs_time: inputs.fs_time,
    };
    Uki::build(tools, work, &parts, signing)
}
