//! Baton's control plane, run on the control lcore.
//!
//! It owns the stats socket that `baton stats` reads and the encrypted peer
//! channels that carry handoff and load messages between nodes. Membership,
//! load exchange and reload will live here too.
#![forbid(unsafe_code)]

pub mod peers;
pub mod stats;
