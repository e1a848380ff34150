//! Property tests of the packet library.

mod common;

use std::net::Ipv4Addr;

use baton_fastpath::packet::tcp_options::SackBlocks;
use baton_fastpath::packet::{
    arp::ArpPacket, classify, EthernetFrame, Ipv4Packet, Ipv6Packet, SackBlock, SeqDelta, SeqNum,
    TcpFlags, TcpFrameBuilder, TcpOption, TcpPacket, Translation, TsOffset, TsVal, Verdict,
};
use common::{recomputed_checksums, stored_checksums, with_tcp};
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn option() -> impl Strategy<Value = Vec<u8>> {
    let sack = prop::collection::vec((any::<u32>(), any::<u32>()), 1..=4).prop_map(|edges| {
        let blocks: Vec<SackBlock> = edges
            .into_iter()
            .map(|(l, r)| SackBlock {
                left: SeqNum::new(l),
                right: SeqNum::new(r),
            })
            .collect();
        TcpOption::Sack(SackBlocks::from_slice(&blocks).unwrap())
    });
    let known = prop_oneof![
        Just(TcpOption::NoOperation),
        any::<u16>().prop_map(TcpOption::MaxSegmentSize),
        (0u8..=14).prop_map(TcpOption::WindowScale),
        Just(TcpOption::SackPermitted),
        (any::<u32>(), any::<u32>()).prop_map(|(tsval, tsecr)| TcpOption::Timestamps {
            tsval: TsVal::new(tsval),
            tsecr: TsVal::new(tsecr),
        }),
        sack,
    ];
    let emitted = known.prop_map(|o| {
        let mut v = Vec::new();
        o.emit(&mut v);
        v
    });
    let unknown =
        (30u8..=253, prop::collection::vec(any::<u8>(), 0..6)).prop_map(|(kind, data)| {
            let mut v = Vec::new();
            TcpOption::Unknown { kind, data: &data }.emit(&mut v);
            v
        });
    prop_oneof![4 => emitted, 1 => unknown]
}

/// Valid option lists of at most 40 bytes, in any order and alignment.
fn options() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(option(), 0..6).prop_map(|opts| {
        let mut bytes = Vec::new();
        for o in opts {
            if bytes.len() + o.len() <= 40 {
                bytes.extend_from_slice(&o);
            }
        }
        bytes
    })
}

/// Any valid IPv4/TCP frame.
fn frame() -> impl Strategy<Value = TcpFrameBuilder> {
    (
        (addr(), addr(), any::<u16>(), any::<u16>()),
        (any::<u32>(), any::<u32>(), any::<u8>(), any::<u16>()),
        options(),
        prop::collection::vec(any::<u8>(), 0..80),
        prop::option::of(0u16..4096),
        prop::collection::vec(any::<u8>(), 0..=2).prop_map(|w| vec![1u8; w.len() * 4]),
        any::<u16>(),
    )
        .prop_map(
            |(
                (src, dst, sport, dport),
                (seq, ack, flags, window),
                opts,
                payload,
                vlan,
                ipo,
                id,
            )| {
                let mut b = TcpFrameBuilder::default()
                    .addrs(src, dst)
                    .ports(sport, dport)
                    .seq(SeqNum::new(seq))
                    .ack(SeqNum::new(ack))
                    .flags(TcpFlags(flags))
                    .window(window)
                    .raw_options(&opts)
                    .ip_options(&ipo)
                    .payload(&payload);
                b.vlan_id = vlan;
                b.ident = id;
                b
            },
        )
}

