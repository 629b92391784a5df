//! The person's password for the gateway's second round (`[vpn.ipsec]
//! user-password`: EAP-MSCHAPv2 after the stick's certificate, RFC 4739).
//!
//! The network thread asks for it before the first attempt and again after the
//! gateway rejected one; the session shows the entry screen while it is asked;
//! the overlay sends what the person typed (hex of its UTF-8 bytes, on its pipe
//! to the kiosk, never on a console); the network thread gives it to charon as
//! the EAP secret of the account the stick's credential names, through a swanctl
//! drop-in in RAM that is removed as soon as charon has read it. The gateway
//! counts wrong passwords and locks the account, not the stick: a short password
//! cannot be guessed offline from anything on the stick.

use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

/// What the entry screen asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// The first time after boot.
    Enter,
    /// The gateway rejected the last password (`rejected` times since boot).
    Again { rejected: u32 },
}

#[derive(Debug, Default)]
struct PasswordState {
    /// The account the credential names (the EAP identity).
    account: Option<String>,
    /// What the screen asks while the network waits for a password.
    prompt: Option<Prompt>,
    /// Typed and not yet given to charon (hex).
    typed: Option<String>,
    rejected: u32,
}

static STATE: Mutex<PasswordState> = Mutex::new(PasswordState {
    account: None,
    prompt: None,
    typed: None,
    rejected: 0,
});

/// The swanctl drop-in holding the secret, only while `swanctl --load-creds` reads it.
const SECRET_DROPIN: &str = "/etc/swanctl/conf.d/stick.secret.conf";
/// The longest password taken (bytes); MS-CHAPv2 allows 256 characters.
pub const MAX_PASSWORD_BYTES: usize = 256;

fn with_state<T>(f: impl FnOnce(&mut PasswordState) -> T) -> T {
    match STATE.lock() {
        Ok(mut state) => f(&mut state),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// The account of this stick's person (from its credential).
pub fn set_account(account: &str) {
    with_state(|s| s.account = Some(account.to_string()));
}

/// What the session's entry screen should ask now; `None` while no password is
/// wanted.
pub fn prompt() -> Option<Prompt> {
    with_state(|s| s.prompt)
}

/// The overlay's report of what the person typed (hex). Ignored when nothing
/// is asked.
pub fn typed(hex: String) {
    with_state(|s| s.typed(hex));
}

/// The network thread wants a password: the password typed, if any; else the
/// screen asks (again, after a rejection).
pub fn take_or_ask() -> Option<String> {
    with_state(PasswordState::take_or_ask)
}

/// The gateway rejected the password: the next attempt asks again. Returns
/// how many were rejected since boot.
pub fn rejected() -> u32 {
    with_state(PasswordState::rejected)
}

impl PasswordState {
    fn typed(&mut self, hex: String) {
        if self.prompt.is_some() {
            self.typed = Some(hex);
        }
    }

    fn take_or_ask(&mut self) -> Option<String> {
        if let Some(typed) = self.typed.take() {
            self.prompt = None;
            return Some(typed);
        }
        if self.prompt.is_none() {
            self.prompt = Some(match self.rejected {
                0 => Prompt::Enter,
                rejected => Prompt::Again { rejected },
            });
        }
        None
    }

    fn rejected(&mut self) -> u32 {
        self.rejected += 1;
        self.rejected
    }
}

/// The swanctl secrets section for `account` with the password in `hex`;
/// `None` when `hex` is not an even run of hex digits of at most
/// [`MAX_PASSWORD_BYTES`] bytes.
fn secret_dropin(account: &str, hex: &str) -> Option<String> {
    let well_formed = !hex.is_empty()
        && hex.len().is_multiple_of(2)
        && hex.len() <= 2 * MAX_PASSWORD_BYTES
        && hex.chars().all(|c| c.is_ascii_hexdigit());
    well_formed.then(|| {
        // swanctl reads `0x...` as the secret's bytes: nothing to quote or escape.
        format!(
            "secrets {{\n    eap-stick {{\n        id = \"{account}\"\n        secret = 0x{hex}\n    }}\n}}\n"
        )
    })
}

/// Gives the typed password to charon as the EAP secret of the stick's account.
pub fn load_into_charon(hex: &str) -> Result<(), String> {
    let account = with_state(|s| s.account.clone())
        .ok_or("the stick's credential names no account for the password round")?;
    let text = secret_dropin(&account, hex)
        .ok_or("the overlay sent a password that is not hex of at most 256 bytes")?;
    let written = std::fs::File::create(SECRET_DROPIN)
        .and_then(|file| {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            std::io::Write::write_all(&mut &file, text.as_bytes())
        })
        .map_err(|e| format!("cannot write {SECRET_DROPIN}: {e}"));
    let loaded = written.and_then(|()| {
        crate::command::run("swanctl", &["--load-creds", "--noprompt"])
            .map(drop)
            .map_err(|e| format!("charon did not take the password: {e}"))
    });
    // Whatever happened: the secret does not stay in a file.
    if let Err(err) = std::fs::remove_file(SECRET_DROPIN) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::error!("cannot remove {SECRET_DROPIN}: {err}");
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_until_typed_and_again_after_a_rejection() {
        let mut state = PasswordState::default();
        state.typed("00".into());
        assert_eq!(state.typed, None, "typed before anything was asked");
        assert_eq!(state.take_or_ask(), None);
        assert_eq!(state.prompt, Some(Prompt::Enter));
        assert_eq!(state.take_or_ask(), None, "still asking");
        state.typed("6162".into());
        assert_eq!(state.take_or_ask().as_deref(), Some("6162"));
        assert_eq!(
            state.prompt, None,
            "the screen goes while the gateway checks"
        );
        assert_eq!(state.rejected(), 1);
        assert_eq!(state.take_or_ask(), None);
        assert_eq!(state.prompt, Some(Prompt::Again { rejected: 1 }));
    }

    #[test]
    fn only_hex_of_a_sane_length_becomes_a_secret() {
        let long = "ab".repeat(MAX_PASSWORD_BYTES + 1);
        let longest = "ab".repeat(MAX_PASSWORD_BYTES);
        let cases: &[(&str, &str, bool)] = &[
            ("a word", "736563726574", true),
            ("upper case", "5345435245", true),
            ("the longest", &longest, true),
            ("empty", "", false),
            ("odd length", "736", false),
            ("not hex", "7365637zz5", false),
            ("a quote", "73\"", false),
            ("too long", &long, false),
        ];
        for (name, hex, ok) in cases {
            let dropin = secret_dropin("alice", hex);
            assert_eq!(dropin.is_some(), *ok, "{name}");
            if let Some(text) = dropin {
                assert!(text.contains(&format!("secret = 0x{hex}\n")), "{name}");
                assert!(text.contains("id = \"alice\""), "{name}");
            }
        }
    }
}
