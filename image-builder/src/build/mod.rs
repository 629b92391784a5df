//! The build pipeline: config -> base tree -> customized root -> squashfs -> verity
//! -> UKI -> ESP + GPT disk image -> signed manifest.
//!
//! The image is assembled under a temporary name in the output folder and renamed
//! only when complete, so a failed build never leaves something that looks like an
//! image.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use stick_manifest::{
    FileDigest, Manifest, ManifestSigningKey, PartitionDigest, PartitionRole, VerityInfo,
};

use crate::config::LoadedConfig;
use crate::disk::esp::{esp_size_for, make_esp, EspFile, EspLayout};
use crate::disk::gpt::{
    GptTable, Guid, PartitionSpec, ATTR_READ_ONLY, ESP_TYPE, ROOT_X86_64_TYPE,
    ROOT_X86_64_VERITY_TYPE,
};
use crate::disk::verity::{VerityParams, VerityTree, VERITY_BLOCK_SIZE};
use crate::runner::{require_tool, CommandRunExt};
use crate::trees::base::{base_recipe, BaseTree};
use crate::trees::cache::TreeCache;
use crate::trees::tools::{in_work, InToolsTree, ToolsTree, EFI_STUB};

/// Where the UKI sits on the ESP: the removable-media default boot path.
pub const UKI_ESP_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

/// Kernel command line fixed by the builder (the root hash is prepended).
const BASE_CMDLINE: &[&str] = &[
    "root=/dev/mapper/root",
    "rootfstype=squashfs",
    "ro",
    "systemd.volatile=overlay",
    "systemd.gpt_auto=0",
    "rd.shell=0",
    "rd.emergency=poweroff",
    // Hardening, whether or not the firmware enforces Secure Boot.
    "lockdown=integrity",
    "module.sig_enforce=1",
    "nohibernate",
    // No swap, whatever a disk offers (the storage lock keeps disks out as well).
    "systemd.swap=0",
    "console=tty0",
    "console=ttyS0,115200",
];

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

struct Stopwatch {
    stages: Vec<(String, f64)>,
    current: Option<(String, Instant)>,
}

impl Stopwatch {
    fn start(&mut self, stage: &str) {
        self.stop();
        tracing::info!("stage {stage}");
        self.current = Some((stage.to_string(), Instant::now()));
    }
    fn stop(&mut self) {
        if let Some((name, started)) = self.current.take() {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!("stage {name} done in {secs:.1} s");
            self.stages.push((name, secs));
        }
    }
}

/// Removes a partially written file unless the build got to the end.
struct PartialFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads the manifest signing key named by the config.
pub fn load_signing_key(loaded: &LoadedConfig) -> Result<ManifestSigningKey> {
    let path = loaded.resolve(&loaded.config.signing.manifest_key);
    let pem = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the manifest signing key {} (key `signing.manifest-key` in {}); \
             create one with `image-builder keygen`",
            path.display(),
            loaded.path.display()
        )
    })?;
    stick_manifest::signing_key_from_pem(&pem).with_context(|| {
        format!(
            "{} (key `signing.manifest-key` in {}) is not an ed25519 private key",
            path.display(),
            loaded.path.display()
        )
    })
}

