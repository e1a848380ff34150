//! Frames Baton builds itself: the replayed handshake, the held request,
//! resets, and client segments cut at a request boundary.

use std::net::SocketAddrV4;

use crate::packet::tcp_options::TcpOption;
use crate::packet::{MacAddr, SeqNum, TcpFlags, TcpFrame, TcpFrameBuilder, TsVal};

/// Request bytes per injected segment: fits any Ethernet path with IP and
/// TCP options.
pub(super) const SEGMENT_PAYLOAD: usize = 1400;

/// The TCP fields of a frame to build.
pub(super) struct Segment<'a> {
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

pub(super) fn build(s: &Segment<'_>) -> Vec<u8> {
    TcpFrameBuilder {
        src_mac: s.src_mac,
        dst_mac: s.dst_mac,
        src_addr: *s.src.ip(),
        dst_addr: *s.dst.ip(),
        src_port: s.src.port(),
        dst_port: s.dst.port(),
        seq: s.seq,
        ack: s.ack,
        flags: s.flags,
        window: s.window,
        tcp_options: s.options.to_vec(),
        payload: s.payload.to_vec(),
        ..TcpFrameBuilder::default()
    }
    .build()
}

/// NOP NOP TS: the timestamps option as Linux sends it on data segments.
pub(super) fn timestamps(tsval: TsVal, tsecr: TsVal) -> Vec<u8> {
    let mut out = vec![1, 1];
    TcpOption::Timestamps { tsval, tsecr }.emit(&mut out);
    out
}

/// A bare RST from `src` to `dst` at `seq`: what Baton sends a kernel or
/// a client to end a connection it no longer serves.
pub(super) fn rst(
    (src_mac, dst_mac): (MacAddr, MacAddr),
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: SeqNum,
) -> Vec<u8> {
    build(&Segment {
        src_mac,
        dst_mac,
        src,
        dst,
        seq,
        ack: SeqNum::default(),
        flags: TcpFlags::RST,
        window: 0,
        options: &[],
        payload: &[],
    })
}

/// The client segments that carry `payload` from `seq` on, at most
/// [`SEGMENT_PAYLOAD`] bytes each, as the client's frame `like` (parsed as
/// `tcp`) would: its addresses, acknowledgement, window and options.
/// Baton sends them when a client segment must be cut at a request
/// boundary, or held bytes go on after all.
pub(super) fn client_data(
    like: &[u8],
    tcp: &TcpFrame,
    dst_mac: MacAddr,
    seq: SeqNum,
    payload: &[u8],
) -> Vec<Vec<u8>> {
    payload
        .chunks(SEGMENT_PAYLOAD)
        .enumerate()
        .map(|(i, chunk)| {
            client_segment(
                like,
                tcp,
                dst_mac,
                seq.add_len(i * SEGMENT_PAYLOAD),
                TcpFlags::ACK | TcpFlags::PSH,
                chunk,
            )
        })
        .collect()
}

/// A bare ACK at `seq` with the acknowledgement, window and options of the
/// client's frame `like`.
pub(super) fn client_ack(like: &[u8], tcp: &TcpFrame, dst_mac: MacAddr, seq: SeqNum) -> Vec<u8> {
    client_segment(like, tcp, dst_mac, seq, TcpFlags::ACK, &[])
}

fn client_segment(
    like: &[u8],
    tcp: &TcpFrame,
    dst_mac: MacAddr,
    seq: SeqNum,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    build(&Segment {
        src_mac: tcp.src_mac,
        dst_mac,
        src: SocketAddrV4::new(tcp.src_addr, tcp.src_port),
        dst: SocketAddrV4::new(tcp.dst_addr, tcp.dst_port),
        seq,
        ack: tcp.ack,
        flags,
        window: tcp.window,
        options: tcp.options(like),
        payload,
    })
}
