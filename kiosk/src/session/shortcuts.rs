//! The keyboards, read by the kiosk itself (`/dev/input/event*`, no grab), so the
//! page can neither catch nor fake what matters here:
//! - the kiosk's own keys: F9 (or a keyboard's microphone-mute key) mutes and
//!   unmutes (`mute`), F10 asks to leave the conference (`session::leave`), F8
//!   opens and closes a network's sign-in page before the tunnel (`session::portal`);
//! - shortcuts that would leave the conference in an ordinary browser or desktop
//!   (new windows, devtools, printing, closing, switching terminals) are logged
//!   when pressed: the browser policy, kiosk mode, labwc without bindings or VT
//!   switching and the session guard block them; the line says someone tried,
//!   and the QEMU test checks nothing got out.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::input_event::{InputEvent, EVENT_SIZE, SYS_CLASS_INPUT};

const RESCAN_EVERY: Duration = Duration::from_secs(5);

// Linux key codes (input-event-codes.h).
const KEY_LEFTCTRL: u16 = 29;
const KEY_RIGHTCTRL: u16 = 97;
const KEY_LEFTSHIFT: u16 = 42;
const KEY_RIGHTSHIFT: u16 = 54;
const KEY_LEFTALT: u16 = 56;
const KEY_RIGHTALT: u16 = 100;
const KEY_LEFTMETA: u16 = 125;
const KEY_RIGHTMETA: u16 = 126;
const KEY_Q: u16 = 16;
const KEY_F8: u16 = 66;
const KEY_F9: u16 = 67;
const KEY_F10: u16 = 68;
const KEY_MICMUTE: u16 = 248;

/// The kiosk's own keys, pressed without a modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KioskKey {
    /// Mute or unmute camera and microphone.
    Mute,
    /// Leave the conference and switch off (after a question).
    Leave,
    /// Open or close the network's sign-in page (before the tunnel only).
    Portal,
}

impl KioskKey {
    fn name(self) -> &'static str {
        match self {
            KioskKey::Mute => "mute",
            KioskKey::Leave => "leave",
            KioskKey::Portal => "portal",
        }
    }
}

/// The kiosk's key for `code` pressed with `mods` held, if any.
pub fn kiosk_key(mods: Modifiers, code: u16) -> Option<KioskKey> {
    if mods != Modifiers::default() {
        return None;
    }
    match code {
        KEY_F9 | KEY_MICMUTE => Some(KioskKey::Mute),
        KEY_F10 => Some(KioskKey::Leave),
        KEY_F8 => Some(KioskKey::Portal),
        _ => None,
    }
}

/// Modifier keys held down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modifiers {
    pub ctrl: bool,
    pub shift: bool,
    pub alt: bool,
    pub meta: bool,
}

/// Key names of the chords below, by Linux key code.
fn key_name(code: u16) -> Option<&'static str> {
    Some(match code {
        1 => "esc",
        14 => "backspace",
        17 => "w",
        20 => "t",
        22 => "u",
        23 => "i",
        24 => "o",
        25 => "p",
        31 => "s",
        36 => "j",
        46 => "c",
        49 => "n",
        59 => "f1",
        60 => "f2",
        61 => "f3",
        62 => "f4",
        63 => "f5",
        64 => "f6",
        65 => "f7",
        66 => "f8",
        67 => "f9",
        68 => "f10",
        87 => "f11",
        88 => "f12",
        _ => return None,
    })
}

/// What a chord would do in an unlocked browser or desktop; `None`: not an escape.
pub fn chord_meaning(mods: Modifiers, code: u16) -> Option<(String, &'static str)> {
    let key = key_name(code)?;
    let m = (mods.ctrl, mods.shift, mods.alt);
    let meaning = match (m, key) {
        ((true, false, false), "n") => "new window",
        ((true, true, false), "n") => "incognito window",
        ((true, false, false), "t") => "new tab",
        ((true, false, false), "w") | ((true, false, false), "f4") => "close the tab",
        ((false, false, true), "f4") => "close the window",
        ((true, true, false), "w") => "close the window",
        ((true, true, false), "i") | ((true, true, false), "j") | ((true, true, false), "c") => {
            "developer tools"
        }
        ((false, false, false), "f12") => "developer tools",
        ((true, false, false), "p") | ((true, true, false), "p") => "print",
        ((true, false, false), "u") => "view source",
        ((true, false, false), "o") => "open a file",
        ((true, false, false), "s") => "save the page",
        ((true, true, false), "esc") => "task manager",
        ((true, false, true), "backspace") => "end the graphical session",
        ((true, false, true), f) | ((false, false, true), f) if f.starts_with('f') => {
            "switch the virtual terminal"
        }
        _ => return None,
    };
    let mut keys = Vec::new();
    for (held, name) in [
        (mods.ctrl, "ctrl"),
        (mods.shift, "shift"),
        (mods.alt, "alt"),
    ] {
        if held {
            keys.push(name);
        }
    }
    keys.push(key);
    Some((keys.join("+"), meaning))
}

