//! The kiosk that runs inside the boot stick image.
//!
//! At boot it reports whether the image is what it claims to be (verity enforced
//! on a read-only root, the signed manifest's root hash, Secure Boot, rollback
//! index, the signed cmdline), locks every block device that is not the stick,
//! and reports block and USB devices while it runs. With a `[vpn]` it brings up
//! the uplink and the tunnel behind the egress policy and keeps them up. With a
//! `[conference]` it runs the locked browser session (see `session`).
//!
//! One folder per job, and what they share:
//! - `boot`: boot verification: reads the running system, judges it, the status line.
//! - `storage`: the storage lock (the udev helper) and the block and USB device reports.
//! - `network`: the uplink and the tunnel behind the egress policy, watched and repaired.
//! - `session`: the conference session: compositor, browser, its guard, watchdog and reports.
//! - `overlay`: the stick's own surface above the browser (the camera/microphone indicator).
//! - `mute`: the kiosk's mute key: cameras unbound, capture switches off, read back.
//! - `service`: what `kiosk.service` runs: the verdict, then the jobs until the power button.
//! - `console`: the `@kiosk@` console line format every job prints with (depends on nothing).
//! - `command`, `sysfs`, `input_event`, `screen`, `power_button`, `capture`: small shared helpers.

pub mod boot;
pub mod capture;
pub mod command;
pub mod console;
pub mod input_event;
pub mod mute;
pub mod network;
pub mod overlay;
pub mod power_button;
pub mod screen;
pub mod service;
pub mod session;
pub mod storage;
pub mod sysfs;
