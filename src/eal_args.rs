//! The EAL command line Baton derives from its configuration.

use baton_config::{Config, WirePort};

/// EAL arguments for `cfg`: Baton's own first, then `dpdk.extra_eal_args`.
pub fn build(cfg: &Config) -> Vec<String> {
    let mut args = vec![
        cfg.lcores.eal_option().to_string(),
        cfg.lcores.eal_list(),
        "--main-lcore".to_string(),
        cfg.lcores.control.to_string(),
        "--file-prefix".to_string(),
        cfg.file_prefix(),
        "-m".to_string(),
        cfg.dpdk.memory_mb.to_string(),
    ];
    if cfg.dpdk.hugepages {
        // No hugepage file outlives the process (see dpdk_ffi::runtime).
        args.push(dpdk_ffi::runtime::HUGE_UNLINK.into());
    } else {
        args.push("--no-huge".into());
    }
    match &cfg.wire.port {
        // Only the configured NIC: EAL must not take over the host's others.
        WirePort::Pci(addr) => args.extend(["-a".to_string(), addr.to_string()]),
        WirePort::Vdev(spec) => {
            args.extend(["--no-pci".to_string(), "--vdev".to_string(), spec.clone()])
        }
    }
    args.extend([
        "--vdev".to_string(),
        cfg.host.vdev_spec(cfg.lcores.workers.len()),
    ]);
    args.extend(cfg.dpdk.extra_eal_args.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"
[node]
name = "n1"
[dpdk]
hugepages = false
memory_mb = 256
[lcores]
control = 0
workers = [1]
[wire]
vdev = "net_af_packet0,iface=wire0"
[host]
name = "baton0"
[poll]
idle = "sleep"
"#;

    #[test]
    fn demo_config_gives_no_huge_vdev_args() {
        let cfg = baton_config::parse(DEMO, "demo.toml").unwrap();
        let args = build(&cfg).join(" ");
        assert_eq!(
            args,
            "-l 0,1 --main-lcore 0 --file-prefix baton-n1 -m 256 --no-huge \
             --no-pci --vdev net_af_packet0,iface=wire0 --vdev net_tap0,iface=baton0"
        );
    }

    #[test]
    fn an_af_packet_host_port_reads_batons_end_of_the_veth_pair_with_a_queue_per_worker() {
        let text = DEMO.replace("workers = [1]", "workers = [1, 2]").replace(
            "name = \"baton0\"",
            "kind = \"af-packet\"\nname = \"baton0\"",
        );
        let cfg = baton_config::parse(&text, "demo.toml").unwrap();
        let args = build(&cfg).join(" ");
        assert!(
            args.ends_with("--vdev net_af_packet_host,iface=baton0-dp,qpairs=2,qdisc_bypass=1"),
            "{args}"
        );
    }

    #[test]
    fn pci_wire_port_is_allow_listed_alone() {
        let text = DEMO
            .replace("vdev = \"net_af_packet0,iface=wire0\"", "pci = \"3b:00.0\"")
            .replace("hugepages = false", "hugepages = true");
        let cfg = baton_config::parse(&text, "metal.toml").unwrap();
        let args = build(&cfg);
        assert!(
            args.windows(2).any(|w| w == ["-a", "0000:3b:00.0"]),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a == "--no-huge" || a == "--no-pci"));
        assert!(args.iter().any(|a| a == "--huge-unlink"), "{args:?}");
    }
}
