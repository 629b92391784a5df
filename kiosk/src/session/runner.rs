//! The conference session: waits for the tunnel, checks the conference's
//! certificate itself, runs the browser, answers every target with the guard,
//! reports the page and the media, and restarts the browser when it ends.
//! Too many ends in a row, or a certificate error: a stop screen, never a shell.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use stick_manifest::network::PortalPolicy;
use stick_manifest::session::{SessionPolicy, CONFERENCE_CA_PATH};

use crate::network::reach_check::{CheckError, ReachCheck};
use crate::network::user_factor::Prompt;
use crate::network::wifi::choice::{Choice, WifiView};
use crate::session::browser::Browser;
use crate::session::cdp::{Cdp, CdpError, Event};
use crate::session::guard::{
    certificate_errors, Blocked, Guard, TargetInfo, Verdict, MAIN_FRAME_ERRORS_HISTOGRAM,
};
use crate::session::media::MediaSample;
use crate::session::page_watch::{
    histogram_count, Action, Look, PageWatch, RestartBudget, FIRST_PAINT_HISTOGRAM, RESTART_PAUSES,
};
use stick_manifest::Language;

use crate::overlay::screens::StickScreen;
use crate::session::stick_display::StickDisplay;

/// Browser ends within [`CRASH_WINDOW`] that make the kiosk give up.
pub const MAX_CRASHES: usize = 3;
pub const CRASH_WINDOW: Duration = Duration::from_secs(120);
/// A clean exit sooner than this after the start counts as a crash (a browser that
/// cannot run must not be restarted in a tight loop).
pub const MIN_CLEAN_RUN: Duration = Duration::from_secs(15);
/// A command's answer; generous, because a slow PC (or QEMU without KVM) can be
/// busy for seconds while the page starts a call.
const CDP_TIMEOUT: Duration = Duration::from_secs(30);
/// The browser's first answer: it reads the pipe only once it has started.
const CDP_STARTUP_TIMEOUT: Duration = Duration::from_secs(180);
const MEDIA_EVERY: Duration = Duration::from_secs(5);
const MEDIA_REPORT_EVERY: Duration = Duration::from_secs(30);
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the first screen may take to appear (labwc's start on a slow PC).
const FIRST_SCREEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often every target is listed (titles change without an event).
const TARGET_POLL: Duration = Duration::from_secs(2);

/// One state change of the session, as its console line reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum SessionEvent {
    Starting {
        url: String,
        origins: Vec<String>,
        fake_capture: bool,
        /// TEST images: the kernel's virtual camera is loaded.
        virtual_camera: bool,
        /// `layout` or `layout(variant)`; none: XKB's default.
        keyboard: Option<String>,
    },
    Waiting {
        reason: String,
    },
    /// Before a browser starts: the processes of the session account that were
    /// ended, and links found in its old folder (removed, not followed).
    Cleaned {
        #[serde(flatten)]
        cleanup: crate::session::account::Cleanup,
    },
    BrowserStarted {
        pid: u32,
        run: u32,
    },
    /// The conference page is on the screen: the browser presented its first
    /// content after the browser's start or a reload.
    Page {
        url: String,
        painted_after_ms: u64,
    },
    /// The watchdog opens the conference page anew in the same browser.
    Reloading {
        reason: String,
    },
    /// The watchdog ended the browser and starts it again after a pause.
    Restarting {
        reason: String,
        attempt: usize,
        pause_s: u64,
    },
    Media {
        flowing: bool,
        #[serde(flatten)]
        sample: MediaSample,
    },
    Hidden {
        reason: String,
    },
    BrowserExited {
        status: String,
    },
    CertificateStop {
        url: String,
        reason: String,
    },
    /// The conference page reached the conference's "ended" page: the browser is
    /// closed and the "conference ended" screen shows.
    Ended {
        url: String,
    },
    /// Enter on the "conference ended" screen: a fresh browser joins again.
    Rejoining,
    Failed {
        reason: String,
    },
}

/// Crashes of the browser in a sliding window of [`CRASH_WINDOW`].
#[derive(Debug, Default)]
pub struct CrashWindow {
    crashes: VecDeque<Instant>,
}

impl CrashWindow {
    /// Counts a crash at `now`; true when there were [`MAX_CRASHES`] within the window.
    pub fn crashed(&mut self, now: Instant) -> bool {
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW)
        {
            self.crashes.pop_front();
        }
        self.crashes.len() >= MAX_CRASHES
    }
}

