//! The conference behind the tunnel of a [`NetLab`]: Janus (Debian's package) with
//! its echo-test plugin, and the test page's HTTPS server that proxies Janus' API.
//! A second server with a certificate from a CA the image does not trust stands on
//! an allowed origin, for the certificate-error row of the escape table.
//!
//! ```text
//!  [inner ns]  10.99.0.10:8443  page + /janus proxy (test CA)
//!              10.99.0.11:8443  same page, certificate from another CA
//!              127.0.0.1:8088   Janus HTTP API, 127.0.0.1:7088 its admin API
//!              10.99.0.53:53    a resolver that logs every name asked and refuses
//!  [gateway ns] nftables set of every destination reached through the tunnel
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::lab::netlab::NetLab;
use crate::machine::qemu::{wait_until, MachineConfig};
use crate::run_tool;

pub const CONFERENCE: &str = "10.99.0.10";
pub const UNTRUSTED: &str = "10.99.0.11";
pub const PORT: u16 = 8443;
/// The same server on another port: another origin, not on the allowed list (the
/// hostile page frames it; were it loaded, it would ask for the camera).
pub const FRAME_PORT: u16 = 8444;
const ADMIN_SECRET: &str = "stick-test-admin";
/// Janus' RTP ports (`rtp_port_range` in its configuration).
pub const JANUS_MEDIA_PORTS: std::ops::RangeInclusive<u16> = 20000..=20200;

/// The lab's resolver address behind the tunnel.
pub const RESOLVER: &str = "10.99.0.53";
/// The name the lab asks its own resolver for once, to prove the log works.
const SELF_CHECK_NAME: &str = "lab-self-check.invalid";
/// A DNS query for [`SELF_CHECK_NAME`] (type A) to `sys.argv[1]`, waiting for the answer.
const SELF_CHECK_QUERY: &str = "import socket, struct, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)\n\
q = struct.pack('!HHHHHH', 0x5157, 0x0100, 1, 0, 0, 0)\n\
q += b''.join(bytes([len(l)]) + l.encode() for l in 'lab-self-check.invalid'.split('.')) + b'\\0'\n\
s.sendto(q + struct.pack('!HH', 1, 1), (sys.argv[1], 53)); s.recvfrom(512)\n";
/// The gateway's nftables table that records the tunnel's destinations.
const WATCH_TABLE: &str = "stick_tunnel_watch";

/// The conference test image: (config, output folder).
pub const CONFERENCE_IMAGE: (&str, &str) = ("qemu-tests/configs/conference.toml", "conference");

/// The PC a conference scenario runs on.
pub fn conference_machine(machine: &mut MachineConfig) {
    // Chromium wants memory; QEMU's HDA sound card plays the call's audio.
    machine.memory_mib = 3072;
    // QEMU 7.2's TCG (Debian 12's) runs the browser's AVX code paths wrong: with
    // `-cpu max` Chromium died of SIGSEGV as soon as the call's video was drawn.
    // A CPU without AVX makes it take its SSE paths.
    machine.tcg_cpu = Some("Westmere".into());
    machine.extra_args.extend(
        [
            "-audiodev",
            "none,id=snd0",
            "-device",
            "intel-hda",
            "-device",
            "hda-duplex,audiodev=snd0",
        ]
        .map(String::from),
    );
}

/// Janus and the page servers; killed when dropped.
#[derive(Debug)]
pub struct ConferenceLab {
    inner_ns: String,
    gateway_ns: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for ConferenceLab {
    fn drop(&mut self) {
        // A failed test keeps what the servers saw (requests, reports, names looked up).
        if std::thread::panicking() {
            let kept = crate::artifacts_dir().join("conference-lab.failed");
            let _ = std::fs::create_dir_all(&kept);
            for name in [
                "trusted.log",
                "untrusted.log",
                "frame.log",
                "dns.log",
                "janus.out",
            ] {
                let _ = std::fs::copy(self.dir.join(name), kept.join(name));
            }
            eprintln!(
                "qemu-tests: the conference servers' logs kept in {}",
                kept.display()
            );
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One line the page reported (`/report`) or a page request the server logged.
#[derive(Debug, Clone, Deserialize)]
pub struct PageReport {
    /// Host clock, Unix seconds.
    pub t: f64,
    pub client: String,
    pub what: String,
    pub detail: String,
}

/// One name the guest looked up through the tunnel.
#[derive(Debug, Clone, Deserialize)]
pub struct DnsQuery {
    pub t: f64,
    pub client: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: u16,
}

/// One destination the guest reached through the tunnel: address, protocol, port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TunnelDestination {
    pub address: String,
    pub protocol: String,
    pub port: u16,
}

impl std::fmt::Display for TunnelDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.address, self.protocol, self.port)
    }
}

