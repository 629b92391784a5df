//! The boot status: what the kiosk found, judged, and printed as one console line.

use crate::boot::refusal::{Refusal, RefusalKind};
use serde::Serialize;

use crate::boot::boot_trust::{judge_trust, BootTrust};
use crate::boot::cmdline::cmdline_difference;
use crate::boot::esp::{ManifestCheck, SignatureState};
use crate::boot::policy::{judge, SecureBootState, NO_IOMMU_WARNING};
use stick_manifest::KioskPolicy;

/// State of the device-mapper device `root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerityState {
    /// A verity target that has seen no corrupted block.
    Active,
    /// A verity target that has read a block not matching the hash tree.
    Corrupted,
    /// No device `root`, or not a verity target.
    Missing,
}

/// How `/` is built on the verity device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootLayout {
    /// `/` is the verity-backed filesystem.
    Direct,
    /// `/` is an overlay with the verity-backed filesystem as its only lower layer.
    Overlay,
    /// `/` is not (provably) backed by the verity device.
    NotVerity,
}

/// The verity-backed root filesystem as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCheck {
    pub layout: RootLayout,
    pub read_only: bool,
    pub fs_type: Option<String>,
}

/// Everything gathered at boot, before judging it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observations {
    /// `/proc/cmdline` as read; `None` if unreadable.
    pub cmdline: Option<String>,
    pub cmdline_root_hash: Option<String>,
    pub dm_root_hash: Option<String>,
    pub verity: VerityState,
    pub root: RootCheck,
    pub manifest: ManifestCheck,
    pub secure_boot: SecureBootState,
    /// Which key trusted the UKI, and what else the PC trusts.
    pub boot_trust: BootTrust,
    pub lockdown: Option<String>,
    /// IOMMU units the kernel drives (`/sys/class/iommu`).
    pub iommu: Vec<String>,
    /// The admin's policy baked into the image; `None` if unreadable.
    pub policy: Option<KioskPolicy>,
}

/// The `"event":"status"` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub event: &'static str,
    pub ok: bool,
    pub cmdline_root_hash: Option<String>,
    pub dm_root_hash: Option<String>,
    pub verity: VerityState,
    pub root_read_only: bool,
    pub root_fs: Option<String>,
    pub root_layout: RootLayout,
    pub manifest_name: Option<String>,
    pub manifest_version: Option<String>,
    pub manifest_rollback_index: Option<u64>,
    pub signature: SignatureState,
    pub signature_detail: String,
    pub test_keys: Option<bool>,
    pub manifest_root_hash_matches: bool,
    /// The running kernel's command line is exactly the one the manifest signs.
    pub cmdline_signed: bool,
    pub secure_boot: SecureBootState,
    pub boot_trust: BootTrust,
    pub lockdown: Option<String>,
    /// IOMMU units translating devices' DMA; empty: none (a warning).
    pub iommu: Vec<String>,
    /// Why no session may start (empty when `ok`).
    pub refusals: Vec<Refusal>,
    /// Abnormal but allowed (e.g. Secure Boot off where the policy permits it).
    pub warnings: Vec<String>,
}

