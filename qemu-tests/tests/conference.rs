//! The conference session against a real WebRTC peer: the test image (WireGuard,
//! fake camera and microphone) boots on the lab's uplink, the kiosk brings up the
//! tunnel and starts cage with Chromium on the conference page behind it, and the
//! page calls Janus' echo test by itself. Then a hostile page and the keyboard try
//! every way out of the conference, one row of ESCAPES per attempt, and the last
//! row sends the browser to a server whose certificate the image does not trust.
//! Before that row the gateway dies: the conference must leave the screen until the
//! tunnel is back, and the call come back by itself.
//! The whole uplink capture is judged at power-off like the VPN scenarios.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qemu_tests::lab::conference_lab::{
    conference_machine, ConferenceLab, PageReport, TunnelDestination, CONFERENCE, CONFERENCE_IMAGE,
    JANUS_MEDIA_PORTS, PORT, RESOLVER, UNTRUSTED,
};
use qemu_tests::lab::netlab::Gateway;
use qemu_tests::lab::vpn_session::{VpnSession, BOOT_TIMEOUT};
use qemu_tests::machine::qemu::{wait_until, Machine};
use qemu_tests::machine::screen::{Region, Screen};
use qemu_tests::machine::serial::parse_event;
use qemu_tests::OkOrPanic;

/// The tunnel address the WireGuard test image has.
const GUEST_TUNNEL_ADDRESS: &str = "10.99.1.2";
/// From the browser's start to the call being up (TCG, one vCPU). Measured in
/// one CI run with a second VM beside it (2026-12-07), the kiosk's `media
/// flowing` line: 238 s after the browser's start for the first call, 354 s for
/// the call after the tunnel cut (page on screen after 162 s, the camera 55 s
/// later, the media 105 s after the microphone); 300 s failed there.
const CALL_TIMEOUT: Duration = Duration::from_secs(480);
/// From the browser's start to the page on screen, with the first request held:
/// the watchdog's wait (90 s), its reload, and room for one more stall that the
/// kiosk must recover from by itself (a restart) before the test gives up.
const FIRST_PAGE_TIMEOUT: Duration = Duration::from_secs(540);
/// From the browser's start to the watchdog's first step for the held page: its
/// 90 s count from the browser's first answer, which took 48–150 s under TCG.
const WATCHDOG_TIMEOUT: Duration = Duration::from_secs(360);
/// The watchdog's steps: a reload of the page, a restart of the browser.
const WATCHDOG_STEPS: [&str; 2] = ["reloading", "restarting"];
/// From an attempt to the kiosk's reaction.
const REACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// From the gateway's death to the kiosk hiding the conference: the tunnel check
/// has to fail first (`tunnel-lost` came 24 s after the last good check in the VPN
/// scenarios).
const TUNNEL_LOSS_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an attempt that leaves no trace is given to do harm before the checks.
const SETTLE: Duration = Duration::from_secs(8);
/// The test page's background (`#17324d` in qemu-tests/conference/page.html).
const PAGE_BACKGROUND: [u8; 3] = [0x17, 0x32, 0x4d];
/// Share of the screen in that colour that means "the conference is showing".
const PAGE_SHOWING: f64 = 0.3;
/// ... and at most this much: "the conference is gone from the screen".
const PAGE_HIDDEN: f64 = 0.05;

/// Packets each way and kind that prove media flows through Janus.
const MEDIA_PACKETS: u64 = 100;
/// The stick's camera/microphone indicator (kiosk/src/overlay/indicator.rs): its
/// red, and its place at the top right (320 x 104 at 16 px from the edges).
const INDICATOR_RED: [u8; 3] = [0xd0, 0x10, 0x10];
const INDICATOR_MARGIN: usize = 16;
const INDICATOR_SIZE: (usize, usize) = (320, 104);
/// The line under the rows that names the kiosk's keys (F9, F10).
const INDICATOR_KEYS_HEIGHT: usize = 34;
/// Two red rows with white words and dots: most of the indicator's place is red.
const INDICATOR_SHOWING: f64 = 0.4;
/// The indicator's grey for a device the kiosk's mute holds.
const INDICATOR_MUTED: [u8; 3] = [0x50, 0x5a, 0x62];
/// How long Janus' packet counters are watched before and during the mute.
const MEDIA_WINDOW: Duration = Duration::from_secs(10);
/// The page's own box over the indicator's place (page.html, key h).
const COVER_BLUE: [u8; 3] = [0, 0, 0xff];

