//! `image-builder keygen`: a new ed25519 manifest signing key pair.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("{path} already exists; keygen never overwrites a key (move it away first)")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key name {0:?}: use letters, digits, `-` and `_`")]
    BadName(String),
}

/// Writes `DIR/NAME.key` (private, mode 0600) and `DIR/NAME.pub`; returns both paths.
pub fn generate(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), KeygenError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(KeygenError::BadName(name.to_string()));
    }
    let private_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    for path in [&private_path, &public_path] {
        if path.exists() {
            return Err(KeygenError::Exists { path: path.clone() });
        }
    }
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let (private, public) = stick_manifest::key_pair_to_pem(&key);
    write_new(&private_path, private.as_bytes(), 0o600)?;
    write_new(&public_path, public.as_bytes(), 0o644)?;
    Ok((private_path, public_path))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeygenError> {
    let err = |source| KeygenError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_a_usable_pair_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (private, public) = generate(dir.path(), "org-signing").expect("generates");
        let mode = std::fs::metadata(&private)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let key =
            stick_manifest::signing_key_from_pem(&std::fs::read_to_string(&private).expect("read"))
                .expect("private parses");
        let pubkey = stick_manifest::verifying_key_from_pem(
            &std::fs::read_to_string(&public).expect("read"),
        )
        .expect("public parses");
        assert_eq!(key.verifying_key(), pubkey);
        assert!(!stick_manifest::is_test_key(&pubkey));
        let err = generate(dir.path(), "org-signing").expect_err("exists");
        assert!(err
            .to_string()
            .ends_with("keygen never overwrites a key (move it away first)"));
        assert!(matches!(
            generate(dir.path(), "a/b"),
            Err(KeygenError::BadName(_))
        ));
    }
}
