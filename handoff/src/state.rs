//! The per-connection state machines of a handoff: one for the origin (the
//! node that accepted the connection), one for the target (the node that
//! takes it over). The data plane (`baton-fastpath`'s engine) drives them.
//!
//! Both are plain enums with an explicit transition function,
//! `on(self, event) -> (state, actions)`. They know nothing of packet bytes,
//! sockets or clocks: the data-plane glue maps packets, control messages and
//! timer expiries to events, and carries out the actions in order.
//!
//! How the glue uses them:
//!
//! - **Final states.** A transition into a final state (`is_final()`) frees
//!   the flow: the glue removes it from its table, and later packets of the
//!   connection miss the table and pass through untouched.
//! - **Timers.** Each live state has one timer (`timer()`); the glue supplies
//!   its duration from configuration. It arms the timer when the flow enters
//!   a state; idle and linger timers also restart with every packet the flow
//!   passes on. An expiry is the event `Timeout`.
//! - **Actions that cannot be carried out.** The transitions describe
//!   well-formed, in-order segments. When an action cannot be carried out
//!   for the packet at hand (request bytes that do not continue the held
//!   ones, a frame too malformed to translate), the glue drops the packet,
//!   counts why, and does not commit the transition: the flow keeps its
//!   state.
//!
//! Events that make no sense in a state (a glue bug, or a misbehaving peer)
//! return [`InvalidTransition`]; the caller counts it and keeps the state
//! it had. Events that are merely late (an answer to a handoff already
//! given up on) are handled, usually by doing nothing.

mod actions;
mod origin;
mod target;

pub use actions::{Actions, MAX_ACTIONS};
pub use origin::{OriginAction, OriginEvent, OriginState, OriginTimer};
pub use target::{Side, TargetAction, TargetEvent, TargetState, TargetTimer};

/// An event the state machine cannot accept in its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event {event} is not valid in state {state}")]
pub struct InvalidTransition {
    pub state: &'static str,
    pub event: &'static str,
}

/// What a transition yields: the next state and what to do.
pub type Step<S, A> = Result<(S, Actions<A>), InvalidTransition>;

#[cfg(test)]
mod tests;