/// What must follow an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The kiosk logs `blocked` with this `what`; the conference stays.
    Blocked(&'static str),
    /// The browser refuses it inside the page (or it is harmless); the page
    /// reported the attempt and the conference stays (nothing reaches the kiosk
    /// to log, and the session is not stopped).
    RefusedByBrowser,
    /// The kiosk logs the `shortcut`; nothing opens, the conference stays.
    Shortcut(&'static str),
    /// The kiosk logs the `shortcut`; the browser ends, the kiosk starts it again
    /// on the conference.
    ShortcutRestart(&'static str),
    /// The kiosk stops the session with its certificate screen.
    CertificateStop,
}

/// One way out of the conference.
struct Escape {
    attempt: &'static str,
    /// QMP key chord: a letter the hostile page acts on, or a shortcut.
    keys: &'static str,
    expect: Expect,
}

const ESCAPES: &[Escape] = &[
    Escape {
        attempt: "window.open() of a popup",
        keys: "o",
        expect: Expect::Blocked("new-window"),
    },
    Escape {
        attempt: "a target=_blank link",
        keys: "b",
        expect: Expect::Blocked("new-window"),
    },
    Escape {
        attempt: "navigation to another origin",
        keys: "n",
        expect: Expect::Blocked("navigation"),
    },
    // The policy blocks the frame's load inside the page (no target appears); the
    // frame's server, which would ask for the camera, is never contacted.
    Escape {
        attempt: "an other-origin iframe asking for the camera",
        keys: "i",
        expect: Expect::RefusedByBrowser,
    },
    Escape {
        attempt: "a download",
        keys: "d",
        expect: Expect::Blocked("download"),
    },
    Escape {
        attempt: "navigation to file:///etc/passwd",
        keys: "f",
        expect: Expect::RefusedByBrowser,
    },
    Escape {
        attempt: "navigation to chrome://settings",
        keys: "c",
        expect: Expect::RefusedByBrowser,
    },
    Escape {
        attempt: "top-level navigation to a data: URL",
        keys: "a",
        expect: Expect::RefusedByBrowser,
    },
    Escape {
        attempt: "top-level navigation to a javascript: URL",
        keys: "j",
        expect: Expect::RefusedByBrowser,
    },
    // The page offers ICE candidates at the gateway's ports: the egress policy lets
    // only the tunnel's own packets reach them, so no STUN check leaves the uplink
    // (the capture is judged at power-off; STUN to the gateway is a leak).
    Escape {
        attempt: "ICE candidates at the VPN gateway's ports",
        keys: "s",
        expect: Expect::RefusedByBrowser,
    },
    // The page titles itself like the browser's certificate interstitial; the kiosk
    // stops only on a certificate error the browser itself counted.
    Escape {
        attempt: "a page titled like the certificate interstitial",
        keys: "t",
        expect: Expect::RefusedByBrowser,
    },
    Escape {
        attempt: "new window (Ctrl+N)",
        keys: "ctrl-n",
        expect: Expect::Shortcut("ctrl+n"),
    },
    Escape {
        attempt: "new tab (Ctrl+T)",
        keys: "ctrl-t",
        expect: Expect::Shortcut("ctrl+t"),
    },
    Escape {
        attempt: "incognito window (Ctrl+Shift+N)",
        keys: "ctrl-shift-n",
        expect: Expect::Shortcut("ctrl+shift+n"),
    },
    Escape {
        attempt: "developer tools (Ctrl+Shift+I)",
        keys: "ctrl-shift-i",
        expect: Expect::Shortcut("ctrl+shift+i"),
    },
    Escape {
        attempt: "developer tools (F12)",
        keys: "f12",
        expect: Expect::Shortcut("f12"),
    },
    Escape {
        attempt: "JavaScript console (Ctrl+Shift+J)",
        keys: "ctrl-shift-j",
        expect: Expect::Shortcut("ctrl+shift+j"),
    },
    Escape {
        attempt: "print (Ctrl+P)",
        keys: "ctrl-p",
        expect: Expect::Shortcut("ctrl+p"),
    },
    Escape {
        attempt: "view source (Ctrl+U)",
        keys: "ctrl-u",
        expect: Expect::Shortcut("ctrl+u"),
    },
    Escape {
        attempt: "open a file (Ctrl+O)",
        keys: "ctrl-o",
        expect: Expect::Shortcut("ctrl+o"),
    },
    Escape {
        attempt: "save the page (Ctrl+S)",
        keys: "ctrl-s",
        expect: Expect::Shortcut("ctrl+s"),
    },
    Escape {
        attempt: "switch to VT 2 (Ctrl+Alt+F2)",
        keys: "ctrl-alt-f2",
        expect: Expect::Shortcut("ctrl+alt+f2"),
    },
    Escape {
        attempt: "end the session (Ctrl+Alt+Backspace)",
        keys: "ctrl-alt-backspace",
        expect: Expect::Shortcut("ctrl+alt+backspace"),
    },
    // Closing the last tab ends the browser; the kiosk starts it again. (Alt+F4 does
    // the same, exercised in earlier runs; a second restart in one boot left the
    // browser without keyboard focus, see the issue note.)
    Escape {
        attempt: "close the tab (Ctrl+W)",
        keys: "ctrl-w",
        expect: Expect::ShortcutRestart("ctrl+w"),
    },
    Escape {
        attempt: "a server whose certificate comes from another CA",
        keys: "x",
        expect: Expect::CertificateStop,
    },
];

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The page's own ICE candidates (the page reports them): the tunnel's address,
/// never the PC's LAN address (the uplink's DHCP address, from the net lines).
fn page_candidates(s: &VpnSession, lab: &ConferenceLab) -> Vec<String> {
    let lan: Vec<String> = events(s, "net")
        .iter()
        .filter_map(|e| e["address"].as_str())
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .collect();
    assert!(!lan.is_empty(), "no uplink address on the console");
    let report = wait_report(lab, 0, "candidates", None);
    let candidates: Vec<String> = report.detail.lines().map(String::from).collect();
    // a=candidate:FOUNDATION COMPONENT PROTOCOL PRIORITY ADDRESS PORT typ TYPE ...
    let addresses: Vec<&str> = candidates
        .iter()
        .filter_map(|c| c.split(' ').nth(4))
        .collect();
    assert!(
        addresses.contains(&GUEST_TUNNEL_ADDRESS),
        "the page is offered the tunnel's address: {candidates:?}"
    );
    for address in &addresses {
        assert!(
            !lan.iter().any(|l| l == address),
            "the page learnt the PC's LAN address {address}: {candidates:?}"
        );
    }
    candidates
}

/// The kiosk's lines of one kind, as JSON, in order.
fn events(s: &VpnSession, kind: &str) -> Vec<serde_json::Value> {
    s.events(kind)
}

fn wait_event(
    s: &mut VpnSession,
    kind: &str,
    after: usize,
    timeout: Duration,
    what: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    s.wait_event(kind, after, timeout, what, matches)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn wait_report(lab: &ConferenceLab, after: usize, what: &str, detail: Option<&str>) -> PageReport {
    wait_report_within(lab, after, what, detail, CALL_TIMEOUT)
}

fn wait_report_within(
    lab: &ConferenceLab,
    after: usize,
    what: &str,
    detail: Option<&str>,
    timeout: Duration,
) -> PageReport {
    lab.wait_report(after, what, detail, timeout).ok_or_panic()
}

/// The first line of `kind` after the first `after` that `matches`, within `timeout`.
fn find_event(
    s: &VpnSession,
    kind: &str,
    after: usize,
    timeout: Duration,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    wait_until(timeout, Duration::from_millis(300), || {
        events(s, kind).into_iter().skip(after).find(&matches)
    })
}

/// Share of the screen in the conference page's colour, from a screendump.
fn page_share(vm: &Machine) -> Result<f64, String> {
    vm.screen()
        .map(|screen| screen.share_of(PAGE_BACKGROUND, 3))
        .map_err(|e| format!("{e:#}"))
}

/// Prints one line of the table and keeps a failure for the verdict at the end.
fn record(failures: &mut Vec<String>, label: &str, outcome: Result<String, String>) {
    match outcome {
        Ok(seen) => println!("conference: {label} | {seen}"),
        Err(why) => {
            println!("conference: {label} | FAILED: {why}");
            failures.push(format!("{label}: {why}"));
        }
    }
}

/// Keeps what the screen shows for a row that went wrong.
fn keep_screen(s: &VpnSession, escape: &Escape, what: &str) {
    let path =
        qemu_tests::artifacts_dir().join(format!("conference-row-{}-{what}.png", escape.keys));
    let _ = s.vm.screenshot(&path);
}

/// When something dims the conference (Chromium's modal policy notice), presses
/// Enter, its OK, as a person would, and waits for the conference to show again.
/// `Ok(true)`: a notice was closed; `Ok(false)`: the conference was showing.
fn close_notice(s: &VpnSession) -> Result<bool, String> {
    let share_now = || page_share(&s.vm);
    if share_now()? >= PAGE_SHOWING {
        return Ok(false);
    }
    s.vm.send_keys("ret").map_err(|e| format!("{e:#}"))?;
    wait_until(REACTION_TIMEOUT, Duration::from_secs(1), || {
        share_now().ok().filter(|share| *share >= PAGE_SHOWING)
    })
    .map(|_| true)
    .ok_or_else(|| "the conference stayed dimmed after Enter".to_string())
}

/// After a chord that closes the browser: it ends (`browser-exited`), or, when
/// Chromium hangs while closing (seen after an earlier restart in the same boot),
/// the kiosk's watchdog ends it (`restarting`). A policy notice that took the
/// chord is closed as a person would, and the chord pressed again.
fn browser_ended(s: &VpnSession, escape: &Escape, after: usize) -> Result<String, String> {
    let ended = |s: &VpnSession, timeout: Duration| {
        find_event(s, "session", after, timeout, |e| {
            e["state"] == "browser-exited" || e["state"] == "restarting"
        })
    };
    let how = |e: serde_json::Value| match e["state"].as_str() {
        Some("restarting") => format!(
            "the browser hung while closing; the kiosk's watchdog ended it ({})",
            e["reason"]
        ),
        _ => "the browser ended".to_string(),
    };
    if let Some(e) = ended(s, REACTION_TIMEOUT) {
        return Ok(how(e));
    }
    keep_screen(s, escape, "no-exit");
    // A notice that opened after the shortcut took the keys: close it and press
    // the chord once more.
    if close_notice(s).unwrap_or(false) {
        s.vm.send_keys(escape.keys).map_err(|e| format!("{e:#}"))?;
        if let Some(e) = ended(s, REACTION_TIMEOUT) {
            return Ok(format!("a policy notice took the first chord; {}", how(e)));
        }
    }
    // The watchdog's longest way: two unanswered looks of 30 s, or the 10 s grace
    // after the pipe closed.
    ended(s, WATCHDOG_TIMEOUT)
        .map(how)
        .ok_or_else(|| "the browser did not end, and the kiosk's watchdog did not end it".into())
}

/// The `cleaned` line before a browser started again, in an image with the
/// hostile test process: it was killed however it hid, nothing of the account is
/// left, a link it planted was not followed (`/etc` still root's).
fn hostile_session_ended(cleaned: &serde_json::Value) -> Result<String, String> {
    let killed = cleaned["killed"].as_u64().unwrap_or(0);
    let left = cleaned["left"].as_array().map_or(0, Vec::len);
    let links: Vec<&str> = cleaned["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str())
        .collect();
    if killed == 0 || left != 0 || cleaned["etc_owner"] != 0 {
        return Err(format!(
            "the session account was not ended safely: {cleaned}"
        ));
    }
    if links.iter().any(|l| *l != "xdg -> /etc") {
        return Err(format!("unexpected links in the session folder: {cleaned}"));
    }
    Ok(format!(
        "{killed} process(es) of the account killed, none left, /etc still root's, {}",
        if links.is_empty() {
            "the hostile process had not planted its link yet".to_string()
        } else {
            format!("planted link {links:?} removed unfollowed")
        }
    ))
}

/// Presses the row's keys and checks what followed; `Ok`: what the kiosk logged.
fn try_escape(s: &mut VpnSession, lab: &ConferenceLab, escape: &Escape) -> Result<String, String> {
    let (blocked_before, sessions_before, shortcuts_before, reports_before) = (
        events(s, "blocked").len(),
        events(s, "session").len(),
        events(s, "shortcut").len(),
        lab.reports().len(),
    );
    let mut seen = Vec::new();
    if escape.expect == Expect::CertificateStop {
        // Sent through the page itself: keys after a browser restart are not
        // reliably delivered yet (see the issue note).
        lab.request_attempt(escape.keys)
            .map_err(|e| format!("{e:#}"))?;
    } else {
        // Keys go to whatever has the focus: a policy notice that an earlier row
        // opened late would swallow them.
        if close_notice(s)? {
            seen.push("closed a policy notice an earlier row left".to_string());
        }
        s.vm.send_keys(escape.keys).map_err(|e| format!("{e:#}"))?;
    }
    let page_saw_key_within = |lab: &ConferenceLab, timeout: Duration| {
        wait_until(timeout, Duration::from_millis(300), || {
            lab.reports()
                .into_iter()
                .skip(reports_before)
                .find(|r| r.what == "attempt" && r.detail == escape.keys)
        })
        .ok_or("the page never reported the attempt (did the key reach it?)")
    };
    let page_saw_key = |lab: &ConferenceLab| page_saw_key_within(lab, REACTION_TIMEOUT);
    match escape.expect {
        Expect::Blocked(what) => {
            page_saw_key(lab)?;
            let line = find_event(s, "blocked", blocked_before, REACTION_TIMEOUT, |e| {
                e["what"] == what
            })
            .ok_or(format!("no `blocked {what}` line"))?;
            seen.push(format!("blocked {what} {}", line["url"]));
        }
        Expect::RefusedByBrowser => {
            page_saw_key(lab)?;
            seen.push("the page tried; nothing reached the kiosk".into());
        }
        Expect::Shortcut(keys) | Expect::ShortcutRestart(keys) => {
            find_event(s, "shortcut", shortcuts_before, REACTION_TIMEOUT, |e| {
                e["keys"] == keys
            })
            .ok_or(format!("no `shortcut {keys}` line"))?;
            seen.push(format!("shortcut {keys}"));
        }
        Expect::CertificateStop => {
            // The last row, right after the browser's restart for the tunnel cut,
            // while another scenario shares the machine: the page's next poll, the
            // refused TLS handshake and the kiosk's next look at the browser took
            // longer than REACTION_TIMEOUT once (stop 33's CI run).
            page_saw_key_within(lab, CALL_TIMEOUT)?;
            let stop = find_event(s, "session", sessions_before, CALL_TIMEOUT, |e| {
                e["state"] == "certificate-stop"
            })
            .ok_or("the page went to the other CA's server, but no certificate-stop followed")?;
            seen.push(format!("certificate-stop {}", stop["url"]));
        }
    }
    if let Expect::ShortcutRestart(_) = escape.expect {
        seen.push(browser_ended(s, escape, sessions_before)?);
        find_event(s, "session", sessions_before, CALL_TIMEOUT, |e| {
            e["state"] == "page"
        })
        .ok_or("the conference did not come back")?;
        seen.push("browser ended and came back on the conference".into());
        let cleaned = find_event(s, "session", sessions_before, REACTION_TIMEOUT, |e| {
            e["state"] == "cleaned"
        })
        .ok_or("no `cleaned` line before the browser started again")?;
        seen.push(hostile_session_ended(&cleaned)?);
    } else {
        std::thread::sleep(SETTLE);
    }
    // The kiosk replaces a page that left the allowed origins; the new one's `page`
    // line comes once it has painted, which under TCG can take longer than SETTLE.
    if escape.expect == Expect::Blocked("navigation") {
        find_event(s, "session", sessions_before, CALL_TIMEOUT, |e| {
            e["state"] == "page"
        })
        .ok_or("the conference did not come back after the blocked navigation")?;
    }
    // A new page (after a restore or a restart) takes the next row's keys only once
    // it has drawn itself.
    let reloaded = events(s, "session")
        .into_iter()
        .skip(sessions_before)
        .any(|e| e["state"] == "page");
    if reloaded && escape.expect != Expect::CertificateStop {
        wait_until(CALL_TIMEOUT, Duration::from_millis(500), || {
            lab.reports()
                .into_iter()
                .skip(reports_before)
                .find(|r| r.what == "rendered")
        })
        .ok_or("the conference page did not render again")?;
        seen.push("the conference loaded again".into());
    }
    let conference = format!("https://{CONFERENCE}:8443/");
    for e in events(s, "session").into_iter().skip(sessions_before) {
        let untrusted_row = escape.expect == Expect::CertificateStop;
        if e["state"] == "page" && e["url"] != conference.as_str() && !untrusted_row {
            return Err(format!("the browser showed {}", e["url"]));
        }
        let restart = matches!(escape.expect, Expect::ShortcutRestart(_));
        if e["state"] == "browser-exited" && !restart {
            return Err("the browser ended".into());
        }
        if e["state"] == "hidden" {
            return Err(format!("the conference was hidden: {}", e["reason"]));
        }
        if e["state"] == "certificate-stop" && escape.expect != Expect::CertificateStop {
            return Err("certificate stop".into());
        }
    }
    // What a person at the PC sees: the conference, or (after the certificate stop)
    // anything but it.
    // A closing window can stay on screen a few seconds under TCG: wait for the
    // expected picture, then judge the last one.
    let showing_wanted = escape.expect != Expect::CertificateStop;
    let share_now = || page_share(&s.vm).unwrap_or(0.0);
    let share = wait_until(REACTION_TIMEOUT, Duration::from_secs(1), || {
        let share = share_now();
        let as_wanted = if showing_wanted {
            share >= PAGE_SHOWING
        } else {
            share <= PAGE_HIDDEN
        };
        as_wanted.then_some(share)
    })
    .unwrap_or_else(share_now);
    // Chromium answers some blocked shortcuts (devtools, opening a file) with a
    // modal notice ("DevTools not allowed on this page", its organisation icon)
    // that dims the page until someone presses its OK.
    let share = if showing_wanted && share < PAGE_SHOWING {
        // Still dimmed after Enter: judged below, with a screenshot.
        if close_notice(s) == Ok(true) {
            seen.push("a policy notice over the conference, closed with Enter".into());
        }
        share_now()
    } else {
        share
    };
    match escape.expect {
        Expect::CertificateStop if share > PAGE_HIDDEN => {
            keep_screen(s, escape, "screen");
            return Err(format!("the conference is still on screen ({share:.2})"));
        }
        Expect::CertificateStop => seen.push(format!("conference off the screen ({share:.2})")),
        _ if share < PAGE_SHOWING => {
            keep_screen(s, escape, "screen");
            return Err(format!(
                "the conference is not on screen ({share:.2} of its colour)"
            ));
        }
        _ => {}
    }
    let other: Vec<String> = events(s, "blocked")
        .into_iter()
        .skip(blocked_before)
        .map(|e| format!("{} {}", e["what"], e["url"]))
        .collect();
    if !other.is_empty() && !matches!(escape.expect, Expect::Blocked(_)) {
        seen.push(format!("also blocked: {}", other.join(", ")));
    }
    Ok(seen.join("; "))
}

/// The gateway dies mid-call: the kiosk must take the conference off the screen
/// (its connecting screen instead) until the tunnel is back, then bring the call
/// back by itself. Nothing may leave outside the tunnel meanwhile (the capture is
/// judged at the end).
fn tunnel_cut_hides_the_conference(
    s: &mut VpnSession,
    lab: &ConferenceLab,
) -> Result<String, String> {
    let sessions_before = events(s, "session").len();
    let screens_before = events(s, "screen").len();
    let reports_before = lab.reports().len();
    let cut = Instant::now();
    s.lab.stop_gateway();
    find_event(s, "session", sessions_before, TUNNEL_LOSS_TIMEOUT, |e| {
        e["state"] == "hidden"
    })
    .ok_or("no `session hidden` line after the gateway died")?;
    let hidden_after = cut.elapsed();
    // None: no screendump, which proves neither way.
    let share_now = || page_share(&s.vm).ok();
    let gone = wait_until(REACTION_TIMEOUT, Duration::from_secs(1), || {
        share_now().filter(|share| *share <= PAGE_HIDDEN)
    });
    let Some(gone) = gone else {
        return Err(format!(
            "the conference stayed on screen without the tunnel ({:?} of its colour)",
            share_now()
        ));
    };
    // The stick's own screen says what happened.
    find_event(s, "screen", screens_before, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["screen"] == "vpn-lost"
    })
    .ok_or("no `screen shown vpn-lost` line while the tunnel was down")?;
    let stick_screen = stick_screen_covers(&s.vm)
        .ok_or("the stick's screen does not cover the screen while the tunnel is down")?;
    let shot = qemu_tests::artifacts_dir().join("screen-vpn-lost.png");
    let _ = s.vm.screenshot(&shot);
    // The cable pulled as well: the screen asks for it.
    s.vm.set_uplink_cable(false).map_err(|e| format!("{e:#}"))?;
    let no_link = find_event(s, "screen", screens_before, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["screen"] == "no-network"
    });
    let cable_shot = qemu_tests::artifacts_dir().join("screen-no-network.png");
    let _ = s.vm.screenshot(&cable_shot);
    s.vm.set_uplink_cable(true).map_err(|e| format!("{e:#}"))?;
    no_link.ok_or("no `screen shown no-network` line with the cable pulled")?;
    if events(s, "session")
        .into_iter()
        .skip(sessions_before)
        .any(|e| e["state"] == "browser-started")
    {
        return Err("the browser started again while the tunnel was down".into());
    }

    s.lab.start_gateway().map_err(|e| format!("{e:#}"))?;
    let back = Instant::now();
    find_event(s, "session", sessions_before, CALL_TIMEOUT, |e| {
        e["state"] == "browser-started"
    })
    .ok_or("the browser did not start again once the tunnel was back")?;
    let connected = wait_until(CALL_TIMEOUT, Duration::from_millis(500), || {
        lab.reports()
            .into_iter()
            .skip(reports_before)
            .find(|r| r.what == "connection" && r.detail == "connected")
    })
    .ok_or("the call did not connect again")?;
    let showing = wait_until(REACTION_TIMEOUT, Duration::from_secs(1), || {
        share_now().filter(|share| *share >= PAGE_SHOWING)
    })
    .ok_or_else(|| format!("the conference is not back on screen ({:?})", share_now()))?;
    Ok(format!(
        "hidden {:.1} s after the gateway died (screen {gone:.2} of the page's colour, \
         {stick_screen:.2} of the stick's screen, SBS-VPN-02, {}; cable pulled: SBS-NET-01); \
         gateway back -> call connected again {:.1} s (screen {showing:.2}), client {}",
        hidden_after.as_secs_f64(),
        shot.display(),
        back.elapsed().as_secs_f64(),
        connected.client
    ))
}

/// `CONFERENCE_OVER_RELAY=1`: the same scenario on a network that lets no UDP
/// out, so that the call runs through stick-relay (a measurement run, not CI's:
/// CI runs the call by UDP and the relay's own scenarios in tests/relay.rs).
fn over_relay() -> bool {
    std::env::var("CONFERENCE_OVER_RELAY").is_ok_and(|v| v == "1")
}

#[test]
fn conference_call_and_escape_attempts() {
    let mut s = VpnSession::start_image(
        "conference",
        Gateway::Wireguard { wrong_key: false },
        true,
        CONFERENCE_IMAGE,
        conference_machine,
    )
    .ok_or_panic();
    if over_relay() {
        // The PC's network drops every UDP packet before the guest sends one: the
        // whole session, the call included, runs through the relay on TCP 443.
        s.lab.start_relay().ok_or_panic();
        s.lab.block_udp(true).ok_or_panic();
        println!("conference: the lab drops UDP; the tunnel must take the relay");
    }
    let lab = ConferenceLab::start(&s.lab).ok_or_panic();
    // The browser's first request for the page stays unanswered: the kiosk's
    // watchdog must see that nothing was painted and load the page anew.
    lab.hold_page_requests(1).ok_or_panic();

    // The session starts, shows the conference and the call comes up by itself.
    let starting = wait_event(&mut s, "session", 0, BOOT_TIMEOUT, "starting", |e| {
        e["state"] == "starting"
    });
    let kiosk_start = now_secs();
    assert_eq!(
        starting["virtual_camera"], true,
        "the test image must say its camera is the kernel's virtual one"
    );
    wait_event(&mut s, "session", 0, BOOT_TIMEOUT, "browser-started", |e| {
        e["state"] == "browser-started"
    });
    let browser_start = now_secs();
    // Its first step is a reload; a browser that stopped answering meanwhile is
    // restarted instead, which recovers the held page just as well.
    let first_step = wait_event(
        &mut s,
        "session",
        0,
        WATCHDOG_TIMEOUT,
        "the watchdog's reload (or restart) for the held page",
        |e| WATCHDOG_STEPS.iter().any(|step| e["state"] == *step),
    );
    let watchdog_at = now_secs();
    let rendered = wait_report_within(&lab, 0, "rendered", None, FIRST_PAGE_TIMEOUT);
    // Held whenever the browser first asked (a stall before it asked is recovered
    // from the same way, and counted below).
    assert!(
        lab.reports().iter().any(|r| r.what == "held"),
        "the page rendered, but the server never held a request"
    );
    assert_eq!(
        rendered.client, GUEST_TUNNEL_ADDRESS,
        "the page came through the tunnel"
    );
    let capture = wait_report(&lab, 0, "capture", None);
    assert!(
        capture.detail.contains("audio:") && capture.detail.contains("video:"),
        "{capture:?}"
    );
    wait_report(&lab, 0, "connection", Some("connected"));
    let candidates = page_candidates(&s, &lab);
    let media = wait_until(CALL_TIMEOUT, Duration::from_secs(2), || {
        lab.janus_media()
            .ok()
            .filter(|m| m.both_ways(MEDIA_PACKETS))
    })
    .unwrap_or_else(|| {
        panic!(
            "Janus saw no media both ways: {:?}; the page's last reports: {:#?}",
            lab.janus_media(),
            lab.last_reports(12)
        )
    });
    let flowing = wait_event(&mut s, "session", 0, CALL_TIMEOUT, "media flowing", |e| {
        e["state"] == "media" && e["flowing"] == true
    });
    // The tunnel held: the call was never taken off the screen (a slow answer to
    // one check is not a lost tunnel).
    let hidden: Vec<_> = events(&s, "session")
        .into_iter()
        .filter(|e| e["state"] == "hidden")
        .collect();
    assert!(
        hidden.is_empty(),
        "the conference was hidden during the call: {hidden:?}"
    );
    let shot = qemu_tests::artifacts_dir().join("conference-call.png");
    s.vm.screenshot(&shot).ok_or_panic();
    // The page line says "on screen": none while the held page showed nothing.
    let session_lines = events(&s, "session");
    let position = |states: &[&str]| {
        session_lines
            .iter()
            .position(|e| states.iter().any(|state| e["state"] == *state))
    };
    assert!(
        position(&["page"]) > position(&WATCHDOG_STEPS),
        "a page line came before the watchdog's step for the held page: {session_lines:?}"
    );
    let page = session_lines
        .iter()
        .find(|e| e["state"] == "page")
        .expect("a page line");
    assert_eq!(page["url"], format!("https://{CONFERENCE}:8443/"));
    println!(
        "conference: watchdog: held page -> `{}` {:.1} s after the browser started ({}); \
         the page painted after {} ms",
        first_step["state"].as_str().unwrap_or_default(),
        watchdog_at - browser_start,
        first_step["reason"],
        page["painted_after_ms"]
    );
    println!("conference: {}", lab.microphone_requests());
    // Stalls the kiosk recovered from by itself, beyond the held request.
    let unplanned: Vec<String> = session_lines
        .iter()
        .filter(|e| WATCHDOG_STEPS.iter().any(|step| e["state"] == *step))
        .skip(1)
        .map(|e| format!("{} ({})", e["state"], e["reason"]))
        .collect();
    println!(
        "conference: watchdog actions beyond the held request: {}",
        if unplanned.is_empty() {
            "none".to_string()
        } else {
            unplanned.join("; ")
        }
    );
    println!(
        "conference: kiosk session start -> page rendered {:.1} s, browser start -> rendered {:.1} s \
         (with the held request and the watchdog's wait)",
        rendered.t - kiosk_start,
        rendered.t - browser_start
    );
    let path = s
        .net_lines()
        .into_iter()
        .rfind(|n| n.state == "tunnel-up")
        .and_then(|n| n.path)
        .unwrap_or_default();
    if over_relay() {
        assert_eq!(path, "relay", "the call's tunnel did not take the relay");
    }
    println!("conference: Janus echo test {media:?} (the tunnel's path: {path})");
    println!("conference: the page's ICE candidates {candidates:?}");
    println!(
        "conference: during the call kiosk RSS {} KiB, browser (Chromium, {} processes) PSS {} KiB, \
         compositor (labwc + overlay, {} processes) PSS {} KiB, audio playing {}",
        flowing["kiosk_rss_kib"], flowing["browser_processes"], flowing["browser_pss_kib"],
        flowing["compositor_processes"], flowing["compositor_pss_kib"], flowing["audio_playing"]
    );
    println!("conference: screenshot {}", shot.display());

    // The config's keyboard-layout (de): the keys at Y's and Z's place are swapped.
    assert_eq!(starting["keyboard"], "de", "{starting}");
    for (key, typed) in [("y", "KeyY=z"), ("z", "KeyZ=y")] {
        let before = lab.reports().len();
        s.vm.send_keys(key).ok_or_panic();
        wait_report(&lab, before, "key", Some(typed));
    }
    println!("conference: keyboard layout de: KeyY types z, KeyZ types y");

    // The stick's own display: the browser cannot draw over it, the indicator
    // follows the kernel's devices whatever the page does.
    let mut failures = Vec::new();
    let outcome = browser_display_is_confined(&s);
    record(&mut failures, "display | the browser's socket", outcome);
    let outcome = indicator_follows_the_kernel(&mut s, &lab);
    record(
        &mut failures,
        "display | camera/microphone indicator",
        outcome,
    );
    let outcome = mute_takes_the_devices(&mut s, &lab);
    record(&mut failures, "display | mute key (F9)", outcome);
    let outcome = indicator_goes_at_hang_up(&mut s, &lab);
    record(&mut failures, "display | indicator after hang-up", outcome);
    let outcome = leave_question_takes_the_keyboard(&mut s, &lab);
    record(
        &mut failures,
        "display | leave question (F10, Esc)",
        outcome,
    );
    let outcome = ended_screen_and_rejoin(&mut s, &lab);
    record(&mut failures, "display | conference ended, rejoin", outcome);

    // Every way out, one row at a time; every row runs, failures are listed at the end.
    // The tunnel is cut before the last row, which ends the session.
    let (certificate_row, rows) = ESCAPES.split_last().expect("rows");
    let label = |escape: &Escape| format!("escape | {} ({})", escape.attempt, escape.keys);
    for escape in rows {
        let outcome = try_escape(&mut s, &lab, escape);
        record(&mut failures, &label(escape), outcome);
    }
    let outcome = tunnel_cut_hides_the_conference(&mut s, &lab);
    record(&mut failures, "tunnel cut", outcome);
    let outcome = try_escape(&mut s, &lab, certificate_row);
    record(&mut failures, &label(certificate_row), outcome);
    assert!(
        failures.is_empty(),
        "escape attempts not handled as the table says:\n{}\n--- console ---\n{}",
        failures.join("\n"),
        s.vm.console()
    );
    assert!(
        lab.frame_reports().is_empty(),
        "the other-origin frame's server was contacted: {:?}",
        lab.frame_reports()
    );
    assert!(
        lab.untrusted_reports().iter().all(|r| r.what != "get"),
        "the browser loaded a page from the untrusted server: {:?}",
        lab.untrusted_reports()
    );
    find_event(&s, "screen", 0, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["screen"] == "certificate-stop"
    })
    .unwrap_or_else(|| {
        panic!(
            "no `screen shown certificate-stop` line\n{}",
            s.vm.console()
        )
    });
    let stop_share = stick_screen_covers(&s.vm);
    let stop_shot = qemu_tests::artifacts_dir().join("screen-certificate-stop.png");
    s.vm.screenshot(&stop_shot).ok_or_panic();
    assert!(
        stop_share.is_some(),
        "the certificate stop screen does not cover the screen ({})",
        stop_shot.display()
    );
    // Before the first conference: the starting screen, then the connecting one.
    let shown: Vec<String> = events(&s, "screen")
        .iter()
        .filter(|e| e["state"] == "shown")
        .filter_map(|e| e["screen"].as_str().map(String::from))
        .collect();
    assert!(
        shown.starts_with(&["starting".to_string(), "vpn-connecting".to_string()]),
        "the session's first screens were not `starting`, `vpn-connecting`: {shown:?}"
    );
    println!(
        "conference: the stick's screens shown: {:?}",
        events(&s, "screen")
            .iter()
            .filter(|e| e["state"] == "shown")
            .map(|e| format!("{} {}", e["screen"], e["code"]))
            .collect::<Vec<_>>()
    );

    // No calls home: the guest looked up no name through the tunnel (every host of
    // the test is an address), and reached nothing but the conference's servers.
    let queries: Vec<String> = lab
        .guest_dns_queries()
        .iter()
        .map(|q| format!("{} (type {}) from {}", q.name, q.kind, q.client))
        .collect();
    let destinations = lab.tunnel_destinations().ok_or_panic();
    let foreign: Vec<String> = destinations
        .iter()
        .filter(|d| !conference_destination(d))
        .map(ToString::to_string)
        .collect();
    println!(
        "conference: through the tunnel: {} name lookups; destinations {}",
        queries.len(),
        destinations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        queries.is_empty(),
        "names looked up through the tunnel: {queries:?}"
    );
    assert!(
        foreign.is_empty(),
        "reached through the tunnel beyond the conference: {foreign:?}"
    );

    // The way out for the person: F10 asks, Enter leaves and switches off.
    let (report, console) = s
        .end_with_console(|vm| {
            vm.send_keys("f10")?;
            let asked = wait_until(REACTION_TIMEOUT, Duration::from_millis(300), || {
                vm.console()
                    .lines()
                    .filter_map(|l| parse_event(l, "screen"))
                    .filter(|e| e["state"] == "shown" && e["screen"] == "confirm-leave")
                    .nth(1)
            });
            anyhow::ensure!(asked.is_some(), "no second confirm-leave screen after F10");
            vm.send_keys("ret")?;
            vm.wait_for_exit(Duration::from_secs(120)).map(drop)
        })
        .ok_or_panic();
    let lines = |kind: &str| -> Vec<serde_json::Value> {
        console
            .lines()
            .filter_map(|l| parse_event(l, kind))
            .collect()
    };
    let confirmed = lines("leave")
        .into_iter()
        .find(|e| e["state"] == "confirmed")
        .unwrap_or_else(|| panic!("no `leave confirmed` line after Enter"));
    assert!(
        lines("screen")
            .iter()
            .any(|e| e["state"] == "shown" && e["screen"] == "powering-off"),
        "no `screen shown powering-off` line after leaving"
    );
    println!("conference: left with F10 and Enter: {confirmed}");
    assert!(
        report.leaks.is_empty(),
        "packets outside the tunnel: {:?}",
        report.leaks
    );
    println!("conference: uplink capture {report}");
}

/// The conference image on a PC whose firmware holds no Secure Boot keys (setup
/// mode, so nothing verified the stick): the kiosk refuses, the person sees the
/// stick's refusal screen with its helpdesk code instead of a console, the stick
/// sends nothing, and the power button switches off.
#[test]
fn conference_image_refuses_without_secure_boot() {
    let mut s = VpnSession::start_image(
        "refused-secure-boot",
        Gateway::Wireguard { wrong_key: false },
        false,
        CONFERENCE_IMAGE,
        |machine| {
            conference_machine(machine);
            machine.secure_boot = None;
        },
    )
    .ok_or_panic();
    let status = wait_event(&mut s, "status", 0, BOOT_TIMEOUT, "the verdict", |_| true);
    assert_eq!(status["ok"], false, "{status}");
    let refusals = status["refusals"].to_string();
    assert!(refusals.contains("Secure Boot"), "{refusals}");
    let shown = wait_event(&mut s, "screen", 0, REACTION_TIMEOUT, "the refusal", |e| {
        e["state"] == "shown"
    });
    assert_eq!(
        (shown["screen"].as_str(), shown["code"].as_str()),
        (Some("refused-secure-boot"), Some("SBS-BOOT-03")),
        "{shown}"
    );
    let cover = stick_screen_covers(&s.vm);
    let shot = qemu_tests::artifacts_dir().join("screen-refused-secure-boot.png");
    s.vm.screenshot(&shot).ok_or_panic();
    let cover =
        cover.unwrap_or_else(|| panic!("the refusal screen does not cover ({})", shot.display()));
    let (report, console) = s.power_off_with_console().ok_or_panic();
    let net_lines = console
        .lines()
        .filter_map(|l| parse_event(l, "net"))
        .count();
    assert_eq!(net_lines, 0, "a refused stick started its network");
    assert!(
        report.leaks.is_empty() && report.sent_by_guest == 0,
        "a refused stick sent packets: {report}"
    );
    assert!(
        console
            .lines()
            .filter_map(|l| parse_event(l, "screen"))
            .any(|e| e["state"] == "shown" && e["screen"] == "powering-off"),
        "no switching-off screen after the power button"
    );
    println!(
        "refused-secure-boot: {refusals}; the refusal screen covers {cover:.2} ({})",
        shot.display()
    );
}

/// The share of the stick screens' background on the screendump, once it is at
/// least [`STICK_SCREEN_SHOWING`] (within [`REACTION_TIMEOUT`]).
fn stick_screen_covers(vm: &Machine) -> Option<f64> {
    vm.stick_screen_covers(REACTION_TIMEOUT)
}

/// The share of the indicator's red in its place on the screen now.
fn indicator_share(vm: &Machine) -> Result<f64, String> {
    let screen = vm.screen().map_err(|e| format!("{e:#}"))?;
    let (width, height) = INDICATOR_SIZE;
    let place = Region::top_right(screen.width, INDICATOR_MARGIN, width, height);
    Ok(screen.share_in(place, INDICATOR_RED, 12))
}

/// The indicator during the call, over the page's attempt to hide it, and after
/// the page hung up; `Ok`: what was measured.
fn indicator_follows_the_kernel(s: &mut VpnSession, lab: &ConferenceLab) -> Result<String, String> {
    let mut seen = Vec::new();
    let both_on = |e: &serde_json::Value| {
        e["state"] == "shown" && e["camera"] == true && e["microphone"] == true
    };
    let on = find_event(s, "indicator", 0, REACTION_TIMEOUT, both_on)
        .ok_or("no `indicator shown` line with camera and microphone on during the call")?;
    seen.push(format!(
        "camera and microphone on, shown {} ms after the kiosk saw them",
        on["after_ms"]
    ));
    let share = indicator_share(&s.vm)?;
    let shot = qemu_tests::artifacts_dir().join("indicator-call.png");
    s.vm.screenshot(&shot).map_err(|e| format!("{e:#}"))?;
    if share < INDICATOR_SHOWING {
        return Err(format!(
            "during the call the indicator's place is {share:.2} red ({})",
            shot.display()
        ));
    }
    seen.push(format!("{share:.2} of its place red"));

    // The page goes full screen and draws its own box over the indicator's place.
    let before = lab.reports().len();
    s.vm.send_keys("h").map_err(|e| format!("{e:#}"))?;
    wait_until(REACTION_TIMEOUT, Duration::from_millis(500), || {
        lab.reports()
            .into_iter()
            .skip(before)
            .find(|r| r.what == "cover")
    })
    .ok_or("the page did not draw its cover")?;
    // The cover stays until the next key; under TCG its paint can come seconds
    // after the page's report, so the screen is watched for it.
    let (width, height) = INDICATOR_SIZE;
    let measure = |screen: &Screen| {
        let place = Region::top_right(screen.width, INDICATOR_MARGIN, width, height);
        // The cover is 480 x 220 at the top right: below the indicator it shows.
        let below = Region::top_right(screen.width, 0, 480, 220);
        let below = Region {
            y: INDICATOR_MARGIN + height + INDICATOR_KEYS_HEIGHT + 20,
            height: 60,
            ..below
        };
        (
            screen.share_in(place, INDICATOR_RED, 12),
            screen.share_in(below, COVER_BLUE, 12),
        )
    };
    let painted = wait_until(REACTION_TIMEOUT, Duration::from_millis(500), || {
        let screen = s.vm.screen().ok()?;
        (measure(&screen).1 >= 0.5).then_some(screen)
    });
    let screen = match painted {
        Some(screen) => screen,
        None => s.vm.screen().map_err(|e| format!("{e:#}"))?,
    };
    let shot = qemu_tests::artifacts_dir().join("indicator-over-page-cover.png");
    s.vm.screenshot(&shot).map_err(|e| format!("{e:#}"))?;
    // Any key takes the cover away again (the page's own rule).
    s.vm.send_keys("u").map_err(|e| format!("{e:#}"))?;
    let (red, blue) = measure(&screen);
    if blue < 0.5 {
        return Err(format!(
            "the page's cover is not on screen ({blue:.2} blue below the indicator, {})",
            shot.display()
        ));
    }
    if red < INDICATOR_SHOWING {
        return Err(format!(
            "the page's cover hid the indicator ({red:.2} red, {})",
            shot.display()
        ));
    }
    seen.push(format!(
        "over the page's full-screen cover {red:.2} red (cover {blue:.2} blue)"
    ));
    Ok(seen.join("; "))
}

/// The page hangs up: the kernel's devices close, the indicator goes.
fn indicator_goes_at_hang_up(s: &mut VpnSession, lab: &ConferenceLab) -> Result<String, String> {
    let lines = events(s, "indicator").len();
    let before = lab.reports().len();
    s.vm.send_keys("e").map_err(|e| format!("{e:#}"))?;
    wait_until(REACTION_TIMEOUT, Duration::from_millis(500), || {
        lab.reports()
            .into_iter()
            .skip(before)
            .find(|r| r.what == "hung-up")
    })
    .ok_or("the page did not hang up")?;
    let off = find_event(s, "indicator", lines, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["camera"] == false && e["microphone"] == false
    })
    .ok_or("the indicator did not go when the page hung up")?;
    std::thread::sleep(Duration::from_secs(2));
    let share = indicator_share(&s.vm)?;
    let shot = qemu_tests::artifacts_dir().join("indicator-after-hang-up.png");
    s.vm.screenshot(&shot).map_err(|e| format!("{e:#}"))?;
    if share > 0.01 {
        return Err(format!(
            "after the hang-up the indicator's place is still {share:.2} red ({})",
            shot.display()
        ));
    }
    Ok(format!(
        "gone after the hang-up, shown {} ms after the kiosk saw the devices close",
        off["after_ms"]
    ))
}

