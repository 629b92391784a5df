//! Copies of a built image, changed the way an attacker with the stick in hand
//! would change them: a byte in the root or the verity tree, the UKI, the manifest.
//!
//! Offsets are computed from the image itself (GPT, squashfs inode, FAT), never
//! hard-coded, so the scenarios follow the image as it changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use image_builder::disk::gpt::{GptPartition, GptTable, Guid, ESP_TYPE, ROOT_X86_64_TYPE};

/// A private copy of an image (deleted with the value).
#[derive(Debug)]
pub struct TamperedStick {
    pub path: PathBuf,
    table: GptTable,
    dir: tempfile::TempDir,
}

impl TamperedStick {
    /// Copies `image` into a fresh folder under `target/qemu-tests/tamper/`.
    pub fn copy_of(image: &Path) -> Result<TamperedStick> {
        let parent = crate::workspace_root().join("target/qemu-tests/tamper");
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let dir = tempfile::tempdir_in(&parent).context("cannot create a tamper folder")?;
        let path = dir.path().join("stick.raw");
        std::fs::copy(image, &path)
            .with_context(|| format!("cannot copy {} to {}", image.display(), path.display()))?;
        let table = GptTable::read_from(
            &mut std::fs::File::open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?,
        )
        .with_context(|| format!("{} has no readable GPT", path.display()))?;
        Ok(TamperedStick { path, table, dir })
    }

    /// The partition of type `type_guid`.
    pub fn partition(&self, type_guid: Guid) -> Result<&GptPartition> {
        self.table.find(type_guid).with_context(|| {
            format!(
                "{} has no partition of type {type_guid}",
                self.path.display()
            )
        })
    }

    /// XORs the byte at `offset` (from the start of the image) with `mask`;
    /// returns the byte as it was.
    pub fn xor_byte(&self, offset: u64, mask: u8) -> Result<u8> {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        let mut byte = [0u8; 1];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut byte)
            .with_context(|| format!("cannot read byte {offset} of {}", self.path.display()))?;
        let old = byte[0];
        byte[0] ^= mask;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&byte)?;
        Ok(old)
    }

    /// Image offset of the first data block of `file` in the squashfs root, found
    /// with rdsquashfs (squashfs-tools-ng) on the root partition.
    pub fn root_file_data_offset(&self, file: &str) -> Result<u64> {
        let root = self.partition(ROOT_X86_64_TYPE)?;
        let squashfs = self.dir.path().join("root.squashfs");
        extract(&self.path, root.offset(), root.size(), &squashfs)?;
        let stat = run(Command::new("rdsquashfs")
            .arg("-s")
            .arg(file)
            .arg(&squashfs))
        .context("rdsquashfs comes from the Debian package squashfs-tools-ng")?;
        std::fs::remove_file(&squashfs).ok();
        let blocks_start = parse_blocks_start(&stat)
            .with_context(|| format!("rdsquashfs -s {file} said:\n{stat}"))?;
        Ok(root.offset() + blocks_start)
    }

    /// The bytes of `esp_path` (e.g. `EFI/BOOT/BOOTX64.EFI`) on the ESP, via mtools.
    pub fn read_esp_file(&self, esp_path: &str) -> Result<Vec<u8>> {
        let out = self.dir.path().join("esp-file.out");
        run(Command::new("mcopy")
            .arg("-n")
            .arg("-i")
            .arg(self.esp_image_spec()?)
            .arg(format!("::{esp_path}"))
            .arg(&out))?;
        let bytes =
            std::fs::read(&out).with_context(|| format!("cannot read {}", out.display()))?;
        std::fs::remove_file(&out).ok();
        Ok(bytes)
    }

    /// Replaces `esp_path` on the ESP with `bytes`, via mtools.
    pub fn write_esp_file(&self, esp_path: &str, bytes: &[u8]) -> Result<()> {
        let src = self.dir.path().join("esp-file.in");
        std::fs::write(&src, bytes).with_context(|| format!("cannot write {}", src.display()))?;
        run(Command::new("mcopy")
            .arg("-o")
            .arg("-i")
            .arg(self.esp_image_spec()?)
            .arg(&src)
            .arg(format!("::{esp_path}")))?;
        std::fs::remove_file(&src).ok();
        Ok(())
    }

    /// mtools' `IMAGE@@OFFSET` naming of the ESP inside the disk image.
    fn esp_image_spec(&self) -> Result<String> {
        Ok(format!(
            "{}@@{}",
            self.path.display(),
            self.partition(ESP_TYPE)?.offset()
        ))
    }

    /// A scratch folder that lives as long as the copy.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }
}

