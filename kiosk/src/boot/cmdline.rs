//! The kernel command line (`/proc/cmdline`).

/// Path of the running kernel's command line.
pub const PROC_CMDLINE: &str = "/proc/cmdline";

/// The dm-verity root hash given as `roothash=HEX` (what systemd-veritysetup-generator
/// reads), lower-cased. The last occurrence wins, as in systemd's own parser.
/// `None` when absent or empty.
pub fn parse_cmdline_root_hash(cmdline: &str) -> Option<String> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix("roothash="))
        .next_back()
        .filter(|hash| !hash.is_empty())
        .map(str::to_ascii_lowercase)
}

/// How the running command line differs from the signed one, word by word, or
/// `None` when they are the same. Under Secure Boot systemd-stub ignores what a
/// loader passes; without it, a loader (or a UEFI shell) could add or drop words.
pub fn cmdline_difference(running: &str, signed: &str) -> Option<String> {
    let running: Vec<&str> = running.split_ascii_whitespace().collect();
    let signed: Vec<&str> = signed.split_ascii_whitespace().collect();
    if running == signed {
        return None;
    }
    let added: Vec<&str> = running
        .iter()
        .filter(|w| !signed.contains(w))
        .copied()
        .collect();
    let missing: Vec<&str> = signed
        .iter()
        .filter(|w| !running.contains(w))
        .copied()
        .collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added `{}`", added.join(" ")));
    }
    if !missing.is_empty() {
        parts.push(format!("missing `{}`", missing.join(" ")));
    }
    if parts.is_empty() {
        parts.push("same words in another order or repeated".to_string());
    }
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_differences_are_named() {
        let signed = "roothash=ab root=/dev/mapper/root rd.shell=0 lockdown=integrity\n";
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("identical", signed, None),
            (
                "whitespace does not count",
                "roothash=ab  root=/dev/mapper/root rd.shell=0 lockdown=integrity",
                None,
            ),
            (
                "shell enabled",
                "roothash=ab root=/dev/mapper/root rd.shell=1 lockdown=integrity",
                Some("added `rd.shell=1`, missing `rd.shell=0`"),
            ),
            (
                "word appended",
                "roothash=ab root=/dev/mapper/root rd.shell=0 lockdown=integrity init=/bin/sh",
                Some("added `init=/bin/sh`"),
            ),
            (
                "lockdown dropped",
                "roothash=ab root=/dev/mapper/root rd.shell=0",
                Some("missing `lockdown=integrity`"),
            ),
            (
                "reordered",
                "root=/dev/mapper/root roothash=ab rd.shell=0 lockdown=integrity",
                Some("same words in another order or repeated"),
            ),
            (
                "loader passed nothing",
                "",
                Some("missing `roothash=ab root=/dev/mapper/root rd.shell=0 lockdown=integrity`"),
            ),
        ];
        for (name, running, want) in cases {
            assert_eq!(
                cmdline_difference(running, signed).as_deref(),
                *want,
                "{name}"
            );
        }
    }

    const HASH: &str = "5d3bd1a4f2b8c0e9a7d6c5b4a3928170f6e5d4c3b2a19081726354453627180f";

    #[test]
    fn root_hash_is_found_or_not() {
        let uki = format!(
            "roothash={HASH} systemd.volatile=overlay lockdown=confidentiality \
             module.sig_enforce=1 nohibernate sysrq_always_enabled=0 quiet\n"
        );
        let upper = format!("console=ttyS0 roothash={} ro", HASH.to_uppercase());
        let twice = format!("roothash={} roothash={HASH}", "00".repeat(32));
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("UKI cmdline with trailing newline", &uki, Some(HASH)),
            ("upper case is normalised", &upper, Some(HASH)),
            ("last one wins", &twice, Some(HASH)),
            ("absent", "console=ttyS0 root=/dev/sda2 ro quiet", None),
            ("empty value", "roothash= quiet", None),
            (
                "similar keys do not count",
                "systemd.verity_roothash=ab usrhash=cd xroothash=ef",
                None,
            ),
            ("empty cmdline", "", None),
        ];
        for (name, cmdline, want) in cases {
            assert_eq!(parse_cmdline_root_hash(cmdline).as_deref(), *want, "{name}");
        }
    }
}
