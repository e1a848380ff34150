//! `baton run`: bring the node up, poll until told to stop, shut down cleanly.
//!
//! The main lcore is the control lcore: it serves the stats socket and
//! watches for SIGINT/SIGTERM. Each worker lcore polls one queue pair on the
//! wire port and one on the host port.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use baton_config::{Config, HostPortKind, IdleMode, WirePort};
use baton_control::plane::ControlPlane;
use baton_control::stats::{
    DrainAnswer, PortCounter, PortStatsEntry, ReloadAnswer, Requests, StatsServer, StatsSnapshot,
    WorkerStats,
};
use baton_fastpath::counters::{HandoffLatency, WorkerCounters};
use baton_fastpath::engine::{Engine, EngineConfig};
use baton_fastpath::idle::IdlePolicy;
use baton_fastpath::worker::{
    inbox, EngineLink, FromWorker, Sleeper, Steering, ToWorkerRx, Worker,
};
use baton_handoff::placement::PolicyPlacer;
use baton_handoff::workers::DirectIo;
use dpdk_ffi::{
    lcore, DpdkError, Eal, Mempool, PacketWake, Port, PortConfig, PortStats, Ring, RingDrops,
    WakeBell,
};

use crate::metrics::Endpoints;
use crate::reload::Reloader;
use crate::{eal_args, host_iface, parts};

/// How often the control lcore looks at its stats socket and the stop
/// flag. With peers it waits on their messages and the workers' instead,
/// and wakes at once when one comes (`ControlPlane::tick`), so this bounds
/// only how late a `baton stats` answer or a stop can be. Each tick wakes
/// the control lcore for nothing on an idle node (about 40 µs of CPU in a
/// VM): at 100 ms that is 0.04 % of a core, at 20 ms it was 0.2 %.
const CONTROL_TICK: Duration = Duration::from_millis(100);
/// How often, at most, the stats socket and the metrics endpoint are
/// looked at. Under load the control lcore's loop turns once per control
/// message, and an accept(2) that finds nobody still costs a few µs (the
/// kernel makes and frees a socket file): two per turn were a tenth of a
/// core at 5,000 handoffs a second.
const ENDPOINTS_EVERY: Duration = Duration::from_millis(5);
/// Messages queued between the control lcore and a worker, each way.
const WORKER_QUEUE: usize = 4096;
/// At shutdown, how long the peers have to answer the control channels'
/// close before the workers stop (it takes them a round trip).
const CLOSE_LINGER: Duration = Duration::from_millis(300);
/// Packets queued for a worker by the other workers, per side.
const STEER_RING: u32 = 4096;

