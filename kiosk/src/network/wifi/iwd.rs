//! iwd on the system bus (zbus, blocking): its Wi-Fi stations, the networks a
//! scan found, and a connection with the passphrase the person typed, handed to
//! iwd by our agent when it asks. Parsing iwd's objects is apart from the bus.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zbus::blocking::{fdo::ObjectManagerProxy, Connection, Proxy};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

const SERVICE: &str = "net.connman.iwd";
const DEVICE: &str = "net.connman.iwd.Device";
const STATION: &str = "net.connman.iwd.Station";
const NETWORK: &str = "net.connman.iwd.Network";
const AGENT_MANAGER: &str = "net.connman.iwd.AgentManager";
/// Where iwd keeps its AgentManager.
const AGENT_MANAGER_PATH: &str = "/net/connman/iwd";
/// Our agent's object: iwd asks it for a network's passphrase.
const AGENT_PATH: &str = "/de/secure_stick/wifi_agent";

/// What can go wrong talking to iwd.
#[derive(Debug, thiserror::Error)]
pub enum IwdError {
    #[error("the system bus: {0}")]
    Bus(#[from] zbus::Error),
    #[error("iwd: {0}")]
    Fdo(#[from] zbus::fdo::Error),
    #[error("iwd's {object}: {reason}")]
    Object { object: String, reason: String },
}

/// How a network lets stations in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Open,
    /// WPA2/WPA3-Personal: a passphrase.
    Psk,
    /// WPA-Enterprise (802.1X): needs a provisioning file, not a passphrase.
    Enterprise,
    /// WEP or anything else iwd names.
    Other,
}

impl Security {
    fn from_iwd(kind: &str) -> Security {
        match kind {
            "open" | "owe" => Security::Open,
            "psk" => Security::Psk,
            "8021x" => Security::Enterprise,
            _ => Security::Other,
        }
    }

    /// The stick can join it with what a person can type.
    pub fn joinable(self) -> bool {
        matches!(self, Security::Open | Security::Psk)
    }
}

/// A network a scan found, as iwd orders them (best first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WifiNetwork {
    pub path: String,
    pub name: String,
    pub security: Security,
    /// Signal strength in dBm.
    pub signal_dbm: i16,
    /// iwd has its passphrase (preset, or typed before in this boot).
    pub known: bool,
}

/// A Wi-Fi interface in station mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    pub path: String,
    pub interface: String,
    /// The MAC address it uses now (iwd gives each network its own).
    pub address: String,
    /// `connected`, `connecting`, `disconnected`, `roaming`, ...
    pub state: String,
    /// The network it is connected or connecting to.
    pub network: Option<String>,
}

/// iwd's objects: interface name -> property name -> value, by object path.
pub type Objects = HashMap<String, HashMap<String, HashMap<String, OwnedValue>>>;

fn text(props: &HashMap<String, OwnedValue>, key: &str) -> Option<String> {
    match &**props.get(key)? {
        zbus::zvariant::Value::Str(s) => Some(s.to_string()),
        zbus::zvariant::Value::ObjectPath(p) => Some(p.to_string()),
        _ => None,
    }
}

/// The stations among iwd's objects (devices in station mode), by interface name.
pub fn stations(objects: &Objects) -> Vec<Station> {
    let mut found: Vec<Station> = objects
        .iter()
        .filter_map(|(path, interfaces)| {
            let device = interfaces.get(DEVICE)?;
            let station = interfaces.get(STATION)?;
            Some(Station {
                path: path.clone(),
                interface: text(device, "Name")?,
                address: text(device, "Address").unwrap_or_default(),
                state: text(station, "State").unwrap_or_default(),
                network: text(station, "ConnectedNetwork")
                    .filter(|p| p != "/")
                    .and_then(|p| text(objects.get(&p)?.get(NETWORK)?, "Name")),
            })
        })
        .collect();
    found.sort_by(|a, b| a.interface.cmp(&b.interface));
    found
}

/// The networks `ordered` (iwd's `GetOrderedNetworks`: path and 100 x dBm)
/// names, with what `objects` says of each; one entry per name (the strongest).
pub fn networks(objects: &Objects, ordered: &[(String, i16)]) -> Vec<WifiNetwork> {
    let mut found: Vec<WifiNetwork> = Vec::new();
    for (path, strength) in ordered {
        let Some(props) = objects.get(path).and_then(|o| o.get(NETWORK)) else {
            continue;
        };
        let Some(name) = text(props, "Name") else {
            continue;
        };
        if found.iter().any(|n| n.name == name) {
            continue;
        }
        found.push(WifiNetwork {
            path: path.clone(),
            name,
            security: Security::from_iwd(&text(props, "Type").unwrap_or_default()),
            signal_dbm: strength / 100,
            known: text(props, "KnownNetwork").is_some_and(|p| p != "/"),
        });
    }
    found
}

