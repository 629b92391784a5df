//! `image-builder`: build, sign, verify and inspect conference boot stick images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use image_builder::disk::squashfs::RootCompression;

/// Builds the signed, dm-verity protected disk image of the conference boot stick,
/// and checks images already written.
///
/// A first image: `image-builder keygen -o keys-prod --name org-manifest`, point
/// `signing.manifest-key` of your config at the `.key`, then
/// `image-builder build your.toml -o out` and
/// `image-builder write out/NAME-VERSION.raw /dev/sdX --pubkey keys-prod/org-manifest.pub`.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(BuildArgs),
    Keygen(KeygenArgs),
    Verify(VerifyArgs),
    Inspect(InspectArgs),
    Write(WriteArgs),
    Personalize(PersonalizeArgs),
}

/// Build a disk image from a TOML config (see docs/config.md).
///
/// Writes OUT/NAME-VERSION.raw (raw GPT disk image for `dd`), and beside it the signed
/// manifest (.manifest.json, .manifest.json.sig). Prints the image path on stdout.
/// Needs root (mmdebstrap, chroot, mounts in a private namespace).
#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The image config (TOML).
    config: PathBuf,
    /// Output folder.
    #[arg(short, long, default_value = "out")]
    output: PathBuf,
    /// Cache for downloaded packages, the base and tools trees and the packed
    /// system layers (the eight newest: a rebuild whose system is unchanged, e.g.
    /// after a kiosk change, appends to one in seconds instead of packing the root).
    #[arg(long, default_value = "/var/cache/secure-stick")]
    cache_dir: PathBuf,
    /// The kiosk binary to install [default: `kiosk` beside this program].
    #[arg(long)]
    kiosk: Option<PathBuf>,
    /// Overlay tree copied into the root filesystem.
    #[arg(long, default_value = "overlays")]
    overlays: PathBuf,
    /// Write the build report (sizes, stage timings) as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// How the root filesystem is packed: `xz` (the default: the smallest image,
    /// about 6 minutes to pack on two cores when the system changed, slower to
    /// unpack at boot) or
    /// `zstd:LEVEL`, LEVEL 1 (fastest build, largest image) to 22; `zstd` alone is
    /// level 15 (the demo: 12 % larger than xz, packed in a minute). The QEMU tests
    /// build with `zstd:3`. Sizes, build and boot times of each: docs/benchmarks.md,
    /// "Compression: what it costs at boot".
    #[arg(long, default_value = "xz", value_name = "xz|zstd[:LEVEL]")]
    compression: RootCompression,
}

/// Create signing keys: the ed25519 manifest key (NAME.key, NAME.pub), or with
/// --secure-boot the UEFI Secure Boot hierarchy (NAME-pk, NAME-kek, NAME-db as
/// .key + .crt, RSA 2048, self-signed X.509).
///
/// Keep every .key offline and readable only by the build admin. The manifest .pub
/// is baked into every image and given to `verify`; the .crt files are enrolled in
/// the PCs' firmware (PK, KEK, db). See docs/keys.md.
#[derive(Debug, clap::Args)]
struct KeygenArgs {
    /// Folder for the key files (created if missing).
    #[arg(short, long)]
    output: PathBuf,
    /// Base name of the key files [default: manifest-signing, or secure-boot].
    #[arg(long)]
    name: Option<String>,
    /// Create the Secure Boot PK, KEK and db instead of the manifest key.
    #[arg(long)]
    secure_boot: bool,
    /// Organisation named in the Secure Boot certificates.
    #[arg(long, default_value = "Conference Stick")]
    organisation: String,
}

/// Check an image: manifest signature, then every hash against the image's bytes.
///
/// Exits non-zero naming the first mismatch.
#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The raw image (or the stick's device, e.g. /dev/sdX).
    image: PathBuf,
    /// The manifest public key (PEM).
    #[arg(long)]
    pubkey: PathBuf,
}

/// Show an image's partitions, manifest and root hash (nothing is verified).
#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// The raw image (or the stick's device).
    image: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Write an image onto a USB stick, safely: the image is verified first, the
