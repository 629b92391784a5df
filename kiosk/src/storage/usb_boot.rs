//! The boot stick among the USB devices present at power-on.
//!
//! `usbcore.authorized_default=0` (signed command line) leaves every USB device
//! without a driver from the first moment. In the initrd, udev runs
//! `kiosk usb-boot-device NAME` for each one; this authorizes the device the
//! firmware booted from (`BootCurrent`'s device path: its PCI controller and USB
//! ports, or its vendor, product and serial) and the hubs on its way, and leaves a
//! USBGuard rule for it (its id, serial and port), so that the session's policy,
//! applied to present devices as to new ones, keeps the stick and nothing else.

use std::path::Path;

use stick_manifest::initrd::{USBGUARD_RUNTIME_RULES_DIR, USB_BOOT_RECORD_DIR};

use crate::boot::load_option::{
    boot_usb, global_var_path, parse_boot_current, parse_load_option, BootUsb,
};
use crate::storage::usb::{interface_classes, BootStickRecord, FoundBy, SYS_BUS_USB_DEVICES};

/// The udev helper's subcommand.
pub const SUBCOMMAND: &str = "usb-boot-device";

const SYS_DEVICES: &str = "/sys/devices";
const CLASS_HUB: u8 = 0x09;
const CLASS_MASS_STORAGE: &str = "08";

/// Where the stick is, as far as the firmware tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootTarget {
    /// Linux's names for the port, e.g. `1-1` or `1-3.2`: one physical root
    /// connector is a port of the USB 2 and one of the USB 3 root hub.
    Ports(Vec<String>),
    Identity {
        vendor: u16,
        product: u16,
        serial: String,
    },
    NotUsb,
    Unnamed,
}

/// A USB device as sysfs shows it, authorized or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysUsbDevice {
    pub name: String,
    pub vendor: u16,
    pub product: u16,
    pub serial: Option<String>,
    pub device_class: u8,
    pub interface_classes: Vec<String>,
}

/// What to do with one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Stick(FoundBy),
    /// A hub the stick may sit behind.
    Hub,
    Leave,
}

/// The decision for `device` given where the firmware booted from.
pub fn decide(device: &SysUsbDevice, target: &BootTarget) -> Decision {
    let is_hub = device.device_class == CLASS_HUB;
    match target {
        BootTarget::Ports(ports) if ports.contains(&device.name) => {
            Decision::Stick(FoundBy::FirmwarePath)
        }
        BootTarget::Ports(ports)
            if ports
                .iter()
                .any(|p| p.starts_with(&format!("{}.", device.name))) =>
        {
            Decision::Hub
        }
        BootTarget::Identity {
            vendor,
            product,
            serial,
        } if device.vendor == *vendor
            && device.product == *product
            && device.serial.as_deref() == Some(serial.as_str()) =>
        {
            Decision::Stick(FoundBy::FirmwareIdentity)
        }
        BootTarget::Identity { .. } | BootTarget::Unnamed if is_hub => Decision::Hub,
        BootTarget::Unnamed if device.interface_classes == [CLASS_MASS_STORAGE] => {
            Decision::Stick(FoundBy::StorageOnly)
        }
        _ => Decision::Leave,
    }
}

/// A root hub of a host controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootHub {
    pub bus: u32,
    /// Mbit/s: 480 and below for USB 2, 5000 and above for USB 3.
    pub speed: u32,
    pub ports: u32,
}

/// Linux's bus and port for a root port counted from 0 as UEFI counts it. An
/// xHCI controller has two root hubs in Linux (USB 2 and USB 3) but one port
/// range in the controller, USB 2 ports first (as in QEMU's xHCI and Intel's).
/// Firmware does not agree on which it names (OVMF names a USB 3 stick in
/// QEMU's first connector `USB(0)`, the USB 2 port's number): the caller adds
/// the peer port, the same connector on the other root hub.
pub fn map_root_port(uefi_port: u8, roots: &[RootHub]) -> Option<(u32, u32)> {
    let port = uefi_port as u32;
    match roots {
        [only] => (port < only.ports).then_some((only.bus, port + 1)),
        [_, _] => {
            let (usb2, usb3) = if roots[0].speed < roots[1].speed {
                (&roots[0], &roots[1])
            } else {
                (&roots[1], &roots[0])
            };
            if port < usb2.ports {
                Some((usb2.bus, port + 1))
            } else {
                let port = port - usb2.ports;
                (port < usb3.ports).then_some((usb3.bus, port + 1))
            }
        }
        _ => None,
    }
}

