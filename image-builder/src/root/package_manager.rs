//! No package manager in the finished root: apt, its library and signature
//! verifier, Debian's archive keys, dpkg, and their databases. A stick is never
//! updated in place (a new signed image is written whole), so nothing on it
//! installs, verifies or lists packages; the SBOM is read from dpkg's database
//! before this runs (the manifest's `packages`).
//!
//! Each package's files are taken from dpkg's own list of them
//! (`var/lib/dpkg/info/NAME[:ARCH].list`), folders only when that leaves them
//! empty; then their configuration, databases and caches, and the links that
//! enable the removed packages' timers and services.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Packages whose files leave the root: name, or name prefix ending in `*`
/// (libapt-pkg carries its ABI version in its name).
pub const PACKAGES: &[&str] = &[
    "apt",
    "libapt-pkg*",
    "sqv",
    "debian-archive-keyring",
    "dpkg",
];

/// Configuration, databases, caches and logs of apt, dpkg and debconf,
/// relative to the root.
pub const STATE: &[&str] = &[
    "etc/apt",
    "etc/dpkg",
    "var/lib/apt",
    "var/cache/apt",
    "var/log/apt",
    "var/cache/debconf",
    "var/log/dpkg.log",
    "var/log/alternatives.log",
    "var/lib/dpkg",
];

/// Where dpkg lists each installed package's files.
const LISTS: &str = "var/lib/dpkg/info";

/// Where units are enabled by links.
const UNIT_LINKS: &str = "etc/systemd/system";

/// What left the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageManagerRemoval {
    /// The packages whose files went, as dpkg names their lists.
    pub packages: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

/// Whether a list file (`apt.list`, `libapt-pkg7.0:amd64.list`) belongs to one of
/// `packages`; its package name when it does.
pub fn listed_package(list_file: &str, packages: &[&str]) -> Option<String> {
    let stem = list_file.strip_suffix(".list")?;
    let name = stem.split(':').next().unwrap_or(stem);
    packages
        .iter()
        .any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *p,
        })
        .then(|| stem.to_string())
}

/// The paths of a dpkg list (one absolute path per line), relative to the root;
/// `/.` and empty lines name nothing.
pub fn list_paths(list: &str) -> Vec<PathBuf> {
    list.lines()
        .map(|line| line.trim().trim_start_matches('/'))
        .filter(|path| !path.is_empty() && *path != ".")
        .map(PathBuf::from)
        .collect()
}

/// Takes the package manager out of `root`.
pub fn remove(root: &Path) -> Result<PackageManagerRemoval> {
    let canonical_root = root
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", root.display()))?;
    let mut removal = PackageManagerRemoval::default();
    let mut units = BTreeSet::new();
    let mut folders = Vec::new();
    for (package, list_path) in lists(root)? {
        let list = std::fs::read_to_string(&list_path)
            .with_context(|| format!("cannot read {}", list_path.display()))?;
        for path in list_paths(&list) {
            let full = root.join(&path);
            let Ok(meta) = full.symlink_metadata() else {
                continue;
            };
            if !inside(&canonical_root, &full) {
                tracing::warn!(
                    "package manager: {} leads out of the root through a link; left alone",
                    path.display()
                );
                continue;
            }
            if meta.is_dir() {
                folders.push(full);
                continue;
            }
            if is_unit(&path) {
                units.extend(path.file_name().map(|n| n.to_os_string()));
            }
            remove_counted(&full, &meta, &mut removal)?;
        }
        removal.packages.push(package);
    }
    // Deepest first, and only what the packages' files alone filled.
    folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
    for folder in folders {
        if std::fs::read_dir(&folder).is_ok_and(|mut e| e.next().is_none()) {
            std::fs::remove_dir(&folder)
                .with_context(|| format!("cannot remove {}", folder.display()))?;
        }
    }
    remove_unit_links(&root.join(UNIT_LINKS), &units, &mut removal)?;
    for state in STATE {
        remove_tree(&root.join(state), &mut removal)?;
    }
    tracing::info!(
        "package manager: {} files, {:.1} MiB left out ({}): a stick is rewritten whole, never updated in place",
        removal.files,
        removal.bytes as f64 / (1024.0 * 1024.0),
        removal.packages.join(" ")
    );
    Ok(removal)
}

