//! Where a request is served: the handoff crate's classifier and policy,
//! behind the engine's `Placer` interface.

use anyhow::Result;
use baton_config::{ClusterConfig, Config, HandoffConfig};
use baton_fastpath::engine::{Load, Placement, Placer, ServiceKind};
use baton_handoff::{classify, Classification};

pub struct PolicyPlacer {
    peers: Vec<String>,
}

impl PolicyPlacer {
    pub fn new(_cfg: &Config, cluster: &ClusterConfig, _handoff: &HandoffConfig) -> Result<PolicyPlacer> {
        Ok(PolicyPlacer {
            peers: cluster.peers.iter().map(|p| p.name.clone()).collect(),
        })
    }
}

impl Placer for PolicyPlacer {
    fn place(&mut self, held: &[u8], kind: ServiceKind, _peers_up: &[bool], _own: Load) -> Placement {
        match classify(held, kind) {
            Classification::NeedMore => Placement::NeedMore,
            Classification::Invalid(_) => Placement::Invalid,
            Classification::Done(_) => {
                let _ = &self.peers;
                Placement::Local
            }
        }
    }
}
