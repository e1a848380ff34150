//! The control plane on loopback: two nodes, or one node and a peer played
//! with the bare peer channels, with the workers' queues in the test's hands.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use baton_handoff::msg::SeqNum;
use baton_handoff::workers::{handoff_id, inbox, owner_of, FromWorker, ToWorker, ToWorkerRx};
use baton_handoff::{
    FlowKey, FlowsHeld, HandoffAccept, HandoffCancel, HandoffClosed, HandoffRequest, HeldFlow,
    Load, Message,
};
use crossbeam_channel::{bounded, Sender};

use super::{decode_one, ControlPlane};
use crate::peers::{ChannelConfig, PeerChannels, PeerConfig, PeerEvent};

/// The most any test waits for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_millis(100);
const PSK: [u8; 32] = [0x42; 32];
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

fn channel(node: &str, peer: &str, peer_addr: SocketAddr) -> ChannelConfig {
    ChannelConfig {
        node: node.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        psk: PSK,
        peers: vec![PeerConfig {
            name: peer.into(),
            addr: peer_addr,
        }],
        heartbeat_interval: HEARTBEAT,
        suspect_after: Duration::from_secs(1),
        dead_after: Duration::from_secs(2),
    }
}

/// Never dialed: of two nodes, the one whose name sorts lower dials.
fn unused() -> SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

/// A node's control plane and its workers' ends of the queues.
struct Node {
    plane: ControlPlane,
    inboxes: Vec<ToWorkerRx>,
    outbox: Sender<FromWorker>,
}

fn node(channel: ChannelConfig, workers: usize, queue: usize) -> Node {
    let (outbox, from_worker) = bounded(64);
    let (to_workers, inboxes) = (0..workers).map(|_| inbox(queue)).unzip();
    let plane = ControlPlane::start(channel, to_workers, from_worker).unwrap();
    Node {
        plane,
        inboxes,
        outbox,
    }
}

/// Ticks both planes until each side's channel to the other is up: `b`'s
/// worker hears PeerUp, and `a` may send.
fn up_both_ways(a: &mut Node, b: &mut Node) {
    until(&mut [&mut *a, &mut *b], (1, 0), |e| {
        matches!(e, ToWorker::PeerUp(0)).then_some(())
    });
    let deadline = Instant::now() + WAIT;
    while a.plane.peers_up().iter().any(|(_, up)| !up) {
        assert!(Instant::now() < deadline, "a never saw b up");
        a.plane.tick(Duration::from_millis(1));
        b.plane.tick(Duration::from_millis(1));
    }
}

/// Ticks every plane until worker `w` of `nodes[n]` hears something
/// `pick` takes; what it does not take is skipped.
fn until<T>(
    nodes: &mut [&mut Node],
    (n, w): (usize, usize),
    mut pick: impl FnMut(ToWorker) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        for node in nodes.iter_mut() {
            node.plane.tick(Duration::from_millis(5));
        }
        while let Ok(event) = nodes[n].inboxes[w].try_recv() {
            if let Some(found) = pick(event) {
                return found;
            }
        }
        assert!(Instant::now() < deadline, "nothing within {WAIT:?}");
    }
}

fn request(id: u64, client_port: u16) -> Message {
    Message::HandoffRequest(HandoffRequest {
        id,
        key: FlowKey {
            client: SocketAddrV4::new(CLIENT, client_port),
            server: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 11), 80),
        },
        client_mac: [2, 0, 0, 0, 0, 0x64],
        isn_client: SeqNum::new(1),
        isn_origin: SeqNum::new(2),
        client_syn_options: Vec::new(),
        origin_synack_options: Vec::new(),
        client_window: 1024,
        client_tsval: None,
        origin_tsval: None,
        held: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    })
}

#[test]
fn a_frame_must_be_exactly_one_valid_message() {
    let msg = Message::Load(Load {
        active_connections: 3,
        ..Load::default()
    });
    let bytes = baton_handoff::encode(&msg);
    assert_eq!(decode_one(&bytes), Ok(msg));
    assert!(decode_one(&bytes[..bytes.len() - 1])
        .unwrap_err()
        .contains("truncated"));
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    assert!(decode_one(&two).unwrap_err().contains("trailing"));
    assert!(decode_one(b"garbage garbage garbage").is_err());
}

