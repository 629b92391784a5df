//! The camera and microphone indicator: one red box per live device, in the
//! stick's language, at the top right of the screen, above whatever the
//! conference page draws. What is live comes from the kernel (`session::capture`).

use ab_glyph::FontVec;

use crate::capture::CaptureState;
use crate::overlay::paint::{Canvas, Rgba};
use stick_manifest::Language;

/// The indicator's surface, in surface pixels: two rows of [`ROW_HEIGHT`], then
/// the line that names the kiosk's keys.
pub const WIDTH: u32 = 320;
pub const ROW_HEIGHT: u32 = 52;
pub const KEYS_HEIGHT: u32 = 34;
pub const HEIGHT: u32 = 2 * ROW_HEIGHT + KEYS_HEIGHT;
/// Distance from the screen's top and right edges.
pub const MARGIN: i32 = 16;
/// The indicator's red: a reader of a screendump looks for it.
pub const RED: Rgba = Rgba(0xd0, 0x10, 0x10, 0xff);
/// A device the kiosk's mute took away: grey, like a switched-off lamp.
pub const MUTED: Rgba = Rgba(0x50, 0x5a, 0x62, 0xff);
/// Behind the keys' line: the stick screens' slate, nearly opaque.
const KEYS_BACKGROUND: Rgba = Rgba(0x26, 0x32, 0x3a, 0xe0);
const WHITE: Rgba = Rgba(0xff, 0xff, 0xff, 0xff);
const TEXT_SIZE: f32 = 26.0;
const KEYS_TEXT_SIZE: f32 = 17.0;

/// One row of the indicator: its colour and words.
pub type Row = (Rgba, &'static str);

/// The rows for a state: red for a live device, grey for one the mute holds. A
/// camera that is open shows red even while muted (the mute failed: say so).
pub fn rows(state: CaptureState, language: Language) -> Vec<Row> {
    let words = match language {
        Language::De => ["Kamera an", "Mikrofon an", "Kamera aus", "Mikrofon stumm"],
        Language::En => [
            "Camera on",
            "Microphone on",
            "Camera off",
            "Microphone muted",
        ],
    };
    let mut rows = Vec::new();
    if state.camera {
        rows.push((RED, words[0]));
    } else if state.muted {
        rows.push((MUTED, words[2]));
    }
    if state.muted {
        rows.push((MUTED, words[3]));
    } else if state.microphone {
        rows.push((RED, words[1]));
    }
    rows
}

/// The line that names the kiosk's keys (`session::shortcuts`).
pub fn keys_line(state: CaptureState, language: Language) -> &'static str {
    match (language, state.muted) {
        (Language::De, false) => "F9 stumm  ·  F10 beenden",
        (Language::De, true) => "F9 wieder an  ·  F10 beenden",
        (Language::En, false) => "F9 mute  ·  F10 leave",
        (Language::En, true) => "F9 unmute  ·  F10 leave",
    }
}

/// How many times its size the indicator is drawn on an output `height` pixels
/// high: 1 up to 1999 lines, 2 on 4K, so it reads the same from the chair.
pub fn scale_for(height: u32) -> u32 {
    (height / 1000).clamp(1, 4)
}

