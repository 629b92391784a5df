//! Boots the conference test image again and again and measures the part of the
//! conference scenario that used to stall: from the kiosk's browser start to the
//! page on the screen, the call connected and media flowing both ways through
//! Janus. Each run is judged like the test judges it; the kiosk's watchdog may
//! recover on the way (its steps are counted and named). Prints one line per run
//! and, at the end, how many passed and the spread of their times as JSON.
//!
//! `cargo run --release -p qemu-tests --bin conference-soak -- --runs 10`
//! (`--hold-page-requests 2 --runs 1`: one run through the watchdog's restart)

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use qemu_tests::lab::conference_lab::{conference_machine, ConferenceLab, CONFERENCE_IMAGE};
use qemu_tests::lab::netlab::Gateway;
use qemu_tests::lab::vpn_session::{VpnSession, BOOT_TIMEOUT};
use qemu_tests::machine::qemu::wait_until;
use qemu_tests::machine::serial::parse_event;

/// Boots the conference image N times in a row and reports how the call started.
#[derive(Debug, Parser)]
struct Args {
    /// How many boots, one after the other.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Hold the browser's first N requests for the page unanswered in every run:
    /// 1 makes the kiosk's watchdog reload the page, 2 makes it restart the browser
    /// (the screen is kept as NAME-restarting.png when it says so).
    #[arg(long, default_value_t = 0)]
    hold_page_requests: u32,
    /// The emulated CPU model under TCG instead of the scenario's (Westmere), to
    /// try whether a stall depends on it (`max` has AVX).
    #[arg(long)]
    cpu: Option<String>,
}

/// From the browser's start to the page on screen: the watchdog's wait, a reload
/// and a restart fit in it.
const PAGE_TIMEOUT: Duration = Duration::from_secs(540);
/// From the page to the call carrying media.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Packets each way and kind that prove media flows (as in tests/conference.rs).
const MEDIA_PACKETS: u64 = 100;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn sessions(s: &VpnSession) -> Vec<Value> {
    s.vm.console()
        .lines()
        .filter_map(|l| parse_event(l, "session"))
        .collect()
}

/// One boot; `Ok`: its figures, `Err`: where it stopped.
fn one_run(name: &str, args: &Args, figures: &mut Value) -> Result<()> {
    let s = VpnSession::start_image(
        name,
        Gateway::Wireguard { wrong_key: false },
        true,
        CONFERENCE_IMAGE,
        |machine| {
            conference_machine(machine);
            if let Some(cpu) = &args.cpu {
                machine.tcg_cpu = Some(cpu.clone());
            }
        },
    )?;
    let lab = ConferenceLab::start(&s.lab)?;
    if args.hold_page_requests > 0 {
        lab.hold_page_requests(args.hold_page_requests)?;
    }
    let started = Instant::now();
    let result = (|| -> Result<()> {
        wait_until(BOOT_TIMEOUT, Duration::from_millis(300), || {
            sessions(&s)
                .into_iter()
                .find(|e| e["state"] == "browser-started")
        })
        .context("no browser-started line")?;
        let browser_start = now_secs();
        figures["qemu_to_browser_s"] = round(started.elapsed().as_secs_f64());
        let mut restart_shown = false;
        let rendered = wait_until(PAGE_TIMEOUT, Duration::from_millis(300), || {
            // The restart screen shows only during the pause: keep it for people.
            if !restart_shown && sessions(&s).iter().any(|e| e["state"] == "restarting") {
                restart_shown = true;
                let shot = qemu_tests::artifacts_dir().join(format!("{name}-restarting.png"));
                let _ = s.vm.screenshot(&shot);
            }
            lab.reports().into_iter().find(|r| r.what == "rendered")
        })
        .context("the page never reported rendered")?;
        figures["browser_to_rendered_s"] = round(rendered.t - browser_start);
        let connected = wait_until(CALL_TIMEOUT, Duration::from_millis(500), || {
            lab.reports()
                .into_iter()
                .find(|r| r.what == "connection" && r.detail == "connected")
        })
        .context("the call never connected")?;
        figures["browser_to_connected_s"] = round(connected.t - browser_start);
        wait_until(CALL_TIMEOUT, Duration::from_secs(2), || {
            lab.janus_media()
                .ok()
                .filter(|m| m.both_ways(MEDIA_PACKETS))
        })
        .context("Janus saw no media both ways")?;
        figures["browser_to_media_s"] = round(now_secs() - browser_start);
        Ok(())
    })();
    let lines = sessions(&s);
    if let Some(page) = lines.iter().find(|e| e["state"] == "page") {
        figures["page_painted_after_ms"] = page["painted_after_ms"].clone();
    }
    figures["watchdog"] = lines
        .iter()
        .filter(|e| {
            ["reloading", "restarting", "failed"].contains(&e["state"].as_str().unwrap_or(""))
        })
        .map(|e| {
            json!(format!(
                "{}: {}",
                e["state"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            ))
        })
        .collect();
    let shot = qemu_tests::artifacts_dir().join(format!("{name}.png"));
    let _ = s.vm.screenshot(&shot);
    let console = s.vm.keep_console(name)?;
    figures["console"] = json!(console.display().to_string());
    result?;
    let report = s.power_off_and_judge()?;
    figures["frames_not_allowed"] = json!(report.leaks.len());
    if !report.leaks.is_empty() {
        bail!("packets outside the tunnel: {:?}", report.leaks);
    }
    Ok(())
}

fn round(secs: f64) -> Value {
    json!((secs * 10.0).round() / 10.0)
}

/// min, median and max of one figure over the passed runs.
fn spread(runs: &[Value], key: &str) -> Value {
    let mut values: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return Value::Null;
    }
    json!({
        "min": values[0],
        "median": values[values.len() / 2],
        "max": values[values.len() - 1],
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    // One image for every run (built now unless STICK_IMAGE names one).
    let built = qemu_tests::built_image(CONFERENCE_IMAGE.0, CONFERENCE_IMAGE.1)?;
    std::env::set_var("STICK_IMAGE", &built.image);
    eprintln!(
        "conference-soak: {} runs of {}",
        args.runs,
        built.image.display()
    );
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for run in 1..=args.runs {
        let name = format!("conference-soak-{run}");
        let started = Instant::now();
        let mut figures = json!({ "run": run });
        let outcome = one_run(&name, &args, &mut figures);
        figures["run_s"] = round(started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => {
                println!("conference-soak: run {run} passed {figures}");
                passed.push(figures);
            }
            Err(err) => {
                figures["error"] = json!(format!("{err:#}"));
                println!("conference-soak: run {run} FAILED {figures}");
                failed.push(figures);
            }
        }
    }
    let summary = json!({
        "runs": args.runs,
        "passed": passed.len(),
        "failed": failed.len(),
        "hold_page_requests": args.hold_page_requests,
        "cpu": args.cpu.as_deref().unwrap_or("Westmere"),
        "qemu_to_browser_s": spread(&passed, "qemu_to_browser_s"),
        "browser_to_rendered_s": spread(&passed, "browser_to_rendered_s"),
        "browser_to_connected_s": spread(&passed, "browser_to_connected_s"),
        "browser_to_media_s": spread(&passed, "browser_to_media_s"),
        "run_s": spread(&passed, "run_s"),
        "watchdog_actions": passed.iter().chain(&failed)
            .flat_map(|r| r["watchdog"].as_array().cloned().unwrap_or_default())
            .collect::<Vec<_>>(),
        "failures": failed.iter().map(|r| r["error"].clone()).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if !failed.is_empty() {
        bail!("{} of {} runs failed", failed.len(), args.runs);
    }
    Ok(())
}
