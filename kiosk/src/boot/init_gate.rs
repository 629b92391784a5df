//! The initrd's first program (`/init` links to the kiosk): before systemd or
//! anything else of the initrd runs, the running kernel command line must be
//! exactly the signed one that the builder wrote into the initrd.
//!
//! systemd-stub appends SMBIOS `io.systemd.stub.kernel-cmdline-extra` (and
//! command-line addons) after the signed words even with Secure Boot on. The
//! signed line ends with `--`, so the kernel takes no parameter from what
//! follows; systemd, however, reads all of `/proc/cmdline` (`rd.systemd.unit=`,
//! `rd.break`, ...). So the gate compares first and fails closed: the reason on
//! the serial console and the screen, then power off. When all is well it
//! executes systemd as PID 1 with the arguments and environment it was given.

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::Duration;

use nix::mount::{mount, umount, MsFlags};
use stick_manifest::initrd::{SIGNED_CMDLINE_PATH, SYSTEMD_PATH};

use crate::boot::cmdline::{cmdline_difference, PROC_CMDLINE};

/// The refusal stays on screen this long before the machine powers off, as the
/// fail-closed unit's does.
const REFUSAL_SECONDS: u64 = 10;

/// Where the refusal is written: the kernel's console (serial in CI) and the screen.
const REFUSAL_TTYS: &[&str] = &["/dev/console", "/dev/tty1"];

/// Why the gate does not start systemd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateRefusal {
    #[error("the kernel command line differs from the signed one: {0}")]
    Changed(String),
    #[error("cannot read {path}: {error}")]
    Unreadable { path: &'static str, error: String },
    #[error("cannot start {SYSTEMD_PATH}: {0}")]
    NoSystemd(String),
}

/// The running command line against the signed one.
pub fn judge(running: &str, signed: &str) -> Result<(), GateRefusal> {
    match cmdline_difference(running, signed) {
        None => Ok(()),
        Some(difference) => Err(GateRefusal::Changed(difference)),
    }
}

/// The two console lines of a refusal, in the fail-closed unit's format.
pub fn refusal_text(refusal: &GateRefusal) -> String {
    format!(
        "\n@stick@ fail-closed reason=cmdline\nREFUSED: {refusal}.\n\
         No conference session will start. Powering off in {REFUSAL_SECONDS} s.\n"
    )
}

/// Runs as PID 1 of the initrd: systemd on success, power off otherwise.
pub fn run() -> ! {
    let refusal = match read_and_judge() {
        Ok(()) => exec_systemd(),
        Err(refusal) => refusal,
    };
    refuse(&refusal)
}

/// Reads `/proc/cmdline` (mounting `/proc` for it, as nothing has yet) and the
/// signed line, and judges them.
fn read_and_judge() -> Result<(), GateRefusal> {
    let mounted = !Path::new(PROC_CMDLINE).exists()
        && mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .is_ok();
    let running = std::fs::read_to_string(PROC_CMDLINE);
    if mounted {
        // systemd mounts /proc itself, with its own options.
        let _ = umount("/proc");
    }
    let running = running.map_err(|e| GateRefusal::Unreadable {
        path: PROC_CMDLINE,
        error: e.to_string(),
    })?;
    let signed =
        std::fs::read_to_string(SIGNED_CMDLINE_PATH).map_err(|e| GateRefusal::Unreadable {
            path: SIGNED_CMDLINE_PATH,
            error: e.to_string(),
        })?;
    judge(&running, &signed)
}

/// Replaces this process (PID 1) with systemd; returns only when that failed.
fn exec_systemd() -> GateRefusal {
    let mut argv = vec![CString::new(SYSTEMD_PATH).expect("no NUL in a constant")];
    for arg in std::env::args_os().skip(1) {
        match CString::new(OsString::into_vec(arg)) {
            Ok(arg) => argv.push(arg),
            Err(_) => return GateRefusal::NoSystemd("an argument holds a NUL byte".into()),
        }
    }
    match nix::unistd::execv(&argv[0], &argv) {
        Err(errno) => GateRefusal::NoSystemd(errno.to_string()),
        Ok(never) => match never {},
    }
}

/// Says why on the console and the screen, waits, powers off. PID 1 must not
/// exit (the kernel would panic), so a failed power-off waits for ever.
fn refuse(refusal: &GateRefusal) -> ! {
    if !Path::new(REFUSAL_TTYS[1]).exists() {
        // The kernel's own initramfs has /dev/console only; tty1 needs devtmpfs.
        let _ = mount(
            Some("devtmpfs"),
            "/dev",
            Some("devtmpfs"),
            MsFlags::MS_NOSUID,
            None::<&str>,
        );
    }
    let text = refusal_text(refusal);
    for tty in REFUSAL_TTYS {
        if let Ok(mut out) = std::fs::OpenOptions::new().write(true).open(tty) {
            let _ = out.write_all(text.as_bytes());
        }
    }
    std::thread::sleep(Duration::from_secs(REFUSAL_SECONDS));
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "roothash=ab root=/dev/mapper/root rd.shell=0 sysctl.kernel.sysrq=0 --";

    #[test]
    fn only_the_signed_line_passes() {
        let cases: &[(&str, &str, Result<(), &str>)] = &[
            ("as signed, with the kernel's newline", "roothash=ab root=/dev/mapper/root rd.shell=0 sysctl.kernel.sysrq=0 --\n", Ok(())),
            (
                "SMBIOS extra after the end marker",
                "roothash=ab root=/dev/mapper/root rd.shell=0 sysctl.kernel.sysrq=0 -- rd.systemd.unit=emergency.target",
                Err("added `rd.systemd.unit=emergency.target`"),
            ),
            (
                "a loader's own line",
                "roothash=ab root=/dev/mapper/root rd.shell=1 sysctl.kernel.sysrq=0 --",
                Err("added `rd.shell=1`, missing `rd.shell=0`"),
            ),
            (
                "end marker dropped",
                "roothash=ab root=/dev/mapper/root rd.shell=0 sysctl.kernel.sysrq=0",
                Err("missing `--`"),
            ),
        ];
        for (name, running, want) in cases {
            let got = judge(running, SIGNED);
            match want {
                Ok(()) => assert_eq!(got, Ok(()), "{name}"),
                Err(difference) => {
                    assert_eq!(
                        got,
                        Err(GateRefusal::Changed(difference.to_string())),
                        "{name}"
                    )
                }
            }
        }
    }

    #[test]
    fn refusal_names_reason_and_what_follows() {
        let text = refusal_text(&GateRefusal::Changed("added `rd.break`".into()));
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "",
                "@stick@ fail-closed reason=cmdline",
                "REFUSED: the kernel command line differs from the signed one: added `rd.break`.",
                "No conference session will start. Powering off in 10 s.",
            ]
        );
    }
}
