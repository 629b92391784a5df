//! A stick's own credential: what `image-builder personalize` writes into a
//! small partition of its own on one stick, and the kiosk reads from the disk it
//! booted from. The signed image carries no private key; each stick carries its
//! own, so one lost stick is revoked alone.
//!
//! On the partition: [`MAGIC`], the length of the JSON document (u32, little
//! endian), the SHA-256 of the document, the document, zeros to the end.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The GPT type of the credential partition (a GUID of this project's own).
pub const PERSONAL_TYPE_UUID: &str = "8a3c5e21-4f7b-4d2a-9c61-5e0b7d3f2a94";
/// Its GPT label.
pub const PERSONAL_PARTITION_NAME: &str = "stick-credential";
/// Its size: room for an RSA 4096 certificate chain and key many times over.
pub const PERSONAL_PARTITION_SIZE: u64 = 1 << 20;
/// Where the kiosk puts a personal stick's IPsec certificate and key (swanctl's
/// folders; the image's swanctl.conf names these files).
pub const IPSEC_CERT_PATH: &str = "/etc/swanctl/x509/stick-client.pem";
pub const IPSEC_KEY_PATH: &str = "/etc/swanctl/private/stick-client.key";
/// Where networkd reads the WireGuard key (the image's netdev names it).
pub const WIREGUARD_KEY_PATH: &str = "/etc/secure-stick/wireguard.key";
/// The drop-in with a personal stick's WireGuard address, beside the image's
/// `50-stick-wg0.network` (networkd reads drop-ins from /run too).
pub const WIREGUARD_ADDRESS_DROPIN: &str =
    "/run/systemd/network/50-stick-wg0.network.d/50-stick-address.conf";
/// The connection's second authentication round (the user's EAP identity), a
/// swanctl drop-in the kiosk writes for a stick with a `user`. Its name sorts
/// after the image's `stick.conf`, so the rounds keep their order.
pub const IPSEC_USER_DROPIN: &str = "/etc/swanctl/conf.d/stick.user.conf";
/// What a user (account) name may hold.
pub const USER_RULE: &str = "1 to 64 letters, digits, '.', '_', '-' or '@'";

/// Whether `user` is an account name the credential accepts ([`USER_RULE`]).
pub fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// The first bytes of the partition.
pub const MAGIC: &[u8; 8] = b"SSTKCRD1";
/// The longest document accepted (the partition is read whole; this bounds parsing).
pub const MAX_DOCUMENT: usize = 64 * 1024;
/// The bytes before the document: the mark, the length (u32) and the SHA-256.
pub const HEADER_BYTES: usize = MAGIC.len() + 4 + 32;

/// One stick's identity and tunnel credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StickCredential {
    /// The admin's name for this stick (in the console lines and the gateway's log).
    pub stick_id: String,
    pub tunnel: PersonalTunnel,
    /// Wi-Fi networks this stick's person uses (their home network), joined
    /// without a question on images with Wi-Fi.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wifi: Vec<WifiPreset>,
}

/// Where iwd keeps the networks it knows (in RAM on the stick).
pub const IWD_STATE_DIR: &str = "/var/lib/iwd";
/// The most Wi-Fi presets one stick carries.
pub const MAX_WIFI_PRESETS: usize = 8;

/// A WPA2/WPA3-Personal network and its passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WifiPreset {
    /// The network's name (SSID): 1 to 32 bytes.
    pub name: String,
    /// 8 to 63 printable ASCII characters.
    pub passphrase: String,
}

impl WifiPreset {
    /// What is wrong with it, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if self.name.is_empty() || self.name.len() > 32 || self.name.chars().any(char::is_control) {
            Some("a network name of 1 to 32 bytes, without control characters")
        } else if !(8..=63).contains(&self.passphrase.len()) || !printable(&self.passphrase) {
            Some("a WPA passphrase of 8 to 63 printable ASCII characters")
        } else {
            None
        }
    }

    /// iwd's file for it in [`IWD_STATE_DIR`]: the name itself when it holds
    /// only letters, digits, `-` and `_`, else `=` and the name in hex
    /// (iwd.network(5)); `.psk` for WPA-Personal.
    pub fn iwd_file_name(&self) -> String {
        let plain = self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if plain {
            format!("{}.psk", self.name)
        } else {
            format!("={}.psk", hex::encode(self.name.as_bytes()))
        }
    }

    /// The file's text.
    pub fn iwd_file(&self) -> String {
        format!(
            "# From this stick's credential partition.\n[Security]\nPassphrase={}\n",
            self.passphrase
        )
    }
}

