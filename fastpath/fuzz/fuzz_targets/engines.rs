//! Two handoff engines wired together as in a cluster: node A (198.18.0.11)
//! and node B (198.18.0.12), each the other's only peer, both owning the
//! VIP 198.18.0.10, each in front of a small model of a kernel. The input
//! is a sequence of operations: a client with four connections sends
//! frames (well-formed ones built from its view of each connection, or
//! arbitrary fields), a kernel answers or sends what the input says,
//! frames on the wire and control messages are delivered, dropped,
//! duplicated or taken out of order, messages are forged, raw bytes are
//! fed to either port, peers go down and up, time passes.
//!
//! Everything an engine emits goes where it would in a cluster: frames to
//! the host into that node's kernel model, wire frames by destination MAC
//! to the other node or to the client, messages to the peer's queue.
//!
//! Checked, besides that nothing panics:
//! - every frame an engine builds or releases parses, and has valid
//!   checksums unless it is a copy of an input whose checksums were bad
//!   (this build's `TcpFrame::checksums_valid` lets bad ones in; see
//!   `fed`); a frame passed on with a verdict parses, and has valid
//!   checksums if it came in with valid ones; one that does not parse
//!   passes unchanged;
//! - the gauges agree with `Engine::load` after a timer run;
//! - once time has gone far past every timeout, both tables are empty.
//!
//! The input format is in `Op::read`: one byte picks the operation (modulo
//! the number of them), the bytes after it are its arguments, and a
//! missing byte reads as zero.
#![no_main]

use std::collections::{HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_fastpath::counters::{Counter, WorkerCounters};
use baton_fastpath::engine::{
    Engine, EngineConfig, Load, PeerInfo, Placement, Placer, ServiceKind, Verdict,
};
use baton_fastpath::packet::tcp_options::{SackBlocks, TcpOption, TcpOptions};
use baton_fastpath::packet::{
    EthernetFrame, Ipv4Packet, MacAddr, SackBlock, SeqNum, TcpFlags, TcpFrame, TcpFrameBuilder,
    TcpPacket, TsVal,
};
use baton_handoff::codec::{try_encode, Decoder};
use baton_handoff::msg::{
    FlowKey, FlowsHeld, HandoffAccept, HandoffCancel, HandoffClosed, HandoffReject, HandoffRequest,
    HeldFlow, Message, RejectReason, Release, ReleaseRefused, Released,
};
use libfuzzer_sys::fuzz_target;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const ADDRS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 11), Ipv4Addr::new(198, 18, 0, 12)];
const MAC_C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x64]);
const MACS: [MacAddr; 2] = [
    MacAddr([2, 0, 0, 0, 0, 0x11]),
    MacAddr([2, 0, 0, 0, 0, 0x12]),
];
const HTTP: u16 = 80;
/// Client ISNs, two of them close to the wrap.
const ISNS: [u32; 4] = [0xffff_fff0, 1000, 0x7fff_fff8, 0x9e37_79b9];
const CONNS: usize = ISNS.len();

const MAX_OPS: usize = 512;
/// Pending frames or messages per queue; beyond, the oldest is lost.
const QUEUE: usize = 64;
/// A `Run` delivers at most this many items.
const RUN_STEPS: usize = 256;

const HOLD_TIMEOUT: Duration = Duration::from_millis(200);
const HANDOFF_TIMEOUT: Duration = Duration::from_millis(500);
const LINGER: Duration = Duration::from_millis(100);
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longer than every timeout above and the timer wheel's resolution.
const FAR: Duration = Duration::from_secs(5);
/// A timer run this long after the one before surely ran (the engine skips
/// runs within one tick of the last).
const SURE_RUN: Duration = Duration::from_secs(1);

/// `GET /p/...` goes to the peer, any other `GET` stays, anything else is
/// not HTTP; undecided until the header ends.
struct ByPath;

impl Placer for ByPath {
    fn place(&mut self, held: &[u8], _: ServiceKind, _: &[bool], _: Load) -> Placement {
        if !held.ends_with(b"\r\n\r\n") {
            Placement::NeedMore
        } else if held.starts_with(b"GET /p/") {
            Placement::Peer(0)
        } else if held.starts_with(b"GET ") {
            Placement::Local
        } else {
            Placement::Invalid
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // ENGINES_DEBUG=1 prints the operations an input decodes to.
    let debug = std::env::var_os("ENGINES_DEBUG").is_some();
    let mut cluster = Cluster::new();
    let mut input = Input(data);
    for _ in 0..MAX_OPS {
        if input.0.is_empty() {
            break;
        }
        let op = Op::read(&mut input);
        if debug {
            eprintln!("{op:?}");
        }
        cluster.apply(op);
    }
    cluster.drain();
});

/// The fuzz input, read front to back; past the end every byte is zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A length byte, then up to that many bytes (at most `max`).
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.u8()).min(max).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }
}

/// What to do with a pending item of a queue.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Deliver,
    Drop,
    Duplicate,
}

impl Fate {
    fn read(input: &mut Input<'_>) -> Fate {
        match input.u8() % 3 {
            0 => Fate::Deliver,
            1 => Fate::Drop,
            _ => Fate::Duplicate,
        }
    }
}

