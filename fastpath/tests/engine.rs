//! Two handoff engines, an origin and a target, driven against each other
//! in memory with frames as Linux sends them. The kernels' part is played
//! by frames built here; the netns end-to-end tests use real kernels.

// The casts here are of small test constants (REQUEST's length).
#![allow(clippy::cast_possible_truncation)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_fastpath::counters::{Counter, WorkerCounters};
use baton_fastpath::engine::{
    Engine, EngineConfig, Load, PeerInfo, Placement, Placer, ServiceKind, Verdict,
};
use baton_fastpath::packet::tcp_options::{TcpOption, TcpOptions};
use baton_fastpath::packet::{
    EthernetFrame, Ipv4Packet, MacAddr, SeqNum, TcpFlags, TcpFrameBuilder, TcpPacket, TsVal,
};
use baton_handoff::msg::{HandoffReject, HandoffRequest, Message, RejectReason};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
const MAC_C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x64]);
const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x12]);
const CPORT: u16 = 40000;
const ISN_C: u32 = 0xffff_fff0; // wraps during the test
const ISN_A: u32 = 5000;
const ISN_B: u32 = 900_000;
const REQUEST: &[u8] = b"GET /b/x HTTP/1.1\r\nHost: h\r\n\r\n";

/// Paths under /b/ belong to a pool of peer 0 and this node, those under
/// /c/ to one of peer 0 alone, those under /d/ to one of peers 0 and 1;
/// all else is local.
struct ByPath;

impl Placer for ByPath {
    fn place(&mut self, held: &[u8], _: ServiceKind, can_take: &[bool], _: Load) -> Placement {
        let first_of = |members: &[usize]| members.iter().copied().find(|&p| can_take[p]);
        if !held.ends_with(b"\r\n\r\n") {
            Placement::NeedMore
        } else if held.starts_with(b"GET /b/") {
            first_of(&[0]).map_or(Placement::Local, Placement::Peer)
        } else if held.starts_with(b"GET /c/") {
            first_of(&[0]).map_or(Placement::Unavailable, Placement::Peer)
        } else if held.starts_with(b"GET /d/") {
            first_of(&[0, 1]).map_or(Placement::Unavailable, Placement::Peer)
        } else if held.starts_with(b"GET ") {
            Placement::Local
        } else {
            Placement::Invalid
        }
    }
}

fn engine(own: Ipv4Addr, mac: MacAddr, peer: (&str, MacAddr)) -> (Engine, Arc<WorkerCounters>) {
    engine_with_capacity(own, mac, peer, 1000)
}

fn engine_with_capacity(
    own: Ipv4Addr,
    mac: MacAddr,
    peer: (&str, MacAddr),
    max_flows: usize,
) -> (Engine, Arc<WorkerCounters>) {
    engine_from(EngineConfig {
        max_flows,
        ..config(own, mac, peer)
    })
}

fn engine_from(cfg: EngineConfig) -> (Engine, Arc<WorkerCounters>) {
    let counters = Arc::new(WorkerCounters::default());
    let mut e = Engine::new(cfg, Box::new(ByPath), Arc::clone(&counters));
    e.on_peer_up(0);
    // Nothing held for the peer: only its resync, done.
    assert_eq!(e.take_output().resync_done, [0]);
    (e, counters)
}

fn config(own: Ipv4Addr, mac: MacAddr, peer: (&str, MacAddr)) -> EngineConfig {
    EngineConfig {
        worker: 0,
        workers: 1,
        own_addr: own,
        own_mac: mac,
        vip: None,
        handoff_net: None,
        services: vec![(80, ServiceKind::Http)],
        peers: vec![PeerInfo {
            name: peer.0.into(),
            mac: baton_fastpath::peer_mac::PeerMac::fixed(peer.1),
        }],
        hold_bytes: 4096,
        hold_segments: 4,
        hold_timeout: Duration::from_millis(200),
        handoff_timeout: Duration::from_millis(500),
        linger: Duration::from_millis(100),
        idle_timeout: Duration::from_secs(60),
        recovery_wait: Duration::ZERO,
        orphan_timeout: Duration::from_secs(10),
        max_flows: 1000,
        half_open: 1000,
        half_open_timeout: Duration::from_secs(3),
    }
}

fn ts(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1];
    TcpOption::Timestamps {
        tsval: TsVal::new(tsval),
        tsecr: TsVal::new(tsecr),
    }
    .emit(&mut o);
    o
}

fn syn_options(ws: u8, tsval: u32, tsecr: u32) -> Vec<u8> {
    // MSS, SACK-permitted, TS, NOP, WS: Linux's order.
    let mut o = Vec::new();
    TcpOption::MaxSegmentSize(1460).emit(&mut o);
    TcpOption::SackPermitted.emit(&mut o);
    TcpOption::Timestamps {
        tsval: TsVal::new(tsval),
        tsecr: TsVal::new(tsecr),
    }
    .emit(&mut o);
    o.push(1);
    TcpOption::WindowScale(ws).emit(&mut o);
    o
}

#[allow(clippy::too_many_arguments)]
fn frame(
    macs: (MacAddr, MacAddr),
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    options: Vec<u8>,
    payload: &[u8],
) -> Vec<u8> {
    TcpFrameBuilder {
        src_mac: macs.0,
        dst_mac: macs.1,
        src_addr: src.0,
        dst_addr: dst.0,
        src_port: src.1,
        dst_port: dst.1,
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

fn from_client(seq: u32, ack: u32, flags: TcpFlags, options: Vec<u8>, payload: &[u8]) -> Vec<u8> {
    frame(
        (MAC_C, MAC_A),
        (CLIENT, CPORT),
        (A, 80),
        seq,
        ack,
        flags,
        502,
        options,
        payload,
    )
}

/// The origin kernel's SYN-ACK to the client, as Linux sends it.
fn origin_kernel_synack() -> Vec<u8> {
    frame(
        (MAC_A, MAC_C),
        (A, 80),
        (CLIENT, CPORT),
        ISN_A,
        ISN_C.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        syn_options(9, 7000, 100),
        &[],
    )
}

/// The target kernel's SYN-ACK to the replayed SYN.
fn target_kernel_synack() -> Vec<u8> {
    frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        ISN_B,
        ISN_C.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        syn_options(10, 50, 100),
        &[],
    )
}

/// The fields a test checks, with both checksums verified.
struct Seen {
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    ts: Option<(u32, u32)>,
    payload: Vec<u8>,
}

fn seen(f: &[u8]) -> Seen {
    let eth = EthernetFrame::new_checked(f).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum(), "IPv4 checksum");
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    assert!(
        tcp.verify_checksum(ip.src_addr(), ip.dst_addr()),
        "TCP checksum"
    );
    let ts = TcpOptions::new(tcp.options())
        .map_while(Result::ok)
        .find_map(|o| match o {
            TcpOption::Timestamps { tsval, tsecr } => Some((tsval.raw(), tsecr.raw())),
            _ => None,
        });
    Seen {
        dst_mac: eth.dst_addr(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        seq: tcp.seq_number().raw(),
        ack: tcp.ack_number().raw(),
        flags: tcp.flags(),
        window: tcp.window_len(),
        ts,
        payload: tcp.payload().to_vec(),
    }
}

/// Origin A after the handshake with the client; the request not yet sent.
fn handshake(a: &mut Engine, now: Instant) {
    let mut syn = from_client(ISN_C, 0, TcpFlags::SYN, syn_options(7, 100, 0), &[]);
    assert_eq!(a.from_wire(&mut syn, now), Verdict::ToHost);
    let mut synack = origin_kernel_synack();
    assert_eq!(a.from_host(&mut synack, now), Verdict::ToWire);
    let mut ack = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(101, 7000),
        &[],
    );
    // Withheld: A's kernel completes the connection with the request.
    assert_eq!(a.from_wire(&mut ack, now), Verdict::Drop);
}

/// The handshake of a connection from the client's `port` to A, as the
/// wire and A's kernel carry it: SYN, SYN-ACK, ACK. The ACK's verdict.
fn open_tracked(a: &mut Engine, port: u16, now: Instant) -> Verdict {
    let mut syn = frame(
        (MAC_C, MAC_A),
        (CLIENT, port),
        (A, 80),
        ISN_C,
        0,
        TcpFlags::SYN,
        502,
        syn_options(7, 100, 0),
        &[],
    );
    assert_eq!(a.from_wire(&mut syn, now), Verdict::ToHost);
    let mut synack = frame(
        (MAC_A, MAC_C),
        (A, 80),
        (CLIENT, port),
        ISN_A,
        ISN_C.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        syn_options(9, 7000, 100),
        &[],
    );
    assert_eq!(a.from_host(&mut synack, now), Verdict::ToWire);
    let mut ack = frame(
        (MAC_C, MAC_A),
        (CLIENT, port),
        (A, 80),
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        502,
        ts(101, 7000),
        &[],
    );
    a.from_wire(&mut ack, now)
}

/// Origin `a` after the handshake and the request for B's content: the
/// HandoffRequest it sent.
fn handoff_request(a: &mut Engine, now: Instant) -> HandoffRequest {
    handshake(a, now);
    a.from_wire(&mut request_frame(), now);
    let [(0, Message::HandoffRequest(req))] = &a.take_output().messages[..] else {
        panic!("no HandoffRequest")
    };
    req.clone()
}

fn request_frame() -> Vec<u8> {
    request_for(REQUEST)
}

fn request_for(request: &[u8]) -> Vec<u8> {
    from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK | TcpFlags::PSH,
        ts(102, 7000),
        request,
    )
}

fn reject(id: u64) -> Message {
    Message::HandoffReject(HandoffReject {
        id,
        client: std::net::SocketAddrV4::new(CLIENT, CPORT),
        reason: RejectReason::KernelRefused,
    })
}

