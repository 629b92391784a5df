//! Failing closed at every stage of boot, initrd included.
//!
//! dm-verity answers a corrupted block with EIO and a change uevent. Left alone,
//! the initrd then waits for a root device that never becomes usable, for ever.
//! A udev rule turns the first such uevent into `stick-fail-closed@integrity`,
//! which says why on the console and the screen and powers off. The same unit
//! runs when the kiosk fails (`OnFailure=`). These files go into the base tree
//! before dracut runs, so the initrd and the system carry the same ones.

/// A file written into the base tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub path: &'static str,
    pub mode: u32,
    pub content: &'static str,
}

pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/usr/lib/secure-stick/fail-closed",
        mode: 0o755,
        content: include_str!("../../assets/fail-closed/fail-closed"),
    },
    Asset {
        path: "/usr/lib/systemd/system/stick-fail-closed@.service",
        mode: 0o644,
        content: include_str!("../../assets/fail-closed/stick-fail-closed@.service"),
    },
    Asset {
        path: "/usr/lib/udev/rules.d/60-stick-fail-closed.rules",
        mode: 0o644,
        content: include_str!("../../assets/fail-closed/60-stick-fail-closed.rules"),
    },
];

/// Programs the assets run, which dracut must copy into the initrd with them.
const INITRD_PROGRAMS: &[&str] = &[
    "/usr/bin/sh",
    "/usr/bin/sleep",
    "/usr/bin/systemctl",
    "/usr/sbin/dmsetup",
    "/usr/bin/grep",
];

/// Ends each here-document in [`install_hook`]; no asset may contain it as a line.
const HEREDOC_END: &str = "SECURE_STICK_ASSET_END";

/// An mmdebstrap customize hook (`sh -c`, tree in `$1`) that writes [`ASSETS`].
pub fn install_hook() -> String {
    let mut hook = String::from("set -e\n");
    for asset in ASSETS {
        let dir = asset
            .path
            .rsplit_once('/')
            .map(|(dir, _)| dir)
            .unwrap_or("/");
        hook.push_str(&format!(
            "mkdir -p \"$1\"{dir}\ncat >\"$1\"{path} <<'{HEREDOC_END}'\n{content}{HEREDOC_END}\nchmod {mode:o} \"$1\"{path}\n",
            path = asset.path,
            content = asset.content,
            mode = asset.mode,
        ));
    }
    hook
}

/// Everything dracut's `--install` must add to the initrd.
pub fn initrd_install() -> Vec<&'static str> {
    ASSETS
        .iter()
        .map(|a| a.path)
        .chain(INITRD_PROGRAMS.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_end_in_newline_and_never_contain_the_heredoc_end() {
        for asset in ASSETS {
            assert!(asset.content.ends_with('\n'), "{}", asset.path);
            assert!(
                !asset.content.lines().any(|l| l == HEREDOC_END),
                "{}",
                asset.path
            );
        }
    }

    #[test]
    fn hook_writes_every_asset_with_its_mode() {
        let hook = install_hook();
        for (asset, chmod) in ASSETS.iter().zip([
            "chmod 755 \"$1\"/usr/lib/secure-stick/fail-closed",
            "chmod 644 \"$1\"/usr/lib/systemd/system/stick-fail-closed@.service",
            "chmod 644 \"$1\"/usr/lib/udev/rules.d/60-stick-fail-closed.rules",
        ]) {
            assert!(hook.contains(&format!("cat >\"$1\"{} <<", asset.path)));
            assert!(hook.contains(asset.content));
            assert!(hook.contains(chmod), "{chmod}");
        }
    }

    /// The hook is real shell: run it against a temporary tree and read the files back.
    #[test]
    fn hook_reproduces_the_assets_byte_for_byte() {
        let tree = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(install_hook())
            .arg("hook")
            .arg(tree.path())
            .status()
            .expect("sh runs");
        assert!(status.success());
        for asset in ASSETS {
            let path = tree.path().join(asset.path.trim_start_matches('/'));
            assert_eq!(
                std::fs::read_to_string(&path).expect("written"),
                asset.content
            );
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, asset.mode, "{}", asset.path);
        }
    }

    #[test]
    fn the_udev_rule_starts_the_unit_that_exists() {
        let rule = ASSETS[2].content;
        assert!(rule.contains("DM_VERITY_ERR_BLOCK_NR"));
        assert!(rule.contains("start stick-fail-closed@integrity.service"));
        assert!(ASSETS[1].path.ends_with("stick-fail-closed@.service"));
        assert!(ASSETS[1]
            .content
            .contains(&format!("ExecStart={} %i", ASSETS[0].path)));
    }
}