/// Follows modifiers across events and names the chords pressed.
#[derive(Debug, Default)]
pub struct ChordTracker {
    mods: Modifiers,
}

impl ChordTracker {
    /// The kiosk's key `event` presses, with the modifiers held before it.
    pub fn kiosk_key(&self, event: InputEvent) -> Option<KioskKey> {
        event
            .is_key_press()
            .then(|| kiosk_key(self.mods, event.code))
            .flatten()
    }

    pub fn feed(&mut self, event: InputEvent) -> Option<(String, &'static str)> {
        if event.kind != crate::input_event::EV_KEY {
            return None;
        }
        let down = event.value != 0;
        match event.code {
            KEY_LEFTCTRL | KEY_RIGHTCTRL => self.mods.ctrl = down,
            KEY_LEFTSHIFT | KEY_RIGHTSHIFT => self.mods.shift = down,
            KEY_LEFTALT | KEY_RIGHTALT => self.mods.alt = down,
            KEY_LEFTMETA | KEY_RIGHTMETA => self.mods.meta = down,
            code if event.is_key_press() => return chord_meaning(self.mods, code),
            _ => {}
        }
        None
    }
}

/// True when a `capabilities/key` bitmap (hex words, most significant first)
/// has the key `code`.
pub fn has_key(bitmap: &str, code: u16) -> bool {
    let words: Vec<u64> = bitmap
        .split_whitespace()
        .rev()
        .filter_map(|w| u64::from_str_radix(w, 16).ok())
        .collect();
    let (word, bit) = (usize::from(code) / 64, u32::from(code) % 64);
    words.get(word).is_some_and(|w| w & (1 << bit) != 0)
}

/// `/dev/input/eventN` of every keyboard (a device with letter keys and Ctrl).
pub fn keyboards(sys_class_input: &Path) -> Vec<PathBuf> {
    crate::input_event::event_devices(sys_class_input, |device| {
        std::fs::read_to_string(device.join("device/capabilities/key"))
            .is_ok_and(|bits| has_key(&bits, KEY_Q) && has_key(&bits, KEY_LEFTCTRL))
    })
}

#[derive(Serialize)]
struct Shortcut<'a> {
    keys: &'a str,
    means: &'a str,
}

/// The `key` console line: one of the kiosk's keys was pressed.
#[derive(Serialize)]
struct KeyLine {
    key: &'static str,
    /// For the mute key: whether muting is now wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    mute_wanted: Option<bool>,
}

/// Does what a kiosk key asks.
fn act(key: KioskKey) {
    let mute_wanted = match key {
        KioskKey::Mute => Some(crate::mute::toggle()),
        KioskKey::Leave | KioskKey::Portal => None,
    };
    tracing::info!("kiosk key {} pressed", key.name());
    println!(
        "{}",
        crate::console::event_line(
            "key",
            &KeyLine {
                key: key.name(),
                mute_wanted
            }
        )
    );
    match key {
        KioskKey::Leave => crate::session::leave::ask(),
        KioskKey::Portal => crate::session::portal::key_pressed(),
        KioskKey::Mute => {}
    }
}

fn watch_keyboard(device: PathBuf) {
    let mut file = match std::fs::File::open(&device) {
        Ok(file) => file,
        Err(err) => {
            tracing::warn!("cannot watch the keyboard {}: {err}", device.display());
            return;
        }
    };
    let mut tracker = ChordTracker::default();
    let mut raw = [0u8; EVENT_SIZE];
    while file.read_exact(&mut raw).is_ok() {
        let event = InputEvent::parse(&raw);
        if let Some(key) = tracker.kiosk_key(event) {
            act(key);
        }
        if let Some((keys, means)) = tracker.feed(event) {
            tracing::warn!("shortcut {keys} ({means}) pressed");
            println!(
                "{}",
                crate::console::event_line("shortcut", &Shortcut { keys: &keys, means })
            );
        }
    }
}

