//! A stick screen's pixels at any size from 1024 x 768 to 4K: a coloured band by
//! severity, the title, what is happening, what to do, and the helpdesk code in a
//! box. Sizes follow the screen's height, so the words stay readable.

use ab_glyph::FontVec;
use stick_manifest::Language;

use crate::network::wifi::choice::Choice;
use crate::overlay::paint::{wrap, Canvas, Rgba};
use crate::overlay::screens::{ScreenText, Severity, StickScreen};

/// The screens' background: dark slate, unlike any conference page's colour
/// the tests look for.
pub const BACKGROUND: Rgba = Rgba(0x26, 0x32, 0x3a, 0xff);
const TITLE: Rgba = Rgba(0xff, 0xff, 0xff, 0xff);
const BODY: Rgba = Rgba(0xd8, 0xde, 0xe3, 0xff);
const CODE_BOX: Rgba = Rgba(0x3a, 0x48, 0x52, 0xff);
/// The text field: a light box the dots stand out on.
const FIELD_BOX: Rgba = Rgba(0xf4, 0xf6, 0xf8, 0xff);
const FIELD_DOTS: Rgba = Rgba(0x26, 0x32, 0x3a, 0xff);
/// One dot per character typed; more than this many show as this many.
const MAX_DOTS: usize = 32;

/// The band's colour: blue to wait, amber to act, red for a stop.
pub fn band_colour(severity: Severity) -> Rgba {
    match severity {
        Severity::Wait => Rgba(0x2d, 0x6c, 0xdf, 0xff),
        Severity::Act => Rgba(0xe0, 0xa0, 0x00, 0xff),
        Severity::Stop => Rgba(0xc6, 0x28, 0x28, 0xff),
    }
}

/// A strip's height for an output `output_height` pixels high: two lines
/// readable from a step back, at most a tenth of the screen.
pub fn strip_height(output_height: u32) -> u32 {
    (output_height / 10).clamp(56, 160)
}

/// A strip over the top of the screen: the band's colour all over, the title
/// on the first line, what is happening and what to do on the second.
fn paint_strip(
    screen: StickScreen,
    language: Language,
    font: Option<&FontVec>,
    width: u32,
    height: u32,
) -> Canvas {
    let mut canvas = Canvas::new(width, height);
    canvas.fill(band_colour(screen.severity()));
    let Some(font) = font else {
        return canvas;
    };
    let text = screen.text(language);
    let h = height as f32;
    let layout = StripLayout::fit(font, &text, width, height);
    canvas.text(
        font,
        layout.title_size,
        layout.left,
        h * 0.44,
        text.title,
        STRIP_TEXT,
    );
    let second = format!("{} {}", text.body, text.action);
    canvas.text(
        font,
        layout.body_size,
        layout.left,
        h * 0.84,
        &second,
        STRIP_TEXT,
    );
    canvas
}

/// A strip's two lines: sizes from its height, made smaller where a line would
/// not fit the width (each line must be whole: the words say what this page is).
#[derive(Debug, Clone, PartialEq)]
pub struct StripLayout {
    pub left: f32,
    pub title_size: f32,
    pub body_size: f32,
}

impl StripLayout {
    pub fn fit(font: &FontVec, text: &ScreenText, width: u32, height: u32) -> StripLayout {
        let h = height as f32;
        let left = h * 0.3;
        let room = width as f32 - 2.0 * left;
        let shrink = |size: f32, line: &str| {
            let wide = crate::overlay::paint::measure(font, size, line);
            if wide > room {
                size * room / wide
            } else {
                size
            }
        };
        StripLayout {
            left,
            title_size: shrink(h * 0.34, text.title),
            body_size: shrink(h * 0.22, &format!("{} {}", text.body, text.action)),
        }
    }
}

/// A strip's words: dark on its amber.
const STRIP_TEXT: Rgba = Rgba(0x1a, 0x1a, 0x1a, 0xff);

