//! Boot benchmark: where each image's boot spends its time, side by side.
//!
//! `cargo run --release -p qemu-tests --bin bench-boot -- LABEL=IMAGE [LABEL=IMAGE ...]`
//!
//! Boots each image once, one after the other, the way the boot scenario does
//! (OVMF with the test keys enrolled, the image as a USB stick, TCG unless KVM
//! works), and prints one JSON line per image: seconds from QEMU's start to the
//! kernel, to the first line a program printed, to the switch to the verified
//! root, to the kiosk's status line, to the session's start, the browser's start
//! and the first page it presented (`null` where the image never got there within
//! `--page-timeout`, 300 s by default; an image whose session does not start
//! within a minute of its status line is not waited for). After each image but
//! the first, one more line gives its times to the first userspace line, the
//! status line and the page over the first image's. A screendump of each is kept
//! as `target/qemu-tests/artifacts/bench-boot-LABEL.png`.
//!
//! Side by side with the stick without its browser
//! (`qemu-tests/configs/no-browser.toml`), what the browser costs at boot:
//! `bench-boot -- no-browser=out/no-browser-0.1.0.raw demo=out/demo-0.1.0.raw`
//! (the baseline first: the ratios are the demo's times over it).
//!
//! Figures, never assertions: the machine is shared and noisy.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use qemu_tests::machine::qemu::{Machine, MachineConfig, SecureBootKeys};
use qemu_tests::machine::serial::parse_event;
use qemu_tests::machine::timeline::{kernel_seconds, BootMilestones};
use serde_json::json;

/// From power-on to the kiosk's status line: a slow TCG boot takes about 2 min.
const STATUS_TIMEOUT: Duration = Duration::from_secs(600);
/// From the status line to the session's start (seconds, where there is one).
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// The milestones compared between the first image and each other one.
const COMPARED: &[&str] = &["first_userspace_line", "kiosk_status", "page_shown"];

struct Run {
    label: String,
    image: PathBuf,
}

fn parse_args(args: &[String]) -> Result<(Vec<Run>, Duration)> {
    let mut runs = Vec::new();
    let mut page_timeout = Duration::from_secs(300);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--page-timeout" {
            let secs = args
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .context("--page-timeout needs whole seconds")?;
            page_timeout = Duration::from_secs(secs);
        } else if let Some((label, image)) = arg.split_once('=') {
            let image = PathBuf::from(image);
            if !image.is_file() {
                bail!("{label}: no image at {}", image.display());
            }
            runs.push(Run {
                label: label.to_string(),
                image,
            });
        } else {
            bail!("{arg:?}: expected LABEL=IMAGE or --page-timeout SECONDS");
        }
    }
    if runs.is_empty() {
        bail!("usage: bench-boot [--page-timeout SECONDS] LABEL=IMAGE [LABEL=IMAGE ...]");
    }
    Ok((runs, page_timeout))
}

fn round(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}

fn boot(run: &Run, page_timeout: Duration) -> Result<serde_json::Value> {
    let config = MachineConfig::new(&format!("bench-boot-{}", run.label))
        .stick(&run.image)
        .secure_boot(SecureBootKeys::test_keys());
    let mut vm = Machine::start(&config)?;
    vm.wait_for_line(STATUS_TIMEOUT, |l| l.contains("] Linux version "))?;
    // The kernel's clock starts about when its first line shows (0.5 s polls).
    let kernel_at = vm.elapsed().as_secs_f64();
    vm.wait_for_line(STATUS_TIMEOUT, |l| parse_event(l, "status").is_some())?;
    // An image without [conference] starts no session; one with it starts it
    // right after the status line.
    let session = vm.wait_for_line(SESSION_TIMEOUT, |l| {
        parse_event(l, "session").is_some_and(|e| e["state"] == "starting")
    });
    // The page may never come (the demo reaches no network): wait, then go on.
    let page = session.and_then(|_| {
        vm.wait_for_line(page_timeout, |l| {
            parse_event(l, "session").is_some_and(|e| e["state"] == "page")
        })
    });
    std::fs::create_dir_all(qemu_tests::artifacts_dir())?;
    let shot = qemu_tests::artifacts_dir().join(format!("bench-boot-{}.png", run.label));
    if let Err(e) = vm.screenshot(&shot) {
        eprintln!("bench-boot: {}: no screendump: {e:#}", run.label);
    }
    let console = vm.console();
    vm.keep_console(&format!("bench-boot-{}", run.label))?;
    let kernel_offset = console
        .lines()
        .find(|l| l.contains("] Linux version "))
        .and_then(kernel_seconds)
        .map_or(kernel_at, |stamp| kernel_at - stamp);
    let at = |secs: Option<f64>| secs.map(|s| round(kernel_offset + s));
    let m = BootMilestones::from_console(&console);
    Ok(json!({
        "label": run.label,
        "image": run.image,
        "image_bytes": std::fs::metadata(&run.image)?.len(),
        "accel": format!("{:?}", qemu_tests::machine::qemu::Accel::detect()),
        "seconds_from_qemu_start": {
            "kernel": round(kernel_at),
            "first_userspace_line": at(m.first_userspace),
            "switch_root": at(m.switch_root),
            "kiosk_status": at(m.kiosk_status),
            "session_starting": at(m.session_starting),
            "browser_started": at(m.browser_started),
            "page_shown": at(m.page_shown),
        },
        "browser_start_to_page_s": m.page_shown.zip(m.browser_started).map(|(p, b)| round(p - b)),
        "page_seen": page.is_ok(),
    }))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (runs, page_timeout) = parse_args(&args)?;
    let mut first: Option<serde_json::Value> = None;
    for run in &runs {
        eprintln!("bench-boot: {} ({})", run.label, run.image.display());
        let figures = boot(run, page_timeout).with_context(|| run.label.clone())?;
        println!("{figures}");
        match &first {
            None => first = Some(figures),
            Some(first) => println!("{}", ratios(first, &figures)),
        }
    }
    Ok(())
}

/// Each compared milestone of `other` over the same milestone of `first`
/// (`null` where either image never got there).
fn ratios(first: &serde_json::Value, other: &serde_json::Value) -> serde_json::Value {
    let at = |figures: &serde_json::Value, milestone: &str| {
        figures["seconds_from_qemu_start"][milestone].as_f64()
    };
    let mut ratio = serde_json::Map::new();
    for milestone in COMPARED {
        let value = at(other, milestone)
            .zip(at(first, milestone))
            .filter(|(_, base)| *base > 0.0)
            .map(|(seconds, base)| (seconds / base * 100.0).round() / 100.0);
        ratio.insert(milestone.to_string(), json!(value));
    }
    json!({"ratio": other["label"], "over": first["label"], "seconds": ratio})
}