/// Video and audio packets Janus gets from the stick within [`MEDIA_WINDOW`].
fn media_in_window(lab: &ConferenceLab) -> Result<(u64, u64), String> {
    let first = lab.janus_media().map_err(|e| format!("{e:#}"))?;
    std::thread::sleep(MEDIA_WINDOW);
    let last = lab.janus_media().map_err(|e| format!("{e:#}"))?;
    Ok((
        last.video_packets_in.saturating_sub(first.video_packets_in),
        last.audio_packets_in.saturating_sub(first.audio_packets_in),
    ))
}

/// The share of the muted rows' grey in the indicator's place now.
fn indicator_grey_share(vm: &Machine) -> Result<f64, String> {
    let screen = vm.screen().map_err(|e| format!("{e:#}"))?;
    let (width, height) = INDICATOR_SIZE;
    let place = Region::top_right(screen.width, INDICATOR_MARGIN, width, height);
    Ok(screen.share_in(place, INDICATOR_MUTED, 12))
}

/// A `mute` line after the first `after` that is not `wanted_state`'s opposite,
/// checked to name what was taken or given back.
fn mute_line(
    s: &VpnSession,
    after: usize,
    wanted_state: &str,
) -> Result<serde_json::Value, String> {
    let line = find_event(s, "mute", after, REACTION_TIMEOUT, |_| true)
        .ok_or(format!("no `mute` line for {wanted_state}"))?;
    let named = |field: &str| line[field].as_array().is_some_and(|a| !a.is_empty());
    if line["state"] != wanted_state || !named("cameras") || !named("switches") {
        return Err(format!(
            "wanted {wanted_state} naming cameras and switches: {line}"
        ));
    }
    Ok(line)
}

