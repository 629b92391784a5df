//! The text field of the stick's password screens: keys decoded with the
//! keymap the compositor sends (XKB, read by kbvm: the config's layout, German
//! or any other, without a C library), the text kept only in the overlay's
//! memory, one dot per character on screen, sent to the kiosk on Enter.

use kbvm::lookup::LookupTable;
use kbvm::xkb::diagnostic::WriteToLog;
use kbvm::{GroupIndex, Keycode, ModifierMask};

/// Linux key codes the field acts on whatever the layout (`wl_keyboard` sends
/// them as they are).
const KEY_ESC: u32 = 1;
const KEY_BACKSPACE: u32 = 14;
const KEY_ENTER: u32 = 28;
const KEY_KPENTER: u32 = 96;

/// The longest text the field takes, in bytes: the longest password the kiosk
/// gives charon.
pub const MAX_BYTES: usize = crate::network::user_factor::MAX_PASSWORD_BYTES;

/// What one key press means to a text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyInput {
    Char(char),
    Backspace,
    Enter,
    Escape,
    /// A modifier, a function key, a key the keymap gives no character.
    Other,
}

/// The keymap and the modifiers now in force.
#[derive(Default)]
pub struct KeyDecoder {
    table: Option<LookupTable>,
    mods: ModifierMask,
    group: GroupIndex,
}

impl std::fmt::Debug for KeyDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyDecoder")
            .field("keymap", &self.table.is_some())
            .finish()
    }
}

impl KeyDecoder {
    /// Takes the compositor's keymap (XKB text, as `wl_keyboard.keymap` sends it).
    pub fn set_keymap(&mut self, text: &[u8]) -> Result<(), String> {
        // The compositor's keymap ends in a NUL byte.
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        let context = kbvm::xkb::Context::default();
        let keymap = context
            .keymap_from_bytes(WriteToLog, None, text)
            .map_err(|e| format!("the compositor's keymap cannot be read: {e}"))?;
        self.table = Some(keymap.to_builder().build_lookup_table());
        Ok(())
    }

    /// `wl_keyboard.modifiers`: the masks in the keymap's terms.
    pub fn set_modifiers(&mut self, depressed: u32, latched: u32, locked: u32, group: u32) {
        self.mods = ModifierMask(depressed | latched | locked);
        self.group = GroupIndex(group);
    }

    /// What pressing `key` (a Linux key code) means now.
    pub fn decode(&self, key: u32) -> KeyInput {
        match key {
            KEY_ENTER | KEY_KPENTER => return KeyInput::Enter,
            KEY_ESC => return KeyInput::Escape,
            KEY_BACKSPACE => return KeyInput::Backspace,
            _ => {}
        }
        let Some(table) = &self.table else {
            return KeyInput::Other;
        };
        table
            .lookup(self.group, self.mods, Keycode::from_evdev(key))
            .into_iter()
            .find_map(|props| props.char())
            .filter(|c| !c.is_control())
            .map_or(KeyInput::Other, KeyInput::Char)
    }
}

/// What a key did to the field.
#[derive(Debug, PartialEq, Eq)]
pub enum FieldStep {
    /// The text changed; its length in characters (the dots to show).
    Changed(usize),
    /// Enter with text in the field: the text, and the field is empty again.
    Submitted(String),
    /// Nothing to do.
    Unchanged,
}

/// The text typed so far. Overwritten before it is dropped; never printed
/// (its `Debug` shows the length only).
#[derive(Default)]
pub struct TextField {
    text: String,
}

impl std::fmt::Debug for TextField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextField({} characters)", self.len())
    }
}

impl TextField {
    /// The characters typed (the dots shown).
    pub fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn apply(&mut self, input: KeyInput) -> FieldStep {
        match input {
            KeyInput::Char(c) if self.text.len() + c.len_utf8() <= MAX_BYTES => {
                self.text.push(c);
                FieldStep::Changed(self.len())
            }
            KeyInput::Backspace if self.text.pop().is_some() => FieldStep::Changed(self.len()),
            KeyInput::Escape if !self.text.is_empty() => {
                self.wipe();
                FieldStep::Changed(0)
            }
            KeyInput::Enter if !self.text.is_empty() => {
                let text = std::mem::take(&mut self.text);
                FieldStep::Submitted(text)
            }
            _ => FieldStep::Unchanged,
        }
    }

    /// Empties the field, overwriting its bytes first.
    pub fn wipe(&mut self) {
        wipe(std::mem::take(&mut self.text));
    }
}

