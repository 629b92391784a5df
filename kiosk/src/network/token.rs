//! The person's smartcard or token (`[vpn.ipsec] token-key-id`): the stick's key
//! never leaves it, and the token counts wrong PINs and locks itself.
//!
//! The kiosk asks OpenSC's PKCS#11 module (through `pkcs11-tool`) whether a
//! token is in a reader and what its PIN flags say (PKCS#11 tells "count low",
//! "final try" and "locked", not a number); it hands the PIN the person typed
//! to charon as the token's secret through a swanctl drop-in in RAM that is
//! removed as soon as charon has read it. charon logs in to the token then; a
//! wrong PIN shows in charon's log as `login to 'opensc':N failed: CKR_...`.

use std::os::unix::fs::PermissionsExt;

use stick_manifest::network::{TOKEN_MODULE, TOKEN_MODULE_PATH};

/// The swanctl drop-in holding the PIN, only while `swanctl --load-creds` reads it.
const PIN_DROPIN: &str = "/etc/swanctl/conf.d/stick.pin.conf";
/// The longest PIN taken (PKCS#15 cards allow 8 to 16; this bounds the file).
pub const MAX_PIN_CHARS: usize = 64;

/// What the token's reader and PIN flags say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenStatus {
    /// A token is in a reader (a slot with a token label).
    pub present: bool,
    /// PKCS#11 `CKF_USER_PIN_COUNT_LOW`: a wrong PIN was typed lately.
    pub count_low: bool,
    /// `CKF_USER_PIN_FINAL_TRY`: one more wrong PIN locks the token.
    pub final_try: bool,
    /// `CKF_USER_PIN_LOCKED`.
    pub locked: bool,
}

/// Parses `pkcs11-tool --list-token-slots`: the first slot with a token.
pub fn parse_token_slots(text: &str) -> TokenStatus {
    let mut status = TokenStatus::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with("token label") {
            status.present = true;
        }
        if let Some(flags) = line
            .strip_prefix("token flags")
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, flags)| flags)
        {
            let has = |flag: &str| flags.split(',').any(|f| f.trim() == flag);
            status.count_low = has("user PIN count low");
            status.final_try = has("user PIN final try");
            status.locked = has("user PIN locked");
            break;
        }
    }
    status
}

/// Asks OpenSC about the token now; an error (no pcscd, no reader) counts as
/// no token.
pub fn status() -> TokenStatus {
    match crate::command::run(
        "pkcs11-tool",
        &["--module", TOKEN_MODULE_PATH, "--list-token-slots"],
    ) {
        Ok(output) => parse_token_slots(&output),
        Err(err) => {
            tracing::debug!("token: {err}");
            TokenStatus::default()
        }
    }
}

/// Why charon did not take the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinRefusal {
    /// The token rejected it (or answered the login with an error): ask again;
    /// `final_try`: its flags say one more wrong PIN locks it.
    Rejected { reason: String, final_try: bool },
    /// The token is locked: no PIN helps any more.
    Locked(String),
    /// Not sent to the token (not a PIN, or charon could not be asked).
    NotSent(String),
}

/// The token's answer to charon's login, from charon's log: the last
/// `login to 'opensc':0 failed: PIN_INCORRECT` line's code (charon names the
/// PKCS#11 return values without their `CKR_`).
pub fn login_failure(log: &str) -> Option<&str> {
    log.lines()
        .rev()
        .find_map(|line| line.split_once("login to '")?.1.split_once("failed: "))
        .map(|(_, code)| code.split_whitespace().next().unwrap_or(code))
        .map(|code| code.strip_prefix("CKR_").unwrap_or(code))
}

/// What a login answer means for the person.
pub fn classify(code: Option<&str>, after: TokenStatus) -> PinRefusal {
    let said = code.unwrap_or("no answer in charon's log");
    if after.locked || code == Some("PIN_LOCKED") {
        return PinRefusal::Locked(format!(
            "the token is locked after too many wrong PINs ({said})"
        ));
    }
    PinRefusal::Rejected {
        reason: format!("the token rejected the PIN ({said})"),
        final_try: after.final_try,
    }
}

