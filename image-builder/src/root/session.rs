//! Puts the conference session into the tree: the browser policy, the trusted
//! CAs, and the unprivileged accounts the browser and the compositor run as.

use std::path::Path;

use anyhow::{bail, Context, Result};
use stick_manifest::network::PORTAL_POLICY_DIR;
use stick_manifest::session::{
    KeyboardLayout, SessionPolicy, BROWSER_POLICY_PATH, CONFERENCE_CA_PATH, PORTAL_GID, PORTAL_UID,
    PORTAL_USER, SCREEN_GID, SCREEN_UID, SCREEN_USER, SESSION_GID, SESSION_UID, SESSION_USER,
    XKB_SYMBOLS_DIR,
};

use crate::config::LoadedConfig;
use crate::root::network::{write, Credential};

/// TEST images with `test-virtual-camera`: systemd loads vivid at boot, with these options.
pub const VIRTUAL_CAMERA_LOAD: &str = "/etc/modules-load.d/secure-stick-test-camera.conf";
pub const VIRTUAL_CAMERA_OPTIONS: &str = "/etc/modprobe.d/secure-stick-test-camera.conf";

/// The CAs `[conference] trust-ca` names, checked and decoded.
#[derive(Debug, Default)]
pub struct ConferenceTrust {
    files: Vec<Credential>,
    der: Vec<Vec<u8>>,
}

impl ConferenceTrust {
    /// Reads every CA file; each must hold at least one PEM certificate.
    pub fn load(loaded: &LoadedConfig) -> Result<ConferenceTrust> {
        let Some(conference) = &loaded.config.conference else {
            return Ok(ConferenceTrust::default());
        };
        let mut trust = ConferenceTrust::default();
        for path in &conference.trust_ca {
            let file = Credential::read(loaded, "conference.trust-ca", path)?;
            let text = String::from_utf8_lossy(&file.bytes);
            let certificates = pem_certificates(&text)
                .with_context(|| format!("{} is not a PEM certificate file", file.describe()))?;
            if certificates.is_empty() {
                bail!(
                    "{} holds no `-----BEGIN CERTIFICATE` block: give the CA certificate in PEM",
                    file.describe()
                );
            }
            trust.der.extend(certificates);
            trust.files.push(file);
        }
        Ok(trust)
    }
}

/// The DER bytes of every `CERTIFICATE` block in a PEM text.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let body = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let end = body
            .find("-----END CERTIFICATE-----")
            .context("a CERTIFICATE block has no END line")?;
        let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("a CERTIFICATE block is not base64")?;
        if der.first() != Some(&0x30) {
            bail!("a CERTIFICATE block does not hold DER");
        }
        out.push(der);
        rest = &body[end..];
    }
    Ok(out)
}

/// An account of the session: fixed ids, no password, no shell, a home in RAM,
/// member of some of the image's groups.
struct Account {
    name: &'static str,
    uid: u32,
    gid: u32,
    comment: &'static str,
    home: &'static str,
    groups: &'static [&'static str],
}

/// The browser's account (cameras, sound) and the compositor's (the seat, which
/// seatd gives to `video`).
const ACCOUNTS: &[Account] = &[
    Account {
        name: SESSION_USER,
        uid: SESSION_UID,
        gid: SESSION_GID,
        comment: "Conference session",
        home: "/run/conference",
        groups: &["video", "audio"],
    },
    Account {
        name: SCREEN_USER,
        uid: SCREEN_UID,
        gid: SCREEN_GID,
        comment: "Stick screens",
        home: "/run/stick-screen",
        groups: &["video", "render"],
    },
    Account {
        name: PORTAL_USER,
        uid: PORTAL_UID,
        gid: PORTAL_GID,
        comment: "Network sign-in page",
        home: "/run/stick-portal",
        groups: &[],
    },
];

/// Adds the session's accounts to the tree's account files.
pub fn add_session_account(passwd: &str, group: &str, shadow: &str) -> (String, String, String) {
    let mut passwd = passwd.trim_end().to_string();
    let mut shadow = shadow.trim_end().to_string();
    let mut groups: Vec<String> = group.lines().map(str::to_string).collect();
    for account in ACCOUNTS {
        passwd.push_str(&format!(
            "\n{}:x:{}:{}:{}:{}:/usr/sbin/nologin",
            account.name, account.uid, account.gid, account.comment, account.home
        ));
        shadow.push_str(&format!("\n{}:!*:1::::::", account.name));
        for line in &mut groups {
            let name = line.split(':').next().unwrap_or_default();
            if account.groups.contains(&name) {
                let separator = if line.ends_with(':') { "" } else { "," };
                line.push_str(&format!("{separator}{}", account.name));
            }
        }
        groups.push(format!("{}:x:{}:", account.name, account.gid));
    }
    (passwd + "\n", groups.join("\n") + "\n", shadow + "\n")
}

