//! Getting the tunnel up while it is down: IPsec attempts and their pauses, the
//! person's password or token PIN before them, the path they take (UDP or the
//! relay, for WireGuard too), and the `tunnel-waiting` reason last printed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use stick_manifest::network::{NetworkPolicy, TunnelKind};

use crate::network::net_state::{emit, NetEvent, NetMachine};
use crate::network::relay_path::RelayLink;
use crate::network::tunnel::{FailureKind, TunnelFailure, TunnelPath};

/// A routable uplink without a WireGuard handshake for this long: say why we wait.
const WIREGUARD_WAIT_REPORT: Duration = Duration::from_secs(12);
/// How often the token's status is asked while a card is in and its PIN awaited.
const TOKEN_POLL: Duration = Duration::from_secs(5);
/// Seconds `swanctl --initiate` may take.
const IPSEC_INITIATE_TIMEOUT: u32 = 20;

/// The gateway refused the stick's credentials at the last attempt.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether the gateway refused the stick's credentials at the last attempt to
/// build the tunnel (the session shows the screen for it).
pub fn credentials_refused() -> bool {
    REFUSED.load(Ordering::SeqCst)
}

/// Pause after the `attempt`-th failed IPsec attempt: 5, 10, 20, then 30 s.
fn ipsec_retry_pause(attempt: u32) -> Duration {
    let seconds = 5u64 << attempt.clamp(1, 4).saturating_sub(1);
    Duration::from_secs(seconds.min(30))
}

/// Getting the tunnel up while it is down: IPsec attempts and their pauses, the
/// path they take, and the `tunnel-waiting` reason last printed.
#[derive(Debug)]
pub struct Connecting {
    /// IPsec attempts since the tunnel was last up.
    attempt: u32,
    /// The way the next (or the running) attempt takes.
    path: TunnelPath,
    relay: RelayLink,
    /// WireGuard: when the current path was taken.
    path_since: Instant,
    /// The tunnel was up at the last look (WireGuard starts anew by UDP after a loss).
    was_up: bool,
    next_attempt: Instant,
    last_waiting: Option<String>,
    /// The password round: charon holds a password not yet rejected.
    password_given: bool,
    /// The token's status when last asked (each ask talks to the card).
    token_seen: Option<(Instant, crate::network::token::TokenStatus)>,
}

impl Connecting {
    pub fn new(policy: &NetworkPolicy) -> Connecting {
        Connecting {
            attempt: 0,
            path: TunnelPath::Udp,
            relay: RelayLink::new(policy.relay.clone(), policy.tunnel),
            path_since: Instant::now(),
            was_up: false,
            next_attempt: Instant::now(),
            last_waiting: None,
            password_given: false,
            token_seen: None,
        }
    }

    /// The token's status: asked at once while no card is in (so an inserted
    /// card is seen within a second), at most every [`TOKEN_POLL`] while a card
    /// is in and its PIN awaited.
    fn token_status(&mut self) -> crate::network::token::TokenStatus {
        if let Some((at, status)) = self.token_seen {
            if status.present && at.elapsed() < TOKEN_POLL {
                return status;
            }
        }
        let status = crate::network::token::status();
        self.token_seen = Some((Instant::now(), status));
        status
    }

    /// The tunnel is up: the next loss starts counting attempts anew.
    /// The way the tunnel takes now (or its next attempt).
    pub fn path(&self) -> TunnelPath {
        self.path
    }

    pub fn connected(&mut self) {
        crate::network::portal_net::set_unanswered(false);
        self.attempt = 0;
        self.was_up = true;
        self.last_waiting = None;
    }

    /// One step towards the tunnel on a routable uplink. True when an IPsec attempt
    /// was made: the watcher looks again at once, without checking or sleeping.
    pub fn step(
        &mut self,
        policy: &NetworkPolicy,
        machine: &NetMachine,
        now_ms: u64,
        reachable: &AtomicBool,
    ) -> bool {
        if crate::network::portal_net::is_open() {
            // The sign-in page's browser is out on the network: no tunnel now.
            return false;
        }
        match policy.tunnel {
            TunnelKind::Ipsec if Instant::now() >= self.next_attempt => {
                if policy.user_password && !self.password_ready(machine, reachable) {
                    return false;
                }
                if let Some(key_id) = &policy.token_key_id {
                    if !self.pin_ready(key_id, machine, reachable) {
                        return false;
                    }
                }
                self.initiate_ipsec(policy, machine, reachable);
                true
            }
            TunnelKind::Wireguard => {
                self.wireguard_path(policy, machine, now_ms, reachable);
                self.wireguard_waiting(machine, now_ms, reachable);
                false
            }
            TunnelKind::Ipsec => false,
        }
    }