/// The swanctl secret for the token's key `key_id` with `pin`; `None` unless
/// the PIN is 1 to [`MAX_PIN_CHARS`] ASCII letters and digits (what PINs are;
/// anything else would need quoting in swanctl's syntax).
fn pin_dropin(key_id: &str, pin: &str) -> Option<String> {
    let well_formed =
        (1..=MAX_PIN_CHARS).contains(&pin.len()) && pin.chars().all(|c| c.is_ascii_alphanumeric());
    well_formed.then(|| {
        format!(
            "secrets {{\n    {SECRET_NAME} {{\n        handle = {key_id}\n        \
             module = {TOKEN_MODULE}\n        pin = \"{pin}\"\n    }}\n}}\n"
        )
    })
}

/// The PIN from the overlay's hex.
fn pin_of_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) || hex.len() > 2 * MAX_PIN_CHARS {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Gives the typed PIN (hex) to charon for the token's key `key_id`; then
/// loads the connection, whose certificate charon reads from the token.
pub fn load_into_charon(key_id: &str, hex: &str) -> Result<(), PinRefusal> {
    let text = pin_of_hex(hex)
        .and_then(|pin| pin_dropin(key_id, &pin))
        .ok_or_else(|| {
            PinRefusal::NotSent(format!(
                "not a PIN: a PIN is 1 to {MAX_PIN_CHARS} letters and digits (nothing was \
                 sent to the token)"
            ))
        })?;
    let written = std::fs::File::create(PIN_DROPIN)
        .and_then(|file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            std::io::Write::write_all(&mut &file, text.as_bytes())
        })
        .map_err(|e| PinRefusal::NotSent(format!("cannot write {PIN_DROPIN}: {e}")));
    let loaded = written.and_then(|()| {
        let said = load_creds()?;
        if key_loaded(&said) {
            return Ok(());
        }
        tracing::info!("swanctl --load-creds: {said}");
        Err(classify(login_failure(&charon_log()), status()))
    });
    // Whatever happened: the PIN does not stay in a file.
    if let Err(err) = std::fs::remove_file(PIN_DROPIN) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::error!("cannot remove {PIN_DROPIN}: {err}");
        }
    }
    loaded?;
    crate::command::run("swanctl", &["--load-conns"])
        .map(drop)
        .map_err(|e| PinRefusal::NotSent(format!("charon cannot load the connection: {e}")))
}

/// The name of the token secret in the drop-in.
const SECRET_NAME: &str = "token-stick";

/// Whether swanctl's report says charon took the token's key (`loaded key
/// token-stick from token [keyid: ...]`; a failure reads `loading 'token-stick'
/// failed: ...`).
fn key_loaded(said: &str) -> bool {
    let loaded = format!("loaded key {SECRET_NAME} from token");
    said.lines().any(|line| line.trim().starts_with(&loaded))
}

