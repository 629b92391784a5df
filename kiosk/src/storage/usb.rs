//! The USB devices the kernel knows, their interface classes, whether they are
//! authorized (USBGuard decides on them), and which one the initrd let in as the
//! boot stick (its records, written by `usb_boot`).

use std::path::Path;

use serde::{Deserialize, Serialize};

pub const SYS_BUS_USB_DEVICES: &str = "/sys/bus/usb/devices";

/// One USB device (not its interfaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbDevice {
    /// Bus-port name, e.g. `2-1`.
    pub port: String,
    /// `vendor:product` in hex.
    pub id: String,
    pub product: Option<String>,
    /// `bInterfaceClass` of each interface, two hex digits.
    pub classes: Vec<String>,
    pub authorized: bool,
    /// How the initrd found it to be the boot stick; absent for every other device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<FoundBy>,
}

/// How the stick was told apart from the other USB devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoundBy {
    /// The boot option's path: PCI controller and USB ports.
    FirmwarePath,
    /// The boot option's `UsbWwid`: vendor, product, serial.
    FirmwareIdentity,
    /// The firmware named no device: every USB device that is storage only.
    StorageOnly,
}

/// What the initrd left for the session about one stick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootStickRecord {
    pub port: String,
    pub found_by: FoundBy,
}

/// The records the initrd left, by port.
pub fn boot_stick_records(dir: &Path) -> Vec<BootStickRecord> {
    crate::sysfs::entry_names(dir)
        .iter()
        .filter_map(|n| std::fs::read_to_string(dir.join(n)).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect()
}

/// The `"event":"usb"` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbReport {
    pub event: &'static str,
    pub devices: Vec<UsbDevice>,
}

impl UsbReport {
    pub fn console_line(&self) -> String {
        crate::console::console_json(self)
    }
}

/// `bInterfaceClass` of every interface descriptor in a device's raw descriptors
/// (device descriptor, then configuration descriptors with their interfaces), as
/// sorted unique two-digit hex. Stops at the first malformed length.
pub fn interface_classes(descriptors: &[u8]) -> Vec<String> {
    const INTERFACE: u8 = 4;
    let mut classes = Vec::new();
    let mut at = 0;
    while at + 2 <= descriptors.len() {
        let len = descriptors[at] as usize;
        if len < 2 || at + len > descriptors.len() {
            break;
        }
        if descriptors[at + 1] == INTERFACE && len >= 9 {
            classes.push(format!("{:02x}", descriptors[at + 5]));
        }
        at += len;
    }
    classes.sort();
    classes.dedup();
    classes
}

/// Reads the devices under `sys_usb` (`/sys/bus/usb/devices`), with what the
/// initrd recorded in `boot_records` about the boot stick. Root hubs (`usbN`)
/// are the controllers themselves and left out.
pub fn observe(sys_usb: &Path, boot_records: &Path) -> UsbReport {
    let boot_sticks = boot_stick_records(boot_records);
    let names = crate::sysfs::entry_names(sys_usb);
    let read = |name: &str, file: &str| {
        std::fs::read_to_string(sys_usb.join(name).join(file))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let devices = names
        .iter()
        .filter(|n| !n.contains(':') && !n.starts_with("usb"))
        .filter_map(|name| {
            let vendor = read(name, "idVendor")?;
            let product_id = read(name, "idProduct").unwrap_or_default();
            // From the raw descriptors: present even while the device is not
            // authorized (no interfaces in sysfs then).
            let classes = std::fs::read(sys_usb.join(name).join("descriptors"))
                .map(|d| interface_classes(&d))
                .unwrap_or_default();
            Some(UsbDevice {
                port: name.clone(),
                id: format!("{vendor}:{product_id}"),
                product: read(name, "product"),
                classes,
                authorized: read(name, "authorized").as_deref() == Some("1"),
                boot: boot_sticks
                    .iter()
                    .find(|r| r.port == *name)
                    .map(|r| r.found_by),
            })
        })
        .collect();
    UsbReport {
        event: "usb",
        devices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Device descriptor, configuration descriptor, one interface (+ endpoint)
    /// per class.
    fn descriptors(classes: &[u8]) -> Vec<u8> {
        let mut d = vec![18, 1];
        d.resize(18, 0);
        d.extend_from_slice(&[9, 2, 0, 0, classes.len() as u8, 1, 0, 0x80, 50]);
        for (i, class) in classes.iter().enumerate() {
            d.extend_from_slice(&[9, 4, i as u8, 0, 1, *class, 0, 0, 0]);
            d.extend_from_slice(&[7, 5, 0x81, 3, 8, 0, 10]);
        }
        d
    }

    #[test]
    fn interface_classes_from_raw_descriptors() {
        let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
            ("mass storage", descriptors(&[0x08]), vec!["08"]),
            (
                "audio control + streaming",
                descriptors(&[0x01, 0x01]),
                vec!["01"],
            ),
            (
                "composite",
                descriptors(&[0x0e, 0x01, 0x03]),
                vec!["01", "03", "0e"],
            ),
            ("empty", vec![], vec![]),
            ("zero length stops", vec![0, 4, 9, 9, 9], vec![]),
            ("truncated", vec![9, 4, 0, 0, 1, 8], vec![]),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(interface_classes(&bytes), want, "{name}");
        }
    }

    #[test]
    fn devices_with_their_interfaces_and_authorization() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: &[(&str, &str, &str)] = &[
            ("usb2", "idVendor", "1d6b"),
            ("2-1", "idVendor", "46f4"),
            ("2-1", "idProduct", "0001"),
            ("2-1", "product", "QEMU USB HARDDRIVE"),
            ("2-1", "authorized", "1"),
            ("2-3", "idVendor", "0627"),
            ("2-3", "idProduct", "0001"),
            ("2-3", "authorized", "0"),
        ];
        for (dev, file, value) in files {
            std::fs::create_dir_all(dir.path().join(dev)).expect("dir");
            std::fs::write(dir.path().join(dev).join(file), format!("{value}\n")).expect("write");
        }
        std::fs::write(dir.path().join("2-1/descriptors"), descriptors(&[0x08])).expect("d");
        std::fs::write(
            dir.path().join("2-3/descriptors"),
            descriptors(&[0x08, 0x03, 0x03]),
        )
        .expect("d");
        let records = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            records.path().join("2-1"),
            r#"{"port":"2-1","found_by":"firmware-path"}"#,
        )
        .expect("record");
        let report = observe(dir.path(), records.path());
        assert_eq!(
            report.devices,
            vec![
                UsbDevice {
                    port: "2-1".into(),
                    id: "46f4:0001".into(),
                    product: Some("QEMU USB HARDDRIVE".into()),
                    classes: vec!["08".into()],
                    authorized: true,
                    boot: Some(FoundBy::FirmwarePath),
                },
                UsbDevice {
                    port: "2-3".into(),
                    id: "0627:0001".into(),
                    product: None,
                    classes: vec!["03".into(), "08".into()],
                    authorized: false,
                    boot: None,
                },
            ]
        );
        assert!(report
            .console_line()
            .starts_with("@kiosk@ {\"event\":\"usb\",\"devices\":[{\"port\":\"2-1\""));
    }
}
