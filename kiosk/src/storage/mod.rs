//! The storage lock and the device reports: every block device is read-only, the
//! stick too, nothing but the stick is used, and the block and USB devices are
//! reported while the kiosk runs.
//!
//! - `lock`: sets every block device read-only and keeps all but the stick from systemd (the udev helper).
//! - `report`: every block device, its role and state, as the `"event":"storage"` console line.
//! - `usb`: the USB devices, their interface classes and authorization, as the `"event":"usb"` line.
//! - `usb_boot`: in the initrd, lets in the USB stick the firmware booted from, and nothing else.
//! - `watch`: the first storage report once udev settled, then one line per device change.

pub mod lock;
pub mod report;
pub mod usb;
pub mod usb_boot;
pub mod watch;
