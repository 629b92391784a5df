//! The kiosk's own mute, on a key the page cannot catch (`session::shortcuts`):
//! the cameras are taken from everyone (unbound from their drivers) and every
//! sound card's capture switch is turned off. Unmuted, every capture switch is
//! kept on (drivers start some off, and the image runs no `alsactl`). Not a request to the page: the
//! kernel does it, and the kiosk reads the result back before the indicator says
//! "muted". While muted, a camera plugged in later or a switch turned on again (the
//! browser's account may open the mixer) is taken back within [`ENFORCE_EVERY`].

pub mod camera;
pub mod mixer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::mute::camera::{bound_cameras, CameraBinding, SYS_CLASS_VIDEO};
use crate::mute::mixer::{all_capture_switches, DEV_SND};

/// How often the mute is enforced while it is on.
pub const ENFORCE_EVERY: Duration = Duration::from_millis(250);

/// What the person asked for with the mute key.
static WANTED: AtomicBool = AtomicBool::new(false);
/// The kernel's state, read back: every camera gone, every card's capture
/// switched off.
static MUTED: AtomicBool = AtomicBool::new(false);

/// The mute key: flips what is wanted; returns the new wish.
pub fn toggle() -> bool {
    !WANTED.fetch_xor(true, Ordering::SeqCst)
}

/// Whether the mute is in force, as read back from the kernel.
pub fn is_muted() -> bool {
    MUTED.load(Ordering::SeqCst)
}

/// The `mute` console line: what was done and what the kernel says now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MuteLine {
    /// `muted`, `unmuted`, or `incomplete` (muting was asked for and something
    /// could not be taken: the indicator stays red for it).
    pub state: &'static str,
    /// Cameras unbound (muted) or bound again (unmuted).
    pub cameras: Vec<String>,
    /// Capture switches turned off (muted) or on again (unmuted).
    pub switches: Vec<String>,
    /// Cameras still bound to a driver, read back.
    pub cameras_left: usize,
    /// Capture switches that read back on.
    pub switches_on: usize,
    /// Sound cards with a capture PCM but no capture switch (cannot be muted).
    pub cards_without_switch: Vec<String>,
    pub problems: Vec<String>,
}

/// What the kiosk took away, to give it back.
#[derive(Debug, Default)]
pub struct Mute {
    revoked: Vec<CameraBinding>,
    /// The state the last line reported.
    reported: Option<&'static str>,
    /// The problems of the last enforcement (the same again is not reported).
    last_problems: Vec<String>,
}

impl Mute {
    /// Brings the kernel in line with `wanted`. Returns the line when something
    /// changed, and whether the mute is complete.
    pub fn enforce(&mut self, wanted: bool) -> (Option<MuteLine>, bool) {
        let mut problems = Vec::new();
        let mut cameras = Vec::new();
        let mut switches = Vec::new();
        if wanted {
            for camera in bound_cameras(Path::new(SYS_CLASS_VIDEO)) {
                match camera.unbind() {
                    Ok(()) => cameras.push(camera.to_string()),
                    Err(err) => problems.push(format!("cannot unbind {camera}: {err}")),
                }
                if !self.revoked.contains(&camera) {
                    self.revoked.push(camera);
                }
            }
            for switch in all_capture_switches(Path::new(DEV_SND)) {
                if !switch.is_on().unwrap_or(true) {
                    continue;
                }
                match switch.set(false) {
                    Ok(()) => switches.push(switch.to_string()),
                    Err(err) => problems.push(format!("cannot switch off {switch}: {err}")),
                }
            }
        } else {
            for camera in std::mem::take(&mut self.revoked) {
                match camera.bind() {
                    Ok(()) => cameras.push(camera.to_string()),
                    Err(err) => problems.push(format!("cannot bind {camera} again: {err}")),
                }
            }
            // Every capture switch on: the ones the mute turned off, and the ones
            // a driver starts with off (HDA cards do; the image runs no alsactl),
            // also of a headset plugged in later.
            for switch in all_capture_switches(Path::new(DEV_SND)) {
                if switch.is_on().unwrap_or(true) {
                    continue;
                }
                match switch.set(true) {
                    Ok(()) => switches.push(switch.to_string()),
                    Err(err) => problems.push(format!("cannot switch on {switch}: {err}")),
                }
            }
        }
        // The same problems again are not reported every 250 ms.
        let changed = !cameras.is_empty() || !switches.is_empty() || problems != self.last_problems;
        self.last_problems.clone_from(&problems);
        // Unmuted, nothing done, nothing new to say: no read-back (the usual tick).
        if !wanted && !changed && matches!(self.reported, None | Some("unmuted")) {
            return (None, false);
        }
        let readback = Readback::now();
        let complete = wanted && readback.silent();
        let state = match (wanted, complete) {
            (false, _) => "unmuted",
            (true, true) => "muted",
            (true, false) => "incomplete",
        };
        let first = self.reported != Some(state) && (wanted || self.reported.is_some());
        if !changed && !first {
            return (None, complete);
        }
        self.reported = Some(state);
        let line = MuteLine {
            state,
            cameras,
            switches,
            cameras_left: readback.cameras,
            switches_on: readback.switches_on,
            cards_without_switch: readback.cards_without_switch,
            problems,
        };
        (Some(line), complete)
    }
}