#[derive(Debug)]
enum Op {
    /// The client sends on connection `conn`.
    Client {
        conn: usize,
        send: ClientSend,
    },
    /// Deliver everything pending, in turn, until nothing is (bounded).
    Run,
    /// Time passes; both engines run their timers.
    Advance(Duration),
    /// A message from `node`'s peer, the `index`th pending.
    Message {
        node: usize,
        fate: Fate,
        index: usize,
    },
    /// A frame `node`'s kernel has queued.
    Kernel {
        node: usize,
        fate: Fate,
        index: usize,
    },
    /// A frame on the wire toward `node` (from the other node).
    Wire {
        node: usize,
        fate: Fate,
        index: usize,
    },
    /// `node`'s kernel sends on one of its connections.
    KernelSend {
        node: usize,
        conn: usize,
        send: KernelSend,
    },
    PeerDown {
        node: usize,
        lose_messages: bool,
    },
    PeerUp {
        node: usize,
    },
    /// A message forged as if from `node`'s peer. Its id is the `pick`th
    /// seen in a message (the ids are the engines' own), or `pick`.
    Forge {
        node: usize,
        pick: u8,
        msg: Message,
    },
    /// Arbitrary bytes from the wire (or, `from_host`, from the kernel).
    Raw {
        node: usize,
        from_host: bool,
        frame: Vec<u8>,
    },
    /// Flips `bits` in byte `at` of a frame pending toward `node` (on the
    /// wire, or from its kernel): a corrupted real frame gets further than
    /// random bytes.
    Corrupt {
        node: usize,
        kernel: bool,
        index: usize,
        at: usize,
        bits: u8,
    },
}

#[derive(Debug)]
enum ClientSend {
    Syn {
        to: Server,
        options: SynOptions,
    },
    Ack,
    /// An ACK with a SACK block `from` bytes past what it acknowledges.
    Sack {
        from: u16,
        len: u16,
    },
    /// The whole of a new request.
    Request {
        template: u8,
        pad: u8,
    },
    /// The next `n` bytes of the current request (a new `/p/` one when it
    /// is all sent).
    Part {
        n: u8,
    },
    Fin,
    Rst,
    /// The last frame again.
    Retransmit,
    /// Fields from the input, relative to the connection's state.
    Custom(Custom),
}

#[derive(Debug, Clone, Copy)]
enum Server {
    A,
    VipAtA,
    B,
    VipAtB,
}

#[derive(Debug)]
enum SynOptions {
    Linux,
    None,
    MssOnly,
    Raw(Vec<u8>),
}

#[derive(Debug)]
struct Custom {
    flags: TcpFlags,
    seq_delta: i16,
    ack_delta: i16,
    window: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

#[derive(Debug)]
enum KernelSend {
    Data { len: u16 },
    Fin,
    Rst,
    Custom(Custom),
}

impl Op {
    fn read(input: &mut Input<'_>) -> Op {
        let node = |b: u8| usize::from(b & 1);
        match input.u8() % 12 {
            0 => {
                let conn = usize::from(input.u8()) % CONNS;
                let send = match input.u8() % 9 {
                    0 => {
                        let to = match input.u8() % 4 {
                            0 => Server::A,
                            1 => Server::VipAtA,
                            2 => Server::B,
                            _ => Server::VipAtB,
                        };
                        let options = match input.u8() % 4 {
                            0 => SynOptions::Linux,
                            1 => SynOptions::None,
                            2 => SynOptions::MssOnly,
                            _ => SynOptions::Raw(input.bytes(40)),
                        };
                        ClientSend::Syn { to, options }
                    }
                    1 => ClientSend::Ack,
                    2 => ClientSend::Request {
                        template: input.u8(),
                        pad: input.u8(),
                    },
                    3 => ClientSend::Part { n: input.u8() },
                    4 => ClientSend::Fin,
                    5 => ClientSend::Rst,
                    6 => ClientSend::Retransmit,
                    7 => ClientSend::Sack {
                        from: input.u16(),
                        len: input.u16(),
                    },
                    _ => ClientSend::Custom(Custom::read(input)),
                };
                Op::Client { conn, send }
            }
            1 => Op::Run,
            2 => Op::Advance(Duration::from_millis(20 * (u64::from(input.u8()) + 1))),
            3 => {
                let node = node(input.u8());
                Op::Message {
                    node,
                    fate: Fate::read(input),
                    index: input.u8().into(),
                }
            }
            4 => {
                let node = node(input.u8());
                Op::Kernel {
                    node,
                    fate: Fate::read(input),
                    index: input.u8().into(),
                }
            }
            5 => {
                let node = node(input.u8());
                Op::Wire {
                    node,
                    fate: Fate::read(input),
                    index: input.u8().into(),
                }
            }
            6 => {
                let node = node(input.u8());
                let conn = input.u8().into();
                let send = match input.u8() % 4 {
                    0 => KernelSend::Data { len: input.u16() },
                    1 => KernelSend::Fin,
                    2 => KernelSend::Rst,
                    _ => KernelSend::Custom(Custom::read(input)),
                };
                Op::KernelSend { node, conn, send }
            }
            7 => {
                let b = input.u8();
                Op::PeerDown {
                    node: node(b),
                    lose_messages: b & 2 != 0,
                }
            }
            8 => Op::PeerUp {
                node: node(input.u8()),
            },
            9 => Op::Forge {
                node: node(input.u8()),
                pick: input.u8(),
                msg: forge(input),
            },
            10 => {
                let b = input.u8();
                Op::Raw {
                    node: node(b),
                    from_host: b & 2 != 0,
                    frame: input.bytes(255),
                }
            }
            _ => {
                let b = input.u8();
                Op::Corrupt {
                    node: node(b),
                    kernel: b & 2 != 0,
                    index: input.u8().into(),
                    at: input.u8().into(),
                    bits: input.u8(),
                }
            }
        }
    }
}

impl Custom {
    fn read(input: &mut Input<'_>) -> Custom {
        Custom {
            flags: TcpFlags(input.u8()),
            seq_delta: input.u16() as i16,
            ack_delta: input.u16() as i16,
            window: input.u16(),
            options: input.bytes(40),
            payload: input.bytes(255),
        }
    }
}

/// One end of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct End {
    mac: MacAddr,
    addr: SocketAddrV4,
}

