//! The per-packet translation of a connection handed off to this node
//! (DESIGN §3).
//!
//! After a handoff, the target node B serves a connection that client C
//! opened to origin node A. C numbers its acks against A's kernel's initial
//! sequence number `isn_a`, B's kernel numbers its data from `isn_b`, the two
//! kernels' timestamp clocks differ, and they may have announced different
//! window scales. B hides all of this:
//!
//! | field           | client → target (C → KB)  | target → client (KB → C)        |
//! |-----------------|---------------------------|---------------------------------|
//! | address         | dst := target kernel addr | src := address C connected to   |
//! | seq             | —                         | `seq + seq_delta`               |
//! | ack             | `ack - seq_delta`         | —                               |
//! | SACK edges      | `edge - seq_delta`        | —                               |
//! | TS value        | —                         | `tsval + ts_offset`             |
//! | TS echo reply   | `tsecr - ts_offset`       | —                               |
//! | window          | —                         | rescaled from KB's shift to A's |
//!
//! C's own sequence space needs no translation: B replays C's SYN with
//! `isn_c`, so KB and A agree on it. Every rewrite updates the IPv4 and TCP
//! checksums incrementally (RFC 1624). A frame that cannot be translated is
//! left byte for byte as it was, and the [`Verdict`] says why.

use std::net::Ipv4Addr;

use super::checksum::ChecksumDelta;
use super::error::Error;
use super::ethernet::{ethertype, EthernetFrame};
use super::ipv4::{protocol, Ipv4Packet};
use super::segment::TcpFrame;
use super::seq::{SeqDelta, SeqNum, TsOffset, TsVal};
use super::tcp::{self, TcpPacket};
use super::tcp_options::RewriteSites;

/// The largest window shift RFC 7323 allows; larger values count as 14.
const MAX_WINDOW_SHIFT: u8 = 14;

/// Everything a target node needs to translate one handed-off connection.
///
/// This is the hot part of a handed-off flow's state, read for every packet
/// in both directions, so it is kept to 20 bytes: with the flow key (12
/// bytes), the next-hop MAC and a little bookkeeping a whole flow entry fits
/// in one 64-byte cache line. Anything needed only while setting up or
/// tearing down the handoff belongs elsewhere.
///
/// Build it once the target kernel's SYN-ACK is seen:
/// `seq_delta = isn_origin - isn_target` (with [`SeqNum`](super::SeqNum)'s `-`), and
/// `ts_offset = ts_origin - ts_target`, the difference between the two
/// kernels' timestamp clocks at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Translation {
    /// `isn_a - isn_b` (mod 2^32): added to KB's sequence numbers, taken from
    /// C's acknowledgements and SACK edges.
    pub seq_delta: SeqDelta,
    /// Added to KB's TS values, taken from C's TS echo replies, so C's PAWS
    /// check keeps passing.
    pub ts_offset: TsOffset,
    /// The address C connected to: A's own address or the cluster VIP.
    pub client_visible_addr: Ipv4Addr,
    /// The target kernel's (KB's) own address.
    pub target_kernel_addr: Ipv4Addr,
    /// Window shift KB announced in its SYN-ACK.
    pub wscale_kernel: u8,
    /// Window shift A's kernel announced to C, which C applies.
    pub wscale_origin: u8,
}

const _: () = assert!(core::mem::size_of::<Translation>() <= 20);

/// What a translation did to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten in place; checksums updated.
    Translated,
    /// Left untouched.
    Rejected(Reject),
}

/// Why a frame was not translated. Each is a drop counter on the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Not an IPv4 TCP packet.
    NotIpv4Tcp,
    /// An IPv4 fragment: the TCP header is absent or incomplete.
    Fragment,
    /// A header or TCP option is malformed.
    Malformed(Error),
}

impl From<Error> for Reject {
    fn from(e: Error) -> Self {
        Reject::Malformed(e)
    }
}

/// Offsets of a validated IPv4/TCP frame, ready to be patched in place.
#[derive(Debug, Clone, Copy)]
struct Located {
    /// Start of the IPv4 header.
    l3: usize,
    /// End of the IPv4 packet (its total length; padding excluded).
    end: usize,
    sites: RewriteSites,
}

fn locate(frame: &[u8]) -> Result<Located, Reject> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != ethertype::IPV4 {
        return Err(Reject::NotIpv4Tcp);
    }
    let ip = Ipv4Packet::new_checked(eth.payload())?;
    if ip.protocol() != protocol::TCP {
        return Err(Reject::NotIpv4Tcp);
    }
    if ip.is_fragment() {
        return Err(Reject::Fragment);
    }
    let tcp = TcpPacket::new_checked(ip.payload())?;
    let sites = RewriteSites::locate(tcp.options())?;
    let l3 = eth.header_len();
    Ok(Located {
        l3,
        end: l3 + usize::from(ip.total_len()),
        sites,
    })
}

impl Located {
    /// The offsets of a frame already parsed into `seg`: only the options
    /// are scanned. Inlined, so that the offsets stay in registers (read
    /// back from memory, they stalled the translation).
    #[inline(always)]
    fn of(frame: &[u8], seg: &TcpFrame) -> Result<Located, Reject> {
        Ok(Located {
            l3: TcpFrame::L3,
            end: usize::from(seg.end),
            sites: RewriteSites::locate(seg.options(frame))?,
        })
    }
}

/// Replaces the big-endian u32 at `at` (relative to the TCP header, which
/// `locate` has proven long enough) with `f(old)`, recording the change.
#[inline(always)]
fn patch_u32(segment: &mut [u8], at: usize, delta: &mut ChecksumDelta, f: impl Fn(u32) -> u32) {
    if let Some(field) = segment.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<4>) {
        let old = u32::from_be_bytes(*field);
        let new = f(old);
        *field = new.to_be_bytes();
        delta.dword_at(at, old, new);
    }
}

