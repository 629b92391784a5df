//! Platform state the kiosk judges before any session: UEFI Secure Boot, kernel
//! lockdown, the IOMMU that keeps devices' DMA out of memory, and the admin's
//! policy (Secure Boot required, minimum rollback index).

use crate::boot::refusal::{Refusal, RefusalKind};
use serde::Serialize;
use stick_manifest::KioskPolicy;

/// `SecureBoot` and `SetupMode` (EFI global variable GUID) in efivarfs.
pub const SECURE_BOOT_VAR: &str =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
pub const SETUP_MODE_VAR: &str =
    "/sys/firmware/efi/efivars/SetupMode-8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// The kernel's lockdown mode, e.g. `none [integrity] confidentiality`.
pub const LOCKDOWN_FILE: &str = "/sys/kernel/security/lockdown";

/// The IOMMU units the kernel drives (`dmar0` on Intel, `ivhd0` on AMD): with one,
/// every device's DMA goes through translation (the signed cmdline asks for it to
/// be on and strict).
pub const IOMMU_CLASS_DIR: &str = "/sys/class/iommu";

/// Warning when no IOMMU is active.
pub const NO_IOMMU_WARNING: &str = "no IOMMU is active (none in the PC, or off in its firmware): \
     a device with DMA access could read the memory, the conference included";

/// UEFI Secure Boot as the firmware reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureBootState {
    /// Enforcing: the firmware verified what it booted.
    Enabled,
    /// Off: anything boots.
    Disabled,
    /// No keys enrolled (setup mode): nothing is verified.
    SetupMode,
    /// Not booted through UEFI, or the variables are unreadable.
    Unknown,
}

/// The one-byte boolean value of an efivarfs file (4-byte attributes first).
pub fn parse_efi_bool(raw: &[u8]) -> Option<bool> {
    match raw {
        [_, _, _, _, value] => Some(*value == 1),
        _ => None,
    }
}

/// Secure Boot from the raw `SecureBoot` and `SetupMode` variables.
pub fn secure_boot_state(secure_boot: Option<&[u8]>, setup_mode: Option<&[u8]>) -> SecureBootState {
    match (
        secure_boot.and_then(parse_efi_bool),
        setup_mode.and_then(parse_efi_bool),
    ) {
        (Some(true), _) => SecureBootState::Enabled,
        (Some(false), Some(true)) => SecureBootState::SetupMode,
        (Some(false), _) => SecureBootState::Disabled,
        (None, _) => SecureBootState::Unknown,
    }
}

/// The active mode in `/sys/kernel/security/lockdown` (the bracketed word).
pub fn parse_lockdown(text: &str) -> Option<String> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
        .map(str::to_string)
}

/// What the policy says about this boot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Judgement {
    /// Reasons no session may start; empty = allowed.
    pub refusals: Vec<Refusal>,
    /// Abnormal but allowed.
    pub warnings: Vec<String>,
}

