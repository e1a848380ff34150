//! Baton's data plane.
//!
//! `packet` holds the zero-copy packet views and in-place rewriting; it has no
//! DPDK dependency so that it can be unit-tested and fuzzed anywhere.
#![forbid(unsafe_code)]

pub mod counters;
pub mod engine;
pub mod idle;
pub mod packet;
pub mod peer_mac;
pub mod steer;
#[cfg(feature = "dpdk")]
pub mod worker;
