//! Baton under a careless operator and a hostile network, on the netns
//! testbed: a node stopped while connections are handed to it, strangers
//! holding the control port, peers that fall silent.

mod testbed;

use std::process::{Command, Stdio};
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

fn is_running(pid: &str) -> bool {
    Command::new("kill")
        .args(["-0", pid])
        .status()
        .is_ok_and(|s| s.success())
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
    let slow = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}-client", tb.id),
            "python3",
            "-c",
        ])
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
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
