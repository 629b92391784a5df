//! The base root filesystem: Debian from mmdebstrap with kernel, systemd and a
//! systemd-based initrd (dracut with systemd-veritysetup), cached between builds.
//!
//! dracut runs inside the tree at build time and is purged afterwards: the image
//! carries the initrd only inside its signed UKI.

use std::path::{Path, PathBuf};

use crate::root::fail_closed;
use crate::trees::cache::{TreeCache, TreeError, TreeRecipe};

/// Packages every image needs (the root filesystem, its kernel, the initrd tooling).
pub const BASE_PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "systemd",
    "systemd-sysv",
    "systemd-cryptsetup",
    "udev",
    "kmod",
    "dmsetup",
    "dracut",
    // dracut packs the initrd with it; it goes with dracut (see `base_recipe`).
    "zstd",
    // Unpacks Debian's `.ko.xz` modules, then goes (see `base_recipe`).
    "xz-utils",
    // USB device policy (see usb_policy.rs).
    "usbguard",
    // The network: egress policy, tunnel (see egress_policy.rs, tunnel_config.rs).
    "nftables",
    "iproute2",
    "charon-systemd",
    "strongswan-swanctl",
    "libstrongswan-standard-plugins",
    "wireguard-tools",
];

/// Kernel modules in the initrd, and nothing else: what it takes to find the stick
/// over USB and open its root through dm-verity. No drivers for the PC's own disks.
pub const INITRD_DRIVERS: &[&str] = &[
    "squashfs",
    "overlay",
    "dm_mod",
    "dm_verity",
    "usb_storage",
    "uas",
    "xhci_pci",
    "xhci_hcd",
    "ehci_pci",
    "ehci_hcd",
    "ohci_pci",
    "uhci_hcd",
    "sd_mod",
    "vfat",
    "nls_cp437",
    "nls_iso8859_1",
];

/// dracut modules left out of the initrd: nothing for networks, other storage
/// stacks or interactive use.
pub const INITRD_OMIT: &[&str] = &[
    "plymouth",
    "btrfs",
    "lvm",
    "mdraid",
    "dmraid",
    "multipath",
    "crypt",
    "iscsi",
    "nfs",
    "network",
    "i18n",
    "resume",
    "nvdimm",
    "qemu",
    "virtfs",
    "virtiofs",
    "dbus-broker",
    "dbus-daemon",
    "dbus",
    "bluetooth",
    // udev's hardware database (13 MB: vendor names, key remaps); the stick is
    // found by its partition UUIDs, which need none of it. The root has its own.
    "hwdb",
];

/// Kernel modules kept out of the initrd although a dracut module asks for them
/// (`dm` takes all of `drivers/md`): storage stacks that assemble disks (RAID,
/// thin pools, caches, multipath, deduplication) and what only they need. The
/// initrd opens one dm-verity device and nothing else; the root leaves them out
/// too (`root::unused_stacks`). Written as module names (`_`, not `-`): dracut
/// 106 turns only the first `-` of its whole list into `_`.
pub const INITRD_OMIT_DRIVERS: &[&str] = &[
    "bcache",
    "dm_vdo",
    "dm_persistent_data",
    "dm_bio_prison",
    "md_mod",
    "md_cluster",
    "dlm",
    "raid0",
    "raid1",
    "raid10",
    "raid456",
    "dm_raid",
    "dm_thin_pool",
    "dm_cache",
    "dm_cache_smq",
    "dm_era",
    "dm_clone",
    "dm_writecache",
    "dm_zoned",
    "dm_multipath",
    "dm_round_robin",
    "dm_queue_length",
    "dm_service_time",
    "dm_historical_service_time",
    "dm_io_affinity",
    "dm_mirror",
    "dm_log",
    "dm_region_hash",
    "dm_log_userspace",
    "dm_log_writes",
    "dm_snapshot",
    "dm_switch",
    "dm_unstripe",
    "dm_flakey",
    "dm_delay",
    "dm_dust",
    "dm_ebs",
    "dm_zero",
    "dm_integrity",
    "dm_crypt",
];

/// A finished base tree.
#[derive(Debug, Clone)]
pub struct BaseTree {
    pub root: PathBuf,
    pub vmlinuz: PathBuf,
    pub initrd: PathBuf,
    pub kernel_version: String,
}

/// The mmdebstrap recipe of the base tree.
pub fn base_recipe(suite: &str, sources: &[String], extra_packages: &[String]) -> TreeRecipe {
    let mut packages: Vec<String> = BASE_PACKAGES.iter().map(|p| p.to_string()).collect();
    packages.extend(extra_packages.iter().cloned());
    let dracut = format!(
        "kver=$(ls \"$1\"/usr/lib/modules); chroot \"$1\" dracut --no-hostonly \
         --no-hostonly-cmdline --force --kver \"$kver\" --add systemd-veritysetup \
         --compress zstd \
         --omit '{}' --drivers '{}' --omit-drivers '{}' --install '{}' \
         /boot/stick-initrd.img",
        INITRD_OMIT.join(" "),
        INITRD_DRIVERS.join(" "),
        INITRD_OMIT_DRIVERS.join(" "),
        fail_closed::initrd_install().join(" ")
    );
    TreeRecipe {
        kind: "base",
        suite: suite.to_string(),
        sources: sources.to_vec(),
        packages,
        customize_hooks: vec![
            fail_closed::install_hook(),
            // The modules stored unpacked: the root's compressor packs the
            // folder smaller than each file packed alone (xz: 61.0 -> 51.0 MB,
            // docs/benchmarks.md). Debian signs a module before packing it, so
            // the unpacked file still carries its signature.
            "kver=$(ls \"$1\"/usr/lib/modules); \
             chroot \"$1\" find /usr/lib/modules -name '*.ko.xz' -exec unxz {} + \
             && chroot \"$1\" depmod -a \"$kver\""
                .to_string(),
            dracut,
            "chroot \"$1\" apt-get purge -y --autoremove dracut dracut-core".to_string(),
            // zstd goes with dracut unless a package of the image depends on it
            // (dpkg refuses then).
            "chroot \"$1\" dpkg --purge zstd || echo 'zstd stays: a package depends on it'"
                .to_string(),
            "chroot \"$1\" dpkg --purge xz-utils || echo 'xz-utils stays: a package depends on it'"
                .to_string(),
            // Debian's own initrd is not used: the UKI carries ours.
            "rm -f \"$1\"/boot/initrd.img-* \"$1\"/initrd.img* \"$1\"/vmlinuz*".to_string(),
        ],
    }
}

