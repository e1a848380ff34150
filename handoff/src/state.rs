//! The per-connection state machines of a handoff: one for the origin (the
//! node that accepted the connection), one for the target (the node that
//! takes it over).
//!
//! Both are plain enums with an explicit transition function,
//! `on(self, event) -> Result<(state, actions), InvalidTransition>`. They
//! know nothing of packet bytes, sockets or clocks: the data-plane glue maps
//! packets, control messages and timer expiries to events, and carries out
//! the actions. Each state has at most one timer (see `timer()`); the glue
//! arms it whenever the state changes and reports its expiry as `Timeout`.
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
pub use target::{TargetAction, TargetEvent, TargetState, TargetTimer};

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
