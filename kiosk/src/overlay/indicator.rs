//! The camera and microphone indicator: one red box per live device, in the
//! stick's language, at the top right of the screen, above whatever the
//! conference page draws. What is live comes from the kernel (`session::capture`).

use ab_glyph::FontVec;

use crate::capture::CaptureState;
use crate::overlay::paint::{Canvas, Rgba};
use stick_manifest::Language;

/// The indicator's surface, in surface pixels: two rows of [`ROW_HEIGHT`].
pub const WIDTH: u32 = 320;
pub const ROW_HEIGHT: u32 = 52;
pub const HEIGHT: u32 = 2 * ROW_HEIGHT;
/// Distance from the screen's top and right edges.
pub const MARGIN: i32 = 16;
/// The indicator's red: a reader of a screendump looks for it.
pub const RED: Rgba = Rgba(0xd0, 0x10, 0x10, 0xff);
const WHITE: Rgba = Rgba(0xff, 0xff, 0xff, 0xff);
const TEXT_SIZE: f32 = 26.0;

/// The words for each live device.
pub fn labels(state: CaptureState, language: Language) -> Vec<&'static str> {
    let (camera, microphone) = match language {
        Language::De => ("Kamera an", "Mikrofon an"),
        Language::En => ("Camera on", "Microphone on"),
    };
    let mut labels = Vec::new();
    if state.camera {
        labels.push(camera);
    }
    if state.microphone {
        labels.push(microphone);
    }
    labels
}

/// The indicator's pixels: transparent where nothing is live. Without a font
/// the boxes are still drawn: a red box without words beats no warning.
pub fn paint(state: CaptureState, language: Language, font: Option<&FontVec>) -> Canvas {
    let mut canvas = Canvas::new(WIDTH, HEIGHT);
    for (row, label) in labels(state, language).into_iter().enumerate() {
        let top = row as u32 * ROW_HEIGHT;
        canvas.rounded_box(0, top + 4, WIDTH, ROW_HEIGHT - 8, 12, RED);
        // A white dot like a recording lamp, then the words.
        canvas.rounded_box(18, top + 19, 14, 14, 7, WHITE);
        if let Some(font) = font {
            canvas.text(font, TEXT_SIZE, 46.0, (top + 35) as f32, label, WHITE);
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::paint::{load_font, FONT_PATH};

    const RED_PIXEL: u32 = 0xffd0_1010;

    fn red_rows(canvas: &Canvas) -> Vec<bool> {
        (0..2)
            .map(|row| canvas.at(WIDTH - 10, row * ROW_HEIGHT + ROW_HEIGHT / 2) == RED_PIXEL)
            .collect()
    }

    #[test]
    fn one_red_row_per_live_device() {
        for (camera, microphone, rows, words) in [
            (false, false, [false, false], vec![]),
            (true, false, [true, false], vec!["Kamera an"]),
            (false, true, [true, false], vec!["Mikrofon an"]),
            (true, true, [true, true], vec!["Kamera an", "Mikrofon an"]),
        ] {
            let state = CaptureState { camera, microphone };
            let canvas = paint(state, Language::De, None);
            assert_eq!(red_rows(&canvas), rows, "{state:?}");
            assert_eq!(labels(state, Language::De), words);
        }
        let both = CaptureState {
            camera: true,
            microphone: true,
        };
        assert_eq!(labels(both, Language::En), ["Camera on", "Microphone on"]);
    }

    #[test]
    fn words_are_written_in_white() {
        // The host that runs the tests has the same Debian font package.
        let font = load_font(FONT_PATH).expect("fonts-dejavu-core on the test host");
        let state = CaptureState {
            camera: true,
            microphone: false,
        };
        let plain = paint(state, Language::De, None);
        let written = paint(state, Language::De, Some(&font));
        let changed = (46..WIDTH - 20)
            .flat_map(|x| (8..ROW_HEIGHT - 8).map(move |y| (x, y)))
            .filter(|&(x, y)| written.at(x, y) != plain.at(x, y))
            .count();
        assert!(changed > 300, "only {changed} pixels of text");
    }
}
