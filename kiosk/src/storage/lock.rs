//! StorageLock: every block device, the stick included, is set read-only at the
//! block layer (BLKROSET) the moment udev sees it, in the initrd and in the system.
//! Nothing on the stick is ever written either: its root is verified, its state
//! lives in RAM.
//!
//! At that moment dm-verity may not have opened anything yet, so udev is told
//! which disks *may* be the stick: those whose GPT (CRCs checked) holds the root
//! partition named by the signed cmdline (its PARTUUID is the first half of
//! `roothash=`, the UAPI convention the builder follows). They stay visible to
//! systemd so that systemd-veritysetup can open them; every other device is kept
//! from systemd (no mount, no swap) and desktop tooling. That PARTUUID is public,
//! so a PC's disk can carry it too: which disk *is* the stick is decided later,
//! by what dm-verity opened (`boot::device_mapper::verity_root_disks`); the
//! storage report names a copy as a foreign disk that copies the stick. Device
//! names never decide.
//!
//! `kiosk lock-block-device NAME` is what the udev rule runs (`IMPORT{program}`);
//! it prints `STICK_STORAGE=stick|foreign` for the rules that follow.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// `BLKROSET` from linux/fs.h: `_IO(0x12, 93)`.
const BLKROSET: u64 = 0x125d;
mod ioctl {
    #![allow(unsafe_code)]
    nix::ioctl_write_ptr_bad!(blkroset, super::BLKROSET, nix::libc::c_int);
}

const SYS_CLASS_BLOCK: &str = "/sys/class/block";

/// What a block device is to the stick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A partition or the whole disk of the stick itself.
    Stick,
    /// Anything else: the PC's disks, other USB storage. Read-only, never used.
    Foreign,
    /// Virtual devices of the running system (device-mapper, loop, zram, ram).
    Virtual,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Stick => "stick",
            Role::Foreign => "foreign",
            Role::Virtual => "virtual",
        }
    }
}

