//! The per-connection state machines of a handoff: one for the origin (the
//! node that accepted the connection), one for the target (the node that
//! takes it over). The data plane (`baton-fastpath`'s engine) drives them.
//!
//! Both are plain enums with an explicit transition function behind one
//! trait, [`Machine`]: `on(state, event) -> Transition`, where a transition
//! is the next state, the actions to carry out in order, and a [`Note`] of
//! what the transition means for the node's counters. They know nothing of
//! packet bytes, sockets or clocks. Everything a connection does is decided
//! here; the engine only executes, with one driver for both machines:
//!
//! - **Events.** Packet events come with a packet (the engine maps a
//!   segment's flags to one); signal events do not (a decision, a control
//!   message, a timer). [`Event::carries_packet`] says which is which.
//! - **Final states.** A transition into a final state (`is_final()`) frees
//!   the flow: the engine removes it from its table, and later packets of
//!   the connection miss the table and pass through untouched.
//! - **Timers.** Each live state has one timer (`timer()`); the engine
//!   supplies its duration from configuration. It arms the timer when the
//!   flow enters a state, and again when the timer's own event leaves the
//!   flow in the same state; timers that
//!   [`TimerKind::restarts_with_traffic`] also restart with every packet the
//!   flow passes on. An expiry is the event `Timeout`, or `Retransmit` for a
//!   timer that paces retransmissions while a budget lasts.
//! - **Gauges.** A state may count toward a gauge ([`Machine::gauge`]): the
//!   engine keeps each gauge as flows enter and leave such states.
//! - **Notes.** A transition's [`Note`] is counted when the transition is
//!   committed, so that each outcome is counted in exactly one place.
//! - **Actions that cannot be carried out.** The transitions describe
//!   well-formed, in-order segments. When an action cannot be carried out
//!   for the packet at hand (request bytes that do not continue the held
//!   ones, a frame too malformed to translate), the engine drops the packet,
//!   counts why, and rolls the step back: the flow keeps its state, its
//!   timer and its gauges, and the note is not counted.
//!
//! Events that make no sense in a state (an engine bug, or a misbehaving
//! peer) return [`InvalidTransition`]; the engine counts it
//! (`invalid_transition`) and keeps the state it had. Events that are
//! merely late (an answer to a handoff already given up on) are handled,
//! usually by doing nothing.

mod actions;
mod origin;
mod target;

use std::fmt;

pub use actions::{Actions, MAX_ACTIONS};
pub use origin::{OriginAction, OriginEvent, OriginState, OriginTimer, Owner};
pub use target::{Side, TargetAction, TargetEvent, TargetState, TargetTimer};

/// A per-connection state machine, as the engine drives it.
pub trait Machine: Copy + Eq + fmt::Debug + 'static {
    type Event: Event;
    type Action: Copy + Eq + fmt::Debug;
    type Timer: TimerKind;

    /// Every state, in the order the documentation's tables list them.
    const STATES: &'static [Self];

    /// A new flow's state, and what to do to open it.
    fn start() -> Transition<Self>;

    /// The transition function; each machine's module has its diagram.
    fn on(self, event: Self::Event) -> Step<Self>;

    /// The timer the engine runs while in this state; none in a final state.
    fn timer(self) -> Option<Self::Timer>;

    /// Whether the flow is over here: the engine forgets it.
    fn is_final(self) -> bool;

    /// The gauge a flow in this state counts toward, if any.
    fn gauge(self) -> Option<Gauge>;

    fn name(self) -> &'static str;
}

/// What a machine's events have in common.
pub trait Event: Copy + Eq + fmt::Debug + 'static {
    /// Every event, in the order the documentation's tables list them.
    const ALL: &'static [Self];

    /// Whether the event is a packet, which the engine hands over with it;
    /// otherwise it is a signal: a decision, a control message or a timer.
    fn carries_packet(self) -> bool;

    /// Whether the event is the expiry of the state's timer.
    fn is_expiry(self) -> bool;

    fn name(self) -> &'static str;
}