/// Runs the node `cfg`, read from the file at `config_path` (which
/// SIGHUP reads again: see `reload`).
pub fn run(cfg: &Config, config_path: &Path) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("install signal handler")?;
    }
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hangup))
        .context("install signal handler")?;
    // Bound before EAL init: a second instance of this config stops here,
    // with a clear message, before it can disturb the first one's ports.
    let mut endpoints = Endpoints::new(StatsServer::bind(&cfg.stats_socket())?);
    if cfg.host.is_kernel_interface() {
        host_iface::ensure_free(&cfg.host)?;
    }
    let veth = match cfg.host.kind {
        HostPortKind::AfPacket => Some(host_iface::VethPair::create(&cfg.host)?),
        _ => None,
    };

    // Dropped after the EAL: no DPDK file of this prefix outlives the run,
    // nor those of a killed earlier instance this one's start.
    let runtime_files = dpdk_ffi::runtime::RuntimeFiles::claim(&cfg.file_prefix());
    let args = eal_args::build(cfg);
    tracing::debug!("EAL arguments: {}", args.join(" "));
    let eal = Eal::init(&args).map_err(|e| explain_eal_error(e, cfg))?;
    check_mempool_size(cfg)?;
    let pool = Arc::new(Mempool::new(
        &eal,
        "baton_mbufs",
        cfg.dpdk.mbufs,
        cfg.dpdk.mbuf_cache,
    )?);

    let (mut wire, mut host) = bring_up_ports(&eal, cfg, &pool)?;
    if cfg.host.is_kernel_interface() {
        host_iface::configure(&cfg.host, &wire.mac()?.to_string())?;
    }
    // Once the host interface has its address, which it may listen on.
    endpoints.listen_for_metrics(cfg, &Eal::version())?;

    // With a cluster, the worker runs the handoff engine and the control
    // lcore carries its messages to and from the peers.
    let mut handoff_addresses = None;
    let (control, links) = match (&cfg.cluster, &cfg.handoff) {
        (Some(cluster), Some(handoff)) => {
            let (outbox, from_worker) = crossbeam_channel::bounded(WORKER_QUEUE);
            let engine_cfg = parts::engine_config(cfg, cluster, handoff, wire.mac()?.0)?;
            if cfg.host.is_kernel_interface() {
                let addrs = parts::handoff_addresses(&engine_cfg, cluster);
                handoff_addresses = Some(host_iface::HandoffAddresses::install(&cfg.host, &addrs)?);
            }
            let mut to_workers = Vec::new();
            let mut links = Vec::new();
            for worker in 0..cfg.lcores.workers.len() {
                let (to_worker, worker_inbox) = inbox(WORKER_QUEUE);
                to_workers.push(to_worker);
                links.push((
                    EngineConfig {
                        worker,
                        ..engine_cfg.clone()
                    },
                    parts::placer(cfg, cluster, handoff)?,
                    worker_inbox,
                    outbox.clone(),
                    None,
                ));
            }
            let channel = parts::channel_config(cfg, cluster)?;
            let control = ControlPlane::start(channel, to_workers, from_worker)?;
            // Workers write their messages to the peers, and read the
            // peers', themselves when they can (control/src/plane/direct.rs).
            for link in &mut links {
                link.4 = Some((control.direct_io(), cluster.control_port));
            }
            (Some(control), links)
        }
        _ => (None, Vec::new()),
    };
    // The workers stop after the control channels have closed, on a flag
    // of their own: the channels' packets cross them.
    let workers_stop = Arc::new(AtomicBool::new(false));
    let (workers, worker_bells) =
        launch_workers(&eal, cfg, &mut wire, &mut host, &workers_stop, &pool, links)?;
    tracing::info!(
        "node {} up: wire port {} ({}, {}) <-> host port {} ({}); {} worker(s) on lcores {:?}; idle {}",
        cfg.node.name,
        wire.name(),
        wire.driver(),
        wire.mac().map(|m| m.to_string()).unwrap_or_default(),
        cfg.host.name,
        host.driver(),
        workers.len(),
        cfg.lcores.workers,
        idle_description(cfg),
    );

    let started = Instant::now();
    let host_kernel_iface = cfg
        .host
        .is_kernel_interface()
        .then_some(cfg.host.name.as_str());
    let wire_ring = ring_drops(cfg.wire_af_packet_interface());
    let host_ring = ring_drops(cfg.host_af_packet_interface().as_deref());
    let snapshot = || StatsSnapshot {
        node: cfg.node.name.clone(),
        uptime_secs: started.elapsed().as_secs(),
        workers: workers
            .iter()
            .enumerate()
            .map(|(i, (lcore, counters))| WorkerStats {
                worker: i,
                lcore: *lcore,
                counters: counters
                    .snapshot()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                histograms: [(
                    HandoffLatency::NAME.to_string(),
                    counters.handoff_latency.0.read().into(),
                )]
                .into(),
            })
            .collect(),
        ports: vec![
            port_entry("wire", &wire, wire_ring.as_ref(), None),
            port_entry("host", &host, host_ring.as_ref(), host_kernel_iface),
        ],
        control: BTreeMap::new(),
        peers: BTreeMap::new(),
        peer_states: BTreeMap::new(),
        draining: false,
    };
    let mut reloader = Reloader::new(config_path, cfg);
    let control = RefCell::new(control);
    let full_snapshot = || match control.borrow().as_ref() {
        Some(control) => with_control(snapshot(), control),
        None => snapshot(),
    };
    let mut endpoints_due = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if hangup.swap(false, Ordering::Relaxed) {
            let path = reloader.path.clone();
            let _ = reloader.reload(
                &path,
                control.borrow_mut().as_mut(),
                handoff_addresses.as_mut(),
            );
        }
        if Instant::now() >= endpoints_due {
            let mut requests = Live {
                control: &control,
                reloader: &mut reloader,
                addresses: &mut handoff_addresses,
                snapshot: &snapshot,
            };
            endpoints.serve_pending(full_snapshot, &mut requests);
            endpoints_due = Instant::now() + ENDPOINTS_EVERY;
        }
        match control.borrow_mut().as_mut() {
            Some(control) => control.tick(CONTROL_TICK),
            None => std::thread::sleep(CONTROL_TICK),
        }
    }
    let mut control = control.into_inner();

    tracing::info!("shutting down");
    // Peers see this node Down now rather than after `dead_after_ms`.
    if let Some(control) = control.take() {
        let closing = Instant::now();
        control.close(CLOSE_LINGER);
        tracing::info!(
            "control channels closed in {} ms",
            closing.elapsed().as_millis()
        );
    }
    workers_stop.store(true, Ordering::Relaxed);
    // A worker asleep in its wake sockets' wait may not look at the flag
    // for up to 100 ms.
    for bell in &worker_bells {
        bell.ring();
    }
    let mut failed = false;
    for (lcore, _) in &workers {
        if lcore::wait(&eal, *lcore) != 0 {
            tracing::error!("worker on lcore {lcore} failed");
            failed = true;
        }
    }
    drop(control);
    drop(handoff_addresses);
    let last = snapshot();
    for w in &last.workers {
        tracing::info!(
            "final counters, worker {} (lcore {}): {}",
            w.worker,
            w.lcore,
            format_counters(&w.counters)
        );
    }
    for p in &last.ports {
        tracing::info!(
            "final counters, {} port {}: {}",
            p.role,
            p.name,
            format_counters(&p.counters)
        );
    }
    // Ports go before the pool they receive into, and both before the EAL
    // (the workers, which held the pool too, have finished).
    drop(host);
    drop(wire);
    drop(pool);
    drop(eal);
    drop(veth);
    drop(runtime_files);
    if failed {
        bail!("a worker failed; see the log above");
    }
    Ok(())
}