/// `Blocks start:` from `rdsquashfs -s` (the byte offset of a file's first data
/// block inside the squashfs).
pub fn parse_blocks_start(stat: &str) -> Result<u64> {
    let value = stat
        .lines()
        .find_map(|l| l.trim().strip_prefix("Blocks start:"))
        .context("no `Blocks start:` line (is the file a fragment-only or empty file?)")?;
    value
        .trim()
        .parse()
        .with_context(|| format!("`Blocks start:{value}` is not a number"))
}

/// A Secure Boot db key pair that the firmware does not trust.
#[derive(Debug)]
pub struct ForeignDbKey {
    pub key: PathBuf,
    pub cert: PathBuf,
    _dir: tempfile::TempDir,
}

impl ForeignDbKey {
    /// Generates a fresh RSA 2048 key and self-signed certificate with openssl.
    pub fn generate() -> Result<ForeignDbKey> {
        let dir = tempfile::tempdir().context("cannot create a key folder")?;
        let key = dir.path().join("foreign-db.key");
        let cert = dir.path().join("foreign-db.crt");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=Not the organisation's db key"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert))?;
        Ok(ForeignDbKey {
            key,
            cert,
            _dir: dir,
        })
    }
}

/// The UKI with its Authenticode signature removed (`sbattach --remove`).
pub fn unsigned_uki(signed: &[u8], scratch: &Path) -> Result<Vec<u8>> {
    let path = scratch.join("uki-unsigned.efi");
    std::fs::write(&path, signed).with_context(|| format!("cannot write {}", path.display()))?;
    run(Command::new("sbattach").arg("--remove").arg(&path))
        .context("sbattach comes from the Debian package sbsigntool")?;
    std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// The UKI without its signature, signed again with `key` (sbsign).
pub fn resigned_uki(signed: &[u8], key: &ForeignDbKey, scratch: &Path) -> Result<Vec<u8>> {
    let unsigned = scratch.join("uki-unsigned.efi");
    std::fs::write(&unsigned, unsigned_uki(signed, scratch)?)?;
    let out = scratch.join("uki-foreign.efi");
    run(Command::new("sbsign")
        .arg("--key")
        .arg(&key.key)
        .arg("--cert")
        .arg(&key.cert)
        .arg("--output")
        .arg(&out)
        .arg(&unsigned))
    .context("sbsign comes from the Debian package sbsigntool")?;
    std::fs::read(&out).with_context(|| format!("cannot read {}", out.display()))
}

/// Copies `len` bytes at `offset` of `image` into `out`.
pub(crate) fn extract(image: &Path, offset: u64, len: u64, out: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut src =
        std::fs::File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    src.seek(SeekFrom::Start(offset))?;
    let mut dst =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let copied = std::io::copy(&mut src.take(len), &mut dst)?;
    if copied != len {
        bail!(
            "{} ends after {copied} of {len} bytes at {offset}",
            image.display()
        );
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<String> {
    crate::run_tool(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output of `rdsquashfs -s /usr/bin/kiosk` (squashfs-tools-ng 1.2) on a demo image.
    const KIOSK_STAT: &str = "Name: kiosk\nInode type: file\nInode number: 386\n\
        Access: 0755\nFragment index: 0xFFFFFFFF\nFragment offset: 0\n\
        File size: 1479768\nBlocks start: 3314917\nBlock count: 12\n\
        \tBlock #0 size: 29915 (compressed)\n";

    #[test]
    fn blocks_start_is_read_or_named_missing() {
        let cases: &[(&str, Option<u64>)] = &[
            (KIOSK_STAT, Some(3_314_917)),
            ("Name: x\nBlocks start:   42\n", Some(42)),
            ("Name: small\nInode type: file\nFile size: 3\n", None),
            ("Blocks start: lots\n", None),
        ];
        for (stat, want) in cases {
            assert_eq!(parse_blocks_start(stat).ok(), *want, "{stat}");
        }
    }
}
