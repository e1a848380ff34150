//! Where a request is served: the handoff crate's classifier and policy,
//! behind the engine's `Placer` interface.

use anyhow::Result;
use baton_config::{ClusterConfig, Config, HandoffConfig};
use baton_fastpath::engine::{Load, Placement, Placer, ServiceKind};
use baton_handoff::{classify, Classification, Request};

pub struct PolicyPlacer {
    node: String,
    peers: Vec<String>,
    rules: Vec<(String, Vec<String>)>,
}

impl PolicyPlacer {
    pub fn new(
        cfg: &Config,
        cluster: &ClusterConfig,
        handoff: &HandoffConfig,
    ) -> Result<PolicyPlacer> {
        Ok(PolicyPlacer {
            node: cfg.node.name.clone(),
            peers: cluster.peers.iter().map(|p| p.name.clone()).collect(),
            rules: handoff
                .rules
                .iter()
                .filter_map(|r| {
                    let pool = handoff.pools.iter().find(|p| p.name == r.pool)?;
                    Some((
                        r.path_prefix.clone().unwrap_or_default(),
                        pool.nodes.clone(),
                    ))
                })
                .collect(),
        })
    }
}

impl Placer for PolicyPlacer {
    fn place(
        &mut self,
        held: &[u8],
        kind: ServiceKind,
        _peers_up: &[bool],
        _own: Load,
    ) -> Placement {
        match classify(held, kind) {
            Classification::NeedMore => Placement::NeedMore,
            Classification::Invalid(_) => Placement::Invalid,
            Classification::Done(Request::Http { path, .. }) => {
                for (prefix, nodes) in &self.rules {
                    if path.starts_with(prefix.as_str()) {
                        if nodes.contains(&self.node) {
                            return Placement::Local;
                        }
                        if let Some(i) = nodes
                            .first()
                            .and_then(|n| self.peers.iter().position(|p| p == n))
                        {
                            return Placement::Peer(i);
                        }
                    }
                }
                Placement::Local
            }
            Classification::Done(_) => Placement::Local,
        }
    }
}
