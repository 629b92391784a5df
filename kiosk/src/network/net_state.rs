//! What the kiosk believes about the network, and its console lines: every state
//! change is one line `@kiosk@ {"event":"net","state":"tunnel-up",...}`.
//! [`NetMachine`] turns observations into state changes and holds no I/O.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use stick_manifest::network::{NetworkPolicy, TunnelKind};

use crate::console::uptime_ms;
use crate::network::tunnel::{TunnelPath, TunnelState};
use crate::network::uplink::Uplink;

/// Failed checks in a row after which an up tunnel counts as lost.
const CHECK_FAILURES_LOST: u32 = 3;

/// One state change of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum NetEvent {
    /// No `[vpn]` in the config, or the egress policy is not in force.
    Disabled {
        reason: String,
    },
    /// A personal stick's credential was read from its own partition.
    Credential {
        stick_id: String,
        partition: String,
        /// The person's own Wi-Fi networks it carried (given to iwd).
        wifi_networks: usize,
    },
    LinkUp {
        interface: String,
    },
    LinkDown {
        interface: String,
    },
    Address {
        interface: String,
        address: String,
        router: Option<Ipv4Addr>,
    },
    AddressLost {
        interface: String,
    },
    TunnelConnecting {
        kind: TunnelKind,
        gateway: Ipv4Addr,
        attempt: u32,
        path: TunnelPath,
    },
    TunnelWaiting {
        kind: TunnelKind,
        gateway: Ipv4Addr,
        reason: String,
    },
    TunnelUp {
        kind: TunnelKind,
        inner_address: Option<Ipv4Addr>,
        path: TunnelPath,
        /// From the uplink getting its address to the tunnel being up.
        since_address_ms: Option<u64>,
    },
    TunnelLost {
        kind: TunnelKind,
        reason: String,
    },
    Reconnecting {
        kind: TunnelKind,
    },
    Reachable {
        url: String,
        status: u16,
    },
    Unreachable {
        url: String,
        reason: String,
    },
}

/// `@kiosk@ {"event":"net","state":...,"uptime_ms":N}`: the console line of an event.
pub fn console_line(change: &NetEvent, uptime_ms: u64) -> String {
    crate::console::event_line_at("net", change, uptime_ms)
}

/// What the kiosk believes about the network.
#[derive(Debug, Clone)]
pub struct NetMachine {
    kind: TunnelKind,
    gateway: Ipv4Addr,
    check_url: Option<String>,
    link_up: bool,
    address: Option<(Ipv4Addr, u8)>,
    /// Uptime (ms) when the uplink got its address.
    address_at_ms: Option<u64>,
    tunnel_up: bool,
    /// Failed checks in a row while the tunnel is up.
    check_failures: u32,
    /// The check has succeeded since the tunnel last came up.
    reachable: bool,
    /// Declared lost by failed checks while its tool still says up: not up again
    /// until a check passes or the tool agrees it went down.
    suspect: bool,
}

impl NetMachine {
    pub fn new(policy: &NetworkPolicy) -> NetMachine {
        NetMachine {
            kind: policy.tunnel,
            gateway: policy.gateway,
            check_url: policy.check_url.clone(),
            link_up: false,
            address: None,
            address_at_ms: None,
            tunnel_up: false,
            check_failures: 0,
            reachable: false,
            suspect: false,
        }
    }

    pub fn tunnel_up(&self) -> bool {
        self.tunnel_up
    }

    /// Uptime (ms) since the uplink got its address, if it has one.
    pub fn address_age_ms(&self, now_ms: u64) -> Option<u64> {
        self.address_at_ms.map(|at| now_ms.saturating_sub(at))
    }

