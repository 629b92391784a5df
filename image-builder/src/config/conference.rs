//! `[conference]`: the page the session shows, the origins it may load, the CAs
//! its servers must chain to, and (test images only) a fake camera and microphone.

use std::path::PathBuf;

use serde::Deserialize;
use stick_manifest::https_url::HttpsUrl;
use stick_manifest::network::NetworkPolicy;
use stick_manifest::session::{KeyboardError, KeyboardLayout, SessionPolicy};

use crate::config::vpn::Invalid;

/// What the browser stack adds to an image with a `[conference]`.
/// (`xkb-data` comes with labwc anyway; named because keyboard-layout is checked
/// against it.)
pub const SESSION_PACKAGES: &[&str] = &[
    "chromium",
    "labwc",
    "seatd",
    "fonts-dejavu-core",
    "xkb-data",
];

/// `[conference]` as the admin writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConferenceSection {
    /// The conference page, `https://...` (e.g. the BigBlueButton room).
    pub url: String,
    /// Further origins the conference needs as pages or frames (e.g. its login
    /// server), written `https://host` or `https://host:port`.
    #[serde(default)]
    pub extra_origins: Vec<String>,
    /// CA certificates (PEM files) the conference servers chain to: the browser
    /// trusts these and nothing the admin did not name.
    pub trust_ca: Vec<PathBuf>,
    /// TEST images only: a fake camera and microphone instead of real devices.
    /// The manifest and the screen say so.
    #[serde(default)]
    pub test_fake_capture: bool,
    /// TEST images only: the kernel's virtual camera (`vivid`) is loaded, and the
    /// browser uses the kernel's devices (that camera, the PC's sound card) as a
    /// real stick does, so that the camera/microphone indicator can be tested.
    /// The manifest and the screen say so.
    #[serde(default)]
    pub test_virtual_camera: bool,
    /// TEST images only, and only with a test capture switch: a hostile process of
    /// the session account beside each browser (the QEMU scenario's proof that
    /// the kiosk ends every process of the account before it starts again).
    #[serde(default)]
    pub test_hostile_session: bool,
    /// The keyboard layout in the session, an XKB name such as `de`; XKB's
    /// default (`us`) when left out.
    pub keyboard_layout: Option<String>,
    /// A variant of that layout, such as `nodeadkeys`.
    pub keyboard_variant: Option<String>,
    /// Where the conference sends people when it is over (BigBlueButton's
    /// `logoutURL`), on one of the allowed origins: there the kiosk closes the
    /// browser and shows its "conference ended" screen.
    pub ended_url: Option<String>,
}

