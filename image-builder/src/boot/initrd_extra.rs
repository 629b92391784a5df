//! A second initrd archive, appended to dracut's in the UKI: files of the
//! customized root that must already work in the initrd (the storage lock's udev
//! rule and the kiosk binary that runs it). The kernel unpacks concatenated cpio
//! archives in order, so these are added to (or replace) dracut's files.
//!
//! dracut's initrd is built once per base tree and cached; this archive is built
//! on every image build from the current kiosk, in milliseconds.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Paths copied from the customized root into the initrd.
pub const FROM_ROOT: &[&str] = &[
    "/usr/bin/kiosk",
    "/usr/lib/udev/rules.d/10-stick-storage-lock.rules",
    // The kiosk links against it; dracut does not always carry it.
    "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
];

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the initrd, without the leading `/`.
    pub path: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

/// Reads [`FROM_ROOT`] from `root` (following symlinks: the initrd gets the file).
pub fn entries_from_root(root: &Path) -> Result<Vec<Entry>> {
    use std::os::unix::fs::PermissionsExt;
    FROM_ROOT
        .iter()
        .map(|path| {
            let src = root.join(path.trim_start_matches('/'));
            let data =
                std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
            let mode = std::fs::metadata(&src)?.permissions().mode() & 0o7777;
            Ok(Entry {
                path: path.trim_start_matches('/').to_string(),
                mode,
                data,
            })
        })
        .collect()
}

/// A `newc` cpio archive of `entries` with every parent folder before its files,
/// all times `mtime`, padded to 512 bytes.
pub fn cpio_newc(entries: &[Entry], mtime: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let mut ino = 1u32;
    for entry in entries {
        if entry.path.is_empty() || entry.path.starts_with('/') || entry.path.contains("..") {
            bail!("initrd path {:?} must be relative and plain", entry.path);
        }
        let mut parent = String::new();
        for part in entry
            .path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p)
            .unwrap_or(&[])
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            if !dirs.contains(&parent) {
                dirs.push(parent.clone());
                push_record(&mut out, ino, S_IFDIR | 0o755, mtime, &parent, &[]);
                ino += 1;
            }
        }
        push_record(
            &mut out,
            ino,
            S_IFREG | entry.mode,
            mtime,
            &entry.path,
            &entry.data,
        );
        ino += 1;
    }
    push_record(&mut out, 0, 0, 0, "TRAILER!!!", &[]);
    out.resize(out.len().next_multiple_of(512), 0);
    Ok(out)
}

fn push_record(out: &mut Vec<u8>, ino: u32, mode: u32, mtime: u32, name: &str, data: &[u8]) {
    let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        mtime,
        data.len() as u32,
        0, // devmajor
        0, // devminor
        0, // rdevmajor
        0, // rdevminor
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for field in fields {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(4), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, data: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o755,
            data: data.to_vec(),
        }
    }

    /// GNU cpio reads our archive back: same names, same bytes, same modes.
    #[test]
    fn cpio_lists_and_extracts_what_was_put_in() {
        let entries = vec![
            entry("usr/bin/kiosk", b"\x7fELF pretend"),
            entry("usr/lib/udev/rules.d/10-x.rules", b"KERNEL==\"sd*\"\n"),
            entry("usr/bin/other", b""),
        ];
        let archive = cpio_newc(&entries, 0).expect("archive");
        assert_eq!(archive.len() % 512, 0);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = std::process::Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames"])
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("cpio runs (Debian package cpio)");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&archive)
            .expect("write");
        assert!(child.wait().expect("cpio ends").success());
        for e in &entries {
            let path = dir.path().join(&e.path);
            assert_eq!(
                std::fs::read(&path).expect("extracted"),
                e.data,
                "{}",
                e.path
            );
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).expect("stat").permissions().mode() & 0o7777,
                0o755
            );
        }
    }

    #[test]
    fn parents_come_first_once_and_bad_paths_are_refused() {
        let archive = cpio_newc(&[entry("a/b/c", b"1"), entry("a/b/d", b"2")], 0).expect("ok");
        let text = String::from_utf8_lossy(&archive);
        let names: Vec<&str> = ["a\0", "a/b\0", "a/b/c\0", "a/b/d\0", "TRAILER!!!\0"]
            .into_iter()
            .collect();
        let mut at = 0;
        for name in names {
            let found = text[at..].find(name).expect(name);
            at += found + name.len();
        }
        assert_eq!(text.matches("a/b\0").count(), 1);
        for bad in ["/abs", "../up", ""] {
            assert!(cpio_newc(&[entry(bad, b"")], 0).is_err(), "{bad:?}");
        }
    }
}
