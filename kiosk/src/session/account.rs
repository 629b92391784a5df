//! The session account's processes and folder, made safe for root to touch.
//!
//! Everything the account runs (cage, the browser, whatever they start) lives in a
//! cgroup of its own below the kiosk's (`kiosk.service` has `Delegate=yes`). A
//! process cannot leave its cgroup without root, so `setsid()`, a double fork or
//! another process group hide nothing: before a browser starts again, every
//! process in that cgroup is killed (`cgroup.kill`) and the kiosk waits until it
//! is empty; any process of the account found elsewhere is killed too.
//!
//! Only then is the session folder made again, fresh: the old one is removed
//! without following links, the new one and its subfolders are made by root and
//! handed to the account through descriptors opened with `O_NOFOLLOW`, the
//! parent last, so the account never owns a folder root is still working in.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

/// The session account's home, runtime folder and profile: all in RAM.
pub const SESSION_RUN_DIR: &str = "/run/conference";

/// The session's cgroup, below the kiosk's own.
pub const SESSION_CGROUP_NAME: &str = "conference-session";
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// How long the processes get to be gone after `cgroup.kill`.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

/// The cgroup every process of the session runs in.
#[derive(Debug, Clone)]
pub struct SessionCgroup {
    dir: PathBuf,
}

/// What the cleanup before a browser start found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cleanup {
    /// Processes of the session killed (in its cgroup and elsewhere).
    pub killed: usize,
    /// Processes of the account still alive afterwards (must be none).
    pub left: Vec<i32>,
    /// Links found in the old session folder (`xdg -> /etc`), removed, never followed.
    pub links: Vec<String>,
    /// TEST images with a hostile session only: the owner of `/etc` after the
    /// folder was made again (0: nothing was handed to the account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etc_owner: Option<u32>,
}

/// The cgroup of this process from `/proc/self/cgroup` (`0::/system.slice/...`).
pub fn parse_own_cgroup(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

impl SessionCgroup {
    /// The session's cgroup below the kiosk's own, made if it is not there.
    pub fn prepare() -> Result<SessionCgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .context("cannot read /proc/self/cgroup")?;
        let own = parse_own_cgroup(&own)
            .context("no cgroup v2 entry in /proc/self/cgroup")?
            .trim_start_matches('/')
            .to_string();
        let dir = Path::new(CGROUP_ROOT).join(own).join(SESSION_CGROUP_NAME);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "cannot make the session's cgroup {} (kiosk.service needs Delegate=yes)",
                        dir.display()
                    )
                })
            }
        }
        Ok(SessionCgroup { dir })
    }

    /// Its `cgroup.procs`, open for writing: a child writes `0` into it before it
    /// execs, and so joins the cgroup (close-on-exec, so nothing inherits it).
    pub fn procs_file(&self) -> Result<File> {
        let path = self.dir.join("cgroup.procs");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    /// The processes in it now.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every process in it and waits until it is empty; how many there were.
    pub fn kill_all(&self) -> Result<usize> {
        let before = self.pids().len();
        if before == 0 {
            return Ok(0);
        }
        let kill = self.dir.join("cgroup.kill");
        std::fs::write(&kill, "1").with_context(|| format!("cannot write {}", kill.display()))?;
        let deadline = Instant::now() + KILL_TIMEOUT;
        while !self.pids().is_empty() {
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "processes {:?} of the session outlived cgroup.kill",
                    self.pids()
                );
            }
            std::thread::sleep(POLL);
        }
        Ok(before)
    }
}

/// Joins the cgroup through `procs` (from [`SessionCgroup::procs_file`]): for the
/// child between fork and exec, so only `write(2)`.
pub fn join(procs: i32) -> std::io::Result<()> {
    // SAFETY: write(2) of a static buffer to a descriptor the parent opened.
    #[allow(unsafe_code)]
    let written = unsafe { nix::libc::write(procs, b"0".as_ptr().cast(), 1) };
    if written == 1 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Between fork and exec: the account's groups, then its ids; root is gone for
/// good. Only async-signal-safe system calls.
pub fn drop_to_account(uid: u32, gid: u32, groups: &[nix::unistd::Gid]) -> std::io::Result<()> {
    nix::unistd::setgroups(groups).map_err(std::io::Error::from)?;
    nix::unistd::setgid(nix::unistd::Gid::from_raw(gid)).map_err(std::io::Error::from)?;
    nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).map_err(std::io::Error::from)
}

/// The ids of the named groups in the text of `/etc/group`.
pub fn parse_group_ids(text: &str, names: &[&str]) -> Vec<u32> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let gid = fields.nth(1)?.parse().ok()?;
            names.contains(&name).then_some(gid)
        })
        .collect()
}

/// The ids of the named groups in the image's `/etc/group` (those it has).
pub fn group_ids(names: &[&str]) -> Vec<nix::unistd::Gid> {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    parse_group_ids(&text, names)
        .into_iter()
        .map(nix::unistd::Gid::from_raw)
        .collect()
}

/// Processes whose real uid is `uid`.
pub fn processes_of(uid: u32) -> Vec<i32> {
    account_pids(Path::new("/proc"), uid)
}

/// The real uid in the text of `/proc/PID/status` (`Uid:` real effective saved fs).
pub fn parse_status_uid(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|id| id.parse().ok())
}