impl ConferenceSection {
    /// The kiosk's session policy; every error names the key.
    pub fn policy(&self, network: Option<&NetworkPolicy>) -> Result<SessionPolicy, Invalid> {
        let url = HttpsUrl::parse(&self.url).map_err(|e| ("conference.url", e.to_string()))?;
        if network.is_some_and(|n| n.check_url.is_none()) {
            return Err((
                "vpn.check-url",
                "a [conference] behind a [vpn] needs vpn.check-url: the kiosk shows the \
                 conference only while that URL answers through the tunnel"
                    .into(),
            ));
        }
        reachable(&url, network, "conference.url")?;
        let mut origins = vec![url.origin()];
        for text in &self.extra_origins {
            let origin =
                HttpsUrl::parse(text).map_err(|e| ("conference.extra-origins", e.to_string()))?;
            let after_scheme = text.strip_prefix("https://").unwrap_or(text);
            if after_scheme.trim_end_matches('/').contains(['/', '?', '#']) {
                return Err((
                    "conference.extra-origins",
                    format!(
                        "{text:?} is not an origin: write only scheme, host and port, as {:?}",
                        origin.origin()
                    ),
                ));
            }
            reachable(&origin, network, "conference.extra-origins")?;
            if !origins.contains(&origin.origin()) {
                origins.push(origin.origin());
            }
        }
        if self.trust_ca.is_empty() {
            return Err((
                "conference.trust-ca",
                "name at least one CA certificate (PEM) that the conference servers chain to; \
                 the browser trusts no other"
                    .into(),
            ));
        }
        let keyboard = match (&self.keyboard_layout, &self.keyboard_variant) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err((
                    "conference.keyboard-variant",
                    "a variant needs conference.keyboard-layout too".into(),
                ))
            }
            (Some(layout), variant) => Some(
                KeyboardLayout::parse(layout, variant.as_deref()).map_err(|e| {
                    let key = match e {
                        KeyboardError::BadLayout(_) => "conference.keyboard-layout",
                        KeyboardError::BadVariant(_) => "conference.keyboard-variant",
                    };
                    (key, e.to_string())
                })?,
            ),
        };
        if self.test_fake_capture && self.test_virtual_camera {
            return Err((
                "conference.test-virtual-camera",
                "choose one: test-fake-capture (the browser's own fake devices) or \
                 test-virtual-camera (the kernel's devices)"
                    .into(),
            ));
        }
        if self.test_hostile_session && !self.test_fake_capture && !self.test_virtual_camera {
            return Err((
                "conference.test-hostile-session",
                "a test-only switch: allowed only in a test image, one that also sets \
                 conference.test-fake-capture or conference.test-virtual-camera = true \
                 (which the manifest and the screen show)"
                    .into(),
            ));
        }
        let mut policy = SessionPolicy {
            url: url.to_string(),
            origins,
            fake_capture: self.test_fake_capture,
            test_virtual_camera: self.test_virtual_camera,
            test_hostile_session: self.test_hostile_session,
            keyboard,
            ended_url: None,
        };
        policy.ended_url = self.ended_url(&policy)?;
        Ok(policy)
    }

    /// `ended-url`, checked against the policy's origins and conference page.
    fn ended_url(&self, policy: &SessionPolicy) -> Result<Option<String>, Invalid> {
        const KEY: &str = "conference.ended-url";
        let Some(text) = &self.ended_url else {
            return Ok(None);
        };
        let ended = HttpsUrl::parse(text).map_err(|e| (KEY, e.to_string()))?;
        if !policy.allows(text) {
            return Err((
                KEY,
                format!(
                    "{text:?} is not on an allowed origin ({}): the conference can send the \
                     browser only there",
                    policy.origins.join(", ")
                ),
            ));
        }
        let checked = SessionPolicy {
            ended_url: Some(ended.to_string()),
            ..policy.clone()
        };
        if ended.path == "/" || checked.is_ended(&policy.url) {
            return Err((
                KEY,
                format!(
                    "{text:?} would also match the conference page {:?}: name a page of its \
                     own, such as \"{}/ended\"",
                    policy.url,
                    ended.origin()
                ),
            ));
        }
        Ok(checked.ended_url)
    }
}

