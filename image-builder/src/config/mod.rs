//! The admin's TOML config: parsed from text by a pure function, then validated.
//!
//! Every error names the file, the key and what is allowed. The sections with
//! more to say live beside this file: `conference`, `vpn` (and `wireguard_key`),
//! `usb`, `package_pin`.

pub mod conference;
pub mod package_pin;
pub mod portal;
pub mod usb;
pub mod vpn;
pub mod wifi;
pub mod wireguard_key;

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    pub image: ImageSection,
    #[serde(default)]
    pub debian: DebianSection,
    pub signing: SigningSection,
    #[serde(default)]
    pub kernel: KernelSection,
    #[serde(default)]
    pub kiosk: KioskSection,
    #[serde(default)]
    pub usb: UsbSection,
    #[serde(default)]
    pub network: crate::config::vpn::NetworkSection,
    /// No `[vpn]`: the image has no network at all (every packet is dropped).
    #[serde(default)]
    pub vpn: Option<crate::config::vpn::VpnSection>,
    /// No `[conference]`: the image runs no browser.
    #[serde(default)]
    pub conference: Option<crate::config::conference::ConferenceSection>,
}

/// `[usb]`: which USB devices plugged in during a session get a driver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UsbSection {
    /// Interface classes allowed; a device needs all its interfaces in this list.
    #[serde(default = "crate::config::usb::default_allowed")]
    pub allow_classes: Vec<crate::config::usb::UsbClass>,
}

impl Default for UsbSection {
    fn default() -> Self {
        UsbSection {
            allow_classes: crate::config::usb::default_allowed(),
        }
    }
}

/// `[kiosk]`: policy the kiosk enforces at boot (baked into the verity root).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KioskSection {
    /// Refuse to start a session unless UEFI Secure Boot is on.
    #[serde(default = "default_true")]
    pub require_secure_boot: bool,
    /// Refuse to start a session on an image whose rollback index is lower.
    #[serde(default)]
    pub min_rollback_index: u64,
    /// The language of the stick's screens and indicator: `"de"` or `"en"`.
    #[serde(default)]
    pub language: stick_manifest::Language,
    /// Whether the UKI may be trusted through shim's MOK list (PCs that trust
    /// only Microsoft's keys): `"never"`, `"only-ours"` or `"any"`.
    #[serde(default)]
    pub accept_mok: stick_manifest::boot_trust::AcceptMok,
}

impl Default for KioskSection {
    fn default() -> Self {
        KioskSection {
            require_secure_boot: true,
            min_rollback_index: 0,
            language: stick_manifest::Language::De,
            accept_mok: stick_manifest::boot_trust::AcceptMok::Never,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `[image]`: what the image is called and which version it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageSection {
    /// Lowercase letters, digits and `-`; becomes the file name and `IMAGE_ID`.
    pub name: String,
    /// Letters, digits and `.+~-`; becomes `IMAGE_VERSION`.
    pub version: String,
    /// Monotonic counter for anti-rollback; raise it with every security fix.
    pub rollback_index: u64,
}

/// `[debian]`: where the root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DebianSection {
    #[serde(default = "default_suite")]
    pub suite: String,
    /// Mirror URL; when absent, taken from the host's apt sources.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Security mirror URL; when absent, taken from the host's apt sources if any.
    #[serde(default)]
    pub security_mirror: Option<String>,
    /// Packages added to the image on top of what the builder needs.
    #[serde(default)]
    pub extra_packages: Vec<String>,
    /// Exact versions (`name=version`) the image must be built with; the build
    /// fails when the tree holds another version.
    #[serde(default)]
    pub pin: Vec<String>,
}

impl DebianSection {
    /// The `pin` entries, parsed (validated by [`Config::validate`]).
    pub fn pins(
        &self,
    ) -> Result<Vec<crate::config::package_pin::PackagePin>, (&'static str, String)> {
        self.pin
            .iter()
            .map(|entry| {
                crate::config::package_pin::PackagePin::parse(entry)
                    .map_err(|err| ("debian.pin", err.to_string()))
            })
            .collect()
    }
}

impl Default for DebianSection {
    fn default() -> Self {
        DebianSection {
            suite: default_suite(),
            mirror: None,
            security_mirror: None,
            extra_packages: Vec::new(),
            pin: Vec::new(),
        }
    }
}

fn default_suite() -> String {
    "trixie".to_string()
}

/// `[signing]`: keys used to sign what the build produces.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SigningSection {
    /// ed25519 private key (PKCS#8 PEM), relative to the config file.
    pub manifest_key: PathBuf,
    /// Secure Boot db private key (PEM); the UKI is signed with it.
    #[serde(default)]
    pub secure_boot_key: Option<PathBuf>,
    /// Secure Boot db certificate (PEM) matching `secure-boot-key`.
    #[serde(default)]
    pub secure_boot_cert: Option<PathBuf>,
    /// Put Debian's Microsoft-signed shim in front of the UKI (also signed with
    /// the db key), with MokManager and the db certificate for the one-time
    /// enrolment: the stick then boots on PCs that trust only Microsoft's keys.
    #[serde(default)]
    pub shim: bool,
}

/// `[kernel]`: additions to the kernel command line inside the signed UKI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KernelSection {
    #[serde(default)]
    pub extra_cmdline: Vec<String>,
}

