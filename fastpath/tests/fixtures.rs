//! The packet library against frames captured from a real Linux TCP stack
//! (see `fixtures/capture.sh`).

mod common;

use std::net::Ipv4Addr;

use baton_fastpath::packet::{
    classify, FrameClass, SackBlock, SeqNum, TcpFlags, TcpFrame, TcpOption, Translation, TsVal,
    Verdict,
};
use common::{checksums_valid, fixture, with_tcp};

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const TARGET_KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 20);

fn options(frame: &[u8]) -> Vec<String> {
    with_tcp(frame, |_, tcp| {
        tcp.options_iter()
            .map(|o| format!("{:?}", o.unwrap()))
            .collect()
    })
}

fn translation() -> Translation {
    Translation {
        seq_delta: SeqNum::new(0x925d_f2b1) - SeqNum::new(0x1000_0000),
        ts_offset: TsVal::new(0x4086_d93d) - TsVal::new(0x0000_1000),
        client_visible_addr: SERVER,
        target_kernel_addr: TARGET_KERNEL,
        wscale_kernel: 7,
        wscale_origin: 10,
    }
}

#[test]
fn every_fixture_classifies_as_ipv4_tcp_with_valid_checksums() {
    for (name, frame) in fixture::ALL {
        let c = classify(frame).unwrap();
        assert_eq!(c.vlan_id, None, "{name}");
        assert_eq!(c.class, FrameClass::Ipv4Tcp, "{name}");
        let t = TcpFrame::parse(frame).unwrap().expect("untagged IPv4/TCP");
        let from_client = t.src_addr == CLIENT;
        let (client_port, server_port) = if from_client {
            (t.src_port, t.dst_port)
        } else {
            (t.dst_port, t.src_port)
        };
        assert_eq!((client_port, server_port), (34540, 8080), "{name}");
        assert!(checksums_valid(frame), "{name}");
    }
}

#[test]
fn syn_carries_linux_default_options() {
    with_tcp(fixture::SYN, |ip, tcp| {
        assert_eq!((ip.src_addr(), ip.dst_addr()), (CLIENT, SERVER));
        assert!(ip.dont_frag() && !ip.is_fragment());
        assert_eq!(tcp.flags(), TcpFlags::SYN);
        assert_eq!(tcp.seq_number(), SeqNum::new(0xbc42_fc9b));
        assert_eq!(tcp.window_len(), 64240);
        assert!(tcp.payload().is_empty());
    });
    assert_eq!(
        options(fixture::SYN),
        [
            "MaxSegmentSize(1460)",
            "SackPermitted",
            "Timestamps { tsval: TsVal(2367538771), tsecr: TsVal(0) }",
            "NoOperation",
            "WindowScale(10)",
        ]
    );
}