/// The stick's root partition UUID from the cmdline's `roothash=` (first 128 bits).
pub fn stick_root_partuuid(root_hash: &str) -> Option<String> {
    let h = root_hash.get(..32)?.to_ascii_lowercase();
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Kernel names of devices that are not storage hardware.
pub fn is_virtual(name: &str) -> bool {
    ["dm-", "loop", "zram", "ram", "md", "nbd"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The role of block device `name` (a kernel name such as `sdb1`) as udev sees it:
/// `Stick` for a device on a disk that holds the signed root partition (a
/// candidate until dm-verity opens one of them).
pub fn classify(sys_block: &Path, dev_dir: &Path, name: &str, root_hash: Option<&str>) -> Role {
    if is_virtual(name) {
        Role::Virtual
    } else if holds_stick_root(sys_block, dev_dir, name, root_hash) {
        Role::Stick
    } else {
        Role::Foreign
    }
}

/// The role of block device `name` once the root is open: the stick is the disk
/// dm-verity verified the root through (`stick_disks`), whatever else carries
/// its partition UUIDs.
pub fn role_of(sys_block: &Path, name: &str, stick_disks: &[String]) -> Role {
    if is_virtual(name) {
        return Role::Virtual;
    }
    match crate::sysfs::whole_disk(sys_block, name) {
        Ok(disk) if stick_disks.contains(&disk) => Role::Stick,
        _ => Role::Foreign,
    }
}

/// Whether the disk of `name` has a valid GPT holding the partition UUID of the
/// signed root (the stick, or a copy of its table).
pub fn holds_stick_root(
    sys_block: &Path,
    dev_dir: &Path,
    name: &str,
    root_hash: Option<&str>,
) -> bool {
    let Some(stick_uuid) = root_hash.and_then(stick_root_partuuid) else {
        // Without a signed root hash nothing can be the stick.
        return false;
    };
    let disk = match crate::sysfs::whole_disk(sys_block, name) {
        Ok(disk) => disk,
        Err(err) => {
            tracing::warn!("{name}: {err:#}; treated as foreign");
            return false;
        }
    };
    match crate::boot::gpt::read_disk_entries(sys_block, dev_dir, &disk) {
        Ok(entries) => entries.iter().any(|e| e.part_uuid == stick_uuid),
        Err(err) => {
            tracing::debug!("{err:#}: not the stick");
            false
        }
    }
}

/// Sets the block device read-only in the kernel: no write reaches it from here on,
/// whoever asks (a filesystem, a raw write, a journal replay).
#[allow(unsafe_code)] // the ioctl; nothing else
pub fn set_read_only(node: &Path) -> Result<()> {
    let file =
        std::fs::File::open(node).with_context(|| format!("cannot open {}", node.display()))?;
    let one: nix::libc::c_int = 1;
    // SAFETY: BLKROSET reads one c_int through the pointer, which lives on this
    // stack frame for the whole call; the fd is a block device we opened.
    unsafe { ioctl::blkroset(std::os::fd::AsRawFd::as_raw_fd(&file), &one) }
        .with_context(|| format!("BLKROSET on {}", node.display()))?;
    Ok(())
}

/// Marker of the storage lock's lines in the kernel log (and on the console).
pub const KMSG_PREFIX: &str = "stick-storage-lock: ";

/// One line in the kernel log, so it reaches every console from the initrd on.
/// Best effort: udev has its own log of a failing helper.
fn log_to_kernel(message: &str) {
    use std::io::Write;
    if let Ok(mut kmsg) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        // <5> notice: shown on the console at the default log level.
        let _ = kmsg.write_all(format!("<5>{KMSG_PREFIX}{message}\n").as_bytes());
    }
}

/// `kiosk lock-block-device NAME`: classify, lock, print udev properties.
pub fn lock_block_device(name: &str) -> Result<String> {
    if name.is_empty() || name.contains('/') {
        bail!("expected a kernel device name such as sdb1, got {name:?}");
    }
    let started = std::time::Instant::now();
    let cmdline = std::fs::read_to_string(crate::boot::cmdline::PROC_CMDLINE).unwrap_or_default();
    let root_hash = crate::boot::cmdline::parse_cmdline_root_hash(&cmdline);
    let sys_block = Path::new(SYS_CLASS_BLOCK);
    // Once dm-verity has opened the root (later in the initrd, and in the system),
    // the stick is known for sure; before, a disk holding its table may be it.
    let stick_disks = crate::boot::device_mapper::verity_root_disks(sys_block);
    let role = if stick_disks.is_empty() {
        classify(sys_block, Path::new("/dev"), name, root_hash.as_deref())
    } else {
        role_of(sys_block, name, &stick_disks)
    };
    if role != Role::Virtual {
        set_read_only(&PathBuf::from("/dev").join(name))?;
    }
    let took = started.elapsed().as_secs_f64() * 1000.0;
    // Before verity opened the root, `classify` already found no copy of the
    // stick's table on a foreign disk; after, the disk's GPT is read once here.
    let copies = role == Role::Foreign
        && !stick_disks.is_empty()
        && holds_stick_root(sys_block, Path::new("/dev"), name, root_hash.as_deref());
    match role {
        Role::Foreign => log_to_kernel(&format!(
            "{name} is not the stick: set read-only, kept unused{} ({took:.1} ms)",
            if copies {
                "; it copies the stick's partition UUIDs"
            } else {
                ""
            }
        )),
        Role::Stick => log_to_kernel(&format!(
            "{name} holds the stick's root partition: set read-only ({took:.1} ms)"
        )),
        Role::Virtual => {}
    }
    Ok(format!("STICK_STORAGE={}\n", role.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "6ae50d1592fd80db3f450bea8774044880a2df55c7f9511283025509c427a006";

    #[test]
    fn root_partuuid_is_the_first_half_of_the_root_hash() {
        let cases: &[(&str, Option<&str>)] = &[
            (HASH, Some("6ae50d15-92fd-80db-3f45-0bea87740448")),
            (
                &"AB".repeat(32),
                Some("abababab-abab-abab-abab-abababababab"),
            ),
            ("6ae50d15", None),
            (&"zz".repeat(32), None),
        ];
        for (hash, want) in cases {
            assert_eq!(stick_root_partuuid(hash).as_deref(), *want, "{hash}");
        }
    }

    #[test]
    fn virtual_devices_are_recognised_by_kernel_name() {
        for (name, want) in [
            ("dm-0", true),
            ("loop3", true),
            ("zram0", true),
            ("sda", false),
            ("nvme0n1p1", false),
            ("vda", false),
            ("mmcblk0", false),
        ] {
            assert_eq!(is_virtual(name), want, "{name}");
        }
    }

    /// A fake sysfs and /dev: `sdb` is a disk with a GPT naming the stick's root
    /// partition, `sdb2` its partition; `nvme0n1` a disk with another GPT; `vda`
    /// a disk without any table.
    fn fake_system(dir: &Path) -> (PathBuf, PathBuf) {
        let sys = dir.join("sys/class/block");
        let devices = dir.join("sys/devices/x");
        let dev = dir.join("dev");
        std::fs::create_dir_all(&dev).expect("dev");
        for disk in ["sdb", "nvme0n1", "vda"] {
            std::fs::create_dir_all(devices.join(disk).join("queue")).expect("disk");
            std::fs::write(devices.join(disk).join("queue/logical_block_size"), "512\n")
                .expect("lbs");
        }
        std::fs::create_dir_all(devices.join("sdb/sdb2")).expect("part");
        std::fs::write(devices.join("sdb/sdb2/partition"), "2\n").expect("partition");
        std::fs::create_dir_all(&sys).expect("sys");
        for (name, target) in [
            ("sdb", devices.join("sdb")),
            ("sdb2", devices.join("sdb/sdb2")),
            ("nvme0n1", devices.join("nvme0n1")),
            ("vda", devices.join("vda")),
        ] {
            std::os::unix::fs::symlink(target, sys.join(name)).expect("link");
        }
        let gpt = |guid: [u8; 16]| crate::boot::gpt::test_disk(&[(1, guid)], 128, 128, 2);
        let stick_guid = [
            0x15, 0x0d, 0xe5, 0x6a, 0xfd, 0x92, 0xdb, 0x80, 0x3f, 0x45, 0x0b, 0xea, 0x87, 0x74,
            0x04, 0x48,
        ];
        std::fs::write(dev.join("sdb"), gpt(stick_guid)).expect("sdb");
        std::fs::write(dev.join("nvme0n1"), gpt([7; 16])).expect("nvme");
        std::fs::write(dev.join("vda"), vec![0u8; 4096]).expect("vda");
        (sys, dev)
    }

    #[test]
    fn only_the_disk_holding_the_signed_root_partition_is_the_stick() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sys, dev) = fake_system(dir.path());
        let cases: &[(&str, Option<&str>, Role)] = &[
            ("sdb", Some(HASH), Role::Stick),
            ("sdb2", Some(HASH), Role::Stick),
            ("nvme0n1", Some(HASH), Role::Foreign),
            ("vda", Some(HASH), Role::Foreign),
            ("sdb", None, Role::Foreign),
            ("sdb", Some(&"00".repeat(32)), Role::Foreign),
            ("dm-0", Some(HASH), Role::Virtual),
            ("sdz", Some(HASH), Role::Foreign),
        ];
        for (name, hash, want) in cases {
            assert_eq!(classify(&sys, &dev, name, *hash), *want, "{name} {hash:?}");
        }
    }

    #[test]
    fn bad_device_names_are_refused() {
        for name in ["", "../sda", "/dev/sda"] {
            assert!(lock_block_device(name).is_err(), "{name:?}");
        }
    }
}
