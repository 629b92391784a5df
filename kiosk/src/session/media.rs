//! Is the call's media flowing? The kiosk cannot look into the page, so it looks
//! at what the page's media does to the machine: UDP through the tunnel (counted
//! by the egress policy's named counters) and the sound card playing. Also the
//! memory the kiosk and the browser use.

use serde::Serialize;
use stick_manifest::network::EGRESS_TABLE;
use stick_manifest::session::{SCREEN_UID, SESSION_UID};

use stick_manifest::network::{TUNNEL_UDP_IN as COUNTER_IN, TUNNEL_UDP_OUT as COUNTER_OUT};

/// Packets per observation interval that count as media (audio alone sends 50/s).
pub const FLOWING_PACKETS: u64 = 20;

/// One observation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MediaSample {
    pub udp_in_packets: u64,
    pub udp_out_packets: u64,
    pub udp_in_bytes: u64,
    pub udp_out_bytes: u64,
    /// A playback stream of a sound card is running.
    pub audio_playing: bool,
    pub kiosk_rss_kib: u64,
    /// Proportional set size of every process of the session account (the browser).
    pub browser_pss_kib: u64,
    pub browser_processes: u32,
    /// The same for the screen account: labwc and the overlay.
    pub compositor_pss_kib: u64,
    pub compositor_processes: u32,
}

/// Packets and bytes of a named counter in `nft -j list counters` output.
pub fn parse_counters(json: &str) -> Vec<(String, u64, u64)> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    value
        .get("nftables")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let counter = item.get("counter")?;
            Some((
                counter.get("name")?.as_str()?.to_string(),
                counter.get("packets")?.as_u64()?,
                counter.get("bytes")?.as_u64()?,
            ))
        })
        .collect()
}

/// A field of `/proc/PID/status` or `smaps_rollup` in KiB (`VmRSS:  1234 kB`).
pub fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// True when an ALSA substream status says it is running.
pub fn substream_running(status: &str) -> bool {
    status.lines().any(|l| l.trim() == "state: RUNNING")
}

/// Reads the counters, the sound card and memory now.
pub fn observe() -> MediaSample {
    let mut sample = MediaSample::default();
    if let Ok(out) = crate::command::run(
        "nft",
        &["-j", "list", "counters", "table", "inet", EGRESS_TABLE],
    ) {
        for (name, packets, bytes) in parse_counters(&out) {
            if name == COUNTER_IN {
                (sample.udp_in_packets, sample.udp_in_bytes) = (packets, bytes);
            } else if name == COUNTER_OUT {
                (sample.udp_out_packets, sample.udp_out_bytes) = (packets, bytes);
            }
        }
    }
    sample.audio_playing = crate::capture::any_substream(
        std::path::Path::new(crate::capture::PROC_ASOUND),
        'p',
        substream_running,
    );
    sample.kiosk_rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| kib_field(&t, "VmRSS"))
        .unwrap_or(0);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue;
        };
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok());
        let (pss_sum, count) = match uid {
            Some(SESSION_UID) => (&mut sample.browser_pss_kib, &mut sample.browser_processes),
            Some(SCREEN_UID) => (
                &mut sample.compositor_pss_kib,
                &mut sample.compositor_processes,
            ),
            _ => continue,
        };
        if let Some(pss) = std::fs::read_to_string(path.join("smaps_rollup"))
            .ok()
            .and_then(|t| kib_field(&t, "Pss"))
        {
            *pss_sum += pss;
            *count += 1;
        }
    }
    sample
}

/// Whether media flows in both directions between two samples.
pub fn flowing(before: &MediaSample, now: &MediaSample) -> bool {
    now.udp_in_packets.saturating_sub(before.udp_in_packets) >= FLOWING_PACKETS
        && now.udp_out_packets.saturating_sub(before.udp_out_packets) >= FLOWING_PACKETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_from_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.1.3"}},
            {"counter": {"family": "inet", "name": "tunnel_udp_in", "table": "stick_egress", "handle": 1, "packets": 120, "bytes": 64000}},
            {"counter": {"family": "inet", "name": "tunnel_udp_out", "table": "stick_egress", "handle": 2, "packets": 99, "bytes": 51000}}]}"#;
        assert_eq!(
            parse_counters(json),
            vec![
                ("tunnel_udp_in".to_string(), 120, 64000),
                ("tunnel_udp_out".to_string(), 99, 51000)
            ]
        );
        assert_eq!(parse_counters("not json"), vec![]);
    }

    #[test]
    fn fields_and_states() {
        let status = "Name:\tkiosk\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\n";
        assert_eq!(kib_field(status, "VmRSS"), Some(5120));
        assert_eq!(kib_field(status, "VmSwap"), None);
        assert_eq!(kib_field("Rss: 10 kB\nPss:  7 kB\n", "Pss"), Some(7));
        assert!(substream_running("state: RUNNING\nowner_pid   : 812\n"));
        assert!(!substream_running("closed\n"));
        assert!(!substream_running("state: PREPARED\n"));
    }

    #[test]
    fn flowing_needs_both_directions() {
        let at = |i, o| MediaSample {
            udp_in_packets: i,
            udp_out_packets: o,
            ..MediaSample::default()
        };
        let cases = [
            (at(0, 0), at(100, 100), true),
            (at(0, 0), at(100, 5), false),
            (at(0, 0), at(5, 100), false),
            (at(50, 50), at(70, 70), true),
            (at(50, 50), at(60, 60), false),
        ];
        for (before, now, want) in cases {
            assert_eq!(flowing(&before, &now), want, "{before:?} -> {now:?}");
        }
    }
}
