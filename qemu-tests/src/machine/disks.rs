//! "Internal" disks of a hostile PC, made by the tests with real filesystems:
//! NVMe with ext4 (optionally behind an EFI System Partition with a bootloader),
//! SATA with vfat and swap, virtio with a LUKS header, and a second USB stick
//! with vfat (present from power-on, so the initrd already sees it). Their sha256 before and
//! after a session proves the stick never wrote to them.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The text of the canary file on every filesystem.
pub const CANARY: &str = "canary of the PC's own disk: the stick must never change this\n";

/// How the disk is attached to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    Nvme,
    Sata,
    Virtio,
    /// A second USB stick on the machine's xhci controller (the stick's own).
    Usb,
}

/// A disk image file and how it is attached.
#[derive(Debug, Clone)]
pub struct HostileDisk {
    pub path: PathBuf,
    pub bus: Bus,
    pub what: &'static str,
}

impl HostileDisk {
    /// QEMU arguments that attach the disk (writable: a write must show).
    pub fn qemu_args(&self, index: usize) -> Vec<String> {
        let id = format!("hostile{index}");
        let drive = format!(
            "if=none,id={id},format=raw,file={},cache=writethrough",
            self.path.display()
        );
        let device = match self.bus {
            Bus::Nvme => format!("nvme,serial=HOSTILE{index},drive={id}"),
            // q35's built-in ICH9 AHCI controller.
            Bus::Sata => format!("ide-hd,bus=ide.{index},drive={id}"),
            Bus::Virtio => format!("virtio-blk-pci,drive={id}"),
            Bus::Usb => format!("usb-storage,bus=xhci.0,drive={id},removable=on"),
        };
        vec!["-drive".into(), drive, "-device".into(), device]
    }

    /// sha256 of the whole image file.
    pub fn sha256(&self) -> Result<String> {
        let mut file = std::fs::File::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hex::encode(hasher.finalize()))
    }
}

/// The three disks of the storage-lock scenario, made in `dir`. With
/// `nvme_esp`, the NVMe disk starts with an EFI System Partition holding
/// `bootloader` as `EFI/BOOT/BOOTX64.EFI`.
pub fn make_hostile_disks(dir: &Path, nvme_esp: Option<&[u8]>) -> Result<Vec<HostileDisk>> {
    let canary_dir = dir.join("canary");
    std::fs::create_dir_all(&canary_dir)?;
    std::fs::write(canary_dir.join("canary.txt"), CANARY)?;

    let nvme = dir.join("nvme.raw");
    match nvme_esp {
        None => {
            partitioned_disk(&nvme, 48, &["size=32MiB, type=L, name=\"data\""])?;
            fill(&nvme, 1, |part| ext4(part, &canary_dir))?;
        }
        Some(bootloader) => {
            // The ESP holds the demo's UKI (about 27 MB with the browser stack's initrd).
            partitioned_disk(
                &nvme,
                80,
                &[
                    "size=48MiB, type=U, name=\"EFI system partition\"",
                    "size=24MiB, type=L, name=\"data\"",
                ],
            )?;
            fill(&nvme, 1, |part| esp(part, bootloader, dir))?;
            fill(&nvme, 2, |part| ext4(part, &canary_dir))?;
        }
    }

    let sata = dir.join("sata.raw");
    partitioned_disk(
        &sata,
        48,
        &[
            "size=24MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"data\"",
            "size=16MiB, type=S, name=\"swap\"",
        ],
    )?;
    fill(&sata, 1, |part| vfat(part, &canary_dir))?;
    fill(&sata, 2, |part| tool(Command::new("mkswap").arg(part)))?;

    let virtio = dir.join("virtio.raw");
    std::fs::File::create(&virtio)?.set_len(32 << 20)?;
    let key = dir.join("luks.key");
    std::fs::write(&key, "not a secret: a test LUKS key\n")?;
    tool(
        Command::new("cryptsetup")
            .args(["luksFormat", "--type", "luks2", "--batch-mode"])
            .args(["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"])
            .arg("--key-file")
            .arg(&key)
            .arg(&virtio),
    )?;

    let usb = make_usb_stick(dir)?;

    Ok(vec![
        HostileDisk {
            path: nvme,
            bus: Bus::Nvme,
            what: if nvme_esp.is_some() {
                "NVMe: ESP with a bootloader + ext4"
            } else {
                "NVMe: ext4"
            },
        },
        HostileDisk {
            path: sata,
            bus: Bus::Sata,
            what: "SATA: vfat + swap",
        },
        HostileDisk {
            path: virtio,
            bus: Bus::Virtio,
            what: "virtio: LUKS2",
        },
        usb,
    ])
}