#[allow(clippy::too_many_arguments)]
fn build(
    src: End,
    dst: End,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: Vec<u8>,
    payload: &[u8],
) -> Vec<u8> {
    TcpFrameBuilder {
        src_mac: src.mac,
        dst_mac: dst.mac,
        src_addr: *src.addr.ip(),
        dst_addr: *dst.addr.ip(),
        src_port: src.addr.port(),
        dst_port: dst.addr.port(),
        seq: SeqNum::new(seq),
        ack: SeqNum::new(ack),
        flags,
        window,
        tcp_options: options,
        payload: payload.to_vec(),
        ..TcpFrameBuilder::default()
    }
    .build()
}

fn timestamps(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1];
    TcpOption::Timestamps {
        tsval: TsVal::new(tsval),
        tsecr: TsVal::new(tsecr),
    }
    .emit(&mut o);
    o
}

/// Whether both checksums of an IPv4/TCP frame hold, read with the views:
/// `TcpFrame::checksums_valid` answers yes to everything in this build.
fn checksums_hold(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return false;
    };
    ip.verify_checksum() && tcp.verify_checksum(ip.src_addr(), ip.dst_addr())
}

fn parses(frame: &[u8]) -> Option<TcpFrame> {
    TcpFrame::parse(frame).ok().flatten()
}

/// A frame's bytes past its Ethernet header: what a forwarded copy keeps.
fn past_ethernet(frame: &[u8]) -> &[u8] {
    frame.get(TcpFrame::L3..).unwrap_or_default()
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == QUEUE {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// The client's side of one connection, as far as it has seen it.
#[derive(Debug, Clone)]
struct ClientConn {
    me: End,
    server: End,
    isn: u32,
    snd_nxt: u32,
    rcv_nxt: u32,
    ts_recent: u32,
    clock: u32,
    timestamps: bool,
    request: Vec<u8>,
    sent: usize,
    last: Option<Vec<u8>>,
}

impl ClientConn {
    fn new(i: usize) -> ClientConn {
        ClientConn {
            me: End {
                mac: MAC_C,
                addr: SocketAddrV4::new(CLIENT, 40000 + i as u16),
            },
            server: End {
                mac: MACS[0],
                addr: SocketAddrV4::new(ADDRS[0], HTTP),
            },
            isn: ISNS[i],
            snd_nxt: ISNS[i].wrapping_add(1),
            rcv_nxt: 0,
            ts_recent: 0,
            clock: 100 * (i as u32 + 1),
            timestamps: true,
            request: Vec::new(),
            sent: 0,
            last: None,
        }
    }

    fn options(&mut self) -> Vec<u8> {
        if !self.timestamps {
            return Vec::new();
        }
        self.clock = self.clock.wrapping_add(1);
        timestamps(self.clock, self.ts_recent)
    }

    fn segment(&mut self, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        let options = self.options();
        let frame = build(
            self.me,
            self.server,
            self.snd_nxt,
            self.rcv_nxt,
            flags,
            502,
            options,
            payload,
        );
        self.snd_nxt = self
            .snd_nxt
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags.contains(TcpFlags::FIN)));
        frame
    }

    fn frame(&mut self, send: ClientSend) -> Option<Vec<u8>> {
        let frame = match send {
            ClientSend::Syn { to, options } => {
                self.server = match to {
                    Server::A => End {
                        mac: MACS[0],
                        addr: SocketAddrV4::new(ADDRS[0], HTTP),
                    },
                    Server::VipAtA => End {
                        mac: MACS[0],
                        addr: SocketAddrV4::new(VIP, HTTP),
                    },
                    Server::B => End {
                        mac: MACS[1],
                        addr: SocketAddrV4::new(ADDRS[1], HTTP),
                    },
                    Server::VipAtB => End {
                        mac: MACS[1],
                        addr: SocketAddrV4::new(VIP, HTTP),
                    },
                };
                self.clock = self.clock.wrapping_add(1000);
                self.timestamps = matches!(options, SynOptions::Linux);
                let options = match options {
                    SynOptions::Linux => {
                        let mut o = Vec::new();
                        TcpOption::MaxSegmentSize(1460).emit(&mut o);
                        TcpOption::SackPermitted.emit(&mut o);
                        TcpOption::Timestamps {
                            tsval: TsVal::new(self.clock),
                            tsecr: TsVal::new(0),
                        }
                        .emit(&mut o);
                        o.push(1);
                        TcpOption::WindowScale(7).emit(&mut o);
                        o
                    }
                    SynOptions::None => Vec::new(),
                    SynOptions::MssOnly => vec![2, 4, 5, 0xb4],
                    SynOptions::Raw(raw) => raw,
                };
                self.snd_nxt = self.isn.wrapping_add(1);
                self.rcv_nxt = 0;
                self.request.clear();
                self.sent = 0;
                build(
                    self.me,
                    self.server,
                    self.isn,
                    0,
                    TcpFlags::SYN,
                    64240,
                    options,
                    &[],
                )
            }
            ClientSend::Ack => self.segment(TcpFlags::ACK, &[]),
            ClientSend::Sack { from, len } => {
                let left = SeqNum::new(self.rcv_nxt.wrapping_add(u32::from(from)));
                let block = SackBlock {
                    left,
                    right: left + u32::from(len),
                };
                let mut options = self.options();
                if let Some(blocks) = SackBlocks::from_slice(&[block]) {
                    options.extend_from_slice(&[1, 1]);
                    TcpOption::Sack(blocks).emit(&mut options);
                }
                build(
                    self.me,
                    self.server,
                    self.snd_nxt,
                    self.rcv_nxt,
                    TcpFlags::ACK,
                    502,
                    options,
                    &[],
                )
            }
            ClientSend::Request { template, pad } => {
                self.request = request(template, pad);
                self.sent = self.request.len();
                let request = self.request.clone();
                self.segment(TcpFlags::ACK | TcpFlags::PSH, &request)
            }
            ClientSend::Part { n } => {
                if self.sent >= self.request.len() {
                    self.request = request(0, n);
                    self.sent = 0;
                }
                let end = (self.sent + usize::from(n).max(1)).min(self.request.len());
                let part = self.request[self.sent..end].to_vec();
                self.sent = end;
                self.segment(TcpFlags::ACK, &part)
            }
            ClientSend::Fin => self.segment(TcpFlags::FIN | TcpFlags::ACK, &[]),
            ClientSend::Rst => self.segment(TcpFlags::RST, &[]),
            ClientSend::Retransmit => return self.last.clone(),
            ClientSend::Custom(c) => build(
                self.me,
                self.server,
                self.snd_nxt.wrapping_add(c.seq_delta as u32),
                self.rcv_nxt.wrapping_add(c.ack_delta as u32),
                c.flags,
                c.window,
                c.options,
                &c.payload,
            ),
        };
        self.last = Some(frame.clone());
        Some(frame)
    }

    /// A frame toward this connection's client end.
    fn sees(&mut self, seg: &TcpFrame, frame: &[u8]) {
        if seg.flags.contains(TcpFlags::SYN | TcpFlags::ACK) {
            self.rcv_nxt = seg.seq.raw().wrapping_add(1);
        } else {
            let end = seg
                .seq
                .raw()
                .wrapping_add(seg.payload_len() as u32)
                .wrapping_add(u32::from(seg.flags.contains(TcpFlags::FIN)));
            if end.wrapping_sub(self.rcv_nxt) as i32 > 0 {
                self.rcv_nxt = end;
            }
        }
        if let Some(tsval) = seg.tsval(frame).map(TsVal::raw) {
            self.ts_recent = tsval;
        }
    }
}

