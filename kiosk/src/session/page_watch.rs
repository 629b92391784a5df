//! The page watchdog: decides from what the browser itself reports over CDP
//! whether the conference page is on the screen, and what to do when it is not.
//!
//! The kiosk cannot attach to the page (the policy forbids devtools, and that
//! includes the kiosk's own pipe), so it watches from the browser's side:
//! - painted: Chromium's own count of first contentful paints
//!   (`PageLoad.PaintTiming.NavigationToFirstContentfulPaint`, read with
//!   `Browser.getHistograms`). The renderer reports a paint only after the frame
//!   was presented, so a page whose renderer or GPU thread hangs never counts;
//! - answering: whether the browser answers commands at all;
//! - crashed: `Target.targetCrashed` for the conference page.
//!
//! A page that does not appear is reloaded once, then the browser is restarted;
//! a browser that stops answering is restarted. Pure: the session feeds it what
//! it saw and carries out the [`Action`].

use std::time::{Duration, Instant};

/// How long a page may take to appear after the browser answered or after a reload.
/// A PC shows a conference page in seconds; under QEMU without KVM the test page
/// took 35–50 s from the browser's start, so this leaves room for a slow PC.
pub const PAINT_TIMEOUT: Duration = Duration::from_secs(90);
/// Looks in a row without an answer that make the browser count as hung.
pub const CDP_MISSES: u32 = 2;
/// Reloads of a page that does not appear before the browser is restarted.
pub const MAX_RELOADS: u32 = 1;

/// What the session saw at one look at the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    pub now: Instant,
    /// The browser answered (its targets and its paint count) in time.
    pub answered: bool,
    /// First contentful paints so far in this browser (none: not known this time).
    pub painted: Option<u64>,
    /// The conference page's URL is one of the allowed origins (not an error page,
    /// not a page on its way out).
    pub on_conference: bool,
}

impl Look {
    /// A look the browser did not answer in time.
    pub fn unanswered(now: Instant) -> Look {
        Look {
            now,
            answered: false,
            painted: None,
            on_conference: false,
        }
    }
}

/// What the session does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// The conference page is on the screen (the first paint after the browser's
    /// start or a reload).
    Painted {
        after: Duration,
    },
    /// Open the conference page anew in the same browser.
    Reload {
        reason: String,
    },
    /// End the whole browser and start it again.
    Restart {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the page to appear since `since`.
    Loading {
        since: Instant,
    },
    Showing,
}

/// The watchdog of one browser run.
#[derive(Debug)]
pub struct PageWatch {
    phase: Phase,
    /// The paint count when the current page started loading.
    baseline: u64,
    /// The last paint count the browser reported.
    painted: u64,
    misses: u32,
    /// When the browser last answered (or the watch started).
    last_answer: Instant,
    reloads: u32,
}

impl PageWatch {
    /// A browser that answered its first commands at `now` and is loading the page.
    pub fn new(now: Instant) -> PageWatch {
        PageWatch {
            phase: Phase::Loading { since: now },
            baseline: 0,
            painted: 0,
            misses: 0,
            last_answer: now,
            reloads: 0,
        }
    }

    /// Whether the conference page has been on the screen in this run.
    pub fn showing(&self) -> bool {
        self.phase == Phase::Showing
    }

    /// The kiosk replaced the page itself (a blocked navigation): it loads anew.
    pub fn replaced(&mut self, now: Instant) {
        self.phase = Phase::Loading { since: now };
        self.baseline = self.painted;
    }

    /// The conference page's renderer crashed.
    pub fn crashed(&mut self, now: Instant) -> Action {
        self.retry(now, "the conference page crashed".into())
    }

    /// One look at the browser.
    pub fn look(&mut self, look: &Look) -> Action {
        if !look.answered {
            self.misses += 1;
            if self.misses >= CDP_MISSES {
                return Action::Restart {
                    reason: format!(
                        "the browser has not answered for {} s",
                        look.now.duration_since(self.last_answer).as_secs()
                    ),
                };
            }
            return Action::Nothing;
        }
        self.misses = 0;
        self.last_answer = look.now;
        if let Some(painted) = look.painted {
            self.painted = painted;
        }
        let Phase::Loading { since } = self.phase else {
            // Paints after the page appeared (the conference's own navigations,
            // a popup before the guard closed it) cannot be told apart: counted only.
            self.baseline = self.painted;
            return Action::Nothing;
        };
        if self.painted > self.baseline && look.on_conference {
            self.phase = Phase::Showing;
            self.baseline = self.painted;
            self.reloads = 0;
            return Action::Painted {
                after: look.now.duration_since(since),
            };
        }
        if look.now.duration_since(since) >= PAINT_TIMEOUT {
            return self.retry(
                look.now,
                format!(
                    "the conference page did not appear within {} s",
                    PAINT_TIMEOUT.as_secs()
                ),
            );
        }
        Action::Nothing
    }

    /// A reload while the budget lasts, then a restart.
    fn retry(&mut self, now: Instant, reason: String) -> Action {
        if self.reloads < MAX_RELOADS {
            self.reloads += 1;
            self.replaced(now);
            Action::Reload { reason }
        } else {
            Action::Restart {
                reason: format!("{reason} (after {} reload)", self.reloads),
            }
        }
    }
}

/// Restarts of a browser whose page never appeared, and the pause before each.
pub const RESTART_PAUSES: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(20),
    Duration::from_secs(60),
];

/// Counts the watchdog's restarts in a row; a run that showed the page ends the row.
#[derive(Debug, Default)]
pub struct RestartBudget {
    in_a_row: usize,
}

