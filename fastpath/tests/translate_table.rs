//! Table-driven translation fixtures: an input frame, the direction, the
//! expected output frame and the verdict.
//!
//! Expected frames are built from scratch with full checksums, so every
//! passing case also shows that the incremental updates agree with a full
//! recompute.

mod common;

use std::net::Ipv4Addr;

use baton_fastpath::packet::tcp_options::SackBlocks;
use baton_fastpath::packet::{
    Error, Reject, SackBlock, SeqDelta, SeqNum, TcpFlags, TcpFrameBuilder, TcpOption, Translation,
    TsOffset, TsVal, Verdict,
};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const KB: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);

/// isn_a = 1_000_000, isn_b = 4_000_000_000; the kernels' clocks differ by
/// 5000 ticks; KB announced shift 7, A announced shift 9.
const T: Translation = Translation {
    seq_delta: SeqDelta::new(1_000_000u32.wrapping_sub(4_000_000_000)),
    ts_offset: TsOffset::new(5000),
    client_visible_addr: VIP,
    target_kernel_addr: KB,
    wscale_kernel: 7,
    wscale_origin: 9,
};

#[derive(Clone, Copy, Debug)]
enum Direction {
    ClientToTarget,
    TargetToClient,
}
use Direction::*;

struct Case {
    name: &'static str,
    direction: Direction,
    input: Vec<u8>,
    expected: Vec<u8>,
    verdict: Verdict,
}

/// A client → VIP segment.
fn from_client() -> TcpFrameBuilder {
    TcpFrameBuilder::default()
        .addrs(CLIENT, VIP)
        .ports(40000, 80)
        .seq(SeqNum::new(77_000))
}

/// A KB → client segment.
fn from_kernel() -> TcpFrameBuilder {
    TcpFrameBuilder::default()
        .addrs(KB, CLIENT)
        .ports(80, 40000)
        .ack(SeqNum::new(77_000))
}

fn ts(tsval: u32, tsecr: u32) -> TcpOption<'static> {
    TcpOption::Timestamps {
        tsval: TsVal::new(tsval),
        tsecr: TsVal::new(tsecr),
    }
}

fn sack(edges: &[(u32, u32)]) -> TcpOption<'static> {
    let blocks: Vec<SackBlock> = edges
        .iter()
        .map(|&(l, r)| SackBlock {
            left: SeqNum::new(l),
            right: SeqNum::new(r),
        })
        .collect();
    TcpOption::Sack(SackBlocks::from_slice(&blocks).unwrap())
}

