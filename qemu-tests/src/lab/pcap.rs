//! Reads the guest's uplink capture (pcap from QEMU's filter-dump) and judges every
//! frame the guest sent: ARP, DHCP, IKE/NAT-T/ESP/WireGuard to the gateway, and
//! TCP to the relay's port where there is one, are allowed; anything else is a
//! leak. Also measures round trips of the tunnel's exchanges on the wire.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context, Result};

const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const IP_PROTO_UDP: u8 = 17;
const IP_PROTO_TCP: u8 = 6;
const IP_PROTO_ESP: u8 = 50;

/// One captured Ethernet frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Seconds since the epoch, with microseconds.
    pub time: f64,
    pub data: Vec<u8>,
}

/// Parses a classic little-endian pcap file with Ethernet frames.
pub fn parse(bytes: &[u8]) -> Result<Vec<Frame>> {
    if bytes.len() < 24 {
        bail!("{} bytes: no pcap header", bytes.len());
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if u32_at(0) != PCAP_MAGIC {
        bail!("not a little-endian pcap file (magic {:#x})", u32_at(0));
    }
    let link_type = u32_at(20);
    if link_type != 1 {
        bail!("link type {link_type}, expected 1 (Ethernet)");
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let seconds = u32_at(at);
        let micros = u32_at(at + 4);
        let captured = u32_at(at + 8) as usize;
        let start = at + 16;
        let Some(data) = bytes.get(start..start + captured) else {
            // QEMU was killed mid-record: the last frame is cut off.
            break;
        };
        frames.push(Frame {
            time: f64::from(seconds) + f64::from(micros) / 1e6,
            data: data.to_vec(),
        });
        at = start + captured;
    }
    Ok(frames)
}

pub fn read(path: &Path) -> Result<Vec<Frame>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{}", path.display()))
}

/// What the guest may send on its uplink.
#[derive(Debug, Clone)]
pub struct AllowedEgress {
    pub gateway: Ipv4Addr,
    pub gateway_udp_ports: Vec<u16>,
    pub gateway_esp: bool,
    /// The TLS-on-443 relay's address and TCP port, if the scenario runs one.
    pub relay: Option<(Ipv4Addr, u16)>,
    /// While the network's sign-in page was open (seconds since the epoch, from
    /// and to): DNS and HTTP(S) to anywhere outside are the portal browser's.
    pub portal_open: Vec<(f64, f64)>,
    /// The stick is a Wi-Fi station of an access point bridged to the wire: the
    /// access point's layer-2 update for it (see [`is_layer2_update`]) is the
    /// access point's frame, not the stick's.
    pub access_point: bool,
}

/// How one frame sent by the guest is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Arp,
    Dhcp,
    /// To the gateway on an allowed port or protocol (named).
    Gateway(String),
    /// TCP to the relay's port.
    Relay,
    /// DNS or HTTP(S) while the sign-in page was open.
    Portal,
    /// The access point's layer-2 update for the stick (Wi-Fi).
    AccessPoint,
    /// Anything else, described.
    Leak(String),
}

