//! What the firmware starts: the unified kernel image and its signature.
//!
//! - `initrd_extra`: files of the root that must already work in the initrd;
//! - `uki`: the kernel command line and the UKI made by ukify, signed;
//! - `secure_boot`: the PK/KEK/db key hierarchy and signing with the db key;
//! - `shim`: Debian's Microsoft-signed shim and MokManager in front of the UKI;
//! - `pe`: a bounds-checked PE/COFF reader for the UKI's sections.

pub mod initrd_extra;
pub mod pe;
pub mod secure_boot;
pub mod shim;
pub mod uki;