/// Runs the whole pipeline.
pub fn build(options: &BuildOptions) -> Result<BuildReport> {
    let mut clock = Stopwatch {
        stages: Vec::new(),
        current: None,
    };
    clock.start("check inputs");
    let loaded = LoadedConfig::load(&options.config)?;
    let config = &loaded.config;
    let signing_key = load_signing_key(&loaded)?;
    let network_policy = loaded.network.clone();
    let vpn_credentials = crate::root::network::VpnCredentials::load(&loaded)?;
    let session = loaded.session.clone();
    let conference_trust = crate::root::session::ConferenceTrust::load(&loaded)?;
    if session.as_ref().is_some_and(|s| s.fake_capture) {
        tracing::warn!(
            "conference.test-fake-capture: the browser gets a fake camera and microphone; \
             this image is for testing only and says so on screen"
        );
    }
    for (tool, package) in [
        ("mmdebstrap", "mmdebstrap"),
        ("unshare", "util-linux"),
        ("chroot", "coreutils"),
        ("cp", "coreutils"),
    ] {
        require_tool(tool, package)?;
    }
    if !options.kiosk_binary.is_file() {
        bail!(
            "kiosk binary {} not found; build it with `cargo build --release -p kiosk` \
             or name it with --kiosk",
            options.kiosk_binary.display()
        );
    }
    if !options.overlays.is_dir() {
        bail!(
            "overlay folder {} not found (--overlays)",
            options.overlays.display()
        );
    }
    std::fs::create_dir_all(&options.output_dir).with_context(|| {
        format!(
            "cannot create output folder {}",
            options.output_dir.display()
        )
    })?;
    let mirrors = match &config.debian.mirror {
        Some(main) => crate::trees::mirror::Mirrors {
            main: main.clone(),
            security: config.debian.security_mirror.clone(),
        },
        None => crate::trees::mirror::host_mirrors(Path::new("/etc/apt"))?,
    };
    let sources = mirrors.source_lines(&config.debian.suite);
    let build_time = options.source_date_epoch.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    // File times inside the root are fixed so that equal inputs give equal bytes.
    let fs_time = options.source_date_epoch.unwrap_or(0);

    clock.start("tools tree");
    let cache = TreeCache::new(&options.cache_dir);
    let tools = ToolsTree::ensure(&cache, &config.debian.suite, &sources)?;

    clock.start("base tree");
    let pins = config
        .debian
        .pins()
        .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
    let base = BaseTree::ensure(
        &cache,
        &base_recipe(
            &config.debian.suite,
            &sources,
            &crate::config::package_pin::apply(
                &packages_to_add(&config.debian.extra_packages, session.is_some()),
                &pins,
            ),
        ),
    );
    let base = match base {
        Err(err) if !pins.is_empty() => {
            return Err(anyhow::Error::from(err).context(format!(
                "{}: debian.pin asks apt for exact versions; a mirror keeps only the newest of \
                 each suite (see docs/config.md)",
                loaded.path.display()
            )))
        }
        base => base?,
    };

    let work_parent = options.cache_dir.join("work");
    std::fs::create_dir_all(&work_parent)
        .with_context(|| format!("cannot create {}", work_parent.display()))?;
    let work_dir = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&work_parent)
        .with_context(|| format!("cannot create a build folder in {}", work_parent.display()))?;
    let work = work_dir.path();

    clock.start("customize");
    let rootfs = work.join("rootfs");
    Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(&base.root)
        .arg(&rootfs)
        .run_logged()?;
    let public_pem = stick_manifest::key_pair_to_pem(&signing_key).1;
    crate::root::customize::customize(
        &rootfs,
        &crate::root::customize::Customization {
            overlays: &options.overlays,
            kiosk_binary: &options.kiosk_binary,
            manifest_public_key_pem: &public_pem,
            image_id: &config.image.name,
            image_version: &config.image.version,
            policy: &stick_manifest::KioskPolicy {
                require_secure_boot: config.kiosk.require_secure_boot,
                min_rollback_index: config.kiosk.min_rollback_index,
                network: network_policy.clone(),
                session: session.clone(),
            },
            usb_allow: &config.usb.allow_classes,
        },
    )?;
    crate::root::network::install(&rootfs, &loaded, network_policy.as_ref(), &vpn_credentials)?;
    if let Some(session) = &session {
        crate::root::session::install(&rootfs, session, &conference_trust)?;
    }
    let pruning = crate::root::harden::prune_modules(&rootfs, &base.kernel_version)?;
    let packages = crate::trees::packages::installed_packages(&rootfs)
        .with_context(|| format!("cannot read the package list of {}", rootfs.display()))?;
    let unmet = crate::config::package_pin::unmet(&packages, &pins);
    if !unmet.is_empty() {
        let list: Vec<String> = unmet
            .iter()
            .map(|(pin, installed)| {
                format!(
                    "{} (installed: {})",
                    pin.apt_spec(),
                    installed.as_deref().unwrap_or("none")
                )
            })
            .collect();
        anyhow::bail!(
            "{}: debian.pin: the tree does not hold {}",
            loaded.path.display(),
            list.join(", ")
        );
    }
    tracing::info!(
        "{} packages; {} (all with versions in the manifest's `packages`)",
        packages.len(),
        crate::config::package_pin::headline(&packages)
    );

    clock.start("squashfs");
    let squashfs = work.join("root.squashfs");
    tools
        .command(work, "mksquashfs")
        .arg(in_work(work, &rootfs))
        .arg(in_work(work, &squashfs))
        .args(["-noappend", "-no-progress", "-comp", "zstd", "-processors"])
        .arg(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .to_string(),
        )
        .arg("-all-time")
        .arg(fs_time.to_string())
        .arg("-mkfs-time")
        .arg(fs_time.to_string())
        // mksquashfs refuses SOURCE_DATE_EPOCH beside explicit times.
        .env_remove("SOURCE_DATE_EPOCH")
        .run_logged()?;
    pad_to_block(&squashfs, u64::from(VERITY_BLOCK_SIZE))?;

    clock.start("verity");
    let squashfs_digest = sha256_file(&squashfs)?;
    let salt: [u8; 32] = Sha256::new()
        .chain_update(b"secure-stick verity salt\0")
        .chain_update(squashfs_digest)
        .finalize()
        .into();
    let uuid = derive_guid(b"verity-uuid", &salt);
    let verity_file = work.join("root.verity");
    let tree = VerityTree::format(
        &squashfs,
        &verity_file,
        &VerityParams {
            salt,
            uuid: *uuid.as_bytes(),
        },
    )?;
    let root_hash = tree.root_hash_hex();
    tracing::info!("verity root hash {root_hash}");

    clock.start("uki");
    let mut cmdline = vec![format!("roothash={root_hash}")];
    cmdline.extend(BASE_CMDLINE.iter().map(|s| s.to_string()));
    if !network_policy.as_ref().is_some_and(|p| p.ipv6) {
        // No IPv6 stack at all: nothing to autoconfigure, solicit or leak.
        cmdline.push("ipv6.disable=1".to_string());
    }
    cmdline.extend(config.kernel.extra_cmdline.iter().cloned());
    let cmdline = cmdline.join(" ");
    std::fs::write(work.join("cmdline"), &cmdline).context("cannot write cmdline")?;
    std::fs::copy(rootfs.join("usr/lib/os-release"), work.join("os-release"))
        .context("cannot copy os-release")?;
    std::fs::copy(&base.vmlinuz, work.join("vmlinuz")).context("cannot copy the kernel")?;
    std::fs::copy(&base.initrd, work.join("initrd.img")).context("cannot copy the initrd")?;
    let extra = crate::boot::initrd_extra::cpio_newc(
        &crate::boot::initrd_extra::entries_from_root(&rootfs)
            .context("cannot collect the storage lock for the initrd")?,
        fs_time as u32,
    )?;
    std::fs::write(work.join("initrd-extra.cpio"), extra)
        .context("cannot write initrd-extra.cpio")?;
    let uki_path = work.join("uki.efi");
    tools
        .command(work, "ukify")
        .arg("build")
        .arg("--linux=/work/vmlinuz")
        .arg("--initrd=/work/initrd.img")
        .arg("--initrd=/work/initrd-extra.cpio")
        .arg("--cmdline=@/work/cmdline")
        .arg("--os-release=@/work/os-release")
        .arg(format!("--uname={}", base.kernel_version))
        .arg(format!("--stub={EFI_STUB}"))
        .arg(format!("--output={}", in_work(work, &uki_path)))
        .run_logged()?;
    let (uki_path, uki_signer) = match (
        &config.signing.secure_boot_key,
        &config.signing.secure_boot_cert,
    ) {
        (Some(key), Some(cert)) => {
            let (key, cert) = (loaded.resolve(key), loaded.resolve(cert));
            let signer = describe_certificate(&cert)?;
            let work_key = work.join("db.key");
            let work_cert = work.join("db.crt");
            copy_private(&key, &work_key)?;
            std::fs::copy(&cert, &work_cert).with_context(|| {
                format!("cannot read the Secure Boot certificate {}", cert.display())
            })?;
            let signed = work.join("uki.signed.efi");
            crate::boot::secure_boot::sign_uki(
                &InToolsTree { tree: &tools, work },
                &work_key,
                &work_cert,
                &uki_path,
                &signed,
            )?;
            std::fs::remove_file(&work_key).context("cannot remove the key copy")?;
            tracing::info!("UKI signed for Secure Boot by {signer}");
            (signed, Some(signer))
        }
        _ => {
            tracing::warn!(
                "no signing.secure-boot-key in {}: the UKI is NOT signed and will not boot with Secure Boot on",
                loaded.path.display()
            );
            (uki_path, None)
        }
    };
    let uki = std::fs::read(&uki_path).context("cannot read the UKI")?;
    let embedded =
        crate::boot::pe::section(&uki, ".cmdline")?.context("the UKI has no .cmdline section")?;
    if String::from_utf8_lossy(embedded)
        .trim_end_matches('\0')
        .trim()
        != cmdline
    {
        bail!("the UKI's .cmdline section differs from the command line given to ukify");
    }

    clock.start("disk image");
    let root_hash_bytes = hex::decode(&root_hash).context("root hash is hex")?;
    let root_guid = Guid::from_bytes(root_hash_bytes[..16].try_into().context("16 bytes")?);
    let verity_guid = Guid::from_bytes(root_hash_bytes[16..32].try_into().context("16 bytes")?);
    let esp_guid = derive_guid(b"esp", &root_hash_bytes);
    let disk_guid = derive_guid(b"disk", &root_hash_bytes);
    let root_size = file_len(&squashfs)?;
    let verity_size = round_up(file_len(&verity_file)?, 4096);
    let esp_size = esp_size_for(uki.len() as u64 + 1024 * 1024);
    let specs = [
        PartitionSpec {
            type_guid: ESP_TYPE,
            part_guid: esp_guid,
            name: "ESP".into(),
            size: esp_size,
            attributes: 0,
        },
        PartitionSpec {
            type_guid: ROOT_X86_64_TYPE,
            part_guid: root_guid,
            name: "root-x86-64".into(),
            size: root_size,
            attributes: ATTR_READ_ONLY,
        },
        PartitionSpec {
            type_guid: ROOT_X86_64_VERITY_TYPE,
            part_guid: verity_guid,
            name: "root-x86-64-verity".into(),
            size: verity_size,
            attributes: ATTR_READ_ONLY,
        },
    ];
    let table = GptTable::plan(disk_guid, &specs)?;
    let stem = format!("{}-{}", config.image.name, config.image.version);
    let image_path = options.output_dir.join(format!("{stem}.raw"));
    let partial_path = options.output_dir.join(format!(".{stem}.raw.partial"));
    let mut partial = PartialFile {
        path: partial_path.clone(),
        armed: true,
    };
    let mut image = File::create(&partial_path)
        .with_context(|| format!("cannot create {}", partial_path.display()))?;
    image
        .set_len(table.disk_size)
        .with_context(|| format!("cannot size {}", partial_path.display()))?;

    let mut partitions = Vec::new();
    for (spec, part) in specs.iter().zip(&table.partitions) {
        let role = if spec.type_guid == ESP_TYPE {
            PartitionRole::Esp
        } else if spec.type_guid == ROOT_X86_64_TYPE {
            PartitionRole::Root
        } else {
            PartitionRole::RootVerity
        };
        let sha256 = match role {
            PartitionRole::Esp => None,
            PartitionRole::Root => Some(copy_into(
                &squashfs,
                &mut image,
                part.offset(),
                part.size(),
            )?),
            PartitionRole::RootVerity => Some(copy_into(
                &verity_file,
                &mut image,
                part.offset(),
                part.size(),
            )?),
        };
        partitions.push(PartitionDigest {
            role,
            type_uuid: spec.type_guid.to_string(),
            part_uuid: spec.part_guid.to_string(),
            offset: part.offset(),
            size: part.size(),
            sha256,
        });
    }

    clock.start("manifest");
    let verifying_key = signing_key.verifying_key();
    let manifest = Manifest {
        format: stick_manifest::FORMAT,
        name: config.image.name.clone(),
        version: config.image.version.clone(),
        rollback_index: config.image.rollback_index,
        build_time,
        test_keys: stick_manifest::is_test_key(&verifying_key),
        verity: VerityInfo {
            root_hash: root_hash.clone(),
            salt: hex::encode(tree.salt),
            hash_algorithm: "sha256".into(),
            data_block_size: VERITY_BLOCK_SIZE,
            hash_block_size: VERITY_BLOCK_SIZE,
        },
        cmdline: cmdline.clone(),
        partitions,
        esp_files: vec![FileDigest {
            path: UKI_ESP_PATH.into(),
            size: uki.len() as u64,
            sha256: hex::encode(Sha256::digest(&uki)),
        }],
        packages,
        kernel_version: base.kernel_version.clone(),
        builder_version: env!("CARGO_PKG_VERSION").into(),
        config_sha256: hex::encode(Sha256::digest(&loaded.raw)),
        kernel_filesystems: pruning.kept_filesystems.clone(),
        uki_signer,
        test_fake_capture: session.as_ref().is_some_and(|s| s.fake_capture),
    };
    if manifest.test_keys {
        tracing::warn!("signing with a TEST key from keys/: this image is for testing only");
    }
    if config.kiosk.min_rollback_index > config.image.rollback_index {
        tracing::warn!(
            "kiosk.min-rollback-index ({}) is above image.rollback-index ({}): this image \
             refuses every session (good only to test anti-rollback)",
            config.kiosk.min_rollback_index,
            config.image.rollback_index
        );
    }
    let (manifest_bytes, signature) = manifest.sign(&signing_key);

    let esp_part = table.find(ESP_TYPE).context("planned table has an ESP")?;
    let esp_image = work.join("esp.img");
    make_esp(
        &InToolsTree { tree: &tools, work },
        work,
        &esp_image,
        &EspLayout {
            size: esp_part.size(),
            volume_id: u32::from_le_bytes(root_hash_bytes[..4].try_into().context("4 bytes")?),
            label: "STICK-ESP",
            epoch: fs_time,
        },
        &[
            EspFile {
                path: UKI_ESP_PATH.into(),
                contents: uki.clone(),
            },
            EspFile {
                path: stick_manifest::MANIFEST_FILE.into(),
                contents: manifest_bytes.clone(),
            },
            EspFile {
                path: stick_manifest::SIGNATURE_FILE.into(),
                contents: signature.clone().into_bytes(),
            },
        ],
    )?;
    copy_into(&esp_image, &mut image, esp_part.offset(), esp_part.size())?;
    table.write_to(&mut image)?;
    image
        .sync_all()
        .with_context(|| format!("cannot flush {}", partial_path.display()))?;
    drop(image);

    let manifest_path = options.output_dir.join(format!("{stem}.manifest.json"));
    let signature_path = options.output_dir.join(format!("{stem}.manifest.json.sig"));
    write_atomically(&manifest_path, &manifest_bytes)?;
    write_atomically(&signature_path, signature.as_bytes())?;
    std::fs::rename(&partial_path, &image_path).with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial_path.display(),
            image_path.display()
        )
    })?;
    partial.armed = false;
    clock.stop();

    Ok(BuildReport {
        image: image_path,
        manifest: manifest_path,
        signature: signature_path,
        root_hash,
        image_size: table.disk_size,
        root_size,
        uki_size: uki.len() as u64,
        stages: clock.stages,
    })
}

