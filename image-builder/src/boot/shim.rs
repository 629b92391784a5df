//! Debian's Microsoft-signed shim in front of the UKI (`[signing] shim`), so the
//! stick boots with Secure Boot on PCs that trust only Microsoft's keys.
//!
//! The chain: the firmware starts shim (it carries Microsoft's signatures and
//! ours: the firmware accepts an image when any one signature chains to its db,
//! so PCs with our own keys keep booting); shim starts Debian's signed GRUB
//! (trusted through the Debian key built into shim); GRUB's script on the ESP
//! chainloads the signed UKI, which shim (hooking the firmware's LoadImage)
//! verifies against the firmware's db and its MOK list. When that fails, as on
//! the first start on a PC with only Microsoft's keys, the script shows what to
//! do in German and English and starts MokManager, with which the person enrols
//! our db certificate (on the ESP in DER) once. The script then restarts the PC:
//! it never leaves GRUB's command line open.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};
use stick_manifest::boot_trust::ShimRecord;

use crate::boot::uki::UkiSigning;
use crate::disk::esp::EspFile;
use crate::runner::{require_tool, CommandRunExt};
use crate::trees::tools::{in_work, ToolsTree};

/// Where the firmware starts a removable medium: shim.
pub const SHIM_ESP_PATH: &str = "EFI/BOOT/BOOTX64.EFI";
/// The second stage shim starts from its own folder (its built-in default).
pub const GRUB_ESP_PATH: &str = "EFI/BOOT/grubx64.efi";
/// Where Debian's signed GRUB reads its script (its built-in prefix).
pub const GRUB_CONFIG_ESP_PATH: &str = "EFI/debian/grub.cfg";
/// The signed UKI, chainloaded by GRUB's script.
pub const UKI_BEHIND_SHIM_ESP_PATH: &str = "EFI/BOOT/stick.efi";
/// MokManager: shim's and the script's way to enrol a key.
pub const MOK_MANAGER_ESP_PATH: &str = "EFI/BOOT/mmx64.efi";
/// Our db certificate (DER) for MokManager's "Enroll key from disk": at the top
/// of the ESP, named so that staff pick the right file.
pub const MOK_CERTIFICATE_ESP_PATH: &str = "ENROLL-STICK-KEY.cer";
/// The first line of the guide GRUB shows when the UKI is not trusted (English).
pub const FIRST_START_HEADLINE: &str = "First start of this stick on this PC?";
/// The guide's helpdesk code (docs/helpdesk.md).
pub const FIRST_START_CODE: &str = "SBS-BOOT-07";

/// In the tools tree (Debian's `shim-signed`, `shim-helpers-amd64-signed`,
/// `grub-efi-amd64-signed`).
const SHIM_SIGNED: &str = "usr/lib/shim/shimx64.efi.signed";
const MOK_MANAGER_SIGNED: &str = "usr/lib/shim/mmx64.efi.signed";
const GRUB_SIGNED: &str = "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed";
const SHIM_PACKAGE: &str = "shim-signed";
const GRUB_PACKAGE: &str = "grub-efi-amd64-signed";

/// Shim, GRUB, MokManager and the certificate to enrol, ready for the ESP.
#[derive(Debug, Clone)]
pub struct ShimLoader {
    pub shim: Vec<u8>,
    pub grub: Vec<u8>,
    pub mok_manager: Vec<u8>,
    pub certificate_der: Vec<u8>,
    /// sha256 (hex) of the certificate built into shim.
    pub vendor_sha256: String,
    pub record: ShimRecord,
}

