//! The console line format: every machine-readable line the kiosk prints is
//! `@kiosk@ ` and one line of compact JSON, a report (`"event":"status"`, ...) or
//! a state change with the time since boot. The QEMU tests parse these lines.
//!
//! Depends on nothing else in the crate; every module that prints a line uses it.

/// Prefix of every machine-readable line on the console (the QEMU tests grep it).
pub const CONSOLE_MARKER: &str = "@kiosk@";

/// `@kiosk@ {...}`: one console line of compact JSON for any report.
pub fn console_json<T: serde::Serialize>(report: &T) -> String {
    // Serialising plain strings, numbers, maps and enums cannot fail.
    let json = serde_json::to_string(report)
        .unwrap_or_else(|err| format!(r#"{{"event":"error","error":"{err}"}}"#));
    format!("{CONSOLE_MARKER} {json}")
}

/// `@kiosk@ {"event":EVENT,...,"uptime_ms":N}`: a state change with the time since boot.
pub fn event_line<T: serde::Serialize>(event: &'static str, payload: &T) -> String {
    event_line_at(event, payload, uptime_ms())
}

/// [`event_line`] with the time since boot given: `payload`'s fields between
/// `event` and `uptime_ms`.
pub fn event_line_at<T: serde::Serialize>(
    event: &'static str,
    payload: &T,
    uptime_ms: u64,
) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a, T> {
        event: &'static str,
        #[serde(flatten)]
        payload: &'a T,
        uptime_ms: u64,
    }
    console_json(&Line {
        event,
        payload,
        uptime_ms,
    })
}

/// Milliseconds since boot (CLOCK_BOOTTIME via /proc/uptime).
pub fn uptime_ms() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map(|s| (s * 1000.0) as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_carry_kind_payload_and_uptime() {
        #[derive(serde::Serialize)]
        struct Shortcut {
            keys: &'static str,
        }
        let line = event_line("shortcut", &Shortcut { keys: "ctrl+n" });
        let json: serde_json::Value =
            serde_json::from_str(line.strip_prefix("@kiosk@ ").expect("marker")).expect("json");
        assert_eq!(json["event"], "shortcut");
        assert_eq!(json["keys"], "ctrl+n");
        assert!(json["uptime_ms"].is_u64(), "{line}");
    }
}
