//! Where the root filesystem comes from: `/proc/self/mountinfo`, and, for a
//! `systemd.volatile=overlay` root, the record systemd-volatile-root leaves behind.
//!
//! With `systemd.volatile=overlay` the initrd mounts the verity device on `/sysroot`,
//! stacks an overlay (`lowerdir=/sysroot`, upper layer on a tmpfs) on the same mount
//! point and switches root into the overlay. The squashfs mount below it stays in the
//! initrd's detached tree, so it is *not* in the booted system's mountinfo; only the
//! overlay's options name `/sysroot`. Before stacking, systemd-volatile-root records
//! the replaced device as the symlink `/run/systemd/volatile-root` ->
//! `/dev/block/MAJOR:MINOR`, which is how the hidden lower layer is identified.

use std::fmt;
use std::str::FromStr;

/// Mount table of this process's mount namespace.
pub const PROC_MOUNTINFO: &str = "/proc/self/mountinfo";
/// Symlink to the device that systemd-volatile-root covered with the overlay.
pub const VOLATILE_ROOT_LINK: &str = "/run/systemd/volatile-root";

const OVERLAY_FS: &str = "overlay";

/// A block device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl FromStr for DevNum {
    type Err = ();

    /// `MAJOR:MINOR` in decimal, as mountinfo and `/dev/block/` write it.
    fn from_str(s: &str) -> Result<Self, ()> {
        let (major, minor) = s.split_once(':').ok_or(())?;
        Ok(DevNum {
            major: major.parse().map_err(|_| ())?,
            minor: minor.parse().map_err(|_| ())?,
        })
    }
}

/// One line of mountinfo (see proc_pid_mountinfo(5)), with octal escapes undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    pub device: DevNum,
    /// Path inside the filesystem that is mounted (`/` unless a bind mount).
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`ro`, `nosuid`, ...).
    pub mount_options: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Superblock options (`ro`, `lowerdir=...`, ...).
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// True when writes through this mount are refused, per mount or per superblock.
    pub fn is_read_only(&self) -> bool {
        self.mount_options.iter().any(|o| o == "ro") || self.super_options.iter().any(|o| o == "ro")
    }

    /// The lower layers of an overlay, top first (`lowerdir=a:b` or `lowerdir+=`).
    pub fn overlay_lower_dirs(&self) -> Vec<&str> {
        if self.fs_type != OVERLAY_FS {
            return Vec::new();
        }
        let mut dirs = Vec::new();
        for option in &self.super_options {
            if let Some(list) = option.strip_prefix("lowerdir=") {
                dirs.extend(list.split(':').filter(|d| !d.is_empty()));
            } else if let Some(dir) = option.strip_prefix("lowerdir+=") {
                dirs.push(dir);
            }
        }
        dirs
    }
}

/// A mountinfo line that does not have the documented shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mountinfo line {line_number} `{line}`: {why}")]
pub struct MountinfoError {
    pub line_number: usize,
    pub line: String,
    pub why: &'static str,
}

/// Parses the whole of `/proc/self/mountinfo`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<MountEntry>, MountinfoError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            parse_line(line).map_err(|why| MountinfoError {
                line_number: index + 1,
                line: line.to_string(),
                why,
            })
        })
        .collect()
}

fn parse_line(line: &str) -> Result<MountEntry, &'static str> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields
        .iter()
        .position(|f| *f == "-")
        .ok_or("no ` - ` separator")?;
    let (before, after) = (&fields[..separator], &fields[separator + 1..]);
    let [mount_id, parent_id, device, root, mount_point, mount_options, _optional @ ..] = before
    else {
        return Err("fewer than 6 fields before the separator");
    };
    let [fs_type, source, super_options] = after else {
        return Err("not 3 fields after the separator");
    };
    Ok(MountEntry {
        mount_id: mount_id.parse().map_err(|_| "mount id is not a number")?,
        parent_id: parent_id.parse().map_err(|_| "parent id is not a number")?,
        device: device.parse().map_err(|()| "device is not MAJOR:MINOR")?,
        root: unescape(root),
        mount_point: unescape(mount_point),
        mount_options: split_options(mount_options),
        fs_type: unescape(fs_type),
        source: unescape(source),
        super_options: split_options(super_options),
    })
}

