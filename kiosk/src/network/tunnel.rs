//! The tunnel's state as its own tools report it, and how to (re)start it.
//!
//! IPsec: `swanctl --list-sas` (the IKE SA and its child), `swanctl --initiate`
//! (its log names why a connection failed). WireGuard: `wg show wg0 dump` (the time
//! of the last handshake); WireGuard retries handshakes by itself.

use std::net::Ipv4Addr;

use stick_manifest::network::{IPSEC_CHILD, WIREGUARD_INTERFACE};

/// A WireGuard session older than this without a new handshake is dead
/// (WireGuard's REJECT_AFTER_TIME).
pub const WIREGUARD_SESSION_SECONDS: u64 = 180;

/// What the tunnel's tool reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunnelState {
    pub up: bool,
    /// The stick's address inside the tunnel.
    pub inner_address: Option<Ipv4Addr>,
    /// The way the tunnel's packets take.
    pub path: TunnelPath,
}

/// The way to the gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunnelPath {
    /// IKE and ESP in UDP (or WireGuard) straight to the gateway.
    #[default]
    Udp,
    /// The same datagrams in TLS on TCP to the organisation's relay.
    Relay,
}

/// Parses `swanctl --list-sas` output: up when the IKE SA of `connection` is
/// ESTABLISHED and its child INSTALLED; the virtual IP is the bracketed address
/// on the `local` line.
pub fn parse_ipsec_sas(text: &str, connection: &str) -> TunnelState {
    let mut in_ours = false;
    let mut established = false;
    let mut installed = false;
    let mut inner_address = None;
    for line in text.lines() {
        if !line.starts_with(' ') {
            // An IKE SA header: `stick: #1, ESTABLISHED, IKEv2, ...`.
            in_ours = line.starts_with(&format!("{connection}: #"));
            if in_ours {
                established = line.split(", ").nth(1) == Some("ESTABLISHED");
            }
            continue;
        }
        if !in_ours {
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("local ") {
            inner_address = rest
                .rsplit_once('[')
                .and_then(|(_, tail)| tail.strip_suffix(']'))
                .and_then(|ip| ip.parse().ok())
                .or(inner_address);
        } else if trimmed.starts_with(&format!("{IPSEC_CHILD}: #")) {
            installed |= trimmed.split(", ").nth(2) == Some("INSTALLED");
        }
    }
    TunnelState {
        up: established && installed,
        inner_address: if established { inner_address } else { None },
        path: TunnelPath::Udp,
    }
}

/// Why a tunnel could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelFailure {
    pub kind: FailureKind,
    /// What charon's log says, in words.
    pub reason: String,
}

/// What a failure asks of the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing: the network or the gateway; the kiosk retries.
    Transient,
    /// The gateway never answered: the network may let no UDP through (the
    /// kiosk tries the relay next, if there is one).
    NoAnswer,
    /// The gateway refused the stick's credentials (unknown, revoked): retrying
    /// will not help, the person needs the helpdesk (the stick's screen says so).
    Refused,
    /// The gateway accepted the stick but not the person's password (the EAP
    /// round failed): they type it again.
    PasswordRejected,
}

/// The notify a gateway answers with when it does not accept the stick's
/// authentication (RFC 7296 2.21.2).
const REFUSED_NOTIFY: &str = "AUTHENTICATION_FAILED";
/// charon's words when the gateway ends the password round with EAP-Failure.
const EAP_FAILED: &str = "EAP authentication failed";
/// charon's words when the gateway answers the password with an MS-CHAPv2
/// failure (charon gives up at once; the person types it again).
const MSCHAPV2_FAILED: &str = "EAP-MS-CHAPv2 failed with error";

