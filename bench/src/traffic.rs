//! The traffic of a run: the addresses, one frame template per flow, and
//! the generator that feeds the templates to the ports.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};
use baton_fastpath::packet::tcp_options::TcpOption;
use baton_fastpath::packet::{MacAddr, SeqNum, TcpFlags, TcpFrameBuilder, TsVal};
use dpdk_ffi::{Burst, Mempool, Ring};

use crate::{Path, BURST};

/// The node under test.
pub(crate) const OWN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
/// The node that handed the target paths' connections over: their clients
/// connected to it.
pub(crate) const ORIGIN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
pub(crate) const OWN_MAC: MacAddr = MacAddr([0x02, 0xba, 0x70, 0, 0, 0x0b]);
/// The peer the origin path forwards to.
pub(crate) const PEER_MAC: MacAddr = MacAddr([0x02, 0xba, 0x70, 0, 0, 0x0c]);
pub(crate) const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xba, 0x70, 0, 0, 0x64]);
/// Buffers in flight per worker: enough to keep every burst full.
const IN_FLIGHT: usize = 512;

/// Frames for `flows` flows of `path`, all the same length, back to back.
pub(crate) struct Templates {
    bytes: Vec<u8>,
    stride: usize,
    pub(crate) count: usize,
}

impl Templates {
    pub(crate) fn frame(&self, i: usize) -> &[u8] {
        let at = (i % self.count) * self.stride;
        &self.bytes[at..at + self.stride]
    }
}

/// The client of flow `i`: spread over addresses and ports like real clients.
pub(crate) fn client(i: usize) -> (Ipv4Addr, u16) {
    // Cannot truncate: every flow has a template frame in memory, so there
    // are far fewer than 50_000 << 32 of them; and i % 50_000 fits a u16.
    #[allow(clippy::cast_possible_truncation)]
    let (host, port) = ((i / 50_000) as u32, (i % 50_000) as u16);
    (Ipv4Addr::from(0xc613_0000u32 + host), 10_000 + port)
}

/// What the kernel of flow `i` numbers its bytes from, and the offset a
/// handoff would have set up.
pub(crate) const ISN_KERNEL: u32 = 1_000_000;
pub(crate) const SEQ_DELTA: u32 = 77_777;
/// Where every client's stream stands (the generator's frames repeat it).
pub(crate) const CLIENT_SEQ: u32 = 5001;

pub(crate) fn templates(path: Path, flows: usize) -> Templates {
    let mut bytes = Vec::new();
    let mut stride = 0;
    for i in 0..flows {
        let (caddr, cport) = client(i);
        let mut ts = vec![1, 1];
        TcpOption::Timestamps {
            tsval: TsVal::new(1000),
            tsecr: TsVal::new(2000),
        }
        .emit(&mut ts);
        let b = TcpFrameBuilder {
            tcp_options: ts,
            flags: TcpFlags::ACK,
            window: 1000,
            ..TcpFrameBuilder::default()
        };
        let b = match path {
            Path::TargetS2c => TcpFrameBuilder {
                src_mac: OWN_MAC,
                dst_mac: CLIENT_MAC,
                src_addr: OWN,
                dst_addr: caddr,
                src_port: 80,
                dst_port: cport,
                seq: SeqNum::new(ISN_KERNEL + 1),
                ack: SeqNum::new(CLIENT_SEQ),
                ..b
            },
            _ => TcpFrameBuilder {
                src_mac: CLIENT_MAC,
                dst_mac: OWN_MAC,
                src_addr: caddr,
                dst_addr: if path == Path::TargetC2s { ORIGIN } else { OWN },
                src_port: cport,
                dst_port: 80,
                seq: SeqNum::new(CLIENT_SEQ),
                ack: SeqNum::new(ISN_KERNEL.wrapping_add(SEQ_DELTA) + 1),
                ..b
            },
        };
        let frame = b.build();
        stride = frame.len();
        bytes.extend_from_slice(&frame);
    }
    Templates {
        bytes,
        stride,
        count: flows,
    }
}

/// Refills the input ring with the buffers that came out, rewritten from
/// the next flows' templates.
pub(crate) struct Generator<'a> {
    templates: &'a Templates,
    next: usize,
    burst: Burst,
}

impl<'a> Generator<'a> {
    pub(crate) fn new(templates: &'a Templates, lane: usize) -> Generator<'a> {
        Generator {
            templates,
            // Lanes start apart so they do not walk the same flows.
            next: lane * 7919,
            burst: Burst::new(),
        }
    }

    pub(crate) fn prefill(&mut self, pool: &Mempool, feed: &Ring) -> Result<()> {
        for _ in 0..IN_FLIGHT {
            let mut m = pool.alloc().context("benchmark buffers")?;
            let frame = self.templates.frame(self.next);
            self.next += 1;
            m.set_len(u16::try_from(frame.len()).context("benchmark frame length")?);
            m.data_mut().copy_from_slice(frame);
            self.burst.push(m).ok();
            if self.burst.is_full() {
                feed.enqueue(&mut self.burst);
            }
        }
        feed.enqueue(&mut self.burst);
        self.burst.free_all();
        Ok(())
    }

    /// Moves one burst from `drain` back into `feed`; returns its size.
    #[inline]
    pub(crate) fn step(&mut self, drain: &Ring, feed: &Ring) -> usize {
        let n = drain.dequeue(&mut self.burst, BURST);
        for i in 0..n {
            let frame = self.templates.frame(self.next);
            self.next += 1;
            self.burst.data_mut(i).copy_from_slice(frame);
        }
        feed.enqueue(&mut self.burst);
        self.burst.free_all();
        n
    }
}
