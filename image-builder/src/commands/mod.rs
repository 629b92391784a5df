//! The admin's commands besides `build`: each reads an image or writes keys.
//!
//! - `verify`: the manifest's signature, then every hash against the image;
//! - `inspect`: what an image holds, without trusting it;
//! - `keygen`: a new manifest signing key pair.

pub mod inspect;
pub mod keygen;
pub mod verify;
