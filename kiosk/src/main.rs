//! `kiosk`: prints the boot status line on the console, then stays alive.

use std::io::Write;

use kiosk::status::Status;

/// Time to read the refusal on screen before the machine powers off.
const POWEROFF_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

/// The first virtual terminal: what a PC shows on its screen until a session runs.
/// The console (`/dev/console`) is the serial port when one is named last.
const SCREEN_TTY: &str = "/dev/tty1";

/// Best effort: a PC without a VT still has the console line.
fn show_on_screen(text: &str) {
    if let Err(err) = std::fs::OpenOptions::new()
        .write(true)
        .open(SCREEN_TTY)
        .and_then(|mut tty| tty.write_all(format!("\n{text}").as_bytes()))
    {
        tracing::warn!("cannot show the refusal on {SCREEN_TTY}: {err}");
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // The journal adds its own timestamps and has no use for colour codes.
        .without_time()
        .with_ansi(false)
        .init();

    let status = Status::evaluate(kiosk::probe::observe());
    if status.ok {
        tracing::info!("boot status ok");
    } else {
        tracing::error!("boot status NOT ok");
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = writeln!(stdout, "{}", status.console_line()).and_then(|()| stdout.flush()) {
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
        show_on_screen(&message);
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

    // Later the conference session runs here; until then, stay alive.
    loop {
        std::thread::park();
    }
}