impl ShimLoader {
    /// Signs Debian's shim with the db key beside Microsoft's signatures and
    /// reads who signed shim, GRUB and MokManager.
    pub fn prepare(tools: &ToolsTree, work: &Path, signing: &UkiSigning) -> Result<ShimLoader> {
        let (_, unsigned) =
            stage_from_tools(tools, work, SHIM_SIGNED, SHIM_PACKAGE, "shimx64.efi")?;
        let (signed, _) =
            crate::boot::uki::sign(tools, work, signing, &unsigned, "shimx64.signed.efi")?;
        let shim = std::fs::read(&signed).context("cannot read the signed shim")?;
        let (mok_manager, staged_mok_manager) = stage_from_tools(
            tools,
            work,
            MOK_MANAGER_SIGNED,
            "shim-helpers-amd64-signed",
            "mmx64.efi",
        )?;
        let (grub, staged_grub) =
            stage_from_tools(tools, work, GRUB_SIGNED, GRUB_PACKAGE, "grubx64.efi")?;
        let vendor = vendor_certificate(&shim)?.to_vec();
        let cert_pem = std::fs::read_to_string(&signing.cert).with_context(|| {
            format!(
                "cannot read the Secure Boot certificate {}",
                signing.cert.display()
            )
        })?;
        let record = ShimRecord {
            version: package_version(tools, work, SHIM_PACKAGE)?,
            shim_signers: signers(tools, work, &signed)?,
            grub_version: package_version(tools, work, GRUB_PACKAGE)?,
            grub_signers: signers(tools, work, &staged_grub)?,
            mok_manager_signers: signers(tools, work, &staged_mok_manager)?,
            shim_vendor_certificate: der_subject(&vendor)?,
            mok_certificate: MOK_CERTIFICATE_ESP_PATH.to_string(),
        };
        tracing::info!(
            "shim {} signed by {}; it trusts {} on its own",
            record.version,
            record.shim_signers.join(" and "),
            record.shim_vendor_certificate
        );
        Ok(ShimLoader {
            shim,
            grub,
            mok_manager,
            certificate_der: certificate_der(&cert_pem).with_context(|| {
                format!(
                    "{} (key `signing.secure-boot-cert`) is not a PEM certificate",
                    signing.cert.display()
                )
            })?,
            vendor_sha256: hex::encode(Sha256::digest(&vendor)),
            record,
        })
    }

    /// The ESP's boot files with shim in front.
    pub fn esp_files(&self, uki: &[u8]) -> Vec<EspFile> {
        let file = |path: &str, contents: &[u8]| EspFile {
            path: path.into(),
            contents: contents.to_vec(),
        };
        vec![
            file(MOK_CERTIFICATE_ESP_PATH, &self.certificate_der),
            file(SHIM_ESP_PATH, &self.shim),
            file(GRUB_ESP_PATH, &self.grub),
            file(UKI_BEHIND_SHIM_ESP_PATH, uki),
            file(MOK_MANAGER_ESP_PATH, &self.mok_manager),
            file(GRUB_CONFIG_ESP_PATH, grub_script().as_bytes()),
        ]
    }
}

/// GRUB's script: start the UKI; if shim does not trust it, show the guide (DE,
/// EN; ASCII, as every firmware console shows it), start MokManager on Esc, then
/// restart the PC.
pub fn grub_script() -> String {
    let uki = UKI_BEHIND_SHIM_ESP_PATH;
    let mok_manager = MOK_MANAGER_ESP_PATH;
    let guide = [
        "================================================================",
        " Erster Start dieses Sticks auf diesem PC?",
        &format!(" {FIRST_START_HEADLINE}"),
        "================================================================",
        "",
        " DE: Dieser PC kennt den Schluessel Ihrer Organisation noch nicht.",
        "     Tragen Sie ihn einmalig ein. Nach Esc startet MokManager (englisch):",
        "     1. eine Taste bei 'Press any key to perform MOK management'",
        "     2. 'Enroll key from disk'   3. 'STICK-ESP'",
        &format!("     4. '{MOK_CERTIFICATE_ESP_PATH}'   5. 'Continue'   6. 'Yes'   7. 'Reboot'"),
        "     Kommt diese Seite NACH dem Eintragen wieder, ist der Stick veraendert:",
        "     nicht benutzen, Helpdesk anrufen.",
        "",
        " EN: This PC does not know your organisation's key yet. Enrol it once.",
        "     After Esc, MokManager starts:",
        "     1. any key at 'Press any key to perform MOK management'",
        "     2. 'Enroll key from disk'   3. 'STICK-ESP'",
        &format!("     4. '{MOK_CERTIFICATE_ESP_PATH}'   5. 'Continue'   6. 'Yes'   7. 'Reboot'"),
        "     If this page comes back AFTER the enrolment, the stick was changed:",
        "     do not use it, call the helpdesk.",
        "",
        &format!(" Helpdesk-Code: {FIRST_START_CODE}        Esc: weiter / continue"),
    ];
    let mut script = format!(
        "# Written by image-builder. Shim verifies the UKI when GRUB chainloads it.\n\
         chainloader /{uki}\n\
         boot\n\
         # Not trusted (not enrolled yet, or changed): the guide, then MokManager.\n\
         clear\n"
    );
    for line in guide {
        script.push_str(&format!("echo \"{line}\"\n"));
    }
    script.push_str(&format!(
        "sleep --interruptible 3600\n\
         chainloader /{mok_manager}\n\
         boot\n\
         # Never GRUB's command line: restart.\n\
         reboot\n"
    ));
    script
}

