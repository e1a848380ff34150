//! The appliance's parts, built from the config: each library takes its
//! own types, and this is where the config's are turned into them.

use anyhow::{Context, Result};
use baton_config::{ClusterConfig, Config, HandoffConfig, Strategy as ConfigStrategy};
use baton_handoff::placement::PolicyPlacer;
use baton_handoff::policy::{HostPattern, LardConfig, Pool, Rule, Strategy};

/// The classifier and selection policy of `[handoff]`, for one worker.
pub fn placer(
    cfg: &Config,
    cluster: &ClusterConfig,
    handoff: &HandoffConfig,
) -> Result<PolicyPlacer> {
    let pattern = |p: &Option<String>| -> Result<Option<HostPattern>> {
        p.as_deref()
            .map(|p| p.parse::<HostPattern>().map_err(anyhow::Error::from))
            .transpose()
    };
    let rules = handoff
        .rules
        .iter()
        .map(|r| {
            Ok(Rule {
                host: pattern(&r.host)?,
                path_prefix: r.path_prefix.clone(),
                sni: pattern(&r.sni)?,
                pool: r.pool.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()
        .context("`handoff.rules`")?;
    let pools = handoff
        .pools
        .iter()
        .map(|p| Pool {
            name: p.name.clone(),
            nodes: p.nodes.clone(),
            strategy: match p.strategy {
                ConfigStrategy::LocalFirst => Strategy::LocalFirst,
                ConfigStrategy::LeastLoaded => Strategy::LeastLoaded,
                ConfigStrategy::ConsistentHash => Strategy::consistent_hash(),
                ConfigStrategy::Lard => Strategy::Lard(LardConfig {
                    t_low: p.lard_low,
                    t_high: p.lard_high,
                    ..LardConfig::default()
                }),
            },
        })
        .collect();
    let peers = cluster.peers.iter().map(|p| p.name.clone()).collect();
    PolicyPlacer::new(rules, pools, cfg.node.name.clone(), peers).context("handoff policy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_handoff::placement::{Placement, Placer};
    use baton_handoff::{Load, ServiceKind};

    fn config(handoff: &str) -> Config {
        let text = format!(
            r#"
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
peers = [
    {{ name = "n2", address = "198.18.0.12", mac = "02:00:00:00:00:02" }},
    {{ name = "n3", address = "198.18.0.13", mac = "02:00:00:00:00:03" }},
]
[handoff]
services = [{{ port = 80, kind = "http" }}, {{ port = 443, kind = "tls" }}]
{handoff}
"#
        );
        baton_config::parse(&text, "test.toml").unwrap()
    }

    fn placer_of(cfg: &Config) -> Result<PolicyPlacer> {
        placer(
            cfg,
            cfg.cluster.as_ref().unwrap(),
            cfg.handoff.as_ref().unwrap(),
        )
    }

    #[test]
    fn the_configured_rules_pools_and_peers_place_requests() {
        let cfg = config(
            r#"pools = [{ name = "b", nodes = ["n2"] }, { name = "any", nodes = ["n2", "n3"], strategy = "least-loaded" }]
rules = [
    { path_prefix = "/b/", pool = "b" },
    { host = "*.any.example", pool = "any" },
]"#,
        );
        let mut p = placer_of(&cfg).unwrap();
        let get = |path: &str, host: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
        };
        let up = [true, true];
        let own = Load::default();
        assert_eq!(
            p.place(&get("/b/x", "a"), ServiceKind::Http, &up, own),
            Placement::Peer(0)
        );
        p.peer_load(
            0,
            Load {
                active_connections: 50,
                ..Load::default()
            },
        );
        assert_eq!(
            p.place(&get("/", "www.any.example"), ServiceKind::Http, &up, own),
            Placement::Peer(1),
            "least-loaded, peers in the config's order"
        );
        assert_eq!(
            p.place(&get("/x", "a"), ServiceKind::Http, &up, own),
            Placement::Local
        );
    }

    #[test]
    fn a_policy_the_handoff_crate_refuses_is_named_as_such() {
        // Past the config's own checks: the same pool twice.
        let mut cfg = config(r#"pools = [{ name = "b", nodes = ["n2"] }]"#);
        let handoff = cfg.handoff.as_mut().unwrap();
        handoff.pools.push(handoff.pools[0].clone());
        let err = placer_of(&cfg).err().unwrap();
        assert!(
            format!("{err:#}").starts_with("handoff policy: "),
            "{err:#}"
        );
    }
}
