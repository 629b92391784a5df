//! The PC's power button powers the stick off cleanly. The image has no logind
//! (no D-Bus), so the kiosk reads the ACPI button's input events itself.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Name the kernel's ACPI button driver gives the power button.
const POWER_BUTTON_NAME: &str = "Power Button";
use crate::input_event::{InputEvent, EVENT_SIZE, SYS_CLASS_INPUT};

const KEY_POWER: u16 = 116;

/// `/dev/input/eventN` of every input device named "Power Button".
pub fn power_buttons(sys_class_input: &Path) -> Vec<PathBuf> {
    crate::input_event::event_devices(sys_class_input, |device| {
        std::fs::read_to_string(device.join("device/name"))
            .is_ok_and(|n| n.trim() == POWER_BUTTON_NAME)
    })
}

/// True when `event` (one raw `struct input_event`) is the power key going down.
pub fn is_power_press(event: &[u8; EVENT_SIZE]) -> bool {
    let event = InputEvent::parse(event);
    event.is_key_press() && event.code == KEY_POWER
}

/// Blocks until a power button is pressed; `Err` when there is none to watch.
pub fn wait_for_press() -> std::io::Result<PathBuf> {
    let buttons = power_buttons(Path::new(SYS_CLASS_INPUT));
    let Some(device) = buttons.first().cloned() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no input device named \"Power Button\"",
        ));
    };
    let mut file = std::fs::File::open(&device)?;
    let mut event = [0u8; EVENT_SIZE];
    loop {
        file.read_exact(&mut event)?;
        if is_power_press(&event) {
            return Ok(device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input_event::{raw as event, EV_KEY};

    #[test]
    fn only_the_power_key_going_down_counts() {
        let cases = [
            ("press", event(EV_KEY, KEY_POWER, 1), true),
            ("release", event(EV_KEY, KEY_POWER, 0), false),
            ("autorepeat", event(EV_KEY, KEY_POWER, 2), false),
            ("other key", event(EV_KEY, 30, 1), false),
            ("sync event", event(0, 0, 0), false),
        ];
        for (name, e, want) in cases {
            assert_eq!(is_power_press(&e), want, "{name}");
        }
    }

    #[test]
    fn power_buttons_are_found_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (event, name) in [
            ("event0", "AT Translated Set 2 keyboard"),
            ("event2", "Power Button"),
        ] {
            std::fs::create_dir_all(dir.path().join(event).join("device")).expect("dir");
            std::fs::write(
                dir.path().join(event).join("device/name"),
                format!("{name}\n"),
            )
            .expect("name");
        }
        std::fs::create_dir_all(dir.path().join("input2")).expect("dir");
        assert_eq!(
            power_buttons(dir.path()),
            vec![PathBuf::from("/dev/input/event2")]
        );
    }
}
