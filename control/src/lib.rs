//! Baton's control plane, run on the control lcore.
//!
//! It owns the stats socket that `baton stats` reads. Peer handoff channels,
//! membership, load exchange and reload will live here too.
#![forbid(unsafe_code)]

pub mod stats;
