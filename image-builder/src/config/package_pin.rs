//! `[debian] pin`: exact package versions the image must be built from, so that a
//! build that passed its tests can be made again from the same packages (as far
//! as the mirror still offers them).

use stick_manifest::Package;

/// One `name=version` entry of `debian.pin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePin {
    pub name: String,
    pub version: String,
}

/// Why a pin entry is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("{0:?} is not `name=version` (for example \"chromium=156.0.8078.114-1~deb13u1\")")]
    Form(String),
    #[error("{0:?} is not a Debian package name (lowercase letters, digits, `+-.`)")]
    Name(String),
    #[error(
        "{0:?} is not a Debian version (digits first, then letters, digits and `.+~:-`; \
         `apt-cache policy NAME` lists the versions a mirror has)"
    )]
    Version(String),
}

impl PackagePin {
    pub fn parse(entry: &str) -> Result<PackagePin, PinError> {
        let (name, version) = entry
            .split_once('=')
            .ok_or_else(|| PinError::Form(entry.to_string()))?;
        if !crate::config::is_debian_package_name(name) {
            return Err(PinError::Name(name.to_string()));
        }
        let version_ok = version.starts_with(|c: char| c.is_ascii_digit())
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
        if !version_ok {
            return Err(PinError::Version(version.to_string()));
        }
        Ok(PackagePin {
            name: name.to_string(),
            version: version.to_string(),
        })
    }

    /// How apt is asked for it.
    pub fn apt_spec(&self) -> String {
        format!("{}={}", self.name, self.version)
    }
}

/// The package list for mmdebstrap with every pinned package asked for at its
/// version; a pinned package that the list does not name is added.
pub fn apply(packages: &[String], pins: &[PackagePin]) -> Vec<String> {
    let mut out: Vec<String> = packages
        .iter()
        .map(|package| {
            pins.iter()
                .find(|pin| pin.name == *package)
                .map_or_else(|| package.clone(), PackagePin::apt_spec)
        })
        .collect();
    for pin in pins {
        if !packages.contains(&pin.name) {
            out.push(pin.apt_spec());
        }
    }
    out
}

/// The pins the built tree does not hold: `(pin, installed version or none)`.
pub fn unmet<'a>(
    installed: &[Package],
    pins: &'a [PackagePin],
) -> Vec<(&'a PackagePin, Option<String>)> {
    pins.iter()
        .filter_map(|pin| {
            let found = installed.iter().find(|p| p.name == pin.name);
            match found {
                Some(p) if p.version == pin.version => None,
                _ => Some((pin, found.map(|p| p.version.clone()))),
            }
        })
        .collect()
}

/// The packages a reader looks for first, with their versions, for the build's
/// output: `chromium 156.0.8078.114-1~deb13u1, labwc 0.8.3-1, ...`.
pub fn headline(installed: &[Package]) -> String {
    const HEADLINE: &[&str] = &[
        "chromium",
        "labwc",
        "linux-image-amd64",
        "systemd",
        "strongswan-charon",
        "wireguard-tools",
        "nftables",
    ];
    HEADLINE
        .iter()
        .filter_map(|name| {
            installed
                .iter()
                .find(|p| p.name == *name)
                .map(|p| format!("{} {}", p.name, p.version))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(name: &str, version: &str) -> PackagePin {
        PackagePin {
            name: name.into(),
            version: version.into(),
        }
    }

    fn package(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
        }
    }

    #[test]
    fn pins_are_name_equals_version() {
        let cases: &[(&str, Result<PackagePin, PinError>)] = &[
            (
                "chromium=156.0.8078.114-1~deb13u1",
                Ok(pin("chromium", "156.0.8078.114-1~deb13u1")),
            ),
            ("systemd=1:257.9-1", Ok(pin("systemd", "1:257.9-1"))),
            ("chromium", Err(PinError::Form("chromium".into()))),
            ("Chromium=1", Err(PinError::Name("Chromium".into()))),
            ("chromium=", Err(PinError::Version(String::new()))),
            ("chromium=latest", Err(PinError::Version("latest".into()))),
            ("chromium=1 2", Err(PinError::Version("1 2".into()))),
        ];
        for (entry, want) in cases {
            assert_eq!(&PackagePin::parse(entry), want, "{entry}");
        }
    }

    #[test]
    fn pinned_packages_are_asked_for_at_their_version() {
        let packages: Vec<String> = ["systemd", "chromium", "cage"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pins = [pin("chromium", "156-1"), pin("chromium-common", "156-1")];
        assert_eq!(
            apply(&packages, &pins),
            ["systemd", "chromium=156-1", "cage", "chromium-common=156-1"]
        );
        assert_eq!(apply(&packages, &[]), packages);
    }

    #[test]
    fn unmet_pins_name_what_was_installed() {
        let installed = [package("cage", "0.2.0-2"), package("chromium", "157-1")];
        let pins = [
            pin("cage", "0.2.0-2"),
            pin("chromium", "156-1"),
            pin("seatd", "0.9.1-1"),
        ];
        let got: Vec<(String, Option<String>)> = unmet(&installed, &pins)
            .into_iter()
            .map(|(p, v)| (p.apt_spec(), v))
            .collect();
        assert_eq!(
            got,
            [
                ("chromium=156-1".to_string(), Some("157-1".to_string())),
                ("seatd=0.9.1-1".to_string(), None)
            ]
        );
    }

    #[test]
    fn the_headline_lists_the_packages_that_matter_first() {
        let installed = [
            package("bash", "5.2"),
            package("labwc", "0.8.3-1"),
            package("chromium", "156-1"),
        ];
        assert_eq!(headline(&installed), "chromium 156-1, labwc 0.8.3-1");
    }
}
