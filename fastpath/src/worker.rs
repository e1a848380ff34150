//! The worker poll loop: one per worker lcore, owning one queue pair on the
//! wire port and one on the host port.
//!
//! Without a handoff engine every frame passes between the two ports
//! unchanged, a burst at a time: Baton is a transparent bump in the wire.
//! With one, each frame goes through the engine, which says where it goes,
//! and the frames and control messages the engine produces are sent after
//! each pass. Each pass moves at most one burst per direction, so both
//! directions get a fair share under load.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_counters::RateLimit;
use baton_handoff::Load;
use crossbeam_channel::{Sender, TrySendError};
use dpdk_ffi::{Burst, Mbuf, Mempool, PacketWake, Queue, Ring, WakeBell};

use crate::counters::{Counter, WorkerCounters};
use crate::engine::{managed, Engine, Output, Verdict};
use crate::idle::{Backoff, IdlePolicy};
use crate::packet::TcpFrame;
use crate::steer::{self, Side as Port};

/// How many frames ahead of processing a flow slot is prefetched: enough
/// lead for a memory access, few enough that the CPU keeps every prefetch
/// in flight.
const PREFETCH_AHEAD: usize = 8;
/// Parses kept between warming a frame and processing it: a ring longer
/// than the lead.
const LOOKAHEAD: usize = 2 * PREFETCH_AHEAD;

/// Extra TX attempts before a burst's remainder is dropped: a ring that is
/// full for this long is not draining, and holding packets stalls RX.
const TX_RETRIES: u32 = 4;

/// The shortest idle sleep for which the wake sockets are armed.
const ARM_FROM: Duration = Duration::from_micros(50);

/// The longest sleep of a worker whose wake sockets are armed, when no
/// timer and no load report is due sooner. A frame, a message or the stop
/// ends it anyway, but a frame can slip past the arming: it passes the
/// wake sockets while they still drop everything and reaches the PMD's
/// ring only after the last look before the sleep. It is found within
/// this. A timeout that finds nothing costs one pass and one ppoll.
const ARMED_SLEEP_MAX: Duration = Duration::from_millis(100);
/// How often a worker may report its load to the control lcore. On a
/// clock, not per pass: a busy worker passes thousands of times a
/// millisecond, every report wakes the control lcore, and the node
/// announces its load only once a heartbeat.
const LOAD_REPORT_EVERY: Duration = Duration::from_millis(10);
/// An unchanged load is reported again this often (a report lost to a
/// full queue is not lost for long); an idle worker wakes nobody else.
const LOAD_REPEAT_EVERY: Duration = Duration::from_secs(1);

// What the control lcore and a worker tell each other: defined with the
// protocol, so that the control plane needs no data-plane crate.
pub use baton_handoff::workers::{inbox, FromWorker, ToWorker, ToWorkerRx};
use baton_handoff::workers::{Backlog, DirectIo, Offered, Sent};

/// How workers pass each other the packets of flows they do not own.
pub struct Steering {
    /// This worker's index.
    pub me: usize,
    /// The managed service ports: only their packets have an owner.
    pub services: Vec<u16>,
    /// Per worker, the rings other workers fill with its packets: from the
    /// wire, and from the host.
    pub inboxes: Arc<Vec<[Ring; 2]>>,
    /// With `poll.wake = "packets"`, per worker: how to wake it when it
    /// sleeps with packets in its rings (a frame steered there wakes no
    /// wake socket, and its sleep may last until its next timer).
    pub sleepers: Option<Arc<Vec<Sleeper>>>,
}

/// Whether a worker sleeps in its wake sockets' wait, and its doorbell.
#[derive(Debug)]
pub struct Sleeper {
    asleep: AtomicBool,
    bell: WakeBell,
}

impl Sleeper {
    pub fn new(bell: WakeBell) -> Sleeper {
        Sleeper {
            asleep: AtomicBool::new(false),
            bell,
        }
    }

