//! The egress policy the kernel actually enforces, read back with `nft -j`.
//!
//! The kiosk starts no network unless every hook of the stick's table drops by
//! default; the report says what it found and how many packets were dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stick_manifest::network::EGRESS_TABLE;

/// Hooks that must exist with policy drop.
const REQUIRED_HOOKS: [&str; 3] = ["input", "output", "forward"];

/// What `nft -j list table inet stick_egress` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EgressReport {
    pub event: &'static str,
    pub table: String,
    /// Every required hook present with policy drop.
    pub enforcing: bool,
    /// Hook -> default policy.
    pub chains: BTreeMap<String, String>,
    pub rules: usize,
    /// Packets counted by the rules that drop (the policy's last rules count them).
    pub dropped_packets: u64,
    /// Why the table cannot be read, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NftOutput {
    nftables: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct NftChain {
    table: String,
    #[serde(default)]
    hook: Option<String>,
    #[serde(default)]
    policy: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NftRule {
    table: String,
    expr: Vec<serde_json::Value>,
}

impl EgressReport {
    /// Parses `nft -j list table inet stick_egress` output.
    pub fn parse(json: &str) -> Result<EgressReport, String> {
        let output: NftOutput =
            serde_json::from_str(json).map_err(|e| format!("nft printed no ruleset JSON: {e}"))?;
        let mut chains = BTreeMap::new();
        let mut rules = 0;
        let mut dropped_packets = 0;
        for item in &output.nftables {
            if let Some(chain) = item.get("chain") {
                let chain: NftChain = serde_json::from_value(chain.clone())
                    .map_err(|e| format!("unexpected chain in nft output: {e}"))?;
                if let (true, Some(hook)) = (chain.table == EGRESS_TABLE, chain.hook) {
                    chains.insert(hook, chain.policy.unwrap_or_else(|| "accept".into()));
                }
            } else if let Some(rule) = item.get("rule") {
                let rule: NftRule = serde_json::from_value(rule.clone())
                    .map_err(|e| format!("unexpected rule in nft output: {e}"))?;
                if rule.table != EGRESS_TABLE {
                    continue;
                }
                rules += 1;
                let drops = rule.expr.iter().any(|e| e.get("drop").is_some());
                let counted = rule
                    .expr
                    .iter()
                    .find_map(|e| e.get("counter")?.get("packets")?.as_u64());
                if let (true, Some(packets)) = (drops, counted) {
                    dropped_packets += packets;
                }
            }
        }
        let enforcing = REQUIRED_HOOKS
            .iter()
            .all(|hook| chains.get(*hook).map(String::as_str) == Some("drop"));
        Ok(EgressReport {
            event: "egress",
            table: format!("inet {EGRESS_TABLE}"),
            enforcing,
            chains,
            rules,
            dropped_packets,
            error: None,
        })
    }

    /// Reads the live table.
    pub fn observe() -> EgressReport {
        let result = crate::command::run("nft", &["-j", "list", "table", "inet", EGRESS_TABLE])
            .map_err(|e| e.to_string())
            .and_then(|json| EgressReport::parse(&json));
        result.unwrap_or_else(|error| EgressReport {
            event: "egress",
            table: format!("inet {EGRESS_TABLE}"),
            enforcing: false,
            chains: BTreeMap::new(),
            rules: 0,
            dropped_packets: 0,
            error: Some(error),
        })
    }

    pub fn console_line(&self) -> String {
        crate::console::console_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nft(chains: &[(&str, &str)], drop_counter: u64) -> String {
        let mut items = vec![
            r#"{"metainfo":{"version":"1.1.3","json_schema_version":1}}"#.to_string(),
            r#"{"table":{"family":"inet","name":"stick_egress","handle":1}}"#.to_string(),
        ];
        for (hook, policy) in chains {
            items.push(format!(
                r#"{{"chain":{{"family":"inet","table":"stick_egress","name":"{hook}","handle":2,"type":"filter","hook":"{hook}","prio":0,"policy":"{policy}"}}}}"#
            ));
        }
        items.push(r#"{"rule":{"family":"inet","table":"stick_egress","chain":"output","handle":5,"expr":[{"match":{"op":"==","left":{"meta":{"key":"oifname"}},"right":"lo"}},{"accept":null}]}}"#.into());
        items.push(format!(
            r#"{{"rule":{{"family":"inet","table":"stick_egress","chain":"output","handle":6,"expr":[{{"counter":{{"packets":{drop_counter},"bytes":0}}}},{{"drop":null}}]}}}}"#
        ));
        format!(r#"{{"nftables":[{}]}}"#, items.join(","))
    }

    #[test]
    fn enforcing_needs_every_hook_dropping() {
        let all = [("input", "drop"), ("output", "drop"), ("forward", "drop")];
        type Chains<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(&str, Chains, bool)] = &[
            ("all drop", &all, true),
            (
                "output accepts",
                &[("input", "drop"), ("output", "accept"), ("forward", "drop")],
                false,
            ),
            (
                "no forward chain",
                &[("input", "drop"), ("output", "drop")],
                false,
            ),
            ("no chains", &[], false),
        ];
        for (name, chains, want) in cases {
            let report = EgressReport::parse(&nft(chains, 7)).expect(name);
            assert_eq!(report.enforcing, *want, "{name}");
            assert_eq!(report.rules, 2, "{name}");
            assert_eq!(report.dropped_packets, 7, "{name}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(EgressReport::parse("Error: No such file or directory").is_err());
    }
}