/// `bus-port.port...`: hubs' ports are counted from 0 in UEFI, from 1 in Linux.
pub fn port_name(bus: u32, root_port: u32, hub_ports: &[u8]) -> String {
    let mut name = format!("{bus}-{root_port}");
    for port in hub_ports {
        name.push_str(&format!(".{}", *port as u32 + 1));
    }
    name
}

/// The sysfs folder of the PCI device at the end of `pci` below the root bridge
/// with `uid` (`/sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0`).
pub fn pci_device_dir(
    sys_devices: &Path,
    uid: u32,
    pci: &[(u8, u8)],
) -> Option<std::path::PathBuf> {
    let uid_of = |dir: &str| {
        std::fs::read_to_string(sys_devices.join(dir).join("firmware_node/uid"))
            .ok()
            .and_then(|u| u.trim().parse::<u32>().ok())
    };
    let roots: Vec<String> = crate::sysfs::entry_names(sys_devices)
        .into_iter()
        .filter(|n| n.starts_with("pci"))
        .collect();
    let root = roots
        .iter()
        .find(|n| uid_of(n) == Some(uid))
        .or_else(|| roots.iter().find(|n| uid == 0 && *n == "pci0000:00"))?;
    let mut dir = sys_devices.join(root);
    for (device, function) in pci {
        let suffix = format!(":{device:02x}.{function:x}");
        let child = crate::sysfs::entry_names(&dir)
            .into_iter()
            .find(|n| n.len() == 12 && n.ends_with(&suffix))?;
        dir = dir.join(child);
    }
    Some(dir)
}

/// The same connector's port on the other root hub: the kernel's `peer` link
/// (from ACPI's port locations, or the same number when firmware gives none).
fn peer_port(sys_usb: &Path, bus: u32, port: u32) -> Option<(u32, u32)> {
    let link = sys_usb
        .join(format!("usb{bus}/{bus}-0:1.0/usb{bus}-port{port}/peer"))
        .read_link()
        .ok()?;
    parse_port_dir(link.file_name()?.to_str()?)
}

/// `usb2-port1` -> (2, 1).
fn parse_port_dir(name: &str) -> Option<(u32, u32)> {
    let (bus, port) = name.strip_prefix("usb")?.split_once("-port")?;
    Some((bus.parse().ok()?, port.parse().ok()?))
}

/// The root hubs (`usbN`) of the host controller in `controller`.
fn root_hubs(controller: &Path) -> Vec<RootHub> {
    let read = |dir: &Path, file: &str| -> Option<u32> {
        std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| v as u32)
    };
    crate::sysfs::entry_names(controller)
        .into_iter()
        .filter(|n| {
            n.strip_prefix("usb")
                .is_some_and(|d| d.parse::<u32>().is_ok())
        })
        .filter_map(|n| {
            let dir = controller.join(n);
            Some(RootHub {
                bus: read(&dir, "busnum")?,
                speed: read(&dir, "speed")?,
                ports: read(&dir, "maxchild")?,
            })
        })
        .collect()
}

/// Where the firmware booted from, read from efivarfs and sysfs.
pub fn boot_target(sys_devices: &Path) -> BootTarget {
    let option = std::fs::read(global_var_path("BootCurrent"))
        .ok()
        .and_then(|raw| parse_boot_current(&raw).ok())
        .and_then(|n| std::fs::read(global_var_path(&format!("Boot{n:04X}"))).ok())
        .and_then(|raw| parse_load_option(&raw).ok());
    let Some(option) = option else {
        return BootTarget::Unnamed;
    };
    match boot_usb(&option.path) {
        BootUsb::Ports {
            pci_root_uid,
            pci,
            ports,
        } => pci_device_dir(sys_devices, pci_root_uid, &pci)
            .and_then(|controller| map_root_port(ports[0], &root_hubs(&controller)))
            .map(|(bus, root_port)| {
                let sys_usb = Path::new(SYS_BUS_USB_DEVICES);
                let peer = peer_port(sys_usb, bus, root_port);
                let names = std::iter::once((bus, root_port))
                    .chain(peer)
                    .map(|(bus, root_port)| port_name(bus, root_port, &ports[1..]))
                    .collect();
                BootTarget::Ports(names)
            })
            .unwrap_or(BootTarget::Unnamed),
        BootUsb::Identity {
            vendor,
            product,
            serial,
        } => BootTarget::Identity {
            vendor,
            product,
            serial,
        },
        BootUsb::NotUsb => BootTarget::NotUsb,
        BootUsb::Unnamed => BootTarget::Unnamed,
    }
}

