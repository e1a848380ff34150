//! The translation rewrite path. Input: an 18-byte translation record, then
//! a frame. Checks, for both directions, that rewriting never panics, that
//! a rejected frame is left untouched, that a translated frame with valid
//! checksums keeps valid checksums, and that the inverse translation gives
//! back the original frame.
#![no_main]

use std::net::Ipv4Addr;

use baton_fastpath::packet::{
    classify, Classified, EthernetFrame, FrameClass, Ipv4Packet, SeqDelta, TcpPacket, Translation,
    TsOffset, Verdict,
};
use libfuzzer_sys::fuzz_target;

const RECORD_LEN: usize = 18;

fn record(b: &[u8]) -> Translation {
    let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Translation {
        seq_delta: SeqDelta::new(u32_at(0)),
        ts_offset: TsOffset::new(u32_at(4)),
        client_visible_addr: Ipv4Addr::from(u32_at(8)),
        target_kernel_addr: Ipv4Addr::from(u32_at(12)),
        wscale_kernel: b[16] % 16,
        wscale_origin: b[17] % 16,
    }
}

/// Gives an IPv4/TCP frame correct checksums; returns its addresses.
fn fix_checksums(frame: &mut [u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let mut eth = EthernetFrame::new_checked(frame).ok()?;
    let mut ip = Ipv4Packet::new_checked(eth.payload_mut()).ok()?;
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    TcpPacket::new_checked(ip.payload_mut())
        .ok()?
        .fill_checksum(src, dst);
    Some((src, dst))
}

fn syn_and_window(frame: &[u8]) -> (bool, u16) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    (tcp.syn(), tcp.window_len())
}

fn checksums_valid(frame: &[u8]) -> bool {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    ip.verify_checksum() && tcp.verify_checksum(ip.src_addr(), ip.dst_addr())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < RECORD_LEN {
        return;
    }
    let mut t = record(&data[..RECORD_LEN]);
    let mut original = data[RECORD_LEN..].to_vec();
    let is_tcp = matches!(
        classify(&original),
        Ok(Classified {
            class: FrameClass::Ipv4Tcp,
            ..
        })
    );
    let addrs = if is_tcp {
        fix_checksums(&mut original)
    } else {
        None
    };
    if let Some((src, dst)) = addrs {
        // So that each inverse restores the addresses the frame came with.
        t.client_visible_addr = dst;
        t.target_kernel_addr = src;
    }

    let mut frame = original.clone();
    match t.client_to_target(&mut frame) {
        Verdict::Translated => {
            assert!(checksums_valid(&frame), "client→target broke a checksum");
            assert_eq!(
                t.inverse().client_to_target(&mut frame),
                Verdict::Translated
            );
            assert_eq!(frame, original, "client→target inverse");
        }
        Verdict::Rejected(_) => assert_eq!(frame, original, "rejected frame modified"),
    }

    let mut frame = original.clone();
    match t.target_to_client(&mut frame) {
        Verdict::Translated => {
            assert!(checksums_valid(&frame), "target→client broke a checksum");
            assert_eq!(
                t.inverse().target_to_client(&mut frame),
                Verdict::Translated
            );
            assert!(
                checksums_valid(&frame),
                "target→client inverse broke a checksum"
            );
            // Exact unless rescaling to a coarser shift lost low bits.
            let (syn, window) = syn_and_window(&original);
            if syn || t.inverse().rescale_window(t.rescale_window(window)) == window {
                assert_eq!(frame, original, "target→client inverse");
            }
        }
        Verdict::Rejected(_) => assert_eq!(frame, original, "rejected frame modified"),
    }
});