/// How one browser run ended.
#[derive(Debug)]
enum RunEnd {
    Exited {
        status: String,
        clean: bool,
    },
    NetworkLost,
    Certificate {
        url: String,
        reason: String,
    },
    /// The watchdog gave up on this browser: it is ended and started again.
    Watchdog {
        reason: String,
    },
    /// The conference is over: the page reached its "ended" page.
    Ended {
        url: String,
    },
}

/// How long a browser that closed its debugging pipe gets to end by itself.
const EXIT_GRACE: Duration = Duration::from_secs(10);

fn emit(event: &SessionEvent) {
    tracing::info!("session: {event:?}");
    println!("{}", crate::console::event_line("session", event));
}

fn emit_blocked(blocked: &Blocked) {
    tracing::warn!("blocked {}: {}", blocked.what, blocked.url);
    println!("{}", crate::console::event_line("blocked", blocked));
}

/// The stop screen: the browser does not come back.
fn certificate_stop(url: &str, reason: &str, display: &mut StickDisplay) {
    emit(&SessionEvent::CertificateStop {
        url: url.into(),
        reason: reason.into(),
    });
    display.show(
        StickScreen::CertificateStop,
        &format!(
            "STOP: the conference server's certificate is not trusted.\n\n\
         {url}\n{reason}\n\n\
         This stick trusts only the certificate authorities its administrator named.\n\
         Someone may be impersonating the conference server. Do not continue on this\n\
         network; tell your administrator. Press the power button to switch off."
        ),
    );
}

/// The kiosk's own TLS check of the conference, with only the configured CAs:
/// `Err(Some(reason))` is a certificate problem, `Err(None)` an unreachable server.
fn preflight(url: &str) -> Result<(), Option<String>> {
    let check = ReachCheck::new(url, CONFERENCE_CA_PATH, PREFLIGHT_TIMEOUT)
        .map_err(|e| Some(e.to_string()))?;
    match check.fetch_status() {
        Ok(_) => Ok(()),
        Err(CheckError::Tls { source, .. }) if source.to_string().contains("certificate") => {
            Err(Some(source.to_string()))
        }
        Err(err) => {
            tracing::warn!("conference preflight: {err}");
            Err(None)
        }
    }
}

/// Runs the session for good. `network`: the image has a VPN, and the browser
/// shows the conference only while `reachable` holds; `portal`: a network's
/// sign-in page may be opened before the tunnel.
pub fn run(
    policy: SessionPolicy,
    language: Language,
    network: bool,
    portal: Option<PortalPolicy>,
    reachable: &AtomicBool,
) {
    emit(&SessionEvent::Starting {
        url: policy.url.clone(),
        origins: policy.origins.clone(),
        fake_capture: policy.fake_capture,
        virtual_camera: policy.test_virtual_camera,
        keyboard: policy.keyboard.as_ref().map(ToString::to_string),
    });
    let mut display = StickDisplay::new(policy.keyboard.clone(), language, banner(&policy));
    // The first screen once the compositor is up: shown before the network's
    // screens may replace it.
    display.show_and_wait(
        StickScreen::Starting,
        "The stick has checked itself and is starting ...",
        FIRST_SCREEN_TIMEOUT,
    );
    let mut crashes = CrashWindow::default();
    let mut restarts = RestartBudget::default();
    let mut run = 0;
    let mut last_waiting = String::new();
    loop {
        if network {
            wait_for_network(reachable, &mut display, run > 0, portal.as_ref());
            match check_conference(&policy, &mut display, &mut last_waiting) {
                Preflight::Trusted => {}
                Preflight::Unanswered => continue,
                Preflight::Stopped => return,
            }
        }
        run += 1;
        let Some(mut browser) = start_browser(&policy, &mut display) else {
            return;
        };
        last_waiting.clear();
        emit(&SessionEvent::Cleaned {
            cleanup: browser.cleanup.clone(),
        });
        emit(&SessionEvent::BrowserStarted {
            pid: browser.child.id(),
            run,
        });
        let started = Instant::now();
        let (end, shown) = supervise(&mut browser, &policy, network, reachable);
        browser.stop();
        if crate::session::leave::is_leaving() {
            // The person left: the PC is switching off; nothing starts again.
            loop {
                std::thread::park();
            }
        }
        if shown {
            restarts.page_shown();
        }
        if !after_run(end, started, &mut crashes, &mut restarts, &mut display) {
            return;
        }
    }
}

