//! A stats snapshot in the Prometheus text exposition format (0.0.4).
//!
//! Names follow Prometheus practice: `baton_<counter>`, base units
//! (seconds, bytes) in the name, `_total` on counters, none on gauges.
//! Help texts are the counters' own doc comments ([`CounterSet::help`]).
//! The only labels are `worker` (per-worker counters and the handoff
//! latency histogram) and `peer` (peer up, suspect, draining); `baton_build_info` carries
//! the version, as is customary.

use std::fmt::Write as _;

use baton_counters::{CounterSet, Kind};

use crate::stats::{HistogramStats, StatsSnapshot};

/// What a counter is: its name in `baton stats`, help text and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Described {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// Every counter of a set, described.
pub fn describe<C: CounterSet>() -> Vec<Described> {
    C::ALL
        .iter()
        .map(|&c| Described {
            name: c.name(),
            help: c.help(),
            kind: c.kind(),
        })
        .collect()
}

/// What the snapshot's names mean: every counter set `baton stats` shows.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Per-worker counters (`workers[].counters`).
    pub worker: Vec<Described>,
    /// Node-wide counters (`control`).
    pub control: Vec<Described>,
    /// A port's hardware counters (`ports[].counters`), for every port.
    pub port: Vec<Described>,
    /// Per-worker histograms (`workers[].histograms`): name and help.
    pub histograms: Vec<(&'static str, &'static str)>,
}

/// Who built this Baton: `baton_build_info`'s labels.
#[derive(Debug, Clone)]
pub struct BuildInfo {
    pub version: String,
    pub commit: String,
    pub dpdk: String,
}