/// A request: for the peer, kept local, not HTTP, or for the peer with a
/// header `pad` × 16 bytes long (more than one injected segment).
fn request(template: u8, pad: u8) -> Vec<u8> {
    match template % 4 {
        0 => b"GET /p/x HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
        1 => b"GET /l/x HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
        2 => b"PUT /p/x HTTP/1.1\r\n\r\n".to_vec(),
        _ => {
            let mut r = b"GET /p/big HTTP/1.1\r\nX: ".to_vec();
            r.resize(r.len() + 16 * usize::from(pad), b'x');
            r.extend_from_slice(b"\r\n\r\n");
            r
        }
    }
}

/// A connection the kernel model has.
#[derive(Debug, Clone)]
struct KernelConn {
    local: End,
    peer: End,
    isn_peer: u32,
    snd_nxt: u32,
    rcv_nxt: u32,
    /// The peer's latest TSval, when timestamps are on.
    ts_recent: Option<u32>,
    window_scale: bool,
}

/// Just enough of a host kernel: it answers a SYN to port 80 with a
/// SYN-ACK (with the options Linux would), data with a response, a FIN
/// with a FIN, a segment of no connection with a RST, and drops frames
/// with bad checksums. What it sends waits in `outbox`.
struct Kernel {
    mac: MacAddr,
    addrs: [Ipv4Addr; 2],
    isn: u32,
    clock: u32,
    conns: Vec<KernelConn>,
    outbox: VecDeque<Vec<u8>>,
}

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

impl Kernel {
    fn new(node: usize) -> Kernel {
        Kernel {
            mac: MACS[node],
            addrs: [ADDRS[node], VIP],
            isn: [5000, 900_000][node],
            clock: [7000, 50][node],
            conns: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    fn send(&mut self, c: usize, seq: u32, flags: TcpFlags, payload: &[u8]) {
        self.clock = self.clock.wrapping_add(1);
        let conn = &self.conns[c];
        let options = conn
            .ts_recent
            .map_or_else(Vec::new, |ts| timestamps(self.clock, ts));
        let frame = build(
            conn.local,
            conn.peer,
            seq,
            conn.rcv_nxt,
            flags,
            512,
            options,
            payload,
        );
        push_bounded(&mut self.outbox, frame);
    }

    /// The next segment of connection `c`, advancing its sequence.
    fn segment(&mut self, c: usize, flags: TcpFlags, payload: &[u8]) {
        let seq = self.conns[c].snd_nxt;
        self.conns[c].snd_nxt = seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags.contains(TcpFlags::FIN)));
        self.send(c, seq, flags, payload);
    }

    fn syn_ack(&mut self, c: usize) {
        self.clock = self.clock.wrapping_add(1);
        let conn = &self.conns[c];
        let mut options = Vec::new();
        TcpOption::MaxSegmentSize(1460).emit(&mut options);
        TcpOption::SackPermitted.emit(&mut options);
        if let Some(ts) = conn.ts_recent {
            TcpOption::Timestamps {
                tsval: TsVal::new(self.clock),
                tsecr: TsVal::new(ts),
            }
            .emit(&mut options);
        }
        if conn.window_scale {
            options.push(1);
            TcpOption::WindowScale([9, 10][usize::from(self.mac == MACS[1])]).emit(&mut options);
        }
        let frame = build(
            conn.local,
            conn.peer,
            conn.snd_nxt.wrapping_sub(1),
            conn.rcv_nxt,
            TcpFlags::SYN | TcpFlags::ACK,
            65160,
            options,
            &[],
        );
        push_bounded(&mut self.outbox, frame);
    }

