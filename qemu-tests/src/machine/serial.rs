//! Reading the guest's serial console: the kiosk's `@kiosk@ {json}` lines and the
//! patterns that must never appear (login prompts, shells).

use serde::Deserialize;

/// Marker that starts every machine-readable kiosk line.
pub const KIOSK_MARKER: &str = "@kiosk@ ";

/// The kiosk's boot status (fields as the kiosk prints them; unknown ones ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KioskStatus {
    pub event: String,
    pub ok: bool,
    pub cmdline_root_hash: Option<String>,
    pub dm_root_hash: Option<String>,
    pub verity: String,
    pub root_read_only: bool,
    pub root_fs: Option<String>,
    pub manifest_name: Option<String>,
    pub manifest_version: Option<String>,
    pub signature: String,
    pub signature_detail: Option<String>,
    pub test_keys: Option<bool>,
    pub manifest_root_hash_matches: bool,
    pub cmdline_signed: bool,
    pub secure_boot: String,
    /// Which key trusted the UKI (absent in lines of older images).
    #[serde(default)]
    pub boot_trust: Option<BootTrust>,
    pub lockdown: Option<String>,
    /// IOMMU units the kernel drives (absent in lines of older images).
    #[serde(default)]
    pub iommu: Vec<String>,
    pub refusals: Vec<String>,
    pub warnings: Vec<String>,
}

/// The status line's `boot_trust`: the trust path and what else the PC trusts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BootTrust {
    /// `firmware-db`, `shim-mok`, `not-verified` or `unknown`.
    pub path: String,
    pub db_entries: usize,
    pub shim: bool,
    pub shim_verifies: bool,
    pub shim_vendor_key: bool,
    pub other_moks: usize,
}

/// The console up to its last newline: a line the guest is still writing is left
/// for the next read. (A kiosk line read half-written is not JSON; a check of
/// "every marker line parses" read the log while a 1 kB `usb` line was being
/// written, and failed.)
pub fn finished_lines(console: &str) -> &str {
    console.rfind('\n').map_or("", |end| &console[..=end])
}

