//! Offline verification of a written image: the manifest's signature first, then
//! every hash in it against the image's bytes. The first mismatch is the answer.

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use stick_manifest::{Manifest, ManifestError, ManifestVerifyingKey, PartitionRole};

use crate::disk::esp::{read_esp_files, EspFile};
use crate::disk::gpt::{GptTable, ESP_TYPE};
use crate::disk::partition_slice::PartitionSlice;
use crate::disk::sha256_range;

/// Why an image is not the one its manifest describes. Each tamper case has its own
/// variant so that the message says what was changed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has no valid GPT: {detail}")]
    NoPartitionTable { path: PathBuf, detail: String },
    #[error("{path} has no EFI System Partition")]
    NoEsp { path: PathBuf },
    #[error("the ESP of {path} cannot be read as FAT: {detail}")]
    EspUnreadable { path: PathBuf, detail: String },
    #[error("the ESP has no {file}: not an image made by image-builder, or the file was removed")]
    ManifestMissing { file: &'static str },
    #[error("manifest signature check failed: {0}")]
    Signature(ManifestError),
    #[error(
        "partition {role}: not in the image's partition table (manifest part-uuid {part_uuid})"
    )]
    PartitionMissing {
        role: PartitionRole,
        part_uuid: String,
    },
    #[error(
        "partition {role}: placement differs from the manifest (manifest: type {want_type} at \
         {want_offset}+{want_size}; image: type {got_type} at {got_offset}+{got_size})"
    )]
    PartitionMoved {
        role: PartitionRole,
        want_type: String,
        want_offset: u64,
        want_size: u64,
        got_type: String,
        got_offset: u64,
        got_size: u64,
    },
    #[error("partition {role}: sha256 mismatch: manifest says {want}, image has {got}")]
    PartitionHash {
        role: PartitionRole,
        want: String,
        got: String,
    },
    #[error("ESP file {path}: missing, the manifest lists it")]
    EspFileMissing { path: String },
    #[error("ESP file {path}: sha256 mismatch (the UKI was changed after signing): manifest says {want}, image has {got}")]
    EspFileHash {
        path: String,
        want: String,
        got: String,
    },
    #[error("ESP file {path}: not listed in the manifest (something was added to the ESP)")]
    EspFileExtra { path: String },
    #[error("manifest is inconsistent: {0}")]
    Inconsistent(String),
}

/// What a successful verification checked.
#[derive(Debug, Clone)]
pub struct Verified {
    pub manifest: Manifest,
    pub partitions_checked: usize,
    pub esp_files_checked: usize,
}

/// The manifest files and the UKI read from an image's ESP.
#[derive(Debug)]
pub struct EspContents {
    pub table: GptTable,
    pub files: Vec<EspFile>,
}