/// A USB stick with a vfat partition and the canary file, as `usb.raw` in `dir`.
pub fn make_usb_stick(dir: &Path) -> Result<HostileDisk> {
    let canary_dir = dir.join("canary");
    std::fs::create_dir_all(&canary_dir)?;
    std::fs::write(canary_dir.join("canary.txt"), CANARY)?;
    let path = dir.join("usb.raw");
    partitioned_disk(
        &path,
        32,
        &["size=24MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name=\"usb\""],
    )?;
    fill(&path, 1, |part| vfat(part, &canary_dir))?;
    Ok(HostileDisk {
        path,
        bus: Bus::Usb,
        what: "USB stick: vfat",
    })
}

#[derive(Debug, Deserialize)]
struct SfdiskDump {
    partitiontable: SfdiskTable,
}

#[derive(Debug, Deserialize)]
struct SfdiskTable {
    partitions: Vec<SfdiskPartition>,
}

#[derive(Debug, Deserialize)]
struct SfdiskPartition {
    start: u64,
    size: u64,
}

/// A sparse disk of `mib` MiB with a GPT made by sfdisk from `partitions` lines.
fn partitioned_disk(path: &Path, mib: u64, partitions: &[&str]) -> Result<()> {
    std::fs::File::create(path)?.set_len(mib << 20)?;
    let script = format!("label: gpt\n{}\n", partitions.join("\n"));
    let mut child = Command::new("sfdisk")
        .arg("--quiet")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run sfdisk (Debian package fdisk)")?;
    child
        .stdin
        .take()
        .context("sfdisk stdin")?
        .write_all(script.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "sfdisk {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Makes partition `number` (1-based) of `disk` with `make` on a scratch file,
/// then copies it into place.
fn fill(disk: &Path, number: usize, make: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dump = Command::new("sfdisk")
        .arg("-J")
        .arg(disk)
        .output()
        .context("cannot run sfdisk -J")?;
    let table: SfdiskDump = serde_json::from_slice(&dump.stdout)
        .with_context(|| format!("sfdisk -J {} is not the expected JSON", disk.display()))?;
    let part = table
        .partitiontable
        .partitions
        .get(number - 1)
        .with_context(|| format!("{} has no partition {number}", disk.display()))?;
    let scratch = disk.with_extension(format!("part{number}"));
    std::fs::File::create(&scratch)?.set_len(part.size * 512)?;
    make(&scratch)?;
    let bytes = std::fs::read(&scratch)?;
    let mut out = std::fs::OpenOptions::new().write(true).open(disk)?;
    out.seek(SeekFrom::Start(part.start * 512))?;
    out.write_all(&bytes)?;
    std::fs::remove_file(&scratch)?;
    Ok(())
}

fn ext4(part: &Path, content: &Path) -> Result<()> {
    tool(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "pc-data", "-d"])
            .arg(content)
            .arg(part),
    )
}

fn vfat(part: &Path, content: &Path) -> Result<()> {
    tool(Command::new("mkfs.vfat").args(["-n", "PCDATA"]).arg(part))?;
    tool(
        Command::new("mcopy")
            .arg("-i")
            .arg(part)
            .arg(content.join("canary.txt"))
            .arg("::canary.txt"),
    )
}

fn esp(part: &Path, bootloader: &[u8], dir: &Path) -> Result<()> {
    tool(Command::new("mkfs.vfat").args(["-n", "OTHER-OS"]).arg(part))?;
    let file = dir.join("other-os-bootx64.efi");
    std::fs::write(&file, bootloader)?;
    tool(
        Command::new("mmd")
            .arg("-i")
            .arg(part)
            .args(["::EFI", "::EFI/BOOT"]),
    )?;
    tool(
        Command::new("mcopy")
            .arg("-i")
            .arg(part)
            .arg(&file)
            .arg("::EFI/BOOT/BOOTX64.EFI"),
    )
}

fn tool(command: &mut Command) -> Result<()> {
    crate::run_tool(command).map(drop)
}