fn bring_up_ports(eal: &Eal, cfg: &Config, pool: &Mempool) -> Result<(Port, Port)> {
    let wire_name = cfg.wire.dpdk_name();
    let mut wire = Port::find(eal, &wire_name).map_err(|e| match &cfg.wire.port {
        WirePort::Pci(addr) => anyhow!(
            "{e}. Is {addr} bound to vfio-pci? Check with `dpdk-devbind.py --status` (README: Deployment on metal)"
        ),
        WirePort::Vdev(spec) => anyhow!("{e}. Check `wire.vdev = {spec:?}`"),
    })?;
    let mut host = Port::find(eal, &cfg.host.dpdk_name())?;
    let conf = PortConfig {
        queues: u16::try_from(cfg.lcores.workers.len()).context("too many workers")?,
        rx_desc: cfg.wire.rx_desc,
        tx_desc: cfg.wire.tx_desc,
    };
    wire.configure(&conf, pool)?;
    host.configure(&conf, pool)?;
    // The wire port sees every frame on the segment, as the host's NIC
    // would in a bridge; the host port takes the wire port's MAC so the
    // kernel answers ARP with the address the LAN already knows.
    wire.set_promiscuous(true)?;
    let mac = wire.mac()?;
    if cfg.host.is_kernel_interface() {
        host.set_mac(mac)?;
    } else if let Err(e) = host.set_mac(mac) {
        // A generator's port (memif, ring) may keep its own MAC; nothing
        // behind it answers ARP.
        tracing::debug!("host port keeps its own MAC: {e}");
    }
    wire.start()?;
    host.start()?;
    Ok((wire, host))
}

