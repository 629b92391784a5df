//! A person's smartcard for the token scenario: QEMU's emulated CCID reader
//! (`usb-ccid`) with an emulated CAC card (`ccid-card-emulated`, libcacard),
//! whose three keys and certificates live in an NSS database on the host that
//! this module makes: RSA keys, certificates issued by the lab's TEST CA, the
//! database protected by the card's PIN (libcacard checks a VERIFY against it).
//!
//! The reader sits on a UHCI controller, not on the xHCI one the stick uses:
//! QEMU's usb-ccid answers a reply of exactly 64 bytes (its packet size) with a
//! separate zero-length packet, which an xHCI transfer does not take, so the
//! next reply arrives empty and every later one a command late (measured with
//! pcscd's APDU log: OpenSC's CAC driver then refuses the card). UHCI moves one
//! packet per transfer descriptor, and the zero-length packet ends the transfer
//! as USB means it to.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run_tool;

/// The card's three certificates, as libcacard wants them (nicknames in the
/// NSS database); the first is the CAC ID certificate, CKA_ID 0001 in OpenSC.
const NICKNAMES: [&str; 3] = ["card-id", "card-sign", "card-encrypt"];

/// An emulated card: its NSS database and who it belongs to.
#[derive(Debug)]
pub struct EmulatedCard {
    db: PathBuf,
    /// The common name of the first certificate (the one the stick uses).
    pub common_name: String,
}

impl EmulatedCard {
    /// Issues a card for `common_name` in `dir`: three RSA keys and TEST
    /// certificates, in an NSS database whose password is `pin`.
    pub fn issue(dir: &Path, common_name: &str, pin: &str) -> Result<EmulatedCard> {
        let db = dir.join("card-db");
        std::fs::create_dir_all(&db).with_context(|| format!("cannot create {}", db.display()))?;
        let pin_file = dir.join("card-pin");
        std::fs::write(&pin_file, pin).context("cannot write the card's PIN file")?;
        run_tool(
            Command::new("certutil")
                .args(["-N", "-d"])
                .arg(format!("sql:{}", db.display()))
                .arg("-f")
                .arg(&pin_file),
        )
        .context("making the card's NSS database")?;
        for (index, nickname) in NICKNAMES.iter().enumerate() {
            let name = if index == 0 {
                common_name.to_string()
            } else {
                format!("{nickname}.{common_name}")
            };
            let p12 = issue_key(dir, nickname, &name)?;
            run_tool(
                Command::new("pk12util")
                    .arg("-i")
                    .arg(&p12)
                    .arg("-d")
                    .arg(format!("sql:{}", db.display()))
                    .arg("-k")
                    .arg(&pin_file)
                    .args(["-W", "card"]),
            )
            .with_context(|| format!("putting {nickname} on the card"))?;
        }
        Ok(EmulatedCard {
            db,
            common_name: common_name.to_string(),
        })
    }

    /// QEMU arguments: a UHCI controller with the CCID reader, empty.
    pub fn reader_args() -> Vec<String> {
        [
            "-device",
            "piix3-usb-uhci,id=uhci",
            "-device",
            "usb-ccid,bus=uhci.0,id=ccid",
        ]
        .map(String::from)
        .to_vec()
    }

    /// The QMP command that puts the card into the reader of [`Self::reader_args`].
    pub fn insert_command(&self) -> serde_json::Value {
        serde_json::json!({
            "execute": "device_add",
            "arguments": {
                "driver": "ccid-card-emulated",
                "id": "card",
                "bus": "ccid.0",
                "backend": "certificates",
                "db": format!("sql:{}", self.db.display()),
                "cert1": NICKNAMES[0],
                "cert2": NICKNAMES[1],
                "cert3": NICKNAMES[2],
            }
        })
    }
}

/// An RSA key and a TEST certificate for `name` (client authentication),
/// packed as PKCS#12 with the password `card` under `nickname`.
fn issue_key(dir: &Path, nickname: &str, name: &str) -> Result<PathBuf> {
    let key = dir.join(format!("{nickname}.key"));
    let csr = dir.join(format!("{nickname}.csr"));
    let cert = dir.join(format!("{nickname}.pem"));
    let ext = dir.join(format!("{nickname}.ext"));
    let p12 = dir.join(format!("{nickname}.p12"));
    run_tool(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .arg("-out")
            .arg(&key),
    )?;
    run_tool(
        Command::new("openssl")
            .args(["req", "-new", "-key"])
            .arg(&key)
            .args(["-subj", &format!("/CN={name}")])
            .arg("-out")
            .arg(&csr),
    )?;
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=DNS:{name}\nextendedKeyUsage=clientAuth\n\
             keyUsage=digitalSignature\n"
        ),
    )
    .with_context(|| format!("cannot write {}", ext.display()))?;
    run_tool(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-set_serial"])
            .arg(serial(nickname))
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(crate::vpn_fixture("test-ca.pem"))
            .arg("-CAkey")
            .arg(crate::vpn_fixture("test-ca.key"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
    )?;
    run_tool(
        Command::new("openssl")
            .args(["pkcs12", "-export", "-inkey"])
            .arg(&key)
            .arg("-in")
            .arg(&cert)
            .args(["-name", nickname, "-passout", "pass:card"])
            .arg("-out")
            .arg(&p12),
    )?;
    Ok(p12)
}

/// A serial number for a card certificate, distinct per nickname and run.
fn serial(nickname: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let index = NICKNAMES.iter().position(|n| *n == nickname).unwrap_or(0);
    format!("{}", nanos * 4 + index as u128)
}
