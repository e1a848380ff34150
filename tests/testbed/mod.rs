//! A Rust handle on `netns.sh`: builds the netns testbed of DESIGN §6 with
//! real nginx and Baton on every node, and always tears it down, on test
//! failure too (`Drop`).

#![allow(dead_code)] // each test binary uses its own part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub const CLIENT_IP: &str = "198.18.0.100";
/// The cluster VIP of a handoff testbed (see netns.sh).
pub const VIP: &str = "198.18.0.50";

pub fn node_ip(i: usize) -> String {
    format!("198.18.0.{}", 10 + i)
}

/// The Baton binary under test: `BATON_BIN` (the release build `make test`
/// uses) or the one cargo built for this test run.
pub fn baton_bin() -> PathBuf {
    std::env::var_os("BATON_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_baton")))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbed/netns.sh")
}

/// Whether this machine can run the testbed. Off CI a machine without root
/// or network namespaces skips with a message; on CI (CI=true) that is a
/// failure, so the end-to-end tests can never silently not run there.
pub fn available(test: &str) -> bool {
    let missing = if !is_root() {
        Some("needs root")
    } else if !Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Some("needs iproute2 with network namespaces")
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {why}, and CI=true: the end-to-end tests must run here")
        }
        Some(why) => {
            eprintln!("SKIPPED {test}: {why} (run `make test` as root)");
            false
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub struct Testbed {
    pub id: String,
    pub nodes: usize,
    workdir: tempfile::TempDir,
    workers: usize,
    hugepages: bool,
    peer_macs: bool,
    containers: bool,
}

impl Testbed {
    /// A client, a LAN and `nodes` nodes, all serving through Baton.
    pub fn up(nodes: usize) -> Testbed {
        Self::start(nodes, false, 1, false)
    }

    /// The same, with Baton on hugepage memory (`dpdk.hugepages = true`):
    /// the caller reserves the pages.
    pub fn up_with_hugepages(nodes: usize) -> Testbed {
        Self::start(nodes, false, 1, true)
    }

    /// The same, with the nodes a cluster that hands off connections: paths
    /// under /nI/ are served by node I (see netns.sh). Each node runs
    /// `BATON_TEST_WORKERS` workers (1 or 2; default 1), so the whole
    /// handoff suite can be run with steering between workers too.
    pub fn up_cluster(nodes: usize) -> Testbed {
        let workers = std::env::var("BATON_TEST_WORKERS")
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or(1);
        Self::start(nodes, true, workers, false)
    }

    /// A cluster whose nodes run two workers each.
    pub fn up_cluster_two_workers(nodes: usize) -> Testbed {
        Self::start(nodes, true, 2, false)
    }

    /// A cluster whose configs give each peer by name and address only:
    /// the nodes learn each other's MACs.
    pub fn up_cluster_without_peer_macs(nodes: usize) -> Testbed {
        Self::start_with(nodes, true, 1, false, false)
    }

    /// The cluster of docker/compose.yaml without Docker: namespaces made
    /// like its containers (a veth `eth0` with the node's address and a
    /// default route), each running docker/node.sh with the environment the
    /// compose file gives it (netns.sh `CONTAINERS=1`).
    pub fn up_containers(nodes: usize) -> Testbed {
        let mut tb = Self::new(nodes, 1, false, true);
        tb.containers = true;
        tb.bring_up(true);
        tb
    }

    fn start(nodes: usize, handoff: bool, workers: usize, hugepages: bool) -> Testbed {
        Self::start_with(nodes, handoff, workers, hugepages, true)
    }

    fn start_with(
        nodes: usize,
        handoff: bool,
        workers: usize,
        hugepages: bool,
        peer_macs: bool,
    ) -> Testbed {
        let tb = Self::new(nodes, workers, hugepages, peer_macs);
        tb.bring_up(handoff);
        tb
    }

    fn new(nodes: usize, workers: usize, hugepages: bool, peer_macs: bool) -> Testbed {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "bt{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let workdir = tempfile::Builder::new()
            .prefix(&format!("baton-{id}-"))
            .tempdir()
            .expect("temp dir");
        Testbed {
            id,
            nodes,
            workdir,
            workers,
            hugepages,
            peer_macs,
            containers: false,
        }
    }

    fn bring_up(&self, handoff: bool) {
        let tb = self;
        let out = tb.script_env(
            handoff,
            &[
                "up",
                &tb.id,
                &tb.nodes.to_string(),
                baton_bin().to_str().expect("utf-8 path"),
                tb.workdir().to_str().expect("utf-8 path"),
            ],
        );
        assert!(
            out.status.success(),
            "testbed did not come up:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    fn script(&self, args: &[&str]) -> Output {
        self.script_env(false, args)
    }

    fn script_env(&self, handoff: bool, args: &[&str]) -> Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("HANDOFF", if handoff { "1" } else { "0" })
            .env("WORKERS", self.workers.to_string())
            .env("HUGEPAGES", if self.hugepages { "1" } else { "0" })
            .env("PEER_MACS", if self.peer_macs { "1" } else { "0" })
            .env("CONTAINERS", if self.containers { "1" } else { "0" })
            .output()
            .expect("run netns.sh")
    }

    /// The sha256 of `file` (e.g. "n2/1m.bin") as node `i` serves it.
    pub fn sha256_of(&self, i: usize, file: &str) -> String {
        let sums = std::fs::read_to_string(self.workdir().join(format!("n{i}/sha256.txt")))
            .expect("sha256.txt");
        sums.lines()
            .find(|l| l.ends_with(&format!("  {file}")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no sum for {file} on node {i}"))
            .to_string()
    }

    /// Downloads `url` from the client; returns the sha256 of the body, or
    /// None if curl failed.
    pub fn fetch_sha256(&self, url: &str, timeout_secs: u32) -> Option<String> {
        let cmd =
            format!("set -o pipefail; curl -sf --max-time {timeout_secs} '{url}' | sha256sum");
        let out = self.client(&["bash", "-c", &cmd]);
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
    }

    /// Starts `cmd` in the client namespace and returns at once, its
    /// stdout piped: a download or a load that runs while the test acts.
    pub fn spawn_client(&self, cmd: &[&str]) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &format!("{}-client", self.id)])
            .args(cmd)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?} in the client namespace: {e}"))
    }

    /// Runs `cmd` in the LAN namespace (where the bridge is).
    pub fn on_lan(&self, cmd: &[&str]) -> Output {
        self.exec(&format!("{}-lan", self.id), cmd)
    }

    /// Whether node `i` sees peer `peer` up.
    pub fn peer_up(&self, i: usize, peer: &str) -> bool {
        self.stats(i)["peers"][peer].as_bool().unwrap_or(false)
    }

    /// How node `i` sees peer `peer`: "up", "suspect" or "down".
    pub fn peer_state(&self, i: usize, peer: &str) -> String {
        self.stats(i)["peer_states"][peer]
            .as_str()
            .unwrap_or("down")
            .to_string()
    }

    /// Waits up to `secs` for `cond`.
    pub fn wait_for(&self, secs: u64, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        cond()
    }

    /// A control-plane counter of node `i`.
    pub fn control_counter(&self, i: usize, name: &str) -> u64 {
        self.stats(i)["control"][name].as_u64().unwrap_or(0)
    }

    /// Runs `cmd` in the client namespace.
    pub fn client(&self, cmd: &[&str]) -> Output {
        self.exec(&format!("{}-client", self.id), cmd)
    }

    /// Runs a Python script in the client namespace; returns what it
    /// printed, and fails the test if the script failed.
    pub fn client_python(&self, script: &str) -> String {
        let out = self.client(&["python3", "-c", script]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "client script failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs wrk in the client namespace with `args`; fails the test if wrk
    /// itself failed.
    pub fn wrk(&self, args: &[&str]) -> Wrk {
        let out = self.client(&[&["wrk"], args].concat());
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "wrk failed: {report}");
        Wrk { report }
    }

    /// Drops `percent` % of the client's packets each way, at random.
    pub fn client_loss(&self, percent: u32) {
        let rules = format!(
            "table inet loss {{\n\
             chain in {{ type filter hook input priority 0; numgen random mod 100 < {percent} drop; }}\n\
             chain out {{ type filter hook output priority 0; numgen random mod 100 < {percent} drop; }}\n}}\n"
        );
        let mut nft = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{}-client", self.id),
                "nft",
                "-f",
                "-",
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        use std::io::Write;
        nft.stdin
            .take()
            .expect("stdin")
            .write_all(rules.as_bytes())
            .expect("nft rules");
        assert!(
            nft.wait().expect("nft").success(),
            "nft refused the loss rules"
        );
    }

    /// Runs `cmd` in node `i`'s namespace.
    pub fn on_node(&self, i: usize, cmd: &[&str]) -> Output {
        self.exec(&format!("{}-n{i}", self.id), cmd)
    }

    fn exec(&self, ns: &str, cmd: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .output()
            .expect("ip netns exec")
    }

    /// `curl` from the client; returns the body, or None on failure.
    pub fn fetch(&self, url: &str, timeout_secs: u32) -> Option<Vec<u8>> {
        let out = self.client(&["curl", "-sf", "--max-time", &timeout_secs.to_string(), url]);
        out.status.success().then_some(out.stdout)
    }

    /// The sha256 nginx on node `i` serves for /big.bin.
    pub fn big_sha256(&self, i: usize) -> String {
        std::fs::read_to_string(self.workdir().join(format!("n{i}/big.sha256")))
            .expect("big.sha256")
            .trim()
            .to_string()
    }

    pub fn config_path(&self, i: usize) -> PathBuf {
        self.workdir().join(format!("n{i}.toml"))
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.workdir().join(format!("n{i}.log"))).unwrap_or_default()
    }

    /// `baton stats --json` of node `i`.
    pub fn stats(&self, i: usize) -> serde_json::Value {
        let out = Command::new(baton_bin())
            .args(["stats", "--json", "--config"])
            .arg(self.config_path(i))
            .output()
            .expect("baton stats");
        assert!(
            out.status.success(),
            "baton stats failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stats JSON")
    }

    /// `baton drain` (or, with `undo`, `baton drain --undo`) on node `i`.
    pub fn drain(&self, i: usize, undo: bool) {
        let mut cmd = Command::new(baton_bin());
        cmd.args(["drain", "--config"]).arg(self.config_path(i));
        if undo {
            cmd.arg("--undo");
        }
        let out = cmd.output().expect("baton drain");
        assert!(
            out.status.success(),
            "baton drain failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `baton reload --config CONFIG`, with `extra` arguments: what it
    /// printed, and whether it succeeded.
    pub fn reload(&self, config: &Path, extra: &[&str]) -> Output {
        Command::new(baton_bin())
            .args(["reload", "--config"])
            .arg(config)
            .args(extra)
            .output()
            .expect("baton reload")
    }

    /// Sends `signal` (e.g. "HUP") to Baton on node `i`.
    pub fn signal_baton(&self, i: usize, signal: &str) {
        let pid = std::fs::read_to_string(self.workdir().join(format!("n{i}.pid")))
            .expect("Baton's pid file");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// The HTTP status curl gets for `url` from the client (000: none).
    pub fn http_status(&self, url: &str) -> String {
        let out = self.client(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "-w",
            "%{http_code}",
            url,
        ]);
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Total of a worker counter on node `i`.
    pub fn counter(&self, i: usize, name: &str) -> u64 {
        self.counters(i).get(name).copied().unwrap_or(0)
    }

    /// Every worker counter of node `i`, summed over its workers.
    pub fn counters(&self, i: usize) -> std::collections::BTreeMap<String, u64> {
        let mut sums = std::collections::BTreeMap::new();
        for w in self.stats(i)["workers"].as_array().expect("workers") {
            for (name, v) in w["counters"].as_object().expect("counters") {
                *sums.entry(name.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
        }
        sums
    }

    /// [`Testbed::counters`] that are not zero, as `name=value` pairs: what
    /// a failing test prints.
    pub fn nonzero_counters(&self, i: usize) -> String {
        self.counters(i)
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn stop_baton(&self, i: usize) {
        let wd = self.workdir().to_str().unwrap().to_string();
        let out = self.script(&["stop-baton", &self.id, &wd, &i.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills Baton on node `i` with SIGKILL, as a crash would.
    pub fn kill_baton(&self, i: usize) {
        let wd = self.workdir().to_str().unwrap().to_string();
        let out = self.script(&["kill-baton", &self.id, &wd, &i.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_baton(&self, i: usize) {
        let wd = self.workdir().to_str().unwrap().to_string();
        let out = self.script(&["start-baton", &self.id, &wd, &i.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What wrk reported.
pub struct Wrk {
    pub report: String,
}

impl Wrk {
    /// The requests completed.
    pub fn requests(&self) -> u64 {
        self.figure("requests in")
            .unwrap_or_else(|| panic!("no request count in:\n{}", self.report))
    }

    /// Responses with a status other than 2xx or 3xx.
    pub fn non_2xx(&self) -> u64 {
        self.figure("Non-2xx or 3xx responses:").unwrap_or(0)
    }

    /// Whether wrk reported connect, read, write or timeout errors.
    pub fn socket_errors(&self) -> bool {
        self.report.contains("Socket errors")
    }

    /// The "Requests/sec" line.
    pub fn rate(&self) -> &str {
        self.report
            .lines()
            .find(|l| l.contains("Requests/sec"))
            .unwrap_or_default()
            .trim()
    }

    /// The number on the line containing `label`: after it, or first.
    fn figure(&self, label: &str) -> Option<u64> {
        let line = self.report.lines().find(|l| l.contains(label))?;
        let after = line.split_once(label).map(|(b, a)| (b.trim(), a.trim()))?;
        let text = if after.0.is_empty() { after.1 } else { after.0 };
        text.split_whitespace().next()?.parse().ok()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // A failing test's output carries the end of every node's log: the
        // workdir goes with the testbed, and a CI run's output is all that
        // is left of it.
        if std::thread::panicking() {
            for i in 1..=self.nodes {
                let log = self.log(i);
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                eprintln!("--- node {i}'s log, last {} lines:", tail.len());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        let wd = self.workdir().to_str().unwrap_or_default().to_string();
        let out = self.script(&["down", &self.id, &wd]);
        if !out.status.success() {
            eprintln!("testbed teardown: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
