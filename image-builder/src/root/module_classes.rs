//! Kernel modules for hardware classes the stick never drives, left out for
//! size (issue 19): data-centre fabrics, storage and network adapters, TV
//! tuners, industrial and sensor buses, virtualisation hosts, radios other than
//! Wi-Fi; display drivers that cannot start without firmware the image does not
//! carry (they would leave the screen black); and the Wi-Fi stack in an image
//! that has nothing to join a Wi-Fi network with (no `[network.wifi]`).
//! What the stick uses stays: storage it must see to lock (USB, SATA, NVMe, SD),
//! USB, input, sound, cameras (UVC), wired network, Wi-Fi where the image joins
//! it, graphics.
//!
//! A module that a kept module needs (`modules.dep`) stays whatever its folder:
//! Debian's kernel decides what depends on what, and a newer kernel moving a
//! helper into one of these folders must not break a driver the stick uses.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};

pub use crate::root::hardware_class::HardwareClass;

/// The classes left out.
pub const UNUSED_HARDWARE: &[HardwareClass] = &[
    HardwareClass {
        folder: "kernel/drivers/infiniband",
        why: "InfiniBand and RDMA adapters (data-centre fabrics)",
    },
    HardwareClass {
        folder: "kernel/drivers/scsi/",
        why: "SCSI, SAS and Fibre Channel host adapters in subfolders (servers); \
              the SCSI core and disk drivers USB sticks and SATA use stay",
    },
    HardwareClass {
        folder: "kernel/drivers/target",
        why: "the PC serving its disks to others (SCSI/iSCSI target)",
    },
    HardwareClass {
        folder: "kernel/drivers/message",
        why: "Fusion MPT storage adapters (servers)",
    },
    HardwareClass {
        folder: "kernel/drivers/media/dvb-core",
        why: "digital TV",
    },
    HardwareClass {
        folder: "kernel/drivers/media/dvb-frontends",
        why: "digital TV demodulators",
    },
    HardwareClass {
        folder: "kernel/drivers/media/tuners",
        why: "TV and radio tuners",
    },
    HardwareClass {
        folder: "kernel/drivers/media/usb/dvb-usb",
        why: "USB TV sticks",
    },
    HardwareClass {
        folder: "kernel/drivers/media/usb/dvb-usb-v2",
        why: "USB TV sticks",
    },
    HardwareClass {
        folder: "kernel/drivers/media/pci",
        why: "TV and capture cards (a laptop's camera is USB, UVC)",
    },
    HardwareClass {
        folder: "kernel/drivers/media/radio",
        why: "FM radio receivers",
    },
    HardwareClass {
        folder: "kernel/drivers/iio",
        why: "industrial I/O and laptop sensors (light, tilt): the stick reads none",
    },
    HardwareClass {
        folder: "kernel/drivers/comedi",
        why: "laboratory data-acquisition cards",
    },
    HardwareClass {
        folder: "kernel/drivers/mtd",
        why: "raw flash chips of embedded boards",
    },
    HardwareClass {
        folder: "kernel/drivers/accel",
        why: "AI accelerators",
    },
    HardwareClass {
        folder: "kernel/drivers/isdn",
        why: "ISDN cards",
    },
    HardwareClass {
        folder: "kernel/drivers/atm",
        why: "ATM network cards",
    },
    HardwareClass {
        folder: "kernel/drivers/net/can",
        why: "CAN buses (vehicles, machines)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/wan",
        why: "leased-line WAN cards",
    },
    HardwareClass {
        folder: "kernel/drivers/net/hamradio",
        why: "amateur radio",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ieee802154",
        why: "low-power sensor radios",
    },
    HardwareClass {
        folder: "kernel/drivers/net/wwan",
        why: "mobile broadband modems: the stick's uplinks are wired and Wi-Fi",
    },
    HardwareClass {
        folder: "kernel/drivers/net/arcnet",
        why: "ARCnet",
    },
    HardwareClass {
        folder: "kernel/drivers/net/fddi",
        why: "FDDI rings",
    },
    HardwareClass {
        folder: "kernel/drivers/hwmon",
        why: "fan and temperature sensor chips: nothing on the stick reads them",
    },
    HardwareClass {
        folder: "kernel/drivers/edac",
        why: "server memory error reporting",
    },
    HardwareClass {
        folder: "kernel/drivers/nvdimm",
        why: "persistent memory modules (servers)",
    },
    HardwareClass {
        folder: "kernel/drivers/w1",
        why: "1-Wire sensor buses",
    },
    HardwareClass {
        folder: "kernel/drivers/pcmcia",
        why: "PC Card slots",
    },
    HardwareClass {
        folder: "kernel/drivers/parport",
        why: "parallel ports",
    },
    HardwareClass {
        folder: "kernel/drivers/memstick",
        why: "Memory Stick card readers",
    },
    HardwareClass {
        folder: "kernel/drivers/nfc",
        why: "NFC radios",
    },
    HardwareClass {
        folder: "kernel/drivers/usb/gadget",
        why: "the PC acting as a USB device",
    },
    HardwareClass {
        folder: "kernel/drivers/usb/serial",
        why: "USB serial adapters (the USB policy blocks them anyway)",
    },
    HardwareClass {
        folder: "kernel/drivers/vhost",
        why: "host side of virtual machines",
    },
    HardwareClass {
        folder: "kernel/drivers/vfio",
        why: "devices handed to virtual machines",
    },
    HardwareClass {
        folder: "kernel/arch/x86/kvm",
        why: "running virtual machines",
    },
    HardwareClass {
        folder: "kernel/drivers/xen",
        why: "Xen guests and hosts",
    },
    HardwareClass {
        folder: "kernel/drivers/hv",
        why: "Hyper-V guests",
    },
    HardwareClass {
        folder: "kernel/drivers/gpu/drm/i915/kvmgt.ko",
        why: "Intel graphics shared with virtual machines",
    },
    HardwareClass {
        folder: "kernel/drivers/gpu/drm/xen",
        why: "Xen guests' display",
    },
    HardwareClass {
        folder: "kernel/drivers/pci/controller/pci-hyperv.ko",
        why: "Hyper-V guests' PCI",
    },
    HardwareClass {
        folder: "kernel/drivers/vdpa",
        why: "virtio devices in hardware (servers)",
    },
    HardwareClass {
        folder: "kernel/drivers/nvme/host/nvme-rdma.ko",
        why: "NVMe over RDMA fabrics (servers)",
    },
    HardwareClass {
        folder: "kernel/drivers/nvme/target",
        why: "the PC serving its NVMe disks to others",
    },
    HardwareClass {
        folder: "kernel/drivers/media/common/b2c2",
        why: "satellite TV cards",
    },
    HardwareClass {
        folder: "kernel/net/netfilter/xt_ipvs.ko",
        why: "server load balancing",
    },
    HardwareClass {
        folder: "kernel/drivers/hwtracing",
        why: "hardware tracing for kernel developers",
    },
    HardwareClass {
        folder: "kernel/drivers/android",
        why: "Android's binder",
    },
    HardwareClass {
        folder: "kernel/net/sunrpc",
        why: "NFS's RPC (the network filesystems are gone already)",
    },
    HardwareClass {
        folder: "kernel/net/netfilter/ipvs",
        why: "server load balancing",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/mellanox",
        why: "Mellanox/NVIDIA ConnectX 10-400 Gbit/s adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/qlogic",
        why: "QLogic/Marvell FastLinQ converged adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/chelsio",
        why: "Chelsio T3-T6 offload adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/sfc",
        why: "Solarflare/AMD 10-100 Gbit/s adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/netronome",
        why: "Netronome SmartNICs (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/cavium",
        why: "Cavium/Marvell ThunderX and LiquidIO adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/huawei",
        why: "Huawei data-centre adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/pensando",
        why: "AMD Pensando DSC adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/brocade",
        why: "Brocade converged adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/emulex",
        why: "Emulex OneConnect converged adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/neterion",
        why: "Neterion/Exar 10 Gbit/s adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/myricom",
        why: "Myricom Myri-10G adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/google",
        why: "Google Cloud's gVNIC (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/amazon",
        why: "Amazon EC2's ENA (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/microsoft",
        why: "Microsoft Azure's MANA (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/cisco",
        why: "Cisco UCS VIC adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/intel/ice",
        why: "Intel E800 100 Gbit/s adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/intel/i40e",
        why: "Intel 700-series 40 Gbit/s adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/intel/iavf",
        why: "Intel virtual functions (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/intel/idpf",
        why: "Intel infrastructure data-path functions (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/broadcom/bnx2x",
        why: "Broadcom NetXtreme II 10 Gbit/s adapters (servers and clouds)",
    },
    HardwareClass {
        folder: "kernel/drivers/net/ethernet/broadcom/bnxt",
        why: "Broadcom NetXtreme-C/E 10-200 Gbit/s adapters (servers and clouds)",
    },
];

