//! The conference session: the locked browser showing the conference, watched
//! over CDP, restarted when it ends, and a stop screen instead of a shell.
//!
//! - `account`: the session account's cgroup and folder: every process ended, the folder made anew.
//! - `runner`: waits for the tunnel, checks the certificate, runs and restarts the browser.
//! - `browser`: starts the compositor and Chromium for one run, with the CDP pipe.
//! - `compositor`: labwc as the screen account, the overlay, the capture watch feeding it.
//! - `stick_display`: the session's display: the compositor for the session, the stick's screens.
//! - `overlay_input`: the running overlay's input for every thread: powering off, questions.
//! - `security_context`: the browser's own Wayland socket, without privileged protocols.
//! - `cdp`: the Chrome DevTools Protocol over the browser's pipe.
//! - `guard`: what the kiosk does about every target the browser reports.
//! - `page_watch`: the watchdog: is the conference page on the screen, and what to do if not.
//! - `media`: is the call's media flowing (tunnel UDP counters, sound card, memory).
//! - `portal`: a network's sign-in page (captive portal) in a throwaway browser, before the tunnel only.
//! - `hostile`: TEST images only: a hostile process of the account, for the QEMU scenario.
//! - `wayland_probe`: TEST images only: what the browser's account can reach on the display.
//! - `shortcuts`: the kiosk's keys (mute, leave, the sign-in page); logs shortcuts that would leave the conference elsewhere.
//! - `leave`: leaving on purpose: the question on screen, the browser closed, power off.
//! - `ended`: the conference is over: its screen, and joining again.

pub mod account;
pub mod browser;
pub mod cdp;
pub mod compositor;
pub mod ended;
pub mod guard;
pub mod hostile;
pub mod leave;
pub mod media;
pub mod overlay_input;
pub mod page_watch;
pub mod portal;
pub mod runner;
pub mod security_context;
pub mod shortcuts;
pub mod stick_display;
pub mod wayland_probe;
