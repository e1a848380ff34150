//! `baton bench`: packets per second on each forwarding path, beside a bare
//! DPDK forwarder on the same ports, in one process and one run.
//!
//! Every worker gets two ports built from rings (the ring PMD): a wire port
//! and a host port. A generator on the same lcore refills the input ring
//! from precomputed frames (one template per flow, cycled) with the buffers
//! that came out of the output ring, so no buffer is allocated on the way.
//! The generator's cost is in every figure, the bare forwarder's included,
//! and is also measured alone; the ratio to the bare forwarder is the
//! figure that travels between machines.
//!
//! Paths:
//! - `bare`: rx, touch one byte, tx: the ceiling.
//! - `passthrough`: Baton without a cluster (no flow state).
//! - `local`: a cluster node; the packets belong to connections it serves
//!   itself (not in the flow table after the decision): lookup, miss, pass.
//! - `origin-forward`: connections handed to a peer; client packets get
//!   the peer's MAC and go back out of the wire port.
//! - `target-c2s` / `target-s2c`: connections handed to this node;
//!   translation toward the kernel, and toward the client.
#![forbid(unsafe_code)]

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use baton_fastpath::counters::WorkerCounters;
use baton_fastpath::engine::{
    Engine, EngineConfig, FlowKey, Load, PeerInfo, Placement, Placer, ServiceKind,
};
use baton_fastpath::idle::IdlePolicy;
use baton_fastpath::packet::{MacAddr, SeqNum, TcpFlags, TcpFrameBuilder, Translation};
use baton_fastpath::worker::{PollState, Worker};
use dpdk_ffi::{lcore, Burst, Eal, Mempool, Port, PortConfig, Queue, Ring};
use serde::Serialize;

const OWN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
const ORIGIN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
const OWN_MAC: MacAddr = MacAddr([0x02, 0xba, 0x70, 0, 0, 0x0b]);
const PEER_MAC: MacAddr = MacAddr([0x02, 0xba, 0x70, 0, 0, 0x0c]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xba, 0x70, 0, 0, 0x64]);
/// Buffers in flight per worker: enough to keep every burst full.
const IN_FLIGHT: usize = 512;
const RING_SIZE: u32 = 1024;
const BURST: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    Bare,
    Passthrough,
    Local,
    OriginForward,
    TargetC2s,
    TargetS2c,
}

impl Path {
    const ALL: [Path; 6] = [
        Path::Bare,
        Path::Passthrough,
        Path::Local,
        Path::OriginForward,
        Path::TargetC2s,
        Path::TargetS2c,
    ];

    fn name(self) -> &'static str {
        match self {
            Path::Bare => "bare forwarder",
            Path::Passthrough => "passthrough (no cluster)",
            Path::Local => "local flows",
            Path::OriginForward => "origin forward",
            Path::TargetC2s => "target client->server",
            Path::TargetS2c => "target server->client",
        }
    }

    /// Which port the generator feeds; the other is where packets leave.
    fn enters_from_host(self) -> bool {
        self == Path::TargetS2c
    }

    fn leaves_by_wire(self) -> bool {
        matches!(self, Path::OriginForward | Path::TargetS2c)
    }
}

pub struct BenchArgs {
    pub workers: usize,
    pub flows: Vec<usize>,
    pub seconds: f64,
    /// Paths to measure besides the bare forwarder; empty: all of them.
    pub paths: Vec<Path>,
    pub json: bool,
    pub hugepages: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub path: Path,
    pub flows: usize,
    pub workers: usize,
    /// Million packets per second, per worker (mean over workers).
    pub mpps_per_worker: f64,
    pub ns_per_packet: f64,
    /// This path's rate over the bare forwarder's, same flows and workers.
    pub ratio_to_bare: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    generator_ns_per_packet: f64,
    rows: Vec<Row>,
}

/// One worker's ports and rings.
struct Lane {
    wire: Option<Queue>,
    host: Option<Queue>,
    wire_in: Ring,
    wire_out: Ring,
    host_in: Ring,
    host_out: Ring,
    // Ports last: they must close before their rings go.
    _ports: [Port; 2],
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    // Read before EAL init, which pins this thread to one CPU.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let machine = machine(cpus);
    let lcores: Vec<String> = (0..args.workers)
        .map(|w| format!("{w}@{}", w % cpus))
        .collect();
    let mut eal_args = vec![
        "--lcores".to_string(),
        lcores.join(","),
        // Runtime files of its own: a benchmark never meets a running
        // instance's DPDK state.
        "--no-shconf".into(),
        "--file-prefix".into(),
        format!("baton-bench-{}", std::process::id()),
        "--no-pci".into(),
        "-m".into(),
        "1024".into(),
    ];
    if !args.hugepages {
        eal_args.push("--no-huge".into());
    }
    let eal = Eal::init(&eal_args).context("DPDK for the benchmark")?;
    let pool = Arc::new(Mempool::new(&eal, "bench_mbufs", 16383, 256)?);
    let mut lanes = Vec::new();
    for w in 0..args.workers {
        lanes.push(lane(&eal, &pool, w)?);
    }

