//! Baton's configuration: the TOML schema, validation with precise errors,
//! and the resolved values the rest of Baton runs on.
//!
//! ```no_run
//! let config = baton_config::load(std::path::Path::new("/etc/baton/node1.toml"))?;
//! println!("{}", config.to_toml());
//! # Ok::<(), baton_config::ConfigError>(())
//! ```
//!
//! Every error is one line naming the file, line, column and key:
//! `node1.toml:14:15: \`lcores.workers\`: lcore 0 is already the control lcore`.
#![forbid(unsafe_code)]

mod cidr;
mod cluster;
mod eal;
mod error;
pub mod mac;
mod parse;
mod pci;
mod policy;
mod reload;
mod schema;
mod spans;
mod validate;
mod validate_cluster;
mod value_serde;

use std::path::Path;

pub use cidr::Ipv4Cidr;
pub use cluster::{
    ClusterConfig, HandoffConfig, PeerConfig, PoolConfig, PreloadConfig, PreloadFlows, RuleConfig,
    ServiceConfig, ServiceKind, Strategy,
};
pub use error::{ConfigError, ValueError};
pub use mac::MacAddr;
pub use pci::PciAddress;
pub use policy::rules_and_pools;
pub use reload::{Changes, RELOADABLE};
pub use schema::{
    Config, DpdkConfig, HostConfig, HostPortKind, IdleMode, LcoreConfig, LogLevel, MetricsConfig,
    NodeConfig, PollConfig, StatsConfig, WakeMode, WireConfig, WirePort, DEFAULT_VHOST_PATH,
};

/// Reads, parses and validates the config file at `path`. Messages name
/// the file as `path` is written.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::unreadable(&origin, &e))?;
    parse(&text, &origin)
}

/// Parses and validates config text; `origin` names it in messages
/// (usually the file name). The result has every default filled in.
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse::parse(text, origin)
}
