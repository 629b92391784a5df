//! Benchmark: prints build and boot figures as JSON.
//!
//! `cargo run --release -p qemu-tests --bin bench [-- --cache-dir DIR]`
//!
//! - cold build: an empty cache folder (mmdebstrap downloads and builds both trees);
//! - warm rebuilds: only the kiosk binary changed, only an overlay changed;
//! - sizes: image, root squashfs, UKI;
//! - reproducibility: two builds of the same inputs, partition by partition;
//! - verify time and boot time (QEMU start to the kiosk status line), with Secure
//!   Boot (test keys enrolled) and without keys (the kiosk then refuses).
//!
//! Figures, never assertions: the machine is shared and noisy.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use qemu_tests::machine::qemu::{Accel, Machine, MachineConfig, SecureBootKeys};
use qemu_tests::machine::serial::parse_status;
use qemu_tests::{run_builder, workspace_root, BuiltImage};
use serde_json::{json, Value};

fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let started = Instant::now();
    let value = f().with_context(|| what.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("bench: {what}: {secs:.1} s");
    Ok((value, (secs * 10.0).round() / 10.0))
}

fn partitions(image: &BuiltImage) -> Vec<(String, Option<String>)> {
    image.manifest["partitions"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .map(|p| {
                    (
                        p["role"].as_str().unwrap_or("?").to_string(),
                        p["sha256"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn root_size(image: &BuiltImage) -> u64 {
    image.manifest["partitions"]
        .as_array()
        .and_then(|parts| parts.iter().find(|p| p["role"] == "root"))
        .and_then(|p| p["size"].as_u64())
        .unwrap_or(0)
}

fn as_refs(v: &[std::ffi::OsString]) -> Vec<&OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let root = workspace_root();
    let cache = args
        .iter()
        .position(|a| a == "--cache-dir")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    let scratch = tempfile::Builder::new()
        .prefix("stick-bench-")
        .tempdir_in("/var/tmp")?;
    let cold_cache = scratch.path().join("cache");
    let cache = cache.unwrap_or(cold_cache);
    let config = root.join("examples/demo.toml");
    let release = qemu_tests::ensure_release_binaries()?;

    let cache_arg = cache.as_os_str();
    let overlays = root.join("overlays");
    let base_args = |overlays: &Path, kiosk: &Path| -> Vec<std::ffi::OsString> {
        vec![
            "--cache-dir".into(),
            cache_arg.to_owned(),
            "--overlays".into(),
            overlays.as_os_str().to_owned(),
            "--kiosk".into(),
            kiosk.as_os_str().to_owned(),
        ]
    };

    let kiosk = release.join("kiosk");

    let a = base_args(&overlays, &kiosk);
    let (cold, cold_secs) = timed("cold build", || {
        run_builder(&config, &scratch.path().join("cold"), &as_refs(&a))
    })?;
    let (same, same_secs) = timed("warm rebuild, nothing changed", || {
        run_builder(&config, &scratch.path().join("same"), &as_refs(&a))
    })?;

    let changed_kiosk = scratch.path().join("kiosk");
    let mut bytes = std::fs::read(&kiosk)?;
    bytes.extend_from_slice(b"bench");
    std::fs::write(&changed_kiosk, bytes)?;
    let k = base_args(&overlays, &changed_kiosk);
    let (_, kiosk_secs) = timed("warm rebuild, kiosk changed", || {
        run_builder(&config, &scratch.path().join("kiosk-changed"), &as_refs(&k))
    })?;

    let changed_overlays = scratch.path().join("overlays");
    std::process::Command::new("cp")
        .arg("-a")
        .arg(&overlays)
        .arg(&changed_overlays)
        .status()?;
    std::fs::write(changed_overlays.join("etc/bench-marker"), "changed\n")?;
    let o = base_args(&changed_overlays, &kiosk);
    let (_, overlay_secs) = timed("warm rebuild, overlay changed", || {
        run_builder(
            &config,
            &scratch.path().join("overlay-changed"),
            &as_refs(&o),
        )
    })?;

    let identical: Vec<Value> = partitions(&cold)
        .into_iter()
        .zip(partitions(&same))
        .map(|((role, a), (_, b))| json!({"role": role, "identical": a.is_some() && a == b, "hashed": a.is_some()}))
        .collect();
    let images_identical = std::fs::read(&cold.image)? == std::fs::read(&same.image)?;

    let pubkey = root.join("keys/test-manifest-signing.pub");
    let (_, verify_secs) = timed("verify", || {
        let out = std::process::Command::new(release.join("image-builder"))
            .arg("verify")
            .arg(&same.image)
            .arg("--pubkey")
            .arg(&pubkey)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "verify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    })?;

    let accel = Accel::detect();
    let disks_dir = tempfile::tempdir()?;
    let disks = qemu_tests::machine::disks::make_hostile_disks(disks_dir.path(), None)?;
    // (seconds to the status line, status ok, storage-lock helper ms in all)
    let boot = |secure_boot: bool, with_disks: bool| -> Result<(f64, bool, f64)> {
        let mut config = MachineConfig::new("bench-boot").stick(&same.image);
        if secure_boot {
            config = config.secure_boot(SecureBootKeys::test_keys());
        }
        if with_disks {
            for (i, disk) in disks.iter().enumerate() {
                config.extra_args.extend(disk.qemu_args(i));
            }
        }
        let mut vm = Machine::start(&config)?;
        let line = vm.wait_for_line(Duration::from_secs(600), |l| parse_status(l).is_some())?;
        let secs = (vm.elapsed().as_secs_f64() * 10.0).round() / 10.0;
        let (_, lock_ms) = qemu_tests::machine::serial::storage_lock_times(&vm.console());
        Ok((
            secs,
            parse_status(&line).map(|s| s.ok).unwrap_or(false),
            lock_ms,
        ))
    };
    let (boot_secs, ok, lock_ms_stick_only) = boot(true, false)?;
    let (boot_plain_secs, plain_ok, _) = boot(false, false)?;
    let (boot_disks_secs, disks_ok, lock_ms_disks) = boot(true, true)?;

    let report = json!({
        "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "accel": format!("{accel:?}")},
        "cold_build_s": cold_secs,
        "warm_rebuild_nothing_changed_s": same_secs,
        "warm_rebuild_kiosk_changed_s": kiosk_secs,
        "warm_rebuild_overlay_changed_s": overlay_secs,
        "image_bytes": std::fs::metadata(&same.image)?.len(),
        "root_squashfs_bytes": root_size(&same),
        "uki_bytes": same.manifest["esp-files"][0]["size"],
        "packages": same.manifest["packages"].as_array().map(|p| p.len()),
        "reproducible_partitions": identical,
        "whole_images_identical": images_identical,
        "verify_s": verify_secs,
        "boot_to_kiosk_status_secure_boot_s": boot_secs,
        "boot_status_ok_secure_boot": ok,
        "boot_to_kiosk_status_no_keys_s": boot_plain_secs,
        "boot_status_ok_no_keys": plain_ok,
        "boot_to_kiosk_status_with_4_pc_disks_s": boot_disks_secs,
        "boot_status_ok_with_4_pc_disks": disks_ok,
        "storage_lock_helper_ms_stick_only": (lock_ms_stick_only * 10.0).round() / 10.0,
        "storage_lock_helper_ms_with_4_pc_disks": (lock_ms_disks * 10.0).round() / 10.0,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
