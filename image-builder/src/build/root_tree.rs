//! The base tree and the image's root made from it: a copy of the cached base
//! tree with everything the config asks for, its kernel modules pruned and its
//! packages checked against the config's pins.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use stick_manifest::Package;

use crate::build::inputs::BuildInputs;
use crate::build::BuildOptions;
use crate::config::package_pin::{self, PackagePin};
use crate::root::customize::{customize, Customization};
use crate::root::harden::{prune_modules, ModulePruning};
use crate::root::privileges::drop_privileges;
use crate::runner::CommandRunExt;
use crate::trees::base::{base_recipe, BaseTree};
use crate::trees::cache::TreeCache;

/// The config's Debian tree (kernel, systemd, initrd, packages), from the cache or
/// made by mmdebstrap.
pub fn base_tree(inputs: &BuildInputs, cache: &TreeCache) -> Result<BaseTree> {
    let loaded = &inputs.loaded;
    let debian = &loaded.config.debian;
    let plugin_sets = loaded
        .network
        .as_ref()
        .map(crate::root::network::user_factor_plugins)
        .unwrap_or_default();
    let token = loaded
        .network
        .as_ref()
        .is_some_and(|n| n.token_key_id.is_some());
    let wifi = loaded.network.as_ref().is_some_and(|n| n.wifi.is_some());
    let packages = packages_to_add(
        &debian.extra_packages,
        loaded.session.is_some(),
        &plugin_sets,
        token,
        wifi.then(|| loaded.config.wifi_firmware()),
    );
    let recipe = base_recipe(
        &debian.suite,
        &inputs.base_sources,
        &package_pin::apply(&packages, &inputs.pins),
    );
    match BaseTree::ensure(cache, &recipe) {
        Err(err) if !inputs.pins.is_empty() => Err(anyhow::Error::from(err).context(format!(
            "{}: debian.pin asks apt for exact versions; a mirror keeps only the newest of \
             each suite (see docs/config.md)",
            loaded.path.display()
        ))),
        base => Ok(base?),
    }
}

/// The image's root, ready to be packed.
#[derive(Debug)]
pub struct RootTree {
    pub path: PathBuf,
    /// The SBOM: every installed package with its version.
    pub packages: Vec<Package>,
    pub pruning: ModulePruning,
    pub firmware: crate::root::firmware::FirmwareReport,
}

impl RootTree {
    /// Copies the base tree to `work/rootfs` and puts this image into it.
    pub fn customize(
        inputs: &BuildInputs,
        options: &BuildOptions,
        base: &BaseTree,
        work: &Path,
        boot_trust: Option<stick_manifest::boot_trust::BootTrustPolicy>,
    ) -> Result<RootTree> {
        let loaded = &inputs.loaded;
        let config = &loaded.config;
        let path = work.join("rootfs");
        Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(&base.root)
            .arg(&path)
            .run_logged()?;
        let public_pem = stick_manifest::key_pair_to_pem(&inputs.signing_key).1;
        customize(
            &path,
            &Customization {
                overlays: &options.overlays,
                kiosk_binary: &options.kiosk_binary,
                manifest_public_key_pem: &public_pem,
                image_id: &config.image.name,
                image_version: &config.image.version,
                policy: &stick_manifest::KioskPolicy {
                    require_secure_boot: config.kiosk.require_secure_boot,
                    min_rollback_index: config.kiosk.min_rollback_index,
                    language: config.kiosk.language,
                    network: loaded.network.clone(),
                    session: loaded.session.clone(),
                    boot_trust,
                },
                usb_allow: &usb_allow(config, loaded.network.as_ref()),
            },
        )?;
        crate::root::network::install(
            &path,
            loaded,
            loaded.network.as_ref(),
            &inputs.vpn_credentials,
        )?;
        let lab_access_point = config
            .network
            .wifi
            .as_ref()
            .and_then(|w| w.lab_access_point.as_ref());
        crate::root::wifi::install(&path, loaded.network.as_ref(), lab_access_point)?;
        if let Some(session) = &loaded.session {
            crate::root::session::install(&path, session, &inputs.conference_trust)?;
            if loaded.network.as_ref().is_some_and(|n| n.portal.is_some()) {
                crate::root::session::install_portal(&path)?;
            }
        }
        // The SBOM is read before anything is removed: it lists what was installed.
        let packages = crate::trees::packages::installed_packages(&path)
            .with_context(|| format!("cannot read the package list of {}", path.display()))?;
        let pruning = prune_modules(&path, &base.kernel_version)?;
        let firmware = crate::root::firmware::prune(&path, &base.kernel_version)?;
        // The stick's language, and English (the fallback of every program).
        let languages = [config.kiosk.language.code(), "en"];
        let diet = crate::root::diet::apply(&path, &languages)?;
        crate::root::hwdb::rebuild(&path)?;
        tracing::info!(
            "diet: {:.1} MiB left out in all",
            diet.iter().map(|s| s.bytes).sum::<u64>() as f64 / (1024.0 * 1024.0)
        );
        drop_privileges(&path)?;
        // Last: every step before may still read dpkg's database.
        crate::root::package_manager::remove(&path)?;
        check_pins(&loaded.path, &packages, &inputs.pins)?;
        tracing::info!(
            "{} packages; {} (all with versions in the manifest's `packages`)",
            packages.len(),
            package_pin::headline(&packages)
        );
        Ok(RootTree {
            path,
            packages,
            pruning,
            firmware,
        })
    }
}

