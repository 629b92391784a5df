//! What the person types before the tunnel: the password for the gateway's
//! second round (`[vpn.ipsec] user-password`: EAP-MSCHAPv2 after the stick's
//! certificate, RFC 4739), or the PIN of the token that holds the key
//! (`[vpn.ipsec] token-key-id`, see `token`).
//!
//! The network thread asks for it before the first attempt and again after a
//! rejection; the session shows the entry screen while it is asked; the overlay
//! sends what the person typed (hex of its UTF-8 bytes, on its pipe to the
//! kiosk, never on a console); the network thread gives it to charon: a
//! password as the EAP secret of the account the stick's credential names,
//! through a swanctl drop-in in RAM that is removed as soon as charon has read
//! it. The gateway counts wrong passwords and locks the account; a token counts
//! wrong PINs and locks itself: a short secret cannot be guessed offline from
//! anything on the stick.

use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

/// What the entry screen asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// The first time after boot.
    Enter,
    /// The last one was rejected (`rejected` times since boot).
    Again { rejected: u32 },
    /// The token says one more wrong PIN locks it.
    FinalTry { rejected: u32 },
    /// No token in a reader: nothing to type until one is.
    InsertToken,
    /// The token locked itself: no PIN helps any more.
    Locked,
}

/// Which secret the person types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Factor {
    /// The password for the gateway's second round.
    #[default]
    Password,
    /// The PIN of the token holding the key.
    TokenPin,
}

#[derive(Debug, Default)]
struct PasswordState {
    factor: Factor,
    /// The account the credential names (the EAP identity).
    account: Option<String>,
    /// What the screen asks while the network waits for a password.
    prompt: Option<Prompt>,
    /// Typed and not yet given to charon (hex).
    typed: Option<String>,
    rejected: u32,
    /// The token's flag: one more wrong PIN locks it.
    final_try: bool,
}

static STATE: Mutex<PasswordState> = Mutex::new(PasswordState {
    factor: Factor::Password,
    account: None,
    prompt: None,
    typed: None,
    rejected: 0,
    final_try: false,
});

impl Prompt {
    /// The screen has a field to type into.
    pub fn takes_text(self) -> bool {
        matches!(
            self,
            Prompt::Enter | Prompt::Again { .. } | Prompt::FinalTry { .. }
        )
    }
}

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

/// The secret is the token's PIN (the image's key is on the person's token).
pub fn use_token_pin() {
    with_state(|s| s.factor = Factor::TokenPin);
}

/// Which secret the person types.
pub fn factor() -> Factor {
    with_state(|s| s.factor)
}

/// What the session's entry screen should ask now; `None` while no password is
/// wanted.
pub fn prompt() -> Option<Prompt> {
    with_state(|s| s.prompt)
}

/// The token is not there, or locked: the screen says so, and a PIN typed
/// before is dropped.
pub fn token_unusable(prompt: Prompt) {
    with_state(|s| {
        s.prompt = Some(prompt);
        s.typed = None;
    });
}

/// The token says one more wrong PIN locks it: the next ask says so.
pub fn final_try() {
    with_state(|s| s.final_try = true);
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
        if self.prompt.is_some_and(Prompt::takes_text) {
            self.typed = Some(hex);
        }
    }

    fn take_or_ask(&mut self) -> Option<String> {
        if let Some(typed) = self.typed.take() {
            self.prompt = None;
            return Some(typed);
        }
        if !self.prompt.is_some_and(Prompt::takes_text) {
            self.prompt = Some(match (self.rejected, self.final_try) {
                (0, _) => Prompt::Enter,
                (rejected, true) => Prompt::FinalTry { rejected },
                (rejected, false) => Prompt::Again { rejected },
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
    fn a_token_that_is_missing_or_locked_takes_no_pin() {
        let mut state = PasswordState {
            factor: Factor::TokenPin,
            ..PasswordState::default()
        };
        state.prompt = Some(Prompt::InsertToken);
        state.typed("3132".into());
        assert_eq!(state.typed, None, "no field on the insert-token screen");
        assert_eq!(state.take_or_ask(), None);
        assert_eq!(state.prompt, Some(Prompt::Enter), "the card is there: ask");
        state.typed("3132".into());
        assert_eq!(state.take_or_ask().as_deref(), Some("3132"));
        assert_eq!(state.rejected(), 1);
        state.final_try = true;
        assert_eq!(state.take_or_ask(), None);
        assert_eq!(state.prompt, Some(Prompt::FinalTry { rejected: 1 }));
        state.prompt = Some(Prompt::Locked);
        state.typed("3132".into());
        assert_eq!(state.typed, None, "a locked card takes no PIN");
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
