//! What the Wi-Fi screens show and what the person did on them, shared between
//! the Wi-Fi thread (which publishes the view and the networks) and the session
//! (which shows the view and passes on the choice and the passphrase).

use std::sync::Mutex;

use serde::Serialize;

use crate::network::wifi::iwd::{Security, WifiNetwork};

/// WPA's passphrase: 8 to 63 characters.
const PASSPHRASE_CHARS: std::ops::RangeInclusive<usize> = 8..=63;

/// One row of the network list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub name: String,
    /// 0 to 4 bars.
    pub bars: u8,
    /// `open`, `psk`, `8021x` or `other`.
    pub security: &'static str,
    pub signal_dbm: i16,
}

/// Bars for a signal in dBm (as phones draw them).
pub fn bars(signal_dbm: i16) -> u8 {
    match signal_dbm {
        s if s >= -55 => 4,
        s if s >= -67 => 3,
        s if s >= -75 => 2,
        s if s >= -85 => 1,
        _ => 0,
    }
}

impl From<&WifiNetwork> for Choice {
    fn from(network: &WifiNetwork) -> Choice {
        Choice {
            name: network.name.clone(),
            bars: bars(network.signal_dbm),
            security: match network.security {
                Security::Open => "open",
                Security::Psk => "psk",
                Security::Enterprise => "8021x",
                Security::Other => "other",
            },
            signal_dbm: network.signal_dbm,
        }
    }
}

/// What the Wi-Fi screens show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WifiView {
    /// Wi-Fi is not in use (a cable has a link, or nothing known yet).
    #[default]
    Idle,
    /// iwd found no Wi-Fi hardware.
    NoHardware,
    /// The networks to choose from.
    Choosing {
        choices: Vec<Choice>,
    },
    /// The chosen network's passphrase is asked.
    Passphrase {
        name: String,
    },
    Connecting {
        name: String,
    },
    /// The network refused the passphrase: it is asked again.
    Refused {
        name: String,
    },
    Connected {
        name: String,
    },
}

/// A network to join, with the passphrase iwd gets if it asks.
#[derive(Debug)]
pub struct Join {
    pub network: WifiNetwork,
    pub passphrase: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    view: WifiView,
    networks: Vec<WifiNetwork>,
    /// Chosen, waiting for its passphrase.
    chosen: Option<WifiNetwork>,
    join: Option<Join>,
}

