//! The root filesystem as the build makes it: a reproducible squashfs of the root
//! tree (fixed times, sorted by mksquashfs), padded to whole verity blocks, and
//! its dm-verity hash tree with a salt and UUID derived from its bytes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::disk::gpt::derive_guid;
use crate::disk::layer_cache::LayerCache;
use crate::disk::tree_digest::tree_digest;
use crate::disk::verity::{VerityParams, VerityTree, VERITY_BLOCK_SIZE};
use crate::disk::{file_len, round_up, sha256_file};
use crate::runner::CommandRunExt;
use crate::trees::tools::{in_work, ToolsTree};

/// How the root filesystem is packed. The choice is measured in
/// docs/benchmarks.md ("Root compression", and "Compression: what it costs at
/// boot"): size against build time, boot time and reading the browser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RootCompression {
    /// xz with the x86 branch filter in 1 MiB blocks: the smallest root.
    #[default]
    Xz,
    /// zstd at a level from 1 to 22, in 128 KiB blocks: packs far faster.
    Zstd { level: u8 },
}

impl RootCompression {
    /// What `--compression` accepts, for errors and help.
    pub const ALLOWED: &'static str = "xz, zstd (level 15) or zstd:LEVEL with LEVEL 1 to 22";

    /// mksquashfs' arguments for this choice.
    fn mksquashfs_args(self) -> Vec<String> {
        match self {
            RootCompression::Xz => ["-comp", "xz", "-Xbcj", "x86", "-b", "1M"]
                .map(String::from)
                .to_vec(),
            RootCompression::Zstd { level } => vec![
                "-comp".into(),
                "zstd".into(),
                "-Xcompression-level".into(),
                level.to_string(),
            ],
        }
    }
}

impl std::fmt::Display for RootCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootCompression::Xz => write!(f, "xz"),
            RootCompression::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

impl std::str::FromStr for RootCompression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("unknown root compression {text:?}: use {}", Self::ALLOWED);
        match text.split_once(':') {
            None if text == "xz" => Ok(RootCompression::Xz),
            None if text == "zstd" => Ok(RootCompression::Zstd { level: 15 }),
            Some(("zstd", level)) => match level.parse::<u8>() {
                Ok(level @ 1..=22) => Ok(RootCompression::Zstd { level }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// The root's top-level folder packed apart from the system, after it: the
/// stick's own software (`/opt/secure-stick`), which changes far more often.
pub const OWN_SOFTWARE_DIR: &str = "opt";

/// The cache key of a system layer: what it packs and how.
fn layer_key(tree_digest: &str, tools_root: &Path, args: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"secure-stick system layer v1\0");
    hasher.update(tree_digest.as_bytes());
    hasher.update(b"\0");
    hasher.update(tools_root.as_os_str().as_encoded_bytes());
    for arg in args {
        hasher.update(b"\0");
        hasher.update(arg.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// mksquashfs from the tools tree packing `sources` into `dest` (appending when
/// `dest` exists and no `-noappend` follows), on every CPU.
fn mksquashfs(tools: &ToolsTree, work: &Path, sources: &[&Path], dest: &Path) -> Command {
    let mut command = tools.command(work, "mksquashfs");
    for source in sources {
        command.arg(in_work(work, source));
    }
    command
        .arg(in_work(work, dest))
        .arg("-processors")
        .arg(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .to_string(),
        )
        // mksquashfs refuses SOURCE_DATE_EPOCH beside explicit times.
        .env_remove("SOURCE_DATE_EPOCH");
    command
}

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
    /// in two steps: the system (everything but [`OWN_SOFTWARE_DIR`]), taken from
    /// `layers` when this very system was packed before, then the stick's own
    /// software appended to it. A kiosk change packs a few MB instead of the
    /// whole root; a cold build packs the same two steps, so both give the
    /// same bytes.
    pub fn make(
        tools: &ToolsTree,
        work: &Path,
        root: &Path,
        fs_time: u64,
        compression: RootCompression,
        layers: &LayerCache,
    ) -> Result<Squashfs> {
        let path = work.join("root.squashfs");
        let times = [
            "-all-time".to_string(),
            fs_time.to_string(),
            "-mkfs-time".to_string(),
            fs_time.to_string(),
        ];
        let mut system_args: Vec<String> = ["-noappend", "-no-progress"].map(String::from).to_vec();
        system_args.extend(compression.mksquashfs_args());
        system_args.extend(times.clone());
        // mksquashfs takes every argument after -e as a path to leave out.
        system_args.extend(["-e".to_string(), OWN_SOFTWARE_DIR.to_string()]);
        let started = std::time::Instant::now();
        let digest = tree_digest(root, &[OWN_SOFTWARE_DIR])?;
        let key = layer_key(&digest, tools.root(), &system_args);
        tracing::info!(
            "system layer {key}: digest of the root in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if layers.copy_out(&key, &path)? {
            tracing::info!("system layer unchanged since an earlier build: reused, not packed");
        } else {
            tracing::info!("packing the system layer ({compression})");
            mksquashfs(tools, work, &[root], &path)
                .args(&system_args)
                .run_logged()?;
            layers.store(&key, &path)?;
        }
        let own = root.join(OWN_SOFTWARE_DIR);
        if own.is_dir() {
            // Appends with the layer's own compressor; `-keep-as-directory`
            // adds the folder itself, not its contents, to the root.
            mksquashfs(tools, work, &[&own], &path)
                .args(["-keep-as-directory", "-no-progress"])
                .args(times)
                .run_logged()?;
        }
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
    fn compression_choices_parse_and_print_back() {
        // (text, parsed or None for refused)
        let cases = [
            ("xz", Some(RootCompression::Xz)),
            ("zstd", Some(RootCompression::Zstd { level: 15 })),
            ("zstd:1", Some(RootCompression::Zstd { level: 1 })),
            ("zstd:22", Some(RootCompression::Zstd { level: 22 })),
            ("zstd:0", None),
            ("zstd:23", None),
            ("zstd:", None),
            ("zstd:x", None),
            ("xz:9", None),
            ("gzip", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = text.parse::<RootCompression>();
            assert_eq!(got.clone().ok(), want, "{text:?}");
            match (got, want) {
                (Ok(parsed), Some(_)) if text != "zstd" => assert_eq!(parsed.to_string(), text),
                (Err(e), None) => {
                    assert!(e.contains(&format!("{text:?}")), "{e}");
                    assert!(e.contains(RootCompression::ALLOWED), "{e}");
                }
                _ => {}
            }
        }
        assert_eq!(
            RootCompression::Xz.mksquashfs_args(),
            ["-comp", "xz", "-Xbcj", "x86", "-b", "1M"]
        );
    }

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