    /// After packets were put in the worker's rings: rings its bell if it
    /// sleeps. With [`Self::falls_asleep`] on the other side, either the
    /// sleeper sees the packets or this sees it asleep (both fences are
    /// sequentially consistent).
    fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) {
            self.bell.ring();
        }
    }

    /// Before the worker looks at its rings one last time and sleeps.
    fn falls_asleep(&self) {
        self.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    fn woke(&self) {
        self.asleep.store(false, Ordering::Relaxed);
    }
}

/// A worker's handoff engine and its links to the control lcore.
pub struct EngineLink {
    pub engine: Engine,
    /// Buffers for the frames the engine builds.
    pub pool: Arc<Mempool>,
    pub inbox: ToWorkerRx,
    pub outbox: Sender<FromWorker>,
    /// The peers' channels, reached from the worker's own thread: its
    /// messages go out at once when they can, and it reads what a segment
    /// it passed to the host kernel brought (`control_port`).
    pub direct: Option<Arc<dyn DirectIo>>,
    /// The control channel's port, whose segments the worker passes to
    /// the host kernel and then reads from it.
    pub control_port: Option<u16>,
    /// This pass passed such a segment.
    fed_control: bool,
    /// Messages the control lcore's full queue did not take yet: offered
    /// again at every pass, so they wait at most one idle sleep once it
    /// has room.
    waiting: Backlog<FromWorker>,
}

/// Messages that may wait for the control lcore, per worker: seconds of a
/// stalled control lcore at 10,000 handoffs a second.
const CONTROL_BACKLOG: usize = 65_536;

impl EngineLink {
    pub fn new(
        engine: Engine,
        pool: Arc<Mempool>,
        inbox: ToWorkerRx,
        outbox: Sender<FromWorker>,
    ) -> EngineLink {
        EngineLink {
            engine,
            pool,
            inbox,
            outbox,
            direct: None,
            control_port: None,
            fed_control: false,
            waiting: Backlog::new(CONTROL_BACKLOG),
        }
    }

    /// Queues `event` for the control lcore, behind any that wait: false
    /// when it is lost (counted).
    fn send_to_control(&mut self, event: FromWorker, counters: &WorkerCounters) -> bool {
        let outbox = &self.outbox;
        match self.waiting.send(event, |e| offer(outbox, e)) {
            Sent::Now => true,
            Sent::Later => {
                counters.add(Counter::MessagesDeferred, 1);
                true
            }
            Sent::Dropped => {
                counters.add(Counter::DropControlQueueFull, 1);
                false
            }
        }
    }

    /// Offers the waiting messages to the control lcore again: how many
    /// went.
    fn flush_waiting(&mut self, counters: &WorkerCounters) -> usize {
        if self.waiting.is_empty() {
            return 0;
        }
        let outbox = &self.outbox;
        match self.waiting.flush(|e| offer(outbox, e)) {
            Ok(sent) => sent,
            Err(lost) => {
                // The control lcore is gone: the node is stopping.
                counters.add(Counter::DropControlQueueFull, lost as u64);
                0
            }
        }
    }
}

fn offer(outbox: &Sender<FromWorker>, event: FromWorker) -> Offered<FromWorker> {
    match outbox.try_send(event) {
        Ok(()) => Offered::Taken,
        Err(TrySendError::Full(e)) => Offered::Full(e),
        Err(TrySendError::Disconnected(_)) => Offered::Closed,
    }
}

/// What a worker is given to run.
pub struct Worker {
    pub id: usize,
    pub wire: Queue,
    pub host: Queue,
    pub burst: usize,
    pub idle: IdlePolicy,
    /// With `poll.wake = "packets"`: the sockets on the ports' interfaces
    /// (and the inbox's bell) a sleep waits on.
    pub wake: Option<PacketWake>,
    pub counters: Arc<WorkerCounters>,
    /// Set by the control lcore to stop every worker.
    pub stop: Arc<AtomicBool>,
    pub engine: Option<EngineLink>,
    /// With more than one worker and an engine: steering between them.
    pub steering: Option<Steering>,
}