    /// State changes between what was believed and what is observed now.
    pub fn observe(&mut self, uplink: &Uplink, tunnel: &TunnelState, now_ms: u64) -> Vec<NetEvent> {
        let mut events = Vec::new();
        let interface = uplink.interface.clone().unwrap_or_default();
        if uplink.link_up != self.link_up {
            self.link_up = uplink.link_up;
            events.push(if uplink.link_up {
                NetEvent::LinkUp {
                    interface: interface.clone(),
                }
            } else {
                NetEvent::LinkDown {
                    interface: interface.clone(),
                }
            });
        }
        if uplink.address != self.address {
            match uplink.address {
                Some((address, prefix)) => {
                    self.address_at_ms = Some(now_ms);
                    events.push(NetEvent::Address {
                        interface: interface.clone(),
                        address: format!("{address}/{prefix}"),
                        router: uplink.router,
                    });
                }
                None => {
                    self.address_at_ms = None;
                    events.push(NetEvent::AddressLost { interface });
                }
            }
            self.address = uplink.address;
        }
        if !tunnel.up {
            self.suspect = false;
        }
        let up = tunnel.up && !self.suspect;
        if up && !self.tunnel_up {
            self.tunnel_up = true;
            self.check_failures = 0;
            self.reachable = false;
            events.push(NetEvent::TunnelUp {
                kind: self.kind,
                inner_address: tunnel.inner_address,
                path: tunnel.path,
                since_address_ms: self.address_at_ms.map(|at| now_ms.saturating_sub(at)),
            });
        } else if !up && self.tunnel_up {
            events.extend(self.lose(match self.kind {
                TunnelKind::Ipsec => {
                    "the IKE SA is gone (dead peer detection, or the gateway closed it)".into()
                }
                TunnelKind::Wireguard => format!(
                    "no WireGuard handshake for {} s",
                    crate::network::tunnel::WIREGUARD_SESSION_SECONDS
                ),
            }));
        }
        events
    }

    /// State changes after a check of `check-url`. Returns the events and whether the
    /// tunnel must be torn down and set up again.
    pub fn checked(&mut self, result: Result<u16, String>) -> (Vec<NetEvent>, bool) {
        let url = self.check_url.clone().unwrap_or_default();
        if !self.tunnel_up {
            if self.suspect && result.is_ok() {
                // Traffic flows again: the next observation may call it up.
                self.suspect = false;
            }
            return (Vec::new(), false);
        }
        match result {
            Ok(status) => {
                self.check_failures = 0;
                if self.reachable {
                    return (Vec::new(), false);
                }
                self.reachable = true;
                (vec![NetEvent::Reachable { url, status }], false)
            }
            Err(reason) => {
                self.check_failures += 1;
                let mut events = Vec::new();
                if self.check_failures == 1 {
                    self.reachable = false;
                    events.push(NetEvent::Unreachable {
                        url,
                        reason: reason.clone(),
                    });
                }
                if self.check_failures < CHECK_FAILURES_LOST {
                    return (events, false);
                }
                events.extend(self.lose(format!(
                    "{CHECK_FAILURES_LOST} checks in a row failed: {reason}"
                )));
                self.suspect = true;
                (events, true)
            }
        }
    }

    fn lose(&mut self, reason: String) -> Vec<NetEvent> {
        self.tunnel_up = false;
        self.reachable = false;
        self.check_failures = 0;
        vec![
            NetEvent::TunnelLost {
                kind: self.kind,
                reason,
            },
            NetEvent::Reconnecting { kind: self.kind },
        ]
    }

    pub fn waiting(&self, reason: String) -> NetEvent {
        NetEvent::TunnelWaiting {
            kind: self.kind,
            gateway: self.gateway,
            reason,
        }
    }
}

/// What an event means for the conference: `Some(true)` it may show, `Some(false)`
/// it must be hidden, `None` no change. One failed check (`Unreachable`) is not a
/// lost tunnel: hiding then would end a call over a single slow answer (seen under
/// load in QEMU); the tunnel counts as lost after `CHECK_FAILURES_LOST` in a row.
fn conference_reachable(event: &NetEvent) -> Option<bool> {
    match event {
        NetEvent::Reachable { .. } => Some(true),
        NetEvent::TunnelLost { .. } | NetEvent::LinkDown { .. } | NetEvent::AddressLost { .. } => {
            Some(false)
        }
        _ => None,
    }
}

