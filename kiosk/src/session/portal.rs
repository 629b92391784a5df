//! The sign-in page of a network that wants one before anything passes (hotels,
//! trains, guest networks): F8 on the stick's screen opens it in a throwaway
//! browser, as Tails' Unsafe Browser and ChromeOS' portal sign-in keep the
//! portal apart. That browser is not the conference's:
//! - its own account (`stick-portal`), no groups: no camera, no sound;
//! - its own network namespace (`network::portal_net`): DNS and HTTP(S) out to
//!   the PC's network only, never the inner networks; no tunnel attempt meanwhile;
//! - its own mount namespace: the network's resolvers, its own managed policy;
//! - incognito, with a fresh profile in RAM, removed with every process of the
//!   account when it closes (F8 again, the browser ends, 15 minutes pass, or
//!   the tunnel comes up).
//!
//! A strip over the top of the screen says all the while that this page is not
//! the secure conference.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use stick_manifest::network::{PortalPolicy, PORTAL_NAMESPACE, PORTAL_POLICY_DIR};
use stick_manifest::session::{PORTAL_GID, PORTAL_UID};

use crate::network::portal_net::{NetClosed, PortalNet};
use crate::overlay::screens::StickScreen;
use crate::session::account::{drop_to_account, fresh_session_folder, processes_of};
use crate::session::browser::{CHROMIUM, SHARED_FLAGS};
use crate::session::security_context::BrowserDisplay;
use crate::session::stick_display::StickDisplay;

/// The portal account's home, runtime folder and profile: all in RAM.
pub const PORTAL_RUN_DIR: &str = "/run/stick-portal";
/// The browser's output (kept off the console).
const PORTAL_LOG: &str = "/run/stick-portal.log";
/// The resolv.conf its mount namespace sees (root's, outside its folder).
const PORTAL_RESOLV: &str = "/run/stick-portal-resolv.conf";
/// What its mount namespace covers.
const RESOLV_CONF: &str = "/etc/resolv.conf";
const CHROMIUM_POLICIES: &str = "/etc/chromium/policies/managed";
/// The longest the sign-in page stays open.
const LONGEST_OPEN: Duration = Duration::from_secs(15 * 60);
/// A press of F8 counts this long (a press during the conference does not
/// open the page when the tunnel is lost later).
const PRESS_COUNTS: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(250);
const BROWSER_SOCKET: &str = "wayland-0";

static PRESSED: Mutex<Option<Instant>> = Mutex::new(None);

/// F8 was pressed: opens the page (from the screens before the tunnel) or
/// closes it.
pub fn key_pressed() {
    if let Ok(mut pressed) = PRESSED.lock() {
        *pressed = Some(Instant::now());
    }
}

/// Whether F8 was pressed and not yet acted on.
pub fn pressed() -> bool {
    PRESSED.lock().is_ok_and(|pressed| pressed.is_some())
}

fn take_press() -> bool {
    PRESSED
        .lock()
        .ok()
        .and_then(|mut pressed| pressed.take())
        .is_some_and(|at| at.elapsed() < PRESS_COUNTS)
}

/// The `portal-opened` console line.
#[derive(Debug, Serialize)]
struct Opened<'a> {
    start_page: &'a str,
    namespace: &'static str,
    uid: u32,
    pid: u32,
}

/// The `portal-closed` console line: why, and what is left (nothing, or it says so).
#[derive(Debug, Serialize)]
struct Closed {
    reason: String,
    open_ms: u64,
    /// Processes of the portal account alive after it closed (must be none).
    left: Vec<i32>,
    /// Its folder (profile, runtime folder) is gone.
    profile_removed: bool,
    #[serde(flatten)]
    net: NetClosed,
}

