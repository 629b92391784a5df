//! Starts the compositor and the browser for one run: labwc on the seat with the
//! stick's overlay (`compositor`), Debian's Chromium in kiosk mode on a socket of
//! its own with a security context (`security_context`), as the unprivileged
//! session account with a fresh profile in RAM, and the CDP pipe on the
//! browser's fds 3 and 4.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use stick_manifest::https_url::HttpsUrl;
use stick_manifest::session::{SessionPolicy, SESSION_GID, SESSION_UID};

use crate::session::account::{
    drop_to_account, end_session_processes, fresh_session_folder, group_ids, join, Cleanup,
    SessionCgroup, SESSION_RUN_DIR,
};
use crate::session::cdp::Cdp;
use crate::session::compositor::Compositor;
use crate::session::security_context::BrowserDisplay;

/// The browser's Wayland socket, in its runtime folder (`xdg`).
const BROWSER_SOCKET: &str = "wayland-0";

/// The browser binary itself, not Debian's wrapper script (which adds flags).
pub const CHROMIUM: &str = "/usr/lib/chromium/chromium";
/// The compositor's, the overlay's and the browser's own output (kept off the console; its tail goes into
/// the kiosk's log when the browser ends).
pub const BROWSER_LOG: &str = "/run/conference-browser.log";
/// Lines of [`BROWSER_LOG`] the kiosk logs when the browser ends or the watchdog
/// acts: enough to hold a crashed process's stack.
const LOG_TAIL_LINES: usize = 60;
/// The size at which [`Browser::bound_log`] empties the log.
const LOG_LIMIT: u64 = 4 << 20;
/// Lines the tail leaves out: Chromium's complaints about the D-Bus session bus
/// and desktop services that a kiosk does not run (dozens per minute).
const LOG_NOISE: &[&str] = &["dbus/", "idle_linux.cc"];

/// What every Chromium the kiosk starts gets, the conference's and the
/// sign-in page's: Wayland, nothing in the background, no first-run or crash
/// dialogs, software rendering in one process, warnings on stderr (its log), and
/// Chromium's calls home off: no pings, no reliability or phishing reports, no
/// field trials, hints, time or certificate-transparency fetches (the
/// conference's browser asked accounts.google.com and update.googleapis.com
/// through the tunnel without them).
pub const SHARED_FLAGS: &[&str] = &[
    "--ozone-platform=wayland",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-gpu",
    // Software compositing in the browser process: a separate GPU process
    // crashed (SIGSEGV) under QEMU once the call's video started, and the
    // browser gave up ("GPU process isn't usable").
    "--in-process-gpu",
    "--noerrdialogs",
    // A child process (the network service, a renderer) ends itself when the
    // browser has not connected to it within this many seconds; Chromium's
    // default is 15. A slow PC starting the browser cold from a USB stick can
    // miss that: seen under QEMU, where the network service gave up after 15 s
    // and the page stalled until the browser started it again. 300, not 60:
    // where two such machines shared two cores (stop 32's CI) the sign-in
    // page's browser never asked for its page in 180 s, the same symptom (its
    // log was not kept, so the cause is not proven). A child whose browser
    // died lingers this long at most; the kiosk ends the whole account's
    // processes with the browser anyway.
    "--ipc-connection-timeout=300",
    "--password-store=basic",
    // Warnings and errors into the log (its tail goes into the kiosk's log when
    // the watchdog acts or the browser ends); a crash prints its stack there.
    "--enable-logging=stderr",
    "--log-level=1",
    "--no-pings",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-field-trial-config",
    "--disable-features=OptimizationHints,OptimizationGuideModelDownloading,\
     MediaRouter,DialMediaRouteProvider,Translate,AutofillServerCommunication,\
     CertificateTransparencyComponentUpdater,NetworkTimeServiceQuerying",
];

/// The browser's groups: `video` (cameras), `audio` (the sound card), its own.
fn session_groups() -> Vec<nix::unistd::Gid> {
    let mut groups = group_ids(&["video", "audio"]);
    groups.push(nix::unistd::Gid::from_raw(SESSION_GID));
    groups
}

/// Chromium's command line: kiosk mode, nothing in the background, CDP on the pipe.
pub fn chromium_args(policy: &SessionPolicy, profile: &Path) -> Vec<String> {
    // Nothing but the conference: SHARED_FLAGS, and the resolver rules below
    // as the backstop.
    let mut args: Vec<String> = SHARED_FLAGS
        .iter()
        .chain(&[
            "--kiosk",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-pipe",
        ])
        .map(|s| s.to_string())
        .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--host-resolver-rules={}", resolver_rules(policy)));
    if policy.fake_capture {
        // TEST images only (the manifest says so): a synthetic camera and
        // microphone, granted without a prompt.
        args.push("--use-fake-device-for-media-stream".into());
    }
    args.push(policy.url.clone());
    args
}

