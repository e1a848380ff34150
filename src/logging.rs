//! Log set-up: `RUST_LOG` wins; otherwise the config's `node.log_level`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// DPDK's own informational lines are noise at `info`; its warnings are not.
const DPDK_DEFAULT: &str = "dpdk=warn";

/// Sets the level a reload gives; None with `RUST_LOG` (it wins).
type SetLevel = Box<dyn Fn(&str) + Send + Sync>;
static SET_LEVEL: OnceLock<Option<SetLevel>> = OnceLock::new();

pub fn init(config_level: &str) {
    let from_env = EnvFilter::try_from_default_env().ok();
    let env_wins = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| config_filter(config_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter_reloading();
    let handle = builder.reload_handle();
    builder.init();
    let set: Option<SetLevel> = (!env_wins).then(|| {
        Box::new(move |level: &str| {
            if let Err(e) = handle.reload(config_filter(level)) {
                tracing::warn!("log level not changed: {e}");
            }
        }) as SetLevel
    });
    let _ = SET_LEVEL.set(set);
}

/// A reload's `node.log_level`, unless `RUST_LOG` is set.
pub fn set_level(level: &str) {
    match SET_LEVEL.get() {
        Some(Some(set)) => set(level),
        _ => tracing::info!("log level {level} not applied: RUST_LOG is set, and wins"),
    }
}

fn config_filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!("{level},{DPDK_DEFAULT}"))
}
