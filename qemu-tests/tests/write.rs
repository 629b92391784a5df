//! `image-builder write` against real block devices: a loop device gets the demo
//! image (read back identical, verified against the manifest); a mounted device,
//! the host's own disk and a fixed disk are refused with the device and the
//! reason, and nothing is written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// A loop device over a file; detached when dropped.
struct Loop {
    device: String,
}

impl Loop {
    fn over(file: &Path) -> Loop {
        let device = qemu_tests::run_tool(
            Command::new("losetup")
                .args(["--find", "--show", "--partscan"])
                .arg(file),
        )
        .expect("losetup");
        Loop {
            device: device.trim().to_string(),
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// A mounted filesystem; unmounted when dropped.
struct Mounted {
    at: tempfile::TempDir,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.at.path()).status();
    }
}

fn sha256_of(path: &Path, len: u64) -> String {
    use std::io::Read;
    let mut file = std::fs::File::open(path).expect("open");
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = buffer.len().min(left as usize);
        file.read_exact(&mut buffer[..want]).expect("read");
        hash.update(&buffer[..want]);
        left -= want as u64;
    }
    hex::encode(hash.finalize())
}

fn write_command(image: &Path, device: &str) -> Output {
    let bin = qemu_tests::ensure_release_binaries().expect("release binaries");
    let pubkey = qemu_tests::workspace_root().join("keys/test-manifest-signing.pub");
    Command::new(bin.join("image-builder"))
        .arg("write")
        .arg(image)
        .arg(device)
        .arg("--pubkey")
        .arg(pubkey)
        .arg("--json")
        .output()
        .expect("run image-builder write")
}

/// Runs `write` against `device` and expects a refusal naming it and `reason`.
fn expect_refusal(image: &Path, device: &str, reason: &str) -> String {
    let output = write_command(image, device);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !output.status.success() && output.stdout.is_empty(),
        "{device} was not refused:\n{stderr}"
    );
    assert!(
        error.contains(&format!("{device} refused: nothing was written")) && error.contains(reason),
        "the refusal of {device} does not name it and {reason:?}: {error}"
    );
    assert!(
        !stderr.contains("written "),
        "progress was shown for a refused device: {stderr}"
    );
    error
}

/// A file of `len` bytes of 0xab.
fn marked_file(path: &Path, len: u64) {
    std::fs::write(path, vec![0xabu8; len as usize]).expect("marked file");
}

