//! The browser's own Wayland socket, made through the compositor's
//! security-context-v1: every client that connects there carries the kiosk's
//! sandbox tag, and labwc offers such clients no privileged protocol (no
//! layer-shell, no screen copy, no virtual keyboard). The compositor's own socket
//! stays in the screen account's folder, which the browser cannot enter.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::wl_registry;
use wayland_client::{delegate_noop, Connection, Dispatch, QueueHandle};
use wayland_protocols::wp::security_context::v1::client::{
    wp_security_context_manager_v1, wp_security_context_v1,
};

/// The sandbox engine the compositor sees on the browser's connections.
pub const SANDBOX_ENGINE: &str = "de.secure-stick.kiosk";
pub const APP_ID: &str = "conference-browser";

#[derive(Debug)]
struct Setup;

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for Setup {
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

delegate_noop!(Setup: wp_security_context_manager_v1::WpSecurityContextManagerV1);
delegate_noop!(Setup: wp_security_context_v1::WpSecurityContextV1);

/// The browser's socket, open while this lives: dropping it hangs up the close
/// pipe, and the compositor stops accepting there.
#[derive(Debug)]
pub struct BrowserDisplay {
    pub socket: PathBuf,
    _connection: Connection,
    _close: OwnedFd,
}

impl BrowserDisplay {
    /// Makes `socket` (owned by `uid`:`gid`, mode 0600) a listening socket whose
    /// clients the compositor at `compositor` tags with the kiosk's security context.
    pub fn open(compositor: &Path, socket: &Path, uid: u32, gid: u32) -> Result<BrowserDisplay> {
        let stream = UnixStream::connect(compositor)
            .with_context(|| format!("cannot reach the compositor at {}", compositor.display()))?;
        let connection =
            Connection::from_socket(stream).context("cannot speak Wayland to the compositor")?;
        let (globals, mut queue) = registry_queue_init::<Setup>(&connection)
            .context("cannot list the compositor's globals")?;
        let qh = queue.handle();
        let manager: wp_security_context_manager_v1::WpSecurityContextManagerV1 = globals
            .bind(&qh, 1..=1, ())
            .context("the compositor offers no wp_security_context_manager_v1")?;
        match std::fs::remove_file(socket) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("cannot remove {}", socket.display()))
            }
        }
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot set the mode of {}", socket.display()))?;
        nix::unistd::chown(
            socket,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .with_context(|| format!("cannot give {} to the browser's account", socket.display()))?;
        let (close_read, close_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("cannot make the security context's close pipe")?;
        let context = manager.create_listener(listener.as_fd(), close_read.as_fd(), &qh, ());
        context.set_sandbox_engine(SANDBOX_ENGINE.into());
        context.set_app_id(APP_ID.into());
        context.commit();
        context.destroy();
        queue
            .roundtrip(&mut Setup)
            .context("the compositor refused the browser's security context")?;
        Ok(BrowserDisplay {
            socket: socket.to_path_buf(),
            _connection: connection,
            _close: close_write,
        })
    }
}
