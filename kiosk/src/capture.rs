//! Whether a camera or a microphone is live, as the kernel sees it: a process holds
//! a `/dev/video*` node open, or a capture PCM of a sound card is open. Never what
//! the page or the browser says: the indicator must be right when they lie.

use std::path::Path;

use serde::Serialize;

/// Where ALSA shows every PCM substream's state.
pub const PROC_ASOUND: &str = "/proc/asound";

/// Camera and microphone, each live or not, and the kiosk's mute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaptureState {
    pub camera: bool,
    pub microphone: bool,
    /// The kiosk's mute is in force, read back from the kernel (`mute`).
    pub muted: bool,
}

impl CaptureState {
    /// Reads the kernel's view now: every process's open files, every capture PCM
    /// (`muted` is the mute's to say).
    pub fn read() -> CaptureState {
        CaptureState {
            camera: camera_open(Path::new("/proc")),
            microphone: microphone_open(Path::new(PROC_ASOUND)),
            muted: false,
        }
    }

    /// The line the overlay reads on its input: `camera=1 microphone=0 muted=0`.
    pub fn to_line(self) -> String {
        format!(
            "camera={} microphone={} muted={}",
            u8::from(self.camera),
            u8::from(self.microphone),
            u8::from(self.muted)
        )
    }

    /// The inverse of [`CaptureState::to_line`]; `None` for anything else.
    pub fn parse_line(line: &str) -> Option<CaptureState> {
        let mut state = CaptureState::default();
        let mut seen = 0;
        for field in line.split_whitespace() {
            let (key, value) = field.split_once('=')?;
            let on = match value {
                "1" => true,
                "0" => false,
                _ => return None,
            };
            match key {
                "camera" => state.camera = on,
                "microphone" => state.microphone = on,
                "muted" => state.muted = on,
                _ => return None,
            }
            seen += 1;
        }
        (seen == 3).then_some(state)
    }
}

/// A capture substream's `status` file says `closed` when nothing holds it open;
/// an open one shows its state (`state: PREPARED`, `RUNNING`, ...).
pub fn substream_open(status: &str) -> bool {
    let first = status.lines().next().unwrap_or_default().trim();
    !first.is_empty() && first != "closed"
}

/// Whether a capture PCM substream of any card is open:
/// `/proc/asound/card*/pcm*c/sub*/status`.
pub fn microphone_open(asound: &Path) -> bool {
    any_substream(asound, 'c', substream_open)
}

/// Whether the `status` of any substream of a PCM whose name ends in `direction`
/// (`c` capture, `p` playback) of any card, `card*/pcm*<direction>/sub*/status`
/// under `asound`, satisfies `judge`.
pub fn any_substream(asound: &Path, direction: char, judge: impl Fn(&str) -> bool) -> bool {
    let Ok(cards) = std::fs::read_dir(asound) else {
        return false;
    };
    cards
        .flatten()
        .filter(|card| card.file_name().to_string_lossy().starts_with("card"))
        .filter_map(|card| std::fs::read_dir(card.path()).ok())
        .flat_map(|pcms| pcms.flatten())
        .filter(|pcm| {
            let name = pcm.file_name().to_string_lossy().into_owned();
            name.starts_with("pcm") && name.ends_with(direction)
        })
        .filter_map(|pcm| std::fs::read_dir(pcm.path()).ok())
        .flat_map(|subs| subs.flatten())
        .filter(|sub| sub.file_name().to_string_lossy().starts_with("sub"))
        .any(|sub| std::fs::read_to_string(sub.path().join("status")).is_ok_and(|s| judge(&s)))
}

/// Whether an open file's link target is a camera node: `/dev/video0`, ...
pub fn is_camera_node(target: &Path) -> bool {
    target
        .to_str()
        .and_then(|t| t.strip_prefix("/dev/video"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether any process holds a `/dev/video*` node open (`/proc/*/fd/*`).
pub fn camera_open(proc: &Path) -> bool {
    let Ok(processes) = std::fs::read_dir(proc) else {
        return false;
    };
    processes
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|p| std::fs::read_dir(p.path().join("fd")).ok())
        .flat_map(|fds| fds.flatten())
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| is_camera_node(&t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substream_status() {
        for (status, open) in [
            ("closed\n", false),
            ("", false),
            ("state: RUNNING\nowner_pid   : 812\n", true),
            ("state: PREPARED\n", true),
            ("state: SETUP\n", true),
        ] {
            assert_eq!(substream_open(status), open, "{status:?}");
        }
    }

    #[test]
    fn camera_nodes() {
        for (target, camera) in [
            ("/dev/video0", true),
            ("/dev/video12", true),
            ("/dev/video", false),
            ("/dev/videox", false),
            ("/dev/snd/pcmC0D0c", false),
            ("/dev/media0", false),
            ("socket:[1234]", false),
        ] {
            assert_eq!(is_camera_node(Path::new(target)), camera, "{target}");
        }
    }

    #[test]
    fn lines_round_trip() {
        for state in [
            CaptureState::default(),
            CaptureState {
                camera: true,
                microphone: false,
                muted: false,
            },
            CaptureState {
                camera: false,
                microphone: true,
                muted: true,
            },
        ] {
            assert_eq!(CaptureState::parse_line(&state.to_line()), Some(state));
        }
        assert_eq!(
            CaptureState::parse_line("camera=0 microphone=1 muted=1").map(|s| s.muted),
            Some(true)
        );
        for bad in [
            "",
            "camera=1",
            "camera=1 microphone=1",
            "camera=2 microphone=0",
            "camera=1 mic=1",
            "x",
        ] {
            assert_eq!(CaptureState::parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fake_kernel_trees() {
        let root = tempfile::tempdir().expect("tempdir");
        let asound = root.path().join("asound");
        let sub = asound.join("card0/pcm0c/sub0");
        let playback = asound.join("card0/pcm0p/sub0");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::create_dir_all(&playback).expect("mkdir");
        std::fs::write(sub.join("status"), "closed\n").expect("write");
        std::fs::write(playback.join("status"), "state: RUNNING\n").expect("write");
        assert!(!microphone_open(&asound), "playback is not a microphone");
        assert!(any_substream(&asound, 'p', |s| s.contains("RUNNING")));
        assert!(!any_substream(&asound, 'c', |s| s.contains("RUNNING")));
        std::fs::write(sub.join("status"), "state: RUNNING\n").expect("write");
        assert!(microphone_open(&asound));

        let proc = root.path().join("proc");
        let fd = proc.join("812/fd");
        std::fs::create_dir_all(&fd).expect("mkdir");
        std::os::unix::fs::symlink("/dev/null", fd.join("0")).expect("link");
        assert!(!camera_open(&proc));
        std::os::unix::fs::symlink("/dev/video0", fd.join("7")).expect("link");
        assert!(camera_open(&proc));
    }
}
