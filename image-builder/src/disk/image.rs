//! The raw disk image: a GPT with the UAPI Discoverable Partitions types (ESP,
//! root, root-verity), assembled under a hidden temporary name in the output
//! folder and renamed only when complete, so that a failed build never leaves
//! something that looks like an image.
//!
//! The partition UUIDs of root and root-verity are the halves of the verity root
//! hash (what systemd-veritysetup-generator looks for); the others are derived
//! from it, so equal roots give equal disks.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use stick_manifest::{PartitionDigest, PartitionRole};

use crate::disk::esp::{esp_size_for, make_esp, EspFile, EspLayout};
use crate::disk::gpt::{
    derive_guid, GptTable, Guid, PartitionSpec, ATTR_READ_ONLY, ESP_TYPE, ROOT_X86_64_TYPE,
    ROOT_X86_64_VERITY_TYPE,
};
use crate::disk::squashfs::{RootVerity, Squashfs};
use crate::disk::{file_len, round_up};
use crate::trees::tools::{InToolsTree, ToolsTree};

/// A disk image being written: root and root-verity are in, the ESP and the
/// partition table are not yet.
#[derive(Debug)]
pub struct DiskImage {
    pub table: GptTable,
    /// The manifest's record of each partition (the ESP without a hash: its
    /// files are hashed one by one).
    pub partitions: Vec<PartitionDigest>,
    root_hash: Vec<u8>,
    file: File,
    partial: PartialFile,
    path: PathBuf,
}

impl DiskImage {
    /// Plans the table for these partitions and writes root and root-verity into
    /// `.NAME.partial` beside `path`.
    pub fn assemble(
        path: &Path,
        squashfs: &Squashfs,
        verity: &RootVerity,
        uki_size: u64,
    ) -> Result<DiskImage> {
        let root_hash = hex::decode(&verity.root_hash).context("root hash is hex")?;
        let specs = partition_specs(
            &root_hash,
            squashfs.size,
            round_up(file_len(&verity.path)?, 4096),
            esp_size_for(uki_size + 1024 * 1024),
        )?;
        let table = GptTable::plan(derive_guid(b"disk", &root_hash), &specs)?;
        let name = path.file_name().context("image path has a file name")?;
        let partial = PartialFile {
            path: path.with_file_name(format!(".{}.partial", name.to_string_lossy())),
            armed: true,
        };
        let mut file = File::create(&partial.path)
            .with_context(|| format!("cannot create {}", partial.path.display()))?;
        file.set_len(table.disk_size)
            .with_context(|| format!("cannot size {}", partial.path.display()))?;
        let mut partitions = Vec::new();
        for (spec, part) in specs.iter().zip(&table.partitions) {
            let (role, source) = match spec.type_guid {
                ESP_TYPE => (PartitionRole::Esp, None),
                ROOT_X86_64_TYPE => (PartitionRole::Root, Some(&squashfs.path)),
                _ => (PartitionRole::RootVerity, Some(&verity.path)),
            };
            let sha256 = match source {
                Some(source) => Some(copy_into(source, &mut file, part.offset(), part.size())?),
                None => None,
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
        Ok(DiskImage {
            table,
            partitions,
            root_hash,
            file,
            partial,
            path: path.to_path_buf(),
        })
    }

    /// Makes the ESP with `files`, writes it and the partition table, and flushes
    /// the image; it keeps its temporary name until `publish`.
    pub fn complete(
        mut self,
        tools: &ToolsTree,
        work: &Path,
        files: &[EspFile],
        fs_time: u64,
    ) -> Result<CompleteImage> {
        let esp_part = self
            .table
            .find(ESP_TYPE)
            .context("planned table has an ESP")?;
        let esp_image = work.join("esp.img");
        make_esp(
            &InToolsTree { tree: tools, work },
            work,
            &esp_image,
            &EspLayout {
                size: esp_part.size(),
                volume_id: u32::from_le_bytes(self.root_hash[..4].try_into().context("4 bytes")?),
                label: "STICK-ESP",
                epoch: fs_time,
            },
            files,
        )?;
        copy_into(
            &esp_image,
            &mut self.file,
            esp_part.offset(),
            esp_part.size(),
        )?;
        self.table.write_to(&mut self.file)?;
        self.file
            .sync_all()
            .with_context(|| format!("cannot flush {}", self.partial.path.display()))?;
        Ok(CompleteImage {
            partial: self.partial,
            path: self.path,
            size: self.table.disk_size,
        })
    }
}

/// A complete, flushed image under its temporary name.
#[derive(Debug)]
pub struct CompleteImage {
    partial: PartialFile,
    path: PathBuf,
    pub size: u64,
}

impl CompleteImage {
    /// Gives the image its real name; returns it.
    pub fn publish(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.partial.path, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.partial.path.display(),
                self.path.display()
            )
        })?;
        self.partial.armed = false;
        Ok(self.path)
    }
}

/// ESP, root and root-verity, with the UUIDs the root hash gives them.
fn partition_specs(
    root_hash: &[u8],
    root_size: u64,
    verity_size: u64,
    esp_size: u64,
) -> Result<[PartitionSpec; 3]> {
    let half = |range: std::ops::Range<usize>| -> Result<Guid> {
        let bytes = root_hash.get(range).context("root hash has 32 bytes")?;
        Ok(Guid::from_bytes(bytes.try_into().context("16 bytes")?))
    };
    Ok([
        PartitionSpec {
            type_guid: ESP_TYPE,
            part_guid: derive_guid(b"esp", root_hash),
            name: "ESP".into(),
            size: esp_size,
            attributes: 0,
        },
        PartitionSpec {
            type_guid: ROOT_X86_64_TYPE,
            part_guid: half(0..16)?,
            name: "root-x86-64".into(),
            size: root_size,
            attributes: ATTR_READ_ONLY,
        },
        PartitionSpec {
            type_guid: ROOT_X86_64_VERITY_TYPE,
            part_guid: half(16..32)?,
            name: "root-x86-64-verity".into(),
            size: verity_size,
            attributes: ATTR_READ_ONLY,
        },
    ])
}

/// Removes a partially written file unless the build got to the end.
#[derive(Debug)]
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn root_and_verity_uuids_are_the_halves_of_the_root_hash() {
        let root_hash: Vec<u8> = (0u8..32).collect();
        let specs = partition_specs(&root_hash, 8192, 4096, 64 << 20).expect("specs");
        let types: Vec<Guid> = specs.iter().map(|s| s.type_guid).collect();
        assert_eq!(types, [ESP_TYPE, ROOT_X86_64_TYPE, ROOT_X86_64_VERITY_TYPE]);
        assert_eq!(specs[1].part_guid.as_bytes()[..], root_hash[..16]);
        assert_eq!(specs[2].part_guid.as_bytes()[..], root_hash[16..]);
        assert_eq!(specs[0].part_guid, derive_guid(b"esp", &root_hash));
        assert!(partition_specs(&root_hash[..20], 1, 1, 1).is_err());
    }
}