/// A display driver that cannot start without its firmware files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwareBoundDisplay {
    pub driver: HardwareClass,
    /// Its folder under the firmware folder.
    pub firmware: &'static str,
}

/// Display drivers left out unless the image carries their firmware. Such a
/// driver takes the screen from the firmware's framebuffer (simpledrm) when it
/// probes and only then asks for its firmware: without it the PC shows black
/// where simpledrm would have shown the stick.
pub const FIRMWARE_BOUND_DISPLAYS: &[FirmwareBoundDisplay] = &[
    FirmwareBoundDisplay {
        driver: HardwareClass {
            folder: "kernel/drivers/gpu/drm/amd/amdgpu",
            why: "AMD Radeon graphics (GCN and newer) without firmware-amd-graphics",
        },
        firmware: "amdgpu",
    },
    FirmwareBoundDisplay {
        driver: HardwareClass {
            folder: "kernel/drivers/gpu/drm/xe",
            why: "Intel Xe graphics (Lunar Lake, Battlemage) without their GuC firmware",
        },
        firmware: "xe",
    },
];

/// The Wi-Fi stack: adapters' drivers and the kernel's Wi-Fi layers.
pub const WIFI_STACK: &[HardwareClass] = &[
    HardwareClass {
        folder: "kernel/drivers/net/wireless",
        why: "Wi-Fi adapters, in an image with nothing to join a network with",
    },
    HardwareClass {
        folder: "kernel/drivers/staging/rtl8192e",
        why: "Realtek RTL8192E Wi-Fi (staging), in an image without Wi-Fi",
    },
    HardwareClass {
        folder: "kernel/drivers/staging/rtl8723bs",
        why: "Realtek RTL8723BS SDIO Wi-Fi (staging), in an image without Wi-Fi",
    },
    HardwareClass {
        folder: "kernel/drivers/staging/vt6656",
        why: "VIA VT6656 USB Wi-Fi (staging), in an image without Wi-Fi",
    },
    HardwareClass {
        folder: "kernel/net/mac80211",
        why: "the kernel's Wi-Fi stack (mac80211), in an image without Wi-Fi",
    },
    HardwareClass {
        folder: "kernel/net/wireless",
        why: "Wi-Fi configuration (cfg80211), in an image without Wi-Fi",
    },
];

