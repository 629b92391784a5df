//! A personal stick's own credential: read from the credential partition of the
//! disk the root was verified through (never from another disk of the PC), and
//! put where the tunnel's tools look, before they start. The files live in RAM
//! (the root's writable layer) and go with the power.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use stick_manifest::network::{NetworkPolicy, TunnelKind, IPSEC_CONNECTION, RELAY_CONNECTION};
use stick_manifest::personal::{
    CredentialError, PersonalTunnel, StickCredential, HEADER_BYTES, IPSEC_CERT_PATH,
    IPSEC_KEY_PATH, IPSEC_USER_DROPIN, IWD_STATE_DIR, MAX_DOCUMENT, PERSONAL_TYPE_UUID,
    WIREGUARD_ADDRESS_DROPIN, WIREGUARD_KEY_PATH,
};

/// The header before the document (mark, length, checksum) plus the longest document.
const READ_BYTES: usize = HEADER_BYTES + MAX_DOCUMENT;

/// Where a credential was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub stick_id: String,
    pub partition: PathBuf,
    /// The person's own Wi-Fi networks given to iwd.
    pub wifi_networks: usize,
}

/// Set when the stick carries no credential at all: it was never personalised
/// (the session shows its screen for that).
static NEVER_PERSONALISED: AtomicBool = AtomicBool::new(false);

/// Whether [`install`] found no credential on the stick at all.
pub fn never_personalised() -> bool {
    NEVER_PERSONALISED.load(Ordering::SeqCst)
}

/// Finds this stick's credential and installs it for `policy`'s tunnel.
pub fn install(policy: &NetworkPolicy) -> Result<Installed> {
    let sys_block = Path::new("/sys/class/block");
    let stick_disks = crate::boot::device_mapper::verity_root_disks(sys_block);
    let found = find_partition(sys_block, Path::new("/dev"), &stick_disks);
    let never = |err: anyhow::Error| {
        NEVER_PERSONALISED.store(true, Ordering::SeqCst);
        err
    };
    let partition = found.map_err(|err| match err {
        Missing::NoPartition(err) => never(err),
        Missing::Unreadable(err) => err,
    })?;
    let bytes = read_start(&partition)?;
    let credential = match StickCredential::decode(&bytes) {
        Err(CredentialError::NoMagic) => {
            return Err(never(anyhow::anyhow!(
                "this stick was never personalised: {} holds no credential \
                 (`image-builder personalize` writes one)",
                partition.display()
            )))
        }
        decoded => decoded.with_context(|| format!("the credential on {}", partition.display()))?,
    };
    let has_user = matches!(
        &credential.tunnel,
        PersonalTunnel::Ipsec { user: Some(_), .. }
    );
    if policy.user_password && !has_user {
        bail!(
            "the credential on {} names no user, but this image's gateway checks a user \
             password: personalise the stick again with --user",
            partition.display()
        );
    }
    put(&credential, policy)?;
    Ok(Installed {
        wifi_networks: if policy.wifi.is_some() {
            credential.wifi.len()
        } else {
            0
        },
        stick_id: credential.stick_id,
        partition,
    })
}

/// Why no credential partition was found.
enum Missing {
    /// The stick has none: it was never personalised.
    NoPartition(anyhow::Error),
    /// The stick or its partition table could not be read.
    Unreadable(anyhow::Error),
}

/// The credential partition on one of `stick_disks` (the disks under the
/// verified root).
fn find_partition(
    sys_block: &Path,
    dev_dir: &Path,
    stick_disks: &[String],
) -> Result<PathBuf, Missing> {
    if stick_disks.is_empty() {
        return Err(Missing::Unreadable(anyhow::anyhow!(
            "no disk under the verity root: the stick is unknown, no credential is read"
        )));
    }
    for disk in stick_disks {
        let entries = crate::boot::gpt::read_disk_entries(sys_block, dev_dir, disk)
            .context("reading the GPT of the stick")
            .map_err(Missing::Unreadable)?;
        let Some(entry) = entries.iter().find(|e| e.type_uuid == PERSONAL_TYPE_UUID) else {
            continue;
        };
        let name = crate::sysfs::partition_name(sys_block, disk, entry.number)
            .with_context(|| format!("{disk} has no partition {} in sysfs", entry.number))
            .map_err(Missing::Unreadable)?;
        return Ok(dev_dir.join(name));
    }
    Err(Missing::NoPartition(anyhow::anyhow!(
        "this stick was never personalised: no credential partition on {} \
         (`image-builder personalize` adds one)",
        stick_disks.join(", ")
    )))
}

