//! Flow state, origin and target side. Where a flow stands is the state
//! of its role's machine in `baton_handoff::state`; the rest is what the
//! actions of those machines need.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::num::NonZeroU64;

pub(super) use baton_handoff::state::{OriginState, TargetState};

use crate::packet::{MacAddr, SeqDelta, SeqNum, Translation, TsOffset, TsVal};

use super::timers::Tick;
use super::ServiceKind;

/// A connection as the client sees it: its own address and port, and the
/// address and port it connected to. Twelve bytes, so that a flow's key
/// and its hot state share one cache line (see `table`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    client_addr: Ipv4Addr,
    server_addr: Ipv4Addr,
    client_port: u16,
    server_port: u16,
}

impl FlowKey {
    pub fn new(client: Ipv4Addr, client_port: u16, server: Ipv4Addr, server_port: u16) -> FlowKey {
        FlowKey {
            client_addr: client,
            server_addr: server,
            client_port,
            server_port,
        }
    }

    pub fn client(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.client_addr, self.client_port)
    }

    pub fn server(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.server_addr, self.server_port)
    }

    pub fn server_addr(&self) -> Ipv4Addr {
        self.server_addr
    }

    /// The same connection with another server address: what the local
    /// kernel sees of a connection handed here (its own address).
    #[inline(always)]
    pub fn with_server_addr(self, server_addr: Ipv4Addr) -> FlowKey {
        FlowKey {
            server_addr,
            ..self
        }
    }

    /// Client address and both ports: everything but the server address,
    /// which is all a handed-in flow's two keys differ in. The flow table
    /// hashes this, so both keys lead to the same bucket.
    #[inline]
    pub(super) fn bucket_bits(&self) -> u64 {
        (u64::from(u32::from(self.client_addr)) << 32)
            | (u64::from(self.client_port) << 16)
            | u64::from(self.server_port)
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.bucket_bits());
        state.write_u32(self.server_addr.into());
    }
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.client(), self.server())
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 12);

/// A flow's hot state: what a packet of an established or handed-off
/// connection reads and writes. Everything else is boxed apart.
pub(super) struct Flow {
    /// When the timer of the flow's state fires (`OriginState::timer`,
    /// `TargetState::timer`), in timer wheel ticks (see `timers`).
    pub deadline: Tick,
    /// The tick of this flow's live entry on the timer wheel.
    pub armed: Tick,
    pub role: Role,
}

pub(super) enum Role {
    Origin(OriginFlow),
    Target(TargetFlow),
}

/// An origin connection. A packet of a connection handed off reads its
/// state and target, and notes the client's acknowledgement; one of a
/// connection served here reads how far its framing needs no look; the
/// rest serves the handoff request and the routing, boxed apart.
pub(super) struct OriginFlow {
    pub state: OriginState,
    /// The peer of the handoff under way or done (HandoffPending,
    /// Forwarding and their moves); its id is in the setup.
    pub peer: Option<PeerIndex>,
    /// The client's latest acknowledgement: a RST toward it uses it as seq,
    /// and a move waits for it to cover the owner's last response.
    pub client_ack: SeqNum,
    /// The first byte the fast path cannot pass without the HTTP framing:
    /// of the kernel's stream while this node serves the connection
    /// (Serving), of the client's while a peer does (Forwarding).
    pub watch: SeqNum,
    pub setup: Box<OriginSetup>,
}

