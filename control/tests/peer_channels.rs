//! The peer channels on loopback, through their public API only.
//!
//! Every wait is bounded by [`WAIT`]; timing assertions are generous so
//! that a slow CI machine does not make them flake.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use baton_control::peers::{
    ChannelConfig, PeerChannels, PeerConfig, PeerCounter as C, PeerError, PeerEvent, SendError,
    MAX_FRAME_LEN,
};

/// The most any test waits for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_millis(100);
// Generous: debug builds encrypt slowly, and CI machines are busy.
const DEAD_AFTER: Duration = Duration::from_millis(1000);
const PSK: [u8; 32] = [0x42; 32];
/// Never dialed: the accepting side does not use its peers' addresses.
const UNUSED: &str = "127.0.0.1:9";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn config(
    node: &str,
    listen: SocketAddr,
    psk: [u8; 32],
    peers: &[(&str, SocketAddr)],
) -> ChannelConfig {
    ChannelConfig {
        node: node.into(),
        listen,
        psk,
        peers: peers
            .iter()
            .map(|(name, addr)| PeerConfig {
                name: (*name).into(),
                addr: *addr,
            })
            .collect(),
        heartbeat_interval: HEARTBEAT,
        suspect_after: DEAD_AFTER / 2,
        dead_after: DEAD_AFTER,
    }
}

fn start(
    node: &str,
    listen: SocketAddr,
    psk: [u8; 32],
    peers: &[(&str, SocketAddr)],
) -> PeerChannels {
    PeerChannels::start(config(node, listen, psk, peers)).expect("start peer channels")
}

/// Waits for the first event that `want` accepts, skipping others.
fn expect(ch: &PeerChannels, what: &str, want: impl Fn(&PeerEvent) -> bool) -> PeerEvent {
    let deadline = Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Some(ev) = ch.recv_timeout(left) {
            if want(&ev) {
                return ev;
            }
        }
    }
    panic!("no {what} within {WAIT:?}");
}

fn expect_up(ch: &PeerChannels, peer: &str) {
    expect(
        ch,
        &format!("Up from {peer}"),
        |e| matches!(e, PeerEvent::Up { peer: p } if p == peer),
    );
}

fn expect_down(ch: &PeerChannels, peer: &str) {
    expect(
        ch,
        &format!("Down from {peer}"),
        |e| matches!(e, PeerEvent::Down { peer: p } if p == peer),
    );
}

fn expect_frame(ch: &PeerChannels, peer: &str) -> Vec<u8> {
    match expect(
        ch,
        &format!("frame from {peer}"),
        |e| matches!(e, PeerEvent::Frame { peer: p, .. } if p == peer),
    ) {
        PeerEvent::Frame { frame, .. } => frame,
        _ => unreachable!(),
    }
}

/// Polls `cond` until it holds or [`WAIT`] passes.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..=u8::MAX)
        .cycle()
        .take(len)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn exchange(x: &PeerChannels, x_name: &str, y: &PeerChannels, y_name: &str, len: usize) {
    let there = pattern(len, 1);
    let back = pattern(len, 2);
    x.send(y_name, there.clone()).unwrap();
    assert_eq!(
        expect_frame(y, x_name),
        there,
        "{x_name} -> {y_name}, {len} bytes"
    );
    y.send(x_name, back.clone()).unwrap();
    assert_eq!(
        expect_frame(x, y_name),
        back,
        "{y_name} -> {x_name}, {len} bytes"
    );
}

/// Starts "b" (accepts) and "a" (dials b); returns them once both are Up.
fn pair() -> (PeerChannels, PeerChannels) {
    let b = start("b", loopback(), PSK, &[("a", UNUSED.parse().unwrap())]);
    let a = start("a", loopback(), PSK, &[("b", b.local_addr())]);
    expect_up(&a, "b");
    expect_up(&b, "a");
    (a, b)
}

#[test]
fn a_reset_closes_the_connection_which_is_reestablished() {
    let (a, b) = pair();
    b.reset("a", "a message that made no sense");
    expect_down(&b, "a");
    expect_up(&b, "a");
    // The acceptor is Up once it has answered the handshake, the dialer
    // only once that answer arrives: until then it cannot send.
    expect_up(&a, "b");
    exchange(&a, "a", &b, "b", 1000);
}