/// F9 (the kiosk's key, read from the kernel's keyboard device) takes the camera
/// from the kernel and turns the sound card's capture switch off: the indicator
/// turns grey and Janus stops getting video. F9 again gives both back, also when
/// the muted part failed (the rows after it need the camera).
fn mute_takes_the_devices(s: &mut VpnSession, lab: &ConferenceLab) -> Result<String, String> {
    let lines = events(s, "key").len();
    let muted = mute_and_measure(s, lab);
    // Only if F9 was pressed: a key line says so.
    let pressed = events(s, "key")
        .iter()
        .skip(lines)
        .any(|e| e["mute_wanted"] == true);
    let unmuted = if pressed {
        unmute(s)
    } else {
        Ok("F9 never pressed".to_string())
    };
    match (muted, unmuted) {
        (Ok(muted), Ok(unmuted)) => Ok(format!("{muted}; {unmuted}")),
        (Err(err), Ok(_)) | (Ok(_), Err(err)) => Err(err),
        (Err(muted), Err(unmuted)) => Err(format!("{muted}; and F9 again: {unmuted}")),
    }
}

/// F9 again: the camera is bound again, the switch is on, the indicator says so.
fn unmute(s: &mut VpnSession) -> Result<String, String> {
    let (lines, indicator_lines) = (events(s, "mute").len(), events(s, "indicator").len());
    s.vm.send_keys("f9").map_err(|e| format!("{e:#}"))?;
    let unmuted = mute_line(s, lines, "unmuted")?;
    find_event(s, "indicator", indicator_lines, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["muted"] == false
    })
    .ok_or("the indicator did not show the end of the mute")?;
    Ok(format!(
        "F9 again: {} bound, {} on",
        unmuted["cameras"], unmuted["switches"]
    ))
}

