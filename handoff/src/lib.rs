//! The handoff protocol between Baton nodes.
//!
//! This crate will own the control-channel messages (HandoffRequest,
//! HandoffAccept, HandoffReject, HandoffClosed, Heartbeat/Load), their
//! versioned, length-delimited codec, and the origin and target state
//! machines of DESIGN §2. Every engine here is sans-I/O: `handle(msg, now)`
//! in, actions out, so that an origin and a target can be tested against each
//! other in memory.
#![forbid(unsafe_code)]