/// Where each part of a screen goes, in pixels (pure: tested at every size).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub band_height: u32,
    pub left: f32,
    pub text_width: f32,
    pub title_size: f32,
    pub body_size: f32,
}

/// What a screen shows besides its words.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// The dots of its text field (a screen that takes text).
    pub field: Option<usize>,
    /// Its list's rows, or the one network a Wi-Fi screen is about.
    pub rows: &'a [Choice],
    /// The marked row of a list.
    pub marked: usize,
}

/// Rows of a list on screen at once (the mark scrolls the rest into view).
pub const LIST_ROWS: usize = 5;

/// Where a screen's title starts: a quarter down, a list's screen higher (its
/// rows need the room).
fn top(screen: StickScreen, height: u32) -> f32 {
    let share = if screen.takes_choice() { 0.1 } else { 0.25 };
    height as f32 * share
}

/// The height one row of a list takes.
fn row_height(layout: &Layout) -> f32 {
    layout.body_size * 1.8
}

/// The height a screen's list, or its network's line, takes below the words.
fn rows_height(screen: StickScreen, layout: &Layout) -> f32 {
    if screen.takes_choice() {
        row_height(layout) * LIST_ROWS as f32 + layout.body_size * 1.5
    } else if screen.names_network() {
        row_height(layout) + layout.body_size * 0.5
    } else {
        0.0
    }
}

/// A row's signal as bars (filled and empty blocks).
fn bars_text(bars: u8) -> String {
    let filled = usize::from(bars.min(4));
    format!(
        "{}{}",
        "\u{25ae}".repeat(filled),
        "\u{25af}".repeat(4 - filled)
    )
}

/// What a row says about joining it.
fn security_text(security: &str, language: Language) -> &'static str {
    match (security, language) {
        ("open", Language::De) => "offen",
        ("open", Language::En) => "open",
        ("psk", _) => "WPA",
        ("8021x", Language::De) => "802.1X (nicht möglich)",
        ("8021x", Language::En) => "802.1X (not possible)",
        (_, Language::De) => "nicht möglich",
        (_, Language::En) => "not possible",
    }
}

/// The list's rows from `y` on, the marked one in a light box; returns the new `y`.
fn paint_rows(
    canvas: &mut Canvas,
    font: &FontVec,
    layout: &Layout,
    extras: Extras<'_>,
    language: Language,
    mut y: f32,
) -> f32 {
    let size = layout.body_size;
    let first = extras.marked.saturating_sub(LIST_ROWS - 1);
    if extras.rows.is_empty() {
        let searching = match language {
            Language::De => "Suche WLANs \u{2026}",
            Language::En => "Looking for networks \u{2026}",
        };
        canvas.text(
            font,
            size,
            layout.left,
            y + row_height(layout),
            searching,
            BODY,
        );
    }
    for (index, row) in extras.rows.iter().enumerate().skip(first).take(LIST_ROWS) {
        let top = y + size * 0.3;
        y += row_height(layout);
        let marked = index == extras.marked;
        let colour = if marked {
            canvas.rounded_box(
                layout.left as u32,
                top as u32,
                layout.text_width as u32,
                (size * 1.6) as u32,
                (size / 4.0) as u32,
                FIELD_BOX,
            );
            FIELD_DOTS
        } else {
            BODY
        };
        let baseline = top + size * 1.15;
        let pad = size * 0.6;
        let name_room = layout.text_width * 0.5 - pad;
        let name = crate::overlay::paint::fit_line(font, size, &row.name, name_room);
        canvas.text(font, size, layout.left + pad, baseline, &name, colour);
        let right = layout.left + layout.text_width * 0.55;
        canvas.text(font, size, right, baseline, &bars_text(row.bars), colour);
        let security = security_text(row.security, language);
        canvas.text(font, size, right + size * 4.0, baseline, security, colour);
    }
    y
}

