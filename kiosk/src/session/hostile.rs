//! TEST images only (`conference.test-hostile-session`, allowed only beside a
//! fake camera): a process of the session account that does what a compromised
//! browser would do to get root from the kiosk. It hides (a double fork into a
//! session of its own, out of cage's process group), waits until it is the last
//! process of the account (the browser ended, the kiosk is about to start it
//! again), and replaces the session's `xdg` folder with a link to `/etc`, over
//! and over. The kiosk must end it before it touches the folder, and must not
//! follow the link; the QEMU conference scenario checks both.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use stick_manifest::session::{SESSION_GID, SESSION_UID};

use crate::session::account::{parse_own_cgroup, SESSION_RUN_DIR};

/// The kiosk's subcommand that runs it.
pub const SUBCOMMAND: &str = "test-hostile-session";
/// How often it looks: cheap (one small file), so that it does not slow the
/// browser it sits beside (one emulated CPU in the QEMU scenario).
const POLL: Duration = Duration::from_millis(500);

/// Starts the hostile process as the session account in the session's cgroup
/// (`procs`: its open `cgroup.procs`), and reaps the first child it leaves.
pub fn spawn(procs: i32) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot find the kiosk binary")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg(SUBCOMMAND)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe system calls: write,
    // setgroups, setgid, setuid.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            crate::session::account::join(procs)?;
            nix::unistd::setgroups(&[]).map_err(std::io::Error::from)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(SESSION_GID))
                .map_err(std::io::Error::from)?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(SESSION_UID))
                .map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let status = command
        .status()
        .context("cannot start the hostile test process")?;
    tracing::warn!("TEST: hostile process of the session account started ({status})");
    Ok(())
}

/// `kiosk test-hostile-session`: hides, then plants the link whenever it is the
/// last process of its account. Runs until it is killed.
pub fn run() -> ExitCode {
    if let Err(err) = hide() {
        eprintln!("{SUBCOMMAND}: {err}");
        return ExitCode::FAILURE;
    }
    let me = std::process::id().to_string();
    // Its cgroup is the session's: when it is the only process left there, the
    // browser and cage are gone.
    let procs = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| parse_own_cgroup(&text).map(str::to_string))
        .map(|cgroup| Path::new("/sys/fs/cgroup").join(cgroup.trim_start_matches('/')))
        .map(|dir| dir.join("cgroup.procs"));
    let Some(procs) = procs else {
        eprintln!("{SUBCOMMAND}: no cgroup");
        return ExitCode::FAILURE;
    };
    loop {
        std::thread::sleep(POLL);
        let alone = std::fs::read_to_string(&procs)
            .is_ok_and(|pids| pids.lines().all(|pid| pid.trim() == me));
        if alone {
            plant(Path::new(SESSION_RUN_DIR));
        }
    }
}

/// A double fork: the parent and the first child exit, the grandchild lives on
/// in a session of its own.
fn hide() -> nix::Result<()> {
    use nix::unistd::{fork, setsid, ForkResult};
    // SAFETY: this process has one thread (the subcommand runs before any other
    // starts); the children only call setsid, fork and exit.
    #[allow(unsafe_code)]
    unsafe {
        if let ForkResult::Parent { .. } = fork()? {
            std::process::exit(0);
        }
        setsid()?;
        if let ForkResult::Parent { .. } = fork()? {
            std::process::exit(0);
        }
    }
    Ok(())
}

/// `run/xdg` becomes a link to `/etc` (the folder moved aside).
fn plant(run: &Path) {
    let xdg = run.join("xdg");
    if xdg.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        let _ = std::fs::rename(&xdg, run.join("xdg.moved"));
        let _ = std::os::unix::fs::symlink("/etc", &xdg);
    }
}