/// The test image's warning above every screen of the kiosk (a fake camera and
/// microphone); empty for a real image.
fn banner(policy: &SessionPolicy) -> &'static str {
    if policy.fake_capture {
        "TEST IMAGE: the browser gets a FAKE camera and microphone \
         (conference.test-fake-capture). Not for real conferences.\n\n"
    } else if policy.test_virtual_camera {
        "TEST IMAGE: the camera is the kernel's VIRTUAL test camera \
         (conference.test-virtual-camera). Not for real conferences.\n\n"
    } else {
        ""
    }
}

/// While the conference network is not reachable: the screen for it (never
/// personalised, no link, credentials refused, the password asked, connecting,
/// no answer (the sign-in page offered), or the tunnel lost when it was up
/// before), one `waiting` line, then waits until it is. F8 opens the sign-in
/// page meanwhile, if the image has one.
fn wait_for_network(
    reachable: &AtomicBool,
    display: &mut StickDisplay,
    was_up: bool,
    portal: Option<&PortalPolicy>,
) {
    if reachable.load(Ordering::SeqCst) {
        return;
    }
    emit(&SessionEvent::Waiting {
        reason: "the conference network is not reachable yet".into(),
    });
    while !reachable.load(Ordering::SeqCst) {
        if let Some(portal) = portal {
            crate::session::portal::open_if_asked(portal, display, reachable);
        }
        let link = crate::network::uplink::observe().is_ok_and(|uplink| uplink.link_up);
        let refused = crate::network::connecting::credentials_refused();
        let prompt = crate::network::user_factor::prompt();
        let (screen, text) = match (link, was_up) {
            _ if crate::network::credential::never_personalised() => (
                StickScreen::NotPersonalised,
                "This stick was never personalised: it carries no VPN credential and \
                 starts no network.\n\nGive it to the helpdesk.",
            ),
            (false, _) => {
                let (screen, text, rows) = no_link_screen();
                display.show_with_rows(screen, text, rows);
                wait_a_second_or_key(portal.is_some());
                continue;
            }
            (true, _) if refused => (
                StickScreen::VpnRefused,
                "The VPN gateway refuses this stick's credentials.\n\n\
                 The stick keeps trying, but this will not clear by itself: call the helpdesk.",
            ),
            (true, _) if prompt.is_some() => user_factor_screen(prompt),
            (true, false) if crate::network::relay_path::relay_in_use() => (
                StickScreen::VpnConnectingRelay,
                "The network lets no UDP through: connecting through the organisation's \
                 relay on TCP 443 ...\n\n\
                 The conference appears as soon as the VPN tunnel is up.",
            ),
            // Also after a loss: a hotel's sign-in may have run out.
            (true, _)
                if portal.is_some()
                    && crate::network::portal_net::unanswered()
                    && !crate::network::relay_path::relay_in_use() =>
            {
                (
                    StickScreen::VpnNoAnswer,
                    "No answer from the organisation's VPN over this network. If the network \
                 wants a sign-in first (hotel, train, guest Wi-Fi), press F8 to open its \
                 sign-in page: it is NOT the secure conference.",
                )
            }
            (true, false) => (
                StickScreen::VpnConnecting,
                "Connecting to the conference network ...\n\n\
                 The conference appears as soon as the VPN tunnel is up.",
            ),
            (true, true) => (
                StickScreen::VpnLost,
                "The connection to the conference network was lost; the conference is\n\
                 hidden until it is back. Reconnecting ...",
            ),
        };
        display.show(screen, text);
        wait_a_second_or_key(portal.is_some());
    }
}

/// No link: the Wi-Fi screens while Wi-Fi is in use (the list, the passphrase,
/// joining, refused, no device), else the cable's.
fn no_link_screen() -> (StickScreen, &'static str, Vec<Choice>) {
    let about = |name: String| {
        vec![Choice {
            name,
            bars: 0,
            security: "psk",
            signal_dbm: 0,
        }]
    };
    match crate::network::wifi::choice::view() {
        WifiView::NoHardware => (
            StickScreen::NoWifiHardware,
            "No network: no cable, and no Wi-Fi device this stick can use. Plug in a \
             network cable.",
            Vec::new(),
        ),
        WifiView::Choosing { choices } => (
            StickScreen::WifiChoose,
            "No cable: choose a Wi-Fi network on the screen (arrow keys, Enter).",
            choices,
        ),
        WifiView::Passphrase { name } => (
            StickScreen::WifiPassphrase,
            "Type the Wi-Fi network's password on the screen.",
            about(name),
        ),
        WifiView::Refused { name } => (
            StickScreen::WifiRefused,
            "The Wi-Fi network refused the password: type it again on the screen.",
            about(name),
        ),
        WifiView::Connecting { name } | WifiView::Connected { name } => (
            StickScreen::WifiConnecting,
            "Joining the Wi-Fi network ...",
            about(name),
        ),
        WifiView::Idle => (
            StickScreen::NoNetwork,
            "No network: plug in a network cable. The connection starts by itself.",
            Vec::new(),
        ),
    }
}

