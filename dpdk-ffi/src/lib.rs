//! DPDK 22.11 for Baton: raw bindings (`sys`) and a thin safe layer.
//!
//! This is the only Baton crate with `unsafe` code. Every unsafe block names
//! the invariant it relies on in a `// SAFETY:` comment. The safe layer covers
//! what Baton's data plane needs and nothing more:
//!
//! - [`Eal`]: the environment abstraction layer, initialised once per process;
//! - [`Mempool`]: a packet-buffer pool;
//! - [`Mbuf`] and [`Burst`]: owned packet buffers, singly and 32 at a time;
//! - [`Port`] and [`Queue`]: ethdev ports (PCI NICs and virtual devices) and
//!   their RX/TX queue pairs;
//! - [`Ring`]: lock-free packet rings between lcores, and ring-backed ports;
//! - [`lcore`]: running closures on EAL worker lcores;
//! - [`prefetch`] and [`advise_huge_pages`]: cache and page hints for the
//!   flow table;
//! - [`PacketWake`] and [`WakeBell`]: a sleeping worker woken by frames on
//!   af_packet interfaces (which have no RX interrupts) or another thread;
//! - [`RingDrops`]: the kernel's drops on an af_packet port's full RX rings,
//!   which its PMD does not report;
//! - [`runtime`]: the files a DPDK process leaves on disk (hugepages,
//!   runtime directory), removed before EAL starts and after it stops.

pub mod sys {
    //! Raw bindgen output for the headers in `csrc/wrapper.h`.
    #![allow(
        non_upper_case_globals,
        non_camel_case_types,
        non_snake_case,
        dead_code,
        unsafe_op_in_unsafe_fn,
        clippy::all,
        // Generated code: its unsafe blocks are bindgen's layout tests and
        // accessors, not ours to document; nor are its casts.
        clippy::undocumented_unsafe_blocks,
        clippy::cast_possible_truncation
    )]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

mod eal;
mod error;
pub mod lcore;
mod mbuf;
mod memory;
mod mempool;
mod packet_socket;
mod port;
mod ring;
mod ring_drops;
pub mod runtime;
mod wake;

pub use eal::{tsc, tsc_hz, Eal};
pub use error::{errno_string, DpdkError};
pub use mbuf::{Burst, Mbuf, MAX_BURST};
pub use memory::{advise_huge_pages, prefetch};
pub use mempool::Mempool;
pub use port::{MacAddress, Port, PortConfig, PortStats, Queue};
pub use ring::Ring;
pub use ring_drops::RingDrops;
pub use wake::{PacketWake, WakeBell, Woken};