/// Programs that join Wi-Fi networks (iwd with `[network.wifi]`). Without one
/// in the tree the Wi-Fi stack has no use, and Wi-Fi drivers need firmware
/// such an image does not carry either.
pub const WIFI_DAEMONS: &[&str] = &["usr/libexec/iwd", "usr/sbin/wpa_supplicant"];

/// The classes left out of the tree at `root`: [`UNUSED_HARDWARE`], each
/// firmware-bound display driver whose firmware is not in the tree, and the
/// [`WIFI_STACK`] when no [`WIFI_DAEMONS`] is.
pub fn classes_for(root: &Path) -> Vec<HardwareClass> {
    let firmware = root.join(crate::root::firmware::FIRMWARE_FOLDER);
    let joins_wifi = WIFI_DAEMONS.iter().any(|d| root.join(d).exists());
    UNUSED_HARDWARE
        .iter()
        .chain(crate::root::unused_stacks::UNUSED_STACKS)
        .copied()
        .chain(
            FIRMWARE_BOUND_DISPLAYS
                .iter()
                .filter(|d| !firmware.join(d.firmware).is_dir())
                .map(|d| d.driver),
        )
        .chain(WIFI_STACK.iter().copied().filter(|_| !joins_wifi))
        .collect()
}

/// What the class diet decided for one tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassPlan {
    /// Modules left out (paths as in `modules.dep`).
    pub removed: Vec<String>,
    /// Modules in a left-out class kept because a kept module needs them:
    /// (module, the first kept module that needs it).
    pub needed: Vec<(String, String)>,
}

