//! Puts the network into the tree: the egress policy (always), and for a `[vpn]`
//! the uplink, the tunnel, its credentials and the resolvers.
//!
//! Credential files are checked before anything is written: each error names the
//! config key, the file and what was expected.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use stick_manifest::network::{NetworkPolicy, CHECK_CA_PATH, RELAY_CA_PATH};

use crate::config::LoadedConfig;
use crate::root::tunnel_config as tc;
use crate::runner::CommandRunExt;

/// A credential file read from the admin's disk, with the key that named it.
#[derive(Debug)]
pub(crate) struct Credential {
    pub(crate) key: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) bytes: Vec<u8>,
}

impl Credential {
    pub(crate) fn read(
        loaded: &LoadedConfig,
        key: &'static str,
        relative: &Path,
    ) -> Result<Credential> {
        let path = loaded.resolve(relative);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read {} (key `{key}` in {})",
                path.display(),
                loaded.path.display()
            )
        })?;
        Ok(Credential { key, path, bytes })
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} (key `{}`)", self.path.display(), self.key)
    }

    fn expect_pem(&self, label: &str, what: &str) -> Result<()> {
        let text = String::from_utf8_lossy(&self.bytes);
        if !text.contains(&format!("-----BEGIN {label}")) {
            bail!(
                "{} is not {what} (no `-----BEGIN {label}` block)",
                self.describe()
            );
        }
        Ok(())
    }
}

/// The credentials a `[vpn]` names, checked.
#[derive(Debug, Default)]
pub struct VpnCredentials {
    ipsec_ca: Option<Credential>,
    /// TEST images only: the stick's certificate and key, in the image.
    ipsec_client: Option<[Credential; 2]>,
    /// TEST images only: the stick's WireGuard key, in the image.
    wireguard_key: Option<Credential>,
    check_ca: Option<Credential>,
    /// The CA the relay's certificate must chain to.
    relay_ca: Option<Credential>,
}

impl VpnCredentials {
    /// Reads and checks every credential file the config names.
    pub fn load(loaded: &LoadedConfig) -> Result<VpnCredentials> {
        let Some(vpn) = &loaded.config.vpn else {
            return Ok(VpnCredentials::default());
        };
        let mut credentials = VpnCredentials::default();
        if let Some(ipsec) = &vpn.ipsec {
            let ca = Credential::read(loaded, "vpn.ipsec.gateway-ca", &ipsec.gateway_ca)?;
            ca.expect_pem("CERTIFICATE", "a PEM certificate")?;
            credentials.ipsec_ca = Some(ca);
            let (Some(cert), Some(key)) = (&ipsec.client_cert, &ipsec.client_key) else {
                return credentials.with_check_ca(loaded);
            };
            let cert = Credential::read(loaded, "vpn.ipsec.client-cert", cert)?;
            cert.expect_pem("CERTIFICATE", "a PEM certificate")?;
            let key = Credential::read(loaded, "vpn.ipsec.client-key", key)?;
            // PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY, ENCRYPTED PRIVATE KEY.
            if !String::from_utf8_lossy(&key.bytes).contains("PRIVATE KEY-----") {
                bail!("{} is not a PEM private key", key.describe());
            }
            let cert_key = public_key_of("x509", &cert)?;
            let key_key = public_key_of("pkey", &key)?;
            if cert_key != key_key {
                bail!(
                    "{} does not belong to {}: the key's public half differs from the \
                     certificate's",
                    key.describe(),
                    cert.describe()
                );
            }
            credentials.ipsec_client = Some([cert, key]);
        }
        if let Some(path) = vpn.wireguard.as_ref().and_then(|w| w.private_key.as_ref()) {
            let key = Credential::read(loaded, "vpn.wireguard.private-key", path)?;
            let text = String::from_utf8_lossy(&key.bytes);
            if crate::config::wireguard_key::decode(&text).is_none() {
                bail!(
                    "{} is not a WireGuard private key: one line of 44 base64 characters, \
                     as `wg genkey` prints",
                    key.describe()
                );
            }
            credentials.wireguard_key = Some(key);
        }
        credentials.with_check_ca(loaded)
    }

    /// Adds `vpn.check-ca` and `vpn.relay.ca`, checked.
    fn with_check_ca(mut self, loaded: &LoadedConfig) -> Result<VpnCredentials> {
        let vpn = loaded.config.vpn.as_ref();
        if let Some(check_ca) = vpn.and_then(|v| v.check_ca.as_ref()) {
            let ca = Credential::read(loaded, "vpn.check-ca", check_ca)?;
            ca.expect_pem("CERTIFICATE", "a PEM certificate")?;
            self.check_ca = Some(ca);
        }
        if let Some(relay) = vpn.and_then(|v| v.relay.as_ref()) {
            let ca = Credential::read(loaded, "vpn.relay.ca", &relay.ca)?;
            ca.expect_pem("CERTIFICATE", "a PEM certificate")?;
            self.relay_ca = Some(ca);
        }
        Ok(self)
    }
}

