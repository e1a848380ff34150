//! A handoff never answers from the wrong node, and no node's failure or
//! restart loses a handed-off connection: the netns testbed with real
//! Linux TCP, nginx, curl, wrk and python clients.

mod testbed;

use testbed::{node_ip, Testbed};

/// A python client in the client namespace: `count` requests, one per
/// connection (`Connection: close`), alternating between `urls`; prints
/// how many came back 200 with the body `expect`, and the statuses of the
/// others.
fn alternate(tb: &Testbed, urls: &[String], expect: &str, count: usize) -> (usize, String) {
    let script = format!(
        r#"
import http.client, urllib.parse, collections
urls = {urls:?}
good, bad = 0, collections.Counter()
for i in range({count}):
    u = urllib.parse.urlsplit(urls[i % len(urls)])
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    try:
        c.request("GET", u.path, headers={{"Connection": "close"}})
        r = c.getresponse()
        body = r.read().decode(errors="replace").strip()
        if r.status == 200 and body == {expect:?}:
            good += 1
        else:
            bad["%d %s" % (r.status, body[:20])] += 1
    except Exception as e:
        bad[type(e).__name__] += 1
    finally:
        c.close()
print(good, dict(bad))
"#
    );
    let out = tb.client_python(&script);
    let (good, rest) = out.trim().split_once(' ').unwrap_or((out.trim(), ""));
    (good.parse().unwrap_or(0), rest.to_string())
}

#[test]
fn direct_and_handed_off_connections_from_one_small_port_range_never_collide() {
    if !testbed::available(
        "direct_and_handed_off_connections_from_one_small_port_range_never_collide",
    ) {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // Sixteen client ports: every one is reused many times, by direct
    // connections to node 2 and by ones handed from node 1 to node 2,
    // in both orders, while node 2 holds TIME-WAIT sockets of both kinds.
    let out = tb.client(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40015"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let urls = [
        format!("http://{}/n2/whoami.txt", node_ip(2)),
        format!("http://{}/n2/whoami.txt", node_ip(1)),
    ];
    let (good, bad) = alternate(&tb, &urls, "n2 content", 400);
    assert_eq!(good, 400, "every answer 200 from node 2; the others: {bad}");
    assert_eq!(tb.counter(1, "handed_off"), 200);
    for counter in [
        "fell_back",
        "refused_unavailable",
        "handoff_rejected",
        "handoff_timed_out",
    ] {
        assert_eq!(tb.counter(1, counter), 0, "{counter}");
    }
    assert_eq!(tb.counter(2, "kernel_refused"), 0);
    assert_eq!(tb.counter(2, "replay_timed_out"), 0);
}

/// A rate-limited 50 MB download handed from node 1 to node 2, node 1's
/// Baton stopped by `stop` mid-download and started again at once: the
/// download completes, intact, and node 1 learned the connection again.
fn origin_restart_during_a_download(stop: impl Fn(&Testbed)) {
    let tb = Testbed::up_cluster(2);
    let url = format!("http://{}/n2/50m.bin", node_ip(1));
    let cmd =
        format!("set -o pipefail; curl -sf --limit-rate 5M --max-time 90 '{url}' | sha256sum");
    let download = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}-client", tb.id),
            "bash",
            "-c",
            &cmd,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    assert!(
        tb.wait_for(10, || tb.counter(1, "handed_off") == 1),
        "the download was handed off"
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    stop(&tb);
    tb.start_baton(1);
    let out = download.wait_with_output().expect("curl");
    let got = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the download failed: {got}");
    assert_eq!(
        got.split_whitespace().next(),
        Some(tb.sha256_of(2, "n2/50m.bin").as_str()),
        "intact"
    );
    assert_eq!(tb.counter(1, "flows_recovered"), 1);
    assert_eq!(tb.counter(2, "orphans_reset"), 0);
}

#[test]
fn a_killed_origin_restarted_at_once_loses_no_handed_off_download() {
    if !testbed::available("a_killed_origin_restarted_at_once_loses_no_handed_off_download") {
        return;
    }
    origin_restart_during_a_download(|tb| tb.kill_baton(1));
}

#[test]
fn a_stopped_origin_restarted_at_once_loses_no_handed_off_download() {
    if !testbed::available("a_stopped_origin_restarted_at_once_loses_no_handed_off_download") {
        return;
    }
    origin_restart_during_a_download(|tb| tb.stop_baton(1));
}
