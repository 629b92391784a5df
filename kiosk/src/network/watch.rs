//! Brings the network up once the egress policy is known to be in force, starts the
//! tunnel, watches it and reconnects by itself. Every state change is one console
//! line: `@kiosk@ {"event":"net","state":"tunnel-up",...}`.
//!
//! [`NetMachine`] turns observations into state changes and holds no I/O; [`run`]
//! observes, acts and prints.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use stick_manifest::network::{NetworkPolicy, TunnelKind, CHECK_CA_PATH};

use crate::console::uptime_ms;
use crate::network::egress::EgressReport;
use crate::network::reach_check::ReachCheck;
use crate::network::relay_path::RelayLink;
use crate::network::tunnel::{FailureKind, TunnelFailure, TunnelPath, TunnelState};
use crate::network::uplink::Uplink;

/// How often the kiosk looks at the link and the tunnel.
const POLL: Duration = Duration::from_secs(1);
/// How often `check-url` is fetched (also WireGuard's nudge to handshake).
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Timeout of one check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Failed checks in a row after which an up tunnel counts as lost.
const CHECK_FAILURES_LOST: u32 = 3;
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

fn emit(reachable: &AtomicBool, event: &NetEvent) {
    tracing::info!("network: {event:?}");
    if let Some(now) = conference_reachable(event) {
        reachable.store(now, Ordering::SeqCst);
    }
    println!("{}", console_line(event, uptime_ms()));
}

/// For the journal when a check fails through an up tunnel: the route the kernel
/// picks, the tunnel's SAs and the egress rules' counters.
fn log_path_diagnostics(host: &str) {
    let commands: [&[&str]; 3] = [
        &["ip", "route", "get", host],
        &["swanctl", "--list-sas"],
        &[
            "nft",
            "list",
            "chain",
            "inet",
            stick_manifest::network::EGRESS_TABLE,
            "output",
        ],
    ];
    for command in commands {
        let output = std::process::Command::new(command[0])
            .args(&command[1..])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_else(|e| e.to_string());
        tracing::info!(
            "check failed; `{}`: {}",
            command.join(" "),
            output.trim().replace('\n', " | ")
        );
    }
}

/// Pause after the `attempt`-th failed IPsec attempt: 5, 10, 20, then 30 s.
fn ipsec_retry_pause(attempt: u32) -> Duration {
    let seconds = 5u64 << attempt.clamp(1, 4).saturating_sub(1);
    Duration::from_secs(seconds.min(30))
}

