//! The appliance's parts, built from the config: each library takes its
//! own types, and this is where the config's are turned into them.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use baton_config::{ClusterConfig, Config, HandoffConfig};
use baton_control::peers::{ChannelConfig, PeerConfig};
use baton_control::psk::read_psk;
use baton_fastpath::engine::{EngineConfig, HandoffNet, KernelAddrs, PeerInfo};
use baton_fastpath::packet::{MacAddr, SeqDelta, TsOffset};
use baton_fastpath::peer_mac::PeerMac;
use baton_handoff::placement::PolicyPlacer;
use baton_handoff::workers::Limits;

/// Builds every part `baton run` builds from `cfg` that needs no device:
/// the engine's configuration and the placement policy. `baton check` does,
/// so that a config it accepts is one `run` can start with.
pub fn build_all(cfg: &Config) -> Result<()> {
    if let (Some(cluster), Some(handoff)) = (&cfg.cluster, &cfg.handoff) {
        // The wire port's MAC is only known once DPDK has the port.
        engine_config(cfg, cluster, handoff, [0x02, 0, 0, 0, 0, 0])?;
        placer(cfg, cluster, handoff)?;
    }
    Ok(())
}

/// The handoff engine's configuration, for a node whose wire port has
/// `own_mac`.
pub fn engine_config(
    cfg: &Config,
    cluster: &ClusterConfig,
    handoff: &HandoffConfig,
    own_mac: [u8; 6],
) -> Result<EngineConfig> {
    let Some(own) = cfg.host.address else {
        bail!("a cluster node needs `host.address`");
    };
    let ms = |v: u32| Duration::from_millis(v.into());
    let limits = limits(handoff);
    Ok(EngineConfig {
        worker: 0,
        workers: cfg.lcores.workers.len(),
        own_addr: own.addr(),
        own_mac: MacAddr(own_mac),
        vip: cluster.vip,
        handoff_net: cluster.handoff_net.map(|net| HandoffNet {
            network: net.network(),
            host_mask: !u32::from(net.netmask()),
        }),
        services: handoff
            .services
            .iter()
            .map(|s| (s.port, service_kind(s.kind)))
            .collect(),
        peers: cluster
            .peers
            .iter()
            .map(|p| PeerInfo {
                name: p.name.clone(),
                mac: match p.mac {
                    Some(mac) => PeerMac::fixed(MacAddr(mac.octets())),
                    None => PeerMac::learned(p.address, cluster.control_port),
                },
            })
            .collect(),
        hold_bytes: limits.hold_bytes,
        hold_segments: limits.hold_segments,
        hold_timeout: limits.hold_timeout,
        handoff_timeout: limits.handoff_timeout,
        linger: limits.linger,
        idle_timeout: limits.idle_timeout,
        // Peers come up within a couple of heartbeats of each other, or are
        // not answering: waiting twice the silence that makes one suspect
        // is enough.
        recovery_wait: 2 * ms(cluster.suspect_after_ms),
        orphan_timeout: limits.orphan_timeout,
        max_flows: limits.max_flows,
        // Not in `limits`: the half-open table is sized at start.
        half_open: handoff.half_open as usize,
        half_open_timeout: ms(handoff.half_open_ms),
    })
}

/// The limits and timeouts of `[handoff]` (what a reload may change).
pub fn limits(handoff: &HandoffConfig) -> Limits {
    let ms = |v: u32| Duration::from_millis(v.into());
    Limits {
        hold_bytes: handoff.hold_bytes as usize,
        hold_segments: handoff.hold_segments as usize,
        hold_timeout: ms(handoff.hold_timeout_ms),
        handoff_timeout: ms(handoff.handoff_timeout_ms),
        linger: ms(handoff.linger_ms),
        idle_timeout: Duration::from_secs(handoff.idle_timeout_s.into()),
        orphan_timeout: ms(handoff.orphan_timeout_ms),
        max_flows: handoff.max_flows as usize,
    }
}

/// The handoff addresses this node's kernel must own: every peer's, where
/// the connections it hands here are replayed (none without
/// `cluster.handoff_net`).
pub fn handoff_addresses(engine: &EngineConfig, cluster: &ClusterConfig) -> Vec<Ipv4Addr> {
    if engine.handoff_net.is_none() {
        return Vec::new();
    }
    let addrs = KernelAddrs::new(engine);
    cluster
        .peers
        .iter()
        .map(|p| addrs.kernel_of(p.address))
        .collect()
}