type WorkerHandles = Vec<(u32, Arc<WorkerCounters>)>;
/// The workers' doorbells, with `poll.wake = "packets"`.
type WorkerBells = Vec<WakeBell>;

/// What a worker needs to run the handoff engine.
type EngineParts = (
    EngineConfig,
    PolicyPlacer,
    ToWorkerRx,
    crossbeam_channel::Sender<FromWorker>,
    Option<(Arc<dyn DirectIo>, u16)>,
);

fn launch_workers(
    eal: &Eal,
    cfg: &Config,
    wire: &mut Port,
    host: &mut Port,
    stop: &Arc<AtomicBool>,
    pool: &Arc<Mempool>,
    engines: Vec<EngineParts>,
) -> Result<(WorkerHandles, WorkerBells)> {
    let workers = cfg.lcores.workers.len();
    let mut wakes = Vec::with_capacity(workers);
    if let Some(ifaces) = cfg
        .af_packet_interfaces()
        .filter(|_| cfg.wakes_on_packets())
    {
        for _ in 0..workers {
            let bell = WakeBell::new().context("opening a worker's wake-up eventfd")?;
            wakes.push(PacketWake::new(&ifaces, bell).with_context(|| {
                format!(
                    "opening wake-up sockets on {} (poll.wake)",
                    ifaces.join(", ")
                )
            })?);
        }
    }
    let bells: WorkerBells = wakes.iter().map(|w| w.bell().clone()).collect();
    let mut wakes = wakes.into_iter();
    // With several workers, each flow's packets are steered to its owner.
    let steering = match &cfg.handoff {
        Some(handoff) if workers > 1 => {
            let mut inboxes = Vec::with_capacity(workers);
            for w in 0..workers {
                let ring = |side: &str| {
                    Ring::new(eal, &format!("baton_steer_{w}_{side}"), STEER_RING, false)
                };
                inboxes.push([ring("wire")?, ring("host")?]);
            }
            let services: Vec<u16> = handoff.services.iter().map(|s| s.port).collect();
            let sleepers = (!bells.is_empty())
                .then(|| Arc::new(bells.iter().cloned().map(Sleeper::new).collect::<Vec<_>>()));
            Some((Arc::new(inboxes), services, sleepers))
        }
        _ => None,
    };
    let mut engines = engines.into_iter();
    let idle = match cfg.poll.idle {
        IdleMode::Busy => IdlePolicy::Busy,
        IdleMode::Sleep => IdlePolicy::Sleep {
            max: Duration::from_micros(cfg.poll.idle_sleep_max_us.into()),
        },
    };
    let mut handles = Vec::new();
    for (i, &lcore_id) in cfg.lcores.workers.iter().enumerate() {
        let q = u16::try_from(i).context("too many workers")?;
        let counters = Arc::new(WorkerCounters::default());
        let wake = wakes.next();
        let engine = engines
            .next()
            .map(|(engine_cfg, placer, inbox, outbox, direct)| {
                if let Some(wake) = &wake {
                    let bell = wake.bell().clone();
                    inbox.ring_with(Box::new(move || bell.ring()));
                }
                let mut engine = Engine::new(engine_cfg, Box::new(placer), Arc::clone(&counters));
                parts::preload(&mut engine, cfg, i, workers);
                let mut link = EngineLink::new(engine, Arc::clone(pool), inbox, outbox);
                if let Some((direct, control_port)) = direct {
                    link.direct = Some(direct);
                    link.control_port = Some(control_port);
                }
                link
            });
        let worker = Worker {
            id: i,
            wire: wire.take_queue(q).expect("one queue pair per worker"),
            host: host.take_queue(q).expect("one queue pair per worker"),
            burst: cfg.poll.burst as usize,
            idle,
            wake,
            counters: Arc::clone(&counters),
            stop: Arc::clone(stop),
            engine,
            steering: steering
                .as_ref()
                .map(|(inboxes, services, sleepers)| Steering {
                    me: i,
                    services: services.clone(),
                    inboxes: Arc::clone(inboxes),
                    sleepers: sleepers.clone(),
                }),
        };
        lcore::launch(eal, lcore_id, move || {
            worker.run();
            0
        })?;
        handles.push((lcore_id, counters));
    }
    Ok((handles, bells))
}

