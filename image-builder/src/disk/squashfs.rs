//! The root filesystem as the build makes it: a reproducible squashfs of the root
//! tree (fixed times, sorted by mksquashfs), padded to whole verity blocks, and
//! its dm-verity hash tree with a salt and UUID derived from its bytes.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::disk::gpt::derive_guid;
use crate::disk::verity::{VerityParams, VerityTree, VERITY_BLOCK_SIZE};
use crate::disk::{file_len, round_up, sha256_file};
use crate::runner::CommandRunExt;
use crate::trees::tools::{in_work, ToolsTree};

/// The root partition's contents.
#[derive(Debug)]
pub struct Squashfs {
    pub path: PathBuf,
    /// Bytes, a whole number of verity blocks.
    pub size: u64,
}

/// The root-verity partition's contents and the hash the kernel will enforce.
#[derive(Debug)]
pub struct RootVerity {
    pub path: PathBuf,
    pub tree: VerityTree,
    pub root_hash: String,
}

impl Squashfs {
    /// Packs `root` into `work/root.squashfs` with every time set to `fs_time`,
    /// zstd at `level` (mksquashfs' default, 15, when `None`).
    pub fn make(
        tools: &ToolsTree,
        work: &Path,
        root: &Path,
        fs_time: u64,
        level: Option<u8>,
    ) -> Result<Squashfs> {
        let path = work.join("root.squashfs");
        let mut command = tools.command(work, "mksquashfs");
        command
            .arg(in_work(work, root))
            .arg(in_work(work, &path))
            .args(["-noappend", "-no-progress", "-comp", "zstd"]);
        if let Some(level) = level {
            command.args(["-Xcompression-level", &level.to_string()]);
        }
        command
            .arg("-processors")
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
        pad_to_block(&path, u64::from(VERITY_BLOCK_SIZE))?;
        let size = file_len(&path)?;
        Ok(Squashfs { path, size })
    }

    /// The dm-verity tree of these bytes in `work/root.verity`; salt and UUID are
    /// derived from the bytes, so equal roots give equal trees.
    pub fn verity(&self, work: &Path) -> Result<RootVerity> {
        let digest = sha256_file(&self.path)?;
        let salt: [u8; 32] = Sha256::new()
            .chain_update(b"secure-stick verity salt\0")
            .chain_update(digest)
            .finalize()
            .into();
        let uuid = derive_guid(b"verity-uuid", &salt);
        let path = work.join("root.verity");
        let tree = VerityTree::format(
            &self.path,
            &path,
            &VerityParams {
                salt,
                uuid: *uuid.as_bytes(),
            },
        )?;
        let root_hash = tree.root_hash_hex();
        tracing::info!("verity root hash {root_hash}");
        Ok(RootVerity {
            path,
            tree,
            root_hash,
        })
    }
}

/// Grows a file with zeros to a multiple of `block` bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_fills_the_last_block_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [(5000usize, 8192u64), (4096, 4096), (1, 4096)];
        for (len, want) in cases {
            let file = dir.path().join(format!("f{len}"));
            std::fs::write(&file, vec![1u8; len]).expect("write");
            pad_to_block(&file, 4096).expect("pads");
            assert_eq!(file_len(&file).expect("len"), want, "{len} bytes");
        }
    }
}