    /// Starts the IPsec connection on the current path (UDP first after the
    /// tunnel was up); on failure it is torn down, the reason printed (once until
    /// it changes), the path for the next attempt chosen and that attempt paused.
    fn initiate_ipsec(
        &mut self,
        policy: &NetworkPolicy,
        machine: &NetMachine,
        reachable: &AtomicBool,
    ) {
        if self.attempt == 0 {
            self.path = TunnelPath::Udp;
        }
        self.relay.follow(self.path);
        self.attempt += 1;
        emit(
            reachable,
            &NetEvent::TunnelConnecting {
                kind: policy.tunnel,
                gateway: policy.gateway,
                attempt: self.attempt,
                path: self.path,
            },
        );
        let connection = crate::network::relay_path::connection(self.path);
        let result = match self.path {
            TunnelPath::Relay => self.relay.ensure_up().map_err(|reason| TunnelFailure {
                kind: FailureKind::Transient,
                reason,
            }),
            TunnelPath::Udp => Ok(()),
        }
        .and_then(|()| crate::network::tunnel::initiate_ipsec(connection, IPSEC_INITIATE_TIMEOUT));
        REFUSED.store(
            result
                .as_ref()
                .is_err_and(|failure| failure.kind == FailureKind::Refused),
            Ordering::SeqCst,
        );
        crate::network::portal_net::set_unanswered(result.as_ref().is_err_and(|failure| {
            failure.kind == FailureKind::NoAnswer || self.path == TunnelPath::Relay
        }));
        if let Err(TunnelFailure { reason, kind }) = result {
            crate::network::tunnel::terminate_ipsec(connection);
            self.say_waiting(machine, reason, reachable);
            self.next_attempt = Instant::now() + ipsec_retry_pause(self.attempt);
            let next =
                crate::network::relay_path::after_failure(self.path, kind, self.relay.configured());
            if next != self.path {
                tracing::info!("the next attempt goes by {next:?}");
                if next == TunnelPath::Relay {
                    // No answer by UDP: the relay at once, not after a pause.
                    self.next_attempt = Instant::now();
                }
                self.path = next;
                self.relay.follow(next);
            }
            if kind == FailureKind::PasswordRejected {
                // The person types it again; no pause after that.
                let rejected = crate::network::user_factor::rejected();
                tracing::info!("the gateway rejected the password ({rejected} since boot)");
                self.password_given = false;
                self.next_attempt = Instant::now();
            }
        }
    }

    /// The password round: true when charon holds a password to try; else the
    /// screen asks for one (once said on the console), and no attempt is made.
    fn password_ready(&mut self, machine: &NetMachine, reachable: &AtomicBool) -> bool {
        if self.password_given {
            return true;
        }
        let Some(hex) = crate::network::user_factor::take_or_ask() else {
            self.say_waiting(
                machine,
                "waiting for the person's password (the stick's screen asks for it)".into(),
                reachable,
            );
            return false;
        };
        match crate::network::user_factor::load_into_charon(&hex) {
            Ok(()) => self.password_given = true,
            Err(reason) => self.say_waiting(machine, reason, reachable),
        }
        self.password_given
    }

    /// The token: true when charon is logged in to the person's token; else the
    /// screen asks for the token or its PIN (once said on the console), or says
    /// that it is locked, and no attempt is made.
    fn pin_ready(&mut self, key_id: &str, machine: &NetMachine, reachable: &AtomicBool) -> bool {
        use crate::network::token::PinRefusal;
        use crate::network::user_factor::{self as factor, Prompt};
        if self.password_given {
            return true;
        }
        if factor::prompt() == Some(Prompt::Locked) {
            // Locked stays locked: only the card's PUK process unlocks it.
            return false;
        }
        let status = self.token_status();
        if status.locked {
            factor::token_unusable(Prompt::Locked);
            self.say_waiting(
                machine,
                "the token is locked (its PIN flags)".into(),
                reachable,
            );
            return false;
        }
        if !status.present {
            factor::token_unusable(Prompt::InsertToken);
            self.say_waiting(
                machine,
                "waiting for the person's smartcard or token in a reader".into(),
                reachable,
            );
            return false;
        }
        if status.final_try {
            factor::final_try();
        }
        let Some(hex) = factor::take_or_ask() else {
            self.say_waiting(
                machine,
                "waiting for the token's PIN (the stick's screen asks for it)".into(),
                reachable,
            );
            return false;
        };
        match crate::network::token::load_into_charon(key_id, &hex) {
            Ok(()) => {
                tracing::info!("charon is logged in to the token");
                self.password_given = true;
            }
            Err(PinRefusal::Rejected { reason, final_try }) => {
                let rejected = factor::rejected();
                tracing::info!("the token rejected the PIN ({rejected} since boot)");
                if final_try {
                    factor::final_try();
                }
                self.say_waiting(machine, reason, reachable);
            }
            Err(PinRefusal::Locked(reason)) => {
                factor::token_unusable(Prompt::Locked);
                self.say_waiting(machine, reason, reachable);
            }
            Err(PinRefusal::NotSent(reason)) => self.say_waiting(machine, reason, reachable),
        }
        self.password_given
    }

