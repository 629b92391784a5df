//! dm-verity hash tree computed in Rust, byte-identical to `veritysetup format`
//! (format version 1, sha256, 4096-byte data and hash blocks, with superblock), so
//! the root hash does not depend on which cryptsetup the host or tools tree has.
//!
//! Layout of the hash file, as cryptsetup's `lib/verity/verity_hash.c` writes it:
//! block 0 holds the superblock (512 bytes, zero-padded to a block); from block 1
//! on come the tree levels, the level nearest the root first and the level that
//! hashes the data blocks last. Every digest is `sha256(salt || block)`; each level
//! is zero-padded to whole blocks. The root hash is the digest of the single block
//! of the top level or, for a single data block, of that data block (no levels).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Size of data blocks and of hash blocks.
pub const VERITY_BLOCK_SIZE: u32 = 4096;

const BLOCK: usize = VERITY_BLOCK_SIZE as usize;
const DIGEST_SIZE: usize = 32;
const SALT_SIZE: usize = 32;
/// Data read per `read` call: large enough that syscalls vanish next to hashing.
const READ_CHUNK: usize = 4 << 20;

const SUPERBLOCK_SIGNATURE: &[u8; 8] = b"verity\0\0";
const SUPERBLOCK_VERSION: u32 = 1;
/// 1 = the normal format (salt first); 0 is the Chrome OS format.
const HASH_TYPE: u32 = 1;
const HASH_ALGORITHM: &[u8] = b"sha256";
const ALGORITHM_FIELD_SIZE: usize = 32;
const SALT_FIELD_SIZE: usize = 256;
/// Bytes of `struct verity_sb` that carry fields; the rest of it (`_pad2`) is zero.
const SUPERBLOCK_FIELDS_SIZE: usize = 344;

/// Inputs that make the hash file reproducible; the caller derives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityParams {
    pub salt: [u8; 32],
    /// UUID of the hash device, bytes in the order of its canonical string form
    /// (as `uuid_parse` gives them), not GPT's mixed-endian order.
    pub uuid: [u8; 16],
}

/// A formatted hash device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityTree {
    pub root_hash: [u8; 32],
    pub salt: [u8; 32],
    pub data_blocks: u64,
    /// Bytes written to the hash file: superblock block plus all tree levels.
    pub hash_size: u64,
}

