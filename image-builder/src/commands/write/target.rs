//! Which block device may receive a stick image: decided from `lsblk -J -b`
//! before anything is opened for writing. Pure: the caller runs lsblk.
//!
//! Allowed: a whole disk that is removable (the kernel's `removable` flag, a
//! hot-pluggable disk, or one on USB), or a loop device (it writes into a file).
//! Refused: partitions and anything but a disk, a disk with anything mounted
//! (swap included) or held by the host (LVM, LUKS, RAID), a fixed disk, and a disk
//! smaller than the image.

use serde::Deserialize;

/// One block device as `lsblk -J -b -o NAME,PATH,TYPE,RM,HOTPLUG,TRAN,SIZE,MODEL,MOUNTPOINTS`
/// reports it, with its children (partitions, and what sits on them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockDevice {
    pub name: String,
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub rm: bool,
    #[serde(default)]
    pub hotplug: bool,
    #[serde(default)]
    pub tran: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub mountpoints: Vec<Option<String>>,
    #[serde(default)]
    pub children: Vec<BlockDevice>,
}

/// The columns [`BlockDevice`] reads.
pub const LSBLK_COLUMNS: &str = "NAME,PATH,TYPE,RM,HOTPLUG,TRAN,SIZE,MODEL,MOUNTPOINTS";

#[derive(Debug, Deserialize)]
struct LsblkOutput {
    blockdevices: Vec<BlockDevice>,
}

/// Why a device is not written. Every message names the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("lsblk's answer for {device} cannot be read: {reason}")]
    Unreadable { device: String, reason: String },
    #[error(
        "{device} is a {kind}, not a whole disk: name the stick itself (as /dev/sdb, not /dev/sdb1)"
    )]
    NotADisk { device: String, kind: String },
    #[error(
        "{device} is in use: {what} is mounted at {mountpoint}; this may be the host's own disk. \
         Unmount it first if it really is the stick"
    )]
    Mounted {
        device: String,
        what: String,
        mountpoint: String,
    },
    #[error("{device} is in use by the host: {what} is a {kind} device on it (LVM, LUKS or RAID)")]
    Held {
        device: String,
        what: String,
        kind: String,
    },
    #[error(
        "{device} ({model}) is a fixed disk (not removable, not hot-pluggable, transport \
         {transport}): only USB sticks and other removable disks are written, and loop devices"
    )]
    NotRemovable {
        device: String,
        model: String,
        transport: String,
    },
    #[error("{device} holds {size} bytes; the image needs {needed}")]
    TooSmall {
        device: String,
        size: u64,
        needed: u64,
    },
}

/// A device that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTarget {
    pub path: String,
    pub size: u64,
    /// What the admin sees: model and transport, or `loop device`.
    pub description: String,
}

/// Parses lsblk's JSON for one device (`lsblk -J -b -o LSBLK_COLUMNS DEVICE`) and
/// decides whether an image of `needed` bytes may be written to it.
pub fn judge(device: &str, lsblk_json: &str, needed: u64) -> Result<WriteTarget, Refusal> {
    let output: LsblkOutput =
        serde_json::from_str(lsblk_json).map_err(|e| Refusal::Unreadable {
            device: device.into(),
            reason: e.to_string(),
        })?;
    let disk = match output.blockdevices.as_slice() {
        [disk] => disk,
        other => {
            return Err(Refusal::Unreadable {
                device: device.into(),
                reason: format!("{} devices listed, expected one", other.len()),
            })
        }
    };
    judge_device(disk, needed)
}

fn judge_device(disk: &BlockDevice, needed: u64) -> Result<WriteTarget, Refusal> {
    let device = disk.path.clone();
    if disk.kind != "disk" && disk.kind != "loop" {
        return Err(Refusal::NotADisk {
            device,
            kind: disk.kind.clone(),
        });
    }
    if let Some((what, mountpoint)) = first_mount(disk) {
        return Err(Refusal::Mounted {
            device,
            what,
            mountpoint,
        });
    }
    if let Some(held) = first_holder(disk) {
        return Err(Refusal::Held {
            device,
            what: held.path.clone(),
            kind: held.kind.clone(),
        });
    }
    let usb = disk.tran.as_deref() == Some("usb");
    let description = if disk.kind == "loop" {
        "loop device".to_string()
    } else if disk.rm || disk.hotplug || usb {
        format!(
            "{} on {}",
            disk.model.as_deref().unwrap_or("disk").trim(),
            disk.tran.as_deref().unwrap_or("unknown transport")
        )
    } else {
        return Err(Refusal::NotRemovable {
            device,
            model: disk.model.as_deref().unwrap_or("no model").trim().into(),
            transport: disk.tran.as_deref().unwrap_or("none").into(),
        });
    };
    if disk.size < needed {
        return Err(Refusal::TooSmall {
            device,
            size: disk.size,
            needed,
        });
    }
    Ok(WriteTarget {
        path: device,
        size: disk.size,
        description,
    })
}