/// F9 during the call, and what it did to the kernel, the screen and Janus.
fn mute_and_measure(s: &mut VpnSession, lab: &ConferenceLab) -> Result<String, String> {
    let (video_before, audio_before) = media_in_window(lab)?;
    let (lines, indicator_lines, reports) = (
        events(s, "mute").len(),
        events(s, "indicator").len(),
        lab.reports().len(),
    );
    s.vm.send_keys("f9").map_err(|e| format!("{e:#}"))?;
    let muted = mute_line(s, lines, "muted")?;
    if muted["cameras_left"] != 0 || muted["switches_on"] != 0 {
        return Err(format!("the kernel still has live devices: {muted}"));
    }
    let shown = find_event(s, "indicator", indicator_lines, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["muted"] == true && e["camera"] == false
    })
    .ok_or("the indicator did not show the mute")?;
    wait_until(REACTION_TIMEOUT, Duration::from_millis(500), || {
        lab.reports()
            .into_iter()
            .skip(reports)
            .find(|r| r.what == "track-ended" && r.detail == "video")
    })
    .ok_or("the page's camera track did not end")?;
    let (video_muted, audio_muted) = media_in_window(lab)?;
    let grey = indicator_grey_share(&s.vm)?;
    let shot = qemu_tests::artifacts_dir().join("indicator-muted.png");
    s.vm.screenshot(&shot).map_err(|e| format!("{e:#}"))?;
    let measured = format!(
        "Janus got {video_before} video / {audio_before} audio packets in {} s before the mute, {video_muted} / {audio_muted} while muted; muted {} (switches {}), indicator grey {grey:.2} shown {} ms after ({})",
        MEDIA_WINDOW.as_secs(),
        muted["cameras"],
        muted["switches"],
        shown["after_ms"],
        shot.display()
    );
    // TCG sends a few video packets a second (36 in 10 s measured): some before,
    // at most a tenth of that while muted.
    if video_before < 10 || video_muted * 10 > video_before {
        return Err(format!("the video did not stop: {measured}"));
    }
    if grey < INDICATOR_SHOWING {
        return Err(format!("the indicator is not grey: {measured}"));
    }
    Ok(measured)
}

