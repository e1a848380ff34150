//! Baton's control plane, run on the control lcore.
//!
//! - [`plane`]: the control plane of a cluster node: it carries handoff
//!   messages between the workers and the peers, and exchanges load.
//! - [`peers`]: the encrypted channels to the peer nodes beneath it.
//! - [`psk`]: the cluster key those channels are keyed with.
//! - [`stats`]: the socket that `baton stats` reads.
#![forbid(unsafe_code)]

pub mod metrics;
pub mod peers;
pub mod plane;
pub mod psk;
pub mod stats;
