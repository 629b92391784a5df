//! VPN figures: boots the IPsec and the WireGuard test image with the gateway up
//! from the start and prints, as JSON, how long each step of bringing the network
//! up took (guest clock, from the kiosk's net lines) and what the uplink capture
//! holds. `cargo run --release -p qemu-tests --bin bench-vpn`

use anyhow::{Context, Result};
use serde_json::{json, Value};

use qemu_tests::lab::netlab::Gateway;
use qemu_tests::lab::vpn_session::{VpnSession, NET_TIMEOUT};

fn bring_up(name: &str, gateway: Gateway) -> Result<Value> {
    let mut session = VpnSession::start(name, gateway, true)?;
    let address = session.boot_to_address()?;
    let link = session
        .net_lines()
        .into_iter()
        .find(|n| n.state == "link-up")
        .context("no link-up line")?;
    let up = session.wait_net(address.uptime_ms, NET_TIMEOUT, "tunnel-up", |n| {
        n.state == "tunnel-up"
    })?;
    let reachable = session.wait_net(up.uptime_ms, NET_TIMEOUT, "reachable", |n| {
        n.state == "reachable"
    })?;
    let qemu_to_reachable = session.vm.elapsed().as_secs_f64();
    let report = session.power_off_and_judge()?;
    let secs = |ms: u64| (ms as f64 / 100.0).round() / 10.0;
    Ok(json!({
        "guest_uptime_at_link_up_s": secs(link.uptime_ms),
        "link_up_to_address_s": secs(address.uptime_ms - link.uptime_ms),
        "address_to_tunnel_up_s": secs(up.uptime_ms - address.uptime_ms),
        "link_up_to_tunnel_up_s": secs(up.uptime_ms - link.uptime_ms),
        "tunnel_up_to_check_url_answered_s": secs(reachable.uptime_ms - up.uptime_ms),
        "qemu_start_to_check_url_answered_s": (qemu_to_reachable * 10.0).round() / 10.0,
        "inner_address": up.inner_address,
        "frames_captured": report.frames_total,
        "frames_sent_by_guest": report.sent_by_guest,
        "frames_not_allowed": report.leaks.len(),
    }))
}

fn main() -> Result<()> {
    let ipsec = bring_up(
        "bench-vpn-ipsec",
        Gateway::Ipsec {
            wrong_certificate: false,
            refuses_stick: false,
        },
    )?;
    let wireguard = bring_up(
        "bench-vpn-wireguard",
        Gateway::Wireguard { wrong_key: false },
    )?;
    let report = json!({ "ipsec": ipsec, "wireguard": wireguard });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
