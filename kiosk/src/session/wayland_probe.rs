//! TEST images only (`conference.test-hostile-session`): what a compromised
//! browser would try on the display. Started by the kiosk beside each browser,
//! as the browser's account with the browser's environment, it connects to the
//! browser's socket and lists what the compositor offers there, and tries the
//! compositor's own socket. The kiosk logs its answer as a `wayland-probe` line;
//! the QEMU conference scenario requires no layer-shell on the browser's socket
//! and no way into the compositor's own.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_registry;
use wayland_client::{Connection, Dispatch, QueueHandle};

/// The kiosk's subcommand that runs it.
pub const SUBCOMMAND: &str = "test-wayland-probe";
/// The interface that would let a client draw over everything.
pub const LAYER_SHELL: &str = "zwlr_layer_shell_v1";

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Interfaces offered on the browser's socket.
    pub browser_globals: Vec<String>,
    /// Whether layer-shell is among them.
    pub layer_shell: bool,
    /// How connecting to the compositor's own socket went: `refused: ...` or `connected`.
    pub compositor_socket: String,
}

struct Probe;

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for Probe {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

/// The interfaces a Wayland socket offers.
fn globals_at(socket: &Path) -> Result<Vec<String>> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to {}", socket.display()))?;
    let connection = Connection::from_socket(stream).context("not a Wayland socket")?;
    let (globals, _queue) =
        registry_queue_init::<Probe>(&connection).context("cannot list the globals")?;
    let mut names: Vec<String> = globals
        .contents()
        .clone_list()
        .into_iter()
        .map(|global| global.interface)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Connects to both sockets and reports.
pub fn probe(browser_socket: &Path, compositor_socket: &Path) -> Result<ProbeReport> {
    let browser_globals = globals_at(browser_socket)?;
    let compositor_socket = match UnixStream::connect(compositor_socket) {
        Ok(_) => "connected".to_string(),
        Err(err) => format!("refused: {err}"),
    };
    Ok(ProbeReport {
        layer_shell: browser_globals.iter().any(|g| g == LAYER_SHELL),
        browser_globals,
        compositor_socket,
    })
}

/// `kiosk test-wayland-probe COMPOSITOR_SOCKET`: the browser's socket from the
/// environment (`XDG_RUNTIME_DIR`/`WAYLAND_DISPLAY`); one JSON line on stdout.
pub fn run(compositor_socket: Option<String>) -> ExitCode {
    let Some(compositor_socket) = compositor_socket else {
        eprintln!(
            "usage: kiosk test-wayland-probe COMPOSITOR_SOCKET (TEST images, started by the kiosk)"
        );
        return ExitCode::from(2);
    };
    let browser_socket = Path::new(&std::env::var_os("XDG_RUNTIME_DIR").unwrap_or_default())
        .join(std::env::var_os("WAYLAND_DISPLAY").unwrap_or_default());
    match probe(&browser_socket, Path::new(&compositor_socket)) {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string(&report)
                    .unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("{}", serde_json::json!({ "error": format!("{err:#}") }));
            ExitCode::FAILURE
        }
    }
}

/// Runs the probe as the browser's account with the browser's display and logs
/// its answer as a `wayland-probe` line.
pub fn run_beside_browser(xdg: &Path, wayland_display: &str, compositor_socket: &Path) {
    use std::os::unix::process::CommandExt;
    use stick_manifest::session::{SESSION_GID, SESSION_UID};
    let answer = (|| -> Result<serde_json::Value> {
        let exe = std::env::current_exe().context("cannot find the kiosk binary")?;
        let mut command = std::process::Command::new(exe);
        command
            .arg(SUBCOMMAND)
            .arg(compositor_socket)
            .env_clear()
            .env("XDG_RUNTIME_DIR", xdg)
            .env("WAYLAND_DISPLAY", wayland_display)
            .stdin(std::process::Stdio::null());
        // SAFETY: only async-signal-safe system calls between fork and exec.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                crate::session::account::drop_to_account(SESSION_UID, SESSION_GID, &[])
            });
        }
        let output = command.output().context("cannot run the Wayland probe")?;
        let text = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(text.trim())
            .with_context(|| format!("the probe said {:?}", text.trim()))
    })()
    .unwrap_or_else(|err| serde_json::json!({ "error": format!("{err:#}") }));
    tracing::warn!("TEST: Wayland probe as the browser's account: {answer}");
    println!("{}", crate::console::event_line("wayland-probe", &answer));
}
