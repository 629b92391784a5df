//! Turns a copy of the base tree into this image's root: overlays, the kiosk binary,
//! the manifest public key and the image's identity in os-release.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// The kiosk's command in the image: a link to [`KIOSK_BINARY_PATH`].
pub const KIOSK_PATH: &str = "usr/bin/kiosk";

/// Where the kiosk binary lives: under `/opt`, which the build packs apart from
/// the system (`disk::squashfs::OWN_SOFTWARE_DIR`), so a kiosk change does not
/// pack the whole root again.
pub const KIOSK_BINARY_PATH: &str = "opt/secure-stick/bin/kiosk";

#[derive(Debug, thiserror::Error)]
pub enum CustomizeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("overlay {path} is a {kind}; overlays may hold only files, folders and symlinks")]
    UnsupportedFile { path: PathBuf, kind: &'static str },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CustomizeError {
    let path = path.to_path_buf();
    move |source| CustomizeError::Io { path, source }
}

/// What one build puts into the tree.
#[derive(Debug, Clone)]
pub struct Customization<'a> {
    pub overlays: &'a Path,
    pub kiosk_binary: &'a Path,
    pub manifest_public_key_pem: &'a str,
    pub image_id: &'a str,
    pub image_version: &'a str,
    pub policy: &'a stick_manifest::KioskPolicy,
    pub usb_allow: &'a [crate::config::usb::UsbClass],
}

/// Applies `c` to the tree at `root`.
pub fn customize(root: &Path, c: &Customization) -> Result<(), CustomizeError> {
    copy_overlay(c.overlays, root, true)?;

    install_kiosk(root, c.kiosk_binary)?;

    let pubkey = root.join(stick_manifest::IMAGE_PUBKEY_PATH.trim_start_matches('/'));
    if let Some(parent) = pubkey.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(&pubkey, c.manifest_public_key_pem).map_err(io(&pubkey))?;
    let policy = root.join(stick_manifest::KIOSK_POLICY_PATH.trim_start_matches('/'));
    let policy_json = serde_json::to_vec_pretty(c.policy).expect("policy serialises");
    std::fs::write(&policy, policy_json).map_err(io(&policy))?;

    let os_release = root.join("usr/lib/os-release");
    let text = std::fs::read_to_string(&os_release).map_err(io(&os_release))?;
    std::fs::write(
        &os_release,
        with_image_identity(&text, c.image_id, c.image_version),
    )
    .map_err(io(&os_release))?;

    use crate::root::usb_policy::{
        daemon_conf, rules_conf, tmpfiles_conf, DAEMON_CONF_PATH, RULES_PATH, TMPFILES_PATH,
    };
    for (path, text, mode) in [
        (RULES_PATH, rules_conf(c.usb_allow), 0o600),
        (DAEMON_CONF_PATH, daemon_conf(), 0o600),
        (TMPFILES_PATH, tmpfiles_conf(), 0o644),
    ] {
        let file = root.join(path.trim_start_matches('/'));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&file, text).map_err(io(&file))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
            .map_err(io(&file))?;
    }

    // Empty machine-id: systemd makes a transient one each boot, nothing persists.
    let machine_id = root.join("etc/machine-id");
    std::fs::write(&machine_id, "").map_err(io(&machine_id))?;
    Ok(())
}

/// The kiosk binary at [`KIOSK_BINARY_PATH`], and [`KIOSK_PATH`] linking to it
/// (relative, so the link also resolves in the build tree).
fn install_kiosk(root: &Path, binary: &Path) -> Result<(), CustomizeError> {
    let kiosk = root.join(KIOSK_BINARY_PATH);
    let folder = kiosk.parent().expect("KIOSK_BINARY_PATH has a folder");
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    std::fs::copy(binary, &kiosk).map_err(io(binary))?;
    std::fs::set_permissions(&kiosk, std::fs::Permissions::from_mode(0o755)).map_err(io(&kiosk))?;
    let command = root.join(KIOSK_PATH);
    if std::fs::symlink_metadata(&command).is_ok() {
        std::fs::remove_file(&command).map_err(io(&command))?;
    }
    let depth = KIOSK_PATH.matches('/').count();
    symlink(
        format!("{}{KIOSK_BINARY_PATH}", "../".repeat(depth)),
        &command,
    )
    .map_err(io(&command))
}