    let generator = measure_generator(&eal, &pool, &mut lanes[0], args.seconds)?;
    let mut rows = Vec::new();
    for &flows in &args.flows {
        let mut bare = 0.0;
        let chosen = Path::ALL
            .into_iter()
            .filter(|&p| p == Path::Bare || args.paths.is_empty() || args.paths.contains(&p));
        for path in chosen {
            let (mpps, ns) = measure(&eal, &pool, &mut lanes, path, flows, args.seconds)?;
            if path == Path::Bare {
                bare = mpps;
            }
            let row = Row {
                path,
                flows,
                workers: args.workers,
                mpps_per_worker: mpps,
                ns_per_packet: ns,
                ratio_to_bare: if bare > 0.0 { mpps / bare } else { 0.0 },
            };
            if !args.json {
                print_row(&row, rows.is_empty());
            }
            rows.push(row);
        }
    }
    let report = Report {
        machine,
        generator_ns_per_packet: generator,
        rows,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("\nmachine: {}", report.machine);
        println!(
            "generator alone: {:.1} ns/packet (included in every row; subtract it for Baton's own cost)",
            report.generator_ns_per_packet
        );
    }
    drop(lanes);
    drop(pool);
    drop(eal);
    // EAL leaves its runtime directory behind; a benchmark is gone for good.
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/baton-bench-{}", std::process::id()));
    Ok(())
}

fn print_row(row: &Row, first: bool) {
    if first {
        println!(
            "{:<26} {:>9} {:>8} {:>14} {:>10} {:>9}",
            "path", "flows", "workers", "Mpps/worker", "ns/pkt", "vs bare"
        );
    }
    println!(
        "{:<26} {:>9} {:>8} {:>14.2} {:>10.1} {:>9.2}",
        row.path.name(),
        row.flows,
        row.workers,
        row.mpps_per_worker,
        row.ns_per_packet,
        row.ratio_to_bare
    );
}

fn machine(cpus: usize) -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{model}, {cpus} CPUs")
}

fn lane(eal: &Eal, pool: &Mempool, w: usize) -> Result<Lane> {
    let ring = |name: &str| Ring::new(eal, &format!("bench_{name}{w}"), RING_SIZE, true);
    let (wire_in, wire_out, host_in, host_out) =
        (ring("wi")?, ring("wo")?, ring("hi")?, ring("ho")?);
    let conf = PortConfig {
        queues: 1,
        rx_desc: 512,
        tx_desc: 512,
    };
    let mut wire = Port::from_rings(eal, &format!("bench_wire{w}"), &[&wire_in], &[&wire_out])?;
    let mut host = Port::from_rings(eal, &format!("bench_host{w}"), &[&host_in], &[&host_out])?;
    for port in [&mut wire, &mut host] {
        port.configure(&conf, pool)?;
        port.start()?;
    }
    Ok(Lane {
        wire: wire.take_queue(0),
        host: host.take_queue(0),
        wire_in,
        wire_out,
        host_in,
        host_out,
        _ports: [wire, host],
    })
}

/// Frames for `flows` flows of `path`, all the same length, back to back.
struct Templates {
    bytes: Vec<u8>,
    stride: usize,
    count: usize,
}

impl Templates {
    fn frame(&self, i: usize) -> &[u8] {
        let at = (i % self.count) * self.stride;
        &self.bytes[at..at + self.stride]
    }
}

/// The client of flow `i`: spread over addresses and ports like real clients.
fn client(i: usize) -> (Ipv4Addr, u16) {
    let host = (i / 50_000) as u32;
    (
        Ipv4Addr::from(0xc613_0000u32 + host),
        10_000 + (i % 50_000) as u16,
    )
}

/// What the kernel of flow `i` numbers its bytes from, and the offset a
/// handoff would have set up.
const ISN_KERNEL: u32 = 1_000_000;
const SEQ_DELTA: u32 = 77_777;

