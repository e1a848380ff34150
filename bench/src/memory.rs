//! `baton bench --memory`: what a connection costs in memory, measured as
//! the growth of this process's resident set while an engine takes
//! connections through real frames, phase by phase: half-open (the client's
//! SYN and the kernel's SYN-ACK seen), established (the handshake's ACK:
//! a flow waiting for its request, what a SYN used to cost for the idle
//! timeout), and handed off (the request held, sent and accepted: the flow
//! forwards). No DPDK: the engine is sans-I/O.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use baton_fastpath::counters::{Counter, WorkerCounters};
use baton_fastpath::engine::{Engine, Load, Placement, Placer, ServiceKind, Verdict};
use baton_fastpath::packet::tcp_options::TcpOption;
use baton_fastpath::packet::{SeqNum, TcpFlags, TcpFrameBuilder, TsVal};
use baton_handoff::msg::{HandoffAccept, Message};
use serde::Serialize;

use crate::traffic::{client, CLIENT_MAC, OWN, OWN_MAC};

/// Bytes per connection in each phase, at `connections` of them.
#[derive(Debug, Serialize)]
pub struct Memory {
    pub connections: usize,
    pub half_open_bytes: f64,
    pub established_bytes: f64,
    pub handed_off_bytes: f64,
    /// The half-open table's own bound per entry (table and FIFO), from the
    /// types: what a full table takes whatever the SYNs.
    pub half_open_entry_bytes: usize,
}

const ISN_CLIENT: u32 = 7_000;
const ISN_KERNEL: u32 = 1_000_000;
const REQUEST: &[u8] = b"GET /elsewhere/x HTTP/1.1\r\nHost: bench\r\nUser-Agent: curl/8\r\n\r\n";

fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .context("statm's resident field")?;
    Ok(pages * 4096)
}

/// Linux's own SYN options: MSS, SACK permitted, timestamps, window scale.
fn syn_options(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = Vec::new();
    TcpOption::MaxSegmentSize(1460).emit(&mut o);
    TcpOption::SackPermitted.emit(&mut o);
    TcpOption::Timestamps {
        tsval: TsVal::new(tsval),
        tsecr: TsVal::new(tsecr),
    }
    .emit(&mut o);
    o.push(1);
    TcpOption::WindowScale(7).emit(&mut o);
    o
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

pub fn measure(connections: usize) -> Result<Memory> {
    if connections == 0 {
        bail!("--flows must be at least 1");
    }
    let counters = Arc::new(WorkerCounters::default());
    let cfg = baton_fastpath::engine::EngineConfig {
        max_flows: connections,
        half_open: connections,
        ..crate::engine::config(connections)
    };
    let mut engine = Engine::new(cfg, Box::new(ToPeer), Arc::clone(&counters));
    engine.on_peer_up(0);
    engine.take_output();
    let now = Instant::now();
    let builder = |i: usize, from_client: bool| {
        let (caddr, cport) = client(i);
        let b = TcpFrameBuilder::default();
        if from_client {
            b.macs(CLIENT_MAC, OWN_MAC)
                .addrs(caddr, OWN)
                .ports(cport, 80)
        } else {
            b.macs(OWN_MAC, CLIENT_MAC)
                .addrs(OWN, caddr)
                .ports(80, cport)
        }
    };
    let start = resident_bytes()?;
    for i in 0..connections {
        let mut syn = builder(i, true)
            .seq(SeqNum::new(ISN_CLIENT))
            .flags(TcpFlags::SYN)
            .window(64240)
            .raw_options(&syn_options(100, 0))
            .build();
        engine.from_wire(&mut syn, now);
        let mut synack = builder(i, false)
            .seq(SeqNum::new(ISN_KERNEL))
            .ack(SeqNum::new(ISN_CLIENT + 1))
            .flags(TcpFlags::SYN | TcpFlags::ACK)
            .window(65160)
            .raw_options(&syn_options(5000, 100))
            .build();
        engine.from_host(&mut synack, now);
    }
    let half_open = resident_bytes()?;
    for i in 0..connections {
        let mut ack = builder(i, true)
            .seq(SeqNum::new(ISN_CLIENT + 1))
            .ack(SeqNum::new(ISN_KERNEL + 1))
            .flags(TcpFlags::ACK)
            .window(502)
            .raw_options(&timestamps(101, 5000))
            .build();
        engine.from_wire(&mut ack, now);
    }
    if counters.get(Counter::FlowsActive) == 0 {
        engine.poll_timers(now);
    }
    let established = resident_bytes()?;
    for i in 0..connections {
        let mut request = builder(i, true)
            .seq(SeqNum::new(ISN_CLIENT + 1))
            .ack(SeqNum::new(ISN_KERNEL + 1))
            .flags(TcpFlags::ACK | TcpFlags::PSH)
            .window(502)
            .raw_options(&timestamps(102, 5000))
            .payload(REQUEST)
            .build();
        if engine.from_wire(&mut request, now) != Verdict::Consumed {
            bail!("connection {i}: its request was not held for a handoff");
        }
        for (peer, msg) in engine.take_output().messages {
            if let Message::HandoffRequest(req) = msg {
                let (caddr, cport) = client(i);
                let accept = HandoffAccept {
                    id: req.id,
                    isn_target: SeqNum::new(9),
                    client: std::net::SocketAddrV4::new(caddr, cport),
                };
                engine.on_message(peer, Message::HandoffAccept(accept), now);
            }
        }
        engine.take_output();
    }
    let handed_off = resident_bytes()?;
    let handed = counters.get(Counter::HandedOff);
    if handed != connections as u64 {
        bail!("{handed} of {connections} connections were handed off");
    }
    let per = |from: u64, to: u64| to.saturating_sub(from) as f64 / connections as f64;
    Ok(Memory {
        connections,
        half_open_bytes: per(start, half_open),
        established_bytes: per(half_open, established),
        handed_off_bytes: per(half_open, handed_off),
        half_open_entry_bytes: baton_fastpath::engine::HALF_OPEN_ENTRY_BYTES,
    })
}

/// Every request goes to the one peer.
struct ToPeer;

impl Placer for ToPeer {
    fn place(&mut self, _: &[u8], _: ServiceKind, can_take: &[bool], _: Load) -> Placement {
        if can_take.first() == Some(&true) {
            Placement::Peer(0)
        } else {
            Placement::Local
        }
    }
}

pub fn print(m: &Memory, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(m)?);
        return Ok(());
    }
    println!(
        "memory per connection at {} connections (growth of the resident set):",
        m.connections
    );
    println!(
        "  half-open (SYN and SYN-ACK seen):       {:>7.0} bytes (table and FIFO bound: {} bytes per entry)",
        m.half_open_bytes, m.half_open_entry_bytes
    );
    println!(
        "  established (handshake done, a flow):  {:>7.0} bytes",
        m.established_bytes
    );
    println!(
        "  handed off (request sent, forwarding): {:>7.0} bytes",
        m.handed_off_bytes
    );
    Ok(())
}
