//! The `[cluster]` and `[handoff]` sections: who the peer nodes are, how
//! the control channel to them is secured, which services Baton manages,
//! and where requests go.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cidr::Ipv4Cidr;
use crate::mac::MacAddr;

/// The cluster this node belongs to. Without it, Baton is a transparent
/// bump in the wire and hands nothing off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// A file holding the cluster's pre-shared key: 64 hex digits (32
    /// bytes), the same on every node. Kept out of the config so that the
    /// config can be shown and shared.
    pub psk_file: PathBuf,
    /// TCP port of the control channel, on every node's host address.
    #[serde(default = "default_control_port")]
    pub control_port: u16,
    /// The cluster VIP, when clients connect to an address all nodes share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<Ipv4Addr>,
    /// Where connections handed to this node are replayed into its kernel:
    /// a connection a client opened to a peer's own address is replayed as
    /// one to that peer's handoff address, the address with the same host
    /// part in this network (198.18.0.12 → 198.19.0.12 for
    /// `198.19.0.0/24` beside `host.address = "198.18.0.11/24"`). It
    /// stands for that peer alone, so a replayed connection never shares a
    /// 4-tuple with one the client opened to this node directly (nor with
    /// one another peer handed here). The same on every node, the same
    /// prefix length as `host.address`, and no address of that network;
    /// Baton puts every peer's handoff address on `lo` (never answered in
    /// ARP). Without it, such connections are replayed to this node's own
    /// address, where they can collide with direct ones. Connections to the
    /// VIP are replayed to the VIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_net: Option<Ipv4Cidr>,
    /// A heartbeat goes to every peer this often.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u32,
    /// A peer silent for this long is suspect: no new handoffs go to it,
    /// but what was handed to it carries on.
    #[serde(default = "default_suspect_after_ms")]
    pub suspect_after_ms: u32,
    /// A peer silent for this long is dead: its channel is closed and the
    /// connections handed to it are reset.
    #[serde(default = "default_dead_after_ms")]
    pub dead_after_ms: u32,
    /// The other nodes.
    pub peers: Vec<PeerConfig>,
}

fn default_control_port() -> u16 {
    7300
}
fn default_heartbeat_ms() -> u32 {
    500
}
fn default_suspect_after_ms() -> u32 {
    1500
}
fn default_dead_after_ms() -> u32 {
    10_000
}

/// Another node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its `node.name`.
    pub name: String,
    /// Its host address (where its control channel listens).
    pub address: Ipv4Addr,
    /// Its wire port's MAC: client packets of connections handed to it are
    /// forwarded there. `None`: learned from the wire, from the frames of
    /// its control channel (which only its own kernel sends).
    #[serde(
        default,
        deserialize_with = "crate::mac::deserialize_unicast_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub mac: Option<MacAddr>,
}

/// What Baton does with the connections it manages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffConfig {
    /// The TCP services Baton classifies (all other traffic passes through).
    pub services: Vec<ServiceConfig>,
    /// Most request bytes held while classifying.
    #[serde(default = "default_hold_bytes")]
    pub hold_bytes: u32,
    /// Most request segments held while classifying.
    #[serde(default = "default_hold_segments")]
    pub hold_segments: u32,
    /// Longest a request is held before it is served locally undecided.
    #[serde(default = "default_hold_timeout_ms")]
    pub hold_timeout_ms: u32,
    /// Longest a handoff may take at the target: its replayed SYN goes again
    /// after 100 ms, then at intervals doubling up to 400 ms, while this lasts,
    /// then the target refuses. The origin waits half a second longer for
    /// the answer, so that it never gives up first.
    #[serde(default = "default_handoff_timeout_ms")]
    pub handoff_timeout_ms: u32,
    /// How long a target keeps a closed connection's state (TIME-WAIT-like),
    /// so late retransmissions are still translated.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u32,
    /// How long a peer's channel may stay down before the connections it
    /// handed this node are reset at both ends: its clients' packets go to
    /// it, and nothing forwards them here any more. A peer back within it
    /// (a restart, say) learns again where they went, and they go on.
    #[serde(default = "default_orphan_timeout_ms")]
    pub orphan_timeout_ms: u32,
    /// A handed-off connection idle this long is forgotten.
    #[serde(default = "default_idle_timeout_s")]
    pub idle_timeout_s: u32,
    /// The most connections each worker tracks. When full, the oldest
    /// undecided ones are evicted (and served locally); established and
    /// handed-off ones never are. New connections that still do not fit are
    /// served locally, untracked.
    #[serde(default = "default_max_flows")]
    pub max_flows: u32,
    /// The most half-open connections (a client's SYN seen, its handshake
    /// not done) each worker remembers, apart from its flows. When full,
    /// the oldest is forgotten, and that connection, should it complete,
    /// is served locally, untracked. A SYN flood costs this much, no more.
    #[serde(default = "default_half_open")]
    pub half_open: u32,
    /// How long a half-open connection is remembered.
    #[serde(default = "default_half_open_ms")]
    pub half_open_ms: u32,
    /// Ordered rules; the first that matches picks the pool. No match: local.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
}