/// The kernel's state, read back after enforcing.
#[derive(Debug, Default)]
struct Readback {
    cameras: usize,
    switches_on: usize,
    cards_without_switch: Vec<String>,
}

impl Readback {
    fn now() -> Readback {
        let switches = all_capture_switches(Path::new(DEV_SND));
        let switches_on = switches
            .iter()
            .filter(|s| s.is_on().unwrap_or(true))
            .count();
        let with_switch: Vec<String> = switches.iter().map(|s| s.card()).collect();
        let cards_without_switch = cards_with_capture(Path::new(crate::capture::PROC_ASOUND))
            .into_iter()
            .filter(|card| !with_switch.contains(card))
            .collect();
        Readback {
            cameras: bound_cameras(Path::new(SYS_CLASS_VIDEO)).len(),
            switches_on,
            cards_without_switch,
        }
    }

    fn silent(&self) -> bool {
        self.cameras == 0 && self.switches_on == 0 && self.cards_without_switch.is_empty()
    }
}

/// `cardN` of every sound card with a capture PCM (`/proc/asound/cardN/pcm*c`).
pub fn cards_with_capture(asound: &Path) -> Vec<String> {
    crate::sysfs::entry_names(asound)
        .into_iter()
        .filter(|card| card.starts_with("card"))
        .filter(|card| {
            crate::sysfs::entry_names(&asound.join(card))
                .iter()
                .any(|pcm| pcm.starts_with("pcm") && pcm.ends_with('c'))
        })
        .collect()
}

fn emit(line: &MuteLine) {
    tracing::info!("mute: {line:?}");
    println!("{}", crate::console::event_line("mute", line));
}

/// Enforces the wish every [`ENFORCE_EVERY`]; never returns.
pub fn run() {
    let mut mute = Mute::default();
    loop {
        let (line, complete) = mute.enforce(WANTED.load(Ordering::SeqCst));
        MUTED.store(complete, Ordering::SeqCst);
        if let Some(line) = line {
            emit(&line);
        }
        std::thread::sleep(ENFORCE_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_that_capture() {
        let dir = tempfile::tempdir().expect("tempdir");
        for path in [
            "card0/pcm0p/sub0",
            "card0/pcm0c/sub0",
            "card1/pcm0p/sub0",
            "card2/pcm1c",
            "cards",
        ] {
            std::fs::create_dir_all(dir.path().join(path)).expect("dir");
        }
        assert_eq!(cards_with_capture(dir.path()), ["card0", "card2"]);
    }

    #[test]
    fn readback_is_silent_only_when_everything_is_off() {
        for (cameras, switches_on, without, silent) in [
            (0, 0, vec![], true),
            (1, 0, vec![], false),
            (0, 1, vec![], false),
            (0, 0, vec!["card1".to_string()], false),
        ] {
            let readback = Readback {
                cameras,
                switches_on,
                cards_without_switch: without,
            };
            assert_eq!(readback.silent(), silent, "{readback:?}");
        }
    }

    #[test]
    fn the_key_flips_the_wish() {
        let before = WANTED.load(Ordering::SeqCst);
        assert_eq!(toggle(), !before);
        assert_eq!(toggle(), before);
    }
}
