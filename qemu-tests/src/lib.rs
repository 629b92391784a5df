//! Boots built images under QEMU/OVMF and reads what they say on the serial console.
//!
//! - [`machine`]: the guest machine (QEMU/OVMF, its disks, console, screen, tampered copies).
//! - [`lab`]: the host-side network the guest talks to (namespaces, gateway, conference, captures).
//! - here: the workspace's paths, host tools, and the images built by the real image-builder.

pub mod lab;
pub mod machine;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("qemu-tests lies inside the workspace")
        .to_path_buf()
}

/// Where tests keep what people may want to look at (console logs, screenshots).
pub fn artifacts_dir() -> PathBuf {
    workspace_root().join("target/qemu-tests/artifacts")
}

/// The last `keep` lines of a log for a failure message, headed by how many
/// were left out: failure messages stay short enough that CI's record of a run
/// shows every failing test's own message, not one test's logs.
pub fn log_tail(text: &str, keep: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(keep);
    let mut tail = String::new();
    if from > 0 {
        tail.push_str(&format!("(the last {keep} of {} lines)\n", lines.len()));
    }
    for line in &lines[from..] {
        tail.push_str(line);
        tail.push('\n');
    }
    tail
}

/// An image built for the tests, with its manifest beside it.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub image: PathBuf,
    pub manifest_path: PathBuf,
    pub manifest: serde_json::Value,
}

impl BuiltImage {
    fn from_image(image: PathBuf) -> Result<BuiltImage> {
        let stem = image
            .file_stem()
            .context("image path has a file name")?
            .to_string_lossy()
            .into_owned();
        let manifest_path = image.with_file_name(format!("{stem}.manifest.json"));
        let manifest = serde_json::from_slice(
            &std::fs::read(&manifest_path)
                .with_context(|| format!("cannot read {}", manifest_path.display()))?,
        )
        .with_context(|| format!("{} is not JSON", manifest_path.display()))?;
        Ok(BuiltImage {
            image,
            manifest_path,
            manifest,
        })
    }

    /// The verity root hash the manifest states.
    pub fn root_hash(&self) -> Option<&str> {
        self.manifest.get("verity")?.get("root-hash")?.as_str()
    }
}

/// Builds image-builder, kiosk and stick-relay in release mode (fast when up to date).
pub fn ensure_release_binaries() -> Result<PathBuf> {
    let root = workspace_root();
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "image-builder",
            "-p",
            "kiosk",
            "-p",
            "stick-relay",
        ])
        .current_dir(&root)
        .stdin(Stdio::null())
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build of image-builder, kiosk and stick-relay failed ({status})");
    }
    Ok(root.join("target/release"))
}

/// How the tests' images are packed (`--compression`): the squashfs stage of the
/// browser image took 2.9 s at zstd 3 against 69.7 s at zstd 15, for a root 11 %
/// larger, and the guest reads both alike. The shipped default (xz) is built
/// and booted by the benchmarks (`bench`, `bench-boot`).
pub const TEST_COMPRESSION: &str = "zstd:3";

/// How many of the builder's last log lines a failed build shows.
const BUILD_LOG_TAIL: usize = 40;

