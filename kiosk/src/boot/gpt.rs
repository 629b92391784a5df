//! Reads the partition entries of a GPT disk: number, type and unique GUID, and
//! nothing else. The disks read here may be hostile, so every size and count is
//! bounded before it is used, and the header's and the entries' CRC32 must hold
//! (as the firmware and the kernel require).

use std::io::{Read, Seek, SeekFrom};

const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The header as UEFI 2.x defines it; a larger header_size is allowed up to a sector.
const MIN_HEADER_SIZE: u32 = 92;
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
    #[error("the GPT header's CRC32 does not match its bytes")]
    HeaderCrc,
    #[error("the GPT partition entries' CRC32 does not match their bytes")]
    EntriesCrc,
    #[error("reading the disk: {0}")]
    Io(#[from] std::io::Error),
}

/// One used entry of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptEntry {
    /// 1-based, as the kernel numbers partitions (`sda2` is entry 2).
    pub number: u32,
    /// Lower-case, as in `/dev/disk/by-partuuid`.
    pub type_uuid: String,
    pub part_uuid: String,
}

/// The used entries of the primary GPT, in table order. `sector` is the logical
/// block size.
pub fn read_entries<D: Read + Seek>(
    disk: &mut D,
    sector: u64,
) -> Result<Vec<GptEntry>, GptProbeError> {
    if !(512..=4096).contains(&sector) || !sector.is_power_of_two() {
        return Err(GptProbeError::OutOfRange {
            field: "logical block size",
            value: sector,
        });
    }
    let mut header = vec![0u8; sector as usize];
    disk.seek(SeekFrom::Start(sector))?;
    disk.read_exact(&mut header)?;
    if &header[0..8] != SIGNATURE {
        return Err(GptProbeError::NoSignature);
    }
    let field32 = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    let header_size = field32(12);
    if !(MIN_HEADER_SIZE..=sector as u32).contains(&header_size) {
        return Err(GptProbeError::OutOfRange {
            field: "header size",
            value: header_size.into(),
        });
    }
    let mut zeroed = header[..header_size as usize].to_vec();
    zeroed[16..20].fill(0);
    if crc32fast::hash(&zeroed) != field32(16) {
        return Err(GptProbeError::HeaderCrc);
    }
    let entries_lba = u64::from_le_bytes(header[72..80].try_into().expect("8 bytes"));
    let (count, entry_size, entries_crc) = (field32(80), field32(84), field32(88));
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
    if crc32fast::hash(&entries) != entries_crc {
        return Err(GptProbeError::EntriesCrc);
    }
    Ok(entries
        .chunks_exact(entry_size as usize)
        .zip(1u32..)
        // An entry with an all-zero type GUID is unused.
        .filter(|(e, _)| e[0..16].iter().any(|&b| b != 0))
        .map(|(e, number)| GptEntry {
            number,
            type_uuid: guid_string(e[0..16].try_into().expect("16 bytes")),
            part_uuid: guid_string(e[16..32].try_into().expect("16 bytes")),
        })
        .collect())
}

