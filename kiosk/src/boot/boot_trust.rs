//! Which key trusted the UKI, and what else the PC trusts: the firmware's db
//! (the organisation's key enrolled on a managed PC), or shim's MOK list (our
//! certificate enrolled once through MokManager on a PC with Microsoft's keys).
//!
//! Shim checks the firmware's db before its MOK list, so the UKI counts as
//! trusted by the db whenever our certificate is there. Shim publishes its MOK
//! list (its own vendor key first, then the enrolled keys) as `MokListRT`, and
//! `MokSBStateRT` when someone turned its verification off.

use serde::Serialize;
use sha2::{Digest, Sha256};
use stick_manifest::boot_trust::{AcceptMok, BootTrustPolicy};

use crate::boot::policy::SecureBootState;
use crate::boot::refusal::{Refusal, RefusalKind};

const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// EFI_IMAGE_SECURITY_DATABASE_GUID: `db`.
const DB_VAR: &str = "db-d719b2cb-3d3a-4596-a3bc-dad00e67656f";
/// Shim's variables (SHIM_LOCK_GUID).
const SHIM_GUID: &str = "605dab50-e046-4300-abb6-3dd810dd8b23";
/// Where the kernel shows shim's configuration tables (the whole MOK list, also
/// when it is too large for one variable); no attribute bytes in front.
const MOK_TABLES: &str = "/sys/firmware/efi/mok-variables";

/// EFI_CERT_X509_GUID (a5c059a1-94e4-4aa7-87b5-ab155c2bf072) as stored.
const CERT_X509: [u8; 16] = [
    0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72,
];
/// EFI_SIGNATURE_LIST header: type GUID, list size, header size, entry size.
const LIST_HEADER: usize = 28;
/// Each entry starts with its owner's GUID.
const OWNER_GUID: usize = 16;

/// One entry of an EFI signature database: a certificate (by the sha256 of its
/// DER bytes) or something else (a hash of one binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureEntry {
    Certificate { sha256: String },
    Other,
}

/// The entries of a sequence of EFI_SIGNATURE_LISTs (a variable's data without
/// its attribute bytes); `None` when the bytes do not parse.
pub fn parse_signature_lists(mut data: &[u8]) -> Option<Vec<SignatureEntry>> {
    let mut entries = Vec::new();
    while !data.is_empty() {
        let u32_at = |at: usize| -> Option<usize> {
            Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize)
        };
        let kind = data.get(..16)?;
        let (list_size, header_size, entry_size) = (u32_at(16)?, u32_at(20)?, u32_at(24)?);
        let body_start = LIST_HEADER.checked_add(header_size)?;
        if list_size < body_start || entry_size <= OWNER_GUID || list_size > data.len() {
            return None;
        }
        let body = &data[body_start..list_size];
        if !body.len().is_multiple_of(entry_size) {
            return None;
        }
        for entry in body.chunks(entry_size) {
            entries.push(if kind == CERT_X509 {
                SignatureEntry::Certificate {
                    sha256: hex::encode(Sha256::digest(&entry[OWNER_GUID..])),
                }
            } else {
                SignatureEntry::Other
            });
        }
        data = &data[list_size..];
    }
    Some(entries)
}

/// Which way the UKI was trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustPath {
    /// Our certificate is in the firmware's db.
    FirmwareDb,
    /// Our certificate is in shim's MOK list, not in the db.
    ShimMok,
    /// Secure Boot is off: nothing was verified.
    NotVerified,
    /// Neither list holds our certificate (an unsigned image, or a hash
    /// enrolled instead of our key).
    Unknown,
}

/// The trust path and the PC's other trust, as the status line reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootTrust {
    pub path: TrustPath,
    /// Entries of the firmware's db (certificates and hashes), ours included.
    pub db_entries: usize,
    /// Shim started the UKI (its MOK list is published).
    pub shim: bool,
    /// Shim verifies what it starts (nobody turned it off with `mokutil`).
    pub shim_verifies: bool,
    /// Shim trusts its built-in vendor key (Debian's), which signs Debian's
    /// kernels and boot loaders.
    pub shim_vendor_key: bool,
    /// Entries of the MOK list other than ours and shim's vendor key: shim
    /// would also start what they signed.
    pub other_moks: usize,
}

/// The raw variables, each without its attribute bytes; `None`: absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustVariables {
    pub db: Option<Vec<u8>>,
    pub mok_list: Option<Vec<u8>>,
    pub mok_sb_state: Option<Vec<u8>>,
}

impl TrustVariables {
    /// Reads them from efivarfs and shim's configuration tables.
    pub fn read() -> TrustVariables {
        let efivar = |name: &str| {
            std::fs::read(format!("{EFIVARS}/{name}"))
                .ok()
                .map(|raw| raw.get(4..).unwrap_or_default().to_vec())
        };
        let mok_list = std::fs::read(format!("{MOK_TABLES}/MokListRT"))
            .ok()
            .or_else(|| efivar(&format!("MokListRT-{SHIM_GUID}")));
        TrustVariables {
            db: efivar(DB_VAR),
            mok_list,
            mok_sb_state: efivar(&format!("MokSBStateRT-{SHIM_GUID}")),
        }
    }
}

