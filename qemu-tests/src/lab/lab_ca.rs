//! The lab's certificate authority at work: revoking a stick's certificate the
//! way an admin does, with `openssl ca` over the TEST CA of
//! `qemu-tests/fixtures/vpn` (its key is public, for the scenarios only).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run_tool;

/// The TEST CA that issues the sticks' certificates (fixture names).
const CA_CERT: &str = "test-ca.pem";
const CA_KEY: &str = "test-ca.key";

/// A CRL signed by the TEST CA that lists `certificates` (fixture file names) as
/// revoked for key compromise, written to `dir/crl.pem`. It names the CA's key
/// (authorityKeyIdentifier): charon finds a CA's CRLs by that key. `openssl ca` keeps its
/// database in `dir`, so each call revokes on top of the earlier ones.
pub fn revoke(fixtures: &Path, dir: &Path, certificates: &[&str]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join("ca.cnf");
    let index = dir.join("index.txt");
    if !index.exists() {
        std::fs::write(&index, "").with_context(|| format!("cannot create {}", index.display()))?;
    }
    std::fs::write(
        &config,
        format!(
            "[ca]\ndefault_ca = lab\n[lab]\ndatabase = {index}\ncertificate = {cert}\n\
             private_key = {key}\ndefault_md = sha256\ndefault_crl_days = 30\n\
             crl_extensions = crl_ext\n[crl_ext]\nauthorityKeyIdentifier = keyid:always\n",
            index = index.display(),
            cert = fixtures.join(CA_CERT).display(),
            key = fixtures.join(CA_KEY).display(),
        ),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;
    for certificate in certificates {
        run_tool(
            Command::new("openssl")
                .args(["ca", "-batch", "-config"])
                .arg(&config)
                .arg("-revoke")
                .arg(fixtures.join(certificate))
                .args(["-crl_reason", "keyCompromise"]),
        )
        .with_context(|| format!("revoking {certificate}"))?;
    }
    let crl = dir.join("crl.pem");
    run_tool(
        Command::new("openssl")
            .args(["ca", "-batch", "-gencrl", "-config"])
            .arg(&config)
            .arg("-out")
            .arg(&crl),
    )
    .context("signing the CRL")?;
    Ok(crl)
}

/// The serial numbers a CRL lists, as `openssl crl -text` prints them (hex).
pub fn revoked_serials(crl: &Path) -> Result<Vec<String>> {
    let text = run_tool(
        Command::new("openssl")
            .args(["crl", "-noout", "-text", "-in"])
            .arg(crl),
    )?;
    Ok(parse_revoked_serials(&text))
}

fn parse_revoked_serials(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|s| s.trim().to_ascii_uppercase())
        .collect()
}

/// A certificate's serial number (hex, as `openssl x509 -serial` prints it).
pub fn serial(certificate: &Path) -> Result<String> {
    let text = run_tool(
        Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(certificate),
    )?;
    Ok(text
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_uppercase())
}

/// A hex serial as swanctl lists it: lower case, bytes joined by colons
/// (`3D62CF` -> `3d:62:cf`).
pub fn colon_hex(serial: &str) -> String {
    let digits = serial.to_ascii_lowercase();
    let digits = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_come_from_the_revoked_list() {
        let text = "Certificate Revocation List (CRL):\n        Version 2 (0x1)\n\
                    Revoked Certificates:\n    Serial Number: 1A2b\n        \
                    Revocation Date: Dec  5 08:00:00 2026 GMT\n    Serial Number: 03\n";
        assert_eq!(parse_revoked_serials(text), vec!["1A2B", "03"]);
    }

    #[test]
    fn serials_as_swanctl_lists_them() {
        for (serial, listed) in [("3D62CF", "3d:62:cf"), ("ABC", "0a:bc"), ("01", "01")] {
            assert_eq!(colon_hex(serial), listed, "{serial}");
        }
    }

    #[test]
    fn the_test_ca_revokes_one_stick_and_not_the_other() {
        let fixtures = crate::workspace_root().join("qemu-tests/fixtures/vpn");
        let dir = tempfile::tempdir().expect("tempdir");
        let crl = revoke(&fixtures, dir.path(), &["test-stick-b.pem"]).expect("CRL");
        let listed = revoked_serials(&crl).expect("serials");
        let b = serial(&fixtures.join("test-stick-b.pem")).expect("serial b");
        let a = serial(&fixtures.join("test-stick-a.pem")).expect("serial a");
        assert_eq!(listed, vec![b]);
        assert!(!listed.contains(&a));
    }
}
