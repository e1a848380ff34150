//! Any valid config survives `to_toml` → `parse` unchanged.

use baton_config::{
    parse, Config, DpdkConfig, HostConfig, HostPortKind, IdleMode, Ipv4Cidr, LcoreConfig, LogLevel,
    NodeConfig, PciAddress, PollConfig, StatsConfig, WakeMode, WireConfig, WirePort,
};
use proptest::prelude::*;
use proptest::sample::select;

fn wire_port() -> impl Strategy<Value = WirePort> {
    prop_oneof![
        (any::<u16>(), any::<u8>(), 0u8..=0x1f, 0u8..=7)
            .prop_map(|(d, b, dev, f)| WirePort::Pci(PciAddress::new(d, b, dev, f).unwrap())),
        (
            "net_[a-z]{1,8}[0-9]",
            proptest::option::of("[a-z]{1,6}=[a-z0-9]{1,6}")
        )
            .prop_filter("not the host port's name", |(name, _)| name != "net_tap0")
            .prop_map(|(name, args)| WirePort::Vdev(match args {
                Some(args) => format!("{name},{args}"),
                None => name,
            })),
    ]
}

fn host_address() -> impl Strategy<Value = Option<Ipv4Cidr>> {
    // 198.18.x.y/24 with y a host number.
    proptest::option::of(
        (any::<u8>(), 1u8..=254)
            .prop_map(|(x, y)| Ipv4Cidr::new(std::net::Ipv4Addr::new(198, 18, x, y), 24).unwrap()),
    )
}

fn config() -> impl Strategy<Value = Config> {
    let node = (
        "[a-zA-Z0-9_-]{1,32}",
        select(vec![LogLevel::Error, LogLevel::Trace, LogLevel::Info]),
    );
    let dpdk = (
        proptest::option::of("[a-z0-9_-]{1,48}"),
        any::<bool>(),
        64u32..=1_048_576,
        1023u32..=16_777_215,
        0u32..=512,
        proptest::collection::vec(select(vec!["--in-memory", "--log-level=8", "-n4"]), 0..3),
    );
    let lcores = (0u32..4, proptest::collection::btree_set(4u32..128, 1..8));
    let wire = (wire_port(), 6u32..=14, 6u32..=14);
    let host = (any::<bool>(), "[a-z][a-z0-9_.-]{0,14}", host_address());
    let poll = (any::<bool>(), 1u32..=100_000, 1u16..=64);
    (
        node,
        dpdk,
        lcores,
        wire,
        host,
        poll,
        proptest::option::of("/[a-z]{1,20}\\.sock"),
    )
        .prop_map(|(node, dpdk, lcores, wire, host, poll, socket)| Config {
            node: NodeConfig {
                name: node.0,
                log_level: node.1,
            },
            dpdk: DpdkConfig {
                file_prefix: dpdk.0,
                hugepages: dpdk.1,
                memory_mb: dpdk.2,
                mbufs: dpdk.3,
                mbuf_cache: dpdk.4,
                extra_eal_args: dpdk.5.into_iter().map(String::from).collect(),
            },
            lcores: LcoreConfig {
                control: lcores.0,
                workers: lcores.1.into_iter().collect(),
                cpus: Vec::new(),
            },
            wire: WireConfig {
                port: wire.0,
                rx_desc: 1 << wire.1,
                tx_desc: 1 << wire.2,
            },
            host: HostConfig {
                kind: if host.0 {
                    HostPortKind::VirtioUser
                } else {
                    HostPortKind::Tap
                },
                name: host.1,
                address: host.2,
                vhost_path: None,
                vdev: None,
            },
            poll: PollConfig {
                idle: if poll.0 {
                    IdleMode::Sleep
                } else {
                    IdleMode::Busy
                },
                idle_sleep_max_us: poll.1,
                wake: WakeMode::Auto,
                burst: poll.2,
            },
            stats: StatsConfig {
                socket: socket.map(Into::into),
            },
            metrics: None,
            cluster: None,
            handoff: None,
            preload: None,
        })
}

proptest! {
    #[test]
    fn resolved_config_round_trips(config in config()) {
        // What `parse` returns is the resolved form; resolve the generated
        // config the same way by parsing its TOML once.
        let text = config.to_toml();
        let resolved = parse(&text, "gen.toml").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let again = parse(&resolved.to_toml(), "again.toml").unwrap();
        prop_assert_eq!(&again, &resolved);
        // Resolution only fills in defaults: everything given is kept.
        prop_assert_eq!(resolved.file_prefix(), config.file_prefix());
        prop_assert_eq!(resolved.stats_socket(), config.stats_socket());
        prop_assert_eq!(&resolved.wire, &config.wire);
        prop_assert_eq!(&resolved.lcores, &config.lcores);
    }

    #[test]
    fn pci_addresses_round_trip(d: u16, b: u8, dev in 0u8..=0x1f, f in 0u8..=7) {
        let pci = PciAddress::new(d, b, dev, f).unwrap();
        prop_assert_eq!(pci.to_string().parse::<PciAddress>().unwrap(), pci);
        prop_assert_eq!(pci.to_string().to_uppercase().parse::<PciAddress>().unwrap(), pci);
    }

    #[test]
    fn mac_addresses_round_trip(octets: [u8; 6]) {
        let mac = baton_config::MacAddr::new(octets);
        prop_assert_eq!(baton_config::MacAddr::parse(&mac.to_string()).unwrap(), mac);
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text, "fuzz.toml");
    }
}