#[test]
fn a_connection_is_handed_off_and_translated_both_ways() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    let (mut b, cb) = engine(B, MAC_B, ("a", MAC_A));
    handshake(&mut a, now);

    // The request is held and a handoff requested.
    assert_eq!(a.from_wire(&mut request_frame(), now), Verdict::Consumed);
    let out = a.take_output();
    assert!(
        out.to_host.is_empty(),
        "nothing reaches the origin's kernel"
    );
    let [(0, Message::HandoffRequest(req))] = &out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_eq!(
        (req.isn_client.raw(), req.isn_origin.raw(), &req.held[..]),
        (ISN_C, ISN_A, REQUEST)
    );

    // The target replays the client's SYN, options and all, to its kernel.
    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    let out = b.take_output();
    let syn = seen(&out.to_host[0]);
    assert_eq!(
        (syn.src, syn.dst, syn.seq, syn.flags),
        (CLIENT, B, ISN_C, TcpFlags::SYN)
    );
    assert_eq!(syn.ts, Some((100, 0)));

    // Its kernel answers; the SYN-ACK is consumed and the handshake
    // finished with the held request.
    let mut kernel_synack = target_kernel_synack();
    assert_eq!(b.from_host(&mut kernel_synack, now), Verdict::Consumed);
    let out = b.take_output();
    // One segment: the request completes the kernel's handshake.
    assert_eq!(out.to_host.len(), 1);
    let data = seen(&out.to_host[0]);
    assert_eq!(
        (data.seq, data.ack, data.flags, &data.payload[..]),
        (
            ISN_C.wrapping_add(1),
            ISN_B + 1,
            TcpFlags::ACK | TcpFlags::PSH,
            REQUEST
        )
    );
    assert_eq!(data.ts, Some((102, 50)));
    let [(0, Message::HandoffAccept(accept))] = out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_eq!(accept.isn_target, SeqNum::new(ISN_B));
    assert_eq!(cb.get(Counter::HandedIn), 1);

    // The origin resets its own kernel's copy, at the exact sequence number.
    a.on_message(0, Message::HandoffAccept(accept), now);
    let out = a.take_output();
    let rst = seen(&out.to_host[0]);
    assert_eq!(
        (rst.src, rst.dst, rst.seq, rst.flags),
        (CLIENT, A, ISN_C.wrapping_add(1), TcpFlags::RST)
    );
    assert_eq!(ca.get(Counter::HandedOff), 1);
    let latency = ca.handoff_latency.0.read();
    assert_eq!(latency.count(), 1, "{latency:?}");
    assert_eq!(latency.counts[0], 1, "asked and accepted at one instant");
    // The gauges, published on the next timer run.
    a.poll_timers(now + Duration::from_millis(100));
    b.poll_timers(now + Duration::from_millis(100));
    assert_eq!(
        (
            ca.get(Counter::FlowsActive),
            ca.get(Counter::HandedOffActive)
        ),
        (1, 1)
    );
    assert_eq!(
        (
            cb.get(Counter::FlowsActive),
            cb.get(Counter::HandedInActive)
        ),
        (1, 1)
    );

    // The target's kernel responds: the client sees it come from A, in A's
    // sequence and timestamp space, with the window in A's scale.
    let mut response = frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        ISN_B + 1,
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        TcpFlags::ACK | TcpFlags::PSH,
        100,
        ts(60, 102),
        b"HTTP/1.1 200 OK\r\n\r\nhi",
    );
    assert_eq!(b.from_host(&mut response, now), Verdict::ToWire);
    let r = seen(&response);
    assert_eq!((r.src, r.dst, r.dst_mac), (A, CLIENT, MAC_C));
    assert_eq!(r.seq, ISN_A + 1);
    assert_eq!(r.ts, Some((60 + (7000 - 50), 102)));
    assert_eq!(r.window, 200, "100 << 10 >> 9");

    // The client's ACK goes to A, which forwards it to B, which translates
    // it for its kernel.
    let client_ack_no = ISN_A + 1 + 21;
    let mut ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        client_ack_no,
        TcpFlags::ACK,
        ts(103, 7010),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack, now), Verdict::ToWire);
    assert_eq!(seen(&ack).dst_mac, MAC_B);
    assert_eq!(b.from_wire(&mut ack, now), Verdict::ToHost);
    let k = seen(&ack);
    assert_eq!((k.dst, k.ack), (B, ISN_B + 1 + 21));
    assert_eq!(k.ts, Some((103, 60)));
    assert_eq!(cb.get(Counter::TranslatedPackets), 2);

    // The origin's kernel, reset, has nothing more to say.
    let mut stale = frame(
        (MAC_A, MAC_C),
        (A, 80),
        (CLIENT, CPORT),
        ISN_A + 1,
        0,
        TcpFlags::ACK,
        0,
        vec![],
        &[],
    );
    assert_eq!(a.from_host(&mut stale, now), Verdict::Drop);

    // Both sides close; the target lingers, then tells the origin, and
    // both forget the flow.
    let mut fin = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        client_ack_no,
        TcpFlags::FIN | TcpFlags::ACK,
        ts(104, 7010),
        &[],
    );
    a.from_wire(&mut fin, now);
    b.from_wire(&mut fin, now);
    let mut kfin = frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        ISN_B + 22,
        0,
        TcpFlags::FIN | TcpFlags::ACK,
        100,
        ts(61, 104),
        &[],
    );
    b.from_host(&mut kfin, now);
    b.poll_timers(now + Duration::from_secs(1));
    let out = b.take_output();
    let [(0, closed @ Message::HandoffClosed(_))] = &out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    a.on_message(0, closed.clone(), now);
    assert_eq!(a.load().active_connections, 0);
    assert_eq!(b.load().active_connections, 0);
}

/// The kernel here completes a connection with its request's first
/// segment, not with the handshake ACK: a connection handed off never
/// reaches its web server. A client that waits so long before its request
/// that the kernel sends its SYN-ACK again completes it with its answer.
#[test]
fn the_handshake_ack_is_withheld_until_the_request_or_another_ack_comes() {
    let now = Instant::now();
    let (mut a, counters) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    assert_eq!(counters.get(Counter::HandshakesDeferred), 1);
    assert!(a.take_output().to_host.is_empty());
    let mut again = origin_kernel_synack();
    assert_eq!(a.from_host(&mut again, now), Verdict::ToWire);
    let mut ack = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(102, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack, now), Verdict::ToHost);
    assert_eq!(counters.get(Counter::HandshakesDeferred), 1);
    // Still tracked: the request is decided as any other.
    assert_eq!(a.from_wire(&mut request_frame(), now), Verdict::Consumed);
    assert!(matches!(
        &a.take_output().messages[..],
        [(0, Message::HandoffRequest(_))]
    ));
}

#[test]
fn a_local_request_is_released_to_the_kernel_unchanged_and_routed_on() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    let original = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(102, 7000),
        b"GET /a HTTP/1.1\r\n\r\n",
    );
    let mut f = original.clone();
    assert_eq!(a.from_wire(&mut f, now), Verdict::Consumed);
    let out = a.take_output();
    assert_eq!(out.to_host, vec![original]);
    assert!(out.messages.is_empty());
    assert_eq!(ca.get(Counter::ServedLocal), 1);
    assert_eq!(
        a.load().active_connections,
        1,
        "an HTTP connection served here stays, its later requests routed"
    );
    // Its client's close ends that: the rest is the kernel's, untracked.
    let mut fin = from_client(
        ISN_C.wrapping_add(1 + 19),
        ISN_A + 1,
        TcpFlags::FIN | TcpFlags::ACK,
        ts(103, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut fin, now), Verdict::ToHost);
    assert_eq!(a.load().active_connections, 0);
}

#[test]
fn a_request_split_over_segments_is_held_until_complete() {
    let now = Instant::now();
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    let (first, second) = REQUEST.split_at(10);
    let mut f1 = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(102, 7000),
        first,
    );
    assert_eq!(a.from_wire(&mut f1, now), Verdict::Consumed);
    // A retransmission of the same bytes is dropped, not held twice.
    let mut again = f1.clone();
    assert_eq!(a.from_wire(&mut again, now), Verdict::Drop);
    let mut f2 = from_client(
        ISN_C.wrapping_add(11),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(103, 7000),
        second,
    );
    assert_eq!(a.from_wire(&mut f2, now), Verdict::Consumed);
    let out = a.take_output();
    let [(0, Message::HandoffRequest(req))] = &out.messages[..] else {
        panic!()
    };
    assert_eq!(req.held, REQUEST);
}

#[test]
fn reject_timeout_and_peer_down_fall_back_to_local_without_loss() {
    let now = Instant::now();
    for how in ["reject", "timeout", "peer down"] {
        let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
        handshake(&mut a, now);
        let original = request_frame();
        a.from_wire(&mut original.clone(), now);
        let out = a.take_output();
        let [(0, Message::HandoffRequest(req))] = &out.messages[..] else {
            panic!()
        };
        match how {
            "reject" => a.on_message(
                0,
                Message::HandoffReject(HandoffReject {
                    id: req.id,
                    client: std::net::SocketAddrV4::new(CLIENT, CPORT),
                    reason: RejectReason::Overloaded,
                }),
                now,
            ),
            "timeout" => a.poll_timers(now + Duration::from_millis(1100)),
            _ => a.on_peer_down(0, now),
        }
        let out = a.take_output();
        assert_eq!(
            out.to_host,
            vec![original.clone()],
            "{how}: the held request reaches the local kernel"
        );
        assert_eq!(ca.get(Counter::FellBack), 1, "{how}");
        // Served here, its later requests are routed: the flow stays.
        assert_eq!(a.load().active_connections, 1, "{how}");
    }
}

#[test]
fn a_handed_off_connection_is_reset_toward_the_client_when_its_target_dies() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    a.from_wire(&mut request_frame(), now);
    let out = a.take_output();
    let [(0, Message::HandoffRequest(req))] = &out.messages[..] else {
        panic!()
    };
    a.on_message(
        0,
        Message::HandoffAccept(baton_handoff::msg::HandoffAccept {
            id: req.id,
            isn_target: SeqNum::new(ISN_B),
            client: std::net::SocketAddrV4::new(CLIENT, CPORT),
        }),
        now,
    );
    a.take_output();
    let mut ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 50,
        TcpFlags::ACK,
        ts(103, 7010),
        &[],
    );
    a.from_wire(&mut ack, now);
    a.on_peer_down(0, now);
    let out = a.take_output();
    let rst = seen(&out.to_wire[0]);
    assert_eq!(
        (rst.src, rst.dst, rst.dst_mac, rst.flags, rst.seq),
        (A, CLIENT, MAC_C, TcpFlags::RST, ISN_A + 50)
    );
    assert_eq!(ca.get(Counter::PeerDownResets), 1);
}

