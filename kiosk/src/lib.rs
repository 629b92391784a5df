//! The kiosk that runs inside the boot stick image.
//!
//! For now it reports, once at boot, whether the image is what it claims to be:
//! verity enforced on a read-only root, with the root hash of the signed manifest.

pub mod boot_policy;
pub mod cmdline;
pub mod command;
pub mod device_mapper;
pub mod efivars;
pub mod esp;
pub mod gpt_probe;
pub mod mounts;
pub mod power_button;
pub mod probe;
pub mod status;
pub mod storage_lock;
pub mod storage_report;
pub mod usb_report;
