//! Leaving on purpose: the leave key (F10, `shortcuts`) asks on the stick's own
//! screen; Enter leaves the conference (the browser is closed, so the conference
//! sees the person go) and switches the PC off; Esc goes back to the conference.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use stick_manifest::session::SESSION_UID;

use crate::overlay::screens::StickScreen;
use crate::session::overlay_input;

/// How long the browser gets to close its connections before it is killed.
const BROWSER_GRACE: Duration = Duration::from_secs(5);

/// Set once the person confirmed: the session must not start a browser again.
static LEAVING: AtomicBool = AtomicBool::new(false);

/// Whether the person chose to leave (the runner starts no browser after it).
pub fn is_leaving() -> bool {
    LEAVING.load(Ordering::SeqCst)
}

/// The `leave` console line.
#[derive(Debug, Serialize)]
struct LeaveLine {
    /// `asked`, `cancelled`, `confirmed`, or `unavailable` (no overlay to ask on).
    state: &'static str,
    /// With `confirmed`: browser processes that were running, and how long they
    /// took to end.
    #[serde(skip_serializing_if = "Option::is_none")]
    browser_processes: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    browser_ended_ms: Option<u64>,
}

fn emit(line: &LeaveLine) {
    tracing::info!("leave: {line:?}");
    println!("{}", crate::console::event_line("leave", line));
}

fn emit_state(state: &'static str) {
    emit(&LeaveLine {
        state,
        browser_processes: None,
        browser_ended_ms: None,
    });
}

/// The leave key: puts the question on the screen.
pub fn ask() {
    if is_leaving() {
        return;
    }
    if overlay_input::ask(StickScreen::ConfirmLeave) {
        emit_state("asked");
    } else {
        emit_state("unavailable");
    }
}

/// The overlay's answer to the leave question.
pub fn answered(yes: bool) {
    if !yes {
        emit_state("cancelled");
        return;
    }
    if LEAVING.swap(true, Ordering::SeqCst) {
        return;
    }
    let (processes, ended) = end_browser();
    emit(&LeaveLine {
        state: "confirmed",
        browser_processes: Some(processes),
        browser_ended_ms: Some(ended.as_millis() as u64),
    });
    overlay_input::announce_power_off();
    if let Err(err) = crate::command::run("systemctl", &["poweroff", "--no-wall"]) {
        tracing::error!("cannot power off after leaving: {err}");
    }
}

/// Asks every process of the browser's account to end (Chromium closes its
/// connections on TERM), then kills what is left after [`BROWSER_GRACE`].
fn end_browser() -> (usize, Duration) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let started = Instant::now();
    let pids = crate::session::account::processes_of(SESSION_UID);
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    while started.elapsed() < BROWSER_GRACE {
        if crate::session::account::processes_of(SESSION_UID).is_empty() {
            return (pids.len(), started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in crate::session::account::processes_of(SESSION_UID) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    (pids.len(), started.elapsed())
}