#[test]
fn a_handoff_crosses_to_the_flows_owner_and_its_answers_come_back_to_the_worker_that_asked() {
    const B_WORKERS: usize = 3;
    let mut b = node(channel("b", "a", unused()), B_WORKERS, 64);
    let mut a = node(channel("a", "b", b.plane.local_addr()), 2, 64);
    until(&mut [&mut a, &mut b], (0, 1), |e| {
        matches!(e, ToWorker::PeerUp(0)).then_some(())
    });

    // The worker of a that owns a client's flow asks b to take its
    // connection; on b, the worker that owns the client's flow gets it.
    let port = (40000..)
        .find(|&p| owner_of(u32::from(CLIENT), p, 2) == 1)
        .unwrap();
    let owner = owner_of(u32::from(CLIENT), port, B_WORKERS);
    let id = handoff_id(1, 9);
    a.outbox
        .send(FromWorker::Message {
            peer: 0,
            msg: request(id, port),
        })
        .unwrap();
    let got = until(&mut [&mut a, &mut b], (1, owner), |e| match e {
        ToWorker::Message { peer: 0, msg } if !matches!(msg, Message::Load(_)) => Some(msg),
        _ => None,
    });
    assert_eq!(got, request(id, port));
    // And so does a's call to cancel it.
    let cancel = Message::HandoffCancel(HandoffCancel {
        id,
        client: SocketAddrV4::new(CLIENT, port),
    });
    a.outbox
        .send(FromWorker::Message {
            peer: 0,
            msg: cancel.clone(),
        })
        .unwrap();
    let got = until(&mut [&mut a, &mut b], (1, owner), |e| match e {
        ToWorker::Message { peer: 0, msg } if !matches!(msg, Message::Load(_)) => Some(msg),
        _ => None,
    });
    assert_eq!(got, cancel);

    // Its answers go back to a's worker 1, which owns the client's flow.
    for msg in [
        Message::HandoffAccept(HandoffAccept {
            id,
            isn_target: SeqNum::new(5),
            client: SocketAddrV4::new(CLIENT, port),
        }),
        Message::HandoffClosed(HandoffClosed {
            id,
            client: SocketAddrV4::new(CLIENT, port),
        }),
    ] {
        b.outbox
            .send(FromWorker::Message {
                peer: 0,
                msg: msg.clone(),
            })
            .unwrap();
        let got = until(&mut [&mut a, &mut b], (0, 1), |e| match e {
            ToWorker::Message { peer: 0, msg } if !matches!(msg, Message::Load(_)) => Some(msg),
            _ => None,
        });
        assert_eq!(got, msg);
    }
    let a_counters = a.plane.counters();
    assert!(a_counters["control_messages_out"] >= 1, "{a_counters:?}");
    assert!(a_counters["control_messages_in"] >= 2, "{a_counters:?}");
    assert_eq!(a_counters["control_bad_messages"], 0);
}

/// A worker's messages go to the peer's channel from the worker's thread
/// when they can, and on the peer from its reader to the worker; those
/// that cannot go by the control lcores. Either way they arrive in order.
#[test]
fn messages_past_the_control_lcores_and_through_them_arrive_in_order() {
    let mut b = node(channel("b", "a", unused()), 1, 4096);
    let mut a = node(channel("a", "b", b.plane.local_addr()), 1, 64);
    up_both_ways(&mut a, &mut b);
    let send_now = a.plane.direct_io();
    let cancel = |id| {
        Message::HandoffCancel(HandoffCancel {
            id,
            client: SocketAddrV4::new(CLIENT, 40000),
        })
    };
    const MESSAGES: u64 = 200;
    for id in 0..MESSAGES {
        // As a worker does: past the control lcore, or else through it.
        if !send_now.send_now(0, &[cancel(id)]) {
            a.outbox
                .send(FromWorker::Message {
                    peer: 0,
                    msg: cancel(id),
                })
                .unwrap();
        }
        // The control lcores turn now and then, as they do under load.
        if id % 3 == 0 {
            a.plane.tick(Duration::ZERO);
            b.plane.tick(Duration::ZERO);
        }
    }
    for id in 0..MESSAGES {
        let got = until(&mut [&mut a, &mut b], (1, 0), |e| match e {
            ToWorker::Message { peer: 0, msg } if !matches!(msg, Message::Load(_)) => Some(msg),
            _ => None,
        });
        assert_eq!(got, cancel(id), "message {id}");
    }
    let (a, b) = (a.plane.counters(), b.plane.counters());
    assert!(a["control_messages_out_direct"] > 0, "{a:?}");
    assert!(b["control_messages_in_direct"] > 0, "{b:?}");
    assert!(b["control_messages_in"] >= MESSAGES, "{b:?}");
}