    fn receive(&mut self, frame: &[u8]) {
        let Some(seg) = parses(frame) else {
            return;
        };
        if !checksums_hold(frame) || !self.addrs.contains(&seg.dst_addr) {
            return;
        }
        let local = End {
            mac: self.mac,
            addr: SocketAddrV4::new(seg.dst_addr, seg.dst_port),
        };
        let peer = End {
            mac: seg.src_mac,
            addr: SocketAddrV4::new(seg.src_addr, seg.src_port),
        };
        let found = self
            .conns
            .iter()
            .position(|c| c.local.addr == local.addr && c.peer.addr == peer.addr);
        let flags = seg.flags;
        let len = seg.payload_len() as u32;
        if flags.contains(TcpFlags::RST) {
            if let Some(c) = found {
                self.conns.remove(c);
            }
            return;
        }
        if flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK) {
            if let Some(c) = found {
                if self.conns[c].isn_peer == seg.seq.raw() {
                    self.syn_ack(c);
                    return;
                }
                self.conns.remove(c);
            }
            if seg.dst_port != HTTP {
                return self.reset(local, peer, &seg);
            }
            let mut window_scale = false;
            for option in TcpOptions::new(seg.options(frame)).map_while(Result::ok) {
                window_scale |= matches!(option, TcpOption::WindowScale(_));
            }
            if self.conns.len() == 16 {
                self.conns.remove(0);
            }
            self.isn = self.isn.wrapping_add(0x0101_0101);
            self.conns.push(KernelConn {
                local,
                peer,
                isn_peer: seg.seq.raw(),
                snd_nxt: self.isn.wrapping_add(1),
                rcv_nxt: seg.seq.raw().wrapping_add(1),
                ts_recent: seg.tsval(frame).map(TsVal::raw),
                window_scale,
            });
            return self.syn_ack(self.conns.len() - 1);
        }
        let Some(c) = found else {
            return self.reset(local, peer, &seg);
        };
        if let (Some(ts), Some(recent)) = (
            seg.tsval(frame).map(TsVal::raw),
            &mut self.conns[c].ts_recent,
        ) {
            *recent = ts;
        }
        let fin = flags.contains(TcpFlags::FIN);
        if len == 0 && !fin {
            return;
        }
        if seg.seq.raw() != self.conns[c].rcv_nxt {
            // Out of order or old: a duplicate ACK.
            let seq = self.conns[c].snd_nxt;
            return self.send(c, seq, TcpFlags::ACK, &[]);
        }
        let conn = &mut self.conns[c];
        conn.rcv_nxt = conn.rcv_nxt.wrapping_add(len).wrapping_add(u32::from(fin));
        if len > 0 {
            self.segment(c, TcpFlags::ACK | TcpFlags::PSH, RESPONSE);
        }
        if fin {
            self.segment(c, TcpFlags::FIN | TcpFlags::ACK, &[]);
        }
    }

    /// What Linux answers a segment of no connection with.
    fn reset(&mut self, local: End, peer: End, seg: &TcpFrame) {
        let frame = if seg.flags.contains(TcpFlags::ACK) {
            build(
                local,
                peer,
                seg.ack.raw(),
                0,
                TcpFlags::RST,
                0,
                Vec::new(),
                &[],
            )
        } else {
            let len = seg.payload_len() as u32
                + u32::from(seg.flags.contains(TcpFlags::SYN))
                + u32::from(seg.flags.contains(TcpFlags::FIN));
            build(
                local,
                peer,
                0,
                seg.seq.raw().wrapping_add(len),
                TcpFlags::RST | TcpFlags::ACK,
                0,
                Vec::new(),
                &[],
            )
        };
        push_bounded(&mut self.outbox, frame);
    }

    /// A segment the input asks for, on connection `conn` (if any).
    fn send_op(&mut self, conn: usize, send: KernelSend) {
        if self.conns.is_empty() {
            return;
        }
        let c = conn % self.conns.len();
        match send {
            KernelSend::Data { len } => {
                let payload = vec![b'd'; usize::from(len % 4096)];
                self.segment(c, TcpFlags::ACK | TcpFlags::PSH, &payload);
            }
            KernelSend::Fin => self.segment(c, TcpFlags::FIN | TcpFlags::ACK, &[]),
            KernelSend::Rst => {
                let seq = self.conns[c].snd_nxt;
                self.send(c, seq, TcpFlags::RST, &[]);
            }
            KernelSend::Custom(x) => {
                let conn = &self.conns[c];
                let frame = build(
                    conn.local,
                    conn.peer,
                    conn.snd_nxt.wrapping_add(x.seq_delta as u32),
                    conn.rcv_nxt.wrapping_add(x.ack_delta as u32),
                    x.flags,
                    x.window,
                    x.options,
                    &x.payload,
                );
                push_bounded(&mut self.outbox, frame);
            }
        }
    }
}

struct Node {
    engine: Engine,
    counters: Arc<WorkerCounters>,
    kernel: Kernel,
    /// Frames on the wire toward this node.
    wire: VecDeque<Vec<u8>>,
    /// Messages from the peer.
    inbox: VecDeque<Message>,
    last_poll: Option<Duration>,
}