impl Status {
    /// Judges the observations: `ok` only when the kernel enforces verity on a
    /// read-only root, the manifest is genuine and all three root hashes agree.
    pub fn evaluate(obs: Observations) -> Status {
        let manifest = obs.manifest.manifest.as_ref();
        let manifest_root_hash_matches = match (manifest, &obs.cmdline_root_hash, &obs.dm_root_hash)
        {
            (Some(m), Some(cmdline), Some(dm)) => {
                let signed = m.verity.root_hash.to_ascii_lowercase();
                !signed.is_empty() && signed == *cmdline && signed == *dm
            }
            _ => false,
        };
        let mut refusals = Vec::new();
        if obs.verity != VerityState::Active {
            refusals.push(Refusal::new(
                RefusalKind::Image,
                format!("dm-verity on the root is {:?}", obs.verity).to_lowercase(),
            ));
        }
        if obs.root.layout == RootLayout::NotVerity || !obs.root.read_only {
            refusals.push(Refusal::new(
                RefusalKind::Image,
                "the root filesystem is not the read-only verity device",
            ));
        }
        if obs.manifest.signature != SignatureState::Valid {
            refusals.push(Refusal::new(
                RefusalKind::Image,
                format!(
                    "manifest signature {:?}: {}",
                    obs.manifest.signature, obs.manifest.detail
                )
                .to_lowercase(),
            ));
        } else if !manifest_root_hash_matches {
            refusals.push(Refusal::new(
                RefusalKind::Image,
                "root hashes of cmdline, dm table and manifest differ",
            ));
        }
        let cmdline_difference = match (manifest, &obs.cmdline) {
            (Some(m), Some(running)) => cmdline_difference(running, &m.cmdline),
            (Some(_), None) => Some("the running command line is unreadable".to_string()),
            (None, _) => Some("no signed manifest to compare with".to_string()),
        };
        if let (Some(diff), Some(_)) = (&cmdline_difference, manifest) {
            refusals.push(Refusal::new(
                RefusalKind::Cmdline,
                format!("the kernel command line differs from the signed one: {diff}"),
            ));
        }
        let judgement = judge(
            obs.policy.as_ref(),
            obs.secure_boot,
            manifest.map(|m| m.rollback_index),
        );
        refusals.extend(judgement.refusals);
        let (trust_refusals, trust_warnings) = judge_trust(
            &obs.boot_trust,
            obs.policy.as_ref().and_then(|p| p.boot_trust.as_ref()),
        );
        refusals.extend(trust_refusals);
        let ok = refusals.is_empty();
        Status {
            event: "status",
            ok,
            manifest_name: manifest.map(|m| m.name.clone()),
            manifest_version: manifest.map(|m| m.version.clone()),
            manifest_rollback_index: manifest.map(|m| m.rollback_index),
            test_keys: manifest.map(|m| m.test_keys),
            cmdline_root_hash: obs.cmdline_root_hash,
            dm_root_hash: obs.dm_root_hash,
            verity: obs.verity,
            root_read_only: obs.root.read_only,
            root_fs: obs.root.fs_type,
            root_layout: obs.root.layout,
            signature: obs.manifest.signature,
            signature_detail: obs.manifest.detail,
            manifest_root_hash_matches,
            cmdline_signed: cmdline_difference.is_none(),
            secure_boot: obs.secure_boot,
            boot_trust: obs.boot_trust,
            lockdown: obs.lockdown,
            warnings: judgement
                .warnings
                .into_iter()
                .chain(trust_warnings)
                .chain(obs.iommu.is_empty().then(|| NO_IOMMU_WARNING.to_string()))
                .collect(),
            iommu: obs.iommu,
            refusals,
        }
    }

