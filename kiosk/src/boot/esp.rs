//! The signed manifest on the ESP the UKI was booted from.
//!
//! The ESP is the partition named by `LoaderDevicePartUUID` on the disk dm-verity
//! opened the root from (never by device name, and never by that UUID alone: a
//! PC's disk can carry a copy of it). It is mounted read-only for as long as it
//! takes to read two files, and unmounted again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::mount::{umount, MsFlags};
use stick_manifest::{Manifest, ManifestError, ManifestVerifyingKey};

use crate::boot::efivars::{parse_loader_partuuid, LOADER_DEVICE_PARTUUID_VAR};

/// Where the ESP is mounted while the manifest is read.
pub const ESP_MOUNT_POINT: &str = "/run/kiosk/esp";
const ESP_FS_TYPE: &str = "vfat";
/// The ESP's partition type (UEFI).
const ESP_TYPE_UUID: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
const SYS_CLASS_BLOCK: &str = "/sys/class/block";
/// The partition's device node may still be on its way when the kiosk starts.
const ESP_DEVICE_TIMEOUT: Duration = Duration::from_secs(10);
const ESP_DEVICE_POLL: Duration = Duration::from_millis(100);
/// A manifest with a full package list is some hundred KiB; refuse anything absurd.
const MAX_FILE_BYTES: u64 = 8 << 20;

/// The manifest and its detached signature as read from the ESP; `None` when the
/// file is not there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EspFiles {
    pub manifest: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
}

/// Outcome of checking the manifest's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureState {
    Valid,
    Invalid,
    Missing,
    Error,
}

/// What the kiosk knows about the manifest; `manifest` only when the signature is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestCheck {
    pub signature: SignatureState,
    /// Why, in words, for people reading the console or the journal.
    pub detail: String,
    pub manifest: Option<Manifest>,
}

impl ManifestCheck {
    /// The ESP, the files or the key could not be read.
    pub fn error(err: &anyhow::Error) -> Self {
        ManifestCheck {
            signature: SignatureState::Error,
            detail: format!("{err:#}"),
            manifest: None,
        }
    }
}

/// Checks the files read from the ESP against the image's manifest key.
pub fn check_manifest(files: &EspFiles, key: &ManifestVerifyingKey) -> ManifestCheck {
    let missing = |what: &str| ManifestCheck {
        signature: SignatureState::Missing,
        detail: format!("{what} not found on the ESP"),
        manifest: None,
    };
    let (manifest, signature) = match (&files.manifest, &files.signature) {
        (None, _) => return missing(stick_manifest::MANIFEST_FILE),
        (Some(_), None) => return missing(stick_manifest::SIGNATURE_FILE),
        (Some(manifest), Some(signature)) => (manifest, signature),
    };
    match Manifest::verify(manifest, &String::from_utf8_lossy(signature), key) {
        Ok(manifest) => ManifestCheck {
            signature: SignatureState::Valid,
            detail: format!(
                "signed by the image's manifest key{}",
                if manifest.test_keys {
                    " (TEST key)"
                } else {
                    ""
                }
            ),
            manifest: Some(manifest),
        },
        Err(
            err @ (ManifestError::MalformedSignature
            | ManifestError::BadSignature
            | ManifestError::Malformed(_)
            | ManifestError::UnsupportedFormat(_)),
        ) => ManifestCheck {
            signature: SignatureState::Invalid,
            detail: err.to_string(),
            manifest: None,
        },
        Err(err @ (ManifestError::BadPublicKey(_) | ManifestError::BadPrivateKey(_))) => {
            ManifestCheck {
                signature: SignatureState::Error,
                detail: err.to_string(),
                manifest: None,
            }
        }
    }
}

/// Reads the manifest key that the image carries.
pub fn read_image_key() -> Result<ManifestVerifyingKey> {
    let path = stick_manifest::IMAGE_PUBKEY_PATH;
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    stick_manifest::verifying_key_from_pem(&pem).with_context(|| format!("parsing {path}"))
}

