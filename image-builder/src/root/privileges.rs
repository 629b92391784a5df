//! No program on the stick gains rights by being run: every setuid and setgid bit
//! is cleared, and the programs that only exist to change accounts or passwords
//! (su, passwd, chsh, ...) are removed, as is perl (Debian's maintainer scripts
//! need it to install packages, nothing needs it on a running stick). Xwayland
//! goes too: labwc would start it for any X11 client, and an X11 client is not
//! bound by the browser's Wayland security context.
//!
//! Nobody logs in on the stick, the conference account gets no password, and
//! everything the stick runs as root is started by systemd as root: a setuid
//! program could only ever help a compromised browser.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Programs that change accounts, passwords or groups, and the X server labwc
/// would start on demand: removed, not just stripped.
pub const REMOVED_PROGRAMS: &[&str] = &[
    "usr/bin/Xwayland",
    "usr/bin/chage",
    "usr/bin/chfn",
    "usr/bin/chsh",
    "usr/bin/expiry",
    "usr/bin/gpasswd",
    "usr/bin/newgrp",
    "usr/bin/passwd",
    "usr/bin/su",
];

/// perl's libraries; its interpreter `usr/bin/perl` (and `perl5.x.y`) goes too.
pub const REMOVED_PERL_TREES: &[&str] = &[
    "usr/lib/x86_64-linux-gnu/perl",
    "usr/lib/x86_64-linux-gnu/perl-base",
    "usr/lib/x86_64-linux-gnu/perl5",
    "usr/share/perl",
    "usr/share/perl5",
];

/// The setuid and setgid bits.
const PRIVILEGE_BITS: u32 = 0o6000;

/// What was done to the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivilegeReport {
    /// Paths removed (relative to the root, sorted).
    pub removed: Vec<String>,
    /// Files whose setuid/setgid bits were cleared (relative, sorted).
    pub stripped: Vec<String>,
}

/// What to do with one regular file of the tree (pure; for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Remove,
    /// Keep it, with this mode (the privilege bits cleared).
    Strip(u32),
}

/// The verdict on a regular file at `relative` with `mode`.
pub fn judge(relative: &str, mode: u32) -> Verdict {
    let perl_binary = relative
        .strip_prefix("usr/bin/perl")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("5."));
    let in_perl_tree = REMOVED_PERL_TREES
        .iter()
        .any(|p| relative.starts_with(&format!("{p}/")));
    if REMOVED_PROGRAMS.contains(&relative) || perl_binary || in_perl_tree {
        Verdict::Remove
    } else if mode & PRIVILEGE_BITS != 0 {
        Verdict::Strip(mode & !PRIVILEGE_BITS & 0o7777)
    } else {
        Verdict::Keep
    }
}

/// Removes and strips in the tree at `root`; symlinks are never followed.
pub fn drop_privileges(root: &Path) -> Result<PrivilegeReport> {
    let mut report = PrivilegeReport::default();
    for tree in REMOVED_PERL_TREES {
        let path = root.join(tree);
        if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            report.removed.push(tree.to_string());
        }
    }
    visit(root, root, &mut report)?;
    report.removed.sort();
    report.stripped.sort();
    tracing::info!(
        "privileges: setuid/setgid cleared on {} ({}); removed {}",
        report.stripped.len(),
        report.stripped.join(" "),
        report.removed.join(" ")
    );
    Ok(report)
}

fn visit(root: &Path, dir: &Path, report: &mut PrivilegeReport) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        let meta = path
            .symlink_metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if meta.is_dir() {
            visit(root, &path, report)?;
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .context("a path inside the tree")?
            .to_string_lossy()
            .into_owned();
        match judge(&relative, meta.permissions().mode()) {
            Verdict::Keep => {}
            Verdict::Remove => {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                report.removed.push(relative);
            }
            Verdict::Strip(mode) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .with_context(|| format!("cannot clear setuid/setgid on {}", path.display()))?;
                report.stripped.push(relative);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_tools_and_perl_go_privilege_bits_are_cleared() {
        let cases = [
            ("usr/bin/su", 0o104755, Verdict::Remove),
            ("usr/bin/passwd", 0o104755, Verdict::Remove),
            ("usr/bin/chage", 0o102755, Verdict::Remove),
            ("usr/bin/perl", 0o100755, Verdict::Remove),
            ("usr/bin/perl5.40.1", 0o100755, Verdict::Remove),
            ("usr/bin/perldoc", 0o100755, Verdict::Keep),
            ("usr/share/perl5/Debconf/Db.pm", 0o100644, Verdict::Remove),
            ("usr/share/perl5x/a", 0o100644, Verdict::Keep),
            ("usr/bin/mount", 0o104755, Verdict::Strip(0o755)),
            ("usr/sbin/unix_chkpwd", 0o102755, Verdict::Strip(0o755)),
            (
                "usr/lib/dbus-1.0/dbus-daemon-launch-helper",
                0o104754,
                Verdict::Strip(0o754),
            ),
            ("usr/bin/kiosk", 0o100755, Verdict::Keep),
        ];
        for (path, mode, want) in cases {
            assert_eq!(judge(path, mode), want, "{path}");
        }
    }

    #[test]
    fn a_tree_loses_its_bits_and_links_are_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        for folder in ["usr/bin", "usr/share/perl5/Debconf"] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
        }
        std::fs::write(&outside, b"x").expect("write");
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o4755)).expect("chmod");
        let files = [
            ("usr/bin/mount", 0o4755),
            ("usr/bin/su", 0o4755),
            ("usr/bin/ls", 0o755),
            ("usr/share/perl5/Debconf/Db.pm", 0o644),
        ];
        for (path, mode) in files {
            std::fs::write(root.join(path), b"x").expect("write");
            std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode))
                .expect("chmod");
        }
        std::os::unix::fs::symlink(&outside, root.join("usr/bin/link")).expect("symlink");
        let report = drop_privileges(&root).expect("drops");
        assert_eq!(report.stripped, ["usr/bin/mount"]);
        assert_eq!(report.removed, ["usr/bin/su", "usr/share/perl5"]);
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode(&root.join("usr/bin/mount")), 0o755);
        assert_eq!(mode(&root.join("usr/bin/ls")), 0o755);
        assert_eq!(
            mode(&outside),
            0o4755,
            "a link's target outside is untouched"
        );
    }
}
