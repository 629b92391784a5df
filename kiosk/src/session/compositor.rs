//! The compositor of one browser run: labwc on the seat as the screen account,
//! with the stick's overlay (the camera/microphone indicator) on its own socket,
//! fed by the kiosk from the kernel's view of the capture devices. The browser
//! gets a socket of its own through a security context (`security_context`).

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use stick_manifest::session::{KeyboardLayout, SCREEN_GID, SCREEN_UID};
use stick_manifest::Language;

use crate::capture::CaptureState;
use crate::overlay::screens::{
    parse_answer_line, parse_entered_line, parse_screen_line, screen_line, StickScreen,
};
use crate::session::account::{drop_to_account, fresh_session_folder, group_ids};

pub const LABWC: &str = "/usr/bin/labwc";
/// labwc's configuration (rc.xml, menu.xml), from the image's overlay.
pub const LABWC_CONFIG_DIR: &str = "/usr/share/secure-stick/labwc";
/// The screen account's runtime folder: the compositor's own socket lives here,
/// mode 0700, out of the browser's reach.
pub const SCREEN_RUN_DIR: &str = "/run/stick-screen";
/// The compositor's own socket, in [`SCREEN_RUN_DIR`].
pub const COMPOSITOR_SOCKET: &str = "wayland-0";
/// How long labwc gets to open its socket (TCG: seconds).
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the kiosk looks at the capture devices: the indicator must follow
/// within a second.
const CAPTURE_POLL: Duration = Duration::from_millis(250);

/// The indicator line: what the kernel says is live, and when it showed.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
enum IndicatorEvent {
    /// The kernel's view changed; the overlay was told.
    Changed {
        camera: bool,
        microphone: bool,
        muted: bool,
    },
    /// The overlay's frame for that state is on screen.
    Shown {
        camera: bool,
        microphone: bool,
        muted: bool,
        /// From the kiosk seeing the change to the compositor showing the frame.
        after_ms: u64,
    },
}

fn emit(event: &IndicatorEvent) {
    tracing::info!("indicator: {event:?}");
    println!("{}", crate::console::event_line("indicator", event));
}

/// labwc and the overlay, running.
#[derive(Debug)]
pub struct Compositor {
    labwc: Child,
    overlay: Child,
    /// The overlay's input: capture states and screens.
    overlay_input: Arc<Mutex<ChildStdin>>,
    /// Tells the capture watch to end.
    stop: Arc<AtomicBool>,
    /// The stick's screen the compositor showed last (none: taken away).
    last_shown: Arc<Mutex<Option<StickScreen>>>,
}