#[test]
fn the_target_rejects_when_its_kernel_refuses_the_replayed_syn() {
    let now = Instant::now();
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    let (mut b, cb) = engine(B, MAC_B, ("a", MAC_A));
    let req = &handoff_request(&mut a, now);
    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    b.take_output();
    let mut rst = frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        0,
        ISN_C.wrapping_add(1),
        TcpFlags::RST | TcpFlags::ACK,
        0,
        vec![],
        &[],
    );
    b.from_host(&mut rst, now);
    let [(0, Message::HandoffReject(r))] = b.take_output().messages[..] else {
        panic!()
    };
    assert_eq!(r.reason, RejectReason::KernelRefused);
    assert_eq!(cb.get(Counter::KernelRefused), 1);
    assert_eq!(b.load().active_connections, 0);
}

#[test]
fn a_draining_target_refuses_new_handoffs_and_its_peers_stop_asking() {
    let now = Instant::now();
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    let (mut b, cb) = engine(B, MAC_B, ("a", MAC_A));
    let req = &handoff_request(&mut a, now);
    b.set_draining(true);
    assert_eq!(cb.get(Counter::Draining), 1);
    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    let [(0, Message::HandoffReject(r))] = b.take_output().messages[..] else {
        panic!()
    };
    assert_eq!(r.reason, RejectReason::Draining);
    assert_eq!(cb.get(Counter::HandoffsRefusedDraining), 1);
    assert_eq!(b.load().active_connections, 0);
    assert!(b.load().draining);
    // Undone: the same request is taken (its SYN replayed to the kernel).
    b.set_draining(false);
    assert_eq!(cb.get(Counter::Draining), 0);
    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    assert!(b.take_output().messages.is_empty());
    assert_eq!(b.load().active_connections, 1);

    // An origin that heard b drains chooses it for nothing new.
    let (mut c, _) = engine(A, MAC_A, ("b", MAC_B));
    c.on_message(
        0,
        Message::Load(Load {
            draining: true,
            ..Load::default()
        }),
        now,
    );
    handshake(&mut c, now);
    c.from_wire(&mut request_frame(), now);
    let asked = c
        .take_output()
        .messages
        .iter()
        .any(|(_, m)| matches!(m, Message::HandoffRequest(_)));
    assert!(!asked, "a draining peer was asked to take a handoff");
    // Its next Load says it no longer drains: it is chosen again.
    let (mut d, _) = engine(A, MAC_A, ("b", MAC_B));
    d.on_message(
        0,
        Message::Load(Load {
            draining: true,
            ..Load::default()
        }),
        now,
    );
    d.on_message(0, Message::Load(Load::default()), now);
    handshake(&mut d, now);
    d.from_wire(&mut request_frame(), now);
    assert!(matches!(
        &d.take_output().messages[..],
        [(0, Message::HandoffRequest(_))]
    ));
}

/// The messages `engine` sends while its timers run from `from` for
/// `span`, polled every tick.
fn messages_over(engine: &mut Engine, from: Instant, span: Duration) -> Vec<(usize, Message)> {
    let mut messages = Vec::new();
    let mut at = from;
    while at <= from + span {
        at += Duration::from_millis(50);
        engine.poll_timers(at);
        messages.extend(engine.take_output().messages);
    }
    messages
}

#[test]
fn a_replayed_syn_the_kernel_never_answers_is_rejected_as_timed_out() {
    let now = Instant::now();
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    let (mut b, cb) = engine(B, MAC_B, ("a", MAC_A));
    let req = &handoff_request(&mut a, now);
    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    b.take_output();
    // Every retransmission goes unanswered too, until the budget ends.
    let messages = messages_over(&mut b, now, Duration::from_secs(2));
    let [(0, Message::HandoffReject(r))] = &messages[..] else {
        panic!("{messages:?}")
    };
    assert_eq!(r.reason, RejectReason::Timeout);
    // Counted as what it is, not as a refusal.
    assert_eq!(cb.get(Counter::ReplayTimedOut), 1);
    assert_eq!(cb.get(Counter::KernelRefused), 0);
    assert_eq!(b.load().active_connections, 0);
}

#[test]
fn an_unanswered_replay_is_sent_again_on_a_capped_doubling_schedule_within_the_budget() {
    let now = Instant::now();
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    let (mut b, cb) = engine_from(EngineConfig {
        handoff_timeout: Duration::from_secs(3),
        ..config(B, MAC_B, ("a", MAC_A))
    });
    let req = &handoff_request(&mut a, now);
    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    let syn = b.take_output().to_host;
    assert_eq!(syn.len(), 1);
    // A full accept queue drops the SYN without a word; the same SYN goes
    // again 100 ms later, then at waits doubling up to 400 ms (a local
    // port's schedule, see REPLAY_RTO): eight more SYNs, the last at
    // 2.7 s; the next would be past the budget, which ends the replay with
    // a Reject the origin gets in time. (Each wait runs from when the last
    // SYN went; timers fire up to one 50 ms tick late.)
    let ms = Duration::from_millis;
    let mut last = now;
    for wait in [100, 200, 400, 400, 400, 400, 400, 400] {
        b.poll_timers(last + ms(wait - 60));
        assert!(b.take_output().is_empty());
        last += ms(wait + 60);
        b.poll_timers(last);
        assert_eq!(b.take_output().to_host, syn, "the SYN again");
    }
    assert_eq!(cb.get(Counter::ReplaysRetransmitted), 8);
    b.poll_timers(last + ms(300 - 60));
    assert!(b.take_output().is_empty());
    b.poll_timers(last + ms(300 + 60));
    let [(0, Message::HandoffReject(r))] = b.take_output().messages[..] else {
        panic!()
    };
    assert_eq!(r.reason, RejectReason::Timeout);
    assert_eq!(cb.get(Counter::ReplayTimedOut), 1);

    // A kernel that takes the second SYN completes the handoff.
    let later = now + Duration::from_secs(4);
    b.on_message(0, Message::HandoffRequest(req.clone()), later);
    b.take_output();
    b.poll_timers(later + Duration::from_millis(300));
    assert_eq!(b.take_output().to_host, syn);
    b.from_host(
        &mut target_kernel_synack(),
        later + Duration::from_millis(400),
    );
    let [(0, Message::HandoffAccept(_))] = b.take_output().messages[..] else {
        panic!()
    };
    assert_eq!(cb.get(Counter::HandedIn), 1);
}

#[test]
fn client_packets_racing_the_accept_are_queued_and_forwarded_to_the_target() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    let req = &handoff_request(&mut a, now);
    // The target answered the client before its accept reached us: the
    // client acknowledges data this node never sent.
    let ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 200,
        TcpFlags::ACK,
        ts(103, 7010),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack.clone(), now), Verdict::Consumed);
    a.on_message(
        0,
        Message::HandoffAccept(baton_handoff::msg::HandoffAccept {
            id: req.id,
            isn_target: SeqNum::new(ISN_B),
            client: std::net::SocketAddrV4::new(CLIENT, CPORT),
        }),
        now,
    );
    let out = a.take_output();
    assert_eq!(out.to_wire.len(), 1);
    let forwarded = seen(&out.to_wire[0]);
    assert_eq!((forwarded.dst_mac, forwarded.ack), (MAC_B, ISN_A + 200));
    assert_eq!(ca.get(Counter::DropWhilePending), 0);
}

#[test]
fn a_request_riding_on_the_handshake_ack_is_handed_off() {
    let now = Instant::now();
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    let mut syn = from_client(ISN_C, 0, TcpFlags::SYN, syn_options(7, 100, 0), &[]);
    a.from_wire(&mut syn, now);
    let mut synack = origin_kernel_synack();
    a.from_host(&mut synack, now);
    // No bare ACK: the request itself completes the handshake.
    assert_eq!(a.from_wire(&mut request_frame(), now), Verdict::Consumed);
    let [(0, Message::HandoffRequest(req))] = &a.take_output().messages[..] else {
        panic!()
    };
    assert_eq!(req.held, REQUEST);
}

/// Origin A with a handoff request out for the request frame.
fn pending(
    now: Instant,
) -> (
    Engine,
    Arc<WorkerCounters>,
    baton_handoff::msg::HandoffRequest,
) {
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    assert_eq!(a.from_wire(&mut request_frame(), now), Verdict::Consumed);
    let [(0, Message::HandoffRequest(req))] = &a.take_output().messages[..] else {
        panic!()
    };
    (a, ca, req.clone())
}

fn accept(id: u64) -> Message {
    Message::HandoffAccept(baton_handoff::msg::HandoffAccept {
        id,
        isn_target: SeqNum::new(ISN_B),
        client: std::net::SocketAddrV4::new(CLIENT, CPORT),
    })
}

#[test]
fn a_client_fin_before_a_decision_releases_the_held_bytes_locally() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    // Not a whole request yet: held, undecided.
    let partial = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(102, 7000),
        b"GET /b/x",
    );
    assert_eq!(a.from_wire(&mut partial.clone(), now), Verdict::Consumed);
    let mut fin = from_client(
        ISN_C.wrapping_add(9),
        ISN_A + 1,
        TcpFlags::FIN | TcpFlags::ACK,
        ts(103, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut fin, now), Verdict::ToHost);
    let out = a.take_output();
    assert_eq!(out.to_host, vec![partial]);
    assert!(out.messages.is_empty());
    assert_eq!(ca.get(Counter::HoldUndecided), 1);
    assert_eq!(a.load().active_connections, 0);
}

#[test]
fn a_retransmitted_syn_or_a_bare_fin_during_the_handshake_passes_to_the_kernel() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    let mut syn = from_client(ISN_C, 0, TcpFlags::SYN, syn_options(7, 100, 0), &[]);
    assert_eq!(a.from_wire(&mut syn, now), Verdict::ToHost);
    let mut fin = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::FIN | TcpFlags::ACK,
        ts(103, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut fin, now), Verdict::ToHost);
    assert!(a.take_output().is_empty());
    // No request can follow a FIN: the kernel closes it, untracked.
    assert_eq!(a.load().active_connections, 0);
    assert_eq!(ca.get(Counter::NoRequest), 1);
}

