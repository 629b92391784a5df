//! The stick's own full-screen views: what is happening, what the person can do,
//! and a short code for the helpdesk (docs/helpdesk.md lists every code). The
//! kiosk names the screen; the overlay holds the words, in the stick's language.

use stick_manifest::Language;

use crate::network::wifi::choice::Choice;
use crate::overlay::words::{Words, ENGLISH, GERMAN};

/// Every screen the stick shows in place of the conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickScreen {
    /// The boot checks passed; the session starts (before any network).
    Starting,
    /// Refused at boot: the image is not the signed one.
    RefusedImage,
    /// Refused at boot: the kernel command line was changed.
    RefusedCmdline,
    /// Refused at boot: Secure Boot is off where the image requires it.
    RefusedSecureBoot,
    /// Refused at boot: the PC trusted the stick in a way the image does not
    /// accept (through shim's MOK list, or a MOK list with other keys).
    RefusedBootTrust,
    /// Refused at boot: the image is older than the policy's minimum.
    RefusedOutdated,
    /// Refused at boot: a disk of the PC could not be locked.
    RefusedStorage,
    /// No uplink has a link: no cable, or a cable to nothing.
    NoNetwork,
    /// No cable: the Wi-Fi networks in range, one chosen with the arrow keys
    /// and Enter (the screen takes keys and shows a list).
    WifiChoose,
    /// The chosen network's passphrase is typed here; Esc goes back to the list.
    WifiPassphrase,
    /// iwd is joining the chosen network.
    WifiConnecting,
    /// The network refused: the passphrase is typed again.
    WifiRefused,
    /// No cable and no Wi-Fi device the stick can use.
    NoWifiHardware,
    /// An uplink is up; the VPN tunnel is being built.
    VpnConnecting,
    /// The network let no UDP through: the tunnel is being built through the
    /// organisation's relay on TCP 443.
    VpnConnectingRelay,
    /// The gateway (and the relay) did not answer: the network may want a
    /// sign-in first; F8 opens its page (with `[network.portal]`).
    VpnNoAnswer,
    /// The network's sign-in page is open in the throwaway browser: a strip over
    /// the top of the screen says it is not the secure conference.
    PortalOpen,
    /// The tunnel was up and is lost: the conference is hidden until it is back.
    VpnLost,
    /// The VPN gateway refused the stick's credentials (IKEv2 AUTHENTICATION_FAILED):
    /// an unknown or revoked stick.
    VpnRefused,
    /// The stick carries no credential: it was never personalised.
    NotPersonalised,
    /// The gateway checks the person's password: typed here (the screen takes
    /// text), Enter sends it.
    EnterPassword,
    /// The gateway rejected the password: typed again here.
    PasswordRejected,
    /// The key is on the person's token: its PIN is typed here.
    EnterPin,
    /// The token rejected the PIN: typed again here.
    PinRejected,
    /// The token rejected the PIN and says one more wrong one locks it.
    PinFinalTry,
    /// The token locked itself after too many wrong PINs.
    TokenLocked,
    /// No token in a reader.
    InsertToken,
    /// The conference server's certificate is not from the configured CAs.
    CertificateStop,
    /// The browser cannot be started.
    StartFailed,
    /// The browser crashed again and again.
    Crashed,
    /// The conference page never appeared, even after restarts.
    PageWatchdog,
    /// The browser is being started again after a stall.
    Restarting,
    /// The power button was pressed: the session ends, the PC switches off.
    PoweringOff,
    /// The leave key (F10): a question over everything, answered with Enter or Esc.
    ConfirmLeave,
    /// The conference sent the page to its "ended" page: the browser is closed;
    /// Enter joins again (the screen takes the keyboard).
    Ended,
}

/// How serious a screen is: the colour of its band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Wait, it goes on by itself.
    Wait,
    /// The person must act (a cable).
    Act,
    /// The session ended for good: power off, call the helpdesk.
    Stop,
}

/// A screen's words in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenText {
    pub title: &'static str,
    pub body: &'static str,
    /// What the person can do.
    pub action: &'static str,
    /// `Helpdesk-Code: SBS-...` in the screen's language.
    pub code_line: String,
}