impl Worker {
    /// Polls until `stop` is set.
    pub fn run(mut self) {
        let mut backoff = Backoff::new(self.idle);
        let workers = self.steering.as_ref().map_or(1, |s| s.inboxes.len());
        let mut state = PollState::new(workers);
        while !self.stop.load(Ordering::Relaxed) {
            let moved = self.poll_once(&mut state, Instant::now());
            if moved > 0 {
                // Traffic: no frame copies for the wake sockets while it lasts.
                if let Some(Err(e)) = self.wake.as_mut().map(PacketWake::disarm) {
                    self.wake_failed(&mut state.wake_log, "disarming", &e);
                }
            }
            backoff.wait(moved, |pause| self.idle_wait(&mut state, pause));
        }
    }

    /// Sleeps up to `pause` in the wake sockets' wait, if the worker has
    /// them, else as [`Self::timed_wait`]. Returns whether work came.
    fn idle_wait(&mut self, state: &mut PollState, pause: Duration) -> bool {
        let Some(mut wake) = self.wake.take() else {
            return self.timed_wait(pause);
        };
        let woke = self.packet_wait(&mut wake, state, pause);
        self.wake = Some(wake);
        woke
    }

    /// Sleeps until a frame, a message or the end of `pause`. Sleeps of
    /// [`ARM_FROM`] or more arm the wake sockets first (shorter ones, at the
    /// start of a back-off, are over before a frame would wait long, and
    /// arming costs system calls); on a fresh arming it polls once more,
    /// since a frame that came before the arming is in a queue and wakes
    /// nothing.
    fn packet_wait(
        &mut self,
        wake: &mut PacketWake,
        state: &mut PollState,
        mut pause: Duration,
    ) -> bool {
        if pause >= ARM_FROM {
            match wake.arm() {
                Ok(true) if self.poll_once(state, Instant::now()) > 0 => {
                    if let Err(e) = wake.disarm() {
                        self.wake_failed(&mut state.wake_log, "disarming", &e);
                    }
                    return true;
                }
                Ok(_) => {
                    // Armed, a frame or a message ends the sleep at once:
                    // waking before the worker has anything of its own to
                    // do (a timer run, a load report) would find nothing,
                    // so the back-off goes to the ceiling in one step, or
                    // beyond it until then.
                    pause = pause
                        .max(self.idle.ceiling())
                        .max(self.until_due(state, Instant::now()));
                }
                Err(e) => self.wake_failed(&mut state.wake_log, "arming", &e),
            }
        }
        let sleeper = self
            .steering
            .as_ref()
            .and_then(|s| Some((s.sleepers.as_ref()?.get(s.me)?, &s.inboxes[s.me])));
        if let Some((sleeper, rings)) = sleeper {
            sleeper.falls_asleep();
            if rings.iter().any(|ring| !ring.is_empty()) {
                sleeper.woke();
                return true;
            }
        }
        let woken = wake.wait(pause);
        if let Some((sleeper, _)) = sleeper {
            sleeper.woke();
        }
        match woken {
            Ok(woken) => {
                if woken.packet {
                    self.counters.add(Counter::WokenByPacket, 1);
                }
                if woken.bell {
                    self.counters.add(Counter::WokenByMessage, 1);
                }
                woken.packet || woken.bell
            }
            Err(e) => {
                self.wake_failed(&mut state.wake_log, "the wait", &e);
                // Sleep anyway, so that a wait that keeps failing does not
                // turn the idle worker into a busy one; but no longer than
                // the ceiling, since neither frames nor the bell end it.
                self.timed_wait(pause.min(self.idle.ceiling()))
            }
        }
    }

