//! The lanes: one worker's ring-backed ports each, and the runs on them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use baton_fastpath::counters::WorkerCounters;
use baton_fastpath::idle::IdlePolicy;
use baton_fastpath::worker::{EngineLink, PollState, Worker};
use dpdk_ffi::{lcore, Burst, Eal, Mempool, Port, PortConfig, Queue, Ring};

use crate::engine::engine_for;
use crate::traffic::{templates, Generator, Templates};
use crate::{Path, BURST};

/// Slots in each ring between the generator and a port.
const RING_SIZE: u32 = 1024;

/// One worker's ports and rings.
pub(crate) struct Lane {
    wire: Option<Queue>,
    host: Option<Queue>,
    wire_in: Ring,
    wire_out: Ring,
    host_in: Ring,
    host_out: Ring,
    // Ports last: they must close before their rings go.
    _ports: [Port; 2],
}

pub(crate) fn lane(eal: &Eal, pool: &Mempool, w: usize) -> Result<Lane> {
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

/// Runs `path` with `flows` flows on every lane at once; returns the mean
/// Mpps per worker, ns per packet, and the packets through all lanes.
pub(crate) fn measure(
    eal: &Eal,
    pool: &Arc<Mempool>,
    lanes: &mut Vec<Lane>,
    path: Path,
    flows: usize,
    seconds: f64,
) -> Result<(f64, f64, u64)> {
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
            lcore::launch(eal, u32::try_from(w)?, job)?;
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
        lcore::wait(eal, u32::try_from(w)?);
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
    let packets = results.iter().map(|(p, _)| p).sum();
    Ok((mpps, 1e3 / mpps, packets))
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
            wake: None,
            counters: Arc::clone(&counters),
            stop: Arc::new(AtomicBool::new(false)),
            engine: engine.map(|engine| {
                EngineLink::new(
                    engine,
                    Arc::clone(pool),
                    baton_fastpath::worker::inbox(1).1,
                    crossbeam_channel::bounded(1).0,
                )
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

/// The generator alone, moving buffers between two rings.
pub(crate) fn measure_generator(
    _eal: &Eal,
    pool: &Mempool,
    lane: &mut Lane,
    seconds: f64,
) -> Result<f64> {
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
