//! Debian trees made by mmdebstrap, from the host's (or the config's) mirror and
//! cached between builds.
//!
//! - `mirror`: which Debian mirror the trees come from;
//! - `cache`: trees cached by what went into them;
//! - `stale_mounts`: mounts an interrupted tree build left behind;
//! - `tools`: the tools tree, a chroot with the build's tools (ukify, mksquashfs...);
//! - `base`: the image's base tree (kernel, systemd, dracut initrd, packages);
//! - `packages`: the SBOM, read from a tree's dpkg status.

pub mod base;
pub mod cache;
pub mod mirror;
pub mod packages;
mod stale_mounts;
pub mod tools;
