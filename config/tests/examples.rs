//! The shipped example configs parse, resolve as documented, and
//! round-trip through `to_toml`.

use std::path::{Path, PathBuf};

use baton_config::{load, parse, Config, HostPortKind, IdleMode, LogLevel, PciAddress, WirePort};

fn example(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_round_trips(config: &Config) {
    let text = config.to_toml();
    let again = parse(&text, "resolved.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(&again, config, "\n{text}");
    assert_eq!(again.to_toml(), text);
}

#[test]
fn metal_example() {
    let config = example("metal.toml");
    assert_eq!(config.node.name, "web1");
    assert_eq!(config.node.log_level, LogLevel::Info);
    assert!(config.dpdk.hugepages);
    assert_eq!(config.file_prefix(), "baton-web1");
    assert_eq!(config.lcores.workers, [2, 4, 6, 8]);
    assert_eq!(config.lcores.eal_list(), "0,2,4,6,8");
    let pci: PciAddress = "0000:3b:00.0".parse().unwrap();
    assert_eq!(config.wire.port, WirePort::Pci(pci));
    assert_eq!(config.wire.dpdk_name(), "0000:3b:00.0");
    assert_eq!(config.host.kind, HostPortKind::VirtioUser);
    assert_eq!(config.host.dpdk_name(), "virtio_user0");
    assert_eq!(
        config.host.vdev_spec(config.lcores.workers.len()),
        "virtio_user0,path=/dev/vhost-net,queues=4,queue_size=1024,iface=baton0"
    );
    assert_eq!(config.poll.idle, IdleMode::Busy);
    assert_eq!(config.stats_socket(), PathBuf::from("/run/baton/web1.sock"));
    assert_round_trips(&config);
}

#[test]
fn netns_demo_example() {
    let config = example("netns-demo.toml");
    assert_eq!(config.node.name, "node1");
    assert!(!config.dpdk.hugepages);
    assert_eq!(config.dpdk.file_prefix.as_deref(), Some("baton-node1"));
    assert_eq!(
        config.wire.port,
        WirePort::Vdev("net_af_packet0,iface=wire0".into())
    );
    assert_eq!(config.wire.dpdk_name(), "net_af_packet0");
    assert_eq!(config.host.kind, HostPortKind::Tap);
    assert_eq!(config.host.vdev_spec(1), "net_tap0,iface=baton0");
    assert_eq!(config.host.dpdk_name(), "net_tap0");
    let address = config.host.address.expect("the demo assigns an address");
    assert_eq!(address.to_string(), "198.18.1.11/24");
    assert_eq!(config.poll.idle, IdleMode::Sleep);
    assert_eq!(config.poll.idle_sleep_max_us, 200);
    assert_round_trips(&config);
}

#[test]
fn defaults_are_filled_in() {
    let text = r#"
[node]
name = "n2"

[lcores]
workers = [3]

[wire]
pci = "3B:00.1"
"#;
    let config = parse(text, "min.toml").unwrap();
    assert_eq!(config.node.log_level, LogLevel::Info);
    assert_eq!(config.dpdk.file_prefix.as_deref(), Some("baton-n2"));
    assert!(config.dpdk.hugepages);
    assert_eq!(config.dpdk.memory_mb, 512);
    assert_eq!(config.dpdk.mbufs, 8191);
    assert_eq!(config.dpdk.mbuf_cache, 256);
    assert!(config.dpdk.extra_eal_args.is_empty());
    assert_eq!(config.lcores.control, 0);
    assert_eq!(config.wire.dpdk_name(), "0000:3b:00.1");
    assert_eq!((config.wire.rx_desc, config.wire.tx_desc), (1024, 1024));
    assert_eq!(config.host.kind, HostPortKind::Tap);
    assert_eq!(config.host.name, "baton0");
    assert_eq!(config.host.address, None);
    assert_eq!(config.host.vhost_path, None);
    assert_eq!(config.poll.idle, IdleMode::Busy);
    assert_eq!(config.poll.idle_sleep_max_us, 200);
    assert_eq!(config.poll.burst, 32);
    assert_eq!(
        config.stats.socket.as_deref(),
        Some(Path::new("/run/baton/n2.sock"))
    );
    assert_round_trips(&config);
}

#[test]
fn virtio_user_gets_the_default_vhost_path() {
    let text = r#"
[node]
name = "n3"
[lcores]
workers = [1, 2]
[wire]
vdev = "net_ring0"
[host]
kind = "virtio-user"
name = "eth-baton"
"#;
    let config = parse(text, "v.toml").unwrap();
    assert_eq!(
        config.host.vhost_path.as_deref(),
        Some(Path::new("/dev/vhost-net"))
    );
    assert_eq!(
        config.host.vdev_spec(2),
        "virtio_user0,path=/dev/vhost-net,queues=2,queue_size=1024,iface=eth-baton"
    );
    assert_eq!(config.wire.dpdk_name(), "net_ring0");
    assert_round_trips(&config);
}

#[test]
fn inline_tables_and_dotted_keys_work_too() {
    let text = r#"
node = { name = "n4" }
lcores.workers = [1]
wire = { pci = "0000:3b:00.0" }
"#;
    let config = parse(text, "inline.toml").unwrap();
    assert_eq!(config.node.name, "n4");
    assert_round_trips(&config);
}
