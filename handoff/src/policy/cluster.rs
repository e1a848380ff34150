//! The cluster as the selection policy sees it: which peers are up, and
//! their last reported load.

use std::collections::HashMap;

use crate::msg::Load;

/// A peer's last known state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerState {
    /// Whether handoffs may go to this peer (its control channel is up and
    /// its heartbeats arrive). Peers start down.
    pub up: bool,
    /// The peer's last [`Load`] message.
    pub load: Load,
}

/// Node name → up/down and load, plus this node's own load.
///
/// The control plane keeps it current: [`ClusterView::set_up`] as channels
/// come and go, [`ClusterView::set_load`] on every `Load` message, and
/// [`ClusterView::set_local_load`] from this node's own counters. A node
/// the view has never heard of is down.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    peers: HashMap<String, PeerState>,
    local: Load,
}

impl ClusterView {
    pub fn new() -> ClusterView {
        ClusterView::default()
    }

    /// Marks a peer up or down.
    pub fn set_up(&mut self, node: &str, up: bool) {
        self.entry(node).up = up;
    }

    /// Records a peer's load report. It does not change up/down: health is
    /// the control plane's call.
    pub fn set_load(&mut self, node: &str, load: Load) {
        self.entry(node).load = load;
    }

    /// Records this node's own load.
    pub fn set_local_load(&mut self, load: Load) {
        self.local = load;
    }

    /// A peer's state, if the view has heard of it.
    pub fn peer(&self, node: &str) -> Option<PeerState> {
        self.peers.get(node).copied()
    }

    /// This node's own load.
    pub fn local_load(&self) -> Load {
        self.local
    }

    fn entry(&mut self, node: &str) -> &mut PeerState {
        if !self.peers.contains_key(node) {
            self.peers.insert(node.to_owned(), PeerState::default());
        }
        self.peers.get_mut(node).expect("just inserted")
    }
}
