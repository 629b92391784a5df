//! Image builder library: config -> signed, dm-verity protected disk image.
//! Each pipeline stage is a module with typed input and output.

pub mod config;
pub mod customize;
pub mod keygen;
pub mod mirror;
pub mod packages;
pub mod rootfs;
pub mod runner;
pub mod tools_tree;
pub mod tree_cache;