/// Why a hash tree could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerityError {
    #[error(
        "data file {} is {size} bytes, not a multiple of the {VERITY_BLOCK_SIZE}-byte verity block size",
        path.display()
    )]
    NotBlockAligned { path: PathBuf, size: u64 },
    #[error("data file {} is empty; dm-verity needs at least one block", path.display())]
    EmptyData { path: PathBuf },
    #[error("cannot read data file {}", path.display())]
    ReadData {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write hash file {}", path.display())]
    WriteHash {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl VerityTree {
    /// Reads `data` (length must be a multiple of 4096) and writes the hash device
    /// (superblock + tree, laid out as veritysetup does) to `hash_out`, replacing it.
    ///
    /// The data is streamed; memory use is about 1/128 of its size (the tree).
    pub fn format(
        data: &Path,
        hash_out: &Path,
        params: &VerityParams,
    ) -> Result<VerityTree, VerityError> {
        let read_err = |source| VerityError::ReadData {
            path: data.to_path_buf(),
            source,
        };
        let mut file = File::open(data).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        if size == 0 {
            return Err(VerityError::EmptyData {
                path: data.to_path_buf(),
            });
        }
        if size % u64::from(VERITY_BLOCK_SIZE) != 0 {
            return Err(VerityError::NotBlockAligned {
                path: data.to_path_buf(),
                size,
            });
        }
        let data_blocks = size / u64::from(VERITY_BLOCK_SIZE);

        let hasher = BlockHasher::new(&params.salt);
        let data_digests = hash_stream(&hasher, &mut file, size).map_err(read_err)?;
        let (root_hash, levels) = build_levels(&hasher, data_digests);

        let write_err = |source| VerityError::WriteHash {
            path: hash_out.to_path_buf(),
            source,
        };
        let mut out = BufWriter::new(File::create(hash_out).map_err(write_err)?);
        out.write_all(&superblock(params, data_blocks))
            .map_err(write_err)?;
        for level in levels.iter().rev() {
            out.write_all(level).map_err(write_err)?;
        }
        out.into_inner()
            .map_err(|e| write_err(e.into_error()))?
            .sync_all()
            .map_err(write_err)?;

        let tree_bytes: usize = levels.iter().map(Vec::len).sum();
        Ok(VerityTree {
            root_hash,
            salt: params.salt,
            data_blocks,
            hash_size: (BLOCK + tree_bytes) as u64,
        })
    }

    /// The root hash as veritysetup prints it and the `roothash=` cmdline takes it.
    pub fn root_hash_hex(&self) -> String {
        hex::encode(self.root_hash)
    }
}

/// `sha256(salt || block)`, with the salt absorbed once.
struct BlockHasher {
    salted: Sha256,
}

impl BlockHasher {
    fn new(salt: &[u8; SALT_SIZE]) -> Self {
        BlockHasher {
            salted: Sha256::new_with_prefix(salt),
        }
    }

    /// Appends the digest of every block in `blocks` to `out`.
    fn hash_blocks(&self, blocks: &[u8], out: &mut Vec<u8>) {
        debug_assert_eq!(blocks.len() % BLOCK, 0);
        for block in blocks.chunks_exact(BLOCK) {
            out.extend_from_slice(&self.salted.clone().chain_update(block).finalize());
        }
    }
}

/// Digests of the `size` bytes (whole blocks) read from `reader`, concatenated.
fn hash_stream(hasher: &BlockHasher, reader: &mut impl Read, size: u64) -> io::Result<Vec<u8>> {
    let blocks = usize::try_from(size / BLOCK as u64).map_err(io::Error::other)?;
    let mut digests = Vec::with_capacity(blocks * DIGEST_SIZE);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut remaining = size;
    while remaining > 0 {
        let n = usize::try_from(remaining).map_or(READ_CHUNK, |r| r.min(READ_CHUNK));
        reader.read_exact(&mut buf[..n])?;
        hasher.hash_blocks(&buf[..n], &mut digests);
        remaining -= n as u64;
    }
    Ok(digests)
}

/// From the data blocks' digests, the tree levels (index 0 hashes the data; each
/// zero-padded to whole blocks) and the root hash.
fn build_levels(hasher: &BlockHasher, data_digests: Vec<u8>) -> ([u8; 32], Vec<Vec<u8>>) {
    let mut levels = Vec::new();
    let mut current = data_digests;
    while current.len() > DIGEST_SIZE {
        let padded_len = current.len().div_ceil(BLOCK) * BLOCK;
        current.resize(padded_len, 0);
        let mut next = Vec::with_capacity((padded_len / BLOCK) * DIGEST_SIZE);
        hasher.hash_blocks(&current, &mut next);
        levels.push(current);
        current = next;
    }
    let root_hash = current
        .as_slice()
        .try_into()
        .expect("the tree narrows to exactly one digest");
    (root_hash, levels)
}

/// Block 0 of the hash file: cryptsetup's `struct verity_sb` (little-endian,
/// packed), zero-padded to a whole block.
fn superblock(params: &VerityParams, data_blocks: u64) -> Vec<u8> {
    let mut sb = Vec::with_capacity(BLOCK);
    sb.extend_from_slice(SUPERBLOCK_SIGNATURE);
    sb.extend_from_slice(&SUPERBLOCK_VERSION.to_le_bytes());
    sb.extend_from_slice(&HASH_TYPE.to_le_bytes());
    sb.extend_from_slice(&params.uuid);
    sb.extend_from_slice(&zero_padded(HASH_ALGORITHM, ALGORITHM_FIELD_SIZE));
    sb.extend_from_slice(&VERITY_BLOCK_SIZE.to_le_bytes()); // data_block_size
    sb.extend_from_slice(&VERITY_BLOCK_SIZE.to_le_bytes()); // hash_block_size
    sb.extend_from_slice(&data_blocks.to_le_bytes());
    sb.extend_from_slice(&(SALT_SIZE as u16).to_le_bytes());
    sb.extend_from_slice(&[0; 6]); // _pad1
    sb.extend_from_slice(&zero_padded(&params.salt, SALT_FIELD_SIZE));
    debug_assert_eq!(sb.len(), SUPERBLOCK_FIELDS_SIZE);
    sb.resize(BLOCK, 0);
    sb
}

fn zero_padded(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut field = bytes.to_vec();
    field.resize(len, 0);
    field
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::CommandRunExt;
    use std::process::Command;

    const VERITYSETUP: &str = "/usr/sbin/veritysetup";

    const PARAMS: VerityParams = VerityParams {
        salt: [
            0x5a, 0x17, 0x00, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
            0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
            0x19, 0x1a, 0x1b, 0xa5,
        ],
        uuid: [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ],
    };
    const PARAMS_UUID: &str = "01234567-89ab-cdef-fedc-ba9876543210";

    /// Writes `blocks` blocks of deterministic pseudo-random bytes (xorshift64*).
    fn write_data(path: &Path, blocks: u64, seed: u64) {
        let mut out = BufWriter::new(File::create(path).expect("create data file"));
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for _ in 0..blocks * (BLOCK as u64 / 8) {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            out.write_all(&word.to_le_bytes()).expect("write data file");
        }
        out.flush().expect("flush data file");
    }

    /// The value of veritysetup's `Root hash:` line.
    fn parse_root_hash(stdout: &str) -> Option<&str> {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("Root hash:"))
            .map(str::trim)
    }

    /// Runs `veritysetup format` with our parameters; returns its root hash.
    /// veritysetup creates `hash` itself if it does not exist, and does not truncate
    /// an existing file, so callers pass a fresh path.
    fn veritysetup_format(data: &Path, hash: &Path) -> String {
        assert!(
            Path::new(VERITYSETUP).exists(),
            "{VERITYSETUP} is missing; install the Debian package cryptsetup-bin"
        );
        assert!(!hash.exists(), "{} must not exist yet", hash.display());
        let stdout = Command::new(VERITYSETUP)
            .arg("format")
            .arg("--salt")
            .arg(hex::encode(PARAMS.salt))
            .arg("--uuid")
            .arg(PARAMS_UUID)
            .args([
                "--hash=sha256",
                "--data-block-size=4096",
                "--hash-block-size=4096",
            ])
            .arg(data)
            .arg(hash)
            .run_capture()
            .expect("veritysetup format runs");
        parse_root_hash(&stdout)
            .unwrap_or_else(|| panic!("no `Root hash:` line in veritysetup output:\n{stdout}"))
            .to_string()
    }

    #[test]
    fn matches_veritysetup_byte_for_byte() {
        // (data blocks, blocks in the hash file including the superblock, why)
        let cases: &[(u64, u64, &str)] = &[
            (1, 1, "one data block: no levels, root = its digest"),
            (2, 2, "one partial hash block"),
            (127, 2, "one hash block, one digest short of full"),
            (128, 2, "exactly one full hash block"),
            (129, 4, "two level-0 blocks, second one padded, two levels"),
            (16384, 130, "128 full level-0 blocks, one level-1 block"),
            (16385, 133, "three levels"),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        for &(blocks, hash_blocks, why) in cases {
            let data = dir.path().join(format!("data-{blocks}"));
            let ours = dir.path().join(format!("ours-{blocks}"));
            let theirs = dir.path().join(format!("theirs-{blocks}"));
            write_data(&data, blocks, blocks);

            let tree = VerityTree::format(&data, &ours, &PARAMS).expect("format");
            let their_root = veritysetup_format(&data, &theirs);

            assert_eq!(tree.root_hash_hex(), their_root, "{blocks} blocks ({why})");
            assert_eq!(tree.data_blocks, blocks, "{blocks} blocks ({why})");
            assert_eq!(tree.salt, PARAMS.salt);
            assert_eq!(
                tree.hash_size,
                hash_blocks * u64::from(VERITY_BLOCK_SIZE),
                "{blocks} blocks ({why})"
            );
            let ours = std::fs::read(&ours).expect("read our hash file");
            let theirs = std::fs::read(&theirs).expect("read veritysetup's hash file");
            assert_eq!(ours.len() as u64, tree.hash_size, "{blocks} blocks ({why})");
            assert!(
                ours == theirs,
                "{blocks} blocks ({why}): hash files differ ({} vs {} bytes), first at byte {:?}",
                ours.len(),
                theirs.len(),
                ours.iter().zip(&theirs).position(|(a, b)| a != b)
            );
        }
    }

    #[test]
    fn superblock_fields_sit_at_cryptsetup_offsets() {
        let sb = superblock(&PARAMS, 0x0102_0304_0506_0708);
        let expected: &[(usize, &[u8], &str)] = &[
            (0, b"verity\0\0", "signature"),
            (8, &[1, 0, 0, 0], "version"),
            (12, &[1, 0, 0, 0], "hash_type"),
            (16, &PARAMS.uuid, "uuid"),
            (32, b"sha256\0\0", "algorithm"),
            (64, &[0, 0x10, 0, 0], "data_block_size"),
            (68, &[0, 0x10, 0, 0], "hash_block_size"),
            (72, &[8, 7, 6, 5, 4, 3, 2, 1], "data_blocks"),
            (80, &[32, 0], "salt_size"),
            (88, &PARAMS.salt, "salt"),
        ];
        for &(offset, bytes, field) in expected {
            assert_eq!(&sb[offset..offset + bytes.len()], bytes, "{field}");
        }
        assert_eq!(sb.len(), BLOCK);
        assert!(sb[38..64].iter().all(|&b| b == 0), "algorithm padding");
        assert!(sb[120..].iter().all(|&b| b == 0), "salt and block padding");
    }

    #[test]
    fn rejects_data_that_is_not_whole_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("odd.img");
        std::fs::write(&data, vec![0u8; BLOCK + 1]).expect("write data");
        let err = VerityTree::format(&data, &dir.path().join("hash"), &PARAMS)
            .expect_err("4097 bytes are rejected");
        assert!(
            matches!(&err, VerityError::NotBlockAligned { path, size: 4097 } if *path == data),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "data file {} is 4097 bytes, not a multiple of the 4096-byte verity block size",
                data.display()
            )
        );
        assert!(!dir.path().join("hash").exists(), "no hash file on error");
    }

    #[test]
    fn rejects_empty_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("empty.img");
        std::fs::write(&data, b"").expect("write data");
        let err = VerityTree::format(&data, &dir.path().join("hash"), &PARAMS)
            .expect_err("empty data is rejected");
        assert!(
            matches!(&err, VerityError::EmptyData { path } if *path == data),
            "{err:?}"
        );
    }

    #[test]
    fn parses_root_hash_line() {
        let stdout = "VERITY header information for h\nHash blocks:     \t0\n\
                      Root hash:      \te93a998afc59e4a4a331e57ef10a99a282265ee54c918066b42354f80db04866\n\
                      Hash device size: \t4096 [bytes]\n";
        assert_eq!(
            parse_root_hash(stdout),
            Some("e93a998afc59e4a4a331e57ef10a99a282265ee54c918066b42354f80db04866")
        );
        assert_eq!(parse_root_hash("Salt: 00\n"), None);
    }
}