impl Compositor {
    /// Starts labwc as the screen account, waits for its socket, then starts the
    /// overlay and the capture watch that feeds it.
    /// `answers` get the overlay's answers to questions and its text fields.
    pub fn start(
        keyboard: Option<&KeyboardLayout>,
        language: Language,
        log: &std::fs::File,
        answers: OverlayAnswers,
    ) -> Result<Compositor> {
        let run = PathBuf::from(SCREEN_RUN_DIR);
        kill_account_processes();
        fresh_session_folder(&run, &[], SCREEN_UID, SCREEN_GID)?;
        // The seat (seatd gives it to `video`; input devices come through seatd).
        let groups = group_ids(&["video", "render"]);
        let mut command = Command::new(LABWC);
        command
            .arg("-C")
            .arg(LABWC_CONFIG_DIR)
            .env_clear()
            .env("HOME", &run)
            .env("XDG_RUNTIME_DIR", &run)
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("LIBSEAT_BACKEND", "seatd")
            // Software rendering works on every PC (and in QEMU); no GPU access.
            .env("WLR_RENDERER", "pixman")
            // No Xwayland: an X11 client would be a privileged client of labwc.
            .env("WLR_XWAYLAND", "")
            .envs(keyboard_env(keyboard))
            .current_dir(&run)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the session log")?)
            .stderr(log.try_clone().context("cannot share the session log")?);
        // SAFETY: only async-signal-safe system calls between fork and exec
        // (setsid, setgroups, setgid, setuid); `groups` was built before the fork.
        #[allow(unsafe_code)]
        unsafe {
            let groups = groups.clone();
            command.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                drop_to_account(SCREEN_UID, SCREEN_GID, &groups)
            });
        }
        let mut labwc = command
            .spawn()
            .with_context(|| format!("cannot start {LABWC}"))?;
        let socket = run.join(COMPOSITOR_SOCKET);
        if let Err(err) = wait_for_socket(&mut labwc, &socket) {
            end(&mut labwc);
            return Err(err);
        }
        let mut overlay = match start_overlay(&run, language, log) {
            Ok(overlay) => overlay,
            Err(err) => {
                end(&mut labwc);
                return Err(err);
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stdin = overlay
            .stdin
            .take()
            .context("the overlay has no input pipe")?;
        let stdout = overlay
            .stdout
            .take()
            .context("the overlay has no output pipe")?;
        let overlay_input = Arc::new(Mutex::new(stdin));
        let changed_at = Arc::new(Mutex::new(Instant::now()));
        watch_capture(
            Arc::clone(&overlay_input),
            Arc::clone(&stop),
            Arc::clone(&changed_at),
        );
        let last_shown = Arc::new(Mutex::new(None));
        report_shown(stdout, changed_at, Arc::clone(&last_shown), answers);
        Ok(Compositor {
            labwc,
            overlay,
            overlay_input,
            stop,
            last_shown,
        })
    }

    /// The overlay's input, shared (the powering-off screen uses it).
    pub fn overlay_input(&self) -> Arc<Mutex<ChildStdin>> {
        Arc::clone(&self.overlay_input)
    }

    /// Whether labwc and the overlay still run.
    pub fn alive(&mut self) -> bool {
        matches!(self.labwc.try_wait(), Ok(None)) && matches!(self.overlay.try_wait(), Ok(None))
    }

    /// Puts one of the stick's screens over everything, or takes it away.
    pub fn show_screen(&self, screen: Option<StickScreen>) {
        let sent = self
            .overlay_input
            .lock()
            .map_err(|_| std::io::Error::other("the overlay's input is poisoned"))
            .and_then(|mut input| writeln!(input, "{}", screen_line(screen)));
        if let Err(err) = sent {
            tracing::warn!("cannot tell the overlay about the screen: {err}");
        }
    }

    /// Gives the overlay the rows of a screen's list (or the network a Wi-Fi
    /// screen is about).
    pub fn show_rows(&self, rows: &[crate::network::wifi::choice::Choice]) {
        let sent = self
            .overlay_input
            .lock()
            .map_err(|_| std::io::Error::other("the overlay's input is poisoned"))
            .and_then(|mut input| {
                writeln!(input, "{}", crate::overlay::screens::choices_line(rows))
            });
        if let Err(err) = sent {
            tracing::warn!("cannot give the overlay the list's rows: {err}");
        }
    }

    /// Waits until the compositor has shown `screen` (true), at most `timeout`.
    pub fn wait_shown(&self, screen: StickScreen, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .last_shown
                .lock()
                .is_ok_and(|last| *last == Some(screen))
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The compositor's own socket (root reaches it; the browser does not).
    pub fn own_socket(&self) -> PathBuf {
        Path::new(SCREEN_RUN_DIR).join(COMPOSITOR_SOCKET)
    }

    /// Process ids of labwc and the overlay (for the memory report).
    pub fn pids(&self) -> [u32; 2] {
        [self.labwc.id(), self.overlay.id()]
    }

    /// Ends the overlay, the capture watch and labwc.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        end(&mut self.overlay);
        end(&mut self.labwc);
    }
}

/// Ends a child's process group: TERM, 5 s, KILL.
fn end(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
    let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}

/// Every process of the screen account left from an earlier run is ended.
fn kill_account_processes() {
    for pid in crate::session::account::processes_of(SCREEN_UID) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Waits until labwc listens on its socket; fails when labwc ends first.
fn wait_for_socket(labwc: &mut Child, socket: &Path) -> Result<()> {
    let deadline = Instant::now() + SOCKET_TIMEOUT;
    loop {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = labwc.try_wait() {
            bail!(
                "{LABWC} ended before it opened {} ({status})",
                socket.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{LABWC} did not open {} within {} s",
                socket.display(),
                SOCKET_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `kiosk overlay LANG` as the screen account on the compositor's own socket.
fn start_overlay(run: &Path, language: Language, log: &std::fs::File) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the kiosk binary")?;
    let mut command = Command::new(exe);
    command
        .arg(crate::overlay::client::SUBCOMMAND)
        .arg(language.code())
        .env_clear()
        .env("XDG_RUNTIME_DIR", run)
        .env("WAYLAND_DISPLAY", COMPOSITOR_SOCKET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.try_clone().context("cannot share the session log")?);
    // SAFETY: only async-signal-safe system calls between fork and exec.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            // No supplementary group: it only talks to the compositor.
            drop_to_account(SCREEN_UID, SCREEN_GID, &[])
        });
    }
    command.spawn().context("cannot start the overlay")
}

/// Looks at the capture devices every [`CAPTURE_POLL`] and tells the overlay of
/// every change, until `stop`.
fn watch_capture(
    overlay: Arc<Mutex<ChildStdin>>,
    stop: Arc<AtomicBool>,
    changed_at: Arc<Mutex<Instant>>,
) {
    std::thread::spawn(move || {
        let mut last = CaptureState::default();
        while !stop.load(Ordering::Relaxed) {
            let now = CaptureState {
                muted: crate::mute::is_muted(),
                ..CaptureState::read()
            };
            if now != last {
                if let Ok(mut at) = changed_at.lock() {
                    *at = Instant::now();
                }
                emit(&IndicatorEvent::Changed {
                    camera: now.camera,
                    microphone: now.microphone,
                    muted: now.muted,
                });
                let sent = overlay
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))
                    .and_then(|mut input| writeln!(input, "{}", now.to_line()));
                if sent.is_err() {
                    tracing::warn!("the overlay stopped reading: the indicator is gone");
                    return;
                }
                last = now;
            }
            std::thread::sleep(CAPTURE_POLL);
        }
    });
}