fn default_hold_bytes() -> u32 {
    16 * 1024
}
fn default_hold_segments() -> u32 {
    8
}
fn default_hold_timeout_ms() -> u32 {
    200
}
fn default_handoff_timeout_ms() -> u32 {
    // Room for one retransmitted SYN (a full accept queue drops the first).
    3000
}
fn default_orphan_timeout_ms() -> u32 {
    10_000
}
fn default_linger_ms() -> u32 {
    2000
}
fn default_idle_timeout_s() -> u32 {
    300
}
fn default_max_flows() -> u32 {
    1_000_000
}
fn default_half_open() -> u32 {
    65_536
}
fn default_half_open_ms() -> u32 {
    // The kernel sends its SYN-ACK again after 1 s, then 2 s more: a
    // handshake that needs both retransmissions still completes tracked.
    3000
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub port: u16,
    /// How the first request is read: "http" (request line and Host) or
    /// "tls" (ClientHello SNI).
    pub kind: ServiceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Http,
    Tls,
}

/// Matches a request; every matcher given must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The Host header: exact, or `*.example.com` for any subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The request path starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The TLS server name: exact or wildcard, as `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// The pool that serves what matches.
    pub pool: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub name: String,
    /// Node names: this node's and its peers'.
    pub nodes: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
    /// LARD: a node below this many connections is lightly loaded.
    #[serde(default = "default_lard_low")]
    pub lard_low: u32,
    /// LARD: a node above this many connections is overloaded.
    #[serde(default = "default_lard_high")]
    pub lard_high: u32,
}

fn default_lard_low() -> u32 {
    25
}
fn default_lard_high() -> u32 {
    65
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Serve here whenever this node is in the pool (rare handoff).
    #[default]
    LocalFirst,
    /// A Maglev table over the pool, keyed by host and path.
    ConsistentHash,
    /// Locality-aware request distribution with load thresholds.
    Lard,
    /// Fewest active connections and pending handoffs.
    LeastLoaded,
}

/// Synthetic handed-off connections, set up at start-up without any
/// handshake, so that a stateless traffic generator (pktgen) exercises the
/// forwarding and translation paths. For load tests only: never on a node
/// that serves real clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreloadConfig {
    /// Connections handed to this node (target side): translated both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_in: Option<PreloadFlows>,
    /// Connections this node handed to a peer (origin side): forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<PreloadFlows>,
}

/// `flows` connections from a grid of clients: client `i` is address
/// `first_client + i / ports_per_client`, port `first_port + i %
/// ports_per_client`, to `server:port`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreloadFlows {
    pub flows: u32,
    /// The peer: the origin (for `handed_in`) or the target (`forwarding`).
    pub peer: String,
    pub first_client: Ipv4Addr,
    #[serde(default = "default_first_port")]
    pub first_port: u16,
    #[serde(default = "default_ports_per_client")]
    pub ports_per_client: u16,
    /// The address the clients connected to: the origin's, or the VIP.
    pub server: Ipv4Addr,
    #[serde(default = "default_service_port")]
    pub port: u16,
    /// Where responses to the clients go (their router's or their own MAC).
    #[serde(deserialize_with = "crate::mac::deserialize_unicast")]
    pub client_mac: MacAddr,
    /// For `handed_in`: the sequence offset (origin ISN − this kernel's).
    #[serde(default)]
    pub seq_delta: u32,
    /// For `handed_in`: the timestamp offset.
    #[serde(default)]
    pub ts_offset: u32,
    /// For `handed_in`: the window shift both kernels announced.
    #[serde(default)]
    pub wscale: u8,
}

fn default_first_port() -> u16 {
    10_000
}
fn default_ports_per_client() -> u16 {
    50_000
}
fn default_service_port() -> u16 {
    80
}

impl PreloadFlows {
    /// The client of flow `i`.
    pub fn client(&self, i: u32) -> (Ipv4Addr, u16) {
        let per = u32::from(self.ports_per_client);
        let addr = Ipv4Addr::from(u32::from(self.first_client).wrapping_add(i / per));
        // Cannot truncate: i % per is below per, which came from a u16.
        #[allow(clippy::cast_possible_truncation)]
        let port = (i % per) as u16;
        (addr, self.first_port.wrapping_add(port))
    }
}
