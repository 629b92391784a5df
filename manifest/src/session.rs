//! What the kiosk needs to run the conference session: where the conference is,
//! which origins may be loaded, which CAs are trusted, and whether this is a test
//! image with a fake camera and microphone. The builder derives it from the config.

use serde::{Deserialize, Serialize};

/// The browser's managed policy in the image (Debian's Chromium reads this folder).
pub const BROWSER_POLICY_PATH: &str = "/etc/chromium/policies/managed/secure-stick.json";
/// The CA certificates (PEM, all in one file) the conference origins must chain to.
pub const CONFERENCE_CA_PATH: &str = "/usr/share/secure-stick/conference-ca.pem";
/// The unprivileged account the compositor and the browser run as.
pub const SESSION_USER: &str = "conference";
/// Its fixed ids (declared with systemd-sysusers in the image).
pub const SESSION_UID: u32 = 900;
pub const SESSION_GID: u32 = 900;

/// The conference session, as the kiosk runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SessionPolicy {
    /// The page the browser opens: `https://...`.
    pub url: String,
    /// Every origin the browser may load as a page or frame (the URL's first).
    pub origins: Vec<String>,
    /// TEST images only: the browser gets a fake camera and microphone.
    #[serde(default)]
    pub fake_capture: bool,
}

impl SessionPolicy {
    /// True when `url` belongs to one of the allowed origins.
    pub fn allows(&self, url: &str) -> bool {
        crate::https_url::HttpsUrl::parse(url)
            .map(|u| self.origins.contains(&u.origin()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_listed_origins_are_allowed() {
        let policy = SessionPolicy {
            url: "https://conf.test/room".into(),
            origins: vec!["https://conf.test".into(), "https://sso.test:8443".into()],
            fake_capture: false,
        };
        let cases = [
            ("https://conf.test/room?x=1", true),
            ("https://CONF.test/", true),
            ("https://conf.test:443/", true),
            ("https://sso.test:8443/login", true),
            ("https://sso.test/login", false),
            ("https://evil.conf.test/", false),
            ("http://conf.test/", false),
            ("about:blank", false),
            ("data:text/html,x", false),
            ("file:///etc/passwd", false),
            ("chrome://settings", false),
            ("javascript:alert(1)", false),
        ];
        for (url, want) in cases {
            assert_eq!(policy.allows(url), want, "{url}");
        }
    }
}
