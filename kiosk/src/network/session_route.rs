//! The conference account's route into the tunnel for IPsec.
//!
//! A policy rule by uid (networkd, from the builder) sends the account's route
//! lookups to [`SESSION_ROUTE_TABLE`], and the rule after it refuses whatever
//! that table has no route for. WireGuard's route there is static (everything
//! into `wg0`). IPsec has no interface of its own: its route is the uplink with
//! the virtual IP as source, known once the SA is up, so the tunnel's policy
//! takes the inner networks and the egress policy drops everything else. Either
//! way WebRTC's "default route" address is the tunnel's, not the PC's LAN address.

use std::net::Ipv4Addr;

use stick_manifest::network::SESSION_ROUTE_TABLE;

/// `ip` arguments that set the account's default route: the uplink, from the
/// virtual IP. `replace`: the same again after a reconnect is no error.
pub fn ipsec_route_args(uplink: &str, virtual_ip: Ipv4Addr) -> Vec<String> {
    [
        "-4",
        "route",
        "replace",
        "default",
        "dev",
        uplink,
        "src",
        &virtual_ip.to_string(),
        "table",
        &SESSION_ROUTE_TABLE.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

/// Sets the route; the console line says which (the tests read it).
pub fn install_ipsec_route(uplink: &str, virtual_ip: Ipv4Addr) -> Result<(), String> {
    let args = ipsec_route_args(uplink, virtual_ip);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::command::run("ip", &args).map_err(|e| e.to_string())?;
    #[derive(serde::Serialize)]
    struct Route<'a> {
        dev: &'a str,
        src: Ipv4Addr,
        table: u32,
    }
    println!(
        "{}",
        crate::console::event_line(
            "session_route",
            &Route {
                dev: uplink,
                src: virtual_ip,
                table: SESSION_ROUTE_TABLE,
            }
        )
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_is_the_uplink_from_the_virtual_ip_in_the_session_table() {
        assert_eq!(
            ipsec_route_args("enp0s2", Ipv4Addr::new(10, 99, 0, 100)).join(" "),
            "-4 route replace default dev enp0s2 src 10.99.0.100 table 21333"
        );
    }
}
