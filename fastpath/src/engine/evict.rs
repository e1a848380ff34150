//! Room in a full flow table: undecided connections give way, oldest
//! first; established and handed-off ones never do.

use super::flow::{Flow, FlowKey, OriginState, Role};
use super::Engine;
use crate::counters::Counter;

impl Engine {
    /// Whether a new flow fits, evicting the oldest undecided connection
    /// when the table is full. An evicted connection loses nothing: its
    /// held bytes go to the local kernel, which serves it.
    pub(super) fn make_room(&mut self) -> bool {
        if self.flows.len() < self.cfg.max_flows {
            return true;
        }
        while let Some(key) = self.embryonic.pop_front() {
            if !self.is_embryonic(&key) {
                continue;
            }
            if let Some(Flow {
                role: Role::Origin(o),
                ..
            }) = self.remove(&key)
            {
                self.out.to_host.extend(o.setup.held_frames);
                self.count(Counter::FlowsEvicted, 1);
                return true;
            }
        }
        false
    }

    fn is_embryonic(&self, key: &FlowKey) -> bool {
        matches!(
            self.flows.get(key).map(|f| &f.role),
            Some(Role::Origin(o)) if matches!(o.state, OriginState::Handshake | OriginState::Held)
        )
    }

    /// Notes a new origin flow for eviction, dropping entries at the front
    /// that no longer need it (so the queue stays about as long as the
    /// number of undecided connections).
    pub(super) fn note_embryonic(&mut self, key: FlowKey) {
        while let Some(front) = self.embryonic.front() {
            if self.is_embryonic(front) {
                break;
            }
            self.embryonic.pop_front();
        }
        self.embryonic.push_back(key);
    }
}