/// F10 puts the leave question over the call and takes the keyboard from the
/// page; Esc goes back, and the page gets the keyboard again.
fn leave_question_takes_the_keyboard(
    s: &mut VpnSession,
    lab: &ConferenceLab,
) -> Result<String, String> {
    let screens = events(s, "screen").len();
    s.vm.send_keys("f10").map_err(|e| format!("{e:#}"))?;
    find_event(s, "screen", screens, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["screen"] == "confirm-leave"
    })
    .ok_or("no `screen shown confirm-leave` line after F10")?;
    let cover = stick_screen_covers(&s.vm);
    let shot = qemu_tests::artifacts_dir().join("screen-confirm-leave.png");
    s.vm.screenshot(&shot).map_err(|e| format!("{e:#}"))?;
    let cover = cover.ok_or(format!(
        "the question does not cover the call ({})",
        shot.display()
    ))?;
    let reports = lab.reports().len();
    s.vm.send_keys("y").map_err(|e| format!("{e:#}"))?;
    std::thread::sleep(SETTLE);
    if lab.reports().iter().skip(reports).any(|r| r.what == "key") {
        return Err("the page got a key while the question was shown".into());
    }
    let leaves = events(s, "leave").len();
    s.vm.send_keys("esc").map_err(|e| format!("{e:#}"))?;
    find_event(s, "leave", leaves, REACTION_TIMEOUT, |e| {
        e["state"] == "cancelled"
    })
    .ok_or("no `leave cancelled` line after Esc")?;
    std::thread::sleep(Duration::from_secs(2));
    let reports = lab.reports().len();
    s.vm.send_keys("y").map_err(|e| format!("{e:#}"))?;
    wait_until(REACTION_TIMEOUT, Duration::from_millis(500), || {
        lab.reports()
            .into_iter()
            .skip(reports)
            .find(|r| r.what == "key")
    })
    .ok_or("after Esc the page does not get the keyboard back")?;
    let page = page_share(&s.vm)?;
    Ok(format!(
        "the question covered {cover:.2} of the screen ({}); the page got no key under it; after Esc the page is back ({page:.2} of the screen) with the keyboard",
        shot.display()
    ))
}

