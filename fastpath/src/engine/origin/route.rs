//! Per-request routing of an HTTP connection at its origin: every request
//! the client sends is found and decided as its head arrives, and goes to
//! the node the policy picks for it.
//!
//! The client's stream is parsed once, in order, as it arrives
//! ([`Requests`]); each new request is decided at once and planned. The
//! owner of the connection gets the client's bytes up to the first planned
//! request that is for another node; from there on, bytes are held while
//! the connection moves (see the origin machine's `Quiescing`). So a
//! pipeline of requests for several nodes is served in order: each move
//! starts once the one before it is done.

use std::collections::VecDeque;
use std::time::Instant;

use baton_handoff::http1::{RequestHead, Requests, Seen};

use crate::engine::flow::PeerIndex;
use crate::engine::owner::Owned;
use crate::engine::replay::Ends;
use crate::packet::SeqNum;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) enum Dest {
    /// The kernel here.
    Here,
    /// A peer.
    Peer(PeerIndex),
    /// No node can serve it: the client is told so, in sequence.
    Nowhere,
}

/// A request found and decided, whose bytes have not yet gone to its node.
#[derive(Debug, Clone, Copy)]
pub(in crate::engine) struct Planned {
    pub start: SeqNum,
    pub dest: Dest,
    pub head: RequestHead,
}

/// An HTTP connection's routing, from its first decision on.
pub(in crate::engine) struct Route {
    /// The client's stream, read in order as it arrives.
    pub requests: Requests,
    /// Requests found whose bytes have not gone to their node yet, oldest
    /// first: the first of them is the one a move is for.
    pub plan: VecDeque<Planned>,
    /// While the kernel here serves the connection: what it was given, and
    /// how far its responses went.
    pub owned: Option<Owned>,
    /// The kernel here refused the current move's replay.
    pub tried_here: bool,
    /// When the current move started.
    pub move_started: Option<Instant>,
    /// Why requests are no longer routed (the connection stays with its
    /// owner), if so.
    pub pinned: Option<&'static str>,
}

impl Route {
    /// Routing from the connection's first request, which starts at `at`.
    pub fn new(at: SeqNum) -> Route {
        Route {
            requests: Requests::new(at),
            plan: VecDeque::new(),
            owned: None,
            tried_here: false,
            move_started: None,
            pinned: None,
        }
    }

    /// Reads a client segment's data, deciding each request it completes
    /// with `decide` (given the request's head bytes).
    pub fn read(
        &mut self,
        seq: SeqNum,
        payload: &[u8],
        mut decide: impl FnMut(&[u8]) -> Dest,
    ) -> Result<(), ()> {
        if self.pinned.is_some() {
            return Ok(());
        }
        loop {
            match self.requests.step(seq, payload) {
                Seen::Request { start, head } => {
                    let dest = decide(self.requests.head());
                    self.plan.push_back(Planned { start, dest, head });
                }
                Seen::More => return Ok(()),
                Seen::Gap => return Err(()),
                Seen::Endless(why) => {
                    self.pin(why);
                    return Ok(());
                }
            }
        }
    }

    /// Gives the owner (`owner`) every planned request that is its own, up
    /// to the first that is not: where that one starts, if any.
    pub fn deliver(&mut self, owner: Dest) -> Option<SeqNum> {
        while let Some(next) = self.plan.front() {
            if next.dest != owner && self.pinned.is_none() {
                return Some(next.start);
            }
            if let Some(owned) = &mut self.owned {
                owned.request(next.head);
            }
            self.plan.pop_front();
        }
        None
    }

    /// What a takeover for `dest` carries of the `held` bytes, which start
    /// where the first planned request does: up to the first later one for
    /// another node.
    pub fn takeover_len(&self, dest: Dest, held: usize) -> usize {
        let Some(first) = self.plan.front() else {
            return held;
        };
        self.plan
            .iter()
            .skip(1)
            .find(|p| p.dest != dest)
            .map_or(held, |p| {
                let len = p.start.distance_from(first.start);
                usize::try_from(len).unwrap_or(0).min(held)
            })
    }

    /// Stops routing: everything goes to the connection's owner from now on.
    pub fn pin(&mut self, why: &'static str) {
        if self.pinned.is_none() {
            tracing::debug!("a connection's requests are no longer routed: {why}");
        }
        self.pinned = Some(why);
        self.plan.clear();
    }
}

/// A connection replayed into the kernel here after a move back.
pub(in crate::engine) struct Replay {
    /// What the replay replays, until the kernel answers.
    pub request: Option<Box<baton_handoff::msg::HandoffRequest>>,
    pub syns_sent: u8,
    /// The translation, once the kernel answered.
    pub offsets: Option<crate::engine::flow::Offsets>,
    /// Where the replay goes.
    pub ends: Ends,
    /// The client's next sequence number, for a RST to the kernel.
    pub client_next: SeqNum,
}