impl KernelSection {
    /// Each extra is one argument, and none takes over what the builder sets:
    /// the root, its hash, the init programs and the closing `--`.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        for arg in &self.extra_cmdline {
            if arg.is_empty() || arg.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err((
                    "kernel.extra-cmdline",
                    format!("{arg:?}: each entry is one argument without spaces"),
                ));
            }
            if arg == "--" || arg.starts_with("init=") || arg.starts_with("rdinit=") {
                return Err((
                    "kernel.extra-cmdline",
                    format!(
                        "{arg:?}: the builder ends the command line with `--` and keeps \
                     the initrd's own init (see docs/threat-model.md)"
                    ),
                ));
            }
            if arg.starts_with("roothash=") || arg.starts_with("root=") {
                return Err((
                    "kernel.extra-cmdline",
                    format!("{arg:?}: the root device and root hash are set by the builder"),
                ));
            }
        }
        Ok(())
    }
}

/// A config that could not be read or is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// A config together with where it came from (paths inside resolve against its folder).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
    /// The file's bytes, hashed into the manifest.
    pub raw: Vec<u8>,
    /// The kiosk's network policy derived from `[network]`/`[vpn]`; `None`: no network.
    pub network: Option<stick_manifest::network::NetworkPolicy>,
    /// The kiosk's session policy derived from `[conference]`; `None`: no browser.
    pub session: Option<stick_manifest::session::SessionPolicy>,
}

impl LoadedConfig {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let raw = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(raw.clone()).map_err(|_| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: "file is not UTF-8 text".into(),
        })?;
        let config = Config::parse(&text).map_err(|message| ConfigError::Syntax {
            path: path.to_path_buf(),
            message,
        })?;
        let invalid = |(key, message)| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        config.validate().map_err(invalid)?;
        let network = config.network_policy().map_err(invalid)?;
        if network.as_ref().is_some_and(|n| n.user_password) && config.conference.is_none() {
            return Err(invalid((
                "vpn.ipsec.user-password",
                "needs a [conference]: the person types the password on the stick's screen, \
                 which only an image with the conference session has"
                    .into(),
            )));
        }
        if network.as_ref().is_some_and(|n| n.portal.is_some()) && config.conference.is_none() {
            return Err(invalid((
                "network.portal",
                "needs a [conference]: the sign-in page opens from the stick's screen, \
                 which only an image with the conference session has"
                    .into(),
            )));
        }
        if network.as_ref().is_some_and(|n| n.token_key_id.is_some()) && config.conference.is_none()
        {
            return Err(invalid((
                "vpn.ipsec.token-key-id",
                "needs a [conference]: the person types the token's PIN on the stick's \
                 screen, which only an image with the conference session has"
                    .into(),
            )));
        }
        let session = config
            .conference
            .as_ref()
            .map(|c| c.policy(network.as_ref()))
            .transpose()
            .map_err(invalid)?;
        Ok(LoadedConfig {
            path: path.to_path_buf(),
            config,
            raw,
            network,
            session,
        })
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        if relative.is_absolute() {
            return relative.to_path_buf();
        }
        self.path.parent().unwrap_or(Path::new(".")).join(relative)
    }
}