/// Where a kernel stamp (`[  140.448937] `) starts in `line` after its first
/// character, if one does.
fn stamp_inside(line: &str) -> Option<usize> {
    // A stamp is short: look no further than this for its closing bracket.
    const STAMP_MAX: usize = 24;
    line.match_indices('[').map(|(at, _)| at).find(|&at| {
        let rest = &line[at + 1..];
        let Some(end) = rest.bytes().take(STAMP_MAX).position(|b| b == b']') else {
            return false;
        };
        let (whole, fraction) = rest[..end].trim_start().split_once('.').unwrap_or(("", ""));
        at > 0
            && rest[end + 1..].starts_with(' ')
            && !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.len() == 6
            && fraction.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Puts kiosk lines back together that a kernel message split. journald writes
/// a line to the console and its newline apart; the kernel prints its own
/// messages straight to the serial port, and one may land in between, even
/// inside the line (seen: `..."dropped_packets":0}[  140.448937] scsi host2:
/// ahci`, then the kiosk line's newline alone). The kernel's message becomes a
/// line of its own, and the kiosk line is joined with the next line that is not
/// another kernel message: its rest.
pub fn rejoin_split_lines(console: &str) -> String {
    let mut out = String::with_capacity(console.len());
    let mut pending: Option<&str> = None;
    for line in console.split_inclusive('\n') {
        if let Some(head) = pending {
            let kernel_message = stamp_inside(&format!(" {line}")) == Some(1);
            if !kernel_message {
                out.push_str(head);
                pending = None;
            }
            out.push_str(line);
            continue;
        }
        match stamp_inside(line) {
            Some(at) if line[..at].contains(KIOSK_MARKER) => {
                out.push_str(&line[at..]);
                pending = Some(&line[..at]);
            }
            _ => out.push_str(line),
        }
    }
    if let Some(head) = pending {
        out.push_str(head);
    }
    out
}

/// Removes ANSI escape sequences and carriage returns.
pub fn clean_console(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte; other escapes: drop ESC and one char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The JSON after the kiosk marker in a console line (the kernel or journal may
/// have put a prefix such as `[ 25.5] kiosk[437]: ` before it).
pub fn kiosk_json(line: &str) -> Option<&str> {
    line.find(KIOSK_MARKER)
        .map(|at| line[at + KIOSK_MARKER.len()..].trim())
}

/// Parses a status line.
pub fn parse_status(line: &str) -> Option<KioskStatus> {
    let status: KioskStatus = serde_json::from_str(kiosk_json(line)?).ok()?;
    (status.event == "status").then_some(status)
}

/// One block device in the kiosk's storage line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockDevice {
    pub name: String,
    pub settled: bool,
    pub role: String,
    pub read_only: bool,
    pub mounted: bool,
    pub swap: bool,
    /// A foreign device whose disk carries the stick's root partition UUID.
    #[serde(default)]
    pub copies_stick: bool,
}

/// The kiosk's storage-lock report.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StorageReport {
    pub event: String,
    pub ok: bool,
    pub seen: usize,
    pub locked: usize,
    pub foreign: usize,
    #[serde(default)]
    pub copies_of_stick: usize,
    pub swap_active: bool,
    pub filesystems: Vec<String>,
    pub devices: Vec<BlockDevice>,
    pub problems: Vec<String>,
}

/// Parses a storage line.
pub fn parse_storage(line: &str) -> Option<StorageReport> {
    let report: StorageReport = serde_json::from_str(kiosk_json(line)?).ok()?;
    (report.event == "storage").then_some(report)
}

/// One USB device in the kiosk's usb line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UsbDevice {
    pub port: String,
    pub id: String,
    pub product: Option<String>,
    pub classes: Vec<String>,
    pub authorized: bool,
    /// How the initrd found it to be the boot stick (`firmware-path`, ...);
    /// absent for every other device.
    #[serde(default)]
    pub boot: Option<String>,
}

/// The kiosk's USB report.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UsbReport {
    pub event: String,
    pub devices: Vec<UsbDevice>,
}

/// Parses a usb line.
pub fn parse_usb(line: &str) -> Option<UsbReport> {
    let report: UsbReport = serde_json::from_str(kiosk_json(line)?).ok()?;
    (report.event == "usb").then_some(report)
}

/// Prefix of the storage lock's kernel-log lines (`kiosk::storage::lock::KMSG_PREFIX`).
pub const STORAGE_LOCK_PREFIX: &str = "stick-storage-lock: ";

/// How often the storage-lock helper ran, by its kernel-log lines, and the time
/// it reported for itself (`... (12.3 ms)`), summed, in ms.
pub fn storage_lock_times(console: &str) -> (usize, f64) {
    let lines: Vec<&str> = console
        .lines()
        .filter(|l| l.contains(STORAGE_LOCK_PREFIX))
        .collect();
    let ms = lines
        .iter()
        .filter_map(|l| {
            l.rsplit_once('(')?
                .1
                .strip_suffix(" ms)")?
                .parse::<f64>()
                .ok()
        })
        .sum();
    (lines.len(), ms)
}

/// Console text that must never appear: a login prompt or a shell.
pub const FORBIDDEN_PATTERNS: &[&str] = &[
    "login:",
    "Password:",
    "Give root password for maintenance",
    "(or press Control-D to continue)",
    "Press Enter for maintenance",
    "You are in emergency mode",
    "You are in rescue mode",
    "sh-5.",
    "bash-5.",
    "dracut:/#",
    "root@",
];

/// The first forbidden pattern found, with the line it is on.
pub fn find_forbidden(console: &str) -> Option<(&'static str, String)> {
    console.lines().find_map(|line| {
        FORBIDDEN_PATTERNS
            .iter()
            .find(|p| line.contains(*p))
            .map(|p| (*p, line.to_string()))
    })
}

/// One state change of the kiosk's network (`{"event":"net","state":...}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NetLine {
    pub event: String,
    pub state: String,
    pub uptime_ms: u64,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub inner_address: Option<String>,
    #[serde(default)]
    pub since_address_ms: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub attempt: Option<u32>,
    /// `tunnel-connecting`, `tunnel-up`: `udp` or `relay`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    /// `credential`: the personal stick's id and the partition it came from.
    #[serde(default)]
    pub stick_id: Option<String>,
    #[serde(default)]
    pub partition: Option<String>,
}