const ALL: &[StickScreen] = &[
    StickScreen::Starting,
    StickScreen::RefusedImage,
    StickScreen::RefusedCmdline,
    StickScreen::RefusedSecureBoot,
    StickScreen::RefusedBootTrust,
    StickScreen::RefusedOutdated,
    StickScreen::RefusedStorage,
    StickScreen::NoNetwork,
    StickScreen::WifiChoose,
    StickScreen::WifiPassphrase,
    StickScreen::WifiConnecting,
    StickScreen::WifiRefused,
    StickScreen::NoWifiHardware,
    StickScreen::VpnConnecting,
    StickScreen::VpnConnectingRelay,
    StickScreen::VpnNoAnswer,
    StickScreen::PortalOpen,
    StickScreen::VpnLost,
    StickScreen::VpnRefused,
    StickScreen::NotPersonalised,
    StickScreen::EnterPassword,
    StickScreen::PasswordRejected,
    StickScreen::EnterPin,
    StickScreen::PinRejected,
    StickScreen::PinFinalTry,
    StickScreen::TokenLocked,
    StickScreen::InsertToken,
    StickScreen::CertificateStop,
    StickScreen::StartFailed,
    StickScreen::Crashed,
    StickScreen::PageWatchdog,
    StickScreen::Restarting,
    StickScreen::PoweringOff,
    StickScreen::ConfirmLeave,
    StickScreen::Ended,
];

