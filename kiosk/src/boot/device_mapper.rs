//! The device-mapper device `root` that the initrd's systemd-veritysetup opened:
//! its table (which root hash the kernel enforces) and its status (corruption seen).
//!
//! Parsers take the text `dmsetup table root` and `dmsetup status root` print; the
//! caller runs dmsetup through [`crate::command::run`].

/// Name of the verity device the initrd creates for the root filesystem.
pub const ROOT_DM_NAME: &str = "root";
/// Its device node.
pub const ROOT_DM_NODE: &str = "/dev/mapper/root";

const VERITY_TARGET: &str = "verity";

/// The disks under the verity device `root`: the whole disks of its slaves (data
/// and hash partitions) in `sys_block` (`/sys/class/block`). This is what makes a
/// disk the stick: the kernel verified the root through it. Partition UUIDs do
/// not decide, since anyone can copy them. Empty when there is no such device.
pub fn verity_root_disks(sys_block: &std::path::Path) -> Vec<String> {
    let Some(dm) = crate::sysfs::entry_names(sys_block)
        .into_iter()
        .filter(|name| name.starts_with("dm-"))
        .find(|name| {
            std::fs::read_to_string(sys_block.join(name).join("dm/name"))
                .is_ok_and(|n| n.trim() == ROOT_DM_NAME)
        })
    else {
        return Vec::new();
    };
    let mut disks: Vec<String> = crate::sysfs::entry_names(&sys_block.join(&dm).join("slaves"))
        .iter()
        .filter_map(|slave| crate::sysfs::whole_disk(sys_block, slave).ok())
        .collect();
    disks.dedup();
    disks
}

/// Why dmsetup output could not be read as a dm-verity device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmParseError {
    #[error("device-mapper output is empty")]
    Empty,
    #[error("device has {0} targets, a verity root has exactly one")]
    MultipleTargets(usize),
    #[error("target is `{0}`, not verity")]
    NotVerity(String),
    #[error("malformed device-mapper line `{line}`: {why}")]
    Malformed { line: String, why: &'static str },
}

/// The table of a single-target verity device, as `dmsetup table` prints it:
/// `0 <len> verity <version> <data_dev> <hash_dev> <data_block_size>
/// <hash_block_size> <num_data_blocks> <hash_start> <algorithm> <root_hash> <salt>
/// [<#opt_args> <opt_args>...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityTable {
    pub version: u32,
    /// `major:minor` of the data device.
    pub data_device: String,
    /// `major:minor` of the hash device.
    pub hash_device: String,
    pub data_block_size: u32,
    pub hash_block_size: u32,
    pub data_blocks: u64,
    pub hash_start: u64,
    pub algorithm: String,
    /// Lower-case hex.
    pub root_hash: String,
    /// Lower-case hex, `-` for none.
    pub salt: String,
    /// Optional arguments after the salt, without their count.
    pub options: Vec<String>,
}

/// What the verity target reports about the data read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerityHealth {
    /// `V`: every block read so far matched the hash tree.
    Verified,
    /// `C`: a block that did not match was read.
    Corrupted,
}

/// Parses `dmsetup table <name>` of a verity device.
pub fn parse_dm_table(text: &str) -> Result<VerityTable, DmParseError> {
    let line = single_target_line(text)?;
    let malformed = |why| DmParseError::Malformed {
        line: line.to_string(),
        why,
    };
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    let args = verity_args(&fields, line)?;
    let [version, data_device, hash_device, data_block_size, hash_block_size, data_blocks, hash_start, algorithm, root_hash, salt, rest @ ..] =
        args
    else {
        return Err(malformed("fewer than 10 verity arguments"));
    };
    if !is_hex(root_hash) {
        return Err(malformed("root hash is not hex"));
    }
    let options = match rest {
        [] => Vec::new(),
        [count, options @ ..] => {
            let count: usize = count
                .parse()
                .map_err(|_| malformed("optional argument count is not a number"))?;
            if count != options.len() {
                return Err(malformed("optional argument count does not match"));
            }
            options.iter().map(|s| s.to_string()).collect()
        }
    };
    let number = |s: &str, why| s.parse::<u64>().map_err(|_| malformed(why));
    let small = |s: &str, why| s.parse::<u32>().map_err(|_| malformed(why));
    Ok(VerityTable {
        version: small(version, "version is not a number")?,
        data_device: data_device.to_string(),
        hash_device: hash_device.to_string(),
        data_block_size: small(data_block_size, "data block size is not a number")?,
        hash_block_size: small(hash_block_size, "hash block size is not a number")?,
        data_blocks: number(data_blocks, "data block count is not a number")?,
        hash_start: number(hash_start, "hash start is not a number")?,
        algorithm: algorithm.to_string(),
        root_hash: root_hash.to_ascii_lowercase(),
        salt: salt.to_ascii_lowercase(),
        options,
    })
}

/// Parses `dmsetup status <name>` of a verity device: `0 <len> verity V|C` and, on
/// kernels that report forward error correction, one more field (`-` or a count).
pub fn parse_dm_status(text: &str) -> Result<VerityHealth, DmParseError> {
    let line = single_target_line(text)?;
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    match verity_args(&fields, line)? {
        ["V", ..] => Ok(VerityHealth::Verified),
        ["C", ..] => Ok(VerityHealth::Corrupted),
        _ => Err(DmParseError::Malformed {
            line: line.to_string(),
            why: "verity status is neither V nor C",
        }),
    }
}

fn single_target_line(text: &str) -> Result<&str, DmParseError> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => Err(DmParseError::Empty),
        [line] => Ok(line),
        many => Err(DmParseError::MultipleTargets(many.len())),
    }
}