/// The pool must fill every RX ring and the lcore caches, or the ports
/// cannot start; to also fill every TX ring at once is better still.
fn check_mempool_size(cfg: &Config) -> Result<()> {
    let queues = u32::try_from(cfg.lcores.workers.len()).context("too many workers")?;
    let caches = (queues + 1) * cfg.dpdk.mbuf_cache;
    let rx_rings = 2 * queues * u32::from(cfg.wire.rx_desc);
    let tx_rings = 2 * queues * u32::from(cfg.wire.tx_desc);
    if cfg.dpdk.mbufs < rx_rings + caches {
        bail!(
            "`dpdk.mbufs` = {} cannot fill the RX rings of {queues} worker(s) ({} descriptors each, two ports) \
             and the lcore caches: raise it to at least {} or lower `wire.rx_desc`",
            cfg.dpdk.mbufs,
            cfg.wire.rx_desc,
            rx_rings + caches
        );
    }
    if cfg.dpdk.mbufs < rx_rings + tx_rings + caches {
        tracing::warn!(
            "`dpdk.mbufs` = {} cannot cover full RX and TX rings ({}); under load some frames may be dropped",
            cfg.dpdk.mbufs,
            rx_rings + tx_rings + caches
        );
    }
    Ok(())
}

/// Adds what to do to DPDK's reason for an EAL failure.
fn explain_eal_error(e: DpdkError, cfg: &Config) -> anyhow::Error {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let hint = if lower.contains("another primary") || lower.contains("cannot create lock") {
        format!(
            "another DPDK process uses the file prefix {:?}: stop it, or give this instance its own `dpdk.file_prefix`",
            cfg.file_prefix()
        )
    } else if lower.contains("hugepage")
        || lower.contains("cannot get memory")
        || lower.contains("cannot init memory")
    {
        "reserve hugepages (README: Hugepages) or, for tests only, set `dpdk.hugepages = false`"
            .to_string()
    } else if lower.contains("permission") || lower.contains("not permitted") {
        "run Baton as root".to_string()
    } else if lower.contains("vdev") || lower.contains("probe") || lower.contains("device") {
        "check the port settings `wire` and `host` in the config file".to_string()
    } else {
        "run with RUST_LOG=dpdk=debug for DPDK's full log".to_string()
    };
    anyhow!("{text}; {hint}")
}

fn idle_description(cfg: &Config) -> String {
    match cfg.poll.idle {
        IdleMode::Busy => "busy-poll".into(),
        IdleMode::Sleep if cfg.wakes_on_packets() => format!(
            "sleep up to {}us, woken by packets",
            cfg.poll.idle_sleep_max_us
        ),
        IdleMode::Sleep => format!("sleep up to {}us", cfg.poll.idle_sleep_max_us),
    }
}

/// What the running node does for `baton drain` and `baton reload`.
struct Live<'a, S> {
    control: &'a RefCell<Option<ControlPlane>>,
    reloader: &'a mut Reloader,
    addresses: &'a mut Option<host_iface::HandoffAddresses>,
    /// The workers' counters, for the drain's answer.
    snapshot: &'a S,
}

