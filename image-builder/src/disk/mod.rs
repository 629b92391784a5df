//! The disk image's bytes: the root filesystem, its dm-verity tree, the ESP and
//! the GPT that holds them.
//!
//! - `squashfs`: the root filesystem and its verity tree, as the build makes them;
//! - `layer_cache`: packed system layers kept between builds;
//! - `tree_digest`: what a tree packs to, as one digest (the layer cache's key);
//! - `verity`: the dm-verity hash tree, byte-identical to `veritysetup format`;
//! - `esp`: the EFI System Partition;
//! - `gpt`: the partition table, planned, written and read by our own code;
//! - `image`: the raw disk image assembled from them;
//! - `partition_slice`: one partition of an image file as a file of its own.

pub mod esp;
pub mod gpt;
pub mod image;
pub mod layer_cache;
pub mod partition_slice;
pub mod squashfs;
pub mod tree_digest;
pub mod verity;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

/// `value` rounded up to a multiple of `to`.
pub fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// The size of a file.
pub fn file_len(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len())
}

/// sha256 of `size` bytes at `offset` of `file`, streamed.
pub fn sha256_range(file: &mut File, offset: u64, size: u64) -> std::io::Result<[u8; 32]> {
    file.seek(SeekFrom::Start(offset))?;
    let mut hasher = Sha256::new();
    let mut remaining = size;
    let mut buf = vec![0u8; 1 << 20];
    while remaining > 0 {
        let n = remaining.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        remaining -= n as u64;
    }
    Ok(hasher.finalize().into())
}

/// sha256 of a whole file, streamed.
pub fn sha256_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file_len(path)?;
    sha256_range(&mut file, 0, len).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        let cases = [(0, 0), (1, 4096), (4096, 4096), (4097, 8192)];
        for (value, want) in cases {
            assert_eq!(round_up(value, 4096), want);
        }
    }

    #[test]
    fn file_hash_is_the_hash_of_its_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &bytes).expect("write");
        let want: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(sha256_file(&file).expect("hashes"), want);
    }
}