/// The device `name` under `/sys/bus/usb/devices`.
pub fn read_device(sys_usb: &Path, name: &str) -> Option<SysUsbDevice> {
    let dir = sys_usb.join(name);
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let hex = |file: &str| u16::from_str_radix(&read(file)?, 16).ok();
    Some(SysUsbDevice {
        name: name.to_string(),
        vendor: hex("idVendor")?,
        product: hex("idProduct")?,
        serial: read("serial"),
        device_class: u8::from_str_radix(&read("bDeviceClass")?, 16).ok()?,
        interface_classes: std::fs::read(dir.join("descriptors"))
            .map(|d| interface_classes(&d))
            .unwrap_or_default(),
    })
}

/// A USBGuard rule that allows exactly this device on this port.
pub fn usbguard_rule(device: &SysUsbDevice) -> String {
    let mut rule = format!("allow id {:04x}:{:04x}", device.vendor, device.product);
    if let Some(serial) = &device.serial {
        rule.push_str(&format!(" serial \"{}\"", usbguard_escape(serial)));
    }
    rule.push_str(&format!(
        " via-port \"{}\"\n",
        usbguard_escape(&device.name)
    ));
    rule
}

/// A USBGuard rule string: printable ASCII as is, `"` `\` and the rest as `\xHH`.
fn usbguard_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' => format!("\\x{b:02x}"),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// `kiosk usb-boot-device NAME`: decides on `NAME` and acts; returns what it did.
pub fn authorize_if_boot_device(name: &str) -> anyhow::Result<Decision> {
    use anyhow::Context;
    let sys_usb = Path::new(SYS_BUS_USB_DEVICES);
    let device = read_device(sys_usb, name)
        .with_context(|| format!("{} has no USB device {name}", sys_usb.display()))?;
    let decision = decide(&device, &boot_target(Path::new(SYS_DEVICES)));
    if let Decision::Stick(found_by) = decision {
        keep_for_the_session(&device, found_by)?;
    }
    if decision != Decision::Leave {
        let authorized = sys_usb.join(name).join("authorized");
        std::fs::write(&authorized, "1")
            .with_context(|| format!("cannot write {}", authorized.display()))?;
    }
    Ok(decision)
}

