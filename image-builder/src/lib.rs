//! Image builder library: config -> signed, dm-verity protected disk image.
//! Each pipeline stage is a module with typed input and output.

// serde_json::json! of the browser policy nests deeper than the default allows.
#![recursion_limit = "256"]

pub mod browser_policy;
pub mod build;
pub mod conference_config;
pub mod config;
pub mod customize;
pub mod egress_policy;
pub mod esp;
pub mod fail_closed;
pub mod gpt;
pub mod harden;
pub mod initrd_extra;
pub mod inspect;
pub mod keygen;
pub mod mirror;
pub mod network_install;
pub mod package_pin;
pub mod packages;
pub mod partition_slice;
pub mod pe;
pub mod rootfs;
pub mod runner;
pub mod secure_boot;
pub mod session_install;
pub mod tools_tree;
pub mod tree_cache;
pub mod tunnel_config;
pub mod usb_policy;
pub mod verify;
pub mod verity;
pub mod vpn_config;
pub mod wireguard_key;