impl StickScreen {
    /// Every screen, for docs and tests.
    pub fn all() -> &'static [StickScreen] {
        ALL
    }

    /// The name on the kiosk's line to the overlay and in the console lines.
    pub fn name(self) -> &'static str {
        match self {
            StickScreen::Starting => "starting",
            StickScreen::RefusedImage => "refused-image",
            StickScreen::RefusedCmdline => "refused-cmdline",
            StickScreen::RefusedSecureBoot => "refused-secure-boot",
            StickScreen::RefusedBootTrust => "refused-boot-trust",
            StickScreen::RefusedOutdated => "refused-outdated",
            StickScreen::RefusedStorage => "refused-storage",
            StickScreen::NoNetwork => "no-network",
            StickScreen::WifiChoose => "wifi-choose",
            StickScreen::WifiPassphrase => "wifi-passphrase",
            StickScreen::WifiConnecting => "wifi-connecting",
            StickScreen::WifiRefused => "wifi-refused",
            StickScreen::NoWifiHardware => "no-wifi-hardware",
            StickScreen::VpnConnecting => "vpn-connecting",
            StickScreen::VpnConnectingRelay => "vpn-connecting-relay",
            StickScreen::VpnNoAnswer => "vpn-no-answer",
            StickScreen::PortalOpen => "portal-open",
            StickScreen::VpnLost => "vpn-lost",
            StickScreen::VpnRefused => "vpn-refused",
            StickScreen::NotPersonalised => "not-personalised",
            StickScreen::EnterPassword => "enter-password",
            StickScreen::PasswordRejected => "password-rejected",
            StickScreen::EnterPin => "enter-pin",
            StickScreen::PinRejected => "pin-rejected",
            StickScreen::PinFinalTry => "pin-final-try",
            StickScreen::TokenLocked => "token-locked",
            StickScreen::InsertToken => "insert-token",
            StickScreen::CertificateStop => "certificate-stop",
            StickScreen::StartFailed => "start-failed",
            StickScreen::Crashed => "crashed",
            StickScreen::PageWatchdog => "page-watchdog",
            StickScreen::Restarting => "restarting",
            StickScreen::PoweringOff => "powering-off",
            StickScreen::ConfirmLeave => "confirm-leave",
            StickScreen::Ended => "conference-ended",
        }
    }

    /// The screen for a boot refused for `kind`.
    pub fn refused(kind: crate::boot::refusal::RefusalKind) -> StickScreen {
        use crate::boot::refusal::RefusalKind;
        match kind {
            RefusalKind::Image => StickScreen::RefusedImage,
            RefusalKind::Cmdline => StickScreen::RefusedCmdline,
            RefusalKind::SecureBoot => StickScreen::RefusedSecureBoot,
            RefusalKind::BootTrust => StickScreen::RefusedBootTrust,
            RefusalKind::Outdated => StickScreen::RefusedOutdated,
            RefusalKind::Storage => StickScreen::RefusedStorage,
        }
    }

    /// The inverse of [`StickScreen::name`].
    pub fn from_name(name: &str) -> Option<StickScreen> {
        ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The helpdesk code (docs/helpdesk.md).
    pub fn code(self) -> &'static str {
        match self {
            StickScreen::Starting => "SBS-START-01",
            StickScreen::RefusedImage => "SBS-BOOT-01",
            StickScreen::RefusedCmdline => "SBS-BOOT-02",
            StickScreen::RefusedSecureBoot => "SBS-BOOT-03",
            StickScreen::RefusedBootTrust => "SBS-BOOT-06",
            StickScreen::RefusedOutdated => "SBS-BOOT-04",
            StickScreen::RefusedStorage => "SBS-BOOT-05",
            StickScreen::NoNetwork => "SBS-NET-01",
            StickScreen::WifiChoose => "SBS-WLAN-01",
            StickScreen::WifiPassphrase => "SBS-WLAN-02",
            StickScreen::WifiConnecting => "SBS-WLAN-03",
            StickScreen::WifiRefused => "SBS-WLAN-04",
            StickScreen::NoWifiHardware => "SBS-WLAN-05",
            StickScreen::VpnConnecting => "SBS-VPN-01",
            StickScreen::VpnConnectingRelay => "SBS-VPN-04",
            StickScreen::VpnNoAnswer => "SBS-VPN-05",
            StickScreen::PortalOpen => "SBS-NET-02",
            StickScreen::VpnLost => "SBS-VPN-02",
            StickScreen::VpnRefused => "SBS-VPN-03",
            StickScreen::NotPersonalised => "SBS-ID-01",
            StickScreen::EnterPassword => "SBS-ID-02",
            StickScreen::PasswordRejected => "SBS-ID-03",
            StickScreen::EnterPin => "SBS-ID-04",
            StickScreen::PinRejected => "SBS-ID-05",
            StickScreen::PinFinalTry => "SBS-ID-06",
            StickScreen::TokenLocked => "SBS-ID-07",
            StickScreen::InsertToken => "SBS-ID-08",
            StickScreen::CertificateStop => "SBS-CERT-01",
            StickScreen::StartFailed => "SBS-CONF-01",
            StickScreen::Crashed => "SBS-CONF-02",
            StickScreen::PageWatchdog => "SBS-CONF-03",
            StickScreen::Restarting => "SBS-CONF-04",
            StickScreen::PoweringOff => "SBS-END-01",
            StickScreen::ConfirmLeave => "SBS-END-02",
            StickScreen::Ended => "SBS-END-03",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            StickScreen::Starting
            | StickScreen::VpnConnecting
            | StickScreen::VpnConnectingRelay
            | StickScreen::VpnLost
            | StickScreen::WifiConnecting
            | StickScreen::Restarting
            | StickScreen::PoweringOff => Severity::Wait,
            StickScreen::NoNetwork
            | StickScreen::WifiChoose
            | StickScreen::WifiPassphrase
            | StickScreen::WifiRefused
            | StickScreen::NoWifiHardware
            | StickScreen::VpnNoAnswer
            | StickScreen::PortalOpen
            | StickScreen::ConfirmLeave
            | StickScreen::Ended
            | StickScreen::EnterPassword
            | StickScreen::PasswordRejected
            | StickScreen::EnterPin
            | StickScreen::PinRejected
            | StickScreen::PinFinalTry
            | StickScreen::InsertToken => Severity::Act,
            StickScreen::RefusedImage
            | StickScreen::RefusedCmdline
            | StickScreen::RefusedSecureBoot
            | StickScreen::RefusedBootTrust
            | StickScreen::RefusedOutdated
            | StickScreen::RefusedStorage
            | StickScreen::VpnRefused
            | StickScreen::NotPersonalised
            | StickScreen::TokenLocked
            | StickScreen::CertificateStop
            | StickScreen::StartFailed
            | StickScreen::Crashed
            | StickScreen::PageWatchdog => Severity::Stop,
        }
    }

    /// A strip over the top of the screen, not over all of it: what is below
    /// (the sign-in page) stays visible and keeps the keyboard.
    pub fn is_strip(self) -> bool {
        self == StickScreen::PortalOpen
    }

    /// A screen (not a question) that takes the keyboard: Enter answers it
    /// (`answer NAME yes`), and it stays until the kiosk replaces it.
    pub fn takes_keys(self) -> bool {
        self == StickScreen::Ended || self.takes_text() || self.takes_choice()
    }

    /// A screen with a list (the Wi-Fi networks): the arrow keys move the mark,
    /// Enter sends the marked row's name (`entered NAME HEX`).
    pub fn takes_choice(self) -> bool {
        self == StickScreen::WifiChoose
    }

    /// A Wi-Fi screen about one network: it shows the network's name.
    pub fn names_network(self) -> bool {
        matches!(
            self,
            StickScreen::WifiPassphrase | StickScreen::WifiConnecting | StickScreen::WifiRefused
        )
    }

    /// A screen Esc answers with `answer NAME no` (back to the list).
    pub fn esc_goes_back(self) -> bool {
        matches!(self, StickScreen::WifiPassphrase | StickScreen::WifiRefused)
    }

    /// A screen with a text field (a password): the overlay decodes the keys
    /// with the compositor's keymap, shows one dot per character, and Enter
    /// sends the text to the kiosk (`entered NAME HEX`), never to a console.
    pub fn takes_text(self) -> bool {
        matches!(
            self,
            StickScreen::EnterPassword
                | StickScreen::PasswordRejected
                | StickScreen::EnterPin
                | StickScreen::PinRejected
                | StickScreen::PinFinalTry
                | StickScreen::WifiPassphrase
                | StickScreen::WifiRefused
        )
    }

    /// The words, in `language`.
    pub fn text(self, language: Language) -> ScreenText {
        let (title, body, action) = match language {
            Language::De => self.words(GERMAN),
            Language::En => self.words(ENGLISH),
        };
        let code_line = match language {
            Language::De => format!("Code für den Helpdesk: {}", self.code()),
            Language::En => format!("Code for the helpdesk: {}", self.code()),
        };
        ScreenText {
            title,
            body,
            action,
            code_line,
        }
    }

    /// The title, body and action in `table`'s language.
    fn words(self, table: &[Words]) -> (&'static str, &'static str, &'static str) {
        table
            .iter()
            .find(|words| words.0 == self.name())
            .map_or((self.name(), "", ""), |&(_, title, body, action)| {
                (title, body, action)
            })
    }
}