static STATE: Mutex<State> = Mutex::new(State {
    view: WifiView::Idle,
    networks: Vec::new(),
    chosen: None,
    join: None,
});

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    match STATE.lock() {
        Ok(mut state) => f(&mut state),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// What the screens should show now.
pub fn view() -> WifiView {
    with_state(|s| s.view.clone())
}

/// The Wi-Fi thread's news.
pub fn publish(view: WifiView) {
    with_state(|s| s.view = view);
}

/// The networks a scan found: the list shows them, unless a passphrase is being
/// typed (the list waits behind it).
pub fn offer(networks: Vec<WifiNetwork>) {
    with_state(|s| {
        let choices = networks.iter().map(Choice::from).collect();
        s.networks = networks;
        if !matches!(
            s.view,
            WifiView::Passphrase { .. } | WifiView::Refused { .. }
        ) {
            s.view = WifiView::Choosing { choices };
        }
    });
}

/// The network to join, once chosen (and its passphrase typed).
pub fn take_join() -> Option<Join> {
    with_state(|s| s.join.take())
}

/// The person chose `name` on the list: an open or known network is joined,
/// a WPA-Personal one asks its passphrase; one that needs more (802.1X) is not
/// taken. False when the choice is not on the list or cannot be joined.
pub fn choose(name: &str) -> bool {
    with_state(|s| {
        let Some(network) = s.networks.iter().find(|n| n.name == name).cloned() else {
            return false;
        };
        match network.security {
            Security::Open => {}
            Security::Psk if network.known => {}
            Security::Psk => {
                s.view = WifiView::Passphrase {
                    name: network.name.clone(),
                };
                s.chosen = Some(network);
                return true;
            }
            Security::Enterprise | Security::Other => return false,
        }
        s.view = WifiView::Connecting {
            name: network.name.clone(),
        };
        s.join = Some(Join {
            network,
            passphrase: None,
        });
        true
    })
}

/// The passphrase typed (hex of its UTF-8, as the overlay sends it) for the
/// chosen network. One outside WPA's 8 to 63 characters is refused at once.
pub fn typed(hex: &str) {
    let passphrase = hex::decode(hex)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    with_state(|s| {
        let Some(network) = s.chosen.clone() else {
            return;
        };
        let name = network.name.clone();
        match passphrase {
            Some(p) if PASSPHRASE_CHARS.contains(&p.chars().count()) => {
                s.view = WifiView::Connecting { name };
                s.join = Some(Join {
                    network,
                    passphrase: Some(p),
                });
            }
            _ => s.view = WifiView::Refused { name },
        }
    });
}

/// The network refused what was typed: the passphrase is asked again.
pub fn refused(name: &str) {
    with_state(|s| {
        s.view = WifiView::Refused {
            name: name.to_string(),
        }
    });
}

/// Back to the list (Esc on a passphrase screen, or a join that failed).
pub fn back_to_list() {
    with_state(|s| {
        s.chosen = None;
        s.view = WifiView::Choosing {
            choices: s.networks.iter().map(Choice::from).collect(),
        };
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(name: &str, security: Security, known: bool) -> WifiNetwork {
        WifiNetwork {
            path: format!("/net/connman/iwd/0/4/{name}"),
            name: name.into(),
            security,
            signal_dbm: -60,
            known,
        }
    }

    #[test]
    fn bars_follow_the_signal() {
        for (dbm, want) in [(-40, 4), (-55, 4), (-60, 3), (-70, 2), (-80, 1), (-90, 0)] {
            assert_eq!(bars(dbm), want, "{dbm} dBm");
        }
    }

    /// One test walks the shared state (tests of one static run in one thread).
    #[test]
    fn a_choice_goes_from_the_list_to_a_join() {
        offer(vec![
            network("Home", Security::Psk, false),
            network("Cafe", Security::Open, false),
            network("Corp", Security::Enterprise, false),
            network("Known", Security::Psk, true),
        ]);
        assert!(matches!(view(), WifiView::Choosing { ref choices } if choices.len() == 4));
        // 802.1X and names not on the list are not taken.
        assert!(!choose("Corp"));
        assert!(!choose("Elsewhere"));
        assert_eq!(take_join().map(|j| j.network.name), None);
        // An open network and a known one are joined at once.
        for name in ["Cafe", "Known"] {
            assert!(choose(name));
            assert_eq!(view(), WifiView::Connecting { name: name.into() });
            let join = take_join().expect("a join");
            assert_eq!((join.network.name.as_str(), join.passphrase), (name, None));
        }
        // WPA-Personal asks; the list waits behind the passphrase.
        assert!(choose("Home"));
        assert_eq!(
            view(),
            WifiView::Passphrase {
                name: "Home".into()
            }
        );
        offer(vec![network("Home", Security::Psk, false)]);
        assert_eq!(
            view(),
            WifiView::Passphrase {
                name: "Home".into()
            }
        );
        // Too short: refused at once, nothing joined.
        typed(&hex::encode("short"));
        assert_eq!(
            view(),
            WifiView::Refused {
                name: "Home".into()
            }
        );
        assert!(take_join().is_none());
        typed(&hex::encode("lange Passphrase 2026"));
        assert_eq!(
            view(),
            WifiView::Connecting {
                name: "Home".into()
            }
        );
        let join = take_join().expect("a join");
        assert_eq!(join.passphrase.as_deref(), Some("lange Passphrase 2026"));
        refused("Home");
        assert_eq!(
            view(),
            WifiView::Refused {
                name: "Home".into()
            }
        );
        back_to_list();
        assert!(matches!(view(), WifiView::Choosing { .. }));
        typed(&hex::encode("after going back"));
        assert!(take_join().is_none(), "no network is chosen any more");
    }
}
