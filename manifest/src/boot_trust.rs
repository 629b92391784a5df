//! How the firmware came to trust the UKI, as the builder records it and the
//! kiosk judges it: the organisation's db key in the firmware, or Debian's
//! Microsoft-signed shim with the organisation's certificate enrolled once as a
//! Machine Owner Key (MOK).

use serde::{Deserialize, Serialize};

/// Which trust through shim's MOK list the kiosk accepts (`[kiosk] accept-mok`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcceptMok {
    /// Only the firmware's own db may trust the UKI (managed PCs).
    #[default]
    Never,
    /// Shim's MOK list may trust the UKI when it holds no key but ours (and
    /// shim's own vendor key), and shim still verifies what it starts.
    OnlyOurs,
    /// Shim's MOK list may trust the UKI whatever else it holds, as long as shim
    /// still verifies what it starts.
    Any,
}

impl AcceptMok {
    /// The config's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            AcceptMok::Never => "never",
            AcceptMok::OnlyOurs => "only-ours",
            AcceptMok::Any => "any",
        }
    }
}

/// What the kiosk needs to tell which key trusted the UKI (in the kiosk policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BootTrustPolicy {
    /// sha256 (hex) of the DER db certificate the UKI is signed with.
    pub uki_signer_sha256: String,
    /// sha256 (hex) of the DER certificate built into shim (Debian's Secure Boot
    /// CA); `None` for an image without shim.
    #[serde(default)]
    pub shim_vendor_sha256: Option<String>,
    pub accept_mok: AcceptMok,
}

/// The boot loader in front of the UKI, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ShimRecord {
    /// Debian's shim package version.
    pub version: String,
    /// Signers of shim (Microsoft's, then ours), one "subject" each.
    pub shim_signers: Vec<String>,
    /// Debian's signed GRUB package version: GRUB chainloads the UKI.
    pub grub_version: String,
    /// Signers of GRUB (Debian's key, which shim trusts).
    pub grub_signers: Vec<String>,
    /// Signers of MokManager (Debian's key, which shim trusts).
    pub mok_manager_signers: Vec<String>,
    /// Subject of the certificate built into shim (shim trusts what it signed).
    pub shim_vendor_certificate: String,
    /// Path on the ESP of our db certificate (DER) for the one-time enrolment.
    pub mok_certificate: String,
}