/// "subject, sha256 fingerprint" of a PEM certificate, as the manifest records it.
fn describe_certificate(cert: &Path) -> Result<String> {
    require_tool("openssl", "openssl")?;
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-fingerprint",
            "-sha256",
            "-nameopt",
            "RFC2253",
            "-in",
        ])
        .arg(cert)
        .run_capture()
        .with_context(|| {
            format!(
                "{} (key `signing.secure-boot-cert`) is not a PEM X.509 certificate",
                cert.display()
            )
        })?;
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| {
                l.split_once('=')
                    .filter(|(k, _)| k.trim().ends_with(prefix))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    Ok(format!(
        "{}, sha256 {}",
        field("subject"),
        field("Fingerprint").replace(':', "").to_lowercase()
    ))
}

/// Copies a private key into the build folder readable by root only.
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = std::fs::read(from).with_context(|| {
        format!(
            "cannot read the Secure Boot key {} (key `signing.secure-boot-key`)",
            from.display()
        )
    })?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .and_then(|mut f| f.write_all(&bytes))
        .with_context(|| format!("cannot write {}", to.display()))
}

/// A GUID derived from `seed` for one `purpose`, with RFC 4122 version 4 bits set.
pub fn derive_guid(purpose: &[u8], seed: &[u8]) -> Guid {
    let digest = Sha256::new()
        .chain_update(b"secure-stick guid\0")
        .chain_update(purpose)
        .chain_update(b"\0")
        .chain_update(seed)
        .finalize();
    let mut bytes: [u8; 16] = digest[..16].try_into().expect("sha256 has 32 bytes");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Guid::from_bytes(bytes)
}

fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

fn file_len(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len())
}

fn pad_to_block(path: &Path, block: u64) -> Result<()> {
    let len = file_len(path)?;
    let padded = round_up(len, block);
    if padded != len {
        File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(padded))
            .with_context(|| format!("cannot pad {}", path.display()))?;
    }
    Ok(())
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file_len(path)?;
    crate::commands::verify::sha256_range(&mut file, 0, len)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Copies `source` to `offset` in `image`, zero-filling to `size`; returns the
/// sha256 (hex) of the whole partition as written.
fn copy_into(source: &Path, image: &mut File, offset: u64, size: u64) -> Result<String> {
    let mut input =
        File::open(source).with_context(|| format!("cannot open {}", source.display()))?;
    image
        .seek(SeekFrom::Start(offset))
        .context("cannot seek in the image")?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        let n = input
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", source.display()))?;
        if n == 0 {
            break;
        }
        if written + n as u64 > size {
            bail!(
                "{} does not fit its partition of {size} bytes",
                source.display()
            );
        }
        image
            .write_all(&buf[..n])
            .context("cannot write the image")?;
        hasher.update(&buf[..n]);
        written += n as u64;
    }
    let zeros = vec![0u8; 1 << 20];
    while written < size {
        let n = (size - written).min(zeros.len() as u64) as usize;
        image
            .write_all(&zeros[..n])
            .context("cannot write the image")?;
        hasher.update(&zeros[..n]);
        written += n as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The config's extra packages, plus the browser stack when the image has a session.
fn packages_to_add(extra: &[String], session: bool) -> Vec<String> {
    let mut packages = extra.to_vec();
    if session {
        packages.extend(
            crate::config::conference::SESSION_PACKAGES
                .iter()
                .map(|p| p.to_string()),
        );
    }
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_guids_are_stable_version_4_and_distinct() {
        let seed = [7u8; 32];
        let esp = derive_guid(b"esp", &seed);
        let disk = derive_guid(b"disk", &seed);
        assert_eq!(esp, derive_guid(b"esp", &seed));
        assert_ne!(esp, disk);
        let text = esp.to_string();
        assert_eq!(&text[14..15], "4", "{text}");
        assert!("89ab".contains(&text[19..20]), "{text}");
    }

    #[test]
    fn rounding_and_padding() {
        let cases = [(0, 0), (1, 4096), (4096, 4096), (4097, 8192)];
        for (value, want) in cases {
            assert_eq!(round_up(value, 4096), want);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, [1u8; 5000]).expect("write");
        pad_to_block(&file, 4096).expect("pads");
        assert_eq!(file_len(&file).expect("len"), 8192);
    }

    #[test]
    fn copy_into_zero_fills_and_hashes_the_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("src");
        std::fs::write(&source, b"abc").expect("write");
        let mut image = File::create(dir.path().join("img")).expect("create");
        image.set_len(16).expect("size");
        let digest = copy_into(&source, &mut image, 4, 8).expect("copies");
        let mut want = b"abc".to_vec();
        want.extend([0u8; 5]);
        assert_eq!(digest, hex::encode(Sha256::digest(&want)));
        let bytes = std::fs::read(dir.path().join("img")).expect("read");
        assert_eq!(&bytes[4..12], &want[..]);
        assert!(
            copy_into(&source, &mut image, 0, 2).is_err(),
            "too big must fail"
        );
    }
}
