//! Where a held request is served: the interface between the data plane,
//! which holds the request bytes, and whatever classifies them and applies
//! the selection policy.

use crate::classify::ServiceKind;
use crate::msg::Load;

/// Where a held request should be served, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Not enough bytes yet to decide.
    NeedMore,
    /// Serve here.
    Local,
    /// Hand off to the peer with this index (in the order the data plane
    /// was given its peers).
    Peer(usize),
    /// Not HTTP or TLS as the service says: serve here, unclassified.
    Invalid,
}

/// Decides where requests go: request classification and policy.
pub trait Placer: Send {
    /// Where the request in `held` should be served. `peers_up[i]` says
    /// whether peer `i` can take handoffs; `own` is this node's load.
    fn place(&mut self, held: &[u8], kind: ServiceKind, peers_up: &[bool], own: Load) -> Placement;

    /// A peer's load report.
    fn peer_load(&mut self, _peer: usize, _load: Load) {}
}
