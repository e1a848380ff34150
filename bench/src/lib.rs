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

mod engine;
mod lanes;
pub mod memory;
mod traffic;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use dpdk_ffi::{Eal, Mempool};
use serde::Serialize;

use lanes::{lane, measure, measure_generator};

/// Frames per burst, the generator's and the worker's.
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
    /// The EAL file prefix; `None`: `baton-bench-<pid>`.
    pub file_prefix: Option<String>,
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
    /// Packets through all workers: divides an instruction count of the
    /// run (`valgrind --tool=callgrind`) into a cost per packet.
    pub packets: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    generator_ns_per_packet: f64,
    rows: Vec<Row>,
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
    remove_what_killed_benchmarks_left();
    let prefix = args
        .file_prefix
        .clone()
        .unwrap_or_else(|| format!("{DEFAULT_PREFIX}{}", std::process::id()));
    let mut eal_args = vec![
        "--lcores".to_string(),
        lcores.join(","),
        // Runtime files of its own: a benchmark never meets a running
        // instance's DPDK state.
        "--no-shconf".into(),
        "--file-prefix".into(),
        prefix.clone(),
        "--no-pci".into(),
        "-m".into(),
        "1024".into(),
    ];
    if args.hugepages {
        // No hugepage file outlives the benchmark (see dpdk_ffi::runtime).
        eal_args.push(dpdk_ffi::runtime::HUGE_UNLINK.into());
    } else {
        eal_args.push("--no-huge".into());
    }
    // Dropped after the EAL: a benchmark is gone for good, and so is what
    // a killed one with the same prefix left.
    let runtime_files = dpdk_ffi::runtime::RuntimeFiles::claim(&prefix);
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
            let (mpps, ns, packets) = measure(&eal, &pool, &mut lanes, path, flows, args.seconds)?;
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
                packets,
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
    drop(runtime_files);
    Ok(())
}

/// The default file prefix, followed by the benchmark's process id.
const DEFAULT_PREFIX: &str = "baton-bench-";

/// Removes the DPDK files of benchmarks with the default prefix whose
/// process is gone (killed: a benchmark that exits removes its own).
fn remove_what_killed_benchmarks_left() {
    let base = dpdk_ffi::runtime::RuntimeFiles::new(DEFAULT_PREFIX);
    let Some(dir) = base.runtime_dir().parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DEFAULT_PREFIX) else {
            continue;
        };
        let is_pid = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
        if is_pid && !std::path::Path::new("/proc").join(pid).exists() {
            if let Err(e) = dpdk_ffi::runtime::RuntimeFiles::new(&name).remove() {
                eprintln!("warning: could not remove a killed benchmark's DPDK files: {e}");
            }
        }
    }
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