    /// Counts a failed step of the wake sockets, and logs it at a bounded
    /// rate.
    fn wake_failed(&self, log: &mut WakeLog, step: &'static str, e: &std::io::Error) {
        self.counters.add(Counter::WakeErrors, 1);
        if let Some(left_out) = log.0.allow(step, Instant::now()) {
            tracing::warn!(
                "worker {}: {step} of its wake-up sockets failed: {e} (wake_errors); {left_out} more such failure(s) since the last line",
                self.id
            );
        }
    }

    /// How long until this worker has something to do of its own accord
    /// (its engine's next timer run, its next load report), at most
    /// [`ARMED_SLEEP_MAX`]; zero while messages wait for the control
    /// lcore's queue, which are offered again at every pass.
    fn until_due(&self, state: &PollState, now: Instant) -> Duration {
        let Some(link) = &self.engine else {
            return ARMED_SLEEP_MAX;
        };
        if !link.waiting.is_empty() {
            return Duration::ZERO;
        }
        let report = state.load_report.next_due(now);
        let due = link
            .engine
            .next_timer_run(now)
            .map_or(report, |timers| timers.min(report));
        due.saturating_duration_since(now).min(ARMED_SLEEP_MAX)
    }

    /// Sleeps up to `pause`, but a message from the control lcore (a
    /// Handoff request to replay, a peer's state) ends the sleep at once
    /// and is handled: the control path then costs no idle back-off.
    /// Returns whether a message came.
    fn timed_wait(&mut self, pause: Duration) -> bool {
        let Some(link) = self.engine.as_mut() else {
            std::thread::sleep(pause);
            return false;
        };
        match link.inbox.recv_timeout(pause) {
            Some(event) => {
                Self::on_event(link, event, Instant::now());
                true
            }
            None => false,
        }
    }

    /// One pass over both ports (and, with an engine, the control inbox,
    /// the steering rings and the engine's timers); returns the work done.
    #[inline]
    pub fn poll_once(&mut self, state: &mut PollState, now: Instant) -> usize {
        let Some(mut link) = self.engine.take() else {
            return self.pass_through(&mut state.rx);
        };
        let mut moved = self.control_inbox(&mut link, now);
        moved += link.flush_waiting(&self.counters);
        moved += self.through_engine(&mut link, state, now);
        // Every pass: between the timer wheel's ticks this is one
        // comparison, and the first pass after a long sleep runs what came
        // due during it.
        link.engine.poll_timers(now);
        // A load report does not wait behind others: the next one says
        // more.
        if let Some(load) = state.load_report.due(now, || link.engine.load()) {
            if link.waiting.is_empty() {
                let _ = link.outbox.try_send(FromWorker::Load {
                    worker: self.id,
                    load,
                });
            }
        }
        moved += self.send_output(&mut link, &mut state.out);
        self.engine = Some(link);
        moved
    }

    /// One pass without an engine; returns the frames received.
    #[inline]
    pub fn pass_through(&mut self, burst: &mut Burst) -> usize {
        let from_wire = pass(
            burst,
            &mut self.wire,
            &mut self.host,
            self.burst,
            &self.counters,
            [Counter::WireRx, Counter::HostTx, Counter::DropHostTxFull],
        );
        let from_host = pass(
            burst,
            &mut self.host,
            &mut self.wire,
            self.burst,
            &self.counters,
            [Counter::HostRx, Counter::WireTx, Counter::DropWireTxFull],
        );
        from_wire + from_host
    }

    fn control_inbox(&mut self, link: &mut EngineLink, now: Instant) -> usize {
        let mut n = 0;
        while let Ok(event) = link.inbox.try_recv() {
            n += 1;
            Self::on_event(link, event, now);
        }
        n
    }