/// The kiosk's line to the overlay: `screen NAME` or `screen none`.
pub fn screen_line(screen: Option<StickScreen>) -> String {
    format!("screen {}", screen.map_or("none", StickScreen::name))
}

/// The inverse of [`screen_line`]: `Some(None)` for `screen none`, `None` for
/// anything that is not a screen line.
pub fn parse_screen_line(line: &str) -> Option<Option<StickScreen>> {
    match line.strip_prefix("screen ")? {
        "none" => Some(None),
        name => StickScreen::from_name(name).map(Some),
    }
}

/// The kiosk's line that puts a question over everything: `question NAME`.
pub fn question_line(screen: StickScreen) -> String {
    format!("question {}", screen.name())
}

/// The inverse of [`question_line`].
pub fn parse_question_line(line: &str) -> Option<StickScreen> {
    StickScreen::from_name(line.strip_prefix("question ")?)
}

/// The overlay's answer to a question: `answer NAME yes|no`.
pub fn answer_line(screen: StickScreen, yes: bool) -> String {
    format!(
        "answer {} {}",
        screen.name(),
        if yes { "yes" } else { "no" }
    )
}

/// The overlay's report of a text field: `entered NAME HEX` (the UTF-8 bytes in
/// hex: a password's spaces and symbols stay one word, and it needs no quoting).
pub fn entered_line(screen: StickScreen, text: &str) -> String {
    format!("entered {} {}", screen.name(), hex::encode(text.as_bytes()))
}

/// The inverse of [`entered_line`]: the screen and the hex as sent.
pub fn parse_entered_line(line: &str) -> Option<(StickScreen, &str)> {
    let (name, hex) = line.strip_prefix("entered ")?.split_once(' ')?;
    let screen = StickScreen::from_name(name).filter(|s| s.takes_text() || s.takes_choice())?;
    let well_formed = hex.len().is_multiple_of(2) && hex.chars().all(|c| c.is_ascii_hexdigit());
    well_formed.then_some((screen, hex))
}

/// The kiosk's rows for a screen's list (the Wi-Fi networks), or the one
/// network a Wi-Fi screen is about: `choices HEX,BARS,SECURITY ...` (names in
/// hex: an SSID may hold spaces and any byte).
pub fn choices_line(rows: &[Choice]) -> String {
    let mut line = "choices".to_string();
    for row in rows {
        line.push_str(&format!(
            " {},{},{}",
            hex::encode(row.name.as_bytes()),
            row.bars,
            row.security
        ));
    }
    line
}

/// The inverse of [`choices_line`]; rows that do not parse are left out.
pub fn parse_choices_line(line: &str) -> Option<Vec<Choice>> {
    let rest = line.strip_prefix("choices")?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some(
        rest.split_whitespace()
            .filter_map(|row| {
                let mut parts = row.split(',');
                let name = String::from_utf8(hex::decode(parts.next()?).ok()?).ok()?;
                let bars: u8 = parts.next()?.parse().ok()?;
                let named = parts.next()?;
                let security = SECURITIES.iter().find(|&&s| s == named)?;
                Some(Choice {
                    name,
                    bars: bars.min(4),
                    security,
                    signal_dbm: 0,
                })
            })
            .collect(),
    )
}

