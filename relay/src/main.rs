//! `stick-relay`: the TLS-on-443 relay for the organisation's DMZ.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

/// Relays the sticks' VPN datagrams from TLS on TCP 443 to the VPN gateway.
///
/// Sticks use it by themselves when the network they are on lets no UDP through
/// (hotels, guest networks that open only TCP 80/443). It forwards only to the
/// gateway port in its config; the VPN's own authentication runs through it.
/// See docs/relay.md for the certificate, the firewall and the systemd unit.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The relay's config (TOML): listen, certificate, key, gateway,
    /// max-sessions, idle-seconds. Relative paths in it are from its folder.
    #[arg(long, default_value = "/etc/stick-relay/relay.toml")]
    config: PathBuf,
    /// Check the config, certificate and key, print what would be served, and exit.
    #[arg(long)]
    check: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = stick_relay::server::RelayConfig::load(&cli.config).and_then(|(config, tls)| {
        if cli.check {
            println!(
                "{}: listens on {}, relays to udp {} (at most {} sessions, idle {} s)",
                cli.config.display(),
                config.listen,
                config.gateway,
                config.max_sessions,
                config.idle_seconds
            );
            return Ok(());
        }
        stick_relay::server::serve(&config, tls, Arc::new(AtomicBool::new(false)))
    });
    if let Err(err) = result {
        eprintln!("stick-relay: {err:#}");
        std::process::exit(1);
    }
}
