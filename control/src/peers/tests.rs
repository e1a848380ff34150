//! Tests that play a peer by hand with the crate's own handshake code, to
//! reach cases a well-behaved node never produces.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::noise::{self, NOISE_PARAMS};
use super::wire::{self, NOISE_MAX_MESSAGE};
use super::{ChannelConfig, PeerChannels, PeerConfig, PeerCounter as C, PeerEvent};

const WAIT: Duration = Duration::from_secs(10);
const PSK: [u8; 32] = [0x42; 32];
const DEAD_AFTER: Duration = Duration::from_millis(300);

/// Node "b", which expects "a" to dial it and dials "c".
fn node_b() -> PeerChannels {
    let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    PeerChannels::start(ChannelConfig {
        node: "b".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        psk: PSK,
        peers: vec![
            PeerConfig {
                name: "a".into(),
                addr: unused,
            },
            PeerConfig {
                name: "c".into(),
                addr: unused,
            },
        ],
        heartbeat_interval: Duration::from_millis(50),
        suspect_after: DEAD_AFTER / 2,
        dead_after: DEAD_AFTER,
    })
    .unwrap()
}

fn next_event(ch: &PeerChannels) -> PeerEvent {
    ch.recv_timeout(WAIT).expect("an event within WAIT")
}

fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn deadline() -> Instant {
    Instant::now() + WAIT
}

/// Nodes "a" and "b", each the other's only peer, with `sink` on b; once
/// a sees b up.
fn a_dials_b(sink: Option<std::sync::Arc<dyn super::FrameSink>>) -> (PeerChannels, PeerChannels) {
    let config = |node: &str, peer: &str, addr: SocketAddr| ChannelConfig {
        node: node.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        psk: PSK,
        peers: vec![PeerConfig {
            name: peer.into(),
            addr,
        }],
        heartbeat_interval: Duration::from_millis(50),
        suspect_after: Duration::from_secs(5),
        dead_after: Duration::from_secs(10),
    };
    let unused = "127.0.0.1:9".parse().unwrap();
    let b = PeerChannels::start_with_sink(config("b", "a", unused), sink).unwrap();
    let a = PeerChannels::start(config("a", "b", b.local_addr())).unwrap();
    eventually("a sees b up", || a.status().iter().all(|p| p.up));
    (a, b)
}

#[test]
fn silent_peer_is_down_after_dead_after() {
    let b = node_b();
    let mut s = TcpStream::connect(b.local_addr()).unwrap();
    // A proper handshake, then nothing at all.
    let _keys = noise::dial(&mut s, &PSK, "a", "b", deadline()).unwrap();
    assert_eq!(next_event(&b), PeerEvent::Up { peer: "a".into() });
    let up = Instant::now();
    assert_eq!(next_event(&b), PeerEvent::Suspect { peer: "a".into() });
    assert!(b.status()[0].up && b.status()[0].suspect);
    assert_eq!(next_event(&b), PeerEvent::Down { peer: "a".into() });
    let took = up.elapsed();
    // Not early: silence is tolerated for dead_after (measured from a
    // little before Up was delivered, hence the margin).
    assert!(took >= DEAD_AFTER / 2, "Down after only {took:?}");
    assert!(
        took < DEAD_AFTER + Duration::from_secs(3),
        "Down after {took:?}"
    );
    let a = &b.status()[0];
    assert_eq!(
        (
            a.counters.get(C::DeadTimeouts),
            a.counters.get(C::BadFrames)
        ),
        (1, 0)
    );
}

#[test]
fn a_late_peer_is_suspect_until_it_is_heard_from_and_stays_up() {
    let b = node_b();
    let mut s = TcpStream::connect(b.local_addr()).unwrap();
    let (mut sealer, _opener) = noise::dial(&mut s, &PSK, "a", "b", deadline()).unwrap();
    assert_eq!(next_event(&b), PeerEvent::Up { peer: "a".into() });
    assert_eq!(next_event(&b), PeerEvent::Suspect { peer: "a".into() });
    // Late, not dead: one heartbeat, before dead_after, clears it.
    super::session::write_heartbeat(&mut s, &mut sealer, &mut Vec::new()).unwrap();
    assert_eq!(next_event(&b), PeerEvent::Recovered { peer: "a".into() });
    let a = &b.status()[0];
    assert!(a.up && !a.suspect);
    assert_eq!(
        (
            a.counters.get(C::Suspected),
            a.counters.get(C::Recovered),
            a.counters.get(C::PeersSuspect),
            a.counters.get(C::DeadTimeouts),
        ),
        (1, 1, 0, 0)
    );
    // Silent again: suspect, then dead; going down is no recovery.
    assert_eq!(next_event(&b), PeerEvent::Suspect { peer: "a".into() });
    assert_eq!(b.counters().get(C::PeersSuspect), 1);
    assert_eq!(next_event(&b), PeerEvent::Down { peer: "a".into() });
    let a = &b.status()[0];
    assert!(!a.up && !a.suspect);
    assert_eq!(
        (a.counters.get(C::Suspected), a.counters.get(C::Recovered)),
        (2, 1)
    );
    assert_eq!(a.counters.get(C::PeersSuspect), 0);
}

