//! `[network.wifi]`: Wi-Fi when no cable has a link. iwd joins the network the
//! person chooses on the stick's screen; nothing about any network is in the
//! shared image (docs/wifi.md).

use serde::Deserialize;
use stick_manifest::network::WifiPolicy;

/// `[network.wifi]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WifiSection {
    /// TEST IMAGES ONLY: a lab access point inside the image (two
    /// `mac80211_hwsim` radios at boot, hostapd on one, bridged to the wired
    /// card, which the stick then does not have). Needs `hostapd` and `iw` in
    /// `[debian] extra-packages`.
    #[serde(default)]
    pub lab_access_point: Option<LabAccessPoint>,
}

/// The lab access point's network.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LabAccessPoint {
    /// 1 to 32 bytes, printable ASCII.
    pub ssid: String,
    /// WPA2-Personal: 8 to 63 printable ASCII characters.
    pub passphrase: String,
}

impl WifiSection {
    /// The kiosk's policy; `extra_packages` must hold what a lab access point runs.
    pub fn policy(&self, extra_packages: &[String]) -> Result<WifiPolicy, (&'static str, String)> {
        let Some(lab) = &self.lab_access_point else {
            return Ok(WifiPolicy {
                lab_access_point: None,
            });
        };
        let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if lab.ssid.is_empty() || lab.ssid.len() > 32 || !printable(&lab.ssid) {
            return Err((
                "network.wifi.lab-access-point.ssid",
                format!("{:?} is not 1 to 32 printable ASCII characters", lab.ssid),
            ));
        }
        if !(8..=63).contains(&lab.passphrase.len()) || !printable(&lab.passphrase) {
            return Err((
                "network.wifi.lab-access-point.passphrase",
                "must be 8 to 63 printable ASCII characters (WPA2-Personal)".to_string(),
            ));
        }
        for package in LAB_PACKAGES {
            if !extra_packages.iter().any(|p| p == package) {
                return Err((
                    "network.wifi.lab-access-point",
                    format!(
                        "the lab access point runs {package}: add \"{package}\" to \
                         [debian] extra-packages (test images only)"
                    ),
                ));
            }
        }
        Ok(WifiPolicy {
            lab_access_point: Some(lab.ssid.clone()),
        })
    }
}

/// What the lab access point runs (never in a real image).
pub const LAB_PACKAGES: &[&str] = &["hostapd", "iw"];

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(ssid: &str, passphrase: &str) -> WifiSection {
        WifiSection {
            lab_access_point: Some(LabAccessPoint {
                ssid: ssid.into(),
                passphrase: passphrase.into(),
            }),
        }
    }

    #[test]
    fn the_lab_access_point_is_checked() {
        let packages: Vec<String> = vec!["hostapd".into(), "iw".into()];
        /// The section, the extra packages, and the SSID or the key named in the error.
        type Case<'a> = (WifiSection, &'a [String], Result<Option<&'a str>, &'a str>);
        let cases: &[Case] = &[
            (WifiSection::default(), &[], Ok(None)),
            (
                lab("stick-lab", "lab passphrase"),
                &packages,
                Ok(Some("stick-lab")),
            ),
            (
                lab("", "lab passphrase"),
                &packages,
                Err("network.wifi.lab-access-point.ssid"),
            ),
            (
                lab(&"x".repeat(33), "lab passphrase"),
                &packages,
                Err("network.wifi.lab-access-point.ssid"),
            ),
            (
                lab("stick-lab", "short"),
                &packages,
                Err("network.wifi.lab-access-point.passphrase"),
            ),
            (
                lab("stick-lab", "lab passphrase"),
                &packages[..1],
                Err("network.wifi.lab-access-point"),
            ),
        ];
        for (section, extra, want) in cases {
            let got = section
                .policy(extra)
                .map(|p| p.lab_access_point)
                .map_err(|(key, _)| key);
            assert_eq!(
                got.as_ref().map(|s| s.as_deref()),
                want.as_ref().map(|s| *s),
                "{section:?}"
            );
        }
    }
}