#[test]
fn two_nodes_exchange_frames_both_ways() {
    let (a, b) = pair();
    for len in [0, 5, 1500, 60 * 1024, 300 * 1024, MAX_FRAME_LEN] {
        exchange(&a, "a", &b, "b", len);
    }
    // Ordering is kept for a burst of frames.
    for i in 0..100u32 {
        a.send("b", i.to_be_bytes().to_vec()).unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(expect_frame(&b, "a"), i.to_be_bytes());
    }

    // Heartbeats keep the link up but never surface as frames.
    thread::sleep(DEAD_AFTER + 3 * HEARTBEAT);
    assert_eq!(a.try_recv(), None);
    assert_eq!(b.try_recv(), None);

    let sa = &a.status()[0];
    assert!(sa.up && sa.dials);
    assert_eq!(
        (sa.counters.get(C::FramesOut), sa.counters.get(C::FramesIn)),
        (106, 6)
    );
    let sb = &b.status()[0];
    assert!(sb.up && !sb.dials);
    assert_eq!(
        (sb.counters.get(C::FramesIn), sb.counters.get(C::FramesOut)),
        (106, 6)
    );
    let totals = a.counters();
    assert_eq!((totals.get(C::Peers), totals.get(C::PeersUp)), (1, 1));
    assert_eq!(
        totals.get(C::HandshakeFailures) + totals.get(C::BadFrames),
        0
    );
    assert!(totals
        .named()
        .any(|named| named == ("peer_frames_out", 106)));
}

#[test]
fn three_nodes_form_a_full_mesh() {
    let unused: SocketAddr = UNUSED.parse().unwrap();
    let c = start("c", loopback(), PSK, &[("a", unused), ("b", unused)]);
    let b = start(
        "b",
        loopback(),
        PSK,
        &[("a", unused), ("c", c.local_addr())],
    );
    let a = start(
        "a",
        loopback(),
        PSK,
        &[("b", b.local_addr()), ("c", c.local_addr())],
    );
    for (node, peers) in [(&a, ["b", "c"]), (&b, ["a", "c"]), (&c, ["a", "b"])] {
        for p in peers {
            eventually(&format!("{p} up"), || {
                node.status().iter().any(|s| s.name == p && s.up)
            });
        }
    }
    let nodes = [("a", &a), ("b", &b), ("c", &c)];
    for (i, (xn, x)) in nodes.iter().enumerate() {
        for (yn, y) in &nodes[i + 1..] {
            exchange(x, xn, y, yn, 60 * 1024);
        }
    }
    assert_eq!(c.counters().get(C::PeersUp), 2);
}

/// One node of three has another key: the other two still pair up, the odd
/// one never comes Up, and the failures are counted on both sides.
fn wrong_key_node(bad: &str) {
    let unused: SocketAddr = UNUSED.parse().unwrap();
    let psk_of = |n: &str| if n == bad { [0x13; 32] } else { PSK };
    let c = start(
        "c",
        loopback(),
        psk_of("c"),
        &[("a", unused), ("b", unused)],
    );
    let b = start(
        "b",
        loopback(),
        psk_of("b"),
        &[("a", unused), ("c", c.local_addr())],
    );
    let a = start(
        "a",
        loopback(),
        psk_of("a"),
        &[("b", b.local_addr()), ("c", c.local_addr())],
    );
    let nodes = [("a", &a), ("b", &b), ("c", &c)];
    let good: Vec<_> = nodes.iter().filter(|(n, _)| *n != bad).collect();
    let (g1, g1n) = (good[0].1, good[0].0);
    let (g2, g2n) = (good[1].1, good[1].0);
    expect_up(g1, g2n);
    expect_up(g2, g1n);
    exchange(g1, g1n, g2, g2n, 100);

    // Each good node sees failed handshakes with the bad one: per peer when
    // it dials, anonymous (totals only) when it accepts.
    for (_, g) in &good {
        eventually("handshake failures counted", || {
            g.counters().get(C::HandshakeFailures) >= 1
        });
    }
    let odd = nodes.iter().find(|(n, _)| *n == bad).unwrap().1;
    eventually("bad node counts failures too", || {
        odd.counters().get(C::HandshakeFailures) >= 1
    });
    // Let several reconnect attempts go by: still nobody Up with it.
    thread::sleep(Duration::from_millis(500));
    for (n, ch) in &nodes {
        while let Some(ev) = ch.try_recv() {
            if let PeerEvent::Up { peer } | PeerEvent::Frame { peer, .. } = &ev {
                assert!(*n != bad && peer != bad, "{n} got {ev:?}");
            }
        }
    }
    assert_eq!(odd.counters().get(C::PeersUp), 0);
    assert_eq!(odd.counters().get(C::FramesIn), 0);
    for (_, g) in &good {
        assert_eq!(
            g.send(bad, b"x".to_vec()),
            Err(SendError::PeerDown(bad.into()))
        );
        assert!(!g.status().iter().find(|s| s.name == bad).unwrap().up);
    }
}

