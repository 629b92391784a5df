//! The clock is never earlier than the image's build time.
//!
//! The PC's clock is the PC's: a hostile one can set it back so that an expired
//! (or revoked and expired) gateway or conference certificate looks valid again,
//! since charon fetches no revocation lists. The signed manifest says when the
//! image was built; a clock behind that is wrong for sure, and is set forward to
//! it before any network or certificate is used. Only the running system's clock
//! is set: the PC's hardware clock is not written.

use serde::Serialize;

/// What the kiosk found and did, as the `"event":"clock"` console line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockReport {
    pub event: &'static str,
    /// Seconds since 1970 when the kiosk looked.
    pub was: i64,
    /// The floor: the build time from the signed manifest.
    pub floor: u64,
    /// Set forward to the floor.
    pub corrected: bool,
    /// Seconds since 1970 afterwards.
    pub now: i64,
}

/// Whether a clock reading `now` is behind `floor` (pure; for tests).
pub fn behind(now: i64, floor: u64) -> bool {
    i64::try_from(floor).map_or(true, |floor| now < floor)
}

/// Sets the system clock forward to `floor` if it is behind.
pub fn hold_floor(floor: u64) -> ClockReport {
    let was = now();
    let mut corrected = false;
    if behind(was, floor) {
        let target = nix::sys::time::TimeSpec::new(i64::try_from(floor).unwrap_or(i64::MAX), 0);
        match nix::time::clock_settime(nix::time::ClockId::CLOCK_REALTIME, target) {
            Ok(()) => {
                corrected = true;
                tracing::warn!(
                    "the clock said {was}, {} s before this image was built: set to {floor}",
                    i64::try_from(floor).unwrap_or(i64::MAX) - was
                );
            }
            Err(err) => tracing::error!("cannot set the clock to {floor}: {err}"),
        }
    }
    ClockReport {
        event: "clock",
        was,
        floor,
        corrected,
        now: now(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl ClockReport {
    /// `@kiosk@ {"event":"clock",...}`.
    pub fn console_line(&self) -> String {
        crate::console::console_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_the_build_is_behind() {
        let cases = [
            (1_420_070_400, 1_764_000_000, true),
            (1_764_000_000, 1_764_000_000, false),
            (1_764_000_001, 1_764_000_000, false),
            (0, u64::MAX, true),
        ];
        for (now, floor, want) in cases {
            assert_eq!(behind(now, floor), want, "{now} vs {floor}");
        }
    }

    #[test]
    fn the_console_line_names_both_times() {
        let report = ClockReport {
            event: "clock",
            was: 1_420_070_400,
            floor: 1_764_000_000,
            corrected: true,
            now: 1_764_000_001,
        };
        assert_eq!(
            report.console_line(),
            r#"@kiosk@ {"event":"clock","was":1420070400,"floor":1764000000,"corrected":true,"now":1764000001}"#
        );
    }
}
