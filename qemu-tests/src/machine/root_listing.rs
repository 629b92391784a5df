//! What a built image's root filesystem holds, read from the image's bytes (the
//! root partition's squashfs, listed with rdsquashfs from squashfs-tools-ng), not
//! from the tree it was made of.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use image_builder::disk::gpt::{GptTable, ROOT_X86_64_TYPE};

/// One entry of the root: `file`, `dir`, `slink`, `nod`... with its mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntry {
    pub kind: String,
    /// Relative to the root, without a leading slash.
    pub path: String,
    /// Permission bits with setuid, setgid and sticky (`0o4755`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The root partition's squashfs, copied out of an image to read from.
#[derive(Debug)]
pub struct RootSquashfs {
    _dir: tempfile::TempDir,
    squashfs: std::path::PathBuf,
}

impl RootSquashfs {
    pub fn open(image: &Path) -> Result<RootSquashfs> {
        let table = GptTable::read_from(
            &mut std::fs::File::open(image)
                .with_context(|| format!("cannot open {}", image.display()))?,
        )
        .with_context(|| format!("{} has no readable GPT", image.display()))?;
        let root = table
            .find(ROOT_X86_64_TYPE)
            .with_context(|| format!("{} has no root partition", image.display()))?;
        let dir = tempfile::tempdir().context("temporary folder")?;
        let squashfs = dir.path().join("root.squashfs");
        crate::machine::tamper::extract(image, root.offset(), root.size(), &squashfs)?;
        Ok(RootSquashfs {
            _dir: dir,
            squashfs,
        })
    }

    /// Every entry.
    pub fn listing(&self) -> Result<Vec<RootEntry>> {
        let described = crate::run_tool(Command::new("rdsquashfs").arg("-d").arg(&self.squashfs))
            .context("rdsquashfs comes from the Debian package squashfs-tools-ng")?;
        parse_description(&described)
    }

    /// The bytes of the file at `path` (relative to the root).
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let out = Command::new("rdsquashfs")
            .arg("-c")
            .arg(format!("/{path}"))
            .arg(&self.squashfs)
            .output()
            .context("cannot run rdsquashfs")?;
        if !out.status.success() {
            bail!(
                "rdsquashfs -c /{path}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }
}

/// Parses `rdsquashfs -d` output: `KIND PATH MODE UID GID [...]`, with PATH in
/// double quotes when it holds spaces.
pub fn parse_description(text: &str) -> Result<Vec<RootEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| parse_line(line).with_context(|| format!("rdsquashfs said {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Result<RootEntry> {
    let (kind, rest) = line.split_once(' ').context("no path")?;
    let (path, rest) = match rest.strip_prefix('"') {
        Some(quoted) => {
            let end = quoted.find("\" ").context("unterminated quote")?;
            (quoted[..end].replace("\\\"", "\""), &quoted[end + 2..])
        }
        None => {
            let (path, rest) = rest.split_once(' ').context("no mode")?;
            (path.to_string(), rest)
        }
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let [mode, uid, gid, ..] = fields[..] else {
        bail!("fewer than three fields after the path");
    };
    Ok(RootEntry {
        kind: kind.to_string(),
        path,
        mode: u32::from_str_radix(mode, 8).context("mode is octal")?,
        uid: uid.parse().context("uid")?,
        gid: gid.parse().context("gid")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_lines_parse() {
        let text = "dir run/lock 01777 0 0\n\
                    file usr/bin/su 04755 0 0 usr/bin/su\n\
                    slink bin 0777 0 0 usr/bin\n\
                    file \"usr/share/a b\" 0644 0 42 \"usr/share/a b\"\n\
                    nod dev/console 0666 0 0 c 5 1\n";
        let entries = parse_description(text).expect("parses");
        let got: Vec<(&str, &str, u32, u32)> = entries
            .iter()
            .map(|e| (e.kind.as_str(), e.path.as_str(), e.mode, e.gid))
            .collect();
        assert_eq!(
            got,
            [
                ("dir", "run/lock", 0o1777, 0),
                ("file", "usr/bin/su", 0o4755, 0),
                ("slink", "bin", 0o777, 0),
                ("file", "usr/share/a b", 0o644, 42),
                ("nod", "dev/console", 0o666, 0),
            ]
        );
        assert!(parse_description("file usr/bin/x\n").is_err());
        assert!(parse_description("file usr/bin/x 9999 0 0\n").is_err());
    }
}
