//! The kiosk that runs inside the boot stick image.
//!
//! At boot it reports whether the image is what it claims to be (verity enforced
//! on a read-only root, the signed manifest's root hash, Secure Boot, rollback
//! index, the signed cmdline), locks every block device that is not the stick,
//! and reports block and USB devices while it runs. With a `[vpn]` it brings up
//! the uplink and the tunnel behind the egress policy and keeps them up. With a
//! `[conference]` it runs the locked browser session (see `session`).

pub mod boot_policy;
pub mod browser;
pub mod cdp;
pub mod cmdline;
pub mod command;
pub mod device_mapper;
pub mod device_watch;
pub mod efivars;
pub mod egress_report;
pub mod esp;
pub mod gpt_probe;
pub mod input_event;
pub mod media_report;
pub mod mounts;
pub mod network_watch;
pub mod page_watch;
pub mod power_button;
pub mod probe;
pub mod reach_check;
pub mod screen;
pub mod session;
pub mod session_guard;
pub mod shortcut_watch;
pub mod status;
pub mod storage_lock;
pub mod storage_report;
pub mod sysfs;
pub mod tunnel;
pub mod uplink;
pub mod usb_report;
