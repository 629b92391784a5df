//! What the builder puts into the initrd for the kiosk's init gate, and where.

/// The signed kernel command line, as the UKI's `.cmdline` section carries it,
/// written into the initrd (which is inside the signed UKI) for the init gate.
pub const SIGNED_CMDLINE_PATH: &str = "/usr/lib/secure-stick/signed-cmdline";

/// The initrd's first program. The builder makes it a link to the kiosk, which
/// compares the command line and then executes [`SYSTEMD_PATH`].
pub const INIT_PATH: &str = "/init";

/// The initrd's service manager, started by the init gate when all is well.
pub const SYSTEMD_PATH: &str = "/usr/lib/systemd/systemd";

/// USBGuard rules written at boot: the initrd leaves one here for the stick it
/// authorized, so that the session's policy (applied to present devices too)
/// keeps the stick and nothing else of what was plugged in at power-on.
pub const USBGUARD_RUNTIME_RULES_DIR: &str = "/run/secure-stick/usbguard.d";

/// One file per USB device the initrd authorized as the boot stick (its port
/// name), JSON: how it was found. The kiosk's `usb` line reports it.
pub const USB_BOOT_RECORD_DIR: &str = "/run/secure-stick/usb-boot";
