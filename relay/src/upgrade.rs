//! The first bytes inside TLS: an HTTP/1.1 Upgrade, so the relay's port looks and
//! answers like a web server's. Only `GET /stick-relay` with `Upgrade:
//! stick-relay/1` is switched to datagrams; any other request gets a plain 404.

use std::io::Read;

/// The path the stick asks for.
pub const PATH: &str = "/stick-relay";
/// The protocol named in `Upgrade:`.
pub const PROTOCOL: &str = "stick-relay/1";
/// ALPN offered and accepted: what a browser's HTTPS would say.
pub const ALPN: &[u8] = b"http/1.1";
/// The longest request or response head read.
const MAX_HEAD: usize = 4096;

/// The stick's request for `host` (the relay's name in its certificate).
pub fn request(host: &str) -> String {
    format!(
        "GET {PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: {PROTOCOL}\r\n\r\n"
    )
}

/// The relay's answer to a request it switches.
pub fn switching() -> &'static str {
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: stick-relay/1\r\n\r\n"
}

/// The relay's answer to anything else.
pub fn not_found() -> &'static str {
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
}

/// Why a head was not the one expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    #[error("the peer closed the connection before the end of its HTTP head")]
    Closed,
    #[error("the HTTP head is longer than {MAX_HEAD} bytes")]
    TooLong,
    #[error("not a request for the relay: {0:?}")]
    NotRelayRequest(String),
    #[error("the relay did not switch protocols: {0:?}")]
    NotSwitched(String),
}

/// Whether `head` asks for the relay: `GET /stick-relay`, HTTP/1.1, `Upgrade:
/// stick-relay/1` (header names and the upgrade token case-insensitive).
pub fn check_request(head: &str) -> Result<(), UpgradeError> {
    let first = head.lines().next().unwrap_or_default();
    let refuse = || UpgradeError::NotRelayRequest(first.to_string());
    let mut parts = first.split(' ');
    if (parts.next(), parts.next(), parts.next()) != (Some("GET"), Some(PATH), Some("HTTP/1.1")) {
        return Err(refuse());
    }
    if header(head, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case(PROTOCOL)) {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// Whether `head` is the relay's `101 Switching Protocols` to [`PROTOCOL`].
pub fn check_response(head: &str) -> Result<(), UpgradeError> {
    let first = head.lines().next().unwrap_or_default();
    let switched = first.starts_with("HTTP/1.1 101 ")
        && header(head, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case(PROTOCOL));
    if switched {
        Ok(())
    } else {
        Err(UpgradeError::NotSwitched(first.to_string()))
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// Reads an HTTP head (up to the blank line) from `stream`; returns it and the
/// bytes read past it (the first frames, if the peer sent them at once).
pub fn read_head(stream: &mut impl Read) -> Result<(String, Vec<u8>), UpgradeError> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = find_blank_line(&bytes) {
            let rest = bytes.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&bytes).into_owned(), rest));
        }
        if bytes.len() > MAX_HEAD {
            return Err(UpgradeError::TooLong);
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return Err(UpgradeError::Closed),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_the_relay_switches_and_what_it_refuses() {
        let cases: &[(&str, &str, bool)] = &[
            ("the stick's own", &request("relay.example"), true),
            (
                "header case",
                "GET /stick-relay HTTP/1.1\r\nhost: r\r\nUPGRADE:  Stick-Relay/1 \r\n\r\n",
                true,
            ),
            ("a browser", "GET / HTTP/1.1\r\nHost: r\r\n\r\n", false),
            (
                "websocket",
                "GET /stick-relay HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
                false,
            ),
            (
                "no upgrade",
                "GET /stick-relay HTTP/1.1\r\nHost: r\r\n\r\n",
                false,
            ),
            (
                "post",
                "POST /stick-relay HTTP/1.1\r\nUpgrade: stick-relay/1\r\n\r\n",
                false,
            ),
            (
                "http/1.0",
                "GET /stick-relay HTTP/1.0\r\nUpgrade: stick-relay/1\r\n\r\n",
                false,
            ),
        ];
        for (name, head, ok) in cases {
            assert_eq!(check_request(head).is_ok(), *ok, "{name}");
        }
    }

    #[test]
    fn responses() {
        assert_eq!(check_response(switching()), Ok(()));
        assert_eq!(
            check_response(not_found()),
            Err(UpgradeError::NotSwitched("HTTP/1.1 404 Not Found".into()))
        );
        assert!(
            check_response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n").is_err()
        );
    }

    #[test]
    fn a_head_and_what_came_after_it() {
        let mut stream: &[u8] = b"HTTP/1.1 101 X\r\nUpgrade: stick-relay/1\r\n\r\n\x00\x02ab";
        let (head, rest) = read_head(&mut stream).expect("head");
        assert_eq!(head, "HTTP/1.1 101 X\r\nUpgrade: stick-relay/1\r\n\r\n");
        assert_eq!(rest, b"\x00\x02ab");
        let mut short: &[u8] = b"GET / HTTP/1.1\r\n";
        assert_eq!(read_head(&mut short), Err(UpgradeError::Closed));
        let long = vec![b'a'; MAX_HEAD + 600];
        assert_eq!(read_head(&mut long.as_slice()), Err(UpgradeError::TooLong));
    }
}