#[test]
fn an_engine_asks_for_timer_runs_only_while_it_holds_something_timed() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    // Its gauges not yet published: one run is due at once.
    assert_eq!(a.next_timer_run(now), Some(now));
    a.poll_timers(now);
    assert_eq!(a.next_timer_run(now), None, "nothing held: sleep on");
    handshake(&mut a, now);
    let next = a.next_timer_run(now).expect("a flow: timers to run");
    assert!(
        next > now && next <= now + Duration::from_millis(50),
        "{next:?}"
    );
    let later = now + Duration::from_secs(61);
    a.poll_timers(later);
    assert_eq!(ca.get(Counter::FlowsExpired), 1);
    assert_eq!(ca.get(Counter::FlowsActive), 0, "the gauges say so");
    assert_eq!(a.next_timer_run(later), None);
}

#[test]
fn a_connection_that_never_sends_a_request_expires() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    handshake(&mut a, now);
    a.poll_timers(now + Duration::from_secs(61));
    assert_eq!(a.load().active_connections, 0);
    assert_eq!(ca.get(Counter::FlowsExpired), 1);
}

#[test]
fn a_client_reset_mid_handoff_reaches_the_kernel_and_calls_the_target_off() {
    let now = Instant::now();
    let (mut a, ca, req) = pending(now);
    let mut rst = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        0,
        TcpFlags::RST,
        vec![],
        &[],
    );
    assert_eq!(a.from_wire(&mut rst, now), Verdict::ToHost);
    let out = a.take_output();
    let [(0, Message::HandoffCancel(cancel))] = out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_eq!((cancel.id, cancel.client), (req.id, req.key.client));
    assert!(out.to_host.is_empty(), "the held request is not released");
    assert_eq!(ca.get(Counter::ClientResetMidHandoff), 1);
    assert_eq!(a.load().active_connections, 0);
    // The target's accept comes too late, and is undone.
    a.on_message(0, accept(req.id), now);
    let [(0, Message::HandoffCancel(_))] = a.take_output().messages[..] else {
        panic!()
    };
    assert_eq!(ca.get(Counter::DropUnknownHandoff), 1);
}

#[test]
fn packets_queued_while_pending_are_bounded_and_dropped_on_fallback() {
    let now = Instant::now();
    let (mut a, ca, req) = pending(now);
    let ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(103, 7000),
        &[],
    );
    for _ in 0..64 {
        assert_eq!(a.from_wire(&mut ack.clone(), now), Verdict::Consumed);
    }
    assert_eq!(a.from_wire(&mut ack.clone(), now), Verdict::Drop);
    assert_eq!(ca.get(Counter::DropWhilePending), 1);
    a.on_message(
        0,
        Message::HandoffReject(HandoffReject {
            id: req.id,
            client: std::net::SocketAddrV4::new(CLIENT, CPORT),
            reason: RejectReason::Overloaded,
        }),
        now,
    );
    let out = a.take_output();
    assert_eq!(out.to_host, vec![request_frame()], "only the held request");
    assert!(out.to_wire.is_empty());
    assert_eq!(ca.get(Counter::HandoffRejected), 1);
}

#[test]
fn a_handoff_timeout_calls_the_target_off_and_a_late_accept_is_undone() {
    let now = Instant::now();
    let (mut a, ca, req) = pending(now);
    // Not yet: the origin waits the target's budget (500 ms here) and a
    // margin for its answer to arrive.
    a.poll_timers(now + Duration::from_millis(900));
    assert!(a.take_output().is_empty());
    a.poll_timers(now + Duration::from_millis(1100));
    let out = a.take_output();
    assert_eq!(out.to_host, vec![request_frame()]);
    let [(0, Message::HandoffCancel(cancel))] = out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_eq!(cancel.id, req.id);
    assert_eq!(ca.get(Counter::HandoffTimedOut), 1);
    a.on_message(0, accept(req.id), now);
    let [(0, Message::HandoffCancel(_))] = a.take_output().messages[..] else {
        panic!()
    };
}

#[test]
fn a_repeated_accept_changes_nothing() {
    let now = Instant::now();
    let (mut a, ca, req) = pending(now);
    a.on_message(0, accept(req.id), now);
    a.take_output();
    a.on_message(0, accept(req.id), now);
    assert!(a.take_output().is_empty(), "no second RST, no reply");
    assert_eq!(ca.get(Counter::HandedOff), 1);
    // Forwarding takes no Accept: the machine says so, and it is counted.
    assert_eq!(ca.get(Counter::InvalidTransition), 1);
    assert_eq!(ca.get(Counter::DropUnknownHandoff), 0);
    assert_eq!(a.load().active_connections, 1);
}

#[test]
fn a_forwarded_flow_lives_while_the_client_sends() {
    let now = Instant::now();
    let (mut a, _, req) = pending(now);
    a.on_message(0, accept(req.id), now);
    let later = now + Duration::from_secs(50);
    let mut ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(103, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack, later), Verdict::ToWire);
    a.poll_timers(now + Duration::from_secs(70));
    assert_eq!(a.load().active_connections, 1, "restarted by the client");
    a.poll_timers(later + Duration::from_secs(61));
    assert_eq!(a.load().active_connections, 0, "idle");
}

/// Target B with a connection handed in and established, and the
/// handoff's id; B's output taken.
fn handed_in(now: Instant) -> (Engine, Arc<WorkerCounters>, u64) {
    let (_, _, req) = pending(now);
    let id = req.id;
    let (mut b, cb) = engine(B, MAC_B, ("a", MAC_A));
    b.on_message(0, Message::HandoffRequest(req), now);
    b.take_output();
    let mut synack = target_kernel_synack();
    assert_eq!(b.from_host(&mut synack, now), Verdict::Consumed);
    b.take_output();
    (b, cb, id)
}

fn client_to_b(flags: TcpFlags) -> Vec<u8> {
    from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 1,
        flags,
        ts(104, 7000),
        &[],
    )
}

fn kernel_to_client(flags: TcpFlags) -> Vec<u8> {
    frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        ISN_B + 1,
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        flags,
        100,
        ts(61, 104),
        &[],
    )
}

#[test]
fn the_target_lingers_only_once_both_sides_finished() {
    let now = Instant::now();
    let (mut b, _, _) = handed_in(now);
    let mut fin = client_to_b(TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(b.from_wire(&mut fin, now), Verdict::ToHost);
    // One FIN: still idle-timed, not lingering.
    b.poll_timers(now + Duration::from_secs(1));
    assert!(b.take_output().is_empty());
    assert_eq!(b.load().handed_in, 1);
    let t = now + Duration::from_secs(2);
    let mut kfin = kernel_to_client(TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(b.from_host(&mut kfin, t), Verdict::ToWire);
    // Both: the linger restarts with every packet, then the origin hears.
    let mut last_ack = client_to_b(TcpFlags::ACK);
    assert_eq!(
        b.from_wire(&mut last_ack, t + Duration::from_millis(80)),
        Verdict::ToHost
    );
    b.poll_timers(t + Duration::from_millis(150));
    assert!(b.take_output().is_empty());
    b.poll_timers(t + Duration::from_millis(300));
    let [(0, Message::HandoffClosed(_))] = b.take_output().messages[..] else {
        panic!()
    };
    assert_eq!(b.load().handed_in, 0);
}

#[test]
fn a_reset_either_way_makes_the_target_linger() {
    for from_kernel in [false, true] {
        let now = Instant::now();
        let (mut b, _, _) = handed_in(now);
        if from_kernel {
            let mut rst = kernel_to_client(TcpFlags::RST);
            assert_eq!(b.from_host(&mut rst, now), Verdict::ToWire);
        } else {
            let mut rst = client_to_b(TcpFlags::RST);
            assert_eq!(b.from_wire(&mut rst, now), Verdict::ToHost);
        }
        b.poll_timers(now + Duration::from_millis(150));
        let [(0, Message::HandoffClosed(_))] = b.take_output().messages[..] else {
            panic!("from kernel: {from_kernel}")
        };
        assert_eq!(b.load().handed_in, 0);
    }
}

#[test]
fn the_target_resets_its_kernel_when_the_origin_calls_the_handoff_off() {
    let now = Instant::now();
    let (mut b, cb, id) = handed_in(now);
    let mut data = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 1,
        TcpFlags::ACK | TcpFlags::PSH,
        ts(104, 7000),
        b"more",
    );
    assert_eq!(b.from_wire(&mut data, now), Verdict::ToHost);
    // An id the target does not know changes nothing.
    let cancel = |id| {
        Message::HandoffCancel(baton_handoff::msg::HandoffCancel {
            id,
            client: std::net::SocketAddrV4::new(CLIENT, CPORT),
        })
    };
    b.on_message(0, cancel(id ^ 1), now);
    assert_eq!(b.load().handed_in, 1);
    assert_eq!(cb.get(Counter::DropUnknownHandoff), 1);
    // The right one: a RST where the client's next byte would go.
    b.on_message(0, cancel(id), now);
    let out = b.take_output();
    let rst = seen(&out.to_host[0]);
    assert_eq!(
        (rst.src, rst.dst, rst.flags, rst.seq),
        (
            CLIENT,
            B,
            TcpFlags::RST,
            ISN_C.wrapping_add(1 + REQUEST.len() as u32 + 4)
        )
    );
    assert!(out.messages.is_empty());
    assert_eq!(b.load().handed_in, 0);
}

#[test]
fn the_target_rejects_when_its_kernel_never_answers() {
    let now = Instant::now();
    let (_, _, req) = pending(now);
    let (mut b, cb) = engine(B, MAC_B, ("a", MAC_A));
    b.on_message(0, Message::HandoffRequest(req), now);
    b.take_output();
    // Client packets before the accept are dropped, counted.
    let mut early = client_to_b(TcpFlags::ACK);
    assert_eq!(b.from_wire(&mut early, now), Verdict::Drop);
    assert_eq!(cb.get(Counter::DropBeforeEstablished), 1);
    let messages = messages_over(&mut b, now, Duration::from_secs(1));
    let [(0, Message::HandoffReject(r))] = &messages[..] else {
        panic!("{messages:?}")
    };
    assert_eq!(r.reason, RejectReason::Timeout);
    assert_eq!(b.load().handed_in, 0);
}

#[test]
fn a_full_table_evicts_undecided_connections_first_and_never_loses_bytes() {
    let now = Instant::now();
    let (mut a, counters) = engine_with_capacity(A, MAC_A, ("b", MAC_B), 2);
    // A connection from `port` completes its handshake: a flow.
    let open_from = |a: &mut Engine, port: u16| open_tracked(a, port, now);
    // Connection 1 is handed off (forwarding: never evicted).
    let req = &handoff_request(&mut a, now);
    a.on_message(
        0,
        Message::HandoffAccept(baton_handoff::msg::HandoffAccept {
            id: req.id,
            isn_target: SeqNum::new(ISN_B),
            client: std::net::SocketAddrV4::new(CLIENT, CPORT),
        }),
        now,
    );
    a.take_output();
    // Connection 2 holds part of a request (its handshake ACK withheld).
    assert_eq!(open_from(&mut a, 40001), Verdict::Drop);
    let partial = frame(
        (MAC_C, MAC_A),
        (CLIENT, 40001),
        (A, 80),
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        502,
        ts(102, 7000),
        b"GET /b/x HT",
    );
    assert_eq!(a.from_wire(&mut partial.clone(), now), Verdict::Consumed);
    assert_eq!(a.load().active_connections, 2);
    // Connection 3 needs room: connection 2 is evicted, its held bytes go
    // to the local kernel, which will serve it (that segment completes its
    // handshake).
    assert_eq!(open_from(&mut a, 40002), Verdict::Drop);
    assert_eq!(a.take_output().to_host, vec![partial]);
    assert_eq!(counters.get(Counter::FlowsEvicted), 1);
    // Connection 4: only established ones left... connection 3 is
    // undecided, so it goes; the handed-off one stays.
    open_from(&mut a, 40003);
    assert_eq!(counters.get(Counter::FlowsEvicted), 2);
    let mut ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 10,
        TcpFlags::ACK,
        ts(103, 7010),
        &[],
    );
    assert_eq!(
        a.from_wire(&mut ack, now),
        Verdict::ToWire,
        "the handed-off connection is still forwarded"
    );
}

