//! End-to-end handoff on the netns testbed: real Linux TCP on the client
//! and on every node, real nginx, curl and wrk. Node I alone has the files
//! under /nI/, and the cluster's rules send those paths to node I.

mod testbed;

use testbed::{node_ip, Testbed};

fn url(node: usize, path: &str) -> String {
    format!("http://{}/{path}", node_ip(node))
}

/// `count` downloads through node 1, `parallel` at a time, of `file` from
/// each node's own content in turn (nI/FILE, I = 1..=nodes); returns how
/// many arrived with the right sha256.
fn concurrent_downloads(
    tb: &Testbed,
    nodes: usize,
    file: &str,
    count: usize,
    parallel: usize,
) -> usize {
    let script = format!(
        r#"
import concurrent.futures, hashlib, urllib.request
sums = {{}}
for i in range(1, {nodes} + 1):
    for line in open("{w}/n%d/sha256.txt" % i):
        digest, name = line.split()
        sums[name] = digest
def get(k):
    name = "n%d/{file}" % (k % {nodes} + 1)
    body = urllib.request.urlopen("http://{ip}/" + name, timeout=30).read()
    return hashlib.sha256(body).hexdigest() == sums[name]
with concurrent.futures.ThreadPoolExecutor(max_workers={parallel}) as pool:
    print(sum(pool.map(get, range({count}))))
"#,
        w = tb.workdir().display(),
        ip = node_ip(1)
    );
    tb.client_python(&script).trim().parse().unwrap_or(0)
}

