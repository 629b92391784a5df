//! The image manifest: what an image is, signed with ed25519.
//!
//! The builder writes `manifest.json` and a detached `manifest.json.sig` (hex of the
//! 64-byte ed25519 signature over the exact bytes of `manifest.json`) onto the ESP
//! and beside the image. `image-builder verify` and the kiosk check the signature over
//! the bytes as read, never over a re-serialisation.

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

pub mod boot_trust;
pub mod https_url;
pub mod initrd;
pub mod language;
pub mod network;
pub mod personal;
pub mod session;

pub use language::Language;

/// File name of the manifest on the ESP and the suffix beside the image.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the detached signature on the ESP and the suffix beside the image.
pub const SIGNATURE_FILE: &str = "manifest.json.sig";
/// Path of the manifest public key inside the image's root filesystem.
pub const IMAGE_PUBKEY_PATH: &str = "/usr/share/secure-stick/manifest-signing.pub";
/// Current manifest format.
pub const FORMAT: u32 = 1;

/// Public keys of the test keys committed in `keys/`: an image signed by one of them
/// is a test image and says so.
pub const TEST_PUBLIC_KEYS_PEM: &[&str] = &[include_str!("../../keys/test-manifest-signing.pub")];

/// Everything a signed image states about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub version: String,
    pub rollback_index: u64,
    /// Build time as Unix seconds (SOURCE_DATE_EPOCH when set).
    pub build_time: u64,
    /// True when the manifest was signed with a key from `keys/test-*`.
    pub test_keys: bool,
    pub verity: VerityInfo,
    /// The kernel command line inside the UKI.
    pub cmdline: String,
    pub partitions: Vec<PartitionDigest>,
    /// Files on the ESP other than the manifest and its signature: the UKI (and
    /// with shim: shim, MokManager and the certificate to enrol).
    pub esp_files: Vec<FileDigest>,
    /// Debian packages installed in the root filesystem (the SBOM).
    pub packages: Vec<Package>,
    pub kernel_version: String,
    /// Filesystem module folders left in the kernel (all others were removed).
    #[serde(default)]
    pub kernel_filesystems: Vec<String>,
    /// The firmware the image carries, per owner (`intel-wifi`... or `other`):
    /// only what its drivers can load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firmware: Vec<FirmwareShare>,
    pub builder_version: String,
    /// sha256 of the config file's bytes.
    pub config_sha256: String,
    /// Subject and sha256 fingerprint of the Secure Boot db certificate the UKI is
    /// signed with; `None` for an unsigned UKI.
    pub uki_signer: Option<String>,
    /// Debian's shim and MokManager in front of the UKI (`[signing] shim`);
    /// `None`: the firmware starts the UKI itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim: Option<boot_trust::ShimRecord>,
    /// True when the image gives the browser a fake camera and microphone (a test
    /// image: it also says so on screen).
    #[serde(default)]
    pub test_fake_capture: bool,
    /// The tunnel whose credential each stick of this image carries in its own
    /// partition (`image-builder personalize`); `None`: the image needs none (no
    /// VPN, or a TEST image that carries one for every stick).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_credential: Option<network::TunnelKind>,
    /// Each stick's credential names a person's account, whose password the
    /// gateway checks in a second round (`[vpn.ipsec] user-password`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub personal_user: bool,
    /// The image joins Wi-Fi (`[network.wifi]`): a stick's credential may
    /// carry its person's networks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wifi: bool,
}

/// Firmware files whose drivers are one owner's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FirmwareShare {
    /// `intel-wifi`, `realtek-wifi`, `mediatek-wifi`, `atheros-wifi`, or `other`.
    pub drivers: String,
    pub files: u32,
    pub bytes: u64,
}

/// Path of the kiosk's boot policy inside the image (under the verity root).
pub const KIOSK_POLICY_PATH: &str = "/usr/share/secure-stick/kiosk-policy.json";

