//! The unified kernel image: systemd-stub + kernel + initrd (dracut's and ours) +
//! the command line that carries the verity root hash + os-release, made by
//! ukify in the tools tree and signed with the db key for Secure Boot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::runner::{require_tool, CommandRunExt};
use crate::trees::tools::{in_work, InToolsTree, ToolsTree, EFI_STUB};

/// Where the UKI sits on the ESP: the removable-media default boot path.
pub const UKI_ESP_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

/// Kernel command line fixed by the builder (the root hash is prepended).
const BASE_CMDLINE: &[&str] = &[
    "root=/dev/mapper/root",
    "rootfstype=squashfs",
    "ro",
    "systemd.volatile=overlay",
    "systemd.gpt_auto=0",
    "rd.shell=0",
    "rd.emergency=poweroff",
    // Hardening, whether or not the firmware enforces Secure Boot.
    "lockdown=integrity",
    "module.sig_enforce=1",
    "nohibernate",
    // Devices' DMA only through the IOMMU, strictly (no lazy unmapping, no
    // passthrough), and no bus mastering while the EFI stub hands over.
    "intel_iommu=on",
    "amd_iommu=force_isolation",
    "iommu.strict=1",
    "iommu.passthrough=0",
    "efi=disable_early_pci_dma",
    // No magic SysRq keys from the first moment: the sysctl file of the root only
    // applies after switch-root, this applies in the initrd too.
    "sysctl.kernel.sysrq=0",
    // No USB device gets a driver by default, from the first moment: the initrd
    // lets in the stick the firmware booted from, USBGuard the allowed classes.
    "usbcore.authorized_default=0",
    // No swap, whatever a disk offers (the storage lock keeps disks out as well).
    "systemd.swap=0",
    "console=tty0",
    "console=ttyS0,115200",
];

/// Ends the signed command line. The kernel (its EFI stub and its early and
/// late parameter parsers) stops at `--` and hands what follows to init as
/// arguments, so whatever systemd-stub appends after the signed words (SMBIOS
/// `io.systemd.stub.kernel-cmdline-extra`, command-line addons) sets no kernel
/// parameter, `rdinit=` included. The initrd's first program (the kiosk's init
/// gate) then refuses any command line that is not exactly the signed one.
pub const CMDLINE_END: &str = "--";

/// The kernel command line: the root hash, the builder's fixed part, no IPv6
/// stack unless the network policy wants one, the config's extras, then `--`.
pub fn kernel_cmdline(root_hash: &str, ipv6: bool, extra: &[String]) -> String {
    let mut cmdline = vec![format!("roothash={root_hash}")];
    cmdline.extend(BASE_CMDLINE.iter().map(|s| s.to_string()));
    if !ipv6 {
        // No IPv6 stack at all: nothing to autoconfigure, solicit or leak.
        cmdline.push("ipv6.disable=1".to_string());
    }
    cmdline.extend(extra.iter().cloned());
    cmdline.push(CMDLINE_END.to_string());
    cmdline.join(" ")
}

/// What goes into the UKI.
#[derive(Debug)]
pub struct UkiParts<'a> {
    pub vmlinuz: &'a Path,
    pub initrd: &'a Path,
    pub kernel_version: &'a str,
    /// The customized root: its os-release and the files the initrd needs too.
    pub root: &'a Path,
    pub cmdline: &'a str,
    /// File times in the extra initrd archive.
    pub fs_time: u64,
}