/// Copies `in_tree` (a path in the tools tree, from Debian's `package`) into the
/// build folder as `name`, where the tools see it; returns its bytes and path.
fn stage_from_tools(
    tools: &ToolsTree,
    work: &Path,
    in_tree: &str,
    package: &str,
    name: &str,
) -> Result<(Vec<u8>, PathBuf)> {
    let source = tools.root().join(in_tree);
    let bytes = std::fs::read(&source).with_context(|| {
        format!(
            "cannot read {} from the tools tree (Debian package {package})",
            source.display()
        )
    })?;
    let staged = work.join(name);
    std::fs::write(&staged, &bytes)
        .with_context(|| format!("cannot stage {} in the build folder", staged.display()))?;
    Ok((bytes, staged))
}

/// The DER bytes of the first certificate in a PEM text.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN).context("no BEGIN CERTIFICATE line")? + BEGIN.len();
    let len = pem[start..].find(END).context("no END CERTIFICATE line")?;
    let body: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .context("the certificate is not base64")
}

/// sha256 (hex) of the DER form of a PEM certificate file: how the kiosk finds
/// our key in the firmware's db and in shim's MOK list.
pub fn certificate_sha256(cert: &Path) -> Result<String> {
    let pem = std::fs::read_to_string(cert)
        .with_context(|| format!("cannot read the Secure Boot certificate {}", cert.display()))?;
    let der = certificate_der(&pem).with_context(|| {
        format!(
            "{} (key `signing.secure-boot-cert`) is not a PEM certificate",
            cert.display()
        )
    })?;
    Ok(hex::encode(Sha256::digest(der)))
}