/// Runs `image-builder build CONFIG -o OUT EXTRA...` and returns the image.
///
/// The builder's log goes to `OUT/build.log`, not to the test's output: a failing
/// scenario then shows its own failure first, not hundreds of build lines before
/// it. A failed build shows the log's last lines.
pub fn run_builder(config: &Path, out: &Path, extra: &[&std::ffi::OsStr]) -> Result<BuiltImage> {
    let root = workspace_root();
    let builder = root.join("target/release/image-builder");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let log_path = out.join("build.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let started = std::time::Instant::now();
    let output = Command::new(&builder)
        .arg("build")
        .arg(config)
        .arg("-o")
        .arg(out)
        .args(extra)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stderr(log)
        .output()
        .with_context(|| format!("cannot run {}", builder.display()))?;
    if !output.status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(BUILD_LOG_TAIL)..].join("\n");
        bail!(
            "image-builder build {} failed ({}); the last lines of {}:\n{tail}",
            config.display(),
            output.status,
            log_path.display()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let image = stdout
        .lines()
        .last()
        .context("image-builder printed no image path")?;
    eprintln!(
        "qemu-tests: built {} with {} in {:.1} s (log: {})",
        config.display(),
        builder.display(),
        started.elapsed().as_secs_f64(),
        log_path.display()
    );
    BuiltImage::from_image(PathBuf::from(image.trim()))
}

/// The image from `config` (relative to the workspace), built by the real
/// image-builder with the real kiosk. `STICK_IMAGE` names a prebuilt image instead.
/// Builds are serialised across test processes by a file lock; a warm build
/// reuses the cached trees and takes seconds.
pub fn built_image(config: &str, out_name: &str) -> Result<BuiltImage> {
    if let Some(image) = std::env::var_os("STICK_IMAGE") {
        return BuiltImage::from_image(PathBuf::from(image));
    }
    let root = workspace_root();
    let out = root.join("target/qemu-tests").join(out_name);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let lock_path = root.join("target/qemu-tests/build.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock().context("cannot lock the image build")?;
    // Every test runs in its own process under nextest; one build per run is enough.
    let stamp = out.join(".built-in-run");
    let run_id = std::env::var("NEXTEST_RUN_ID").ok();
    if let (Some(run_id), Ok(stamped)) = (&run_id, std::fs::read_to_string(&stamp)) {
        if let Some((stamped_run, image)) = stamped.split_once('\n') {
            if stamped_run == run_id && Path::new(image).is_file() {
                eprintln!("qemu-tests: reusing {image}, built earlier in this run");
                return BuiltImage::from_image(PathBuf::from(image));
            }
        }
    }
    ensure_release_binaries()?;
    let overlays = root.join("overlays");
    let built = run_builder(
        &root.join(config),
        &out,
        &[
            OsStr::new("--overlays"),
            overlays.as_os_str(),
            OsStr::new("--compression"),
            OsStr::new(TEST_COMPRESSION),
        ],
    )?;
    if let Some(run_id) = run_id {
        std::fs::write(&stamp, format!("{run_id}\n{}", built.image.display()))
            .with_context(|| format!("cannot write {}", stamp.display()))?;
    }
    Ok(built)
}

/// A copy (in `dir`) of the test image `(config, out)` built for personal
/// sticks, personalised by `image-builder personalize` as `stick_id` with
/// `credential` (its options: `--client-cert ... --client-key ...`).
pub fn personalised_copy(
    dir: &Path,
    (config, out): (&str, &str),
    stick_id: &str,
    credential: &[&OsStr],
) -> Result<PathBuf> {
    let built = built_image(config, out)?;
    let copy = dir.join(format!("{stick_id}.raw"));
    std::fs::copy(&built.image, &copy).with_context(|| {
        format!(
            "cannot copy {} to {}",
            built.image.display(),
            copy.display()
        )
    })?;
    let bin = ensure_release_binaries()?;
    let printed = run_tool(
        Command::new(bin.join("image-builder"))
            .arg("personalize")
            .arg(&copy)
            .args(["--stick-id", stick_id, "--json"])
            .args(credential),
    )?;
    let report: serde_json::Value =
        serde_json::from_str(&printed).with_context(|| format!("personalize --json: {printed}"))?;
    if report["stick-id"] != stick_id {
        bail!("personalize reported another stick: {printed}");
    }
    Ok(copy)
}

/// A TEST credential of qemu-tests/fixtures/vpn.
/// A copy of the IPsec test image `image` personalised as `stick_id` with the
/// TEST certificate and key `fixture` (`.pem`, `.key`) and `user`'s account.
pub fn personalised_ipsec_copy(
    dir: &Path,
    image: (&str, &str),
    stick_id: &str,
    fixture: &str,
    user: &str,
) -> Result<PathBuf> {
    let cert = vpn_fixture(&format!("{fixture}.pem"));
    let key = vpn_fixture(&format!("{fixture}.key"));
    let args: [&OsStr; 6] = [
        "--client-cert".as_ref(),
        cert.as_os_str(),
        "--client-key".as_ref(),
        key.as_os_str(),
        "--user".as_ref(),
        user.as_ref(),
    ];
    personalised_copy(dir, image, stick_id, &args)
}

pub fn vpn_fixture(name: &str) -> PathBuf {
    workspace_root().join("qemu-tests/fixtures/vpn").join(name)
}

/// Runs a host tool; its stdout, or an error with the command line and stderr.
pub fn run_tool(command: &mut Command) -> Result<String> {
    let line = format!("{command:?}");
    let output = command
        .env("MTOOLS_SKIP_CHECK", "1")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {line}"))?;
    if !output.status.success() {
        bail!(
            "{line} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A scenario's step that must work: its error chain as the panic message.
pub trait OkOrPanic<T> {
    fn ok_or_panic(self) -> T;
}

impl<T> OkOrPanic<T> for anyhow::Result<T> {
    fn ok_or_panic(self) -> T {
        self.unwrap_or_else(|e| panic!("{e:#}"))
    }
}
