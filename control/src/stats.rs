//! The stats socket: a running Baton serves a JSON snapshot of its counters
//! on a unix socket; `baton stats` fetches it and prints a table or the JSON.
//!
//! Protocol: the client connects and writes one request line; the server
//! answers with one JSON document and closes the connection. Requests:
//! `stats` (the snapshot), `drain` and `undrain` (start or end draining;
//! the answer is a [`DrainAnswer`]), `reload PATH` (apply the config file
//! at PATH; the answer is a [`ReloadAnswer`]). A refusal, and an unknown
//! request, is answered with `{"error": ...}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long either side waits on the other before giving up.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest request line the server reads (a reload names a file).
const MAX_REQUEST: u64 = 4096;

/// Everything `baton stats` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    pub node: String,
    pub uptime_secs: u64,
    pub workers: Vec<WorkerStats>,
    pub ports: Vec<PortStatsEntry>,
    /// The control plane's counters (peer channel, messages), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub control: BTreeMap<String, u64>,
    /// Each peer node and whether its channel is up (a suspect peer's is).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peers: BTreeMap<String, bool>,
    /// Each peer node's state: `up`, `suspect` (up, but not heard from
    /// for `cluster.suspect_after_ms`: no new handoffs go to it) or `down`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peer_states: BTreeMap<String, String>,
    /// This node drains (`baton drain`): it refuses new handoffs, and the
    /// workers' `flows_active` is what is left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
}

/// The answer to `drain` and `undrain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainAnswer {
    pub node: String,
    pub draining: bool,
    /// Flows the node still serves or forwards.
    pub flows_active: u64,
    /// Of those, connections handed to it by peers.
    pub handed_in_active: u64,
}

/// The answer to `reload`: the configuration is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadAnswer {
    pub node: String,
    /// The file read.
    pub file: String,
    /// The keys whose values changed (none: the file was as running).
    pub changed: Vec<String>,
}

/// What a running instance does for its clients besides the snapshot.
pub trait Requests {
    /// Starts draining (`true`) or ends it.
    fn drain(&mut self, drain: bool) -> Result<DrainAnswer, String>;
    /// Reads the config file at `path` and applies it, or says why not.
    fn reload(&mut self, path: &Path) -> Result<ReloadAnswer, String>;
}

/// One worker's counters, by name (names as in `fastpath::counters`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub worker: usize,
    pub lcore: u32,
    pub counters: BTreeMap<String, u64>,
    /// Duration histograms, by name (`handoff_latency`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub histograms: BTreeMap<String, HistogramStats>,
}

/// A histogram of durations: events per bucket, each bucket's upper bound
/// in µs (one more bucket than bounds: the last is above them all).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HistogramStats {
    pub bounds_micros: Vec<u64>,
    pub counts: Vec<u64>,
    pub sum_micros: u64,
}

impl HistogramStats {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl From<baton_counters::HistogramValues> for HistogramStats {
    fn from(v: baton_counters::HistogramValues) -> Self {
        HistogramStats {
            bounds_micros: v.bounds_micros,
            counts: v.counts,
            sum_micros: v.sum_micros,
        }
    }
}

baton_counters::counters! {
    /// A port's hardware counters, as its driver reports them.
    pub enum PortCounter {
        /// Frames received.
        RxPackets => "rx_packets", packets;
        /// Frames sent.
        TxPackets => "tx_packets", packets;
        /// Bytes of the frames received.
        RxBytes => "rx_bytes", bytes;
        /// Bytes of the frames sent.
        TxBytes => "tx_bytes", bytes;
        /// Dropped by the port: its RX ring was full (the worker did not keep
        /// up). For an af_packet port, the kernel's drops on the PMD's full
        /// rings, which the PMD does not count.
        RxMissed => "rx_missed", packets, drop;
        /// Frames received with errors.
        RxErrors => "rx_errors", packets;
        /// Frames the port failed to send.
        TxErrors => "tx_errors", packets;
        /// Dropped by the port: no packet buffer to receive into.
        RxNoMbuf => "rx_no_mbuf", packets, drop;
        /// Host port only: frames the kernel's side of it dropped on the
        /// way to Baton (its `tx_dropped`: a TAP or veth queue the worker
        /// did not drain in time; each is a retransmission for TCP).
        KernelTxDropped => "kernel_tx_dropped", packets, drop;
        /// Host port only: frames from Baton the kernel's side dropped
        /// (its `rx_dropped`).
        KernelRxDropped => "kernel_rx_dropped", packets, drop;
    }
}

/// A port's hardware counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortStatsEntry {
    pub role: String,
    pub name: String,
    pub counters: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("another Baton instance is already serving stats on {0}")]
    InUse(PathBuf),
    #[error("cannot serve stats on {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
    #[error(
        "cannot reach Baton's stats socket {path}: {source} (is `baton run` up with this config?)"
    )]
    Connect { path: PathBuf, source: io::Error },
    #[error("bad answer from {path}: {reason}")]
    BadAnswer { path: PathBuf, reason: String },
    /// The instance understood and said no.
    #[error("{0}")]
    Refused(String),
}