#[test]
fn a_table_full_of_handed_off_connections_serves_new_ones_untracked() {
    let now = Instant::now();
    let (mut a, counters) = engine_with_capacity(A, MAC_A, ("b", MAC_B), 1);
    a.preload_forwarding(
        baton_fastpath::engine::FlowKey::new(CLIENT, 50000, A, 80),
        0,
        MAC_C,
        None,
        now,
    );
    assert_eq!(open_tracked(&mut a, 50001, now), Verdict::ToHost);
    assert_eq!(counters.get(Counter::TableFullUntracked), 1);
    assert_eq!(a.load().active_connections, 1);
}

#[test]
fn a_syn_on_a_handed_in_flows_kernel_tuple_is_left_to_the_kernel() {
    let now = Instant::now();
    let (mut b, counters, _) = handed_in(now);
    let seq_of = |f: &[u8]| u32::from_be_bytes(f[38..42].try_into().unwrap());
    // The client opens a connection straight to B from the same port: the
    // 4-tuple the kernel already has for the handed-in connection. The
    // kernel answers it as its own (a challenge ACK); Baton does not track
    // a second flow on it.
    let mut syn = frame(
        (MAC_C, MAC_B),
        (CLIENT, CPORT),
        (B, 80),
        77,
        0,
        TcpFlags::SYN,
        64240,
        syn_options(7, 1, 0),
        &[],
    );
    assert_eq!(b.from_wire(&mut syn, now), Verdict::ToHost);
    assert_eq!(counters.get(Counter::TupleInUseUntracked), 1);
    assert_eq!(counters.get(Counter::ConnsSeen), 0);
    // The kernel's packets still belong to the handed-in flow.
    let original = kernel_to_client(TcpFlags::ACK);
    let mut f = original.clone();
    assert_eq!(b.from_host(&mut f, now), Verdict::ToWire);
    assert_ne!(seq_of(&f), seq_of(&original), "translated");
}

#[test]
fn truncated_frames_are_counted_and_passed_through_unchanged() {
    let now = Instant::now();
    let (mut a, counters) = engine(A, MAC_A, ("b", MAC_B));
    let whole = request_frame();
    for cut in [13, 20, 40, 60] {
        let mut truncated = whole[..cut].to_vec();
        let before = truncated.clone();
        assert_eq!(a.from_wire(&mut truncated, now), Verdict::ToHost);
        assert_eq!(a.from_host(&mut truncated, now), Verdict::ToWire);
        assert_eq!(truncated, before, "left as it came");
    }
    assert_eq!(counters.get(Counter::MalformedPassed), 8);
}

#[test]
fn client_frames_with_bad_checksums_change_no_state() {
    let now = Instant::now();
    let (mut b, counters, _) = handed_in(now);
    let corrupt = |mut f: Vec<u8>| {
        let last = f.len() - 1;
        f[last] ^= 0x01; // a timestamp byte: the TCP checksum no longer holds
        f
    };
    // A corrupted RST does not end the handed-in connection ...
    let mut rst = corrupt(client_to_b(TcpFlags::RST | TcpFlags::ACK));
    assert_eq!(b.from_wire(&mut rst, now), Verdict::Drop);
    assert_eq!(counters.get(Counter::DropBadChecksum), 1);
    let mut ack = client_to_b(TcpFlags::ACK);
    assert_eq!(
        b.from_wire(&mut ack, now),
        Verdict::ToHost,
        "still translated"
    );
    // ... and a corrupted SYN opens nothing.
    let (mut a, counters_a) = engine(A, MAC_A, ("b", MAC_B));
    let mut syn = corrupt(from_client(
        ISN_C,
        0,
        TcpFlags::SYN,
        syn_options(7, 100, 0),
        &[],
    ));
    assert_eq!(a.from_wire(&mut syn, now), Verdict::Drop);
    assert_eq!(counters_a.get(Counter::DropBadChecksum), 1);
    assert_eq!(counters_a.get(Counter::ConnsSeen), 0);
    assert_eq!(a.load().active_connections, 0);
}

/// Origin A, its peers b and c up, after a handshake and `request`; the
/// handoff request it sent.
fn pending_with_two_peers(
    request: &[u8],
    now: Instant,
) -> (
    Engine,
    Arc<WorkerCounters>,
    baton_handoff::msg::HandoffRequest,
) {
    let mut cfg = config(A, MAC_A, ("b", MAC_B));
    cfg.peers.push(PeerInfo {
        name: "c".into(),
        mac: baton_fastpath::peer_mac::PeerMac::fixed(MacAddr([2, 0, 0, 0, 0, 0x13])),
    });
    let (mut a, ca) = engine_from(cfg);
    a.on_peer_up(1);
    handshake(&mut a, now);
    a.from_wire(&mut request_for(request), now);
    let [(0, Message::HandoffRequest(req))] = &a.take_output().messages[..] else {
        panic!()
    };
    (a, ca, req.clone())
}