/// device is checked, the copy is read back and the stick verified.
///
/// DEVICE must be a whole removable disk (a USB stick, an SD card: `/dev/sdb`, not
/// `/dev/sdb1`) with nothing on it mounted, or a loop device. Fixed disks, the
/// host's own disks, and disks in use (mounted, swap, LVM, LUKS, RAID) are refused
/// with the reason, before anything is written. `lsblk -o NAME,RM,TRAN,MODEL`
/// shows which device is the stick.
///
/// Progress (bytes, rate, time left) goes to stderr; at the end the stick is read
/// back past the page cache and its SHA-256 compared, then its partitions and ESP
/// files are checked against the signed manifest, as `verify` does.
/// With `--stick-id` and a credential (as `personalize` takes them) the stick is
/// personalised right after.
/// Example: `image-builder write out/demo-0.1.0.raw /dev/sdb --pubkey keys/org.pub`.
#[derive(Debug, clap::Args)]
struct WriteArgs {
    /// The raw image built by `build` (NAME-VERSION.raw).
    image: PathBuf,
    /// The stick's whole-disk device, e.g. /dev/sdb.
    device: PathBuf,
    /// The manifest public key (PEM): the image and the written stick must verify with it.
    #[arg(long)]
    pubkey: PathBuf,
    /// Personalise the stick after writing it (as `personalize` does).
    #[command(flatten)]
    credential: CredentialArgs,
    /// Print the result as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    json: bool,
}

