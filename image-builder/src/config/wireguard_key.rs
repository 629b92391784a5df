//! WireGuard keys as `wg genkey` and `wg pubkey` print them: 32 bytes in base64.

use base64::Engine as _;

/// The 32 key bytes, or `None` when `text` is not a WireGuard key.
pub fn decode(text: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_only_32_byte_keys() {
        let cases: &[(&str, bool)] = &[
            ("HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", true),
            ("HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\n", true),
            ("HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8yk==", false),
            ("AAAA", false),
            ("not base64 at all!", false),
            ("", false),
        ];
        for (text, ok) in cases {
            assert_eq!(decode(text).is_some(), *ok, "{text:?}");
        }
    }
}
