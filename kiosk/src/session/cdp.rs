//! The Chrome DevTools Protocol over `--remote-debugging-pipe`: the browser reads
//! commands from its fd 3 and writes answers and events to its fd 4, each message
//! JSON ended by a NUL byte. No TCP port is ever opened.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Why a command got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CdpError {
    #[error("the browser closed its debugging pipe")]
    Closed,
    #[error("{method}: no answer within {0:?}", .timeout)]
    Timeout { method: String, timeout: Duration },
    #[error("{method}: {message}")]
    Refused { method: String, message: String },
    #[error("writing to the debugging pipe: {0}")]
    Write(std::io::Error),
}

/// Splits a byte stream into NUL-terminated messages; keeps an incomplete tail.
#[derive(Debug, Default)]
pub struct Framer {
    pending: Vec<u8>,
}

impl Framer {
    /// Adds bytes; returns every message completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == 0) {
            let message: Vec<u8> = self.pending.drain(..=end).collect();
            out.push(message[..message.len() - 1].to_vec());
        }
        out
    }
}

/// An event from the browser: method, params and the session it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub method: String,
    pub params: Value,
}

/// The kiosk's end of the pipe.
#[derive(Debug)]
pub struct Cdp {
    writer: std::fs::File,
    incoming: Receiver<Value>,
    events: VecDeque<Event>,
    next_id: u64,
}

impl Cdp {
    /// Takes the kiosk's ends: `writer` feeds the browser's fd 3, `reader` drains
    /// its fd 4 (on a thread of its own).
    pub fn new(writer: std::fs::File, mut reader: std::fs::File) -> Cdp {
        let (tx, incoming) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut framer = Framer::default();
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                let n = match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                for message in framer.push(&buffer[..n]) {
                    match serde_json::from_slice::<Value>(&message) {
                        Ok(value) => {
                            if tx.send(value).is_err() {
                                return;
                            }
                        }
                        Err(err) => tracing::warn!("CDP: a message that is not JSON: {err}"),
                    }
                }
            }
        });
        Cdp {
            writer,
            incoming,
            events: VecDeque::new(),
            next_id: 1,
        }
    }

    /// Sends `method` and waits for its answer; events that arrive meanwhile are kept.
    pub fn call(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, CdpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message =
            serde_json::to_vec(&json!({"id": id, "method": method, "params": params}))
                .expect("a CDP command serialises");
        message.push(0);
        self.writer.write_all(&message).map_err(CdpError::Write)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let value = match self.incoming.recv_timeout(left) {
                Ok(value) => value,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(CdpError::Timeout {
                        method: method.into(),
                        timeout,
                    })
                }
                Err(RecvTimeoutError::Disconnected) => return Err(CdpError::Closed),
            };
            if value.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(error) = value.get("error") {
                    return Err(CdpError::Refused {
                        method: method.into(),
                        message: error
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("error")
                            .into(),
                    });
                }
                return Ok(value.get("result").cloned().unwrap_or(Value::Null));
            }
            self.keep_event(value);
        }
    }

    /// The next event, waiting up to `timeout`; `Err(Closed)` once the browser is gone.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>, CdpError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        match self.incoming.recv_timeout(timeout) {
            Ok(value) => {
                self.keep_event(value);
                Ok(self.events.pop_front())
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(CdpError::Closed),
        }
    }

    fn keep_event(&mut self, value: Value) {
        if let Some(method) = value.get("method").and_then(Value::as_str) {
            self.events.push_back(Event {
                method: method.to_string(),
                params: value.get("params").cloned().unwrap_or(Value::Null),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_split_at_nul_bytes() {
        let mut framer = Framer::default();
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"{\"id\":1}\0{\"me", &[b"{\"id\":1}"]),
            (b"thod\":\"x\"}", &[]),
            (b"\0\0", &[b"{\"method\":\"x\"}", b""]),
            (b"", &[]),
        ];
        for (input, want) in cases {
            let got = framer.push(input);
            let want: Vec<Vec<u8>> = want.iter().map(|m| m.to_vec()).collect();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn answers_are_matched_by_id_and_events_kept() {
        let (to_browser_read, to_browser_write) = nix::unistd::pipe().expect("pipe");
        let (from_browser_read, from_browser_write) = nix::unistd::pipe().expect("pipe");
        let mut cdp = Cdp::new(
            std::fs::File::from(to_browser_write),
            std::fs::File::from(from_browser_read),
        );
        // A fake browser end: it answers id 1 after sending an event first.
        let browser = std::thread::spawn(move || {
            let mut commands = std::fs::File::from(to_browser_read);
            let mut out = std::fs::File::from(from_browser_write);
            let mut framer = Framer::default();
            let mut buffer = [0u8; 4096];
            let n = commands.read(&mut buffer).expect("read");
            let sent = framer.push(&buffer[..n]);
            let command: Value = serde_json::from_slice(&sent[0]).expect("json");
            assert_eq!(command["method"], "Target.getTargets");
            out.write_all(b"{\"method\":\"Target.targetCreated\",\"params\":{\"n\":1}}\0")
                .expect("write");
            out.write_all(b"{\"id\":1,\"result\":{\"ok\":true}}\0")
                .expect("write");
            // The second command must arrive before its answer (and the pipe's end).
            let mut second = Vec::new();
            while second.is_empty() {
                let n = commands.read(&mut buffer).expect("read");
                second = framer.push(&buffer[..n]);
            }
            out.write_all(b"{\"id\":2,\"error\":{\"message\":\"Not allowed\"}}\0")
                .expect("write");
        });
        let answer = cdp
            .call("Target.getTargets", json!({}), Duration::from_secs(5))
            .expect("answer");
        assert_eq!(answer, json!({"ok": true}));
        let refused = cdp
            .call("Target.attachToTarget", json!({}), Duration::from_secs(5))
            .expect_err("refused");
        assert_eq!(refused.to_string(), "Target.attachToTarget: Not allowed");
        let event = cdp
            .next_event(Duration::from_secs(1))
            .expect("open")
            .expect("event");
        assert_eq!(event.method, "Target.targetCreated");
        assert_eq!(event.params, json!({"n": 1}));
        browser.join().expect("browser thread");
        assert!(matches!(
            cdp.next_event(Duration::from_secs(1)),
            Err(CdpError::Closed)
        ));
    }
}