#[test]
fn wrong_key_acceptor_is_rejected() {
    wrong_key_node("c");
}

#[test]
fn wrong_key_dialer_is_rejected() {
    wrong_key_node("a");
}

#[test]
fn garbage_clients_are_rejected_without_disturbing_peers() {
    let (a, b) = pair();
    let before = b.counters().get(C::HandshakeFailures);
    let garbage: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &[
            0x00, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
            22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
            44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64,
        ],
        &pattern(5000, 9),
    ];
    for (i, bytes) in garbage.iter().enumerate() {
        let mut s = TcpStream::connect(b.local_addr()).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(bytes);
        // Rejected: the node closes the connection without a word.
        let mut reply = [0u8; 64];
        match s.read(&mut reply) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("garbage client {i} got {n} bytes back"),
        }
        eventually("garbage counted", || {
            b.counters().get(C::HandshakeFailures) > before + i as u64
        });
    }
    // The real peers never noticed.
    exchange(&a, "a", &b, "b", 1000);
    assert_eq!(a.try_recv(), None, "no Down/Up on a");
    assert_eq!(b.try_recv(), None, "no Down/Up on b");
    assert_eq!(b.status()[0].counters.get(C::Reconnects), 0);
    assert_eq!(b.counters().get(C::BadFrames), 0);
}

#[test]
fn stopped_acceptor_goes_down_and_comes_back() {
    let (a, b) = pair();
    let b_addr = b.local_addr();
    let stopped = Instant::now();
    drop(b);
    expect_down(&a, "b");
    let took = stopped.elapsed();
    assert!(
        took < DEAD_AFTER + Duration::from_secs(3),
        "Down after {took:?}"
    );
    assert_eq!(
        a.send("b", b"late".to_vec()),
        Err(SendError::PeerDown("b".into()))
    );

    // Same address again: a's back-off loop finds it.
    let b = start("b", b_addr, PSK, &[("a", UNUSED.parse().unwrap())]);
    expect_up(&a, "b");
    expect_up(&b, "a");
    exchange(&a, "a", &b, "b", 60 * 1024);
    assert_eq!(a.status()[0].counters.get(C::Reconnects), 1);
}

#[test]
fn stopped_dialer_goes_down_and_comes_back() {
    let (a, b) = pair();
    let stopped = Instant::now();
    drop(a);
    expect_down(&b, "a");
    let took = stopped.elapsed();
    assert!(
        took < DEAD_AFTER + Duration::from_secs(3),
        "Down after {took:?}"
    );
    assert_eq!(
        b.send("a", b"late".to_vec()),
        Err(SendError::PeerDown("a".into()))
    );

    let a = start("a", loopback(), PSK, &[("b", b.local_addr())]);
    expect_up(&b, "a");
    expect_up(&a, "b");
    exchange(&a, "a", &b, "b", 100);
    assert_eq!(b.status()[0].counters.get(C::Reconnects), 1);
}