/// The tunnel credential of one stick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, tag = "kind")]
pub enum PersonalTunnel {
    /// IKEv2: the stick's certificate (issued by the organisation's CA for this
    /// stick) and its private key, both PEM; for an image whose gateway checks a
    /// user password (`[vpn.ipsec] user-password`), the person's account name
    /// (the EAP identity of the second round).
    Ipsec {
        certificate: String,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
    /// WireGuard: the stick's private key (base64, as `wg genkey` prints it) and
    /// its address inside the tunnel (`10.99.1.7/32`).
    Wireguard {
        private_key: String,
        address: String,
    },
}

/// Why a partition holds no usable credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "no credential: the partition does not start with the credential mark (never personalised)"
    )]
    NoMagic,
    #[error("the credential is {0} bytes long; at most {MAX_DOCUMENT} are accepted")]
    TooLong(usize),
    #[error("the credential is cut short: {needed} bytes announced, {have} present")]
    Truncated { needed: usize, have: usize },
    #[error("the credential's checksum does not match its bytes (damaged)")]
    Checksum,
    #[error("the credential cannot be read: {0}")]
    Document(String),
    #[error("stick id {0:?}: 1 to 64 letters, digits, `.`, `_` or `-`")]
    BadStickId(String),
    #[error("the {what} is not {expected}")]
    BadField {
        what: &'static str,
        expected: &'static str,
    },
}

impl StickCredential {
    /// Checks every field's form (not whether the gateway accepts it).
    pub fn validate(&self) -> Result<(), CredentialError> {
        let id_ok = (1..=64).contains(&self.stick_id.len())
            && self
                .stick_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !id_ok {
            return Err(CredentialError::BadStickId(self.stick_id.clone()));
        }
        let bad = |what, expected| Err(CredentialError::BadField { what, expected });
        if self.wifi.len() > MAX_WIFI_PRESETS {
            return bad("list of Wi-Fi networks", "at most 8 networks");
        }
        if let Some(problem) = self.wifi.iter().find_map(WifiPreset::problem) {
            return bad("Wi-Fi network", problem);
        }
        match &self.tunnel {
            PersonalTunnel::Ipsec {
                certificate,
                key,
                user,
            } => {
                if !certificate.contains("-----BEGIN CERTIFICATE-----") {
                    return bad("IPsec certificate", "a PEM certificate");
                }
                if !key.contains("PRIVATE KEY-----") {
                    return bad("IPsec key", "a PEM private key");
                }
                if user.as_deref().is_some_and(|u| !valid_user(u)) {
                    return bad("user", USER_RULE);
                }
            }
            PersonalTunnel::Wireguard {
                private_key,
                address,
            } => {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD.decode(private_key.trim());
                if !decoded.is_ok_and(|k| k.len() == 32) {
                    return bad(
                        "WireGuard private key",
                        "44 base64 characters, as `wg genkey` prints",
                    );
                }
                let host = address
                    .parse::<crate::network::Ipv4Net>()
                    .is_ok_and(|net| net.prefix == 32);
                if !host {
                    return bad("WireGuard address", "one IPv4 address with /32");
                }
            }
        }
        Ok(())
    }

