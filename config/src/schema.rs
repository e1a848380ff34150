//! The configuration schema: one struct per TOML section.
//!
//! Field names are the TOML keys. Every section rejects unknown keys so a
//! typo is an error rather than a silently ignored setting. Defaults that
//! depend on other keys (the file prefix and stats socket follow
//! `node.name`) are `Option`s here; [`crate::parse`] fills them in, so a
//! loaded `Config` has every value resolved.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::cluster::{ClusterConfig, HandoffConfig, PreloadConfig};
use crate::pci::PciAddress;

/// Where the virtio-user host port finds the kernel's vhost-net device.
pub const DEFAULT_VHOST_PATH: &str = "/dev/vhost-net";

/// A whole Baton node configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    #[serde(default)]
    pub dpdk: DpdkConfig,
    pub lcores: LcoreConfig,
    pub wire: WireConfig,
    #[serde(default)]
    pub host: HostConfig,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub stats: StatsConfig,
    /// The Prometheus metrics endpoint; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsConfig>,
    /// The other nodes and the control channel to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
    /// The services Baton manages and the rules that place their requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffConfig>,
    /// Synthetic handed-off flows for load tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preload: Option<PreloadConfig>,
}

impl Config {
    /// The EAL `--file-prefix`: `dpdk.file_prefix`, or `baton-<node.name>`.
    /// Two Baton instances on one machine need different prefixes.
    pub fn file_prefix(&self) -> String {
        match &self.dpdk.file_prefix {
            Some(prefix) => prefix.clone(),
            None => format!("baton-{}", self.node.name),
        }
    }

    /// The interfaces behind the ports when every port is an af_packet
    /// one (the wire's `iface=`, the host's veth end): where a frame can
    /// wake a sleeping worker. `None` when a port is of another kind.
    pub fn af_packet_interfaces(&self) -> Option<Vec<String>> {
        Some(vec![
            self.wire_af_packet_interface()?.to_owned(),
            self.host_af_packet_interface()?,
        ])
    }

    /// The wire port's interface when it is an af_packet vdev (`iface=`).
    pub fn wire_af_packet_interface(&self) -> Option<&str> {
        let WirePort::Vdev(spec) = &self.wire.port else {
            return None;
        };
        if !vdev_name(spec).starts_with("net_af_packet") {
            return None;
        }
        spec.split(',')
            .skip(1)
            .find_map(|arg| arg.strip_prefix("iface="))
    }

    /// The host port's interface (Baton's end of the veth pair) when it is
    /// an af_packet one.
    pub fn host_af_packet_interface(&self) -> Option<String> {
        (self.host.kind == HostPortKind::AfPacket).then(|| self.host.veth_peer())
    }

    /// Whether frames wake sleeping workers: `poll.wake` resolved.
    pub fn wakes_on_packets(&self) -> bool {
        self.poll.idle == IdleMode::Sleep
            && match self.poll.wake {
                WakeMode::Timer => false,
                WakeMode::Packets | WakeMode::Auto => self.af_packet_interfaces().is_some(),
            }
    }

    /// The stats socket: `stats.socket`, or `/run/baton/<node.name>.sock`.
    pub fn stats_socket(&self) -> PathBuf {
        match &self.stats.socket {
            Some(path) => path.clone(),
            None => PathBuf::from(format!("/run/baton/{}.sock", self.node.name)),
        }
    }

    /// Writes the defaults that depend on other keys into the config.
    pub(crate) fn resolve_defaults(&mut self) {
        self.dpdk.file_prefix = Some(self.file_prefix());
        self.stats.socket = Some(self.stats_socket());
        if self.host.kind == HostPortKind::VirtioUser && self.host.vhost_path.is_none() {
            self.host.vhost_path = Some(PathBuf::from(DEFAULT_VHOST_PATH));
        }
    }

    /// The resolved configuration as TOML, every default written out.
    /// Parsing it again gives an equal `Config`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("every config value has a TOML form")
    }
}