/// Give one stick its own VPN credential: a partition of its own behind the
/// image's, which the stick's kiosk reads at boot (only from the disk it booted
/// from). The signed partitions are not touched: the stick still verifies.
///
/// The image must leave the credential out (no `client-key`/`private-key` in
/// `[vpn]`; docs/keys.md). IPsec: `--client-cert` and `--client-key`, issued by
/// the organisation's CA for this stick (the gateway's log names the
/// certificate). WireGuard: `--wireguard-key` (as `wg genkey` prints) and
/// `--wireguard-address` (this stick's /32 in the tunnel); add its public key as
/// a peer at the gateway. Personalising again replaces the credential.
/// TARGET is the written stick (`/dev/sdb`, checked like `write` checks it) or an
/// image file (it grows by a few MiB).
/// Example: `image-builder personalize /dev/sdb --stick-id stick-0042
/// --client-cert stick-0042.pem --client-key stick-0042.key`.
#[derive(Debug, clap::Args)]
struct PersonalizeArgs {
    /// The written stick's whole-disk device, or an image file.
    target: PathBuf,
    #[command(flatten)]
    credential: CredentialArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// One stick's credential, as `personalize` and `write` take it.
#[derive(Debug, clap::Args)]
struct CredentialArgs {
    /// This stick's name (1-64 letters, digits, `.`, `_`, `-`), shown on the
    /// stick's console line and in the admin's records.
    #[arg(long)]
    stick_id: Option<String>,
    /// IPsec: this stick's certificate (PEM).
    #[arg(long, requires = "client_key", conflicts_with = "wireguard_key")]
    client_cert: Option<PathBuf>,
    /// IPsec: this stick's private key (PEM).
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// IPsec, for an image whose gateway checks a user password
    /// (`[vpn.ipsec] user-password`): the account of the person this stick is
    /// for. The gateway checks their password for it in a second round.
    #[arg(long, requires = "client_cert")]
    user: Option<String>,
    /// WireGuard: file with this stick's private key.
    #[arg(long, requires = "wireguard_address")]
    wireguard_key: Option<PathBuf>,
    /// WireGuard: this stick's address in the tunnel, e.g. 10.99.1.7/32.
    #[arg(long, requires = "wireguard_key")]
    wireguard_address: Option<String>,
    /// For an image with Wi-Fi (`[network.wifi]`): the person's own networks
    /// (their home network), joined without asking. A TOML file, readable only
    /// by you, with one `[[network]]` per network (at most 8):
    /// `name = "FRITZ!Box 7590"` and `passphrase = "..."` (WPA, 8 to 63 characters).
    /// They go into this stick's credential partition only.
    #[arg(long, requires = "stick_id")]
    wifi: Option<PathBuf>,
}

impl CredentialArgs {
    /// The credential, read and checked; `None` when no option names one.
    fn read(&self) -> Result<Option<stick_manifest::personal::StickCredential>> {
        use image_builder::commands::personalize::{read_credential, CredentialFiles};
        let files = match (
            &self.client_cert,
            &self.client_key,
            &self.wireguard_key,
            &self.wireguard_address,
        ) {
            (None, None, None, None) if self.stick_id.is_none() => return Ok(None),
            (Some(certificate), Some(key), None, None) => CredentialFiles::Ipsec {
                certificate: certificate.clone(),
                key: key.clone(),
                user: self.user.clone(),
            },
            (None, None, Some(key), Some(address)) => CredentialFiles::Wireguard {
                key: key.clone(),
                address: address.clone(),
            },
            _ => anyhow::bail!(
                "name the stick's credential: --client-cert and --client-key (IPsec), or \
                 --wireguard-key and --wireguard-address (WireGuard)"
            ),
        };
        let Some(stick_id) = &self.stick_id else {
            anyhow::bail!("name the stick: --stick-id (letters, digits, `.`, `_`, `-`)");
        };
        let mut credential = read_credential(stick_id, &files)?;
        if let Some(path) = &self.wifi {
            credential.wifi = image_builder::commands::personalize::read_wifi_presets(path)?;
            credential.validate()?;
        }
        Ok(Some(credential))
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,fatfs=error".into()),
        )
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build(args) => {
            let kiosk = match args.kiosk {
                Some(path) => path,
                None => std::env::current_exe()
                    .context("cannot find this program's path")?
                    .with_file_name("kiosk"),
            };
            let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
                Ok(value) => Some(value.parse().with_context(|| {
                    format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")
                })?),
                Err(_) => None,
            };
            let report = image_builder::build::build(&image_builder::build::BuildOptions {
                config: args.config,
                output_dir: args.output,
                cache_dir: args.cache_dir,
                kiosk_binary: kiosk,
                overlays: args.overlays,
                source_date_epoch,
                compression: args.compression,
            })?;
            if let Some(path) = args.report {
                std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
                    .with_context(|| format!("cannot write report {}", path.display()))?;
            }
            println!("{}", report.image.display());
        }
        Command::Keygen(args) => {
            std::fs::create_dir_all(&args.output)
                .with_context(|| format!("cannot create {}", args.output.display()))?;
            if args.secure_boot {
                let name = args.name.as_deref().unwrap_or("secure-boot");
                for pair in image_builder::boot::secure_boot::generate(
                    &args.output,
                    name,
                    &args.organisation,
                )? {
                    eprintln!(
                        "{:<3} key: {} (keep it secret), certificate: {}",
                        pair.role.to_uppercase(),
                        pair.key.display(),
                        pair.cert.display()
                    );
                }
            } else {
                let name = args.name.as_deref().unwrap_or("manifest-signing");
                let (private, public) =
                    image_builder::commands::keygen::generate(&args.output, name)?;
                eprintln!("private key: {} (keep it secret)", private.display());
                eprintln!("public key:  {}", public.display());
            }
        }
        Command::Write(args) => write(&args)?,
        Command::Personalize(args) => personalize(args)?,
        Command::Verify(args) => {
            let key = read_pubkey(&args.pubkey)?;
            let verified = image_builder::commands::verify::verify_image(&args.image, &key)
                .with_context(|| format!("{} does NOT verify", args.image.display()))?;
            let m = &verified.manifest;
            println!(
                "OK {}: {} {} (rollback index {}), signature valid, {} partitions and {} ESP \
                 files match{}",
                args.image.display(),
                m.name,
                m.version,
                m.rollback_index,
                verified.partitions_checked,
                verified.esp_files_checked,
                if m.test_keys {
                    "; signed with a TEST key"
                } else {
                    ""
                }
            );
            print!("{}", boot_chain(m));
        }
        Command::Inspect(args) => {
            let inspection = image_builder::commands::inspect::inspect_image(&args.image)
                .with_context(|| format!("cannot inspect {}", args.image.display()))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&inspection)?);
            } else {
                print!("{}", image_builder::commands::inspect::render(&inspection));
            }
        }
    }
    Ok(())
}

