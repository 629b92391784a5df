//! charon's plugins for a user factor. The password round (`[vpn.ipsec]
//! user-password`): the stick answers the gateway's EAP-Identity request and runs
//! EAP-MSCHAPv2; Debian splits them over two packages, and one of them brings
//! some thirty other plugins (RADIUS, PAM, DHCP, ...). The token
//! (`[vpn.ipsec] token-key-id`): the PKCS#11 plugin, whose package also holds
//! fetchers (curl, LDAP) that could reach out around the tunnel. charon would
//! load every plugin it finds: the image keeps the ones it uses and removes the
//! rest of those packages' plugins.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Debian packages that bring a user factor's plugins, and the plugins kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginSet {
    /// What the plugins are for (the build log and errors say it).
    pub purpose: &'static str,
    pub packages: &'static [&'static str],
    pub keep: &'static [&'static str],
}

/// The password round: EAP-MSCHAPv2 is in the first package, EAP-Identity in
/// the second.
pub const PASSWORD_ROUND: PluginSet = PluginSet {
    purpose: "the password round",
    packages: &["libcharon-extauth-plugins", "libcharon-extra-plugins"],
    keep: &["eap-identity", "eap-mschapv2"],
};

/// The token: PKCS#11.
pub const TOKEN: PluginSet = PluginSet {
    purpose: "the token",
    packages: &["libstrongswan-extra-plugins"],
    keep: &["pkcs11"],
};

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

/// The files of a package's file list (`dpkg -L`) that belong to plugins not
/// in `keep`.
pub fn unused_plugin_files(list: &str, keep: &[&str]) -> Vec<String> {
    list.lines()
        .filter(|path| plugin_of(path).is_some_and(|name| !keep.contains(&name)))
        .map(str::to_string)
        .collect()
}

/// Removes from `root` the plugin files of `set`'s packages other than the
/// ones it keeps; returns the names of the plugins removed.
pub fn keep_only(root: &Path, set: PluginSet) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for package in set.packages {
        let list = package_list(root, package, set.purpose)?;
        let text = std::fs::read_to_string(&list)
            .with_context(|| format!("cannot read {}", list.display()))?;
        for path in unused_plugin_files(&text, set.keep) {
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
fn package_list(root: &Path, package: &str, purpose: &str) -> Result<PathBuf> {
    let info = root.join("var/lib/dpkg/info");
    [format!("{package}.list"), format!("{package}:amd64.list")]
        .into_iter()
        .map(|name| info.join(name))
        .find(|path| path.exists())
        .with_context(|| {
            format!(
                "{package} is not installed in {}: {purpose} needs its plugins",
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
            unused_plugin_files(list, PASSWORD_ROUND.keep),
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
        let removed = keep_only(root, PASSWORD_ROUND).expect("kept");
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
        let err = keep_only(root, PASSWORD_ROUND).expect_err("missing package");
        assert!(
            format!("{err:#}").contains("libcharon-extauth-plugins"),
            "{err:#}"
        );
    }

    #[test]
    fn the_token_keeps_pkcs11_and_no_fetcher() {
        let list = "/usr/lib/ipsec/plugins/libstrongswan-curl.so\n\
                    /usr/lib/ipsec/plugins/libstrongswan-ldap.so\n\
                    /usr/lib/ipsec/plugins/libstrongswan-pkcs11.so\n\
                    /etc/strongswan.d/charon/pkcs11.conf\n\
                    /etc/strongswan.d/charon/curl.conf\n";
        assert_eq!(
            unused_plugin_files(list, TOKEN.keep),
            vec![
                "/usr/lib/ipsec/plugins/libstrongswan-curl.so",
                "/usr/lib/ipsec/plugins/libstrongswan-ldap.so",
                "/etc/strongswan.d/charon/curl.conf",
            ]
        );
    }
}
