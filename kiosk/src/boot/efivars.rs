//! EFI variables that systemd-stub sets before it starts the kernel.

/// `LoaderDevicePartUUID` in efivarfs: the GPT partition UUID of the ESP the UKI was
/// loaded from (vendor GUID of the systemd boot loader interface).
pub const LOADER_DEVICE_PARTUUID_VAR: &str =
    "/sys/firmware/efi/efivars/LoaderDevicePartUUID-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// efivarfs files start with the variable's 32-bit attributes.
const ATTRIBUTES_LEN: usize = 4;

/// Why an efivarfs file does not hold a partition UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EfiVarError {
    #[error("variable is {0} bytes, shorter than its 4-byte attribute header")]
    TooShort(usize),
    #[error("value is an odd number of bytes, not UTF-16")]
    OddLength,
    #[error("value is not valid UTF-16")]
    NotUtf16,
    #[error("value `{0}` is not a UUID")]
    NotUuid(String),
}

/// The lower-cased partition UUID from the raw efivarfs contents of
/// `LoaderDevicePartUUID` (attributes, then a UTF-16LE string, usually upper case
/// and NUL-terminated).
pub fn parse_loader_partuuid(raw: &[u8]) -> Result<String, EfiVarError> {
    let value = raw
        .get(ATTRIBUTES_LEN..)
        .ok_or(EfiVarError::TooShort(raw.len()))?;
    let pairs = value.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return Err(EfiVarError::OddLength);
    }
    let units: Vec<u16> = pairs
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let text = String::from_utf16(&units).map_err(|_| EfiVarError::NotUtf16)?;
    let uuid = text.trim_end_matches('\0');
    if !is_uuid(uuid) {
        return Err(EfiVarError::NotUuid(uuid.to_string()));
    }
    Ok(uuid.to_ascii_lowercase())
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What efivarfs returns: attributes NV|BS|RT (0x7), then UTF-16LE with NUL.
    fn efivar(value: &str) -> Vec<u8> {
        let mut raw = 0x7u32.to_le_bytes().to_vec();
        raw.extend(value.encode_utf16().flat_map(u16::to_le_bytes));
        raw
    }

    #[test]
    fn loader_partuuid() {
        let good = efivar("C12A7328-F81F-11D2-BA4B-00A0C93EC93B\0");
        let no_nul = efivar("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        let mut odd = good.clone();
        odd.push(0);
        let mut surrogate = 0x7u32.to_le_bytes().to_vec();
        surrogate.extend([0x00, 0xd8, 0x41, 0x00]);
        let cases: Vec<(&str, Vec<u8>, Result<String, EfiVarError>)> = vec![
            (
                "as systemd-stub sets it",
                good,
                Ok("c12a7328-f81f-11d2-ba4b-00a0c93ec93b".into()),
            ),
            (
                "without NUL",
                no_nul,
                Ok("c12a7328-f81f-11d2-ba4b-00a0c93ec93b".into()),
            ),
            ("short", vec![7, 0], Err(EfiVarError::TooShort(2))),
            ("odd", odd, Err(EfiVarError::OddLength)),
            ("lone surrogate", surrogate, Err(EfiVarError::NotUtf16)),
            (
                "not a UUID",
                efivar("HD(1,GPT,...)\0"),
                Err(EfiVarError::NotUuid("HD(1,GPT,...)".into())),
            ),
            (
                "empty value",
                efivar(""),
                Err(EfiVarError::NotUuid(String::new())),
            ),
        ];
        for (name, raw, want) in cases {
            assert_eq!(parse_loader_partuuid(&raw), want, "{name}");
        }
    }
}