/// Whether `module` (a path as in `modules.dep`) lies in `class`: a folder
/// ending in `/` holds only what lies in its subfolders; a class may name one
/// module file.
fn in_class(module: &str, class: &HardwareClass) -> bool {
    match class.folder.strip_suffix('/') {
        Some(folder) => module
            .strip_prefix(folder)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| rest.contains('/')),
        None => {
            crate::root::module_file::is_module_file(module, class.folder)
                || module
                    .strip_prefix(class.folder)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// Plans the diet from `modules.dep`'s text (every line `module: dep dep...`,
/// dependencies transitive, as depmod writes them) for `classes`.
pub fn plan(modules_dep: &str, classes: &[HardwareClass]) -> ClassPlan {
    let entries: Vec<(&str, Vec<&str>)> = modules_dep
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(module, deps)| (module.trim(), deps.split_whitespace().collect()))
        .collect();
    let doomed = |module: &str| classes.iter().any(|c| in_class(module, c));
    let mut needed_by = std::collections::BTreeMap::new();
    for (module, deps) in entries.iter().filter(|(m, _)| !doomed(m)) {
        for dep in deps.iter().filter(|d| doomed(d)) {
            needed_by
                .entry(dep.to_string())
                .or_insert_with(|| module.to_string());
        }
    }
    let removed: BTreeSet<String> = entries
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| doomed(m) && !needed_by.contains_key(*m))
        .map(str::to_string)
        .collect();
    ClassPlan {
        removed: removed.into_iter().collect(),
        needed: needed_by.into_iter().collect(),
    }
}