#[test]
fn write_puts_the_image_on_a_loop_device_and_refuses_disks_in_use() {
    let built = qemu_tests::built_image("examples/demo.toml", "demo").expect("demo image builds");
    let image_len = std::fs::metadata(&built.image).expect("image").len();
    let dir = tempfile::tempdir().expect("tempdir");

    // A stick 8 MiB larger than the image, full of a marker.
    let stick_file = dir.path().join("stick.img");
    marked_file(&stick_file, image_len + (8 << 20));
    let stick = Loop::over(&stick_file);
    let output = write_command(&built.image, &stick.device);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "write failed:\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let image_hash = sha256_of(&built.image, image_len);
    assert_eq!(report["device"], stick.device.as_str());
    assert_eq!(report["device-description"], "loop device");
    assert_eq!(report["bytes"], image_len);
    assert_eq!(report["sha256"], image_hash.as_str());
    assert_eq!(report["partitions-checked"], 2);
    // The demo boots through shim: shim, GRUB and its script, the UKI,
    // MokManager and the certificate to enrol.
    assert_eq!(report["esp-files-checked"], 6);
    assert_eq!(
        sha256_of(&stick_file, image_len),
        image_hash,
        "the stick's file does not hold the image"
    );
    assert!(
        stderr.contains("written ") && stderr.contains("read back ") && stderr.contains("MiB/s"),
        "no progress on stderr:\n{stderr}"
    );
    println!(
        "write: {} bytes to {} at {:.1} MiB/s, read back identical",
        image_len, stick.device, report["mib-per-second"]
    );

    // A stick with a mounted filesystem: refused, its bytes untouched.
    let busy_file = dir.path().join("busy.img");
    marked_file(&busy_file, image_len + (8 << 20));
    let busy = Loop::over(&busy_file);
    qemu_tests::run_tool(
        Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&busy.device),
    )
    .expect("mkfs.ext4");
    let mounted = Mounted {
        at: tempfile::tempdir().expect("mount point"),
    };
    qemu_tests::run_tool(
        Command::new("mount")
            .arg(&busy.device)
            .arg(mounted.at.path()),
    )
    .expect("mount");
    let error = expect_refusal(
        &built.image,
        &busy.device,
        &format!("is mounted at {}", mounted.at.path().display()),
    );
    drop(mounted);
    // (The filesystem itself changes its bytes at unmount: compare with the image.)
    let busy_bytes = std::fs::read(&busy_file).expect("busy file");
    assert!(
        &busy_bytes[512..520] != b"EFI PART" && sha256_of(&busy_file, image_len) != image_hash,
        "the mounted device was written"
    );
    println!("write: {error}");

    // A credential the image does not take (the demo has no VPN): refused before
    // anything is written.
    let before = sha256_of(&busy_file, image_len);
    let fixtures = qemu_tests::workspace_root().join("qemu-tests/fixtures/vpn");
    let bin = qemu_tests::ensure_release_binaries().expect("release binaries");
    let output = Command::new(bin.join("image-builder"))
        .arg("write")
        .arg(&built.image)
        .arg(&busy.device)
        .arg("--pubkey")
        .arg(qemu_tests::workspace_root().join("keys/test-manifest-signing.pub"))
        .args(["--stick-id", "stick-a", "--client-cert"])
        .arg(fixtures.join("test-stick-a.pem"))
        .arg("--client-key")
        .arg(fixtures.join("test-stick-a.key"))
        .output()
        .expect("run image-builder write");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("takes no personal credential"),
        "a credential for an image without a VPN was not refused:\n{stderr}"
    );
    assert_eq!(
        sha256_of(&busy_file, image_len),
        before,
        "the device was written although the credential was refused"
    );
    println!(
        "write: {}",
        stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default()
    );

    // Too small: refused before anything is written.
    let small_file = dir.path().join("small.img");
    marked_file(&small_file, 1 << 20);
    let small = Loop::over(&small_file);
    let error = expect_refusal(&built.image, &small.device, "the image needs");
    assert!(
        std::fs::read(&small_file)
            .expect("small")
            .iter()
            .all(|&b| b == 0xab),
        "the small device was written"
    );
    println!("write: {error}");

    // The host's own disk: the disk under `/`.
    match host_root_disk() {
        Some(disk) => println!("write: {}", expect_refusal(&built.image, &disk, "in use")),
        None => println!("write: `/` is not on a block device here; the host-disk row did not run"),
    }
    // A fixed disk with nothing mounted: zram, where the kernel has it.
    if Path::new("/dev/zram0").exists() {
        let error = expect_refusal(&built.image, "/dev/zram0", "is a fixed disk");
        println!("write: {error}");
    } else {
        println!("write: no /dev/zram0 here; the fixed-disk row runs in the unit tests only");
    }
}

/// The whole disk that holds `/`, when `/` is on a block device.
fn host_root_disk() -> Option<String> {
    let source =
        qemu_tests::run_tool(Command::new("findmnt").args(["-n", "-o", "SOURCE", "/"])).ok()?;
    let source = PathBuf::from(source.trim());
    if !source.starts_with("/dev") {
        return None;
    }
    let parent = qemu_tests::run_tool(
        Command::new("lsblk")
            .args(["-n", "-d", "-o", "PKNAME"])
            .arg(&source),
    )
    .ok()?;
    match parent.trim() {
        "" => Some(source.display().to_string()),
        name => Some(format!("/dev/{name}")),
    }
}