/// Runs `swanctl --load-creds`: what it printed on both streams (it reports a
/// secret it could not load on stderr and still exits 0).
fn load_creds() -> Result<String, PinRefusal> {
    let output = std::process::Command::new("swanctl")
        .args(["--load-creds", "--noprompt"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| PinRefusal::NotSent(format!("cannot run swanctl: {e}")))?;
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() && !said.contains("failed") {
        said.push_str(&format!(
            "\nswanctl --load-creds failed ({})",
            output.status
        ));
    }
    Ok(said)
}

/// charon's recent log lines (the journal of strongswan.service).
fn charon_log() -> String {
    crate::command::run(
        "journalctl",
        &[
            "--boot",
            "--unit",
            "strongswan.service",
            "--output",
            "cat",
            "--lines",
            "60",
            "--no-pager",
        ],
    )
    .unwrap_or_else(|e| {
        tracing::warn!("charon's log: {e}");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_slots_say_presence_and_pin_flags() {
        let card = "Available slots:\n\
            Slot 0 (0x0): Gemalto USB SmartCard Reader 00 00\n\
            \x20 token label        : stick-t1.test\n\
            \x20 token manufacturer : Common Access Card\n\
            \x20 token flags        : login required, PIN pad present, rng, token initialized, PIN initialized\n\
            \x20 serial num         : 000058bd002c19b5\n";
        let low = card.replace("PIN initialized", "PIN initialized, user PIN count low");
        let last = card.replace(
            "PIN initialized",
            "PIN initialized, user PIN count low, user PIN final try",
        );
        let locked = card.replace("PIN initialized", "PIN initialized, user PIN locked");
        let present = |count_low, final_try, locked| TokenStatus {
            present: true,
            count_low,
            final_try,
            locked,
        };
        let cases: &[(&str, &str, TokenStatus)] = &[
            ("a card", card, present(false, false, false)),
            ("count low", &low, present(true, false, false)),
            ("final try", &last, present(true, true, false)),
            ("locked", &locked, present(false, false, true)),
            (
                "an empty reader",
                "Available slots:\nSlot 0 (0x0): Gemalto USB SmartCard Reader 00 00\n  (empty)\n",
                TokenStatus::default(),
            ),
            ("no reader", "No slots.\n", TokenStatus::default()),
        ];
        for (name, text, want) in cases {
            assert_eq!(parse_token_slots(text), *want, "{name}");
        }
    }

    #[test]
    fn charons_login_answer_decides_ask_again_or_locked() {
        let log = "found key on PKCS#11 token 'opensc':0\n\
                   login to 'opensc':0 failed: PIN_INCORRECT\n\
                   building CRED_PRIVATE_KEY - ANY failed, tried 7 builders\n";
        let general = "login to 'opensc':0 failed: GENERAL_ERROR\n";
        let locked = "login to 'opensc':0 failed: PIN_INCORRECT\n\
                      login to 'opensc':0 failed: CKR_PIN_LOCKED\n";
        let present = TokenStatus {
            present: true,
            ..TokenStatus::default()
        };
        let flagged = TokenStatus {
            locked: true,
            ..present
        };
        let last_chance = TokenStatus {
            final_try: true,
            ..present
        };
        let cases: &[(&str, &str, TokenStatus, &str, bool)] = &[
            ("wrong", log, present, "(PIN_INCORRECT)", false),
            (
                "wrong, one try left",
                log,
                last_chance,
                "(PIN_INCORRECT)",
                false,
            ),
            (
                "an error answer",
                general,
                present,
                "(GENERAL_ERROR)",
                false,
            ),
            (
                "locked by its answer",
                locked,
                present,
                "(PIN_LOCKED)",
                true,
            ),
            ("locked by its flag", log, flagged, "(PIN_INCORRECT)", true),
            (
                "nothing logged",
                "",
                present,
                "no answer in charon's log",
                false,
            ),
        ];
        for (name, log, after, said, is_locked) in cases {
            let refusal = classify(login_failure(log), *after);
            let text = match (&refusal, is_locked) {
                (PinRefusal::Locked(text), true) => text,
                (PinRefusal::Rejected { reason, final_try }, false) => {
                    assert_eq!(*final_try, after.final_try, "{name}");
                    reason
                }
                _ => panic!("{name}: {refusal:?}"),
            };
            assert!(text.contains(said), "{name}: {text}");
        }
    }

    #[test]
    fn only_swanctls_loaded_line_means_the_key_is_there() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "loaded",
                "loaded certificate from '/etc/swanctl/x509ca/ca.pem'\n\
                 loaded key token-stick from token [keyid: 470f15d7]\n\
                 plugin 'aes': failed to load - aes_plugin_create not found\n",
                true,
            ),
            (
                "refused",
                "loaded certificate from '/etc/swanctl/x509ca/ca.pem'\n\
                 loading 'token-stick' failed: loading private key from token failed\n",
                false,
            ),
            ("nothing", "", false),
        ];
        for (name, said, want) in cases {
            assert_eq!(key_loaded(said), *want, "{name}");
        }
    }

    #[test]
    fn only_letters_and_digits_become_a_pin() {
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        let longest = "7".repeat(MAX_PIN_CHARS);
        let cases: &[(&str, String, Option<&str>)] = &[
            ("digits", hex("123456"), Some("123456")),
            ("letters", hex("Ab12"), Some("Ab12")),
            ("the longest", hex(&longest), Some(&longest)),
            ("empty", String::new(), None),
            ("a quote", hex("12\"4"), None),
            ("a space", hex("12 4"), None),
            ("a newline", hex("12\n"), None),
            ("too long", hex(&"7".repeat(MAX_PIN_CHARS + 1)), None),
            ("not hex", "zz".into(), None),
            ("odd", "313".into(), None),
        ];
        for (name, hex, want) in cases {
            let dropin = pin_of_hex(hex).and_then(|pin| pin_dropin("0001", &pin));
            assert_eq!(dropin.is_some(), want.is_some(), "{name}");
            if let (Some(text), Some(pin)) = (dropin, want) {
                assert!(text.contains(&format!("pin = \"{pin}\"\n")), "{name}");
                assert!(text.contains("handle = 0001\n"), "{name}");
                assert!(text.contains("module = opensc\n"), "{name}");
            }
        }
    }
}