/// The db key and certificate that sign the UKI.
#[derive(Debug)]
pub struct UkiSigning {
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// The UKI as it goes onto the ESP.
#[derive(Debug)]
pub struct Uki {
    pub bytes: Vec<u8>,
    pub cmdline: String,
    /// "subject, sha256 fingerprint" of the db certificate; None when unsigned.
    pub signer: Option<String>,
}

impl Uki {
    /// Makes the UKI with ukify and signs it when a db key is given; checks that
    /// the signed file carries the command line it was given.
    pub fn build(
        tools: &ToolsTree,
        work: &Path,
        parts: &UkiParts,
        signing: Option<&UkiSigning>,
    ) -> Result<Uki> {
        let unsigned = assemble(tools, work, parts)?;
        let (path, signer) = match signing {
            Some(signing) => {
                let (signed, signer) = sign(tools, work, signing, &unsigned, "uki.signed.efi")?;
                (signed, Some(signer))
            }
            None => (unsigned, None),
        };
        let bytes = std::fs::read(&path).context("cannot read the UKI")?;
        check_cmdline(&bytes, parts.cmdline)?;
        Ok(Uki {
            bytes,
            cmdline: parts.cmdline.to_string(),
            signer,
        })
    }
}

/// Stages the parts in the work folder and runs ukify; returns the UKI's path.
fn assemble(tools: &ToolsTree, work: &Path, parts: &UkiParts) -> Result<PathBuf> {
    std::fs::write(work.join("cmdline"), parts.cmdline).context("cannot write cmdline")?;
    std::fs::copy(
        parts.root.join("usr/lib/os-release"),
        work.join("os-release"),
    )
    .context("cannot copy os-release")?;
    std::fs::copy(parts.vmlinuz, work.join("vmlinuz")).context("cannot copy the kernel")?;
    std::fs::copy(parts.initrd, work.join("initrd.img")).context("cannot copy the initrd")?;
    let extra = crate::boot::initrd_extra::cpio_newc(
        &crate::boot::initrd_extra::entries(parts.root, parts.cmdline)
            .context("cannot collect the kiosk's files for the initrd")?,
        parts.fs_time as u32,
    )?;
    std::fs::write(work.join("initrd-extra.cpio"), extra)
        .context("cannot write initrd-extra.cpio")?;
    // The kernel unpacks each archive of the initrd by its own magic. zstd, not
    // xz: under TCG the kernel unpacked an xz initrd in 9.2 s against 2.0 s for
    // gzip (docs/benchmarks.md). Single-threaded: the same bytes everywhere.
    tools
        .command(work, "zstd")
        .args(["--force", "--quiet", "-19", "--threads=1"])
        .arg("/work/initrd-extra.cpio")
        .run_logged()?;
    let uki = work.join("uki.efi");
    tools
        .command(work, "ukify")
        .arg("build")
        .arg("--linux=/work/vmlinuz")
        .arg("--initrd=/work/initrd.img")
        .arg("--initrd=/work/initrd-extra.cpio.zst")
        .arg("--cmdline=@/work/cmdline")
        .arg("--os-release=@/work/os-release")
        .arg(format!("--uname={}", parts.kernel_version))
        .arg(format!("--stub={EFI_STUB}"))
        .arg(format!("--output={}", in_work(work, &uki)))
        .run_logged()?;
    Ok(uki)
}

/// Signs a PE file (the UKI, or shim beside Microsoft's signatures) with sbsign in
/// the tools tree into `work/signed_name`; the key's copy in the work folder is
/// readable by root only and removed afterwards. Returns the signed file and the
/// signer as the manifest records it.
pub(crate) fn sign(
    tools: &ToolsTree,
    work: &Path,
    signing: &UkiSigning,
    unsigned: &Path,
    signed_name: &str,
) -> Result<(PathBuf, String)> {
    let signer = describe_certificate(&signing.cert)?;
    let work_key = work.join("db.key");
    let work_cert = work.join("db.crt");
    copy_private(&signing.key, &work_key)?;
    std::fs::copy(&signing.cert, &work_cert).with_context(|| {
        format!(
            "cannot read the Secure Boot certificate {}",
            signing.cert.display()
        )
    })?;
    let signed = work.join(signed_name);
    crate::boot::secure_boot::sign_pe(
        &InToolsTree { tree: tools, work },
        &work_key,
        &work_cert,
        unsigned,
        &signed,
    )?;
    std::fs::remove_file(&work_key).context("cannot remove the key copy")?;
    tracing::info!("{signed_name} signed for Secure Boot by {signer}");
    Ok((signed, signer))
}

/// The UKI's `.cmdline` section must be the command line given to ukify.
fn check_cmdline(uki: &[u8], cmdline: &str) -> Result<()> {
    let embedded =
        crate::boot::pe::section(uki, ".cmdline")?.context("the UKI has no .cmdline section")?;
    if String::from_utf8_lossy(embedded)
        .trim_end_matches('\0')
        .trim()
        != cmdline
    {
        bail!("the UKI's .cmdline section differs from the command line given to ukify");
    }
    Ok(())
}

/// "subject, sha256 fingerprint" of a PEM certificate, as the manifest records it.
fn describe_certificate(cert: &Path) -> Result<String> {
    require_tool("openssl", "openssl")?;
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-fingerprint",
            "-sha256",
            "-nameopt",
            "RFC2253",
            "-in",
        ])
        .arg(cert)
        .run_capture()
        .with_context(|| {
            format!(
                "{} (key `signing.secure-boot-cert`) is not a PEM X.509 certificate",
                cert.display()
            )
        })?;
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| {
                l.split_once('=')
                    .filter(|(k, _)| k.trim().ends_with(prefix))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    Ok(format!(
        "{}, sha256 {}",
        field("subject"),
        field("Fingerprint").replace(':', "").to_lowercase()
    ))
}

/// Copies a private key into the build folder readable by root only.
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let bytes = std::fs::read(from).with_context(|| {
        format!(
            "cannot read the Secure Boot key {} (key `signing.secure-boot-key`)",
            from.display()
        )
    })?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .and_then(|mut f| f.write_all(&bytes))
        .with_context(|| format!("cannot write {}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_carries_the_root_hash_first_and_the_extras_last() {
        let extra = ["quiet".to_string()];
        let cases = [
            (false, &extra[..], true, "quiet"),
            (true, &extra[..], false, "quiet"),
            (false, &[][..], true, "ipv6.disable=1"),
        ];
        for (ipv6, extra, no_ipv6, before_end) in cases {
            let cmdline = kernel_cmdline("ab12", ipv6, extra);
            let words: Vec<&str> = cmdline.split(' ').collect();
            assert_eq!(words[0], "roothash=ab12", "{cmdline}");
            assert_eq!(words[1..=BASE_CMDLINE.len()], *BASE_CMDLINE, "{cmdline}");
            assert_eq!(words.contains(&"ipv6.disable=1"), no_ipv6, "{cmdline}");
            assert_eq!(words[words.len() - 2..], [before_end, "--"], "{cmdline}");
            assert_eq!(words.iter().filter(|w| **w == "--").count(), 1, "{cmdline}");
        }
    }
}
