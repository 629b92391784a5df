//! Minimal PE/COFF reader for UKIs: find a section (`.cmdline`, `.osrel`, ...) by
//! name. Bounds-checked: hostile input gives an error, never a panic.

/// Why a file could not be read as PE/COFF.
#[derive(Debug, thiserror::Error)]
pub enum PeError {
    /// A signature is missing: this is not a PE file at all.
    #[error("not a PE file: {0}")]
    NotPe(&'static str),
    /// A header or section points past the end of the file.
    #[error("PE file truncated: {0}")]
    Truncated(&'static str),
}

const DOS_MAGIC: &[u8; 2] = b"MZ";
/// Where the DOS header keeps the offset of the PE signature (`e_lfanew`).
const PE_OFFSET_FIELD: usize = 0x3c;
const PE_SIGNATURE: &[u8; 4] = b"PE\0\0";
const COFF_HEADER_SIZE: usize = 20;
/// COFF header fields, relative to its start.
const COFF_SECTION_COUNT: usize = 2;
const COFF_SYMBOL_TABLE: usize = 8;
const COFF_SYMBOL_COUNT: usize = 12;
/// A COFF symbol table entry; the string table follows the last one.
const COFF_SYMBOL_SIZE: usize = 18;
const COFF_OPTIONAL_HEADER_SIZE: usize = 16;
const SECTION_HEADER_SIZE: usize = 40;
const SECTION_NAME_SIZE: usize = 8;
/// Section header fields, relative to its start.
const SECTION_VIRTUAL_SIZE: usize = 8;
const SECTION_RAW_SIZE: usize = 16;
const SECTION_RAW_OFFSET: usize = 20;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

struct SectionHeader {
    name: String,
    virtual_size: u32,
    raw_size: u32,
    raw_offset: u32,
}

fn section_headers(bytes: &[u8]) -> Result<Vec<SectionHeader>, PeError> {
    if bytes.get(0..DOS_MAGIC.len()) != Some(DOS_MAGIC) {
        return Err(PeError::NotPe("no MZ header"));
    }
    let pe = u32_at(bytes, PE_OFFSET_FIELD).ok_or(PeError::Truncated("DOS header"))? as usize;
    if bytes.get(pe..pe.saturating_add(PE_SIGNATURE.len())) != Some(PE_SIGNATURE) {
        return Err(PeError::NotPe("no PE signature"));
    }
    // `pe` is at most u32::MAX, so these sums cannot overflow a 64-bit usize.
    let coff = pe + PE_SIGNATURE.len();
    let count =
        u16_at(bytes, coff + COFF_SECTION_COUNT).ok_or(PeError::Truncated("COFF header"))? as usize;
    let optional_size = u16_at(bytes, coff + COFF_OPTIONAL_HEADER_SIZE)
        .ok_or(PeError::Truncated("COFF header"))? as usize;
    let table = coff + COFF_HEADER_SIZE + optional_size;
    // Names longer than eight bytes (`.vendor_cert`) are `/OFFSET` into the
    // COFF string table, as GNU ld writes them.
    let strings = u32_at(bytes, coff + COFF_SYMBOL_TABLE)
        .zip(u32_at(bytes, coff + COFF_SYMBOL_COUNT))
        .map(|(at, n)| at as usize + n as usize * COFF_SYMBOL_SIZE);
    (0..count)
        .map(|i| {
            let at = table + i * SECTION_HEADER_SIZE;
            let raw = bytes
                .get(at..at + SECTION_HEADER_SIZE)
                .ok_or(PeError::Truncated("section table"))?;
            let name = &raw[..SECTION_NAME_SIZE];
            let name_end = name
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(SECTION_NAME_SIZE);
            let field = |at| u32_at(raw, at).ok_or(PeError::Truncated("section header"));
            let short = String::from_utf8_lossy(&name[..name_end]).into_owned();
            Ok(SectionHeader {
                name: long_name(bytes, strings, &short).unwrap_or(short),
                virtual_size: field(SECTION_VIRTUAL_SIZE)?,
                raw_size: field(SECTION_RAW_SIZE)?,
                raw_offset: field(SECTION_RAW_OFFSET)?,
            })
        })
        .collect()
}

/// The string table entry a `/OFFSET` section name points to.
fn long_name(bytes: &[u8], strings: Option<usize>, short: &str) -> Option<String> {
    let offset: usize = short.strip_prefix('/')?.parse().ok()?;
    let start = strings?.checked_add(offset)?;
    let rest = bytes.get(start..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Names of all sections in order.
pub fn section_names(bytes: &[u8]) -> Result<Vec<String>, PeError> {
    Ok(section_headers(bytes)?
        .into_iter()
        .map(|s| s.name)
        .collect())
}

/// The data of the first section called `name`, trimmed to
/// min(VirtualSize, SizeOfRawData) (the file alignment padding, or the part of
/// a zero-filled tail the file does not hold); `None` if there is no such section.
pub fn section<'a>(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, PeError> {
    let Some(header) = section_headers(bytes)?.into_iter().find(|s| s.name == name) else {
        return Ok(None);
    };
    let len = header.virtual_size.min(header.raw_size) as usize;
    let start = header.raw_offset as usize;
    bytes
        .get(start..start.saturating_add(len))
        .map(Some)
        .ok_or(PeError::Truncated("section data"))
}

/// PE files for unit tests, here and in modules that read PE sections.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::SECTION_HEADER_SIZE;

    /// A tiny PE with the given sections, laid out the way linkers do; names
    /// longer than eight bytes go into a COFF string table after the data.
    pub(crate) fn pe_with(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let pe_offset = 0x40usize;
        let optional_size = 0xf0usize;
        let table = pe_offset + 4 + 20 + optional_size;
        let mut data_at = table + sections.len() * SECTION_HEADER_SIZE;
        let mut bytes = vec![0u8; data_at];
        bytes[0..2].copy_from_slice(b"MZ");
        bytes[0x3c..0x40].copy_from_slice(&(pe_offset as u32).to_le_bytes());
        bytes[pe_offset..pe_offset + 4].copy_from_slice(b"PE\0\0");
        bytes[pe_offset + 6..pe_offset + 8].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        bytes[pe_offset + 20..pe_offset + 22]
            .copy_from_slice(&(optional_size as u16).to_le_bytes());
        // The string table's first four bytes are its size, counted in offsets.
        let mut strings = vec![0u8; 4];
        for (i, (name, data)) in sections.iter().enumerate() {
            let h = table + i * SECTION_HEADER_SIZE;
            let short = if name.len() > 8 {
                let offset = strings.len();
                strings.extend_from_slice(name.as_bytes());
                strings.push(0);
                format!("/{offset}")
            } else {
                name.to_string()
            };
            bytes[h..h + short.len()].copy_from_slice(short.as_bytes());
            bytes[h + 8..h + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
            let raw_size = data.len().div_ceil(512) * 512;
            bytes[h + 16..h + 20].copy_from_slice(&(raw_size as u32).to_le_bytes());
            bytes[h + 20..h + 24].copy_from_slice(&(data_at as u32).to_le_bytes());
            bytes.resize(data_at + raw_size, 0);
            bytes[data_at..data_at + data.len()].copy_from_slice(data);
            data_at += raw_size;
        }
        if strings.len() > 4 {
            bytes[pe_offset + 12..pe_offset + 16].copy_from_slice(&(data_at as u32).to_le_bytes());
            bytes.extend_from_slice(&strings);
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::tests_support::pe_with as make_pe;

    #[test]
    fn finds_sections_by_name() {
        let pe = make_pe(&[
            (".text", b"code"),
            (".osrel", b"ID=debian\n"),
            (".cmdline", b"roothash=ab ro"),
        ]);
        assert_eq!(
            section_names(&pe).expect("parses"),
            vec![".text", ".osrel", ".cmdline"]
        );
        let cases: &[(&str, Option<&[u8]>)] = &[
            (".cmdline", Some(b"roothash=ab ro")),
            (".osrel", Some(b"ID=debian\n")),
            (".initrd", None),
        ];
        for (name, want) in cases {
            assert_eq!(section(&pe, name).expect("parses"), *want, "{name}");
        }
    }

    #[test]
    fn long_names_come_from_the_string_table() {
        let pe = make_pe(&[(".vendor_cert", b"cert"), ("/99", b"x"), (".sbat", b"s")]);
        assert_eq!(
            section_names(&pe).expect("parses"),
            vec![".vendor_cert", "/99", ".sbat"],
            "an offset past the table keeps its short name"
        );
        assert_eq!(
            section(&pe, ".vendor_cert").expect("parses"),
            Some(&b"cert"[..])
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let pe = make_pe(&[(".cmdline", b"x")]);
        let mut bad_offset = pe.clone();
        bad_offset[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut bad_data = pe.clone();
        let h = 0x40 + 4 + 20 + 0xf0;
        bad_data[h + 20..h + 24].copy_from_slice(&u32::MAX.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("garbage", vec![0x55; 300]),
            ("truncated header", pe[..0x50].to_vec()),
            ("truncated table", pe[..h + 10].to_vec()),
            ("pe offset out of range", bad_offset),
            ("section data out of range", bad_data),
        ];
        for (name, bytes) in cases {
            assert!(section(&bytes, ".cmdline").is_err(), "{name}");
        }
    }

    #[test]
    fn data_is_trimmed_to_the_smaller_of_virtual_and_raw_size() {
        let pe = make_pe(&[(".osrel", b"ID=debian\n"), (".bss", b"z")]);
        let h = 0x40 + 4 + 20 + 0xf0 + SECTION_HEADER_SIZE;
        let mut virtual_larger = pe.clone();
        // A 4 KiB zero-filled section of which the file holds 512 bytes.
        virtual_larger[h + 8..h + 12].copy_from_slice(&4096u32.to_le_bytes());
        let bss = section(&virtual_larger, ".bss")
            .expect("parses")
            .expect(".bss");
        assert_eq!(bss.len(), 512);
        assert_eq!(bss[0], b'z');
    }

    #[test]
    fn every_truncation_is_an_error_or_a_clean_miss() {
        let pe = make_pe(&[(".osrel", b"ID=debian\n"), (".cmdline", b"ro")]);
        for len in 0..pe.len() {
            let cut = &pe[..len];
            // Must not panic; the data, when found, must be inside `cut`.
            if let Ok(Some(data)) = section(cut, ".cmdline") {
                assert_eq!(data, b"ro", "cut at {len}");
            }
            let _ = section_names(cut);
        }
        // Flipping every byte in turn must not panic either.
        for at in 0..pe.len() {
            let mut bad = pe.clone();
            bad[at] ^= 0xff;
            let _ = section(&bad, ".cmdline");
        }
    }
}