/// How long a unit may take to become active.
const UNIT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `unit` without blocking on its job, then waits a bounded time for it to
/// be active; on failure the reason carries its status and the pending jobs.
fn start_unit(unit: &str) -> Result<(), String> {
    crate::command::run("systemctl", &["start", "--no-block", unit])
        .map_err(|e| format!("cannot start {unit}: {e}"))?;
    let deadline = Instant::now() + UNIT_START_TIMEOUT;
    while Instant::now() < deadline {
        if crate::command::run("systemctl", &["is-active", "--quiet", unit]).is_ok() {
            tracing::info!("{unit} is active");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let show = |args: &[&str]| {
        std::process::Command::new("systemctl")
            .args(args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .replace('\n', " | ")
            })
            .unwrap_or_default()
    };
    Err(format!(
        "{unit} is not active after {} s: {} ; jobs: {}",
        UNIT_START_TIMEOUT.as_secs(),
        show(&["status", "--no-pager", "--lines=10", unit]),
        show(&["list-jobs", "--no-pager"])
    ))
}

/// Runs forever: the network for `policy`, or a `disabled` line when there is none.
/// Watches and repairs the network for good; `reachable` follows the checks through
/// the tunnel (the session shows the conference only while it holds).
pub fn run(policy: Option<NetworkPolicy>, reachable: &AtomicBool) {
    let Some(policy) = bring_up(policy, reachable) else {
        return;
    };
    let check = reach_check(&policy);
    let mut machine = NetMachine::new(&policy);
    let mut connecting = Connecting::new(&policy);
    let mut next_check = Instant::now();
    loop {
        let now = uptime_ms();
        let (uplink, tunnel) = observe_now(policy.tunnel, connecting.path);
        for event in machine.observe(&uplink, &tunnel, now) {
            route_session(&event, &uplink);
            emit(reachable, &event);
        }
        if machine.tunnel_up() {
            connecting.connected();
        } else if uplink.routable() && connecting.step(&policy, &machine, now, reachable) {
            continue;
        }
        // WireGuard handshakes only when there is traffic for the peer: the check is
        // that traffic, so it also runs while the tunnel is down.
        let nudge = policy.tunnel == TunnelKind::Wireguard && uplink.routable();
        if let Some(check) = &check {
            if (machine.tunnel_up() || nudge) && Instant::now() >= next_check {
                next_check = Instant::now() + CHECK_EVERY;
                check_once(
                    check,
                    &mut machine,
                    policy.tunnel,
                    connecting.path,
                    reachable,
                );
            }
        }
        std::thread::sleep(POLL);
    }
}

/// IPsec up: the conference account's route leaves from the virtual IP (before
/// the event that lets the session start is printed).
fn route_session(event: &NetEvent, uplink: &Uplink) {
    let NetEvent::TunnelUp {
        kind: TunnelKind::Ipsec,
        inner_address: Some(virtual_ip),
        ..
    } = event
    else {
        return;
    };
    let Some(interface) = &uplink.interface else {
        return;
    };
    if let Err(err) = crate::network::session_route::install_ipsec_route(interface, *virtual_ip) {
        tracing::error!("the conference account's route: {err}");
    }
}

/// Prints the egress report and starts the units the network needs. `None`, after
/// a `disabled` line, when there is no `[vpn]`, the egress policy is not in force
/// or a unit does not start.
fn bring_up(policy: Option<NetworkPolicy>, reachable: &AtomicBool) -> Option<NetworkPolicy> {
    let egress = EgressReport::observe();
    println!("{}", egress.console_line());
    let Some(policy) = policy else {
        emit(
            reachable,
            &NetEvent::Disabled {
                reason: "the config has no [vpn]: this image has no network".into(),
            },
        );
        return None;
    };
    if !egress.enforcing {
        emit(
            reachable,
            &NetEvent::Disabled {
                reason: format!(
                    "the egress policy is not in force ({}): no network without the kill switch",
                    egress
                        .error
                        .as_deref()
                        .unwrap_or("a hook does not drop by default")
                ),
            },
        );
        return None;
    }
    if policy.personal {
        match crate::network::credential::install(&policy) {
            Ok(installed) => emit(
                reachable,
                &NetEvent::Credential {
                    stick_id: installed.stick_id,
                    partition: installed.partition.display().to_string(),
                },
            ),
            Err(err) => {
                emit(
                    reachable,
                    &NetEvent::Disabled {
                        reason: format!("{err:#}"),
                    },
                );
                return None;
            }
        }
    }
    if policy.token_key_id.is_some() {
        crate::network::user_factor::use_token_pin();
    }
    let mut units = vec!["systemd-networkd.service"];
    if policy.tunnel == TunnelKind::Ipsec {
        units.push("strongswan.service");
    }
    for unit in units {
        if let Err(reason) = start_unit(unit) {
            emit(reachable, &NetEvent::Disabled { reason });
            return None;
        }
    }
    Some(policy)
}

/// The check of the config's `check-url`; `None` without one, or (logged) when
/// its CA cannot be read.
fn reach_check(policy: &NetworkPolicy) -> Option<ReachCheck> {
    match &policy.check_url {
        Some(url) => match ReachCheck::new(url, CHECK_CA_PATH, CHECK_TIMEOUT) {
            Ok(check) => Some(check),
            Err(err) => {
                tracing::error!("check-url: {err}");
                None
            }
        },
        None => None,
    }
}

/// The uplink and the tunnel (on `path`) as the kernel and the tunnel's tool
/// report them now; what cannot be read is logged and counts as down.
fn observe_now(kind: TunnelKind, path: TunnelPath) -> (Uplink, TunnelState) {
    let uplink = crate::network::uplink::observe().unwrap_or_else(|err| {
        tracing::warn!("uplink: {err}");
        Uplink::default()
    });
    let mut tunnel = match kind {
        TunnelKind::Ipsec => {
            crate::network::tunnel::observe_ipsec(crate::network::relay_path::connection(path))
        }
        TunnelKind::Wireguard => crate::network::tunnel::observe_wireguard(),
    }
    .unwrap_or_else(|err| {
        tracing::warn!("tunnel state: {err}");
        TunnelState::default()
    });
    tunnel.path = path;
    (uplink, tunnel)
}

/// One check of `check-url` through the tunnel (or WireGuard's nudge): path
/// diagnostics in the journal when it fails through an up tunnel, its events, and
/// IPsec torn down when the tunnel counts as lost.
fn check_once(
    check: &ReachCheck,
    machine: &mut NetMachine,
    kind: TunnelKind,
    path: TunnelPath,
    reachable: &AtomicBool,
) {
    let result = check.fetch_status().map_err(|e| e.to_string());
    if result.is_err() && machine.tunnel_up() {
        log_path_diagnostics(check.host());
    }
    let (events, reconnect) = machine.checked(result);
    for event in &events {
        emit(reachable, event);
    }
    if reconnect && kind == TunnelKind::Ipsec {
        crate::network::tunnel::terminate_ipsec(crate::network::relay_path::connection(path));
    }
}

/// Getting the tunnel up while it is down: IPsec attempts and their pauses, the
/// path they take, and the `tunnel-waiting` reason last printed.
#[derive(Debug)]
struct Connecting {
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
    fn new(policy: &NetworkPolicy) -> Connecting {
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
    fn connected(&mut self) {
        self.attempt = 0;
        self.was_up = true;
        self.last_waiting = None;
    }

    /// One step towards the tunnel on a routable uplink. True when an IPsec attempt
    /// was made: the watcher looks again at once, without checking or sleeping.
    fn step(
        &mut self,
        policy: &NetworkPolicy,
        machine: &NetMachine,
        now_ms: u64,
        reachable: &AtomicBool,
    ) -> bool {
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
            TunnelPath::Relay => match self.relay.ensure_up() {
                Ok(()) => crate::network::relay_path::relay_client_address(),
                Err(reason) => {
                    self.relay.follow(TunnelPath::Udp);
                    self.path_since = Instant::now();
                    self.say_waiting(machine, reason, reachable);
                    return;
                }
            },
            TunnelPath::Udp => std::net::SocketAddrV4::new(
                policy.gateway,
                policy
                    .gateway_udp_ports
                    .first()
                    .copied()
                    .unwrap_or_default(),
            ),
        };
        self.path_since = Instant::now();
        if let Err(reason) = crate::network::tunnel::set_wireguard_endpoint(endpoint) {
            self.relay.follow(TunnelPath::Udp);
            self.say_waiting(
                machine,
                format!("cannot point WireGuard at {endpoint}: {reason}"),
                reachable,
            );
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
        }
    }
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
        }
    }

    fn uplink(link: bool, address: bool) -> Uplink {
        Uplink {
            interface: Some("enp0s2".into()),
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
    fn ipsec_retry_pauses_grow_to_thirty_seconds() {
        let pauses: Vec<u64> = (1..=6).map(|a| ipsec_retry_pause(a).as_secs()).collect();
        assert_eq!(pauses, [5, 10, 20, 30, 30, 30]);
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