/// Why a connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The network's handshake failed after iwd had the passphrase: most often
    /// a wrong passphrase.
    Refused(String),
    /// Anything else (out of range, aborted, iwd gone).
    Failed(String),
}

/// The passphrase our agent hands iwd when it asks, and whether it asked.
#[derive(Debug, Default)]
struct Secret {
    passphrase: Option<String>,
    asked: bool,
}

/// iwd's agent: answers `RequestPassphrase` with what the person typed.
#[derive(Debug)]
struct Agent {
    secret: Arc<Mutex<Secret>>,
}

#[zbus::interface(name = "net.connman.iwd.Agent")]
impl Agent {
    fn release(&self) {}

    fn request_passphrase(&self, _network: OwnedObjectPath) -> zbus::fdo::Result<String> {
        let mut secret = self
            .secret
            .lock()
            .map_err(|_| zbus::fdo::Error::Failed("poisoned".into()))?;
        secret.asked = true;
        secret
            .passphrase
            .clone()
            .ok_or_else(|| zbus::fdo::Error::Failed("no passphrase typed".into()))
    }

    fn cancel(&self, reason: String) {
        tracing::info!("iwd cancelled its question: {reason}");
    }
}

/// A connection to iwd with our agent registered.
#[derive(Debug)]
pub struct Iwd {
    bus: Connection,
    secret: Arc<Mutex<Secret>>,
}

impl Iwd {
    /// Connects to the system bus and registers the agent with iwd.
    pub fn connect() -> Result<Iwd, IwdError> {
        let bus = Connection::system()?;
        let secret = Arc::new(Mutex::new(Secret::default()));
        bus.object_server().at(
            AGENT_PATH,
            Agent {
                secret: secret.clone(),
            },
        )?;
        let manager = Proxy::new(&bus, SERVICE, AGENT_MANAGER_PATH, AGENT_MANAGER)?;
        let path = zbus::zvariant::ObjectPath::from_static_str_unchecked(AGENT_PATH);
        manager.call_method("RegisterAgent", &(path,))?;
        Ok(Iwd { bus, secret })
    }

    /// All of iwd's objects now.
    pub fn objects(&self) -> Result<Objects, IwdError> {
        let manager = ObjectManagerProxy::new(&self.bus, SERVICE, "/")?;
        Ok(manager
            .get_managed_objects()?
            .into_iter()
            .map(|(path, interfaces)| {
                (
                    path.to_string(),
                    interfaces
                        .into_iter()
                        .map(|(name, props)| (name.to_string(), props))
                        .collect(),
                )
            })
            .collect())
    }

    fn station(&self, station: &Station) -> Result<Proxy<'static>, IwdError> {
        Ok(Proxy::new(
            &self.bus,
            SERVICE,
            station.path.clone(),
            STATION,
        )?)
    }

    /// Asks for a new scan; iwd says no while one runs (not an error here).
    pub fn scan(&self, station: &Station) -> Result<(), IwdError> {
        match self.station(station)?.call_method("Scan", &()) {
            Ok(_) => Ok(()),
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str().ends_with(".Busy") => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// The networks the last scans found, best first.
    pub fn networks(&self, station: &Station) -> Result<Vec<WifiNetwork>, IwdError> {
        let reply = self
            .station(station)?
            .call_method("GetOrderedNetworks", &())?;
        let ordered: Vec<(OwnedObjectPath, i16)> = reply.body().deserialize()?;
        let ordered: Vec<(String, i16)> = ordered
            .into_iter()
            .map(|(path, strength)| (path.to_string(), strength))
            .collect();
        Ok(networks(&self.objects()?, &ordered))
    }

    /// Connects to `network`, giving iwd `passphrase` if it asks; blocks until
    /// iwd says connected or why not.
    pub fn join(
        &self,
        network: &WifiNetwork,
        passphrase: Option<String>,
    ) -> Result<(), ConnectFailure> {
        if let Ok(mut secret) = self.secret.lock() {
            *secret = Secret {
                passphrase,
                asked: false,
            };
        }
        let result = Proxy::new(&self.bus, SERVICE, network.path.clone(), NETWORK)
            .and_then(|proxy| proxy.call_method("Connect", &()));
        let asked = match self.secret.lock() {
            Ok(mut secret) => {
                let asked = secret.asked;
                *secret = Secret::default();
                asked
            }
            Err(_) => false,
        };
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                let reason = match &err {
                    zbus::Error::MethodError(name, detail, _) => {
                        format!("{name}: {}", detail.as_deref().unwrap_or(""))
                    }
                    other => other.to_string(),
                };
                Err(classify_failure(
                    network.security,
                    asked || network.known,
                    reason,
                ))
            }
        }
    }
}

