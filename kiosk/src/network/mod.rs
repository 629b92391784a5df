//! The uplink and the tunnel: the network comes up only behind the egress policy,
//! the tunnel is watched and reconnected, and every change is one console line.
//!
//! - `watch`: brings the network up, watches the uplink and the tunnel, reconnects (the runner).
//! - `net_state`: what the kiosk believes (NetMachine) and the `net` console lines.
//! - `connecting`: attempts while the tunnel is down: pauses, password or PIN, the path.
//! - `relay_path`: UDP first, else the TLS-on-443 relay; the relay client while in use.
//! - `portal_net`: the sign-in page's own network namespace (captive portals), while it is open.
//! - `credential`: a personal stick's own credential, from its partition to the tunnel's files.
//! - `egress`: the egress policy the kernel enforces, read back with `nft -j`.
//! - `uplink`: the uplink (a cable first, else Wi-Fi): link, DHCP address, default router.
//! - `tunnel`: the IPsec or WireGuard tunnel's state from its own tools, and (re)starting it.
//! - `session_route`: the conference account's route into the tunnel (IPsec: from the virtual IP).
//! - `reach_check`: an HTTPS GET through the tunnel, trusting only the configured CA.
//! - `user_factor`: what the person types before the tunnel (a password, a token's PIN).
//! - `token`: the person's smartcard or token: is it there, its PIN flags, the PIN to charon.
//! - `wifi`: Wi-Fi when no cable has a link: iwd, the network chosen on the screen.

pub mod connecting;
pub mod credential;
pub mod egress;
pub mod net_state;
pub mod portal_net;
pub mod reach_check;
pub mod relay_path;
pub mod session_route;
pub mod token;
pub mod tunnel;
pub mod uplink;
pub mod user_factor;
pub mod watch;
pub mod wifi;
