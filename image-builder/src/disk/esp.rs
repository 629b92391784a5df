//! The EFI System Partition: made with mkfs.vfat and mtools (reproducible with
//! `--invariant` and SOURCE_DATE_EPOCH), read back in Rust with fatfs so that
//! `verify` and `inspect` need no host tools.
//!
//! (fatfs 0.3 writes `.`/`..` entries of new folders that fsck.fat rejects, so it
//! is used for reading only.)

use std::io::{Read, Seek, Write};
use std::path::Path;

use fatfs::{FileSystem, FsOptions};

use crate::runner::{CommandError, CommandRunExt};
use crate::trees::tools::Tools;

/// One file on the ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspFile {
    /// `/`-separated path, e.g. `EFI/BOOT/BOOTX64.EFI`.
    pub path: String,
    pub contents: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum EspError {
    #[error("cannot stage ESP files in {path}: {source}")]
    Stage {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make the ESP: {0}")]
    Tool(#[from] CommandError),
    #[error("cannot read the ESP: {0}")]
    Read(std::io::Error),
}

/// A size in bytes (multiple of 1 MiB, at least 32 MiB) that holds `payload` bytes
/// of files with 4 MiB for FAT's tables, the files' last clusters and the
/// manifest. Every byte of it is written to each stick, and nothing writes to
/// the ESP after the build (a stick is rewritten whole), so it fits the files
/// rather than a round size or room to grow (it had 25 % room: 8.4 MB of the
/// demo, see docs/benchmarks.md).
pub fn esp_size_for(payload: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let wanted = payload + 4 * MIB;
    wanted.div_ceil(MIB).max(32) * MIB
}

/// How the FAT filesystem of an ESP is made.
#[derive(Debug, Clone)]
pub struct EspLayout<'a> {
    /// Bytes.
    pub size: u64,
    pub volume_id: u32,
    pub label: &'a str,
    /// Every timestamp (SOURCE_DATE_EPOCH).
    pub epoch: u64,
}

/// Makes the ESP image `image` holding `files`. All paths lie inside `work`, the
/// build folder the tools see.
pub fn make_esp(
    tools: &dyn Tools,
    work: &Path,
    image: &Path,
    layout: &EspLayout,
    files: &[EspFile],
) -> Result<(), EspError> {
    let EspLayout {
        size,
        volume_id,
        label,
        epoch,
    } = *layout;
    let stage_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EspError::Stage { path, source }
    };
    let staging = work.join("esp-files");
    std::fs::create_dir_all(&staging).map_err(stage_err(&staging))?;
    std::fs::File::create(image)
        .and_then(|f| f.set_len(size))
        .map_err(stage_err(image))?;
    tools
        .command("mkfs.vfat")
        .args(["--invariant", "-S", "512", "-n", label, "-i"])
        .arg(format!("{volume_id:08x}"))
        .arg(tools.path(image))
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .run_capture()?;
    let mut folders: Vec<String> = Vec::new();
    for file in files {
        let mut prefix = String::new();
        let parts: Vec<&str> = file.path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            prefix = if prefix.is_empty() {
                part.to_string()
            } else {
                format!("{prefix}/{part}")
            };
            if !folders.contains(&prefix) {
                folders.push(prefix.clone());
            }
        }
    }
    if !folders.is_empty() {
        tools
            .command("mmd")
            .arg("-i")
            .arg(tools.path(image))
            .args(folders.iter().map(|f| format!("::/{f}")))
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("MTOOLS_SKIP_CHECK", "1")
            .run_capture()?;
    }
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    for (i, file) in files.iter().enumerate() {
        let staged = staging.join(format!("{i}"));
        std::fs::write(&staged, &file.contents).map_err(stage_err(&staged))?;
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .and_then(|f| f.set_modified(mtime))
            .map_err(stage_err(&staged))?;
        tools
            .command("mcopy")
            .args(["-m", "-i"])
            .arg(tools.path(image))
            .arg(tools.path(&staged))
            .arg(format!("::/{}", file.path))
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("MTOOLS_SKIP_CHECK", "1")
            .run_capture()?;
    }
    Ok(())
}