/// The page goes where the conference sends people at its end (`ended-url`): the
/// kiosk closes the browser and shows the "conference ended" screen, which keeps
/// the keyboard under the leave question (F10, Esc); Enter joins again.
fn ended_screen_and_rejoin(s: &mut VpnSession, lab: &ConferenceLab) -> Result<String, String> {
    let sessions = events(s, "session").len();
    let screens = events(s, "screen").len();
    s.vm.send_keys("l").map_err(|e| format!("{e:#}"))?;
    let ended = find_event(s, "session", sessions, REACTION_TIMEOUT, |e| {
        e["state"] == "ended"
    })
    .ok_or("no `session ended` line after the page went to the ended page")?;
    find_event(s, "screen", screens, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["screen"] == "conference-ended"
    })
    .ok_or("no `screen shown conference-ended` line")?;
    let cover = stick_screen_covers(&s.vm);
    let shot = qemu_tests::artifacts_dir().join("screen-conference-ended.png");
    s.vm.screenshot(&shot).map_err(|e| format!("{e:#}"))?;
    let cover = cover.ok_or(format!(
        "the ended screen does not cover the screen ({})",
        shot.display()
    ))?;
    if !lab
        .reports()
        .iter()
        .any(|r| r.what == "get" && r.detail == "/ended")
    {
        return Err("the conference server was never asked for /ended".into());
    }
    // The leave question over it, cancelled: the screen must still take Enter.
    let (screens, leaves) = (events(s, "screen").len(), events(s, "leave").len());
    s.vm.send_keys("f10").map_err(|e| format!("{e:#}"))?;
    find_event(s, "screen", screens, REACTION_TIMEOUT, |e| {
        e["state"] == "shown" && e["screen"] == "confirm-leave"
    })
    .ok_or("no leave question over the ended screen after F10")?;
    s.vm.send_keys("esc").map_err(|e| format!("{e:#}"))?;
    find_event(s, "leave", leaves, REACTION_TIMEOUT, |e| {
        e["state"] == "cancelled"
    })
    .ok_or("no `leave cancelled` line after Esc over the ended screen")?;
    std::thread::sleep(Duration::from_secs(2));
    let sessions = events(s, "session").len();
    s.vm.send_keys("ret").map_err(|e| format!("{e:#}"))?;
    find_event(s, "session", sessions, REACTION_TIMEOUT, |e| {
        e["state"] == "rejoining"
    })
    .ok_or("Enter on the ended screen (after the question) did not join again")?;
    let page = find_event(s, "session", sessions, CALL_TIMEOUT, |e| {
        e["state"] == "page"
    })
    .ok_or("the conference did not come back after Enter")?;
    Ok(format!(
        "ended at {}; the screen covered {cover:.2} ({}); F10, Esc, then Enter joined again: page painted after {} ms",
        ended["url"],
        shot.display(),
        page["painted_after_ms"]
    ))
}