/// Logs `event`, follows it in `reachable` (whether the conference may show),
/// prints its console line.
pub fn emit(reachable: &AtomicBool, event: &NetEvent) {
    tracing::info!("network: {event:?}");
    if let Some(now) = conference_reachable(event) {
        reachable.store(now, Ordering::SeqCst);
    }
    println!("{}", console_line(event, uptime_ms()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kind: TunnelKind) -> NetworkPolicy {
        NetworkPolicy {
            tunnel: kind,
            gateway: Ipv4Addr::new(198, 51, 100, 1),
            gateway_udp_ports: vec![500, 4500],
            gateway_esp: false,
            inner_networks: vec!["10.99.0.0/24".parse().expect("cidr")],
            dns: vec![],
            check_url: Some("https://10.99.0.10/".into()),
            ipv6: false,
            personal: false,
            user_password: false,
            token_key_id: None,
            relay: None,
            portal: None,
            wifi: None,
        }
    }

    fn uplink(link: bool, address: bool) -> Uplink {
        Uplink {
            interface: Some("enp0s2".into()),
            kind: Some(crate::network::uplink::LinkKind::Wired),
            link_up: link,
            address: address.then_some((Ipv4Addr::new(10, 20, 0, 100), 24)),
            router: address.then_some(Ipv4Addr::new(10, 20, 0, 1)),
        }
    }

    fn tunnel(up: bool) -> TunnelState {
        TunnelState {
            up,
            inner_address: up.then_some(Ipv4Addr::new(10, 99, 1, 16)),
            path: TunnelPath::Udp,
        }
    }

    fn states(events: &[NetEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                serde_json::to_value(e).expect("json")["state"]
                    .as_str()
                    .expect("state")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn boot_to_tunnel_and_loss() {
        let mut machine = NetMachine::new(&policy(TunnelKind::Ipsec));
        // (uptime ms, link, address, tunnel, expected states)
        let steps: &[(u64, bool, bool, bool, &[&str])] = &[
            (1_000, false, false, false, &[]),
            (2_000, true, false, false, &["link-up"]),
            (3_000, true, true, false, &["address"]),
            (4_000, true, true, false, &[]),
            (7_500, true, true, true, &["tunnel-up"]),
            (8_000, true, true, true, &[]),
            (9_000, true, true, false, &["tunnel-lost", "reconnecting"]),
            (12_000, true, true, true, &["tunnel-up"]),
            (13_000, false, false, true, &["link-down", "address-lost"]),
        ];
        for (now, link, address, up, want) in steps {
            let events = machine.observe(&uplink(*link, *address), &tunnel(*up), *now);
            assert_eq!(states(&events), *want, "at {now} ms");
            if let Some(NetEvent::TunnelUp {
                since_address_ms,
                inner_address,
                ..
            }) = events.first()
            {
                assert_eq!(*inner_address, Some(Ipv4Addr::new(10, 99, 1, 16)));
                if *now == 7_500 {
                    assert_eq!(*since_address_ms, Some(4_500));
                }
            }
        }
    }

    #[test]
    fn checks_report_once_and_lose_after_three_failures() {
        let mut machine = NetMachine::new(&policy(TunnelKind::Wireguard));
        let (events, _) = machine.checked(Err("down".into()));
        assert!(events.is_empty(), "no report while the tunnel is down");
        machine.observe(&uplink(true, true), &tunnel(true), 1_000);
        // (result, expected states, reconnect, the conference may show)
        type Check<'a> = Result<u16, &'a str>;
        let steps: &[(Check, &[&str], bool, bool)] = &[
            (Ok(200), &["reachable"], false, true),
            (Ok(200), &[], false, true),
            // One slow answer does not end the call ...
            (Err("timed out"), &["unreachable"], false, true),
            (Ok(200), &["reachable"], false, true),
            (Err("timed out"), &["unreachable"], false, true),
            (Err("timed out"), &[], false, true),
            // ... three in a row are a lost tunnel.
            (
                Err("timed out"),
                &["tunnel-lost", "reconnecting"],
                true,
                false,
            ),
            (Err("timed out"), &[], false, false),
        ];
        let mut showing = false;
        for (i, (result, want, reconnect, show)) in steps.iter().enumerate() {
            let (events, again) = machine.checked(result.map_err(str::to_string));
            assert_eq!(states(&events), *want, "step {i}");
            assert_eq!(again, *reconnect, "step {i}");
            for event in &events {
                showing = conference_reachable(event).unwrap_or(showing);
            }
            assert_eq!(showing, *show, "step {i}");
        }
        assert!(!machine.tunnel_up());
        // The tool still says up: not believed until traffic flows again.
        let events = machine.observe(&uplink(true, true), &tunnel(true), 20_000);
        assert!(events.is_empty(), "{events:?}");
        machine.checked(Ok(200));
        let events = machine.observe(&uplink(true, true), &tunnel(true), 21_000);
        assert_eq!(states(&events), ["tunnel-up"]);
    }

    #[test]
    fn console_line_is_flat_json() {
        let line = console_line(
            &NetEvent::TunnelUp {
                kind: TunnelKind::Ipsec,
                inner_address: Some(Ipv4Addr::new(10, 99, 1, 16)),
                path: TunnelPath::Relay,
                since_address_ms: Some(2500),
            },
            61_000,
        );
        assert_eq!(
            line,
            r#"@kiosk@ {"event":"net","state":"tunnel-up","kind":"ipsec","inner_address":"10.99.1.16","path":"relay","since_address_ms":2500,"uptime_ms":61000}"#
        );
    }
}
