//! Mounts a killed tree build left behind.
//!
//! mmdebstrap (root mode) mounts `/proc`, `/sys`, `/dev/pts` and `/dev/shm`
//! inside the tree it builds. Builds now run it in a mount namespace of its own,
//! so those mounts end with it; a build killed by an older builder left them in
//! the host's namespace, read-only, and removing its unfinished tree then failed
//! with "Read-only file system". Whatever is still mounted beneath an unfinished
//! tree is detached before the tree is removed.

use std::path::{Path, PathBuf};

/// Detaches every mount beneath `dir` (deepest first); the number detached.
pub fn unmount_beneath(dir: &Path) -> std::io::Result<usize> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let points = mount_points_beneath(&mountinfo, dir);
    for point in &points {
        tracing::warn!(
            "detaching {} (left mounted by an interrupted tree build)",
            point.display()
        );
        nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))?;
    }
    Ok(points.len())
}

/// The mount points in a `/proc/self/mountinfo` text that lie beneath `dir`,
/// deepest first (so a mount is detached before the one it sits on).
fn mount_points_beneath(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(dir) && point != dir)
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    points.dedup();
    points
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(value)) => {
                out.push(value);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTIAL: &str = "/var/cache/secure-stick/trees/base-1.partial";

    #[test]
    fn finds_the_mounts_beneath_deepest_first() {
        let mountinfo = "\
27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
46 27 0:45 / /var/cache/secure-stick/trees/base-1.partial/root/dev/pts rw - devpts none rw
47 27 0:27 / /var/cache/secure-stick/trees/base-1.partial/root/dev/shm rw - tmpfs tmpfs rw
48 27 0:22 / /var/cache/secure-stick/trees/base-1.partial/root/sys ro - sysfs sys rw
49 27 0:46 / /var/cache/secure-stick/trees/base-1.partial/root/proc ro - proc proc ro
50 27 0:47 / /var/cache/secure-stick/trees/base-1.partial2/root/proc ro - proc proc ro
51 27 0:48 / /var/cache/secure-stick/trees/base-1.partial rw - tmpfs tmpfs rw
";
        let found = mount_points_beneath(mountinfo, Path::new(PARTIAL));
        let found: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            found,
            [
                format!("{PARTIAL}/root/dev/pts"),
                format!("{PARTIAL}/root/dev/shm"),
                format!("{PARTIAL}/root/sys"),
                format!("{PARTIAL}/root/proc"),
            ],
            "a sibling with a longer name and the folder itself are not beneath it"
        );
    }

    #[test]
    fn escapes_are_decoded() {
        for (field, want) in [
            ("/plain", "/plain"),
            ("/with\\040space", "/with space"),
            ("/tab\\011and\\134backslash", "/tab\tand\\backslash"),
            ("/trailing\\", "/trailing\\"),
            ("/not\\99octal", "/not\\99octal"),
        ] {
            assert_eq!(unescape(field), want, "{field}");
        }
    }

    #[test]
    fn nothing_beneath_a_folder_with_no_mounts() {
        let mountinfo = "27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw\n";
        assert!(mount_points_beneath(mountinfo, Path::new(PARTIAL)).is_empty());
    }
}