/// Writes the session's files into the tree at `root`.
pub fn install(root: &Path, session: &SessionPolicy, trust: &ConferenceTrust) -> Result<()> {
    if let Some(keyboard) = &session.keyboard {
        check_keyboard(root, keyboard)?;
    }
    let policy = crate::root::browser_policy::render(session, &trust.der);
    write(
        root,
        BROWSER_POLICY_PATH,
        &serde_json::to_vec_pretty(&policy).expect("policy serialises"),
        0o644,
    )?;
    // One file for the kiosk's own check of the conference's certificate.
    let mut bundle = Vec::new();
    for file in &trust.files {
        bundle.extend_from_slice(&file.bytes);
        if !bundle.ends_with(b"\n") {
            bundle.push(b'\n');
        }
    }
    write(root, CONFERENCE_CA_PATH, &bundle, 0o644)?;
    if session.test_virtual_camera {
        // One video capture node, a webcam input: what a USB camera looks like.
        write(root, VIRTUAL_CAMERA_LOAD, b"vivid\n", 0o644)?;
        write(
            root,
            VIRTUAL_CAMERA_OPTIONS,
            b"options vivid n_devs=1 node_types=0x1 num_inputs=1 input_types=0x0\n",
            0o644,
        )?;
    }
    let read = |name: &str| {
        let path = root.join("etc").join(name);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let (passwd, group, shadow) =
        add_session_account(&read("passwd")?, &read("group")?, &read("shadow")?);
    write(root, "/etc/passwd", passwd.as_bytes(), 0o644)?;
    write(root, "/etc/group", group.as_bytes(), 0o644)?;
    write(root, "/etc/shadow", shadow.as_bytes(), 0o640)?;
    Ok(())
}

/// The portal browser's account and managed policy (`[network.portal]`). The
/// account is in every image with a session; only this makes it usable.
pub fn install_portal(root: &Path) -> Result<()> {
    let policy = crate::root::browser_policy::render_portal();
    write(
        root,
        &format!("{PORTAL_POLICY_DIR}/portal.json"),
        &serde_json::to_vec_pretty(&policy).expect("policy serialises"),
        0o644,
    )
}

/// The layout and variant must exist in the image's xkb-data: a name XKB does not
/// know would leave staff with a US keyboard and no word why.
fn check_keyboard(root: &Path, keyboard: &KeyboardLayout) -> Result<()> {
    let dir = root.join(XKB_SYMBOLS_DIR.trim_start_matches('/'));
    let file = dir.join(keyboard.symbols_file());
    let Ok(symbols) = std::fs::read_to_string(&file) else {
        bail!(
            "conference.keyboard-layout: {:?} is not a layout the image knows ({XKB_SYMBOLS_DIR}/{} \
             is missing); the layouts are the file names in {XKB_SYMBOLS_DIR}, e.g. \"de\"",
            keyboard.layout,
            keyboard.symbols_file()
        );
    };
    if !keyboard.variant_in(&symbols) {
        bail!(
            "conference.keyboard-variant: {:?} is not a variant of {:?} ({XKB_SYMBOLS_DIR}/{} has \
             no `xkb_symbols {:?}`)",
            keyboard.variant.as_deref().unwrap_or_default(),
            keyboard.layout,
            keyboard.symbols_file(),
            keyboard.variant.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_accounts_join_their_groups() {
        let (passwd, group, shadow) = add_session_account(
            "root:x:0:0:root:/root:/bin/bash\n",
            "root:x:0:\naudio:x:29:pulse\nvideo:x:44:\nrender:x:992:\ninput:x:995:\n",
            "root:*:19000:0:99999:7:::\n",
        );
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\n\
             conference:x:900:900:Conference session:/run/conference:/usr/sbin/nologin\n\
             stick-screen:x:901:901:Stick screens:/run/stick-screen:/usr/sbin/nologin\n\
             stick-portal:x:902:902:Network sign-in page:/run/stick-portal:/usr/sbin/nologin\n"
        );
        assert_eq!(
            group,
            "root:x:0:\naudio:x:29:pulse,conference\nvideo:x:44:conference,stick-screen\n\
             render:x:992:stick-screen\ninput:x:995:\nconference:x:900:\nstick-screen:x:901:\n\
             stick-portal:x:902:\n"
        );
        assert_eq!(
            shadow,
            "root:*:19000:0:99999:7:::\nconference:!*:1::::::\nstick-screen:!*:1::::::\n\
             stick-portal:!*:1::::::\n"
        );
    }

    #[test]
    fn pem_blocks_decode() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_certificates(text).expect("two"),
            vec![vec![0x30, 0x82, 0x01], vec![0x30, 0x00]]
        );
        assert_eq!(
            pem_certificates("no pem").expect("none"),
            Vec::<Vec<u8>>::new()
        );
        assert!(
            pem_certificates("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_err()
        );
    }

    #[test]
    fn keyboard_layouts_must_exist_in_the_image() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join(XKB_SYMBOLS_DIR.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("de"),
            "default xkb_symbols \"basic\" {\n};\nxkb_symbols \"nodeadkeys\" {\n};\n",
        )
        .expect("write");
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("de", None, None),
            ("de", Some("nodeadkeys"), None),
            ("fr", None, Some("conference.keyboard-layout")),
            ("de", Some("mac"), Some("conference.keyboard-variant")),
        ];
        for (layout, variant, want_key) in cases {
            let keyboard = KeyboardLayout::parse(layout, *variant).expect("valid names");
            match (check_keyboard(root.path(), &keyboard), want_key) {
                (Ok(()), None) => {}
                (Err(e), Some(key)) => {
                    let message = format!("{e:#}");
                    assert!(message.starts_with(key), "{message}");
                }
                (got, want) => panic!("{layout} {variant:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
