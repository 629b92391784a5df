//! Image builder library: config -> signed, dm-verity protected disk image.
//!
//! The folders follow the pipeline (see `build` for the list of stages):
//! `config` (the admin's TOML) -> `trees` (Debian trees from mmdebstrap) -> `root`
//! (what goes into the image's root) -> `disk` (squashfs, verity, ESP, GPT) and
//! `boot` (initrd extra, UKI, Secure Boot) -> the signed manifest. `commands` holds
//! the admin's other commands (verify, inspect, keygen); `runner` is the one way
//! every external tool is run.

// serde_json::json! of the browser policy nests deeper than the default allows.
#![recursion_limit = "256"]

pub mod boot;
pub mod build;
pub mod commands;
pub mod config;
pub mod disk;
pub mod root;
pub mod runner;
pub mod trees;