/// Known causes in charon's log, most specific first: (phrase, what it means,
/// what it asks of the person). Only failures: informational lines (such as
/// "certificate status is not available", normal without CRLs) appear in
/// successful logs too.
const IPSEC_FAILURES: &[(&str, &str, FailureKind)] = {
    use FailureKind::{NoAnswer, PasswordRejected, Refused, Transient};
    &[
        (
            "no trusted",
            "the gateway's certificate is not trusted (not signed by the configured gateway CA)",
            Transient,
        ),
        (
            "constraint check failed",
            "the gateway's certificate does not carry the configured gateway identity",
            Transient,
        ),
        (
            "no issuer certificate found",
            "the gateway's certificate is not signed by the configured gateway CA",
            Transient,
        ),
        ("has expired", "a certificate has expired", Transient),
        (
            "ERROR_ACCOUNT_DISABLED",
            "the gateway's user directory has locked or disabled the account",
            Refused,
        ),
        (
            "ERROR_PASSWD_EXPIRED",
            "the account's password has expired",
            Refused,
        ),
        (
            "ERROR_RESTRICTED_LOGON_HOURS",
            "the account may not log in at this time",
            Refused,
        ),
        (
            "ERROR_NO_DIALIN_PERMISSION",
            "the account may not use the VPN",
            Refused,
        ),
        (
            MSCHAPV2_FAILED,
            "the gateway did not accept the user's password",
            PasswordRejected,
        ),
        (
            EAP_FAILED,
            "the gateway did not accept the user's password (the EAP round failed)",
            PasswordRejected,
        ),
        (
            REFUSED_NOTIFY,
            "the gateway rejected the authentication (the stick's certificate, or the gateway's own setup)",
            Refused,
        ),
        (
            "NO_PROPOSAL_CHOSEN",
            "the gateway accepts none of the stick's algorithms",
            Transient,
        ),
        (
            "TS_UNACCEPTABLE",
            "the gateway refused the inner networks",
            Transient,
        ),
        ("giving up after", "the gateway did not answer", NoAnswer),
    ]
};

/// Why a `swanctl --initiate` failed, from its log.
pub fn ipsec_failure(log: &str) -> TunnelFailure {
    for &(phrase, meaning, kind) in IPSEC_FAILURES {
        if let Some(line) = log.lines().find(|l| l.contains(phrase)) {
            return TunnelFailure {
                kind,
                reason: format!("{meaning}: {}", strip_log_prefix(line)),
            };
        }
    }
    let reason = log
        .lines()
        .rev()
        .map(strip_log_prefix)
        .find(|l| !l.is_empty())
        .unwrap_or("swanctl printed nothing");
    TunnelFailure {
        kind: FailureKind::Transient,
        reason: reason.to_string(),
    }
}

fn strip_log_prefix(line: &str) -> &str {
    // `[IKE] giving up after 3 retransmits` -> `giving up after 3 retransmits`
    let line = line.trim();
    match line.split_once("] ") {
        Some((tag, rest)) if tag.starts_with('[') => rest,
        _ => line,
    }
}

/// Parses `wg show wg0 dump`: up when the peer's last handshake is recent. The
/// inner address is the interface's, filled in by [`observe_wireguard`].
pub fn parse_wireguard_dump(text: &str, now_unix: u64) -> TunnelState {
    // Line 1 is the interface; each further line a peer:
    // public-key preshared-key endpoint allowed-ips latest-handshake rx tx keepalive
    let handshake = text
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').nth(4)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let up = handshake != 0 && now_unix.saturating_sub(handshake) < WIREGUARD_SESSION_SECONDS;
    TunnelState {
        up,
        inner_address: None,
        path: TunnelPath::Udp,
    }
}

/// Reads the state of `connection` from charon.
pub fn observe_ipsec(connection: &str) -> Result<TunnelState, String> {
    crate::command::run("swanctl", &["--list-sas", "--ike", connection])
        .map(|text| parse_ipsec_sas(&text, connection))
        .map_err(|e| e.to_string())
}