fn service_kind(kind: baton_config::ServiceKind) -> baton_handoff::ServiceKind {
    match kind {
        baton_config::ServiceKind::Http => baton_handoff::ServiceKind::Http,
        baton_config::ServiceKind::Tls => baton_handoff::ServiceKind::Tls,
    }
}

/// The classifier and selection policy of `[handoff]`, for one worker.
pub fn placer(
    cfg: &Config,
    cluster: &ClusterConfig,
    handoff: &HandoffConfig,
) -> Result<PolicyPlacer> {
    let peers = cluster.peers.iter().map(|p| p.name.clone()).collect();
    placer_over(cfg, handoff, peers)
}

/// The same over `peers`, the workers' peer names by index (after a
/// reload, removed peers stay in their places).
pub fn placer_over(
    cfg: &Config,
    handoff: &HandoffConfig,
    peers: Vec<String>,
) -> Result<PolicyPlacer> {
    // The very conversion `baton check` validated (see baton_config::policy).
    let (rules, pools) = baton_config::rules_and_pools(handoff).map_err(anyhow::Error::msg)?;
    PolicyPlacer::new(rules, pools, cfg.node.name.clone(), peers).context("handoff policy")
}

/// The control channel to the peers: this node's address and the cluster
/// key, each peer at its address on the control port.
pub fn channel_config(cfg: &Config, cluster: &ClusterConfig) -> Result<ChannelConfig> {
    let own = cfg
        .host
        .address
        .map(|a| a.addr())
        .context("a cluster node needs `host.address`")?;
    let psk = read_psk(&cluster.psk_file)?;
    Ok(ChannelConfig {
        node: cfg.node.name.clone(),
        listen: SocketAddr::V4(SocketAddrV4::new(own, cluster.control_port)),
        psk,
        peers: channel_peers(cluster),
        heartbeat_interval: Duration::from_millis(cluster.heartbeat_ms.into()),
        suspect_after: Duration::from_millis(cluster.suspect_after_ms.into()),
        dead_after: Duration::from_millis(cluster.dead_after_ms.into()),
    })
}

/// Each peer at its address on the control port.
pub fn channel_peers(cluster: &ClusterConfig) -> Vec<PeerConfig> {
    cluster
        .peers
        .iter()
        .map(|p| PeerConfig {
            name: p.name.clone(),
            addr: SocketAddr::V4(SocketAddrV4::new(p.address, cluster.control_port)),
        })
        .collect()
}

