//! `personalize`: gives one stick (or an image file) its own VPN credential, in a
//! small partition of its own behind the image's partitions. The signed
//! partitions (ESP, root, verity) are not touched, so the stick still verifies;
//! the kiosk reads the credential only from the disk its root was verified
//! through. Personalising again replaces the credential in place.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use stick_manifest::personal::{
    valid_user, PersonalTunnel, StickCredential, WifiPreset, MAX_WIFI_PRESETS,
    PERSONAL_PARTITION_NAME, PERSONAL_PARTITION_SIZE, PERSONAL_TYPE_UUID, USER_RULE,
};

use crate::disk::gpt::{
    derive_guid, GptPartition, GptTable, Guid, ALIGNMENT, ESP_TYPE, ROOT_X86_64_TYPE,
    ROOT_X86_64_VERITY_TYPE, SECTOR,
};
use crate::runner::CommandRunExt;

/// The sectors the backup GPT takes at the end of the disk (header and entries).
const BACKUP_BYTES: u64 = 33 * SECTOR;

/// The credential files an admin names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialFiles {
    Ipsec {
        certificate: PathBuf,
        key: PathBuf,
        /// The person's account, when the image's gateway checks a password.
        user: Option<String>,
    },
    Wireguard {
        key: PathBuf,
        address: String,
    },
}

/// What was done, for people and (`--json`) for scripts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PersonalizeReport {
    pub target: PathBuf,
    pub stick_id: String,
    /// `ipsec` or `wireguard`.
    pub tunnel: &'static str,
    /// 1-based, as the kernel numbers partitions.
    pub partition_number: usize,
    pub partition_offset: u64,
    /// A credential was there before and was replaced.
    pub replaced: bool,
}

/// Reads and checks the files: PEM forms, and a certificate that belongs to its key.
pub fn read_credential(stick_id: &str, files: &CredentialFiles) -> Result<StickCredential> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let tunnel = match files {
        CredentialFiles::Ipsec {
            certificate,
            key,
            user,
        } => {
            if let Some(user) = user.as_deref().filter(|u| !valid_user(u)) {
                bail!("--user {user:?} is not an account name: {USER_RULE}");
            }
            let cert_key = crate::root::network::public_key_pem("x509", certificate)
                .with_context(|| format!("{} is not a certificate", certificate.display()))?;
            let key_key = crate::root::network::public_key_pem("pkey", key)
                .with_context(|| format!("{} is not a private key", key.display()))?;
            if cert_key != key_key {
                bail!(
                    "{} does not belong to {}: the key's public half differs from the certificate's",
                    key.display(),
                    certificate.display()
                );
            }
            PersonalTunnel::Ipsec {
                certificate: read(certificate)?,
                key: read(key)?,
                user: user.clone(),
            }
        }
        CredentialFiles::Wireguard { key, address } => PersonalTunnel::Wireguard {
            private_key: read(key)?.trim().to_string(),
            address: address.clone(),
        },
    };
    let credential = StickCredential {
        stick_id: stick_id.to_string(),
        tunnel,
        wifi: Vec::new(),
    };
    credential.validate()?;
    Ok(credential)
}

/// Puts `credential` onto `target` (an image file, or a stick's whole-disk
/// device) after checking that the image on it expects one of that kind.
pub fn personalize(target: &Path, credential: &StickCredential) -> Result<PersonalizeReport> {
    let is_device = std::fs::metadata(target)
        .with_context(|| format!("cannot read {}", target.display()))?
        .file_type()
        .is_block_device();
    if is_device {
        crate::commands::write::checked_target(target, 0)?;
    }
    check_image(target, credential)?;
    put_credential(target, credential, is_device)
}

/// Whether the image at `path` (a file or a written stick) takes `credential`:
/// its manifest (read from its ESP; `write` and `verify` check its signature)
/// names a personal credential of that kind.
pub fn check_image(path: &Path, credential: &StickCredential) -> Result<()> {
    let esp = crate::commands::verify::read_esp(path).with_context(|| {
        format!(
            "{} is not a stick image (its ESP cannot be read)",
            path.display()
        )
    })?;
    let manifest = esp
        .file(stick_manifest::MANIFEST_FILE)
        .and_then(|f| serde_json::from_slice::<stick_manifest::Manifest>(&f.contents).ok())
        .with_context(|| format!("{} has no readable manifest on its ESP", path.display()))?;
    expects(&manifest, credential)
        .with_context(|| format!("{} refused: nothing was written", path.display()))
}

