//! The first stage: everything a build needs, read and checked before any tree is
//! made, so that a wrong path or key fails in a second, not after minutes.

use std::path::Path;

use anyhow::{bail, Context, Result};
use stick_manifest::ManifestSigningKey;

use crate::build::BuildOptions;
use crate::config::package_pin::PackagePin;
use crate::config::LoadedConfig;
use crate::root::network::VpnCredentials;
use crate::root::session::ConferenceTrust;
use crate::runner::require_tool;
use crate::trees::mirror::{host_mirrors, Mirrors};

/// The checked inputs of one build.
#[derive(Debug)]
pub struct BuildInputs {
    pub loaded: LoadedConfig,
    pub signing_key: ManifestSigningKey,
    pub vpn_credentials: VpnCredentials,
    pub conference_trust: ConferenceTrust,
    pub pins: Vec<PackagePin>,
    /// apt source lines for mmdebstrap: the config's mirror, else the host's.
    pub sources: Vec<String>,
    /// The same with `non-free-firmware` where the image carries Wi-Fi firmware
    /// (for the base tree only: the tools tree needs none, and stays shared).
    pub base_sources: Vec<String>,
    /// The manifest's build time: SOURCE_DATE_EPOCH, else now.
    pub build_time: u64,
    /// File times inside the root, fixed so that equal inputs give equal bytes.
    pub fs_time: u64,
}

impl BuildInputs {
    /// Reads the config and its keys, checks the host's tools and the given paths.
    pub fn check(options: &BuildOptions) -> Result<BuildInputs> {
        let loaded = LoadedConfig::load(&options.config)?;
        let config = &loaded.config;
        let signing_key = load_signing_key(&loaded)?;
        let vpn_credentials = VpnCredentials::load(&loaded)?;
        let conference_trust = ConferenceTrust::load(&loaded)?;
        if loaded.session.as_ref().is_some_and(|s| s.fake_capture) {
            tracing::warn!(
                "conference.test-fake-capture: the browser gets a fake camera and microphone; \
                 this image is for testing only and says so on screen"
            );
        }
        if loaded
            .session
            .as_ref()
            .is_some_and(|s| s.test_virtual_camera)
        {
            tracing::warn!(
                "conference.test-virtual-camera: the kernel's virtual camera (vivid) is loaded; \
                 this image is for testing only and says so on screen"
            );
        }
        check_host(options)?;
        let mirrors = match &config.debian.mirror {
            Some(main) => Mirrors {
                main: main.clone(),
                security: config.debian.security_mirror.clone(),
            },
            None => host_mirrors(Path::new("/etc/apt"))?,
        };
        let sources = mirrors.source_lines(&config.debian.suite, false);
        let base_sources =
            mirrors.source_lines(&config.debian.suite, !config.wifi_firmware().is_empty());
        let pins = config
            .debian
            .pins()
            .map_err(|(key, message)| anyhow::anyhow!("{key}: {message}"))?;
        let build_time = options.source_date_epoch.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        Ok(BuildInputs {
            loaded,
            signing_key,
            vpn_credentials,
            conference_trust,
            pins,
            sources,
            base_sources,
            build_time,
            fs_time: options.source_date_epoch.unwrap_or(0),
        })
    }
}

/// The host's tools, the kiosk binary, the overlays and the output folder.
fn check_host(options: &BuildOptions) -> Result<()> {
    for (tool, package) in [
        ("mmdebstrap", "mmdebstrap"),
        ("unshare", "util-linux"),
        ("chroot", "coreutils"),
        ("cp", "coreutils"),
    ] {
        require_tool(tool, package)?;
    }
    if !options.kiosk_binary.is_file() {
        bail!(
            "kiosk binary {} not found; build it with `cargo build --release -p kiosk` \
             or name it with --kiosk",
            options.kiosk_binary.display()
        );
    }
    if !options.overlays.is_dir() {
        bail!(
            "overlay folder {} not found (--overlays)",
            options.overlays.display()
        );
    }
    std::fs::create_dir_all(&options.output_dir).with_context(|| {
        format!(
            "cannot create output folder {}",
            options.output_dir.display()
        )
    })
}

/// Reads the manifest signing key named by the config.
pub fn load_signing_key(loaded: &LoadedConfig) -> Result<ManifestSigningKey> {
    let path = loaded.resolve(&loaded.config.signing.manifest_key);
    let pem = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read the manifest signing key {} (key `signing.manifest-key` in {}); \
             create one with `image-builder keygen`",
            path.display(),
            loaded.path.display()
        )
    })?;
    stick_manifest::signing_key_from_pem(&pem).with_context(|| {
        format!(
            "{} (key `signing.manifest-key` in {}) is not an ed25519 private key",
            path.display(),
            loaded.path.display()
        )
    })
}