    fn on_event(link: &mut EngineLink, event: ToWorker, now: Instant) {
        match event {
            ToWorker::Message { peer, msg } => link.engine.on_message(peer, msg, now),
            ToWorker::PeerUp(peer) => link.engine.on_peer_up(peer),
            ToWorker::PeerSuspect(peer, suspect) => link.engine.on_peer_suspect(peer, suspect),
            ToWorker::PeerDown(peer) => link.engine.on_peer_down(peer, now),
            ToWorker::Drain(draining) => link.engine.set_draining(draining),
            ToWorker::Reload(reload) => link.engine.reload(*reload),
        }
    }

    /// One pass through the engine, both directions, including the packets
    /// other workers steered here.
    fn through_engine(&mut self, link: &mut EngineLink, st: &mut PollState, now: Instant) -> usize {
        let mut received = 0;
        for from in [Port::Wire, Port::Host] {
            let (queue, counter) = match from {
                Port::Wire => (&mut self.wire, Counter::WireRx),
                Port::Host => (&mut self.host, Counter::HostRx),
            };
            let n = st.rx.rx(queue, self.burst);
            if n == 0 {
                continue;
            }
            received += n;
            self.counters.add(counter, n as u64);
            // Each frame's flow slot is prefetched a few frames before the
            // frame is processed, and its header twice as many before that
            // (the slot's address is read from it), so that their memory
            // latencies overlap the work on the frames in between. Only on
            // a table too large for the caches: below that, it would only
            // cost.
            // Warming parses the frame it prefetches for: that parse is
            // the frame's one, kept in `ahead` until the frame's turn.
            let warm = link.engine.wants_warming();
            if warm {
                for i in 0..n.min(PREFETCH_AHEAD) {
                    st.ahead[i] = link.engine.warm(st.rx.data_mut(i), from);
                }
            }
            let mut frames = st.rx.drain();
            let mut i = 0;
            while let Some(m) = frames.next() {
                let early = if warm {
                    if let Some(later) = frames.ahead(PREFETCH_AHEAD - 1) {
                        st.ahead[(i + PREFETCH_AHEAD) % LOOKAHEAD] = link.engine.warm(later, from);
                    }
                    if let Some(header) =
                        frames.ahead(2 * PREFETCH_AHEAD - 1).and_then(|f| f.first())
                    {
                        dpdk_ffi::prefetch(header);
                    }
                    st.ahead[i % LOOKAHEAD].take()
                } else {
                    None
                };
                i += 1;
                let parsed = match early {
                    Some(tcp) => Ok(Some(tcp)),
                    None => TcpFrame::parse(m.data()),
                };
                let tcp = managed(&parsed, &self.counters);
                match self
                    .steering
                    .as_ref()
                    .zip(tcp)
                    .and_then(|(s, tcp)| steer_to(s, tcp, from))
                {
                    Some(owner) => {
                        let out = &mut st.steer_out[owner][from as usize];
                        if let Err(m) = out.push(m) {
                            drop(m);
                            self.counters.add(Counter::DropSteerRingFull, 1);
                        }
                    }
                    None => self.process(link, &mut st.out, m, tcp, from, now),
                }
            }
        }
        if let Some(steering) = &self.steering {
            let me = steering.me;
            let inboxes = Arc::clone(&steering.inboxes);
            for (owner, outs) in st.steer_out.iter_mut().enumerate() {
                for (side, out) in outs.iter_mut().enumerate() {
                    if out.is_empty() {
                        continue;
                    }
                    let sent = inboxes[owner][side].enqueue(out);
                    self.counters.add(Counter::SteeredOut, sent as u64);
                    if sent > 0 {
                        if let Some(sleeper) = steering.sleepers.as_ref().and_then(|s| s.get(owner))
                        {
                            sleeper.wake();
                        }
                    }
                    self.counters
                        .add(Counter::DropSteerRingFull, out.free_all() as u64);
                }
            }
            for from in [Port::Wire, Port::Host] {
                let n = inboxes[me][from as usize].dequeue(&mut st.rx, self.burst);
                if n == 0 {
                    continue;
                }
                received += n;
                self.counters.add(Counter::SteeredIn, n as u64);
                for m in st.rx.drain() {
                    let parsed = TcpFrame::parse(m.data());
                    let tcp = managed(&parsed, &self.counters);
                    self.process(link, &mut st.out, m, tcp, from, now);
                }
            }
        }
        self.flush(&mut st.out, Port::Host);
        // The kernel took the channel's segments within that flush: what
        // they brought is in the socket now, and a handoff request read
        // here reaches the inbox without two threads waking in turn.
        if std::mem::take(&mut link.fed_control) {
            if let Some(direct) = &link.direct {
                direct.read_now();
            }
        }
        self.flush(&mut st.out, Port::Wire);
        received
    }