/// With a VPN, the conference must lie behind it.
fn reachable(
    url: &HttpsUrl,
    network: Option<&NetworkPolicy>,
    key: &'static str,
) -> Result<(), Invalid> {
    let Some(network) = network else {
        return Ok(());
    };
    match url.ipv4() {
        Some(address) if !network.inner_networks.iter().any(|n| n.contains(address)) => Err((
            key,
            format!(
                "{address} is not inside vpn.inner-networks: the conference is reached only \
                 through the tunnel"
            ),
        )),
        None if network.dns.is_empty() => Err((
            key,
            format!(
                "{:?} is a host name but vpn.dns is empty: add a resolver behind the tunnel \
                 or use an address",
                url.host
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use stick_manifest::network::TunnelKind;

    fn section(url: &str, extra: &[&str]) -> ConferenceSection {
        ConferenceSection {
            url: url.into(),
            extra_origins: extra.iter().map(|s| s.to_string()).collect(),
            trust_ca: vec!["ca.pem".into()],
            test_fake_capture: false,
            test_virtual_camera: false,
            test_hostile_session: false,
            keyboard_layout: None,
            keyboard_variant: None,
            ended_url: None,
        }
    }

    fn network(dns: bool) -> NetworkPolicy {
        NetworkPolicy {
            tunnel: TunnelKind::Wireguard,
            gateway: Ipv4Addr::new(198, 51, 100, 1),
            gateway_udp_ports: vec![51820],
            gateway_esp: false,
            inner_networks: vec!["10.99.0.0/24".parse().expect("cidr")],
            dns: if dns {
                vec![Ipv4Addr::new(10, 99, 0, 53)]
            } else {
                vec![]
            },
            check_url: Some("https://10.99.0.10/".into()),
            ipv6: false,
            personal: false,
            user_password: false,
            token_key_id: None,
            relay: None,
            portal: None,
            wifi: None,
        }
    }

    #[test]
    fn policies_and_refusals() {
        type Want<'a> = Result<(&'a str, &'a [&'a str]), &'a str>;
        let cases: &[(&str, &[&str], bool, Want)] = &[
            (
                "https://10.99.0.10:8443/room",
                &[],
                false,
                Ok(("https://10.99.0.10:8443/room", &["https://10.99.0.10:8443"])),
            ),
            (
                "https://conf.test/b/room",
                &[
                    "https://sso.test",
                    "https://sso.test/",
                    "https://conf.test:443",
                ],
                true,
                Ok((
                    "https://conf.test/b/room",
                    &["https://conf.test", "https://sso.test"],
                )),
            ),
            ("http://conf.test/", &[], true, Err("conference.url")),
            ("https://192.0.2.7/", &[], true, Err("conference.url")),
            ("https://conf.test/", &[], false, Err("conference.url")),
            (
                "https://conf.test/",
                &["https://sso.test/login"],
                true,
                Err("conference.extra-origins"),
            ),
            (
                "https://conf.test/",
                &["https://192.0.2.7"],
                true,
                Err("conference.extra-origins"),
            ),
        ];
        for (url, extra, dns, want) in cases {
            let net = network(*dns);
            let net = if url.contains("10.99.0.10") {
                None
            } else {
                Some(&net)
            };
            let got = section(url, extra).policy(net);
            match (got, want) {
                (Ok(policy), Ok((want_url, want_origins))) => {
                    assert_eq!(policy.url, *want_url);
                    assert_eq!(policy.origins, *want_origins, "{url}");
                }
                (Err((key, _)), Err(want_key)) => assert_eq!(key, *want_key, "{url}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_ended_page_lies_on_an_allowed_origin_and_apart_from_the_room() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://conf.test/ended", Ok("https://conf.test/ended")),
            (
                "https://CONF.test:443/bye?x=1",
                Ok("https://conf.test/bye?x=1"),
            ),
            (
                "https://sso.test:8443/logout",
                Ok("https://sso.test:8443/logout"),
            ),
            ("https://other.test/ended", Err("not on an allowed origin")),
            ("http://conf.test/ended", Err("only https://")),
            ("https://conf.test/", Err("would also match")),
            ("https://conf.test/b", Err("would also match")),
            ("https://conf.test/b/room", Err("would also match")),
        ];
        for (text, want) in cases {
            let mut s = section("https://conf.test/b/room", &["https://sso.test:8443"]);
            s.ended_url = Some(text.to_string());
            match (s.policy(None), want) {
                (Ok(policy), Ok(url)) => assert_eq!(policy.ended_url.as_deref(), Some(*url)),
                (Err((key, message)), Err(part)) => {
                    assert_eq!(key, "conference.ended-url", "{text}");
                    assert!(message.contains(part), "{text}: {message}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_conference_needs_a_trusted_ca() {
        let mut s = section("https://conf.test/", &[]);
        s.trust_ca.clear();
        let (key, message) = s.policy(None).expect_err("no CA");
        assert_eq!(key, "conference.trust-ca");
        assert!(message.contains("trusts no other"), "{message}");
    }

    #[test]
    fn the_hostile_session_switch_is_for_test_images_only() {
        let cases = [
            (false, false, false, Ok(false)),
            (true, false, true, Ok(true)),
            (false, true, true, Ok(true)),
            (false, false, true, Err("conference.test-hostile-session")),
            (true, true, false, Err("conference.test-virtual-camera")),
        ];
        for (fake_capture, virtual_camera, hostile, want) in cases {
            let mut s = section("https://conf.test/", &[]);
            s.test_fake_capture = fake_capture;
            s.test_virtual_camera = virtual_camera;
            s.test_hostile_session = hostile;
            let got = s
                .policy(None)
                .map(|p| p.test_hostile_session)
                .map_err(|(key, _)| key);
            assert_eq!(
                got, want,
                "fake capture {fake_capture}, virtual camera {virtual_camera}, hostile {hostile}"
            );
        }
    }

    #[test]
    fn keyboard_layouts() {
        type Want<'a> = Result<Option<(&'a str, Option<&'a str>)>, &'a str>;
        let cases: &[(Option<&str>, Option<&str>, Want)] = &[
            (None, None, Ok(None)),
            (Some("de"), None, Ok(Some(("de", None)))),
            (
                Some("de"),
                Some("nodeadkeys"),
                Ok(Some(("de", Some("nodeadkeys")))),
            ),
            (None, Some("nodeadkeys"), Err("conference.keyboard-variant")),
            (Some("de,us"), None, Err("conference.keyboard-layout")),
            (
                Some("de"),
                Some("no dead"),
                Err("conference.keyboard-variant"),
            ),
        ];
        for (layout, variant, want) in cases {
            let mut s = section("https://conf.test/", &[]);
            s.keyboard_layout = layout.map(str::to_string);
            s.keyboard_variant = variant.map(str::to_string);
            let got = s.policy(None).map(|p| p.keyboard);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(
                    got.as_ref()
                        .map(|k| (k.layout.as_str(), k.variant.as_deref())),
                    *want
                ),
                (Err((key, _)), Err(want_key)) => assert_eq!(key, *want_key),
                (got, want) => panic!("{layout:?} {variant:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
