//! `baton reload` and SIGHUP on the netns testbed, against real nginx,
//! curl and wrk: rules move between nodes while connections run, a broken
//! file is refused and changes nothing, and peers come and go.

mod testbed;

use std::io::Read;
use std::time::{Duration, Instant};

use testbed::{node_ip, Testbed, Wrk};

/// The first 20 MiB of node 2's 50m.bin.
const RANGE: u64 = 20 * 1024 * 1024;

/// Node `i`'s config with `edit` applied, written in place.
fn edit_config(tb: &Testbed, i: usize, edit: impl Fn(&str) -> String) {
    let path = tb.config_path(i);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit changed nothing");
    std::fs::write(&path, edited).unwrap();
}

fn rule(prefix: &str, pool: &str) -> String {
    format!("{{ path_prefix = \"{prefix}\", pool = \"{pool}\" }}")
}

fn output_of(child: std::process::Child) -> (bool, String) {
    let mut child = child;
    let status = child.wait().expect("client");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status.success(), out)
}

#[test]
fn a_reload_moves_a_rule_under_load_refuses_a_typo_and_sighup_reloads_too() {
    if !testbed::available("a_reload_moves_a_rule_under_load_refuses_a_typo_and_sighup_reloads_too")
    {
        return;
    }
    let tb = Testbed::up_cluster(3);
    let url = |path: &str| format!("http://{}/{path}", node_ip(1));
    // A rate-limited 20 MiB download handed from node 1 to node 2, under
    // way through every reload below.
    let cmd = format!(
        "set -o pipefail; curl -sf -r 0-{} --limit-rate 3M --max-time 60 '{}' | sha256sum",
        RANGE - 1,
        url("n2/50m.bin")
    );
    let download = tb.spawn_client(&["bash", "-c", &cmd]);
    assert!(
        tb.wait_for(10, || tb.counter(1, "handed_off") == 1),
        "the download was handed off"
    );
    // And local requests on node 1, on keep-alive connections.
    let wrk = tb.spawn_client(&["wrk", "-t1", "-c4", "-d6s", &url("n1/1k.bin")]);
    std::thread::sleep(Duration::from_millis(500));

    // /n2/ moves to node 3.
    let to_n2 = rule("/n2/", "n2");
    let to_n3 = rule("/n2/", "n3");
    edit_config(&tb, 1, |t| t.replace(&to_n2, &to_n3));
    let out = tb.reload(&tb.config_path(1), &[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reload failed: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("handoff.rules"), "{said}");
    // Node 3 has no /n2/ content: its nginx answers 404, for a request
    // node 1 handed to it.
    let handed_in = tb.counter(3, "handed_in");
    assert_eq!(tb.http_status(&url("n2/whoami.txt")), "404");
    assert_eq!(tb.counter(3, "handed_in"), handed_in + 1);

    // A typo: refused, by the file's line and key, and nothing changes.
    // (In a copy: `baton stats --config` reads the file in place.)
    let good = std::fs::read_to_string(tb.config_path(1)).unwrap();
    let typo = tb.workdir().join("n1-typo.toml");
    let typo_text = good.replace(&to_n3, &to_n3.replace("path_prefix", "path_prefx"));
    std::fs::write(&typo, typo_text).unwrap();
    let line = good.lines().position(|l| l.contains(&to_n3)).unwrap() + 1;
    let file = typo.display().to_string();
    for via_socket in [false, true] {
        let socket = tb.workdir().join("n1.sock");
        let extra: &[&str] = if via_socket {
            &["--socket", socket.to_str().unwrap()]
        } else {
            &[]
        };
        let out = tb.reload(&typo, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{file}:{line}:")) && err.contains("path_prefx"),
            "file, line and key: {err}"
        );
        assert!(err.contains("the running configuration stays"), "{err}");
        eprintln!("refused: {}", err.lines().next().unwrap_or_default());
    }
    // Asked through its socket, the instance itself refused it.
    assert_eq!(tb.control_counter(1, "control_reloads_refused"), 1);
    assert_eq!(tb.http_status(&url("n2/whoami.txt")), "404");
    assert_eq!(tb.counter(3, "handed_in"), handed_in + 2);
    assert_eq!(
        tb.fetch(&url("n3/whoami.txt"), 5).as_deref(),
        Some(&b"n3 content\n"[..])
    );

    // SIGHUP rereads the file: /n2/ goes back to node 2.
    std::fs::write(tb.config_path(1), good.replace(&to_n3, &to_n2)).unwrap();
    tb.signal_baton(1, "HUP");
    assert!(
        tb.wait_for(5, || tb.control_counter(1, "control_reloads_applied") == 2),
        "SIGHUP reloaded: {}",
        tb.log(1)
    );
    assert_eq!(
        tb.fetch(&url("n2/whoami.txt"), 5).as_deref(),
        Some(&b"n2 content\n"[..])
    );

    let (ok, report) = output_of(wrk);
    assert!(ok, "wrk failed: {report}");
    let wrk = Wrk { report };
    eprintln!("wrk during the reloads: {}", wrk.rate());
    assert!(wrk.requests() > 0, "{}", wrk.report);
    assert_eq!(wrk.non_2xx(), 0, "{}", wrk.report);
    assert!(!wrk.socket_errors(), "{}", wrk.report);

    let (ok, out) = output_of(download);
    assert!(ok, "the download failed: {out}");
    let full = tb.workdir().join("n2/www/n2/50m.bin");
    let want = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("head -c {RANGE} '{}' | sha256sum", full.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.split_whitespace().next(),
        String::from_utf8_lossy(&want.stdout)
            .split_whitespace()
            .next(),
        "the download is intact"
    );
    assert_eq!(tb.counter(1, "handed_off"), 5, "every handoff counted");
    assert!(tb.log(1).contains("reload refused"), "{}", tb.log(1));
}

#[test]
fn a_removed_peer_finishes_its_download_is_no_longer_chosen_and_added_back_is_used_at_once() {
    if !testbed::available(
        "a_removed_peer_finishes_its_download_is_no_longer_chosen_and_added_back_is_used_at_once",
    ) {
        return;
    }
    let tb = Testbed::up_cluster(3);
    let url = |path: &str| format!("http://{}/{path}", node_ip(1));
    // A download handed to node 3, under way when node 3 is removed.
    let cmd = format!(
        "set -o pipefail; curl -sf --limit-rate 2M --max-time 60 '{}' | sha256sum",
        url("n3/10m.bin")
    );
    let download = tb.spawn_client(&["bash", "-c", &cmd]);
    assert!(
        tb.wait_for(10, || tb.counter(3, "handed_in") == 1),
        "the download was handed to node 3"
    );
    let full = std::fs::read_to_string(tb.config_path(1)).unwrap();
    // Node 3 leaves node 1's config: its peer entry, its pool and rules,
    // and its place in the shared pool.
    let without_n3: String = full
        .lines()
        .filter(|l| !l.contains("\"n3\"") || l.contains("\"shared\""))
        .map(|l| l.replace(", \"n3\"]", "]") + "\n")
        .collect();
    std::fs::write(tb.config_path(1), &without_n3).unwrap();
    let out = tb.reload(&tb.config_path(1), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("cluster.peers"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The download holds node 3's channel open, and finishes intact.
    assert_eq!(tb.peer_state(1, "n3"), "up", "kept while the download runs");
    let (ok, out) = output_of(download);
    assert!(ok, "the download failed: {out}");
    assert_eq!(
        out.split_whitespace().next(),
        Some(tb.sha256_of(3, "n3/10m.bin").as_str())
    );
    // Then nothing is left with it: its channel closes.
    assert!(
        tb.wait_for(10, || tb.stats(1)["peer_states"].get("n3").is_none()),
        "node 1 no longer lists n3: {}",
        tb.stats(1)["peer_states"]
    );
    let handed_in = tb.counter(3, "handed_in");
    // No rule for /n3/ any more: node 1 serves it, and has none of it.
    assert_eq!(tb.http_status(&url("n3/whoami.txt")), "404");
    // The shared pool is node 2's alone now.
    for k in 0..16 {
        let body = tb.fetch(&url(&format!("shared/{k}.txt")), 5).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!("shared {k} from n2\n")
        );
    }
    assert_eq!(tb.counter(3, "handed_in"), handed_in, "n3 was not chosen");

    // Back in: used for handoffs within 2 s.
    std::fs::write(tb.config_path(1), &full).unwrap();
    let reloaded = Instant::now();
    let out = tb.reload(&tb.config_path(1), &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut first = None;
    while reloaded.elapsed() < Duration::from_secs(2) && first.is_none() {
        if tb.fetch(&url("n3/whoami.txt"), 1).as_deref() == Some(&b"n3 content\n"[..]) {
            first = Some(reloaded.elapsed());
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let first = first.unwrap_or_else(|| panic!("n3 not used within 2 s: {}", tb.log(1)));
    eprintln!(
        "n3, added back, took its first handoff {} ms after the reload",
        first.as_millis()
    );
    assert_eq!(tb.counter(3, "handed_in"), handed_in + 1);
    assert_eq!(tb.peer_state(1, "n3"), "up");
}
