//! Brings the network up once the egress policy is known to be in force, starts the
//! tunnel, watches it and reconnects by itself: [`run`] observes, acts and prints
//! (the state in `net_state`, the attempts in `connecting`).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use stick_manifest::network::{NetworkPolicy, TunnelKind, CHECK_CA_PATH};

use crate::console::uptime_ms;
use crate::network::connecting::Connecting;
use crate::network::egress::EgressReport;
use crate::network::net_state::{emit, NetEvent, NetMachine};
use crate::network::reach_check::ReachCheck;
use crate::network::tunnel::{TunnelPath, TunnelState};
use crate::network::uplink::Uplink;

/// How often the kiosk looks at the link and the tunnel.
const POLL: Duration = Duration::from_secs(1);
/// How often `check-url` is fetched (also WireGuard's nudge to handshake).
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Timeout of one check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

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
        let (uplink, tunnel) = observe_now(policy.tunnel, connecting.path());
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
                    connecting.path(),
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
                    wifi_networks: installed.wifi_networks,
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
    if policy.wifi.is_some() {
        // Until iwd reports: the list, still empty ("looking for networks"),
        // rather than the cable's screen.
        crate::network::wifi::choice::publish(crate::network::wifi::choice::WifiView::Choosing {
            choices: Vec::new(),
        });
    }
    let mut units = vec!["systemd-networkd.service"];
    if policy.tunnel == TunnelKind::Ipsec {
        units.push("strongswan.service");
    }
    if policy.wifi.is_some() {
        units.push("iwd.service");
    }
    for unit in units {
        if let Err(reason) = start_unit(unit) {
            emit(reachable, &NetEvent::Disabled { reason });
            return None;
        }
    }
    // charon may have started at boot on its own, before the credential's files
    // were written (then it lacks the stick's account for the password round):
    // it reads the configuration again now that every file is in place.
    if policy.tunnel == TunnelKind::Ipsec && policy.personal && policy.token_key_id.is_none() {
        if let Err(err) = crate::command::run("swanctl", &["--load-all", "--noprompt"]) {
            let reason = format!("charon cannot load the stick's credential: {err}");
            emit(reachable, &NetEvent::Disabled { reason });
            return None;
        }
    }
    if policy.wifi.is_some() {
        let started = std::thread::Builder::new()
            .name("wifi".into())
            .spawn(crate::network::wifi::run);
        if let Err(err) = started {
            tracing::error!("cannot start the Wi-Fi thread: {err}");
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