/// The browser's Wayland socket offers no layer-shell, and the compositor's own
/// socket is closed to the browser's account (the kiosk's probe, test images).
fn browser_display_is_confined(s: &VpnSession) -> Result<String, String> {
    let probe = events(s, "wayland-probe")
        .into_iter()
        .next()
        .ok_or("no wayland-probe line")?;
    let globals = probe["browser_globals"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !globals.iter().any(|g| g == "xdg_wm_base") {
        return Err(format!(
            "the probe did not reach the browser's display: {probe}"
        ));
    }
    if probe["layer_shell"] != false || globals.iter().any(|g| g == "zwlr_layer_shell_v1") {
        return Err(format!("the browser's display offers layer-shell: {probe}"));
    }
    let own = probe["compositor_socket"].as_str().unwrap_or_default();
    if !own.starts_with("refused") {
        return Err(format!(
            "the browser's account reached the compositor's own socket: {probe}"
        ));
    }
    Ok(format!(
        "{} globals on the browser's socket, no layer-shell; compositor's own socket {own}",
        globals.len()
    ))
}

/// What the guest may reach through the tunnel: the kiosk's check (443) and the
/// pages (8443) of the two conference servers, and Janus' media ports on the
/// inner addresses it offers as candidates.
fn conference_destination(d: &TunnelDestination) -> bool {
    let servers = [CONFERENCE, UNTRUSTED];
    match d.protocol.as_str() {
        "tcp" => servers.contains(&d.address.as_str()) && [443, PORT].contains(&d.port),
        "udp" => {
            (servers.contains(&d.address.as_str()) || d.address == RESOLVER)
                && JANUS_MEDIA_PORTS.contains(&d.port)
        }
        _ => false,
    }
}

#[test]
fn escape_table_has_one_row_per_key() {
    let mut keys: Vec<&str> = ESCAPES.iter().map(|e| e.keys).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), ESCAPES.len());
    assert_eq!(
        ESCAPES.last().map(|e| e.expect),
        Some(Expect::CertificateStop)
    );
}