#[test]
fn every_worker_of_a_peer_hears_this_nodes_summed_load() {
    let mut b = node(channel("b", "a", unused()), 2, 64);
    let mut a = node(channel("a", "b", b.plane.local_addr()), 2, 64);
    for (worker, active_connections) in [(0, 3), (1, 4)] {
        a.outbox
            .send(FromWorker::Load {
                worker,
                load: Load {
                    active_connections,
                    ..Load::default()
                },
            })
            .unwrap();
    }
    for w in 0..2 {
        until(&mut [&mut a, &mut b], (1, w), |e| match e {
            ToWorker::Message {
                peer: 0,
                msg: Message::Load(load),
            } => (load.active_connections == 7).then_some(()),
            _ => None,
        });
    }
}

#[test]
fn a_peer_going_down_is_told_to_every_worker() {
    let mut b = node(channel("b", "a", unused()), 2, 64);
    let mut a = node(channel("a", "b", b.plane.local_addr()), 1, 64);
    until(&mut [&mut a, &mut b], (1, 1), |e| {
        matches!(e, ToWorker::PeerUp(0)).then_some(())
    });
    drop(a);
    for w in 0..2 {
        until(&mut [&mut b], (0, w), |e| {
            matches!(e, ToWorker::PeerDown(0)).then_some(())
        });
    }
    assert_eq!(b.plane.peers_up(), [("a".to_string(), false)]);
}

#[test]
fn a_frame_that_is_no_message_resets_the_peer_and_is_counted() {
    let mut b = node(channel("b", "a", unused()), 1, 64);
    // "a" is played with the bare channels, which carry any bytes.
    let a = PeerChannels::start(channel("a", "b", b.plane.local_addr())).unwrap();
    until(&mut [&mut b], (0, 0), |e| {
        matches!(e, ToWorker::PeerUp(0)).then_some(())
    });
    let deadline = Instant::now() + WAIT;
    while a.send("b", b"no message at all".to_vec()).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    until(&mut [&mut b], (0, 0), |e| {
        matches!(e, ToWorker::PeerDown(0)).then_some(())
    });
    assert_eq!(b.plane.counters()["control_bad_messages"], 1);
    while !matches!(a.try_recv(), Some(PeerEvent::Down { .. })) {
        assert!(Instant::now() < deadline, "a sees the reset");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_full_worker_queue_keeps_what_matters_in_order_and_counts_the_loads_it_drops() {
    let mut b = node(channel("b", "a", unused()), 1, 1);
    let mut a = node(channel("a", "b", b.plane.local_addr()), 1, 64);
    // b's only worker does not read: PeerUp fills its queue, and every
    // Load after that finds it full and is dropped (the next says more).
    let deadline = Instant::now() + WAIT;
    while b.plane.counters()["control_worker_queue_full"] == 0 {
        assert!(Instant::now() < deadline, "nothing counted");
        a.plane.tick(Duration::from_millis(5));
        b.plane.tick(Duration::from_millis(5));
    }
    // The peer's going down waits behind PeerUp, and reaches the worker
    // once it reads again.
    drop(a);
    let deadline = Instant::now() + WAIT;
    while b.plane.counters()["control_worker_queue_deferred"] == 0 {
        assert!(Instant::now() < deadline, "PeerDown not kept");
        b.plane.tick(Duration::from_millis(5));
    }
    assert!(b.plane.counters()["control_backlog"] > 0);
    assert!(matches!(b.inboxes[0].try_recv(), Ok(ToWorker::PeerUp(0))));
    b.plane.tick(Duration::ZERO);
    assert!(matches!(b.inboxes[0].try_recv(), Ok(ToWorker::PeerDown(0))));
    assert_eq!(b.plane.counters()["control_backlog"], 0);
}

#[test]
fn baton_stats_shows_every_control_counter_by_the_name_scripts_know() {
    let b = node(channel("b", "a", unused()), 1, 64);
    let counters = b.plane.counters();
    let names: Vec<&str> = counters.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "control_backlog",
            "control_bad_messages",
            "control_drains_ended",
            "control_drains_started",
            "control_messages_in",
            "control_messages_in_direct",
            "control_messages_out",
            "control_messages_out_direct",
            "control_reloads_applied",
            "control_reloads_refused",
            "control_send_failures",
            "control_sends_deferred",
            "control_worker_queue_deferred",
            "control_worker_queue_full",
            "peer_accept_failures",
            "peer_bad_frames",
            "peer_bytes_in",
            "peer_bytes_out",
            "peer_connect_failures",
            "peer_dead_timeouts",
            "peer_frames_dropped",
            "peer_frames_in",
            "peer_frames_out",
            "peer_handshake_failures",
            "peer_peers",
            "peer_peers_suspect",
            "peer_peers_up",
            "peer_reconnects",
            "peer_recovered",
            "peer_refused_no_thread",
            "peer_refused_peer_slots",
            "peer_refused_per_source",
            "peer_refused_strangers",
            "peer_suspected",
        ]
    );
    assert_eq!((counters["peer_peers"], counters["peer_peers_up"]), (1, 0));
}