/// The verdict on `frame` if the guest (`guest_mac`) sent it; `None` otherwise.
pub fn judge(frame: &[u8], guest_mac: [u8; 6], allowed: &AllowedEgress) -> Option<Verdict> {
    if frame.len() < 14 || frame[6..12] != guest_mac {
        return None;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let payload = &frame[14..];
    Some(match ethertype {
        ETHERTYPE_ARP => Verdict::Arp,
        ETHERTYPE_IPV4 => judge_ipv4(payload, allowed),
        ETHERTYPE_IPV6 => {
            let next = payload.get(6).copied().unwrap_or(0);
            Verdict::Leak(format!("IPv6 (next header {next})"))
        }
        other => Verdict::Leak(format!("ethertype {other:#06x}")),
    })
}

/// STUN's magic cookie (RFC 5389) at bytes 4..8 of a message whose first two
/// bits are zero. IKE, ESP-in-UDP and WireGuard have an SPI, a sequence number
/// or a random index there: a false match is a 1 in 2^32 chance per packet.
fn is_stun(payload: &[u8]) -> bool {
    payload.len() >= 20 && payload[0] & 0xc0 == 0 && payload[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

fn judge_ipv4(packet: &[u8], allowed: &AllowedEgress) -> Verdict {
    if packet.len() < 20 {
        return Verdict::Leak("truncated IPv4".into());
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let protocol = packet[9];
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let ports = packet.get(header_len..header_len + 4).map(|p| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    });
    if protocol == IP_PROTO_UDP {
        if let Some((source_port, destination_port)) = ports {
            if source_port == 68 && destination_port == 67 {
                return Verdict::Dhcp;
            }
            if destination == allowed.gateway
                && allowed.gateway_udp_ports.contains(&destination_port)
            {
                // The tunnel's port, but not the tunnel's packet: STUN (a browser's
                // ICE check towards a candidate a page offered at the gateway).
                if is_stun(packet.get(header_len + 8..).unwrap_or_default()) {
                    return Verdict::Leak(format!(
                        "STUN {source}:{source_port} -> {destination}:{destination_port}"
                    ));
                }
                return Verdict::Gateway(format!("udp/{destination_port}"));
            }
            return Verdict::Leak(format!(
                "udp {source}:{source_port} -> {destination}:{destination_port}"
            ));
        }
    }
    if protocol == IP_PROTO_ESP && allowed.gateway_esp && destination == allowed.gateway {
        return Verdict::Gateway("esp".into());
    }
    if let (IP_PROTO_TCP, Some((_, destination_port))) = (protocol, ports) {
        if allowed.relay == Some((destination, destination_port)) {
            return Verdict::Relay;
        }
    }
    match (protocol, ports) {
        (IP_PROTO_TCP, Some((sp, dp))) => {
            Verdict::Leak(format!("tcp {source}:{sp} -> {destination}:{dp}"))
        }
        _ => Verdict::Leak(format!(
            "IPv4 protocol {protocol} {source} -> {destination}"
        )),
    }
}

/// Counts over a whole capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakReport {
    pub frames_total: usize,
    pub sent_by_guest: usize,
    pub arp: usize,
    pub dhcp: usize,
    pub to_gateway: usize,
    pub to_relay: usize,
    /// DNS and HTTP(S) while the network's sign-in page was open.
    pub to_portal: usize,
    /// The Wi-Fi access point's layer-2 updates for the stick.
    pub access_point_updates: usize,
    /// Every leaked frame, described.
    pub leaks: Vec<String>,
}

impl std::fmt::Display for LeakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} frames captured, {} sent by the guest: {} ARP, {} DHCP, {} to the gateway, {} to the relay, \
             {} DNS/HTTP(S) while the sign-in page was open, {} not allowed",
            self.frames_total,
            self.sent_by_guest,
            self.arp,
            self.dhcp,
            self.to_gateway,
            self.to_relay,
            self.to_portal,
            self.leaks.len()
        )?;
        if self.access_point_updates > 0 {
            write!(
                f,
                " (and {} layer-2 updates the Wi-Fi access point sent for the stick)",
                self.access_point_updates
            )?;
        }
        Ok(())
    }
}

pub fn leak_report(frames: &[Frame], guest_mac: [u8; 6], allowed: &AllowedEgress) -> LeakReport {
    let mut report = LeakReport {
        frames_total: frames.len(),
        ..LeakReport::default()
    };
    for frame in frames {
        let Some(verdict) = judge(&frame.data, guest_mac, allowed) else {
            continue;
        };
        report.sent_by_guest += 1;
        let portal_open = allowed
            .portal_open
            .iter()
            .any(|&(from, to)| frame.time >= from && frame.time <= to);
        let verdict = match verdict {
            Verdict::Leak(_) if portal_open && is_dns_or_web(&frame.data) => Verdict::Portal,
            Verdict::Leak(_) if allowed.access_point && is_layer2_update(&frame.data) => {
                Verdict::AccessPoint
            }
            other => other,
        };
        match verdict {
            Verdict::Arp => report.arp += 1,
            Verdict::Dhcp => report.dhcp += 1,
            Verdict::Gateway(_) => report.to_gateway += 1,
            Verdict::Relay => report.to_relay += 1,
            Verdict::Portal => report.to_portal += 1,
            Verdict::AccessPoint => report.access_point_updates += 1,
            Verdict::Leak(what) => report.leaks.push(what),
        }
    }
    report
}