impl Config {
    /// Parses TOML text; the error text carries line, column and the offending key.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Checks values serde cannot; returns the dotted key and what is allowed.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let name = &self.image.name;
        if name.is_empty()
            || name.len() > 40
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || name.starts_with('-')
        {
            return Err((
                "image.name",
                format!(
                    "{name:?} is not allowed: use 1-40 lowercase letters, digits and `-`, \
                     not starting with `-`"
                ),
            ));
        }
        let version = &self.image.version;
        if version.is_empty()
            || version.len() > 40
            || !version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~-".contains(c))
            || !version.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err((
                "image.version",
                format!(
                    "{version:?} is not allowed: use 1-40 letters, digits and `.+~-`, \
                     starting with a letter or digit"
                ),
            ));
        }
        if self.signing.secure_boot_key.is_some() != self.signing.secure_boot_cert.is_some() {
            return Err((
                "signing.secure-boot-key",
                "set both `secure-boot-key` and `secure-boot-cert`, or neither (unsigned UKI)"
                    .to_string(),
            ));
        }
        self.check_shim()?;
        let suite = &self.debian.suite;
        if suite.is_empty() || !suite.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return Err((
                "debian.suite",
                format!("{suite:?} is not a Debian suite name such as \"trixie\""),
            ));
        }
        for (key, url) in [
            ("debian.mirror", &self.debian.mirror),
            ("debian.security-mirror", &self.debian.security_mirror),
        ] {
            if let Some(url) = url {
                if !is_mirror_url(url) {
                    return Err((
                        key,
                        format!("{url:?} is not a mirror URL: use http://, https:// or file:///"),
                    ));
                }
            }
        }
        for package in &self.debian.extra_packages {
            if !is_debian_package_name(package) {
                return Err((
                    "debian.extra-packages",
                    format!(
                        "{package:?} is not a Debian package name (lowercase letters, digits, \
                         `+-.`, at least 2 characters, starting with a letter or digit)"
                    ),
                ));
            }
        }
        self.debian.pins()?;
        self.kernel.validate()?;
        if self.network.ipv6 && self.vpn.is_none() {
            return Err((
                "network.ipv6",
                "IPv6 on the uplink needs a [vpn] section: without one the image has no network"
                    .to_string(),
            ));
        }
        self.network_policy()?;
        Ok(())
    }

    /// Shim needs the db key (it is signed with it too), and trust through the
    /// MOK list is possible only with shim on the stick.
    fn check_shim(&self) -> Result<(), (&'static str, String)> {
        if self.signing.shim && self.signing.secure_boot_key.is_none() {
            return Err((
                "signing.shim",
                "needs `secure-boot-key` and `secure-boot-cert`: shim is signed with the db key \
                 too, and the MOK to enrol is its certificate"
                    .to_string(),
            ));
        }
        let accept = self.kiosk.accept_mok;
        if accept != stick_manifest::boot_trust::AcceptMok::Never && !self.signing.shim {
            return Err((
                "kiosk.accept-mok",
                format!(
                    "{:?} needs `shim = true` in [signing]: without shim nothing on the stick \
                     reads the MOK list (allowed without shim: \"never\")",
                    accept.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// The Wi-Fi firmware the image carries (none without `[network.wifi]`).
    pub fn wifi_firmware(&self) -> &[crate::config::wifi::FirmwareFamily] {
        self.network
            .wifi
            .as_ref()
            .map_or(&[], |wifi| wifi.firmware.as_slice())
    }

    /// The kiosk's network policy, `None` for an image without network.
    pub fn network_policy(
        &self,
    ) -> Result<Option<stick_manifest::network::NetworkPolicy>, (&'static str, String)> {
        for (key, present) in [
            ("network.portal", self.network.portal.is_some()),
            ("network.wifi", self.network.wifi.is_some()),
        ] {
            if self.vpn.is_none() && present {
                return Err((
                    key,
                    "needs a [vpn]: without one the stick starts no network at all".into(),
                ));
            }
        }
        let Some(vpn) = &self.vpn else {
            return Ok(None);
        };
        let mut policy = vpn.policy(&self.network)?;
        policy.wifi = self
            .network
            .wifi
            .as_ref()
            .map(|wifi| wifi.policy(&self.debian.extra_packages))
            .transpose()?;
        Ok(Some(policy))
    }
}

fn is_mirror_url(url: &str) -> bool {
    ["http://", "https://", "file:///"]
        .iter()
        .any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
        && !url.chars().any(char::is_whitespace)
}

pub(crate) fn is_debian_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[image]
name = "demo"
version = "1.0.0"
rollback-index = 1

[signing]
manifest-key = "../keys/test-manifest-signing.key"
"#;

    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = Config::parse(GOOD).expect("parses");
        config.validate().expect("valid");
        assert_eq!(config.image.name, "demo");
        assert_eq!(config.debian.suite, "trixie");
        assert_eq!(config.debian.mirror, None);
        assert!(config.kernel.extra_cmdline.is_empty());
    }

    #[test]
    fn syntax_errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "unknown key",
                "[image]\nname = \"d\"\nversion = \"1\"\nrollback-index = 1\ncolour = 3\n[signing]\nmanifest-key = \"k\"\n",
                "unknown field `colour`",
            ),
            (
                "missing key",
                "[image]\nname = \"d\"\nversion = \"1\"\n[signing]\nmanifest-key = \"k\"\n",
                "missing field `rollback-index`",
            ),
            (
                "wrong type",
                "[image]\nname = \"d\"\nversion = \"1\"\nrollback-index = \"one\"\n[signing]\nmanifest-key = \"k\"\n",
                "invalid type: string \"one\", expected u64",
            ),
            (
                "missing section",
                "[image]\nname = \"d\"\nversion = \"1\"\nrollback-index = 1\n",
                "missing field `signing`",
            ),
            (
                "unknown section",
                "[image]\nname = \"d\"\nversion = \"1\"\nrollback-index = 1\n[signing]\nmanifest-key = \"k\"\n[browser]\n",
                "unknown field `browser`",
            ),
        ];
        for (name, text, want) in cases {
            let err = Config::parse(text).expect_err(name);
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains("line"), "{name}: error has no position: {err}");
        }
    }

    #[test]
    fn invalid_values_name_key_and_what_is_allowed() {
        let cases: &[(&str, &str, &str)] = &[
            ("name = \"demo\"", "name = \"Demo Stick\"", "image.name"),
            ("name = \"demo\"", "name = \"\"", "image.name"),
            ("version = \"1.0.0\"", "version = \"1 0\"", "image.version"),
            ("version = \"1.0.0\"", "version = \".1\"", "image.version"),
        ];
        for (from, to, key) in cases {
            let config = Config::parse(&GOOD.replace(from, to)).expect("parses");
            let (got, message) = config.validate().expect_err(to);
            assert_eq!(got, *key, "{to}: {message}");
            assert!(message.contains("use "), "{to}: {message}");
        }
        let extra: &[(&str, &str)] = &[
            ("[debian]\nsuite = \"Trixie\"\n", "debian.suite"),
            ("[debian]\nmirror = \"ftp://x\"\n", "debian.mirror"),
            (
                "[debian]\nsecurity-mirror = \"x\"\n",
                "debian.security-mirror",
            ),
            (
                "[debian]\nextra-packages = [\"Vim\"]\n",
                "debian.extra-packages",
            ),
            ("[debian]\npin = [\"chromium\"]\n", "debian.pin"),
            ("[debian]\npin = [\"chromium=newest\"]\n", "debian.pin"),
            (
                "[kernel]\nextra-cmdline = [\"a b\"]\n",
                "kernel.extra-cmdline",
            ),
            (
                "[kernel]\nextra-cmdline = [\"roothash=00\"]\n",
                "kernel.extra-cmdline",
            ),
            ("[kernel]\nextra-cmdline = [\"--\"]\n", "kernel.extra-cmdline"),
            (
                "[kernel]\nextra-cmdline = [\"rdinit=/bin/sh\"]\n",
                "kernel.extra-cmdline",
            ), // appended to [signing], the last table of GOOD
            ("secure-boot-key = \"db.key\"\n", "signing.secure-boot-key"),
            ("shim = true\n", "signing.shim"),
            ("[kiosk]\naccept-mok = \"only-ours\"\n", "kiosk.accept-mok"),
            ("[kiosk]\naccept-mok = \"any\"\n", "kiosk.accept-mok"),
            ("[network]\nipv6 = true\n", "network.ipv6"),
            (
                "[vpn]\ngateway = \"198.51.100.1\"\ninner-networks = [\"10.99.0.0/24\"]\n",
                "vpn",
            ),
            (
                "[vpn]\ngateway = \"vpn.example.org\"\ninner-networks = [\"10.99.0.0/24\"]\n[vpn.wireguard]\ngateway-public-key = \"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\"\nprivate-key = \"k\"\naddress = \"10.99.1.2/32\"\n",
                "vpn.gateway",
            ),
        ];
        for (section, key) in extra {
            let config = Config::parse(&format!("{GOOD}{section}")).expect("parses");
            let (got, _) = config.validate().expect_err(section);
            assert_eq!(got, *key, "{section}");
        }
    }

    #[test]
    fn shim_and_mok_trust_go_together() {
        let signed = "secure-boot-key = \"db.key\"\nsecure-boot-cert = \"db.crt\"\n";
        let cases = [
            ("", "never", true),
            ("shim = true\n", "never", true),
            ("shim = true\n", "only-ours", true),
            ("shim = true\n", "any", true),
            ("", "only-ours", false),
        ];
        for (shim, accept, valid) in cases {
            let text = format!("{GOOD}{signed}{shim}[kiosk]\naccept-mok = \"{accept}\"\n");
            let config = Config::parse(&text).expect("parses");
            assert_eq!(config.validate().is_ok(), valid, "{text}");
            assert_eq!(config.kiosk.accept_mok.as_str(), accept);
        }
        let unknown = format!("{GOOD}[kiosk]\naccept-mok = \"sometimes\"\n");
        let err = Config::parse(&unknown).expect_err("unknown variant");
        assert!(err.contains("only-ours"), "{err}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("absent.toml");
        let err = LoadedConfig::load(&missing).expect_err("missing file");
        assert!(err
            .to_string()
            .starts_with(&format!("cannot read config {}", missing.display())));

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, GOOD.replace("name = \"demo\"", "name = \"a b\"")).expect("write");
        let err = LoadedConfig::load(&bad).expect_err("invalid");
        assert!(
            err.to_string()
                .starts_with(&format!("config {}: key `image.name`", bad.display())),
            "{err}"
        );

        let good = dir.path().join("good.toml");
        std::fs::write(&good, GOOD).expect("write");
        let loaded = LoadedConfig::load(&good).expect("loads");
        assert_eq!(
            loaded.resolve(&loaded.config.signing.manifest_key),
            dir.path().join("../keys/test-manifest-signing.key")
        );
    }
}