/// What a machine's timers have in common.
pub trait TimerKind: Copy + Eq + fmt::Debug {
    /// Whether every packet the flow passes on restarts the timer.
    fn restarts_with_traffic(self) -> bool;
}

/// One step: the next state (possibly the same), the actions to carry out
/// in order, and what the step means for the counters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Transition<M: Machine> {
    pub next: M,
    pub actions: Actions<M::Action>,
    pub note: Option<Note>,
}

impl<M: Machine> fmt::Debug for Transition<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transition")
            .field("next", &self.next)
            .field("actions", &self.actions)
            .field("note", &self.note)
            .finish()
    }
}

/// An event the machine cannot accept in its current state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition<M: Machine> {
    pub state: M,
    pub event: M::Event,
}

impl<M: Machine> fmt::Debug for InvalidTransition<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl<M: Machine> fmt::Display for InvalidTransition<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} is not valid in state {}",
            self.event.name(),
            self.state.name()
        )
    }
}

impl<M: Machine> std::error::Error for InvalidTransition<M> {}

/// What a transition yields.
pub type Step<M> = Result<Transition<M>, InvalidTransition<M>>;

/// Gauges the engine keeps from the states its flows are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gauge {
    /// Origin flows waiting for a target's answer.
    HandoffsPending,
    /// Connections handed to this node, not yet over.
    HandedIn,
    /// Origin flows forwarded to the node that took them.
    Forwarding,
}

/// What a committed transition means for the node's counters: each
/// outcome of a connection, noted by the one transition that decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Note {
    /// Origin: the policy chose this node.
    ServedLocal,
    /// Origin: the request is not valid HTTP or TLS; served here.
    BadRequest,
    /// Origin: the client closed before sending a request; the kernel
    /// closes it, untracked.
    NoRequest,
    /// Origin: a request on a routed connection is for another node; the
    /// connection moves at the response boundary.
    MoveStarted,
    /// Origin: a moved connection is with its new owner.
    MoveCompleted,
    /// Origin: nobody could take a moving connection's request: 503.
    MoveRefused,
    /// Origin: the owner could not let the connection go (it closes, or
    /// switched protocols); the request stayed with it.
    MoveStayed,
    /// Target: a connection given up for a move, every response whole.
    Released,
    /// Target: a move asked for a connection that cannot carry more
    /// requests; it stays.
    ReleaseRefused,
    /// Origin: no decision at a hold limit (bytes, segments, time, or the
    /// client's FIN); served here.
    HoldUndecided,
    /// Origin: the target accepted (or, its answer lost, it evidently did:
    /// the client acknowledged its data).
    HandedOff,
    /// Origin: the target refused; the request is decided again.
    HandoffRejected,
    /// Origin: the target did not answer in time; the request is decided
    /// again, and the target is told to drop its copy.
    HandoffTimedOut,
    /// Origin: after a failed handoff, the next node the policy picks gets
    /// the request.
    HandoffRetried,
    /// Origin: a handoff was tried, and the connection is served here, a
    /// member of the request's pool.
    FellBack,
    /// Origin: no node can serve the request: the client is told so.
    Refused,
    /// Origin: the client reset while its connection was being handed off.
    ClientResetMidHandoff,
    /// Origin: the target of a handed-off connection went down, and the
    /// client was reset.
    PeerDownReset,
    /// Either: the flow was idle too long and is forgotten.
    Expired,
    /// Target: the kernel took the replayed connection.
    HandedIn,
    /// Target: the kernel answered the replayed SYN with a RST.
    KernelRefused,
    /// Target: the kernel did not answer the replayed SYN in time.
    ReplayTimedOut,
    /// Target: the replayed SYN went unanswered and was sent again.
    ReplayRetransmitted,
    /// Target: the connection's origin stayed away, and both ends were
    /// reset (or the kernel's alone, when the connection was not live).
    OrphanReset,
}

#[cfg(test)]
mod tests;