/// What an origin flow gathers from the handshake and the first request
/// for the handoff request.
pub(super) struct OriginSetup {
    pub kind: ServiceKind,
    pub client_mac: MacAddr,
    /// The ISN of the client's SYN: a SYN with another one opens a new
    /// connection on the 4-tuple.
    pub syn_isn: SeqNum,
    /// One before the first client byte a takeover starts from: the
    /// client's ISN for the first request, the held request's start − 1
    /// for a move.
    pub isn_client: SeqNum,
    pub client_syn_options: Vec<u8>,
    /// The kernel's SYN-ACK: its ISN and options. For a move, one before
    /// the server's next sequence number as the client sees it.
    pub isn_origin: Option<SeqNum>,
    pub origin_synack_options: Vec<u8>,
    pub origin_tsval: Option<TsVal>,
    pub client_window: u16,
    pub client_tsval: Option<TsVal>,
    /// Request bytes from isn_client + 1 on, and the frames that carried
    /// them, to release to the local kernel unchanged.
    pub held: Vec<u8>,
    pub held_frames: Vec<Vec<u8>>,
    /// Client packets that arrive while the handoff is pending. The target
    /// may answer the client before its accept reaches us, and the client
    /// then acknowledges data this node never sent: those packets belong to
    /// the target, and go there once it accepts.
    pub queued: Vec<Vec<u8>>,
    /// When the handoff request was sent, for the log.
    pub requested_at: Option<std::time::Instant>,
    /// Peers a handoff of this request went to and failed with: a decision
    /// taken again counts them out.
    pub tried: Vec<PeerIndex>,
    /// Refusals sent to the client, the first and its retransmissions.
    pub refusals_sent: u8,
    /// The id of the handoff to `OriginFlow::peer`.
    pub handoff_id: Option<NonZeroU64>,
    /// How many of the held bytes the takeover under way carries (the rest
    /// are requests for other nodes, or came since).
    pub sent_len: usize,
    /// The client's latest held frame: bytes that go on after all are sent
    /// in segments like it.
    pub template: Option<Vec<u8>>,
    /// Per-request routing, from an HTTP connection's first decision on.
    pub route: Option<Box<super::origin::Route>>,
    /// The connection replayed into the kernel here, after a move back.
    pub replay: Option<Box<super::origin::Replay>>,
}

impl OriginSetup {
    /// Nothing gathered yet but what the client's SYN told.
    pub fn new(kind: ServiceKind, client_mac: MacAddr) -> OriginSetup {
        OriginSetup {
            kind,
            client_mac,
            syn_isn: SeqNum::default(),
            isn_client: SeqNum::default(),
            client_syn_options: Vec::new(),
            isn_origin: None,
            origin_synack_options: Vec::new(),
            origin_tsval: None,
            client_window: 0,
            client_tsval: None,
            held: Vec::new(),
            held_frames: Vec::new(),
            queued: Vec::new(),
            requested_at: None,
            tried: Vec::new(),
            refusals_sent: 0,
            handoff_id: None,
            sent_len: 0,
            template: None,
            route: None,
            replay: None,
        }
    }
}

/// A handoff request: the node it went to, and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Handoff {
    /// Never zero, so that an `Option<Handoff>` takes no more room.
    pub id: NonZeroU64,
    pub peer: PeerIndex,
}

impl OriginFlow {
    /// The watch of a connection whose requests are not routed: a
    /// gigabyte past `client_at`, the client's latest byte, so that the
    /// fast path passes its segments without a look until then.
    pub fn unrouted_watch(client_at: SeqNum) -> SeqNum {
        client_at + (1 << 30)
    }

    /// The handoff under way or done: its peer and id.
    pub fn handoff(&self) -> Option<Handoff> {
        Some(Handoff {
            id: self.setup.handoff_id?,
            peer: self.peer?,
        })
    }

    /// Records the handoff under way (or none), returning the one before.
    pub fn set_handoff(&mut self, handoff: Option<Handoff>) -> Option<Handoff> {
        let before = self.handoff();
        self.peer = handoff.map(|h| h.peer);
        self.setup.handoff_id = handoff.map(|h| h.id);
        before
    }

    pub fn handoff_id(&self) -> Option<u64> {
        self.handoff().map(|h| h.id.get())
    }
}

/// A peer, by its index in `EngineConfig::peers`; 16 bits keep flow
/// entries small.
pub(super) type PeerIndex = u16;

/// The index of peer `peer`, one of `EngineConfig::peers`.
#[inline]
pub(super) fn peer_index(peer: usize) -> PeerIndex {
    // Cannot truncate: `Engine::new` holds the peers to what a PeerIndex
    // numbers.
    #[allow(clippy::cast_possible_truncation)]
    let index = peer as PeerIndex;
    index
}