/// Works out the trust path from the variables and our certificate's hash.
pub fn boot_trust(
    vars: &TrustVariables,
    secure_boot: SecureBootState,
    policy: Option<&BootTrustPolicy>,
) -> BootTrust {
    let parse = |raw: &Option<Vec<u8>>| {
        raw.as_deref()
            .and_then(parse_signature_lists)
            .unwrap_or_default()
    };
    let db = parse(&vars.db);
    let moks = parse(&vars.mok_list);
    let holds = |list: &[SignatureEntry], hash: Option<&str>| {
        hash.is_some_and(|hash| {
            list.iter()
                .any(|e| matches!(e, SignatureEntry::Certificate { sha256 } if sha256 == hash))
        })
    };
    let ours = policy.map(|p| p.uki_signer_sha256.as_str());
    let vendor = policy.and_then(|p| p.shim_vendor_sha256.as_deref());
    let path = if secure_boot != SecureBootState::Enabled {
        TrustPath::NotVerified
    } else if holds(&db, ours) {
        TrustPath::FirmwareDb
    } else if holds(&moks, ours) {
        TrustPath::ShimMok
    } else {
        TrustPath::Unknown
    };
    let other_moks = moks
        .iter()
        .filter(|e| match e {
            SignatureEntry::Certificate { sha256 } => {
                Some(sha256.as_str()) != ours && Some(sha256.as_str()) != vendor
            }
            SignatureEntry::Other => true,
        })
        .count();
    BootTrust {
        path,
        db_entries: db.len(),
        shim: vars.mok_list.is_some(),
        shim_verifies: vars.mok_sb_state.as_deref().and_then(|v| v.first()) != Some(&1),
        shim_vendor_key: holds(&moks, vendor),
        other_moks,
    }
}