#[test]
fn content_on_b_requested_at_a_comes_from_b_directly() {
    if !testbed::available("content_on_b_requested_at_a_comes_from_b_directly") {
        return;
    }
    let tb = Testbed::up_cluster(3);

    // Watch node 1's and node 2's links on the LAN bridge for response data.
    let pcap = |link: &str| tb.workdir().join(format!("{link}.pcap"));
    let mut captures: Vec<_> = ["ln1", "ln2"]
        .iter()
        .map(|link| {
            std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &format!("{}-lan", tb.id),
                    "tcpdump",
                    "-i",
                    link,
                    "-U",
                    // A large capture buffer: on a busy machine tcpdump
                    // falls behind 50 MB at wire speed and the kernel
                    // drops what it has not read.
                    "-B",
                    "32768",
                    "-w",
                ])
                .arg(pcap(link))
                .args(["tcp src port 80 and greater 1000"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("tcpdump")
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(800));

    for file in ["1k.bin", "64k.bin", "1m.bin", "10m.bin", "50m.bin"] {
        let got = tb.fetch_sha256(&url(1, &format!("n2/{file}")), 120);
        assert_eq!(
            got.as_deref(),
            Some(tb.sha256_of(2, &format!("n2/{file}")).as_str()),
            "n2/{file} via node 1"
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for c in &mut captures {
        let _ = std::process::Command::new("kill")
            .arg(c.id().to_string())
            .status();
        let _ = c.wait();
    }
    let packets = |link: &str| {
        let out = std::process::Command::new("tcpdump")
            .args(["-r"])
            .arg(pcap(link))
            .output()
            .expect("tcpdump -r");
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let (via_a, via_b) = (packets("ln1"), packets("ln2"));
    // 61 MiB is about 44,000 full frames; a capture may still miss some
    // under load, so this asks for most of them. Node 2's own count of
    // translated packets, below, is exact.
    assert!(
        via_b > 30_000,
        "response data should leave node 2's wire port: {via_b} full frames captured"
    );
    assert_eq!(via_a, 0, "no response data may pass through node 1");

    assert_eq!(tb.counter(1, "handed_off"), 5);
    assert_eq!(tb.counter(2, "handed_in"), 5);
    assert_eq!(tb.counter(1, "fell_back"), 0);
    assert!(tb.counter(2, "translated_packets") > 40_000);
}

#[test]
fn content_local_to_a_stays_local_with_no_translation() {
    if !testbed::available("content_local_to_a_stays_local_with_no_translation") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    for _ in 0..3 {
        let got = tb.fetch_sha256(&url(1, "n1/1m.bin"), 30);
        assert_eq!(got.as_deref(), Some(tb.sha256_of(1, "n1/1m.bin").as_str()));
    }
    assert_eq!(tb.counter(1, "served_local"), 3);
    assert_eq!(tb.counter(1, "handed_off"), 0);
    for i in 1..=2 {
        assert_eq!(tb.counter(i, "translated_packets"), 0, "node {i}");
        assert_eq!(tb.counter(i, "handed_in"), 0, "node {i}");
    }
}

/// One of node `i`'s kernel TCP counters (`nstat` names).
fn kernel_counter(tb: &Testbed, i: usize, name: &str) -> u64 {
    let out = tb.on_node(i, &["nstat", "-asz", name]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("nstat has no {name} on node {i}: {text}"))
}

/// The origin's kernel completes a connection with its request, not with
/// the handshake ACK: a connection handed off never becomes a socket
/// there (its SYN queue entry is reset), and one served there, or from a
/// client slow to send its request, still completes and is answered.
#[test]
fn a_handed_off_connection_never_reaches_the_origins_web_server() {
    if !testbed::available("a_handed_off_connection_never_reaches_the_origins_web_server") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    let opens = |tb: &Testbed| kernel_counter(tb, 1, "TcpPassiveOpens");
    let embryonic_resets = |tb: &Testbed| kernel_counter(tb, 1, "TcpExtEmbryonicRsts");
    let (opens0, resets0) = (opens(&tb), embryonic_resets(&tb));
    for _ in 0..20 {
        let got = tb.fetch_sha256(&url(1, "n2/1k.bin"), 10);
        assert_eq!(got.as_deref(), Some(tb.sha256_of(2, "n2/1k.bin").as_str()));
    }
    assert_eq!(tb.counter(1, "handed_off"), 20);
    assert_eq!(tb.counter(1, "handshakes_deferred"), 20);
    assert_eq!(
        opens(&tb) - opens0,
        0,
        "node 1's kernel made no socket for them"
    );
    assert_eq!(
        embryonic_resets(&tb) - resets0,
        20,
        "each left node 1's SYN queue at its RST"
    );

    // Served here: the request completes the kernel's handshake.
    let got = tb.fetch_sha256(&url(1, "n1/1k.bin"), 10);
    assert_eq!(got.as_deref(), Some(tb.sha256_of(1, "n1/1k.bin").as_str()));
    assert_eq!(opens(&tb) - opens0, 1);

    // A client that waits past the kernel's first SYN-ACK retransmission
    // (1 s) completes the handshake with its answer to it, and is handed
    // off as any other.
    let slow = format!(
        r#"
import socket, time
s = socket.create_connection(("{ip}", 80), timeout=10)
time.sleep(1.5)
s.sendall(b"GET /n2/1k.bin HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n")
body = b""
while chunk := s.recv(65536):
    body += chunk
print(body.split(b"\r\n")[0].decode(), len(body.split(b"\r\n\r\n", 1)[1]))
"#,
        ip = node_ip(1)
    );
    assert_eq!(tb.client_python(&slow).trim(), "HTTP/1.1 200 OK 1024");
    assert_eq!(tb.counter(1, "handed_off"), 21);
    assert_eq!(tb.counter(1, "fell_back"), 0);
}

#[test]
fn keep_alive_requests_are_all_answered_by_the_target() {
    if !testbed::available("keep_alive_requests_are_all_answered_by_the_target") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // One connection, three requests: curl reuses it for the same host.
    let out = tb.client(&[
        "curl",
        "-sf",
        "--max-time",
        "20",
        &url(1, "n2/whoami.txt"),
        &url(1, "n2/1k.bin"),
        &url(1, "n2/whoami.txt"),
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-w",
        "%{num_connects} ",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("n2 content"),
        "the last request was answered by node 2: {body:?}"
    );
    let connects: Vec<&str> = body
        .split_whitespace()
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(
        connects,
        ["1", "0", "0"],
        "one connection carried all three: {body:?}"
    );
    assert_eq!(tb.counter(1, "handed_off"), 1);
    assert_eq!(tb.counter(2, "handed_in"), 1);
}

#[test]
fn two_hundred_concurrent_connections_mixing_local_and_handed_off() {
    if !testbed::available("two_hundred_concurrent_connections_mixing_local_and_handed_off") {
        return;
    }
    let tb = Testbed::up_cluster(3);
    let intact = concurrent_downloads(&tb, 3, "64k.bin", 200, 200);
    assert_eq!(intact, 200, "every download intact");

    // Let the targets' flows linger out, then the counters must add up.
    assert!(
        tb.wait_for(10, || tb.counter(1, "flows_active") == 0),
        "origin flows left over"
    );
    let seen = tb.counter(1, "conns_seen");
    let (local, off, back) = (
        tb.counter(1, "served_local"),
        tb.counter(1, "handed_off"),
        tb.counter(1, "fell_back"),
    );
    assert_eq!(seen, 200);
    assert_eq!(
        local + off + back,
        seen,
        "local {local} + handed off {off} + fell back {back}"
    );
    assert_eq!(off, tb.counter(2, "handed_in") + tb.counter(3, "handed_in"));
    assert!(
        off >= 130,
        "two thirds of 200 go to nodes 2 and 3; {off} did"
    );
}

#[test]
fn downloads_through_a_handoff_survive_two_percent_loss() {
    if !testbed::available("downloads_through_a_handoff_survive_two_percent_loss") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // 2 % of the client's packets are lost each way.
    tb.client_loss(2);

    for file in ["1m.bin", "10m.bin"] {
        let got = tb.fetch_sha256(&url(1, &format!("n2/{file}")), 120);
        assert_eq!(
            got.as_deref(),
            Some(tb.sha256_of(2, &format!("n2/{file}")).as_str()),
            "n2/{file} under loss"
        );
    }
    assert_eq!(tb.counter(1, "handed_off"), 2);
    assert_eq!(tb.counter(2, "drop_untranslatable"), 0);
}

#[test]
fn a_stopped_target_means_fallback_for_new_requests_and_resets_for_old_ones() {
    if !testbed::available(
        "a_stopped_target_means_fallback_for_new_requests_and_resets_for_old_ones",
    ) {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // A slow download handed to node 2, under way when node 2's Baton stops.
    let slow = tb.spawn_client(&[
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "--limit-rate",
        "1M",
        "--max-time",
        "60",
        "-w",
        "%{http_code} %{size_download}",
        &url(1, "n2/50m.bin"),
    ]);
    assert!(
        tb.wait_for(10, || tb.counter(1, "handed_off") == 1),
        "the download was handed off"
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    tb.stop_baton(2);
    let stopped = std::time::Instant::now();
    let out = slow.wait_with_output().unwrap();
    let waited = stopped.elapsed();
    assert!(
        !out.status.success(),
        "the download cannot complete without node 2"
    );
    assert!(
        waited.as_secs() < 15,
        "the client was reset promptly, not left hanging ({waited:?})"
    );
    assert_eq!(tb.counter(1, "peer_down_resets"), 1);

    // New requests for node 2's content: node 2 alone serves them, so
    // nobody can now, and node 1 (which has no such file) says so honestly
    // and at once: a 503, never its own 404.
    assert!(
        tb.wait_for(10, || !tb.peer_up(1, "n2")),
        "node 1 notices node 2 is down"
    );
    let status = tb.http_status(&url(1, "n2/whoami.txt"));
    assert_eq!(status, "503");
    assert_eq!(tb.counter(1, "refused_unavailable"), 1);
    assert_eq!(
        tb.counter(1, "handed_off"),
        1,
        "nothing more was handed to a down peer"
    );
}

#[test]
fn a_peer_with_the_wrong_key_is_rejected_and_gets_no_handoffs() {
    if !testbed::available("a_peer_with_the_wrong_key_is_rejected_and_gets_no_handoffs") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    tb.stop_baton(2);
    let wrong = tb.workdir().join("wrong.key");
    std::fs::write(&wrong, "11".repeat(32)).unwrap();
    let config = tb.config_path(2);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            &format!("{}/cluster.key", tb.workdir().display()),
            wrong.to_str().unwrap(),
        ),
    )
    .unwrap();
    tb.start_baton(2);

    assert!(
        tb.wait_for(15, || tb.control_counter(1, "peer_handshake_failures") > 0),
        "node 1 counts the failed handshakes"
    );
    assert!(!tb.peer_up(1, "n2") && !tb.peer_up(2, "n1"));
    let status = tb.http_status(&url(1, "n2/whoami.txt"));
    assert_eq!(
        status, "503",
        "node 2's content, and node 2 unreachable: nobody can serve it"
    );
    assert_eq!(tb.counter(1, "handed_off"), 0);
    assert_eq!(tb.counter(2, "handed_in"), 0);
    assert!(
        tb.log(1).contains("n2") || tb.log(1).contains("198.18.0.12"),
        "the rejection is logged"
    );
}

#[test]
fn both_addressing_modes_node_address_and_cluster_vip() {
    if !testbed::available("both_addressing_modes_node_address_and_cluster_vip") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // The client reaches the VIP through node 1 (a static neighbour entry,
    // as an upstream router would have); node 2 answers from the VIP.
    for base in [
        format!("http://{}", node_ip(1)),
        format!("http://{}", testbed::VIP),
    ] {
        let got = tb.fetch_sha256(&format!("{base}/n2/1m.bin"), 30);
        assert_eq!(
            got.as_deref(),
            Some(tb.sha256_of(2, "n2/1m.bin").as_str()),
            "{base}"
        );
        let mine = tb
            .fetch(&format!("{base}/n1/whoami.txt"), 10)
            .expect("local content");
        assert_eq!(
            String::from_utf8_lossy(&mine).trim(),
            "n1 content",
            "{base}"
        );
    }
    assert_eq!(tb.counter(1, "handed_off"), 2);
    assert_eq!(tb.counter(1, "served_local"), 2);
}

#[test]
fn https_is_routed_by_sni_without_decryption() {
    if !testbed::available("https_is_routed_by_sni_without_decryption") {
        return;
    }
    let tb = Testbed::up_cluster(3);
    for (name, expect) in [
        ("n1", "n1 content"),
        ("n2", "n2 content"),
        ("n3", "n3 content"),
    ] {
        let host = format!("{name}.baton.test");
        let out = tb.client(&[
            "curl",
            "-sf",
            "-k",
            "--max-time",
            "10",
            "--resolve",
            &format!("{host}:443:{}", node_ip(1)),
            &format!("https://{host}/{name}/whoami.txt"),
        ]);
        assert!(
            out.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expect);
    }
    assert_eq!(tb.counter(1, "handed_off"), 2);
    assert_eq!(tb.counter(2, "handed_in") + tb.counter(3, "handed_in"), 2);
}

#[test]
fn bad_requests_are_counted_served_locally_and_leak_no_flow() {
    if !testbed::available("bad_requests_are_counted_served_locally_and_leak_no_flow") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    let ip = node_ip(1);
    let script = format!(
        r#"
import socket, time
def conn():
    return socket.create_connection(("{ip}", 80), timeout=10)
# Garbage instead of HTTP: the local nginx answers 400.
s = conn(); s.sendall(b"\x00\x01 not http at all\r\n\r\n"); print(s.recv(100)[:12]); s.close()
# A request that never completes: held until the hold limit, then local.
s = conn(); s.sendall(b"GET /n2/whoami.txt HTTP/1.1\r\nHo"); time.sleep(0.6)
s.sendall(b"st: x\r\n\r\n"); print(s.recv(100)[:12]); s.close()
# A client that resets right after its request, mid-handoff.
s = conn(); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
s.sendall(b"GET /n2/whoami.txt HTTP/1.1\r\nHost: x\r\n\r\n"); s.close()
"#
    );
    let report = tb.client_python(&script);
    let lines: Vec<&str> = report.lines().collect();
    assert!(
        lines[0].contains("400"),
        "garbage gets nginx's 400: {report}"
    );
    assert!(
        lines[1].contains("404"),
        "an undecided request is served locally: {report}"
    );
    assert_eq!(tb.counter(1, "bad_request"), 1);
    assert_eq!(tb.counter(1, "hold_undecided"), 1);

    // Whatever happened to the reset connection, every flow is gone once
    // the targets' linger is over, on both nodes.
    let settled = tb.wait_for(15, || {
        tb.counter(1, "flows_active") == 0 && tb.counter(2, "flows_active") == 0
    });
    assert!(
        settled,
        "flows leaked: n1 {} n2 {}",
        tb.counter(1, "flows_active"),
        tb.counter(2, "flows_active")
    );
    // The appliance is still serving.
    assert!(tb.fetch(&url(1, "n2/whoami.txt"), 10).is_some());
}

#[test]
fn two_workers_per_node_steer_flows_to_their_owner_and_hand_off() {
    if !testbed::available("two_workers_per_node_steer_flows_to_their_owner_and_hand_off") {
        return;
    }
    let tb = Testbed::up_cluster_two_workers(2);
    let got = tb.fetch_sha256(&url(1, "n2/10m.bin"), 60);
    assert_eq!(got.as_deref(), Some(tb.sha256_of(2, "n2/10m.bin").as_str()));
    let intact = concurrent_downloads(&tb, 2, "1k.bin", 200, 100);
    assert_eq!(intact, 200, "every download intact");
    // Both workers took part, and packets that arrived on a worker that
    // does not own their flow were passed to the one that does.
    let stats = tb.stats(1);
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    assert!(workers
        .iter()
        .all(|w| w["counters"]["conns_seen"].as_u64().unwrap() > 0));
    let steered = tb.counter(1, "steered_in") + tb.counter(2, "steered_in");
    assert!(steered > 0, "no packet needed steering");
    assert_eq!(tb.counter(1, "steered_in"), tb.counter(1, "steered_out"));
    assert_eq!(
        tb.counter(1, "drop_steer_ring_full") + tb.counter(2, "drop_steer_ring_full"),
        0
    );
    assert_eq!(tb.counter(1, "handed_off"), 101);
    assert_eq!(tb.counter(2, "handed_in"), 101);
}
