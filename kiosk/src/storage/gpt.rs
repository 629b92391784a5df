//! Reads the partition UUIDs of a GPT disk, and nothing else. The disks read here
//! may be hostile, so every size and count is bounded before it is used.

use std::io::{Read, Seek, SeekFrom};

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The UEFI spec requires room for at least 128 entries; more than this is not a
/// table we need to understand.
const MAX_ENTRIES: u32 = 1024;
const MIN_ENTRY_SIZE: u32 = 128;
const MAX_ENTRY_SIZE: u32 = 4096;

/// Why a disk has no readable GPT (all of them mean: not the stick).
#[derive(Debug, thiserror::Error)]
pub enum GptProbeError {
    #[error("no GPT header (no `EFI PART` signature at LBA 1)")]
    NoSignature,
    #[error("GPT header field {field} = {value} is out of range")]
    OutOfRange { field: &'static str, value: u64 },
    #[error("reading the disk: {0}")]
    Io(#[from] std::io::Error),
}

/// The unique partition GUIDs (lower-case, as in `/dev/disk/by-partuuid`) of the
/// used entries of the primary GPT. `sector` is the logical block size.
pub fn partition_uuids<D: Read + Seek>(
    disk: &mut D,
    sector: u64,
) -> Result<Vec<String>, GptProbeError> {
    if !(512..=4096).contains(&sector) || !sector.is_power_of_two() {
        return Err(GptProbeError::OutOfRange {
            field: "logical block size",
            value: sector,
        });
    }
    let mut header = [0u8; 92];
    disk.seek(SeekFrom::Start(sector))?;
    disk.read_exact(&mut header)?;
    if &header[0..8] != SIGNATURE {
        return Err(GptProbeError::NoSignature);
    }
    let entries_lba = u64::from_le_bytes(header[72..80].try_into().expect("8 bytes"));
    let count = u32::from_le_bytes(header[80..84].try_into().expect("4 bytes"));
    let entry_size = u32::from_le_bytes(header[84..88].try_into().expect("4 bytes"));
    if count > MAX_ENTRIES {
        return Err(GptProbeError::OutOfRange {
            field: "number of partition entries",
            value: count.into(),
        });
    }
    if !(MIN_ENTRY_SIZE..=MAX_ENTRY_SIZE).contains(&entry_size) || entry_size % 8 != 0 {
        return Err(GptProbeError::OutOfRange {
            field: "partition entry size",
            value: entry_size.into(),
        });
    }
    let start = entries_lba
        .checked_mul(sector)
        .filter(|_| entries_lba >= 2)
        .ok_or(GptProbeError::OutOfRange {
            field: "partition entry LBA",
            value: entries_lba,
        })?;
    let mut entries = vec![0u8; count as usize * entry_size as usize];
    disk.seek(SeekFrom::Start(start))?;
    disk.read_exact(&mut entries)?;
    let mut uuids: Vec<String> = entries
        .chunks_exact(entry_size as usize)
        // An entry with an all-zero type GUID is unused.
        .filter(|e| e[0..16].iter().any(|&b| b != 0))
        .map(|e| guid_string(e[16..32].try_into().expect("16 bytes")))
        .collect();
    uuids.sort();
    uuids.dedup();
    Ok(uuids)
}

/// GPT stores GUIDs mixed-endian: the first three fields little-endian.
fn guid_string(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A disk of `sectors` × 512 bytes with a GPT header and the given entries
    /// (type byte, unique GUID bytes).
    fn disk(entries: &[(u8, [u8; 16])], count: u32, entry_size: u32, lba: u64) -> Vec<u8> {
        let mut d = vec![0u8; 512 * 64];
        d[512..520].copy_from_slice(SIGNATURE);
        d[512 + 72..512 + 80].copy_from_slice(&lba.to_le_bytes());
        d[512 + 80..512 + 84].copy_from_slice(&count.to_le_bytes());
        d[512 + 84..512 + 88].copy_from_slice(&entry_size.to_le_bytes());
        for (i, (type_byte, guid)) in entries.iter().enumerate() {
            let at = 1024 + i * entry_size as usize;
            d[at] = *type_byte;
            d[at + 16..at + 32].copy_from_slice(guid);
        }
        d
    }

    const GUID: [u8; 16] = [
        0x15, 0x0d, 0xe5, 0x6a, 0xfd, 0x92, 0xdb, 0x80, 0x3f, 0x45, 0x0b, 0xea, 0x87, 0x74, 0x04,
        0x48,
    ];

    #[test]
    fn reads_used_entries_and_rejects_bad_headers() {
        let one = disk(&[(1, GUID), (0, [9; 16])], 128, 128, 2);
        let mut no_sig = one.clone();
        no_sig[512] = b'X';
        type Case = (
            &'static str,
            Vec<u8>,
            Result<Vec<&'static str>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "one used entry, one unused",
                one,
                Ok(vec!["6ae50d15-92fd-80db-3f45-0bea87740448"]),
            ),
            ("no signature", no_sig, Err("NoSignature")),
            (
                "absurd entry count",
                disk(&[], 1_000_000, 128, 2),
                Err("number of partition entries"),
            ),
            (
                "entry size too small",
                disk(&[], 128, 16, 2),
                Err("partition entry size"),
            ),
            (
                "entries on top of the header",
                disk(&[], 128, 128, 1),
                Err("partition entry LBA"),
            ),
            (
                "entries past the end",
                disk(&[], 128, 128, 1 << 40),
                Err("Io"),
            ),
        ];
        for (name, bytes, want) in cases {
            let got = partition_uuids(&mut Cursor::new(bytes), 512);
            match (got, want) {
                (Ok(uuids), Ok(want)) => assert_eq!(uuids, want, "{name}"),
                (Err(err), Err(want)) => {
                    assert!(format!("{err:?} {err}").contains(want), "{name}: {err:?}")
                }
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn sector_size_must_be_sane() {
        let d = disk(&[(1, GUID)], 128, 128, 2);
        assert!(partition_uuids(&mut Cursor::new(d.clone()), 512).is_ok());
        assert!(partition_uuids(&mut Cursor::new(d.clone()), 1000).is_err());
        assert!(partition_uuids(&mut Cursor::new(d), 256).is_err());
    }
}