impl<S: Fn() -> StatsSnapshot> Requests for Live<'_, S> {
    fn drain(&mut self, drain: bool) -> Result<DrainAnswer, String> {
        let mut control = self.control.borrow_mut();
        let Some(control) = control.as_mut() else {
            return Err(
                "this node has no [cluster]: it takes no handoffs, so there is nothing to drain"
                    .into(),
            );
        };
        control.set_draining(drain);
        let now = (self.snapshot)();
        Ok(DrainAnswer {
            node: now.node.clone(),
            draining: drain,
            flows_active: now.total("flows_active"),
            handed_in_active: now.total("handed_in_active"),
        })
    }

    fn reload(&mut self, path: &Path) -> Result<ReloadAnswer, String> {
        let changed = self.reloader.reload(
            path,
            self.control.borrow_mut().as_mut(),
            self.addresses.as_mut(),
        )?;
        Ok(ReloadAnswer {
            node: (self.snapshot)().node,
            file: path.display().to_string(),
            changed,
        })
    }
}

/// Adds the control plane's counters and peer states to a snapshot.
fn with_control(mut snapshot: StatsSnapshot, control: &ControlPlane) -> StatsSnapshot {
    snapshot.control = control.counters();
    snapshot.peers = control.peers_up().into_iter().collect();
    snapshot.peer_states = control.peer_states().into_iter().collect();
    snapshot.draining = control.is_draining();
    snapshot
}

/// The RX-ring drops of an af_packet port on `iface`, which its PMD does not
/// count; `None` for other ports (their PMD counts `rx_missed` itself).
fn ring_drops(iface: Option<&str>) -> Option<RingDrops> {
    let iface = iface?;
    RingDrops::new(iface)
        .map_err(|e| {
            tracing::warn!(
                "rx_missed of the port on {iface} will miss the kernel's ring drops: {e}"
            )
        })
        .ok()
}

/// A port's counters; with `ring`, the kernel's drops on the rings of an
/// af_packet port, which are its `rx_missed`; with `kernel_iface`, the
/// kernel interface on the other side of it (the host port's), whose drops
/// DPDK cannot see.
fn port_entry(
    role: &str,
    port: &Port,
    ring: Option<&RingDrops>,
    kernel_iface: Option<&str>,
) -> PortStatsEntry {
    let PortStats {
        rx_packets,
        tx_packets,
        rx_bytes,
        tx_bytes,
        rx_missed,
        rx_errors,
        tx_errors,
        rx_no_mbuf,
    } = port.stats();
    let counters: BTreeMap<String, u64> = PortCounter::ALL
        .iter()
        .map(|&c| {
            let value = match c {
                PortCounter::RxPackets => rx_packets,
                PortCounter::TxPackets => tx_packets,
                PortCounter::RxBytes => rx_bytes,
                PortCounter::TxBytes => tx_bytes,
                PortCounter::RxMissed => rx_missed + ring.map_or(0, RingDrops::total),
                PortCounter::RxErrors => rx_errors,
                PortCounter::TxErrors => tx_errors,
                PortCounter::RxNoMbuf => rx_no_mbuf,
                PortCounter::KernelTxDropped => kernel_stat(kernel_iface, "tx_dropped"),
                PortCounter::KernelRxDropped => kernel_stat(kernel_iface, "rx_dropped"),
            };
            (c.name().to_string(), value)
        })
        .collect();
    PortStatsEntry {
        role: role.into(),
        name: port.name().into(),
        counters,
    }
}

/// A kernel interface's statistic from sysfs (0 without one).
fn kernel_stat(iface: Option<&str>, name: &str) -> u64 {
    iface
        .and_then(|i| std::fs::read_to_string(format!("/sys/class/net/{i}/statistics/{name}")).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn format_counters(counters: &BTreeMap<String, u64>) -> String {
    counters
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