/// The value a client sees for KB's `seq`, and vice versa.
fn to_client(seq: u32) -> SeqNum {
    SeqNum::new(seq) + T.seq_delta
}
fn to_kernel(ack: u32) -> SeqNum {
    SeqNum::new(ack) - T.seq_delta
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut ok = |name, direction, input: TcpFrameBuilder, expected: TcpFrameBuilder| {
        cases.push(Case {
            name,
            direction,
            input: input.build(),
            expected: expected.build(),
            verdict: Verdict::Translated,
        });
    };

    // --- client → target ---
    let b = from_client().ack(SeqNum::new(1_000_001));
    ok(
        "c2t pure ack",
        ClientToTarget,
        b.clone(),
        b.addrs(CLIENT, KB).ack(to_kernel(1_000_001)),
    );

    let b = from_client()
        .ack(SeqNum::new(1_000_001))
        .raw_options(&[1, 1])
        .option(ts(900, 123_456));
    ok(
        "c2t ack with timestamps",
        ClientToTarget,
        b.clone(),
        from_client()
            .addrs(CLIENT, KB)
            .ack(to_kernel(1_000_001))
            .raw_options(&[1, 1])
            .option(ts(900, 123_456 - 5000)),
    );

    let edges = [
        (1_002_000, 1_003_000),
        (1_005_000, 1_006_000),
        (1_008_000, 1_009_000),
    ];
    let moved: Vec<(u32, u32)> = edges
        .iter()
        .map(|&(l, r)| (to_kernel(l).raw(), to_kernel(r).raw()))
        .collect();
    ok(
        "c2t ack with timestamps and three SACK blocks",
        ClientToTarget,
        from_client()
            .ack(SeqNum::new(1_000_001))
            .raw_options(&[1, 1])
            .option(ts(900, 123_456))
            .raw_options(&[1, 1])
            .option(sack(&edges)),
        from_client()
            .addrs(CLIENT, KB)
            .ack(to_kernel(1_000_001))
            .raw_options(&[1, 1])
            .option(ts(900, 123_456 - 5000))
            .raw_options(&[1, 1])
            .option(sack(&moved)),
    );

    ok(
        "c2t timestamps and SACK at odd offsets",
        ClientToTarget,
        from_client()
            .ack(SeqNum::new(1_000_001))
            .raw_options(&[1])
            .option(ts(0xdead_beef, 0x0102_0304))
            .option(sack(&edges[..1])),
        from_client()
            .addrs(CLIENT, KB)
            .ack(to_kernel(1_000_001))
            .raw_options(&[1])
            .option(ts(0xdead_beef, 0x0102_0304 - 5000))
            .option(sack(&moved[..1])),
    );

    let syn = from_client()
        .flags(TcpFlags::SYN)
        .window(64240)
        .option(TcpOption::MaxSegmentSize(1460))
        .option(TcpOption::SackPermitted)
        .option(ts(900, 0))
        .raw_options(&[1])
        .option(TcpOption::WindowScale(7));
    ok(
        "c2t replayed SYN: only the address (no ACK bit, ack and echo are void)",
        ClientToTarget,
        syn.clone(),
        syn.addrs(CLIENT, KB),
    );

    ok(
        "c2t ack below the delta wraps around 2^32",
        ClientToTarget,
        from_client().ack(SeqNum::new(5)),
        from_client().addrs(CLIENT, KB).ack(to_kernel(5)),
    );

    let b = from_client()
        .vlan(42)
        .ack(SeqNum::new(1_000_001))
        .payload(b"GET / HTTP/1.1\r\n\r\n");
    ok(
        "c2t tagged frame with payload",
        ClientToTarget,
        b.clone(),
        b.addrs(CLIENT, KB).ack(to_kernel(1_000_001)),
    );

    let b = from_client()
        .ip_options(&[0x94, 0x04, 0, 0])
        .ack(SeqNum::new(1_000_001));
    ok(
        "c2t IPv4 options (router alert) are kept",
        ClientToTarget,
        b.clone(),
        b.addrs(CLIENT, KB).ack(to_kernel(1_000_001)),
    );

    let unknown = TcpOption::Unknown {
        kind: 30,
        data: &[0x10, 0x01, 0x02, 0x03, 0x04, 0x05],
    };
    let b = from_client()
        .ack(SeqNum::new(1_000_001))
        .option(unknown)
        .option(ts(1, 2));
    ok(
        "c2t unknown option (MPTCP) is preserved",
        ClientToTarget,
        b.clone(),
        from_client()
            .addrs(CLIENT, KB)
            .ack(to_kernel(1_000_001))
            .option(unknown)
            .option(ts(1, 2u32.wrapping_sub(5000))),
    );

    // --- target → client ---
    let b = from_kernel()
        .flags(TcpFlags::ACK | TcpFlags::PSH)
        .seq(SeqNum::new(4_000_000_001))
        .window(4096)
        .raw_options(&[1, 1])
        .option(ts(70_000, 900))
        .payload(b"HTTP/1.1 200 OK\r\n\r\n");
    ok(
        "t2c data: address, seq, TS value, window from shift 7 to 9",
        TargetToClient,
        b.clone(),
        b.addrs(VIP, CLIENT)
            .seq(to_client(4_000_000_001))
            .window(1024)
            .tcp_options_replaced(|o| o.raw_options(&[1, 1]).option(ts(75_000, 900))),
    );

    let b = from_kernel().seq(SeqNum::new(u32::MAX - 10)).window(3);
    ok(
        "t2c small window rounds down; seq wraps",
        TargetToClient,
        b.clone(),
        b.addrs(VIP, CLIENT).seq(to_client(u32::MAX - 10)).window(0),
    );

    let b = from_kernel()
        .flags(TcpFlags::SYN | TcpFlags::ACK)
        .seq(SeqNum::new(4_000_000_000))
        .window(65160);
    ok(
        "t2c SYN-ACK window is unscaled and left alone",
        TargetToClient,
        b.clone(),
        b.addrs(VIP, CLIENT).seq(to_client(4_000_000_000)),
    );

    let b = from_kernel()
        .flags(TcpFlags::RST)
        .seq(SeqNum::new(4_000_500_000))
        .window(0);
    ok(
        "t2c RST",
        TargetToClient,
        b.clone(),
        b.addrs(VIP, CLIENT).seq(to_client(4_000_500_000)),
    );

    // --- rejected: left byte for byte ---
    let mut reject = |name, direction, input: Vec<u8>, reason| {
        cases.push(Case {
            name,
            direction,
            expected: input.clone(),
            input,
            verdict: Verdict::Rejected(reason),
        });
    };
    let mut udp = from_client().build();
    udp[23] = 17;
    reject("UDP", ClientToTarget, udp, Reject::NotIpv4Tcp);

    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 2, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 2]);
    arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 198, 18, 0, 100]);
    reject("ARP", TargetToClient, arp, Reject::NotIpv4Tcp);

    let mut frag = from_client();
    frag.fragment = (true, 0);
    reject(
        "first fragment",
        ClientToTarget,
        frag.build(),
        Reject::Fragment,
    );
    let mut frag = from_kernel();
    frag.fragment = (false, 1480);
    reject(
        "later fragment",
        TargetToClient,
        frag.build(),
        Reject::Fragment,
    );

    let bad_opt = from_client()
        .raw_options(&[1, 1, 8, 10, 0, 0, 0, 0])
        .build();
    reject(
        "timestamps option runs past the header",
        ClientToTarget,
        bad_opt,
        Reject::Malformed(Error::BadOption),
    );
    let bad_sack = from_kernel().raw_options(&[5, 7, 0, 0, 0, 0, 0, 0]).build();
    reject(
        "SACK length not 2 + 8n",
        TargetToClient,
        bad_sack,
        Reject::Malformed(Error::BadOption),
    );
    let mut short = from_client().build();
    short.truncate(50);
    reject(
        "truncated TCP header",
        ClientToTarget,
        short,
        Reject::Malformed(Error::Truncated),
    );
    reject(
        "runt frame",
        TargetToClient,
        vec![0; 10],
        Reject::Malformed(Error::Truncated),
    );
    cases
}