/// Asks charon to set up the tunnel with `connection`; on failure says why, from its log.
pub fn initiate_ipsec(connection: &str, timeout_seconds: u32) -> Result<(), TunnelFailure> {
    let timeout = timeout_seconds.to_string();
    let output = std::process::Command::new("swanctl")
        .args(["--initiate", "--ike", connection, "--child", IPSEC_CHILD])
        .args(["--timeout", &timeout])
        .output()
        .map_err(|e| TunnelFailure {
            kind: FailureKind::Transient,
            reason: format!("cannot run swanctl: {e}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // charon's own words for the journal (no secret is in them): which round
    // failed and why.
    let tail: Vec<&str> = log
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("plugin '"))
        .collect();
    tracing::warn!(
        "swanctl --initiate {connection}: {}",
        tail[tail.len().saturating_sub(12)..].join(" | ")
    );
    Err(ipsec_failure(&log))
}

/// Drops whatever is left of the IKE SA of `connection` before a new attempt.
pub fn terminate_ipsec(connection: &str) {
    if let Err(err) = crate::command::run(
        "swanctl",
        &[
            "--terminate",
            "--ike",
            connection,
            "--force",
            "--timeout",
            "5",
        ],
    ) {
        tracing::debug!("terminating the IKE SA: {err}");
    }
}

/// Points WireGuard's one peer (the gateway) at `endpoint`: the gateway itself,
/// or the relay client on loopback.
pub fn set_wireguard_endpoint(endpoint: std::net::SocketAddrV4) -> Result<(), String> {
    let peers = crate::command::run("wg", &["show", WIREGUARD_INTERFACE, "peers"])
        .map_err(|e| e.to_string())?;
    let peer = peers
        .lines()
        .next()
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| format!("{WIREGUARD_INTERFACE} has no peer"))?;
    crate::command::run(
        "wg",
        &[
            "set",
            WIREGUARD_INTERFACE,
            "peer",
            peer.trim(),
            "endpoint",
            &endpoint.to_string(),
        ],
    )
    .map(drop)
    .map_err(|e| e.to_string())
}

/// Reads the WireGuard state.
pub fn observe_wireguard() -> Result<TunnelState, String> {
    let dump = crate::command::run("wg", &["show", WIREGUARD_INTERFACE, "dump"])
        .map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut state = parse_wireguard_dump(&dump, now);
    if state.up {
        state.inner_address =
            crate::command::run("ip", &["-j", "addr", "show", "dev", WIREGUARD_INTERFACE])
                .ok()
                .and_then(|json| {
                    crate::network::uplink::interface_ipv4(&json, WIREGUARD_INTERFACE)
                });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESTABLISHED: &str = "\
stick: #1, ESTABLISHED, IKEv2, 4b1bd5c1b4d1c9e7_i* 5a0f4b0a8a8d2d1e_r
  local  'CN=stick.test' @ 10.20.0.100[4500] [10.99.1.16]
  remote 'gateway.test' @ 198.51.100.1[4500]
  AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519
  established 3s ago, rekeying in 14141s
  tunnel: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-256
    installed 3s ago, rekeying in 3273s, expires in 3957s
    in  c1d5c0f1,      0 bytes,     0 packets
    out c5d6a5a8,      0 bytes,     0 packets
    local  10.99.1.16/32
    remote 10.99.0.0/24
";

    #[test]
    fn ipsec_states() {
        let cases: &[(&str, String, TunnelState)] = &[
            (
                "established with child",
                ESTABLISHED.to_string(),
                TunnelState { up: true, inner_address: Some(Ipv4Addr::new(10, 99, 1, 16)), path: TunnelPath::Udp },
            ),
            ("no SA", String::new(), TunnelState::default()),
            (
                "IKE SA connecting",
                "stick: #2, CONNECTING, IKEv2, 4b1bd5c1b4d1c9e7_i* 0000000000000000_r\n  local  '%any' @ 10.20.0.100[500]\n".to_string(),
                TunnelState::default(),
            ),
            (
                "child being rekeyed away",
                ESTABLISHED.replace("INSTALLED", "DELETING"),
                TunnelState { up: false, inner_address: Some(Ipv4Addr::new(10, 99, 1, 16)), path: TunnelPath::Udp },
            ),
            (
                "another connection only",
                ESTABLISHED.replace("stick: #1", "other: #1"),
                TunnelState::default(),
            ),
            (
                "the relay's connection is not the direct one",
                ESTABLISHED.replace("stick: #1", "stick-relay: #1"),
                TunnelState::default(),
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(&parse_ipsec_sas(text, "stick"), want, "{name}");
        }
    }

    #[test]
    fn ipsec_failure_reasons() {
        use FailureKind::{NoAnswer, PasswordRejected, Refused, Transient};
        let cases: &[(&str, &str, FailureKind)] = &[
            (
                "[IKE] initiating IKE_SA stick[1] to 198.51.100.1\n[IKE] retransmit 1 of request with message ID 0\n[IKE] giving up after 3 retransmits\ninitiate failed: establishing CHILD_SA 'tunnel' failed\n",
                "the gateway did not answer: giving up after 3 retransmits",
                NoAnswer,
            ),
            (
                "[IKE] received EAP identity request\n[IKE] server requested EAP_MSCHAPV2 authentication (id 0x1D)\n[IKE] EAP-MS-CHAPv2 failed with error ERROR_AUTHENTICATION_FAILURE: 'E=691 R=1 C=00 V=3 M=FAILED'\n[IKE] EAP_MSCHAPV2 method failed\ninitiate failed: establishing CHILD_SA 'tunnel' failed\n",
                "the gateway did not accept the user's password: EAP-MS-CHAPv2 failed with error ERROR_AUTHENTICATION_FAILURE: 'E=691 R=1 C=00 V=3 M=FAILED'",
                PasswordRejected,
            ),
            (
                "[IKE] EAP-MS-CHAPv2 failed with error ERROR_ACCOUNT_DISABLED: 'E=647 R=0 V=3'\n[IKE] EAP_MSCHAPV2 method failed\n",
                "the gateway's user directory has locked or disabled the account: EAP-MS-CHAPv2 failed with error ERROR_ACCOUNT_DISABLED: 'E=647 R=0 V=3'",
                Refused,
            ),
            (
                "[IKE] authentication of 'gateway.test' with ECDSA-256 signature successful\n[IKE] server requested EAP_IDENTITY authentication (id 0x00)\n[IKE] received EAP_FAILURE, EAP authentication failed\n[IKE] received AUTHENTICATION_FAILED notify error\n",
                "the gateway did not accept the user's password (the EAP round failed): received EAP_FAILURE, EAP authentication failed",
                PasswordRejected,
            ),
            (
                "[CFG] using trusted ca certificate \"CN=Other CA\"\n[IKE] no trusted RSA public key found for 'gateway.test'\n[ENC] generating INFORMATIONAL request\ninitiate failed: establishing CHILD_SA 'tunnel' failed\n",
                "the gateway's certificate is not trusted (not signed by the configured gateway CA): no trusted RSA public key found for 'gateway.test'",
                Transient,
            ),
            (
                "[IKE] received AUTHENTICATION_FAILED notify error\n",
                "the gateway rejected the authentication (the stick's certificate, or the gateway's own setup): received AUTHENTICATION_FAILED notify error",
                Refused,
            ),
            (
                "initiate failed: something new\n",
                "initiate failed: something new",
                Transient,
            ),
            ("", "swanctl printed nothing", Transient),
        ];
        for (log, reason, kind) in cases {
            let want = TunnelFailure {
                kind: *kind,
                reason: reason.to_string(),
            };
            assert_eq!(ipsec_failure(log), want, "{log}");
        }
    }

    #[test]
    fn wireguard_handshake_age_decides() {
        let dump = |handshake: u64| {
            format!(
                "cHJpdmF0ZQ==\tcHVibGlj\t51820\toff\nZ2F0ZXdheQ==\t(none)\t198.51.100.1:51820\t10.99.0.0/24\t{handshake}\t1000\t2000\t25\n"
            )
        };
        let now = 1_000_000;
        let cases: &[(&str, u64, bool)] = &[
            ("never", 0, false),
            ("just now", now - 5, true),
            ("179 s ago", now - 179, true),
            ("180 s ago", now - 180, false),
        ];
        for (name, handshake, up) in cases {
            let state = parse_wireguard_dump(&dump(*handshake), now);
            assert_eq!(state.up, *up, "{name}");
            assert_eq!(state.inner_address, None, "{name}");
        }
    }
}
