//! The SBOM: installed packages read from a root filesystem's dpkg status file.

use std::path::Path;

use stick_manifest::Package;

/// Parses `/var/lib/dpkg/status`: every stanza whose `Status` ends in `installed`,
/// sorted by name.
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut packages: Vec<Package> = text
        .split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza.lines().find_map(|line| {
                    line.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix(':'))
                        .map(|v| v.trim().to_string())
                })
            };
            let installed = field("Status")?.ends_with(" installed");
            installed.then(|| Package {
                name: field("Package").unwrap_or_default(),
                version: field("Version").unwrap_or_default(),
            })
        })
        .filter(|p| !p.name.is_empty())
        .collect();
    packages.sort();
    packages
}

/// Reads the installed packages of the tree at `root`.
pub fn installed_packages(root: &Path) -> std::io::Result<Vec<Package>> {
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status"))?;
    Ok(parse_dpkg_status(&status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_are_listed_sorted() {
        let status = "Package: systemd\nStatus: install ok installed\nPriority: important\nVersion: 257.9-1~deb13u1\nDescription: system\n and service manager\n\nPackage: dracut\nStatus: purge ok not-installed\nPriority: optional\n\nPackage: base-files\nStatus: install ok installed\nVersion: 13.8\n";
        assert_eq!(
            parse_dpkg_status(status),
            vec![
                Package {
                    name: "base-files".into(),
                    version: "13.8".into()
                },
                Package {
                    name: "systemd".into(),
                    version: "257.9-1~deb13u1".into()
                },
            ]
        );
        assert_eq!(parse_dpkg_status(""), vec![]);
    }
}
