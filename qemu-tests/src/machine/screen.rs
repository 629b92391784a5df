//! What the guest's display shows, from QMP `screendump` (PPM): enough to tell
//! the conference page from a text console or another program.

use anyhow::{bail, Context, Result};

/// A decoded binary PPM (P6, 8-bit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    pub width: usize,
    pub height: usize,
    /// RGB triples, row by row.
    pub pixels: Vec<u8>,
}

impl Screen {
    pub fn parse_ppm(bytes: &[u8]) -> Result<Screen> {
        // Header: "P6" width height maxval, separated by whitespace, then one
        // whitespace byte and the raster.
        let mut fields = Vec::new();
        let mut at = 0;
        while fields.len() < 4 {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            let start = at;
            while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if start == at {
                bail!("the PPM header ends early");
            }
            fields.push(std::str::from_utf8(&bytes[start..at]).context("PPM header")?);
        }
        if fields[0] != "P6" || fields[3] != "255" {
            bail!("not an 8-bit binary PPM: {fields:?}");
        }
        let width: usize = fields[1].parse().context("PPM width")?;
        let height: usize = fields[2].parse().context("PPM height")?;
        let raster = bytes.get(at + 1..).context("PPM without raster")?;
        if raster.len() < width * height * 3 {
            bail!(
                "PPM raster holds {} bytes, {width}x{height} needs more",
                raster.len()
            );
        }
        Ok(Screen {
            width,
            height,
            pixels: raster[..width * height * 3].to_vec(),
        })
    }

    /// The share of pixels within `tolerance` of `rgb` in every channel.
    pub fn share_of(&self, rgb: [u8; 3], tolerance: u8) -> f64 {
        self.share_in(
            Region {
                x: 0,
                y: 0,
                width: self.width,
                height: self.height,
            },
            rgb,
            tolerance,
        )
    }

    /// [`Screen::share_of`] within `region` (clipped to the screen).
    pub fn share_in(&self, region: Region, rgb: [u8; 3], tolerance: u8) -> f64 {
        let (x_end, y_end) = (
            (region.x + region.width).min(self.width),
            (region.y + region.height).min(self.height),
        );
        let mut total = 0usize;
        let mut near = 0usize;
        for y in region.y.min(y_end)..y_end {
            for x in region.x.min(x_end)..x_end {
                let at = (y * self.width + x) * 3;
                let pixel = &self.pixels[at..at + 3];
                total += 1;
                if pixel
                    .iter()
                    .zip(rgb)
                    .all(|(a, b)| a.abs_diff(b) <= tolerance)
                {
                    near += 1;
                }
            }
        }
        if total == 0 {
            return 0.0;
        }
        near as f64 / total as f64
    }
}

/// A rectangle of the screen, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

impl Region {
    /// `width` x `height` at `margin` from the top right corner of a screen `screen_width` wide.
    pub fn top_right(screen_width: usize, margin: usize, width: usize, height: usize) -> Region {
        Region {
            x: screen_width.saturating_sub(margin + width),
            y: margin,
            width,
            height,
        }
    }
}

/// The background of the stick's own screens (kiosk/src/overlay/full_screen.rs).
pub const STICK_SCREEN_BACKGROUND: [u8; 3] = [0x26, 0x32, 0x3a];
/// Most of a stick screen is background (the words and the code box are the rest).
pub const STICK_SCREEN_SHOWING: f64 = 0.6;

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(width: usize, height: usize, pixels: &[[u8; 3]]) -> Vec<u8> {
        let mut out = format!("P6\n{width} {height}\n255\n").into_bytes();
        for p in pixels {
            out.extend(p);
        }
        out
    }

    #[test]
    fn shares_of_a_colour() {
        let blue = [23, 50, 77];
        let screen =
            Screen::parse_ppm(&ppm(2, 2, &[blue, blue, [24, 51, 76], [0, 0, 0]])).expect("parses");
        assert_eq!((screen.width, screen.height), (2, 2));
        let cases = [
            (blue, 0, 0.5),
            (blue, 2, 0.75),
            ([0, 0, 0], 0, 0.25),
            ([255, 255, 255], 3, 0.0),
        ];
        for (rgb, tolerance, want) in cases {
            assert_eq!(
                screen.share_of(rgb, tolerance),
                want,
                "{rgb:?} ±{tolerance}"
            );
        }
    }

    #[test]
    fn shares_within_a_region() {
        let (red, blue) = ([255, 0, 0], [0, 0, 255]);
        // 4x2: the right half red, the left half blue.
        let pixels = [blue, blue, red, red, blue, blue, red, red];
        let screen = Screen::parse_ppm(&ppm(4, 2, &pixels)).expect("ppm");
        let right = Region::top_right(4, 0, 2, 2);
        assert_eq!(
            right,
            Region {
                x: 2,
                y: 0,
                width: 2,
                height: 2
            }
        );
        assert_eq!(screen.share_in(right, red, 0), 1.0);
        assert_eq!(screen.share_in(right, blue, 0), 0.0);
        assert_eq!(screen.share_of(red, 0), 0.5);
        let beyond = Region {
            x: 3,
            y: 1,
            width: 10,
            height: 10,
        };
        assert_eq!(
            screen.share_in(beyond, red, 0),
            1.0,
            "clipped to the screen"
        );
    }

    #[test]
    fn bad_images_are_refused() {
        for bytes in [
            &b"P3\n1 1\n255\n..."[..],
            b"P6\n2 2\n255\n\x00",
            b"P6\n",
            b"",
        ] {
            assert!(Screen::parse_ppm(bytes).is_err(), "{bytes:?}");
        }
    }
}
