//! Packed system layers kept between builds, so a build whose system is unchanged
//! (only the stick's own software in `/opt` differs: a kiosk change) appends to
//! the layer packed before instead of packing a gigabyte again.
//!
//! A layer is stored under its key (the digest of what it packs, the packer and
//! its options); the newest few are kept. Stored by rename, so a build stopped
//! half-way or two builds at once never leave a half-written layer under a key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// How many layers are kept (each is the size of a root: 200–400 MB, so up to
/// about 3 GB). Four were too few: the test suite's images alone pushed the
/// demo's layer out, and its next kiosk change packed the system again.
pub const KEPT_LAYERS: usize = 8;

/// The folder of packed layers in the build cache.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
}

impl LayerCache {
    pub fn new(cache_dir: &Path) -> LayerCache {
        LayerCache {
            dir: cache_dir.join("layers"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.squashfs"))
    }

    /// Copies the layer stored under `key` to `to`; false when there is none.
    pub fn copy_out(&self, key: &str, to: &Path) -> Result<bool> {
        let path = self.path(key);
        // Opened first: a layer pruned by another build stays readable.
        let mut layer = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
        };
        let mut out =
            std::fs::File::create(to).with_context(|| format!("cannot create {}", to.display()))?;
        std::io::copy(&mut layer, &mut out)
            .with_context(|| format!("cannot copy {} to {}", path.display(), to.display()))?;
        // The newest use counts for pruning.
        layer
            .set_modified(std::time::SystemTime::now())
            .with_context(|| format!("cannot touch {}", path.display()))?;
        Ok(true)
    }

    /// Stores a copy of `layer` under `key`, then keeps only the newest
    /// [`KEPT_LAYERS`].
    pub fn store(&self, key: &str, layer: &Path) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let partial = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&self.dir)
            .with_context(|| format!("cannot create a file in {}", self.dir.display()))?;
        std::fs::copy(layer, partial.path())
            .with_context(|| format!("cannot copy {} into the cache", layer.display()))?;
        let path = self.path(key);
        partial
            .persist(&path)
            .with_context(|| format!("cannot store {}", path.display()))?;
        self.prune(KEPT_LAYERS)
    }

    /// Removes all but the `keep` most recently used layers.
    fn prune(&self, keep: usize) -> Result<()> {
        let mut layers = Vec::new();
        for entry in std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read {}", self.dir.display()))?
        {
            let entry = entry.with_context(|| format!("cannot read {}", self.dir.display()))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "squashfs") {
                // A layer another build removed meanwhile is simply gone.
                if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                    layers.push((modified, path));
                }
            }
        }
        layers.sort_by(|a, b| b.cmp(a));
        for (_, path) in layers.into_iter().skip(keep) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
                _ => tracing::debug!("dropped the packed layer {}", path.display()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_layer_comes_back_and_only_the_newest_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = LayerCache::new(dir.path());
        let out = dir.path().join("out");
        assert!(!cache.copy_out("k0", &out).expect("lookup"), "empty cache");
        let layer = dir.path().join("layer");
        for n in 0..=KEPT_LAYERS {
            std::fs::write(&layer, format!("layer {n}")).expect("write");
            cache.store(&format!("k{n}"), &layer).expect("store");
            // Modification times must differ for the order to be defined.
            let stored = cache.path(&format!("k{n}"));
            std::fs::File::options()
                .write(true)
                .open(&stored)
                .and_then(|f| {
                    f.set_modified(
                        std::time::SystemTime::UNIX_EPOCH
                            + std::time::Duration::from_secs(1000 + n as u64),
                    )
                })
                .expect("set time");
        }
        cache.prune(KEPT_LAYERS).expect("prune");
        // (key, still kept)
        let expect: Vec<(String, bool)> = (0..=KEPT_LAYERS)
            .map(|n| (format!("k{n}"), n > 0))
            .collect();
        for (key, kept) in expect {
            assert_eq!(cache.copy_out(&key, &out).expect("lookup"), kept, "{key}");
            if kept {
                assert_eq!(
                    std::fs::read_to_string(&out).expect("read"),
                    format!("layer {}", &key[1..])
                );
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("layers"))
            .expect("read")
            .map(|e| e.expect("entry").file_name())
            .filter(|name| name.to_string_lossy().starts_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
