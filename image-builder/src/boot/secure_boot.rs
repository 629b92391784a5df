//! UEFI Secure Boot: the key hierarchy (PK, KEK, db as self-signed X.509, RSA 2048
//! as firmware expects) and signing the UKI with the db key.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::runner::{CommandError, CommandRunExt};
use crate::trees::tools::Tools;

/// The three keys, from the platform owner down to the signer of boot images.
pub const ROLES: [&str; 3] = ["pk", "kek", "db"];

/// Validity of generated certificates.
const CERT_DAYS: &str = "3650";

#[derive(Debug, thiserror::Error)]
pub enum SecureBootError {
    #[error("{path} already exists; keygen never overwrites a key (move it away first)")]
    Exists { path: PathBuf },
    #[error("cannot generate Secure Boot keys: {0}")]
    Openssl(CommandError),
    #[error("cannot sign with the db key: {0}")]
    Sign(CommandError),
    #[error("the signed file does not verify against {cert}: {source}")]
    Verify { cert: String, source: CommandError },
    #[error("cannot set the permissions of {path}: {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Paths of one key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub role: &'static str,
    pub key: PathBuf,
    pub cert: PathBuf,
}

/// `DIR/NAME-pk.key`, `NAME-pk.crt`, ... for each role.
pub fn key_paths(dir: &Path, name: &str) -> Vec<KeyPair> {
    ROLES
        .iter()
        .map(|role| KeyPair {
            role,
            key: dir.join(format!("{name}-{role}.key")),
            cert: dir.join(format!("{name}-{role}.crt")),
        })
        .collect()
}

/// Generates PK, KEK and db with openssl; never overwrites.
pub fn generate(
    dir: &Path,
    name: &str,
    organisation: &str,
) -> Result<Vec<KeyPair>, SecureBootError> {
    let pairs = key_paths(dir, name);
    for pair in &pairs {
        for path in [&pair.key, &pair.cert] {
            if path.exists() {
                return Err(SecureBootError::Exists { path: path.clone() });
            }
        }
    }
    for pair in &pairs {
        Command::new("openssl")
            .args([
                "req", "-new", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes",
            ])
            .args(["-days", CERT_DAYS, "-subj"])
            .arg(format!(
                "/O={organisation}/CN={organisation} Secure Boot {}",
                pair.role.to_uppercase()
            ))
            .arg("-keyout")
            .arg(&pair.key)
            .arg("-out")
            .arg(&pair.cert)
            .run_capture()
            .map_err(SecureBootError::Openssl)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pair.key, std::fs::Permissions::from_mode(0o600)).map_err(
            |source| SecureBootError::Permissions {
                path: pair.key.clone(),
                source,
            },
        )?;
    }
    Ok(pairs)
}

/// Signs the PE file `unsigned` (the UKI, shim) into `signed` with sbsign and checks the result with sbverify.
/// All paths lie in the build folder the tools see.
pub fn sign_pe(
    tools: &dyn Tools,
    key: &Path,
    cert: &Path,
    unsigned: &Path,
    signed: &Path,
) -> Result<(), SecureBootError> {
    tools
        .command("sbsign")
        .arg("--key")
        .arg(tools.path(key))
        .arg("--cert")
        .arg(tools.path(cert))
        .arg("--output")
        .arg(tools.path(signed))
        .arg(tools.path(unsigned))
        .run_capture()
        .map_err(SecureBootError::Sign)?;
    tools
        .command("sbverify")
        .arg("--cert")
        .arg(tools.path(cert))
        .arg(tools.path(signed))
        .run_capture()
        .map(|_| ())
        .map_err(|source| SecureBootError::Verify {
            cert: cert.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_named_by_role() {
        let pairs = key_paths(Path::new("/k"), "org");
        let names: Vec<(String, String)> = pairs
            .iter()
            .map(|p| (p.key.display().to_string(), p.cert.display().to_string()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("/k/org-pk.key".to_string(), "/k/org-pk.crt".to_string()),
                ("/k/org-kek.key".to_string(), "/k/org-kek.crt".to_string()),
                ("/k/org-db.key".to_string(), "/k/org-db.crt".to_string()),
            ]
        );
    }

    #[test]
    fn generates_x509_keys_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pairs = generate(dir.path(), "t", "Test Org").expect("openssl generates");
        for pair in &pairs {
            let text = Command::new("openssl")
                .args(["x509", "-noout", "-subject", "-in"])
                .arg(&pair.cert)
                .run_capture()
                .expect("certificate parses");
            assert!(
                text.contains(&format!(
                    "Test Org Secure Boot {}",
                    pair.role.to_uppercase()
                )),
                "{text}"
            );
        }
        let err = generate(dir.path(), "t", "Test Org").expect_err("exists");
        assert!(err.to_string().contains("never overwrites"));
    }
}