fn read_start(partition: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(partition)
        .with_context(|| format!("cannot open {}", partition.display()))?;
    let mut bytes = Vec::with_capacity(READ_BYTES);
    file.take(READ_BYTES as u64)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", partition.display()))?;
    Ok(bytes)
}

/// Gives iwd the person's own Wi-Fi networks (in RAM: /var/lib/iwd is on the
/// volatile overlay), each readable by root only; iwd picks new files up itself.
/// A stick whose image has no Wi-Fi leaves them unused.
fn put_wifi_presets(credential: &StickCredential, policy: &NetworkPolicy) -> Result<()> {
    if policy.wifi.is_none() {
        if !credential.wifi.is_empty() {
            tracing::warn!("the credential names Wi-Fi networks; this image has no Wi-Fi");
        }
        return Ok(());
    }
    for preset in &credential.wifi {
        let path = format!("{IWD_STATE_DIR}/{}", preset.iwd_file_name());
        write(&path, preset.iwd_file().as_bytes(), 0o600, None)?;
    }
    Ok(())
}

/// Writes the credential's files for `policy`'s tunnel, and its Wi-Fi networks.
fn put(credential: &StickCredential, policy: &NetworkPolicy) -> Result<()> {
    put_wifi_presets(credential, policy)?;
    match (&credential.tunnel, policy.tunnel) {
        (
            PersonalTunnel::Ipsec {
                certificate,
                key,
                user,
            },
            TunnelKind::Ipsec,
        ) => {
            write(IPSEC_CERT_PATH, certificate.as_bytes(), 0o644, None)?;
            write(IPSEC_KEY_PATH, key.as_bytes(), 0o600, None)?;
            if let Some(user) = user {
                let dropin = user_dropin(user, policy.relay.is_some());
                write(IPSEC_USER_DROPIN, dropin.as_bytes(), 0o600, None)?;
                crate::network::user_factor::set_account(user);
            }
            Ok(())
        }
        (
            PersonalTunnel::Wireguard {
                private_key,
                address,
            },
            TunnelKind::Wireguard,
        ) => {
            // networkd reads the key as systemd-network.
            let group = nix::unistd::Group::from_name("systemd-network")
                .ok()
                .flatten()
                .context("no group systemd-network: networkd could not read the key")?;
            write(
                WIREGUARD_KEY_PATH,
                private_key.trim().as_bytes(),
                0o640,
                Some(group.gid),
            )?;
            let dropin = format!("# This stick's own address (its credential partition).\n[Network]\nAddress={address}\n");
            write(WIREGUARD_ADDRESS_DROPIN, dropin.as_bytes(), 0o644, None)
        }
        (_, tunnel) => bail!(
            "the stick's credential is for another tunnel than this image's ({tunnel:?}): \
             personalise it again for this image"
        ),
    }
}

/// The second round's account name (the credential allows no quote in it), for
/// the direct connection and, with a relay, the one through it.
fn user_dropin(user: &str, relay: bool) -> String {
    let mut names = vec![IPSEC_CONNECTION];
    if relay {
        names.push(RELAY_CONNECTION);
    }
    let connections: String = names
        .iter()
        .map(|name| {
            format!(
                "    {name} {{\n        local-2 {{\n            eap_id = \"{user}\"\n        }}\n    }}\n"
            )
        })
        .collect();
    format!(
        "# This stick's user (its credential partition): the password round's identity.\n\
         connections {{\n{connections}}}\n"
    )
}

fn write(path: &str, bytes: &[u8], mode: u32, group: Option<nix::unistd::Gid>) -> Result<()> {
    let path = Path::new(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    if let Some(group) = group {
        nix::unistd::chown(path, None, Some(group))
            .with_context(|| format!("cannot give {} to its group", path.display()))?;
    }
    Ok(())
}
