//! Boot verification: is the running image what it claims to be? Reads the
//! running system once at start, judges it and prints the status line.
//!
//! - `probe`: reads the running system (cmdline, device-mapper, mounts, ESP) into observations.
//! - `init_gate`: the initrd's first program: the command line must be the signed one.
//! - `clock`: the clock is never earlier than the image's build time.
//! - `cmdline`: the kernel command line: the verity root hash, and how it differs from the signed one.
//! - `gpt`: reads the partition entries of a (possibly hostile) GPT disk, CRCs checked.
//! - `efivars`: EFI variables systemd-stub sets (the ESP's partition UUID).
//! - `load_option`: the firmware's boot option (`BootCurrent`) and the USB device its path names.
//! - `esp`: the signed manifest on the ESP the UKI was booted from.
//! - `policy`: Secure Boot, kernel lockdown and the admin's boot policy, judged.
//! - `boot_trust`: which key trusted the UKI (firmware db or shim's MOK list), judged.
//! - `device_mapper`: the verity device `root`: its table and its health.
//! - `mounts`: where the root filesystem comes from (mountinfo, volatile overlay).
//! - `status`: the observations judged, as the `"event":"status"` console line.
//! - `refusal`: why a boot is refused, by kind (the console's words, the screen's code).

pub mod boot_trust;
pub mod clock;
pub mod cmdline;
pub mod device_mapper;
pub mod efivars;
pub mod esp;
pub mod gpt;
pub mod init_gate;
pub mod load_option;
pub mod mounts;
pub mod policy;
pub mod probe;
pub mod refusal;
pub mod status;