/// Overwrites a string that held a secret, then frees it.
pub fn wipe(text: String) {
    let mut bytes = text.into_bytes();
    bytes.iter_mut().for_each(|b| *b = 0);
    // Keeps the compiler from dropping the writes as dead.
    std::hint::black_box(&bytes);
}

impl Drop for TextField {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kbvm::xkb::rmlvo::Group;

    /// Linux key codes of the keys the tests press.
    const KEY_Y: u32 = 21;
    const KEY_Z: u32 = 44;
    const KEY_2: u32 = 3;
    const KEY_A: u32 = 30;
    const KEY_LEFTSHIFT: u32 = 42;

    /// A decoder with the keymap `layout` from the host's xkb-data, as the
    /// compositor sends it (its text).
    fn decoder(layout: &str) -> KeyDecoder {
        let context = kbvm::xkb::Context::default();
        let groups: Vec<_> = Group::from_layouts_and_variants(layout, "").collect();
        let keymap = context.keymap_from_names(WriteToLog, None, None, Some(&groups), None);
        let text = format!("{}\0", keymap.format());
        let mut decoder = KeyDecoder::default();
        decoder.set_keymap(text.as_bytes()).expect("keymap");
        decoder
    }

    #[test]
    fn keys_decode_by_the_layout_and_shift() {
        let us = decoder("us");
        let de = decoder("de");
        // Shift's bit in these keymaps is the first modifier (Shift).
        let shift = 1;
        let cases: &[(&str, &KeyDecoder, u32, u32, KeyInput)] = &[
            ("us y", &us, KEY_Y, 0, KeyInput::Char('y')),
            ("de: y and z swap", &de, KEY_Y, 0, KeyInput::Char('z')),
            ("de z", &de, KEY_Z, 0, KeyInput::Char('y')),
            ("us shift 2", &us, KEY_2, shift, KeyInput::Char('@')),
            ("de shift 2", &de, KEY_2, shift, KeyInput::Char('"')),
            ("shift a", &us, KEY_A, shift, KeyInput::Char('A')),
            ("shift alone", &us, KEY_LEFTSHIFT, 0, KeyInput::Other),
            ("enter", &de, KEY_ENTER, 0, KeyInput::Enter),
            ("keypad enter", &de, KEY_KPENTER, 0, KeyInput::Enter),
            ("backspace", &us, KEY_BACKSPACE, 0, KeyInput::Backspace),
            ("escape", &us, KEY_ESC, shift, KeyInput::Escape),
        ];
        for (name, decoder, key, mods, want) in cases {
            let mut decoder_now = KeyDecoder {
                table: decoder.table.clone(),
                ..KeyDecoder::default()
            };
            decoder_now.set_modifiers(*mods, 0, 0, 0);
            assert_eq!(decoder_now.decode(*key), *want, "{name}");
        }
    }

    #[test]
    fn without_a_keymap_only_the_editing_keys_count() {
        let decoder = KeyDecoder::default();
        assert_eq!(decoder.decode(KEY_A), KeyInput::Other);
        assert_eq!(decoder.decode(KEY_ENTER), KeyInput::Enter);
    }

    #[test]
    fn the_field_edits_and_submits() {
        use FieldStep::{Changed, Submitted, Unchanged};
        let mut field = TextField::default();
        let steps: &[(KeyInput, FieldStep)] = &[
            (KeyInput::Enter, Unchanged),
            (KeyInput::Backspace, Unchanged),
            (KeyInput::Char('p'), Changed(1)),
            (KeyInput::Char('ä'), Changed(2)),
            (KeyInput::Other, Unchanged),
            (KeyInput::Backspace, Changed(1)),
            (KeyInput::Char('w'), Changed(2)),
            (KeyInput::Escape, Changed(0)),
            (KeyInput::Char('o'), Changed(1)),
            (KeyInput::Char('k'), Changed(2)),
            (KeyInput::Enter, Submitted("ok".into())),
            (KeyInput::Enter, Unchanged),
        ];
        for (i, (input, want)) in steps.iter().enumerate() {
            assert_eq!(field.apply(*input), *want, "step {i}: {input:?}");
        }
        assert_eq!(field.len(), 0);
    }

    #[test]
    fn the_field_stops_at_its_limit() {
        let mut field = TextField::default();
        for _ in 0..MAX_BYTES {
            assert!(matches!(
                field.apply(KeyInput::Char('x')),
                FieldStep::Changed(_)
            ));
        }
        assert_eq!(field.apply(KeyInput::Char('x')), FieldStep::Unchanged);
        assert_eq!(field.len(), MAX_BYTES);
    }
}