/// Reads the partition table and every file on the ESP.
pub fn read_esp(path: &Path) -> Result<EspContents, VerifyError> {
    let io = |source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let table = GptTable::read_from(&mut file).map_err(|e| VerifyError::NoPartitionTable {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let esp = table.find(ESP_TYPE).ok_or_else(|| VerifyError::NoEsp {
        path: path.to_path_buf(),
    })?;
    let files =
        read_esp_files(PartitionSlice::new(&mut file, esp.offset(), esp.size())).map_err(|e| {
            VerifyError::EspUnreadable {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        })?;
    Ok(EspContents { table, files })
}

impl EspContents {
    pub fn file(&self, name: &str) -> Option<&EspFile> {
        self.files
            .iter()
            .find(|f| f.path.eq_ignore_ascii_case(name))
    }
}

/// Verifies the image at `path` against `key`.
pub fn verify_image(path: &Path, key: &ManifestVerifyingKey) -> Result<Verified, VerifyError> {
    let esp = read_esp(path)?;
    let bytes = &esp
        .file(stick_manifest::MANIFEST_FILE)
        .ok_or(VerifyError::ManifestMissing {
            file: stick_manifest::MANIFEST_FILE,
        })?
        .contents;
    let signature =
        esp.file(stick_manifest::SIGNATURE_FILE)
            .ok_or(VerifyError::ManifestMissing {
                file: stick_manifest::SIGNATURE_FILE,
            })?;
    let signature = String::from_utf8_lossy(&signature.contents);
    let manifest = Manifest::verify(bytes, &signature, key).map_err(VerifyError::Signature)?;

    check_consistency(&manifest)?;
    check_partitions(path, &esp.table, &manifest)?;
    check_esp_files(&esp, &manifest)?;
    Ok(Verified {
        partitions_checked: manifest
            .partitions
            .iter()
            .filter(|p| p.sha256.is_some())
            .count(),
        esp_files_checked: manifest.esp_files.len(),
        manifest,
    })
}

/// Every partition the manifest lists is where it says, with the bytes it says.
fn check_partitions(path: &Path, table: &GptTable, manifest: &Manifest) -> Result<(), VerifyError> {
    let mut file = File::open(path).map_err(|source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    for want in &manifest.partitions {
        let got = table
            .partitions
            .iter()
            .find(|p| p.part_guid.to_string() == want.part_uuid)
            .ok_or_else(|| VerifyError::PartitionMissing {
                role: want.role,
                part_uuid: want.part_uuid.clone(),
            })?;
        if got.type_guid.to_string() != want.type_uuid
            || got.offset() != want.offset
            || got.size() != want.size
        {
            return Err(VerifyError::PartitionMoved {
                role: want.role,
                want_type: want.type_uuid.clone(),
                want_offset: want.offset,
                want_size: want.size,
                got_type: got.type_guid.to_string(),
                got_offset: got.offset(),
                got_size: got.size(),
            });
        }
        if let Some(want_hash) = &want.sha256 {
            let got_hash = sha256_range(&mut file, want.offset, want.size)
                .map(hex::encode)
                .map_err(|source| VerifyError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
            if &got_hash != want_hash {
                return Err(VerifyError::PartitionHash {
                    role: want.role,
                    want: want_hash.clone(),
                    got: got_hash,
                });
            }
        }
    }
    Ok(())
}

/// Every ESP file the manifest lists has its hash, and the ESP holds nothing else
/// (apart from the manifest and its signature).
fn check_esp_files(esp: &EspContents, manifest: &Manifest) -> Result<(), VerifyError> {
    for want in &manifest.esp_files {
        let got = esp
            .file(&want.path)
            .ok_or_else(|| VerifyError::EspFileMissing {
                path: want.path.clone(),
            })?;
        let got_hash = hex::encode(Sha256::digest(&got.contents));
        if got_hash != want.sha256 {
            return Err(VerifyError::EspFileHash {
                path: want.path.clone(),
                want: want.sha256.clone(),
                got: got_hash,
            });
        }
    }
    for file in &esp.files {
        let listed = manifest
            .esp_files
            .iter()
            .any(|f| f.path.eq_ignore_ascii_case(&file.path))
            || file
                .path
                .eq_ignore_ascii_case(stick_manifest::MANIFEST_FILE)
            || file
                .path
                .eq_ignore_ascii_case(stick_manifest::SIGNATURE_FILE);
        if !listed {
            return Err(VerifyError::EspFileExtra {
                path: file.path.clone(),
            });
        }
    }
    Ok(())
}

/// Checks the manifest against itself: the cmdline carries its root hash and the
/// root and verity partitions carry the UUIDs derived from it.
pub fn check_consistency(manifest: &Manifest) -> Result<(), VerifyError> {
    let root_hash = &manifest.verity.root_hash;
    if !manifest
        .cmdline
        .split_whitespace()
        .any(|arg| arg == format!("roothash={root_hash}"))
    {
        return Err(VerifyError::Inconsistent(format!(
            "cmdline does not carry roothash={root_hash}"
        )));
    }
    for (role, range) in [
        (PartitionRole::Root, 0..32),
        (PartitionRole::RootVerity, 32..64),
    ] {
        let part = manifest
            .partition(role)
            .ok_or_else(|| VerifyError::Inconsistent(format!("no {role} partition listed")))?;
        let want = root_hash.get(range).unwrap_or_default();
        if part.part_uuid.replace('-', "") != want {
            return Err(VerifyError::Inconsistent(format!(
                "{role} partition UUID {} is not derived from the root hash",
                part.part_uuid
            )));
        }
        if part.sha256.is_none() {
            return Err(VerifyError::Inconsistent(format!(
                "{role} partition has no sha256"
            )));
        }
    }
    Ok(())
}
