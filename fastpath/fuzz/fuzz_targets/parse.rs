//! Every packet view and the classifier over arbitrary bytes: nothing may
//! panic, and views that accept the bytes must answer every accessor.
#![no_main]

use baton_fastpath::packet::{
    arp::ArpPacket, classify, EthernetFrame, Ipv4Packet, Ipv6Packet, TcpFrame, TcpPacket,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let classified = classify(data);
    // The fast path's parse fails exactly where the classifier does, and
    // what it accepts answers every question.
    match TcpFrame::parse(data) {
        Ok(Some(seg)) => {
            let _ = (seg.options(data), seg.payload(data), seg.tsval(data));
            let _ = seg.checksums_valid(data);
        }
        Ok(None) => {}
        Err(_) => assert!(classified.is_err()),
    }
    if let Ok(eth) = EthernetFrame::new_checked(data) {
        let _ = (
            eth.dst_addr(),
            eth.src_addr(),
            eth.vlan_id(),
            eth.ethertype(),
        );
        let payload = eth.payload();
        if let Ok(arp) = ArpPacket::new_checked(payload) {
            let _ = (
                arp.operation(),
                arp.sender_hardware_addr(),
                arp.sender_protocol_addr(),
            );
            let _ = (arp.target_hardware_addr(), arp.target_protocol_addr());
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
            let _ = (ip.frag_offset(), ip.is_fragment(), ip.ttl(), ip.ident());
            if let Ok(tcp) = TcpPacket::new_checked(ip.payload()) {
                let _ = (
                    tcp.seq_number(),
                    tcp.ack_number(),
                    tcp.flags(),
                    tcp.payload(),
                );
                let _ = tcp.verify_checksum(ip.src_addr(), ip.dst_addr());
                for option in tcp.options_iter() {
                    let _ = option;
                }
            }
        }
    }
    // The same bytes as a bare TCP segment, so the option parser sees them
    // without first having to pass the outer headers.
    if let Ok(tcp) = TcpPacket::new_checked(data) {
        let _ = tcp.options_iter().count();
        let _ = baton_fastpath::packet::tcp_options::RewriteSites::locate(tcp.options());
    }
});