    /// Runs one packet, and its parse when it is IPv4/TCP, through the
    /// engine and queues it where it goes.
    #[inline(always)]
    fn process(
        &mut self,
        link: &mut EngineLink,
        out: &mut Bursts,
        mut m: Mbuf,
        tcp: Option<&TcpFrame>,
        from: Port,
        now: Instant,
    ) {
        if m.checksum_bad() {
            // The NIC verified it: the receiving kernel would drop it too.
            self.counters.add(Counter::DropBadChecksum, 1);
            return;
        }
        let verdict = match (from, tcp) {
            (Port::Wire, Some(tcp)) => {
                link.engine.learn_peer_mac(tcp);
                link.fed_control |= link
                    .control_port
                    .is_some_and(|p| tcp.dst_port == p || tcp.src_port == p);
                link.engine.from_wire_parsed(m.data_mut(), tcp, now)
            }
            (Port::Host, Some(tcp)) => link.engine.from_host_parsed(m.data_mut(), tcp, now),
            // Not IPv4/TCP, or not parsable: it passes, as without Baton.
            (Port::Wire, None) => Verdict::ToHost,
            (Port::Host, None) => Verdict::ToWire,
        };
        match verdict {
            Verdict::ToHost => self.queue(out, Port::Host, m),
            Verdict::ToWire => self.queue(out, Port::Wire, m),
            Verdict::Drop | Verdict::Consumed => drop(m),
        }
    }

    /// Sends what the engine built: frames to the ports, messages to the
    /// control lcore.
    fn send_output(&mut self, link: &mut EngineLink, b: &mut Bursts) -> usize {
        let Output {
            to_host,
            to_wire,
            messages,
            resync_done,
            released,
        } = link.engine.take_output();
        let n = to_host.len() + to_wire.len() + messages.len();
        for (port, frames) in [(Port::Host, to_host), (Port::Wire, to_wire)] {
            for frame in frames {
                match mbuf_with(&link.pool, &frame) {
                    Some(m) => self.queue(b, port, m),
                    None => self.counters.add(Counter::DropNoMbuf, 1),
                }
            }
            self.flush(b, port);
        }
        // A pass's messages for one peer leave in one write: under load,
        // one segment carries many.
        let mut messages = messages.into_iter().peekable();
        let mut run = Vec::new();
        while let Some((peer, msg)) = messages.next() {
            run.push(msg);
            if messages.peek().is_some_and(|(next, _)| *next == peer) {
                continue;
            }
            if link.direct.as_ref().is_some_and(|d| d.send_now(peer, &run)) {
                run.clear();
                continue;
            }
            for msg in run.drain(..) {
                let sent = link.send_to_control(FromWorker::Message { peer, msg }, &self.counters);
                if let (false, Some(direct)) = (sent, &link.direct) {
                    direct.lost();
                }
            }
        }
        // After the messages it concludes, on the same queue.
        for peer in resync_done {
            link.send_to_control(FromWorker::ResyncDone { peer }, &self.counters);
        }
        for peer in released {
            if !link.send_to_control(FromWorker::PeerReleased { peer }, &self.counters) {
                // Told again at the next timer run.
                link.engine.still_releasing(peer);
            }
        }
        n
    }