/// The frame an access point sends to the wire, with a station's address as
/// its source, when the station associates (IEEE 802.11F's layer-2 update:
/// an 802.2 LLC XID frame to broadcast, so that switches learn where the
/// station is; hostapd sends one per association). Nothing the stick's kernel
/// sends looks like it.
pub fn is_layer2_update(frame: &[u8]) -> bool {
    frame.len() >= 17
        && frame[0..6] == [0xff; 6]
        && u16::from_be_bytes([frame[12], frame[13]]) == 6
        && frame[14..17] == [0x00, 0x01, 0xaf]
}

/// An IPv4 frame to UDP 53, or TCP 53, 80 or 443: what the sign-in page's
/// browser may send.
pub fn is_dns_or_web(frame: &[u8]) -> bool {
    let Some(packet) = frame.get(14..) else {
        return false;
    };
    if frame.get(12..14) != Some(&ETHERTYPE_IPV4.to_be_bytes()[..]) || packet.len() < 20 {
        return false;
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let Some(port) = packet
        .get(header_len + 2..header_len + 4)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
    else {
        return false;
    };
    match packet[9] {
        IP_PROTO_UDP => port == 53,
        IP_PROTO_TCP => matches!(port, 53 | 80 | 443),
        _ => false,
    }
}

/// The frames captured between `from` and `to` (seconds since the epoch).
pub fn between(frames: &[Frame], from: f64, to: f64) -> Vec<Frame> {
    frames
        .iter()
        .filter(|f| f.time >= from && f.time <= to)
        .cloned()
        .collect()
}

/// An exchange waits at most this long for its answer.
const EXCHANGE_ANSWER_S: f64 = 1.0;
/// Quiet before a frame that starts an exchange.
const EXCHANGE_QUIET_S: f64 = 1.0;

/// Round trips on the wire between the guest and `peer` (the gateway, or the
/// relay): from a frame the guest sends after a quiet second to the first frame
/// that comes back, both with payload (no NAT-T keepalive, no bare TCP ACK);
/// answers later than a second are not counted.
pub fn exchange_round_trips(frames: &[Frame], guest_mac: [u8; 6], peer: Ipv4Addr) -> Vec<f64> {
    let mut round_trips = Vec::new();
    let mut last_seen = f64::MIN;
    let mut started: Option<f64> = None;
    for frame in frames {
        let Some(packet) = Packet::parse(&frame.data) else {
            continue;
        };
        let outbound = frame.data[6..12] == guest_mac && packet.destination == peer;
        let inbound = frame.data[0..6] == guest_mac && packet.source == peer;
        if !outbound && !inbound {
            continue;
        }
        if packet.carries_payload() {
            match (outbound, started) {
                (true, None) if frame.time - last_seen >= EXCHANGE_QUIET_S => {
                    started = Some(frame.time)
                }
                (false, Some(at)) => {
                    if frame.time - at <= EXCHANGE_ANSWER_S {
                        round_trips.push(frame.time - at);
                    }
                    started = None;
                }
                _ => {}
            }
        }
        last_seen = frame.time;
    }
    round_trips
}

/// The median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The parts of an IPv4 frame a round trip needs.
struct Packet {
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    /// Bytes after the UDP or TCP header.
    payload: usize,
}

impl Packet {
    fn parse(frame: &[u8]) -> Option<Packet> {
        if frame.len() < 14 + 20 || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_IPV4 {
            return None;
        }
        let ip = &frame[14..];
        let header = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let protocol = ip[9];
        let transport = match protocol {
            IP_PROTO_UDP => 8,
            IP_PROTO_TCP => usize::from(ip.get(header + 12)? >> 4) * 4,
            _ => return None,
        };
        Some(Packet {
            source: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            destination: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            protocol,
            payload: total.saturating_sub(header + transport),
        })
    }

    /// A NAT-T keepalive is one byte; a bare TCP ACK none.
    fn carries_payload(&self) -> bool {
        match self.protocol {
            IP_PROTO_UDP => self.payload > 1,
            _ => self.payload > 0,
        }
    }
}

/// `52:54:00:12:34:56` -> bytes.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

    fn frame(source: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend(source);
        f.extend(ethertype.to_be_bytes());
        f.extend(payload);
        f
    }

    fn ipv4(protocol: u8, destination: [u8; 4], ports: (u16, u16)) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, protocol, 0, 0, 10, 20, 0, 100,
        ];
        p.extend(destination);
        p.extend(ports.0.to_be_bytes());
        p.extend(ports.1.to_be_bytes());
        p
    }

    fn allowed() -> AllowedEgress {
        AllowedEgress {
            gateway: Ipv4Addr::new(198, 51, 100, 1),
            gateway_udp_ports: vec![500, 4500],
            gateway_esp: false,
            relay: Some((Ipv4Addr::new(198, 51, 100, 3), 443)),
            portal_open: vec![],
            access_point: false,
        }
    }

    #[test]
    fn dns_and_web_count_only_while_the_sign_in_page_is_open() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let at = |time: f64, protocol: u8, port: u16| Frame {
            time,
            data: frame(
                mac,
                ETHERTYPE_IPV4,
                &ipv4(protocol, [10, 20, 0, 1], (40000, port)),
            ),
        };
        let frames = vec![
            at(10.0, IP_PROTO_UDP, 53),
            at(10.5, IP_PROTO_TCP, 80),
            at(11.0, IP_PROTO_TCP, 443),
            at(11.5, IP_PROTO_TCP, 22),
            at(12.0, IP_PROTO_UDP, 123),
            at(30.0, IP_PROTO_TCP, 80),
        ];
        let while_open = AllowedEgress {
            portal_open: vec![(9.0, 20.0)],
            ..allowed()
        };
        let report = leak_report(&frames, mac, &while_open);
        assert_eq!(report.to_portal, 3, "{report}");
        assert_eq!(
            report.leaks,
            [
                "tcp 10.20.0.100:40000 -> 10.20.0.1:22",
                "udp 10.20.0.100:40000 -> 10.20.0.1:123",
                "tcp 10.20.0.100:40000 -> 10.20.0.1:80",
            ]
        );
        // Without the window, all six are leaks.
        assert_eq!(leak_report(&frames, mac, &allowed()).leaks.len(), 6);
    }

    #[test]
    fn an_access_points_layer2_update_is_its_own_only_on_wifi() {
        let station = [0xd6, 0x27, 0x28, 0x4e, 0xc6, 0x4a];
        // hostapd's update: broadcast, the station as source, 802.3 length 6,
        // LLC XID (DSAP 0, SSAP 1, control 0xaf) and its three bytes.
        let mut update = vec![0xff; 6];
        update.extend_from_slice(&station);
        update.extend_from_slice(&[0x00, 0x06, 0x00, 0x01, 0xaf, 0x81, 0x01, 0x00]);
        let mut unicast = update.clone();
        unicast[0..6].copy_from_slice(&[0x52, 0x54, 0, 0, 0, 1]);
        let arp = frame(station, ETHERTYPE_ARP, &[0; 28]);
        for (data, is_update) in [(&update, true), (&unicast, false), (&arp, false)] {
            assert_eq!(is_layer2_update(data), is_update, "{data:02x?}");
        }
        let frames = [Frame {
            time: 1.0,
            data: update,
        }];
        let on_wifi = AllowedEgress {
            access_point: true,
            ..allowed()
        };
        let report = leak_report(&frames, station, &on_wifi);
        assert_eq!((report.access_point_updates, report.leaks.len()), (1, 0));
        // On a cable nothing sends it: a leak.
        assert_eq!(
            leak_report(&frames, station, &allowed()).leaks,
            ["ethertype 0x0006"]
        );
    }

    #[test]
    fn verdicts() {
        let gw = [198, 51, 100, 1];
        let cases: Vec<(&str, Vec<u8>, Option<Verdict>)> = vec![
            (
                "arp",
                frame(GUEST, ETHERTYPE_ARP, &[0; 28]),
                Some(Verdict::Arp),
            ),
            (
                "dhcp",
                frame(GUEST, ETHERTYPE_IPV4, &ipv4(17, [255; 4], (68, 67))),
                Some(Verdict::Dhcp),
            ),
            (
                "ike",
                frame(GUEST, ETHERTYPE_IPV4, &ipv4(17, gw, (500, 500))),
                Some(Verdict::Gateway("udp/500".into())),
            ),
            (
                "nat-t",
                frame(GUEST, ETHERTYPE_IPV4, &ipv4(17, gw, (4500, 4500))),
                Some(Verdict::Gateway("udp/4500".into())),
            ),
            (
                "stun to the gateway's port",
                frame(GUEST, ETHERTYPE_IPV4, &{
                    let mut p = ipv4(17, gw, (50000, 4500));
                    p.extend([0, 28, 0, 0]); // UDP length, checksum
                    p.extend([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
                    p.extend([0u8; 12]); // transaction id
                    p
                }),
                Some(Verdict::Leak(
                    "STUN 10.20.0.100:50000 -> 198.51.100.1:4500".into(),
                )),
            ),
            (
                "raw esp not allowed",
                frame(GUEST, ETHERTYPE_IPV4, &ipv4(50, gw, (0, 0))),
                Some(Verdict::Leak(
                    "IPv4 protocol 50 10.20.0.100 -> 198.51.100.1".into(),
                )),
            ),
            (
                "dns",
                frame(
                    GUEST,
                    ETHERTYPE_IPV4,
                    &ipv4(17, [10, 20, 0, 1], (40000, 53)),
                ),
                Some(Verdict::Leak(
                    "udp 10.20.0.100:40000 -> 10.20.0.1:53".into(),
                )),
            ),
            (
                "https elsewhere",
                frame(
                    GUEST,
                    ETHERTYPE_IPV4,
                    &ipv4(6, [10, 99, 0, 10], (40000, 443)),
                ),
                Some(Verdict::Leak(
                    "tcp 10.20.0.100:40000 -> 10.99.0.10:443".into(),
                )),
            ),
            (
                "tcp to the relay",
                frame(
                    GUEST,
                    ETHERTYPE_IPV4,
                    &ipv4(6, [198, 51, 100, 3], (40000, 443)),
                ),
                Some(Verdict::Relay),
            ),
            (
                "the relay, another port",
                frame(
                    GUEST,
                    ETHERTYPE_IPV4,
                    &ipv4(6, [198, 51, 100, 3], (40000, 80)),
                ),
                Some(Verdict::Leak(
                    "tcp 10.20.0.100:40000 -> 198.51.100.3:80".into(),
                )),
            ),
            (
                "udp to the relay's port",
                frame(
                    GUEST,
                    ETHERTYPE_IPV4,
                    &ipv4(17, [198, 51, 100, 3], (40000, 443)),
                ),
                Some(Verdict::Leak(
                    "udp 10.20.0.100:40000 -> 198.51.100.3:443".into(),
                )),
            ),
            (
                "gateway other port",
                frame(GUEST, ETHERTYPE_IPV4, &ipv4(17, gw, (40000, 53))),
                Some(Verdict::Leak(
                    "udp 10.20.0.100:40000 -> 198.51.100.1:53".into(),
                )),
            ),
            (
                "ipv6",
                frame(GUEST, ETHERTYPE_IPV6, &[0x60, 0, 0, 0, 0, 8, 58, 255]),
                Some(Verdict::Leak("IPv6 (next header 58)".into())),
            ),
            (
                "lldp",
                frame(GUEST, 0x88cc, &[0; 10]),
                Some(Verdict::Leak("ethertype 0x88cc".into())),
            ),
            (
                "not the guest",
                frame(OTHER, ETHERTYPE_IPV4, &ipv4(17, [10, 20, 0, 1], (1, 53))),
                None,
            ),
        ];
        for (name, data, want) in cases {
            assert_eq!(judge(&data, GUEST, &allowed()), want, "{name}");
        }
    }

    /// An Ethernet frame of an IPv4 packet from `source` to `destination` with
    /// `payload` bytes after its UDP or TCP header.
    fn packet(to_guest: bool, protocol: u8, peer: [u8; 4], payload: usize) -> Vec<u8> {
        let transport = if protocol == 17 { 8 } else { 20 };
        let total = (20 + transport + payload) as u16;
        let guest = [10, 20, 0, 100];
        let (source, destination) = if to_guest {
            (peer, guest)
        } else {
            (guest, peer)
        };
        let mut f = if to_guest {
            GUEST.to_vec()
        } else {
            vec![0xee; 6]
        };
        f.extend(if to_guest { [0xee; 6] } else { GUEST });
        f.extend(ETHERTYPE_IPV4.to_be_bytes());
        f.extend([0x45, 0]);
        f.extend(total.to_be_bytes());
        f.extend([0, 0, 0, 0, 64, protocol, 0, 0]);
        f.extend(source);
        f.extend(destination);
        let mut header = vec![0u8; transport];
        if protocol == 6 {
            header[12] = 5 << 4;
        }
        f.extend(header);
        f.extend(vec![0u8; payload]);
        f
    }

    #[test]
    fn round_trips_of_exchanges_after_quiet() {
        let gw = [198, 51, 100, 1];
        let at = |time: f64, data: Vec<u8>| Frame { time, data };
        let frames = vec![
            // A check: request after quiet, answer 40 ms later, then more traffic.
            at(100.000, packet(false, 17, gw, 120)),
            at(100.040, packet(true, 17, gw, 120)),
            at(100.050, packet(false, 17, gw, 300)),
            at(100.090, packet(true, 17, gw, 900)),
            // A keepalive (1 byte) starts nothing.
            at(103.000, packet(false, 17, gw, 1)),
            // Next check: quiet since 103.0 (keepalive), answer 60 ms later.
            at(105.000, packet(false, 17, gw, 120)),
            at(105.060, packet(true, 17, gw, 120)),
            // No answer within a second: not counted.
            at(110.000, packet(false, 17, gw, 120)),
            at(111.500, packet(true, 17, gw, 120)),
            // TCP: a bare ACK back is no answer; the data after it is.
            at(120.000, packet(false, 6, [198, 51, 100, 3], 200)),
            at(120.010, packet(true, 6, [198, 51, 100, 3], 0)),
            at(120.070, packet(true, 6, [198, 51, 100, 3], 200)),
        ];
        let round_trips = exchange_round_trips(&frames, GUEST, Ipv4Addr::from(gw));
        let ms: Vec<u64> = round_trips
            .iter()
            .map(|t| (t * 1000.0).round() as u64)
            .collect();
        assert_eq!(ms, [40, 60]);
        let relay = exchange_round_trips(&frames, GUEST, Ipv4Addr::new(198, 51, 100, 3));
        let ms: Vec<u64> = relay.iter().map(|t| (t * 1000.0).round() as u64).collect();
        assert_eq!(ms, [70]);
        assert_eq!(median(&[0.3, 0.1, 0.2]), 0.2);
        assert_eq!(median(&[0.4, 0.1, 0.2, 0.3]), 0.25);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(between(&frames, 105.0, 106.0).len(), 2);
    }

    #[test]
    fn pcap_round_trip_and_report() {
        let frames = [
            frame(GUEST, ETHERTYPE_ARP, &[0; 28]),
            frame(OTHER, ETHERTYPE_ARP, &[0; 28]),
            frame(
                GUEST,
                ETHERTYPE_IPV4,
                &ipv4(17, [198, 51, 100, 1], (500, 500)),
            ),
            frame(
                GUEST,
                ETHERTYPE_IPV4,
                &ipv4(17, [224, 0, 0, 251], (5353, 5353)),
            ),
        ];
        let mut file = Vec::new();
        for word in [PCAP_MAGIC, 0x0004_0002, 0, 0, 65535, 1] {
            file.extend(word.to_le_bytes());
        }
        for (i, f) in frames.iter().enumerate() {
            for word in [
                1_700_000_000 + i as u32,
                250_000,
                f.len() as u32,
                f.len() as u32,
            ] {
                file.extend(word.to_le_bytes());
            }
            file.extend(f);
        }
        // A record cut off by QEMU's exit is ignored.
        file.extend([1, 2, 3]);
        let parsed = parse(&file).expect("parses");
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[1].time, 1_700_000_001.25);
        let report = leak_report(&parsed, GUEST, &allowed());
        assert_eq!(
            report,
            LeakReport {
                frames_total: 4,
                sent_by_guest: 3,
                arp: 1,
                dhcp: 0,
                to_gateway: 1,
                to_relay: 0,
                to_portal: 0,
                access_point_updates: 0,
                leaks: vec!["udp 10.20.0.100:5353 -> 224.0.0.251:5353".into()],
            }
        );
        assert!(parse(&file[..10]).is_err());
        assert_eq!(parse_mac("52:54:00:12:34:56"), Some(GUEST));
        assert_eq!(parse_mac("52:54:00:12:34"), None);
    }
}