impl BaseTree {
    /// The cached base tree for this recipe, built when missing.
    pub fn ensure(cache: &TreeCache, recipe: &TreeRecipe) -> Result<BaseTree, TreeError> {
        let dir = cache.ensure(recipe, move_boot_files_out)?;
        let io = |path: &Path, source| TreeError::Io {
            path: path.to_path_buf(),
            source,
        };
        let version_file = dir.join("kernel-version");
        let kernel_version = std::fs::read_to_string(&version_file)
            .map_err(|e| io(&version_file, e))?
            .trim()
            .to_string();
        Ok(BaseTree {
            root: dir.join("root"),
            vmlinuz: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
            kernel_version,
        })
    }
}

/// Moves kernel and initrd out of the tree's `/boot` (the image's root needs neither).
fn move_boot_files_out(dir: &Path) -> Result<(), TreeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TreeError::Io { path, source }
    };
    let boot = dir.join("root/boot");
    let modules = dir.join("root/usr/lib/modules");
    let mut versions: Vec<String> = std::fs::read_dir(&modules)
        .map_err(io(&modules))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    versions.sort();
    let Some(version) = versions.pop() else {
        return Err(io(&modules)(std::io::Error::other("no kernel installed")));
    };
    for (from, to) in [
        (boot.join(format!("vmlinuz-{version}")), dir.join("vmlinuz")),
        (boot.join("stick-initrd.img"), dir.join("initrd.img")),
    ] {
        std::fs::rename(&from, &to).map_err(io(&from))?;
    }
    for entry in std::fs::read_dir(&boot).map_err(io(&boot))? {
        let path = entry.map_err(io(&boot))?.path();
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    let version_file = dir.join("kernel-version");
    std::fs::write(&version_file, format!("{version}\n")).map_err(io(&version_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_builds_initrd_and_purges_dracut() {
        let recipe = base_recipe(
            "trixie",
            &["deb http://m.example/debian trixie main".into()],
            &["vim-tiny".into()],
        );
        assert!(recipe.packages.contains(&"vim-tiny".to_string()));
        assert!(recipe.packages.contains(&"linux-image-amd64".to_string()));
        let hooks = &recipe.customize_hooks;
        assert!(hooks[0].contains("stick-fail-closed@.service"));
        assert!(hooks[1].contains("-name '*.ko.xz' -exec unxz {} +"));
        assert!(hooks[1].contains("depmod -a"));
        assert!(hooks[2].contains("--add systemd-veritysetup"));
        assert!(hooks[2].contains("--drivers 'squashfs overlay dm_mod dm_verity"));
        assert!(hooks[2]
            .contains("--install '/usr/lib/secure-stick/fail-closed /usr/lib/systemd/system/stick-fail-closed@.service"));
        assert!(hooks[2].contains("--compress zstd"));
        assert!(hooks[2].contains("--omit-drivers 'bcache dm_vdo "));
        assert!(hooks[2].contains(" hwdb'"), "hwdb omitted");
        assert!(hooks[3].contains("purge -y --autoremove dracut"));
        assert!(hooks[4].contains("dpkg --purge zstd"));
        assert!(hooks[5].contains("dpkg --purge xz-utils"));
    }

    #[test]
    fn the_initrd_keeps_what_opens_the_root_and_names_modules_as_dracut_matches_them() {
        for name in INITRD_OMIT_DRIVERS {
            assert!(
                !name.contains('-'),
                "{name}: dracut matches module names with `_`"
            );
            assert!(!INITRD_DRIVERS.contains(name), "{name} is also asked for");
        }
        for needed in ["dm_mod", "dm_verity", "squashfs", "usb_storage"] {
            assert!(INITRD_DRIVERS.contains(&needed), "{needed}");
        }
        // dm-verity's own helpers stay.
        for helper in ["dm_bufio", "reed_solomon"] {
            assert!(!INITRD_OMIT_DRIVERS.contains(&helper), "{helper}");
        }
    }

    #[test]
    fn boot_files_move_out_of_the_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("boot")).expect("mkdir");
        std::fs::create_dir_all(root.join("usr/lib/modules/6.12.1-amd64")).expect("mkdir");
        std::fs::write(root.join("boot/vmlinuz-6.12.1-amd64"), "kernel").expect("write");
        std::fs::write(root.join("boot/stick-initrd.img"), "initrd").expect("write");
        std::fs::write(root.join("boot/config-6.12.1-amd64"), "cfg").expect("write");
        move_boot_files_out(dir.path()).expect("moves");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("vmlinuz")).expect("read"),
            "kernel"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("initrd.img")).expect("read"),
            "initrd"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("kernel-version")).expect("read"),
            "6.12.1-amd64\n"
        );
        assert_eq!(
            std::fs::read_dir(root.join("boot"))
                .expect("readdir")
                .count(),
            0
        );
    }
}