/// On a peer's Up, every worker names what it holds for the peer, and the
/// peer hears the last marker once all have; a peer's FlowsHeld reach the
/// workers that own their clients, the last marker every worker.
#[test]
fn flows_held_are_named_by_every_worker_and_split_among_their_owners() {
    const A_WORKERS: usize = 2;
    let mut b = node(channel("b", "a", unused()), 1, 64);
    let mut a = node(channel("a", "b", b.plane.local_addr()), A_WORKERS, 64);
    until(&mut [&mut a, &mut b], (0, 0), |e| {
        matches!(e, ToWorker::PeerUp(0)).then_some(())
    });
    let flow = |port: u16| HeldFlow {
        id: handoff_id(0, u64::from(port)),
        key: FlowKey {
            client: SocketAddrV4::new(CLIENT, port),
            server: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 11), 80),
        },
        client_mac: [2, 0, 0, 0, 0, 0x64],
    };
    let ports: Vec<u16> = (40000..40010).collect();
    b.outbox
        .send(FromWorker::Message {
            peer: 0,
            msg: Message::FlowsHeld(FlowsHeld {
                flows: ports.iter().map(|&p| flow(p)).collect(),
                last: false,
            }),
        })
        .unwrap();
    // b's one worker is done: a hears the last marker.
    b.outbox.send(FromWorker::ResyncDone { peer: 0 }).unwrap();
    for w in 0..A_WORKERS {
        let mut got = Vec::new();
        let mut last = false;
        while !last {
            let held = until(&mut [&mut a, &mut b], (0, w), |e| match e {
                ToWorker::Message {
                    peer: 0,
                    msg: Message::FlowsHeld(h),
                } => Some(h),
                _ => None,
            });
            last = held.last;
            got.extend(held.flows.iter().map(|f| f.key.client.port()));
        }
        let mine: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|&p| owner_of(u32::from(CLIENT), p, A_WORKERS) == w)
            .collect();
        assert_eq!(got, mine, "worker {w}");
    }
}