    /// The partition's bytes (the caller pads them to the partition's size).
    pub fn encode(&self) -> Result<Vec<u8>, CredentialError> {
        self.validate()?;
        let document =
            serde_json::to_vec(self).map_err(|e| CredentialError::Document(e.to_string()))?;
        if document.len() > MAX_DOCUMENT {
            return Err(CredentialError::TooLong(document.len()));
        }
        let mut bytes = Vec::with_capacity(HEADER_BYTES + document.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(document.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(&document));
        bytes.extend_from_slice(&document);
        Ok(bytes)
    }

    /// The credential in a partition's first bytes (at least the header and the
    /// document; more is ignored).
    pub fn decode(bytes: &[u8]) -> Result<StickCredential, CredentialError> {
        if bytes.len() < HEADER_BYTES || &bytes[..MAGIC.len()] != MAGIC {
            return Err(CredentialError::NoMagic);
        }
        let length = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        if length > MAX_DOCUMENT {
            return Err(CredentialError::TooLong(length));
        }
        let document =
            bytes
                .get(HEADER_BYTES..HEADER_BYTES + length)
                .ok_or(CredentialError::Truncated {
                    needed: HEADER_BYTES + length,
                    have: bytes.len(),
                })?;
        if Sha256::digest(document).as_slice() != &bytes[12..HEADER_BYTES] {
            return Err(CredentialError::Checksum);
        }
        let credential: StickCredential = serde_json::from_slice(document)
            .map_err(|e| CredentialError::Document(e.to_string()))?;
        credential.validate()?;
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipsec() -> StickCredential {
        StickCredential {
            stick_id: "stick-0042".into(),
            tunnel: PersonalTunnel::Ipsec {
                certificate: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
                    .into(),
                key: "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n".into(),
                user: None,
            },
            wifi: Vec::new(),
        }
    }

    fn wireguard(key: &str, address: &str) -> StickCredential {
        StickCredential {
            stick_id: "wg.7".into(),
            tunnel: PersonalTunnel::Wireguard {
                private_key: key.into(),
                address: address.into(),
            },
            wifi: Vec::new(),
        }
    }

    const WG_KEY: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    #[test]
    fn wifi_presets_are_checked_and_named_as_iwd_names_them() {
        let preset = |name: &str, passphrase: &str| WifiPreset {
            name: name.into(),
            passphrase: passphrase.into(),
        };
        let cases = [
            (preset("Home", "long enough"), None, "Home.psk"),
            (
                preset("FRITZ!Box 7590", "long enough"),
                None,
                "=465249545a21426f782037353930.psk",
            ),
            (preset("home_2-4", "long enough"), None, "home_2-4.psk"),
            (preset("", "long enough"), Some("a network name"), ""),
            (
                preset(&"x".repeat(33), "long enough"),
                Some("a network name"),
                "",
            ),
            (
                preset("Home", "short"),
                Some("a WPA passphrase"),
                "Home.psk",
            ),
            (
                preset("Home", "zwei Wörter!"),
                Some("a WPA passphrase"),
                "Home.psk",
            ),
        ];
        for (preset, problem, file) in cases {
            assert_eq!(
                preset
                    .problem()
                    .map(|p| p.split(" of ").next().unwrap_or(p)),
                problem,
                "{preset:?}"
            );
            if !file.is_empty() {
                assert_eq!(preset.iwd_file_name(), file, "{preset:?}");
            }
        }
        assert_eq!(
            preset("Home", "long enough").iwd_file(),
            "# From this stick's credential partition.\n[Security]\nPassphrase=long enough\n"
        );
        // Carried in the credential, checked with it.
        let mut credential = ipsec();
        credential.wifi = vec![preset("Home", "long enough")];
        let bytes = credential.encode().expect("encodes");
        assert_eq!(
            StickCredential::decode(&bytes).expect("decodes"),
            credential
        );
        credential.wifi.push(preset("Cafe", "short"));
        assert!(credential.encode().is_err());
        credential.wifi = vec![preset("Home", "long enough"); 9];
        assert!(credential.validate().is_err());
    }

    #[test]
    fn round_trips_and_pads() {
        let mut with_user = ipsec();
        if let PersonalTunnel::Ipsec { user, .. } = &mut with_user.tunnel {
            *user = Some("alice.m@example".into());
        }
        for credential in [ipsec(), with_user, wireguard(WG_KEY, "10.99.1.7/32")] {
            let mut bytes = credential.encode().expect("encodes");
            assert_eq!(&bytes[..8], MAGIC);
            bytes.resize(PERSONAL_PARTITION_SIZE as usize, 0);
            assert_eq!(StickCredential::decode(&bytes), Ok(credential));
        }
    }

    #[test]
    fn damaged_or_missing_credentials() {
        let good = ipsec().encode().expect("encodes");
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        let mut long = good.clone();
        long[8..12].copy_from_slice(&(MAX_DOCUMENT as u32 + 1).to_le_bytes());
        let cases: &[(&str, Vec<u8>, CredentialError)] = &[
            ("zeros", vec![0; 4096], CredentialError::NoMagic),
            ("empty", vec![], CredentialError::NoMagic),
            ("flipped byte", flipped, CredentialError::Checksum),
            (
                "cut short",
                good[..good.len() - 1].to_vec(),
                CredentialError::Truncated {
                    needed: good.len(),
                    have: good.len() - 1,
                },
            ),
            ("too long", long, CredentialError::TooLong(MAX_DOCUMENT + 1)),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(StickCredential::decode(bytes), Err(want.clone()), "{name}");
        }
    }

    #[test]
    fn fields_are_checked() {
        let mut bad_id = ipsec();
        bad_id.stick_id = "stick 1/2".into();
        let with_user = |name: &str| {
            let mut credential = ipsec();
            if let PersonalTunnel::Ipsec { user, .. } = &mut credential.tunnel {
                *user = Some(name.into());
            }
            credential
        };
        let cases: &[(&str, StickCredential, &str)] = &[
            ("stick id", bad_id, "stick id \"stick 1/2\""),
            ("user with a quote", with_user("al\"ice"), "the user"),
            ("empty user", with_user(""), "the user"),
            (
                "short key",
                wireguard("c2hvcnQ=", "10.99.1.7/32"),
                "the WireGuard private key",
            ),
            (
                "network address",
                wireguard(WG_KEY, "10.99.1.0/24"),
                "the WireGuard address",
            ),
        ];
        for (name, credential, start) in cases {
            let err = credential.encode().expect_err(name).to_string();
            assert!(err.starts_with(start), "{name}: {err}");
        }
    }
}