/// The line naming the network a Wi-Fi screen is about; returns the new `y`.
fn paint_network_name(
    canvas: &mut Canvas,
    font: &FontVec,
    layout: &Layout,
    name: &str,
    language: Language,
    y: f32,
) -> f32 {
    let y = y + row_height(layout);
    let line = match language {
        Language::De => format!("WLAN: {name}"),
        Language::En => format!("Network: {name}"),
    };
    let line = crate::overlay::paint::fit_line(font, layout.body_size, &line, layout.text_width);
    canvas.text(font, layout.body_size, layout.left, y, &line, TITLE);
    y + layout.body_size * 0.5
}

/// A text field holding `dots` characters (one dot each), from `y` on; returns
/// the new `y`.
fn paint_field(
    canvas: &mut Canvas,
    font: &FontVec,
    layout: &Layout,
    dots: usize,
    mut y: f32,
) -> f32 {
    y += layout.body_size;
    let box_height = layout.body_size * 2.0;
    canvas.rounded_box(
        layout.left as u32,
        y as u32,
        (layout.text_width * 0.6) as u32,
        box_height as u32,
        (layout.body_size / 4.0) as u32,
        FIELD_BOX,
    );
    let shown: String = "\u{25cf}".repeat(dots.min(MAX_DOTS));
    // A caret after the dots: the field has the keyboard.
    canvas.text(
        font,
        layout.body_size,
        layout.left + layout.body_size * 0.6,
        y + layout.body_size * 1.35,
        &format!("{shown}|"),
        FIELD_DOTS,
    );
    y += field_height(layout) - layout.body_size;
    y
}

/// The height a text field takes below the words (its box and the gap).
fn field_height(layout: &Layout) -> f32 {
    layout.body_size * 3.2
}

impl Layout {
    pub fn for_size(width: u32, height: u32) -> Layout {
        let h = height as f32;
        Layout {
            band_height: (height / 40).max(8),
            left: width as f32 * 0.1,
            text_width: width as f32 * 0.8,
            title_size: (h / 14.0).max(28.0),
            body_size: (h / 28.0).max(18.0),
        }
    }
}

