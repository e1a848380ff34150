//! A new configuration for a running engine (`baton reload`): the policy,
//! the peers and the limits change; the connections already decided keep
//! their node, their state and their timers.

use baton_handoff::workers::{Reload, ReloadPeer};

use super::api::PeerInfo;
use super::flow::{peer_index, PeerIndex, Role};
use super::{Engine, PeerHealth};
use crate::packet::MacAddr;
use crate::peer_mac::PeerMac;

impl Engine {
    /// Takes the new policy, peers and limits. A peer keeps its index for
    /// the engine's life: added ones come after, removed ones stay in
    /// place, get no new handoffs, and are reported released
    /// ([`super::Output::released`]) once no connection is left with them.
    pub fn reload(&mut self, reload: Reload) {
        let Reload {
            placer,
            peers,
            limits,
        } = reload;
        self.placer = Box::new(placer);
        let cfg = &mut self.cfg;
        cfg.hold_bytes = limits.hold_bytes;
        cfg.hold_segments = limits.hold_segments;
        cfg.hold_timeout = limits.hold_timeout;
        cfg.handoff_timeout = limits.handoff_timeout;
        cfg.linger = limits.linger;
        cfg.idle_timeout = limits.idle_timeout;
        cfg.orphan_timeout = limits.orphan_timeout;
        cfg.max_flows = limits.max_flows;
        let most = usize::from(PeerIndex::MAX) + 1;
        for (i, peer) in peers.into_iter().enumerate().take(most) {
            match self.cfg.peers.get_mut(i) {
                Some(known) if known.name == peer.name => {
                    if !known.mac.is(peer.mac, peer.address) {
                        known.mac = peer_mac(&peer);
                    }
                }
                Some(_) => {
                    // Indices are the control plane's, which never moves a
                    // peer: a mismatch is a bug, and the peer gets nothing.
                    tracing::error!("reload: peer {i} is not {}; ignored", peer.name);
                    continue;
                }
                None => {
                    self.cfg.peers.push(PeerInfo {
                        name: peer.name.clone(),
                        mac: peer_mac(&peer),
                    });
                    self.peers_up.push(false);
                    self.peer_health.push(PeerHealth::default());
                    self.recovery.add_peer();
                }
            }
            self.set_health(i, |h| h.removed = peer.removed);
            let releasing = self.releasing.contains(&i);
            if peer.removed && !releasing {
                self.releasing.push(i);
            } else if !peer.removed && releasing {
                self.releasing.retain(|&p| p != i);
            }
        }
        // A peer added or changed may be one whose MAC is to be learned.
        self.learn_port = self.cfg.peers.iter().find_map(|p| p.mac.learns_on());
    }

    /// `peer`'s release could not be told: it is told again.
    pub fn still_releasing(&mut self, peer: usize) {
        if !self.releasing.contains(&peer) {
            self.releasing.push(peer);
        }
    }

    /// Reports the removed peers no connection is left with.
    pub(super) fn poll_released(&mut self) {
        if self.releasing.is_empty() {
            return;
        }
        let mut releasing = std::mem::take(&mut self.releasing);
        releasing.retain(|&peer| {
            let index = peer_index(peer);
            let held = self.by_origin.keys().any(|(p, _)| *p == index)
                || self
                    .flows
                    .iter()
                    .any(|(_, f)| matches!(&f.role, Role::Origin(o) if o.peer == Some(index)));
            if !held {
                self.out.released.push(peer);
            }
            held
        });
        self.releasing = releasing;
    }
}

fn peer_mac(peer: &ReloadPeer) -> PeerMac {
    match peer.mac {
        Some(mac) => PeerMac::fixed(MacAddr(mac)),
        None => PeerMac::learned(peer.address, peer.control_port),
    }
}
