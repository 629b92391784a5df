//! What `kiosk.service` runs: the boot status and storage lines, then (fail
//! closed) the refusal screen and power-off, or device watching, the network and
//! the conference session on their own threads until the power button.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use stick_manifest::network::NetworkPolicy;
use stick_manifest::session::SessionPolicy;

use crate::boot::refusal::{Refusal, RefusalKind};
use crate::boot::status::Status;
use crate::overlay::screens::StickScreen;
use crate::session::stick_display::StickDisplay;
use crate::storage::report::StorageReport;

/// Time to read a refusal in text (an image without the stick's screens) before
/// the machine powers off.
const POWEROFF_DELAY: std::time::Duration = std::time::Duration::from_secs(10);
/// Time to read a refusal's screen and note its helpdesk code before the machine
/// powers off by itself; the power button ends it sooner.
const REFUSAL_SCREEN_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// The whole run: never returns unless writing the status line or powering off fails.
pub fn run() -> ExitCode {
    let observations = crate::boot::probe::observe();
    // The network part of the policy read from the verity root (none: no network).
    let network = observations
        .policy
        .as_ref()
        .and_then(|policy| policy.network.clone());
    let session = observations
        .policy
        .as_ref()
        .and_then(|policy| policy.session.clone());
    let language = observations
        .policy
        .as_ref()
        .map(|policy| policy.language)
        .unwrap_or_default();
    // Only a manifest whose signature holds gives the clock its floor.
    let build_time = observations
        .manifest
        .manifest
        .as_ref()
        .map(|manifest| manifest.build_time);
    let mut status = Status::evaluate(observations);
    let storage = crate::storage::watch::settled_storage(status.cmdline_root_hash.as_deref());
    add_storage_refusals(&mut status, &storage);
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = print_status(&mut stdout, &status, &storage) {
        tracing::error!("writing the status line: {err}");
        return ExitCode::FAILURE;
    }
    if !status.ok {
        // Images with a session have the compositor for the stick's screens.
        let display = session
            .as_ref()
            .filter(|_| std::path::Path::new(crate::session::compositor::LABWC).exists())
            .map(|session| StickDisplay::new(session.keyboard.clone(), language, ""));
        return refuse(stdout, &status.refusals, display);
    }
    drop(stdout);
    if let Some(build_time) = build_time {
        // Before any network and any certificate check.
        println!(
            "{}",
            crate::boot::clock::hold_floor(build_time).console_line()
        );
    }
    let root_hash = status.cmdline_root_hash.clone();
    start_jobs(root_hash, storage, network, session, language);
    // The session runs on its own thread; this one waits for the power button.
    wait_for_power_button()
}

/// A storage lock that failed is a refusal like any boot check; logs the verdict.
fn add_storage_refusals(status: &mut Status, storage: &StorageReport) {
    if !storage.ok {
        status.ok = false;
        status.refusals.extend(
            storage
                .problems
                .iter()
                .map(|p| Refusal::new(RefusalKind::Storage, format!("storage lock: {p}"))),
        );
    }
    if status.ok {
        tracing::info!("boot status ok");
    } else {
        tracing::error!("boot status NOT ok");
    }
}

/// The status and storage console lines (an error when they cannot be written),
/// then one `WARNING:` line per warning.
fn print_status(
    stdout: &mut std::io::StdoutLock<'static>,
    status: &Status,
    storage: &StorageReport,
) -> std::io::Result<()> {
    writeln!(stdout, "{}", status.console_line())
        .and_then(|()| writeln!(stdout, "{}", storage.console_line()))
        .and_then(|()| stdout.flush())?;
    for warning in &status.warnings {
        let _ = writeln!(stdout, "WARNING: {warning}");
    }
    Ok(())
}

/// Fail closed: says why on the console and the screen (the stick's screen for
/// the first refusal's kind where the image has one, else text), then powers off;
/// the power button powers off sooner.
fn refuse(
    mut stdout: std::io::StdoutLock<'static>,
    refusals: &[Refusal],
    display: Option<StickDisplay>,
) -> ExitCode {
    let delay = if display.is_some() {
        REFUSAL_SCREEN_TIME
    } else {
        POWEROFF_DELAY
    };
    let mut message: String = refusals
        .iter()
        .map(|reason| format!("REFUSED: {reason}\n"))
        .collect();
    message.push_str(&format!(
        "No conference session will start. Powering off in {} s.\n",
        delay.as_secs()
    ));
    let _ = stdout.write_all(message.as_bytes());
    let _ = stdout.flush();
    drop(stdout);
    let screen = refusals.first().map(|r| StickScreen::refused(r.kind));
    // Kept until the power-off: dropping it would not end the compositor, but
    // the screen belongs to it.
    let _display = match (display, screen) {
        (Some(mut display), Some(screen)) => {
            display.show(screen, &message);
            Some(display)
        }
        _ => {
            crate::screen::show(&message);
            None
        }
    };
    std::thread::spawn(wait_for_power_button);
    std::thread::sleep(delay);
    if let Err(err) = crate::command::run("systemctl", &["poweroff", "--no-wall"]) {
        // kiosk.service's OnFailure= powers off instead.
        tracing::error!("cannot power off: {err}");
        return ExitCode::FAILURE;
    }
    loop {
        std::thread::park();
    }
}

/// Device watching, the network and (with a `[conference]`) the keyboard
/// shortcuts and the session, each on its own thread.
fn start_jobs(
    root_hash: Option<String>,
    storage: StorageReport,
    network: Option<NetworkPolicy>,
    session: Option<SessionPolicy>,
    language: stick_manifest::Language,
) {
    std::thread::spawn(move || crate::storage::watch::watch_devices(root_hash, storage));
    let reachable: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let has_network = network.is_some();
    let portal = network.as_ref().and_then(|network| network.portal.clone());
    std::thread::spawn(move || crate::network::watch::run(network, reachable));
    if let Some(session) = session {
        std::thread::spawn(crate::session::shortcuts::run);
        std::thread::spawn(crate::mute::run);
        std::thread::spawn(move || {
            crate::session::runner::run(session, language, has_network, portal, reachable)
        });
    }
}

/// Waits for the power button and powers off; without a power button, waits for good.
fn wait_for_power_button() -> ExitCode {
    match crate::power_button::wait_for_press() {
        Ok(device) => {
            tracing::info!("power button pressed ({})", device.display());
            println!("Power button pressed: powering off.");
            crate::session::overlay_input::announce_power_off();
            if let Err(err) = crate::command::run("systemctl", &["poweroff", "--no-wall"]) {
                tracing::error!("cannot power off: {err}");
                return ExitCode::FAILURE;
            }
        }
        Err(err) => tracing::warn!("power button: {err}"),
    }
    loop {
        std::thread::park();
    }
}
