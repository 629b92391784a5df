//! Wi-Fi, when no cable has a link: iwd finds the networks, the person chooses
//! one on the stick's screen and types its passphrase there, iwd joins it and
//! networkd takes the address by DHCP. The egress policy is the same on every
//! link, so the kill switch holds on Wi-Fi as on a cable.
//!
//! - `iwd`: iwd on the system bus: stations, networks, joining with our agent.
//! - `choice`: what the screen shows and what the person chose or typed, shared
//!   between the network thread and the session.
//!
//! [`run`] is the Wi-Fi thread: it publishes what the screen should show
//! ([`choice::WifiView`]) and acts on the person's choice. Every change is one
//! console line `@kiosk@ {"event":"wifi","state":...}`.

pub mod choice;
pub mod iwd;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::network::uplink::LinkKind;
use crate::network::wifi::choice::{Choice, Join, WifiView};
use crate::network::wifi::iwd::{ConnectFailure, Iwd, Station, WifiNetwork};

/// How often the thread looks.
const POLL: Duration = Duration::from_secs(1);
/// A new scan this often while the list shows.
const SCAN_EVERY: Duration = Duration::from_secs(10);
/// iwd's stations appear this long after it starts; no station after it: no
/// Wi-Fi hardware (or no driver or firmware for it).
const HARDWARE_GRACE: Duration = Duration::from_secs(8);

/// The `wifi` console line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum WifiEvent {
    /// iwd has no Wi-Fi station.
    NoHardware,
    /// A scan found these networks (when the names change).
    Networks {
        interface: String,
        networks: Vec<Choice>,
    },
    Connecting {
        network: String,
        interface: String,
    },
    Connected {
        network: String,
        interface: String,
        address: String,
    },
    /// The network refused the passphrase (or the handshake failed).
    Refused {
        network: String,
        reason: String,
    },
    Failed {
        network: String,
        reason: String,
    },
    /// Idle: a cable has a link, Wi-Fi is not used.
    CableFirst {
        interface: String,
    },
}

fn emit(event: &WifiEvent) {
    println!("{}", crate::console::event_line("wifi", event));
}

/// The Wi-Fi thread, for good: waits for iwd, then follows the links.
pub fn run() {
    let iwd = loop {
        match Iwd::connect() {
            Ok(iwd) => break iwd,
            Err(err) => {
                tracing::debug!("iwd is not there yet: {err}");
                std::thread::sleep(POLL);
            }
        }
    };
    tracing::info!("iwd answers; the Wi-Fi agent is registered");
    let mut thread = WifiThread {
        iwd,
        since: Instant::now(),
        next_scan: Instant::now(),
        last: None,
    };
    loop {
        if let Err(err) = thread.step() {
            tracing::warn!("Wi-Fi: {err}");
        }
        std::thread::sleep(POLL);
    }
}

#[derive(Debug)]
struct WifiThread {
    iwd: Iwd,
    since: Instant,
    next_scan: Instant,
    /// The last line printed (each change is printed once).
    last: Option<WifiEvent>,
}

impl WifiThread {
    /// Prints `event` unless it says what the last line said (a list of
    /// networks: the same names).
    fn tell(&mut self, event: WifiEvent) {
        let names = |e: &WifiEvent| match e {
            WifiEvent::Networks { networks, .. } => {
                Some(networks.iter().map(|n| n.name.clone()).collect::<Vec<_>>())
            }
            _ => None,
        };
        let same = match &self.last {
            Some(last) if names(last).is_some() => names(last) == names(&event),
            Some(last) => last == &event,
            None => false,
        };
        if !same {
            emit(&event);
            self.last = Some(event);
        }
    }

    fn step(&mut self) -> Result<(), iwd::IwdError> {
        let uplink = crate::network::uplink::observe().unwrap_or_default();
        if uplink.kind == Some(LinkKind::Wired) && uplink.link_up {
            choice::publish(WifiView::Idle);
            let interface = uplink.interface.unwrap_or_default();
            self.tell(WifiEvent::CableFirst { interface });
            return Ok(());
        }
        let objects = self.iwd.objects()?;
        let Some(station) = iwd::stations(&objects).into_iter().next() else {
            if self.since.elapsed() >= HARDWARE_GRACE {
                choice::publish(WifiView::NoHardware);
                self.tell(WifiEvent::NoHardware);
            }
            return Ok(());
        };
        match (station.state.as_str(), station.network.clone()) {
            ("connected", Some(network)) => {
                choice::publish(WifiView::Connected {
                    name: network.clone(),
                });
                // The address the network sees (iwd gives each network its own).
                let address = std::fs::read_to_string(format!(
                    "/sys/class/net/{}/address",
                    station.interface
                ))
                .map(|a| a.trim().to_string())
                .unwrap_or_else(|_| station.address.clone());
                self.tell(WifiEvent::Connected {
                    network,
                    interface: station.interface.clone(),
                    address,
                });
                return Ok(());
            }
            // iwd joins a known network (a preset) by itself.
            ("connecting" | "roaming", Some(network)) => {
                choice::publish(WifiView::Connecting {
                    name: network.clone(),
                });
                return Ok(());
            }
            _ => {}
        }
        if let Some(join) = choice::take_join() {
            self.join(&station, join);
            return Ok(());
        }
        if Instant::now() >= self.next_scan {
            self.next_scan = Instant::now() + SCAN_EVERY;
            self.iwd.scan(&station)?;
        }
        let networks = self.iwd.networks(&station)?;
        let choices: Vec<Choice> = networks.iter().map(Choice::from).collect();
        choice::offer(networks);
        self.tell(WifiEvent::Networks {
            interface: station.interface.clone(),
            networks: choices,
        });
        Ok(())
    }

    /// Joins what the person chose; blocks until iwd says how it went.
    fn join(&mut self, station: &Station, join: Join) {
        let network: WifiNetwork = join.network;
        let name = network.name.clone();
        choice::publish(WifiView::Connecting { name: name.clone() });
        self.tell(WifiEvent::Connecting {
            network: name.clone(),
            interface: station.interface.clone(),
        });
        match self.iwd.join(&network, join.passphrase) {
            Ok(()) => tracing::info!("iwd joined {name:?}"),
            Err(ConnectFailure::Refused(reason)) => {
                choice::refused(&name);
                self.tell(WifiEvent::Refused {
                    network: name,
                    reason,
                });
            }
            Err(ConnectFailure::Failed(reason)) => {
                choice::back_to_list();
                self.tell(WifiEvent::Failed {
                    network: name,
                    reason,
                });
            }
        }
    }
}
