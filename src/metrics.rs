//! What the control lcore serves about itself: the stats socket that
//! `baton stats` reads and, with `[metrics]`, the Prometheus endpoint,
//! both from one snapshot.

use std::sync::Arc;

use anyhow::Result;
use baton_config::Config;
use baton_control::metrics::{
    describe, render, BuildInfo, Catalog, MetricsCounter, MetricsCounters, MetricsServer,
};
use baton_control::peers::PeerCounter;
use baton_control::plane::ControlCounter;
use baton_control::stats::{PortCounter, Requests, StatsServer, StatsSnapshot};
use baton_fastpath::counters::{Counter, HandoffLatency};

pub struct Endpoints {
    stats: StatsServer,
    metrics: Option<Metrics>,
}

struct Metrics {
    server: MetricsServer,
    counters: Arc<MetricsCounters>,
    catalog: Catalog,
    build: BuildInfo,
}

impl Endpoints {
    pub fn new(stats: StatsServer) -> Endpoints {
        Endpoints {
            stats,
            metrics: None,
        }
    }

    /// Binds `metrics.listen`, if the config has it.
    pub fn listen_for_metrics(&mut self, cfg: &Config, dpdk_version: &str) -> Result<()> {
        let Some(metrics) = &cfg.metrics else {
            return Ok(());
        };
        let server = MetricsServer::bind(metrics.listen)?;
        tracing::info!("metrics on http://{}/metrics", metrics.listen);
        self.metrics = Some(Metrics {
            counters: server.counters(),
            server,
            catalog: catalog(),
            build: BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                commit: env!("BATON_COMMIT").to_string(),
                dpdk: dpdk_version.to_string(),
            },
        });
        Ok(())
    }

    /// Answers every stats and metrics client waiting now, without
    /// blocking. `snapshot` is taken once per answer; `requests` does what
    /// `baton drain` and `baton reload` ask.
    pub fn serve_pending(
        &mut self,
        snapshot: impl Fn() -> StatsSnapshot,
        requests: &mut impl Requests,
    ) {
        let own = self.metrics.as_ref().map(|m| Arc::clone(&m.counters));
        let full = || {
            let mut s = snapshot();
            if let Some(own) = &own {
                s.control
                    .extend(own.snapshot().into_iter().map(|(k, v)| (k.to_string(), v)));
            }
            s
        };
        self.stats.serve_pending(full, requests);
        if let Some(m) = self.metrics.as_mut() {
            let (catalog, build) = (&m.catalog, &m.build);
            m.server.serve_pending(|| render(&full(), catalog, build));
        }
    }
}

/// Every counter `baton stats` shows, described for the metrics endpoint.
fn catalog() -> Catalog {
    Catalog {
        worker: describe::<Counter>(),
        control: [
            describe::<PeerCounter>(),
            describe::<ControlCounter>(),
            describe::<MetricsCounter>(),
        ]
        .concat(),
        port: describe::<PortCounter>(),
        histograms: vec![(HandoffLatency::NAME, HandoffLatency::HELP)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_names_every_counter_once() {
        let c = catalog();
        let mut names: Vec<_> = c.worker.iter().chain(&c.control).map(|d| d.name).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a name in two sets");
        assert_eq!(c.worker.len(), Counter::COUNT);
        assert!(c.worker.iter().all(|d| !d.help.is_empty()));
    }
}