/// Offsets of the TS value and TS echo reply inside the timestamps option.
const TSVAL: usize = 2;
const TSECR: usize = 6;

impl Translation {
    /// The translation that undoes this one: applying `inverse()` in the same
    /// direction restores the original packet (windows up to rescale
    /// rounding).
    pub fn inverse(&self) -> Translation {
        Translation {
            seq_delta: -self.seq_delta,
            ts_offset: -self.ts_offset,
            client_visible_addr: self.target_kernel_addr,
            target_kernel_addr: self.client_visible_addr,
            wscale_kernel: self.wscale_origin,
            wscale_origin: self.wscale_kernel,
        }
    }

    /// KB's window field as C must read it: the same byte count under A's
    /// window shift, rounded down (never announcing more than KB offers) and
    /// capped at 65535.
    #[inline]
    pub fn rescale_window(&self, window: u16) -> u16 {
        let kernel = self.wscale_kernel.min(MAX_WINDOW_SHIFT);
        let origin = self.wscale_origin.min(MAX_WINDOW_SHIFT);
        let bytes = u32::from(window) << kernel;
        u16::try_from(bytes >> origin).unwrap_or(u16::MAX)
    }

    /// Rewrites a frame from the client so that the target kernel accepts it
    /// as part of its own connection: destination address, and — when the
    /// ACK bit makes them meaningful — ack, SACK edges and TS echo reply.
    pub fn client_to_target(&self, frame: &mut [u8]) -> Verdict {
        match locate(frame) {
            Ok(loc) => self.client_to_target_at(frame, loc),
            Err(reason) => Verdict::Rejected(reason),
        }
    }

    /// [`Translation::client_to_target`] for a frame the caller has parsed
    /// into `seg` (and not changed since).
    #[inline]
    pub fn client_to_target_parsed(&self, frame: &mut [u8], seg: &TcpFrame) -> Verdict {
        match Located::of(frame, seg) {
            Ok(loc) => self.client_to_target_at(frame, loc),
            Err(reason) => Verdict::Rejected(reason),
        }
    }

    /// Inlined, as `Located::of` is, for the same reason: a call passes
    /// the offsets through memory.
    #[inline(always)]
    fn client_to_target_at(&self, frame: &mut [u8], loc: Located) -> Verdict {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[loc.l3..loc.end]);
        let mut delta = ip.rewrite_dst_addr(self.target_kernel_addr);
        let mut segment = TcpPacket::new_unchecked(ip.payload_mut());
        if segment.ack() {
            let seq_delta = self.seq_delta;
            let ts_offset = self.ts_offset;
            let bytes = segment.buffer_mut();
            patch_u32(bytes, tcp::field::ACK_NUM.start, &mut delta, |ack| {
                (SeqNum::new(ack) - seq_delta).raw()
            });
            if let Some(ts) = loc.sites.timestamps {
                let at = tcp::MIN_HEADER_LEN + ts + TSECR;
                patch_u32(bytes, at, &mut delta, |ecr| {
                    (TsVal::new(ecr) - ts_offset).raw()
                });
            }
            if let Some((sack, blocks)) = loc.sites.sack {
                let first_edge = tcp::MIN_HEADER_LEN + sack + 2;
                for edge in 0..blocks * 2 {
                    patch_u32(bytes, first_edge + 4 * edge, &mut delta, |e| {
                        (SeqNum::new(e) - seq_delta).raw()
                    });
                }
            }
        }
        segment.set_checksum(delta.apply(segment.checksum()));
        Verdict::Translated
    }

    /// Rewrites a frame from the target kernel so that the client takes it
    /// for one from the node it connected to: source address, seq, TS value
    /// and (outside SYNs, whose window is never scaled) the window.
    pub fn target_to_client(&self, frame: &mut [u8]) -> Verdict {
        match locate(frame) {
            Ok(loc) => self.target_to_client_at(frame, loc),
            Err(reason) => Verdict::Rejected(reason),
        }
    }

    /// [`Translation::target_to_client`] for a frame the caller has parsed
    /// into `seg` (and not changed since).
    #[inline]
    pub fn target_to_client_parsed(&self, frame: &mut [u8], seg: &TcpFrame) -> Verdict {
        match Located::of(frame, seg) {
            Ok(loc) => self.target_to_client_at(frame, loc),
            Err(reason) => Verdict::Rejected(reason),
        }
    }

    /// Inlined (see `client_to_target_at`).
    #[inline(always)]
    fn target_to_client_at(&self, frame: &mut [u8], loc: Located) -> Verdict {
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[loc.l3..loc.end]);
        let mut delta = ip.rewrite_src_addr(self.client_visible_addr);
        let mut segment = TcpPacket::new_unchecked(ip.payload_mut());

        let seq = segment.seq_number();
        let new_seq = seq + self.seq_delta;
        delta.dword(seq.raw(), new_seq.raw());
        segment.set_seq_number(new_seq);

        if !segment.syn() {
            let window = segment.window_len();
            let new_window = self.rescale_window(window);
            delta.word(window, new_window);
            segment.set_window_len(new_window);
        }

        if let Some(ts) = loc.sites.timestamps {
            let ts_offset = self.ts_offset;
            let at = tcp::MIN_HEADER_LEN + ts + TSVAL;
            patch_u32(segment.buffer_mut(), at, &mut delta, |val| {
                (TsVal::new(val) + ts_offset).raw()
            });
        }
        segment.set_checksum(delta.apply(segment.checksum()));
        Verdict::Translated
    }
}