/// The browser resolves only the conference's host names: every other name is
/// "not found" inside the browser, so no background service can look up (and
/// then reach) anything else, whatever its flag or policy. IP literals need no
/// resolving.
pub fn resolver_rules(policy: &SessionPolicy) -> String {
    let mut hosts: Vec<String> = std::iter::once(policy.url.as_str())
        .chain(policy.origins.iter().map(String::as_str))
        .filter_map(|url| HttpsUrl::parse(url).ok())
        .map(|url| url.host)
        .collect();
    hosts.sort();
    hosts.dedup();
    std::iter::once("MAP * ~NOTFOUND".to_string())
        .chain(hosts.into_iter().map(|host| format!("EXCLUDE {host}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The lowest number [`above_browser_fds`] copies to.
const FIRST_FREE_FD: i32 = 10;

/// A close-on-exec copy of `fd` numbered [`FIRST_FREE_FD`] or higher.
fn above_browser_fds(fd: OwnedFd) -> Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let copy = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(FIRST_FREE_FD),
    )
    .context("cannot copy a CDP pipe end")?;
    // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
    #[allow(unsafe_code)]
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// A running browser.
#[derive(Debug)]
pub struct Browser {
    pub child: Child,
    pub cdp: Cdp,
    /// What was ended and cleared before this browser started.
    pub cleanup: Cleanup,
    /// The browser's socket; dropped after the browser ended.
    display: Option<BrowserDisplay>,
}

impl Browser {
    /// Starts Chromium on a socket of its own in the running compositor.
    pub fn start(policy: &SessionPolicy, compositor: &Compositor) -> Result<Browser> {
        let run = PathBuf::from(SESSION_RUN_DIR);
        let (cgroup, mut cleanup) = clean_slate(&run)?;
        let procs = cgroup.procs_file()?;
        let procs_fd = procs.as_raw_fd();
        // Browser reads commands on its fd 3 and writes to its fd 4.
        let (commands_read, commands_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make the CDP pipe")?;
        let (events_read, events_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot make the CDP pipe")?;
        // Appending, so that `bound_log` can empty it under the browser's feet.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(BROWSER_LOG)
            .and_then(|log| log.set_len(0).map(|()| log))
            .with_context(|| format!("cannot create {BROWSER_LOG}"))?;
        let display = BrowserDisplay::open(
            &compositor.own_socket(),
            &run.join("xdg").join(BROWSER_SOCKET),
            SESSION_UID,
            SESSION_GID,
        )?;
        let mut command = Command::new(CHROMIUM);
        command
            .args(chromium_args(policy, &run.join("profile")))
            .env_clear()
            .env("HOME", &run)
            .env("XDG_RUNTIME_DIR", run.join("xdg"))
            .env("WAYLAND_DISPLAY", BROWSER_SOCKET)
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .current_dir(&run)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the browser log")?)
            .stderr(log);
        // Copies above 3 and 4: dup2 onto the same number would keep O_CLOEXEC, and
        // one end sitting on the other's target number would be overwritten.
        let commands_read = above_browser_fds(commands_read)?;
        let events_write = above_browser_fds(events_write)?;
        let fds = [commands_read.as_raw_fd(), events_write.as_raw_fd()];
        let groups = session_groups();
        // SAFETY: between fork and exec only async-signal-safe system calls: write,
        // setsid, dup2, setgroups, setgid, setuid; `groups` was built before the fork.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                // Into the session's cgroup while still root; it cannot leave it.
                join(procs_fd)?;
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                drop_to_account(SESSION_UID, SESSION_GID, &groups)?;
                // dup2 clears O_CLOEXEC on the copies, so the browser inherits them.
                for (from, to) in fds.iter().zip([3, 4]) {
                    if nix::libc::dup2(*from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {CHROMIUM}"))?;
        drop::<OwnedFd>(commands_read);
        drop::<OwnedFd>(events_write);
        if policy.test_hostile_session {
            crate::session::wayland_probe::run_beside_browser(
                &run.join("xdg"),
                BROWSER_SOCKET,
                &compositor.own_socket(),
            );
            crate::session::hostile::spawn(procs_fd)?;
            cleanup.etc_owner = Some(etc_owner());
        }
        drop(procs);
        Ok(Browser {
            child,
            cdp: Cdp::new(
                std::fs::File::from(commands_write),
                std::fs::File::from(events_read),
            ),
            cleanup,
            display: Some(display),
        })
    }

    /// Empties the browser's log once it grows past [`LOG_LIMIT`]: it lives in RAM
    /// and a call runs for hours.
    pub fn bound_log() {
        let too_big = std::fs::metadata(BROWSER_LOG).is_ok_and(|m| m.len() > LOG_LIMIT);
        if too_big {
            if let Err(err) = std::fs::OpenOptions::new()
                .write(true)
                .open(BROWSER_LOG)
                .and_then(|f| f.set_len(0))
            {
                tracing::warn!("cannot empty {BROWSER_LOG}: {err}");
            }
        }
    }

    /// The last lines the compositor and the browser wrote, without the noise.
    pub fn log_tail() -> String {
        tail(&std::fs::read_to_string(BROWSER_LOG).unwrap_or_default())
    }

    /// Ends the browser and everything in its session; the compositor stays.
    pub fn stop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        self.display = None;
    }
}

/// Every process of the account ends first, wherever it hid; then a fresh
/// folder (and profile) that nothing of an earlier run can reach into.
fn clean_slate(run: &Path) -> Result<(SessionCgroup, Cleanup)> {
    let cgroup = SessionCgroup::prepare()?;
    let mut cleanup = end_session_processes(&cgroup, SESSION_UID)?;
    anyhow::ensure!(
        cleanup.left.is_empty(),
        "processes {:?} of the session account are still alive",
        cleanup.left
    );
    cleanup.links = fresh_session_folder(run, &["xdg", "profile"], SESSION_UID, SESSION_GID)?;
    if !cleanup.links.is_empty() {
        tracing::warn!(
            "links in the old session folder, removed without following: {:?}",
            cleanup.links
        );
    }
    Ok((cgroup, cleanup))
}

/// The owner of `/etc`: what a planted link would have handed to the session.
fn etc_owner() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/etc").map_or(u32::MAX, |m| m.uid())
}

/// The last [`LOG_TAIL_LINES`] lines of a browser log that are not [`LOG_NOISE`].
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !LOG_NOISE.iter().any(|noise| line.contains(noise)))
        .collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_follows_the_policy() {
        let mut policy = SessionPolicy {
            url: "https://conf.test/room".into(),
            origins: vec!["https://conf.test".into()],
            fake_capture: false,
            test_virtual_camera: false,
            test_hostile_session: false,
            keyboard: None,
            ended_url: None,
        };
        let args = chromium_args(&policy, Path::new("/run/conference/profile"));
        for want in [
            "--kiosk",
            "--remote-debugging-pipe",
            "--user-data-dir=/run/conference/profile",
            "--disable-background-networking",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} missing in {args:?}");
        }
        assert_eq!(
            args.last().map(String::as_str),
            Some("https://conf.test/room")
        );
        assert!(!args.iter().any(|a| a.contains("remote-debugging-port")));
        assert!(!args.iter().any(|a| a.contains("fake")));
        policy.fake_capture = true;
        let args = chromium_args(&policy, Path::new("/p"));
        assert!(args.contains(&"--use-fake-device-for-media-stream".to_string()));
    }

    #[test]
    fn the_log_tail_leaves_out_the_desktop_noise() {
        let log = "[1:1:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n\
                   [1:1:ERROR:network_service_instance_impl.cc:652] Network service crashed\n\
                   [1:1:WARNING:ui/base/idle/idle_linux.cc:111] None of the known D-Bus ScreenSaver services\n\
                   Received signal 11";
        assert_eq!(
            tail(log),
            "[1:1:ERROR:network_service_instance_impl.cc:652] Network service crashed\nReceived signal 11"
        );
        let long: String = (0..100).map(|n| format!("line {n}\n")).collect();
        let got = tail(&long);
        assert_eq!(got.lines().count(), LOG_TAIL_LINES);
        assert_eq!(got.lines().last(), Some("line 99"));
    }

    #[test]
    fn the_browser_resolves_only_the_conference_hosts() {
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "https://conf.test/room",
                &["https://conf.test"],
                "MAP * ~NOTFOUND, EXCLUDE conf.test",
            ),
            (
                "https://conf.test/room",
                &[
                    "https://conf.test",
                    "https://turn.conf.test:8443",
                    "https://10.99.0.11:8443",
                ],
                "MAP * ~NOTFOUND, EXCLUDE 10.99.0.11, EXCLUDE conf.test, EXCLUDE turn.conf.test",
            ),
        ];
        for (url, origins, want) in cases {
            let policy = SessionPolicy {
                url: (*url).into(),
                origins: origins.iter().map(|o| o.to_string()).collect(),
                fake_capture: false,
                test_virtual_camera: false,
                test_hostile_session: false,
                keyboard: None,
                ended_url: None,
            };
            assert_eq!(resolver_rules(&policy), *want, "{origins:?}");
            let args = chromium_args(&policy, Path::new("/p"));
            assert!(
                args.contains(&format!("--host-resolver-rules={want}")),
                "{args:?}"
            );
        }
    }
}