/// The public key of a certificate (`x509`) or private key (`pkey`), as PEM.
fn public_key_of(kind: &str, credential: &Credential) -> Result<String> {
    public_key_pem(kind, &credential.path)
        .with_context(|| format!("openssl cannot read {}", credential.describe()))
}

/// The public key of the certificate (`x509`) or private key (`pkey`) at `path`, as PEM.
pub(crate) fn public_key_pem(kind: &str, path: &Path) -> Result<String> {
    let mut command = Command::new("openssl");
    command.arg(kind).arg("-in").arg(path);
    if kind == "x509" {
        command.args(["-noout", "-pubkey"]);
    } else {
        command.arg("-pubout");
    }
    Ok(command.run_capture()?)
}

/// Writes the egress policy and, with a `[vpn]`, everything the tunnel needs.
pub fn install(
    root: &Path,
    loaded: &LoadedConfig,
    policy: Option<&NetworkPolicy>,
    credentials: &VpnCredentials,
) -> Result<()> {
    write(
        root,
        crate::root::egress_policy::EGRESS_RULES_PATH,
        crate::root::egress_policy::render(policy).as_bytes(),
        0o644,
    )?;
    // Debian's DHCP-less default would otherwise point at nothing; ours names the
    // resolvers behind the tunnel, or none.
    let resolv = root.join("etc/resolv.conf");
    if resolv.is_symlink() {
        std::fs::remove_file(&resolv)
            .with_context(|| format!("cannot replace {}", resolv.display()))?;
    }
    write(
        root,
        "/etc/resolv.conf",
        tc::resolv_conf(policy).as_bytes(),
        0o644,
    )?;
    let vpn = loaded.config.vpn.as_ref();
    let ipsec = vpn.and_then(|v| v.ipsec.as_ref());
    if ipsec.is_none() {
        // charon has nothing to do on this image.
        mask(root, "strongswan.service")?;
    }
    let (Some(policy), Some(vpn)) = (policy, vpn) else {
        mask(root, "systemd-networkd.service")?;
        return Ok(());
    };
    write(
        root,
        tc::NETWORKD_CONF_PATH,
        tc::networkd_conf().as_bytes(),
        0o644,
    )?;
    write(
        root,
        tc::UPLINK_NETWORK_PATH,
        tc::uplink_network(policy.ipv6, tc::UplinkCard::Wired).as_bytes(),
        0o644,
    )?;

    if let (Some(ipsec), Some(ca)) = (ipsec, &credentials.ipsec_ca) {
        install_ipsec(root, policy, ipsec, ca, credentials.ipsec_client.as_ref())?;
    }
    if let Some(wireguard) = &vpn.wireguard {
        install_wireguard(root, policy, wireguard, credentials.wireguard_key.as_ref())?;
    }
    if let Some(ca) = &credentials.check_ca {
        write(root, CHECK_CA_PATH, &ca.bytes, 0o644)?;
    }
    if let Some(ca) = &credentials.relay_ca {
        write(root, RELAY_CA_PATH, &ca.bytes, 0o644)?;
    }
    Ok(())
}

/// The plugin sets a policy's user factor needs (none without one).
pub fn user_factor_plugins(policy: &NetworkPolicy) -> Vec<crate::root::charon_plugins::PluginSet> {
    use crate::root::charon_plugins::{PASSWORD_ROUND, TOKEN};
    let mut sets = Vec::new();
    if policy.user_password {
        sets.push(PASSWORD_ROUND);
    }
    if policy.token_key_id.is_some() {
        sets.push(TOKEN);
    }
    sets
}

/// charon's config, the gateway's CA, and in a TEST image the stick's
/// certificate and key (a personal stick's come from its own partition at boot).
fn install_ipsec(
    root: &Path,
    policy: &NetworkPolicy,
    ipsec: &crate::config::vpn::IpsecSection,
    ca: &Credential,
    client: Option<&[Credential; 2]>,
) -> Result<()> {
    write(
        root,
        tc::SWANCTL_CONF_PATH,
        tc::swanctl_conf(policy, ipsec).as_bytes(),
        0o600,
    )?;
    write(
        root,
        tc::CHARON_CONF_PATH,
        tc::charon_conf(policy.token_key_id.is_some()).as_bytes(),
        0o644,
    )?;
    write(
        root,
        &format!("/etc/swanctl/x509ca/{}", tc::IPSEC_GATEWAY_CA),
        &ca.bytes,
        0o644,
    )?;
    if policy.token_key_id.is_some() {
        write(
            root,
            tc::TOKEN_START_DROPIN_PATH,
            tc::token_start_dropin().as_bytes(),
            0o644,
        )?;
    }
    for set in user_factor_plugins(policy) {
        let removed = crate::root::charon_plugins::keep_only(root, set)?;
        tracing::info!(
            "charon's plugins for {}: kept {:?}, removed {} other plugins ({})",
            set.purpose,
            set.keep,
            removed.len(),
            removed.join(" ")
        );
    }
    let Some([cert, key]) = client else {
        return Ok(());
    };
    write(
        root,
        &format!("/etc/swanctl/x509/{}", tc::IPSEC_CLIENT_CERT),
        &cert.bytes,
        0o644,
    )?;
    write(
        root,
        &format!("/etc/swanctl/private/{}", tc::IPSEC_CLIENT_KEY),
        &key.bytes,
        0o600,
    )?;
    Ok(())
}