/// The screen, `width` x `height`, with its extras: a text field holding
/// `field` dots for a screen that takes text, a list or its network's name.
/// Without a font: the band and the background (the console line still names
/// the screen).
pub fn paint(
    screen: StickScreen,
    extras: Extras<'_>,
    language: Language,
    font: Option<&FontVec>,
    width: u32,
    height: u32,
) -> Canvas {
    if screen.is_strip() {
        return paint_strip(screen, language, font, width, height);
    }
    let mut canvas = Canvas::new(width, height);
    canvas.fill(BACKGROUND);
    let layout = Layout::for_size(width, height);
    canvas.rounded_box(
        0,
        0,
        width,
        layout.band_height,
        0,
        band_colour(screen.severity()),
    );
    let Some(font) = font else {
        return canvas;
    };
    let text = screen.text(language);
    let mut y = top(screen, height);
    for line in wrap(font, layout.title_size, text.title, layout.text_width) {
        y += layout.title_size;
        canvas.text(font, layout.title_size, layout.left, y, &line, TITLE);
    }
    y += layout.body_size;
    for paragraph in [text.body, text.action] {
        y += layout.body_size * 0.6;
        for line in wrap(font, layout.body_size, paragraph, layout.text_width) {
            y += layout.body_size * 1.35;
            canvas.text(font, layout.body_size, layout.left, y, &line, BODY);
        }
    }
    if screen.takes_choice() {
        y += layout.body_size * 0.5;
        let top = y;
        paint_rows(&mut canvas, font, &layout, extras, language, y);
        y = top + rows_height(screen, &layout);
    } else if let (true, Some(row)) = (screen.names_network(), extras.rows.first()) {
        y = paint_network_name(&mut canvas, font, &layout, &row.name, language, y);
    }
    if let Some(dots) = extras.field {
        y = paint_field(&mut canvas, font, &layout, dots, y);
    }
    // The code in a box, where a person reads it out on the phone.
    let code_size = layout.body_size * 1.1;
    let box_top = (y + layout.body_size * 2.0) as u32;
    let box_height = (code_size * 2.0) as u32;
    let box_width =
        (crate::overlay::paint::measure(font, code_size, &text.code_line) + code_size * 2.0) as u32;
    canvas.rounded_box(
        layout.left as u32,
        box_top,
        box_width,
        box_height,
        (code_size / 3.0) as u32,
        CODE_BOX,
    );
    canvas.text(
        font,
        code_size,
        layout.left + code_size,
        box_top as f32 + code_size * 1.35,
        &text.code_line,
        TITLE,
    );
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::paint::{load_font, measure, FONT_PATH};

    #[test]
    fn every_screen_fits_from_1024x768_to_4k() {
        let font = load_font(FONT_PATH).expect("fonts-dejavu-core on the test host");
        for (width, height) in [(1024, 768), (1280, 800), (1920, 1080), (3840, 2160)] {
            let layout = Layout::for_size(width, height);
            for &screen in StickScreen::all() {
                for language in [Language::De, Language::En] {
                    let text = screen.text(language);
                    let title_lines = wrap(&font, layout.title_size, text.title, layout.text_width);
                    let body_lines: usize = [text.body, text.action]
                        .iter()
                        .map(|p| wrap(&font, layout.body_size, p, layout.text_width).len())
                        .sum();
                    // Everything above the code box, as `paint` adds it up.
                    let field = if screen.takes_text() {
                        field_height(&layout)
                    } else {
                        0.0
                    } + rows_height(screen, &layout);
                    let bottom = top(screen, height)
                        + title_lines.len() as f32 * layout.title_size
                        + layout.body_size * (1.0 + 1.2 + body_lines as f32 * 1.35 + 2.0)
                        + field
                        + layout.body_size * 1.1 * 2.0;
                    assert!(
                        bottom < height as f32,
                        "{screen:?} {language:?} at {width}x{height} runs off the screen"
                    );
                    for line in title_lines {
                        assert!(measure(&font, layout.title_size, &line) <= layout.text_width);
                    }
                }
            }
        }
    }

    #[test]
    fn a_strip_holds_both_lines_whole_and_readable() {
        let font = load_font(FONT_PATH).expect("fonts-dejavu-core on the test host");
        for (width, height) in [(1024, 768), (1280, 800), (1920, 1080), (3840, 2160)] {
            let strip = strip_height(height);
            assert!((56..=160).contains(&strip), "{strip} at {height}");
            for screen in StickScreen::all().iter().filter(|s| s.is_strip()) {
                for language in [Language::De, Language::En] {
                    let text = screen.text(language);
                    let layout = StripLayout::fit(&font, &text, width, strip);
                    let room = width as f32 - 2.0 * layout.left;
                    let second = format!("{} {}", text.body, text.action);
                    for (size, line) in
                        [(layout.title_size, text.title), (layout.body_size, &second)]
                    {
                        assert!(
                            measure(&font, size, line) <= room + 0.5,
                            "{screen:?} {language:?} {width}x{height}"
                        );
                        assert!(
                            size >= 11.0,
                            "{screen:?} {language:?} {width}x{height}: {size:.1} px is too small"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_password_field_shows_one_dot_per_character() {
        let font = load_font(FONT_PATH).expect("fonts-dejavu-core on the test host");
        let (width, height) = (1280, 800);
        let mut probe = Canvas::new(1, 1);
        probe.fill(FIELD_BOX);
        let light = probe.at(0, 0);
        // The field's box: each dot covers some of its light pixels.
        let light_pixels = |canvas: &Canvas| canvas.pixels.iter().filter(|&&p| p == light).count();
        let screen = StickScreen::EnterPassword;
        let dots = |n: usize| Extras {
            field: Some(n),
            ..Extras::default()
        };
        let empty = paint(screen, dots(0), Language::De, Some(&font), width, height);
        let three = paint(screen, dots(3), Language::De, Some(&font), width, height);
        let six = paint(screen, dots(6), Language::De, Some(&font), width, height);
        let (e, t, x) = (
            light_pixels(&empty),
            light_pixels(&three),
            light_pixels(&six),
        );
        assert!(e > t && t > x, "light pixels: {e} (none), {t} (3), {x} (6)");
        // Three more dots cover what three dots covered.
        let per_three = e - t;
        assert!((t - x).abs_diff(per_three) <= per_three / 10, "{e} {t} {x}");
        // No field on a screen that takes no text.
        let plain = paint(
            StickScreen::VpnLost,
            Extras::default(),
            Language::De,
            Some(&font),
            width,
            height,
        );
        assert_eq!(light_pixels(&plain), 0);
    }

    #[test]
    fn the_list_marks_one_row_in_a_light_box() {
        let font = load_font(FONT_PATH).expect("fonts-dejavu-core on the test host");
        let (width, height) = (1280, 800);
        let rows: Vec<Choice> = ["Home", "Neighbours", &"long name ".repeat(8)]
            .iter()
            .map(|name| Choice {
                name: name.to_string(),
                bars: 2,
                security: "psk",
                signal_dbm: -70,
            })
            .collect();
        let mut probe = Canvas::new(1, 1);
        probe.fill(FIELD_BOX);
        let light = probe.at(0, 0);
        // The light box's rows (pixel lines holding any of its colour).
        let box_lines = |marked: usize| -> Vec<u32> {
            let extras = Extras {
                field: None,
                rows: &rows,
                marked,
            };
            let canvas = paint(
                StickScreen::WifiChoose,
                extras,
                Language::De,
                Some(&font),
                width,
                height,
            );
            (0..height)
                .filter(|&y| (0..width).any(|x| canvas.at(x, y) == light))
                .collect()
        };
        let (first, last) = (box_lines(0), box_lines(2));
        assert!(!first.is_empty() && !last.is_empty());
        // One box, a row's height, and the mark two rows further down.
        let span = |lines: &[u32]| lines[lines.len() - 1] - lines[0] + 1;
        assert_eq!(span(&first), span(&last));
        let layout = Layout::for_size(width, height);
        let step = (last[0] - first[0]) as f32;
        assert!(
            (step - 2.0 * row_height(&layout)).abs() <= 2.0,
            "the mark moved {step} px for two rows"
        );
        // No list on a screen about one network: its name, no box.
        let about = Extras {
            field: None,
            rows: &rows[..1],
            marked: 0,
        };
        let connecting = paint(
            StickScreen::WifiConnecting,
            about,
            Language::De,
            Some(&font),
            width,
            height,
        );
        assert!(!(0..height).any(|y| (0..width).any(|x| connecting.at(x, y) == light)));
    }

    #[test]
    fn the_band_says_how_serious() {
        for (screen, band) in [
            (StickScreen::VpnLost, band_colour(Severity::Wait)),
            (StickScreen::NoNetwork, band_colour(Severity::Act)),
            (StickScreen::CertificateStop, band_colour(Severity::Stop)),
        ] {
            let canvas = paint(screen, Extras::default(), Language::De, None, 1024, 768);
            let expected = Canvas {
                width: 1,
                height: 1,
                pixels: vec![0],
            };
            let mut dot = expected;
            dot.rounded_box(0, 0, 1, 1, 0, band);
            assert_eq!(canvas.at(512, 2), dot.at(0, 0), "{screen:?}");
            let mut bg = Canvas::new(1, 1);
            bg.fill(BACKGROUND);
            assert_eq!(canvas.at(512, 700), bg.at(0, 0), "{screen:?}");
        }
    }
}
