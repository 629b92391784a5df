//! The running overlay's input, reachable from any thread: the power button's
//! (the powering-off screen) and the keyboard's (the leave question) as well as
//! the session's. The `screen requested` console line.

use std::io::Write;
use std::process::ChildStdin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::overlay::screens::{question_line, screen_line, StickScreen};

/// The overlay's input of the running compositor (none before it starts).
static OVERLAY_INPUT: Mutex<Option<Arc<Mutex<ChildStdin>>>> = Mutex::new(None);

/// Makes `input` (a newly started overlay's) the one every thread writes to.
pub fn connect(input: Arc<Mutex<ChildStdin>>) {
    if let Ok(mut current) = OVERLAY_INPUT.lock() {
        *current = Some(input);
    }
}

/// The `screen` console line.
#[derive(Debug, Clone, Serialize)]
struct ScreenLine {
    state: &'static str,
    screen: &'static str,
    code: &'static str,
}

/// How long the powering-off screen shows before the machine goes down (the
/// compositor needs a moment to show it).
const POWER_OFF_NOTICE: Duration = Duration::from_secs(3);

/// Writes one line to the running overlay; false when there is none or it
/// stopped reading.
fn tell_overlay(line: &str) -> bool {
    let input = OVERLAY_INPUT.lock().ok().and_then(|input| input.clone());
    let Some(input) = input else {
        return false;
    };
    let sent = input
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))
        .and_then(|mut input| writeln!(input, "{line}"));
    if let Err(err) = sent {
        tracing::warn!("cannot tell the overlay {line:?}: {err}");
        return false;
    }
    true
}

/// The powering-off screen over everything (whatever runs), then a pause.
pub fn announce_power_off() {
    let screen = StickScreen::PoweringOff;
    crate::screen::show(&format!("Switching off ...\n\nCode: {}", screen.code()));
    emit_requested(screen);
    if tell_overlay(&screen_line(Some(screen))) {
        std::thread::sleep(POWER_OFF_NOTICE);
    }
}

/// Puts `question` over everything, with the keyboard; false when no overlay
/// runs to ask it.
pub fn ask(question: StickScreen) -> bool {
    emit_requested(question);
    tell_overlay(&question_line(question))
}

/// The `screen requested` console line.
pub fn emit_requested(screen: StickScreen) {
    emit_screen("requested", screen);
}

/// A `screen` console line: `state` is `requested` (the kiosk asked) or `shown`
/// (the compositor put it on the output).
pub fn emit_screen(state: &'static str, screen: StickScreen) {
    println!(
        "{}",
        crate::console::event_line(
            "screen",
            &ScreenLine {
                state,
                screen: screen.name(),
                code: screen.code(),
            }
        )
    );
}