/// Watches every keyboard, including ones plugged in later; never returns.
pub fn run() {
    let mut watched: Vec<PathBuf> = Vec::new();
    loop {
        for device in keyboards(Path::new(SYS_CLASS_INPUT)) {
            if !watched.contains(&device) {
                watched.push(device.clone());
                std::thread::spawn(move || watch_keyboard(device));
            }
        }
        std::thread::sleep(RESCAN_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input_event::{raw, EV_KEY};

    fn press(code: u16) -> InputEvent {
        InputEvent::parse(&raw(EV_KEY, code, 1))
    }
    fn release(code: u16) -> InputEvent {
        InputEvent::parse(&raw(EV_KEY, code, 0))
    }

    #[test]
    fn chords_are_named() {
        type Case<'a> = (&'a [u16], u16, Option<(&'a str, &'a str)>);
        let cases: &[Case] = &[
            (&[KEY_LEFTCTRL], 49, Some(("ctrl+n", "new window"))),
            (
                &[KEY_RIGHTCTRL, KEY_LEFTSHIFT],
                49,
                Some(("ctrl+shift+n", "incognito window")),
            ),
            (&[KEY_LEFTCTRL], 20, Some(("ctrl+t", "new tab"))),
            (
                &[KEY_LEFTCTRL, KEY_LEFTSHIFT],
                23,
                Some(("ctrl+shift+i", "developer tools")),
            ),
            (&[], 88, Some(("f12", "developer tools"))),
            (&[KEY_LEFTCTRL], 25, Some(("ctrl+p", "print"))),
            (&[KEY_LEFTCTRL], 17, Some(("ctrl+w", "close the tab"))),
            (&[KEY_LEFTALT], 62, Some(("alt+f4", "close the window"))),
            (
                &[KEY_LEFTCTRL, KEY_LEFTALT],
                60,
                Some(("ctrl+alt+f2", "switch the virtual terminal")),
            ),
            (
                &[KEY_LEFTCTRL, KEY_LEFTALT],
                14,
                Some(("ctrl+alt+backspace", "end the graphical session")),
            ),
            (&[KEY_LEFTCTRL], 22, Some(("ctrl+u", "view source"))),
            (&[], 49, None),
            (&[KEY_LEFTSHIFT], 49, None),
            (&[KEY_LEFTCTRL], 30, None),
        ];
        for (held, key, want) in cases {
            let mut tracker = ChordTracker::default();
            for m in *held {
                assert_eq!(tracker.feed(press(*m)), None);
            }
            let got = tracker.feed(press(*key));
            let want = want.map(|(k, m)| (k.to_string(), m));
            assert_eq!(got, want, "{held:?} + {key}");
            // Releasing everything: the same key alone is no chord (unless F12).
            for m in *held {
                tracker.feed(release(*m));
            }
            if *key != 88 {
                assert_eq!(tracker.feed(press(*key)), None, "{key} after release");
            }
        }
    }

    #[test]
    fn kiosk_keys_only_without_modifiers() {
        for (held, key, want) in [
            (&[][..], KEY_F9, Some(KioskKey::Mute)),
            (&[][..], KEY_MICMUTE, Some(KioskKey::Mute)),
            (&[][..], KEY_F10, Some(KioskKey::Leave)),
            (&[][..], KEY_F8, Some(KioskKey::Portal)),
            (&[][..], 65, None),
            (&[KEY_LEFTCTRL, KEY_LEFTALT][..], KEY_F9, None),
            (&[KEY_LEFTALT][..], KEY_F10, None),
            (&[KEY_LEFTSHIFT][..], KEY_F10, None),
        ] {
            let mut tracker = ChordTracker::default();
            for m in held {
                tracker.feed(press(*m));
            }
            assert_eq!(tracker.kiosk_key(press(key)), want, "{held:?} + {key}");
            assert_eq!(tracker.kiosk_key(release(key)), None, "release of {key}");
        }
    }

    #[test]
    fn key_bitmaps() {
        // A PS/2 keyboard's bitmap (abridged): words for codes 0-63 last.
        let keyboard = "402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe";
        assert!(has_key(keyboard, KEY_Q));
        assert!(has_key(keyboard, KEY_LEFTCTRL));
        let power_button = "10000000000000 0";
        assert!(!has_key(power_button, KEY_Q));
        assert!(has_key(power_button, 116));
        assert!(!has_key("", KEY_Q));
    }
}
