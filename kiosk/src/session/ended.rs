//! The conference is over: the conference page reached the conference's
//! "ended" page (`[conference] ended-url`). The runner has closed the browser
//! and shows the stick's "conference ended" screen; Enter on it (the overlay's
//! answer) joins again with a fresh browser, F10 leaves as anywhere else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::overlay::screens::StickScreen;
use crate::session::stick_display::StickDisplay;

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

/// Shows the "conference ended" screen and waits: true when the person joins
/// again, false when they chose to leave (the PC is switching off).
pub fn offer_rejoin(display: &mut StickDisplay) -> bool {
    // An Enter from before this screen showed does not count.
    REJOIN.store(false, Ordering::SeqCst);
    display.show(
        StickScreen::Ended,
        "The conference has ended.\n\nPress Enter to join again, or F10 to switch off.",
    );
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
