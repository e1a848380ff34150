//! End-to-end: real nginx, curl, ping and wrk through Baton on every node of
//! a netns testbed. Needs root; see `testbed::available`.

mod testbed;

use std::process::Command;

use testbed::{baton_bin, node_ip, Testbed};

fn sha256(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_node_serves_its_own_content_through_baton() {
    if !testbed::available("every_node_serves_its_own_content_through_baton") {
        return;
    }
    let tb = Testbed::up(3);
    for i in 1..=3 {
        let ip = node_ip(i);
        let body = tb
            .fetch(&format!("http://{ip}/node.txt"), 10)
            .unwrap_or_else(|| panic!("node {i} did not answer; log:\n{}", tb.log(i)));
        assert_eq!(String::from_utf8_lossy(&body).trim(), format!("node{i}"));

        let big = tb
            .fetch(&format!("http://{ip}/big.bin"), 60)
            .expect("big.bin");
        assert_eq!(big.len(), 4 * 1024 * 1024);
        assert_eq!(
            sha256(&big),
            tb.big_sha256(i),
            "node {i}: big.bin corrupted in transit"
        );

        let ping = tb.client(&["ping", "-c", "2", "-W", "2", &ip]);
        assert!(
            ping.status.success(),
            "ping {ip}: {}",
            String::from_utf8_lossy(&ping.stdout)
        );
    }
    // Every node's own Baton carried its traffic, and dropped nothing.
    for i in 1..=3 {
        let (wire_rx, host_tx) = (tb.counter(i, "wire_rx"), tb.counter(i, "host_tx"));
        let (host_rx, wire_tx) = (tb.counter(i, "host_rx"), tb.counter(i, "wire_tx"));
        assert!(
            wire_rx > 100 && host_tx > 100,
            "node {i}: wire_rx {wire_rx}, host_tx {host_tx}"
        );
        // 4 MiB left through the wire port: at least ~2900 full frames.
        assert!(
            host_rx > 2800 && wire_tx > 2800,
            "node {i}: host_rx {host_rx}, wire_tx {wire_tx}"
        );
        assert_eq!(
            tb.counter(i, "drop_host_tx_full") + tb.counter(i, "drop_wire_tx_full"),
            0
        );
    }
}

#[test]
fn wrk_through_baton_finishes_without_socket_errors() {
    if !testbed::available("wrk_through_baton_finishes_without_socket_errors") {
        return;
    }
    let tb = Testbed::up(1);
    let url = format!("http://{}/index.html", node_ip(1));
    let wrk = tb.wrk(&["-t2", "-c50", "-d3s", "--timeout", "3s", &url]);
    assert!(!wrk.socket_errors(), "socket errors:\n{}", wrk.report);
    assert_eq!(wrk.non_2xx(), 0, "error responses:\n{}", wrk.report);
    let requests = wrk.requests();
    assert!(requests > 100, "only {requests} requests:\n{}", wrk.report);
    eprintln!("wrk through Baton: {}", wrk.rate());
}

#[test]
fn a_node_without_baton_is_unreachable_and_comes_back_with_it() {
    if !testbed::available("a_node_without_baton_is_unreachable_and_comes_back_with_it") {
        return;
    }
    let tb = Testbed::up(2);
    let url2 = format!("http://{}/node.txt", node_ip(2));
    assert!(
        tb.fetch(&url2, 10).is_some(),
        "node 2 should answer while Baton runs"
    );

    tb.stop_baton(2);
    // The traffic went through Baton, not around it: without it, node 2's
    // nginx cannot be reached at all, while node 1 is unaffected.
    assert!(
        tb.fetch(&url2, 3).is_none(),
        "node 2 answered with Baton stopped"
    );
    let ping = tb.client(&["ping", "-c", "1", "-W", "1", &node_ip(2)]);
    assert!(
        !ping.status.success(),
        "node 2 answered ping with Baton stopped"
    );
    assert!(tb
        .fetch(&format!("http://{}/node.txt", node_ip(1)), 10)
        .is_some());
    let log = tb.log(2);
    assert!(
        log.contains("shutting down") && log.contains("final counters"),
        "no clean shutdown in log:\n{log}"
    );

    tb.start_baton(2);
    let body = tb.fetch(&url2, 10).expect("node 2 back with Baton");
    assert_eq!(String::from_utf8_lossy(&body).trim(), "node2");
}

#[test]
fn a_second_instance_and_a_missing_port_get_one_clear_error() {
    if !testbed::available("a_second_instance_and_a_missing_port_get_one_clear_error") {
        return;
    }
    let tb = Testbed::up(1);
    let baton = baton_bin();
    let baton = baton.to_str().unwrap();
    let config = tb.config_path(1);
    let text = std::fs::read_to_string(&config).unwrap();
    let run = |toml: &str, name: &str| {
        let path = tb.workdir().join(name);
        std::fs::write(&path, toml).unwrap();
        let out = tb.on_node(1, &[baton, "run", "--config", path.to_str().unwrap()]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Same config: its stats socket is taken.
    let (code, err) = run(&text, "same.toml");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("another Baton instance is already serving stats"),
        "{err}"
    );

    // Another socket and host interface, same DPDK file prefix.
    let other_socket = text.replace("n1.sock", "other.sock");
    let (code, err) = run(
        &other_socket.replace("name = \"baton0\"", "name = \"baton8\""),
        "prefix.toml",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("another DPDK process uses the file prefix"),
        "{err}"
    );

    // Another prefix, same host interface: the running instance owns it.
    let other_prefix = other_socket.replace(
        &format!("baton-{}-n1", tb.id),
        &format!("baton-{}-other", tb.id),
    );
    let (code, err) = run(&other_prefix, "iface.toml");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the host interface baton0 already exists"),
        "{err}"
    );

    // A wire port that does not exist.
    let missing = other_prefix
        .replace("iface=wire0", "iface=nosuch0")
        .replace("name = \"baton0\"", "name = \"baton9\"");
    let (code, err) = run(&missing, "missing.toml");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no DPDK port named \"net_af_packet0\""),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    // The first instance never noticed.
    assert!(tb
        .fetch(&format!("http://{}/node.txt", node_ip(1)), 10)
        .is_some());
}

/// With `poll.wake = "packets"` (the testbed's default, `WAKE=auto` on
/// af_packet ports), a frame ends an idle worker's sleep: each ping, sent
/// while the worker sleeps (200 ms apart, the sleep ceiling 10 ms), is
/// counted as a wake-up by a packet, not left to the timer.
#[test]
fn a_frame_wakes_a_sleeping_worker() {
    if !testbed::available("a_frame_wakes_a_sleeping_worker") {
        return;
    }
    let tb = Testbed::up(1);
    let ip = node_ip(1);
    assert!(
        tb.log(1).contains("woken by packets"),
        "packet wake-ups not on:\n{}",
        tb.log(1)
    );
    let before = tb.counter(1, "woken_by_packet");
    let ping = tb.client(&["ping", "-c", "20", "-i", "0.2", "-W", "2", &ip]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let woken = tb.counter(1, "woken_by_packet") - before;
    println!(
        "20 pings: {woken} sleeps ended by a frame; {}",
        String::from_utf8_lossy(&ping.stdout)
            .lines()
            .last()
            .unwrap_or_default()
    );
    assert!(woken >= 10, "only {woken} of 20 pings woke the worker");
    assert_eq!(tb.counter(1, "wake_errors"), 0);
}
