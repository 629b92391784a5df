//! The kiosk's second line behind the browser policy: what it does about every
//! target (window, tab, frame, worker) the browser reports over CDP.
//!
//! The policy already blocks other origins, popups, downloads and devtools; the
//! guard sees what got through anyway, or what the browser shows instead (a
//! blocked-page or certificate error), and decides. Pure: the session runs it.

use serde::Serialize;
use stick_manifest::session::SessionPolicy;

/// The title Chromium gives its certificate error interstitial. A page can give
/// itself this title too, so it is never enough on its own.
pub const CERTIFICATE_ERROR_TITLE: &str = "Privacy error";

/// The browser's own count of main-frame navigations by the network error they
/// ended with (a sparse histogram: bucket = the error code without its sign).
/// Certificate errors are codes -200 to -299 (`net/base/net_error_list.h`).
/// Measured with Chromium 156: a page behind an untrusted CA adds one to bucket
/// 202 and shows "Privacy error"; a page that only sets that title adds nothing.
pub const MAIN_FRAME_ERRORS_HISTOGRAM: &str = "Net.ErrorCodesForMainFrame4";

/// Main-frame certificate errors in a `Browser.getHistograms` answer; 0 when
/// the histogram is not there yet, `None` when the answer is not one.
pub fn certificate_errors(answer: &serde_json::Value) -> Option<u64> {
    let histograms = answer.get("histograms")?.as_array()?;
    Some(
        histograms
            .iter()
            .filter(|h| h.get("name").and_then(|n| n.as_str()) == Some(MAIN_FRAME_ERRORS_HISTOGRAM))
            .flat_map(|h| {
                h.get("buckets")
                    .and_then(|b| b.as_array())
                    .into_iter()
                    .flatten()
            })
            .filter(|b| {
                b.get("low")
                    .and_then(|l| l.as_u64())
                    .is_some_and(|l| (200..300).contains(&l))
            })
            .filter_map(|b| b.get("count").and_then(|c| c.as_u64()))
            .sum(),
    )
}

/// A target as `Target.targetCreated`/`targetInfoChanged` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub id: String,
    pub kind: String,
    pub url: String,
    pub title: String,
}

impl TargetInfo {
    pub fn from_json(info: &serde_json::Value) -> Option<TargetInfo> {
        let text = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_string);
        Some(TargetInfo {
            id: text("targetId")?,
            kind: text("type")?,
            url: text("url").unwrap_or_default(),
            title: text("title").unwrap_or_default(),
        })
    }
}

/// What the session does about a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Close the target (a window or tab beside the conference).
    Close(Blocked),
    /// The conference page left the allowed origins: log, then load the conference again.
    Restore(Blocked),
    /// A certificate error: stop the session for good.
    CertificateStop {
        url: String,
    },
    /// The conference page reached the conference's "ended" page
    /// (`SessionPolicy::ended_url`): the meeting is over for this person.
    Ended {
        url: String,
    },
    /// Cannot be closed on its own (a frame, a worker): log it; the policy blocks its loads.
    Log(Blocked),
}

/// One blocked attempt, as the console line reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// `new-window`, `navigation`, `frame`, `worker`, `download`.
    pub what: &'static str,
    pub url: String,
}

/// Decides about targets for one browser run.
#[derive(Debug)]
pub struct Guard {
    policy: SessionPolicy,
    main: Option<String>,
    /// Targets already closed: listed a little longer while they go, never judged twice.
    closed: std::collections::HashSet<String>,
    /// Main-frame certificate errors the browser has counted in this run.
    certificate_errors: u64,
}

/// URLs a page may show without being the conference: a fresh tab before it loads.
fn is_blank(url: &str) -> bool {
    url.is_empty() || url == "about:blank"
}

impl Guard {
    pub fn new(policy: SessionPolicy) -> Guard {
        Guard {
            policy,
            main: None,
            closed: std::collections::HashSet::new(),
            certificate_errors: 0,
        }
    }

    /// The browser's count of main-frame certificate errors in this run
    /// ([`certificate_errors`]); the guard stops only on a page that is titled
    /// like the interstitial *and* after such an error.
    pub fn set_certificate_errors(&mut self, count: u64) {
        self.certificate_errors = count;
    }

