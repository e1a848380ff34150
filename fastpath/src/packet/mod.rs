//! Zero-copy packet views and the in-place rewrites of a handed-off
//! connection.
//!
//! Every view wraps a byte buffer (`T: AsRef<[u8]>`, plus `AsMut<[u8]>` for
//! the setters) in the smoltcp manner: `new_checked` validates the lengths
//! once, after which no accessor can panic. Field offsets are named, and
//! getters and setters carry the names of the RFC fields.
//!
//! - [`ethernet`], [`arp`], [`ipv4`], [`ipv6`], [`tcp`], [`tcp_options`]:
//!   the views.
//! - [`classify()`]: what a frame is (ARP, IPv4/TCP, other IPv4, IPv6, other),
//!   with one 802.1Q tag and IPv4 fragments recognised.
//! - [`segment`]: [`TcpFrame`], the one parse of an IPv4/TCP frame that
//!   the fast path reads every field and offset from.
//! - [`seq`]: [`SeqNum`], [`SeqDelta`], [`TsVal`] and [`TsOffset`]: wrapping
//!   sequence and timestamp arithmetic, as types.
//! - [`checksum`]: full Internet checksums and RFC 1624 incremental updates.
//! - [`translate`]: the sequence-space, timestamp, window and address
//!   translation that a target node applies to each packet of a connection
//!   handed off to it.
//! - [`builder`]: builds Ethernet/IPv4/TCP frames for tests and benches.
//!
//! Nothing here knows about DPDK, so the module is unit-tested, fuzzed and
//! benchmarked on any machine.

pub mod arp;
pub mod builder;
pub mod checksum;
pub mod classify;
pub mod error;
pub mod ethernet;
pub mod ipv4;
pub mod ipv6;
pub mod segment;
pub mod seq;
pub mod tcp;
pub mod tcp_options;
pub mod translate;

pub use builder::TcpFrameBuilder;
pub use classify::{classify, Classified, FrameClass};
pub use error::Error;
pub use ethernet::{EthernetFrame, MacAddr};
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use segment::TcpFrame;
pub use seq::{SeqDelta, SeqNum, TsOffset, TsVal};
pub use tcp::{TcpFlags, TcpPacket};
pub use tcp_options::{SackBlock, TcpOption};
pub use translate::{Reject, Translation, Verdict};
