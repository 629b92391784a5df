//! `image-builder`: build, sign, verify and inspect conference boot stick images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Builds the signed, dm-verity protected disk image of the conference boot stick,
/// and checks images already written.
///
/// A first image: `image-builder keygen -o keys-prod --name org-manifest`, point
/// `signing.manifest-key` of your config at the `.key`, then
/// `image-builder build your.toml -o out` and `dd if=out/NAME-VERSION.raw of=/dev/sdX`.
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
    /// Cache for downloaded packages and the base and tools trees.
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
        Command::Verify(args) => {
            let pem = std::fs::read_to_string(&args.pubkey)
                .with_context(|| format!("cannot read public key {}", args.pubkey.display()))?;
            let key = stick_manifest::verifying_key_from_pem(&pem)
                .with_context(|| format!("public key {}", args.pubkey.display()))?;
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