/// The metric name of a counter, and what its value is divided by.
fn metric_name(name: &str, kind: Kind) -> (String, f64) {
    match kind {
        Kind::Gauge => (format!("baton_{name}"), 1.0),
        Kind::Micros => {
            let base = name.strip_suffix("_micros").unwrap_or(name);
            (format!("baton_{base}_seconds_total"), 1e6)
        }
        Kind::Bytes if !name.contains("bytes") => (format!("baton_{name}_bytes_total"), 1.0),
        _ => (format!("baton_{name}_total"), 1.0),
    }
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: u64, divisor: f64) {
    if divisor == 1.0 {
        let _ = writeln!(out, "{name}{labels} {value}");
    } else {
        // A u64 of µs is exact in an f64 below 2^53 µs (285 years).
        #[allow(clippy::cast_precision_loss)]
        let v = value as f64 / divisor;
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// Help text: backslash and newline escaped.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A label value: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders `snapshot` as the text format.
pub fn render(snapshot: &StatsSnapshot, catalog: &Catalog, build: &BuildInfo) -> String {
    let mut out = String::with_capacity(64 * 1024);

    family(
        &mut out,
        "baton_build_info",
        "Baton's version and commit, and DPDK's version; always 1.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "baton_build_info{{version=\"{}\",commit=\"{}\",dpdk=\"{}\"}} 1",
        escape_label(&build.version),
        escape_label(&build.commit),
        escape_label(&build.dpdk)
    );
    family(
        &mut out,
        "baton_uptime_seconds",
        "Seconds since this instance started.",
        "gauge",
    );
    let _ = writeln!(out, "baton_uptime_seconds {}", snapshot.uptime_secs);

    for d in &catalog.worker {
        let (name, scale) = metric_name(d.name, d.kind);
        family(&mut out, &name, d.help, type_of(d.kind));
        for w in &snapshot.workers {
            let value = w.counters.get(d.name).copied().unwrap_or(0);
            sample(
                &mut out,
                &name,
                &format!("{{worker=\"{}\"}}", w.worker),
                value,
                scale,
            );
        }
    }
    for &(hist, help) in &catalog.histograms {
        histogram(&mut out, hist, help, snapshot);
    }
    for d in &catalog.control {
        let Some(&value) = snapshot.control.get(d.name) else {
            continue; // a node without peers has no control-plane counters
        };
        let (name, scale) = metric_name(d.name, d.kind);
        family(&mut out, &name, d.help, type_of(d.kind));
        sample(&mut out, &name, "", value, scale);
    }
    for port in &snapshot.ports {
        for d in &catalog.port {
            let value = port.counters.get(d.name).copied().unwrap_or(0);
            let (name, scale) = metric_name(&format!("{}_port_{}", port.role, d.name), d.kind);
            family(
                &mut out,
                &name,
                &format!("{} port: {}", port.role, d.help),
                type_of(d.kind),
            );
            sample(&mut out, &name, "", value, scale);
        }
    }
    if !snapshot.peers.is_empty() {
        family(
            &mut out,
            "baton_peer_up",
            "Whether the control channel to the peer is up (1) or down (0).",
            "gauge",
        );
        for (peer, up) in &snapshot.peers {
            let _ = writeln!(
                out,
                "baton_peer_up{{peer=\"{}\"}} {}",
                escape_label(peer),
                u8::from(*up)
            );
        }
    }
    if !snapshot.peer_states.is_empty() {
        // One gauge per state a peer can be in while up, 1 in its state.
        for (state_name, name, help) in [
            (
                "suspect",
                "baton_peer_suspect",
                "Whether the peer is suspect (1): up, but not heard from for cluster.suspect_after_ms, so it gets no new handoffs.",
            ),
            (
                "draining",
                "baton_peer_draining",
                "Whether the peer announced it drains (1, `baton drain` on it): up, but it gets no new handoffs.",
            ),
        ] {
            family(&mut out, name, help, "gauge");
            for (peer, state) in &snapshot.peer_states {
                let _ = writeln!(
                    out,
                    "{name}{{peer=\"{}\"}} {}",
                    escape_label(peer),
                    u8::from(state == state_name)
                );
            }
        }
    }
    out
}

fn type_of(kind: Kind) -> &'static str {
    if kind == Kind::Gauge {
        "gauge"
    } else {
        "counter"
    }
}

/// One histogram family, a series per worker: cumulative buckets with
/// `le` in seconds, `_sum` in seconds, `_count`.
fn histogram(out: &mut String, hist: &str, help: &str, snapshot: &StatsSnapshot) {
    let name = format!("baton_{hist}_seconds");
    family(out, &name, help, "histogram");
    for w in &snapshot.workers {
        let h: HistogramStats = w.histograms.get(hist).cloned().unwrap_or_default();
        let mut cumulative = 0u64;
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count;
            let le = match h.bounds_micros.get(i) {
                #[allow(clippy::cast_precision_loss)] // bounds are small
                Some(&b) => format!("{}", b as f64 / 1e6),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{worker=\"{}\",le=\"{le}\"}} {cumulative}",
                w.worker
            );
        }
        if h.counts.is_empty() {
            let _ = writeln!(
                out,
                "{name}_bucket{{worker=\"{}\",le=\"+Inf\"}} 0",
                w.worker
            );
        }
        let labels = format!("{{worker=\"{}\"}}", w.worker);
        sample(out, &format!("{name}_sum"), &labels, h.sum_micros, 1e6);
        let _ = writeln!(out, "{name}_count{labels} {}", h.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{PortStatsEntry, WorkerStats};

    baton_counters::counters! {
        /// A worker's, for the test.
        enum W {
            /// Frames received.
            Rx => "wire_rx", packets;
            /// Bytes translated.
            Translated => "translated_bytes", bytes;
            /// Time moving, summed.
            Moves => "move_micros", micros;
            /// Flows now.
            Active => "flows_active", gauge;
        }
    }

    baton_counters::counters! {
        /// The node's, for the test.
        enum C {
            /// Bytes in from peers.
            BytesIn => "peer_bytes_in", bytes;
            /// Scrapes "answered" \ counted.
            Scrapes => "metrics_scrapes", connections;
        }
    }

    fn snapshot() -> StatsSnapshot {
        let worker = |i: usize, rx: u64| WorkerStats {
            worker: i,
            lcore: u32::try_from(i).unwrap() + 1,
            counters: [
                ("wire_rx".to_string(), rx),
                ("translated_bytes".to_string(), 3),
                ("move_micros".to_string(), 1_500_000),
                ("flows_active".to_string(), 2),
            ]
            .into(),
            histograms: [(
                "handoff_latency".to_string(),
                HistogramStats {
                    bounds_micros: vec![100, 1000],
                    counts: vec![1, 2, 3],
                    sum_micros: 9000,
                },
            )]
            .into(),
        };
        StatsSnapshot {
            node: "n1".into(),
            uptime_secs: 5,
            workers: vec![worker(0, 10), worker(1, 20)],
            ports: vec![PortStatsEntry {
                role: "wire".into(),
                name: "net_af_packet0".into(),
                counters: [("rx_bytes".to_string(), 99)].into(),
            }],
            control: [
                ("peer_bytes_in".to_string(), 7),
                ("metrics_scrapes".to_string(), 4),
            ]
            .into(),
            peers: [("n2".to_string(), true), ("n3".to_string(), false)].into(),
            peer_states: [
                ("n2".to_string(), "suspect".to_string()),
                ("n3".to_string(), "down".to_string()),
                ("n4".to_string(), "draining".to_string()),
            ]
            .into(),
            draining: true,
        }
    }

    fn catalog() -> Catalog {
        baton_counters::counters! {
            /// Ports', for the test.
            enum P {
                /// Bytes received.
                RxBytes => "rx_bytes", bytes;
            }
        }
        Catalog {
            worker: describe::<W>(),
            control: describe::<C>(),
            port: describe::<P>(),
            histograms: vec![("handoff_latency", "Time to accept.")],
        }
    }

    fn render_sample() -> String {
        let build = BuildInfo {
            version: "0.1.0".into(),
            commit: "abc".into(),
            dpdk: "DPDK 22.11.11".into(),
        };
        render(&snapshot(), &catalog(), &build)
    }

    #[test]
    fn counters_get_base_units_and_total_and_a_worker_label() {
        let text = render_sample();
        for line in [
            "# HELP baton_wire_rx_total Frames received.",
            "# TYPE baton_wire_rx_total counter",
            "baton_wire_rx_total{worker=\"0\"} 10",
            "baton_wire_rx_total{worker=\"1\"} 20",
            "baton_translated_bytes_total{worker=\"0\"} 3",
            "# TYPE baton_move_seconds_total counter",
            "baton_move_seconds_total{worker=\"1\"} 1.5",
            "# TYPE baton_flows_active gauge",
            "baton_flows_active{worker=\"0\"} 2",
            "baton_peer_bytes_in_total 7",
            "# HELP baton_metrics_scrapes_total Scrapes \"answered\" \\\\ counted.",
            "baton_metrics_scrapes_total 4",
            "baton_wire_port_rx_bytes_total 99",
            "baton_peer_up{peer=\"n2\"} 1",
            "baton_peer_up{peer=\"n3\"} 0",
            "baton_peer_suspect{peer=\"n2\"} 1",
            "baton_peer_suspect{peer=\"n3\"} 0",
            "baton_peer_draining{peer=\"n2\"} 0",
            "baton_peer_draining{peer=\"n4\"} 1",
            "baton_build_info{version=\"0.1.0\",commit=\"abc\",dpdk=\"DPDK 22.11.11\"} 1",
            "baton_uptime_seconds 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_in_seconds() {
        let text = render_sample();
        for line in [
            "# TYPE baton_handoff_latency_seconds histogram",
            "baton_handoff_latency_seconds_bucket{worker=\"0\",le=\"0.0001\"} 1",
            "baton_handoff_latency_seconds_bucket{worker=\"0\",le=\"0.001\"} 3",
            "baton_handoff_latency_seconds_bucket{worker=\"0\",le=\"+Inf\"} 6",
            "baton_handoff_latency_seconds_sum{worker=\"0\"} 0.009",
            "baton_handoff_latency_seconds_count{worker=\"0\"} 6",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn every_family_is_declared_once_before_its_samples() {
        let text = render_sample();
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_string()), "{name} twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{name} before its TYPE");
            }
        }
    }
}
