//! Why a boot is refused, by kind: the console line carries the reason's words,
//! the stick's screen the kind (its title, what to do, its helpdesk code).

use serde::{Serialize, Serializer};

/// What kind of problem stops the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The image is not the signed one: verity, the root, the manifest's signature
    /// or root hash, or no policy.
    Image,
    /// The kernel command line is not the signed one.
    Cmdline,
    /// The firmware did not verify the boot (Secure Boot off or in setup mode)
    /// where the image requires it.
    SecureBoot,
    /// The firmware verified the boot, but in a way `[kiosk] accept-mok` does not
    /// accept (shim's MOK list, other keys in it, shim not verifying).
    BootTrust,
    /// The image is older than the policy's minimum (rollback).
    Outdated,
    /// A disk of the PC could not be locked.
    Storage,
}

/// One reason no session may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub reason: String,
}

impl Refusal {
    pub fn new(kind: RefusalKind, reason: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The status line keeps its shape: each refusal is its reason's words.
impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.reason)
    }
}

impl PartialEq<&str> for Refusal {
    fn eq(&self, other: &&str) -> bool {
        self.reason == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_its_reason_on_the_console() {
        let refusal = Refusal::new(RefusalKind::Outdated, "image rollback index 2 is below 3");
        assert_eq!(
            serde_json::to_string(&vec![refusal.clone()]).expect("json"),
            r#"["image rollback index 2 is below 3"]"#
        );
        assert_eq!(refusal.to_string(), "image rollback index 2 is below 3");
    }
}
