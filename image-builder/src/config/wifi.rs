//! `[network.wifi]`: Wi-Fi when no cable has a link. iwd joins the network the
//! person chooses on the stick's screen; nothing about any network is in the
//! shared image (docs/wifi.md).

use serde::Deserialize;
use stick_manifest::network::WifiPolicy;

/// `[network.wifi]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WifiSection {
    /// The Wi-Fi cards whose firmware the image carries (from Debian's
    /// `non-free-firmware`), and of that only what the cards' drivers name.
    /// Default: all four, so that most laptops find their card.
    #[serde(default = "FirmwareFamily::all")]
    pub firmware: Vec<FirmwareFamily>,
    /// TEST IMAGES ONLY: a lab access point inside the image (two
    /// `mac80211_hwsim` radios at boot, hostapd on one, bridged to the wired
    /// card, which the stick then does not have). Needs `hostapd` and `iw` in
    /// `[debian] extra-packages`.
    #[serde(default)]
    pub lab_access_point: Option<LabAccessPoint>,
}

impl Default for WifiSection {
    fn default() -> Self {
        WifiSection {
            firmware: FirmwareFamily::all(),
            lab_access_point: None,
        }
    }
}

/// A maker of Wi-Fi cards whose drivers need firmware the kernel does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareFamily {
    /// iwlwifi (and iwlegacy): most business laptops.
    Intel,
    /// rtw88, rtw89, rtlwifi, rtl8xxxu: many consumer laptops and USB sticks.
    Realtek,
    /// mt76, mt7601u.
    Mediatek,
    /// Qualcomm Atheros ath6kl to ath12k, ath9k_htc, carl9170.
    Atheros,
}

impl FirmwareFamily {
    pub const ALL: [FirmwareFamily; 4] = [
        FirmwareFamily::Intel,
        FirmwareFamily::Realtek,
        FirmwareFamily::Mediatek,
        FirmwareFamily::Atheros,
    ];

    pub fn all() -> Vec<FirmwareFamily> {
        Self::ALL.to_vec()
    }

    /// The config's name.
    pub fn name(self) -> &'static str {
        match self {
            FirmwareFamily::Intel => "intel",
            FirmwareFamily::Realtek => "realtek",
            FirmwareFamily::Mediatek => "mediatek",
            FirmwareFamily::Atheros => "atheros",
        }
    }

    /// Debian's packages with the family's firmware (`non-free-firmware`), and the
    /// free ones for ath9k_htc and carl9170 (`main`).
    pub fn packages(self) -> &'static [&'static str] {
        match self {
            FirmwareFamily::Intel => &["firmware-iwlwifi"],
            FirmwareFamily::Realtek => &["firmware-realtek"],
            FirmwareFamily::Mediatek => &["firmware-mediatek"],
            FirmwareFamily::Atheros => &[
                "firmware-atheros",
                "firmware-ath9k-htc",
                "firmware-carl9170",
            ],
        }
    }

    /// The family's drivers, relative to the kernel's module folder.
    pub fn driver_folder(self) -> &'static str {
        match self {
            FirmwareFamily::Intel => "kernel/drivers/net/wireless/intel",
            FirmwareFamily::Realtek => "kernel/drivers/net/wireless/realtek",
            FirmwareFamily::Mediatek => "kernel/drivers/net/wireless/mediatek",
            FirmwareFamily::Atheros => "kernel/drivers/net/wireless/ath",
        }
    }
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
        for (i, family) in self.firmware.iter().enumerate() {
            if self.firmware[..i].contains(family) {
                return Err((
                    "network.wifi.firmware",
                    format!("\"{}\" is named twice", family.name()),
                ));
            }
        }
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
            firmware: FirmwareFamily::all(),
            lab_access_point: Some(LabAccessPoint {
                ssid: ssid.into(),
                passphrase: passphrase.into(),
            }),
        }
    }

    #[test]
    fn firmware_families_default_to_all_and_are_named_once() {
        let parse = |text: &str| toml::from_str::<WifiSection>(text).map_err(|e| e.to_string());
        let cases: &[(&str, Result<&[FirmwareFamily], &str>)] = &[
            ("", Ok(&FirmwareFamily::ALL)),
            ("firmware = []", Ok(&[])),
            (
                "firmware = [\"intel\", \"mediatek\"]",
                Ok(&[FirmwareFamily::Intel, FirmwareFamily::Mediatek]),
            ),
            (
                "firmware = [\"broadcom\"]",
                Err("unknown variant `broadcom`, expected one of `intel`, `realtek`, `mediatek`, `atheros`"),
            ),
        ];
        for (text, want) in cases {
            match (parse(text), want) {
                (Ok(section), Ok(families)) => assert_eq!(section.firmware, *families, "{text}"),
                (Err(err), Err(part)) => assert!(err.contains(part), "{text}: {err}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
        let twice = parse("firmware = [\"intel\", \"realtek\", \"intel\"]").expect("parses");
        assert_eq!(
            twice.policy(&[]),
            Err((
                "network.wifi.firmware",
                "\"intel\" is named twice".to_string()
            ))
        );
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