/// Who gets what the person answered on the overlay.
#[derive(Debug, Clone, Copy)]
pub struct OverlayAnswers {
    /// A question's or a screen's answer (Enter: yes, Esc: no), on a thread of
    /// its own.
    pub answered: fn(StickScreen, bool),
    /// A text field's content (hex), on the reading thread.
    pub entered: fn(StickScreen, String),
}

/// Turns the overlay's `shown ...` answers into `indicator shown` and `screen
/// shown` lines, and hands its answers to `answers`.
fn report_shown(
    overlay: std::process::ChildStdout,
    changed_at: Arc<Mutex<Instant>>,
    last_shown: Arc<Mutex<Option<StickScreen>>>,
    answers: OverlayAnswers,
) {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(overlay).lines() {
            let Ok(line) = line else { return };
            if let Some(shown) = line.strip_prefix("shown ").and_then(parse_screen_line) {
                if let Some(screen) = shown {
                    crate::session::overlay_input::emit_screen("shown", screen);
                }
                if let Ok(mut last) = last_shown.lock() {
                    *last = shown;
                }
                continue;
            }
            if let Some((question, yes)) = parse_answer_line(&line) {
                // On its own thread: this one must go on reading the overlay's
                // answers (the powering-off screen's among them).
                let answered = answers.answered;
                std::thread::spawn(move || answered(question, yes));
                continue;
            }
            // Before anything logs the line: it carries what the person typed.
            if let Some((screen, hex)) = parse_entered_line(&line) {
                (answers.entered)(screen, hex.to_string());
                continue;
            }
            if line.starts_with("entered ") {
                tracing::warn!("the overlay sent a text field the kiosk does not take");
                continue;
            }
            let Some(state) = line
                .strip_prefix("shown ")
                .and_then(CaptureState::parse_line)
            else {
                tracing::warn!("the overlay said {line:?}");
                continue;
            };
            let after = changed_at.lock().map(|at| at.elapsed()).unwrap_or_default();
            emit(&IndicatorEvent::Shown {
                camera: state.camera,
                microphone: state.microphone,
                muted: state.muted,
                after_ms: after.as_millis() as u64,
            });
        }
    });
}

/// The keyboard: the config's layout; Ctrl+Alt+F1..F12 switch no terminal
/// (`srvrkeys:none` takes the VT keys out of the keymap; labwc acts on them).
pub fn keyboard_env(keyboard: Option<&KeyboardLayout>) -> Vec<(&'static str, String)> {
    let mut env = vec![("XKB_DEFAULT_OPTIONS", "srvrkeys:none".to_string())];
    if let Some(keyboard) = keyboard {
        env.push(("XKB_DEFAULT_LAYOUT", keyboard.layout.clone()));
        if let Some(variant) = &keyboard.variant {
            env.push(("XKB_DEFAULT_VARIANT", variant.clone()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyboard_environment() {
        let env = |layout: Option<KeyboardLayout>| {
            keyboard_env(layout.as_ref())
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(env(None), ["XKB_DEFAULT_OPTIONS=srvrkeys:none"]);
        assert_eq!(
            env(Some(KeyboardLayout {
                layout: "de".into(),
                variant: Some("nodeadkeys".into()),
            })),
            [
                "XKB_DEFAULT_OPTIONS=srvrkeys:none",
                "XKB_DEFAULT_LAYOUT=de",
                "XKB_DEFAULT_VARIANT=nodeadkeys"
            ]
        );
    }
}
