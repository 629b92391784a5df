//! The conference is over: the conference page reached the conference's
//! "ended" page (`[conference] ended-url`). The runner has closed the browser
//! and shows the stick's "conference ended" screen; Enter on it (the overlay's
//! answer) joins again with a fresh browser, F10 leaves as anywhere else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set by the overlay's answer on the "conference ended" screen.
static REJOIN: AtomicBool = AtomicBool::new(false);

/// How often the wait looks for an answer (a person's key, not a hot path).
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// The overlay's answer on the "conference ended" screen (only Enter answers it).
pub fn answered(yes: bool) {
    if yes {
        REJOIN.store(true, Ordering::SeqCst);
    }
}

/// Waits for the person's answer on the "conference ended" screen (the caller
/// has just asked for it): true when they join again, false when they chose to
/// leave (the PC is switching off).
pub fn wait_for_rejoin() -> bool {
    // An Enter from before this screen showed does not count.
    REJOIN.store(false, Ordering::SeqCst);
    loop {
        if crate::session::leave::is_leaving() {
            return false;
        }
        if REJOIN.swap(false, Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(LOOK_EVERY);
    }
}
