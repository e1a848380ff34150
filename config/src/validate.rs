//! Checks serde cannot express: ranges, formats, and rules that relate
//! keys to each other. Each failure names the key path it is about; the
//! caller turns that into a line and column.

use std::collections::HashSet;
use std::path::Path;

use crate::eal;
use crate::schema::{
    vdev_name, Config, DpdkConfig, HostConfig, HostPortKind, LcoreConfig, NodeConfig, StatsConfig,
    WakeMode, WireConfig, WirePort, VETH_PEER_SUFFIX, WIRE_BOTH, WIRE_NEITHER,
};
use crate::spans::{KeyPath, Kind, SpanIndex};

/// The top-level sections, each a single table.
const SECTIONS: [&str; 11] = [
    "node", "dpdk", "lcores", "wire", "host", "poll", "stats", "metrics", "cluster", "handoff",
    "preload",
];

/// The first problem found, and the key it is about.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub(crate) path: KeyPath,
    pub(crate) message: String,
}

pub(crate) type Check = Result<(), Invalid>;

pub(crate) fn invalid(path: KeyPath, message: impl Into<String>) -> Invalid {
    Invalid {
        path,
        message: message.into(),
    }
}

/// EAL's default `RTE_MAX_LCORE`: lcore ids are below this.
pub(crate) const MAX_LCORES: u32 = 128;
/// `RTE_MEMPOOL_CACHE_MAX_SIZE`.
const MAX_MBUF_CACHE: u32 = 512;
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// `IFNAMSIZ` less the NUL.
const MAX_IFNAME: usize = 15;

/// Checks on the document itself, before it is deserialised: here the
/// error can point at the offending key rather than the whole table.
pub(crate) fn check_document(index: &SpanIndex) -> Check {
    for section in SECTIONS {
        let path = KeyPath::dotted(section);
        if index.kind(&path) == Some(Kind::ArrayOfTables) {
            return Err(invalid(
                path,
                format!("`[[{section}]]` makes a list of tables; write `[{section}]` (one pair of brackets)"),
            ));
        }
    }
    let wire = KeyPath::dotted("wire");
    if !index.is_table(&wire) {
        return Ok(());
    }
    let pci = wire.clone().key("pci");
    let vdev = wire.clone().key("vdev");
    match (index.contains(&pci), index.contains(&vdev)) {
        // Point at whichever was written second: that is the one to question.
        (true, true) if index.key_offset_of(&pci) > index.key_offset_of(&vdev) => {
            Err(invalid(pci, WIRE_BOTH))
        }
        (true, true) => Err(invalid(vdev, WIRE_BOTH)),
        (false, false) => Err(invalid(wire, WIRE_NEITHER)),
        _ => Ok(()),
    }
}

/// Checks the deserialised config, before defaults are resolved (so an
/// explicit value can be told apart from a default).
pub(crate) fn check(config: &Config) -> Check {
    check_node(&config.node)?;
    check_dpdk(&config.dpdk)?;
    check_lcores(&config.lcores)?;
    check_wire(&config.wire, &config.host)?;
    check_host(&config.host)?;
    check_poll(config)?;
    check_stats(&config.stats)?;
    check_metrics(config)?;
    crate::validate_cluster::check_cluster(config)?;
    crate::validate_cluster::check_handoff(config)?;
    crate::validate_cluster::check_preload(config)
}

/// A name made of ASCII letters, digits and `extra`, 1 to `max` long.
pub(crate) fn check_name(path: KeyPath, value: &str, max: usize, extra: &str, what: &str) -> Check {
    let allowed = |c: char| c.is_ascii_alphanumeric() || extra.contains(c);
    let chars = format!("letters, digits and {}", spaced(extra));
    if value.is_empty() {
        return Err(invalid(path, format!("{what} must not be empty")));
    }
    if let Some(bad) = value.chars().find(|&c| !allowed(c)) {
        return Err(invalid(
            path,
            format!("{what} `{value}` contains {bad:?}; use only {chars}"),
        ));
    }
    let len = value.chars().count();
    if len > max {
        return Err(invalid(
            path,
            format!("{what} `{value}` is {len} characters long; at most {max} are allowed"),
        ));
    }
    Ok(())
}

