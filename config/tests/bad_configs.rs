//! Each bad config must fail with the exact line, column and key, and a
//! message that says what is wrong.

use baton_config::parse;

/// A minimal valid config; cases append to it or edit one line of it.
const BASE: &str = r#"[node]
name = "node1"

[lcores]
workers = [1]

[wire]
vdev = "net_af_packet0,iface=wire0"
"#;

struct Case {
    name: &'static str,
    text: String,
    line: usize,
    column: usize,
    key: Option<&'static str>,
    fragment: &'static str,
}

/// BASE with `extra` appended (starting at line 9).
fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

/// BASE with one line swapped for another.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

fn case(
    name: &'static str,
    text: String,
    (line, column): (usize, usize),
    key: Option<&'static str>,
    fragment: &'static str,
) -> Case {
    Case {
        name,
        text,
        line,
        column,
        key,
        fragment,
    }
}

fn cases() -> Vec<Case> {
    let vdev = r#"vdev = "net_af_packet0,iface=wire0""#;
    vec![
        // Syntax and structure.
        case(
            "syntax error",
            "[node\nname = 1\n".into(),
            (1, 6),
            None,
            "invalid TOML",
        ),
        case(
            "duplicate key",
            edit("name = \"node1\"", "name = \"a\"\nname = \"b\""),
            (3, 1),
            Some("node.name"),
            "duplicate key `name`",
        ),
        case(
            "unknown key",
            with("\n[host]\nnmae = \"x\"\n"),
            (11, 1),
            Some("host.nmae"),
            "unknown key `nmae`; did you mean `name`?",
        ),
        case(
            "unknown key lists the expected ones",
            with("\n[poll]\nspin = true\n"),
            (11, 1),
            Some("poll.spin"),
            "(expected one of `idle`, `idle_sleep_max_us`, `wake`, `burst`)",
        ),
        case(
            "typo'd section",
            with("\n[pol]\nidle = \"sleep\"\n"),
            (10, 2),
            Some("pol"),
            "unknown section `[pol]`; did you mean `poll`?",
        ),
        case(
            "unknown top-level key",
            format!("verbose = true\n{BASE}"),
            (1, 1),
            Some("verbose"),
            "unknown key `verbose`",
        ),
        case(
            "array of tables",
            with("\n[[poll]]\nidle = \"sleep\"\n"),
            (10, 1),
            Some("poll"),
            "write `[poll]`",
        ),
        case(
            "missing section",
            BASE.replace("\n[wire]\n", "\n").replace(vdev, ""),
            (1, 1),
            Some("wire"),
            "missing key `wire`",
        ),
        case(
            "missing required key",
            edit("name = \"node1\"", "log_level = \"info\""),
            (1, 1),
            Some("node.name"),
            "missing key `name`",
        ),
        case(
            "wrong type",
            with("\n[dpdk]\nhugepages = \"yes\"\n"),
            (11, 13),
            Some("dpdk.hugepages"),
            "invalid type: string \"yes\", expected a boolean",
        ),
        case(
            "wrong type for a section",
            format!("poll = 5\n{BASE}"),
            (1, 8),
            Some("poll"),
            "expected a table",
        ),
        case(
            "integer too large for its type",
            with("rx_desc = 70000\n"),
            (9, 11),
            Some("wire.rx_desc"),
            "expected an integer from 0 to 65535",
        ),
        case(
            "negative integer",
            edit("workers = [1]", "workers = [-1]"),
            (5, 12),
            Some("lcores.workers"),
            "integer `-1`",
        ),
        case(
            "unknown enum value",
            edit(
                "name = \"node1\"",
                "name = \"node1\"\nlog_level = \"verbose\"",
            ),
            (3, 13),
            Some("node.log_level"),
            "unknown value `verbose`; expected one of `error`, `warn`, `info`, `debug`, `trace`",
        ),
        // [node]
        case(
            "bad node name",
            edit("name = \"node1\"", "name = \"node 1\""),
            (2, 8),
            Some("node.name"),
            "contains ' '",
        ),
        case(
            "long node name",
            edit(
                "name = \"node1\"",
                &format!("name = \"{}\"", "n".repeat(33)),
            ),
            (2, 8),
            Some("node.name"),
            "33 characters long; at most 32",
        ),
        // [dpdk]
        case(
            "bad file prefix",
            with("\n[dpdk]\nfile_prefix = \"baton/1\"\n"),
            (11, 15),
            Some("dpdk.file_prefix"),
            "contains '/'",
        ),
        case(
            "memory too small",
            with("\n[dpdk]\nmemory_mb = 32\n"),
            (11, 13),
            Some("dpdk.memory_mb"),
            "32 is out of range: must be from 64 to 1048576",
        ),
        case(
            "mbuf cache over the DPDK limit",
            with("\n[dpdk]\nmbuf_cache = 1024\nmbufs = 65535\n"),
            (11, 14),
            Some("dpdk.mbuf_cache"),
            "per-lcore cache limit of 512",
        ),
        case(
            "reserved EAL arg",
            with("\n[dpdk]\nextra_eal_args = [\"--in-memory\", \"--file-prefix=x\"]\n"),
            (11, 34),
            Some("dpdk.extra_eal_args"),
            "sets `--file-prefix`, which Baton sets itself; use `dpdk.file_prefix` instead",
        ),
        case(
            "reserved short EAL arg with attached value",
            with("\n[dpdk]\nextra_eal_args = [\"-l0-3\"]\n"),
            (11, 19),
            Some("dpdk.extra_eal_args"),
            "use `lcores.control` and `lcores.workers` instead",
        ),
        // [metrics]
        case(
            "metrics listen without a port",
            with("\n[metrics]\nlisten = \"198.18.0.11\"\n"),
            (11, 10),
            Some("metrics.listen"),
            "invalid socket address",
        ),
        case(
            "metrics on port 0",
            with("\n[metrics]\nlisten = \"0.0.0.0:0\"\n"),
            (11, 10),
            Some("metrics.listen"),
            "port 0 is not a port to listen on",
        ),
        case(
            "metrics key misspelt",
            with("\n[metrics]\nlisten_on = \"0.0.0.0:9100\"\n"),
            (11, 1),
            Some("metrics.listen_on"),
            "unknown",
        ),
        // [lcores]
        case(
            "no workers",
            edit("workers = [1]", "workers = []"),
            (5, 11),
            Some("lcores.workers"),
            "at least one worker lcore",
        ),
        case(
            "duplicate worker lcore",
            edit("workers = [1]", "workers = [1, 2, 1]"),
            (5, 18),
            Some("lcores.workers"),
            "lcore 1 is listed twice",
        ),
        case(
            "worker is the control lcore",
            edit("workers = [1]", "control = 2\nworkers = [1, 2]"),
            (6, 15),
            Some("lcores.workers"),
            "lcore 2 is already the control lcore",
        ),
        case(
            "worker lcore out of range",
            edit("workers = [1]", "workers = [1, 128]"),
            (5, 15),
            Some("lcores.workers"),
            "lcore 128 is out of range",
        ),
        case(
            "control lcore out of range",
            edit("workers = [1]", "control = 200\nworkers = [1]"),
            (5, 11),
            Some("lcores.control"),
            "lcore 200 is out of range",
        ),
        // [wire]
        case(
            "bad PCI address",
            edit(vdev, "pci = \"0000:3b:00\""),
            (8, 7),
            Some("wire.pci"),
            "`0000:3b:00` is not a PCI address",
        ),
        case(
            "PCI device out of range",
            edit(vdev, "pci = \"3b:20.0\""),
            (8, 7),
            Some("wire.pci"),
            "device number 0x20 is out of range",
        ),
        case(
            "both pci and vdev",
            with("pci = \"0000:3b:00.0\"\n"),
            (9, 7),
            Some("wire.pci"),
            "set only one of `pci`",
        ),
        case(
            "neither pci nor vdev",
            edit(vdev, "rx_desc = 512"),
            (7, 1),
            Some("wire"),
            "missing key `pci` or `vdev`",
        ),
        case(
            "vdev that is not a net device",
            edit(vdev, "vdev = \"crypto_null0\""),
            (8, 8),
            Some("wire.vdev"),
            "must start with `net_`",
        ),
        case(
            "vdev with a bad name",
            edit(vdev, "vdev = \"net_AF0,iface=x\""),
            (8, 8),
            Some("wire.vdev"),
            "contains 'A'",
        ),
        case(
            "vdev with an empty argument",
            edit(vdev, "vdev = \"net_af_packet0,,iface=x\""),
            (8, 8),
            Some("wire.vdev"),
            "has an empty argument",
        ),
        case(
            "vdev named like the host port",
            edit(vdev, "vdev = \"net_tap0,iface=wire0\""),
            (8, 8),
            Some("wire.vdev"),
            "is the host port's device name",
        ),
        case(
            "descriptors not a power of two",
            with("tx_desc = 1000\n"),
            (9, 11),
            Some("wire.tx_desc"),
            "must be a power of two from 64 to 16384",
        ),
        case(
            "unknown wire key",
            with("iface = \"wire0\"\n"),
            (9, 1),
            Some("wire.iface"),
            "unknown key `iface`",
        ),
        // [host]
        case(
            "unknown host kind",
            with("\n[host]\nkind = \"vhost\"\n"),
            (11, 8),
            Some("host.kind"),
            "unknown value `vhost`; expected one of `tap`, `virtio-user`",
        ),
        case(
            "interface name too long",
            with("\n[host]\nname = \"baton-host-port0\"\n"),
            (11, 8),
            Some("host.name"),
            "16 characters long; at most 15",
        ),
        case(
            "af-packet interface name too long for its veth pair",
            with("\n[host]\nkind = \"af-packet\"\nname = \"baton-host-00\"\n"),
            (12, 8),
            Some("host.name"),
            "adds `-dp`) `baton-host-00` is 13 characters long; at most 12",
        ),
        case(
            "vhost_path with af-packet",
            with("\n[host]\nkind = \"af-packet\"\nvhost_path = \"/dev/vhost-net\"\n"),
            (12, 14),
            Some("host.vhost_path"),
            "only applies to a virtio-user host port",
        ),
        case(
            "bad CIDR",
            with("\n[host]\naddress = \"198.18.1.11/33\"\n"),
            (11, 11),
            Some("host.address"),
            "prefix length /33 is out of range",
        ),
        case(
            "address without prefix",
            with("\n[host]\naddress = \"198.18.1.11\"\n"),
            (11, 11),
            Some("host.address"),
            "has no prefix length",
        ),
        case(
            "network address as host address",
            with("\n[host]\naddress = \"198.18.1.0/24\"\n"),
            (11, 11),
            Some("host.address"),
            "is the network address of its subnet",
        ),
        case(
            "vhost_path with tap",
            with("\n[host]\nvhost_path = \"/dev/vhost-net\"\n"),
            (11, 14),
            Some("host.vhost_path"),
            "only applies to a virtio-user host port",
        ),
        case(
            "relative vhost_path",
            with("\n[host]\nkind = \"virtio-user\"\nvhost_path = \"vhost-net\"\n"),
            (12, 14),
            Some("host.vhost_path"),
            "relative path",
        ),
        // [poll]
        case(
            "sleep ceiling of zero",
            with("\n[poll]\nidle = \"sleep\"\nidle_sleep_max_us = 0\n"),
            (12, 21),
            Some("poll.idle_sleep_max_us"),
            "0 is out of range: must be from 1 to 100000",
        ),
        case(
            "packet wake-ups without af_packet ports",
            with("\n[poll]\nidle = \"sleep\"\nwake = \"packets\"\n"),
            (12, 8),
            Some("poll.wake"),
            "\"packets\" needs af_packet ports",
        ),
        case(
            "burst too large",
            with("\n[poll]\nburst = 65\n"),
            (11, 9),
            Some("poll.burst"),
            "65 is out of range: must be from 1 to 64",
        ),
        // [stats]
        case(
            "relative socket path",
            with("\n[stats]\nsocket = \"run/baton.sock\"\n"),
            (11, 10),
            Some("stats.socket"),
            "`run/baton.sock` is a relative path",
        ),
        case(
            "socket path too long",
            with(&format!("\n[stats]\nsocket = \"/{}\"\n", "s".repeat(120))),
            (11, 10),
            Some("stats.socket"),
            "at most 107",
        ),
        // Cluster and handoff.
        case(
            "cluster without host.address",
            with("\n[cluster]\npsk_file = \"/etc/baton/cluster.key\"\npeers = []\n"),
            (10, 1),
            Some("cluster"),
            "needs `host.address`",
        ),
        case(
            "peer named as this node",
            with(&CLUSTER.replace("name = \"n2\"", "name = \"node1\"")),
            (13, 19),
            Some("cluster.peers.name"),
            "this node's own name",
        ),
        case(
            "peer with a multicast MAC",
            with(&CLUSTER.replace("02:00:00:00:00:02", "03:00:00:00:00:02")),
            (13, 56),
            Some("cluster.peers.mac"),
            "multicast",
        ),
        case(
            "rule naming an unknown pool",
            with(&CLUSTER.replace("pool = \"b\"", "pool = \"x\"")),
            (17, 40),
            Some("handoff.rules.pool"),
            "no pool `x`",
        ),
        case(
            "pool with an unknown node",
            with(&CLUSTER.replace("nodes = [\"n2\"]", "nodes = [\"n9\"]")),
            (16, 33),
            Some("handoff.pools.nodes"),
            "no node `n9`",
        ),
        // What the policy refuses, `check` refuses (it builds the policy
        // as `run` does), at the key it comes from.
        case(
            "rule matching both host and SNI",
            with(&CLUSTER.replace(
                "{ path_prefix = \"/b/\", pool = \"b\" }",
                "{ host = \"b.example\", sni = \"b.example\", pool = \"b\" }",
            )),
            (17, 38),
            Some("handoff.rules.sni"),
            "both `host` and `sni`",
        ),
        case(
            "LARD with a low threshold of zero",
            with(&CLUSTER.replace(
                "nodes = [\"n2\"] }",
                "nodes = [\"n2\"], strategy = \"lard\", lard_low = 0 }",
            )),
            (16, 70),
            Some("handoff.pools.lard_low"),
            "must be above 0 and below `lard_high`",
        ),
        case(
            "host pattern with a star inside",
            with(&CLUSTER.replace(
                "{ path_prefix = \"/b/\", pool = \"b\" }",
                "{ host = \"a.*.example\", pool = \"b\" }",
            )),
            (17, 19),
            Some("handoff.rules.host"),
            "first label",
        ),
        case(
            "handoff network of another prefix length",
            with(&CLUSTER.replace(
                "psk_file = \"/etc/baton/cluster.key\"\n",
                "psk_file = \"/etc/baton/cluster.key\"\nhandoff_net = \"198.19.0.0/16\"\n",
            )),
            (13, 15),
            Some("cluster.handoff_net"),
            "not the prefix length of `host.address`",
        ),
        case(
            "handoff network that is the host network",
            with(&CLUSTER.replace(
                "psk_file = \"/etc/baton/cluster.key\"\n",
                "psk_file = \"/etc/baton/cluster.key\"\nhandoff_net = \"198.18.0.0/24\"\n",
            )),
            (13, 15),
            Some("cluster.handoff_net"),
            "the host network itself",
        ),
        case(
            "handoff network holding the VIP",
            with(&CLUSTER.replace(
                "psk_file = \"/etc/baton/cluster.key\"\n",
                "psk_file = \"/etc/baton/cluster.key\"\nvip = \"198.19.0.50\"\nhandoff_net = \"198.19.0.0/24\"\n",
            )),
            (14, 15),
            Some("cluster.handoff_net"),
            "holds the cluster VIP",
        ),
        case(
            "handoff network with a peer off the host network",
            with(&CLUSTER.replace(
                "psk_file = \"/etc/baton/cluster.key\"\n",
                "psk_file = \"/etc/baton/cluster.key\"\nhandoff_net = \"198.19.0.0/24\"\n",
            ).replace("address = \"198.18.0.12\"", "address = \"198.18.1.12\"")),
            (14, 35),
            Some("cluster.peers.address"),
            "outside the host network",
        ),
        case(
            "a peer suspect after one late heartbeat",
            with(&CLUSTER.replace(
                "psk_file = \"/etc/baton/cluster.key\"\n",
                "psk_file = \"/etc/baton/cluster.key\"\nheartbeat_ms = 500\nsuspect_after_ms = 900\n",
            )),
            (14, 20),
            Some("cluster.suspect_after_ms"),
            "less than two heartbeats",
        ),
        case(
            "a peer dead before it is suspect",
            with(&CLUSTER.replace(
                "psk_file = \"/etc/baton/cluster.key\"\n",
                "psk_file = \"/etc/baton/cluster.key\"\nsuspect_after_ms = 2000\ndead_after_ms = 2000\n",
            )),
            (14, 17),
            Some("cluster.dead_after_ms"),
            "not more than `suspect_after_ms`",
        ),
        case(
            "handoff without a cluster",
            with("\n[handoff]\nservices = [{ port = 80, kind = \"http\" }]\n"),
            (10, 1),
            Some("handoff"),
            "add a `[cluster]` section",
        ),
    ]
}