/// Removes the modules of [`classes_for`] the tree at `root` from the kernel's
/// module folder `modules` (depmod runs after, with the other removals);
/// returns the plan and the bytes left out.
pub fn prune(modules: &Path, root: &Path) -> Result<(ClassPlan, u64)> {
    let classes = classes_for(root);
    let dep_path = modules.join("modules.dep");
    let dep = std::fs::read_to_string(&dep_path)
        .with_context(|| format!("cannot read {}", dep_path.display()))?;
    // Only modules still in the tree count: what a security rule of harden.rs
    // took out (a filesystem, a protocol) needs nothing.
    let present: String = dep
        .lines()
        .filter(|line| {
            line.split_once(':')
                .is_some_and(|(module, _)| modules.join(module.trim()).exists())
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let plan = plan(&present, &classes);
    let mut bytes = 0;
    for module in &plan.removed {
        let path = modules.join(module);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                bytes += meta.len();
            }
            // Removed already (a security rule of harden.rs took its folder).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", path.display())),
        }
    }
    for class in &classes {
        crate::root::diet::remove_empty_folders(&modules.join(class.folder.trim_end_matches('/')))?;
    }
    for (module, by) in &plan.needed {
        tracing::debug!("hardware diet: kept {module}: {by} needs it");
    }
    tracing::info!(
        "hardware diet: {} modules of {} classes the stick never drives, {:.1} MiB \
         ({} of theirs kept: drivers the stick keeps need them)",
        plan.removed.len(),
        classes.len(),
        bytes as f64 / (1024.0 * 1024.0),
        plan.needed.len()
    );
    Ok((plan, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASSES: &[HardwareClass] = &[
        HardwareClass {
            folder: "kernel/drivers/iio",
            why: "",
        },
        HardwareClass {
            folder: "kernel/drivers/scsi/",
            why: "",
        },
        HardwareClass {
            folder: "kernel/drivers/gpu/kvmgt.ko",
            why: "",
        },
        HardwareClass {
            folder: "kernel/drivers/gpu/packed.ko",
            why: "",
        },
    ];

    #[test]
    fn classes_go_unless_a_kept_module_needs_them() {
        let dep = "\
kernel/drivers/iio/light/als.ko: kernel/drivers/iio/industrialio.ko
kernel/drivers/iio/industrialio.ko:
kernel/drivers/iiox/other.ko:
kernel/drivers/scsi/scsi_mod.ko:
kernel/drivers/scsi/sd_mod.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/qla2xxx/qla2xxx.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/libsas/libsas.ko: kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/scsi/isci.ko: kernel/drivers/scsi/libsas/libsas.ko kernel/drivers/scsi/scsi_mod.ko
kernel/drivers/hid/hid-sensor-hub.ko: kernel/drivers/iio/industrialio.ko
kernel/drivers/gpu/kvmgt.ko: kernel/drivers/iio/light/als.ko
kernel/drivers/gpu/packed.ko.xz:
kernel/drivers/gpu/packed.kox:
";
        let plan = plan(dep, CLASSES);
        // (module, removed?)
        let cases = [
            ("kernel/drivers/iio/light/als.ko", true),
            // needed by hid-sensor-hub, which is kept
            ("kernel/drivers/iio/industrialio.ko", false),
            // another folder that only starts with the same letters
            ("kernel/drivers/iiox/other.ko", false),
            // scsi/ takes subfolders only
            ("kernel/drivers/scsi/scsi_mod.ko", false),
            ("kernel/drivers/scsi/sd_mod.ko", false),
            ("kernel/drivers/scsi/qla2xxx/qla2xxx.ko", true),
            ("kernel/drivers/scsi/libsas/libsas.ko", false),
            ("kernel/drivers/scsi/isci.ko", false),
            // one file as a class; what it alone needs goes with it
            ("kernel/drivers/gpu/kvmgt.ko", true),
            // a class names the .ko; the file may still be packed
            ("kernel/drivers/gpu/packed.ko.xz", true),
            ("kernel/drivers/gpu/packed.kox", false),
        ];
        for (module, removed) in cases {
            assert_eq!(
                plan.removed.contains(&module.to_string()),
                removed,
                "{module}: {plan:?}"
            );
        }
        assert_eq!(
            plan.needed,
            [
                (
                    "kernel/drivers/iio/industrialio.ko".to_string(),
                    "kernel/drivers/hid/hid-sensor-hub.ko".to_string()
                ),
                (
                    "kernel/drivers/scsi/libsas/libsas.ko".to_string(),
                    "kernel/drivers/scsi/isci.ko".to_string()
                ),
            ]
        );
    }

    #[test]
    fn display_drivers_go_only_without_their_firmware() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let firmware = root.join(crate::root::firmware::FIRMWARE_FOLDER);
        // With a Wi-Fi daemon, so that only the display drivers vary.
        std::fs::create_dir_all(root.join("usr/libexec")).expect("mkdir");
        std::fs::write(root.join(WIFI_DAEMONS[0]), b"").expect("write");
        let amdgpu = "kernel/drivers/gpu/drm/amd/amdgpu";
        let xe = "kernel/drivers/gpu/drm/xe";
        // (firmware folders present, amdgpu left out?, xe left out?)
        let cases: [(&[&str], bool, bool); 3] = [
            (&[], true, true),
            (&["amdgpu"], false, true),
            (&["amdgpu", "xe", "iwlwifi"], false, false),
        ];
        for (present, amdgpu_out, xe_out) in cases {
            for folder in present {
                std::fs::create_dir_all(firmware.join(folder)).expect("mkdir");
            }
            let classes = classes_for(root);
            let out = |folder: &str| classes.iter().any(|c| c.folder == folder);
            assert_eq!(out(amdgpu), amdgpu_out, "{present:?}");
            assert_eq!(out(xe), xe_out, "{present:?}");
            assert_eq!(
                classes.len(),
                UNUSED_HARDWARE.len()
                    + crate::root::unused_stacks::UNUSED_STACKS.len()
                    + usize::from(amdgpu_out)
                    + usize::from(xe_out)
            );
        }
    }

    #[test]
    fn the_wifi_stack_goes_only_from_a_tree_without_a_wifi_daemon() {
        // (daemon in the tree, Wi-Fi stack left out?)
        let cases: [(Option<&str>, bool); 3] = [
            (None, true),
            (Some("usr/libexec/iwd"), false),
            (Some("usr/sbin/wpa_supplicant"), false),
        ];
        for (daemon, out) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            if let Some(daemon) = daemon {
                let path = dir.path().join(daemon);
                std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
                std::fs::write(&path, b"").expect("write");
            }
            let classes = classes_for(dir.path());
            for class in WIFI_STACK {
                assert_eq!(classes.contains(class), out, "{daemon:?}: {}", class.folder);
            }
        }
        let dep = "\
kernel/net/wireless/cfg80211.ko: kernel/net/rfkill/rfkill.ko
kernel/net/rfkill/rfkill.ko:
kernel/net/mac80211/mac80211.ko: kernel/net/wireless/cfg80211.ko
kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko: kernel/net/wireless/cfg80211.ko
kernel/drivers/staging/rts5208/rts5208.ko:
";
        let plan = plan(dep, WIFI_STACK);
        assert_eq!(
            plan.removed,
            [
                "kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko",
                "kernel/net/mac80211/mac80211.ko",
                "kernel/net/wireless/cfg80211.ko",
            ],
            "rfkill (laptops' radio switches) and the card reader in staging stay"
        );
    }

    #[test]
    fn every_class_is_under_kernel_and_named_once() {
        let mut seen = BTreeSet::new();
        let displays = FIRMWARE_BOUND_DISPLAYS.iter().map(|d| &d.driver);
        for class in UNUSED_HARDWARE
            .iter()
            .chain(crate::root::unused_stacks::UNUSED_STACKS)
            .chain(displays)
            .chain(WIFI_STACK)
        {
            assert!(class.folder.starts_with("kernel/"), "{class:?}");
            // One module is named by its .ko, which holds packed or not.
            assert!(
                !class.folder.contains(".ko.") && !class.folder.ends_with(".xz"),
                "{class:?}"
            );
            assert!(!class.why.is_empty(), "{class:?}");
            assert!(seen.insert(class.folder), "{class:?} twice");
        }
    }

    #[test]
    fn what_the_stick_itself_uses_stays() {
        // Against the classes by purpose (`unused_stacks`): the root's verity
        // target, the webcam drivers, HD Audio and SOF, USB headsets, the
        // virtual camera of the test images, the disks the storage lock judges.
        for kept in [
            "kernel/drivers/md/dm-mod.ko",
            "kernel/drivers/md/dm-verity.ko",
            "kernel/drivers/md/dm-bufio.ko",
            "kernel/drivers/media/usb/uvc/uvcvideo.ko",
            "kernel/drivers/media/usb/gspca/gspca_main.ko",
            "kernel/sound/pci/hda/snd-hda-intel.ko",
            "kernel/sound/soc/sof/snd-sof.ko",
            "kernel/sound/usb/snd-usb-audio.ko",
            "kernel/drivers/media/test-drivers/vivid/vivid.ko",
            "kernel/drivers/block/loop.ko",
            // USB sticks, SATA disks and CD drives the storage lock judges, and
            // the disks of a virtual machine.
            "kernel/drivers/scsi/scsi_mod.ko",
            "kernel/drivers/scsi/sd_mod.ko",
            "kernel/drivers/scsi/sr_mod.ko",
            "kernel/drivers/scsi/sg.ko",
            "kernel/drivers/scsi/virtio_scsi.ko",
            // The Wi-Fi test image's access point bridges its wired port.
            "kernel/net/bridge/bridge.ko",
        ] {
            let plan = plan(
                &format!("{kept}:\n"),
                crate::root::unused_stacks::UNUSED_STACKS,
            );
            assert!(plan.removed.is_empty(), "{kept} would go: {plan:?}");
        }
    }
}
