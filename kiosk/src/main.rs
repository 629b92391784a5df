//! `kiosk`: prints the boot status line on the console, then stays alive.

use std::io::Write;

use kiosk::status::Status;

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
    drop(stdout);

    // Later the conference session runs here; until then, stay alive.
    loop {
        std::thread::park();
    }
}
