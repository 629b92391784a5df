//! `kiosk`: the boot status and storage lines, then device watching until the
//! power button; `kiosk lock-block-device NAME` is the udev helper of the storage
//! lock; as PID 1 (the initrd's `/init`) it is the init gate.

use std::process::ExitCode;

/// `kiosk lock-block-device NAME`, run by udev for every block device.
fn lock_block_device(name: Option<String>) -> ExitCode {
    let Some(name) = name else {
        eprintln!("usage: kiosk lock-block-device NAME (a kernel name such as sdb1)");
        return ExitCode::from(2);
    };
    match kiosk::storage::lock::lock_block_device(&name) {
        Ok(properties) => {
            print!("{properties}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kiosk lock-block-device {name}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `kiosk usb-boot-device NAME`, run by udev in the initrd for every USB device.
fn usb_boot_device(name: Option<String>) -> ExitCode {
    let Some(name) = name else {
        eprintln!("usage: kiosk usb-boot-device NAME (a USB port name such as 1-1)");
        return ExitCode::from(2);
    };
    match kiosk::storage::usb_boot::authorize_if_boot_device(&name) {
        Ok(decision) => {
            eprintln!("kiosk usb-boot-device {name}: {decision:?}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kiosk usb-boot-device {name}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // `/init` of the initrd links to the kiosk: nothing else runs it as PID 1.
    if std::process::id() == 1 {
        kiosk::boot::init_gate::run();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // The journal adds its own timestamps and has no use for colour codes.
        .without_time()
        .with_ansi(false)
        .init();

    match std::env::args().nth(1).as_deref() {
        None => kiosk::service::run(),
        Some("lock-block-device") => lock_block_device(std::env::args().nth(2)),
        Some(kiosk::storage::usb_boot::SUBCOMMAND) => usb_boot_device(std::env::args().nth(2)),
        // Started by the kiosk itself as the screen account, on the compositor's socket.
        Some(kiosk::overlay::client::SUBCOMMAND) => {
            kiosk::overlay::client::run(std::env::args().nth(2))
        }
        // TEST images only: started by the kiosk itself as the session account.
        Some(kiosk::session::hostile::SUBCOMMAND) => kiosk::session::hostile::run(),
        Some(kiosk::session::wayland_probe::SUBCOMMAND) => {
            kiosk::session::wayland_probe::run(std::env::args().nth(2))
        }
        Some(other) => {
            eprintln!(
                "kiosk: unknown command {other:?}\n\
                 usage: kiosk                          boot status, then the session (kiosk.service)\n\
                 \x20      kiosk lock-block-device NAME   udev helper: set NAME read-only unless it is the stick\n\
                 \x20      kiosk usb-boot-device NAME     initrd udev helper: authorize NAME if the firmware booted from it\n\
                 \x20      kiosk overlay de|en            the camera/microphone indicator (started by the kiosk)"
            );
            ExitCode::from(2)
        }
    }
}
