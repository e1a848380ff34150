//! The engine each path runs, with its flows already set up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_fastpath::counters::WorkerCounters;
use baton_fastpath::engine::{
    Engine, EngineConfig, FlowKey, Load, PeerInfo, Placement, Placer, ServiceKind,
};
use baton_fastpath::packet::{SeqDelta, SeqNum, Translation, TsOffset};

use crate::traffic::{client, CLIENT_MAC, CLIENT_SEQ, ORIGIN, OWN, OWN_MAC, PEER_MAC, SEQ_DELTA};
use crate::Path;

/// The engine of `path` with `flows` flows preloaded, or None for the
/// paths that run without one.
pub(crate) fn engine_for(
    path: Path,
    flows: usize,
    counters: &Arc<WorkerCounters>,
) -> Option<Engine> {
    if matches!(path, Path::Bare | Path::Passthrough) {
        return None;
    }
    let cfg = config(flows);
    let mut engine = Engine::new(cfg, Box::new(ServeHere), Arc::clone(counters));
    let now = Instant::now();
    for i in 0..flows {
        let (caddr, cport) = client(i);
        match path {
            Path::OriginForward => {
                engine.preload_forwarding(
                    FlowKey::new(caddr, cport, OWN, 80),
                    0,
                    CLIENT_MAC,
                    Some(SeqNum::new(CLIENT_SEQ)),
                    now,
                );
            }
            Path::TargetC2s | Path::TargetS2c => {
                let translation = Translation {
                    seq_delta: SeqDelta::new(SEQ_DELTA),
                    ts_offset: TsOffset::new(12345),
                    client_visible_addr: ORIGIN,
                    target_kernel_addr: OWN,
                    wscale_kernel: 7,
                    wscale_origin: 7,
                };
                engine.preload_handed_in(
                    FlowKey::new(caddr, cport, ORIGIN, 80),
                    0,
                    i as u64,
                    translation,
                    CLIENT_MAC,
                    now,
                );
            }
            _ => {}
        }
    }
    Some(engine)
}

/// The engine configuration of a run with `flows` flows.
pub(crate) fn config(flows: usize) -> EngineConfig {
    EngineConfig {
        worker: 0,
        workers: 1,
        own_addr: OWN,
        own_mac: OWN_MAC,
        vip: None,
        handoff_net: None,
        services: vec![(80, ServiceKind::Http)],
        peers: vec![PeerInfo {
            name: "peer".into(),
            mac: baton_fastpath::peer_mac::PeerMac::fixed(PEER_MAC),
        }],
        hold_bytes: 16384,
        hold_segments: 8,
        hold_timeout: Duration::from_millis(200),
        handoff_timeout: Duration::from_millis(500),
        linger: Duration::from_secs(2),
        // Nothing expires during a run.
        idle_timeout: Duration::from_secs(3600),
        recovery_wait: Duration::ZERO,
        orphan_timeout: Duration::from_secs(10),
        max_flows: flows,
        half_open: 65_536,
        half_open_timeout: Duration::from_secs(3),
    }
}

/// Requests never reach the placer in a benchmark: its flows are
/// established or unknown.
struct ServeHere;

impl Placer for ServeHere {
    fn place(&mut self, _: &[u8], _: ServiceKind, _: &[bool], _: Load) -> Placement {
        Placement::Local
    }
}