/// The security names a row may carry.
const SECURITIES: &[&str] = &["open", "psk", "8021x", "other"];

/// The inverse of [`answer_line`].
pub fn parse_answer_line(line: &str) -> Option<(StickScreen, bool)> {
    let (name, answer) = line.strip_prefix("answer ")?.split_once(' ')?;
    let yes = match answer {
        "yes" => true,
        "no" => false,
        _ => return None,
    };
    Some((StickScreen::from_name(name)?, yes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_are_unique_and_round_trip() {
        let mut codes: Vec<&str> = ALL.iter().map(|s| s.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ALL.len());
        for &screen in ALL {
            assert_eq!(StickScreen::from_name(screen.name()), Some(screen));
            assert_eq!(
                parse_screen_line(&screen_line(Some(screen))),
                Some(Some(screen))
            );
            assert!(screen.code().starts_with("SBS-"), "{screen:?}");
        }
        assert_eq!(parse_screen_line("screen none"), Some(None));
        assert_eq!(parse_screen_line("screen nonsense"), None);
        assert_eq!(parse_screen_line("camera=1 microphone=0"), None);
    }

    #[test]
    fn questions_and_answers_round_trip() {
        let leave = StickScreen::ConfirmLeave;
        assert_eq!(parse_question_line(&question_line(leave)), Some(leave));
        assert_eq!(parse_question_line("screen confirm-leave"), None);
        for yes in [true, false] {
            assert_eq!(
                parse_answer_line(&answer_line(leave, yes)),
                Some((leave, yes))
            );
        }
        assert_eq!(answer_line(leave, true), "answer confirm-leave yes");
        for bad in [
            "answer confirm-leave",
            "answer confirm-leave maybe",
            "answer x yes",
        ] {
            assert_eq!(parse_answer_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn entered_text_round_trips_as_hex() {
        let screen = StickScreen::EnterPassword;
        for text in ["secret", "zwei Wörter €", "", "a\"b'c"] {
            let line = entered_line(screen, text);
            assert!(!line[8..].contains(text) || text.is_empty(), "{line}");
            let (parsed, hex) = parse_entered_line(&line).expect(text);
            assert_eq!(parsed, screen);
            assert_eq!(hex::decode(hex).expect("hex"), text.as_bytes());
        }
        for bad in [
            "entered vpn-lost 6162",
            "entered enter-password 616",
            "entered enter-password zz",
            "entered enter-password",
        ] {
            assert_eq!(parse_entered_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn choices_round_trip_with_any_name() {
        let rows = vec![
            Choice {
                name: "Home Wi-Fi, 2.4".into(),
                bars: 3,
                security: "psk",
                signal_dbm: 0,
            },
            Choice {
                name: "Café".into(),
                bars: 1,
                security: "open",
                signal_dbm: 0,
            },
        ];
        let line = choices_line(&rows);
        assert_eq!(line.split(' ').count(), 3, "{line}");
        assert_eq!(parse_choices_line(&line), Some(rows));
        assert_eq!(parse_choices_line("choices"), Some(vec![]));
        assert_eq!(parse_choices_line("choicesx"), None);
        assert_eq!(parse_choices_line("screen none"), None);
        // A row that does not parse is left out, the others stay.
        let parsed = parse_choices_line("choices zz,1,psk 41,2,psk 42,2,wpa9").expect("a list");
        assert_eq!(
            parsed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["A"]
        );
    }

    #[test]
    fn every_screen_has_words_in_both_languages() {
        for &screen in ALL {
            for language in [Language::De, Language::En] {
                let text = screen.text(language);
                assert!(!text.title.is_empty() && !text.body.is_empty() && !text.action.is_empty());
                assert!(text.code_line.ends_with(screen.code()), "{text:?}");
            }
            assert_ne!(
                screen.text(Language::De).title,
                screen.text(Language::En).title
            );
        }
    }

    #[test]
    fn every_row_of_words_belongs_to_a_screen() {
        for table in [GERMAN, ENGLISH] {
            assert_eq!(table.len(), ALL.len());
            for words in table {
                assert!(StickScreen::from_name(words.0).is_some(), "{}", words.0);
            }
        }
    }

    #[test]
    fn the_helpdesk_list_names_every_code() {
        let helpdesk = include_str!("../../../docs/helpdesk.md");
        for &screen in ALL {
            assert!(
                helpdesk.contains(screen.code()),
                "docs/helpdesk.md lacks {}",
                screen.code()
            );
        }
    }
}
