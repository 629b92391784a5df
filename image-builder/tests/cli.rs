//! Bad input to `image-builder build` fails before any work, with one clear error
//! naming the file, key or tool, and leaves nothing in the output folder.

use std::path::Path;
use std::process::Command;

const GOOD: &str = "[image]\nname = \"t\"\nversion = \"1\"\nrollback-index = 1\n[signing]\nmanifest-key = \"KEY\"\n";

fn run_build(dir: &Path, config_text: &str, path_env: Option<&str>) -> (bool, String) {
    let config = dir.join("image.toml");
    std::fs::write(&config, config_text).expect("write config");
    let out = dir.join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_image-builder"));
    cmd.arg("build")
        .arg(&config)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--kiosk")
        .arg("/bin/true")
        .arg("--overlays")
        .arg(dir);
    if let Some(path) = path_env {
        cmd.env("PATH", path);
    }
    let output = cmd.output().expect("image-builder runs");
    let leftovers = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "nothing may be left in {}", out.display());
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_input_gives_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("../keys/test-manifest-signing.key");
    let good = GOOD.replace("KEY", &key.display().to_string());
    let config = dir.path().join("image.toml").display().to_string();
    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello").expect("write");

    // (name, config text, PATH override, expected fragments of the error)
    let cases: Vec<(&str, String, Option<&str>, Vec<String>)> = vec![
        (
            "unknown key",
            good.replace("rollback-index = 1", "rollback-index = 1\ncolour = 1"),
            None,
            vec![format!("config {config}"), "unknown field `colour`".into()],
        ),
        (
            "missing key",
            good.replace("rollback-index = 1\n", ""),
            None,
            vec![
                format!("config {config}"),
                "missing field `rollback-index`".into(),
            ],
        ),
        (
            "wrong type",
            good.replace("rollback-index = 1", "rollback-index = \"1\""),
            None,
            vec![
                format!("config {config}"),
                "rollback-index".into(),
                "expected u64".into(),
            ],
        ),
        (
            "invalid value",
            good.replace("name = \"t\"", "name = \"T T\""),
            None,
            vec![
                format!("config {config}: key `image.name`"),
                "lowercase".into(),
            ],
        ),
        (
            "unreadable key file",
            GOOD.replace("KEY", "/nonexistent/key.pem"),
            None,
            vec![
                "/nonexistent/key.pem".into(),
                "signing.manifest-key".into(),
                "keygen".into(),
            ],
        ),
        (
            "key file not a key",
            GOOD.replace("KEY", &not_a_key.display().to_string()),
            None,
            vec![
                not_a_key.display().to_string(),
                "not an ed25519 private key".into(),
            ],
        ),
        (
            "missing host tool",
            good.clone(),
            Some("/nonexistent"),
            vec![
                "host tool `mmdebstrap` not found".into(),
                "mmdebstrap".into(),
            ],
        ),
    ];
    for (name, text, path_env, fragments) in cases {
        let (ok, stderr) = run_build(dir.path(), &text, path_env);
        assert!(!ok, "{name}: must fail");
        let error_lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(
            error_lines.len(),
            1,
            "{name}: one error line expected in:\n{stderr}"
        );
        for fragment in fragments {
            assert!(
                stderr.contains(&fragment),
                "{name}: {fragment:?} missing in:\n{stderr}"
            );
        }
    }
}

#[test]
fn keygen_then_verify_rejects_a_non_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_image-builder");
    let status = Command::new(bin)
        .args(["keygen", "-o"])
        .arg(dir.path())
        .args(["--name", "org"])
        .status()
        .expect("keygen runs");
    assert!(status.success());
    let again = Command::new(bin)
        .args(["keygen", "-o"])
        .arg(dir.path())
        .args(["--name", "org"])
        .output()
        .expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));

    let fake = dir.path().join("fake.raw");
    std::fs::write(&fake, vec![0u8; 1 << 20]).expect("write");
    let out = Command::new(bin)
        .arg("verify")
        .arg(&fake)
        .arg("--pubkey")
        .arg(dir.path().join("org.pub"))
        .output()
        .expect("verify runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does NOT verify") && stderr.contains("no valid GPT"),
        "{stderr}"
    );
}