/// Media counters of one Janus handle, from the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JanusMedia {
    pub handles: usize,
    pub audio_packets_in: u64,
    pub video_packets_in: u64,
    pub audio_packets_out: u64,
    pub video_packets_out: u64,
}

fn in_ns(ns: &str, program: &str) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns, program]);
    command
}

impl ConferenceLab {
    pub fn start(lab: &NetLab) -> Result<ConferenceLab> {
        let dir = lab.dir().join("conference");
        std::fs::create_dir_all(&dir).context("cannot create the conference folder")?;
        let mut conference = ConferenceLab {
            inner_ns: lab.inner_ns.clone(),
            gateway_ns: lab.gateway_ns.clone(),
            dir: dir.clone(),
            children: Vec::new(),
        };
        run_tool(Command::new("ip").args([
            "-n",
            &lab.inner_ns,
            "addr",
            "add",
            &format!("{UNTRUSTED}/24"),
            "dev",
            "to-gw",
        ]))?;
        let fixtures = crate::workspace_root().join("qemu-tests/fixtures/vpn");
        let sources = crate::workspace_root().join("qemu-tests/conference");
        untrusted_certificate(&dir, &fixtures)?;
        conference.watch_tunnel()?;
        conference.start_resolver(&sources)?;
        conference.start_janus()?;
        for (address, port, cert, key, name) in [
            (
                CONFERENCE,
                PORT,
                fixtures.join("test-web.pem"),
                fixtures.join("test-web.key"),
                "trusted",
            ),
            (
                CONFERENCE,
                FRAME_PORT,
                fixtures.join("test-web.pem"),
                fixtures.join("test-web.key"),
                "frame",
            ),
            (
                UNTRUSTED,
                PORT,
                dir.join("untrusted.pem"),
                dir.join("untrusted.key"),
                "untrusted",
            ),
        ] {
            let out = dir.join(format!("{name}.out"));
            let mut command = in_ns(&lab.inner_ns, "python3");
            command
                .arg(sources.join("server.py"))
                .arg(address)
                .arg(port.to_string())
                .arg(cert)
                .arg(key)
                .arg(sources.join("page.html"))
                .arg(dir.join(format!("{name}.log")));
            conference.spawn(&mut command, &out)?;
            let listening = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
                std::fs::read_to_string(&out)
                    .ok()
                    .filter(|t| t.contains("listening"))
            });
            if listening.is_none() {
                bail!("the {name} conference server did not start: {}", read(&out));
            }
        }
        Ok(conference)
    }

    /// Records every (address, protocol, port) the tunnel's side sends to, at the
    /// gateway: what the guest's browser and kiosk reach inside the organisation.
    fn watch_tunnel(&self) -> Result<()> {
        let rules = format!(
            "table inet {WATCH_TABLE} {{\n\
             set seen {{ type ipv4_addr . inet_proto . inet_service; flags dynamic; size 4096; }}\n\
             chain forward {{ type filter hook forward priority 0; policy accept;\n\
             ip saddr {TUNNEL} meta l4proto {{ tcp, udp }} add @seen {{ ip daddr . meta l4proto . th dport }};\n}}\n\
             chain input {{ type filter hook input priority 0; policy accept;\n\
             ip saddr {TUNNEL} meta l4proto {{ tcp, udp }} add @seen {{ ip daddr . meta l4proto . th dport }};\n}}\n\
             }}\n",
            TUNNEL = crate::lab::netlab::TUNNEL_NETWORK
        );
        let file = self.dir.join("tunnel-watch.nft");
        std::fs::write(&file, rules).with_context(|| format!("cannot write {}", file.display()))?;
        run_tool(in_ns(&self.gateway_ns, "nft").arg("-f").arg(&file)).map(drop)
    }

    /// Every destination reached through the tunnel so far, sorted.
    pub fn tunnel_destinations(&self) -> Result<Vec<TunnelDestination>> {
        let out = run_tool(in_ns(&self.gateway_ns, "nft").args([
            "-j",
            "list",
            "set",
            "inet",
            WATCH_TABLE,
            "seen",
        ]))?;
        let json: serde_json::Value =
            serde_json::from_str(&out).with_context(|| format!("nft printed {out:?}"))?;
        Ok(parse_destinations(&json))
    }

    fn start_resolver(&mut self, sources: &Path) -> Result<()> {
        let out = self.dir.join("dns.out");
        let mut command = in_ns(&self.inner_ns, "python3");
        command
            .arg(sources.join("dns.py"))
            .arg(RESOLVER)
            .arg(self.dir.join("dns.log"));
        self.spawn(&mut command, &out)?;
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            read(&out).contains("listening").then_some(())
        })
        .with_context(|| format!("the lab's resolver did not start: {}", read(&out)))?;
        // The test judges "no lookups" by this log: it must see a real query. One
        // from the gateway (not the guest), answered, before the guest boots far.
        run_tool(in_ns(&self.gateway_ns, "python3").args(["-c", SELF_CHECK_QUERY, RESOLVER]))
            .context("the lab's resolver did not answer its self-check")?;
        let logged = self.dns_queries().iter().any(|q| q.name == SELF_CHECK_NAME);
        if !logged {
            bail!("the lab's resolver answered but did not log {SELF_CHECK_NAME}");
        }
        Ok(())
    }

    /// Every name looked up at the lab's resolver (the lab's own self-check too).
    fn dns_queries(&self) -> Vec<DnsQuery> {
        read(&self.dir.join("dns.log"))
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Every name the guest looked up through the tunnel.
    pub fn guest_dns_queries(&self) -> Vec<DnsQuery> {
        let mut queries = self.dns_queries();
        queries.retain(|q| q.name != SELF_CHECK_NAME);
        queries
    }

    /// The browser's next `requests` requests for the page get no answer (each
    /// until the browser gives up on it).
    pub fn hold_page_requests(&self, requests: u32) -> Result<()> {
        let path = self.dir.join("trusted.log.hold");
        std::fs::write(&path, requests.to_string())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    fn spawn(&mut self, command: &mut Command, out: &Path) -> Result<()> {
        let log = std::fs::File::create(out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        self.children.push(child);
        Ok(())
    }

    fn start_janus(&mut self) -> Result<()> {
        let conf = self.dir.join("janus");
        std::fs::create_dir_all(&conf)?;
        let plugins = "/usr/lib/x86_64-linux-gnu/janus/plugins";
        let transports = "/usr/lib/x86_64-linux-gnu/janus/transports";
        let unused_plugins = [
            "audiobridge",
            "duktape",
            "lua",
            "nosip",
            "recordplay",
            "sip",
            "streaming",
            "textroom",
            "videocall",
            "videoroom",
            "voicemail",
        ]
        .map(|p| format!("libjanus_{p}.so"))
        .join(",");
        let unused_transports = ["mqtt", "nanomsg", "pfunix", "rabbitmq", "websockets"]
            .map(|p| format!("libjanus_{p}.so"))
            .join(",");
        std::fs::write(
            conf.join("janus.jcfg"),
            format!(
                "general: {{\n configs_folder = \"{}\"\n plugins_folder = \"{plugins}\"\n \
                 transports_folder = \"{transports}\"\n log_to_stdout = true\n debug_level = 4\n \
                 admin_secret = \"{ADMIN_SECRET}\"\n}}\nmedia: {{ rtp_port_range = \"{}-{}\" }}\n\
                 plugins: {{ disable = \"{unused_plugins}\" }}\n\
                 transports: {{ disable = \"{unused_transports}\" }}\n\
                 events: {{ broadcast = false }}\n",
                conf.display(),
                JANUS_MEDIA_PORTS.start(),
                JANUS_MEDIA_PORTS.end()
            ),
        )?;
        std::fs::write(
            conf.join("janus.transport.http.jcfg"),
            "general: {\n base_path = \"/janus\"\n http = true\n port = 8088\n ip = \"127.0.0.1\"\n https = false\n}\n\
             admin: {\n admin_base_path = \"/admin\"\n admin_http = true\n admin_port = 7088\n admin_ip = \"127.0.0.1\"\n}\n",
        )?;
        std::fs::write(conf.join("janus.plugin.echotest.jcfg"), "general: {\n}\n")?;
        let out = self.dir.join("janus.out");
        let mut command = in_ns(&self.inner_ns, "janus");
        // --configs-folder too: the transports read their files from there only when
        // told on the command line (else from /etc/janus).
        command
            .arg("--config")
            .arg(conf.join("janus.jcfg"))
            .arg("--configs-folder")
            .arg(&conf);
        self.spawn(&mut command, &out)?;
        let up = wait_until(Duration::from_secs(30), Duration::from_millis(300), || {
            read(&out).contains("HTTP webserver started").then_some(())
        });
        if up.is_none() {
            bail!("Janus did not start: {}", read(&out));
        }
        Ok(())
    }

    /// Makes the page start the attempt `key` without the keyboard.
    pub fn request_attempt(&self, key: &str) -> Result<()> {
        let path = self.dir.join("trusted.log.next");
        std::fs::write(&path, key).with_context(|| format!("cannot write {}", path.display()))
    }

    /// What the trusted server logged: page requests and the page's reports.
    pub fn reports(&self) -> Vec<PageReport> {
        parse_reports(&read(&self.dir.join("trusted.log")))
    }

    /// How often the page asked for the microphone again (its capture ended
    /// or stalled: Chromium's ALSA capture under TCG), as a line for the log.
    pub fn microphone_requests(&self) -> String {
        let again: Vec<String> = self
            .reports()
            .into_iter()
            .filter(|r| r.what == "track-again" || r.what == "track-again-error")
            .map(|r| format!("{} {}", r.what, r.detail))
            .collect();
        if again.is_empty() {
            "the microphone delivered without being asked for again".to_string()
        } else {
            format!(
                "the page asked for the microphone again: {}",
                again.join("; ")
            )
        }
    }

    /// The last `count` reports, for a failure's message: the page's `stats`
    /// lines among them tell a silent microphone from a lost connection.
    pub fn last_reports(&self, count: usize) -> Vec<PageReport> {
        let all = self.reports();
        all[all.len().saturating_sub(count)..].to_vec()
    }

    /// The first report past the first `after` that is `what` (with `detail`,
    /// if given), within `timeout`; else an error with every report and
    /// Janus' log.
    pub fn wait_report(
        &self,
        after: usize,
        what: &str,
        detail: Option<&str>,
        timeout: std::time::Duration,
    ) -> Result<PageReport> {
        let found = crate::machine::qemu::wait_until(
            timeout,
            std::time::Duration::from_millis(500),
            || {
                self.reports()
                    .into_iter()
                    .skip(after)
                    .find(|r| r.what == what && detail.is_none_or(|d| r.detail == d))
            },
        );
        found.with_context(|| {
            format!(
                "the page did not report {what} {detail:?}; it reported {:?}\n--- Janus ---\n{}",
                self.reports(),
                self.janus_log()
            )
        })
    }

    /// What the other-origin frame's server logged (nothing, when the policy held).
    pub fn frame_reports(&self) -> Vec<PageReport> {
        parse_reports(&read(&self.dir.join("frame.log")))
    }

    /// What the untrusted server logged (nothing, when the browser stopped at its certificate).
    pub fn untrusted_reports(&self) -> Vec<PageReport> {
        parse_reports(&read(&self.dir.join("untrusted.log")))
    }

    /// Janus' own log (for failures).
    pub fn janus_log(&self) -> String {
        read(&self.dir.join("janus.out"))
    }

    /// Media counters summed over every echo-test handle, from Janus' admin API.
    pub fn janus_media(&self) -> Result<JanusMedia> {
        let admin = |body: serde_json::Value, path: &str| -> Result<serde_json::Value> {
            let out = run_tool(in_ns(&self.inner_ns, "curl").args([
                "-s",
                "--max-time",
                "5",
                "-d",
                &body.to_string(),
                &format!("http://127.0.0.1:7088/admin{path}"),
            ]))?;
            serde_json::from_str(&out).with_context(|| format!("Janus admin answered {out:?}"))
        };
        let secret = |janus: &str| serde_json::json!({"janus": janus, "transaction": "t", "admin_secret": ADMIN_SECRET});
        let mut media = JanusMedia::default();
        let sessions = admin(secret("list_sessions"), "")?;
        for session in sessions["sessions"].as_array().into_iter().flatten() {
            let handles = admin(secret("list_handles"), &format!("/{session}"))?;
            for handle in handles["handles"].as_array().into_iter().flatten() {
                let info = admin(secret("handle_info"), &format!("/{session}/{handle}"))?;
                media.handles += 1;
                add_stream_stats(&info["info"], &mut media);
            }
        }
        Ok(media)
    }
}

impl JanusMedia {
    /// Whether audio and video went both ways, at least `packets` of each.
    pub fn both_ways(&self, packets: u64) -> bool {
        [
            self.audio_packets_in,
            self.video_packets_in,
            self.audio_packets_out,
            self.video_packets_out,
        ]
        .iter()
        .all(|p| *p >= packets)
    }
}

/// Adds the packet counters of a `handle_info` answer: Janus 1.x lists each media
/// line under `webrtc.media` (keyed by m-line index) with `stats.in`/`stats.out`.
pub fn add_stream_stats(info: &serde_json::Value, media: &mut JanusMedia) {
    let lines = info["webrtc"]["media"].as_object().into_iter().flatten();
    for (_, line) in lines {
        let packets = |direction: &str| line["stats"][direction]["packets"].as_u64().unwrap_or(0);
        match line["type"].as_str() {
            Some("audio") => {
                media.audio_packets_in += packets("in");
                media.audio_packets_out += packets("out");
            }
            Some("video") => {
                media.video_packets_in += packets("in");
                media.video_packets_out += packets("out");
            }
            _ => {}
        }
    }
}

/// The elements of `nft -j list set`: `{"concat": [address, protocol, port]}`,
/// bare or inside `{"elem": {"val": ...}}`.
fn parse_destinations(json: &serde_json::Value) -> Vec<TunnelDestination> {
    let elements = json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["set"]["elem"].as_array())
        .flatten();
    let mut destinations: Vec<TunnelDestination> = elements
        .filter_map(|element| {
            let concat = element
                .get("concat")
                .or_else(|| element["elem"]["val"].get("concat"))?
                .as_array()?;
            let text = |v: &serde_json::Value| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            };
            Some(TunnelDestination {
                address: text(concat.first()?)?,
                protocol: text(concat.get(1)?)?,
                port: concat.get(2)?.as_u64()?.try_into().ok()?,
            })
        })
        .collect();
    destinations.sort();
    destinations
}

