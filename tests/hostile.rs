//! Baton under a careless operator and a hostile network, on the netns
//! testbed: a node stopped while connections are handed to it, strangers
//! holding the control port, peers that fall silent.

mod testbed;

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testbed::{node_ip, Testbed};

/// When a line of a Baton log was written: its leading RFC 3339 UTC
/// timestamp (`2026-12-02T13:52:49.123456Z`), as time since the epoch.
fn logged_at(line: &str) -> Option<Duration> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split(':');
    let (h, min) = (
        hms.next()?.parse::<u64>().ok()?,
        hms.next()?.parse::<u64>().ok()?,
    );
    let secs: f64 = hms.next()?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(Duration::from_secs(days * 86_400 + h * 3600 + min * 60) + Duration::from_secs_f64(secs))
}

/// The first line of `log` containing `what` written at or after `since`,
/// and how long after `since` it was written.
fn first_after(log: &str, what: &str, since: Duration) -> Option<(Duration, String)> {
    log.lines().filter(|l| l.contains(what)).find_map(|l| {
        let at = logged_at(l)?;
        (at >= since).then(|| (at - since, l.to_string()))
    })
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pid_of(tb: &Testbed, i: usize) -> String {
    std::fs::read_to_string(tb.workdir().join(format!("n{i}.pid")))
        .expect("pid file")
        .trim()
        .to_string()
}

/// Whether process `pid` still runs: exited (a zombie nobody reaped yet
/// counts as exited) or gone is not.
fn is_running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "PID (COMM) STATE ...": the state follows the last parenthesis.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The testbed's `cluster.dead_after_ms` (netns.sh).
fn dead_after(tb: &Testbed) -> Duration {
    let config = std::fs::read_to_string(tb.config_path(1)).unwrap();
    let ms = config
        .lines()
        .find_map(|l| l.strip_prefix("dead_after_ms = "))
        .and_then(|v| v.trim().parse().ok())
        .expect("dead_after_ms in the testbed config");
    Duration::from_millis(ms)
}

#[test]
fn a_stopped_target_is_down_at_its_peers_at_once_and_its_clients_reset() {
    if !testbed::available("a_stopped_target_is_down_at_its_peers_at_once_and_its_clients_reset") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // A slow download handed from node 1 to node 2, under way when node
    // 2's Baton is told to stop. The client reads 16 kB every 10 ms and
    // prints when (wall clock) its connection was reset.
    let script = format!(
        r#"
import socket, time
s = socket.socket()
# A small receive buffer: the reset is seen at the next read, not after
# megabytes of buffered data.
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
s.settimeout(30)
s.connect(("{node1}", 80))
s.sendall(b"GET /n2/50m.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
got = 0
try:
    while True:
        d = s.recv(16384)
        if not d:
            print("eof", got, time.time())
            break
        got += len(d)
        time.sleep(0.01)
except OSError as e:
    print(type(e).__name__, got, time.time())
"#,
        node1 = node_ip(1)
    );
    let slow = tb.spawn_client(&["python3", "-c", &script]);
    assert!(
        tb.wait_for(10, || tb.counter(1, "handed_off") == 1),
        "the download was handed off"
    );
    std::thread::sleep(Duration::from_millis(500));

    let pid = pid_of(&tb, 2);
    let sent = now();
    let started = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let waiter = std::thread::spawn(move || slow.wait_with_output().unwrap());
    let mut exited = None;
    while started.elapsed() < Duration::from_secs(10) {
        if !is_running(&pid) {
            exited = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = waiter.join().unwrap();
    let client = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // "ConnectionResetError BYTES WHEN"
    let mut fields = client.split_whitespace();
    let how = fields.next().unwrap_or("(nothing)").to_string();
    let reset = fields
        .nth(1)
        .and_then(|t| t.parse::<f64>().ok())
        .map(|t| Duration::from_secs_f64(t).saturating_sub(sent));
    tb.stop_baton(2); // removes the pid file (and kills it, had it hung)

    let log1 = tb.log(1);
    let down = first_after(&log1, "peer n2 down", sent);
    let log2 = tb.log(2);
    let shutdown: String = log2
        .lines()
        .skip_while(|l| !l.contains("shutting down"))
        .map(|l| l.get(..110).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!(
        "SIGTERM to node 2: node 1 logs n2 down after {} ms, the client is reset after {} ms, \
         node 2 exits after {} ms (dead_after_ms = {} ms); the client: {client}; node 2:\n{shutdown}",
        down.as_ref()
            .map_or("(never)".into(), |(d, _)| format!("{:.1}", ms(*d))),
        reset.map_or("(never)".into(), |d| format!("{:.1}", ms(d))),
        exited.map_or("(not within 10 s)".into(), |d| format!("{:.0}", ms(d))),
        dead_after(&tb).as_millis(),
    );

    let (down, _) = down.expect("node 1 logs node 2 down");
    assert!(
        down < dead_after(&tb),
        "node 1 saw the channel close, not only the silence ({down:?})"
    );
    assert!(
        log1.contains("peer down: connection closed by the peer"),
        "the channel was closed by node 2:\n{log1}"
    );
    assert_eq!(how, "ConnectionResetError", "the client is reset: {client}");
    assert_eq!(tb.counter(1, "peer_down_resets"), 1);
    assert!(exited.is_some(), "node 2's Baton exits on SIGTERM");
}

/// A process of a test, killed when dropped.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// From the client: `conns` silent TCP connections to node `i`'s control
/// port, each opened again as soon as it is closed, for `secs` seconds or
/// `cap` connections in all; prints how many were opened and closed.
fn control_port_flood(tb: &Testbed, i: usize, conns: usize, secs: u32, cap: u32) -> Background {
    let script = format!(
        r#"
import selectors, socket, time
dst = ("{addr}", 7300)
sel = selectors.DefaultSelector()
opened = closed = 0
def open_one():
    global opened
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(dst)
    sel.register(s, selectors.EVENT_READ)
    opened += 1
for _ in range({conns}):
    open_one()
end = time.time() + {secs}
while time.time() < end and opened < {cap}:
    for key, _ in sel.select(timeout=0.1):
        s = key.fileobj
        try:
            if s.recv(1):
                continue
        except BlockingIOError:
            continue
        except OSError:
            pass
        sel.unregister(s)
        s.close()
        closed += 1
        open_one()
print(opened, closed, flush=True)
"#,
        addr = node_ip(i)
    );
    Background(tb.spawn_client(&["python3", "-c", &script]))
}

#[test]
fn strangers_holding_the_control_port_do_not_keep_a_restarting_peer_out() {
    if !testbed::available("strangers_holding_the_control_port_do_not_keep_a_restarting_peer_out") {
        return;
    }
    let tb = Testbed::up_cluster(2);
    let lines_before = tb.log(2).lines().count();
    // Long enough to cover node 1's restart (about half a second here).
    let flooding_since = Instant::now();
    let mut flood = control_port_flood(&tb, 2, 64, 8, 300_000);
    std::thread::sleep(Duration::from_millis(1500));
    let refused_early = tb.control_counter(2, "peer_refused_per_source");

    tb.stop_baton(1);
    let restarting = Instant::now();
    tb.start_baton(1);
    let started = restarting.elapsed();
    let mut up = None;
    while restarting.elapsed() < Duration::from_secs(15) {
        if tb.peer_up(1, "n2") && tb.peer_up(2, "n1") {
            up = Some(restarting.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let flooding = flood.0.try_wait().unwrap().is_none();
    // It ends by itself.
    let out = std::mem::replace(&mut flood.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let flood_lasted = flooding_since.elapsed();

    let log2 = tb.log(2);
    let flood_lines: Vec<&str> = log2.lines().skip(lines_before).collect();
    let counters = [
        "peer_refused_per_source",
        "peer_refused_strangers",
        "peer_refused_peer_slots",
        "peer_handshake_failures",
    ]
    .map(|c| format!("{c}={}", tb.control_counter(2, c)));
    eprintln!(
        "64 silent connections re-opened as dropped, against node 2's control port: node 1 restarted \
         (start-baton took {} ms), then up with node 2 after {} ms more; node 2 logged {} lines in \
         about {:.1} s of flood; node 2: {}; flood (opened closed): {}",
        started.as_millis(),
        up.map_or("(never)".into(), |u| format!("{}", (u - started).as_millis())),
        flood_lines.len(),
        flood_lasted.as_secs_f64(),
        counters.join(" "),
        String::from_utf8_lossy(&out.stdout).trim(),
    );
    for l in flood_lines.iter().take(5) {
        eprintln!("  {l}");
    }
    assert!(refused_early > 0, "the flood held the control port");
    assert!(
        up.is_some(),
        "node 1 and node 2 are up with each other again"
    );
    assert!(flooding, "the flood still ran when they were");
    assert!(
        flood_lines.len() < 200,
        "the refusals are logged at a bounded rate:\n{}",
        flood_lines.join("\n")
    );
}

#[test]
fn a_late_peer_is_suspect_gets_no_new_handoffs_and_keeps_what_it_was_handed() {
    if !testbed::available(
        "a_late_peer_is_suspect_gets_no_new_handoffs_and_keeps_what_it_was_handed",
    ) {
        return;
    }
    let tb = Testbed::up_cluster(2);
    // A download handed from node 1 to node 2, under way while node 2's
    // Baton is frozen (SIGSTOP) for less than dead_after_ms: its
    // heartbeats are late, as on an overloaded link.
    let cmd = format!(
        "set -o pipefail; curl -sf --limit-rate 2M --max-time 60 'http://{}/n2/10m.bin' | sha256sum",
        node_ip(1)
    );
    let download = tb.spawn_client(&["bash", "-c", &cmd]);
    assert!(
        tb.wait_for(10, || tb.counter(1, "handed_off") == 1),
        "the download was handed off"
    );
    std::thread::sleep(Duration::from_millis(500));
    let pid = pid_of(&tb, 2);
    let freeze = Duration::from_millis(1500);
    assert!(dead_after(&tb) > freeze + Duration::from_millis(1000));
    let frozen = Instant::now();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let mut suspect = None;
    while frozen.elapsed() < freeze {
        if tb.peer_state(1, "n2") == "suspect" {
            suspect = Some(frozen.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // While n2 is suspect, a new request for its content is not handed to
    // it: n2 alone serves /n2/, so node 1 says so at once.
    let asked = Instant::now();
    let status = tb.http_status(&format!("http://{}/n2/whoami.txt", node_ip(1)));
    let answered = asked.elapsed();
    std::thread::sleep(freeze.saturating_sub(frozen.elapsed()));
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    let thawed = frozen.elapsed();
    let recovered = tb.wait_for(5, || tb.peer_state(1, "n2") == "up");
    let got = download.wait_with_output().unwrap();
    let sha = String::from_utf8_lossy(&got.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "node 2 frozen for {} ms (suspect_after 600 ms, dead_after {} ms): node 1 sees it suspect after {}; \
         a new request for /n2/ answered {status} in {} ms; node 1: peer_suspected={} peer_recovered={} \
         peer_dead_timeouts={} peer_down_resets={}",
        thawed.as_millis(),
        dead_after(&tb).as_millis(),
        suspect.map_or("(not within the freeze)".into(), |d| format!("{} ms", d.as_millis())),
        answered.as_millis(),
        tb.control_counter(1, "peer_suspected"),
        tb.control_counter(1, "peer_recovered"),
        tb.control_counter(1, "peer_dead_timeouts"),
        tb.counter(1, "peer_down_resets"),
    );
    assert!(suspect.is_some(), "node 1 sees node 2 suspect");
    assert_eq!(status, "503", "no handoff to a suspect peer");
    assert_eq!(
        tb.counter(1, "handed_off"),
        1,
        "nothing more was handed to it"
    );
    assert!(recovered, "node 2 is up again at node 1 once heard from");
    assert_eq!(
        sha,
        tb.sha256_of(2, "n2/10m.bin"),
        "the download completes intact"
    );
    assert_eq!(tb.counter(1, "peer_down_resets"), 0);
    assert_eq!(tb.control_counter(1, "peer_dead_timeouts"), 0);
    assert!(tb.control_counter(1, "peer_suspected") >= 1);
    assert!(tb.control_counter(1, "peer_recovered") >= 1);
}
