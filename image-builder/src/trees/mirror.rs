//! Which Debian mirror the root filesystem comes from: the config's, else the host's.
//!
//! The host's apt sources are read (one-line `.list` and deb822 `.sources`); the
//! first `deb` entry for the Debian archive (a URI ending in `/debian`) is the mirror,
//! one ending in `/debian-security` the security mirror. No mirror is ever written
//! into this repository.

use std::path::{Path, PathBuf};

/// One `deb` source as apt knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suites: Vec<String>,
}

/// The mirrors an image is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors {
    pub main: String,
    pub security: Option<String>,
}

impl Mirrors {
    /// apt source lines for `suite`, as mmdebstrap takes them: `main`, and
    /// `non-free-firmware` when the image carries firmware from it.
    pub fn source_lines(&self, suite: &str, non_free_firmware: bool) -> Vec<String> {
        let components = if non_free_firmware {
            "main non-free-firmware"
        } else {
            "main"
        };
        let mut lines = vec![
            format!("deb {} {suite} {components}", self.main),
            format!("deb {} {suite}-updates {components}", self.main),
        ];
        if let Some(security) = &self.security {
            lines.push(format!("deb {security} {suite}-security {components}"));
        }
        lines
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(
        "no Debian mirror found in the host's apt sources ({searched}); \
         set `debian.mirror` in the config"
    )]
    NotFound { searched: String },
}

/// Parses one-line apt sources (`deb [options] URI suite [components]`).
pub fn parse_one_line(text: &str) -> Vec<AptSource> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "deb" {
                return None;
            }
            let mut rest: Vec<&str> = words.collect();
            if rest.first()?.starts_with('[') {
                let end = rest.iter().position(|w| w.ends_with(']'))?;
                rest.drain(..=end);
            }
            let uri = (*rest.first()?).to_string();
            let suite = (*rest.get(1)?).to_string();
            Some(AptSource {
                uri,
                suites: vec![suite],
            })
        })
        .collect()
}

/// Parses deb822 apt sources (`Types:`, `URIs:`, `Suites:` stanzas).
pub fn parse_deb822(text: &str) -> Vec<AptSource> {
    let mut sources = Vec::new();
    for stanza in text.split("\n\n") {
        let mut types = Vec::new();
        let mut uris = Vec::new();
        let mut suites = Vec::new();
        let mut enabled = true;
        for line in stanza.lines() {
            if line.starts_with('#') || line.starts_with(char::is_whitespace) {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let words = || value.split_whitespace().map(str::to_string).collect();
            match key.trim().to_ascii_lowercase().as_str() {
                "types" => types = words(),
                "uris" => uris = words(),
                "suites" => suites = words(),
                "enabled" => enabled = value.trim() != "no",
                _ => {}
            }
        }
        if enabled && types.iter().any(|t: &String| t == "deb") {
            sources.extend(uris.into_iter().map(|uri| AptSource {
                uri,
                suites: suites.clone(),
            }));
        }
    }
    sources
}

/// Picks the Debian archive and security mirrors out of parsed sources.
pub fn pick_mirrors(sources: &[AptSource]) -> Option<Mirrors> {
    let archive_of = |uri: &str| {
        uri.trim_end_matches('/')
            .rsplit('/')
            .next()
            .map(str::to_string)
    };
    let main = sources
        .iter()
        .find(|s| archive_of(&s.uri).as_deref() == Some("debian"))?;
    let security = sources
        .iter()
        .find(|s| archive_of(&s.uri).as_deref() == Some("debian-security"));
    Some(Mirrors {
        main: main.uri.trim_end_matches('/').to_string(),
        security: security.map(|s| s.uri.trim_end_matches('/').to_string()),
    })
}

/// Reads the host's apt sources below `etc_apt` (normally `/etc/apt`).
pub fn host_mirrors(etc_apt: &Path) -> Result<Mirrors, MirrorError> {
    let mut files: Vec<PathBuf> = vec![etc_apt.join("sources.list")];
    if let Ok(entries) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    let mut sources = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => sources.extend(parse_deb822(&text)),
            Some("list") => sources.extend(parse_one_line(&text)),
            _ => {}
        }
    }
    pick_mirrors(&sources).ok_or_else(|| MirrorError::NotFound {
        searched: format!(
            "{}/sources.list, {}/sources.list.d/*.list and *.sources",
            etc_apt.display(),
            etc_apt.display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Example hosts only: these names never end up in an image or the repository's config.
    const DEB822: &str = "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security/\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\n\nTypes: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n";

    #[test]
    fn parses_deb822_and_one_line_sources() {
        let cases: Vec<(&str, Vec<AptSource>)> = vec![
            (
                "deb http://a.example/debian trixie main\n# deb http://b.example/debian x\n",
                vec![AptSource {
                    uri: "http://a.example/debian".into(),
                    suites: vec!["trixie".into()],
                }],
            ),
            (
                "deb [arch=amd64 signed-by=/k.gpg] https://c.example/debian/ bookworm main contrib\ndeb-src http://d.example/debian bookworm main\n",
                vec![AptSource {
                    uri: "https://c.example/debian/".into(),
                    suites: vec!["bookworm".into()],
                }],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse_one_line(text), want, "{text}");
        }
        let deb822 = parse_deb822(DEB822);
        assert_eq!(deb822.len(), 3);
        assert_eq!(deb822[0].suites, vec!["bookworm", "bookworm-updates"]);
    }

    #[test]
    fn picks_archive_and_security_mirrors() {
        let mirrors = pick_mirrors(&parse_deb822(DEB822)).expect("found");
        assert_eq!(
            mirrors,
            Mirrors {
                main: "http://mirror.example/debian".into(),
                security: Some("http://mirror.example/debian-security".into()),
            }
        );
        assert_eq!(
            mirrors.source_lines("trixie", false),
            vec![
                "deb http://mirror.example/debian trixie main",
                "deb http://mirror.example/debian trixie-updates main",
                "deb http://mirror.example/debian-security trixie-security main",
            ]
        );
        assert_eq!(
            mirrors.source_lines("trixie", true)[2],
            "deb http://mirror.example/debian-security trixie-security main non-free-firmware"
        );
        assert_eq!(
            pick_mirrors(&parse_one_line("deb https://vendor.example/apt x main")),
            None
        );
    }

    #[test]
    fn host_without_debian_source_is_an_error_naming_the_config_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("sources.list"),
            "deb https://vendor.example/apt x main\n",
        )
        .expect("write");
        let err = host_mirrors(dir.path()).expect_err("no debian mirror");
        assert!(err.to_string().contains("set `debian.mirror`"), "{err}");
        std::fs::create_dir(dir.path().join("sources.list.d")).expect("mkdir");
        std::fs::write(dir.path().join("sources.list.d/debian.sources"), DEB822).expect("write");
        assert_eq!(
            host_mirrors(dir.path()).expect("found").main,
            "http://mirror.example/debian"
        );
    }
}
