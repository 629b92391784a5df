//! Text on the PC's screen when no browser runs: the first virtual terminal.
//! The kiosk's own screens (connecting, stops, refusals) are plain text there, so
//! no web content can imitate or hide them; cage leaves the terminal when it ends.

use std::io::Write;

/// The first virtual terminal: what a PC shows on its screen until a session runs.
/// The console (`/dev/console`) is the serial port when one is named last.
pub const SCREEN_TTY: &str = "/dev/tty1";

/// Clears the terminal and shows `text`. Best effort: a PC without a VT still has
/// the console line.
pub fn show(text: &str) {
    if let Err(err) = std::fs::OpenOptions::new()
        .write(true)
        .open(SCREEN_TTY)
        .and_then(|mut tty| tty.write_all(format!("\x1b[2J\x1b[H\n{text}\n").as_bytes()))
    {
        tracing::warn!("cannot show a message on {SCREEN_TTY}: {err}");
    }
}