impl Node {
    fn new(node: usize) -> Node {
        let counters = Arc::new(WorkerCounters::default());
        let peer = 1 - node;
        let cfg = EngineConfig {
            worker: 0,
            workers: 1,
            own_addr: ADDRS[node],
            own_mac: MACS[node],
            vip: Some(VIP),
            handoff_net: None,
            services: vec![(HTTP, ServiceKind::Http)],
            peers: vec![PeerInfo {
                name: ["a", "b"][peer].into(),
                mac: baton_fastpath::peer_mac::PeerMac::fixed(MACS[peer]),
            }],
            hold_bytes: 4096,
            hold_segments: 4,
            hold_timeout: HOLD_TIMEOUT,
            handoff_timeout: HANDOFF_TIMEOUT,
            linger: LINGER,
            idle_timeout: IDLE_TIMEOUT,
            recovery_wait: Duration::from_millis(300),
            orphan_timeout: Duration::from_secs(2),
            // Small, so that eviction and a full table are reached.
            max_flows: 3,
            half_open: 3,
            half_open_timeout: Duration::from_millis(500),
        };
        let mut engine = Engine::new(cfg, Box::new(ByPath), Arc::clone(&counters));
        engine.on_peer_up(0);
        Node {
            engine,
            counters,
            kernel: Kernel::new(node),
            wire: VecDeque::new(),
            inbox: VecDeque::new(),
            last_poll: None,
        }
    }
}

struct Cluster {
    nodes: [Node; 2],
    clients: Vec<ClientConn>,
    start: Instant,
    elapsed: Duration,
    /// Handoff ids seen in messages, for forged answers to name.
    ids: Vec<u64>,
    /// Past their Ethernet header, the frames fed to an engine whose
    /// checksums did not hold: copies the engine releases or forwards
    /// keep them bad.
    bad: HashSet<Vec<u8>>,
}

