//! The initrd's first program (`/init` links to the kiosk): before systemd or
//! anything else of the initrd runs, nothing may reach systemd but what the
//! signed UKI carries.
//!
//! - The running kernel command line must be exactly the signed one that the
//!   builder wrote into the initrd. systemd-stub appends SMBIOS
//!   `io.systemd.stub.kernel-cmdline-extra` (and command-line addons) after the
//!   signed words even with Secure Boot on. The signed line ends with `--`, so the
//!   kernel takes no parameter from what follows; systemd, however, reads all of
//!   `/proc/cmdline` (`rd.systemd.unit=`, `rd.break`, ...).
//! - No SMBIOS OEM string (type 11) may speak to systemd (`io.systemd.*`): PID 1
//!   imports `io.systemd.credential:` strings as credentials, and credentials such
//!   as `systemd.extra-unit.*` add units to the initrd.
//! - Nothing beside the UKI on the ESP may have been loaded: systemd-stub hands
//!   `*.cred`, `*.sysext.raw` and `*.confext.raw` files from the ESP to the initrd
//!   under `/.extra`; the stick ships none.
//!
//! Any of these fails closed: the reasons on the serial console and the screen,
//! then power off. When all is well the gate executes systemd as PID 1 with the
//! arguments and environment it was given.

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

/// Where systemd-stub puts what it hands the initrd beside the kernel's.
pub const STUB_EXTRAS_DIR: &str = "/.extra";

/// Files in [`STUB_EXTRAS_DIR`] that systemd-stub makes from the UKI's own signed
/// sections (`.osrel`, `.profile`, `.pcrsig`, `.pcrpkey`), not from files on the ESP.
const FROM_THE_UKI: &[&str] = &[
    "os-release",
    "profile",
    "tpm2-pcr-signature.json",
    "tpm2-pcr-public-key.pem",
];

/// The kernel's copy of the SMBIOS tables, one folder per structure (`11-0`, ...).
const SMBIOS_ENTRIES_DIR: &str = "/sys/firmware/dmi/entries";

/// SMBIOS structure type of OEM strings.
const SMBIOS_OEM_STRINGS: &str = "11-";

/// What systemd (PID 1 and systemd-stub) reads from SMBIOS OEM strings.
const SYSTEMD_OEM_PREFIX: &str = "io.systemd.";

/// Why the gate does not start systemd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateRefusal {
    #[error("the kernel command line differs from the signed one: {0}")]
    Changed(String),
    #[error("the PC's firmware passes settings to systemd (SMBIOS OEM strings {})", .0.join(", "))]
    FirmwareSettings(Vec<String>),
    #[error("files beside the stick's UKI were loaded into the initrd ({})", .0.join(", "))]
    StubExtras(Vec<String>),
    #[error("cannot read {path}: {error}")]
    Unreadable { path: &'static str, error: String },
    #[error("cannot start {SYSTEMD_PATH}: {0}")]
    NoSystemd(String),
}

/// What the gate looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub running_cmdline: String,
    pub signed_cmdline: String,
    /// Every SMBIOS OEM string.
    pub oem_strings: Vec<String>,
    /// Files under [`STUB_EXTRAS_DIR`], relative to it.
    pub stub_extras: Vec<String>,
}

/// Every reason to refuse, in the order a person should read them.
pub fn judge(observed: &Observed) -> Vec<GateRefusal> {
    let mut refusals = Vec::new();
    if let Some(difference) =
        cmdline_difference(&observed.running_cmdline, &observed.signed_cmdline)
    {
        refusals.push(GateRefusal::Changed(difference));
    }
    let to_systemd: Vec<String> = observed
        .oem_strings
        .iter()
        .filter(|s| s.starts_with(SYSTEMD_OEM_PREFIX))
        // The name only: a credential's value may be long, or a secret.
        .map(|s| s.split('=').next().unwrap_or(s).to_string())
        .collect();
    if !to_systemd.is_empty() {
        refusals.push(GateRefusal::FirmwareSettings(to_systemd));
    }
    let from_the_esp: Vec<String> = observed
        .stub_extras
        .iter()
        .filter(|f| !FROM_THE_UKI.contains(&f.as_str()))
        .cloned()
        .collect();
    if !from_the_esp.is_empty() {
        refusals.push(GateRefusal::StubExtras(from_the_esp));
    }
    refusals
}