#[test]
fn garbage_after_the_handshake_is_a_bad_frame() {
    let b = node_b();
    let mut s = TcpStream::connect(b.local_addr()).unwrap();
    let _keys = noise::dial(&mut s, &PSK, "a", "b", deadline()).unwrap();
    assert_eq!(next_event(&b), PeerEvent::Up { peer: "a".into() });
    let mut junk = Vec::new();
    wire::put_prefixed(&mut junk, &[0xAA; 40]);
    s.write_all(&junk).unwrap();
    assert_eq!(next_event(&b), PeerEvent::Down { peer: "a".into() });
    assert_eq!(b.status()[0].counters.get(C::BadFrames), 1);
    assert_eq!(b.counters().get(C::BadFrames), 1);

    // A too-short length prefix is a bad frame as well.
    let mut s = TcpStream::connect(b.local_addr()).unwrap();
    let _keys = noise::dial(&mut s, &PSK, "a", "b", deadline()).unwrap();
    assert_eq!(next_event(&b), PeerEvent::Up { peer: "a".into() });
    s.write_all(&[0, 3, 1, 2, 3]).unwrap();
    assert_eq!(next_event(&b), PeerEvent::Down { peer: "a".into() });
    assert_eq!(b.status()[0].counters.get(C::BadFrames), 2);
    assert_eq!(b.status()[0].counters.get(C::Reconnects), 1);
}

#[test]
fn peer_that_should_be_dialed_cannot_dial_in() {
    // "c" sorts after "b", so b dials c; c dialing b is refused even with
    // the right key, and counted against c.
    let b = node_b();
    let mut s = TcpStream::connect(b.local_addr()).unwrap();
    assert!(noise::dial(&mut s, &PSK, "c", "b", deadline()).is_err());
    eventually("failure counted for c", || {
        b.status()[1].counters.get(C::HandshakeFailures) == 1
    });
    // And a dialer that thinks it reached someone else is refused too.
    let mut s = TcpStream::connect(b.local_addr()).unwrap();
    assert!(noise::dial(&mut s, &PSK, "a", "x", deadline()).is_err());
    eventually("failure counted for a", || {
        b.status()[0].counters.get(C::HandshakeFailures) == 1
    });
    assert!(b.try_recv().is_none());
}

/// A replayed first message passes the PSK check, but whoever replays it
/// cannot produce the first transport message: never Up.
#[test]
fn handshake_without_confirmation_never_comes_up() {
    let b = node_b();
    let mut s = TcpStream::connect(b.local_addr()).unwrap();
    let mut hs = noise::builder(&PSK).unwrap().build_initiator().unwrap();
    let mut msg = vec![0u8; NOISE_MAX_MESSAGE];
    let n = hs.write_message(&[1, b'a', 1, b'b'], &mut msg).unwrap();
    let mut out = Vec::new();
    wire::put_prefixed(&mut out, &msg[..n]);
    // Instead of the encrypted heartbeat, bytes that do not decrypt.
    wire::put_prefixed(&mut out, &[0x55; 17]);
    s.write_all(&out).unwrap();
    eventually("failure counted for a", || {
        b.status()[0].counters.get(C::HandshakeFailures) == 1
    });
    assert!(b.try_recv().is_none());
    assert!(!b.status()[0].up);
    assert_eq!(NOISE_PARAMS, "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s");
}