/// A valid cluster node (lines 9 to 17 after BASE).
const CLUSTER: &str = r#"[host]
address = "198.18.0.11/24"
[cluster]
psk_file = "/etc/baton/cluster.key"
peers = [{ name = "n2", address = "198.18.0.12", mac = "02:00:00:00:00:02" }]
[handoff]
services = [{ port = 80, kind = "http" }]
pools = [{ name = "b", nodes = ["n2"] }]
rules = [{ path_prefix = "/b/", pool = "b" }]
"#;

#[test]
fn the_cluster_fixture_is_valid() {
    parse(&with(CLUSTER), "node1.toml").expect("valid cluster node");
}

#[test]
fn bad_configs_fail_with_position_key_and_reason() {
    let mut failures = Vec::new();
    for case in cases() {
        let err = match parse(&case.text, "bad.toml") {
            Ok(_) => {
                failures.push(format!("{}: parsed without error", case.name));
                continue;
            }
            Err(err) => err,
        };
        let got = (err.line(), err.column(), err.key());
        let want = (Some(case.line), Some(case.column), case.key);
        if got != want || !err.message().contains(case.fragment) {
            failures.push(format!(
                "{}:\n    got  {got:?} {err}\n    want {want:?} …{}…",
                case.name, case.fragment
            ));
        }
        assert_eq!(err.file(), "bad.toml");
        assert!(!err.to_string().contains('\n'), "{}: {err}", case.name);
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn display_is_file_line_column_key_message() {
    let text = BASE.replace("workers = [1]", "workers = [0]");
    let err = parse(&text, "node1.toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "node1.toml:5:12: `lcores.workers`: lcore 0 is already the control lcore"
    );
}

#[test]
fn unreadable_file_names_the_file_and_the_os_error() {
    let path = std::path::Path::new("/nonexistent/baton.toml");
    let err = baton_config::load(path).unwrap_err();
    assert_eq!(err.file(), "/nonexistent/baton.toml");
    assert_eq!((err.line(), err.column(), err.key()), (None, None, None));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/baton.toml: cannot read: No such file or directory"),
        "{err}"
    );
}
