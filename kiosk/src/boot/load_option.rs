//! What the firmware booted: `BootCurrent` names the load option `Boot####`, and
//! that option's device path leads from the PCI root through the USB host
//! controller and the USB ports (hubs included) to the stick (UEFI 2.10, 3.1.3
//! "Load Options" and 10.3 "Device Path Nodes").

/// Vendor GUID of the UEFI global variables (`BootCurrent`, `Boot####`).
pub const EFI_GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// efivarfs path of a global variable.
pub fn global_var_path(name: &str) -> String {
    format!("/sys/firmware/efi/efivars/{name}-{EFI_GLOBAL_GUID}")
}

/// efivarfs files start with the variable's 32-bit attributes.
const ATTRIBUTES_LEN: usize = 4;

/// One node of a device path, as far as finding a USB stick needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathNode {
    /// ACPI PCI root bridge (`PciRoot(uid)`).
    PciRoot { uid: u32 },
    /// `Pci(device,function)` below a root or a bridge.
    Pci { device: u8, function: u8 },
    /// `USB(port,interface)`: the port is counted from 0 on its hub (root hub included).
    Usb { parent_port: u8 },
    /// `UsbWwid(vendor,product,interface,"serial")`.
    UsbWwid {
        vendor: u16,
        product: u16,
        serial: String,
    },
    /// Anything else (hard drive, file path, other buses).
    Other { kind: u8, subtype: u8 },
}

/// Why a variable could not be read as what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadOptionError {
    #[error("variable is {0} bytes, too short")]
    TooShort(usize),
    #[error("device path node at byte {0} has a bad length")]
    BadNode(usize),
    #[error("description is not terminated")]
    NoDescription,
}

/// `BootCurrent`: the number of the load option the firmware started.
pub fn parse_boot_current(raw: &[u8]) -> Result<u16, LoadOptionError> {
    match raw.get(ATTRIBUTES_LEN..ATTRIBUTES_LEN + 2) {
        Some(value) => Ok(u16::from_le_bytes([value[0], value[1]])),
        None => Err(LoadOptionError::TooShort(raw.len())),
    }
}

/// A parsed `Boot####`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOption {
    pub description: String,
    /// The first device path instance.
    pub path: Vec<PathNode>,
}

/// `Boot####` as efivarfs returns it: attributes, then `EFI_LOAD_OPTION`
/// (u32 attributes, u16 path length, UTF-16 description, device path, data).
pub fn parse_load_option(raw: &[u8]) -> Result<LoadOption, LoadOptionError> {
    let option = raw
        .get(ATTRIBUTES_LEN..)
        .filter(|o| o.len() >= 6)
        .ok_or(LoadOptionError::TooShort(raw.len()))?;
    let path_len = u16::from_le_bytes([option[4], option[5]]) as usize;
    let mut units = Vec::new();
    let mut at = 6;
    loop {
        let unit = option
            .get(at..at + 2)
            .ok_or(LoadOptionError::NoDescription)?;
        at += 2;
        match u16::from_le_bytes([unit[0], unit[1]]) {
            0 => break,
            u => units.push(u),
        }
    }
    let path = option
        .get(at..at + path_len)
        .ok_or(LoadOptionError::TooShort(raw.len()))?;
    Ok(LoadOption {
        description: String::from_utf16_lossy(&units),
        path: parse_device_path(path)?,
    })
}

/// The nodes of the first instance of a device path.
pub fn parse_device_path(bytes: &[u8]) -> Result<Vec<PathNode>, LoadOptionError> {
    const HARDWARE: u8 = 1;
    const ACPI: u8 = 2;
    const MESSAGING: u8 = 3;
    const END: u8 = 0x7f;
    let mut nodes = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let (kind, subtype) = (bytes[at], bytes[at + 1]);
        let len = u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        let body = bytes
            .get(at + 4..at + len)
            .filter(|_| len >= 4)
            .ok_or(LoadOptionError::BadNode(at))?;
        let short = || LoadOptionError::BadNode(at);
        let u16_at = |i: usize| -> Result<u16, LoadOptionError> {
            body.get(i..i + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .ok_or_else(short)
        };
        nodes.push(match (kind, subtype) {
            (END, _) => break,
            (ACPI, 1) => PathNode::PciRoot {
                uid: u32::from_le_bytes(body.get(4..8).ok_or_else(short)?.try_into().expect("4")),
            },
            (HARDWARE, 1) => PathNode::Pci {
                function: *body.first().ok_or_else(short)?,
                device: *body.get(1).ok_or_else(short)?,
            },
            (MESSAGING, 5) => PathNode::Usb {
                parent_port: *body.first().ok_or_else(short)?,
            },
            (MESSAGING, 16) => PathNode::UsbWwid {
                vendor: u16_at(2)?,
                product: u16_at(4)?,
                serial: utf16_string(body.get(6..).unwrap_or_default()),
            },
            _ => PathNode::Other { kind, subtype },
        });
        at += len;
    }
    Ok(nodes)
}

fn utf16_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .take_while(|u| *u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// Where the firmware says the boot USB device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootUsb {
    /// Through PCI (root bridge uid, then device/function of each bridge and of the
    /// host controller) and USB ports, each counted from 0 as UEFI does.
    Ports {
        pci_root_uid: u32,
        pci: Vec<(u8, u8)>,
        ports: Vec<u8>,
    },
    /// By identity (`UsbWwid`): vendor, product and serial number.
    Identity {
        vendor: u16,
        product: u16,
        serial: String,
    },
    /// The full path leads to another bus (SATA, NVMe, ...): no USB device booted.
    NotUsb,
    /// The path names no device (short forms, `UsbClass`).
    Unnamed,
}