/// Sets up the `[preload]` flows this worker owns (load tests only).
pub fn preload(
    engine: &mut baton_fastpath::engine::Engine,
    cfg: &Config,
    me: usize,
    workers: usize,
) {
    use baton_fastpath::engine::FlowKey;
    use baton_fastpath::packet::Translation;
    let (Some(preload), Some(cluster), Some(own)) = (&cfg.preload, &cfg.cluster, cfg.host.address)
    else {
        return;
    };
    let peer = |name: &str| {
        cluster
            .peers
            .iter()
            .position(|p| p.name == name)
            .unwrap_or(0)
    };
    let now = Instant::now();
    let mine = |addr: std::net::Ipv4Addr, port: u16| {
        baton_fastpath::steer::owner_of(u32::from(addr), port, workers) == me
    };
    let mut count = 0u64;
    if let Some(p) = &preload.handed_in {
        let origin = peer(&p.peer);
        let translation = Translation {
            seq_delta: SeqDelta::new(p.seq_delta),
            ts_offset: TsOffset::new(p.ts_offset),
            client_visible_addr: p.server,
            target_kernel_addr: own.addr(),
            wscale_kernel: p.wscale,
            wscale_origin: p.wscale,
        };
        let mac = baton_fastpath::packet::MacAddr(p.client_mac.octets());
        for i in 0..p.flows {
            let (addr, port) = p.client(i);
            if mine(addr, port) {
                let key = FlowKey::new(addr, port, p.server, p.port);
                engine.preload_handed_in(key, origin, u64::from(i), translation, mac, now);
                count += 1;
            }
        }
    }
    if let Some(p) = &preload.forwarding {
        let target = peer(&p.peer);
        let mac = baton_fastpath::packet::MacAddr(p.client_mac.octets());
        for i in 0..p.flows {
            let (addr, port) = p.client(i);
            if mine(addr, port) {
                engine.preload_forwarding(
                    FlowKey::new(addr, port, p.server, p.port),
                    target,
                    mac,
                    None,
                    now,
                );
                count += 1;
            }
        }
    }
    tracing::info!("worker {me}: {count} synthetic flows preloaded (load test mode)");
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_handoff::placement::{Placement, Placer};
    use baton_handoff::{Load, ServiceKind};

    fn config(handoff: &str) -> Config {
        let text = format!(
            r#"
[node]
name = "n1"
[lcores]
workers = [1]
[wire]
vdev = "net_af_packet0,iface=wire0"
[host]
address = "198.18.0.11/24"
[cluster]
psk_file = "/etc/baton/cluster.key"
peers = [
    {{ name = "n2", address = "198.18.0.12", mac = "02:00:00:00:00:02" }},
    {{ name = "n3", address = "198.18.0.13", mac = "02:00:00:00:00:03" }},
]
[handoff]
services = [{{ port = 80, kind = "http" }}, {{ port = 443, kind = "tls" }}]
{handoff}
"#
        );
        baton_config::parse(&text, "test.toml").unwrap()
    }

    fn placer_of(cfg: &Config) -> Result<PolicyPlacer> {
        placer(
            cfg,
            cfg.cluster.as_ref().unwrap(),
            cfg.handoff.as_ref().unwrap(),
        )
    }

    #[test]
    fn the_configured_rules_pools_and_peers_place_requests() {
        let cfg = config(
            r#"pools = [{ name = "b", nodes = ["n2"] }, { name = "any", nodes = ["n2", "n3"], strategy = "least-loaded" }]
rules = [
    { path_prefix = "/b/", pool = "b" },
    { host = "*.any.example", pool = "any" },
]"#,
        );
        let mut p = placer_of(&cfg).unwrap();
        let get = |path: &str, host: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
        };
        let up = [true, true];
        let own = Load::default();
        assert_eq!(
            p.place(&get("/b/x", "a"), ServiceKind::Http, &up, own),
            Placement::Peer(0)
        );
        p.peer_load(
            0,
            Load {
                active_connections: 50,
                ..Load::default()
            },
        );
        assert_eq!(
            p.place(&get("/", "www.any.example"), ServiceKind::Http, &up, own),
            Placement::Peer(1),
            "least-loaded, peers in the config's order"
        );
        assert_eq!(
            p.place(&get("/x", "a"), ServiceKind::Http, &up, own),
            Placement::Local
        );
    }

    #[test]
    fn a_policy_the_handoff_crate_refuses_is_named_as_such() {
        // Past the config's own checks: the same pool twice.
        let mut cfg = config(r#"pools = [{ name = "b", nodes = ["n2"] }]"#);
        let handoff = cfg.handoff.as_mut().unwrap();
        handoff.pools.push(handoff.pools[0].clone());
        let err = placer_of(&cfg).err().unwrap();
        assert!(
            format!("{err:#}").starts_with("handoff policy: "),
            "{err:#}"
        );
    }

    #[test]
    fn the_control_channel_listens_on_the_host_address_and_dials_peers_on_the_control_port() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("cluster.key");
        std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
        let mut cfg = config("");
        cfg.cluster.as_mut().unwrap().psk_file = key;
        let channel = channel_config(&cfg, cfg.cluster.as_ref().unwrap()).unwrap();
        assert_eq!(channel.node, "n1");
        assert_eq!(channel.listen, "198.18.0.11:7300".parse().unwrap());
        let peers: Vec<_> = channel
            .peers
            .iter()
            .map(|p| (p.name.as_str(), p.addr))
            .collect();
        assert_eq!(
            peers,
            [
                ("n2", "198.18.0.12:7300".parse().unwrap()),
                ("n3", "198.18.0.13:7300".parse().unwrap())
            ]
        );
        assert_eq!(channel.psk, [0xab; 32]);
    }

    #[test]
    fn a_missing_cluster_key_is_named_by_its_key() {
        let cfg = config("");
        let err = channel_config(&cfg, cfg.cluster.as_ref().unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("`cluster.psk_file`"), "{err:#}");
    }
}