/// The manifest public key (PEM) at `path`.
/// Who signed what the firmware starts, as the verified manifest records it.
fn boot_chain(m: &stick_manifest::Manifest) -> String {
    let uki = m.uki_signer.as_deref().unwrap_or("nobody (unsigned)");
    match &m.shim {
        None => format!("boot: the firmware starts the UKI, signed by {uki}\n"),
        Some(shim) => format!(
            "boot: shim {} (signed by {}) starts GRUB {} (signed by {}), which starts the \
             UKI (signed by {uki}); shim also trusts {}; MokManager signed by {}; \
             certificate to enrol: {}\n",
            shim.version,
            shim.shim_signers.join(", "),
            shim.grub_version,
            shim.grub_signers.join(", "),
            shim.shim_vendor_certificate,
            shim.mok_manager_signers.join(", "),
            shim.mok_certificate
        ),
    }
}

fn read_pubkey(path: &std::path::Path) -> Result<stick_manifest::ManifestVerifyingKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read public key {}", path.display()))?;
    stick_manifest::verifying_key_from_pem(&pem)
        .with_context(|| format!("public key {}", path.display()))
}

fn write(args: &WriteArgs) -> Result<()> {
    use std::io::{IsTerminal, Write};
    let key = read_pubkey(&args.pubkey)?;
    // A bad credential, or one the image does not take, stops before anything is written.
    let credential = args.credential.read()?;
    if let Some(credential) = &credential {
        image_builder::commands::personalize::check_image(&args.image, credential)?;
    }
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |p: &image_builder::commands::write::Progress| {
        // A terminal gets one line that updates; a log gets one line per report.
        let end = if terminal && p.done < p.total {
            "\r"
        } else {
            "\n"
        };
        eprint!("{}{end}", p.line());
        let _ = std::io::stderr().flush();
    };
    let report = image_builder::commands::write::write_stick(
        &args.image,
        &args.device,
        &key,
        &mut progress,
    )?;
    let personalized = match &credential {
        Some(credential) => Some(
            image_builder::commands::personalize::personalize(&args.device, credential)
                .with_context(|| format!("{} was written but not personalised", report.device))?,
        ),
        None => None,
    };
    if args.json {
        let mut json = serde_json::to_value(&report)?;
        json["personalized"] = serde_json::to_value(&personalized)?;
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "OK {}: {} {} written ({} bytes, {:.1} MiB/s), read back identical (SHA-256 {}), \
             {} partitions and {} ESP files match the signed manifest",
            report.device,
            report.image_name,
            report.image_version,
            report.bytes,
            report.mib_per_second,
            report.sha256,
            report.partitions_checked,
            report.esp_files_checked
        );
        if let Some(done) = &personalized {
            println!(
                "OK {}: stick {} personalised ({} credential in partition {})",
                report.device, done.stick_id, done.tunnel, done.partition_number
            );
        }
    }
    Ok(())
}

fn personalize(args: PersonalizeArgs) -> Result<()> {
    use image_builder::commands::personalize;
    let Some(credential) = args.credential.read()? else {
        anyhow::bail!(
            "name the stick and its credential: --stick-id with --client-cert and \
             --client-key (IPsec), or with --wireguard-key and --wireguard-address (WireGuard)"
        );
    };
    let report = personalize::personalize(&args.target, &credential)
        .with_context(|| format!("cannot personalise {}", args.target.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "OK {}: stick {} personalised ({} credential in partition {}{})",
            report.target.display(),
            report.stick_id,
            report.tunnel,
            report.partition_number,
            if report.replaced {
                ", replacing the one before"
            } else {
                ""
            }
        );
    }
    Ok(())
}