/// Fails unless the tree holds every pinned version.
fn check_pins(config_path: &Path, packages: &[Package], pins: &[PackagePin]) -> Result<()> {
    let unmet = package_pin::unmet(packages, pins);
    if unmet.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unmet
        .iter()
        .map(|(pin, installed)| {
            format!(
                "{} (installed: {})",
                pin.apt_spec(),
                installed.as_deref().unwrap_or("none")
            )
        })
        .collect();
    anyhow::bail!(
        "{}: debian.pin: the tree does not hold {}",
        config_path.display(),
        list.join(", ")
    )
}

/// The config's USB classes, plus smart-card readers when the identity is on a
/// token.
fn usb_allow(
    config: &crate::config::Config,
    network: Option<&stick_manifest::network::NetworkPolicy>,
) -> Vec<crate::config::usb::UsbClass> {
    use crate::config::usb::UsbClass;
    let mut classes = config.usb.allow_classes.clone();
    if network.is_some_and(|n| n.token_key_id.is_some()) && !classes.contains(&UsbClass::SmartCard)
    {
        classes.push(UsbClass::SmartCard);
    }
    classes
}

/// The smart-card stack for a token: the PC/SC daemon, the USB CCID reader
/// driver, OpenSC's PKCS#11 module and its tools (the kiosk asks the token
/// whether a card is there and what its PIN counter says).
pub const TOKEN_PACKAGES: &[&str] = &["pcscd", "libccid", "opensc", "opensc-pkcs11"];

/// The config's extra packages, plus the browser stack when the image has a
/// session, plus charon's plugins for a user factor (and the smart-card stack
/// for a token), plus iwd and the Wi-Fi firmware (`wifi`: the families).
fn packages_to_add(
    extra: &[String],
    session: bool,
    plugin_sets: &[crate::root::charon_plugins::PluginSet],
    token: bool,
    wifi: Option<&[crate::config::wifi::FirmwareFamily]>,
) -> Vec<String> {
    let mut packages = extra.to_vec();
    if let Some(families) = wifi {
        packages.extend(crate::root::wifi::PACKAGES.iter().map(|p| p.to_string()));
        let firmware = families.iter().flat_map(|f| f.packages());
        packages.extend(firmware.map(|p| p.to_string()));
    }
    for set in plugin_sets {
        packages.extend(set.packages.iter().map(|p| p.to_string()));
    }
    if token {
        packages.extend(TOKEN_PACKAGES.iter().map(|p| p.to_string()));
    }
    if session {
        packages.extend(
            crate::config::conference::SESSION_PACKAGES
                .iter()
                .map(|p| p.to_string()),
        );
    }
    packages
}
