//! Checks of the `[cluster]` and `[handoff]` sections.

use std::collections::HashSet;

use crate::cluster::{ClusterConfig, HandoffConfig};
use crate::schema::Config;
use crate::spans::KeyPath;
use crate::validate::{check_absolute, check_name, check_range, invalid, Check};

/// The most peers a node takes (a flow names its peer in 16 bits; far more
/// than any policy's pools spread well over).
pub const MAX_PEERS: usize = 1024;

pub(crate) fn check_cluster(config: &Config) -> Check {
    let Some(cluster) = &config.cluster else {
        return Ok(());
    };
    let path = KeyPath::dotted("cluster");
    let Some(own) = config.host.address.map(|c| c.addr()) else {
        return Err(invalid(
            path,
            "a cluster node needs `host.address`: peers reach its control channel there, and handed-off requests are replayed to it",
        ));
    };
    check_absolute(
        path.clone().key("psk_file"),
        &cluster.psk_file,
        "/etc/baton/cluster.key",
    )?;
    if cluster.control_port == 0 {
        return Err(invalid(
            path.key("control_port"),
            "port 0 cannot be listened on",
        ));
    }
    check_range(
        path.clone().key("heartbeat_ms"),
        cluster.heartbeat_ms,
        10,
        60_000,
    )?;
    if cluster.suspect_after_ms < 2 * cluster.heartbeat_ms {
        return Err(invalid(
            path.key("suspect_after_ms"),
            format!(
                "{} ms is less than two heartbeats ({} ms): one late heartbeat would make a peer suspect",
                cluster.suspect_after_ms,
                2 * cluster.heartbeat_ms
            ),
        ));
    }
    if cluster.dead_after_ms <= cluster.suspect_after_ms {
        return Err(invalid(
            path.key("dead_after_ms"),
            format!(
                "{} ms is not more than `suspect_after_ms` ({} ms): a peer must be suspect (no new handoffs) before it is declared dead (its handed-off connections reset)",
                cluster.dead_after_ms, cluster.suspect_after_ms
            ),
        ));
    }
    check_peers(config, cluster, own)
}

fn check_peers(config: &Config, cluster: &ClusterConfig, own: std::net::Ipv4Addr) -> Check {
    let path = KeyPath::dotted("cluster.peers");
    if cluster.peers.is_empty() {
        return Err(invalid(path, "list at least one peer node"));
    }
    if cluster.peers.len() > MAX_PEERS {
        return Err(invalid(
            path,
            format!(
                "{} peers; a cluster node takes at most {MAX_PEERS}",
                cluster.peers.len()
            ),
        ));
    }
    let (mut names, mut addrs, mut macs) = (HashSet::new(), HashSet::new(), HashSet::new());
    for (i, peer) in cluster.peers.iter().enumerate() {
        let at = path.clone().index(i);
        check_name(at.clone().key("name"), &peer.name, 32, "_-", "peer name")?;
        if peer.name == config.node.name {
            return Err(invalid(
                at.key("name"),
                format!(
                    "`{}` is this node's own name; list only the other nodes",
                    peer.name
                ),
            ));
        }
        if !names.insert(&peer.name) {
            return Err(invalid(
                at.key("name"),
                format!("peer `{}` is listed twice", peer.name),
            ));
        }
        if peer.address == own {
            return Err(invalid(
                at.key("address"),
                format!("{own} is this node's own `host.address`"),
            ));
        }
        if !addrs.insert(peer.address) {
            return Err(invalid(
                at.key("address"),
                format!("{} is already another peer's address", peer.address),
            ));
        }
        if let Some(mac) = peer.mac.filter(|&mac| !macs.insert(mac)) {
            return Err(invalid(
                at.key("mac"),
                format!("{mac} is already another peer's MAC"),
            ));
        }
    }
    if let Some(vip) = cluster.vip {
        if vip == own || addrs.contains(&vip) {
            return Err(invalid(
                KeyPath::dotted("cluster.vip"),
                format!("{vip} is a node's own address; the VIP must be an address of its own"),
            ));
        }
    }
    match config.host.address {
        Some(host) => check_handoff_net(cluster, host, &addrs),
        None => Ok(()),
    }
}