impl RestartBudget {
    /// One more restart: the pause before it and its number (1-based), or `None`
    /// when the budget is spent.
    pub fn take(&mut self) -> Option<(Duration, usize)> {
        let pause = RESTART_PAUSES.get(self.in_a_row).copied()?;
        self.in_a_row += 1;
        Some((pause, self.in_a_row))
    }

    /// A run showed the conference page.
    pub fn page_shown(&mut self) {
        self.in_a_row = 0;
    }
}

/// The paint count from a `Browser.getHistograms` answer: the count of the
/// histogram named exactly `name` (the query also returns its variants); 0 when
/// the browser has not recorded it yet.
pub fn histogram_count(answer: &serde_json::Value, name: &str) -> Option<u64> {
    let histograms = answer.get("histograms")?.as_array()?;
    Some(
        histograms
            .iter()
            .find(|h| h.get("name").and_then(|n| n.as_str()) == Some(name))
            .and_then(|h| h.get("count"))
            .and_then(|c| c.as_u64())
            .unwrap_or(0),
    )
}

/// The histogram the browser records when a page's first content was presented.
pub const FIRST_PAINT_HISTOGRAM: &str = "PageLoad.PaintTiming.NavigationToFirstContentfulPaint";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One step: seconds since the start, what was seen, what must follow.
    type Step = (u64, Option<(bool, Option<u64>, bool)>, Action);

    fn painted(secs: u64) -> Action {
        Action::Painted {
            after: Duration::from_secs(secs),
        }
    }

    fn reload(reason: &str) -> Action {
        Action::Reload {
            reason: reason.into(),
        }
    }

    fn restart(reason: &str) -> Action {
        Action::Restart {
            reason: reason.into(),
        }
    }

    const LATE: &str = "the conference page did not appear within 90 s";

    #[test]
    fn the_watchdog_escalates_as_the_table_says() {
        // `None` as the look: the page crashed at that second.
        let cases: &[(&str, &[Step])] = &[
            (
                "a page that appears",
                &[
                    (2, Some((true, Some(0), true)), Action::Nothing),
                    (40, Some((true, Some(1), true)), painted(40)),
                    (42, Some((true, Some(1), true)), Action::Nothing),
                    // A later paint (the conference's own navigation, a popup).
                    (60, Some((true, Some(2), true)), Action::Nothing),
                ],
            ),
            (
                "a paint on an error page does not count",
                &[
                    (10, Some((true, Some(1), false)), Action::Nothing),
                    (20, Some((true, Some(1), true)), painted(20)),
                ],
            ),
            (
                "a page that never appears: reload, then restart",
                &[
                    (89, Some((true, Some(0), true)), Action::Nothing),
                    (90, Some((true, Some(0), true)), reload(LATE)),
                    (179, Some((true, Some(0), true)), Action::Nothing),
                    (
                        180,
                        Some((true, Some(0), true)),
                        restart(&format!("{LATE} (after 1 reload)")),
                    ),
                ],
            ),
            (
                "the reload that works",
                &[
                    (90, Some((true, None, true)), reload(LATE)),
                    (130, Some((true, Some(1), true)), painted(40)),
                ],
            ),
            (
                "a browser that stops answering",
                &[
                    (2, Some((true, Some(0), true)), Action::Nothing),
                    (32, Some((false, None, true)), Action::Nothing),
                    (34, Some((true, Some(0), true)), Action::Nothing),
                    (64, Some((false, None, true)), Action::Nothing),
                    (
                        94,
                        Some((false, None, true)),
                        restart("the browser has not answered for 60 s"),
                    ),
                ],
            ),
            (
                "a crash after the page appeared: reload, a second one: restart",
                &[
                    (30, Some((true, Some(1), true)), painted(30)),
                    (100, None, reload("the conference page crashed")),
                    (130, Some((true, Some(2), true)), painted(30)),
                    (200, None, reload("the conference page crashed")),
                    (
                        210,
                        None,
                        restart("the conference page crashed (after 1 reload)"),
                    ),
                ],
            ),
        ];
        for (name, steps) in cases {
            let start = Instant::now();
            let mut watch = PageWatch::new(start);
            for (secs, look, want) in steps.iter() {
                let now = start + Duration::from_secs(*secs);
                let got = match look {
                    Some((answered, painted, on_conference)) => watch.look(&Look {
                        now,
                        answered: *answered,
                        painted: *painted,
                        on_conference: *on_conference,
                    }),
                    None => watch.crashed(now),
                };
                assert_eq!(&got, want, "{name}, at {secs} s");
            }
        }
    }

    #[test]
    fn restarts_pause_longer_and_end() {
        let mut budget = RestartBudget::default();
        let got: Vec<_> = std::iter::from_fn(|| budget.take()).collect();
        assert_eq!(
            got,
            vec![
                (Duration::from_secs(5), 1),
                (Duration::from_secs(20), 2),
                (Duration::from_secs(60), 3)
            ]
        );
        budget.page_shown();
        assert_eq!(budget.take(), Some((Duration::from_secs(5), 1)));
    }

    #[test]
    fn the_paint_count_is_read_from_the_exact_histogram() {
        let answer = json!({"histograms": [
            {"name": "PageLoad.PaintTiming.NavigationToFirstContentfulPaint.Startup", "count": 7},
            {"name": FIRST_PAINT_HISTOGRAM, "count": 3, "sum": 812, "buckets": []},
        ]});
        let cases = [
            (answer, Some(3)),
            (json!({"histograms": []}), Some(0)),
            (json!({}), None),
        ];
        for (answer, want) in cases {
            assert_eq!(
                histogram_count(&answer, FIRST_PAINT_HISTOGRAM),
                want,
                "{answer}"
            );
        }
    }
}