/// Opens the sign-in page if F8 was just pressed and the tunnel is down, and
/// keeps it until it is closed; returns at once otherwise.
pub fn open_if_asked(portal: &PortalPolicy, display: &mut StickDisplay, reachable: &AtomicBool) {
    if !take_press() || reachable.load(Ordering::SeqCst) {
        return;
    }
    let opened = Instant::now();
    let net = match PortalNet::open() {
        Ok(net) => net,
        Err((reason, closed)) => {
            report_closed(
                format!("cannot open: {reason}"),
                opened,
                Vec::new(),
                true,
                closed,
            );
            return;
        }
    };
    display.show(
        StickScreen::PortalOpen,
        "The network's sign-in page is open. It is NOT the secure conference: \
         type there only what the network asks for. F8 closes it.",
    );
    let started = display.compositor().and_then(|compositor| {
        PortalBrowser::start(portal, &compositor.own_socket(), &net.resolv_conf)
    });
    let (reason, left) = match started {
        Ok(mut browser) => {
            println!(
                "{}",
                crate::console::event_line(
                    "portal-opened",
                    &Opened {
                        start_page: &portal.start_page,
                        namespace: PORTAL_NAMESPACE,
                        uid: PORTAL_UID,
                        pid: browser.child.id(),
                    }
                )
            );
            let reason = browser.wait_for_close(opened, reachable);
            (reason, browser.stop())
        }
        Err(err) => (
            format!("cannot start the browser: {err:#}"),
            end_account_processes(),
        ),
    };
    let profile_removed = wipe_folder();
    report_closed(reason, opened, left, profile_removed, net.close());
}

fn report_closed(
    reason: String,
    opened: Instant,
    left: Vec<i32>,
    profile_removed: bool,
    net: NetClosed,
) {
    tracing::info!("the sign-in page closed: {reason}");
    println!(
        "{}",
        crate::console::event_line(
            "portal-closed",
            &Closed {
                reason,
                open_ms: opened.elapsed().as_millis() as u64,
                left,
                profile_removed,
                net,
            }
        )
    );
}

/// Removes the account's folder (profile, runtime folder) and resolv.conf.
fn wipe_folder() -> bool {
    let _ = std::fs::remove_file(PORTAL_RESOLV);
    match std::fs::remove_dir_all(PORTAL_RUN_DIR) {
        Ok(()) => true,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
        Err(err) => {
            tracing::warn!("cannot remove {PORTAL_RUN_DIR}: {err}");
            false
        }
    }
}