/// networkd's WireGuard device and network, and in a TEST image the key only
/// networkd may read (a personal stick's comes from its own partition at boot).
fn install_wireguard(
    root: &Path,
    policy: &NetworkPolicy,
    wireguard: &crate::config::vpn::WireguardSection,
    key: Option<&Credential>,
) -> Result<()> {
    write(
        root,
        tc::WIREGUARD_NETDEV_PATH,
        tc::wireguard_netdev(policy, wireguard).as_bytes(),
        0o644,
    )?;
    write(
        root,
        tc::WIREGUARD_NETWORK_PATH,
        tc::wireguard_network(policy, wireguard).as_bytes(),
        0o644,
    )?;
    let Some(key) = key else {
        return Ok(());
    };
    write(root, tc::WIREGUARD_KEY_PATH, &key.bytes, 0o640)?;
    // networkd reads the key as systemd-network.
    let gid = group_id(root, "systemd-network")?;
    let file = root.join(tc::WIREGUARD_KEY_PATH.trim_start_matches('/'));
    std::os::unix::fs::chown(&file, Some(0), Some(gid))
        .with_context(|| format!("cannot chown {}", file.display()))?;
    Ok(())
}

pub(crate) fn write(root: &Path, path: &str, bytes: &[u8], mode: u32) -> Result<()> {
    let file = root.join(path.trim_start_matches('/'));
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", file.display()))
}

/// Masks a unit in the tree (a link to /dev/null in /etc/systemd/system).
pub(crate) fn mask(root: &Path, unit: &str) -> Result<()> {
    let link = root.join("etc/systemd/system").join(unit);
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link)
            .with_context(|| format!("cannot replace {}", link.display()))?;
    }
    std::os::unix::fs::symlink("/dev/null", &link)
        .with_context(|| format!("cannot mask {unit} at {}", link.display()))
}

fn group_id(root: &Path, name: &str) -> Result<u32> {
    let path = root.join("etc/group");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_group_id(&text, name)
        .with_context(|| format!("group {name} not found in {}", path.display()))
}

fn parse_group_id(group_file: &str, name: &str) -> Option<u32> {
    group_file.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name))
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_come_from_the_tree() {
        let text = "root:x:0:\nsystemd-network:x:998:\nbad:x:y:\n";
        let cases = [
            ("root", Some(0)),
            ("systemd-network", Some(998)),
            ("bad", None),
            ("nope", None),
        ];
        for (name, want) in cases {
            assert_eq!(parse_group_id(text, name), want, "{name}");
        }
    }

    #[test]
    fn key_not_matching_certificate_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let make = |name: &str| {
            let key = dir.path().join(format!("{name}.key"));
            let cert = dir.path().join(format!("{name}.pem"));
            let status = Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                ])
                .arg(format!("/CN={name}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(status.success());
        };
        make("a");
        make("b");
        let config_path = dir.path().join("c.toml");
        let text = |key: &str| {
            format!(
                "[image]\nname = \"t\"\nversion = \"1\"\nrollback-index = 1\n[signing]\n\
                 manifest-key = \"k\"\n[vpn]\ngateway = \"198.51.100.1\"\n\
                 inner-networks = [\"10.99.0.0/24\"]\ntest-credential-in-image = true\n\
                 [vpn.ipsec]\ngateway-ca = \"a.pem\"\n\
                 gateway-id = \"gw\"\nclient-cert = \"a.pem\"\nclient-key = \"{key}\"\n"
            )
        };
        let cases: &[(&str, Option<&str>)] = &[
            ("a.key", None),
            ("b.key", Some("does not belong to")),
            ("a.pem", Some("is not a PEM private key")),
            ("missing.key", Some("cannot read")),
        ];
        for (key, want) in cases {
            std::fs::write(&config_path, text(key)).expect("write config");
            let loaded = LoadedConfig::load(&config_path).expect("config valid");
            let result = VpnCredentials::load(&loaded);
            match want {
                None => {
                    result.expect("matching key accepted");
                }
                Some(want) => {
                    let err = format!("{:#}", result.expect_err(key));
                    assert!(err.contains(want), "{key}: {err}");
                    assert!(err.contains("vpn.ipsec.client-key"), "{key}: {err}");
                }
            }
        }
    }
}