#[test]
fn a_refused_handoff_goes_to_the_next_member_then_to_nobody() {
    let now = Instant::now();
    let request = b"GET /d/x HTTP/1.1\r\nHost: h\r\n\r\n";
    let (mut a, ca, first) = pending_with_two_peers(request, now);
    a.on_message(0, reject(first.id), now);
    // The next member of the pool gets the request, under a new id, and
    // nothing reaches the local kernel.
    let out = a.take_output();
    assert!(out.to_host.is_empty(), "{:?}", out.to_host);
    let [(1, Message::HandoffRequest(second))] = &out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_ne!(second.id, first.id);
    assert_eq!(second.held, request);
    assert_eq!(ca.get(Counter::HandoffRejected), 1);
    assert_eq!(ca.get(Counter::HandoffsRetried), 1);
    assert_eq!(ca.get(Counter::HandoffsPending), 0, "published by timers");
    assert_eq!(a.load().pending_handoffs, 1);
    // A late answer to the first request changes nothing.
    a.on_message(0, reject(first.id), now);
    assert!(a.take_output().is_empty());
    // The last member refuses too: nobody can serve /d/, and this node is
    // no member of its pool.
    a.on_message(1, reject(second.id), now);
    let out = a.take_output();
    assert!(out.messages.is_empty());
    assert_eq!(ca.get(Counter::RefusedUnavailable), 1);
    assert_eq!(ca.get(Counter::FellBack), 0);
    // The kernel forgets the connection; the client gets a 503 as from A.
    let [rst] = &out.to_host[..] else {
        panic!("{:?}", out.to_host)
    };
    assert_eq!(seen(rst).flags, TcpFlags::RST);
    let [answer] = &out.to_wire[..] else {
        panic!("{:?}", out.to_wire)
    };
    let answer = seen(answer);
    assert_eq!((answer.src, answer.dst, answer.dst_mac), (A, CLIENT, MAC_C));
    assert_eq!(answer.flags, TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN);
    assert_eq!(answer.seq, ISN_A + 1, "right after the kernel's SYN-ACK");
    assert_eq!(
        answer.ack,
        ISN_C.wrapping_add(1 + request.len() as u32),
        "the request acknowledged"
    );
    assert!(answer
        .payload
        .starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"));
    assert!(String::from_utf8_lossy(&answer.payload).contains("Retry-After: 1\r\n"));
    assert_eq!(answer.ts, Some((7000, 102)), "PAWS keeps passing");
    // Unanswered, it goes again; the client's FIN is acknowledged, and the
    // flow ends.
    a.poll_timers(now + Duration::from_millis(300));
    let again = a.take_output().to_wire;
    assert_eq!(again.len(), 1);
    assert_eq!(seen(&again[0]).payload, answer.payload);
    let fin_seq = ISN_C.wrapping_add(1 + request.len() as u32);
    let after_ours = ISN_A + 2 + answer.payload.len() as u32;
    let mut fin = from_client(
        fin_seq,
        after_ours,
        TcpFlags::FIN | TcpFlags::ACK,
        ts(110, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut fin, now), Verdict::Drop);
    let [ack] = &a.take_output().to_wire[..] else {
        panic!()
    };
    let ack = seen(ack);
    assert_eq!(
        (ack.flags, ack.seq, ack.ack),
        (TcpFlags::ACK, after_ours, fin_seq + 1)
    );
    assert_eq!(a.load().active_connections, 0);
}

#[test]
fn a_refusal_nobody_answers_ends_in_a_reset() {
    let now = Instant::now();
    let request = b"GET /c/x HTTP/1.1\r\nHost: h\r\n\r\n";
    let (mut a, ca, req) = pending_with_two_peers(request, now);
    a.on_message(0, reject(req.id), now);
    a.take_output();
    // Three retransmissions (200, 400, 800 ms apart), then a RST.
    let mut t = now;
    for gap in [200, 400, 800] {
        t += Duration::from_millis(gap + 60);
        a.poll_timers(t);
        assert_eq!(a.take_output().to_wire.len(), 1, "a retransmission");
    }
    a.poll_timers(t + Duration::from_millis(1700));
    let [rst] = &a.take_output().to_wire[..] else {
        panic!()
    };
    assert_eq!(seen(rst).flags, TcpFlags::RST);
    assert_eq!(ca.get(Counter::RefusedUnavailable), 1);
    assert_eq!(a.load().active_connections, 0);
}

#[test]
fn a_refusal_the_client_acknowledged_is_not_sent_again() {
    let now = Instant::now();
    let request = b"GET /c/x HTTP/1.1\r\nHost: h\r\n\r\n";
    let (mut a, ca, req) = pending_with_two_peers(request, now);
    a.on_message(0, reject(req.id), now);
    let answer = seen(&a.take_output().to_wire[0]).payload;
    // The client acknowledges the 503 and its FIN, but keeps its side open.
    let mut ack = from_client(
        ISN_C.wrapping_add(1 + request.len() as u32),
        ISN_A + 2 + answer.len() as u32,
        TcpFlags::ACK,
        ts(110, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack, now), Verdict::Drop);
    assert_eq!(ca.get(Counter::DropRefusing), 1);
    let mut t = now;
    for gap in [200, 400, 800] {
        t += Duration::from_millis(gap + 60);
        a.poll_timers(t);
        assert!(a.take_output().to_wire.is_empty(), "nothing was lost");
    }
    // It never closes: the final timeout resets it.
    a.poll_timers(t + Duration::from_millis(1700));
    let [rst] = &a.take_output().to_wire[..] else {
        panic!()
    };
    assert_eq!(seen(rst).flags, TcpFlags::RST);
    assert_eq!(a.load().active_connections, 0);
}

#[test]
fn a_tls_connection_nobody_can_serve_is_reset() {
    let now = Instant::now();
    let mut cfg = config(A, MAC_A, ("b", MAC_B));
    cfg.services = vec![(80, ServiceKind::Tls)];
    let (mut a, ca) = engine_from(cfg);
    a.on_peer_down(0, now);
    handshake(&mut a, now);
    // The placer sees a /c/ request (the test placer does not parse TLS):
    // only peer 0 can serve it, and it is down.
    a.from_wire(&mut request_for(b"GET /c/x HTTP/1.1\r\n\r\n"), now);
    let out = a.take_output();
    let [rst] = &out.to_wire[..] else {
        panic!("{:?}", out.to_wire)
    };
    let rst = seen(rst);
    assert_eq!((rst.flags, rst.seq), (TcpFlags::RST, ISN_A + 1));
    assert_eq!(ca.get(Counter::RefusedUnavailable), 1);
    // A reset is never acknowledged, so it is not repeated; the flow ends
    // with one more at the final timeout.
    let mut sent = 0;
    let mut t = now;
    while a.load().active_connections > 0 {
        assert!(t < now + Duration::from_secs(10), "the refusal never ended");
        t += Duration::from_millis(50);
        a.poll_timers(t);
        sent += a.take_output().to_wire.len();
    }
    assert_eq!(sent, 1);
}

#[test]
fn a_target_whose_answer_is_lost_but_whose_data_the_client_acknowledged_keeps_the_connection() {
    let now = Instant::now();
    let (mut a, ca, req) = pending(now);
    // The target answered the client before its Accept; the Accept is
    // lost, and the client acknowledges the target's data.
    let mut ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 1 + 500,
        TcpFlags::ACK,
        ts(120, 7100),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack, now), Verdict::Consumed, "queued");
    a.poll_timers(now + Duration::from_millis(1100));
    // Not served again from anywhere: the target has it.
    let out = a.take_output();
    assert!(out.messages.is_empty(), "{:?}", out.messages);
    let [rst] = &out.to_host[..] else {
        panic!("{:?}", out.to_host)
    };
    assert_eq!(
        seen(rst).flags,
        TcpFlags::RST,
        "the local kernel forgets it"
    );
    assert_eq!(out.to_wire.len(), 1, "the queued ACK goes to the target");
    assert_eq!(seen(&out.to_wire[0]).dst_mac, MAC_B);
    assert_eq!(ca.get(Counter::HandedOff), 1);
    assert_eq!(ca.get(Counter::HandoffTimedOut), 0);
    // And its late Accept is a repeat: counted, and nothing else.
    a.on_message(0, accept(req.id), now);
    assert!(a.take_output().is_empty());
}

/// With a handoff network, a connection the client opened to A lives in
/// B's kernel at A's handoff address (198.19.0.11), never at B's own: it
/// cannot meet a connection the client opened to B directly.
#[test]
fn a_handed_in_connection_lives_in_the_kernel_at_its_origins_handoff_address() {
    let now = Instant::now();
    let alias = Ipv4Addr::new(198, 19, 0, 11);
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    let (mut b, cb) = engine_from(EngineConfig {
        handoff_net: Some(baton_fastpath::engine::HandoffNet {
            network: Ipv4Addr::new(198, 19, 0, 0),
            host_mask: 0xff,
        }),
        ..config(B, MAC_B, ("a", MAC_A))
    });
    let req = &handoff_request(&mut a, now);
    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    let syn = seen(&b.take_output().to_host[0]);
    assert_eq!((syn.src, syn.dst), (CLIENT, alias), "replayed to A's alias");
    // B's kernel answers from the alias; the handoff completes.
    let mut synack = frame(
        (MAC_B, MAC_C),
        (alias, 80),
        (CLIENT, CPORT),
        ISN_B,
        ISN_C.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        syn_options(10, 50, 100),
        &[],
    );
    assert_eq!(b.from_host(&mut synack, now), Verdict::Consumed);
    let out = b.take_output();
    assert!(out.to_host.iter().all(|f| seen(f).dst == alias));
    assert_eq!(cb.get(Counter::HandedIn), 1);
    // The kernel's data reaches the client from A's address, as the client
    // expects; the client's packets reach the kernel at the alias.
    let mut response = frame(
        (MAC_B, MAC_C),
        (alias, 80),
        (CLIENT, CPORT),
        ISN_B + 1,
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        TcpFlags::ACK | TcpFlags::PSH,
        500,
        ts(60, 103),
        b"HTTP/1.1 200 OK\r\n\r\n",
    );
    assert_eq!(b.from_host(&mut response, now), Verdict::ToWire);
    let r = seen(&response);
    assert_eq!((r.src, r.dst, r.seq), (A, CLIENT, ISN_A + 1));
    let mut ack = frame(
        (MAC_A, MAC_B),
        (CLIENT, CPORT),
        (A, 80),
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 20,
        TcpFlags::ACK,
        502,
        ts(104, 7100),
        &[],
    );
    assert_eq!(b.from_wire(&mut ack, now), Verdict::ToHost);
    let k = seen(&ack);
    assert_eq!((k.dst, k.ack), (alias, ISN_B + 20));
    // A SYN the client sends B directly on the same port is its own
    // connection: B's kernel has no other at (client, B).
    let mut direct = frame(
        (MAC_C, MAC_B),
        (CLIENT, CPORT),
        (B, 80),
        7,
        0,
        TcpFlags::SYN,
        502,
        syn_options(7, 100, 0),
        &[],
    );
    assert_eq!(b.from_wire(&mut direct, now), Verdict::ToHost);
    assert_eq!(cb.get(Counter::TupleInUseUntracked), 0);
    assert_eq!(cb.get(Counter::HalfOpenCreated), 1);
}

/// An origin that restarted forgot where its connections went: until its
/// peer names them, their clients' segments are held back from its
/// kernel (which would reset them), and then they go to the target again.
#[test]
fn a_restarted_origin_learns_its_connections_again_from_the_target() {
    let now = Instant::now();
    let (mut b, _, id) = handed_in(now);
    let (mut a, ca) = engine_from(EngineConfig {
        recovery_wait: Duration::from_secs(2),
        ..config(A, MAC_A, ("b", MAC_B))
    });
    a.take_output();
    // Mid-download, the client's ACK reaches the new origin: not its
    // kernel's, not yet known to be the target's.
    let mut ack = client_to_b(TcpFlags::ACK);
    assert_eq!(a.from_wire(&mut ack, now), Verdict::Drop);
    assert_eq!(ca.get(Counter::DropRecovering), 1);
    // The target hears the origin is up, and names what it holds for it.
    b.on_peer_up(0);
    let out = b.take_output();
    assert_eq!(out.resync_done, [0]);
    let [(0, Message::FlowsHeld(held))] = &out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_eq!(held.flows.len(), 1);
    assert_eq!(held.flows[0].id, id);
    assert_eq!(
        held.flows[0].key.client,
        std::net::SocketAddrV4::new(CLIENT, CPORT)
    );
    a.on_message(0, Message::FlowsHeld(held.clone()), now);
    let last = baton_handoff::msg::FlowsHeld {
        flows: Vec::new(),
        last: true,
    };
    a.on_message(0, Message::FlowsHeld(last), now);
    assert_eq!(ca.get(Counter::FlowsRecovered), 1);
    // The client's next segment goes to the target.
    let mut ack = client_to_b(TcpFlags::ACK);
    assert_eq!(a.from_wire(&mut ack, now), Verdict::ToWire);
    assert_eq!(seen(&ack).dst_mac, MAC_B);
    // Recovered: a segment of no flow is the kernel's again.
    let mut stray = frame(
        (MAC_C, MAC_A),
        (CLIENT, CPORT + 1),
        (A, 80),
        7,
        9,
        TcpFlags::ACK,
        502,
        vec![],
        &[],
    );
    assert_eq!(a.from_wire(&mut stray, now), Verdict::ToHost);
    // And the target's close of it finds it.
    let closed = Message::HandoffClosed(baton_handoff::msg::HandoffClosed {
        id,
        client: std::net::SocketAddrV4::new(CLIENT, CPORT),
    });
    a.on_message(0, closed, now);
    assert_eq!(ca.get(Counter::DropUnknownHandoff), 0);
    assert_eq!(a.load().active_connections, 0);
}

