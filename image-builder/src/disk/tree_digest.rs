//! A digest of everything mksquashfs packs from a tree: each entry's path, type,
//! permission bits, owner, extended attributes, link target, device number, hard
//! links and file contents, and not its times (the image's are fixed by the build).
//! Two trees with equal digests pack, with the same packer, options and times, to
//! the same squashfs: the build uses it to find a packed layer it already made.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bumped when what goes into the digest changes, so old digests never match.
const DIGEST_VERSION: &[u8] = b"secure-stick tree digest v1\0";

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path} for the root's digest: {source}")]
pub struct TreeDigestError {
    path: PathBuf,
    source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> TreeDigestError + '_ {
    move |source| TreeDigestError {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of the tree, in walk order.
struct Entry {
    /// Path below the tree's top, `/`-separated, without a leading `/`.
    relative: Vec<u8>,
    path: PathBuf,
    meta: Metadata,
}

/// The digest (hex) of the tree at `root`, leaving out the top-level folders in
/// `skip` (their names, e.g. `opt`) and everything below them.
pub fn tree_digest(root: &Path, skip: &[&str]) -> Result<String, TreeDigestError> {
    let mut entries = Vec::new();
    walk(root, Vec::new(), skip, &mut entries)?;
    let contents = file_contents(&entries)?;
    let mut first_link: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    let mut hasher = Sha256::new();
    hasher.update(DIGEST_VERSION);
    for (index, entry) in entries.iter().enumerate() {
        let meta = &entry.meta;
        hasher.update((entry.relative.len() as u64).to_le_bytes());
        hasher.update(&entry.relative);
        hasher.update(meta.mode().to_le_bytes());
        hasher.update(meta.uid().to_le_bytes());
        hasher.update(meta.gid().to_le_bytes());
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&entry.path).map_err(err(&entry.path))?;
            update_bytes(&mut hasher, target.as_os_str().as_bytes());
        } else if kind.is_block_device() || kind.is_char_device() {
            hasher.update(meta.rdev().to_le_bytes());
        } else if kind.is_file() {
            let first = *first_link.entry((meta.dev(), meta.ino())).or_insert(index);
            if first == index {
                hasher.update(b"F");
                hasher.update(contents[&index]);
            } else {
                // mksquashfs packs a hard link as the same inode.
                hasher.update(b"L");
                update_bytes(&mut hasher, &entries[first].relative);
            }
        }
        for (name, value) in xattrs(&entry.path)? {
            update_bytes(&mut hasher, &name);
            update_bytes(&mut hasher, &value);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn update_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// Every entry below `dir`, folders before their contents, names in byte order.
fn walk(
    dir: &Path,
    relative: Vec<u8>,
    skip: &[&str],
    out: &mut Vec<Entry>,
) -> Result<(), TreeDigestError> {
    let mut names = std::fs::read_dir(dir)
        .map_err(err(dir))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err(dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        if relative.is_empty() && skip.iter().any(|s| s.as_bytes() == name.as_bytes()) {
            continue;
        }
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).map_err(err(&path))?;
        let mut child = relative.clone();
        if !child.is_empty() {
            child.push(b'/');
        }
        child.extend_from_slice(name.as_bytes());
        let is_dir = meta.is_dir();
        out.push(Entry {
            relative: child.clone(),
            path: path.clone(),
            meta,
        });
        if is_dir {
            walk(&path, child, skip, out)?;
        }
    }
    Ok(())
}

/// The SHA-256 of every regular file's bytes, by entry index, hashed on all CPUs.
fn file_contents(entries: &[Entry]) -> Result<BTreeMap<usize, [u8; 32]>, TreeDigestError> {
    let files: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].meta.is_file())
        .collect();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = files.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&i| Ok((i, sha256_of(&entries[i])?)))
                        .collect::<Result<Vec<_>, TreeDigestError>>()
                })
            })
            .collect();
        let mut all = BTreeMap::new();
        for handle in handles {
            all.extend(handle.join().expect("a digest worker panicked")?);
        }
        Ok(all)
    })
}

fn sha256_of(entry: &Entry) -> Result<[u8; 32], TreeDigestError> {
    let mut file = std::fs::File::open(&entry.path).map_err(err(&entry.path))?;
    crate::disk::sha256_range(&mut file, 0, entry.meta.len()).map_err(err(&entry.path))
}

/// An extended attribute: name and value.
type Xattr = (Vec<u8>, Vec<u8>);