/// A connection handed to this node. Its local kernel sees it addressed to
/// this node's own address; the client's packets carry the address it
/// connected to (`wire key`).
pub(super) struct TargetFlow {
    pub state: TargetState,
    pub client_mac: MacAddr,
    /// The first byte of the kernel's stream the fast path cannot pass
    /// without the HTTP framing (see `Exchange::server_next`).
    pub watch: SeqNum,
    /// Set once the kernel's SYN-ACK is seen.
    pub offsets: Option<Offsets>,
    pub setup: Box<TargetSetup>,
}

/// The numbers of a handed-in connection's translation. Its addresses are
/// the server addresses of the flow's two keys, so they are not kept twice.
#[derive(Debug, Clone, Copy)]
pub(super) struct Offsets {
    pub seq_delta: SeqDelta,
    pub ts_offset: TsOffset,
    wscale_kernel: WindowShift,
    wscale_origin: WindowShift,
}

/// A window shift, 0 to 14 (RFC 7323 caps larger ones at 14, as the
/// translation does). A byte with unused values, which lets
/// `Option<Offsets>` take no more room than `Offsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum WindowShift {
    S0,
    S1,
    S2,
    S3,
    S4,
    S5,
    S6,
    S7,
    S8,
    S9,
    S10,
    S11,
    S12,
    S13,
    S14,
}

impl WindowShift {
    fn new(shift: u8) -> WindowShift {
        use WindowShift::*;
        const ALL: [WindowShift; 15] = [
            S0, S1, S2, S3, S4, S5, S6, S7, S8, S9, S10, S11, S12, S13, S14,
        ];
        ALL[usize::from(shift.min(14))]
    }
}

impl Offsets {
    pub fn new(
        seq_delta: SeqDelta,
        ts_offset: TsOffset,
        wscale_kernel: u8,
        wscale_origin: u8,
    ) -> Offsets {
        Offsets {
            seq_delta,
            ts_offset,
            wscale_kernel: WindowShift::new(wscale_kernel),
            wscale_origin: WindowShift::new(wscale_origin),
        }
    }

    pub fn of(t: &Translation) -> Offsets {
        Offsets::new(t.seq_delta, t.ts_offset, t.wscale_kernel, t.wscale_origin)
    }

    /// The translation of the flow with `wire_key`, which the local kernel
    /// sees at `kernel_addr`.
    #[inline]
    pub fn translation(self, wire_key: &FlowKey, kernel_addr: Ipv4Addr) -> Translation {
        Translation {
            seq_delta: self.seq_delta,
            ts_offset: self.ts_offset,
            client_visible_addr: wire_key.server_addr(),
            target_kernel_addr: kernel_addr,
            wscale_kernel: self.wscale_kernel as u8,
            wscale_origin: self.wscale_origin as u8,
        }
    }
}

/// What a handed-in flow needs off the per-packet path.
pub(super) struct TargetSetup {
    /// The origin peer, and its id for the handoff.
    pub origin: PeerIndex,
    pub id: u64,
    /// What the replay needs until the connection is established.
    pub request: Option<Box<baton_handoff::msg::HandoffRequest>>,
    /// SYNs the replay has injected.
    pub syns_sent: u8,
    /// The next sequence number the client will send (for a RST to the
    /// kernel): data and FINs move it, on the general path.
    pub client_next_seq: SeqNum,
    /// An HTTP connection's requests and responses, for moves.
    pub exchange: Option<super::owner::Owned>,
}

/// A flow's timer, borrowed from the flow while its state changes.
pub(super) struct Timer<'f> {
    pub deadline: &'f mut Tick,
    pub armed: &'f mut Tick,
}

impl Timer<'_> {
    /// Sets the deadline of a new state, which may be sooner than the one
    /// the wheel holds: arm a new entry (the old one becomes stale).
    pub fn set(self, parts: &mut super::parts::Parts<'_>, key: FlowKey, at: Tick) {
        *self.deadline = at;
        *self.armed = parts.timers.arm(key, at);
    }
}

/// The hot state of a flow is at most 64 bytes with its key: one cache
/// line (see `table`).
const _: () = assert!(core::mem::size_of::<Flow>() + core::mem::size_of::<FlowKey>() <= 64);