/// A recovering origin whose peers never answer stops waiting.
#[test]
fn an_origin_waits_for_its_peers_only_so_long() {
    let now = Instant::now();
    let (mut a, ca) = engine_from(EngineConfig {
        recovery_wait: Duration::from_secs(2),
        ..config(A, MAC_A, ("b", MAC_B))
    });
    let mut ack = client_to_b(TcpFlags::ACK);
    assert_eq!(a.from_wire(&mut ack, now), Verdict::Drop);
    a.poll_timers(now + Duration::from_millis(2100));
    let mut ack = client_to_b(TcpFlags::ACK);
    assert_eq!(
        a.from_wire(&mut ack, now + Duration::from_millis(2100)),
        Verdict::ToHost
    );
    assert_eq!(ca.get(Counter::DropRecovering), 1);
}

/// An origin that stays away: the connections it handed here are reset
/// at both ends, where the kernel says they stand.
#[test]
fn a_target_resets_the_orphans_of_an_origin_that_stays_away() {
    let now = Instant::now();
    let (mut b, cb, _) = handed_in(now);
    b.on_peer_down(0, now);
    b.poll_timers(now + Duration::from_secs(9));
    assert!(b.take_output().is_empty(), "not yet");
    let later = now + Duration::from_millis(10_100);
    b.poll_timers(later);
    let out = b.take_output();
    let [probe] = &out.to_host[..] else {
        panic!("{:?}", out.to_host)
    };
    let probe = seen(probe);
    let client_next = ISN_C.wrapping_add(1 + REQUEST.len() as u32);
    assert_eq!(
        (probe.src, probe.dst, probe.flags),
        (CLIENT, B, TcpFlags::ACK)
    );
    assert_eq!(
        probe.seq,
        client_next.wrapping_add(1 << 31),
        "far outside the window"
    );
    // A retransmission of earlier data crossing the probe is no answer:
    // it is dropped, and the flow waits.
    let mut retransmission = frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        ISN_B + 1001,
        client_next,
        TcpFlags::ACK,
        500,
        ts(69, 104),
        &[7; 100],
    );
    assert_eq!(b.from_host(&mut retransmission, later), Verdict::Drop);
    assert!(b.take_output().is_empty());
    assert_eq!(cb.get(Counter::DropOrphaned), 1);
    // The kernel answers with where it stands: it sent 5000 bytes, and
    // expects the client's next byte.
    let mut answer = frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        ISN_B + 5001,
        client_next,
        TcpFlags::ACK,
        500,
        ts(70, 104),
        &[],
    );
    assert_eq!(b.from_host(&mut answer, later), Verdict::Consumed);
    let out = b.take_output();
    let [to_client] = &out.to_wire[..] else {
        panic!("{:?}", out.to_wire)
    };
    let to_client = seen(to_client);
    assert_eq!(
        (to_client.src, to_client.dst, to_client.flags, to_client.seq),
        (A, CLIENT, TcpFlags::RST, ISN_A + 5001),
        "the client's expected sequence number, in its own space"
    );
    let [to_kernel] = &out.to_host[..] else {
        panic!("{:?}", out.to_host)
    };
    let to_kernel = seen(to_kernel);
    assert_eq!(
        (to_kernel.flags, to_kernel.seq),
        (TcpFlags::RST, client_next)
    );
    assert_eq!(cb.get(Counter::OrphansReset), 1);
    assert_eq!(b.load().handed_in, 0);
}

/// An origin back within the bound keeps its connections.
#[test]
fn an_origin_back_in_time_keeps_its_connections() {
    let now = Instant::now();
    let (mut b, cb, _) = handed_in(now);
    b.on_peer_down(0, now);
    b.on_peer_up(0);
    b.take_output();
    b.poll_timers(now + Duration::from_secs(11));
    assert!(b.take_output().to_host.is_empty());
    assert_eq!(cb.get(Counter::OrphansReset), 0);
    assert_eq!(b.load().handed_in, 1);
}

/// A kernel's segment to the client, with timestamps, from `(addr, mac)`.
fn from_kernel(
    (addr, mac): (Ipv4Addr, MacAddr),
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    tsval: u32,
    payload: &[u8],
) -> Vec<u8> {
    frame(
        (mac, MAC_C),
        (addr, 80),
        (CLIENT, CPORT),
        seq,
        ack,
        flags,
        500,
        ts(tsval, 110),
        payload,
    )
}

