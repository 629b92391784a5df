//! What the PC's screen shows for the session: the compositor runs for the
//! whole session, the browser comes and goes in it, and while there is no
//! conference the stick's own screen (`overlay::screens`) covers everything. The
//! same words go to the first virtual terminal, the console gets a `screen` line.

use std::time::Duration;

use stick_manifest::session::KeyboardLayout;
use stick_manifest::Language;

use crate::network::wifi::choice::Choice;
use crate::overlay::screens::StickScreen;
use crate::session::compositor::{Compositor, OverlayAnswers};
use crate::session::overlay_input::emit_requested;

/// The compositor's own output (its tail is in the kiosk's log when it fails).
pub const COMPOSITOR_LOG: &str = "/run/stick-compositor.log";

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
    /// The rows the overlay has (a list's, or the network a screen is about).
    rows: Vec<Choice>,
}

impl StickDisplay {
    pub fn new(keyboard: Option<KeyboardLayout>, language: Language, banner: &'static str) -> Self {
        StickDisplay {
            compositor: None,
            keyboard,
            language,
            banner,
            showing: None,
            rows: Vec::new(),
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
            let compositor =
                Compositor::start(self.keyboard.as_ref(), self.language, &log, ANSWERS)?;
            crate::session::overlay_input::connect(compositor.overlay_input());
            self.compositor = Some(compositor);
            self.showing = None;
            self.rows.clear();
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

    /// [`StickDisplay::show`] with the rows of its list or the network it is
    /// about (sent to the overlay when they change).
    pub fn show_with_rows(&mut self, screen: StickScreen, text: &str, rows: Vec<Choice>) {
        if self.rows != rows {
            match self.compositor() {
                Ok(compositor) => compositor.show_rows(&rows),
                Err(err) => tracing::warn!("no compositor for the list's rows: {err:#}"),
            }
            self.rows = rows;
        }
        self.show(screen, text);
    }

    /// [`StickDisplay::show`], then waits until the compositor has shown it (at
    /// most `timeout`): for the first screen, which the next must not replace
    /// before anyone could see it.
    pub fn show_and_wait(&mut self, screen: StickScreen, text: &str, timeout: Duration) {
        self.show(screen, text);
        if let Some(compositor) = &self.compositor {
            if !compositor.wait_shown(screen, timeout) {
                tracing::warn!(
                    "the {} screen did not show within {timeout:?}",
                    screen.name()
                );
            }
        }
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

/// Where the overlay's answers go.
const ANSWERS: OverlayAnswers = OverlayAnswers { answered, entered };

/// A text field's content or a list's choice, to whom it belongs: the Wi-Fi
/// network chosen and its passphrase to the Wi-Fi thread, the password or PIN
/// to the network thread.
fn entered(screen: StickScreen, hex: String) {
    use crate::network::wifi::choice;
    match screen {
        StickScreen::WifiChoose => {
            let name = hex::decode(&hex)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default();
            if !choice::choose(&name) {
                tracing::warn!("the network chosen cannot be joined: {name:?}");
            }
        }
        StickScreen::WifiPassphrase | StickScreen::WifiRefused => choice::typed(&hex),
        _ if screen.takes_text() => crate::network::user_factor::typed(hex),
        _ => {}
    }
}

/// The overlay's answers, to whom they belong (on the compositor's report thread).
fn answered(screen: StickScreen, yes: bool) {
    match screen {
        StickScreen::ConfirmLeave => crate::session::leave::answered(yes),
        StickScreen::Ended => crate::session::ended::answered(yes),
        StickScreen::WifiPassphrase | StickScreen::WifiRefused if !yes => {
            crate::network::wifi::choice::back_to_list()
        }
        other => tracing::warn!("an answer on a screen that asks nothing: {}", other.name()),
    }
}
