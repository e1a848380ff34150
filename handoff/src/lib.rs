//! The handoff protocol between Baton nodes, as pure logic.
//!
//! - [`msg`] and [`codec`]: the control-channel messages and their
//!   versioned, length-delimited wire format.
//! - [`mod@classify`]: what the client asked for (HTTP request line and Host, or
//!   TLS SNI), from the request bytes the origin holds.
//! - [`http1`]: where HTTP/1.x messages begin and end in a connection's
//!   two byte streams, so that each request can be routed on its own.
//! - [`policy`]: which node should serve it (rules, pools and strategies).
//! - [`placement`]: where a held request goes: the interface the data plane
//!   asks, and [`placement::PolicyPlacer`], which classifies the request and
//!   applies the policy behind it.
//! - [`seq`]: sequence numbers, timestamps and the offsets between two
//!   kernels' spaces, as types.
//! - [`state`]: the origin and target per-connection state machines.
//! - [`workers`]: which of a node's workers owns a connection, and the
//!   messages between them and the control lcore.
//!
//! Nothing here touches a packet, a socket or a clock: the data-plane engine
//! turns packets and timers into events, feeds them in, and carries out the
//! actions that come back (the sans-I/O style). An origin and a target can
//! therefore be driven against each other in memory, and every parser can
//! be fuzzed on its own.
#![forbid(unsafe_code)]

pub mod classify;
pub mod codec;
pub mod http1;
pub mod msg;
pub mod placement;
pub mod policy;
pub mod seq;
pub mod state;
pub mod workers;

pub use classify::{classify, Classification, Request, ServiceKind};
pub use codec::{encode, try_encode, DecodeError, Decoder, EncodeError};
pub use msg::{
    FlowKey, FlowsHeld, HandoffAccept, HandoffCancel, HandoffClosed, HandoffReject, HandoffRequest,
    HeldFlow, Load, Message, RejectReason, Release, ReleaseRefused, Released,
};
pub use policy::{ClusterView, Decision, Policy, PolicyError};
pub use state::{
    Machine, Note, OriginAction, OriginEvent, OriginState, OriginTimer, Side, TargetAction,
    TargetEvent, TargetState, TargetTimer,
};
