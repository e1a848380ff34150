//! Log set-up: `RUST_LOG` wins; otherwise the config's `node.log_level`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// DPDK's own informational lines are noise at `info`; its warnings are not.
const DPDK_DEFAULT: &str = "dpdk=warn";

pub fn init(config_level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{config_level},{DPDK_DEFAULT}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
