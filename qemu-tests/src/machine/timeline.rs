//! Where a boot spends its time, read from the serial console afterwards: the
//! kernel stamps every line with seconds since it started, so the milestones
//! below are exact to the microsecond however slowly the host polled. Only the
//! firmware's share (QEMU start to the kernel) needs the host's clock.

use crate::machine::serial::parse_event;

/// Seconds since the kernel started at which each milestone's line appeared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BootMilestones {
    /// The first line a program printed (after the kernel ran `/init`).
    pub first_userspace: Option<f64>,
    /// systemd starts again in the verified root (it left the initrd).
    pub switch_root: Option<f64>,
    /// The kiosk's status line (boot checks done).
    pub kiosk_status: Option<f64>,
    /// The kiosk starts the conference session.
    pub session_starting: Option<f64>,
    /// The kiosk starts the browser.
    pub browser_started: Option<f64>,
    /// The browser presented the conference page (or its error page).
    pub page_shown: Option<f64>,
}

/// The kernel's stamp of a console line, `[   12.345678] ...` (the rest of a
/// terminal sequence, such as `104` and a bell, may come before it).
pub fn kernel_seconds(line: &str) -> Option<f64> {
    let (junk, rest) = line.split_once('[')?;
    if !junk
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_control())
    {
        return None;
    }
    let (stamp, _) = rest.split_once(']')?;
    stamp.trim().parse().ok()
}

/// Whether a stamped line was printed by a program (`name[pid]: ...`) rather
/// than by the kernel.
fn from_a_program(line: &str) -> bool {
    let Some((_, rest)) = line.split_once("] ") else {
        return false;
    };
    let Some((name, _)) = rest.split_once(": ") else {
        return false;
    };
    name.strip_suffix(']')
        .and_then(|n| n.split_once('['))
        .is_some_and(|(program, pid)| {
            !program.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        })
}

fn is_session(line: &str, state: &str) -> bool {
    parse_event(line, "session").is_some_and(|e| e["state"] == state)
}

impl BootMilestones {
    /// The milestones found in a console; each is the first line of its kind.
    pub fn from_console(console: &str) -> BootMilestones {
        let stamped: Vec<(f64, &str)> = console
            .lines()
            .filter_map(|l| kernel_seconds(l).map(|s| (s, l)))
            .collect();
        let first = |matches: &dyn Fn(&str) -> bool| {
            stamped.iter().find(|(_, l)| matches(l)).map(|(s, _)| *s)
        };
        let init_ran = stamped
            .iter()
            .position(|(_, l)| l.contains("Run /init as init process"));
        BootMilestones {
            first_userspace: init_ran.and_then(|i| {
                stamped[i..]
                    .iter()
                    .find(|(_, l)| from_a_program(l))
                    .map(|(s, _)| *s)
            }),
            // systemd names itself once in the initrd and once in the root.
            switch_root: stamped
                .iter()
                .filter(|(_, l)| {
                    l.contains("systemd[1]: systemd ") && l.contains(" running in system mode")
                })
                .nth(1)
                .map(|(s, _)| *s),
            kiosk_status: first(&|l| parse_event(l, "status").is_some()),
            session_starting: first(&|l| is_session(l, "starting")),
            browser_started: first(&|l| is_session(l, "browser-started")),
            page_shown: first(&|l| is_session(l, "page")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_programs() {
        // (line, kernel seconds, printed by a program)
        let cases = [
            (
                "[    8.166989] Run /init as init process",
                Some(8.166989),
                false,
            ),
            (
                "[    8.429843] systemd[1]: System time advanced",
                Some(8.429843),
                true,
            ),
            ("[  109.5] kiosk[441]: @kiosk@ {}", Some(109.5), true),
            (
                "[    3.2] usb 1-2: new high-speed USB device",
                Some(3.2),
                false,
            ),
            ("[    3.2] [drm] Initialized simpledrm", Some(3.2), false),
            (
                "104[   18.4] systemd[1]: systemd 257 running",
                Some(18.4),
                true,
            ),
            ("104\u{7}[   18.4] systemd[1]: systemd", Some(18.4), true),
            ("x[ 1.0] not a stamp", None, false),
            ("[  OK  ] Started kiosk.service", None, false),
            ("BdsDxe: loading Boot0001", None, false),
        ];
        for (line, seconds, program) in cases {
            assert_eq!(kernel_seconds(line), seconds, "{line}");
            assert_eq!(from_a_program(line), program, "{line}");
        }
    }

    #[test]
    fn milestones_from_a_console() {
        let console = r#"BdsDxe: starting Boot0001
[    0.000000] Linux version 6.12
[    2.000000] systemd[1]: not yet: before /init ran
[    8.166989] Run /init as init process
[    8.200000] random: crng init done
[    8.429843] systemd[1]: System time advanced to built-in epoch
104<BEL>[    8.500000] systemd[1]: systemd 257.13 running in system mode (+PAM)
[   30.400000] systemd[1]: Switching root.
104[   30.500000] systemd[1]: systemd 257.13 running in system mode (+PAM)
[  109.591633] kiosk[441]: @kiosk@ {"event":"status","ok":true}
[  110.225416] kiosk[441]: @kiosk@ {"event":"session","state":"starting"}
[  117.243152] kiosk[441]: @kiosk@ {"event":"session","state":"browser-started","pid":645,"run":1}
[  150.000000] kiosk[441]: @kiosk@ {"event":"session","state":"page","url":"https://x/"}
[  160.000000] kiosk[441]: @kiosk@ {"event":"session","state":"page","url":"https://x/"}
"#;
        // A terminal sequence's rest before a stamp, bell included.
        let console = console.replace("<BEL>", "\u{7}");
        assert_eq!(
            BootMilestones::from_console(&console),
            BootMilestones {
                first_userspace: Some(8.429843),
                switch_root: Some(30.5),
                kiosk_status: Some(109.591633),
                session_starting: Some(110.225416),
                browser_started: Some(117.243152),
                page_shown: Some(150.0),
            }
        );
        assert_eq!(
            BootMilestones::from_console("[ 1.0] Linux version\n"),
            BootMilestones::default()
        );
    }
}
