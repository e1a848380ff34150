//! Where a request is served: the handoff crate's classifier and selection
//! policy, behind the engine's `Placer` interface.

use anyhow::{Context, Result};
use baton_config::{ClusterConfig, Config, HandoffConfig, Strategy as ConfigStrategy};
use baton_fastpath::engine::{Load, Placement, Placer, ServiceKind};
use baton_handoff::policy::{
    ClusterView, Decision, HostPattern, LardConfig, Policy, Pool, Rule, Strategy,
};
use baton_handoff::{classify, Classification};

/// The configured policy, and the cluster as this worker last heard of it.
pub struct PolicyPlacer {
    policy: Policy,
    view: ClusterView,
    /// Peer names, by the engine's peer index.
    peers: Vec<String>,
}

impl PolicyPlacer {
    pub fn new(
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
        let policy = Policy::new(rules, pools, cfg.node.name.clone()).context("handoff policy")?;
        Ok(PolicyPlacer {
            policy,
            view: ClusterView::new(),
            peers: cluster.peers.iter().map(|p| p.name.clone()).collect(),
        })
    }
}

impl Placer for PolicyPlacer {
    fn place(&mut self, held: &[u8], kind: ServiceKind, peers_up: &[bool], own: Load) -> Placement {
        let request = match classify(held, kind) {
            Classification::NeedMore => return Placement::NeedMore,
            Classification::Invalid(_) => return Placement::Invalid,
            Classification::Done(request) => request,
        };
        for (name, up) in self.peers.iter().zip(peers_up) {
            self.view.set_up(name, *up);
        }
        self.view.set_local_load(own);
        match self.policy.decide(&request, &self.view) {
            Decision::Local => Placement::Local,
            Decision::Handoff { node } => match self.peers.iter().position(|p| *p == node) {
                Some(i) => Placement::Peer(i),
                None => Placement::Local,
            },
        }
    }

    fn peer_load(&mut self, peer: usize, load: Load) {
        if let Some(name) = self.peers.get(peer) {
            self.view.set_load(name, load);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placer(extra: &str) -> PolicyPlacer {
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
{extra}
"#
        );
        let cfg = baton_config::parse(&text, "test.toml").unwrap();
        PolicyPlacer::new(
            &cfg,
            cfg.cluster.as_ref().unwrap(),
            cfg.handoff.as_ref().unwrap(),
        )
        .unwrap()
    }

    const UP: [bool; 2] = [true, true];

    #[test]
    fn rules_from_the_config_place_requests() {
        let mut p = placer(
            r#"pools = [{ name = "b", nodes = ["n2"] }, { name = "c", nodes = ["n3"] }, { name = "mine", nodes = ["n1", "n2"] }]
rules = [
    { path_prefix = "/b/", pool = "b" },
    { host = "*.c.example", pool = "c" },
    { path_prefix = "/shared/", pool = "mine" },
]"#,
        );
        let get = |path: &str, host: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
        };
        let own = Load::default();
        assert_eq!(
            p.place(&get("/b/x", "a"), ServiceKind::Http, &UP, own),
            Placement::Peer(0)
        );
        assert_eq!(
            p.place(&get("/x", "www.c.example"), ServiceKind::Http, &UP, own),
            Placement::Peer(1)
        );
        assert_eq!(
            p.place(&get("/shared/x", "a"), ServiceKind::Http, &UP, own),
            Placement::Local,
            "local-first"
        );
        assert_eq!(
            p.place(&get("/other", "a"), ServiceKind::Http, &UP, own),
            Placement::Local,
            "no rule"
        );
        assert_eq!(
            p.place(b"GET /b/x HTTP/1.1\r\nHo", ServiceKind::Http, &UP, own),
            Placement::NeedMore
        );
        assert_eq!(
            p.place(b"\x16garbage\r\n\r\n", ServiceKind::Http, &UP, own),
            Placement::Invalid
        );
        // A pool whose members are all down is served here.
        assert_eq!(
            p.place(&get("/b/x", "a"), ServiceKind::Http, &[false, true], own),
            Placement::Local
        );
    }

    #[test]
    fn path_and_sni_rules_side_by_side() {
        let mut p = placer(
            r#"pools = [{ name = "n1", nodes = ["n1"] }, { name = "n2", nodes = ["n2"] }]
rules = [
    { path_prefix = "/n1/", pool = "n1" },
    { sni = "n1.baton.test", pool = "n1" },
    { path_prefix = "/n2/", pool = "n2" },
    { sni = "n2.baton.test", pool = "n2" },
]"#,
        );
        let req = b"GET /n2/whoami.txt HTTP/1.1\r\nHost: 198.18.0.50\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            p.place(req, ServiceKind::Http, &UP, Load::default()),
            Placement::Peer(0)
        );
    }

    #[test]
    fn loads_reported_by_peers_steer_least_loaded() {
        let mut p = placer(
            r#"pools = [{ name = "any", nodes = ["n2", "n3"], strategy = "least-loaded" }]
rules = [{ path_prefix = "/", pool = "any" }]"#,
        );
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        p.peer_load(
            0,
            Load {
                active_connections: 50,
                ..Load::default()
            },
        );
        p.peer_load(
            1,
            Load {
                active_connections: 5,
                ..Load::default()
            },
        );
        assert_eq!(
            p.place(req, ServiceKind::Http, &UP, Load::default()),
            Placement::Peer(1)
        );
        p.peer_load(
            1,
            Load {
                active_connections: 500,
                ..Load::default()
            },
        );
        assert_eq!(
            p.place(req, ServiceKind::Http, &UP, Load::default()),
            Placement::Peer(0)
        );
    }
}
