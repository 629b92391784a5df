//! The words of the stick's screens, in German and English: one row per screen
//! (title, what is happening, what to do). `screens` picks the row; a test
//! checks that every screen has one in both languages.

/// A screen's words: the screen's name (`StickScreen::name`), title, body, action.
pub type Words = (&'static str, &'static str, &'static str, &'static str);

const RESTART_DE: &str = "Schalten Sie den PC mit dem Einschaltknopf aus und starten Sie \
                          ihn neu. Geschieht es wieder, rufen Sie den Helpdesk an.";
const RESTART_EN: &str = "Switch the PC off with its power button and start it again. \
                          If this happens again, call the helpdesk.";

pub const GERMAN: &[Words] = &[
    (
        "starting",
        "Der Stick startet",
        "Der Stick hat sich geprüft: Er ist unverändert und von Ihrer Organisation \
         signiert. Gleich wird die Verbindung aufgebaut.",
        "Bitte warten.",
    ),
    (
        "refused-image",
        "Dieser Stick ist nicht unversehrt",
        "Der Inhalt des Sticks ist nicht der, den Ihre Organisation signiert hat. \
         Es startet keine Konferenz; der PC schaltet sich in einer Minute aus.",
        "Benutzen Sie den Stick nicht weiter und geben Sie ihn dem Helpdesk.",
    ),
    (
        "refused-cmdline",
        "Startparameter verändert",
        "Jemand hat die Startparameter des Sticks verändert, zum Beispiel im \
         Boot-Menü des PCs. Es startet keine Konferenz; der PC schaltet sich in \
         einer Minute aus.",
        "Starten Sie den PC neu, ohne im Boot-Menü etwas zu ändern. Geschieht es \
         wieder, rufen Sie den Helpdesk an.",
    ),
    (
        "refused-secure-boot",
        "Secure Boot ist aus",
        "Die Firmware dieses PCs hat den Stick nicht geprüft, weil Secure Boot \
         ausgeschaltet ist. Ohne diese Prüfung startet keine Konferenz; der PC \
         schaltet sich in einer Minute aus.",
        "Schalten Sie Secure Boot in den Firmware-Einstellungen ein oder nehmen Sie \
         einen anderen PC. Der Helpdesk hilft dabei.",
    ),
    (
        "refused-boot-trust",
        "Diesem PC fehlt die Freigabe",
        "Der PC hat den Stick zwar geprüft, aber auf einem Weg, den Ihre Organisation \
         für diesen Stick nicht zulässt (über die MOK-Liste von shim, oder neben \
         fremden Schlüsseln darin). Es startet keine Konferenz; der PC schaltet sich in \
         einer Minute aus.",
        "Nehmen Sie einen anderen PC oder rufen Sie den Helpdesk an.",
    ),
    (
        "refused-outdated",
        "Veralteter Stick",
        "Dieser Stick hat eine alte Version, die nicht mehr verwendet werden darf. \
         Es startet keine Konferenz; der PC schaltet sich in einer Minute aus.",
        "Lassen Sie den Stick beim Helpdesk erneuern.",
    ),
    (
        "refused-storage",
        "Festplatten nicht gesperrt",
        "Der Stick konnte die Festplatten dieses PCs nicht sicher sperren. Es startet \
         keine Konferenz; der PC schaltet sich in einer Minute aus.",
        "Nehmen Sie einen anderen PC und rufen Sie den Helpdesk an.",
    ),
    (
        "no-network",
        "Kein Netzwerk",
        "Der Stick findet keine Netzwerkverbindung.",
        "Stecken Sie ein Netzwerkkabel ein. Die Verbindung startet dann von selbst.",
    ),
    (
        "wifi-choose",
        "WLAN wählen",
        "Kein Netzwerkkabel ist eingesteckt. Diese WLANs sind in Reichweite; \
         die Liste wird laufend aktualisiert.",
        "Wählen Sie Ihr WLAN mit den Pfeiltasten und drücken Sie Enter. Oder stecken \
         Sie ein Netzwerkkabel ein.",
    ),
    (
        "wifi-passphrase",
        "WLAN-Passwort",
        "Das gewählte WLAN verlangt sein Passwort (WPA).",
        "Tippen Sie das Passwort des WLANs und drücken Sie Enter. Esc führt zurück \
         zur Liste.",
    ),
    (
        "wifi-connecting",
        "Verbinde mit dem WLAN",
        "Der Stick meldet sich am gewählten WLAN an.",
        "Bitte warten.",
    ),
    (
        "wifi-refused",
        "WLAN-Passwort falsch?",
        "Das WLAN hat die Anmeldung abgelehnt. Meist ist das Passwort falsch \
         (es hat 8 bis 63 Zeichen).",
        "Tippen Sie das Passwort noch einmal und drücken Sie Enter. Esc führt zurück \
         zur Liste.",
    ),
    (
        "no-wifi-hardware",
        "Kein Netzwerk",
        "Kein Netzwerkkabel ist eingesteckt, und der Stick findet in diesem PC kein \
         WLAN-Gerät, das er benutzen kann.",
        "Stecken Sie ein Netzwerkkabel ein. Die Verbindung startet dann von selbst.",
    ),
    (
        "vpn-connecting",
        "Verbindung wird aufgebaut",
        "Der Stick baut die gesicherte Verbindung (VPN) zu Ihrer Organisation auf. \
         Danach erscheint die Konferenz.",
        "Bitte warten. Dauert es länger als zwei Minuten, rufen Sie den Helpdesk an.",
    ),
    (
        "vpn-connecting-relay",
        "Verbindung über Port 443",
        "Dieses Netzwerk lässt den direkten Weg nicht durch. Der Stick baut die \
         gesicherte Verbindung über den Ausweichweg Ihrer Organisation auf (HTTPS, \
         Port 443); sie ist genauso verschlüsselt wie sonst.",
        "Bitte warten. Dauert es länger als zwei Minuten, rufen Sie den Helpdesk an.",
    ),
    (
        "vpn-no-answer",
        "Keine Antwort vom VPN",
        "Der Stick erreicht das VPN Ihrer Organisation über dieses Netzwerk nicht. \
         Manche Netze (Hotel, Zug, Gäste-WLAN) lassen erst nach einer Anmeldung etwas \
         durch. Der Stick versucht es weiter.",
        "Verlangt dieses Netz eine Anmeldung? Drücken Sie F8: Seine Anmeldeseite öffnet \
         sich. Sie ist NICHT die sichere Konferenz. Sonst rufen Sie den Helpdesk an.",
    ),
    (
        "portal-open",
        "Anmeldeseite des Netzes – NICHT die sichere Konferenz",
        "Geben Sie hier nur ein, was das Netz verlangt, keine Dienstdaten.",
        "F8 schließt sie; danach baut der Stick die gesicherte Verbindung auf.",
    ),
    (
        "vpn-lost",
        "Verbindung unterbrochen",
        "Die gesicherte Verbindung ist abgebrochen. Die Konferenz ist ausgeblendet, \
         bis die Verbindung wieder steht; nichts wird ungeschützt gesendet.",
        "Bitte warten, die Konferenz erscheint von selbst wieder. Prüfen Sie das \
         Netzwerkkabel.",
    ),
    (
        "vpn-refused",
        "Der Stick wird nicht eingelassen",
        "Das VPN-Gateway Ihrer Organisation lehnt die Anmeldung dieses Sticks ab. Der \
         Stick versucht es weiter, aber das behebt sich nicht von selbst.",
        "Rufen Sie den Helpdesk an und nennen Sie den Code unten.",
    ),
    (
        "not-personalised",
        "Dieser Stick ist noch nicht eingerichtet",
        "Der Stick trägt keine persönliche Zugangsberechtigung für das VPN. Er baut \
         keine Verbindung auf und sendet nichts ins Netz.",
        "Geben Sie den Stick dem Helpdesk: Er wird dort für Sie eingerichtet.",
    ),
    (
        "enter-password",
        "Ihr Passwort",
        "Der Stick ist erkannt. Das VPN-Gateway Ihrer Organisation prüft jetzt Ihr \
         Passwort; es wird nur verschlüsselt an das Gateway gesendet.",
        "Tippen Sie Ihr Passwort und drücken Sie die Eingabetaste.",
    ),
    (
        "password-rejected",
        "Passwort falsch",
        "Das VPN-Gateway hat das Passwort abgelehnt. Nach mehreren falschen \
         Versuchen sperrt es Ihr Konto.",
        "Tippen Sie Ihr Passwort noch einmal und drücken Sie die Eingabetaste. \
         Ist Ihr Konto gesperrt, rufen Sie den Helpdesk an.",
    ),
    (
        "enter-pin",
        "PIN Ihrer Karte",
        "Der Schlüssel für das VPN liegt auf Ihrer Chipkarte und verlässt sie nie. \
         Die Karte prüft Ihre PIN selbst.",
        "Tippen Sie die PIN Ihrer Karte und drücken Sie die Eingabetaste.",
    ),
    (
        "pin-rejected",
        "PIN falsch",
        "Die Karte hat die PIN abgelehnt. Nach mehreren falschen PINs sperrt sie sich.",
        "Tippen Sie die PIN noch einmal und drücken Sie die Eingabetaste.",
    ),
    (
        "pin-final-try",
        "PIN falsch: nur noch ein Versuch",
        "Die Karte hat die PIN abgelehnt. Eine weitere falsche PIN sperrt die Karte.",
        "Tippen Sie die PIN nur, wenn Sie sicher sind. Sonst rufen Sie den Helpdesk an.",
    ),
    (
        "token-locked",
        "Karte gesperrt",
        "Die Karte hat sich nach zu vielen falschen PINs gesperrt. Ohne sie baut der \
         Stick keine Verbindung auf.",
        "Rufen Sie den Helpdesk an: Er entsperrt die Karte.",
    ),
    (
        "insert-token",
        "Chipkarte einstecken",
        "Der Schlüssel für das VPN liegt auf Ihrer persönlichen Chipkarte.",
        "Stecken Sie Ihre Karte in den Kartenleser. Es geht dann von selbst weiter.",
    ),
    (
        "certificate-stop",
        "Gestoppt: Server nicht vertrauenswürdig",
        "Das Zertifikat des Konferenzservers stammt nicht von Ihrer Organisation. \
         Jemand könnte sich als Konferenzserver ausgeben.",
        "Setzen Sie in diesem Netzwerk nicht fort. Rufen Sie den Helpdesk an und \
         schalten Sie den PC mit dem Einschaltknopf aus.",
    ),
    (
        "start-failed",
        "Die Konferenz startet nicht",
        "Der Browser des Sticks konnte nicht gestartet werden.",
        RESTART_DE,
    ),
    (
        "crashed",
        "Die Konferenz wurde beendet",
        "Der Browser des Sticks ist mehrmals kurz hintereinander abgestürzt.",
        RESTART_DE,
    ),
    (
        "page-watchdog",
        "Die Konferenz erscheint nicht",
        "Die Konferenzseite wurde auf diesem PC auch nach mehreren Versuchen nicht \
         angezeigt.",
        RESTART_DE,
    ),
    (
        "restarting",
        "Die Konferenz wird neu gestartet",
        "Die Konferenz ist nicht richtig gestartet; der Stick startet sie neu.",
        "Bitte warten.",
    ),
    (
        "powering-off",
        "Wird ausgeschaltet",
        "Die Konferenz ist beendet. Der PC schaltet sich gleich aus; auf ihm bleibt \
         nichts von der Konferenz zurück.",
        "Ziehen Sie den Stick ab, sobald der Bildschirm dunkel ist.",
    ),
    (
        "confirm-leave",
        "Konferenz verlassen und ausschalten?",
        "Sie verlassen die Konferenz, und der PC schaltet sich aus. Auf ihm bleibt \
         nichts von der Konferenz zurück.",
        "Eingabetaste: verlassen und ausschalten.  Esc: zurück zur Konferenz.",
    ),
    (
        "conference-ended",
        "Die Konferenz ist beendet",
        "Sie haben die Konferenz verlassen, oder sie wurde beendet. Der Browser ist \
         geschlossen.",
        "Eingabetaste: erneut teilnehmen.  F10: ausschalten.",
    ),
];

