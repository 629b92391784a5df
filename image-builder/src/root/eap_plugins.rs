//! charon's plugins for the password round (`[vpn.ipsec] user-password`): the
//! stick answers the gateway's EAP-Identity request and runs EAP-MSCHAPv2.
//! Debian splits them over two packages, and one of them brings some thirty
//! other plugins (RADIUS, PAM, DHCP, ...); charon would load every one. The
//! image keeps the two it uses and removes the rest of those packages' plugins.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The Debian packages with the two plugins: EAP-MSCHAPv2 is in the first,
/// EAP-Identity in the second.
pub const EAP_PACKAGES: &[&str] = &["libcharon-extauth-plugins", "libcharon-extra-plugins"];
/// The plugins the password round uses.
pub const EAP_PLUGINS: &[&str] = &["eap-identity", "eap-mschapv2"];

/// The plugin a package file belongs to: `libstrongswan-NAME.so` in charon's
/// plugin folder, or `NAME.conf` among its plugin settings.
fn plugin_of(path: &str) -> Option<&str> {
    if let Some(file) = path.strip_prefix("/usr/lib/ipsec/plugins/") {
        return file.strip_prefix("libstrongswan-")?.strip_suffix(".so");
    }
    for folder in [
        "/etc/strongswan.d/charon/",
        "/usr/share/strongswan/templates/config/plugins/",
    ] {
        if let Some(file) = path.strip_prefix(folder) {
            return file.strip_suffix(".conf");
        }
    }
    None
}

/// The files of a package's file list (`dpkg -L`) that belong to plugins the
/// password round does not use.
pub fn unused_plugin_files(list: &str) -> Vec<String> {
    list.lines()
        .filter(|path| plugin_of(path).is_some_and(|name| !EAP_PLUGINS.contains(&name)))
        .map(str::to_string)
        .collect()
}

/// Removes from `root` the plugin files of [`EAP_PACKAGES`] other than
/// [`EAP_PLUGINS`]; returns the names of the plugins removed.
pub fn keep_only_password_plugins(root: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for package in EAP_PACKAGES {
        let list = package_list(root, package)?;
        let text = std::fs::read_to_string(&list)
            .with_context(|| format!("cannot read {}", list.display()))?;
        for path in unused_plugin_files(&text) {
            let file = root.join(path.trim_start_matches('/'));
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot remove {}", file.display()))
                }
            }
            if let Some(name) = plugin_of(&path) {
                if !removed.iter().any(|r| r == name) {
                    removed.push(name.to_string());
                }
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// dpkg's file list of `package` in `root` (with or without the architecture).
fn package_list(root: &Path, package: &str) -> Result<PathBuf> {
    let info = root.join("var/lib/dpkg/info");
    [format!("{package}.list"), format!("{package}:amd64.list")]
        .into_iter()
        .map(|name| info.join(name))
        .find(|path| path.exists())
        .with_context(|| {
            format!(
                "{package} is not installed in {}: the password round needs its plugins",
                root.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_rounds_plugins_stay() {
        let list = "/.\n/usr/lib/ipsec/plugins\n\
                    /usr/lib/ipsec/plugins/libstrongswan-eap-identity.so\n\
                    /usr/lib/ipsec/plugins/libstrongswan-eap-radius.so\n\
                    /usr/lib/ipsec/plugins/libstrongswan-farp.so\n\
                    /usr/lib/ipsec/plugins/libstrongswan-eap-mschapv2.so\n\
                    /etc/strongswan.d/charon/eap-radius.conf\n\
                    /etc/strongswan.d/charon/eap-identity.conf\n\
                    /usr/share/strongswan/templates/config/plugins/farp.conf\n\
                    /usr/share/doc/libcharon-extra-plugins/copyright\n";
        assert_eq!(
            unused_plugin_files(list),
            vec![
                "/usr/lib/ipsec/plugins/libstrongswan-eap-radius.so",
                "/usr/lib/ipsec/plugins/libstrongswan-farp.so",
                "/etc/strongswan.d/charon/eap-radius.conf",
                "/usr/share/strongswan/templates/config/plugins/farp.conf",
            ]
        );
    }

    #[test]
    fn removes_from_a_tree_and_names_what_went() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let info = root.join("var/lib/dpkg/info");
        std::fs::create_dir_all(&info).expect("info");
        let plugins = root.join("usr/lib/ipsec/plugins");
        std::fs::create_dir_all(&plugins).expect("plugins");
        for name in [
            "eap-identity",
            "eap-radius",
            "eap-mschapv2",
            "xauth-generic",
        ] {
            std::fs::write(plugins.join(format!("libstrongswan-{name}.so")), b"").expect("so");
        }
        std::fs::write(
            info.join("libcharon-extra-plugins:amd64.list"),
            "/usr/lib/ipsec/plugins/libstrongswan-eap-identity.so\n\
             /usr/lib/ipsec/plugins/libstrongswan-eap-radius.so\n",
        )
        .expect("list");
        std::fs::write(
            info.join("libcharon-extauth-plugins.list"),
            "/usr/lib/ipsec/plugins/libstrongswan-eap-mschapv2.so\n\
             /usr/lib/ipsec/plugins/libstrongswan-xauth-generic.so\n",
        )
        .expect("list");
        let removed = keep_only_password_plugins(root).expect("kept");
        assert_eq!(removed, vec!["eap-radius", "xauth-generic"]);
        let left: Vec<bool> = [
            "eap-identity",
            "eap-radius",
            "eap-mschapv2",
            "xauth-generic",
        ]
        .iter()
        .map(|n| plugins.join(format!("libstrongswan-{n}.so")).exists())
        .collect();
        assert_eq!(left, vec![true, false, true, false]);
        std::fs::remove_file(info.join("libcharon-extauth-plugins.list")).expect("rm");
        let err = keep_only_password_plugins(root).expect_err("missing package");
        assert!(
            format!("{err:#}").contains("libcharon-extauth-plugins"),
            "{err:#}"
        );
    }
}