/// The indicator's pixels at `scale` (`WIDTH * scale` x `HEIGHT * scale`):
/// transparent where nothing is live. Without a font the boxes are still drawn:
/// a red box without words beats no warning.
pub fn paint(
    state: CaptureState,
    language: Language,
    font: Option<&FontVec>,
    scale: u32,
) -> Canvas {
    let k = scale.max(1);
    let f = k as f32;
    let mut canvas = Canvas::new(WIDTH * k, HEIGHT * k);
    for (row, (colour, label)) in rows(state, language).into_iter().enumerate() {
        let top = row as u32 * ROW_HEIGHT;
        canvas.rounded_box(
            0,
            (top + 4) * k,
            WIDTH * k,
            (ROW_HEIGHT - 8) * k,
            12 * k,
            colour,
        );
        // A white dot like a recording lamp, then the words.
        canvas.rounded_box(18 * k, (top + 19) * k, 14 * k, 14 * k, 7 * k, WHITE);
        if let Some(font) = font {
            let baseline = ((top + 35) * k) as f32;
            canvas.text(font, TEXT_SIZE * f, 46.0 * f, baseline, label, WHITE);
        }
    }
    let top = 2 * ROW_HEIGHT;
    canvas.rounded_box(
        0,
        (top + 2) * k,
        WIDTH * k,
        (KEYS_HEIGHT - 4) * k,
        8 * k,
        KEYS_BACKGROUND,
    );
    if let Some(font) = font {
        let line = keys_line(state, language);
        let size = KEYS_TEXT_SIZE * f;
        let x = ((WIDTH * k) as f32 - crate::overlay::paint::measure(font, size, line)) / 2.0;
        canvas.text(font, size, x, ((top + 23) * k) as f32, line, WHITE);
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::paint::{load_font, FONT_PATH};

    fn pixel(colour: Rgba) -> u32 {
        let mut dot = Canvas::new(1, 1);
        dot.fill(colour);
        dot.at(0, 0)
    }

    fn row_colours(canvas: &Canvas) -> Vec<Option<u32>> {
        (0..2)
            .map(|row| canvas.at(WIDTH - 10, row * ROW_HEIGHT + ROW_HEIGHT / 2))
            .map(|p| (p != 0).then_some(p))
            .collect()
    }

    #[test]
    fn one_row_per_live_or_muted_device() {
        let (red, grey) = (Some(pixel(RED)), Some(pixel(MUTED)));
        for (camera, microphone, muted, colours, words) in [
            (false, false, false, [None, None], vec![]),
            (true, false, false, [red, None], vec!["Kamera an"]),
            (false, true, false, [red, None], vec!["Mikrofon an"]),
            (
                true,
                true,
                false,
                [red, red],
                vec!["Kamera an", "Mikrofon an"],
            ),
            (
                false,
                true,
                true,
                [grey, grey],
                vec!["Kamera aus", "Mikrofon stumm"],
            ),
            (
                false,
                false,
                true,
                [grey, grey],
                vec!["Kamera aus", "Mikrofon stumm"],
            ),
            // The mute says it holds, yet a camera is open: red wins.
            (
                true,
                true,
                true,
                [red, grey],
                vec!["Kamera an", "Mikrofon stumm"],
            ),
        ] {
            let state = CaptureState {
                camera,
                microphone,
                muted,
            };
            let canvas = paint(state, Language::De, None, 1);
            assert_eq!(row_colours(&canvas), colours, "{state:?}");
            let labels: Vec<&str> = rows(state, Language::De).iter().map(|r| r.1).collect();
            assert_eq!(labels, words, "{state:?}");
        }
        let both = CaptureState {
            camera: true,
            microphone: true,
            muted: false,
        };
        let labels: Vec<&str> = rows(both, Language::En).iter().map(|r| r.1).collect();
        assert_eq!(labels, ["Camera on", "Microphone on"]);
    }

    #[test]
    fn larger_outputs_get_a_larger_indicator() {
        for (height, scale) in [(768, 1), (1080, 1), (1440, 1), (2160, 2), (4320, 4), (0, 1)] {
            assert_eq!(scale_for(height), scale, "{height}");
        }
        let state = CaptureState {
            camera: true,
            microphone: false,
            muted: false,
        };
        let small = paint(state, Language::De, None, 1);
        let large = paint(state, Language::De, None, 2);
        assert_eq!((large.width, large.height), (2 * WIDTH, 2 * HEIGHT));
        // The same place, twice as far from the corner, has the same colour.
        for (x, y) in [
            (WIDTH - 10, ROW_HEIGHT / 2),
            (100, ROW_HEIGHT + 20),
            (5, HEIGHT - 10),
        ] {
            assert_eq!(large.at(2 * x, 2 * y), small.at(x, y), "({x}, {y})");
        }
    }

    #[test]
    fn words_are_written_in_white() {
        // The host that runs the tests has the same Debian font package.
        let font = load_font(FONT_PATH).expect("fonts-dejavu-core on the test host");
        let state = CaptureState {
            camera: true,
            microphone: false,
            muted: false,
        };
        let plain = paint(state, Language::De, None, 1);
        let written = paint(state, Language::De, Some(&font), 1);
        let changed = |rows: std::ops::Range<u32>| {
            (20..WIDTH - 20)
                .flat_map(|x| rows.clone().map(move |y| (x, y)))
                .filter(|&(x, y)| written.at(x, y) != plain.at(x, y))
                .count()
        };
        assert!(
            changed(8..ROW_HEIGHT - 8) > 300,
            "too little text in the row"
        );
        assert!(
            changed(2 * ROW_HEIGHT + 4..HEIGHT - 4) > 150,
            "no keys line"
        );
    }
}