/// dpkg's lists of the packages in [`PACKAGES`], sorted by name.
fn lists(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let folder = root.join(LISTS);
    let entries =
        std::fs::read_dir(&folder).with_context(|| format!("cannot list {}", folder.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", folder.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(package) = listed_package(&name, PACKAGES) {
            found.push((package, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Whether `full`'s folder, its links followed, lies in the root: a list names
/// paths as the image sees them, and a link to an absolute path in the tree
/// would point into the build host.
fn inside(canonical_root: &Path, full: &Path) -> bool {
    full.parent()
        .and_then(|folder| folder.canonicalize().ok())
        .is_some_and(|folder| folder.starts_with(canonical_root))
}

fn is_unit(path: &Path) -> bool {
    path.starts_with("usr/lib/systemd/system") || path.starts_with("lib/systemd/system")
}

/// Removes the links under `folder` that enable one of `units` (`*.wants/NAME`),
/// so systemd finds no dangling reference to a unit that is gone.
fn remove_unit_links(
    folder: &Path,
    units: &BTreeSet<std::ffi::OsString>,
    removal: &mut PackageManagerRemoval,
) -> Result<()> {
    let mut links = Vec::new();
    crate::root::diet::walk(folder, &mut |path, meta| {
        if meta.file_type().is_symlink() && path.file_name().is_some_and(|n| units.contains(n)) {
            links.push((path.to_path_buf(), meta.clone()));
        }
    })?;
    for (path, meta) in links {
        remove_counted(&path, &meta, removal)?;
    }
    Ok(())
}

/// Removes a file or a whole folder, counting its files; a missing path is fine.
fn remove_tree(path: &Path, removal: &mut PackageManagerRemoval) -> Result<()> {
    let Ok(meta) = path.symlink_metadata() else {
        return Ok(());
    };
    if !meta.is_dir() {
        return remove_counted(path, &meta, removal);
    }
    crate::root::diet::walk(path, &mut |_, meta| {
        removal.files += 1;
        removal.bytes += meta.len();
    })?;
    std::fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))
}

fn remove_counted(
    path: &Path,
    meta: &std::fs::Metadata,
    removal: &mut PackageManagerRemoval,
) -> Result<()> {
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    removal.files += 1;
    removal.bytes += meta.len();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_belongs_to_a_package_by_name_or_prefix() {
        let cases: &[(&str, Option<&str>)] = &[
            ("apt.list", Some("apt")),
            ("libapt-pkg7.0:amd64.list", Some("libapt-pkg7.0:amd64")),
            ("libapt-pkg8.1:amd64.list", Some("libapt-pkg8.1:amd64")),
            ("dpkg.list", Some("dpkg")),
            ("apt.md5sums", None),
            ("apt-utils.list", None),
            ("aptitude.list", None),
            ("dpkg-dev.list", None),
            ("libc6:amd64.list", None),
            ("sqv.list", Some("sqv")),
        ];
        for (file, expected) in cases {
            assert_eq!(
                listed_package(file, PACKAGES).as_deref(),
                *expected,
                "{file}"
            );
        }
    }

    #[test]
    fn list_paths_are_relative_and_skip_the_root() {
        assert_eq!(
            list_paths("/.\n/usr\n/usr/bin/apt\n\n/etc/apt/sources.list.d\n"),
            vec![
                PathBuf::from("usr"),
                PathBuf::from("usr/bin/apt"),
                PathBuf::from("etc/apt/sources.list.d"),
            ]
        );
    }

    fn write(root: &Path, path: &str, contents: &str) {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, contents).expect("write");
    }

    #[test]
    fn the_packages_files_state_and_enabling_links_go_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(
            root,
            "var/lib/dpkg/info/apt.list",
            "/.\n/usr\n/usr/bin\n/usr/bin/apt\n/usr/lib/apt\n/usr/lib/apt/methods\n\
             /usr/lib/apt/methods/http\n/usr/lib/systemd/system/apt-daily.timer\n\
             /usr/bin/missing-already\n",
        );
        write(root, "var/lib/dpkg/info/bash.list", "/usr/bin/bash\n");
        write(root, "var/lib/dpkg/status", "Package: apt\n");
        write(root, "usr/bin/apt", "apt binary");
        write(root, "usr/bin/bash", "bash binary");
        write(root, "usr/lib/apt/methods/http", "http method");
        write(root, "usr/lib/systemd/system/apt-daily.timer", "[Timer]\n");
        write(root, "usr/lib/systemd/system/other.timer", "[Timer]\n");
        write(root, "var/cache/apt/pkgcache.bin", "cache");
        write(
            root,
            "etc/apt/sources.list",
            "deb http://mirror/debian trixie main\n",
        );
        let wants = root.join("etc/systemd/system/timers.target.wants");
        std::fs::create_dir_all(&wants).expect("mkdir");
        std::os::unix::fs::symlink(
            "/usr/lib/systemd/system/apt-daily.timer",
            wants.join("apt-daily.timer"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(
            "/usr/lib/systemd/system/other.timer",
            wants.join("other.timer"),
        )
        .expect("symlink");

        let removal = remove(root).expect("removed");

        assert_eq!(removal.packages, vec!["apt".to_string()]);
        let gone = [
            "usr/bin/apt",
            "usr/lib/apt",
            "usr/lib/systemd/system/apt-daily.timer",
            "etc/systemd/system/timers.target.wants/apt-daily.timer",
            "var/lib/dpkg",
            "var/cache/apt",
            "etc/apt",
        ];
        let kept = [
            "usr/bin/bash",
            "usr/bin",
            "usr/lib/systemd/system/other.timer",
            "etc/systemd/system/timers.target.wants/other.timer",
        ];
        for path in gone {
            assert!(root.join(path).symlink_metadata().is_err(), "{path} stayed");
        }
        for path in kept {
            assert!(root.join(path).symlink_metadata().is_ok(), "{path} went");
        }
        // apt's three files and one link, dpkg's two lists and status, apt's
        // cache and sources.
        assert_eq!(removal.files, 9);
    }

    #[test]
    fn a_listed_path_through_a_link_out_of_the_root_is_left_alone() {
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("README"), "the host's").expect("write");
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(
            root,
            "var/lib/dpkg/info/dpkg.list",
            "/etc/alternatives/README\n",
        );
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::os::unix::fs::symlink(outside.path(), root.join("etc/alternatives")).expect("symlink");

        let removal = remove(root).expect("removed");

        assert!(outside.path().join("README").exists(), "a host file went");
        assert_eq!(removal.packages, vec!["dpkg".to_string()]);
    }

    #[test]
    fn a_root_without_dpkg_s_lists_is_an_error_naming_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = format!("{:#}", remove(dir.path()).expect_err("no lists"));
        assert!(error.contains("var/lib/dpkg/info"), "{error}");
    }
}