/// The USB device a load option's path names.
pub fn boot_usb(path: &[PathNode]) -> BootUsb {
    if let Some(PathNode::UsbWwid {
        vendor,
        product,
        serial,
    }) = path.iter().find(|n| matches!(n, PathNode::UsbWwid { .. }))
    {
        return BootUsb::Identity {
            vendor: *vendor,
            product: *product,
            serial: serial.clone(),
        };
    }
    let Some(PathNode::PciRoot { uid }) = path.first() else {
        return BootUsb::Unnamed;
    };
    let mut pci = Vec::new();
    let mut ports = Vec::new();
    for node in &path[1..] {
        match node {
            PathNode::Pci { device, function } if ports.is_empty() => {
                pci.push((*device, *function))
            }
            PathNode::Usb { parent_port } => ports.push(*parent_port),
            _ => break,
        }
    }
    if pci.is_empty() {
        return BootUsb::Unnamed;
    }
    if ports.is_empty() {
        return BootUsb::NotUsb;
    }
    BootUsb::Ports {
        pci_root_uid: *uid,
        pci,
        ports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: u8, subtype: u8, body: &[u8]) -> Vec<u8> {
        let mut n = vec![kind, subtype];
        n.extend(((body.len() + 4) as u16).to_le_bytes());
        n.extend(body);
        n
    }

    fn pci_root(uid: u32) -> Vec<u8> {
        let mut body = 0x0a03_41d0u32.to_le_bytes().to_vec();
        body.extend(uid.to_le_bytes());
        node(2, 1, &body)
    }

    fn end() -> Vec<u8> {
        node(0x7f, 0xff, &[])
    }

    /// `Boot####` in efivarfs: attributes, EFI_LOAD_OPTION, optional data.
    fn load_option(description: &str, path: &[u8]) -> Vec<u8> {
        let mut raw = 7u32.to_le_bytes().to_vec();
        raw.extend(1u32.to_le_bytes());
        raw.extend((path.len() as u16).to_le_bytes());
        raw.extend(description.encode_utf16().flat_map(u16::to_le_bytes));
        raw.extend([0, 0]);
        raw.extend(path);
        raw.extend(b"optional");
        raw
    }

    #[test]
    fn boot_current_is_a_little_endian_number() {
        assert_eq!(parse_boot_current(&[7, 0, 0, 0, 0x03, 0x00]), Ok(3));
        assert_eq!(parse_boot_current(&[7, 0, 0, 0, 0x01, 0x10]), Ok(0x1001));
        assert_eq!(
            parse_boot_current(&[7, 0, 0, 0, 1]),
            Err(LoadOptionError::TooShort(5))
        );
    }

    #[test]
    fn usb_boot_device_from_load_options() {
        let hd = node(4, 1, &[0; 38]);
        let ovmf_stick = [pci_root(0), node(1, 1, &[0, 4]), node(3, 5, &[0, 0]), end()].concat();
        let behind_bridge_and_hub = [
            pci_root(0),
            node(1, 1, &[0, 0x1c]),
            node(1, 1, &[0, 0]),
            node(3, 5, &[5, 0]),
            node(3, 5, &[2, 0]),
            hd.clone(),
            end(),
        ]
        .concat();
        let mut wwid_body = vec![0, 0];
        wwid_body.extend(0x0781u16.to_le_bytes());
        wwid_body.extend(0x5581u16.to_le_bytes());
        wwid_body.extend("4C53\0".encode_utf16().flat_map(u16::to_le_bytes));
        let wwid = [node(3, 16, &wwid_body), end()].concat();
        let short_form = [hd.clone(), end()].concat();
        let nvme = [
            pci_root(0),
            node(1, 1, &[0, 6]),
            node(3, 23, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            hd,
            end(),
        ]
        .concat();
        let cases: Vec<(&str, Vec<u8>, BootUsb)> = vec![
            (
                "OVMF's USB stick",
                ovmf_stick,
                BootUsb::Ports {
                    pci_root_uid: 0,
                    pci: vec![(4, 0)],
                    ports: vec![0],
                },
            ),
            (
                "behind a PCI bridge and a hub",
                behind_bridge_and_hub,
                BootUsb::Ports {
                    pci_root_uid: 0,
                    pci: vec![(0x1c, 0), (0, 0)],
                    ports: vec![5, 2],
                },
            ),
            (
                "by identity",
                wwid,
                BootUsb::Identity {
                    vendor: 0x0781,
                    product: 0x5581,
                    serial: "4C53".into(),
                },
            ),
            ("hard drive short form", short_form, BootUsb::Unnamed),
            ("an NVMe disk", nvme, BootUsb::NotUsb),
        ];
        for (name, path, want) in cases {
            let option = parse_load_option(&load_option("UEFI QEMU USB", &path)).expect(name);
            assert_eq!(option.description, "UEFI QEMU USB", "{name}");
            assert_eq!(boot_usb(&option.path), want, "{name}");
        }
    }

    #[test]
    fn malformed_options_are_errors() {
        let zero_length_node = [0x01, 0x01, 0x00, 0x00];
        let cases: Vec<(&str, Vec<u8>, LoadOptionError)> = vec![
            ("empty", vec![7, 0, 0, 0], LoadOptionError::TooShort(4)),
            (
                "description never ends",
                [vec![7, 0, 0, 0, 1, 0, 0, 0, 4, 0], vec![b'A', 0]].concat(),
                LoadOptionError::NoDescription,
            ),
            (
                "node length 0",
                load_option("x", &zero_length_node),
                LoadOptionError::BadNode(0),
            ),
        ];
        for (name, raw, want) in cases {
            assert_eq!(parse_load_option(&raw), Err(want), "{name}");
        }
    }
}