/// What the kiosk demands before it starts a session; set by the admin's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KioskPolicy {
    pub require_secure_boot: bool,
    pub min_rollback_index: u64,
    /// The language of everything the stick shows the person in front of it.
    #[serde(default)]
    pub language: Language,
    /// The VPN and egress policy; `None` when the image has no network.
    #[serde(default)]
    pub network: Option<network::NetworkPolicy>,
    /// The conference session; `None`: the image runs no browser.
    #[serde(default)]
    pub session: Option<session::SessionPolicy>,
    /// Which key may have trusted the UKI; `None`: an unsigned image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_trust: Option<boot_trust::BootTrustPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VerityInfo {
    /// Hex root hash, also on the cmdline as `roothash=`.
    pub root_hash: String,
    pub salt: String,
    pub hash_algorithm: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
}

/// The role of a partition in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionRole {
    Esp,
    Root,
    RootVerity,
}

impl std::fmt::Display for PartitionRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PartitionRole::Esp => "esp",
            PartitionRole::Root => "root",
            PartitionRole::RootVerity => "root-verity",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PartitionDigest {
    pub role: PartitionRole,
    pub type_uuid: String,
    pub part_uuid: String,
    /// Byte offset in the image.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the whole partition; `None` for the ESP, which holds the manifest
    /// itself and is covered file by file through `esp-files`.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileDigest {
    /// Path on the ESP, `/`-separated, e.g. `EFI/BOOT/BOOTX64.EFI`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// Why a manifest could not be trusted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("public key is not an ed25519 SPKI PEM: {0}")]
    BadPublicKey(String),
    #[error("private key is not an ed25519 PKCS#8 PEM: {0}")]
    BadPrivateKey(String),
    #[error("signature file is not 128 hex digits (a 64-byte ed25519 signature)")]
    MalformedSignature,
    #[error("signature does not verify: the manifest was changed or signed by another key")]
    BadSignature,
    #[error("manifest is not valid JSON of format {FORMAT}: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("manifest format {0} is not supported (this program reads format {FORMAT})")]
    UnsupportedFormat(u32),
}

impl Manifest {
    /// The bytes that are signed: pretty JSON with a trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Signs the manifest; returns (manifest bytes, signature file contents).
    pub fn sign(&self, key: &SigningKey) -> (Vec<u8>, String) {
        let bytes = self.to_bytes();
        let signature = signature_file(&bytes, key);
        (bytes, signature)
    }

    /// Checks `signature` (contents of the `.sig` file) over `bytes` with `key`, then
    /// parses the manifest. Nothing is parsed before the signature is good.
    pub fn verify(
        bytes: &[u8],
        signature: &str,
        key: &VerifyingKey,
    ) -> Result<Manifest, ManifestError> {
        let raw = hex::decode(signature.trim()).map_err(|_| ManifestError::MalformedSignature)?;
        let raw: [u8; 64] = raw
            .try_into()
            .map_err(|_| ManifestError::MalformedSignature)?;
        key.verify(bytes, &Signature::from_bytes(&raw))
            .map_err(|_| ManifestError::BadSignature)?;
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        if manifest.format != FORMAT {
            return Err(ManifestError::UnsupportedFormat(manifest.format));
        }
        Ok(manifest)
    }

    pub fn partition(&self, role: PartitionRole) -> Option<&PartitionDigest> {
        self.partitions.iter().find(|p| p.role == role)
    }
}

/// The contents of a `.sig` file: hex of the ed25519 signature over `bytes`.
pub fn signature_file(bytes: &[u8], key: &SigningKey) -> String {
    format!("{}\n", hex::encode(key.sign(bytes).to_bytes()))
}

/// Parses an ed25519 public key from SPKI PEM (`openssl pkey -pubout` format).
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey, ManifestError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|e| ManifestError::BadPublicKey(e.to_string()))
}

/// Parses an ed25519 private key from PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, ManifestError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| ManifestError::BadPrivateKey(e.to_string()))
}

