//! The kiosk that runs inside the boot stick image.
//!
//! At boot it reports whether the image is what it claims to be (verity enforced
//! on a read-only root, the signed manifest's root hash, Secure Boot, rollback
//! index, the signed cmdline), locks every block device that is not the stick,
//! and reports block and USB devices while it runs. With a `[vpn]` it brings up
//! the uplink and the tunnel behind the egress policy and keeps them up. With a
//! `[conference]` it runs the locked browser session (see `session`).

pub mod boot;
pub mod command;
pub mod console;
pub mod input_event;
pub mod network;
pub mod power_button;
pub mod screen;
pub mod service;
pub mod session;
pub mod storage;
pub mod sysfs;
