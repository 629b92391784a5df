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

#[cfg(test)]
mod tests {
    use super::*;

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