/// `[node]`: who this node is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Names the node in logs and stats, and in the default file prefix
    /// and socket path. `[A-Za-z0-9_-]{1,32}`.
    pub name: String,
    /// Log level when `RUST_LOG` is not set.
    #[serde(default)]
    pub log_level: LogLevel,
}

/// Log verbosity, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name `tracing` filters and `RUST_LOG` use.
    pub fn as_str(&self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[dpdk]`: how the DPDK environment (EAL) is set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpdkConfig {
    /// EAL `--file-prefix`; `None` means `baton-<node.name>`. Use
    /// [`Config::file_prefix`] for the resolved value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_prefix: Option<String>,
    /// `false` runs without hugepages (EAL `--no-huge`): fine for tests and
    /// demos, slower on real traffic.
    #[serde(default = "default_hugepages")]
    pub hugepages: bool,
    /// Memory EAL reserves at start-up (EAL `-m`), in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Packet buffers in the mempool. 2^n - 1 uses memory best.
    #[serde(default = "default_mbufs")]
    pub mbufs: u32,
    /// Per-lcore mempool cache.
    #[serde(default = "default_mbuf_cache")]
    pub mbuf_cache: u32,
    /// Further EAL arguments, passed after Baton's own.
    #[serde(default)]
    pub extra_eal_args: Vec<String>,
}

fn default_hugepages() -> bool {
    true
}

fn default_memory_mb() -> u32 {
    512
}

fn default_mbufs() -> u32 {
    8191
}

fn default_mbuf_cache() -> u32 {
    256
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            file_prefix: None,
            hugepages: default_hugepages(),
            memory_mb: default_memory_mb(),
            mbufs: default_mbufs(),
            mbuf_cache: default_mbuf_cache(),
            extra_eal_args: Vec::new(),
        }
    }
}

/// `[lcores]`: which CPU cores (DPDK lcores) Baton runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LcoreConfig {
    /// The control lcore (EAL main lcore): peer channels, timers, stats.
    #[serde(default)]
    pub control: u32,
    /// One worker per RX/TX queue pair; each polls the ports.
    pub workers: Vec<u32>,
    /// The CPU each worker lcore runs on, when not the CPU of the same
    /// number: lets a small machine run more workers than it has cores
    /// (tests), or pins workers to chosen cores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u32>,
}

impl LcoreConfig {
    /// Every lcore Baton uses, control first, as an EAL `-l` list (`0,1,2`),
    /// or, with `cpus`, an EAL `--lcores` map (`0@0,1@1,2@0`).
    pub fn eal_list(&self) -> String {
        let control = std::iter::once((self.control, self.control));
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, &lcore)| (lcore, self.cpus.get(i).copied().unwrap_or(lcore)));
        control
            .chain(workers)
            .map(|(lcore, cpu)| {
                if self.cpus.is_empty() {
                    lcore.to_string()
                } else {
                    format!("{lcore}@{cpu}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The EAL option that takes [`LcoreConfig::eal_list`].
    pub fn eal_option(&self) -> &'static str {
        if self.cpus.is_empty() {
            "-l"
        } else {
            "--lcores"
        }
    }
}

/// `[wire]`: the NIC Baton owns, facing the cluster LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWireConfig", into = "RawWireConfig")]
pub struct WireConfig {
    pub port: WirePort,
    /// RX descriptors per queue: a power of two, 64 to 16384.
    pub rx_desc: u16,
    /// TX descriptors per queue: a power of two, 64 to 16384.
    pub tx_desc: u16,
}

impl WireConfig {
    /// The DPDK ethdev name of the wire port (see [`WirePort::dpdk_name`]).
    pub fn dpdk_name(&self) -> String {
        self.port.dpdk_name()
    }
}

/// How DPDK reaches the wire NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WirePort {
    /// A PCI NIC bound to vfio-pci (EAL `-a`).
    Pci(PciAddress),
    /// A virtual device spec, e.g. `net_af_packet0,iface=wire0` (EAL `--vdev`).
    Vdev(String),
}

impl WirePort {
    /// The name DPDK gives the ethdev: the normalised PCI address, or the
    /// vdev's name (the spec up to its first comma).
    pub fn dpdk_name(&self) -> String {
        match self {
            WirePort::Pci(pci) => pci.to_string(),
            WirePort::Vdev(spec) => vdev_name(spec).to_owned(),
        }
    }
}

/// The device name of a vdev spec: everything before the first comma.
pub(crate) fn vdev_name(spec: &str) -> &str {
    spec.split_once(',').map_or(spec, |(name, _)| name)
}

/// `[wire]` as written: `pci` and `vdev` are alternatives, which the
/// validator checks (with positions) before this conversion runs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWireConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pci: Option<PciAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vdev: Option<String>,
    #[serde(default = "default_desc")]
    rx_desc: u16,
    #[serde(default = "default_desc")]
    tx_desc: u16,
}

fn default_desc() -> u16 {
    1024
}

impl TryFrom<RawWireConfig> for WireConfig {
    type Error = String;

    fn try_from(raw: RawWireConfig) -> Result<Self, String> {
        let port = match (raw.pci, raw.vdev) {
            (Some(pci), None) => WirePort::Pci(pci),
            (None, Some(vdev)) => WirePort::Vdev(vdev),
            (Some(_), Some(_)) => return Err(WIRE_BOTH.to_owned()),
            (None, None) => return Err(WIRE_NEITHER.to_owned()),
        };
        Ok(WireConfig {
            port,
            rx_desc: raw.rx_desc,
            tx_desc: raw.tx_desc,
        })
    }
}

pub(crate) const WIRE_BOTH: &str =
    "set only one of `pci` (a NIC bound to vfio-pci) or `vdev` (a DPDK virtual device)";
pub(crate) const WIRE_NEITHER: &str =
    "missing key `pci` or `vdev`: say which NIC Baton owns, e.g. pci = \"0000:3b:00.0\"";

impl From<WireConfig> for RawWireConfig {
    fn from(wire: WireConfig) -> Self {
        let (pci, vdev) = match wire.port {
            WirePort::Pci(pci) => (Some(pci), None),
            WirePort::Vdev(vdev) => (None, Some(vdev)),
        };
        RawWireConfig {
            pci,
            vdev,
            rx_desc: wire.rx_desc,
            tx_desc: wire.tx_desc,
        }
    }
}

/// `[host]`: the port the host kernel sees as its NIC; traffic Baton does
/// not handle passes between it and the wire port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub kind: HostPortKind,
    /// The kernel interface name (at most 15 characters).
    #[serde(default = "default_host_name")]
    pub name: String,
    /// When set, Baton gives the interface this address and brings it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Cidr>,
    /// virtio-user only: the vhost-net device; resolved to
    /// `/dev/vhost-net` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost_path: Option<PathBuf>,
    /// `kind = "vdev"` only: the DPDK device spec of a host port that is no
    /// kernel interface (e.g. memif to a traffic generator, for load tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vdev: Option<String>,
}

/// Appended to `host.name` to name Baton's end of an af-packet host
/// port's veth pair.
pub const VETH_PEER_SUFFIX: &str = "-dp";

fn default_host_name() -> String {
    "baton0".to_owned()
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            kind: HostPortKind::default(),
            name: default_host_name(),
            address: None,
            vhost_path: None,
            vdev: None,
        }
    }
}

/// Which DPDK driver provides the host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HostPortKind {
    /// net_tap: a TAP interface. Works everywhere.
    #[default]
    #[serde(rename = "tap")]
    Tap,
    /// virtio_user over vhost-net: faster, for metal.
    #[serde(rename = "virtio-user")]
    VirtioUser,
    /// net_af_packet on one end of a veth pair whose other end, `name`, is
    /// the kernel's interface: no system call per received packet, where
    /// a TAP costs one; for VMs and test beds without vhost-net.
    #[serde(rename = "af-packet")]
    AfPacket,
    /// Any DPDK virtual device (`host.vdev`), with no kernel behind it: a
    /// traffic generator on the host side, for load tests.
    #[serde(rename = "vdev")]
    Vdev,
}

impl HostConfig {
    /// The ethdev name of the host port: `net_tap0`, `virtio_user0`, or the
    /// name part of `host.vdev`.
    pub fn dpdk_name(&self) -> String {
        match self.kind {
            HostPortKind::Tap => "net_tap0".into(),
            HostPortKind::VirtioUser => "virtio_user0".into(),
            HostPortKind::AfPacket => "net_af_packet_host".into(),
            HostPortKind::Vdev => vdev_name(self.vdev.as_deref().unwrap_or_default()).to_owned(),
        }
    }

    /// Whether the host port is a kernel interface (named `host.name`).
    pub fn is_kernel_interface(&self) -> bool {
        self.kind != HostPortKind::Vdev
    }

    /// With `kind = "af-packet"`: Baton's end of the veth pair, which the
    /// kernel does not use (the kernel's end is `name`).
    pub fn veth_peer(&self) -> String {
        format!("{}{VETH_PEER_SUFFIX}", self.name)
    }

    /// The EAL `--vdev` spec that creates the host port. `queues` is the
    /// number of queue pairs (one per worker); net_tap sizes its queues
    /// from the ethdev configuration instead.
    pub fn vdev_spec(&self, queues: usize) -> String {
        match self.kind {
            HostPortKind::Tap => format!("{},iface={}", self.dpdk_name(), self.name),
            HostPortKind::Vdev => self.vdev.clone().unwrap_or_default(),
            HostPortKind::AfPacket => format!(
                "{},iface={},qpairs={queues},qdisc_bypass=1",
                self.dpdk_name(),
                self.veth_peer()
            ),
            HostPortKind::VirtioUser => {
                let path = self
                    .vhost_path
                    .as_deref()
                    .unwrap_or(Path::new(DEFAULT_VHOST_PATH));
                format!(
                    "{},path={},queues={queues},queue_size=1024,iface={}",
                    self.dpdk_name(),
                    path.display(),
                    self.name
                )
            }
        }
    }
}

/// `[poll]`: how workers poll their queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    #[serde(default)]
    pub idle: IdleMode,
    /// With `idle = "sleep"`: the longest sleep between empty polls, in µs.
    #[serde(default = "default_idle_sleep_max_us")]
    pub idle_sleep_max_us: u32,
    /// With `idle = "sleep"`: what ends a sleep early besides a message
    /// from the control lcore.
    #[serde(default)]
    pub wake: WakeMode,
    /// Packets per RX/TX burst, at most 64.
    #[serde(default = "default_burst")]
    pub burst: u16,
}

fn default_idle_sleep_max_us() -> u32 {
    200
}

fn default_burst() -> u16 {
    32
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            idle: IdleMode::default(),
            idle_sleep_max_us: default_idle_sleep_max_us(),
            wake: WakeMode::default(),
            burst: default_burst(),
        }
    }
}

/// What a worker does when its queues are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    /// Keep polling: lowest latency, one full core per worker.
    #[default]
    Busy,
    /// Back off to short sleeps: for machines shared with other work.
    Sleep,
}

/// What wakes a sleeping worker before its sleep ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WakeMode {
    /// `packets` where every port can wake a worker (af_packet ports:
    /// the wire as `net_af_packet…,iface=…`, the host as `af-packet`),
    /// else `timer`.
    #[default]
    Auto,
    /// A frame arriving on a port: each worker watches the ports'
    /// interfaces with sockets of its own (af_packet ports only).
    Packets,
    /// Only the end of the sleep: a frame waits for it.
    Timer,
}

/// `[stats]`: where `baton stats` finds the running instance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    /// Unix socket path; `None` means `/run/baton/<node.name>.sock`. Use
    /// [`Config::stats_socket`] for the resolved value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

/// `[metrics]`: the Prometheus metrics endpoint (`GET /metrics`), served
/// by the control lcore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where it listens, `"ADDR:PORT"`: an address of this node's kernel
    /// (`host.address`, `127.0.0.1`) or `0.0.0.0`.
    pub listen: std::net::SocketAddr,
}