#[test]
fn syn_ack_acknowledges_the_syn() {
    with_tcp(fixture::SYN_ACK, |_, tcp| {
        assert_eq!(tcp.flags(), TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(tcp.seq_number(), SeqNum::new(0x925d_f2b1));
        assert_eq!(tcp.ack_number(), SeqNum::new(0xbc42_fc9b) + 1);
    });
    let opts = options(fixture::SYN_ACK);
    assert_eq!(
        opts[2],
        "Timestamps { tsval: TsVal(1082579261), tsecr: TsVal(2367538771) }"
    );
}

#[test]
fn data_segments_carry_http() {
    with_tcp(fixture::DATA_C2S, |_, tcp| {
        assert_eq!(tcp.flags(), TcpFlags::PSH | TcpFlags::ACK);
        assert!(tcp.payload().starts_with(b"GET /big HTTP/1.1\r\n"));
    });
    with_tcp(fixture::DATA_S2C, |_, tcp| {
        assert_eq!(tcp.seq_number(), SeqNum::new(0x925d_f2b2));
        assert!(tcp.payload().starts_with(b"HTTP/1.0 200 OK\r\n"));
    });
}

#[test]
fn ack_carries_sack_block() {
    let sack = with_tcp(fixture::ACK_SACK, |_, tcp| {
        tcp.options_iter()
            .find_map(|o| match o.unwrap() {
                TcpOption::Sack(blocks) => Some(blocks),
                _ => None,
            })
            .unwrap()
    });
    assert_eq!(
        sack.as_slice(),
        &[SackBlock {
            left: SeqNum::new(0x925e_9786),
            right: SeqNum::new(0x925e_9d2e),
        }]
    );
}

#[test]
fn client_to_target_rewrites_real_sack_ack() {
    let t = translation();
    let mut frame = fixture::ACK_SACK.to_vec();
    assert_eq!(t.client_to_target(&mut frame), Verdict::Translated);
    assert!(checksums_valid(&frame));
    with_tcp(&frame, |ip, tcp| {
        assert_eq!((ip.src_addr(), ip.dst_addr()), (CLIENT, TARGET_KERNEL));
        assert_eq!(tcp.ack_number(), SeqNum::new(0x925e_91de) - t.seq_delta);
        assert_eq!(
            tcp.seq_number(),
            SeqNum::new(0xbc42_fcee),
            "client seq is shared"
        );
        let opts: Vec<_> = tcp.options_iter().map(Result::unwrap).collect();
        assert!(opts.contains(&TcpOption::Timestamps {
            tsval: TsVal::new(0x8d1d_c659),
            tsecr: TsVal::new(0x4086_d943) - t.ts_offset,
        }));
        let sack = opts.iter().find_map(|o| match o {
            TcpOption::Sack(b) => Some(b.as_slice()[0]),
            _ => None,
        });
        assert_eq!(
            sack,
            Some(SackBlock {
                left: SeqNum::new(0x925e_9786) - t.seq_delta,
                right: SeqNum::new(0x925e_9d2e) - t.seq_delta,
            })
        );
    });
    assert_eq!(
        t.inverse().client_to_target(&mut frame),
        Verdict::Translated
    );
    assert_eq!(frame, fixture::ACK_SACK);
}

#[test]
fn client_to_target_leaves_syn_ack_fields_alone() {
    let t = translation();
    let mut frame = fixture::SYN.to_vec();
    assert_eq!(t.client_to_target(&mut frame), Verdict::Translated);
    assert!(checksums_valid(&frame));
    // Only the destination address and the two checksums differ.
    let changed: Vec<usize> = (0..frame.len())
        .filter(|&i| frame[i] != fixture::SYN[i])
        .collect();
    assert!(changed
        .iter()
        .all(|&i| (24..26).contains(&i) || (30..34).contains(&i) || (50..52).contains(&i)));
}

#[test]
fn target_to_client_rewrites_real_data_segment() {
    let t = translation();
    let mut frame = fixture::DATA_S2C.to_vec();
    assert_eq!(t.target_to_client(&mut frame), Verdict::Translated);
    assert!(checksums_valid(&frame));
    with_tcp(&frame, |ip, tcp| {
        assert_eq!(ip.src_addr(), SERVER);
        assert_eq!(tcp.seq_number(), SeqNum::new(0x925d_f2b2) + t.seq_delta);
        assert_eq!(tcp.ack_number(), SeqNum::new(0xbc42_fcee));
        // 64 << 7 bytes announced under a shift of 10.
        assert_eq!(tcp.window_len(), 8);
        assert!(tcp.payload().starts_with(b"HTTP/1.0 200 OK"));
        let ts = tcp.options_iter().find_map(|o| match o.unwrap() {
            TcpOption::Timestamps { tsval, tsecr } => Some((tsval, tsecr)),
            _ => None,
        });
        assert_eq!(
            ts,
            Some((
                TsVal::new(0x4086_d943) + t.ts_offset,
                TsVal::new(0x8d1d_c654)
            ))
        );
    });
}

#[test]
fn target_to_client_round_trips_with_equal_window_scales() {
    for (name, original) in fixture::ALL {
        // The inverse restores the source address the frame came with.
        let t = Translation {
            wscale_origin: 7,
            target_kernel_addr: with_tcp(original, |ip, _| ip.src_addr()),
            ..translation()
        };
        let mut frame = original.to_vec();
        assert_eq!(
            t.target_to_client(&mut frame),
            Verdict::Translated,
            "{name}"
        );
        assert!(checksums_valid(&frame), "{name}");
        assert_eq!(
            t.inverse().target_to_client(&mut frame),
            Verdict::Translated
        );
        assert_eq!(frame, original, "{name}");
    }
}