/// Processes in `proc_dir` whose real uid is `uid`.
pub fn account_pids(proc_dir: &Path, uid: u32) -> Vec<i32> {
    crate::sysfs::entry_names(proc_dir)
        .into_iter()
        .filter_map(|name| name.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(proc_dir.join(pid.to_string()).join("status"))
                .ok()
                .and_then(|text| parse_status_uid(&text))
                == Some(uid)
        })
        .collect()
}

/// Ends every process of the session account: its cgroup, then any other
/// process of `uid` (there should be none).
pub fn end_session_processes(cgroup: &SessionCgroup, uid: u32) -> Result<Cleanup> {
    let mut killed = cgroup.kill_all()?;
    let proc_dir = Path::new("/proc");
    let strays = account_pids(proc_dir, uid);
    if !strays.is_empty() {
        tracing::warn!("processes {strays:?} of the session account outside its cgroup: killed");
        for pid in &strays {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        killed += strays.len();
        let deadline = Instant::now() + KILL_TIMEOUT;
        while !account_pids(proc_dir, uid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
    Ok(Cleanup {
        killed,
        left: account_pids(proc_dir, uid),
        links: Vec::new(),
        etc_owner: None,
    })
}

/// Makes `run` anew with `subfolders`, all mode 0700 and owned by `uid`:`gid`.
/// Call only once no process of the account is left. Returns the links found
/// in the old folder (`name -> target`), which are removed, never followed.
pub fn fresh_session_folder(
    run: &Path,
    subfolders: &[&str],
    uid: u32,
    gid: u32,
) -> Result<Vec<String>> {
    let links = links_in(run);
    match run.symlink_metadata() {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(run),
        Ok(_) => std::fs::remove_file(run),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
    .with_context(|| format!("cannot clear {}", run.display()))?;
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    builder
        .create(run)
        .with_context(|| format!("cannot create {}", run.display()))?;
    for sub in subfolders {
        let dir = run.join(sub);
        builder
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        give(&dir, uid, gid)?;
    }
    // The parent last: until now nothing in it belonged to the account.
    give(run, uid, gid)?;
    Ok(links)
}

/// `chown` through a descriptor of the folder itself, opened without following
/// a link.
fn give(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(dir)
        .with_context(|| format!("cannot open {} (not following links)", dir.display()))?;
    nix::unistd::fchown(
        folder.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .with_context(|| format!("cannot give {} to the session", dir.display()))
}

/// `name -> target` for every link directly in `dir`.
fn links_in(dir: &Path) -> Vec<String> {
    crate::sysfs::entry_names(dir)
        .into_iter()
        .filter_map(|name| {
            let target = std::fs::read_link(dir.join(&name)).ok()?;
            Some(format!("{name} -> {}", target.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn group_ids_by_name() {
        let text = "root:x:0:\naudio:x:29:pulse\nvideo:x:44:\nrender:x:992:\nbroken\n";
        assert_eq!(parse_group_ids(text, &["video", "render"]), [44, 992]);
        assert_eq!(parse_group_ids(text, &["input"]), Vec::<u32>::new());
    }

    #[test]
    fn own_cgroup_and_uid_are_parsed() {
        assert_eq!(
            parse_own_cgroup("0::/system.slice/kiosk.service\n"),
            Some("/system.slice/kiosk.service")
        );
        assert_eq!(parse_own_cgroup("1:name=systemd:/x\n"), None);
        let status = "Name:\tchromium\nUmask:\t0022\nUid:\t900\t900\t900\t900\nGid:\t900\n";
        assert_eq!(parse_status_uid(status), Some(900));
        assert_eq!(parse_status_uid("Name:\tx\n"), None);
    }

    #[test]
    fn account_processes_are_found_by_real_uid() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (pid, uid) in [("12", 900), ("13", 0), ("14", 900)] {
            std::fs::create_dir(dir.path().join(pid)).expect("pid");
            std::fs::write(
                dir.path().join(pid).join("status"),
                format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
            )
            .expect("status");
        }
        std::fs::create_dir(dir.path().join("self")).expect("self");
        assert_eq!(account_pids(dir.path(), 900), [12, 14]);
    }

    #[test]
    fn a_planted_link_is_removed_and_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("conference");
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).expect("etc");
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir(&run).expect("run");
        std::os::unix::fs::symlink(&etc, run.join("xdg")).expect("plant");
        // Not root here: hand the folders to ourselves, which exercises the same calls.
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let links = fresh_session_folder(&run, &["xdg", "profile"], uid, gid).expect("fresh");
        assert_eq!(links, [format!("xdg -> {}", etc.display())]);
        let xdg = run.join("xdg").symlink_metadata().expect("xdg");
        assert!(xdg.is_dir(), "a real folder now");
        assert_eq!(xdg.mode() & 0o7777, 0o700);
        assert_eq!(
            std::fs::metadata(&etc).expect("etc").mode() & 0o7777,
            0o755,
            "the link's target is untouched"
        );
        assert!(etc.exists());
    }

    #[test]
    fn a_folder_replaced_by_a_link_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::create_dir(&target).expect("target");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("link");
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        assert!(
            give(&link, uid, gid).is_err(),
            "O_NOFOLLOW refuses the link"
        );
        assert!(give(&target, uid, gid).is_ok());
    }
}