/// Finds the boot ESP, mounts it read-only, reads the manifest files, unmounts it.
pub fn read_boot_esp() -> Result<EspFiles> {
    let raw = std::fs::read(LOADER_DEVICE_PARTUUID_VAR).with_context(|| {
        format!("reading {LOADER_DEVICE_PARTUUID_VAR} (not booted through systemd-stub?)")
    })?;
    let partuuid = parse_loader_partuuid(&raw)
        .with_context(|| format!("parsing {LOADER_DEVICE_PARTUUID_VAR}"))?;
    let sys_block = Path::new(SYS_CLASS_BLOCK);
    let stick = crate::boot::device_mapper::verity_root_disks(sys_block);
    let device = find_esp(sys_block, Path::new("/dev"), &stick, &partuuid)?;
    wait_for(&device, ESP_DEVICE_TIMEOUT)?;
    tracing::info!("boot ESP is {} ({partuuid})", device.display());

    let mount_point = Path::new(ESP_MOUNT_POINT);
    std::fs::create_dir_all(mount_point)
        .with_context(|| format!("creating {}", mount_point.display()))?;
    nix::mount::mount(
        Some(&device),
        mount_point,
        Some(ESP_FS_TYPE),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "mounting {} read-only on {}",
            device.display(),
            mount_point.display()
        )
    })?;
    let files = read_files(mount_point);
    if let Err(err) = umount(mount_point) {
        tracing::warn!("unmounting {}: {err}", mount_point.display());
    }
    files
}

/// The device node of the ESP partition `partuuid` on one of `stick_disks` (the
/// disks under the verity root), read from their GPTs.
pub fn find_esp(
    sys_block: &Path,
    dev_dir: &Path,
    stick_disks: &[String],
    partuuid: &str,
) -> Result<PathBuf> {
    anyhow::ensure!(
        !stick_disks.is_empty(),
        "no disk under the verity root: the stick is unknown, its ESP is not read"
    );
    for disk in stick_disks {
        let entries = crate::boot::gpt::read_disk_entries(sys_block, dev_dir, disk)
            .context("reading the GPT of the stick")?;
        let Some(entry) = entries
            .iter()
            .find(|e| e.part_uuid == partuuid && e.type_uuid == ESP_TYPE_UUID)
        else {
            continue;
        };
        let name = crate::sysfs::partition_name(sys_block, disk, entry.number)
            .with_context(|| format!("{disk} has no partition {} in sysfs", entry.number))?;
        return Ok(dev_dir.join(name));
    }
    anyhow::bail!(
        "the firmware booted from ESP {partuuid}, which is not on the stick ({}): \
         the UKI came from another disk",
        stick_disks.join(", ")
    )
}

fn read_files(dir: &Path) -> Result<EspFiles> {
    Ok(EspFiles {
        manifest: read_optional(&dir.join(stick_manifest::MANIFEST_FILE))?,
        signature: read_optional(&dir.join(stick_manifest::SIGNATURE_FILE))?,
    })
}

/// The file's bytes, `None` when it does not exist; an error when it is too large.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("opening {}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        anyhow::bail!("{} is larger than {MAX_FILE_BYTES} bytes", path.display());
    }
    Ok(Some(bytes))
}