    fn queue(&mut self, b: &mut Bursts, port: Port, m: Mbuf) {
        let burst = match port {
            Port::Host => &mut b.to_host,
            Port::Wire => &mut b.to_wire,
        };
        if let Err(m) = burst.push(m) {
            self.flush(b, port);
            let burst = match port {
                Port::Host => &mut b.to_host,
                Port::Wire => &mut b.to_wire,
            };
            // A flushed burst has room unless the ring kept refusing, and
            // then the packet is dropped and counted like the rest.
            if burst.push(m).is_err() {
                self.counters.add(drop_counter(port), 1);
            }
        }
    }

    fn flush(&mut self, b: &mut Bursts, port: Port) {
        let (burst, queue, sent_counter) = match port {
            Port::Host => (&mut b.to_host, &mut self.host, Counter::HostTx),
            Port::Wire => (&mut b.to_wire, &mut self.wire, Counter::WireTx),
        };
        let (sent, lost) = transmit(burst, queue);
        self.counters.add(sent_counter, sent as u64);
        if lost > 0 {
            self.counters.add(drop_counter(port), lost as u64);
        }
    }
}

fn drop_counter(port: Port) -> Counter {
    match port {
        Port::Host => Counter::DropHostTxFull,
        Port::Wire => Counter::DropWireTxFull,
    }
}

/// A worker's buffers between passes.
#[derive(Default)]
pub struct PollState {
    rx: Burst,
    /// Parses of frames warmed ahead of their processing (see `warm`).
    ahead: [Option<TcpFrame>; LOOKAHEAD],
    out: Bursts,
    /// Per owning worker, per side: packets to steer there.
    steer_out: Vec<[Burst; 2]>,
    load_report: LoadReport,
    wake_log: WakeLog,
}

