//! `kiosk`: the boot status and storage lines, then device watching until the
//! power button; `kiosk lock-block-device NAME` is the udev helper of the storage lock.

use std::io::Write;

use kiosk::boot::status::Status;

/// Time to read the refusal on screen before the machine powers off.
const POWEROFF_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

/// `kiosk lock-block-device NAME`, run by udev for every block device.
fn lock_block_device(name: Option<String>) -> std::process::ExitCode {
    let Some(name) = name else {
        eprintln!("usage: kiosk lock-block-device NAME (a kernel name such as sdb1)");
        return std::process::ExitCode::from(2);
    };
    match kiosk::storage::lock::lock_block_device(&name) {
        Ok(properties) => {
            print!("{properties}");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kiosk lock-block-device {name}: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // The journal adds its own timestamps and has no use for colour codes.
        .without_time()
        .with_ansi(false)
        .init();

    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("lock-block-device") => return lock_block_device(std::env::args().nth(2)),
        Some(other) => {
            eprintln!(
                "kiosk: unknown command {other:?}\n\
                 usage: kiosk                          boot status, then the session (kiosk.service)\n\
                 \x20      kiosk lock-block-device NAME   udev helper: set NAME read-only unless it is the stick"
            );
            return std::process::ExitCode::from(2);
        }
    }

    let observations = kiosk::boot::probe::observe();
    // The network part of the policy read from the verity root (none: no network).
    let network = observations
        .policy
        .as_ref()
        .and_then(|policy| policy.network.clone());
    let session = observations
        .policy
        .as_ref()
        .and_then(|policy| policy.session.clone());
    let mut status = Status::evaluate(observations);
    let storage = kiosk::storage::watch::settled_storage(status.cmdline_root_hash.as_deref());
    if !storage.ok {
        status.ok = false;
        status.refusals.extend(
            storage
                .problems
                .iter()
                .map(|p| format!("storage lock: {p}")),
        );
    }
    if status.ok {
        tracing::info!("boot status ok");
    } else {
        tracing::error!("boot status NOT ok");
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = writeln!(stdout, "{}", status.console_line())
        .and_then(|()| writeln!(stdout, "{}", storage.console_line()))
        .and_then(|()| stdout.flush())
    {
        tracing::error!("writing the status line: {err}");
        return std::process::ExitCode::FAILURE;
    }
    for warning in &status.warnings {
        let _ = writeln!(stdout, "WARNING: {warning}");
    }
    if !status.ok {
        // Fail closed: say why on the console and the screen, then power off.
        let mut message: String = status
            .refusals
            .iter()
            .map(|reason| format!("REFUSED: {reason}\n"))
            .collect();
        message.push_str(&format!(
            "No conference session will start. Powering off in {} s.\n",
            POWEROFF_DELAY.as_secs()
        ));
        let _ = stdout.write_all(message.as_bytes());
        let _ = stdout.flush();
        kiosk::screen::show(&message);
        drop(stdout);
        std::thread::sleep(POWEROFF_DELAY);
        if let Err(err) = kiosk::command::run("systemctl", &["poweroff", "--no-wall"]) {
            // kiosk.service's OnFailure= powers off instead.
            tracing::error!("cannot power off: {err}");
            return std::process::ExitCode::FAILURE;
        }
        loop {
            std::thread::park();
        }
    }
    drop(stdout);
    let root_hash = status.cmdline_root_hash.clone();
    std::thread::spawn(move || kiosk::storage::watch::watch_devices(root_hash, storage));
    let reachable: &'static std::sync::atomic::AtomicBool =
        Box::leak(Box::new(std::sync::atomic::AtomicBool::new(false)));
    let has_network = network.is_some();
    std::thread::spawn(move || kiosk::network::watch::run(network, reachable));
    if let Some(session) = session {
        std::thread::spawn(kiosk::session::shortcuts::run);
        std::thread::spawn(move || kiosk::session::runner::run(session, has_network, reachable));
    }

    // The session runs on its own thread; this one waits for the power button.
    match kiosk::power_button::wait_for_press() {
        Ok(device) => {
            tracing::info!("power button pressed ({})", device.display());
            println!("Power button pressed: powering off.");
            if let Err(err) = kiosk::command::run("systemctl", &["poweroff", "--no-wall"]) {
                tracing::error!("cannot power off: {err}");
                return std::process::ExitCode::FAILURE;
            }
        }
        Err(err) => tracing::warn!("power button: {err}"),
    }
    loop {
        std::thread::park();
    }
}