/// Whether the image of `manifest` takes `credential`.
fn expects(manifest: &stick_manifest::Manifest, credential: &StickCredential) -> Result<()> {
    let image = format!("image {} {}", manifest.name, manifest.version);
    let wants = ImageWants {
        credential: manifest.personal_credential,
        user: manifest.personal_user,
        wifi: manifest.wifi,
    };
    takes(&image, wants, credential)
}

/// `--wifi FILE`: the person's own Wi-Fi networks, TOML, one `[[network]]`
/// (`name`, `passphrase`) per network.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WifiFile {
    #[serde(default)]
    network: Vec<WifiPreset>,
}

/// Reads and checks `--wifi FILE`; every error names the file and the network.
pub fn read_wifi_presets(path: &Path) -> Result<Vec<WifiPreset>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let presets = parse_wifi_presets(&text).with_context(|| format!("{}", path.display()))?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if mode & 0o077 != 0 {
        tracing::warn!(
            "{} holds Wi-Fi passphrases and others may read it (mode {:o}): chmod 600",
            path.display(),
            mode & 0o777
        );
    }
    Ok(presets)
}

fn parse_wifi_presets(text: &str) -> Result<Vec<WifiPreset>> {
    let file: WifiFile = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "{}; expected one [[network]] with name = \"...\" and passphrase = \"...\" per network",
            e.message()
        )
    })?;
    if file.network.is_empty() {
        bail!("names no network: add a [[network]] with name and passphrase");
    }
    if file.network.len() > MAX_WIFI_PRESETS {
        bail!(
            "names {} networks; a stick carries at most {MAX_WIFI_PRESETS}",
            file.network.len()
        );
    }
    for (index, preset) in file.network.iter().enumerate() {
        if let Some(problem) = preset.problem() {
            bail!("network {} ({:?}): needs {problem}", index + 1, preset.name);
        }
        if file.network[..index].iter().any(|p| p.name == preset.name) {
            bail!("network {} ({:?}) is named twice", index + 1, preset.name);
        }
    }
    Ok(file.network)
}

/// What an image's manifest says a stick's credential must hold.
#[derive(Debug, Clone, Copy)]
struct ImageWants {
    credential: Option<stick_manifest::network::TunnelKind>,
    /// The person's account (the gateway checks a password for it).
    user: bool,
    /// The image joins Wi-Fi: the credential may carry networks.
    wifi: bool,
}

/// Whether `image` (its name, for messages) with `wants` takes `credential`.
fn takes(image: &str, wants: ImageWants, credential: &StickCredential) -> Result<()> {
    use stick_manifest::network::TunnelKind;
    let Some(kind) = wants.credential else {
        bail!(
            "{image} takes no personal credential: it has no [vpn], its key is on each \
             person's smartcard (vpn.ipsec.token-key-id), or it is a TEST image that \
             carries one for every stick (vpn.test-credential-in-image)"
        );
    };
    let wanted = match kind {
        TunnelKind::Ipsec => "ipsec",
        TunnelKind::Wireguard => "wireguard",
    };
    if tunnel_name(&credential.tunnel) != wanted {
        bail!(
            "{image} uses {wanted}, the credential is for {}",
            tunnel_name(&credential.tunnel)
        );
    }
    if !credential.wifi.is_empty() && !wants.wifi {
        bail!(
            "{image} has no Wi-Fi ([network.wifi]): the stick would never use the networks \
             of --wifi; leave it out"
        );
    }
    let password = wants.user;
    let user = match &credential.tunnel {
        PersonalTunnel::Ipsec { user, .. } => user.as_deref(),
        PersonalTunnel::Wireguard { .. } => None,
    };
    match (password, user) {
        (true, None) => bail!(
            "{image} has the gateway check a user password (vpn.ipsec.user-password): \
             name the person's account with --user"
        ),
        (false, Some(user)) => {
            bail!("{image} checks no user password: --user {user} would not be used; leave it out")
        }
        _ => Ok(()),
    }
}