/// Frames read by another thread (`read_now`) and by the reader thread
/// reach the sink, and the event queue, each once and in order, also when
/// the queue is full and what a read that must not wait found waits for the
/// reader thread.
#[test]
fn frames_read_now_by_another_thread_arrive_once_and_in_order() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// Takes frames whose first byte is even; gives back the others.
    #[derive(Default)]
    struct Evens {
        got: Mutex<Vec<u32>>,
        by_read_now: AtomicU64,
    }
    impl super::FrameSink for Evens {
        fn deliver(&self, _peer: &str, frame: Vec<u8>) -> Result<(), Vec<u8>> {
            if frame[0] % 2 == 1 {
                return Err(frame);
            }
            let n = u32::from_le_bytes(frame[..4].try_into().unwrap());
            self.got.lock().unwrap().push(n);
            if std::thread::current().name() == Some("read-now") {
                self.by_read_now.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
        fn queued(&self, _peer: &str) {}
    }
    let evens = Arc::new(Evens::default());
    let sink: Arc<dyn super::FrameSink> = evens.clone();
    let (a, b) = a_dials_b(Some(sink));
    assert!(matches!(next_event(&b), PeerEvent::Up { .. }));
    // More odd frames than b's event queue holds: the test reads none
    // until all are sent.
    const FRAMES: u32 = 2 * 4096 + 1000;
    const _: () = assert!(super::EVENT_QUEUE == 4096);
    let done = Arc::new(AtomicBool::new(false));
    let reading = {
        let (io, done) = (b.io(), Arc::clone(&done));
        std::thread::Builder::new()
            .name("read-now".into())
            .spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    io.read_now();
                }
            })
            .unwrap()
    };
    let frame = |i: u32| {
        let mut f = i.to_le_bytes().to_vec();
        f.resize(64, 0);
        f
    };
    for i in 0..FRAMES {
        let mut f = frame(i);
        let until = deadline();
        while let Err((_, back)) = a.offer("b", f) {
            f = back;
            assert!(Instant::now() < until, "a's queue never drained");
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let odd: Vec<u32> = (0..FRAMES).filter(|i| i % 2 == 1).collect();
    let mut got_odd = Vec::new();
    let until = deadline();
    while got_odd.len() < odd.len() {
        assert!(
            Instant::now() < until,
            "{} of {} events",
            got_odd.len(),
            odd.len()
        );
        if let Some(PeerEvent::Frame { frame, .. }) = b.recv_timeout(WAIT) {
            got_odd.push(u32::from_le_bytes(frame[..4].try_into().unwrap()));
        }
    }
    if let Some(at) = (0..odd.len()).find(|&k| got_odd[k] != odd[k]) {
        panic!(
            "events out of order from {at}: got {:?}, expected {:?}",
            &got_odd[at..(at + 6).min(odd.len())],
            &odd[at..(at + 6).min(odd.len())]
        );
    }
    let even: Vec<u32> = (0..FRAMES).filter(|i| i % 2 == 0).collect();
    eventually("every even frame delivered", || {
        evens.got.lock().unwrap().len() >= even.len()
    });
    done.store(true, Ordering::Relaxed);
    reading.join().unwrap();
    assert!(
        *evens.got.lock().unwrap() == even,
        "sink frames changed or out of order"
    );
    assert_eq!(b.counters().get(C::FramesIn), u64::from(FRAMES));
    eprintln!(
        "{} of {} frames taken by read_now",
        evens.by_read_now.load(Ordering::Relaxed),
        even.len()
    );
}

/// Frames written at once by the sender's thread and frames its link
/// thread writes mix when the peer reads slowly: the socket takes part of
/// a frame written at once, the rest waits for the link thread, and frames
/// offered meanwhile queue behind it. They all arrive whole and in order.
#[test]
fn frames_written_at_once_and_queued_keep_their_order_when_the_peer_reads_slowly() {
    let (a, b) = a_dials_b(None);
    // More than b's event queue and both sockets' buffers hold, so that b
    // stops reading and a's writes meet a full socket.
    const FRAMES: u32 = 12_000;
    let frame = |i: u32| -> Vec<u8> {
        let mut f = i.to_le_bytes().to_vec();
        f.resize(1000 + (i % 7) as usize * 100, i.to_le_bytes()[0]);
        f
    };
    let writer = a.io();
    let sender = std::thread::spawn(move || {
        let until = deadline();
        for i in 0..FRAMES {
            // Every other frame through the handle other threads use.
            let mut f = frame(i);
            loop {
                f = match i % 2 {
                    0 if writer.write_now("b", &[&f]) => break,
                    0 => match a.offer("b", f) {
                        Ok(()) => break,
                        Err((_, f)) => f,
                    },
                    _ => match a.offer("b", f) {
                        Ok(()) => break,
                        Err((_, f)) => f,
                    },
                };
                assert!(Instant::now() < until, "a's queue never drained");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        a
    });
    // b reads nothing for a while.
    std::thread::sleep(Duration::from_millis(300));
    let until = deadline();
    let mut next = 0;
    while next < FRAMES {
        assert!(Instant::now() < until, "{next} of {FRAMES} frames");
        if let Some(PeerEvent::Frame { frame: got, .. }) = b.recv_timeout(WAIT) {
            assert!(got == frame(next), "frame {next} changed or out of order");
            next += 1;
        }
    }
    let a = sender.join().unwrap();
    assert_eq!(a.counters().get(C::FramesOut), u64::from(FRAMES));
}

/// Frames queued together leave in shared writes, a large one among them
/// in pieces: each arrives whole, once, in order, and is counted.
#[test]
fn frames_queued_together_arrive_whole_and_in_order() {
    let (a, b) = a_dials_b(None);
    // Small frames around ones larger than a write and than a chunk.
    let frames: Vec<Vec<u8>> = (0..300u32)
        .map(|i| {
            let len = match i % 100 {
                50 => wire::MAX_FRAME_LEN,
                99 => 20_000,
                _ => 40 + i as usize % 60,
            };
            (0..len)
                .map(|j| (i as usize + j).to_le_bytes()[0])
                .collect()
        })
        .collect();
    for frame in &frames {
        while a.send("b", frame.clone()).is_err() {
            assert!(Instant::now() < deadline(), "a's queue never drained");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut got = Vec::new();
    let until = deadline();
    while got.len() < frames.len() {
        assert!(
            Instant::now() < until,
            "{} of {} frames",
            got.len(),
            frames.len()
        );
        if let Some(PeerEvent::Frame { frame, .. }) = b.recv_timeout(WAIT) {
            got.push(frame);
        }
    }
    assert!(got == frames, "the frames arrived changed or out of order");
    assert_eq!(a.counters().get(C::FramesOut), 300);
}
