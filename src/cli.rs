//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const DEFAULT_CONFIG: &str = "/etc/baton/baton.toml";

/// Baton: content-aware request distribution for web clusters by rare TCP
/// handoff.
///
/// Run one instance per cluster node. It owns the node's NIC (the wire port)
/// and gives the host kernel a port of its own (the host port), passing
/// traffic between them.
#[derive(Debug, Parser)]
#[command(name = "baton", version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BATON_COMMIT"), ")"), propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the appliance: bring up the wire and host ports and poll them
    /// until SIGINT or SIGTERM.
    Run {
        /// The configuration file (TOML). See config/examples/.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a configuration file and print it with every default filled
    /// in. Exits 2, naming the file, line, column and key, if it is invalid.
    Check {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Measure packets per second on every forwarding path (passthrough,
    /// local flows, origin forward, target translation both ways) beside a
    /// bare DPDK forwarder, in one process over ring-backed ports. Needs
    /// root; prints figures and never fails on them.
    Bench {
        /// Worker lcores, each with its own ports and generator.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Active flows per run, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
        flows: Vec<usize>,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Paths to measure, comma separated (default: all). The bare
        /// forwarder always runs: every ratio is to it.
        #[arg(long, value_delimiter = ',', value_enum)]
        paths: Vec<baton_bench::Path>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Use hugepages (reserve them first) instead of ordinary memory.
        #[arg(long)]
        hugepages: bool,
        /// The DPDK file prefix (default: baton-bench-<pid>). What a killed
        /// benchmark with the same prefix left is removed at start.
        #[arg(long, value_parser = file_prefix)]
        file_prefix: Option<String>,
        /// Instead of packet rates, measure the memory a connection costs
        /// (half-open, established, handed off) at each `--flows` count:
        /// the growth of the resident set while an engine takes that many
        /// connections through real frames. Needs neither root nor DPDK.
        #[arg(long)]
        memory: bool,
    },
    /// Drain a running instance: it refuses new handoffs and tells its
    /// peers, which stop choosing it; the connections it serves finish.
    /// `baton stats` shows what is left.
    Drain {
        #[command(flatten)]
        target: StatsTarget,
        /// End draining: take handoffs again.
        #[arg(long)]
        undo: bool,
    },
    /// Make a running instance apply a config file: rules, pools, peers,
    /// `[handoff]` timeouts and limits, the log level (SIGHUP to `baton
    /// run` rereads its own file). Connections already decided keep their
    /// node. An invalid file, or one that changes what only a restart
    /// changes (ports, lcores, EAL, addresses), is refused, saying why,
    /// with exit code 2; the running configuration stays.
    Reload {
        /// The file to apply; unless `--socket` is given, its
        /// `stats.socket` names the instance.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The running instance's stats socket.
        #[arg(short, long)]
        socket: Option<PathBuf>,
    },
    /// Print the counters of a running instance.
    Stats {
        #[command(flatten)]
        target: StatsTarget,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// A DPDK file prefix: what `dpdk.file_prefix` accepts.
fn file_prefix(text: &str) -> Result<String, String> {
    let ok = (1..=48).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(text.to_owned())
    } else {
        Err("1 to 48 characters: letters, digits, `_`, `-`".to_owned())
    }
}

/// Which instance `baton stats` asks: by its config file, or by its socket.
#[derive(Debug, Args)]
pub struct StatsTarget {
    /// The running instance's configuration file (its `stats.socket` is used).
    #[arg(short, long, default_value = DEFAULT_CONFIG, conflicts_with = "socket")]
    config: PathBuf,
    /// The stats socket itself.
    #[arg(short, long)]
    socket: Option<PathBuf>,
}

impl StatsTarget {
    pub fn socket_path(&self) -> Result<PathBuf, baton_config::ConfigError> {
        match &self.socket {
            Some(path) => Ok(path.clone()),
            None => Ok(baton_config::load(&self.config)?.stats_socket()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_bench_file_prefix_is_one_plain_name() {
        assert!(file_prefix("baton-bench_1").is_ok());
        for bad in ["", "../x", "a/b", "a b", &"x".repeat(49)] {
            assert!(file_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