/// Options are comma-separated; a comma inside a value is escaped as `\054`.
fn split_options(options: &str) -> Vec<String> {
    options.split(',').map(unescape).collect()
}

/// Undoes the kernel's `\ooo` octal escapes (space, tab, newline, backslash, comma).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')))
            .and_then(|v| u8::try_from(v).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The visible `/` mount: the last `/` mount that no other `/` mount is stacked on.
pub fn root_mount(entries: &[MountEntry]) -> Option<&MountEntry> {
    let roots: Vec<&MountEntry> = entries.iter().filter(|e| e.mount_point == "/").collect();
    roots
        .iter()
        .rev()
        .find(|candidate| !roots.iter().any(|e| e.parent_id == candidate.mount_id))
        .copied()
}

/// How `/` relates to the verity device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerityRoot {
    /// `/` is a mount of the verity device itself.
    Direct(MountEntry),
    /// `/` is an overlay; its lower layer is a visible mount of the verity device
    /// (e.g. dracut's `/run/rootfsbase`).
    OverlayVisibleLower {
        overlay: MountEntry,
        lower: MountEntry,
    },
    /// `/` is an overlay whose lower layer was mounted in the initrd and is not
    /// listed any more (`systemd.volatile=overlay`); `/run/systemd/volatile-root`
    /// says it was the verity device.
    OverlayHiddenLower { overlay: MountEntry },
    /// `/` is not backed by the verity device (or there is no `/` in the table).
    NotVerity { root: Option<MountEntry> },
}

/// Decides where `/` comes from. `verity` is the device number of
/// `/dev/mapper/root`, `verity_parts` the data and hash devices under it (from its
/// dm table);
/// `volatile_root` the target of [`VOLATILE_ROOT_LINK`].
///
/// systemd-volatile-root records the backing device "the hard way": for a dm device
/// it names a device underneath (measured under QEMU: `/dev/block/8:2`, the root
/// partition, in one boot and a different slave in another, while
/// `/dev/mapper/root` is 254:0). Both partitions are claimed exclusively by
/// dm-verity, so nothing else can have mounted them: the hidden lower layer is the
/// verity device.
pub fn locate_verity_root(
    entries: &[MountEntry],
    verity: Option<DevNum>,
    verity_parts: &[DevNum],
    volatile_root: Option<DevNum>,
) -> VerityRoot {
    let Some(root) = root_mount(entries) else {
        return VerityRoot::NotVerity { root: None };
    };
    let not_verity = || VerityRoot::NotVerity {
        root: Some(root.clone()),
    };
    let Some(verity) = verity else {
        return not_verity();
    };
    if root.device == verity {
        return VerityRoot::Direct(root.clone());
    }
    let lower_dirs = root.overlay_lower_dirs();
    // A single lower layer only: several would let a non-verity layer shadow files.
    let [lower_dir] = lower_dirs.as_slice() else {
        return not_verity();
    };
    let visible_lower = entries
        .iter()
        .rev()
        .find(|e| e.mount_point == *lower_dir && e.mount_id != root.mount_id);
    match visible_lower {
        Some(lower) if lower.device == verity && lower.root == "/" => {
            VerityRoot::OverlayVisibleLower {
                overlay: root.clone(),
                lower: lower.clone(),
            }
        }
        Some(_) => not_verity(),
        None if volatile_root.is_some_and(|dev| dev == verity || verity_parts.contains(&dev)) => {
            VerityRoot::OverlayHiddenLower {
                overlay: root.clone(),
            }
        }
        None => not_verity(),
    }
}

/// The device number in a `/dev/block/MAJOR:MINOR` symlink target.
pub fn parse_dev_block_link(target: &str) -> Option<DevNum> {
    target.strip_prefix("/dev/block/")?.parse().ok()
}