/// The listening side, owned by the control lcore. Removes its socket file
/// on drop.
pub struct StatsServer {
    listener: UnixListener,
    path: PathBuf,
}

impl StatsServer {
    /// Binds `path`, creating its directory. A stale socket left by a dead
    /// instance is replaced; a live one is an error.
    pub fn bind(path: &Path) -> Result<StatsServer, StatsError> {
        let bind_err = |source| StatsError::Bind {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(bind_err)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(StatsError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(bind_err)?;
        }
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        Ok(StatsServer {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers every client waiting now, without blocking when there is
    /// none. `snapshot` is called once per client. A misbehaving client is
    /// logged and dropped; it never stops the server.
    pub fn serve_pending(
        &self,
        snapshot: impl Fn() -> StatsSnapshot,
        requests: &mut impl Requests,
    ) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = answer(stream, &snapshot, requests) {
                        tracing::debug!("stats client: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("stats socket accept: {e}");
                    return;
                }
            }
        }
    }
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(
    stream: UnixStream,
    snapshot: &impl Fn() -> StatsSnapshot,
    requests: &mut impl Requests,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    let mut out = &stream;
    let body = |answer: Result<Vec<u8>, String>| match answer {
        Ok(body) => body,
        Err(error) => serde_json::json!({ "error": error })
            .to_string()
            .into_bytes(),
    };
    let line = line.trim();
    let answer = match line.split_once(' ').unwrap_or((line, "")) {
        ("stats", "") => json(&snapshot()),
        (request @ ("drain" | "undrain"), "") => {
            requests.drain(request == "drain").and_then(|a| json(&a))
        }
        ("reload", path) if !path.is_empty() => {
            requests.reload(Path::new(path)).and_then(|a| json(&a))
        }
        _ => Err(format!(
            "unknown request {line:?}; expected \"stats\", \"drain\", \"undrain\" or \"reload PATH\""
        )),
    };
    out.write_all(&body(answer))?;
    out.write_all(b"\n")
}

fn json(value: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| e.to_string())
}

/// Fetches a snapshot from the instance serving `path`.
pub fn fetch(path: &Path) -> Result<StatsSnapshot, StatsError> {
    let body = request(path, "stats")?;
    serde_json::from_str(&body).map_err(|e| StatsError::BadAnswer {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Asks the instance serving `path` to drain (`true`) or to stop
/// draining (`false`).
pub fn request_drain(path: &Path, drain: bool) -> Result<DrainAnswer, StatsError> {
    let body = request(path, if drain { "drain" } else { "undrain" })?;
    answer_or_refusal(path, &body)
}

/// Asks the instance serving `path` to apply the config file `config`
/// (an absolute path: the instance reads it).
pub fn request_reload(path: &Path, config: &Path) -> Result<ReloadAnswer, StatsError> {
    let body = request(path, &format!("reload {}", config.display()))?;
    answer_or_refusal(path, &body)
}

/// An answer of type `T`, or the instance's `{"error": ...}`.
fn answer_or_refusal<T: serde::de::DeserializeOwned>(
    path: &Path,
    body: &str,
) -> Result<T, StatsError> {
    if let Ok(answer) = serde_json::from_str::<T>(body) {
        return Ok(answer);
    }
    let bad = |reason: String| StatsError::BadAnswer {
        path: path.to_owned(),
        reason,
    };
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) if v.get("error").is_some() => Err(StatsError::Refused(
            v["error"].as_str().unwrap_or("").to_string(),
        )),
        Ok(_) => Err(bad(format!("not the answer expected: {}", body.trim()))),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Sends one request line and reads the one-line answer.
fn request(path: &Path, line: &str) -> Result<String, StatsError> {
    let connect_err = |source| StatsError::Connect {
        path: path.to_owned(),
        source,
    };
    let stream = UnixStream::connect(path).map_err(connect_err)?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(connect_err)?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(connect_err)?;
    (&stream)
        .write_all(format!("{line}\n").as_bytes())
        .map_err(connect_err)?;
    let mut body = String::new();
    BufReader::new(&stream)
        .read_line(&mut body)
        .map_err(connect_err)?;
    Ok(body)
}

impl StatsSnapshot {
    /// Total of one worker counter over all workers.
    pub fn total(&self, counter: &str) -> u64 {
        self.workers
            .iter()
            .filter_map(|w| w.counters.get(counter))
            .sum()
    }

    /// A table for people: one row per counter, one column per worker, and
    /// a total; then the ports' hardware counters.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "node {}  up {}s", self.node, self.uptime_secs);
        if self.draining {
            let _ = writeln!(
                out,
                "draining: {} flows left ({} handed in)",
                self.total("flows_active"),
                self.total("handed_in_active")
            );
        }
        let names: Vec<&String> = self
            .workers
            .first()
            .map(|w| w.counters.keys().collect())
            .unwrap_or_default();
        let _ = write!(out, "{:<24}", "counter");
        for w in &self.workers {
            let _ = write!(out, "{:>14}", format!("w{}@lcore{}", w.worker, w.lcore));
        }
        let _ = writeln!(out, "{:>14}", "total");
        for name in names {
            let _ = write!(out, "{name:<24}");
            for w in &self.workers {
                let _ = write!(out, "{:>14}", w.counters.get(name).copied().unwrap_or(0));
            }
            let _ = writeln!(out, "{:>14}", self.total(name));
        }
        let histograms: Vec<&String> = self
            .workers
            .first()
            .map(|w| w.histograms.keys().collect())
            .unwrap_or_default();
        for name in histograms {
            let _ = writeln!(out, "\n{name} (events, mean)");
            for w in &self.workers {
                let h = w.histograms.get(name).cloned().unwrap_or_default();
                let mean = h.sum_micros.checked_div(h.count()).unwrap_or(0);
                let _ = writeln!(out, "  w{:<21}{:>14}{:>12} us", w.worker, h.count(), mean);
            }
        }
        for port in &self.ports {
            let _ = writeln!(out, "\n{} port {}", port.role, port.name);
            for (name, value) in &port.counters {
                let _ = writeln!(out, "  {name:<22}{value:>14}");
            }
        }
        if !self.peers.is_empty() {
            let _ = writeln!(out, "\npeers");
            for (name, up) in &self.peers {
                let state = match self.peer_states.get(name) {
                    Some(state) => state.as_str(),
                    None if *up => "up",
                    None => "down",
                };
                let _ = writeln!(out, "  {name:<22}{state:>14}");
            }
        }
        if !self.control.is_empty() {
            let _ = writeln!(out, "\ncontrol");
            for (name, value) in &self.control {
                let _ = writeln!(out, "  {name:<26}{value:>10}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StatsSnapshot {
        let counters: BTreeMap<String, u64> = [
            ("wire_rx".to_string(), 5),
            ("drop_host_tx_full".to_string(), 1),
        ]
        .into();
        StatsSnapshot {
            node: "node1".into(),
            uptime_secs: 7,
            workers: vec![
                WorkerStats {
                    worker: 0,
                    lcore: 1,
                    counters: counters.clone(),
                    histograms: [(
                        "handoff_latency".to_string(),
                        HistogramStats {
                            bounds_micros: vec![100],
                            counts: vec![3, 1],
                            sum_micros: 400,
                        },
                    )]
                    .into(),
                },
                WorkerStats {
                    worker: 1,
                    lcore: 2,
                    counters,
                    histograms: BTreeMap::new(),
                },
            ],
            ports: vec![PortStatsEntry {
                role: "wire".into(),
                name: "net_af_packet0".into(),
                counters: [("rx_packets".to_string(), 10)].into(),
            }],
            control: BTreeMap::new(),
            peers: [("n2".to_string(), true), ("n3".to_string(), true)].into(),
            peer_states: [
                ("n2".to_string(), "up".to_string()),
                ("n3".to_string(), "suspect".to_string()),
            ]
            .into(),
            draining: true,
        }
    }

    /// An instance that refuses every request but `stats`.
    struct Nothing;

    impl Requests for Nothing {
        fn drain(&mut self, _: bool) -> Result<DrainAnswer, String> {
            Err("no".into())
        }
        fn reload(&mut self, path: &Path) -> Result<ReloadAnswer, String> {
            Err(format!("{}: no", path.display()))
        }
    }

    #[test]
    fn a_refused_reload_comes_back_as_the_instances_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.sock");
        let server = StatsServer::bind(&path).unwrap();
        let client = std::thread::spawn({
            let path = path.clone();
            move || request_reload(&path, Path::new("/etc/baton/n1.toml"))
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !client.is_finished() && std::time::Instant::now() < deadline {
            server.serve_pending(sample, &mut Nothing);
            std::thread::sleep(Duration::from_millis(5));
        }
        match client.join().unwrap() {
            Err(StatsError::Refused(why)) => assert_eq!(why, "/etc/baton/n1.toml: no"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fetch_round_trips_a_snapshot_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/baton.sock");
        let server = StatsServer::bind(&path).unwrap();
        let client = std::thread::spawn({
            let path = path.clone();
            move || fetch(&path)
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !client.is_finished() && std::time::Instant::now() < deadline {
            server.serve_pending(sample, &mut Nothing);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(client.join().unwrap().unwrap(), sample());
    }

    #[test]
    fn a_live_socket_is_not_taken_over_and_a_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.sock");
        let first = StatsServer::bind(&path).unwrap();
        assert!(matches!(
            StatsServer::bind(&path),
            Err(StatsError::InUse(_))
        ));
        drop(first);
        // A socket file nobody listens on (a crashed instance) is replaced.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        assert!(StatsServer::bind(&path).is_ok());
    }

    #[test]
    fn an_unknown_request_gets_an_error_not_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.sock");
        let server = StatsServer::bind(&path).unwrap();
        let mut stream = UnixStream::connect(&path).unwrap();
        stream.write_all(b"garbage\n").unwrap();
        server.serve_pending(sample, &mut Nothing);
        let mut body = String::new();
        BufReader::new(&stream).read_line(&mut body).unwrap();
        assert!(body.contains("unknown request"), "{body}");
    }

    #[test]
    fn fetch_without_a_server_says_what_to_check() {
        let err = fetch(Path::new("/nonexistent/baton.sock")).unwrap_err();
        assert!(err.to_string().contains("is `baton run` up"), "{err}");
    }

    #[test]
    fn table_shows_every_counter_with_totals() {
        let table = sample().to_table();
        assert!(table.contains("w1@lcore2"));
        let row = table.lines().find(|l| l.starts_with("wire_rx")).unwrap();
        assert!(row.trim_end().ends_with("10"), "{row}");
        assert!(table.contains("rx_packets"));
        let w0 = table
            .lines()
            .find(|l| l.trim_start().starts_with("w0 "))
            .unwrap();
        assert!(w0.ends_with("4         100 us"), "{w0}");
        let n3 = table
            .lines()
            .find(|l| l.trim_start().starts_with("n3"))
            .unwrap();
        assert!(n3.trim_end().ends_with("suspect"), "{n3}");
    }
}
