//! The admin's commands besides `build`: each reads an image or writes keys.
//!
//! - `verify`: the manifest's signature, then every hash against the image;
//! - `inspect`: what an image holds, without trusting it;
//! - `keygen`: a new manifest signing key pair;
//! - `personalize`: one stick's own VPN credential, in a partition of its own;
//! - `write`: an image onto a USB stick, checked before and read back after.

pub mod inspect;
pub mod keygen;
pub mod personalize;
pub mod verify;
pub mod write;
