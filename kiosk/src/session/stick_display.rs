//! What the PC's screen shows for the session: the compositor runs for the
//! whole session, the browser comes and goes in it, and while there is no
//! conference the stick's own screen (`overlay::screens`) covers everything. The
//! same words go to the first virtual terminal, the console gets a `screen` line.

use std::io::Write;
use std::process::ChildStdin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use stick_manifest::session::KeyboardLayout;
use stick_manifest::Language;

use crate::overlay::screens::{screen_line, StickScreen};
use crate::session::compositor::Compositor;

/// The compositor's own output (its tail is in the kiosk's log when it fails).
pub const COMPOSITOR_LOG: &str = "/run/stick-compositor.log";

/// The `screen` console line.
#[derive(Debug, Clone, Serialize)]
struct ScreenLine {
    state: &'static str,
    screen: &'static str,
    code: &'static str,
}

/// The overlay's input of the running compositor, for the one screen that does
/// not come from the session: powering off (the power button is watched by the
/// service's main thread).
static OVERLAY_INPUT: Mutex<Option<Arc<Mutex<ChildStdin>>>> = Mutex::new(None);

/// How long the powering-off screen shows before the machine goes down (the
/// compositor needs a moment to show it).
const POWER_OFF_NOTICE: Duration = Duration::from_secs(3);

/// The powering-off screen over everything (whatever runs), then a pause.
pub fn announce_power_off() {
    let screen = StickScreen::PoweringOff;
    crate::screen::show(&format!("Switching off ...\n\nCode: {}", screen.code()));
    emit_requested(screen);
    let input = OVERLAY_INPUT.lock().ok().and_then(|input| input.clone());
    let Some(input) = input else {
        return;
    };
    let sent = input
        .lock()
        .map_err(|_| std::io::Error::other("poisoned"))
        .and_then(|mut input| writeln!(input, "{}", screen_line(Some(screen))));
    if let Err(err) = sent {
        tracing::warn!("cannot show the powering-off screen: {err}");
        return;
    }
    std::thread::sleep(POWER_OFF_NOTICE);
}

/// The `screen requested` console line.
fn emit_requested(screen: StickScreen) {
    println!(
        "{}",
        crate::console::event_line(
            "screen",
            &ScreenLine {
                state: "requested",
                screen: screen.name(),
                code: screen.code(),
            }
        )
    );
}

/// The session's display: the compositor (started when first needed, started
/// again if it died) and the test banner for the text terminal.
#[derive(Debug)]
pub struct StickDisplay {
    compositor: Option<Compositor>,
    keyboard: Option<KeyboardLayout>,
    language: Language,
    /// A test image's warning, above the terminal's text.
    pub banner: &'static str,
    showing: Option<StickScreen>,
}

impl StickDisplay {
    pub fn new(keyboard: Option<KeyboardLayout>, language: Language, banner: &'static str) -> Self {
        StickDisplay {
            compositor: None,
            keyboard,
            language,
            banner,
            showing: None,
        }
    }

    /// The running compositor, started (again) if needed.
    pub fn compositor(&mut self) -> anyhow::Result<&Compositor> {
        let alive = self.compositor.as_mut().is_some_and(Compositor::alive);
        if !alive {
            if let Some(mut dead) = self.compositor.take() {
                tracing::warn!("the compositor ended; starting it again");
                dead.stop();
            }
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(COMPOSITOR_LOG)
                .map_err(|err| anyhow::anyhow!("cannot create {COMPOSITOR_LOG}: {err}"))?;
            let compositor = Compositor::start(self.keyboard.as_ref(), self.language, &log)?;
            if let Ok(mut input) = OVERLAY_INPUT.lock() {
                *input = Some(compositor.overlay_input());
            }
            self.compositor = Some(compositor);
            self.showing = None;
        }
        self.compositor
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no compositor"))
    }

    /// Shows `screen` over everything, and `text` (after the banner) on the
    /// terminal. Without a compositor, the terminal and the console line remain.
    pub fn show(&mut self, screen: StickScreen, text: &str) {
        if self.showing == Some(screen) {
            return;
        }
        crate::screen::show(&format!("{}{text}\n\nCode: {}", self.banner, screen.code()));
        emit_requested(screen);
        match self.compositor() {
            Ok(compositor) => compositor.show_screen(Some(screen)),
            Err(err) => tracing::warn!("no compositor for the {} screen: {err:#}", screen.name()),
        }
        self.showing = Some(screen);
    }

    /// Takes the stick's screen away (the conference is about to show).
    pub fn clear(&mut self) {
        if self.showing.take().is_some() {
            if let Some(compositor) = &self.compositor {
                compositor.show_screen(None);
            }
        }
    }
}