/// The first device, this one or one below it, with a mounted filesystem (or
/// active swap), and all its mount points.
fn first_mount(device: &BlockDevice) -> Option<(String, String)> {
    let here: Vec<&str> = device
        .mountpoints
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if here.is_empty() {
        device.children.iter().find_map(first_mount)
    } else {
        Some((device.path.clone(), here.join(", ")))
    }
}

/// The first device below that the host has built on it (LVM, LUKS, RAID, dm).
fn first_holder(device: &BlockDevice) -> Option<&BlockDevice> {
    device.children.iter().find_map(|child| {
        if child.kind == "part" {
            first_holder(child)
        } else {
            Some(child)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// lsblk's answer for one disk: `extra` is spliced into its object.
    fn lsblk(name: &str, kind: &str, extra: &str) -> String {
        format!(
            r#"{{"blockdevices": [{{"name": "{name}", "path": "/dev/{name}", "type": "{kind}",
                "size": {size}, "model": "Stick   ", "mountpoints": [null]{extra}}}]}}"#,
            size = 8 * GIB
        )
    }

    #[test]
    fn devices_and_verdicts() {
        let part = r#", "children": [{"name": "sdb1", "path": "/dev/sdb1", "type": "part",
            "size": 1000"#;
        let cases: &[(&str, String, Result<&str, &str>)] = &[
            (
                "usb stick",
                lsblk("sdb", "disk", r#", "rm": true, "hotplug": true, "tran": "usb""#),
                Ok("Stick on usb"),
            ),
            (
                "usb disk that is not flagged removable",
                lsblk("sdc", "disk", r#", "rm": false, "tran": "usb""#),
                Ok("Stick on usb"),
            ),
            (
                "sd card reader",
                lsblk("mmcblk0", "disk", r#", "rm": false, "hotplug": true, "tran": null"#),
                Ok("Stick on unknown transport"),
            ),
            ("loop device", lsblk("loop3", "loop", ""), Ok("loop device")),
            (
                "partition",
                lsblk("sdb1", "part", r#", "rm": true"#),
                Err("/dev/sdb1 is a part, not a whole disk"),
            ),
            (
                "fixed sata disk",
                lsblk("sda", "disk", r#", "rm": false, "tran": "sata""#),
                Err("/dev/sda (Stick) is a fixed disk (not removable, not hot-pluggable, transport sata)"),
            ),
            (
                "virtio disk without transport",
                lsblk("vda", "disk", ""),
                Err("/dev/vda (Stick) is a fixed disk (not removable, not hot-pluggable, transport none)"),
            ),
            (
                "stick with a mounted partition",
                lsblk("sdb", "disk", &format!(r#", "rm": true{part}, "mountpoints": ["/media/x"]}}]"#)),
                Err("/dev/sdb is in use: /dev/sdb1 is mounted at /media/x"),
            ),
            (
                "disk with swap",
                lsblk("sdb", "disk", &format!(r#", "rm": true{part}, "mountpoints": ["[SWAP]"]}}]"#)),
                Err("/dev/sdb is in use: /dev/sdb1 is mounted at [SWAP]"),
            ),
            (
                "the host's root on the disk itself",
                lsblk("vda", "disk", r#", "mountpoints": ["/run/netns", "/"]"#)
                    .replace(r#""mountpoints": [null], "#, ""),
                Err("/dev/vda is in use: /dev/vda is mounted at /run/netns, /;"),
            ),
            (
                "luks on a stick",
                lsblk(
                    "sdb",
                    "disk",
                    &format!(
                        r#", "rm": true{part}, "children": [{{"name": "c", "path": "/dev/mapper/c", "type": "crypt"}}]}}]"#
                    ),
                ),
                Err("/dev/sdb is in use by the host: /dev/mapper/c is a crypt device"),
            ),
            (
                "stick too small",
                lsblk("sdb", "disk", r#", "rm": true"#).replace("8589934592", "1000"),
                Err("/dev/sdb holds 1000 bytes; the image needs 2000"),
            ),
        ];
        for (name, json, want) in cases {
            let needed = if *name == "stick too small" {
                2000
            } else {
                GIB
            };
            let device = "/dev/x";
            match (judge(device, json, needed), want) {
                (Ok(target), Ok(description)) => {
                    assert_eq!(target.description, *description, "{name}");
                    assert_eq!(target.size, 8 * GIB, "{name}");
                }
                (Err(refusal), Err(start)) => {
                    let message = refusal.to_string();
                    assert!(message.starts_with(start), "{name}: {message}");
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn lsblk_answers_that_are_not_one_device() {
        for json in ["", "{}", r#"{"blockdevices": []}"#] {
            let refusal = judge("/dev/sdz", json, 1).expect_err(json);
            assert!(
                refusal
                    .to_string()
                    .starts_with("lsblk's answer for /dev/sdz"),
                "{refusal}"
            );
        }
    }
}
