//! A handoff never answers from the wrong node, and no node's failure or
//! restart loses a handed-off connection: the netns testbed with real
//! Linux TCP, nginx, curl, wrk and python clients.

mod testbed;

use testbed::{node_ip, Testbed};

/// A python client in the client namespace: `count` requests, one per
/// connection (`Connection: close`), going round `urls`; returns each
/// answer as "STATUS BODY" (or the client's exception).
fn answers(tb: &Testbed, urls: &[String], count: usize) -> Vec<String> {
    let script = format!(
        r#"
import http.client, urllib.parse
urls = {urls:?}
for i in range({count}):
    u = urllib.parse.urlsplit(urls[i % len(urls)])
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    try:
        c.request("GET", u.path, headers={{"Connection": "close"}})
        r = c.getresponse()
        print(r.status, r.read().decode(errors="replace").strip()[:40])
    except Exception as e:
        print(type(e).__name__)
    finally:
        c.close()
"#
    );
    tb.client_python(&script)
        .lines()
        .map(str::to_string)
        .collect()
}

/// How many of `answers` are `want`, and a tally of the others.
fn tally(answers: &[String], want: &str) -> (usize, String) {
    let mut others = std::collections::BTreeMap::<&str, usize>::new();
    for a in answers.iter().filter(|a| *a != want) {
        *others.entry(a).or_default() += 1;
    }
    (
        answers.len() - others.values().sum::<usize>(),
        format!("{others:?}"),
    )
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
    let (good, bad) = tally(&answers(&tb, &urls, 400), "200 n2 content");
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

/// A one-request-at-a-time HTTP server on port 8080 of node `i`, with an
/// accept queue of `backlog`, 5 ms per request: a 200 naming the node for
/// paths under /nI/, a 404 for the rest (as nginx would for content it
/// lacks). Stopped when dropped.
fn slow_server(tb: &Testbed, i: usize, backlog: u32) -> Server {
    let script = format!(
        r#"
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen({backlog})
while True:
    c, _ = s.accept()
    c.settimeout(5)
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                break
            head += d
        mine = head.split(b" ")[1].startswith(b"/n{i}/")
        time.sleep(0.005)
        c.sendall(b"HTTP/1.1 %s\r\nContent-Length: 3\r\nConnection: close\r\n\r\nn{i}\n"
                  % (b"200 OK" if mine else b"404 Not Found"))
    except Exception:
        pass
    c.close()
"#
    );
    let server = Server(
        std::process::Command::new("ip")
            .args(["netns", "exec", &format!("{}-n{i}", tb.id), "python3", "-c"])
            .arg(script)
            .spawn()
            .expect("python3"),
    );
    let url = format!("http://{}:8080/n{i}/", node_ip(i));
    assert!(
        tb.wait_for(10, || tb.fetch(&url, 2).is_some()),
        "the server on node {i} did not come up"
    );
    server
}

/// A server process of a test, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_target_whose_accept_queue_overflows_still_answers_every_request_itself() {
    if !testbed::available(
        "a_target_whose_accept_queue_overflows_still_answers_every_request_itself",
    ) {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // Node 1's kernel takes every connection at once; node 2's, with room
    // for two, drops SYNs and handshakes' last ACKs while 16 connections
    // at a time want it.
    let _origin = slow_server(&tb, 1, 128);
    let _target = slow_server(&tb, 2, 1);
    let overflows = || {
        let out = tb.on_node(2, &["nstat", "-az", "TcpExtListenOverflows"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("TcpExtListenOverflows"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = overflows();
    let url = format!("http://{}:8080/n2/slow", node_ip(1));
    let wrk = tb.wrk(&["-t1", "-c16", "-d5s", "-H", "Connection: close", &url]);
    eprintln!(
        "{} requests, {} accept-queue overflows on node 2, {} replayed SYNs sent again",
        wrk.requests(),
        overflows() - before,
        tb.counter(2, "replays_retransmitted")
    );
    for i in [1, 2] {
        eprintln!("node {i}: {}", tb.nonzero_counters(i));
    }
    assert!(wrk.requests() > 100, "{}", wrk.report);
    // Every answer is node 2's 200: node 1 has a server too, whose 404s
    // would be answers from the wrong node, and a 503 a handoff given up.
    assert_eq!(wrk.non_2xx(), 0, "{}", wrk.report);
    assert!(overflows() > before, "the accept queue never overflowed");
    // A full queue drops either the replayed SYN (Baton sends it again,
    // `replays_retransmitted`) or, when it fills between the SYN-ACK and
    // the request that completes the handshake, that request (the client
    // sends it again); which one varies from run to run, and both count
    // as overflows. Neither may cost a handoff.
    assert_eq!(tb.counter(2, "replay_timed_out"), 0);
    for counter in ["fell_back", "refused_unavailable", "handoff_timed_out"] {
        assert_eq!(tb.counter(1, counter), 0, "{counter}");
    }
}

#[test]
fn a_pool_member_that_refuses_is_passed_over_and_a_pool_of_refusers_gets_503s() {
    if !testbed::available(
        "a_pool_member_that_refuses_is_passed_over_and_a_pool_of_refusers_gets_503s",
    ) {
        return;
    }
    // /shared/ lives on nodes 2 and 3, which split it by consistent hash;
    // node 1, where the client connects, has none of it.
    let tb = Testbed::up_cluster(3);
    let urls: Vec<String> = (0..16)
        .map(|k| format!("http://{}/shared/{k}.txt", node_ip(1)))
        .collect();
    let from = |node: usize| {
        (0..16)
            .map(|k| format!("200 shared {k} from n{node}"))
            .collect::<Vec<_>>()
    };
    let got = answers(&tb, &urls, 16);
    let on_2 = got.iter().filter(|a| a.ends_with("from n2")).count();
    let on_3 = got.iter().filter(|a| a.ends_with("from n3")).count();
    assert_eq!(on_2 + on_3, 16, "{got:?}");
    assert!(on_2 > 0 && on_3 > 0, "the pool is split: {got:?}");

    // Node 2's server stops: its kernel refuses the replayed connections,
    // and node 1 hands each of its requests to node 3 instead.
    let stop_nginx = |i: usize| {
        let pid = std::fs::read_to_string(tb.workdir().join(format!("n{i}/nginx.pid"))).unwrap();
        let out = std::process::Command::new("kill")
            .arg(pid.trim())
            .output()
            .unwrap();
        assert!(out.status.success());
        let url = format!("http://{}/shared/0.txt", node_ip(i));
        assert!(
            tb.wait_for(10, || tb.fetch(&url, 2).is_none()),
            "node {i} still serves"
        );
    };
    stop_nginx(2);
    assert_eq!(answers(&tb, &urls, 16), from(3));
    assert_eq!(tb.counter(1, "handoffs_retried"), on_2 as u64);
    assert_eq!(tb.counter(2, "kernel_refused"), on_2 as u64);

    // Node 3's too: nobody can serve /shared/, and every client is told so.
    stop_nginx(3);
    let got = answers(&tb, &urls, 16);
    assert!(
        got.iter()
            .all(|a| a == "503 No server can take this request now."),
        "{got:?}"
    );
    assert_eq!(tb.counter(1, "refused_unavailable"), 16);
    for counter in ["fell_back", "handoff_timed_out"] {
        assert_eq!(tb.counter(1, counter), 0, "{counter}");
    }
}

#[test]
fn two_workers_per_node_route_every_message_of_tens_of_thousands_of_handoffs() {
    if !testbed::available(
        "two_workers_per_node_route_every_message_of_tens_of_thousands_of_handoffs",
    ) {
        return;
    }
    // Each handoff's messages (request, accept, closed) must reach the
    // worker that owns its flow on either node, whichever worker's id
    // serial they carry.
    let tb = Testbed::up_cluster_two_workers(2);
    let url = format!("http://{}/n2/whoami.txt", node_ip(1));
    let mut rounds = 0;
    while tb.counter(1, "handed_off") < 20_000 {
        rounds += 1;
        assert!(rounds <= 40, "20,000 handoffs not done in 40 rounds of 4 s");
        let wrk = tb.wrk(&["-t2", "-c32", "-d4s", "-H", "Connection: close", &url]);
        assert_eq!(wrk.non_2xx(), 0, "{}", wrk.report);
    }
    // Every connection handed off arrived, and nothing went unowned.
    let gauges = |i: usize| {
        [
            "flows_active",
            "handoffs_pending",
            "handed_off_active",
            "handed_in_active",
        ]
        .map(|g| format!("{g}={}", tb.counter(i, g)))
        .join(" ")
    };
    assert!(
        tb.wait_for(10, || tb.counter(1, "flows_active") == 0
            && tb.counter(2, "flows_active") == 0),
        "flows left: node 1: {}; node 2: {}\nnode 1: {}\nnode 2: {}",
        gauges(1),
        gauges(2),
        tb.nonzero_counters(1),
        tb.nonzero_counters(2)
    );
    let handed_off = tb.counter(1, "handed_off");
    // A client that resets while its handoff is pending (wrk does, as each
    // round ends), or reuses its port while the target lingers, may cross
    // the target's answer: each end then hears of a handoff it has already
    // forgotten, and drops and counts the message. Those are late, not
    // lost: every handoff the target took, the origin took too, or forgot.
    let late = tb.counter(1, "drop_unknown_handoff");
    let handed_in = tb.counter(2, "handed_in");
    eprintln!(
        "{handed_off} handoffs in {rounds} rounds; {} clients reset mid-handoff; \
         {late} late answers at node 1, {} at node 2",
        tb.counter(1, "client_reset_mid_handoff"),
        tb.counter(2, "drop_unknown_handoff"),
    );
    assert!(
        (handed_off..=handed_off + late).contains(&handed_in),
        "{handed_in} handed in"
    );
    for i in [1, 2] {
        assert_eq!(tb.counter(i, "drop_misrouted"), 0, "node {i}");
        assert_eq!(tb.control_counter(i, "control_bad_messages"), 0, "node {i}");
    }
    for counter in [
        "fell_back",
        "refused_unavailable",
        "handoff_timed_out",
        "handoff_rejected",
    ] {
        assert_eq!(tb.counter(1, counter), 0, "{counter}");
    }
}

/// A rate-limited 50 MB download handed from node 1 to node 2, node 1's
/// Baton stopped by `stop` mid-download and started again at once: the
/// download completes, intact, and node 1 learned the connection again.
fn origin_restart_during_a_download(stop: impl Fn(&Testbed)) {
    let tb = Testbed::up_cluster(2);
    let url = format!("http://{}/n2/50m.bin", node_ip(1));
    let cmd =
        format!("set -o pipefail; curl -sf --limit-rate 5M --max-time 90 '{url}' | sha256sum");
    let download = tb.spawn_client(&["bash", "-c", &cmd]);
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