fn tunnel_name(tunnel: &PersonalTunnel) -> &'static str {
    match tunnel {
        PersonalTunnel::Ipsec { .. } => "ipsec",
        PersonalTunnel::Wireguard { .. } => "wireguard",
    }
}

/// Writes the credential partition (added if missing) and the partition table.
fn put_credential(
    target: &Path,
    credential: &StickCredential,
    is_device: bool,
) -> Result<PersonalizeReport> {
    let mut disk = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(target)
        .with_context(|| format!("cannot open {} for writing", target.display()))?;
    let mut table = GptTable::read_from(&mut disk)
        .with_context(|| format!("{} has no readable GPT", target.display()))?;
    for (kind, what) in [
        (ESP_TYPE, "ESP"),
        (ROOT_X86_64_TYPE, "root"),
        (ROOT_X86_64_VERITY_TYPE, "verity"),
    ] {
        if table.find(kind).is_none() {
            bail!(
                "{} is not a stick image: it has no {what} partition (write the image first)",
                target.display()
            );
        }
    }
    let bytes = credential.encode()?;
    let kind = Guid::parse(PERSONAL_TYPE_UUID).context("the credential partition type")?;
    let existing = table.partitions.iter().position(|p| p.type_guid == kind);
    let index = match existing {
        Some(index) => index,
        None => add_partition(&mut disk, &mut table, kind, &bytes, is_device, target)?,
    };
    let partition = &table.partitions[index];
    let mut content = bytes;
    content.resize(partition.size() as usize, 0);
    disk.seek(SeekFrom::Start(partition.offset()))?;
    disk.write_all(&content)
        .with_context(|| format!("cannot write the credential to {}", target.display()))?;
    table
        .write_to(&mut disk)
        .with_context(|| format!("cannot write the partition table of {}", target.display()))?;
    disk.sync_all()
        .with_context(|| format!("cannot sync {}", target.display()))?;
    let offset = partition.offset();
    check_written(&mut disk, offset, credential, target)?;
    if is_device {
        // The kernel learns of the new partition (harmless when it fails: it does
        // at the next plug-in).
        if let Err(err) = Command::new("partx").arg("-u").arg(target).run_capture() {
            tracing::warn!(
                "the kernel did not re-read {}'s partitions: {err}",
                target.display()
            );
        }
    }
    Ok(PersonalizeReport {
        target: target.to_path_buf(),
        stick_id: credential.stick_id.clone(),
        tunnel: tunnel_name(&credential.tunnel),
        partition_number: index + 1,
        partition_offset: offset,
        replaced: existing.is_some(),
    })
}

/// Places the credential partition behind the last one (an image file grows to
/// hold it and the backup table); returns its index.
fn add_partition(
    disk: &mut std::fs::File,
    table: &mut GptTable,
    kind: Guid,
    document: &[u8],
    is_device: bool,
    target: &Path,
) -> Result<usize> {
    let end = table
        .partitions
        .iter()
        .map(|p| p.offset() + p.size())
        .max()
        .unwrap_or(ALIGNMENT);
    let first = end.div_ceil(ALIGNMENT) * ALIGNMENT;
    let needed = first + PERSONAL_PARTITION_SIZE + BACKUP_BYTES;
    if needed > table.disk_size {
        if is_device {
            bail!(
                "{} holds {} bytes; the image and its credential need {needed}",
                target.display(),
                table.disk_size
            );
        }
        let size = needed.div_ceil(ALIGNMENT) * ALIGNMENT;
        disk.set_len(size)
            .with_context(|| format!("cannot grow {} to {size} bytes", target.display()))?;
        table.disk_size = size;
    }
    table.partitions.push(GptPartition {
        type_guid: kind,
        part_guid: derive_guid(b"stick-credential", document),
        name: PERSONAL_PARTITION_NAME.into(),
        first_lba: first / SECTOR,
        last_lba: (first + PERSONAL_PARTITION_SIZE) / SECTOR - 1,
        attributes: 0,
    });
    Ok(table.partitions.len() - 1)
}