/// Parses a net line.
pub fn parse_net(line: &str) -> Option<NetLine> {
    let net: NetLine = serde_json::from_str(kiosk_json(line)?).ok()?;
    (net.event == "net").then_some(net)
}

/// The egress policy the kiosk found in force.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EgressLine {
    pub event: String,
    pub enforcing: bool,
    pub chains: std::collections::BTreeMap<String, String>,
    pub rules: usize,
    pub dropped_packets: u64,
}

/// Parses the egress line.
pub fn parse_egress(line: &str) -> Option<EgressLine> {
    let egress: EgressLine = serde_json::from_str(kiosk_json(line)?).ok()?;
    (egress.event == "egress").then_some(egress)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"[   26.543460] kiosk[437]: @kiosk@ {"event":"status","ok":true,"cmdline_root_hash":"18","dm_root_hash":"18","verity":"active","root_read_only":true,"root_fs":"squashfs","root_layout":"overlay","manifest_name":"demo","manifest_version":"0.1.0","manifest_rollback_index":1,"signature":"valid","signature_detail":"ok","test_keys":true,"manifest_root_hash_matches":true,"cmdline_signed":true,"secure_boot":"enabled","lockdown":"integrity","refusals":[],"warnings":[]}"#;

    #[test]
    fn storage_lock_runs_and_times_are_summed() {
        let console = "[ 15.9] stick-storage-lock: sda is the stick (29.3 ms)\n\
                       [ 16.0] stick-storage-lock: sdb is not the stick: set read-only, kept unused (26.1 ms)\n\
                       [ 16.1] kiosk[3]: storage: 2 devices (x ms)\n\
                       [ 16.2] stick-storage-lock: sdc is the stick\n";
        let (runs, ms) = storage_lock_times(console);
        assert_eq!(runs, 3);
        assert!((ms - 55.4).abs() < 1e-9, "{ms}");
        assert_eq!(storage_lock_times(""), (0, 0.0));
    }

    #[test]
    fn kiosk_lines_split_by_a_kernel_message_are_joined() {
        let egress = r#"@kiosk@ {"event":"egress","rules":7}"#;
        let cases = [
            (
                "the kernel's message before the kiosk line's newline",
                format!("[  140.48] kiosk[440]: {egress}[  140.448937] scsi host2: ahci\n\n[  140.5] next\n"),
                format!("[  140.448937] scsi host2: ahci\n[  140.48] kiosk[440]: {egress}\n[  140.5] next\n"),
            ),
            (
                "two kernel messages inside the JSON",
                "[ 1.0] k[1]: @kiosk@ {\"event\":\"eg[    2.000001] a\n[    2.000002] b\nress\"}\n".to_string(),
                "[    2.000001] a\n[    2.000002] b\n[ 1.0] k[1]: @kiosk@ {\"event\":\"egress\"}\n".to_string(),
            ),
            (
                "a line left as it is",
                format!("[  140.48] kiosk[440]: {egress}\n"),
                format!("[  140.48] kiosk[440]: {egress}\n"),
            ),
            (
                "a terminal's leftover before a stamp is not a kiosk line",
                "104[   11.026519] systemd[1]: systemd 257\nnext\n".to_string(),
                "104[   11.026519] systemd[1]: systemd 257\nnext\n".to_string(),
            ),
            (
                "a bracket in the JSON is no stamp",
                "@kiosk@ {\"a\":[1.5] }\n".to_string(),
                "@kiosk@ {\"a\":[1.5] }\n".to_string(),
            ),
            (
                "the console ends inside the kiosk line",
                format!("{egress}[    3.000000] k\n"),
                format!("[    3.000000] k\n{egress}"),
            ),
        ];
        for (name, console, want) in cases {
            assert_eq!(rejoin_split_lines(&console), want, "{name}");
        }
        let split = "[  140.489605] kiosk[440]: @kiosk@ {\"event\":\"egress\",\"enforcing\":true}\
                     [  140.448937] scsi host2: ahci\n\n";
        let joined = rejoin_split_lines(split);
        assert!(
            joined.lines().any(|l| parse_event(l, "egress").is_some()),
            "{joined}"
        );
    }

    #[test]
    fn a_line_still_being_written_is_left_out() {
        let cases = [
            ("a\nb\n", "a\nb\n"),
            ("a\n@kiosk@ {\"event\":\"us", "a\n"),
            ("half", ""),
            ("", ""),
        ];
        for (console, want) in cases {
            assert_eq!(finished_lines(console), want, "{console:?}");
        }
    }

    #[test]
    fn cleans_escapes_and_carriage_returns() {
        let cases = [
            (
                "[\u{1b}[0;32m  OK  \u{1b}[0m] Started\r",
                "[  OK  ] Started",
            ),
            ("plain", "plain"),
            ("\u{1b}[32766;32766H\u{1b}[6nx", "x"),
            ("a\u{1b}cb", "ab"),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_console(raw), want);
        }
    }

    #[test]
    fn parses_status_lines_only() {
        let status = parse_status(STATUS).expect("status line");
        assert!(status.ok);
        assert_eq!(status.verity, "active");
        assert_eq!(status.manifest_version.as_deref(), Some("0.1.0"));
        assert_eq!(status.test_keys, Some(true));
        let others = [
            "[  OK  ] Started kiosk.service",
            r#"@kiosk@ {"event":"link","ok":true}"#,
            "@kiosk@ not json",
        ];
        for line in others {
            assert_eq!(parse_status(line), None, "{line}");
        }
    }

    #[test]
    fn finds_login_prompts_and_shells() {
        let cases = [
            ("Debian GNU/Linux 13 vm ttyS0\n\nvm login: ", Some("login:")),
            (
                "Press Enter for maintenance\n(or press Control-D to continue):",
                Some("Press Enter for maintenance"),
            ),
            ("sh-5.2# ", Some("sh-5.")),
            ("[  OK  ] Reached target multi-user.target\n", None),
        ];
        for (console, want) in cases {
            assert_eq!(find_forbidden(console).map(|(p, _)| p), want, "{console}");
        }
    }

    #[test]
    fn net_and_egress_lines() {
        let line = r#"[   61.2] kiosk[412]: @kiosk@ {"event":"net","state":"tunnel-up","kind":"ipsec","inner_address":"10.99.1.16","since_address_ms":2500,"uptime_ms":61000}"#;
        let net = parse_net(line).expect("net line");
        assert_eq!(net.state, "tunnel-up");
        assert_eq!(net.inner_address.as_deref(), Some("10.99.1.16"));
        assert_eq!(net.since_address_ms, Some(2500));
        assert_eq!(parse_egress(line), None);
        let egress = r#"@kiosk@ {"event":"egress","table":"inet stick_egress","enforcing":true,"chains":{"forward":"drop","input":"drop","output":"drop"},"rules":14,"dropped_packets":3}"#;
        let egress = parse_egress(egress).expect("egress line");
        assert!(egress.enforcing);
        assert_eq!(egress.chains.len(), 3);
        assert_eq!(parse_net(r#"@kiosk@ {"event":"usb","devices":[]}"#), None);
    }
}

/// Any kiosk line of kind `event` (`session`, `blocked`, `shortcut`), as JSON.
pub fn parse_event(line: &str, event: &str) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(kiosk_json(line)?).ok()?;
    (value.get("event")?.as_str()? == event).then_some(value)
}

#[cfg(test)]
mod event_tests {
    use super::*;

    #[test]
    fn events_by_kind() {
        let line = r#"[  80.1] kiosk[437]: @kiosk@ {"event":"session","state":"page","url":"https://10.99.0.10:8443/","uptime_ms":81234}"#;
        let session = parse_event(line, "session").expect("session line");
        assert_eq!(session["state"], "page");
        assert_eq!(session["uptime_ms"], 81234);
        assert_eq!(parse_event(line, "blocked"), None);
        assert_eq!(parse_event("no marker", "session"), None);
    }
}
