//! The stick's own full-screen views: what is happening, what the person can do,
//! and a short code for the helpdesk (docs/helpdesk.md lists every code). The
//! kiosk names the screen; the overlay holds the words, in the stick's language.

use stick_manifest::Language;

/// Every screen the stick shows in place of the conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickScreen {
    /// No uplink has a link: no cable, or a cable to nothing.
    NoNetwork,
    /// An uplink is up; the VPN tunnel is being built.
    VpnConnecting,
    /// The tunnel was up and is lost: the conference is hidden until it is back.
    VpnLost,
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
    StickScreen::NoNetwork,
    StickScreen::VpnConnecting,
    StickScreen::VpnLost,
    StickScreen::CertificateStop,
    StickScreen::StartFailed,
    StickScreen::Crashed,
    StickScreen::PageWatchdog,
    StickScreen::Restarting,
    StickScreen::PoweringOff,
];

impl StickScreen {
    /// Every screen, for docs and tests.
    pub fn all() -> &'static [StickScreen] {
        ALL
    }

    /// The name on the kiosk's line to the overlay and in the console lines.
    pub fn name(self) -> &'static str {
        match self {
            StickScreen::NoNetwork => "no-network",
            StickScreen::VpnConnecting => "vpn-connecting",
            StickScreen::VpnLost => "vpn-lost",
            StickScreen::CertificateStop => "certificate-stop",
            StickScreen::StartFailed => "start-failed",
            StickScreen::Crashed => "crashed",
            StickScreen::PageWatchdog => "page-watchdog",
            StickScreen::Restarting => "restarting",
            StickScreen::PoweringOff => "powering-off",
        }
    }

    /// The inverse of [`StickScreen::name`].
    pub fn from_name(name: &str) -> Option<StickScreen> {
        ALL.iter().copied().find(|s| s.name() == name)
    }

    /// The helpdesk code (docs/helpdesk.md).
    pub fn code(self) -> &'static str {
        match self {
            StickScreen::NoNetwork => "SBS-NET-01",
            StickScreen::VpnConnecting => "SBS-VPN-01",
            StickScreen::VpnLost => "SBS-VPN-02",
            StickScreen::CertificateStop => "SBS-CERT-01",
            StickScreen::StartFailed => "SBS-CONF-01",
            StickScreen::Crashed => "SBS-CONF-02",
            StickScreen::PageWatchdog => "SBS-CONF-03",
            StickScreen::Restarting => "SBS-CONF-04",
            StickScreen::PoweringOff => "SBS-END-01",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            StickScreen::VpnConnecting
            | StickScreen::VpnLost
            | StickScreen::Restarting
            | StickScreen::PoweringOff => Severity::Wait,
            StickScreen::NoNetwork => Severity::Act,
            StickScreen::CertificateStop
            | StickScreen::StartFailed
            | StickScreen::Crashed
            | StickScreen::PageWatchdog => Severity::Stop,
        }
    }

    /// The words, in `language`.
    pub fn text(self, language: Language) -> ScreenText {
        let (title, body, action) = match language {
            Language::De => self.german(),
            Language::En => self.english(),
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

    fn german(self) -> (&'static str, &'static str, &'static str) {
        const RESTART: &str = "Schalten Sie den PC mit dem Einschaltknopf aus und starten Sie \
                               ihn neu. Geschieht es wieder, rufen Sie den Helpdesk an.";
        match self {
            StickScreen::NoNetwork => (
                "Kein Netzwerk",
                "Der Stick findet keine Netzwerkverbindung.",
                "Stecken Sie ein Netzwerkkabel ein. Die Verbindung startet dann von selbst.",
            ),
            StickScreen::VpnConnecting => (
                "Verbindung wird aufgebaut",
                "Der Stick baut die gesicherte Verbindung (VPN) zu Ihrer Organisation auf. \
                 Danach erscheint die Konferenz.",
                "Bitte warten. Dauert es länger als zwei Minuten, rufen Sie den Helpdesk an.",
            ),
            StickScreen::VpnLost => (
                "Verbindung unterbrochen",
                "Die gesicherte Verbindung ist abgebrochen. Die Konferenz ist ausgeblendet, \
                 bis die Verbindung wieder steht; nichts wird ungeschützt gesendet.",
                "Bitte warten, die Konferenz erscheint von selbst wieder. Prüfen Sie das \
                 Netzwerkkabel.",
            ),
            StickScreen::CertificateStop => (
                "Gestoppt: Server nicht vertrauenswürdig",
                "Das Zertifikat des Konferenzservers stammt nicht von Ihrer Organisation. \
                 Jemand könnte sich als Konferenzserver ausgeben.",
                "Setzen Sie in diesem Netzwerk nicht fort. Rufen Sie den Helpdesk an und \
                 schalten Sie den PC mit dem Einschaltknopf aus.",
            ),
            StickScreen::StartFailed => (
                "Die Konferenz startet nicht",
                "Der Browser des Sticks konnte nicht gestartet werden.",
                RESTART,
            ),
            StickScreen::Crashed => (
                "Die Konferenz wurde beendet",
                "Der Browser des Sticks ist mehrmals kurz hintereinander abgestürzt.",
                RESTART,
            ),
            StickScreen::PageWatchdog => (
                "Die Konferenz erscheint nicht",
                "Die Konferenzseite wurde auf diesem PC auch nach mehreren Versuchen nicht \
                 angezeigt.",
                RESTART,
            ),
            StickScreen::Restarting => (
                "Die Konferenz wird neu gestartet",
                "Die Konferenz ist nicht richtig gestartet; der Stick startet sie neu.",
                "Bitte warten.",
            ),
            StickScreen::PoweringOff => (
                "Wird ausgeschaltet",
                "Die Konferenz ist beendet. Der PC schaltet sich gleich aus; auf ihm bleibt \
                 nichts von der Konferenz zurück.",
                "Ziehen Sie den Stick ab, sobald der Bildschirm dunkel ist.",
            ),
        }
    }

    fn english(self) -> (&'static str, &'static str, &'static str) {
        const RESTART: &str = "Switch the PC off with its power button and start it again. \
                               If this happens again, call the helpdesk.";
        match self {
            StickScreen::NoNetwork => (
                "No network",
                "The stick finds no network connection.",
                "Plug in a network cable. The connection then starts by itself.",
            ),
            StickScreen::VpnConnecting => (
                "Connecting",
                "The stick is building the secure connection (VPN) to your organisation. \
                 The conference appears after that.",
                "Please wait. If this takes longer than two minutes, call the helpdesk.",
            ),
            StickScreen::VpnLost => (
                "Connection lost",
                "The secure connection broke off. The conference is hidden until it is back; \
                 nothing is sent unprotected.",
                "Please wait, the conference comes back by itself. Check the network cable.",
            ),
            StickScreen::CertificateStop => (
                "Stopped: server not trusted",
                "The conference server's certificate does not come from your organisation. \
                 Someone may be impersonating the conference server.",
                "Do not continue on this network. Call the helpdesk and switch the PC off \
                 with its power button.",
            ),
            StickScreen::StartFailed => (
                "The conference does not start",
                "The stick's browser could not be started.",
                RESTART,
            ),
            StickScreen::Crashed => (
                "The conference was ended",
                "The stick's browser crashed several times in a row.",
                RESTART,
            ),
            StickScreen::PageWatchdog => (
                "The conference does not appear",
                "The conference page did not appear on this PC, even after several attempts.",
                RESTART,
            ),
            StickScreen::Restarting => (
                "Restarting the conference",
                "The conference did not start properly; the stick starts it again.",
                "Please wait.",
            ),
            StickScreen::PoweringOff => (
                "Switching off",
                "The conference has ended. The PC switches off in a moment; nothing of the \
                 conference stays on it.",
                "Pull out the stick once the screen is dark.",
            ),
        }
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