#[test]
fn a_keep_alive_connection_moves_to_the_node_of_each_request_and_back() {
    let now = Instant::now();
    let (mut a, ca) = engine(A, MAC_A, ("b", MAC_B));
    let (mut b, cb) = engine(B, MAC_B, ("a", MAC_A));
    handshake(&mut a, now);
    let c1 = ISN_C.wrapping_add(1);
    let s1 = ISN_A + 1;

    // Request 1 is for this node: served here, the connection still routed.
    let req1 = b"GET /a HTTP/1.1\r\n\r\n";
    let mut f = from_client(c1, s1, TcpFlags::ACK | TcpFlags::PSH, ts(102, 7000), req1);
    assert_eq!(a.from_wire(&mut f, now), Verdict::Consumed);
    assert_eq!(a.take_output().to_host.len(), 1);
    let resp1 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let mut r = from_kernel(
        (A, MAC_A),
        s1,
        c1.wrapping_add(19),
        TcpFlags::ACK | TcpFlags::PSH,
        7001,
        resp1,
    );
    assert_eq!(a.from_host(&mut r, now), Verdict::ToWire);
    let s2 = s1 + resp1.len() as u32;
    let c2 = c1.wrapping_add(req1.len() as u32);

    // Request 2 is for peer b: the kernel here let go (its response was
    // whole, and the request acknowledges it), and b gets the connection
    // at its current sequence numbers.
    let mut f = from_client(
        c2,
        s2,
        TcpFlags::ACK | TcpFlags::PSH,
        ts(103, 7001),
        REQUEST,
    );
    assert_eq!(a.from_wire(&mut f, now), Verdict::Consumed);
    let out = a.take_output();
    // The kernel gets the request's acknowledgement of its response, then
    // forgets the connection.
    let [ack, rst] = &out.to_host[..] else {
        panic!("{:?}", out.to_host)
    };
    let (ack, rst) = (seen(ack), seen(rst));
    assert_eq!((ack.flags, ack.seq, ack.ack), (TcpFlags::ACK, c2, s2));
    assert_eq!(
        (rst.flags, rst.seq),
        (TcpFlags::RST, c2),
        "the kernel here forgets it"
    );
    let [(0, Message::HandoffRequest(req))] = &out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_eq!(
        (req.isn_client.raw(), req.isn_origin.raw(), &req.held[..]),
        (c2.wrapping_sub(1), s2 - 1, REQUEST)
    );
    assert!(req.origin_tsval.is_some_and(|t| t.raw() > 7001));
    assert_eq!(ca.get(Counter::MovesStarted), 1);

    b.on_message(0, Message::HandoffRequest(req.clone()), now);
    let syn = seen(&b.take_output().to_host[0]);
    assert_eq!((syn.seq, syn.flags), (c2.wrapping_sub(1), TcpFlags::SYN));
    let mut synack = frame(
        (MAC_B, MAC_C),
        (B, 80),
        (CLIENT, CPORT),
        ISN_B,
        c2,
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        syn_options(10, 50, 100),
        &[],
    );
    assert_eq!(b.from_host(&mut synack, now), Verdict::Consumed);
    let out = b.take_output();
    assert_eq!(seen(&out.to_host[0]).payload, REQUEST);
    let [(0, accept @ Message::HandoffAccept(_))] = &out.messages[..] else {
        panic!()
    };
    a.on_message(0, accept.clone(), now);
    assert_eq!(ca.get(Counter::MovesCompleted), 1);

    // b's response reaches the client in sequence after request 1's.
    let resp2 = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    let mut r = from_kernel(
        (B, MAC_B),
        ISN_B + 1,
        c2.wrapping_add(REQUEST.len() as u32),
        TcpFlags::ACK | TcpFlags::PSH,
        60,
        resp2,
    );
    assert_eq!(b.from_host(&mut r, now), Verdict::ToWire);
    let r = seen(&r);
    assert_eq!((r.src, r.seq), (A, s2));
    let s3 = s2 + resp2.len() as u32;
    let c3 = c2.wrapping_add(REQUEST.len() as u32);

    // Request 3 is for this node again: b lets go once the client has
    // acknowledged its response, and the connection is replayed into the
    // kernel here.
    let req3 = b"GET /a/3 HTTP/1.1\r\n\r\n";
    let mut f = from_client(c3, s3, TcpFlags::ACK | TcpFlags::PSH, ts(104, 7002), req3);
    assert_eq!(a.from_wire(&mut f, now), Verdict::Consumed);
    let out = a.take_output();
    let release = out
        .messages
        .iter()
        .find_map(|(_, m)| matches!(m, Message::Release(_)).then_some(m.clone()))
        .expect("a Release to b");
    // The request's acknowledgement reaches b as a bare ACK.
    for mut ack in out.to_wire {
        b.from_wire(&mut ack, now);
    }
    b.take_output();
    b.on_message(0, release, now);
    let out = b.take_output();
    let [(0, released @ Message::Released(r))] = &out.messages[..] else {
        panic!("{:?}", out.messages)
    };
    assert_eq!(r.server_next.raw(), s3);
    assert!(out.to_host.iter().any(|f| seen(f).flags == TcpFlags::RST));
    assert_eq!(cb.get(Counter::ConnectionsReleased), 1);

    a.on_message(0, released.clone(), now);
    let out = a.take_output();
    let [syn] = &out.to_host[..] else {
        panic!("{:?}", out.to_host)
    };
    let syn = seen(syn);
    assert_eq!(
        (syn.dst, syn.seq, syn.flags),
        (A, c3.wrapping_sub(1), TcpFlags::SYN)
    );
    let isn_a2 = 77_000;
    let mut synack = frame(
        (MAC_A, MAC_C),
        (A, 80),
        (CLIENT, CPORT),
        isn_a2,
        c3,
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        syn_options(9, 9000, 100),
        &[],
    );
    assert_eq!(a.from_host(&mut synack, now), Verdict::Consumed);
    let out = a.take_output();
    assert_eq!(seen(&out.to_host[0]).payload, req3);
    assert_eq!(ca.get(Counter::MovesCompleted), 2);
    // Its response is translated into the client's sequence.
    let mut r = from_kernel(
        (A, MAC_A),
        isn_a2 + 1,
        c3.wrapping_add(req3.len() as u32),
        TcpFlags::ACK | TcpFlags::PSH,
        9001,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(a.from_host(&mut r, now), Verdict::ToWire);
    let r = seen(&r);
    assert_eq!((r.src, r.seq), (A, s3));
    assert!(
        r.ts.is_some_and(|(tsval, _)| tsval >= 7002),
        "the clock goes on"
    );
}

#[test]
fn a_reload_places_by_the_new_policy_and_a_removed_peer_is_released_once_nothing_is_left() {
    use baton_handoff::placement::PolicyPlacer;
    use baton_handoff::policy::{Pool, Rule, Strategy};
    use baton_handoff::workers::{Limits, Reload, ReloadPeer};
    let now = Instant::now();
    let (mut a, _) = engine(A, MAC_A, ("b", MAC_B));
    // A handoff to b under way.
    let req = handoff_request(&mut a, now);
    // /b/ now goes to c, a new peer; b is removed.
    let placer = PolicyPlacer::new(
        vec![Rule::to_pool("c").path_prefix("/b/")],
        vec![Pool {
            name: "c".into(),
            nodes: vec!["c".into()],
            strategy: Strategy::LocalFirst,
        }],
        "a",
        vec!["b".into(), "c".into()],
    )
    .unwrap();
    let peer = |name: &str, last: u8, removed| ReloadPeer {
        name: name.into(),
        address: Ipv4Addr::new(198, 18, 0, last),
        control_port: 7300,
        mac: Some([2, 0, 0, 0, 0, last]),
        removed,
    };
    let cfg = config(A, MAC_A, ("b", MAC_B));
    a.reload(Reload {
        placer,
        peers: vec![peer("b", 0x12, true), peer("c", 0x13, false)],
        limits: Limits {
            hold_bytes: cfg.hold_bytes,
            hold_segments: cfg.hold_segments,
            hold_timeout: cfg.hold_timeout,
            handoff_timeout: cfg.handoff_timeout,
            linger: cfg.linger,
            idle_timeout: cfg.idle_timeout,
            orphan_timeout: cfg.orphan_timeout,
            max_flows: cfg.max_flows,
        },
    });
    assert_eq!(a.peer_index("c"), Some(1));
    a.on_peer_up(1);
    assert_eq!(a.take_output().resync_done, [1]);
    // The handoff to b holds b.
    a.poll_timers(now);
    assert!(a.take_output().released.is_empty());
    // b refuses it: decided again, by the new policy, to c.
    a.on_message(0, reject(req.id), now);
    let out = a.take_output();
    assert!(
        matches!(&out.messages[..], [(1, Message::HandoffRequest(_))]),
        "{:?}",
        out.messages
    );
    // Nothing is left with b.
    a.poll_timers(now + Duration::from_secs(1));
    assert_eq!(a.take_output().released, [0]);
    a.poll_timers(now + Duration::from_secs(2));
    assert!(a.take_output().released.is_empty(), "told once");
}

/// A client SYN from `addr` (a spoofed one, never followed by an ACK).
fn spoofed_syn(addr: Ipv4Addr, port: u16) -> Vec<u8> {
    frame(
        (MAC_C, MAC_A),
        (addr, port),
        (A, 80),
        1234,
        0,
        TcpFlags::SYN,
        1024,
        syn_options(7, 100, 0),
        &[],
    )
}

/// A SYN flood fills the bounded half-open table, never the flow table:
/// the oldest half-open entries give way, a handed-off connection is
/// untouched, and a connection whose half-open entry went is served by the
/// kernel here, untracked, rather than broken.
#[test]
fn a_syn_flood_costs_the_half_open_table_only_and_breaks_no_connection() {
    let now = Instant::now();
    let (mut a, counters) = engine_from(EngineConfig {
        max_flows: 16,
        half_open: 16,
        ..config(A, MAC_A, ("b", MAC_B))
    });
    let req = handoff_request(&mut a, now);
    a.on_message(
        0,
        Message::HandoffAccept(baton_handoff::msg::HandoffAccept {
            id: req.id,
            isn_target: SeqNum::new(ISN_B),
            client: std::net::SocketAddrV4::new(CLIENT, CPORT),
        }),
        now,
    );
    a.take_output();
    // A legitimate SYN first, then the flood.
    let mut legit = frame(
        (MAC_C, MAC_A),
        (CLIENT, 41000),
        (A, 80),
        ISN_C,
        0,
        TcpFlags::SYN,
        502,
        syn_options(7, 100, 0),
        &[],
    );
    assert_eq!(a.from_wire(&mut legit, now), Verdict::ToHost);
    for i in 0..1000u32 {
        let mut syn = spoofed_syn(Ipv4Addr::from(0xc613_0000 + i), 1024);
        assert_eq!(a.from_wire(&mut syn, now), Verdict::ToHost, "to the kernel");
    }
    a.poll_timers(now);
    assert_eq!(
        counters.get(Counter::HalfOpenCreated),
        1002,
        "the handed-off one too"
    );
    assert_eq!(counters.get(Counter::HalfOpenDropped), 1001 - 16);
    assert_eq!(counters.get(Counter::HalfOpenActive), 16);
    assert_eq!(a.load().active_connections, 1, "only the handed-off flow");
    assert_eq!(counters.get(Counter::ConnsSeen), 1);
    // The handed-off connection is still forwarded.
    let mut ack = from_client(
        ISN_C.wrapping_add(1 + REQUEST.len() as u32),
        ISN_A + 10,
        TcpFlags::ACK,
        ts(103, 7010),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack, now), Verdict::ToWire);
    // The legitimate connection's entry went: its kernel SYN-ACK and ACK
    // pass, and it is served here untracked; its request is not held.
    let mut synack = frame(
        (MAC_A, MAC_C),
        (A, 80),
        (CLIENT, 41000),
        ISN_A,
        ISN_C.wrapping_add(1),
        TcpFlags::SYN | TcpFlags::ACK,
        65160,
        syn_options(9, 7000, 100),
        &[],
    );
    assert_eq!(a.from_host(&mut synack, now), Verdict::ToWire);
    let mut request = frame(
        (MAC_C, MAC_A),
        (CLIENT, 41000),
        (A, 80),
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK | TcpFlags::PSH,
        502,
        ts(102, 7000),
        REQUEST,
    );
    assert_eq!(a.from_wire(&mut request, now), Verdict::ToHost);
    assert!(a.take_output().messages.is_empty(), "no handoff");
    assert_eq!(a.load().active_connections, 1);
}

/// Half-open entries live `half_open_timeout`; an ACK that does not
/// acknowledge the kernel's SYN-ACK makes no flow; the one that does makes
/// the flow a SYN used to, and its handoff request carries the handshake.
#[test]
fn half_open_entries_expire_and_only_the_handshakes_own_ack_promotes() {
    let now = Instant::now();
    let (mut a, counters) = engine_from(EngineConfig {
        half_open_timeout: Duration::from_millis(500),
        ..config(A, MAC_A, ("b", MAC_B))
    });
    let mut syn = spoofed_syn(Ipv4Addr::new(198, 19, 1, 1), 999);
    a.from_wire(&mut syn, now);
    a.poll_timers(now + Duration::from_millis(300));
    assert_eq!(counters.get(Counter::HalfOpenActive), 1);
    a.poll_timers(now + Duration::from_millis(600));
    assert_eq!(counters.get(Counter::HalfOpenExpired), 1);
    assert_eq!(counters.get(Counter::HalfOpenActive), 0);

    let mut syn = from_client(ISN_C, 0, TcpFlags::SYN, syn_options(7, 100, 0), &[]);
    a.from_wire(&mut syn, now);
    a.from_host(&mut origin_kernel_synack(), now);
    // A blind ACK, guessing the kernel's ISN wrong.
    let mut blind = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 77,
        TcpFlags::ACK,
        ts(101, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut blind, now), Verdict::ToHost);
    assert_eq!(a.load().active_connections, 0);
    let mut ack = from_client(
        ISN_C.wrapping_add(1),
        ISN_A + 1,
        TcpFlags::ACK,
        ts(101, 7000),
        &[],
    );
    assert_eq!(a.from_wire(&mut ack, now), Verdict::Drop, "withheld");
    assert_eq!(a.load().active_connections, 1);
    assert_eq!(counters.get(Counter::HalfOpenPromoted), 1);
    assert_eq!(a.from_wire(&mut request_frame(), now), Verdict::Consumed);
    let [(0, Message::HandoffRequest(req))] = &a.take_output().messages[..] else {
        panic!("a handoff request")
    };
    assert_eq!(req.isn_client, SeqNum::new(ISN_C));
    assert_eq!(req.isn_origin, SeqNum::new(ISN_A));
    assert_eq!(req.client_syn_options, syn_options(7, 100, 0));
    assert_eq!(req.origin_synack_options, syn_options(9, 7000, 100));
}