/// `"_-"` → "`_` `-`".
fn spaced(chars: &str) -> String {
    chars
        .chars()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn check_range<T>(path: KeyPath, value: T, min: T, max: T) -> Check
where
    T: PartialOrd + std::fmt::Display,
{
    if value < min || value > max {
        return Err(invalid(
            path,
            format!("{value} is out of range: must be from {min} to {max}"),
        ));
    }
    Ok(())
}

fn check_node(node: &NodeConfig) -> Check {
    check_name(
        KeyPath::dotted("node.name"),
        &node.name,
        32,
        "_-",
        "node name",
    )
}

fn check_dpdk(dpdk: &DpdkConfig) -> Check {
    let path = KeyPath::dotted("dpdk");
    if let Some(prefix) = &dpdk.file_prefix {
        check_name(
            path.clone().key("file_prefix"),
            prefix,
            48,
            "_-",
            "file prefix",
        )?;
    }
    check_range(path.clone().key("memory_mb"), dpdk.memory_mb, 64, 1_048_576)?;
    check_range(path.clone().key("mbufs"), dpdk.mbufs, 1023, 16_777_215)?;
    let cache = path.clone().key("mbuf_cache");
    if dpdk.mbuf_cache > MAX_MBUF_CACHE {
        return Err(invalid(
            cache,
            format!(
                "{} is more than DPDK's per-lcore cache limit of {MAX_MBUF_CACHE}",
                dpdk.mbuf_cache
            ),
        ));
    }
    // DPDK's rule: cache size * 1.5 must not exceed the pool size. The
    // ranges above already imply it; checked anyway so it holds if they change.
    let max_cache = u64::from(dpdk.mbufs) * 2 / 3;
    if u64::from(dpdk.mbuf_cache) > max_cache {
        return Err(invalid(
            cache,
            format!(
                "{} is too large for {} mbufs: at most mbufs / 1.5 = {max_cache}",
                dpdk.mbuf_cache, dpdk.mbufs
            ),
        ));
    }
    for (i, arg) in dpdk.extra_eal_args.iter().enumerate() {
        let element = path.clone().key("extra_eal_args").index(i);
        if arg.trim().is_empty() {
            return Err(invalid(element, "empty EAL argument"));
        }
        if let Some((option, instead)) = eal::reserved(arg) {
            return Err(invalid(
                element,
                format!("`{arg}` sets `{option}`, which Baton sets itself; use {instead} instead"),
            ));
        }
    }
    Ok(())
}

fn check_lcores(lcores: &LcoreConfig) -> Check {
    let control = KeyPath::dotted("lcores.control");
    let workers = KeyPath::dotted("lcores.workers");
    if lcores.control >= MAX_LCORES {
        return Err(invalid(
            control,
            format!(
                "lcore {} is out of range: lcore ids are below {MAX_LCORES}",
                lcores.control
            ),
        ));
    }
    if lcores.workers.is_empty() {
        return Err(invalid(
            workers,
            "at least one worker lcore is needed, e.g. workers = [1]",
        ));
    }
    let mut seen = HashSet::new();
    for (i, &lcore) in lcores.workers.iter().enumerate() {
        let element = workers.clone().index(i);
        if lcore >= MAX_LCORES {
            return Err(invalid(
                element,
                format!("lcore {lcore} is out of range: lcore ids are below {MAX_LCORES}"),
            ));
        }
        if lcore == lcores.control {
            return Err(invalid(
                element,
                format!("lcore {lcore} is already the control lcore"),
            ));
        }
        if !seen.insert(lcore) {
            return Err(invalid(element, format!("lcore {lcore} is listed twice")));
        }
    }
    let cpus = KeyPath::dotted("lcores.cpus");
    if !lcores.cpus.is_empty() && lcores.cpus.len() != lcores.workers.len() {
        return Err(invalid(
            cpus,
            format!(
                "{} CPUs for {} workers: give one CPU per worker, in the same order",
                lcores.cpus.len(),
                lcores.workers.len()
            ),
        ));
    }
    for (i, &cpu) in lcores.cpus.iter().enumerate() {
        if cpu >= MAX_CPUS {
            return Err(invalid(
                cpus.clone().index(i),
                format!("CPU {cpu} is out of range: below {MAX_CPUS}"),
            ));
        }
    }
    Ok(())
}

/// EAL's `RTE_MAX_LCORE` bounds CPU numbers in `--lcores` maps too.
const MAX_CPUS: u32 = 128;

fn check_wire(wire: &WireConfig, host: &HostConfig) -> Check {
    let path = KeyPath::dotted("wire");
    if let WirePort::Vdev(spec) = &wire.port {
        check_vdev(path.clone().key("vdev"), spec, host)?;
    }
    check_descriptors(path.clone().key("rx_desc"), wire.rx_desc)?;
    check_descriptors(path.key("tx_desc"), wire.tx_desc)
}

fn check_vdev(path: KeyPath, spec: &str, host: &HostConfig) -> Check {
    let name = vdev_name(spec);
    let example = "e.g. \"net_af_packet0,iface=wire0\"";
    if !name.starts_with("net_") {
        return Err(invalid(
            path,
            format!(
                "vdev `{name}` is not a network device: its name must start with `net_`, {example}"
            ),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        return Err(invalid(
            path,
            format!("vdev name `{name}` contains {bad:?}; use only a-z, 0-9 and `_`, {example}"),
        ));
    }
    if name == host.dpdk_name() {
        return Err(invalid(
            path,
            format!("`{name}` is the host port's device name; give the wire vdev another number, e.g. net_tap1"),
        ));
    }
    if let Some((_, args)) = spec.split_once(',') {
        if let Some(bad) = args
            .split(',')
            .find(|arg| arg.trim().is_empty() || arg.contains(char::is_whitespace))
        {
            let why = if bad.trim().is_empty() {
                "an empty argument"
            } else {
                "whitespace"
            };
            return Err(invalid(
                path,
                format!(
                    "vdev `{spec}` has {why}; write arguments as key=value separated by commas"
                ),
            ));
        }
    }
    Ok(())
}

fn check_descriptors(path: KeyPath, count: u16) -> Check {
    if !(64..=16384).contains(&count) || !count.is_power_of_two() {
        return Err(invalid(
            path,
            format!("{count} descriptors: must be a power of two from 64 to 16384, e.g. 1024"),
        ));
    }
    Ok(())
}

fn check_host(host: &HostConfig) -> Check {
    let path = KeyPath::dotted("host");
    let name = path.clone().key("name");
    // An af-packet host port's veth pair also has Baton's end, named
    // after the kernel's: both must fit.
    let (max_name, what) = match host.kind {
        HostPortKind::AfPacket => (
            MAX_IFNAME - VETH_PEER_SUFFIX.len(),
            "interface name (Baton's end of the veth pair adds `-dp`)",
        ),
        _ => (MAX_IFNAME, "interface name"),
    };
    check_name(name.clone(), &host.name, max_name, "_.-", what)?;
    if host.name == "." || host.name == ".." {
        return Err(invalid(
            name,
            format!("`{}` cannot be an interface name", host.name),
        ));
    }
    if let Some(address) = &host.address {
        address
            .check_host_address()
            .map_err(|e| invalid(path.clone().key("address"), e.to_string()))?;
    }
    match (&host.vdev, host.kind) {
        (None, HostPortKind::Vdev) => {
            return Err(invalid(
                path.key("vdev"),
                "missing key `vdev`: `kind = \"vdev\"` needs the device, e.g. vdev = \"net_memif1,role=server,socket=/run/baton/host.sock\"",
            ))
        }
        (Some(_), kind) if kind != HostPortKind::Vdev => {
            return Err(invalid(
                path.key("vdev"),
                "only applies to `host.kind = \"vdev\"`: set that or remove this key",
            ))
        }
        (Some(spec), _) => check_vdev_spec(path.clone().key("vdev"), spec)?,
        (None, _) => {}
    }
    if let Some(vhost) = &host.vhost_path {
        let vhost_key = path.key("vhost_path");
        if host.kind != HostPortKind::VirtioUser {
            return Err(invalid(
                vhost_key,
                "only applies to a virtio-user host port: set `host.kind = \"virtio-user\"` or remove this key",
            ));
        }
        check_absolute(vhost_key.clone(), vhost, "/dev/vhost-net")?;
        if vhost.to_string_lossy().contains([',', ' ']) {
            return Err(invalid(
                vhost_key,
                "path contains a comma or space, which cannot be passed in a DPDK vdev argument",
            ));
        }
    }
    Ok(())
}

/// A vdev spec: `net_name[,key=value...]`.
fn check_vdev_spec(path: KeyPath, spec: &str) -> Check {
    let name = vdev_name(spec);
    let ok_name = name.starts_with("net_")
        && name.len() > 4
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok_name || spec.contains(char::is_whitespace) {
        return Err(invalid(
            path,
            format!("`{spec}` is not a DPDK vdev spec such as \"net_memif1,role=server,socket=/run/baton/host.sock\""),
        ));
    }
    Ok(())
}

pub(crate) fn check_absolute(path: KeyPath, value: &Path, example: &str) -> Check {
    if !value.is_absolute() {
        return Err(invalid(
            path,
            format!(
                "`{}` is a relative path; give an absolute one, e.g. {example}",
                value.display()
            ),
        ));
    }
    Ok(())
}

fn check_poll(config: &Config) -> Check {
    let poll = &config.poll;
    let path = KeyPath::dotted("poll");
    if poll.wake == WakeMode::Packets && config.af_packet_interfaces().is_none() {
        return Err(invalid(
            path.key("wake"),
            "\"packets\" needs af_packet ports: a wire `vdev = \"net_af_packet0,iface=…\"` \
             and `host.kind = \"af-packet\"`; use \"timer\" or \"auto\"",
        ));
    }
    check_range(
        path.clone().key("idle_sleep_max_us"),
        poll.idle_sleep_max_us,
        1,
        100_000,
    )?;
    check_range(path.key("burst"), poll.burst, 1, 64)
}

fn check_metrics(config: &Config) -> Check {
    let Some(metrics) = &config.metrics else {
        return Ok(());
    };
    let path = KeyPath::dotted("metrics.listen");
    let port = metrics.listen.port();
    if port == 0 {
        return Err(invalid(
            path,
            "port 0 is not a port to listen on; give one, e.g. 9100",
        ));
    }
    if let Some(cluster) = &config.cluster {
        if port == cluster.control_port {
            return Err(invalid(path, format!("{port} is `cluster.control_port`")));
        }
    }
    if let Some(handoff) = &config.handoff {
        if handoff.services.iter().any(|s| s.port == port) {
            return Err(invalid(
                path,
                format!(
                    "{port} is a port of `handoff.services`, whose connections Baton hands off"
                ),
            ));
        }
    }
    Ok(())
}

fn check_stats(stats: &StatsConfig) -> Check {
    let Some(socket) = &stats.socket else {
        return Ok(());
    };
    let path = KeyPath::dotted("stats.socket");
    check_absolute(path.clone(), socket, "/run/baton/node1.sock")?;
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(invalid(
            path,
            format!("path is {len} bytes long; a unix socket path holds at most {MAX_SOCKET_PATH}"),
        ));
    }
    if socket.to_string_lossy().ends_with('/') {
        return Err(invalid(
            path,
            "names a directory; give the socket's file name too",
        ));
    }
    Ok(())
}
