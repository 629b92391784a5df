//! The guest machine: what the tests boot and what they read back from it.
//!
//! - [`qemu`]: the QEMU/OVMF machine with the image as its USB stick, its firmware and keys.
//! - [`disks`]: the hostile PC's internal disks and a second USB stick, with their hashes.
//! - [`serial`]: reading the serial console (the kiosk's `@kiosk@` lines, forbidden patterns).
//! - [`screen`]: what the display shows, from QMP screendumps.
//! - [`root_listing`]: what a built image's root holds, read from the image's bytes.
//! - [`tamper`]: copies of a built image changed the way an attacker would change them.
//! - [`timeline`]: where a boot spent its time, from the console's kernel stamps.

pub mod disks;
pub mod qemu;
pub mod root_listing;
pub mod screen;
pub mod serial;
pub mod tamper;
pub mod timeline;
