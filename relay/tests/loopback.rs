//! The relay end to end on loopback: a UDP "gateway" that echoes, the relay
//! server, and the stick's client; datagrams go through TLS and come back whole.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use stick_relay::client::{connect, ConnectError, RelayClient, RelayTarget};
use stick_relay::server::RelayConfig;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../qemu-tests/fixtures/vpn")
        .join(name)
}

/// A UDP socket that sends every datagram back, reversed (so an echo is not a
/// datagram that merely looped back unrelayed).
fn echo_gateway() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = socket.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buffer) {
            buffer[..n].reverse();
            let _ = socket.send_to(&buffer[..n], from);
        }
    });
    address
}

/// The relay server on a free loopback port, relaying to `gateway`.
fn relay(gateway: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let config = RelayConfig {
        listen: address,
        certificate: fixture("test-relay.pem"),
        key: fixture("test-relay.key"),
        gateway,
        max_sessions: 4,
        idle_seconds: 30,
    };
    let tls = stick_relay::tls::server_config(&config.certificate, &config.key).expect("tls");
    std::thread::spawn(move || {
        stick_relay::server::serve_on(listener, &config, tls, Arc::new(AtomicBool::new(false)))
    });
    address
}

fn target(address: SocketAddr, ca: &str, name: &str) -> RelayTarget {
    RelayTarget {
        address,
        server_name: name.into(),
        tls: stick_relay::tls::client_config(&fixture(ca)).expect("client tls"),
    }
}

/// A relay to the echoing gateway, and the stick's client, up, hearing only
/// `charon` (charon's side: the socket the client hears from and answers).
fn charon_and_client() -> (UdpSocket, RelayClient) {
    let relay = relay(echo_gateway());
    let charon = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let client = RelayClient::start(
        target(relay, "test-ca.pem", "relay.test"),
        "127.0.0.1:0".parse().expect("addr"),
        charon.local_addr().expect("addr"),
    )
    .expect("client");
    client.wait_up(Duration::from_secs(10)).expect("relay up");
    (charon, client)
}

#[test]
fn datagrams_cross_the_relay_whole_and_both_ways() {
    let (charon, client) = charon_and_client();
    charon.connect(client.local_addr()).expect("connect");
    charon
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let sizes = [1usize, 4, 100, 1400, 9000, 60_000];
    for size in sizes {
        let datagram: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        charon.send(&datagram).expect("send");
        let mut buffer = vec![0u8; 65_536];
        let n = charon.recv(&mut buffer).expect("the echo comes back");
        let mut want = datagram.clone();
        want.reverse();
        assert_eq!(&buffer[..n], &want[..], "{size} bytes");
    }
}

#[test]
fn a_datagram_from_anyone_but_charon_goes_nowhere() {
    let (charon, client) = charon_and_client();
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    stranger
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    stranger
        .send_to(b"page-chosen bytes", client.local_addr())
        .expect("send");
    let mut buffer = [0u8; 64];
    assert!(
        stranger.recv(&mut buffer).is_err(),
        "a stranger's datagram was relayed"
    );
    charon
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    assert!(
        charon.recv(&mut buffer).is_err(),
        "nothing came back to charon either"
    );
}

#[test]
fn the_relay_is_refused_without_the_organisations_ca_or_name() {
    let relay = relay(echo_gateway());
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "another CA",
            "test-other-ca.pem",
            "relay.test",
            "UnknownIssuer",
        ),
        (
            "another name",
            "test-ca.pem",
            "gateway.test",
            "not valid for name",
        ),
    ];
    for (case, ca, name, name_error) in cases {
        match connect(&target(relay, ca, name)) {
            Err(ConnectError::Tls { source, .. }) => {
                assert!(source.to_string().contains(name_error), "{case}: {source}")
            }
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[test]
fn a_browser_gets_a_plain_404() {
    use std::io::{Read, Write};
    let relay = relay(echo_gateway());
    let tls = stick_relay::tls::client_config(&fixture("test-ca.pem")).expect("tls");
    let name = rustls::pki_types::ServerName::try_from("relay.test").expect("name");
    let connection = rustls::ClientConnection::new(tls, name).expect("connection");
    let tcp = std::net::TcpStream::connect(relay).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: relay.test\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{answer:?}"
    );
}

#[test]
fn a_new_client_takes_the_port_of_one_just_stopped() {
    let relay = relay(echo_gateway());
    let charon = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let start = |local: SocketAddr| {
        let client = RelayClient::start(
            target(relay, "test-ca.pem", "relay.test"),
            local,
            charon.local_addr().expect("addr"),
        )
        .expect("client");
        client.wait_up(Duration::from_secs(10)).expect("relay up");
        client
    };
    let first = start("127.0.0.1:0".parse().expect("addr"));
    let port = first.local_addr();
    // Stopped, not joined: its thread may still hold the port for a moment.
    drop(first);
    let second = start(port);
    assert_eq!(second.local_addr(), port);
    charon.connect(port).expect("connect");
    charon
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    charon.send(b"again").expect("send");
    let mut buffer = [0u8; 16];
    let n = charon.recv(&mut buffer).expect("the echo comes back");
    assert_eq!(&buffer[..n], b"niaga");
}
