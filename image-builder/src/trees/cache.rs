//! Debian trees made by mmdebstrap, cached by what went into them.
//!
//! Two trees are cached: the image's base root filesystem (with its kernel and
//! initrd) and the tools tree the build runs its tools from. A tree's key is the
//! sha256 of its recipe; a tree is built under a temporary name and renamed when
//! complete, so an interrupted build never leaves a tree that looks finished. The
//! downloaded packages are kept in `CACHE/apt` between builds.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::runner::{CommandError, CommandRunExt};

/// Bump when the way trees are made changes, so old cached trees are not reused.
const RECIPE_VERSION: u32 = 1;

/// What goes into one mmdebstrap run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRecipe {
    /// `base` or `tools`: part of the cache directory name.
    pub kind: &'static str,
    pub suite: String,
    /// apt source lines (`deb URI suite components`).
    pub sources: Vec<String>,
    pub packages: Vec<String>,
    /// Shell snippets run by mmdebstrap as customize hooks; `$1` is the tree.
    pub customize_hooks: Vec<String>,
}

impl TreeRecipe {
    /// The cache key: every input that changes the tree's contents.
    pub fn key(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(format!("recipe-version {RECIPE_VERSION}\n"));
        hasher.update(format!("kind {}\nsuite {}\n", self.kind, self.suite));
        for (label, values) in [
            ("source", &self.sources),
            ("package", &self.packages),
            ("hook", &self.customize_hooks),
        ] {
            for value in values {
                hasher.update(format!("{label} {value}\n"));
            }
        }
        hex::encode(&hasher.finalize()[..12])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("cache directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mmdebstrap could not build the {kind} tree: {source}")]
    Mmdebstrap {
        kind: &'static str,
        source: CommandError,
    },
}

/// The cache directory: `apt/` (packages) and `trees/` (finished trees).
#[derive(Debug, Clone)]
pub struct TreeCache {
    root: PathBuf,
}

impl TreeCache {
    pub fn new(root: impl Into<PathBuf>) -> TreeCache {
        TreeCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn io<T>(path: &Path, result: std::io::Result<T>) -> Result<T, TreeError> {
        result.map_err(|source| TreeError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Returns the folder of the finished tree for `recipe`, building it if needed.
    /// The tree's root filesystem is `<folder>/root`; `finish` may move things out of
    /// it into the folder (kernel, initrd) before the tree is marked complete.
    pub fn ensure(
        &self,
        recipe: &TreeRecipe,
        finish: impl FnOnce(&Path) -> Result<(), TreeError>,
    ) -> Result<PathBuf, TreeError> {
        let trees = self.root.join("trees");
        let apt = self.root.join("apt");
        Self::io(&trees, std::fs::create_dir_all(&trees))?;
        Self::io(&apt, std::fs::create_dir_all(&apt))?;
        let name = format!("{}-{}", recipe.kind, recipe.key());
        let done = trees.join(&name);

        // One builder at a time per tree; others wait and then reuse it.
        let lock_path = trees.join(format!("{name}.lock"));
        let lock = Self::io(&lock_path, File::create(&lock_path))?;
        Self::io(&lock_path, lock.lock())?;

        if done.join("root").is_dir() {
            tracing::info!("reusing cached {} tree {}", recipe.kind, done.display());
            return Ok(done);
        }
        let partial = trees.join(format!("{name}.partial"));
        if partial.exists() {
            Self::io(&partial, super::stale_mounts::unmount_beneath(&partial))?;
            Self::io(&partial, std::fs::remove_dir_all(&partial))?;
        }
        Self::io(&partial, std::fs::create_dir_all(&partial))?;
        tracing::info!(
            "building the {} tree ({} packages requested) with mmdebstrap; this takes a minute or two",
            recipe.kind,
            recipe.packages.len()
        );
        let started = std::time::Instant::now();
        self.mmdebstrap(recipe, &partial.join("root"))
            .map_err(|source| TreeError::Mmdebstrap {
                kind: recipe.kind,
                source,
            })?;
        finish(&partial)?;
        Self::io(&done, std::fs::rename(&partial, &done))?;
        tracing::info!(
            "{} tree ready in {:.0} s: {}",
            recipe.kind,
            started.elapsed().as_secs_f64(),
            done.display()
        );
        Ok(done)
    }

    fn mmdebstrap(&self, recipe: &TreeRecipe, target: &Path) -> Result<(), CommandError> {
        let apt = self.root.join("apt");
        // In a mount namespace of its own: the /proc, /sys and /dev mounts it makes
        // in the tree end with it, even when the build is killed.
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "mmdebstrap"])
            .arg("--variant=minbase")
            .arg("--mode=root")
            .arg("--format=directory")
            .arg(format!("--include={}", recipe.packages.join(",")))
            // Keep downloaded packages between builds (mmdebstrap's documented recipe).
            .arg("--skip=download/empty")
            .arg("--skip=essential/unlink")
            .arg("--setup-hook=mkdir -p \"$1\"/var/cache/apt/archives/")
            .arg(format!(
                "--setup-hook=sync-in {} /var/cache/apt/archives/",
                apt.display()
            ));
        for hook in &recipe.customize_hooks {
            cmd.arg(format!("--customize-hook={hook}"));
        }
        cmd.arg(format!(
            "--customize-hook=sync-out /var/cache/apt/archives {}",
            apt.display()
        ))
        .arg("--customize-hook=rm -f \"$1\"/var/cache/apt/archives/*.deb")
        .arg(&recipe.suite)
        .arg(target);
        for source in &recipe.sources {
            cmd.arg(source);
        }
        cmd.run_logged()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe() -> TreeRecipe {
        TreeRecipe {
            kind: "base",
            suite: "trixie".into(),
            sources: vec!["deb http://mirror.example/debian trixie main".into()],
            packages: vec!["systemd".into()],
            customize_hooks: vec![],
        }
    }

    #[test]
    fn key_changes_with_every_input() {
        let base = recipe().key();
        assert_eq!(base.len(), 24);
        assert_eq!(base, recipe().key(), "key is stable");
        let variants: Vec<(&str, TreeRecipe)> = vec![
            (
                "kind",
                TreeRecipe {
                    kind: "tools",
                    ..recipe()
                },
            ),
            (
                "suite",
                TreeRecipe {
                    suite: "forky".into(),
                    ..recipe()
                },
            ),
            (
                "source",
                TreeRecipe {
                    sources: vec!["deb http://other.example/debian trixie main".into()],
                    ..recipe()
                },
            ),
            (
                "package",
                TreeRecipe {
                    packages: vec!["systemd".into(), "udev".into()],
                    ..recipe()
                },
            ),
            (
                "hook",
                TreeRecipe {
                    customize_hooks: vec!["true".into()],
                    ..recipe()
                },
            ),
        ];
        for (what, variant) in variants {
            assert_ne!(variant.key(), base, "{what} must change the key");
        }
    }
}