/// Applies `policy` to the platform state and the (verified) manifest's rollback
/// index. A missing policy or manifest is a refusal: the kiosk fails closed.
pub fn judge(
    policy: Option<&KioskPolicy>,
    secure_boot: SecureBootState,
    rollback_index: Option<u64>,
) -> Judgement {
    let mut judgement = Judgement::default();
    let Some(policy) = policy else {
        judgement.refusals.push(Refusal::new(
            RefusalKind::Image,
            "the image has no kiosk policy: refusing to guess",
        ));
        return judgement;
    };
    if secure_boot != SecureBootState::Enabled {
        let what = match secure_boot {
            SecureBootState::Disabled => "UEFI Secure Boot is off",
            SecureBootState::SetupMode => "UEFI Secure Boot is in setup mode (no keys enrolled)",
            SecureBootState::Unknown => "UEFI Secure Boot state is unknown",
            SecureBootState::Enabled => unreachable!("checked above"),
        };
        if policy.require_secure_boot {
            judgement.refusals.push(Refusal::new(
                RefusalKind::SecureBoot,
                format!("{what} and this image requires it (require-secure-boot = true)"),
            ));
        } else {
            judgement.warnings.push(format!(
                "{what}: the boot chain was not verified by the firmware"
            ));
        }
    }
    match rollback_index {
        Some(index) if index < policy.min_rollback_index => judgement.refusals.push(Refusal::new(
            RefusalKind::Outdated,
            format!(
                "image rollback index {index} is below the minimum {}: an outdated image",
                policy.min_rollback_index
            ),
        )),
        Some(_) => {}
        None => judgement.refusals.push(Refusal::new(
            RefusalKind::Image,
            "no verified manifest, so no rollback index to check",
        )),
    }
    judgement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn efi_booleans_and_secure_boot_state() {
        let on: &[u8] = &[6, 0, 0, 0, 1];
        let off: &[u8] = &[6, 0, 0, 0, 0];
        type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, SecureBootState);
        let cases: &[Case] = &[
            (Some(on), Some(off), SecureBootState::Enabled),
            (Some(off), Some(off), SecureBootState::Disabled),
            (Some(off), Some(on), SecureBootState::SetupMode),
            (Some(off), None, SecureBootState::Disabled),
            (None, None, SecureBootState::Unknown),
            (Some(&[6, 0, 0]), None, SecureBootState::Unknown),
        ];
        for (sb, setup, want) in cases {
            assert_eq!(secure_boot_state(*sb, *setup), *want, "{sb:?} {setup:?}");
        }
    }

    #[test]
    fn lockdown_mode_is_the_bracketed_word() {
        let cases = [
            ("none [integrity] confidentiality\n", Some("integrity")),
            ("[none] integrity confidentiality\n", Some("none")),
            ("none integrity [confidentiality]", Some("confidentiality")),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_lockdown(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn policy_refuses_or_warns() {
        let strict = KioskPolicy {
            require_secure_boot: true,
            min_rollback_index: 3,
            language: stick_manifest::Language::De,
            network: None,
            session: None,
            boot_trust: None,
        };
        let lax = KioskPolicy {
            require_secure_boot: false,
            min_rollback_index: 0,
            language: stick_manifest::Language::De,
            network: None,
            session: None,
            boot_trust: None,
        };
        // (name, policy, secure boot, rollback index, refusals, warnings)
        // (name, policy, secure boot, rollback index, refusals, warnings)
        type Case<'a> = (
            &'a str,
            Option<&'a KioskPolicy>,
            SecureBootState,
            Option<u64>,
            usize,
            usize,
        );
        let cases: &[Case] = &[
            (
                "all good",
                Some(&strict),
                SecureBootState::Enabled,
                Some(3),
                0,
                0,
            ),
            (
                "rollback below minimum",
                Some(&strict),
                SecureBootState::Enabled,
                Some(2),
                1,
                0,
            ),
            (
                "secure boot off, required",
                Some(&strict),
                SecureBootState::Disabled,
                Some(5),
                1,
                0,
            ),
            (
                "setup mode, required",
                Some(&strict),
                SecureBootState::SetupMode,
                Some(5),
                1,
                0,
            ),
            (
                "both wrong",
                Some(&strict),
                SecureBootState::Unknown,
                Some(0),
                2,
                0,
            ),
            (
                "secure boot off, not required",
                Some(&lax),
                SecureBootState::Disabled,
                Some(0),
                0,
                1,
            ),
            (
                "no manifest",
                Some(&lax),
                SecureBootState::Enabled,
                None,
                1,
                0,
            ),
            ("no policy", None, SecureBootState::Enabled, Some(9), 1, 0),
        ];
        for (name, policy, sb, index, refusals, warnings) in cases {
            let j = judge(*policy, *sb, *index);
            assert_eq!(
                (j.refusals.len(), j.warnings.len()),
                (*refusals, *warnings),
                "{name}: {j:?}"
            );
        }
        let j = judge(Some(&strict), SecureBootState::Enabled, Some(2));
        assert_eq!(
            j.refusals,
            vec!["image rollback index 2 is below the minimum 3: an outdated image"]
        );
    }
}