    /// A `tunnel-waiting` line, unless it says what the last one said.
    fn say_waiting(&mut self, machine: &NetMachine, reason: String, reachable: &AtomicBool) {
        if self.last_waiting.as_deref() != Some(reason.as_str()) {
            emit(reachable, &machine.waiting(reason.clone()));
            self.last_waiting = Some(reason);
        }
    }

    /// WireGuard: UDP first after a loss; the relay after UDP has had no
    /// handshake for a while, UDP again after the relay has had none.
    fn wireguard_path(
        &mut self,
        policy: &NetworkPolicy,
        machine: &NetMachine,
        now_ms: u64,
        reachable: &AtomicBool,
    ) {
        if std::mem::take(&mut self.was_up) {
            self.path_since = Instant::now();
            if self.path == TunnelPath::Relay {
                self.switch_wireguard(TunnelPath::Udp, policy, machine, reachable);
            }
            return;
        }
        let with_address = Duration::from_millis(machine.address_age_ms(now_ms).unwrap_or(0));
        let waited = self.path_since.elapsed().min(with_address);
        if let Some(next) =
            crate::network::relay_path::wireguard_switch(self.path, waited, self.relay.configured())
        {
            self.switch_wireguard(next, policy, machine, reachable);
        }
    }

    /// Points WireGuard at the relay client (once the relay answers) or back at
    /// the gateway, and says so.
    fn switch_wireguard(
        &mut self,
        next: TunnelPath,
        policy: &NetworkPolicy,
        machine: &NetMachine,
        reachable: &AtomicBool,
    ) {
        self.relay.follow(next);
        let endpoint = match next {
            TunnelPath::Relay => self
                .relay
                .ensure_up()
                .map(|()| crate::network::relay_path::relay_client_address()),
            TunnelPath::Udp => Ok(std::net::SocketAddrV4::new(
                policy.gateway,
                policy
                    .gateway_udp_ports
                    .first()
                    .copied()
                    .unwrap_or_default(),
            )),
        };
        self.path_since = Instant::now();
        let pointed = endpoint.and_then(|endpoint| {
            crate::network::tunnel::set_wireguard_endpoint(endpoint)
                .map_err(|reason| format!("cannot point WireGuard at {endpoint}: {reason}"))
        });
        if let Err(reason) = pointed {
            // The relay could not be used: UDP stays (or is again) the way.
            self.relay.follow(TunnelPath::Udp);
            self.say_waiting(machine, reason, reachable);
            return;
        }
        self.path = next;
        emit(
            reachable,
            &NetEvent::TunnelConnecting {
                kind: policy.tunnel,
                gateway: policy.gateway,
                attempt: 0,
                path: next,
            },
        );
    }

    /// WireGuard retries handshakes by itself: once the uplink has had its address
    /// for [`WIREGUARD_WAIT_REPORT`] without one, says why the tunnel waits (once).
    fn wireguard_waiting(&mut self, machine: &NetMachine, now_ms: u64, reachable: &AtomicBool) {
        let waited = machine.address_age_ms(now_ms).unwrap_or(0);
        if waited >= WIREGUARD_WAIT_REPORT.as_millis() as u64 && self.last_waiting.is_none() {
            let reason = "no handshake answer from the gateway: it is unreachable, \
                          or its key is not the configured one"
                .to_string();
            emit(reachable, &machine.waiting(reason.clone()));
            self.last_waiting = Some(reason);
            crate::network::portal_net::set_unanswered(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipsec_retry_pauses_grow_to_thirty_seconds() {
        let pauses: Vec<u64> = (1..=6).map(|a| ipsec_retry_pause(a).as_secs()).collect();
        assert_eq!(pauses, [5, 10, 20, 30, 30, 30]);
    }
}