/// The certificate built into shim: its `.vendor_cert` section starts with four
/// little-endian u32 (authorized size, deauthorized size, authorized offset,
/// deauthorized offset), offsets from the section's start.
pub fn vendor_certificate(shim: &[u8]) -> Result<&[u8]> {
    let section = crate::boot::pe::section(shim, ".vendor_cert")?
        .context("shim has no .vendor_cert section")?;
    let field = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(section.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    let (Some(size), Some(offset)) = (field(0), field(8)) else {
        bail!("shim's .vendor_cert section is too short");
    };
    match section.get(offset..offset.saturating_add(size)) {
        Some(cert) if size > 0 => Ok(cert),
        _ => bail!("shim's .vendor_cert section holds no certificate"),
    }
}

/// The leaf signer of each signature in `sbverify --list` output, in order.
pub fn parse_signers(list: &str) -> Vec<String> {
    let mut signers = Vec::new();
    let mut in_certificates = false;
    let mut have_leaf = false;
    for line in list.lines().map(str::trim) {
        if line.starts_with("signature ") {
            in_certificates = false;
            have_leaf = false;
        } else if line == "image signature certificates:" {
            in_certificates = true;
        } else if let Some(subject) = line.strip_prefix("- subject:") {
            if in_certificates && !have_leaf {
                signers.push(subject.trim().to_string());
                have_leaf = true;
            }
        }
    }
    signers
}

fn signers(tools: &ToolsTree, work: &Path, file: &Path) -> Result<Vec<String>> {
    let list = tools
        .command(work, "sbverify")
        .arg("--list")
        .arg(in_work(work, file))
        .run_capture()?;
    let signers = parse_signers(&list);
    if signers.is_empty() {
        bail!("{} carries no signature", file.display());
    }
    Ok(signers)
}

fn package_version(tools: &ToolsTree, work: &Path, package: &str) -> Result<String> {
    let version = tools
        .command(work, "dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .run_capture()?;
    Ok(version.trim().to_string())
}

/// The subject of a DER certificate, by openssl.
fn der_subject(der: &[u8]) -> Result<String> {
    require_tool("openssl", "openssl")?;
    let file = tempfile::NamedTempFile::new().context("cannot create a temporary file")?;
    std::fs::write(file.path(), der).context("cannot write shim's vendor certificate")?;
    let text = Command::new("openssl")
        .args([
            "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
        ])
        .arg(file.path())
        .run_capture()
        .context("shim's vendor certificate is not X.509")?;
    Ok(text
        .trim()
        .strip_prefix("subject=")
        .unwrap_or(text.trim())
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sbverify --list` of Debian's shim after our sbsign (trimmed).
    const LIST: &str = "\
signature 1
image signature issuers:
 - /C=US/O=Microsoft Corporation/CN=Microsoft Corporation UEFI CA 2011
image signature certificates:
 - subject: /C=US/O=Microsoft Corporation/CN=Microsoft Windows UEFI Driver Publisher
   issuer:  /C=US/O=Microsoft Corporation/CN=Microsoft Corporation UEFI CA 2011
 - subject: /C=US/O=Microsoft Corporation/CN=Microsoft Corporation UEFI CA 2011
   issuer:  /C=US/O=Microsoft Corporation/CN=Microsoft Third Party Marketplace Root
signature 2
image signature issuers:
 - /O=TEST ONLY/CN=TEST ONLY Secure Boot DB
image signature certificates:
 - subject: /O=TEST ONLY/CN=TEST ONLY Secure Boot DB
   issuer:  /O=TEST ONLY/CN=TEST ONLY Secure Boot DB
";

    #[test]
    fn signers_are_each_signatures_leaf() {
        let cases: &[(&str, &[&str])] = &[
            (
                LIST,
                &[
                    "/C=US/O=Microsoft Corporation/CN=Microsoft Windows UEFI Driver Publisher",
                    "/O=TEST ONLY/CN=TEST ONLY Secure Boot DB",
                ],
            ),
            ("No signature table present\n", &[]),
            ("", &[]),
        ];
        for (list, want) in cases {
            assert_eq!(parse_signers(list), *want, "{list}");
        }
    }

    #[test]
    fn the_grub_script_starts_the_uki_then_guides_then_restarts() {
        let script = grub_script();
        let commands: Vec<&str> = script
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("echo "))
            .collect();
        assert_eq!(
            commands,
            [
                "chainloader /EFI/BOOT/stick.efi",
                "boot",
                "clear",
                "sleep --interruptible 3600",
                "chainloader /EFI/BOOT/mmx64.efi",
                "boot",
                "reboot"
            ]
        );
        let echoed: Vec<&str> = script.lines().filter(|l| l.starts_with("echo ")).collect();
        assert!(echoed.iter().any(|l| l.contains(FIRST_START_HEADLINE)));
        assert!(echoed.iter().any(|l| l.contains(FIRST_START_CODE)));
        assert!(echoed.iter().any(|l| l.contains(MOK_CERTIFICATE_ESP_PATH)));
        for line in &echoed {
            // GRUB takes the words between the quotes as they are; firmware
            // consoles show ASCII everywhere.
            let text = &line["echo \"".len()..line.len() - 1];
            assert!(!text.contains('"') && text.is_ascii(), "{line}");
            assert!(text.len() <= 80, "fits a firmware console: {line}");
        }
    }

    #[test]
    fn the_committed_test_certificate_decodes_to_der() {
        let pem = include_str!("../../../keys/test-sb-db.crt");
        let der = certificate_der(pem).expect("decodes");
        // A DER certificate is one SEQUENCE with a two-byte long length.
        assert_eq!(&der[..2], &[0x30, 0x82]);
        let len = u16::from_be_bytes([der[2], der[3]]) as usize;
        assert_eq!(der.len(), len + 4);
        for bad in [
            "",
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        ] {
            assert!(certificate_der(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vendor_certificate_is_read_from_its_table() {
        let cert = b"0\x82certificate";
        let mut section = Vec::new();
        for v in [cert.len() as u32, 0, 16, 16 + cert.len() as u32] {
            section.extend_from_slice(&v.to_le_bytes());
        }
        section.extend_from_slice(cert);
        let pe = crate::boot::pe::tests_support::pe_with(&[(".vendor_cert", &section)]);
        assert_eq!(vendor_certificate(&pe).expect("reads"), cert);
        let empty = crate::boot::pe::tests_support::pe_with(&[(".vendor_cert", &[0u8; 16])]);
        assert!(vendor_certificate(&empty).is_err());
        let none = crate::boot::pe::tests_support::pe_with(&[(".text", b"x")]);
        assert!(vendor_certificate(&none).is_err());
    }
}