fn templates(path: Path, flows: usize) -> Templates {
    let mut bytes = Vec::new();
    let mut stride = 0;
    for i in 0..flows {
        let (caddr, cport) = client(i);
        let mut ts = vec![1, 1];
        baton_fastpath::packet::tcp_options::TcpOption::Timestamps {
            tsval: 1000,
            tsecr: 2000,
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
                ack: SeqNum::new(5001),
                ..b
            },
            _ => TcpFrameBuilder {
                src_mac: CLIENT_MAC,
                dst_mac: OWN_MAC,
                src_addr: caddr,
                dst_addr: if path == Path::TargetC2s { ORIGIN } else { OWN },
                src_port: cport,
                dst_port: 80,
                seq: SeqNum::new(5001),
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

fn engine_for(path: Path, flows: usize, counters: &Arc<WorkerCounters>) -> Option<Engine> {
    if matches!(path, Path::Bare | Path::Passthrough) {
        return None;
    }
    let cfg = EngineConfig {
        own_addr: OWN,
        own_mac: OWN_MAC,
        vip: None,
        services: vec![(80, ServiceKind::Http)],
        peers: vec![PeerInfo {
            name: "peer".into(),
            mac: PEER_MAC,
        }],
        hold_bytes: 16384,
        hold_segments: 8,
        hold_timeout: Duration::from_millis(200),
        handoff_timeout: Duration::from_millis(500),
        linger: Duration::from_secs(2),
        // Nothing expires during a run.
        idle_timeout: Duration::from_secs(3600),
        max_flows: flows,
    };
    let mut engine = Engine::new(cfg, Box::new(ServeHere), Arc::clone(counters));
    let now = Instant::now();
    for i in 0..flows {
        let (caddr, cport) = client(i);
        match path {
            Path::OriginForward => {
                engine.preload_forwarding(FlowKey::new(caddr, cport, OWN, 80), 0, CLIENT_MAC, now);
            }
            Path::TargetC2s | Path::TargetS2c => {
                let translation = Translation {
                    seq_delta: SEQ_DELTA,
                    ts_offset: 12345,
                    client_visible_addr: ORIGIN,
                    target_kernel_addr: OWN,
                    wscale_kernel: 7,
                    wscale_origin: 7,
                };
                engine.preload_handed_in(
                    FlowKey::new(caddr, cport, ORIGIN, 80),
                    0,
                    i as u64,
                    translation,
                    CLIENT_MAC,
                    now,
                );
            }
            _ => {}
        }
    }
    Some(engine)
}

/// Requests never reach the placer in a benchmark: its flows are
/// established or unknown.
struct ServeHere;

impl Placer for ServeHere {
    fn place(&mut self, _: &[u8], _: ServiceKind, _: &[bool], _: Load) -> Placement {
        Placement::Local
    }
}

/// Runs `path` with `flows` flows on every lane at once; returns the mean
/// Mpps per worker and ns per packet.
fn measure(
    eal: &Eal,
    pool: &Arc<Mempool>,
    lanes: &mut Vec<Lane>,
    path: Path,
    flows: usize,
    seconds: f64,
) -> Result<(f64, f64)> {
    let templates = Arc::new(templates(path, flows));
    let (tx, rx) = std::sync::mpsc::channel();
    let taken: Vec<Lane> = std::mem::take(lanes);
    let count = taken.len();
    let mut first = None;
    for (w, lane) in taken.into_iter().enumerate() {
        let job = {
            let (templates, pool, tx) = (Arc::clone(&templates), Arc::clone(pool), tx.clone());
            move || {
                let mut lane = lane;
                let result = run_lane(&mut lane, &pool, path, &templates, seconds, w);
                let _ = tx.send((w, lane, result));
                0
            }
        };
        if w == 0 {
            first = Some(job); // the main lcore runs lane 0 itself
        } else {
            lcore::launch(eal, w as u32, job)?;
        }
    }
    if let Some(job) = first {
        job();
    }
    let mut results = Vec::new();
    let mut back: Vec<Option<Lane>> = (0..count).map(|_| None).collect();
    for _ in 0..count {
        let (w, lane, result) = rx.recv().context("a benchmark lane stopped")?;
        back[w] = Some(lane);
        results.push(result?);
    }
    for w in 1..count {
        lcore::wait(eal, w as u32);
    }
    *lanes = back
        .into_iter()
        .map(|l| l.expect("every lane returned"))
        .collect();
    let mpps = results
        .iter()
        .map(|(p, t)| *p as f64 / t.as_secs_f64() / 1e6)
        .sum::<f64>()
        / count as f64;
    Ok((mpps, 1e3 / mpps))
}

/// One lane's run: returns (packets through, time taken).
fn run_lane(
    lane: &mut Lane,
    pool: &Arc<Mempool>,
    path: Path,
    templates: &Templates,
    seconds: f64,
    w: usize,
) -> Result<(u64, Duration)> {
    let counters = Arc::new(WorkerCounters::default());
    let engine = engine_for(path, templates.count, &counters);
    let (feed, drain) = match (path.enters_from_host(), path.leaves_by_wire()) {
        (false, false) => (&lane.wire_in, &lane.host_out),
        (false, true) => (&lane.wire_in, &lane.wire_out),
        (true, true) => (&lane.host_in, &lane.wire_out),
        (true, false) => (&lane.host_in, &lane.host_out),
    };
    let mut gen = Generator::new(templates, w);
    gen.prefill(pool, feed)?;
    let (mut wire, mut host) = (
        lane.wire.take().expect("queue"),
        lane.host.take().expect("queue"),
    );
    let mut packets = 0u64;
    let deadline = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut elapsed = Duration::ZERO;
    if path == Path::Bare {
        let (from, to) = if path.enters_from_host() {
            (&mut host, &mut wire)
        } else {
            (&mut wire, &mut host)
        };
        let mut burst = Burst::new();
        while elapsed < deadline {
            for _ in 0..1024 {
                packets += gen.step(drain, feed) as u64;
                bare_forward(&mut burst, from, to);
            }
            elapsed = start.elapsed();
        }
    } else {
        let mut worker = Worker {
            id: w,
            wire,
            host,
            burst: BURST,
            idle: IdlePolicy::Busy,
            counters: Arc::clone(&counters),
            stop: Arc::new(AtomicBool::new(false)),
            engine: engine.map(|engine| baton_fastpath::worker::EngineLink {
                engine,
                pool: Arc::clone(pool),
                inbox: crossbeam_channel::never(),
                outbox: crossbeam_channel::bounded(1).0,
            }),
            steering: None,
        };
        let mut state = PollState::new(1);
        while elapsed < deadline {
            let now = Instant::now();
            for _ in 0..1024 {
                packets += gen.step(drain, feed) as u64;
                worker.poll_once(&mut state, now);
            }
            elapsed = start.elapsed();
        }
        wire = worker.wire;
        host = worker.host;
    }
    // Leave the rings empty for the next run.
    let mut burst = Burst::new();
    for ring in [&lane.wire_in, &lane.wire_out, &lane.host_in, &lane.host_out] {
        while ring.dequeue(&mut burst, 64) > 0 {
            burst.free_all();
        }
    }
    lane.wire = Some(wire);
    lane.host = Some(host);
    Ok((packets, elapsed))
}

/// rx, touch one byte, tx: what any forwarder must do at least.
#[inline]
fn bare_forward(burst: &mut Burst, from: &mut Queue, to: &mut Queue) {
    if burst.rx(from, BURST) == 0 {
        return;
    }
    for i in 0..burst.len() {
        let data = burst.data_mut(i);
        data[0] = std::hint::black_box(data[0]);
    }
    burst.tx(to);
    burst.free_all();
}

/// Refills the input ring with the buffers that came out, rewritten from
/// the next flows' templates.
struct Generator<'a> {
    templates: &'a Templates,
    next: usize,
    burst: Burst,
}

impl<'a> Generator<'a> {
    fn new(templates: &'a Templates, lane: usize) -> Generator<'a> {
        Generator {
            templates,
            // Lanes start apart so they do not walk the same flows.
            next: lane * 7919,
            burst: Burst::new(),
        }
    }

    fn prefill(&mut self, pool: &Mempool, feed: &Ring) -> Result<()> {
        for _ in 0..IN_FLIGHT {
            let mut m = pool.alloc().context("benchmark buffers")?;
            let frame = self.templates.frame(self.next);
            self.next += 1;
            m.set_len(frame.len() as u16);
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
    fn step(&mut self, drain: &Ring, feed: &Ring) -> usize {
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

/// The generator alone, moving buffers between two rings.
fn measure_generator(_eal: &Eal, pool: &Mempool, lane: &mut Lane, seconds: f64) -> Result<f64> {
    let templates = templates(Path::Bare, 1000);
    let mut gen = Generator::new(&templates, 0);
    gen.prefill(pool, &lane.wire_out)?;
    let start = Instant::now();
    let mut packets = 0u64;
    // Round trip through the same ring: each step takes what it put back.
    while start.elapsed().as_secs_f64() < seconds.min(0.5) {
        for _ in 0..1024 {
            packets += gen.step(&lane.wire_out, &lane.wire_out) as u64;
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / packets.max(1) as f64;
    let mut burst = Burst::new();
    while lane.wire_out.dequeue(&mut burst, 64) > 0 {
        burst.free_all();
    }
    Ok(ns)
}