#[test]
fn the_control_channel_doc_describes_every_counter() {
    let doc = include_str!("../../../docs/control-channel.md");
    let peer = crate::peers::PeerCounter::ALL
        .iter()
        .map(|c| c.name().strip_prefix("peer_").expect("peer_ prefix"));
    let control = super::ControlCounter::ALL
        .iter()
        .map(|c| c.name().strip_prefix("control_").expect("control_ prefix"));
    let missing: Vec<&str> = peer
        .chain(control)
        .filter(|short| !doc.contains(&format!("`{short}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/control-channel.md lacks {missing:?}"
    );
}

/// The `id`-th message of a stalled-channel test.
fn closed_msg(id: u64) -> Message {
    Message::HandoffClosed(HandoffClosed {
        id,
        client: SocketAddrV4::new(CLIENT, 40000),
    })
}

/// Sends `closed_msg(0)`, `closed_msg(1)` ... from `a`'s worker while
/// only `a`'s loop runs, until `a`'s `counter` reaches `until`: how many
/// were sent.
fn stall(a: &mut Node, counter: &str, until: u64) -> u64 {
    let deadline = Instant::now() + WAIT;
    let mut sent = 0;
    while a.plane.counters()[counter] < until {
        assert!(Instant::now() < deadline, "a's send queue never filled");
        while a
            .outbox
            .try_send(FromWorker::Message {
                peer: 0,
                msg: closed_msg(sent),
            })
            .is_ok()
        {
            sent += 1;
        }
        a.plane.tick(Duration::ZERO);
    }
    sent
}

#[test]
fn a_stalled_peer_delays_messages_and_loses_none() {
    let mut b = node(channel("b", "a", unused()), 1, 1 << 16);
    let mut a = node(channel("a", "b", b.plane.local_addr()), 1, 64);
    up_both_ways(&mut a, &mut b);
    // b's loop stops: its readers stop reading once its event queue is
    // full, TCP pushes back, and a's send queue to b fills.
    let sent = stall(&mut a, "control_sends_deferred", 10_000);
    assert!(a.plane.counters()["control_backlog"] > 0);
    // b's loop runs again: every message arrives, in order.
    let mut next = 0;
    let deadline = Instant::now() + WAIT;
    while next < sent {
        assert!(Instant::now() < deadline, "{next} of {sent} arrived");
        a.plane.tick(Duration::ZERO);
        b.plane.tick(Duration::from_millis(1));
        while let Ok(event) = b.inboxes[0].try_recv() {
            if let ToWorker::Message { msg, .. } = event {
                if !matches!(msg, Message::Load(_)) {
                    assert_eq!(msg, closed_msg(next));
                    next += 1;
                }
            }
        }
    }
    let counters = a.plane.counters();
    assert_eq!(counters["control_backlog"], 0);
    assert_eq!(b.plane.counters()["control_worker_queue_full"], 0);
    // Only load announcements may have found the queue full.
    assert!(
        counters["control_messages_out"] >= sent,
        "{sent} sent: {counters:?}"
    );
}

#[test]
fn messages_kept_for_a_connection_are_never_sent_on_the_next() {
    let mut b = node(channel("b", "a", unused()), 1, 1 << 16);
    let mut a = node(channel("a", "b", b.plane.local_addr()), 1, 64);
    up_both_ways(&mut a, &mut b);
    // b stalls until a's messages wait in its backlog; then the connection
    // is replaced.
    let sent = stall(&mut a, "control_backlog", 1000);
    let waiting = a.plane.counters()["control_backlog"];
    let old = a.plane.channels.connection("b");
    a.plane.channels.reset("b", "test");
    // What reached b before arrives in order; what waited, never.
    let (mut next, mut ups) = (0, 0);
    let hear = |b: &mut Node, next: &mut u64, ups: &mut usize| {
        while let Ok(event) = b.inboxes[0].try_recv() {
            match event {
                ToWorker::PeerUp(0) => *ups += 1,
                ToWorker::Message { msg, .. } if !matches!(msg, Message::Load(_)) => {
                    assert_eq!(msg, closed_msg(*next), "out of order, or from the backlog");
                    *next += 1;
                }
                _ => {}
            }
        }
    };
    // The new connection is up before a's loop hears the old one went down.
    let deadline = Instant::now() + WAIT;
    while a.plane.channels.connection("b").is_none() || a.plane.channels.connection("b") == old {
        assert!(
            Instant::now() < deadline,
            "no reconnection: {:?} {:?} {:?}",
            a.plane.channels.connection("b"),
            a.plane.channels.status(),
            b.plane.channels.status()
        );
        b.plane.tick(Duration::from_millis(1));
        hear(&mut b, &mut next, &mut ups);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        a.plane.tick(Duration::ZERO);
        b.plane.tick(Duration::from_millis(1));
        hear(&mut b, &mut next, &mut ups);
        if ups > 0 && a.plane.counters()["control_backlog"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "b never heard a again");
    }
    // A little longer: nothing more comes.
    for _ in 0..50 {
        a.plane.tick(Duration::ZERO);
        b.plane.tick(Duration::from_millis(1));
        hear(&mut b, &mut next, &mut ups);
    }
    assert!(
        next <= sent - waiting,
        "{next} arrived of {sent}; {waiting} waited"
    );
    assert!(a.plane.counters()["control_send_failures"] >= waiting);
}