/// The strings of one raw SMBIOS structure (`/sys/firmware/dmi/entries/*/raw`):
/// after the formatted area (its length is the header's second byte), strings
/// end with NUL and the set with a second NUL.
pub fn smbios_strings(raw: &[u8]) -> Vec<String> {
    let Some(strings) = raw.get(1).and_then(|len| raw.get(*len as usize..)) else {
        return Vec::new();
    };
    strings
        .split(|b| *b == 0)
        .take_while(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The console lines of a refusal, in the fail-closed unit's format.
pub fn refusal_text(refusals: &[GateRefusal]) -> String {
    let reasons: String = refusals
        .iter()
        .map(|r| format!("REFUSED: {r}.\n"))
        .collect();
    format!(
        "\n@stick@ fail-closed reason=cmdline\n{reasons}\
         No conference session will start. Powering off in {REFUSAL_SECONDS} s.\n"
    )
}

/// Runs as PID 1 of the initrd: systemd on success, power off otherwise.
pub fn run() -> ! {
    let refusals = match observe() {
        Ok(observed) => judge(&observed),
        Err(refusal) => vec![refusal],
    };
    if refusals.is_empty() {
        refuse(&[exec_systemd()])
    }
    refuse(&refusals)
}

/// Mounts a kernel filesystem for the gate's own look when it is not there;
/// true when this mounted it (and must unmount it: systemd mounts its own).
fn mount_for_a_look(fstype: &str, at: &str, probe: &str) -> bool {
    !Path::new(probe).exists()
        && mount(
            Some(fstype),
            at,
            Some(fstype),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .is_ok()
}

/// Reads the command lines, the SMBIOS OEM strings and the stub's extras.
fn observe() -> Result<Observed, GateRefusal> {
    let read = |path: &'static str| {
        std::fs::read_to_string(path).map_err(|e| GateRefusal::Unreadable {
            path,
            error: e.to_string(),
        })
    };
    let proc_mounted = mount_for_a_look("proc", "/proc", PROC_CMDLINE);
    let running_cmdline = read(PROC_CMDLINE);
    if proc_mounted {
        let _ = umount("/proc");
    }
    let sys_mounted = mount_for_a_look("sysfs", "/sys", "/sys/firmware");
    // Without sysfs the firmware's strings cannot be looked at: refuse then.
    let sysfs_seen = Path::new("/sys/firmware").exists();
    let oem_strings: Vec<String> = crate::sysfs::entry_names(Path::new(SMBIOS_ENTRIES_DIR))
        .iter()
        .filter(|name| name.starts_with(SMBIOS_OEM_STRINGS))
        .filter_map(|name| std::fs::read(Path::new(SMBIOS_ENTRIES_DIR).join(name).join("raw")).ok())
        .flat_map(|raw| smbios_strings(&raw))
        .collect();
    if sys_mounted {
        let _ = umount("/sys");
    }
    if !sysfs_seen {
        return Err(GateRefusal::Unreadable {
            path: "/sys/firmware",
            error: "sysfs could not be mounted".into(),
        });
    }
    Ok(Observed {
        running_cmdline: running_cmdline?,
        signed_cmdline: read(SIGNED_CMDLINE_PATH)?,
        oem_strings,
        stub_extras: files_below(Path::new(STUB_EXTRAS_DIR)),
    })
}

/// Every file below `dir`, relative to it (none when `dir` does not exist).
fn files_below(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for name in crate::sysfs::entry_names(&folder) {
            let path = folder.join(&name);
            if path.is_dir() && !path.is_symlink() {
                folders.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                files.push(relative.display().to_string());
            }
        }
    }
    files.sort();
    files
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
fn refuse(refusals: &[GateRefusal]) -> ! {
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
    let text = refusal_text(refusals);
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

    fn observed(running: &str) -> Observed {
        Observed {
            running_cmdline: running.into(),
            signed_cmdline: SIGNED.into(),
            oem_strings: vec!["Dell System".into(), "1[0A2B]".into()],
            stub_extras: Vec::new(),
        }
    }

    #[test]
    fn only_the_signed_boot_passes() {
        let changed = |d: &str| GateRefusal::Changed(d.into());
        let with_oem = |strings: &[&str]| Observed {
            oem_strings: strings.iter().map(|s| s.to_string()).collect(),
            ..observed(SIGNED)
        };
        let extras = Observed {
            stub_extras: vec!["credentials/x.cred".into(), "os-release".into()],
            ..observed(SIGNED)
        };
        let from_the_uki = Observed {
            stub_extras: vec!["os-release".into()],
            ..observed(SIGNED)
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, Observed, Vec<GateRefusal>)> = vec![
            ("as signed, with the kernel's newline", observed(&format!("{SIGNED}\n")), vec![]),
            ("SMBIOS extra after the end marker", observed(&format!("{SIGNED} rd.systemd.unit=emergency.target")),
                vec![changed("added `rd.systemd.unit=emergency.target`")]),
            ("a loader's own line", observed("roothash=ab root=/dev/mapper/root rd.shell=1 sysctl.kernel.sysrq=0 --"),
                vec![changed("added `rd.shell=1`, missing `rd.shell=0`")]),
            ("end marker dropped", observed("roothash=ab root=/dev/mapper/root rd.shell=0 sysctl.kernel.sysrq=0"),
                vec![changed("missing `--`")]),
            ("a vendor's OEM strings", with_oem(&["Dell System", "io.systemdx"]), vec![]),
            ("a credential from the firmware", with_oem(&["io.systemd.credential:systemd.extra-unit.x.service=[Service]\nExecStart=/bin/sh"]),
                vec![GateRefusal::FirmwareSettings(vec!["io.systemd.credential:systemd.extra-unit.x.service".into()])]),
            ("the UKI's own os-release", from_the_uki, vec![]),
            ("a credential file from the ESP", extras, vec![GateRefusal::StubExtras(vec!["credentials/x.cred".into()])]),
        ];
        for (name, observed, want) in cases {
            assert_eq!(judge(&observed), want, "{name}");
        }
    }

    #[test]
    fn smbios_oem_strings_are_read_from_the_raw_structure() {
        // type 11, length 5, handle 0x0100, count 2, then the strings.
        let mut raw = vec![11, 5, 0x00, 0x01, 2];
        raw.extend(b"io.systemd.credential:a=b\0Dell System\0\0");
        let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
            (
                "two strings",
                raw,
                vec!["io.systemd.credential:a=b", "Dell System"],
            ),
            ("no strings", vec![11, 5, 0, 1, 0, 0, 0], vec![]),
            ("cut short", vec![11], vec![]),
        ];
        for (name, raw, want) in cases {
            assert_eq!(smbios_strings(&raw), want, "{name}");
        }
    }

    #[test]
    fn every_refusal_is_named_on_its_own_line() {
        let text = refusal_text(&[
            GateRefusal::Changed("added `rd.break`".into()),
            GateRefusal::FirmwareSettings(vec!["io.systemd.credential:x".into()]),
        ]);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "",
                "@stick@ fail-closed reason=cmdline",
                "REFUSED: the kernel command line differs from the signed one: added `rd.break`.",
                "REFUSED: the PC's firmware passes settings to systemd (SMBIOS OEM strings io.systemd.credential:x).",
                "No conference session will start. Powering off in 10 s.",
            ]
        );
    }

    #[test]
    fn stub_extras_are_listed_below_their_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            files_below(&dir.path().join("absent")),
            Vec::<String>::new()
        );
        std::fs::create_dir_all(dir.path().join("credentials")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("sysext")).expect("mkdir");
        std::fs::write(dir.path().join("credentials/a.cred"), "x").expect("write");
        assert_eq!(files_below(dir.path()), ["credentials/a.cred"]);
    }
}
