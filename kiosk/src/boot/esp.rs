//! The signed manifest on the ESP the UKI was booted from.
//!
//! The ESP is found through `LoaderDevicePartUUID` (never by device name), mounted
//! read-only for as long as it takes to read two files, and unmounted again.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::mount::{umount, MsFlags};
use stick_manifest::{Manifest, ManifestError, ManifestVerifyingKey};

use crate::boot::efivars::{parse_loader_partuuid, LOADER_DEVICE_PARTUUID_VAR};

/// Where the ESP is mounted while the manifest is read.
pub const ESP_MOUNT_POINT: &str = "/run/kiosk/esp";
const BY_PARTUUID_DIR: &str = "/dev/disk/by-partuuid";
const ESP_FS_TYPE: &str = "vfat";
/// udev may still be creating the by-partuuid link when the kiosk starts.
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
    let device = Path::new(BY_PARTUUID_DIR).join(&partuuid);
    wait_for(&device, ESP_DEVICE_TIMEOUT)?;
    tracing::info!("boot ESP is {}", device.display());

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
            uki_signer: None,
            test_fake_capture: false,
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
}
