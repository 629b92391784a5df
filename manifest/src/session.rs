//! What the kiosk needs to run the conference session: where the conference is,
//! which origins may be loaded, which CAs are trusted, and whether this is a test
//! image with a fake camera and microphone. The builder derives it from the config.

use serde::{Deserialize, Serialize};

/// The browser's managed policy in the image (Debian's Chromium reads this folder).
pub const BROWSER_POLICY_PATH: &str = "/etc/chromium/policies/managed/secure-stick.json";
/// The CA certificates (PEM, all in one file) the conference origins must chain to.
pub const CONFERENCE_CA_PATH: &str = "/usr/share/secure-stick/conference-ca.pem";
/// The unprivileged account the browser runs as.
pub const SESSION_USER: &str = "conference";
/// Its fixed ids (written into the image's account files by the builder).
pub const SESSION_UID: u32 = 900;
pub const SESSION_GID: u32 = 900;
/// The account the compositor and the stick's overlay run as: not the browser's,
/// so that the browser cannot reach the compositor's own socket (where
/// layer-shell is offered), only the socket of its security context.
pub const SCREEN_USER: &str = "stick-screen";
pub const SCREEN_UID: u32 = 901;
pub const SCREEN_GID: u32 = 901;
/// The throwaway browser's account for a network's sign-in page (captive
/// portal): neither the conference's nor the screen's.
pub const PORTAL_USER: &str = "stick-portal";
pub const PORTAL_UID: u32 = 902;
pub const PORTAL_GID: u32 = 902;

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
    /// TEST images only: the kernel's virtual camera (vivid) is loaded; the
    /// browser uses the kernel's devices.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_virtual_camera: bool,
    /// TEST images only (it needs `fake_capture`): beside each browser a process
    /// of the session account that hides from it and tries to make the kiosk
    /// follow a planted link when the browser is started again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_hostile_session: bool,
    /// The keyboard layout the compositor gives the browser; none: XKB's default (us).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyboard: Option<KeyboardLayout>,
    /// Where the conference sends people when it is over (BigBlueButton's
    /// `logoutURL`): a page there ends the browser, and the stick's "conference
    /// ended" screen shows. None: the conference page stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_url: Option<String>,
}

/// Where the image's XKB layouts live (Debian's xkb-data): one file per layout,
/// with a `xkb_symbols "variant"` block per variant.
pub const XKB_SYMBOLS_DIR: &str = "/usr/share/X11/xkb/symbols";

/// An XKB keyboard layout and optional variant, e.g. `de` with `nodeadkeys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeyboardLayout {
    pub layout: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// XKB's own notation: `de`, `de(nodeadkeys)`.
impl std::fmt::Display for KeyboardLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.variant {
            Some(variant) => write!(f, "{}({variant})", self.layout),
            None => f.write_str(&self.layout),
        }
    }
}

/// Why a layout or variant name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyboardError {
    #[error(
        "{0:?} is not an XKB layout name: one layout, lowercase letters, digits and `_` \
         (as \"de\", \"us\", \"fr\")"
    )]
    BadLayout(String),
    #[error("{0:?} is not an XKB variant name: letters, digits and `_` (as \"nodeadkeys\")")]
    BadVariant(String),
}

impl KeyboardLayout {
    /// Checks the names' form; whether the image has them is the builder's check.
    pub fn parse(layout: &str, variant: Option<&str>) -> Result<KeyboardLayout, KeyboardError> {
        let name_ok = |name: &str, allowed: fn(char) -> bool| {
            (1..=32).contains(&name.len()) && name.chars().all(allowed)
        };
        if !name_ok(layout, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
        }) {
            return Err(KeyboardError::BadLayout(layout.into()));
        }
        if let Some(variant) = variant {
            if !name_ok(variant, |c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(KeyboardError::BadVariant(variant.into()));
            }
        }
        Ok(KeyboardLayout {
            layout: layout.into(),
            variant: variant.map(str::to_string),
        })
    }

    /// The layout's symbols file, relative to `XKB_SYMBOLS_DIR`.
    pub fn symbols_file(&self) -> &str {
        &self.layout
    }

    /// True when the symbols file's text defines the variant (or no variant is asked).
    pub fn variant_in(&self, symbols: &str) -> bool {
        let Some(variant) = &self.variant else {
            return true;
        };
        let quoted = format!("\"{variant}\"");
        symbols.lines().any(|line| {
            let line = line.trim_start();
            !line.starts_with("//")
                && line.contains("xkb_symbols")
                && line.split_whitespace().any(|word| word == quoted)
        })
    }
}