/// Builder helper for expected frames whose options differ from the input.
trait ReplaceOptions {
    fn tcp_options_replaced(self, f: impl FnOnce(TcpFrameBuilder) -> TcpFrameBuilder) -> Self;
}

impl ReplaceOptions for TcpFrameBuilder {
    fn tcp_options_replaced(mut self, f: impl FnOnce(TcpFrameBuilder) -> TcpFrameBuilder) -> Self {
        self.tcp_options.clear();
        f(self)
    }
}

#[test]
fn translation_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut frame = case.input.clone();
        let verdict = match case.direction {
            ClientToTarget => T.client_to_target(&mut frame),
            TargetToClient => T.target_to_client(&mut frame),
        };
        if verdict != case.verdict || frame != case.expected {
            failures.push(format!(
                "{} ({:?}): verdict {verdict:?}, wanted {:?}\n  got      {:02x?}\n  expected {:02x?}",
                case.name, case.direction, case.verdict, frame, case.expected
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ethernet_padding_is_untouched() {
    let mut frame = from_client().ack(SeqNum::new(1_000_001)).build();
    frame.extend_from_slice(&[0xee; 6]);
    let mut expected = from_client()
        .addrs(CLIENT, KB)
        .ack(to_kernel(1_000_001))
        .build();
    expected.extend_from_slice(&[0xee; 6]);
    assert_eq!(T.client_to_target(&mut frame), Verdict::Translated);
    assert_eq!(frame, expected);
    assert!(common::checksums_valid(&frame));
}