/// The fields after `<start> <length> verity`.
fn verity_args<'a>(fields: &'a [&'a str], line: &str) -> Result<&'a [&'a str], DmParseError> {
    match fields {
        [_start, _length, target, args @ ..] if *target == VERITY_TARGET => Ok(args),
        [_start, _length, target, ..] => Err(DmParseError::NotVerity(target.to_string())),
        _ => Err(DmParseError::Malformed {
            line: line.to_string(),
            why: "fewer than 3 fields",
        }),
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && hex::decode(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_HASH: &str = "5d3bd1a4f2b8c0e9a7d6c5b4a3928170f6e5d4c3b2a19081726354453627180f";
    const SALT: &str = "9c1f0e2d3b4a59687706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100";

    fn table(options: &[&str]) -> VerityTable {
        VerityTable {
            version: 1,
            data_device: "8:2".into(),
            hash_device: "8:3".into(),
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: 40960,
            hash_start: 1,
            algorithm: "sha256".into(),
            root_hash: ROOT_HASH.into(),
            salt: SALT.into(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn tables() {
        let plain =
            format!("0 327680 verity 1 8:2 8:3 4096 4096 40960 1 sha256 {ROOT_HASH} {SALT}\n");
        let with_opts = format!(
            "0 327680 verity 1 8:2 8:3 4096 4096 40960 1 sha256 {ROOT_HASH} {SALT} 2 ignore_zero_blocks panic_on_corruption\n"
        );
        let upper = format!(
            "0 327680 verity 1 8:2 8:3 4096 4096 40960 1 sha256 {} {SALT}",
            ROOT_HASH.to_uppercase()
        );
        let bad_count =
            format!("0 327680 verity 1 8:2 8:3 4096 4096 40960 1 sha256 {ROOT_HASH} {SALT} 3 x");
        let two = format!("{plain}327680 8 linear 8:4 0\n");
        let cases: Vec<(&str, &str, Result<VerityTable, DmParseError>)> = vec![
            ("plain", &plain, Ok(table(&[]))),
            (
                "with optional arguments",
                &with_opts,
                Ok(table(&["ignore_zero_blocks", "panic_on_corruption"])),
            ),
            ("upper-case hash", &upper, Ok(table(&[]))),
            (
                "linear device",
                "0 2097152 linear 8:2 2048\n",
                Err(DmParseError::NotVerity("linear".into())),
            ),
            ("empty", "\n", Err(DmParseError::Empty)),
            ("two targets", &two, Err(DmParseError::MultipleTargets(2))),
            (
                "too short",
                "0 327680 verity 1 8:2 8:3 4096",
                Err(DmParseError::Malformed {
                    line: "0 327680 verity 1 8:2 8:3 4096".into(),
                    why: "fewer than 10 verity arguments",
                }),
            ),
            (
                "optional count wrong",
                &bad_count,
                Err(DmParseError::Malformed {
                    line: bad_count.clone(),
                    why: "optional argument count does not match",
                }),
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse_dm_table(text), want, "{name}");
        }
    }

    #[test]
    fn statuses() {
        let cases: &[(&str, &str, Result<VerityHealth, DmParseError>)] = &[
            (
                "verified",
                "0 327680 verity V\n",
                Ok(VerityHealth::Verified),
            ),
            (
                "verified, FEC field",
                "0 327680 verity V -\n",
                Ok(VerityHealth::Verified),
            ),
            (
                "corrupted",
                "0 327680 verity C\n",
                Ok(VerityHealth::Corrupted),
            ),
            (
                "corrupted, FEC count",
                "0 327680 verity C 12\n",
                Ok(VerityHealth::Corrupted),
            ),
            (
                "linear",
                "0 2097152 linear \n",
                Err(DmParseError::NotVerity("linear".into())),
            ),
            (
                "unknown letter",
                "0 327680 verity X",
                Err(DmParseError::Malformed {
                    line: "0 327680 verity X".into(),
                    why: "verity status is neither V nor C",
                }),
            ),
            ("empty", "", Err(DmParseError::Empty)),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse_dm_status(text), *want, "{name}");
        }
    }

    #[test]
    fn the_stick_is_the_disk_under_the_verity_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let devices = dir.path().join("devices");
        let sys = dir.path().join("class");
        std::fs::create_dir_all(&sys).expect("mkdir");
        let link = |target: &std::path::Path, name: &str| {
            std::os::unix::fs::symlink(target, sys.join(name)).expect("link")
        };
        for disk in ["sda", "nvme0n1"] {
            for part in 1..=3 {
                let dir = devices.join(disk).join(format!("{disk}{part}"));
                std::fs::create_dir_all(&dir).expect("part");
                std::fs::write(dir.join("partition"), format!("{part}\n")).expect("number");
                link(&dir, &format!("{disk}{part}"));
            }
            link(&devices.join(disk), disk);
        }
        assert!(verity_root_disks(&sys).is_empty(), "no dm device yet");
        for (dm, name, slaves) in [
            ("dm-0", "other", &["nvme0n12"][..]),
            ("dm-1", "root", &["sda2", "sda3"][..]),
        ] {
            let dir = devices.join("virtual").join(dm);
            std::fs::create_dir_all(dir.join("dm")).expect("dm");
            std::fs::create_dir_all(dir.join("slaves")).expect("slaves");
            std::fs::write(dir.join("dm/name"), format!("{name}\n")).expect("name");
            for slave in slaves {
                std::fs::create_dir(dir.join("slaves").join(slave)).expect("slave");
            }
            link(&dir, dm);
        }
        assert_eq!(verity_root_disks(&sys), ["sda"]);
    }
}