impl SessionPolicy {
    /// A test image's capture: the browser's fake devices or the virtual camera.
    pub fn test_capture(&self) -> bool {
        self.fake_capture || self.test_virtual_camera
    }

    /// True when `url` is the conference's "ended" page or below it: the same
    /// origin as [`SessionPolicy::ended_url`], and its path is that one's or lies
    /// below it (`/ended`, `/ended/x`, `/ended?x`; not `/endedx`).
    pub fn is_ended(&self, url: &str) -> bool {
        use crate::https_url::HttpsUrl;
        let Some(Ok(ended)) = self.ended_url.as_deref().map(HttpsUrl::parse) else {
            return false;
        };
        let Ok(url) = HttpsUrl::parse(url) else {
            return false;
        };
        url.origin() == ended.origin()
            && url.path.strip_prefix(&ended.path).is_some_and(|rest| {
                rest.is_empty() || ended.path.ends_with('/') || rest.starts_with(['/', '?'])
            })
    }

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
            test_virtual_camera: false,
            test_hostile_session: false,
            keyboard: None,
            ended_url: None,
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

    #[test]
    fn the_ended_page_and_what_lies_below_it() {
        let mut policy = SessionPolicy {
            url: "https://conf.test/b/room".into(),
            origins: vec!["https://conf.test".into()],
            fake_capture: false,
            test_virtual_camera: false,
            test_hostile_session: false,
            keyboard: None,
            ended_url: None,
        };
        assert!(!policy.is_ended("https://conf.test/ended"));
        policy.ended_url = Some("https://conf.test/ended".into());
        let cases = [
            ("https://conf.test/ended", true),
            ("https://conf.test/ended?meeting=1", true),
            ("https://conf.test/ended/thanks", true),
            ("https://conf.test/endedx", false),
            ("https://CONF.test:443/ended", true),
            ("https://conf.test/b/room", false),
            ("https://conf.test/", false),
            ("https://conf.test:8443/ended", false),
            ("https://other.test/ended", false),
            ("http://conf.test/ended", false),
            ("about:blank", false),
        ];
        for (url, want) in cases {
            assert_eq!(policy.is_ended(url), want, "{url}");
        }
    }

    #[test]
    fn keyboard_names() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("de", None, true),
            ("de", Some("nodeadkeys"), true),
            ("de", Some("T3"), true),
            ("latam", None, true),
            ("", None, false),
            ("DE", None, false),
            ("de,us", None, false),
            ("de(nodeadkeys)", None, false),
            ("../../etc/passwd", None, false),
            ("de", Some(""), false),
            ("de", Some("node adkeys"), false),
            ("de", Some("a/b"), false),
        ];
        for (layout, variant, ok) in cases {
            assert_eq!(
                KeyboardLayout::parse(layout, *variant).is_ok(),
                *ok,
                "{layout:?} {variant:?}"
            );
        }
    }

    #[test]
    fn variants_are_found_in_the_symbols_file() {
        let symbols = "default partial alphanumeric_keys\nxkb_symbols \"basic\" {\n};\n\
                       partial alphanumeric_keys\nxkb_symbols \"nodeadkeys\" {\n};\n\
                       // xkb_symbols \"commented\" {\n";
        let cases = [
            (None, true),
            (Some("nodeadkeys"), true),
            (Some("basic"), true),
            (Some("commented"), false),
            (Some("dead"), false),
        ];
        for (variant, want) in cases {
            let layout = KeyboardLayout::parse("de", variant).expect("valid");
            assert_eq!(layout.variant_in(symbols), want, "{variant:?}");
            let shown = variant.map_or("de".to_string(), |v| format!("de({v})"));
            assert_eq!(layout.to_string(), shown);
        }
    }
}