/// One line per minute at most for each step of the wake sockets that
/// fails (arming, disarming, the wait).
struct WakeLog(RateLimit<&'static str>);

impl Default for WakeLog {
    fn default() -> WakeLog {
        WakeLog(RateLimit::new(Duration::from_secs(60)))
    }
}

/// When a worker tells the control lcore its load: when it changed, at
/// most every `LOAD_REPORT_EVERY`, and when unchanged every
/// `LOAD_REPEAT_EVERY`.
#[derive(Default)]
struct LoadReport {
    /// The last load reported, and when.
    last: Option<(Load, Instant)>,
}

impl LoadReport {
    /// The load to report now, if any; `load` is asked only when a report
    /// may be due (every pass asks this).
    fn due(&mut self, now: Instant, load: impl FnOnce() -> Load) -> Option<Load> {
        let last = self
            .last
            .map(|(l, at)| (l, now.saturating_duration_since(at)));
        if last.is_some_and(|(_, since)| since < LOAD_REPORT_EVERY) {
            return None;
        }
        let load = load();
        let due = last.is_none_or(|(l, since)| since >= LOAD_REPEAT_EVERY || l != load);
        due.then(|| {
            self.last = Some((load, now));
            load
        })
    }

    /// When a report may next be due: once `LOAD_REPORT_EVERY` has passed
    /// since the last (the load may have changed since, and waits that
    /// long), and after that when the unchanged load is repeated.
    fn next_due(&self, now: Instant) -> Instant {
        match self.last {
            None => now,
            Some((_, at)) if now < at + LOAD_REPORT_EVERY => at + LOAD_REPORT_EVERY,
            Some((_, at)) => at + LOAD_REPEAT_EVERY,
        }
    }
}

impl PollState {
    /// Buffers for a worker among `workers`.
    pub fn new(workers: usize) -> PollState {
        PollState {
            steer_out: (0..workers).map(|_| [Burst::new(), Burst::new()]).collect(),
            ..PollState::default()
        }
    }
}

/// The worker a packet must be steered to, or None to process it here.
#[inline]
fn steer_to(steering: &Steering, tcp: &TcpFrame, from: Port) -> Option<usize> {
    let workers = steering.inboxes.len();
    steer::owner(tcp, from, &steering.services, workers).filter(|&w| w != steering.me)
}
/// Frames on their way out, by port.
#[derive(Default)]
struct Bursts {
    to_host: Burst,
    to_wire: Burst,
}

/// A packet buffer holding a copy of `frame`.
fn mbuf_with(pool: &Mempool, frame: &[u8]) -> Option<Mbuf> {
    let mut m = pool.alloc()?;
    let len = u16::try_from(frame.len()).ok()?;
    if !m.set_len(len) {
        return None;
    }
    m.data_mut().copy_from_slice(frame);
    Some(m)
}

/// Transmits the whole burst, retrying a full ring a few times; returns
/// (sent, dropped).
#[inline]
fn transmit(burst: &mut Burst, queue: &mut Queue) -> (usize, usize) {
    let mut sent = burst.tx(queue);
    let mut retries = 0;
    while !burst.is_empty() && retries < TX_RETRIES {
        sent += burst.tx(queue);
        retries += 1;
    }
    (sent, burst.free_all())
}

/// Moves one burst from `rx` to `tx`, counting as `[received, sent, dropped]`.
#[inline]
fn pass(
    burst: &mut Burst,
    rx: &mut Queue,
    tx: &mut Queue,
    max: usize,
    counters: &WorkerCounters,
    [received, sent, dropped]: [Counter; 3],
) -> usize {
    let n = burst.rx(rx, max);
    if n == 0 {
        return 0;
    }
    counters.add(received, n as u64);
    let (out, lost) = transmit(burst, tx);
    counters.add(sent, out as u64);
    if lost > 0 {
        counters.add(dropped, lost as u64);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(active_connections: u32) -> Load {
        Load {
            active_connections,
            ..Load::default()
        }
    }

    #[test]
    fn a_load_is_reported_when_it_changes_at_most_so_often_and_repeated_when_it_does_not() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut r = LoadReport::default();
        assert_eq!(r.due(at(0), || load(1)), Some(load(1)), "the first at once");
        assert_eq!(r.due(at(5), || load(2)), None, "a change waits its turn");
        assert_eq!(r.due(at(10), || load(2)), Some(load(2)));
        assert_eq!(r.due(at(500), || load(2)), None, "no change, no report");
        assert_eq!(r.due(at(1010), || load(2)), Some(load(2)), "repeated");
    }

    #[test]
    fn a_sleeping_worker_knows_when_its_next_load_report_may_be_due() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut r = LoadReport::default();
        assert_eq!(r.next_due(at(0)), at(0), "none yet: at once");
        r.due(at(0), || load(1));
        assert_eq!(
            r.next_due(at(1)),
            at(10),
            "a change may be waiting its turn"
        );
        assert_eq!(r.next_due(at(10)), at(1000), "else the repeat");
        assert_eq!(r.due(at(10), || load(1)), None);
        assert_eq!(r.next_due(at(600)), at(1000));
    }

    #[test]
    fn steering_rings_a_workers_bell_only_while_it_sleeps() {
        let bell = WakeBell::new().unwrap();
        // No sockets: the wait sees only the bell.
        let mut wake = PacketWake::new::<&str>(&[], bell.clone()).unwrap();
        let sleeper = Sleeper::new(bell);
        sleeper.wake();
        assert!(!wake.wait(Duration::ZERO).unwrap().bell, "awake: not rung");
        sleeper.falls_asleep();
        sleeper.wake();
        assert!(wake.wait(Duration::from_secs(5)).unwrap().bell);
        sleeper.woke();
        sleeper.wake();
        assert!(!wake.wait(Duration::ZERO).unwrap().bell);
    }
}