/// The used entries of whole disk `disk` (a kernel name such as `sda`): its
/// logical block size from `sys_block` (512 when unreadable), its bytes from
/// `dev_dir`. The error names the device node.
pub fn read_disk_entries(
    sys_block: &std::path::Path,
    dev_dir: &std::path::Path,
    disk: &str,
) -> anyhow::Result<Vec<GptEntry>> {
    use anyhow::Context;
    let sector = std::fs::read_to_string(sys_block.join(disk).join("queue/logical_block_size"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(512);
    let node = dev_dir.join(disk);
    let mut file =
        std::fs::File::open(&node).with_context(|| format!("cannot open {}", node.display()))?;
    read_entries(&mut file, sector).with_context(|| format!("{}", node.display()))
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
/// A 32 KiB disk with a GPT header and the given entries (type byte, unique
/// GUID bytes), both CRCs as a real table has them.
pub(crate) fn test_disk(
    entries: &[(u8, [u8; 16])],
    count: u32,
    entry_size: u32,
    lba: u64,
) -> Vec<u8> {
    let mut d = vec![0u8; 512 * 64];
    for (i, (type_byte, guid)) in entries.iter().enumerate() {
        let at = 1024 + i * entry_size as usize;
        d[at] = *type_byte;
        d[at + 16..at + 32].copy_from_slice(guid);
    }
    let table = (lba * 512) as usize..(lba * 512) as usize + (count * entry_size) as usize;
    let entries_crc = d.get(table).map_or(0, crc32fast::hash);
    d[512..520].copy_from_slice(SIGNATURE);
    d[512 + 12..512 + 16].copy_from_slice(&92u32.to_le_bytes());
    d[512 + 72..512 + 80].copy_from_slice(&lba.to_le_bytes());
    d[512 + 80..512 + 84].copy_from_slice(&count.to_le_bytes());
    d[512 + 84..512 + 88].copy_from_slice(&entry_size.to_le_bytes());
    d[512 + 88..512 + 92].copy_from_slice(&entries_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&d[512..512 + 92]);
    d[512 + 16..512 + 20].copy_from_slice(&header_crc.to_le_bytes());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const GUID: [u8; 16] = [
        0x15, 0x0d, 0xe5, 0x6a, 0xfd, 0x92, 0xdb, 0x80, 0x3f, 0x45, 0x0b, 0xea, 0x87, 0x74, 0x04,
        0x48,
    ];

    #[test]
    fn reads_used_entries_and_rejects_bad_headers() {
        let one = test_disk(&[(1, GUID), (0, [9; 16])], 128, 128, 2);
        let mut no_sig = one.clone();
        no_sig[512] = b'X';
        // A copied table whose entries were edited without fixing the CRCs, and
        // one whose header was.
        let mut entry_edited = one.clone();
        entry_edited[1024 + 20] ^= 1;
        let mut header_edited = one.clone();
        header_edited[512 + 40] ^= 1;
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
            ("entry changed, CRC not", entry_edited, Err("EntriesCrc")),
            ("header changed, CRC not", header_edited, Err("HeaderCrc")),
            (
                "absurd entry count",
                test_disk(&[], 1_000_000, 128, 2),
                Err("number of partition entries"),
            ),
            (
                "entry size too small",
                test_disk(&[], 128, 16, 2),
                Err("partition entry size"),
            ),
            (
                "entries on top of the header",
                test_disk(&[], 128, 128, 1),
                Err("partition entry LBA"),
            ),
            (
                "entries past the end",
                test_disk(&[], 128, 128, 1 << 40),
                Err("Io"),
            ),
        ];
        for (name, bytes, want) in cases {
            let got = read_entries(&mut Cursor::new(bytes), 512)
                .map(|entries| entries.into_iter().map(|e| e.part_uuid).collect::<Vec<_>>());
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
    fn entries_keep_their_numbers_and_types() {
        let d = test_disk(&[(1, GUID), (0, [9; 16]), (2, [3; 16])], 128, 128, 2);
        let entries = read_entries(&mut Cursor::new(d), 512).expect("reads");
        let got: Vec<(u32, &str)> = entries
            .iter()
            .map(|e| (e.number, e.part_uuid.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "6ae50d15-92fd-80db-3f45-0bea87740448"),
                (3, "03030303-0303-0303-0303-030303030303")
            ]
        );
        assert_eq!(entries[0].type_uuid, "00000001-0000-0000-0000-000000000000");
    }

    #[test]
    fn sector_size_must_be_sane() {
        let d = test_disk(&[(1, GUID)], 128, 128, 2);
        assert!(read_entries(&mut Cursor::new(d.clone()), 512).is_ok());
        assert!(read_entries(&mut Cursor::new(d.clone()), 1000).is_err());
        assert!(read_entries(&mut Cursor::new(d), 256).is_err());
    }
}