impl Cluster {
    fn new() -> Cluster {
        let nodes = [Node::new(0), Node::new(1)];
        Cluster {
            nodes,
            clients: (0..CONNS).map(ClientConn::new).collect(),
            // After the engines, whose timer wheels start at their creation.
            start: Instant::now(),
            elapsed: Duration::ZERO,
            ids: Vec::new(),
            bad: HashSet::new(),
        }
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Client { conn, send } => {
                // Straight to the node: the client's own frames are
                // reordered or repeated by the input itself.
                if let Some(frame) = self.clients[conn].frame(send) {
                    let node = usize::from(self.clients[conn].server.mac == MACS[1]);
                    self.feed_wire(node, frame);
                }
            }
            Op::Run => self.run(),
            Op::Advance(by) => {
                self.elapsed += by;
                for node in 0..2 {
                    self.poll(node);
                }
            }
            Op::Message { node, fate, index } => {
                let inbox = &mut self.nodes[node].inbox;
                if inbox.is_empty() {
                    return;
                }
                let i = index % inbox.len();
                let msg = match fate {
                    Fate::Drop => {
                        inbox.remove(i);
                        return;
                    }
                    Fate::Deliver => inbox.remove(i),
                    Fate::Duplicate => inbox.get(i).cloned(),
                };
                if let Some(msg) = msg {
                    self.message(node, msg);
                }
            }
            Op::Kernel { node, fate, index } => {
                if let Some(frame) = take(&mut self.nodes[node].kernel.outbox, fate, index) {
                    self.feed_host(node, frame);
                }
            }
            Op::Wire { node, fate, index } => {
                if let Some(frame) = take(&mut self.nodes[node].wire, fate, index) {
                    self.feed_wire(node, frame);
                }
            }
            Op::KernelSend { node, conn, send } => self.nodes[node].kernel.send_op(conn, send),
            Op::PeerDown {
                node,
                lose_messages,
            } => {
                if lose_messages {
                    // The channel is gone, and what was in flight with it.
                    self.nodes[0].inbox.clear();
                    self.nodes[1].inbox.clear();
                }
                let now = self.now();
                self.nodes[node].engine.on_peer_down(0, now);
                self.collect(node);
            }
            Op::PeerUp { node } => self.nodes[node].engine.on_peer_up(0),
            Op::Forge { node, pick, msg } => {
                let id = match self.ids.len() {
                    0 => u64::from(pick),
                    n => self.ids[usize::from(pick) % n] ^ u64::from(pick >> 7),
                };
                if let Some(msg) = through_codec(&with_id(msg, id)) {
                    self.message(node, msg);
                }
            }
            Op::Raw {
                node,
                from_host,
                frame,
            } => {
                if from_host {
                    self.feed_host(node, frame);
                } else {
                    self.feed_wire(node, frame);
                }
            }
            Op::Corrupt {
                node,
                kernel,
                index,
                at,
                bits,
            } => {
                let queue = if kernel {
                    &mut self.nodes[node].kernel.outbox
                } else {
                    &mut self.nodes[node].wire
                };
                if queue.is_empty() {
                    return;
                }
                let i = index % queue.len();
                let frame = &mut queue[i];
                if let Some(byte) = frame.get_mut(at) {
                    *byte ^= bits;
                }
            }
        }
    }

    /// Delivers what is pending, a queue at a time, until nothing is.
    fn run(&mut self) {
        for _ in 0..RUN_STEPS {
            let mut moved = false;
            for node in 0..2 {
                if let Some(msg) = self.nodes[node].inbox.pop_front() {
                    self.message(node, msg);
                    moved = true;
                }
                if let Some(frame) = self.nodes[node].kernel.outbox.pop_front() {
                    self.feed_host(node, frame);
                    moved = true;
                }
                if let Some(frame) = self.nodes[node].wire.pop_front() {
                    self.feed_wire(node, frame);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn message(&mut self, node: usize, msg: Message) {
        let now = self.now();
        self.nodes[node].engine.on_message(0, msg, now);
        self.collect(node);
    }

    /// A frame onto the wire: to the node or client its MAC names.
    fn onto_wire(&mut self, frame: Vec<u8>) {
        let dst = EthernetFrame::new_checked(&frame[..]).map(|eth| eth.dst_addr());
        match dst {
            Ok(mac) if mac == MACS[0] => push_bounded(&mut self.nodes[0].wire, frame),
            Ok(mac) if mac == MACS[1] => push_bounded(&mut self.nodes[1].wire, frame),
            _ => self.client_gets(&frame),
        }
    }

    fn client_gets(&mut self, frame: &[u8]) {
        let Some(seg) = parses(frame) else {
            return;
        };
        if seg.dst_addr != CLIENT {
            return;
        }
        if let Some(conn) = self
            .clients
            .iter_mut()
            .find(|c| c.me.addr.port() == seg.dst_port)
        {
            conn.sees(&seg, frame);
        }
    }

    /// Notes whether `frame`'s checksums hold before it goes into an
    /// engine; returns whether they do, and its parse.
    fn fed(&mut self, frame: &[u8]) -> (bool, Option<TcpFrame>) {
        let valid = checksums_hold(frame);
        if !valid && self.bad.len() < 4096 {
            self.bad.insert(past_ethernet(frame).to_vec());
        }
        (valid, parses(frame))
    }

    fn feed_wire(&mut self, node: usize, mut frame: Vec<u8>) {
        let (valid, parsed) = self.fed(&frame);
        let original = frame.clone();
        let now = self.now();
        let verdict = self.nodes[node].engine.from_wire(&mut frame, now);
        passed(valid, parsed, &original, &frame, verdict, Verdict::ToHost);
        match verdict {
            Verdict::ToHost => self.nodes[node].kernel.receive(&frame),
            Verdict::ToWire => self.onto_wire(frame),
            Verdict::Drop | Verdict::Consumed => {}
        }
        self.collect(node);
    }

    fn feed_host(&mut self, node: usize, mut frame: Vec<u8>) {
        let (valid, parsed) = self.fed(&frame);
        let original = frame.clone();
        let now = self.now();
        let verdict = self.nodes[node].engine.from_host(&mut frame, now);
        passed(valid, parsed, &original, &frame, verdict, Verdict::ToWire);
        match verdict {
            Verdict::ToHost => self.nodes[node].kernel.receive(&frame),
            Verdict::ToWire => self.onto_wire(frame),
            Verdict::Drop | Verdict::Consumed => {}
        }
        self.collect(node);
    }

    /// Takes what `node`'s engine produced and sends it on.
    fn collect(&mut self, node: usize) {
        let out = self.nodes[node].engine.take_output();
        for frame in out.to_host {
            self.check_emitted(&frame, "to host");
            self.nodes[node].kernel.receive(&frame);
        }
        for frame in out.to_wire {
            self.check_emitted(&frame, "to wire");
            self.onto_wire(frame);
        }
        for (peer, msg) in out.messages {
            assert_eq!(peer, 0, "a message for a peer that does not exist");
            let id = match &msg {
                Message::HandoffRequest(m) => Some(m.id),
                Message::HandoffAccept(m) => Some(m.id),
                Message::HandoffReject(m) => Some(m.id),
                Message::HandoffClosed(m) => Some(m.id),
                Message::HandoffCancel(m) => Some(m.id),
                Message::Release(m) => Some(m.id),
                Message::Released(m) => Some(m.id),
                Message::ReleaseRefused(m) => Some(m.id),
                Message::FlowsHeld(m) => m.flows.first().map(|f| f.id),
                Message::Load(_) => None,
            };
            if let Some(id) = id {
                if !self.ids.contains(&id) && self.ids.len() < 64 {
                    self.ids.push(id);
                }
            }
            assert!(
                try_encode(&msg).is_ok(),
                "a message the codec refuses: {msg:?}"
            );
            push_bounded(&mut self.nodes[1 - node].inbox, msg);
        }
        let load = self.nodes[node].engine.load();
        assert!(load.handed_in <= load.active_connections, "{load:?}");
        assert!(load.pending_handoffs <= load.active_connections, "{load:?}");
    }

    /// A frame the engine built, or a held or queued one it released.
    fn check_emitted(&self, frame: &[u8], whither: &str) {
        assert!(
            parses(frame).is_some(),
            "{whither}: does not parse: {frame:02x?}"
        );
        assert!(
            checksums_hold(frame) || self.bad.contains(past_ethernet(frame)),
            "{whither}: bad checksums: {frame:02x?}"
        );
    }

    fn poll(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.engine.poll_timers(self.start + self.elapsed);
        let sure = n.last_poll.is_none_or(|t| self.elapsed >= t + SURE_RUN);
        n.last_poll = Some(self.elapsed);
        if sure {
            let load = n.engine.load();
            assert_eq!(
                n.counters.get(Counter::FlowsActive),
                u64::from(load.active_connections),
                "flows_active after a timer run"
            );
            assert_eq!(
                n.counters.get(Counter::HandoffsPending),
                u64::from(load.pending_handoffs),
                "handoffs_pending after a timer run"
            );
        }
        self.collect(node);
    }

    /// Time goes far past every timeout, with nothing delivered: every
    /// flow must end on its own. Some ends take several timer runs (a
    /// handoff timed out, decided again, refused, its refusal retransmitted
    /// until the client is reset), so there are enough of them.
    fn drain(&mut self) {
        for _ in 0..16 {
            self.elapsed += FAR;
            for node in 0..2 {
                self.poll(node);
            }
        }
        for (node, n) in self.nodes.iter().enumerate() {
            let load = n.engine.load();
            assert_eq!(
                load,
                Load::default(),
                "node {node}: flows left after every timeout"
            );
        }
    }
}

/// A message with id 0, of any type, with fields from the input.
fn forge(input: &mut Input<'_>) -> Message {
    let id = 0;
    let conn = |input: &mut Input<'_>| {
        SocketAddrV4::new(CLIENT, 40000 + u16::from(input.u8()) % CONNS as u16)
    };
    match input.u8() % 10 {
        7 => Message::Release(Release {
            id,
            client: conn(input),
            at: SeqNum::new(input.u32()),
            client_ack: SeqNum::new(input.u32()),
        }),
        8 => Message::Released(Released {
            id,
            client: conn(input),
            server_next: SeqNum::new(input.u32()),
            tsval: (input.u8() & 1 == 1).then(|| TsVal::new(input.u32())),
        }),
        9 => Message::ReleaseRefused(ReleaseRefused {
            id,
            client: conn(input),
        }),
        6 => Message::FlowsHeld(FlowsHeld {
            flows: vec![HeldFlow {
                id,
                key: FlowKey {
                    client: conn(input),
                    server: SocketAddrV4::new(ADDRS[usize::from(input.u8() & 1)], HTTP),
                },
                client_mac: MAC_C.0,
            }],
            last: input.u8() & 1 == 1,
        }),
        0 => Message::HandoffAccept(HandoffAccept {
            id,
            isn_target: SeqNum::new(input.u32()),
            client: conn(input),
        }),
        5 => Message::HandoffCancel(HandoffCancel {
            id,
            client: conn(input),
        }),
        1 => Message::HandoffReject(HandoffReject {
            id,
            client: conn(input),
            reason: RejectReason::from_code(input.u8()),
        }),
        2 => Message::HandoffClosed(HandoffClosed {
            id,
            client: conn(input),
        }),
        3 => Message::Load(Load {
            active_connections: input.u32(),
            pending_handoffs: input.u32(),
            handed_in: input.u32(),
            draining: input.u8() & 1 == 1,
        }),
        _ => {
            let client = SocketAddrV4::new(CLIENT, 40000 + u16::from(input.u8()) % CONNS as u16);
            let b = input.u8();
            let server = [ADDRS[0], ADDRS[1], VIP, Ipv4Addr::from(input.u32())];
            Message::HandoffRequest(HandoffRequest {
                id,
                key: FlowKey {
                    client,
                    server: SocketAddrV4::new(
                        server[usize::from(b & 3)],
                        if b & 4 == 0 { HTTP } else { input.u16() },
                    ),
                },
                client_mac: MAC_C.0,
                isn_client: SeqNum::new(input.u32()),
                isn_origin: SeqNum::new(input.u32()),
                // Up to one byte more than the codec takes.
                client_syn_options: input.bytes(41),
                origin_synack_options: input.bytes(41),
                client_window: input.u16(),
                client_tsval: (b & 8 != 0).then(|| TsVal::new(input.u32())),
                origin_tsval: (b & 16 != 0).then(|| TsVal::new(input.u32())),
                held: if b & 32 == 0 {
                    request(input.u8(), input.u8())
                } else {
                    input.bytes(255)
                },
            })
        }
    }
}

fn with_id(mut msg: Message, id: u64) -> Message {
    match &mut msg {
        Message::HandoffRequest(m) => m.id = id,
        Message::HandoffAccept(m) => m.id = id,
        Message::HandoffReject(m) => m.id = id,
        Message::HandoffClosed(m) => m.id = id,
        Message::HandoffCancel(m) => m.id = id,
        Message::Release(m) => m.id = id,
        Message::Released(m) => m.id = id,
        Message::ReleaseRefused(m) => m.id = id,
        Message::FlowsHeld(m) => m.flows.iter_mut().for_each(|f| f.id = id),
        Message::Load(_) => {}
    }
    msg
}

/// `msg` as it comes out of the control channel's decoder: one the
/// decoder would refuse never reaches an engine.
fn through_codec(msg: &Message) -> Option<Message> {
    let frame = try_encode(msg).ok()?;
    let mut decoder = Decoder::new();
    decoder.push(&frame);
    decoder.next().ok().flatten()
}

fn take(queue: &mut VecDeque<Vec<u8>>, fate: Fate, index: usize) -> Option<Vec<u8>> {
    if queue.is_empty() {
        return None;
    }
    let i = index % queue.len();
    match fate {
        Fate::Deliver => queue.remove(i),
        Fate::Drop => {
            queue.remove(i);
            None
        }
        Fate::Duplicate => queue.get(i).cloned(),
    }
}

/// Checks a frame an engine passed on with `verdict`: `unmanaged` is what
/// a frame that is not IPv4/TCP (or does not parse) gets, unchanged.
fn passed(
    valid: bool,
    parsed: Option<TcpFrame>,
    original: &[u8],
    frame: &[u8],
    verdict: Verdict,
    unmanaged: Verdict,
) {
    if parsed.is_none() {
        assert_eq!(verdict, unmanaged, "an unmanaged frame");
        assert_eq!(frame, original, "an unmanaged frame changed");
        return;
    }
    if matches!(verdict, Verdict::ToHost | Verdict::ToWire) {
        assert!(parses(frame).is_some(), "passed on, and no longer parses");
        if valid {
            assert!(checksums_hold(frame), "passed on with bad checksums");
        }
    }
}
