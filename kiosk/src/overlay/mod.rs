//! The stick's own surface above the conference: a wlr-layer-shell client of the
//! compositor, drawn with `paint` (no GUI toolkit), today the camera and
//! microphone indicator.
//!
//! - `paint`: a premultiplied ARGB canvas, rounded boxes, TrueType text.
//! - `indicator`: what the indicator looks like for a capture state and language.
//! - `client`: `kiosk overlay LANG`, the Wayland client that shows it.

pub mod client;
pub mod indicator;
pub mod paint;