/// The handoff network maps a peer's address to its handoff address by
/// host part, so it has the host network's prefix length, lies outside it,
/// and holds no address a client may connect to; and every peer is on the
/// host network, or its handoff address would stand for another.
fn check_handoff_net(
    cluster: &ClusterConfig,
    host: crate::cidr::Ipv4Cidr,
    addrs: &HashSet<std::net::Ipv4Addr>,
) -> Check {
    let Some(net) = cluster.handoff_net else {
        return Ok(());
    };
    let at = KeyPath::dotted("cluster.handoff_net");
    if net.prefix_len() != host.prefix_len() {
        return Err(invalid(
            at,
            format!(
                "/{} is not the prefix length of `host.address` ({host}): a peer's handoff address keeps its host part",
                net.prefix_len()
            ),
        ));
    }
    if net.network() == host.network() {
        return Err(invalid(
            at,
            format!(
                "{net} is the host network itself; give a network of its own, e.g. one beside it"
            ),
        ));
    }
    let in_net =
        |a: std::net::Ipv4Addr| u32::from(a) & u32::from(net.netmask()) == u32::from(net.network());
    if let Some(vip) = cluster.vip.filter(|&v| in_net(v)) {
        return Err(invalid(at, format!("{net} holds the cluster VIP {vip}")));
    }
    let host_net = |a: std::net::Ipv4Addr| {
        u32::from(a) & u32::from(host.netmask()) == u32::from(host.network())
    };
    for (i, peer) in cluster.peers.iter().enumerate() {
        if !host_net(peer.address) {
            return Err(invalid(
                KeyPath::dotted("cluster.peers").index(i).key("address"),
                format!(
                    "{} is outside the host network {}/{}: with `cluster.handoff_net`, every node is on one network",
                    peer.address,
                    host.network(),
                    host.prefix_len()
                ),
            ));
        }
    }
    debug_assert!(addrs.iter().all(|&a| !in_net(a)));
    Ok(())
}

pub(crate) fn check_handoff(config: &Config) -> Check {
    let Some(handoff) = &config.handoff else {
        return Ok(());
    };
    let path = KeyPath::dotted("handoff");
    let Some(cluster) = &config.cluster else {
        return Err(invalid(
            path,
            "handing off needs peers: add a `[cluster]` section",
        ));
    };
    check_services(handoff, cluster)?;
    check_range(
        path.clone().key("hold_bytes"),
        handoff.hold_bytes,
        1,
        65_536,
    )?;
    check_range(
        path.clone().key("hold_segments"),
        handoff.hold_segments,
        1,
        64,
    )?;
    check_range(
        path.clone().key("hold_timeout_ms"),
        handoff.hold_timeout_ms,
        1,
        10_000,
    )?;
    check_range(
        path.clone().key("handoff_timeout_ms"),
        handoff.handoff_timeout_ms,
        1,
        10_000,
    )?;
    check_range(path.clone().key("linger_ms"), handoff.linger_ms, 0, 120_000)?;
    check_range(
        path.clone().key("orphan_timeout_ms"),
        handoff.orphan_timeout_ms,
        1_000,
        3_600_000,
    )?;
    check_range(
        path.clone().key("idle_timeout_s"),
        handoff.idle_timeout_s,
        1,
        86_400,
    )?;
    check_range(
        path.clone().key("max_flows"),
        handoff.max_flows,
        16,
        100_000_000,
    )?;
    check_range(
        path.clone().key("half_open"),
        handoff.half_open,
        16,
        10_000_000,
    )?;
    check_range(
        path.clone().key("half_open_ms"),
        handoff.half_open_ms,
        100,
        60_000,
    )?;
    check_pools(config, handoff, cluster)?;
    check_rules(handoff)?;
    crate::policy::check(handoff, &config.node.name)
}

