//! The stick's own surface above the conference: a wlr-layer-shell client of the
//! compositor, drawn with `paint` (no GUI toolkit): the camera and microphone
//! indicator and the stick's own screens.
//!
//! - `paint`: a premultiplied ARGB canvas, rounded boxes, TrueType text.
//! - `indicator`: what the indicator looks like for a capture state and language.
//! - `screens`: the stick's full-screen views: names, helpdesk codes, severities.
//! - `words`: each screen's words in German and English.
//! - `full_screen`: a screen's pixels at any size.
//! - `text_field`: the password screens' field: keys decoded by the keymap, dots.
//! - `client`: `kiosk overlay LANG`, the Wayland client that shows them.

pub mod client;
pub mod full_screen;
pub mod indicator;
pub mod paint;
pub mod screens;
pub mod text_field;
pub mod words;
