//! Pixels for the overlay: a canvas of premultiplied ARGB (what `wl_shm`'s
//! ARGB8888 means), rounded boxes and text from a TrueType font. Small on
//! purpose: the stick's surfaces need boxes and words, not a GUI toolkit.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};

/// The font the overlay writes with (Debian's fonts-dejavu-core, in every image
/// with a conference).
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// A colour, not premultiplied: red, green, blue, alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba(pub u8, pub u8, pub u8, pub u8);

impl Rgba {
    /// Premultiplied ARGB8888 as the compositor reads it (little-endian u32).
    fn premultiplied(self) -> u32 {
        let Rgba(r, g, b, a) = self;
        let scale = |c: u8| (u32::from(c) * u32::from(a) + 127) / 255;
        (u32::from(a) << 24) | (scale(r) << 16) | (scale(g) << 8) | scale(b)
    }
}

/// `width` x `height` pixels, row by row, premultiplied ARGB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u32>,
}

impl Canvas {
    /// A fully transparent canvas.
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![0; (width * height) as usize],
        }
    }

    /// The canvas as bytes in `wl_shm` order (ARGB8888 is little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.pixels.iter().flat_map(|p| p.to_le_bytes()).collect()
    }

    /// The colour at (x, y), premultiplied ARGB.
    pub fn at(&self, x: u32, y: u32) -> u32 {
        self.pixels[(y * self.width + x) as usize]
    }

    /// Fills the whole canvas.
    pub fn fill(&mut self, colour: Rgba) {
        let pixel = colour.premultiplied();
        self.pixels.iter_mut().for_each(|p| *p = pixel);
    }

    /// Fills a box with corners rounded by `radius`, clipped to the canvas.
    pub fn rounded_box(&mut self, x: u32, y: u32, w: u32, h: u32, radius: u32, colour: Rgba) {
        let pixel = colour.premultiplied();
        let r = radius.min(w / 2).min(h / 2) as i64;
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                let (dx, dy) = (
                    corner_distance(i64::from(col - x), i64::from(w), r),
                    corner_distance(i64::from(row - y), i64::from(h), r),
                );
                if dx * dx + dy * dy <= r * r {
                    self.pixels[(row * self.width + col) as usize] = pixel;
                }
            }
        }
    }

    /// Writes `text` with its baseline at `baseline`, starting at `x`, in `colour`
    /// over what is there; returns the width written.
    pub fn text(
        &mut self,
        font: &FontVec,
        size: f32,
        x: f32,
        baseline: f32,
        text: &str,
        colour: Rgba,
    ) -> f32 {
        let scaled = font.as_scaled(PxScale::from(size));
        let mut pen = x;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(prev) = previous {
                pen += scaled.kern(prev, id);
            }
            let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, baseline));
            pen += scaled.h_advance(id);
            previous = Some(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                if px < 0 || py < 0 || px >= i64::from(self.width) || py >= i64::from(self.height) {
                    return;
                }
                let index = (py as u32 * self.width + px as u32) as usize;
                let alpha = (coverage.clamp(0.0, 1.0) * f32::from(colour.3)) as u8;
                self.pixels[index] = over(
                    Rgba(colour.0, colour.1, colour.2, alpha).premultiplied(),
                    self.pixels[index],
                );
            });
        }
        pen - x
    }
}

/// The width `text` takes at `size`.
pub fn measure(font: &FontVec, size: f32, text: &str) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(prev) = previous {
            width += scaled.kern(prev, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// `text` on one line no wider than `max_width`: cut short with an ellipsis
/// where it would not fit (a network's name).
pub fn fit_line(font: &FontVec, size: f32, text: &str, max_width: f32) -> String {
    if measure(font, size, text) <= max_width {
        return text.to_string();
    }
    let mut cut: String = text.to_string();
    while !cut.is_empty() && measure(font, size, &format!("{cut}\u{2026}")) > max_width {
        cut.pop();
    }
    format!("{cut}\u{2026}")
}

/// `text` broken into lines no wider than `max_width` at the spaces (a word
/// wider than that stands on its own line).
pub fn wrap(font: &FontVec, size: f32, text: &str, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if measure(font, size, &candidate) <= max_width || line.is_empty() {
            line = candidate;
        } else {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// How far a pixel at `offset` along a side of `length` lies inside a corner
/// circle of radius `r` (0 when it is not near a corner).
fn corner_distance(offset: i64, length: i64, r: i64) -> i64 {
    if offset < r {
        r - offset
    } else if offset >= length - r {
        offset - (length - r) + 1
    } else {
        0
    }
}

/// Porter-Duff "over" of two premultiplied ARGB pixels.
fn over(top: u32, bottom: u32) -> u32 {
    let alpha = top >> 24;
    let channel = |shift: u32| {
        let t = (top >> shift) & 0xff;
        let b = (bottom >> shift) & 0xff;
        (t + (b * (255 - alpha) + 127) / 255).min(255) << shift
    };
    channel(24) | channel(16) | channel(8) | channel(0)
}

/// The font, read from the image.
pub fn load_font(path: &str) -> std::io::Result<FontVec> {
    let bytes = std::fs::read(path)?;
    FontVec::try_from_vec(bytes).map_err(|err| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{path}: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_cut_with_an_ellipsis() {
        let font = load_font(FONT_PATH).expect("fonts-dejavu-core on the test host");
        let size = 20.0;
        let room = measure(&font, size, "Home network");
        for (text, cut) in [
            ("Home", false),
            ("Home network", false),
            ("Home network of the neighbours", true),
        ] {
            let line = fit_line(&font, size, text, room);
            assert!(measure(&font, size, &line) <= room, "{line}");
            assert_eq!(line.ends_with('\u{2026}'), cut, "{line}");
            assert_eq!(line == text, !cut, "{line}");
        }
    }

    #[test]
    fn premultiplied_colours() {
        for (colour, argb) in [
            (Rgba(255, 0, 0, 255), 0xffff_0000),
            (Rgba(255, 255, 255, 0), 0x0000_0000),
            (Rgba(200, 100, 50, 128), 0x8064_3219),
        ] {
            assert_eq!(colour.premultiplied(), argb, "{colour:?}");
        }
    }

    #[test]
    fn rounded_boxes_leave_their_corners() {
        let mut canvas = Canvas::new(20, 10);
        canvas.rounded_box(0, 0, 20, 10, 4, Rgba(255, 0, 0, 255));
        assert_eq!(canvas.at(0, 0), 0, "the corner stays transparent");
        assert_eq!(canvas.at(19, 9), 0, "the corner stays transparent");
        assert_eq!(canvas.at(10, 5), 0xffff_0000);
        assert_eq!(canvas.at(0, 5), 0xffff_0000, "the edge between the corners");
        assert_eq!(
            canvas.to_bytes()[(5 * 20 + 10) * 4..][..4],
            [0, 0, 0xff, 0xff]
        );
    }

    #[test]
    fn over_blends_premultiplied() {
        assert_eq!(over(0xffff_ffff, 0xffff_0000), 0xffff_ffff);
        assert_eq!(over(0x0000_0000, 0xffff_0000), 0xffff_0000);
        assert_eq!(over(0x8080_8080, 0xff00_0000), 0xff80_8080);
    }
}