    /// The page target that shows the conference.
    pub fn main(&self) -> Option<&str> {
        self.main.as_deref()
    }

    /// The conference page was replaced (a restore or a reload): the old one is on
    /// its way out, and its last events are not a new window.
    pub fn set_main(&mut self, id: String) {
        if let Some(old) = self.main.replace(id) {
            self.closed.insert(old);
        }
    }

    /// A target was created or changed.
    pub fn judge(&mut self, target: &TargetInfo) -> Verdict {
        if self.closed.contains(&target.id) {
            return Verdict::Allow;
        }
        let verdict = self.judge_anew(target);
        if matches!(verdict, Verdict::Close(_) | Verdict::Restore(_)) {
            self.closed.insert(target.id.clone());
        }
        verdict
    }

    fn judge_anew(&mut self, target: &TargetInfo) -> Verdict {
        match target.kind.as_str() {
            "page" => self.judge_page(target),
            "iframe" if !is_blank(&target.url) && !self.policy.allows(&target.url) => {
                Verdict::Log(Blocked {
                    what: "frame",
                    url: target.url.clone(),
                })
            }
            "worker" | "shared_worker" | "service_worker" if !self.policy.allows(&target.url) => {
                Verdict::Log(Blocked {
                    what: "worker",
                    url: target.url.clone(),
                })
            }
            // The browser's own UI (its omnibox popup even in kiosk mode), frames and
            // workers of the conference.
            _ => Verdict::Allow,
        }
    }

