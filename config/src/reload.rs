//! What a running node takes from a new config (`baton reload`, SIGHUP),
//! and what only a restart changes: one list, read by the running node and
//! by the docs' table (docs/config.md, "Reload").

use toml::Value;

use crate::schema::Config;

/// The keys `baton reload` applies to a running node. Every other key
/// needs a restart: a reload that changes one is refused, and names it.
pub const RELOADABLE: &[&str] = &[
    "node.log_level",
    "cluster.peers",
    "handoff.hold_bytes",
    "handoff.hold_segments",
    "handoff.hold_timeout_ms",
    "handoff.handoff_timeout_ms",
    "handoff.linger_ms",
    "handoff.orphan_timeout_ms",
    "handoff.idle_timeout_s",
    "handoff.max_flows",
    "handoff.rules",
    "handoff.pools",
];

/// What differs between a running config and a new one, by dotted key
/// (`lcores.workers`), each list sorted: the keys a reload applies, and
/// those only a restart can change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub reloadable: Vec<String>,
    pub fixed: Vec<String>,
}

impl Changes {
    /// Compares `old`, the running config, with `new`.
    pub fn between(old: &Config, new: &Config) -> Changes {
        let mut changes = Changes::default();
        let value = |c: &Config| Value::try_from(c).expect("every config value has a TOML form");
        changes.walk("", &value(old), &value(new));
        changes
    }

    pub fn is_empty(&self) -> bool {
        self.reloadable.is_empty() && self.fixed.is_empty()
    }

    fn walk(&mut self, at: &str, old: &Value, new: &Value) {
        let reloadable = RELOADABLE.contains(&at);
        match (old, new) {
            (Value::Table(a), Value::Table(b)) if !reloadable => {
                let mut keys: Vec<&String> = a.keys().collect();
                keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
                let missing = Value::Table(Default::default());
                for key in keys {
                    let path = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    match (a.get(key), b.get(key)) {
                        (Some(x), Some(y)) => self.walk(&path, x, y),
                        // A section or key added or removed.
                        (x, y) => self.walk(&path, x.unwrap_or(&missing), y.unwrap_or(&missing)),
                    }
                }
            }
            (a, b) if a == b => {}
            _ if reloadable => self.reloadable.push(at.to_string()),
            _ => self.fixed.push(at.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[node]
name = "n1"
[lcores]
workers = [1]
[wire]
vdev = "net_af_packet0,iface=wire0"
[host]
address = "198.18.0.11/24"
[cluster]
psk_file = "/etc/baton/cluster.key"
peers = [{ name = "n2", address = "198.18.0.12" }]
[handoff]
services = [{ port = 80, kind = "http" }]
pools = [{ name = "b", nodes = ["n2"] }]
rules = [{ path_prefix = "/b/", pool = "b" }]
"#;

    fn changes(edit: impl Fn(&str) -> String) -> Changes {
        let old = crate::parse(BASE, "old.toml").unwrap();
        let new = crate::parse(&edit(BASE), "new.toml").unwrap();
        Changes::between(&old, &new)
    }

    #[test]
    fn the_docs_name_every_key_a_reload_applies() {
        let doc = include_str!("../../docs/config.md");
        let section = &doc[doc.find("## Reload").expect("a Reload section")..];
        for key in RELOADABLE {
            let short = key.rsplit('.').next().unwrap();
            assert!(
                section.contains(&format!("`{key}`")) || section.contains(&format!("`{short}`")),
                "docs/config.md, Reload, lacks {key}"
            );
        }
    }

    #[test]
    fn the_same_config_changes_nothing() {
        assert!(changes(|t| t.to_string()).is_empty());
    }

    #[test]
    fn rules_pools_peers_timeouts_and_the_log_level_reload() {
        let c = changes(|t| {
            t.replace(
                "[{ name = \"n2\", address = \"198.18.0.12\" }]",
                "[{ name = \"n2\", address = \"198.18.0.12\" }, { name = \"n3\", address = \"198.18.0.13\" }]",
            )
            .replace("pool = \"b\" }]", "pool = \"c\" }]")
            .replace("[{ name = \"b\", nodes = [\"n2\"] }]", "[{ name = \"c\", nodes = [\"n3\"] }]")
            .replace("name = \"n1\"", "name = \"n1\"\nlog_level = \"debug\"")
                + "max_flows = 100\n"
        });
        assert_eq!(
            c.reloadable,
            [
                "cluster.peers",
                "handoff.max_flows",
                "handoff.pools",
                "handoff.rules",
                "node.log_level"
            ]
        );
        assert!(c.fixed.is_empty(), "{c:?}");
    }

    #[test]
    fn what_only_a_restart_changes_is_named_by_its_key() {
        let c = changes(|t| {
            t.replace("workers = [1]", "workers = [1, 2]")
                .replace("port = 80", "port = 8080")
                + "[metrics]\nlisten = \"127.0.0.1:9100\"\n"
        });
        assert_eq!(
            c.fixed,
            ["handoff.services", "lcores.workers", "metrics.listen"]
        );
        assert!(c.reloadable.is_empty());
    }
}
