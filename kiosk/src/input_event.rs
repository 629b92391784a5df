//! Raw `struct input_event` records read from `/dev/input/eventN`.

use std::path::{Path, PathBuf};

/// Where the kernel lists input devices.
pub const SYS_CLASS_INPUT: &str = "/sys/class/input";

/// `/dev/input/eventN` of every event device whose sysfs folder
/// (`SYS_CLASS_INPUT/eventN`) `wanted` accepts.
pub fn event_devices(sys_class_input: &Path, wanted: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    crate::sysfs::entry_names(sys_class_input)
        .into_iter()
        .filter(|name| name.starts_with("event"))
        .filter(|name| wanted(&sys_class_input.join(name)))
        .map(|name| Path::new("/dev/input").join(name))
        .collect()
}

/// `struct input_event` on 64-bit Linux: timeval (16), type (2), code (2), value (4).
pub const EVENT_SIZE: usize = 24;
pub const EV_KEY: u16 = 0x01;

/// The part of an event the kiosk looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputEvent {
    pub kind: u16,
    pub code: u16,
    /// For keys: 1 down, 0 up, 2 autorepeat.
    pub value: i32,
}

impl InputEvent {
    pub fn parse(raw: &[u8; EVENT_SIZE]) -> InputEvent {
        InputEvent {
            kind: u16::from_ne_bytes([raw[16], raw[17]]),
            code: u16::from_ne_bytes([raw[18], raw[19]]),
            value: i32::from_ne_bytes([raw[20], raw[21], raw[22], raw[23]]),
        }
    }

    /// A key going down (not its release or autorepeat).
    pub fn is_key_press(&self) -> bool {
        self.kind == EV_KEY && self.value == 1
    }
}

/// A raw event, for tests.
pub fn raw(kind: u16, code: u16, value: i32) -> [u8; EVENT_SIZE] {
    let mut e = [0u8; EVENT_SIZE];
    e[16..18].copy_from_slice(&kind.to_ne_bytes());
    e[18..20].copy_from_slice(&code.to_ne_bytes());
    e[20..24].copy_from_slice(&value.to_ne_bytes());
    e
}