/// How many bytes from the start of a device [`detect_read_only_fs`] needs.
pub const SUPERBLOCK_PROBE_LEN: usize = 1028;
const SQUASHFS_MAGIC: &[u8] = b"hsqs";
const EROFS_MAGIC_OFFSET: usize = 1024;
const EROFS_MAGIC: [u8; 4] = 0xE0F5_E1E2u32.to_le_bytes();

/// Recognises the filesystems that the kernel can only mount read-only (squashfs,
/// erofs) by their superblock magic.
pub fn detect_read_only_fs(start_of_device: &[u8]) -> Option<&'static str> {
    if start_of_device.starts_with(SQUASHFS_MAGIC) {
        Some("squashfs")
    } else if start_of_device.get(EROFS_MAGIC_OFFSET..EROFS_MAGIC_OFFSET + 4)
        == Some(&EROFS_MAGIC[..])
    {
        Some("erofs")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DM: DevNum = DevNum {
        major: 253,
        minor: 0,
    };

    /// Plain boot: the squashfs on dm-verity is `/` (no volatile mode).
    const DIRECT: &str = "\
22 1 253:0 / / ro,relatime shared:1 - squashfs /dev/mapper/root ro,errors=continue
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=1012340k,nr_inodes=253085,mode=755
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
26 22 0:24 / /run rw,nosuid,nodev shared:14 - tmpfs tmpfs rw,size=404536k,nr_inodes=819200,mode=755
";

    /// `systemd.volatile=overlay` after switch-root: the squashfs below the overlay
    /// is not listed, the overlay names the initrd's `/sysroot`.
    const VOLATILE_OVERLAY: &str = "\
24 1 0:27 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/sysroot,upperdir=/run/systemd/overlay-sysroot/upper,workdir=/run/systemd/overlay-sysroot/work,uuid=on
25 24 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=1012340k,nr_inodes=253085,mode=755
26 25 0:23 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw,gid=5,mode=620,ptmxmode=000
27 24 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 27 0:26 / /sys/firmware/efi/efivars rw,nosuid,nodev,noexec,relatime shared:8 - efivarfs efivarfs rw
29 24 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
30 24 0:24 / /run rw,nosuid,nodev shared:14 - tmpfs tmpfs rw,size=404536k,nr_inodes=819200,mode=755
31 24 0:28 / /tmp rw,nosuid,nodev shared:15 - tmpfs tmpfs rw,size=1011344k,nr_inodes=1048576
";

    /// dracut dmsquash-live style: the lower layer stays visible.
    const VISIBLE_LOWER: &str = "\
20 1 253:0 / /run/rootfsbase ro,relatime shared:9 - squashfs /dev/mapper/root ro,errors=continue
21 1 0:30 / / rw,relatime shared:1 - overlay LiveOS_rootfs rw,lowerdir=/run/rootfsbase,upperdir=/run/overlayfs,workdir=/run/ovlwork
";

    fn entry(line: &str) -> MountEntry {
        parse_line(line).expect("fixture line parses")
    }

    #[test]
    fn parses_volatile_overlay_root() {
        let entries = parse_mountinfo(VOLATILE_OVERLAY).expect("parses");
        assert_eq!(entries.len(), 8);
        assert_eq!(
            entries[0],
            MountEntry {
                mount_id: 24,
                parent_id: 1,
                device: DevNum {
                    major: 0,
                    minor: 27
                },
                root: "/".into(),
                mount_point: "/".into(),
                mount_options: vec!["rw".into(), "relatime".into()],
                fs_type: "overlay".into(),
                source: "overlay".into(),
                super_options: vec![
                    "rw".into(),
                    "lowerdir=/sysroot".into(),
                    "upperdir=/run/systemd/overlay-sysroot/upper".into(),
                    "workdir=/run/systemd/overlay-sysroot/work".into(),
                    "uuid=on".into(),
                ],
            }
        );
        assert_eq!(entries[0].overlay_lower_dirs(), vec!["/sysroot"]);
        assert!(!entries[0].is_read_only());
        assert_eq!(entries[4].mount_point, "/sys/firmware/efi/efivars");
    }

    #[test]
    fn escapes_and_malformed_lines() {
        let escaped = entry(
            r"40 24 8:1 / /media/my\040stick ro,nosuid - vfat /dev/sda1 ro,codepage=437,iocharset=ascii",
        );
        assert_eq!(escaped.mount_point, "/media/my stick");
        assert!(escaped.is_read_only());
        let comma = entry(r"41 24 0:40 / /x rw - overlay overlay rw,lowerdir=/a\054b:/c");
        assert_eq!(comma.overlay_lower_dirs(), vec!["/a,b", "/c"]);
        let plus = entry("42 24 0:41 / /y rw - overlay overlay rw,lowerdir+=/l1,lowerdir+=/l2");
        assert_eq!(plus.overlay_lower_dirs(), vec!["/l1", "/l2"]);

        let cases: &[(&str, &str)] = &[
            (
                "22 1 253:0 / / ro shared:1 squashfs /dev/mapper/root ro",
                "no ` - ` separator",
            ),
            (
                "22 1 253:0 / - squashfs /dev/mapper/root ro",
                "fewer than 6 fields before the separator",
            ),
            (
                "22 1 253:0 / / ro - squashfs /dev/mapper/root",
                "not 3 fields after the separator",
            ),
            (
                "x 1 253:0 / / ro - squashfs /dev/mapper/root ro",
                "mount id is not a number",
            ),
            (
                "22 1 dm-0 / / ro - squashfs /dev/mapper/root ro",
                "device is not MAJOR:MINOR",
            ),
        ];
        for (line, why) in cases {
            let text = format!("{}\n{line}\n", DIRECT.lines().nth(1).unwrap_or_default());
            assert_eq!(
                parse_mountinfo(&text),
                Err(MountinfoError {
                    line_number: 2,
                    line: line.to_string(),
                    why,
                }),
                "{line}"
            );
        }
    }

    /// The verity data and hash partitions of the stick in the tests below.
    const DATA: DevNum = DevNum { major: 8, minor: 2 };
    const HASH: DevNum = DevNum { major: 8, minor: 3 };

    /// (name, mountinfo, /dev/mapper/root, /run/systemd/volatile-root, expected)
    type Case<'a> = (
        &'a str,
        &'a [MountEntry],
        Option<DevNum>,
        Option<DevNum>,
        VerityRoot,
    );

    fn assert_locates(cases: Vec<Case>) {
        for (name, entries, verity, volatile_root, want) in cases {
            assert_eq!(
                locate_verity_root(entries, verity, &[DATA, HASH], volatile_root),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn locates_the_verity_root() {
        let direct = parse_mountinfo(DIRECT).expect("parses");
        let visible = parse_mountinfo(VISIBLE_LOWER).expect("parses");
        let tmpfs_root = parse_mountinfo(
            "1 0 0:2 / / rw - rootfs rootfs rw\n22 1 0:30 / / rw,relatime - tmpfs tmpfs rw\n",
        )
        .expect("parses");
        let other_lower = parse_mountinfo(
            "20 1 8:17 / /run/rootfsbase ro - squashfs /dev/sdb1 ro\n\
             21 1 0:30 / / rw - overlay overlay rw,lowerdir=/run/rootfsbase,upperdir=/u,workdir=/w\n",
        )
        .expect("parses");
        let two_lowers = parse_mountinfo(
            "21 1 0:30 / / rw - overlay overlay rw,lowerdir=/sysroot:/evil,upperdir=/u,workdir=/w\n",
        )
        .expect("parses");
        assert_locates(vec![
            (
                "direct",
                &direct,
                Some(DM),
                None,
                VerityRoot::Direct(direct[0].clone()),
            ),
            (
                "visible lower",
                &visible,
                Some(DM),
                None,
                VerityRoot::OverlayVisibleLower {
                    overlay: visible[1].clone(),
                    lower: visible[0].clone(),
                },
            ),
            (
                "visible lower is another device, volatile-root ignored",
                &other_lower,
                Some(DM),
                Some(DM),
                VerityRoot::NotVerity {
                    root: Some(other_lower[1].clone()),
                },
            ),
            (
                "two lower layers",
                &two_lowers,
                Some(DM),
                Some(DM),
                VerityRoot::NotVerity {
                    root: Some(two_lowers[0].clone()),
                },
            ),
            (
                "stacked tmpfs root",
                &tmpfs_root,
                Some(DM),
                None,
                VerityRoot::NotVerity {
                    root: Some(tmpfs_root[1].clone()),
                },
            ),
            (
                "no verity device",
                &direct,
                None,
                None,
                VerityRoot::NotVerity {
                    root: Some(direct[0].clone()),
                },
            ),
            (
                "empty table",
                &[],
                Some(DM),
                Some(DM),
                VerityRoot::NotVerity { root: None },
            ),
        ]);
    }

    #[test]
    fn locates_the_hidden_lower_of_a_volatile_overlay() {
        let volatile = parse_mountinfo(VOLATILE_OVERLAY).expect("parses");
        let other = DevNum { major: 8, minor: 5 };
        assert_locates(vec![
            (
                "volatile overlay, hidden lower",
                &volatile,
                Some(DM),
                Some(DM),
                VerityRoot::OverlayHiddenLower {
                    overlay: volatile[0].clone(),
                },
            ),
            (
                "volatile overlay, volatile-root names the verity data partition",
                &volatile,
                Some(DM),
                Some(DATA),
                VerityRoot::OverlayHiddenLower {
                    overlay: volatile[0].clone(),
                },
            ),
            (
                "volatile overlay, volatile-root names the verity hash partition",
                &volatile,
                Some(DM),
                Some(HASH),
                VerityRoot::OverlayHiddenLower {
                    overlay: volatile[0].clone(),
                },
            ),
            (
                "volatile overlay, volatile-root is another device",
                &volatile,
                Some(DM),
                Some(other),
                VerityRoot::NotVerity {
                    root: Some(volatile[0].clone()),
                },
            ),
            (
                "volatile overlay, no volatile-root record",
                &volatile,
                Some(DM),
                None,
                VerityRoot::NotVerity {
                    root: Some(volatile[0].clone()),
                },
            ),
        ]);
    }

    #[test]
    fn dev_block_links() {
        let cases: &[(&str, Option<DevNum>)] = &[
            ("/dev/block/253:0", Some(DM)),
            ("/dev/block/8:2", Some(DevNum { major: 8, minor: 2 })),
            ("/dev/dm-0", None),
            ("/dev/block/253", None),
            ("../block/253:0", None),
        ];
        for (target, want) in cases {
            assert_eq!(parse_dev_block_link(target), *want, "{target}");
        }
    }

    #[test]
    fn superblock_magic() {
        let mut squashfs = vec![0u8; SUPERBLOCK_PROBE_LEN];
        squashfs[..4].copy_from_slice(b"hsqs");
        let mut erofs = vec![0u8; SUPERBLOCK_PROBE_LEN];
        erofs[1024..1028].copy_from_slice(&[0xe2, 0xe1, 0xf5, 0xe0]);
        let mut ext4 = vec![0u8; 2048];
        ext4[1024 + 0x38..1024 + 0x3a].copy_from_slice(&[0x53, 0xef]);
        let cases: &[(&str, &[u8], Option<&str>)] = &[
            ("squashfs", &squashfs, Some("squashfs")),
            ("erofs", &erofs, Some("erofs")),
            ("ext4 is not read-only by nature", &ext4, None),
            ("short read", b"hs", None),
            ("empty", b"", None),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(detect_read_only_fs(bytes), *want, "{name}");
        }
    }
}