/// A second, or less once F8 is pressed (the sign-in page opens at once).
fn wait_a_second_or_key(portal: bool) {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if portal && crate::session::portal::pressed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The screen and console words while the person's password or token is asked.
fn user_factor_screen(prompt: Option<Prompt>) -> (StickScreen, &'static str) {
    use crate::network::user_factor::Factor;
    match (crate::network::user_factor::factor(), prompt) {
        (Factor::Password, Some(Prompt::Again { .. } | Prompt::FinalTry { .. })) => (
            StickScreen::PasswordRejected,
            "The VPN gateway rejected the password. Type it again on the screen.",
        ),
        (Factor::Password, _) => (
            StickScreen::EnterPassword,
            "The VPN gateway checks your password: type it on the screen.",
        ),
        (Factor::TokenPin, Some(Prompt::Again { .. })) => (
            StickScreen::PinRejected,
            "The card rejected the PIN. Type it again on the screen.",
        ),
        (Factor::TokenPin, Some(Prompt::FinalTry { .. })) => (
            StickScreen::PinFinalTry,
            "The card rejected the PIN; one more wrong PIN locks it.",
        ),
        (Factor::TokenPin, Some(Prompt::Locked)) => (
            StickScreen::TokenLocked,
            "The card is locked after too many wrong PINs: call the helpdesk.",
        ),
        (Factor::TokenPin, Some(Prompt::InsertToken)) => (
            StickScreen::InsertToken,
            "Insert your smartcard into the card reader.",
        ),
        (Factor::TokenPin, _) => (
            StickScreen::EnterPin,
            "The VPN key is on your card: type its PIN on the screen.",
        ),
    }
}

/// What the preflight allows before a browser starts.
#[derive(Debug)]
enum Preflight {
    /// The conference answers with a certificate the kiosk trusts.
    Trusted,
    /// The conference does not answer yet: waited, try again.
    Unanswered,
    /// The certificate is not trusted: the stop screen is shown.
    Stopped,
}

/// The kiosk's own check of the conference before a browser starts: a certificate
/// problem shows the stop screen; a server that does not answer is reported (once
/// until the reason changes) and given 5 s.
fn check_conference(
    policy: &SessionPolicy,
    display: &mut StickDisplay,
    last_waiting: &mut String,
) -> Preflight {
    match preflight(&policy.url) {
        Ok(()) => Preflight::Trusted,
        Err(Some(reason)) => {
            certificate_stop(&policy.url, &reason, display);
            Preflight::Stopped
        }
        Err(None) => {
            let reason = format!("{} does not answer yet", policy.url);
            if reason != *last_waiting {
                emit(&SessionEvent::Waiting {
                    reason: reason.clone(),
                });
                *last_waiting = reason;
            }
            std::thread::sleep(Duration::from_secs(5));
            Preflight::Unanswered
        }
    }
}

/// Starts the browser for one run; `None` when it cannot start (the screen says
/// why, and the session ends).
fn start_browser(policy: &SessionPolicy, display: &mut StickDisplay) -> Option<Browser> {
    let started = display
        .compositor()
        .and_then(|compositor| Browser::start(policy, compositor));
    match started {
        Ok(browser) => {
            display.clear();
            Some(browser)
        }
        Err(err) => {
            let reason = format!("{err:#}");
            emit(&SessionEvent::Failed {
                reason: reason.clone(),
            });
            display.show(
                StickScreen::StartFailed,
                &format!("The conference cannot start: {reason}\n\nPress the power button to switch off."),
            );
            None
        }
    }
}

/// What follows the end of a run `started` then: true when the browser starts
/// again, false when the session ends (a stop screen says why).
fn after_run(
    end: RunEnd,
    started: Instant,
    crashes: &mut CrashWindow,
    restarts: &mut RestartBudget,
    display: &mut StickDisplay,
) -> bool {
    match end {
        RunEnd::Watchdog { reason } => restart_after_watchdog(&reason, restarts, display),
        RunEnd::Exited { status, clean } => after_exit(status, clean, started, crashes, display),
        RunEnd::NetworkLost => {
            let reason = "the VPN tunnel is down: reconnecting".to_string();
            emit(&SessionEvent::Hidden {
                reason: reason.clone(),
            });
            true
        }
        RunEnd::Certificate { url, reason } => {
            certificate_stop(&url, &reason, display);
            false
        }
        RunEnd::Ended { url } => {
            emit(&SessionEvent::Ended { url });
            display.show(
                StickScreen::Ended,
                "The conference has ended.\n\nPress Enter to join again, or F10 to switch off.",
            );
            let rejoin = crate::session::ended::wait_for_rejoin();
            if rejoin {
                emit(&SessionEvent::Rejoining);
            }
            rejoin
        }
    }
}

/// The browser ended by itself: a clean end after [`MIN_CLEAN_RUN`] starts it
/// again; any other end is a crash, and [`MAX_CRASHES`] within [`CRASH_WINDOW`]
/// end the session (false).
fn after_exit(
    status: String,
    clean: bool,
    started: Instant,
    crashes: &mut CrashWindow,
    display: &mut StickDisplay,
) -> bool {
    tracing::warn!(
        "the browser ended ({status}); its last output:\n{}",
        Browser::log_tail()
    );
    emit(&SessionEvent::BrowserExited { status });
    if clean && started.elapsed() >= MIN_CLEAN_RUN {
        // Closed on purpose (Ctrl+W): back to the conference, no giving up.
        return true;
    }
    if crashes.crashed(Instant::now()) {
        let reason = format!(
            "the browser crashed {MAX_CRASHES} times within {} s",
            CRASH_WINDOW.as_secs()
        );
        emit(&SessionEvent::Failed {
            reason: reason.clone(),
        });
        display.show(
            StickScreen::Crashed,
            &format!(
                "The conference cannot run: {reason}.\n\n\
                 Press the power button to switch off, then start again."
            ),
        );
        return false;
    }
    true
}

/// The watchdog ended a browser: says so on the screen and waits the pause before
/// the next start; false when the restarts are used up (the stop screen is shown).
fn restart_after_watchdog(
    reason: &str,
    restarts: &mut RestartBudget,
    display: &mut StickDisplay,
) -> bool {
    tracing::warn!(
        "watchdog: {reason}; the browser's last output:\n{}",
        Browser::log_tail()
    );
    let Some((pause, attempt)) = restarts.take() else {
        let reason = format!(
            "{reason}; the browser was started again {} times without the page appearing",
            RESTART_PAUSES.len()
        );
        emit(&SessionEvent::Failed {
            reason: reason.clone(),
        });
        display.show(
            StickScreen::PageWatchdog,
            &format!(
                "The conference does not appear on this PC.\n\n{reason}.\n\n\
                 Press the power button to switch off, then start again. If this\n\
                 happens again, tell your helpdesk."
            ),
        );
        return false;
    };
    emit(&SessionEvent::Restarting {
        reason: reason.to_string(),
        attempt,
        pause_s: pause.as_secs(),
    });
    display.show(
        StickScreen::Restarting,
        &format!(
            "The conference did not start properly: {reason}.\n\n\
             Starting it again in {} s (attempt {attempt} of {}) ...",
            pause.as_secs(),
            RESTART_PAUSES.len()
        ),
    );
    std::thread::sleep(pause);
    true
}

/// Sets the browser-wide rules the policy also sets: camera and microphone for the
/// conference origins only, no downloads, every target reported.
fn lock_down(cdp: &mut Cdp, policy: &SessionPolicy) -> Result<(), CdpError> {
    cdp.call(
        "Target.setDiscoverTargets",
        json!({"discover": true}),
        CDP_STARTUP_TIMEOUT,
    )?;
    for name in ["camera", "microphone"] {
        cdp.call(
            "Browser.setPermission",
            json!({"permission": {"name": name}, "setting": "denied"}),
            CDP_TIMEOUT,
        )?;
        for origin in &policy.origins {
            cdp.call(
                "Browser.setPermission",
                json!({"permission": {"name": name}, "setting": "granted", "origin": origin}),
                CDP_TIMEOUT,
            )?;
        }
    }
    cdp.call(
        "Browser.setDownloadBehavior",
        json!({"behavior": "deny", "eventsEnabled": true}),
        CDP_TIMEOUT,
    )?;
    Ok(())
}

/// How the browser ended: its status, and whether it ended cleanly (exit 0, as
/// when someone closes its window) rather than crashing.
fn exit_of(status: std::io::Result<std::process::ExitStatus>) -> RunEnd {
    match status {
        Ok(status) => RunEnd::Exited {
            status: status.to_string(),
            clean: status.success(),
        },
        Err(err) => RunEnd::Exited {
            status: format!("unknown ({err})"),
            clean: false,
        },
    }
}

/// Opens the conference URL as a new page and closes `old`, the page it replaces.
fn restore(cdp: &mut Cdp, guard: &mut Guard, policy: &SessionPolicy, old: Option<&str>) {
    match cdp.call(
        "Target.createTarget",
        json!({"url": policy.url}),
        CDP_TIMEOUT,
    ) {
        Ok(created) => {
            if let Some(id) = created.get("targetId").and_then(|v| v.as_str()) {
                guard.set_main(id.to_string());
            }
        }
        Err(err) => tracing::error!("cannot open the conference again: {err}"),
    }
    let Some(old) = old else { return };
    if let Err(err) = cdp.call("Target.closeTarget", json!({"targetId": old}), CDP_TIMEOUT) {
        tracing::warn!("cannot close target {old}: {err}");
    }
}

/// What the session does about one target the browser reports; `Some`: the run
/// ends. `main_url`: where the conference page is now.
fn handle_target(
    cdp: &mut Cdp,
    guard: &mut Guard,
    policy: &SessionPolicy,
    target: &TargetInfo,
    main_url: &mut String,
) -> Option<RunEnd> {
    match guard.judge(target) {
        Verdict::Allow => {
            if guard.main() == Some(target.id.as_str()) {
                main_url.clone_from(&target.url);
            }
        }
        Verdict::Close(blocked) => {
            emit_blocked(&blocked);
            if let Err(err) = cdp.call(
                "Target.closeTarget",
                json!({"targetId": target.id}),
                CDP_TIMEOUT,
            ) {
                tracing::warn!("cannot close target {}: {err}", target.id);
            }
            // Back to the front: the closed window may have been shown over it.
            if let Some(main) = guard.main() {
                if let Err(err) = cdp.call(
                    "Target.activateTarget",
                    json!({"targetId": main}),
                    CDP_TIMEOUT,
                ) {
                    tracing::warn!("cannot bring the conference to the front: {err}");
                }
            }
        }
        Verdict::Restore(blocked) => {
            emit_blocked(&blocked);
            main_url.clear();
            restore(cdp, guard, policy, Some(&target.id));
        }
        Verdict::Log(blocked) => emit_blocked(&blocked),
        Verdict::CertificateStop { url } => {
            return Some(RunEnd::Certificate {
                url,
                reason: "the browser reports a certificate error".into(),
            })
        }
        Verdict::Ended { url } => return Some(RunEnd::Ended { url }),
    }
    None
}

/// How the browser ended once its debugging pipe closed: it gets [`EXIT_GRACE`]
/// to end by itself (a browser that closed its pipe and hangs is the watchdog's).
fn ended(browser: &mut Browser) -> RunEnd {
    let deadline = Instant::now() + EXIT_GRACE;
    while Instant::now() < deadline {
        match browser.child.try_wait() {
            Ok(Some(status)) => return exit_of(Ok(status)),
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(err) => return exit_of(Err(err)),
        }
    }
    RunEnd::Watchdog {
        reason: format!(
            "the browser closed its debugging pipe but did not end within {} s",
            EXIT_GRACE.as_secs()
        ),
    }
}

/// The browser's processes and the CPU time each used: where a hang sits.
fn process_cpu(cdp: &mut Cdp) -> String {
    match cdp.call("SystemInfo.getProcessInfo", json!({}), CDP_TIMEOUT) {
        Ok(answer) => answer
            .get("processInfo")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{} {} {:.1} s",
                    p.get("type").and_then(|v| v.as_str()).unwrap_or("?"),
                    p.get("id").and_then(|v| v.as_u64()).unwrap_or(0),
                    p.get("cpuTime").and_then(|v| v.as_f64()).unwrap_or(0.0)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(err) => format!("unknown ({err})"),
    }
}

/// One look at the browser for the watchdog: its targets (handed to the guard)
/// and its paint count. `Err`: the run ended meanwhile.
fn look_at(
    browser: &mut Browser,
    guard: &mut Guard,
    policy: &SessionPolicy,
    main_url: &mut String,
    watch: &mut PageWatch,
) -> Result<Look, RunEnd> {
    // First the browser's own count of certificate errors, so that the guard
    // judges the targets' titles with it.
    match browser.cdp.call(
        "Browser.getHistograms",
        json!({"query": MAIN_FRAME_ERRORS_HISTOGRAM}),
        CDP_TIMEOUT,
    ) {
        Ok(answer) => guard.set_certificate_errors(certificate_errors(&answer).unwrap_or(0)),
        Err(CdpError::Closed) => return Err(ended(browser)),
        Err(err) => {
            tracing::warn!("cannot read the browser's certificate errors: {err}");
            return Ok(Look::unanswered(Instant::now()));
        }
    }
    let targets: Vec<TargetInfo> =
        match browser
            .cdp
            .call("Target.getTargets", json!({}), CDP_TIMEOUT)
        {
            Ok(answer) => answer
                .get("targetInfos")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(TargetInfo::from_json)
                .collect(),
            Err(CdpError::Closed) => return Err(ended(browser)),
            Err(err) => {
                tracing::warn!("cannot list the browser's targets: {err}");
                return Ok(Look::unanswered(Instant::now()));
            }
        };
    handle_targets(browser, guard, policy, &targets, main_url, watch)?;
    let painted = match browser.cdp.call(
        "Browser.getHistograms",
        json!({"query": FIRST_PAINT_HISTOGRAM}),
        CDP_TIMEOUT,
    ) {
        Ok(answer) => histogram_count(&answer, FIRST_PAINT_HISTOGRAM),
        Err(CdpError::Closed) => return Err(ended(browser)),
        Err(err) => {
            tracing::warn!("cannot read the browser's paint count: {err}");
            return Ok(Look::unanswered(Instant::now()));
        }
    };
    Ok(Look {
        now: Instant::now(),
        answered: true,
        painted,
        on_conference: policy.allows(main_url),
    })
}

/// Hands every target to the guard; a page the kiosk replaced loads anew.
fn handle_targets(
    browser: &mut Browser,
    guard: &mut Guard,
    policy: &SessionPolicy,
    targets: &[TargetInfo],
    main_url: &mut String,
    watch: &mut PageWatch,
) -> Result<(), RunEnd> {
    for target in targets {
        let main_before = guard.main().map(str::to_string);
        if let Some(end) = handle_target(&mut browser.cdp, guard, policy, target, main_url) {
            return Err(end);
        }
        if main_before.is_some() && guard.main().map(str::to_string) != main_before {
            watch.replaced(Instant::now());
        }
    }
    Ok(())
}

/// Carries out what the watchdog decided; `Some`: the run ends.
fn act(
    action: Action,
    browser: &mut Browser,
    guard: &mut Guard,
    policy: &SessionPolicy,
    main_url: &mut String,
) -> Option<RunEnd> {
    match action {
        Action::Nothing => None,
        Action::Painted { after } => {
            emit(&SessionEvent::Page {
                url: main_url.clone(),
                painted_after_ms: after.as_millis() as u64,
            });
            None
        }
        Action::Reload { reason } => {
            tracing::warn!(
                "watchdog: {reason}; browser processes (CPU time): {}; its last output:\n{}",
                process_cpu(&mut browser.cdp),
                Browser::log_tail()
            );
            emit(&SessionEvent::Reloading { reason });
            // No page at all yet: the conference is opened as a new one.
            let old = guard.main().map(str::to_string);
            main_url.clear();
            restore(&mut browser.cdp, guard, policy, old.as_deref());
            None
        }
        Action::Restart { reason } => {
            tracing::warn!(
                "watchdog: {reason}; browser processes (CPU time): {}",
                process_cpu(&mut browser.cdp)
            );
            Some(RunEnd::Watchdog { reason })
        }
    }
}

/// Watches one browser run until it ends; also says whether the conference page
/// was on the screen in it.
fn supervise(
    browser: &mut Browser,
    policy: &SessionPolicy,
    network: bool,
    reachable: &AtomicBool,
) -> (RunEnd, bool) {
    if let Err(err) = lock_down(&mut browser.cdp, policy) {
        tracing::error!("cannot lock the browser down over CDP: {err}");
        let end = match err {
            CdpError::Closed => ended(browser),
            CdpError::Timeout { .. } => RunEnd::Watchdog {
                reason: format!("the browser did not answer after its start ({err})"),
            },
            _ => RunEnd::Exited {
                status: format!("stopped by the kiosk: {err}"),
                clean: false,
            },
        };
        return (end, false);
    }
    let mut watch = PageWatch::new(Instant::now());
    let end = watch_run(browser, policy, network, reachable, &mut watch);
    (end, watch.showing())
}

/// Watches one browser run until it ends: its events and targets handed to the
/// guard, the watchdog's look every [`TARGET_POLL`], its exit, the network and the
/// media.
fn watch_run(
    browser: &mut Browser,
    policy: &SessionPolicy,
    network: bool,
    reachable: &AtomicBool,
    watch: &mut PageWatch,
) -> RunEnd {
    let mut guard = Guard::new(policy.clone());
    let mut main_url = String::new();
    let mut media = MediaWatch::start();
    let mut next_look = Instant::now();
    loop {
        let event = match browser.cdp.next_event(Duration::from_millis(500)) {
            Ok(event) => event,
            Err(_) => return ended(browser),
        };
        let mut targets = Vec::new();
        if let Some(event) = event {
            match on_event(&event, browser, &mut guard, policy, &mut main_url, watch) {
                Ok(target) => targets.extend(target),
                Err(end) => return end,
            }
        }
        if let Err(end) =
            handle_targets(browser, &mut guard, policy, &targets, &mut main_url, watch)
        {
            return end;
        }
        // Events carry a target's title only at navigation; an interstitial (a
        // certificate error) sets it later, so every target is also polled, and
        // the watchdog looks at the same time.
        if Instant::now() >= next_look {
            next_look = Instant::now() + TARGET_POLL;
            let look = match look_at(browser, &mut guard, policy, &mut main_url, watch) {
                Ok(look) => look,
                Err(end) => return end,
            };
            let action = watch.look(&look);
            if let Some(end) = act(action, browser, &mut guard, policy, &mut main_url) {
                return end;
            }
        }
        if let Ok(Some(status)) = browser.child.try_wait() {
            return exit_of(Ok(status));
        }
        if network && !reachable.load(Ordering::SeqCst) {
            return RunEnd::NetworkLost;
        }
        media.sample_when_due();
    }
}

/// One event of the browser: a target it reports (for the guard), a download
/// (blocked), or the conference page crashed (the watchdog decides). `Err`: the
/// run ends.
fn on_event(
    event: &Event,
    browser: &mut Browser,
    guard: &mut Guard,
    policy: &SessionPolicy,
    main_url: &mut String,
    watch: &mut PageWatch,
) -> Result<Option<TargetInfo>, RunEnd> {
    match event.method.as_str() {
        "Target.targetCreated" | "Target.targetInfoChanged" => {
            return Ok(event
                .params
                .get("targetInfo")
                .and_then(TargetInfo::from_json));
        }
        "Browser.downloadWillBegin" => emit_blocked(&Blocked {
            what: "download",
            url: event
                .params
                .get("url")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
        }),
        "Target.targetCrashed" => {
            let id = event
                .params
                .get("targetId")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            if guard.main() == Some(id) {
                let action = watch.crashed(Instant::now());
                if let Some(end) = act(action, browser, guard, policy, main_url) {
                    return Err(end);
                }
            }
        }
        _ => {}
    }
    Ok(None)
}

/// The media of the call, sampled every [`MEDIA_EVERY`]; a `media` line when it
/// starts or stops flowing, and every [`MEDIA_REPORT_EVERY`] anyway.
#[derive(Debug)]
struct MediaWatch {
    last_sample: MediaSample,
    flowing: bool,
    next_sample: Instant,
    next_report: Instant,
}

impl MediaWatch {
    /// The first sample, taken now; the first line follows the next one.
    fn start() -> MediaWatch {
        MediaWatch {
            last_sample: crate::session::media::observe(),
            flowing: false,
            next_sample: Instant::now() + MEDIA_EVERY,
            next_report: Instant::now(),
        }
    }

    /// Samples (and bounds the browser's log) when the interval is over.
    fn sample_when_due(&mut self) {
        if Instant::now() < self.next_sample {
            return;
        }
        self.next_sample = Instant::now() + MEDIA_EVERY;
        Browser::bound_log();
        let sample = crate::session::media::observe();
        let now_flowing = crate::session::media::flowing(&self.last_sample, &sample);
        if now_flowing != self.flowing || Instant::now() >= self.next_report {
            self.flowing = now_flowing;
            self.next_report = Instant::now() + MEDIA_REPORT_EVERY;
            emit(&SessionEvent::Media {
                flowing: self.flowing,
                sample: sample.clone(),
            });
        }
        self.last_sample = sample;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_crashes_within_two_minutes_give_up() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let cases: &[(&[u64], bool)] = &[
            (&[0], false),
            (&[0, 10], false),
            (&[0, 10, 20], true),
            (&[0, 100, 200], false),
            (&[0, 100, 200, 210], true),
            (&[0, 121, 242], false),
        ];
        for (times, want) in cases {
            let mut window = CrashWindow::default();
            let gave_up = times.iter().map(|t| window.crashed(at(*t))).last();
            assert_eq!(gave_up, Some(*want), "{times:?}");
        }
    }
}
