//! The kiosk that runs inside the boot stick image.
//!
//! At boot it reports whether the image is what it claims to be (verity enforced
//! on a read-only root, the signed manifest's root hash, Secure Boot, rollback
//! index, the signed cmdline), locks every block device that is not the stick,
//! and reports block and USB devices while it runs.

pub mod boot_policy;
pub mod cmdline;
pub mod command;
pub mod device_mapper;
pub mod device_watch;
pub mod efivars;
pub mod esp;
pub mod gpt_probe;
pub mod mounts;
pub mod power_button;
pub mod probe;
pub mod status;
pub mod storage_lock;
pub mod storage_report;
pub mod sysfs;
pub mod usb_report;