    /// `@kiosk@ {...}`: one line, compact JSON.
    pub fn console_line(&self) -> String {
        crate::console::console_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stick_manifest::{Manifest, VerityInfo};

    const HASH: &str = "5d3bd1a4f2b8c0e9a7d6c5b4a3928170f6e5d4c3b2a19081726354453627180f";
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn manifest(root_hash: &str) -> Manifest {
        Manifest {
            format: stick_manifest::FORMAT,
            name: "conference-stick".into(),
            version: "1.2.0".into(),
            rollback_index: 4,
            build_time: 1_700_000_000,
            test_keys: true,
            verity: VerityInfo {
                root_hash: root_hash.into(),
                salt: "cd".repeat(32),
                hash_algorithm: "sha256".into(),
                data_block_size: 4096,
                hash_block_size: 4096,
            },
            cmdline: format!("roothash={root_hash}"),
            partitions: vec![],
            esp_files: vec![],
            packages: vec![],
            kernel_version: "6.12.48+deb13-amd64".into(),
            builder_version: "0.1.0".into(),
            config_sha256: "00".repeat(32),
            kernel_filesystems: vec![],
            firmware: vec![],
            uki_signer: None,
            shim: None,
            test_fake_capture: false,
            personal_credential: None,
            personal_user: false,
            wifi: false,
        }
    }

    fn good() -> Observations {
        Observations {
            cmdline: Some(format!("roothash={HASH}\n")),
            cmdline_root_hash: Some(HASH.into()),
            dm_root_hash: Some(HASH.into()),
            verity: VerityState::Active,
            root: RootCheck {
                layout: RootLayout::Overlay,
                read_only: true,
                fs_type: Some("squashfs".into()),
            },
            manifest: ManifestCheck {
                signature: SignatureState::Valid,
                detail: "signed by the image's manifest key (TEST key)".into(),
                manifest: Some(manifest(HASH)),
            },
            secure_boot: SecureBootState::Enabled,
            boot_trust: crate::boot::boot_trust::BootTrust {
                path: crate::boot::boot_trust::TrustPath::FirmwareDb,
                db_entries: 1,
                shim: false,
                shim_verifies: true,
                shim_vendor_key: false,
                other_moks: 0,
            },
            lockdown: Some("integrity".into()),
            iommu: vec!["dmar0".into()],
            policy: Some(KioskPolicy {
                require_secure_boot: true,
                min_rollback_index: 4,
                language: stick_manifest::Language::De,
                network: None,
                session: None,
                boot_trust: None,
            }),
        }
    }

    #[test]
    fn good_boot_line_is_exact() {
        assert_eq!(
            Status::evaluate(good()).console_line(),
            format!(
                // The expected line, one whole literal per source line (no `\` continuations).
                concat!(
                    "@kiosk@ {{\"event\":\"status\",\"ok\":true,\"cmdline_root_hash\":\"{HASH}\",",
                    "\"dm_root_hash\":\"{HASH}\",\"verity\":\"active\",\"root_read_only\":true,",
                    "\"root_fs\":\"squashfs\",\"root_layout\":\"overlay\",",
                    "\"manifest_name\":\"conference-stick\",\"manifest_version\":\"1.2.0\",",
                    "\"manifest_rollback_index\":4,\"signature\":\"valid\",",
                    "\"signature_detail\":\"signed by the image's manifest key (TEST key)\",",
                    "\"test_keys\":true,\"manifest_root_hash_matches\":true,",
                    "\"cmdline_signed\":true,\"secure_boot\":\"enabled\",",
                    "\"boot_trust\":{{\"path\":\"firmware-db\",\"db_entries\":1,\"shim\":false,",
                    "\"shim_verifies\":true,\"shim_vendor_key\":false,\"other_moks\":0}},",
                    "\"lockdown\":\"integrity\",",
                    "\"iommu\":[\"dmar0\"],\"refusals\":[],\"warnings\":[]}}"
                ),
                HASH = HASH
            )
        );
    }

    #[test]
    fn no_iommu_is_a_warning_not_a_refusal() {
        let mut obs = good();
        obs.iommu.clear();
        let status = Status::evaluate(obs);
        assert!(status.ok, "{status:?}");
        assert_eq!(status.warnings, [NO_IOMMU_WARNING]);
        assert!(Status::evaluate(good()).warnings.is_empty());
    }

    #[test]
    fn every_failure_clears_ok() {
        type Change = fn(&mut Observations);
        let cases: &[(&str, Change, bool)] = &[
            ("good", |_| {}, true),
            (
                "verity corrupted",
                |o| o.verity = VerityState::Corrupted,
                true,
            ),
            ("verity missing", |o| o.verity = VerityState::Missing, true),
            ("root writable", |o| o.root.read_only = false, true),
            (
                "root not on verity",
                |o| o.root.layout = RootLayout::NotVerity,
                true,
            ),
            (
                "cmdline hash differs",
                |o| o.cmdline_root_hash = Some(OTHER.into()),
                false,
            ),
            ("cmdline hash absent", |o| o.cmdline_root_hash = None, false),
            (
                "dm hash differs",
                |o| o.dm_root_hash = Some(OTHER.into()),
                false,
            ),
            (
                "manifest hash differs",
                |o| o.manifest.manifest = Some(manifest(OTHER)),
                false,
            ),
            (
                "secure boot off, required",
                |o| o.secure_boot = SecureBootState::Disabled,
                true,
            ),
            (
                "rollback index below minimum",
                |o| {
                    o.policy = Some(KioskPolicy {
                        require_secure_boot: true,
                        min_rollback_index: 5,
                        language: stick_manifest::Language::De,
                        network: None,
                        session: None,
                        boot_trust: None,
                    })
                },
                true,
            ),
            ("no policy", |o| o.policy = None, true),
            (
                "cmdline changed by a loader",
                |o| o.cmdline = Some(format!("roothash={HASH} rd.shell=1")),
                true,
            ),
            ("cmdline unreadable", |o| o.cmdline = None, true),
            (
                "signature invalid",
                |o| {
                    o.manifest = ManifestCheck {
                        signature: SignatureState::Invalid,
                        detail: "signature does not verify".into(),
                        manifest: None,
                    }
                },
                false,
            ),
        ];
        for (name, change, hashes_match) in cases {
            let mut obs = good();
            change(&mut obs);
            let status = Status::evaluate(obs);
            assert_eq!(status.ok, *name == "good", "{name}: ok");
            assert_eq!(
                status.refusals.is_empty(),
                *name == "good",
                "{name}: {:?}",
                status.refusals
            );
            assert_eq!(
                status.manifest_root_hash_matches, *hashes_match,
                "{name}: hashes"
            );
        }
    }

    #[test]
    fn a_changed_cmdline_is_named() {
        let mut obs = good();
        obs.cmdline = Some(format!("roothash={HASH} init=/bin/sh"));
        let status = Status::evaluate(obs);
        assert!(!status.cmdline_signed);
        assert_eq!(
            status.refusals,
            vec!["the kernel command line differs from the signed one: added `init=/bin/sh`"]
        );
    }

    #[test]
    fn unverified_manifest_fields_are_null() {
        let mut obs = good();
        obs.manifest = ManifestCheck {
            signature: SignatureState::Missing,
            detail: "manifest.json not found on the ESP".into(),
            manifest: None,
        };
        obs.dm_root_hash = None;
        let line = Status::evaluate(obs).console_line();
        for field in [
            "\"dm_root_hash\":null",
            "\"manifest_name\":null",
            "\"manifest_version\":null",
            "\"manifest_rollback_index\":null",
            "\"test_keys\":null",
            "\"signature\":\"missing\"",
            "\"manifest_root_hash_matches\":false",
            "\"ok\":false",
        ] {
            assert!(line.contains(field), "{field} in {line}");
        }
        assert!(!line.contains('\n'));
    }
}
