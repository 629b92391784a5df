//! The disk image's bytes: the root filesystem, its dm-verity tree, the ESP and
//! the GPT that holds them.
//!
//! - `gpt`: the partition table, planned, written and read by our own code;
//! - `verity`: the dm-verity hash tree, byte-identical to `veritysetup format`;
//! - `esp`: the EFI System Partition;
//! - `partition_slice`: one partition of an image file as a file of its own.

pub mod esp;
pub mod gpt;
pub mod partition_slice;
pub mod verity;
