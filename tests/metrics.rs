//! The metrics endpoint against a real Prometheus server (Debian's
//! `prometheus`), started in the client namespace of a 3-node handoff
//! testbed and scraping every node's /metrics once a second; `promtool
//! check metrics` on what a node serves. Needs root; see
//! `testbed::available`.

mod testbed;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testbed::{node_ip, Testbed};

const METRICS_PORT: u16 = 9100;
const PROMETHEUS: &str = "127.0.0.1:9090";

fn metrics_url(i: usize) -> String {
    format!("http://{}:{METRICS_PORT}/metrics", node_ip(i))
}

/// A Prometheus server in the testbed's client namespace; killed on drop.
struct Prometheus {
    child: Child,
}

impl Prometheus {
    fn start(tb: &Testbed, nodes: usize) -> Prometheus {
        let dir = tb.workdir().join("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let targets: Vec<String> = (1..=nodes)
            .map(|i| format!("'{}:{METRICS_PORT}'", node_ip(i)))
            .collect();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
                 scrape_configs:\n  - job_name: baton\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &format!("{}-client", tb.id), "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus (Debian package `prometheus`; scripts/deps.sh installs it)");
        Prometheus { child }
    }

    /// The value of an instant query that yields one sample, if it does.
    fn query(&self, tb: &Testbed, expr: &str) -> Option<f64> {
        let out = tb.client(&[
            "curl",
            "-sf",
            "--max-time",
            "5",
            &format!("http://{PROMETHEUS}/api/v1/query"),
            "--data-urlencode",
            &format!("query={expr}"),
        ]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let result = v["data"]["result"].as_array()?;
        let [one] = result.as_slice() else {
            return None;
        };
        one["value"][1].as_str()?.parse().ok()
    }

    /// Waits (bounded) until `expr` satisfies `ok`; returns its last value.
    fn wait_for(&self, tb: &Testbed, expr: &str, secs: u64, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let value = self.query(tb, expr);
            if let Some(v) = value.filter(|&v| ok(v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus: {expr} = {value:?} after {secs} s; log:\n{}",
                std::fs::read_to_string(tb.workdir().join("prometheus/prometheus.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // `ip netns exec` runs prometheus in its own process: SIGTERM
        // reaches it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The family `baton stats` counter `name` is served as, found by its
/// HELP line: `baton_<name>` (a gauge), `baton_<name>_total`, or for a
/// summed time `baton_<base>_seconds_total`.
fn family_of<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let mut candidates = vec![format!("baton_{name}"), format!("baton_{name}_total")];
    if let Some(base) = name.strip_suffix("_micros") {
        candidates.push(format!("baton_{base}_seconds_total"));
    }
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("# HELP ")?;
        let family = rest.split(' ').next()?;
        candidates.iter().any(|c| c == family).then_some(family)
    })
}

#[test]
fn prometheus_scrapes_every_node_and_sees_handoffs_rise() {
    if !testbed::available("prometheus_scrapes_every_node_and_sees_handoffs_rise") {
        return;
    }
    let tb = Testbed::up_cluster(3);

    // What node 1 serves passes promtool, and holds every counter of
    // `baton stats` with its help text.
    let text = tb
        .fetch(&metrics_url(1), 10)
        .map(|b| String::from_utf8(b).expect("UTF-8 metrics"))
        .unwrap_or_else(|| panic!("no /metrics on node 1; log:\n{}", tb.log(1)));
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let stats = tb.stats(1);
    let worker = &stats["workers"][0]["counters"];
    for (name, _) in worker.as_object().expect("counters") {
        let family = family_of(&text, name)
            .unwrap_or_else(|| panic!("worker counter {name}: no family with help text"));
        assert!(
            text.contains(&format!("\n{family}{{worker=\"0\"}} ")),
            "{family} (worker counter {name}) has no sample for worker 0"
        );
    }
    for (name, _) in stats["control"].as_object().expect("control") {
        let family = family_of(&text, name)
            .unwrap_or_else(|| panic!("control counter {name}: no family with help text"));
        assert!(
            text.contains(&format!("\n{family} ")),
            "{family} (control counter {name}) has no sample"
        );
    }
    for port in stats["ports"].as_array().expect("ports") {
        let role = port["role"].as_str().unwrap();
        for (name, _) in port["counters"].as_object().unwrap() {
            let metric = format!("baton_{role}_port_{name}_total");
            assert!(text.contains(&format!("\n{metric} ")), "{metric} missing");
        }
    }
    for peer in ["n2", "n3"] {
        assert!(text.contains(&format!("baton_peer_up{{peer=\"{peer}\"}} 1")));
    }
    assert!(text.contains("baton_build_info{version=\""));
    assert!(text.contains("# TYPE baton_handoff_latency_seconds histogram"));

    // A real Prometheus scrapes all three nodes.
    let prom = Prometheus::start(&tb, 3);
    prom.wait_for(&tb, "sum(up)", 60, |v| v == 3.0);
    prom.wait_for(&tb, "count(baton_peer_up == 1)", 10, |v| v == 6.0);
    let handed_off = "sum(baton_handed_off_total{instance=\"198.18.0.11:9100\"})";
    let before = prom.wait_for(&tb, handed_off, 10, |_| true);

    // Twenty handoffs from node 1 to node 2.
    let url = format!("http://{}/n2/1k.bin", node_ip(1));
    let sum = tb.sha256_of(2, "n2/1k.bin");
    for k in 0..20 {
        assert_eq!(
            tb.fetch_sha256(&url, 10).as_deref(),
            Some(sum.as_str()),
            "request {k}"
        );
    }
    let after = prom.wait_for(&tb, handed_off, 20, |v| v >= before + 20.0);
    println!("baton_handed_off_total on node 1 as Prometheus saw it: {before} -> {after}");
    let handed_in = prom.wait_for(
        &tb,
        "sum(baton_handed_in_total{instance=\"198.18.0.12:9100\"})",
        20,
        |v| v >= 20.0,
    );
    println!("baton_handed_in_total on node 2: {handed_in}");
    let latency_count = prom.wait_for(
        &tb,
        "sum(baton_handoff_latency_seconds_count{instance=\"198.18.0.11:9100\"})",
        20,
        |v| v >= after,
    );
    let median = prom.query(
        &tb,
        "histogram_quantile(0.5, sum by (le) (baton_handoff_latency_seconds_bucket{instance=\"198.18.0.11:9100\"}))",
    );
    let mean = prom.query(
        &tb,
        "sum(baton_handoff_latency_seconds_sum{instance=\"198.18.0.11:9100\"}) / sum(baton_handoff_latency_seconds_count{instance=\"198.18.0.11:9100\"})",
    );
    println!(
        "handoff latency on node 1 over {latency_count} handoffs: median {median:?} s (bucket estimate), mean {mean:?} s"
    );
    let scrapes = prom.wait_for(
        &tb,
        "baton_metrics_scrapes_total{instance=\"198.18.0.13:9100\"}",
        10,
        |v| v >= 2.0,
    );
    println!("node 3 answered {scrapes} scrapes");
    let errors =
        tb.control_counter(1, "metrics_bad_requests") + tb.control_counter(1, "metrics_timeouts");
    assert_eq!(errors, 0, "node 1's metrics endpoint counted errors");
}