fn wait_for(path: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if path.exists() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            anyhow::bail!("{} did not appear within {timeout:?}", path.display());
        }
        std::thread::sleep(ESP_DEVICE_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stick_manifest::{signing_key_from_pem, ManifestSigningKey, VerityInfo};

    fn test_key() -> ManifestSigningKey {
        signing_key_from_pem(include_str!("../../../keys/test-manifest-signing.key"))
            .expect("committed test key parses")
    }

    fn manifest() -> Manifest {
        Manifest {
            format: stick_manifest::FORMAT,
            name: "conference-stick".into(),
            version: "1.2.0".into(),
            rollback_index: 4,
            build_time: 1_700_000_000,
            test_keys: true,
            verity: VerityInfo {
                root_hash: "ab".repeat(32),
                salt: "cd".repeat(32),
                hash_algorithm: "sha256".into(),
                data_block_size: 4096,
                hash_block_size: 4096,
            },
            cmdline: format!("roothash={} systemd.volatile=overlay", "ab".repeat(32)),
            partitions: vec![],
            esp_files: vec![],
            packages: vec![],
            kernel_version: "6.12.48+deb13-amd64".into(),
            builder_version: "0.1.0".into(),
            config_sha256: "00".repeat(32),
            kernel_filesystems: vec![],
            firmware: vec![],
            uki_signer: None,
            shim: None,
            test_fake_capture: false,
            personal_credential: None,
            personal_user: false,
            wifi: false,
        }
    }

    #[test]
    fn manifest_checks() {
        let key = test_key();
        let (bytes, sig) = manifest().sign(&key);
        let mut tampered = bytes.clone();
        tampered[20] ^= 1;
        let other = ManifestSigningKey::from_bytes(&[7; 32]);
        let (_, other_sig) = manifest().sign(&other);
        let files = |m: Option<&[u8]>, s: Option<&str>| EspFiles {
            manifest: m.map(<[u8]>::to_vec),
            signature: s.map(|s| s.as_bytes().to_vec()),
        };
        let cases: Vec<(&str, EspFiles, SignatureState, &str, bool)> = vec![
            (
                "good",
                files(Some(&bytes), Some(&sig)),
                SignatureState::Valid,
                "signed by the image's manifest key (TEST key)",
                true,
            ),
            (
                "tampered",
                files(Some(&tampered), Some(&sig)),
                SignatureState::Invalid,
                "signature does not verify",
                false,
            ),
            (
                "other key",
                files(Some(&bytes), Some(&other_sig)),
                SignatureState::Invalid,
                "signature does not verify",
                false,
            ),
            (
                "garbage signature",
                files(Some(&bytes), Some("not hex\n")),
                SignatureState::Invalid,
                "signature file is not 128 hex digits",
                false,
            ),
            (
                "no signature",
                files(Some(&bytes), None),
                SignatureState::Missing,
                "manifest.json.sig not found on the ESP",
                false,
            ),
            (
                "nothing",
                files(None, None),
                SignatureState::Missing,
                "manifest.json not found on the ESP",
                false,
            ),
        ];
        for (name, files, state, detail, has_manifest) in cases {
            let check = check_manifest(&files, &key.verifying_key());
            assert_eq!(check.signature, state, "{name}");
            assert!(check.detail.starts_with(detail), "{name}: {}", check.detail);
            assert_eq!(check.manifest.is_some(), has_manifest, "{name}");
        }
    }

    #[test]
    fn optional_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(stick_manifest::MANIFEST_FILE), b"{}\n").expect("write");
        let files = read_files(dir.path()).expect("reads");
        assert_eq!(
            files,
            EspFiles {
                manifest: Some(b"{}\n".to_vec()),
                signature: None,
            }
        );
    }

    #[test]
    fn the_esp_is_read_from_the_stick_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = dir.path().join("devices");
        let sys = dir.path().join("class");
        let dev = dir.path().join("dev");
        std::fs::create_dir_all(&sys).expect("sys");
        std::fs::create_dir_all(&dev).expect("dev");
        // Type bytes: the ESP's type GUID starts 28 73 2a c1 on disk.
        let esp_uuid_bytes = [0x11u8; 16];
        let esp_type = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        for disk in ["sda", "nvme0n1"] {
            let mut table = crate::boot::gpt::test_disk(&[(1, esp_uuid_bytes)], 128, 128, 2);
            table[1024..1040].copy_from_slice(&esp_type);
            // test_disk's CRCs were computed before the type was set: recompute.
            let entries_crc = crc32fast::hash(&table[1024..1024 + 128 * 128]);
            table[512 + 88..512 + 92].copy_from_slice(&entries_crc.to_le_bytes());
            table[512 + 16..512 + 20].fill(0);
            let header_crc = crc32fast::hash(&table[512..512 + 92]);
            table[512 + 16..512 + 20].copy_from_slice(&header_crc.to_le_bytes());
            std::fs::write(dev.join(disk), table).expect("disk");
            let part = devices.join(disk).join(format!("{disk}x1"));
            std::fs::create_dir_all(&part).expect("part");
            std::fs::write(part.join("partition"), "1\n").expect("number");
            std::os::unix::fs::symlink(devices.join(disk), sys.join(disk)).expect("link");
        }
        let uuid = "11111111-1111-1111-1111-111111111111";
        let found = find_esp(&sys, &dev, &["sda".into()], uuid).expect("found");
        assert_eq!(found, dev.join("sdax1"));
        let found = find_esp(&sys, &dev, &["nvme0n1".into()], uuid).expect("found");
        assert_eq!(found, dev.join("nvme0n1x1"));
        let err = find_esp(
            &sys,
            &dev,
            &["sda".into()],
            "22222222-1111-1111-1111-111111111111",
        )
        .expect_err("another ESP");
        assert!(err.to_string().contains("not on the stick (sda)"), "{err}");
        assert!(find_esp(&sys, &dev, &[], uuid).is_err(), "no stick, no ESP");
    }
}
