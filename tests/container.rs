//! The demo cluster of docker/compose.yaml, without Docker: network
//! namespaces made as Docker makes the containers (a veth `eth0` on a
//! bridge with the node's address and a default route), each running
//! docker/node.sh, the image's entrypoint, with the environment the compose
//! file gives that node (addresses translated into 198.18.0.0/15; see
//! netns.sh `CONTAINERS=1`). Needs root; see `testbed::available`.

mod testbed;

use std::path::Path;
use std::process::Command;

use testbed::{node_ip, Testbed};

const COMPOSE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/compose.yaml");

/// docker/compose.yaml as JSON (python3-yaml; merge keys resolved), or None
/// when python3-yaml is missing outside CI.
fn compose() -> Option<serde_json::Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            COMPOSE,
        ])
        .output()
        .expect("python3");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No module named 'yaml'") && std::env::var("CI").as_deref() != Ok("true"),
            "docker/compose.yaml does not parse: {err}"
        );
        eprintln!("SKIPPED: python3-yaml is missing (scripts/deps.sh installs it)");
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).expect("JSON"))
}

#[test]
fn the_compose_file_gives_every_node_what_its_entrypoint_needs() {
    let Some(c) = compose() else { return };
    let services = c["services"].as_object().expect("services");
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/Dockerfile"))
            .unwrap();
    assert!(dockerfile.contains("COPY docker/node.sh /usr/local/bin/baton-node"));
    let subnet = c["networks"]["lan"]["ipam"]["config"][0]["subnet"]
        .as_str()
        .expect("the lan network's subnet");
    let prefix = subnet.rsplit_once('.').expect("an IPv4 subnet").0;
    for i in 1..=3 {
        let n = &services[&format!("n{i}")];
        assert_eq!(n["entrypoint"][0], "/usr/local/bin/baton-node");
        assert_eq!(
            n["privileged"], true,
            "n{i}: DPDK and the take-over of eth0"
        );
        let env = &n["environment"];
        assert_eq!(env["NODE"], i.to_string());
        let address = n["networks"]["lan"]["ipv4_address"].as_str().unwrap();
        assert!(address.starts_with(prefix), "{address} in {subnet}");
        let nodes: Vec<&str> = env["NODES"].as_str().unwrap().split(' ').collect();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[i - 1], address, "NODES names n{i}'s address in order");
        assert_eq!(env["CLUSTER_KEY"].as_str().map(str::len), Some(64));
    }
    assert!(services["client"]["networks"]["lan"]["ipv4_address"]
        .as_str()
        .unwrap()
        .ends_with(".100"));
}

/// The sha256 node `i`'s node.sh recorded for /nI/`file`.
fn sum(tb: &Testbed, i: usize, file: &str) -> String {
    let sums = std::fs::read_to_string(tb.workdir().join(format!("n{i}/www/n{i}/sha256.txt")))
        .expect("sha256.txt");
    sums.lines()
        .find(|l| l.ends_with(&format!("  {file}")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no sum for {file} on node {i}: {sums}"))
        .to_string()
}

#[test]
fn the_compose_entrypoint_takes_over_eth0_and_the_cluster_hands_off() {
    if !testbed::available("the_compose_entrypoint_takes_over_eth0_and_the_cluster_hands_off") {
        return;
    }
    if compose().is_none() {
        return;
    }
    let tb = Testbed::up_containers(3);

    // eth0 is Baton's wire port now: no address; its address and the
    // default route are on Baton's host port.
    let eth0 = tb.on_node(1, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert_eq!(
        String::from_utf8_lossy(&eth0.stdout),
        "",
        "eth0 keeps no address"
    );
    let route = tb.on_node(1, &["ip", "-4", "route", "show", "default"]);
    let route = String::from_utf8_lossy(&route.stdout);
    assert!(route.contains("dev baton0"), "default route: {route}");

    // Node 1's own content, served locally.
    let url = |i: usize, path: &str| format!("http://{}/{path}", node_ip(i));
    assert_eq!(
        tb.fetch(&url(1, "n1/whoami.txt"), 5).as_deref(),
        Some(&b"n1 content\n"[..])
    );
    assert_eq!(tb.counter(1, "served_local"), 1);
    assert_eq!(tb.counter(1, "handed_off"), 0);

    // Node 2's content asked of node 1: handed to node 2, which answers.
    assert_eq!(
        tb.fetch(&url(1, "n2/whoami.txt"), 5).as_deref(),
        Some(&b"n2 content\n"[..])
    );
    assert_eq!(tb.counter(1, "handed_off"), 1);
    assert_eq!(tb.counter(2, "handed_in"), 1);
    // Node 3's 10 MB file through node 2, intact.
    assert_eq!(
        tb.fetch_sha256(&url(2, "n3/10m.bin"), 30),
        Some(sum(&tb, 3, "10m.bin"))
    );
    assert_eq!(tb.counter(2, "handed_off"), 1);
    assert_eq!(tb.counter(3, "handed_in"), 1);
    // /nI/ exists on node I only.
    assert!(!tb.workdir().join("n1/www/n2").exists());

    // SIGTERM to the entrypoint (docker stop) stops Baton as SIGTERM does:
    // control channels closed first, so node 2 sees node 1 down at once.
    tb.stop_baton(1);
    assert!(
        tb.wait_for(5, || tb.peer_state(2, "n1") == "down"),
        "node 2 sees node 1 down"
    );
    let log = tb.log(1);
    assert!(
        log.contains("control channels closed"),
        "node 1's log:\n{log}"
    );
    // Then node.sh stops nginx and exits: nothing runs in the namespace.
    let ns = format!("{}-n1", tb.id);
    assert!(
        tb.wait_for(5, || Command::new("ip")
            .args(["netns", "pids", &ns])
            .output()
            .is_ok_and(|o| o.stdout.is_empty())),
        "node.sh stopped nginx after Baton, and exited"
    );
}
