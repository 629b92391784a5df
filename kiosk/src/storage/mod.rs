//! The storage lock and the device reports: every block device that is not the
//! stick is read-only, and the block and USB devices are reported while the kiosk runs.
//!
//! - `lock`: sets every block device that is not the stick read-only (the udev helper).
//! - `gpt`: reads the partition UUIDs of a (possibly hostile) GPT disk, to recognise the stick.
//! - `report`: every block device, its role and state, as the `"event":"storage"` console line.
//! - `usb`: the USB devices, their interface classes and authorization, as the `"event":"usb"` line.
//! - `watch`: the first storage report once udev settled, then one line per device change.

pub mod gpt;
pub mod lock;
pub mod report;
pub mod usb;
pub mod watch;