pub const ENGLISH: &[Words] = &[
    (
        "starting",
        "The stick is starting",
        "The stick has checked itself: it is unchanged and signed by your \
         organisation. The connection is built next.",
        "Please wait.",
    ),
    (
        "refused-image",
        "This stick is not intact",
        "The stick's contents are not what your organisation signed. No conference \
         starts; the PC switches off in a minute.",
        "Do not use the stick any more; hand it to the helpdesk.",
    ),
    (
        "refused-cmdline",
        "Start settings changed",
        "Someone changed the stick's start settings, for example in the PC's boot \
         menu. No conference starts; the PC switches off in a minute.",
        "Start the PC again without changing anything in the boot menu. If it \
         happens again, call the helpdesk.",
    ),
    (
        "refused-secure-boot",
        "Secure Boot is off",
        "This PC's firmware did not check the stick, because Secure Boot is switched \
         off. No conference starts without that check; the PC switches off in a \
         minute.",
        "Switch Secure Boot on in the PC's firmware settings, or use another PC. The \
         helpdesk can help.",
    ),
    (
        "refused-boot-trust",
        "This PC is not cleared for the stick",
        "The PC did check the stick, but in a way your organisation does not allow \
         for this stick (through shim's MOK list, or beside other keys in it). No \
         conference starts; the PC switches off in a minute.",
        "Use another PC, or call the helpdesk.",
    ),
    (
        "refused-outdated",
        "Outdated stick",
        "This stick has an old version that may no longer be used. No conference \
         starts; the PC switches off in a minute.",
        "Have the stick renewed by the helpdesk.",
    ),
    (
        "refused-storage",
        "The PC's disks could not be locked",
        "The stick could not lock this PC's disks safely. No conference starts; the \
         PC switches off in a minute.",
        "Use another PC and call the helpdesk.",
    ),
    (
        "no-network",
        "No network",
        "The stick finds no network connection.",
        "Plug in a network cable. The connection then starts by itself.",
    ),
    (
        "wifi-choose",
        "Choose a Wi-Fi network",
        "No network cable is plugged in. These Wi-Fi networks are in range; the list \
         updates as the stick looks.",
        "Choose your network with the arrow keys and press Enter. Or plug in a \
         network cable.",
    ),
    (
        "wifi-passphrase",
        "Wi-Fi password",
        "The chosen network asks for its password (WPA).",
        "Type the network's password and press Enter. Esc goes back to the list.",
    ),
    (
        "wifi-connecting",
        "Joining the Wi-Fi network",
        "The stick is signing on to the chosen network.",
        "Please wait.",
    ),
    (
        "wifi-refused",
        "Wrong Wi-Fi password?",
        "The network refused to let the stick on. Most often the password is wrong \
         (it has 8 to 63 characters).",
        "Type the password again and press Enter. Esc goes back to the list.",
    ),
    (
        "no-wifi-hardware",
        "No network",
        "No network cable is plugged in, and the stick finds no Wi-Fi device in this \
         PC that it can use.",
        "Plug in a network cable. The connection then starts by itself.",
    ),
    (
        "vpn-connecting",
        "Connecting",
        "The stick is building the secure connection (VPN) to your organisation. \
         The conference appears after that.",
        "Please wait. If this takes longer than two minutes, call the helpdesk.",
    ),
    (
        "vpn-connecting-relay",
        "Connecting over port 443",
        "This network does not let the direct way through. The stick is building the \
         secure connection over your organisation's fallback way (HTTPS, port 443); \
         it is encrypted just the same.",
        "Please wait. If this takes longer than two minutes, call the helpdesk.",
    ),
    (
        "vpn-no-answer",
        "No answer from the VPN",
        "The stick cannot reach your organisation's VPN over this network. Some \
         networks (hotels, trains, guest Wi-Fi) let nothing through before you sign in. \
         The stick keeps trying.",
        "Does this network want a sign-in? Press F8 to open its sign-in page. It is NOT \
         the secure conference. Otherwise call the helpdesk.",
    ),
    (
        "portal-open",
        "The network's sign-in page – NOT the secure conference",
        "Type here only what the network asks for, nothing of your work.",
        "F8 closes it; then the stick builds the secure connection.",
    ),
    (
        "vpn-lost",
        "Connection lost",
        "The secure connection broke off. The conference is hidden until it is back; \
         nothing is sent unprotected.",
        "Please wait, the conference comes back by itself. Check the network cable.",
    ),
    (
        "vpn-refused",
        "The VPN does not let this stick in",
        "Your organisation's VPN gateway refuses this stick's credentials. The stick \
         keeps trying, but this will not clear by itself.",
        "Call the helpdesk and give them the code below.",
    ),
    (
        "not-personalised",
        "This stick is not set up yet",
        "The stick carries no personal VPN credential. It builds no connection and \
         sends nothing into the network.",
        "Give the stick to the helpdesk: they set it up for you.",
    ),
    (
        "enter-password",
        "Your password",
        "The stick is recognised. Your organisation's VPN gateway now checks your \
         password; it is sent to the gateway only encrypted.",
        "Type your password and press Enter.",
    ),
    (
        "password-rejected",
        "Wrong password",
        "The VPN gateway rejected the password. After several wrong tries it locks \
         your account.",
        "Type your password again and press Enter. If your account is locked, call \
         the helpdesk.",
    ),
    (
        "enter-pin",
        "Your card's PIN",
        "The VPN key is on your smartcard and never leaves it. The card checks your \
         PIN itself.",
        "Type your card's PIN and press Enter.",
    ),
    (
        "pin-rejected",
        "Wrong PIN",
        "The card rejected the PIN. After several wrong PINs it locks itself.",
        "Type the PIN again and press Enter.",
    ),
    (
        "pin-final-try",
        "Wrong PIN: one try left",
        "The card rejected the PIN. One more wrong PIN locks the card.",
        "Type the PIN only if you are sure. Otherwise call the helpdesk.",
    ),
    (
        "token-locked",
        "Card locked",
        "The card locked itself after too many wrong PINs. Without it the stick \
         builds no connection.",
        "Call the helpdesk: they unlock the card.",
    ),
    (
        "insert-token",
        "Insert your smartcard",
        "The VPN key is on your personal smartcard.",
        "Put your card into the card reader. It goes on by itself.",
    ),
    (
        "certificate-stop",
        "Stopped: server not trusted",
        "The conference server's certificate does not come from your organisation. \
         Someone may be impersonating the conference server.",
        "Do not continue on this network. Call the helpdesk and switch the PC off \
         with its power button.",
    ),
    (
        "start-failed",
        "The conference does not start",
        "The stick's browser could not be started.",
        RESTART_EN,
    ),
    (
        "crashed",
        "The conference was ended",
        "The stick's browser crashed several times in a row.",
        RESTART_EN,
    ),
    (
        "page-watchdog",
        "The conference does not appear",
        "The conference page did not appear on this PC, even after several attempts.",
        RESTART_EN,
    ),
    (
        "restarting",
        "Restarting the conference",
        "The conference did not start properly; the stick starts it again.",
        "Please wait.",
    ),
    (
        "powering-off",
        "Switching off",
        "The conference has ended. The PC switches off in a moment; nothing of the \
         conference stays on it.",
        "Pull out the stick once the screen is dark.",
    ),
    (
        "confirm-leave",
        "Leave the conference and switch off?",
        "You leave the conference, and the PC switches off. Nothing of the conference \
         stays on it.",
        "Enter: leave and switch off.  Esc: back to the conference.",
    ),
    (
        "conference-ended",
        "The conference has ended",
        "You left the conference, or it was ended. The browser is closed.",
        "Enter: join again.  F10: switch off.",
    ),
];