/// PEM encodings (private PKCS#8, public SPKI) of a key pair.
pub fn key_pair_to_pem(key: &SigningKey) -> (String, String) {
    let private = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .expect("ed25519 key encodes as PKCS#8");
    let public = key
        .verifying_key()
        .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .expect("ed25519 key encodes as SPKI");
    (private.to_string(), public)
}

/// True when `key` is one of the committed test keys.
pub fn is_test_key(key: &VerifyingKey) -> bool {
    TEST_PUBLIC_KEYS_PEM
        .iter()
        .filter_map(|pem| verifying_key_from_pem(pem).ok())
        .any(|test| test == *key)
}

pub use ed25519_dalek::{SigningKey as ManifestSigningKey, VerifyingKey as ManifestVerifyingKey};

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            name: "demo".into(),
            version: "1.0.0".into(),
            rollback_index: 3,
            build_time: 1_700_000_000,
            test_keys: true,
            verity: VerityInfo {
                root_hash: "ab".repeat(32),
                salt: "cd".repeat(32),
                hash_algorithm: "sha256".into(),
                data_block_size: 4096,
                hash_block_size: 4096,
            },
            cmdline: "roothash=abab".into(),
            partitions: vec![],
            esp_files: vec![],
            packages: vec![Package {
                name: "systemd".into(),
                version: "257".into(),
            }],
            kernel_version: "6.12".into(),
            builder_version: "0.1.0".into(),
            config_sha256: "00".repeat(32),
            kernel_filesystems: vec![],
            firmware: vec![],
            uki_signer: None,
            shim: None,
            test_fake_capture: false,
            personal_credential: None,
            wifi: false,
            personal_user: false,
        }
    }

    fn test_key() -> SigningKey {
        signing_key_from_pem(include_str!("../../keys/test-manifest-signing.key"))
            .expect("committed test key parses")
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let key = test_key();
        let (bytes, sig) = sample().sign(&key);
        let back = Manifest::verify(&bytes, &sig, &key.verifying_key()).expect("verifies");
        assert_eq!(back, sample());
    }

    #[test]
    fn tampering_is_refused() {
        let key = test_key();
        let (bytes, sig) = sample().sign(&key);
        let other = SigningKey::generate(&mut rand_core::OsRng);
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        let mut bad_sig = sig.clone();
        bad_sig.replace_range(0..2, if &sig[0..2] == "00" { "11" } else { "00" });
        let cases: Vec<(&str, Vec<u8>, String, VerifyingKey, &str)> = vec![
            (
                "byte flipped",
                flipped,
                sig.clone(),
                key.verifying_key(),
                "BadSignature",
            ),
            (
                "other key",
                bytes.clone(),
                sig.clone(),
                other.verifying_key(),
                "BadSignature",
            ),
            (
                "signature changed",
                bytes.clone(),
                bad_sig,
                key.verifying_key(),
                "BadSignature",
            ),
            (
                "signature short",
                bytes.clone(),
                "abcd".into(),
                key.verifying_key(),
                "MalformedSignature",
            ),
            (
                "signature not hex",
                bytes,
                "zz".repeat(64),
                key.verifying_key(),
                "MalformedSignature",
            ),
        ];
        for (name, bytes, sig, pubkey, want) in cases {
            let err = Manifest::verify(&bytes, &sig, &pubkey).expect_err(name);
            assert!(format!("{err:?}").starts_with(want), "{name}: got {err:?}");
        }
    }

    #[test]
    fn committed_test_key_is_recognised_and_fresh_key_is_not() {
        assert!(is_test_key(&test_key().verifying_key()));
        let fresh = SigningKey::generate(&mut rand_core::OsRng);
        assert!(!is_test_key(&fresh.verifying_key()));
        let (private, public) = key_pair_to_pem(&fresh);
        assert_eq!(signing_key_from_pem(&private).expect("parses"), fresh);
        assert_eq!(
            verifying_key_from_pem(&public).expect("parses"),
            fresh.verifying_key()
        );
    }
}
