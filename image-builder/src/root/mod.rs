//! What goes into the image's root, on a copy of the base tree.
//!
//! - `customize`: overlays, the kiosk binary, the manifest key, os-release;
//! - `network`: the egress policy, uplink, tunnel and its credentials;
//! - `egress_policy`: the kill switch's nftables ruleset;
//! - `tunnel_config`: networkd, swanctl and WireGuard files;
//! - `session`: the conference account, browser policy and trusted CAs;
//! - `browser_policy`: the browser's managed policy;
//! - `usb_policy`: USBGuard's rules;
//! - `wifi`: iwd (join only) and, in a test image, the lab access point;
//! - `fail_closed`: failing closed at every stage of boot;
//! - `harden`: kernel modules the image must not carry;
//! - `hwdb`: udev's hardware database without its device name lists;
//! - `module_classes`: kernel modules for hardware classes the stick never drives;
//! - `unused_stacks`: more of them, by purpose (storage stacks, studio sound, self-tests);
//! - `module_file`: a module's file, packed (`.ko.xz`) or not;
//! - `firmware`: only the firmware the image's drivers can load;
//! - `diet`: files the stick never reads (documentation, other languages, developer leftovers, Mesa's GPU drivers);
//! - `charon_plugins`: charon's plugins for a user factor, and no others of their packages;
//! - `privileges`: no setuid/setgid program, no account tools, no perl;
//! - `tree_digest`: what the root packs to, as one digest (finds a packed layer again).

pub mod browser_policy;
pub mod charon_plugins;
pub mod customize;
pub mod diet;
pub mod egress_policy;
pub mod fail_closed;
pub mod firmware;
pub mod harden;
pub mod hwdb;
pub mod module_classes;
pub mod module_file;
pub mod network;
pub mod privileges;
pub mod session;
pub mod tree_digest;
pub mod tunnel_config;
pub mod unused_stacks;
pub mod usb_policy;
pub mod wifi;