fn check_services(handoff: &HandoffConfig, cluster: &ClusterConfig) -> Check {
    let path = KeyPath::dotted("handoff.services");
    if handoff.services.is_empty() {
        return Err(invalid(
            path,
            "list the services to manage, e.g. [{ port = 80, kind = \"http\" }]",
        ));
    }
    let mut ports = HashSet::new();
    for (i, service) in handoff.services.iter().enumerate() {
        let at = path.clone().index(i).key("port");
        if service.port == 0 {
            return Err(invalid(at, "port 0 is not a service port"));
        }
        if service.port == cluster.control_port {
            return Err(invalid(
                at,
                format!("{} is `cluster.control_port`", service.port),
            ));
        }
        if !ports.insert(service.port) {
            return Err(invalid(
                at,
                format!("port {} is listed twice", service.port),
            ));
        }
    }
    Ok(())
}

fn check_pools(config: &Config, handoff: &HandoffConfig, cluster: &ClusterConfig) -> Check {
    let path = KeyPath::dotted("handoff.pools");
    let known: HashSet<&str> = std::iter::once(config.node.name.as_str())
        .chain(cluster.peers.iter().map(|p| p.name.as_str()))
        .collect();
    let mut names = HashSet::new();
    for (i, pool) in handoff.pools.iter().enumerate() {
        let at = path.clone().index(i);
        check_name(at.clone().key("name"), &pool.name, 32, "_-", "pool name")?;
        if !names.insert(&pool.name) {
            return Err(invalid(
                at.key("name"),
                format!("pool `{}` is defined twice", pool.name),
            ));
        }
        if pool.nodes.is_empty() {
            return Err(invalid(at.key("nodes"), "a pool needs at least one node"));
        }
        let mut members = HashSet::new();
        for (j, node) in pool.nodes.iter().enumerate() {
            if !known.contains(node.as_str()) {
                return Err(invalid(
                    at.key("nodes").index(j),
                    format!("no node `{node}`: use `node.name` or a name from `cluster.peers`"),
                ));
            }
            if !members.insert(node) {
                return Err(invalid(
                    at.key("nodes").index(j),
                    format!("`{node}` is listed twice"),
                ));
            }
        }
    }
    Ok(())
}

/// What the config itself asks of a rule; the policy checks the rest
/// (see `policy`).
fn check_rules(handoff: &HandoffConfig) -> Check {
    let path = KeyPath::dotted("handoff.rules");
    for (i, rule) in handoff.rules.iter().enumerate() {
        if !handoff.pools.iter().any(|p| p.name == rule.pool) {
            return Err(invalid(
                path.clone().index(i).key("pool"),
                format!("no pool `{}` in `handoff.pools`", rule.pool),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_preload(config: &Config) -> Check {
    let Some(preload) = &config.preload else {
        return Ok(());
    };
    let (Some(cluster), Some(_)) = (&config.cluster, &config.handoff) else {
        return Err(invalid(
            KeyPath::dotted("preload"),
            "preloaded flows belong to a cluster node: add `[cluster]` and `[handoff]`",
        ));
    };
    for (name, flows) in [
        ("handed_in", &preload.handed_in),
        ("forwarding", &preload.forwarding),
    ] {
        let Some(flows) = flows else { continue };
        let at = KeyPath::dotted("preload").key(name);
        check_range(at.clone().key("flows"), flows.flows, 1, 10_000_000)?;
        if !cluster.peers.iter().any(|p| p.name == flows.peer) {
            return Err(invalid(
                at.key("peer"),
                format!("no peer `{}` in `cluster.peers`", flows.peer),
            ));
        }
        if flows.ports_per_client == 0
            || u32::from(flows.first_port) + u32::from(flows.ports_per_client) > 65_536
        {
            return Err(invalid(
                at.key("ports_per_client"),
                "`first_port` + `ports_per_client` must stay within 1..=65535",
            ));
        }
        check_range(at.key("wscale"), flows.wscale, 0, 14)?;
    }
    Ok(())
}