    fn judge_page(&mut self, target: &TargetInfo) -> Verdict {
        let main = self.main.get_or_insert_with(|| target.id.clone());
        if *main != target.id {
            return Verdict::Close(Blocked {
                what: "new-window",
                url: target.url.clone(),
            });
        }
        if target.title == CERTIFICATE_ERROR_TITLE && self.certificate_errors > 0 {
            return Verdict::CertificateStop {
                url: target.url.clone(),
            };
        }
        if self.policy.is_ended(&target.url) {
            Verdict::Ended {
                url: target.url.clone(),
            }
        } else if is_blank(&target.url) || self.policy.allows(&target.url) {
            Verdict::Allow
        } else {
            Verdict::Restore(Blocked {
                what: "navigation",
                url: target.url.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, kind: &str, url: &str, title: &str) -> TargetInfo {
        TargetInfo {
            id: id.into(),
            kind: kind.into(),
            url: url.into(),
            title: title.into(),
        }
    }

    fn blocked(what: &'static str, url: &str) -> Blocked {
        Blocked {
            what,
            url: url.into(),
        }
    }

    /// A guard for the conference at `https://conf.test/room`.
    fn conference_guard() -> Guard {
        Guard::new(SessionPolicy {
            url: "https://conf.test/room".into(),
            origins: vec!["https://conf.test".into()],
            fake_capture: false,
            test_virtual_camera: false,
            test_hostile_session: false,
            keyboard: None,
            ended_url: None,
        })
    }

    #[test]
    fn targets_in_order() {
        let mut guard = conference_guard();
        let conf = "https://conf.test/room";
        let cases = [
            (target("A", "page", conf, ""), Verdict::Allow),
            (
                target("U", "browser_ui", "chrome://omnibox-popup.top-chrome/", ""),
                Verdict::Allow,
            ),
            (target("A", "page", conf, "Room 1"), Verdict::Allow),
            (
                target("F", "iframe", "https://conf.test/frame", ""),
                Verdict::Allow,
            ),
            (
                target("G", "iframe", "https://evil.test/cam", ""),
                Verdict::Log(blocked("frame", "https://evil.test/cam")),
            ),
            (
                target("W", "service_worker", "https://evil.test/sw.js", ""),
                Verdict::Log(blocked("worker", "https://evil.test/sw.js")),
            ),
            (
                target("B", "page", "about:blank", ""),
                Verdict::Close(blocked("new-window", "about:blank")),
            ),
            (
                target("C", "page", conf, ""),
                Verdict::Close(blocked("new-window", conf)),
            ),
            // Still listed while it closes: not judged (or reported) again.
            (target("C", "page", conf, "Room"), Verdict::Allow),
            (
                target("A", "page", "https://other.test/", "other.test"),
                Verdict::Restore(blocked("navigation", "https://other.test/")),
            ),
            // The replaced page, still listed while it closes.
            (
                target("A", "page", "https://other.test/", "other.test"),
                Verdict::Allow,
            ),
            (
                target("A+", "page", "file:///etc/passwd", ""),
                Verdict::Restore(blocked("navigation", "file:///etc/passwd")),
            ),
            (
                target("A++", "page", "chrome://settings/", ""),
                Verdict::Restore(blocked("navigation", "chrome://settings/")),
            ),
            // A page that titles itself like the interstitial, with no certificate
            // error counted: the session goes on.
            (
                target("A+++", "page", conf, CERTIFICATE_ERROR_TITLE),
                Verdict::Allow,
            ),
        ];
        for (target, want) in cases {
            let verdict = guard.judge(&target);
            assert_eq!(verdict, want, "{target:?}");
            if let Verdict::Restore(_) = verdict {
                // The session opens the conference again as a new target.
                guard.set_main(format!("{}+", target.id));
            }
        }
        assert_eq!(guard.main(), Some("A+++"));
        // The browser counted a main-frame certificate error: the interstitial.
        guard.set_certificate_errors(1);
        assert_eq!(
            guard.judge(&target("A+++", "page", conf, CERTIFICATE_ERROR_TITLE)),
            Verdict::CertificateStop { url: conf.into() }
        );
    }

    #[test]
    fn the_conference_page_reaching_the_ended_page_ends_the_meeting() {
        let mut guard = conference_guard();
        guard.policy.ended_url = Some("https://conf.test/ended".into());
        let ended = "https://conf.test/ended?reason=meeting";
        let cases = [
            (
                target("A", "page", "https://conf.test/room", ""),
                Verdict::Allow,
            ),
            (
                target("F", "iframe", "https://conf.test/ended", ""),
                Verdict::Allow,
            ),
            // A second window never ends the meeting: it is closed.
            (
                target("B", "page", "https://conf.test/ended", ""),
                Verdict::Close(blocked("new-window", "https://conf.test/ended")),
            ),
            (
                target("A", "page", ended, ""),
                Verdict::Ended { url: ended.into() },
            ),
        ];
        for (target, want) in cases {
            assert_eq!(guard.judge(&target), want, "{target:?}");
        }
    }

    #[test]
    fn certificate_errors_are_counted_from_the_main_frame_histogram() {
        use serde_json::json;
        let cases = [
            (json!({"histograms": []}), Some(0)),
            (
                json!({"histograms": [{"name": "Net.ErrorCodesForMainFrame4", "count": 4,
                    "buckets": [{"low": 202, "high": 203, "count": 1},
                                {"low": 200, "high": 201, "count": 2},
                                {"low": 22, "high": 23, "count": 1}]}]}),
                Some(3),
            ),
            (
                json!({"histograms": [{"name": "Net.ErrorCodesForMainFrame4.Other", "count": 1,
                    "buckets": [{"low": 202, "high": 203, "count": 1}]}]}),
                Some(0),
            ),
            (json!({}), None),
        ];
        for (answer, want) in cases {
            assert_eq!(certificate_errors(&answer), want, "{answer}");
        }
    }

    #[test]
    fn a_replaced_page_is_not_a_new_window() {
        let mut guard = conference_guard();
        let conf = "https://conf.test/room";
        assert_eq!(guard.judge(&target("A", "page", conf, "")), Verdict::Allow);
        // The watchdog reloads: a new page, then the old one's last event.
        guard.set_main("B".into());
        assert_eq!(guard.judge(&target("B", "page", conf, "")), Verdict::Allow);
        assert_eq!(guard.judge(&target("A", "page", conf, "")), Verdict::Allow);
        assert_eq!(
            guard.judge(&target("C", "page", conf, "")),
            Verdict::Close(blocked("new-window", conf))
        );
    }
}