/// Reads the credential back from the disk and compares.
fn check_written(
    disk: &mut std::fs::File,
    offset: u64,
    credential: &StickCredential,
    target: &Path,
) -> Result<()> {
    let mut bytes = vec![0u8; PERSONAL_PARTITION_SIZE as usize];
    disk.seek(SeekFrom::Start(offset))?;
    disk.read_exact(&mut bytes)?;
    let read = StickCredential::decode(&bytes)
        .with_context(|| format!("the credential on {} does not read back", target.display()))?;
    if &read != credential {
        bail!(
            "the credential on {} reads back different",
            target.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::gpt::PartitionSpec;

    /// An image file with the three stick partitions, like `build` lays them out.
    fn stick_image(path: &Path) -> GptTable {
        let spec = |type_guid, name: &str, size| PartitionSpec {
            type_guid,
            part_guid: derive_guid(name.as_bytes(), b"test"),
            name: name.into(),
            size,
            attributes: 0,
        };
        let table = GptTable::plan(
            derive_guid(b"disk", b"test"),
            &[
                spec(ESP_TYPE, "esp", 2 << 20),
                spec(ROOT_X86_64_TYPE, "root", 3 << 20),
                spec(ROOT_X86_64_VERITY_TYPE, "verity", 1 << 20),
            ],
        )
        .expect("plan");
        let mut file = std::fs::File::create(path).expect("image");
        file.set_len(table.disk_size).expect("size");
        table.write_to(&mut file).expect("gpt");
        table
    }

    fn wireguard(id: &str, address: &str) -> StickCredential {
        StickCredential {
            stick_id: id.into(),
            tunnel: PersonalTunnel::Wireguard {
                private_key: "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=".into(),
                address: address.into(),
            },
            wifi: Vec::new(),
        }
    }

    #[test]
    fn adds_a_partition_behind_the_image_and_replaces_it_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("stick.raw");
        let before = stick_image(&image);
        let first =
            put_credential(&image, &wireguard("stick-1", "10.99.1.7/32"), false).expect("first");
        assert_eq!((first.partition_number, first.replaced), (4, false));
        let table = GptTable::read_from(&mut std::fs::File::open(&image).expect("open"))
            .expect("gpt reads back");
        assert_eq!(&table.partitions[..3], &before.partitions[..]);
        let added = &table.partitions[3];
        assert_eq!(added.name, PERSONAL_PARTITION_NAME);
        assert_eq!(added.type_guid.to_string(), PERSONAL_TYPE_UUID);
        assert_eq!(added.offset() % ALIGNMENT, 0);
        assert!(added.offset() >= before.partitions[2].offset() + before.partitions[2].size());
        assert!(table.disk_size >= added.offset() + added.size() + BACKUP_BYTES);
        let second =
            put_credential(&image, &wireguard("stick-2", "10.99.1.8/32"), false).expect("again");
        assert_eq!(
            (
                second.partition_number,
                second.replaced,
                second.partition_offset
            ),
            (4, true, first.partition_offset)
        );
        let mut bytes = vec![0u8; PERSONAL_PARTITION_SIZE as usize];
        let mut file = std::fs::File::open(&image).expect("open");
        file.seek(SeekFrom::Start(second.partition_offset))
            .expect("seek");
        file.read_exact(&mut bytes).expect("read");
        assert_eq!(
            StickCredential::decode(&bytes).expect("decodes").stick_id,
            "stick-2"
        );
        // sfdisk, the kernel's view, agrees with ours.
        if let Ok(out) = Command::new("sfdisk").arg("-J").arg(&image).output() {
            if out.status.success() {
                let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
                let parts = json["partitiontable"]["partitions"]
                    .as_array()
                    .expect("parts");
                assert_eq!(parts.len(), 4);
                assert_eq!(parts[3]["name"], PERSONAL_PARTITION_NAME);
            }
        }
    }

    #[test]
    fn wifi_files_are_read_with_errors_that_name_the_network() {
        let good = "[[network]]\nname = \"FRITZ!Box\"\npassphrase = \"long enough\"\n\n\
                    [[network]]\nname = \"Home\"\npassphrase = \"also long enough\"\n";
        let names: Vec<String> = parse_wifi_presets(good)
            .expect("parses")
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["FRITZ!Box", "Home"]);
        let many = "[[network]]\nname = \"N\"\npassphrase = \"long enough\"\n".repeat(9);
        for (text, part) in [
            ("", "names no network"),
            ("[[network]]\nname = \"Home\"\n", "passphrase"),
            ("[[network]]\nname = \"Home\"\npassphrase = \"short\"\n", "network 1 (\"Home\"): needs a WPA passphrase"),
            ("[[network]]\nname = \"Home\"\npassphrase = \"long enough\"\nhidden = true\n", "unknown field"),
            (&many, "at most 8"),
            (
                "[[network]]\nname = \"A\"\npassphrase = \"long enough\"\n[[network]]\nname = \"A\"\npassphrase = \"long enough\"\n",
                "network 2 (\"A\") is named twice",
            ),
        ] {
            let err = format!("{:#}", parse_wifi_presets(text).expect_err(text));
            assert!(err.contains(part), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_credential_must_be_what_the_image_wants() {
        use stick_manifest::network::TunnelKind;
        let ipsec = |user: Option<&str>| StickCredential {
            stick_id: "stick-7".into(),
            tunnel: PersonalTunnel::Ipsec {
                certificate: "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n".into(),
                key: "-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n".into(),
                user: user.map(String::from),
            },
            wifi: Vec::new(),
        };
        let wants = |credential, user| ImageWants {
            credential,
            user,
            wifi: false,
        };
        let cases: Vec<(&str, ImageWants, StickCredential, Result<(), &str>)> = vec![
            (
                "ipsec",
                wants(Some(TunnelKind::Ipsec), false),
                ipsec(None),
                Ok(()),
            ),
            (
                "ipsec with its person",
                wants(Some(TunnelKind::Ipsec), true),
                ipsec(Some("alice")),
                Ok(()),
            ),
            (
                "the person missing",
                wants(Some(TunnelKind::Ipsec), true),
                ipsec(None),
                Err("name the person's account with --user"),
            ),
            (
                "a person the image does not ask for",
                wants(Some(TunnelKind::Ipsec), false),
                ipsec(Some("alice")),
                Err("--user alice would not be used"),
            ),
            (
                "another tunnel",
                wants(Some(TunnelKind::Wireguard), false),
                ipsec(None),
                Err("uses wireguard, the credential is for ipsec"),
            ),
            (
                "Wi-Fi networks for an image without Wi-Fi",
                wants(Some(TunnelKind::Ipsec), false),
                StickCredential {
                    wifi: vec![WifiPreset {
                        name: "Home".into(),
                        passphrase: "long enough".into(),
                    }],
                    ..ipsec(None)
                },
                Err("has no Wi-Fi ([network.wifi])"),
            ),
            (
                "Wi-Fi networks for an image with Wi-Fi",
                ImageWants {
                    wifi: true,
                    ..wants(Some(TunnelKind::Ipsec), false)
                },
                StickCredential {
                    wifi: vec![WifiPreset {
                        name: "Home".into(),
                        passphrase: "long enough".into(),
                    }],
                    ..ipsec(None)
                },
                Ok(()),
            ),
            (
                "no personal credential at all",
                wants(None, false),
                wireguard("w", "10.99.1.7/32"),
                Err("takes no personal credential"),
            ),
        ];
        for (name, wants, credential, want) in cases {
            let got = takes("image t 1", wants, &credential).map_err(|e| format!("{e:#}"));
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(err), Err(part)) => assert!(err.contains(part), "{name}: {err}"),
                (got, want) => panic!("{name}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn refuses_what_is_not_a_stick_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("plain.raw");
        std::fs::write(&plain, vec![0u8; 4 << 20]).expect("plain");
        let err = personalize(&plain, &wireguard("s", "10.99.1.7/32")).expect_err("no gpt");
        assert!(
            format!("{err:#}").contains("is not a stick image"),
            "{err:#}"
        );
        let err =
            put_credential(&plain, &wireguard("s", "10.99.1.7/32"), false).expect_err("no gpt");
        assert!(
            format!("{err:#}").contains("has no readable GPT"),
            "{err:#}"
        );
        let image = dir.path().join("stick.raw");
        stick_image(&image);
        let err = put_credential(&image, &wireguard("bad id!", "10.99.1.7/32"), false)
            .expect_err("bad id");
        assert!(format!("{err:#}").contains("stick id"), "{err:#}");
    }
}