/// Every regular file on the ESP, with contents, sorted by path.
pub fn read_esp_files<F: Read + Write + Seek>(storage: F) -> Result<Vec<EspFile>, EspError> {
    let fs = FileSystem::new(storage, FsOptions::new().update_accessed_date(false))
        .map_err(EspError::Read)?;
    let mut files = Vec::new();
    let mut pending = vec![(String::new(), fs.root_dir())];
    while let Some((prefix, dir)) = pending.pop() {
        for entry in dir.iter() {
            let entry = entry.map_err(EspError::Read)?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.is_dir() {
                pending.push((path, entry.to_dir()));
            } else if entry.is_file() {
                let mut contents = Vec::new();
                entry
                    .to_file()
                    .read_to_end(&mut contents)
                    .map_err(EspError::Read)?;
                files.push(EspFile { path, contents });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::require_tool;
    use crate::trees::tools::HostTools;
    use std::io::Cursor;

    fn files() -> Vec<EspFile> {
        vec![
            EspFile {
                path: "EFI/BOOT/BOOTX64.EFI".into(),
                contents: (0..200_000u32).map(|i| (i % 251) as u8).collect(),
            },
            EspFile {
                path: "loader/entries/deep/nested.conf".into(),
                contents: b"title nested\n".to_vec(),
            },
            EspFile {
                path: "manifest.json".into(),
                contents: b"{}\n".to_vec(),
            },
            EspFile {
                path: "manifest.json.sig".into(),
                contents: b"00\n".to_vec(),
            },
        ]
    }

    fn formatted(dir: &Path, name: &str, size: u64) -> Vec<u8> {
        let image = dir.join(name);
        let layout = EspLayout {
            size,
            volume_id: 0x1234_5678,
            label: "STICK-ESP",
            epoch: 1_700_000_000,
        };
        make_esp(&HostTools, dir, &image, &layout, &files())
            .expect("mkfs.vfat and mtools run (install dosfstools and mtools)");
        std::fs::read(&image).expect("read image")
    }

    #[test]
    fn sizes_leave_room() {
        let mib = 1024 * 1024;
        let cases = [
            (0, 32 * mib),
            (20 * mib, 32 * mib),
            (30 * mib, 34 * mib),
            (30 * mib + 1, 35 * mib),
            (60 * mib, 64 * mib),
        ];
        for (payload, want) in cases {
            assert_eq!(esp_size_for(payload), want, "payload {payload}");
        }
    }

    #[test]
    fn round_trip_and_reproducible() {
        let dir = tempfile::tempdir().expect("tempdir");
        let size = esp_size_for(1024 * 1024);
        let first = formatted(dir.path(), "a.img", size);
        assert!(
            first == formatted(dir.path(), "b.img", size),
            "same files give the same bytes"
        );
        let back = read_esp_files(Cursor::new(first)).expect("reads");
        assert_eq!(back, files());
    }

    #[test]
    fn reading_what_is_not_fat_is_an_error() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("zeros", vec![0; 64 * 1024]),
            (
                "pattern",
                (0..64 * 1024u32).map(|i| (i % 253) as u8).collect(),
            ),
            ("short", vec![0xeb; 100]),
        ];
        for (case, bytes) in cases {
            assert!(read_esp_files(Cursor::new(bytes)).is_err(), "{case}");
        }
    }

    #[test]
    fn dosfstools_and_mtools_accept_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("esp.img");
        formatted(dir.path(), "esp.img", esp_size_for(0));
        // Missing tools fail the test: these checks must not pass by being skipped.
        let fsck = require_tool("fsck.fat", "dosfstools").expect("fsck.fat");
        let mtype = require_tool("mtype", "mtools").expect("mtype");
        // fsck.fat prints its findings on stdout, which run_capture does not keep.
        let fsck = std::process::Command::new(fsck)
            .arg("-n")
            .arg(&path)
            .output()
            .expect("fsck.fat runs");
        assert!(
            fsck.status.success(),
            "fsck.fat: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        // The loader is binary, so stdout is compared as bytes, not through run_capture.
        let mtype = std::process::Command::new(mtype)
            .arg("-i")
            .arg(&path)
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .expect("mtype runs");
        assert!(
            mtype.status.success(),
            "mtype: {}",
            String::from_utf8_lossy(&mtype.stderr)
        );
        assert!(
            mtype.stdout == files()[0].contents,
            "mtype prints our loader"
        );
    }
}
