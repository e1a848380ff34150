//! `baton drain` on the netns testbed, against real nginx and curl: a
//! draining node finishes what it serves, its peers stop handing it new
//! connections, and `--undo` brings it back.

mod testbed;

use std::io::Read;

use testbed::{node_ip, Testbed};

#[test]
fn a_draining_node_finishes_its_download_gets_no_new_handoffs_and_undo_restores_it() {
    if !testbed::available(
        "a_draining_node_finishes_its_download_gets_no_new_handoffs_and_undo_restores_it",
    ) {
        return;
    }
    let tb = Testbed::up_cluster(2);
    let whoami = format!("http://{}/n2/whoami.txt", node_ip(1));
    // A rate-limited download handed from node 1 to node 2, under way while
    // node 2 drains.
    let cmd = format!(
        "set -o pipefail; curl -sf --limit-rate 2M --max-time 60 'http://{}/n2/10m.bin' | sha256sum",
        node_ip(1)
    );
    let mut download = tb.spawn_client(&["bash", "-c", &cmd]);
    assert!(
        tb.wait_for(10, || tb.counter(1, "handed_off") == 1),
        "the download was handed off"
    );

    tb.drain(2, false);
    let stats = tb.stats(2);
    assert_eq!(
        stats["draining"], true,
        "baton stats shows draining: {stats}"
    );
    assert!(
        tb.wait_for(5, || tb.peer_state(1, "n2") == "draining"),
        "node 1 hears that node 2 drains"
    );
    assert_eq!(peer_draining_gauge(&tb, 1, "n2"), "1");
    // Node 2 alone serves /n2/: with it draining, node 1 gives the pool's
    // fallback, a 503, and hands nothing more to it.
    let handed_off = tb.counter(1, "handed_off");
    assert_eq!(tb.http_status(&whoami), "503");
    assert_eq!(tb.counter(1, "handed_off"), handed_off);
    assert_eq!(tb.counter(1, "refused_unavailable"), 1);

    // What node 2 already served finishes, intact.
    let status = download.wait().expect("curl");
    let mut out = String::new();
    download
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "the download failed: {out}");
    assert_eq!(
        out.split_whitespace().next(),
        Some(tb.sha256_of(2, "n2/10m.bin").as_str())
    );
    let flows = tb.stats(2)["workers"][0]["counters"]["flows_active"].clone();
    eprintln!("node 2 draining; flows left after the download: {flows}");

    tb.drain(2, true);
    // (The key is left out when false.)
    assert!(!tb.stats(2)["draining"].as_bool().unwrap_or(false));
    assert!(
        tb.wait_for(5, || tb.peer_state(1, "n2") == "up"),
        "node 1 hears that node 2 takes handoffs again"
    );
    assert_eq!(peer_draining_gauge(&tb, 1, "n2"), "0");
    let body = tb.client(&["curl", "-sf", "--max-time", "5", &whoami]);
    assert_eq!(String::from_utf8_lossy(&body.stdout), "n2 content\n");
    assert_eq!(tb.counter(1, "handed_off"), handed_off + 1);
    assert_eq!(tb.counter(2, "handoffs_refused_draining"), 0);
}

/// `baton_peer_draining{peer="PEER"}` as node `i` serves it on /metrics
/// (port 9100 on its address, see netns.sh).
fn peer_draining_gauge(tb: &Testbed, i: usize, peer: &str) -> String {
    let url = format!("http://{}:9100/metrics", node_ip(i));
    let text = tb.fetch(&url, 5).expect("GET /metrics");
    let prefix = format!("baton_peer_draining{{peer=\"{peer}\"}} ");
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("no {prefix:?} on node {i}'s /metrics"))
}