/// A man in the middle that flips one bit of a→b traffic, once, after the
/// session is up: b must drop the connection as a bad frame, and the
/// normal reconnect logic must bring the pair back.
#[test]
fn corrupted_frame_closes_the_connection_which_is_reestablished() {
    let b = start("b", loopback(), PSK, &[("a", UNUSED.parse().unwrap())]);
    let proxy = TcpListener::bind(loopback()).unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let b_addr = b.local_addr();
    let corrupt = Arc::new(AtomicBool::new(false));
    let corrupt_in_proxy = Arc::clone(&corrupt);
    proxy.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_proxy = Arc::clone(&stop);
    let proxy_thread = thread::spawn(move || {
        while !stop_proxy.load(Ordering::Relaxed) {
            let Ok((client, _)) = proxy.accept() else {
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            client.set_nonblocking(false).unwrap();
            let server = TcpStream::connect(b_addr).unwrap();
            pump(
                server.try_clone().unwrap(),
                client.try_clone().unwrap(),
                None,
            );
            pump(client, server, Some(Arc::clone(&corrupt_in_proxy)));
        }
    });

    let a = start("a", loopback(), PSK, &[("b", proxy_addr)]);
    expect_up(&a, "b");
    expect_up(&b, "a");
    exchange(&a, "a", &b, "b", 100);

    corrupt.store(true, Ordering::SeqCst);
    // The next heartbeat is corrupted: both sides see the link drop.
    expect_down(&b, "a");
    expect_down(&a, "b");
    assert_eq!(b.counters().get(C::BadFrames), 1);
    assert!(!corrupt.load(Ordering::SeqCst), "the proxy corrupted once");

    expect_up(&a, "b");
    expect_up(&b, "a");
    exchange(&a, "a", &b, "b", 60 * 1024);
    assert_eq!(a.status()[0].counters.get(C::Reconnects), 1);

    drop(a);
    drop(b);
    stop.store(true, Ordering::Relaxed);
    proxy_thread.join().unwrap();
}

/// Copies `from` to `to` on a thread; when `corrupt` is set, flips the last
/// bit of the next read (part of a Noise tag) and clears the flag.
fn pump(mut from: TcpStream, mut to: TcpStream, corrupt: Option<Arc<AtomicBool>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(flag) = &corrupt {
                if flag.swap(false, Ordering::SeqCst) {
                    buf[n - 1] ^= 1;
                }
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}

#[test]
fn send_errors() {
    let b = start("b", loopback(), PSK, &[("a", UNUSED.parse().unwrap())]);
    assert_eq!(
        b.send("zz", vec![1]),
        Err(SendError::UnknownPeer("zz".into()))
    );
    assert_eq!(b.send("a", vec![1]), Err(SendError::PeerDown("a".into())));
    assert_eq!(
        b.send("a", vec![0; MAX_FRAME_LEN + 1]),
        Err(SendError::TooLarge {
            len: MAX_FRAME_LEN + 1,
            max: MAX_FRAME_LEN
        })
    );
    assert_eq!(b.try_recv(), None);
    assert!(b.recv_timeout(Duration::from_millis(20)).is_none());
    assert_eq!(b.status()[0].counters.get(C::FramesOut), 0);
}

#[test]
fn start_rejects_bad_configs_and_busy_addresses() {
    let first = start("a", loopback(), PSK, &[]);
    match PeerChannels::start(config("a", first.local_addr(), PSK, &[])) {
        Err(e @ PeerError::Bind { .. }) => {
            assert!(
                e.to_string().contains(&first.local_addr().to_string()),
                "{e}"
            )
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("bound a busy address"),
    }
    let unused: SocketAddr = UNUSED.parse().unwrap();
    let bad_configs = [
        config("a", loopback(), PSK, &[("a", unused)]),
        config("a", loopback(), PSK, &[("b", unused), ("b", unused)]),
        config("", loopback(), PSK, &[]),
        ChannelConfig {
            suspect_after: HEARTBEAT,
            ..config("a", loopback(), PSK, &[])
        },
        ChannelConfig {
            dead_after: DEAD_AFTER / 2,
            ..config("a", loopback(), PSK, &[])
        },
    ];
    for cfg in bad_configs {
        assert!(matches!(
            PeerChannels::start(cfg),
            Err(PeerError::Config(_))
        ));
    }
    assert!(
        !format!("{:?}", config("a", loopback(), PSK, &[])).contains("66"),
        "PSK redacted"
    );
}