fn parse_reports(text: &str) -> Vec<PageReport> {
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A certificate for the untrusted server, from a CA the image does not trust.
fn untrusted_certificate(dir: &Path, fixtures: &Path) -> Result<()> {
    let ext = dir.join("untrusted.ext");
    std::fs::write(
        &ext,
        format!("subjectAltName=IP:{UNTRUSTED}\nextendedKeyUsage=serverAuth\n"),
    )?;
    run_tool(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
            ])
            .arg(format!("/CN={UNTRUSTED}"))
            .arg("-keyout")
            .arg(dir.join("untrusted.key"))
            .arg("-out")
            .arg(dir.join("untrusted.csr")),
    )?;
    run_tool(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-in"])
            .arg(dir.join("untrusted.csr"))
            .arg("-CA")
            .arg(fixtures.join("test-other-ca.pem"))
            .arg("-CAkey")
            .arg(fixtures.join("test-other-ca.key"))
            .arg("-CAcreateserial")
            .arg("-CAserial")
            .arg(dir.join("untrusted.srl"))
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(dir.join("untrusted.pem")),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_destinations_from_nft_json() {
        // Abridged from `nft -j list set` (nftables 1.0.6) on the lab's gateway.
        let json = serde_json::json!({"nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"set": {"family": "inet", "name": "seen", "table": "stick_tunnel_watch",
                     "type": ["ipv4_addr", "inet_proto", "inet_service"], "flags": ["dynamic"],
                     "elem": [{"concat": ["10.99.0.10", "tcp", 8443]},
                              {"elem": {"val": {"concat": ["10.99.0.10", "udp", 20004]}}},
                              {"concat": ["10.99.0.10", "tcp", 443]}]}}
        ]});
        let got: Vec<String> = parse_destinations(&json)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "10.99.0.10 tcp/443",
                "10.99.0.10 tcp/8443",
                "10.99.0.10 udp/20004"
            ]
        );
        assert!(parse_destinations(&serde_json::json!({"nftables": []})).is_empty());
    }

    #[test]
    fn handle_info_media_counters() {
        // Abridged from Janus 1.1.2's admin API during an echo test.
        let info = serde_json::json!({"webrtc": {"dtls": {"stats": {"in": {"packets": 2}}},
        "media": {
            "0": {"type": "audio", "stats": {"in": {"packets": 196, "bytes": 16905},
                                             "out": {"packets": 190}}},
            "1": {"type": "video", "stats": {"in": {"packets": 420}, "out": {"packets": 400}}},
            "2": {"type": "data"}
        }}});
        let mut media = JanusMedia::default();
        add_stream_stats(&info, &mut media);
        assert_eq!(
            media,
            JanusMedia {
                handles: 0,
                audio_packets_in: 196,
                video_packets_in: 420,
                audio_packets_out: 190,
                video_packets_out: 400,
            }
        );
    }
}
