//! Helpers shared by the packet integration tests.
#![allow(dead_code)]

use baton_fastpath::packet::{EthernetFrame, Ipv4Packet, TcpPacket};

/// Frames captured from a real Linux stack by `fixtures/capture.sh`:
/// 198.18.0.2:34540 (curl) talking to 198.18.0.1:8080 (python http.server).
pub mod fixture {
    /// Client SYN: MSS 1460, SACK-permitted, timestamps, window scale 10.
    pub const SYN: &[u8] = include_bytes!("../fixtures/syn.bin");
    /// Server SYN-ACK.
    pub const SYN_ACK: &[u8] = include_bytes!("../fixtures/syn_ack.bin");
    /// Client data segment: the HTTP request.
    pub const DATA_C2S: &[u8] = include_bytes!("../fixtures/data_c2s.bin");
    /// Server data segment: the HTTP response header.
    pub const DATA_S2C: &[u8] = include_bytes!("../fixtures/data_s2c.bin");
    /// Client ACK with one SACK block, sent after a loss.
    pub const ACK_SACK: &[u8] = include_bytes!("../fixtures/ack_sack.bin");

    /// All of them, named.
    pub const ALL: [(&str, &[u8]); 5] = [
        ("syn", SYN),
        ("syn_ack", SYN_ACK),
        ("data_c2s", DATA_C2S),
        ("data_s2c", DATA_S2C),
        ("ack_sack", ACK_SACK),
    ];
}

/// The IPv4 and TCP checksum fields of an IPv4/TCP frame, as stored.
pub fn stored_checksums(frame: &[u8]) -> (u16, u16) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    (ip.checksum(), tcp.checksum())
}

/// The IPv4 and TCP checksums of an IPv4/TCP frame, computed from scratch.
pub fn recomputed_checksums(frame: &[u8]) -> (u16, u16) {
    let mut copy = frame.to_vec();
    let mut eth = EthernetFrame::new_checked(&mut copy[..]).unwrap();
    let mut ip = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
    ip.fill_checksum();
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let ip_sum = ip.checksum();
    let mut tcp = TcpPacket::new_checked(ip.payload_mut()).unwrap();
    tcp.fill_checksum(src, dst);
    (ip_sum, tcp.checksum())
}

/// Whether both checksums of an IPv4/TCP frame verify.
pub fn checksums_valid(frame: &[u8]) -> bool {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    ip.verify_checksum() && tcp.verify_checksum(ip.src_addr(), ip.dst_addr())
}

/// Runs `f` on the TCP view of an IPv4/TCP frame.
pub fn with_tcp<R>(frame: &[u8], f: impl FnOnce(&Ipv4Packet<&[u8]>, &TcpPacket<&[u8]>) -> R) -> R {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    f(&ip, &tcp)
}