/// A PSK network refused after iwd had a passphrase: the passphrase; else the
/// network or the radio.
pub fn classify_failure(
    security: Security,
    had_passphrase: bool,
    reason: String,
) -> ConnectFailure {
    if security == Security::Psk && had_passphrase && !reason.contains(".Aborted") {
        ConnectFailure::Refused(reason)
    } else {
        ConnectFailure::Failed(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::zvariant::{ObjectPath, Value};

    fn value(v: Value<'_>) -> OwnedValue {
        OwnedValue::try_from(v).expect("owned value")
    }

    fn props(entries: &[(&str, Value<'static>)]) -> HashMap<String, OwnedValue> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), value(v.clone())))
            .collect()
    }

    fn path(p: &'static str) -> Value<'static> {
        Value::ObjectPath(ObjectPath::from_static_str(p).expect("path"))
    }

    /// One station `wlan0`, connected to "Home", and three networks.
    fn lab_objects() -> Objects {
        let mut objects = Objects::new();
        objects.insert(
            "/net/connman/iwd/0/4".into(),
            HashMap::from([
                (
                    DEVICE.to_string(),
                    props(&[
                        ("Name", Value::from("wlan0")),
                        ("Address", Value::from("02:00:00:00:00:00")),
                    ]),
                ),
                (
                    STATION.to_string(),
                    props(&[
                        ("State", Value::from("connected")),
                        (
                            "ConnectedNetwork",
                            path("/net/connman/iwd/0/4/486f6d65_psk"),
                        ),
                    ]),
                ),
            ]),
        );
        for (p, name, kind, known) in [
            ("/net/connman/iwd/0/4/486f6d65_psk", "Home", "psk", true),
            ("/net/connman/iwd/0/4/43616665_open", "Cafe", "open", false),
            (
                "/net/connman/iwd/0/4/436f7270_8021x",
                "Corp",
                "8021x",
                false,
            ),
        ] {
            let mut network = props(&[("Name", Value::from(name)), ("Type", Value::from(kind))]);
            if known {
                network.insert(
                    "KnownNetwork".into(),
                    value(path("/net/connman/iwd/486f6d65_psk")),
                );
            }
            objects.insert(p.into(), HashMap::from([(NETWORK.to_string(), network)]));
        }
        objects
    }

    #[test]
    fn stations_name_their_interface_and_network() {
        assert_eq!(
            stations(&lab_objects()),
            vec![Station {
                path: "/net/connman/iwd/0/4".into(),
                interface: "wlan0".into(),
                address: "02:00:00:00:00:00".into(),
                state: "connected".into(),
                network: Some("Home".into()),
            }]
        );
        assert_eq!(stations(&Objects::new()), vec![]);
    }

    #[test]
    fn networks_follow_iwds_order_with_signal_and_security() {
        let ordered = [
            ("/net/connman/iwd/0/4/43616665_open".to_string(), -4500),
            ("/net/connman/iwd/0/4/486f6d65_psk".to_string(), -6000),
            ("/net/connman/iwd/0/4/436f7270_8021x".to_string(), -8000),
            // Gone between the two calls: left out.
            ("/net/connman/iwd/0/4/gone_psk".to_string(), -3000),
        ];
        let found = networks(&lab_objects(), &ordered);
        let summary: Vec<(&str, Security, i16, bool)> = found
            .iter()
            .map(|n| (n.name.as_str(), n.security, n.signal_dbm, n.known))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Cafe", Security::Open, -45, false),
                ("Home", Security::Psk, -60, true),
                ("Corp", Security::Enterprise, -80, false),
            ]
        );
    }

    #[test]
    fn a_refusal_is_the_passphrase_only_where_one_was_given() {
        let reason = || "net.connman.iwd.Failed: Operation failed".to_string();
        for (security, had, refused) in [
            (Security::Psk, true, true),
            (Security::Psk, false, false),
            (Security::Open, true, false),
        ] {
            let failure = classify_failure(security, had, reason());
            assert_eq!(
                matches!(failure, ConnectFailure::Refused(_)),
                refused,
                "{security:?} {had}"
            );
        }
        assert_eq!(
            classify_failure(Security::Psk, true, "net.connman.iwd.Aborted: x".into()),
            ConnectFailure::Failed("net.connman.iwd.Aborted: x".into())
        );
    }
}