/// The USBGuard rule and the record, written before the device gets a driver.
fn keep_for_the_session(device: &SysUsbDevice, found_by: FoundBy) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let write = |dir: &str, file: String, text: String, mode: u32| -> anyhow::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {dir}"))?;
        let path = Path::new(dir).join(file);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write(
        USBGUARD_RUNTIME_RULES_DIR,
        format!("10-boot-stick-{}.conf", device.name),
        usbguard_rule(device),
        0o600,
    )?;
    let record = BootStickRecord {
        port: device.name.clone(),
        found_by,
    };
    write(
        USB_BOOT_RECORD_DIR,
        device.name.clone(),
        serde_json::to_string(&record).expect("record serialises"),
        0o644,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, class: u8, interfaces: &[&str]) -> SysUsbDevice {
        SysUsbDevice {
            name: name.into(),
            vendor: 0x46f4,
            product: 0x0001,
            serial: Some("1-0000:00:04.0-1".into()),
            device_class: class,
            interface_classes: interfaces.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn only_the_boot_device_and_its_hubs_are_let_in() {
        let stick = device("1-1", 0, &["08"]);
        let other_stick = device("1-2", 0, &["08"]);
        let network = device("1-3", 0, &["02", "0a"]);
        let hub = SysUsbDevice {
            vendor: 0x0409,
            product: 0x55aa,
            serial: None,
            ..device("1-4", 9, &["09"])
        };
        let identity = BootTarget::Identity {
            vendor: 0x46f4,
            product: 0x0001,
            serial: "1-0000:00:04.0-1".into(),
        };
        let port = |p: &str| BootTarget::Ports(vec![p.into()]);
        let peers = BootTarget::Ports(vec!["1-1".into(), "2-1".into()]);
        let stick_path = Decision::Stick(FoundBy::FirmwarePath);
        #[rustfmt::skip]
        let cases: Vec<(&str, SysUsbDevice, BootTarget, Decision)> = vec![
            ("the stick by port", stick.clone(), port("1-1"), stick_path),
            ("another stick", other_stick.clone(), port("1-1"), Decision::Leave),
            ("a network adapter", network.clone(), port("1-1"), Decision::Leave),
            ("a hub not on the way", hub.clone(), port("1-1"), Decision::Leave),
            ("the hub on the way", hub.clone(), port("1-4.2"), Decision::Hub),
            ("behind the hub", device("1-4.2", 0, &["08"]), port("1-4.2"), stick_path),
            ("a name that only starts alike", device("1-1", 9, &["09"]), port("1-10"), Decision::Leave),
            ("USB 3 stick on the named connector", device("2-1", 0, &["08"]), peers.clone(), stick_path),
            ("another connector", device("2-2", 0, &["08"]), peers, Decision::Leave),
            ("by identity", stick.clone(), identity.clone(), Decision::Stick(FoundBy::FirmwareIdentity)),
            ("same model, other serial", SysUsbDevice { serial: Some("2".into()), ..other_stick.clone() }, identity.clone(), Decision::Leave),
            ("any hub when only the identity is known", hub, identity, Decision::Hub),
            ("unnamed: storage only", other_stick, BootTarget::Unnamed, Decision::Stick(FoundBy::StorageOnly)),
            ("unnamed: network stays out", network, BootTarget::Unnamed, Decision::Leave),
            ("unnamed: storage and more stays out", device("1-5", 0, &["03", "08"]), BootTarget::Unnamed, Decision::Leave),
            ("booted from another bus: no stick", stick, BootTarget::NotUsb, Decision::Leave),
        ];
        for (name, device, target, want) in cases {
            assert_eq!(decide(&device, &target), want, "{name}");
        }
    }
    #[test]
    fn uefi_root_ports_map_to_linux_root_hubs() {
        let xhci = [
            RootHub {
                bus: 2,
                speed: 5000,
                ports: 8,
            },
            RootHub {
                bus: 1,
                speed: 480,
                ports: 8,
            },
        ];
        let ehci = [RootHub {
            bus: 3,
            speed: 480,
            ports: 6,
        }];
        type Case<'a> = (&'a str, u8, &'a [RootHub], Option<(u32, u32)>);
        let cases: &[Case] = &[
            ("xHCI first USB 2 port", 0, &xhci, Some((1, 1))),
            ("xHCI last USB 2 port", 7, &xhci, Some((1, 8))),
            ("xHCI first USB 3 port", 8, &xhci, Some((2, 1))),
            ("beyond xHCI's ports", 16, &xhci, None),
            ("EHCI", 5, &ehci, Some((3, 6))),
            ("beyond EHCI's ports", 6, &ehci, None),
            ("no root hub", 0, &[], None),
        ];
        for (name, port, roots, want) in cases {
            assert_eq!(map_root_port(*port, roots), *want, "{name}");
        }
        assert_eq!(parse_port_dir("usb2-port1"), Some((2, 1)));
        assert_eq!(parse_port_dir("usb12-port10"), Some((12, 10)));
        assert_eq!(parse_port_dir("2-0:1.0"), None);
        assert_eq!(port_name(1, 3, &[]), "1-3");
        assert_eq!(port_name(1, 3, &[1, 0]), "1-3.2.1");
    }

    #[test]
    fn pci_path_is_followed_in_sysfs() {
        let sys = tempfile::tempdir().expect("tempdir");
        let controller = sys.path().join("pci0000:00/0000:00:1c.0/0000:03:00.0");
        std::fs::create_dir_all(controller.join("usb1")).expect("mkdir");
        std::fs::create_dir_all(sys.path().join("pci0000:00/0000:00:04.0")).expect("mkdir");
        type Case<'a> = (&'a str, u32, &'a [(u8, u8)], Option<&'a Path>);
        let cases: &[Case] = &[
            (
                "behind a bridge",
                0,
                &[(0x1c, 0), (0, 0)],
                Some(&controller),
            ),
            (
                "on the root bus",
                0,
                &[(4, 0)],
                Some(&sys.path().join("pci0000:00/0000:00:04.0")),
            ),
            ("no such function", 0, &[(4, 1)], None),
            ("unknown root bridge", 1, &[(4, 0)], None),
        ];
        for (name, uid, pci, want) in cases {
            assert_eq!(
                pci_device_dir(sys.path(), *uid, pci).as_deref(),
                *want,
                "{name}"
            );
        }
    }

    #[test]
    fn rules_name_id_serial_and_port() {
        let cases = [
            (
                device("1-1", 0, &["08"]),
                "allow id 46f4:0001 serial \"1-0000:00:04.0-1\" via-port \"1-1\"\n",
            ),
            (
                SysUsbDevice {
                    serial: Some("a\"b\\c\u{e9}".into()),
                    ..device("2-3.1", 0, &[])
                },
                "allow id 46f4:0001 serial \"a\\x22b\\x5cc\\xc3\\xa9\" via-port \"2-3.1\"\n",
            ),
            (
                SysUsbDevice {
                    serial: None,
                    ..device("1-2", 0, &[])
                },
                "allow id 46f4:0001 via-port \"1-2\"\n",
            ),
        ];
        for (device, want) in cases {
            assert_eq!(usbguard_rule(&device), want, "{}", device.name);
        }
    }
}