/// What `[kiosk] accept-mok` says about this trust: refusals, warnings.
pub fn judge_trust(
    trust: &BootTrust,
    policy: Option<&BootTrustPolicy>,
) -> (Vec<Refusal>, Vec<String>) {
    let Some(policy) = policy else {
        return (vec![], vec![]);
    };
    let refuse = |reason: String| (vec![Refusal::new(RefusalKind::BootTrust, reason)], vec![]);
    // Shim with its verification off starts anything: then nothing after the
    // firmware was verified, whichever list holds our key.
    if trust.path != TrustPath::NotVerified && trust.shim && !trust.shim_verifies {
        return refuse(
            "shim's verification is turned off on this PC (MokSBState): it would start \
             anything, so nothing after the firmware was verified"
                .to_string(),
        );
    }
    match trust.path {
        TrustPath::FirmwareDb | TrustPath::NotVerified => (vec![], vec![]),
        TrustPath::Unknown => (
            vec![],
            vec![
                "neither the firmware's db nor shim's MOK list holds the key that signed \
                  this image: which key trusted it is unknown"
                    .to_string(),
            ],
        ),
        TrustPath::ShimMok => match policy.accept_mok {
            AcceptMok::Never => refuse(
                "the image was trusted through shim's MOK list, and this image accepts only \
                 the firmware's db (accept-mok = \"never\")"
                    .to_string(),
            ),
            AcceptMok::OnlyOurs if trust.other_moks > 0 => refuse(format!(
                "shim's MOK list on this PC holds {} other key(s) or hash(es), and this image \
                 accepts it only with ours alone (accept-mok = \"only-ours\")",
                trust.other_moks
            )),
            AcceptMok::OnlyOurs | AcceptMok::Any => (vec![], vec![]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &[u8] = b"our certificate";
    const VENDOR: &[u8] = b"debian certificate";
    const STRANGER: &[u8] = b"someone else's certificate";
    /// EFI_CERT_SHA256_GUID as stored: a hash entry, not a certificate.
    const HASH_TYPE: [u8; 16] = [
        0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40, 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43,
        0x28,
    ];

    fn list(kind: [u8; 16], entries: &[&[u8]]) -> Vec<u8> {
        let size = OWNER_GUID + entries[0].len();
        let mut out = kind.to_vec();
        for v in [LIST_HEADER + size * entries.len(), 0, size] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for entry in entries {
            out.extend_from_slice(&[0x5e; OWNER_GUID]);
            out.extend_from_slice(entry);
        }
        out
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn policy(accept_mok: AcceptMok) -> BootTrustPolicy {
        BootTrustPolicy {
            uki_signer_sha256: sha(OURS),
            shim_vendor_sha256: Some(sha(VENDOR)),
            accept_mok,
        }
    }

    #[test]
    fn signature_lists_parse_and_bad_ones_do_not() {
        let two = [list(CERT_X509, &[OURS]), list(HASH_TYPE, &[&[7; 32]])].concat();
        assert_eq!(
            parse_signature_lists(&two),
            Some(vec![
                SignatureEntry::Certificate { sha256: sha(OURS) },
                SignatureEntry::Other
            ])
        );
        let good = list(CERT_X509, &[OURS]);
        let mut long = good.clone();
        long[16] += 1;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", good[..good.len() - 1].to_vec()),
            ("header only", good[..20].to_vec()),
            ("size past the end", long),
        ];
        for (name, bytes) in cases {
            assert_eq!(parse_signature_lists(&bytes), None, "{name}");
        }
        assert_eq!(parse_signature_lists(&[]), Some(vec![]));
    }

    #[test]
    fn the_trust_path_and_what_else_is_trusted() {
        let db_with_ours = [
            list(CERT_X509, &[b"microsoft ca"]),
            list(CERT_X509, &[OURS]),
        ]
        .concat();
        let db_microsoft = list(CERT_X509, &[b"microsoft ca"]);
        let moks_ours = [list(CERT_X509, &[VENDOR]), list(CERT_X509, &[OURS])].concat();
        let moks_more = [moks_ours.clone(), list(CERT_X509, &[STRANGER])].concat();
        type Case<'a> = (
            &'a str,
            TrustVariables,
            SecureBootState,
            TrustPath,
            usize,
            bool,
        );
        let vars = |db: &[u8], moks: Option<&[u8]>, off: bool| TrustVariables {
            db: Some(db.to_vec()),
            mok_list: moks.map(<[u8]>::to_vec),
            mok_sb_state: off.then(|| vec![1]),
        };
        let on = SecureBootState::Enabled;
        let cases: Vec<Case> = vec![
            (
                "own keys, no shim",
                vars(&db_with_ours, None, false),
                on,
                TrustPath::FirmwareDb,
                0,
                true,
            ),
            (
                "own keys, shim",
                vars(&db_with_ours, Some(&moks_ours), false),
                on,
                TrustPath::FirmwareDb,
                0,
                true,
            ),
            (
                "MOK",
                vars(&db_microsoft, Some(&moks_ours), false),
                on,
                TrustPath::ShimMok,
                0,
                true,
            ),
            (
                "MOK and a stranger",
                vars(&db_microsoft, Some(&moks_more), false),
                on,
                TrustPath::ShimMok,
                1,
                true,
            ),
            (
                "MOK, shim not verifying",
                vars(&db_microsoft, Some(&moks_ours), true),
                on,
                TrustPath::ShimMok,
                0,
                false,
            ),
            (
                "neither",
                vars(&db_microsoft, Some(&[]), false),
                on,
                TrustPath::Unknown,
                0,
                true,
            ),
            (
                "Secure Boot off",
                vars(&db_with_ours, None, false),
                SecureBootState::Disabled,
                TrustPath::NotVerified,
                0,
                true,
            ),
        ];
        let policy = policy(AcceptMok::OnlyOurs);
        for (name, vars, secure_boot, path, other_moks, verifies) in cases {
            let trust = boot_trust(&vars, secure_boot, Some(&policy));
            assert_eq!(trust.path, path, "{name}");
            assert_eq!(trust.other_moks, other_moks, "{name}");
            assert_eq!(trust.shim_verifies, verifies, "{name}");
            assert_eq!(trust.shim, vars.mok_list.is_some(), "{name}");
            assert_eq!(
                trust.shim_vendor_key,
                vars.mok_list.as_ref().is_some_and(|m| !m.is_empty()),
                "{name}"
            );
        }
    }

    #[test]
    fn accept_mok_decides() {
        let trust = |path, other_moks, shim_verifies| BootTrust {
            path,
            db_entries: 1,
            shim: true,
            shim_verifies,
            shim_vendor_key: true,
            other_moks,
        };
        use AcceptMok::*;
        use TrustPath::*;
        // (path, other MOKs, shim verifies, accept-mok, refused, warned)
        let cases = [
            (FirmwareDb, 3, true, Never, false, false),
            (FirmwareDb, 0, false, Never, true, false),
            (FirmwareDb, 0, false, Any, true, false),
            (ShimMok, 0, true, Never, true, false),
            (ShimMok, 0, true, OnlyOurs, false, false),
            (ShimMok, 1, true, OnlyOurs, true, false),
            (ShimMok, 1, true, Any, false, false),
            (ShimMok, 0, false, Any, true, false),
            (ShimMok, 0, false, OnlyOurs, true, false),
            (Unknown, 0, true, OnlyOurs, false, true),
            (NotVerified, 0, true, Never, false, false),
            (Unknown, 0, false, Any, true, false),
        ];
        for (path, others, verifies, accept, refused, warned) in cases {
            let (refusals, warnings) =
                judge_trust(&trust(path, others, verifies), Some(&policy(accept)));
            let case = format!("{path:?} others {others} verifies {verifies} {accept:?}");
            assert_eq!(!refusals.is_empty(), refused, "{case}: {refusals:?}");
            assert!(
                refusals.iter().all(|r| r.kind == RefusalKind::BootTrust),
                "{case}"
            );
            assert_eq!(!warnings.is_empty(), warned, "{case}");
        }
        let unsigned = judge_trust(&trust(ShimMok, 5, false), None);
        assert_eq!(
            unsigned,
            (vec![], vec![]),
            "an unsigned image has no key to look for"
        );
    }
}