fn translation() -> impl Strategy<Value = Translation> {
    (
        any::<u32>(),
        any::<u32>(),
        addr(),
        addr(),
        0u8..=14,
        0u8..=14,
    )
        .prop_map(
            |(seq_delta, ts_offset, client_visible_addr, target_kernel_addr, wk, wo)| Translation {
                seq_delta: SeqDelta::new(seq_delta),
                ts_offset: TsOffset::new(ts_offset),
                client_visible_addr,
                target_kernel_addr,
                wscale_kernel: wk,
                wscale_origin: wo,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn incremental_checksums_equal_full_recompute(b in frame(), t in translation()) {
        let mut c2t = b.build();
        prop_assert_eq!(t.client_to_target(&mut c2t), Verdict::Translated);
        prop_assert_eq!(stored_checksums(&c2t), recomputed_checksums(&c2t));

        let mut t2c = b.build();
        prop_assert_eq!(t.target_to_client(&mut t2c), Verdict::Translated);
        prop_assert_eq!(stored_checksums(&t2c), recomputed_checksums(&t2c));
    }

    #[test]
    fn client_to_target_then_inverse_is_identity(b in frame(), mut t in translation()) {
        let original = b.build();
        t.client_visible_addr = b.dst_addr;
        let mut frame = original.clone();
        prop_assert_eq!(t.client_to_target(&mut frame), Verdict::Translated);
        prop_assert_eq!(t.inverse().client_to_target(&mut frame), Verdict::Translated);
        prop_assert_eq!(frame, original);
    }

    #[test]
    fn target_to_client_then_inverse_restores_all_but_window_rounding(
        b in frame(),
        mut t in translation(),
    ) {
        let original = b.build();
        t.target_kernel_addr = b.src_addr;
        let mut frame = original.clone();
        prop_assert_eq!(t.target_to_client(&mut frame), Verdict::Translated);
        prop_assert_eq!(t.inverse().target_to_client(&mut frame), Verdict::Translated);
        let restored = with_tcp(&frame, |_, tcp| tcp.window_len());
        let window = b.window;
        let exact = b.flags.contains(TcpFlags::SYN) || t.wscale_kernel == t.wscale_origin;
        if exact || restored == window {
            prop_assert_eq!(frame, original);
        } else {
            // Only the window (and so the checksum) may differ, and only by
            // what the coarser shift cannot express, or by the 65535 cap.
            prop_assert!(restored < window, "{restored} vs {window}");
            let mut fixed = frame.clone();
            let l4 = original.len() - b.payload.len() - 20 - b.tcp_options.len().div_ceil(4) * 4;
            fixed[l4 + 14..l4 + 18].copy_from_slice(&original[l4 + 14..l4 + 18]);
            prop_assert_eq!(fixed, original);
        }
    }

    #[test]
    fn seq_arithmetic_across_wraparound(a in any::<u32>(), d in 0u32..(1 << 31)) {
        let a = SeqNum::new(a);
        let b = a + d;
        prop_assert_eq!(b - a, SeqDelta::new(d));
        prop_assert_eq!(b.distance_from(a), d as i32);
        prop_assert_eq!(b - d, a);
        if d > 0 {
            prop_assert!(a.is_before(b) && b.is_after(a));
            prop_assert!(!b.is_before(a) && !a.is_after(b));
            prop_assert_eq!(a.max(b), b);
            prop_assert_eq!(a.min(b), a);
        }
        prop_assert!(b.in_window(a, d.saturating_add(1)));
        prop_assert!(!b.in_window(a, d));
    }

    #[test]
    fn seq_delta_translation_is_invertible(isn_a in any::<u32>(), isn_b in any::<u32>(), s in any::<u32>()) {
        let delta = SeqNum::new(isn_a) - SeqNum::new(isn_b);
        prop_assert_eq!(SeqNum::new(isn_b) + delta, SeqNum::new(isn_a));
        let seen_by_client = SeqNum::new(s) + delta;
        prop_assert_eq!(seen_by_client - delta, SeqNum::new(s));
    }

    #[test]
    fn random_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        exercise_parsers(&bytes);
        let t = Translation {
            seq_delta: SeqDelta::new(1), ts_offset: TsOffset::new(2),
            client_visible_addr: Ipv4Addr::new(198, 18, 0, 1),
            target_kernel_addr: Ipv4Addr::new(198, 18, 0, 2),
            wscale_kernel: 7, wscale_origin: 9,
        };
        let mut copy = bytes.clone();
        let _ = t.client_to_target(&mut copy);
        let _ = t.target_to_client(&mut copy);
    }

    #[test]
    fn corrupted_frames_never_panic(b in frame(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut bytes = b.build();
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        exercise_parsers(&bytes);
        // The corruption may have hit the destination address: the inverse
        // restores the one the frame has now.
        // (The translation takes tagged frames too: read past the tag.)
        let dst = EthernetFrame::new_checked(&bytes[..])
            .ok()
            .and_then(|eth| Ipv4Packet::new_checked(eth.payload()).ok().map(|ip| ip.dst_addr()))
            .unwrap_or(b.dst_addr);
        let mut t = Translation {
            seq_delta: SeqDelta::new(1), ts_offset: TsOffset::new(2),
            client_visible_addr: dst, target_kernel_addr: b.src_addr,
            wscale_kernel: 7, wscale_origin: 7,
        };
        let mut copy = bytes.clone();
        if t.client_to_target(&mut copy) == Verdict::Translated {
            t = t.inverse();
            prop_assert_eq!(t.client_to_target(&mut copy), Verdict::Translated);
            prop_assert_eq!(&copy, &bytes);
        } else {
            prop_assert_eq!(&copy, &bytes, "a rejected frame is left untouched");
        }
    }
}

/// Calls every accessor of every view that accepts `bytes`.
fn exercise_parsers(bytes: &[u8]) {
    let _ = classify(bytes);
    if let Ok(eth) = EthernetFrame::new_checked(bytes) {
        let _ = (
            eth.dst_addr(),
            eth.src_addr(),
            eth.vlan_tci(),
            eth.ethertype(),
        );
        let payload = eth.payload();
        if let Ok(arp) = ArpPacket::new_checked(payload) {
            let _ = (
                arp.operation(),
                arp.sender_protocol_addr(),
                arp.target_protocol_addr(),
            );
            let _ = (arp.sender_hardware_addr(), arp.target_hardware_addr());
        }
        if let Ok(ip6) = Ipv6Packet::new_checked(payload) {
            let _ = (
                ip6.src_addr(),
                ip6.dst_addr(),
                ip6.flow_label(),
                ip6.payload(),
            );
        }
        if let Ok(ip) = Ipv4Packet::new_checked(payload) {
            let _ = (
                ip.src_addr(),
                ip.dst_addr(),
                ip.options(),
                ip.verify_checksum(),
            );
            let _ = (ip.frag_offset(), ip.ecn(), ip.dscp(), ip.ttl(), ip.ident());
            if let Ok(tcp) = TcpPacket::new_checked(ip.payload()) {
                let _ = (
                    tcp.seq_number(),
                    tcp.ack_number(),
                    tcp.flags(),
                    tcp.payload(),
                );
                let _ = tcp.verify_checksum(ip.src_addr(), ip.dst_addr());
                for o in tcp.options_iter() {
                    let _ = o;
                }
            }
        }
    }
    // Views straight over the bytes, as if the frame started there.
    if let Ok(tcp) = TcpPacket::new_checked(bytes) {
        let _ = (
            tcp.options_iter().count(),
            tcp.urgent_at(),
            tcp.window_len(),
        );
    }
    if let Ok(ip) = Ipv4Packet::new_checked(bytes) {
        let _ = (ip.payload(), ip.options());
    }
}