/// os-release text with `IMAGE_ID` and `IMAGE_VERSION` set.
pub fn with_image_identity(os_release: &str, id: &str, version: &str) -> String {
    let mut out: String = os_release
        .lines()
        .filter(|l| !l.starts_with("IMAGE_ID=") && !l.starts_with("IMAGE_VERSION="))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("IMAGE_ID={id}\nIMAGE_VERSION={version}\n"));
    out
}

/// Copies the overlay tree `from` over `to`: folders merged, files and symlinks
/// replaced, modes kept. A `README.md` at the overlay's top is documentation, not content.
pub fn copy_overlay(from: &Path, to: &Path, top: bool) -> Result<(), CustomizeError> {
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .map_err(io(from))?
        .collect::<Result<_, _>>()
        .map_err(io(from))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let source = entry.path();
        let target = to.join(entry.file_name());
        if top && entry.file_name() == "README.md" {
            continue;
        }
        let meta = std::fs::symlink_metadata(&source).map_err(io(&source))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            if !target.is_dir() {
                std::fs::create_dir_all(&target).map_err(io(&target))?;
                std::fs::set_permissions(&target, meta.permissions()).map_err(io(&target))?;
            }
            copy_overlay(&source, &target, false)?;
            continue;
        }
        if std::fs::symlink_metadata(&target).is_ok() {
            std::fs::remove_file(&target).map_err(io(&target))?;
        }
        if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(io(&source))?;
            symlink(&link, &target).map_err(io(&target))?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(io(&source))?;
        } else {
            return Err(CustomizeError::UnsupportedFile {
                path: source,
                kind: "special file",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_identity_replaces_old_values() {
        let cases = [
            (
                "ID=debian\n",
                "ID=debian\nIMAGE_ID=demo\nIMAGE_VERSION=1.0\n",
            ),
            (
                "ID=debian\nIMAGE_ID=old\nIMAGE_VERSION=0.1\nVERSION_ID=13\n",
                "ID=debian\nVERSION_ID=13\nIMAGE_ID=demo\nIMAGE_VERSION=1.0\n",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(with_image_identity(input, "demo", "1.0"), want);
        }
    }

    #[test]
    fn overlay_merges_folders_and_keeps_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let overlay = dir.path().join("overlay");
        let root = dir.path().join("root");
        std::fs::create_dir_all(overlay.join("etc/systemd/system")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::write(root.join("etc/keep"), "kept").expect("write");
        std::fs::write(overlay.join("README.md"), "docs").expect("write");
        std::fs::write(overlay.join("etc/new"), "new").expect("write");
        symlink(
            "/dev/null",
            overlay.join("etc/systemd/system/getty@.service"),
        )
        .expect("symlink");
        std::fs::create_dir_all(root.join("etc/systemd/system")).expect("mkdir");
        std::fs::write(root.join("etc/systemd/system/getty@.service"), "old").expect("write");

        copy_overlay(&overlay, &root, true).expect("copies");
        assert_eq!(
            std::fs::read_to_string(root.join("etc/keep")).expect("read"),
            "kept"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("etc/new")).expect("read"),
            "new"
        );
        assert_eq!(
            std::fs::read_link(root.join("etc/systemd/system/getty@.service")).expect("link"),
            Path::new("/dev/null")
        );
        assert!(!root.join("README.md").exists());
    }

    #[test]
    fn the_kiosk_lands_under_opt_and_its_command_links_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
        let binary = dir.path().join("kiosk");
        std::fs::write(&binary, b"\x7fELF kiosk").expect("write");
        // A kiosk from the base or an overlay is replaced, not written through.
        std::fs::write(root.join(KIOSK_PATH), b"old").expect("write");
        install_kiosk(&root, &binary).expect("installs");
        let link = std::fs::read_link(root.join(KIOSK_PATH)).expect("a link");
        assert_eq!(link, Path::new("../../opt/secure-stick/bin/kiosk"));
        assert_eq!(
            std::fs::read(root.join(KIOSK_PATH)).expect("resolves in the tree"),
            b"\x7fELF kiosk"
        );
        let mode = std::fs::metadata(root.join(KIOSK_BINARY_PATH))
            .expect("binary")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        assert!(
            KIOSK_BINARY_PATH.starts_with(&format!("{}/", crate::disk::squashfs::OWN_SOFTWARE_DIR))
        );
    }
}