/// The entry's extended attributes (not followed through a link), sorted by name.
/// Each list and value is sized by asking first: most entries carry none.
fn xattrs(path: &Path) -> Result<Vec<Xattr>, TreeDigestError> {
    let io = |e: rustix::io::Errno| err(path)(e.into());
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(size) => size,
        // The tree's filesystem keeps none.
        Err(rustix::io::Errno::NOTSUP) => 0,
        Err(e) => return Err(io(e)),
    };
    if size == 0 {
        return Ok(Vec::new());
    }
    let mut names = vec![0u8; size];
    let len = rustix::fs::llistxattr(path, &mut names[..]).map_err(io)?;
    let mut out = Vec::new();
    for name in names[..len].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let c_name = std::ffi::CString::new(name).expect("xattr names hold no NUL");
        let size = rustix::fs::lgetxattr_query(path, c_name.as_c_str()).map_err(io)?;
        let mut value = vec![0u8; size];
        let n = rustix::fs::lgetxattr(path, c_name.as_c_str(), &mut value[..]).map_err(io)?;
        value.truncate(n);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree(dir: &Path) {
        for folder in ["usr/bin", "etc", "opt/secure-stick/bin"] {
            std::fs::create_dir_all(dir.join(folder)).expect("mkdir");
        }
        std::fs::write(dir.join("usr/bin/tool"), b"tool v1").expect("write");
        std::fs::write(dir.join("etc/conf"), b"a = 1\n").expect("write");
        std::fs::write(dir.join("opt/secure-stick/bin/kiosk"), b"kiosk v1").expect("write");
        symlink(
            "../../opt/secure-stick/bin/kiosk",
            dir.join("usr/bin/kiosk"),
        )
        .expect("symlink");
    }

    type Change = fn(&Path);

    fn set_xattr(dir: &Path, value: &[u8]) {
        rustix::fs::lsetxattr(
            dir.join("etc/conf"),
            "user.secure-stick",
            value,
            rustix::fs::XattrFlags::empty(),
        )
        .expect("setxattr (the test's folder must keep user attributes)");
    }

    #[test]
    fn what_mksquashfs_packs_changes_the_digest_and_times_and_skipped_folders_do_not() {
        // (what changes, how, whether the digest must change)
        let cases: [(&str, Change, bool); 10] = [
            ("nothing", |_| {}, false),
            (
                "a file's bytes",
                |d| std::fs::write(d.join("etc/conf"), b"a = 2\n").expect("write"),
                true,
            ),
            (
                "a file's mode",
                |d| {
                    std::fs::set_permissions(
                        d.join("usr/bin/tool"),
                        std::fs::Permissions::from_mode(0o700),
                    )
                    .expect("chmod")
                },
                true,
            ),
            (
                "a link's target",
                |d| {
                    std::fs::remove_file(d.join("usr/bin/kiosk")).expect("rm");
                    symlink("tool", d.join("usr/bin/kiosk")).expect("symlink");
                },
                true,
            ),
            (
                "a name",
                |d| std::fs::rename(d.join("etc/conf"), d.join("etc/conf2")).expect("mv"),
                true,
            ),
            (
                "an empty folder more",
                |d| std::fs::create_dir(d.join("etc/empty")).expect("mkdir"),
                true,
            ),
            ("an extended attribute", |d| set_xattr(d, b"1"), true),
            (
                "a file's time",
                |d| {
                    std::fs::File::options()
                        .write(true)
                        .open(d.join("etc/conf"))
                        .and_then(|f| {
                            f.set_modified(
                                std::time::SystemTime::UNIX_EPOCH
                                    + std::time::Duration::from_secs(1),
                            )
                        })
                        .expect("touch")
                },
                false,
            ),
            (
                "the skipped folder's contents",
                |d| {
                    std::fs::write(d.join("opt/secure-stick/bin/kiosk"), b"kiosk v2")
                        .expect("write")
                },
                false,
            ),
            (
                "a nested folder named like the skipped one",
                |d| std::fs::create_dir(d.join("usr/opt")).expect("mkdir"),
                true,
            ),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let before = dir.path().join("before");
        tree(&before);
        let want_before = tree_digest(&before, &["opt"]).expect("digest");
        for (what, change, differs) in cases {
            let after = dir.path().join(what.replace(' ', "-"));
            tree(&after);
            change(&after);
            let got = tree_digest(&after, &["opt"]).expect("digest");
            assert_eq!(got != want_before, differs, "{what}");
        }
        assert_ne!(
            tree_digest(&before, &[]).expect("digest"),
            want_before,
            "without the skip the kiosk counts"
        );
    }

    #[test]
    fn hard_links_and_attribute_values_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let with_copy = dir.path().join("copy");
        tree(&with_copy);
        std::fs::write(with_copy.join("usr/bin/tool2"), b"tool v1").expect("write");
        let with_link = dir.path().join("link");
        tree(&with_link);
        std::fs::hard_link(
            with_link.join("usr/bin/tool"),
            with_link.join("usr/bin/tool2"),
        )
        .expect("ln");
        assert_ne!(
            tree_digest(&with_copy, &["opt"]).expect("digest"),
            tree_digest(&with_link, &["opt"]).expect("digest"),
            "a hard link packs differently from a copy"
        );
        let values: Vec<String> = [&b"1"[..], b"2"]
            .iter()
            .map(|value| {
                let tree_with = dir.path().join(format!("xattr-{}", value[0]));
                tree(&tree_with);
                set_xattr(&tree_with, value);
                tree_digest(&tree_with, &["opt"]).expect("digest")
            })
            .collect();
        assert_ne!(values[0], values[1], "an extended attribute's value counts");
    }

    #[test]
    fn a_missing_tree_is_named() {
        let e = tree_digest(Path::new("/nonexistent/tree"), &[]).expect_err("no tree");
        assert!(e.to_string().contains("/nonexistent/tree"), "{e}");
    }
}