/// Kills every process of the portal account; returns those still alive.
fn end_account_processes() -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive = processes_of(PORTAL_UID);
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        for pid in alive {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Chromium's own calls that the flags leave (seen in the QEMU scenario): not a
/// sign-in page's business, and not resolved. Only these exact names: a portal
/// may well use other Google hosts (fonts, scripts).
const CHROMIUM_OWN_NAMES: &str =
    "MAP accounts.google.com ~NOTFOUND, MAP update.googleapis.com ~NOTFOUND";

/// Chromium's command line for the sign-in page: an ordinary window (the
/// address shows whose page it is), incognito, nothing in the background.
pub fn chromium_args(start_page: &str, profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = SHARED_FLAGS
        .iter()
        .chain(&["--start-maximized", "--incognito"])
        .map(|s| s.to_string())
        .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--host-resolver-rules={}", CHROMIUM_OWN_NAMES));
    args.push(start_page.to_string());
    args
}

/// The running sign-in page's browser.
struct PortalBrowser {
    child: Child,
    /// Its Wayland socket; dropped once it ended.
    display: Option<BrowserDisplay>,
}

/// C strings the child needs after the fork (allocating there is not safe).
struct Mounts {
    resolv_from: CString,
    resolv_to: CString,
    policy_from: CString,
    policy_to: CString,
    root: CString,
}

impl Mounts {
    fn new() -> Result<Mounts> {
        let c = |s: &str| CString::new(s).context("a path holds a NUL byte");
        Ok(Mounts {
            resolv_from: c(PORTAL_RESOLV)?,
            resolv_to: c(RESOLV_CONF)?,
            policy_from: c(PORTAL_POLICY_DIR)?,
            policy_to: c(CHROMIUM_POLICIES)?,
            root: c("/")?,
        })
    }

    /// In the child: a mount namespace of its own, with the network's
    /// resolvers and the portal's browser policy in place.
    fn apply(&self) -> std::io::Result<()> {
        use nix::mount::{mount, MsFlags};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
        let none: Option<&std::ffi::CStr> = None;
        mount(
            none,
            self.root.as_c_str(),
            none,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            none,
        )
        .map_err(std::io::Error::from)?;
        for (from, to) in [
            (&self.resolv_from, &self.resolv_to),
            (&self.policy_from, &self.policy_to),
        ] {
            mount(
                Some(from.as_c_str()),
                to.as_c_str(),
                none,
                MsFlags::MS_BIND,
                none,
            )
            .map_err(std::io::Error::from)?;
        }
        Ok(())
    }
}

impl PortalBrowser {
    fn start(
        portal: &PortalPolicy,
        compositor_socket: &Path,
        resolv_conf: &str,
    ) -> Result<PortalBrowser> {
        let stray = end_account_processes();
        anyhow::ensure!(
            stray.is_empty(),
            "processes {stray:?} of the portal account are still alive"
        );
        let run = Path::new(PORTAL_RUN_DIR);
        fresh_session_folder(run, &["xdg", "profile"], PORTAL_UID, PORTAL_GID)?;
        std::fs::write(PORTAL_RESOLV, resolv_conf)
            .with_context(|| format!("cannot write {PORTAL_RESOLV}"))?;
        let namespace = std::fs::File::open(crate::network::portal_net::namespace_path())
            .context("cannot open the sign-in page's network namespace")?;
        let display = BrowserDisplay::open(
            compositor_socket,
            &run.join("xdg").join(BROWSER_SOCKET),
            PORTAL_UID,
            PORTAL_GID,
        )?;
        let log = std::fs::File::create(PORTAL_LOG)
            .with_context(|| format!("cannot create {PORTAL_LOG}"))?;
        let mut command = Command::new(CHROMIUM);
        command
            .args(chromium_args(&portal.start_page, &run.join("profile")))
            .env_clear()
            .env("HOME", run)
            .env("XDG_RUNTIME_DIR", run.join("xdg"))
            .env("WAYLAND_DISPLAY", BROWSER_SOCKET)
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .current_dir(run)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the portal log")?)
            .stderr(log);
        let mounts = Mounts::new()?;
        let namespace_fd = namespace.as_raw_fd();
        // SAFETY: between fork and exec only system calls on memory made before
        // the fork: setns, unshare, mount, setsid, setgroups, setgid, setuid.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                // SAFETY: the namespace file stays open in the parent until spawn returns.
                let fd = std::os::fd::BorrowedFd::borrow_raw(namespace_fd);
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                mounts.apply()?;
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                drop_to_account(PORTAL_UID, PORTAL_GID, &[])
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {CHROMIUM}"))?;
        drop(namespace);
        Ok(PortalBrowser {
            child,
            display: Some(display),
        })
    }

    /// Waits until the page should close; says why.
    fn wait_for_close(&mut self, opened: Instant, reachable: &AtomicBool) -> String {
        loop {
            std::thread::sleep(POLL);
            if take_press() {
                return "the person closed it (F8)".into();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!("the browser ended ({status})");
            }
            if reachable.load(Ordering::SeqCst) {
                return "the tunnel came up".into();
            }
            if opened.elapsed() >= LONGEST_OPEN {
                return format!("open for {} minutes", LONGEST_OPEN.as_secs() / 60);
            }
        }
    }

    /// Ends the browser and every process of the account; returns those left.
    fn stop(&mut self) -> Vec<i32> {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        self.display = None;
        end_account_processes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_browser_is_incognito_in_its_own_profile() {
        let args = chromium_args(
            "http://portal-check.test/",
            Path::new("/run/stick-portal/profile"),
        );
        for wanted in [
            "--incognito",
            "--ozone-platform=wayland",
            "--user-data-dir=/run/stick-portal/profile",
        ] {
            assert!(args.iter().any(|a| a == wanted), "{wanted} in {args:?}");
        }
        assert_eq!(
            args.last().map(String::as_str),
            Some("http://portal-check.test/")
        );
        // Never the conference's pipe or kiosk mode.
        assert!(!args
            .iter()
            .any(|a| a == "--remote-debugging-pipe" || a == "--kiosk"));
    }

    #[test]
    fn a_press_counts_only_while_fresh() {
        key_pressed();
        assert!(take_press());
        assert!(!take_press(), "a press counts once");
        *PRESSED.lock().expect("the press lock") =
            Some(Instant::now() - PRESS_COUNTS - Duration::from_millis(1));
        assert!(!take_press(), "an old press does not count");
    }
}
