//! The per-packet path of connections past their first decision: a
//! handed-in connection's segments translated, a handed-off one's
//! forwarded, a routed one served here passed through.
//!
//! Nearly every packet Baton manages is one of these, and each takes the
//! same transition of its role's machine: `TargetState::Established` with
//! a plain segment (no SYN, FIN or RST) translates it and stays,
//! `OriginState::Forwarding` with one forwards it and stays, and
//! `OriginState::Serving` passes it on and stays; all restart the idle
//! timer. Here those transitions are carried out directly, with the flow
//! found by one probe, instead of through the general event/action loop.
//! The test `fast_path_transitions_are_the_machines` keeps this module and
//! the machines in agreement; every other packet (and state) takes the
//! general path in `origin` and `target`.
//!
//! An HTTP connection is routed request by request, so the general path
//! also reads what the HTTP framing needs: the client's segments with
//! data (request heads), and the server's that reach past the flow's
//! `watch` (response heads, chunk sizes). Bodies are stepped over: their
//! segments end before the watch, and stay here.

use std::time::Instant;

use crate::counters::Counter;
use crate::packet::{SeqNum, TcpFlags, TcpFrame};

use super::flow::{Flow, FlowKey, OriginFlow, OriginState, Role, TargetState};
use super::timers::Tick;
use super::{origin, target, Engine, Verdict};

/// What the fast path made of a packet.
pub(super) enum Fast {
    /// Done: where the packet goes.
    Done(Verdict),
    /// A flow of this role, for the general path.
    Origin,
    Target,
    /// No flow has this key.
    Unknown,
}

/// SYN, FIN or RST: a segment that may change its connection's state.
const CONTROL: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0);

/// Moves a flow's idle deadline to `at`. Written only when it changes
/// (once per 50 ms tick at most): a slot that is only read stays clean in
/// the cache, and is never written back to memory.
#[inline]
fn restart_idle(deadline: &mut Tick, at: Tick) {
    if *deadline != at {
        *deadline = at;
    }
}

fn plain(tcp: &TcpFrame) -> bool {
    tcp.flags.0 & CONTROL.0 == 0
}

/// Whether a plain segment's data ends at or before `watch`: nothing in it
/// for the HTTP framing.
#[inline]
fn before(tcp: &TcpFrame, watch: SeqNum) -> bool {
    !tcp.seq.add_len(tcp.payload_len()).is_after(watch)
}

/// Notes the client's acknowledgement, written only when it changes.
#[inline]
fn note_ack(o: &mut OriginFlow, tcp: &TcpFrame) {
    if tcp.flags.contains(TcpFlags::ACK) && o.client_ack != tcp.ack {
        o.client_ack = tcp.ack;
    }
}

impl Engine {
    /// A client packet (from the wire) of flow `key`.
    #[inline(always)]
    pub(super) fn fast_from_client(
        &mut self,
        key: &FlowKey,
        frame: &mut [u8],
        tcp: &TcpFrame,
        now: Instant,
    ) -> Fast {
        let Some((flow, parts)) = self.flow_and_parts(key) else {
            return Fast::Unknown;
        };
        let Flow { deadline, role, .. } = flow;
        match role {
            Role::Target(t)
                if plain(tcp) && tcp.payload_len() == 0 && t.state == TargetState::Established =>
            {
                match target::translate_to_kernel(t, &parts, key, frame, tcp) {
                    Ok(_) => {
                        restart_idle(deadline, parts.timers.deadline(now, parts.cfg.idle_timeout));
                        Fast::Done(Verdict::ToHost)
                    }
                    Err(verdict) => Fast::Done(verdict),
                }
            }
            Role::Origin(o)
                if plain(tcp) && o.state == OriginState::Forwarding && before(tcp, o.watch) =>
            {
                note_ack(o, tcp);
                origin::redirect(frame, origin::target_mac(o, &parts), parts.cfg.own_mac);
                parts.count(Counter::ForwardedToPeer, 1);
                restart_idle(deadline, parts.timers.deadline(now, parts.cfg.idle_timeout));
                Fast::Done(Verdict::ToWire)
            }
            Role::Origin(o)
                if plain(tcp) && tcp.payload_len() == 0 && o.state == OriginState::Serving =>
            {
                note_ack(o, tcp);
                restart_idle(deadline, parts.timers.deadline(now, parts.cfg.idle_timeout));
                Fast::Done(Verdict::ToHost)
            }
            Role::Target(_) => Fast::Target,
            Role::Origin(_) => Fast::Origin,
        }
    }

    /// A packet of the local kernel; `key` is the one it carries (client as
    /// destination). Returns the flow's client-side key with the outcome.
    #[inline(always)]
    pub(super) fn fast_from_kernel(
        &mut self,
        key: &FlowKey,
        frame: &mut [u8],
        tcp: &TcpFrame,
        now: Instant,
    ) -> (FlowKey, Fast) {
        let Some((wire_key, flow, parts)) = self.kernel_flow_and_parts(key) else {
            return (*key, Fast::Unknown);
        };
        let Flow { deadline, role, .. } = flow;
        let fast = match role {
            Role::Target(t)
                if plain(tcp) && t.state == TargetState::Established && before(tcp, t.watch) =>
            {
                match target::translate_to_client(t, &parts, &wire_key, frame, tcp) {
                    Ok(_) => {
                        restart_idle(deadline, parts.timers.deadline(now, parts.cfg.idle_timeout));
                        Fast::Done(Verdict::ToWire)
                    }
                    Err(verdict) => Fast::Done(verdict),
                }
            }
            Role::Origin(o)
                if plain(tcp) && o.state == OriginState::Serving && before(tcp, o.watch) =>
            {
                restart_idle(deadline, parts.timers.deadline(now, parts.cfg.idle_timeout));
                Fast::Done(Verdict::ToWire)
            }
            Role::Target(_) => Fast::Target,
            Role::Origin(_) => Fast::Origin,
        };
        (wire_key, fast)
    }
}

#[cfg(test)]
mod tests {
    use baton_handoff::state::{
        Machine, OriginAction, OriginEvent, OriginState, TargetAction, TargetEvent, TargetState,
        TimerKind,
    };

    /// The fast path carries out these transitions: the same state, the one
    /// action, no note, and the idle timer restarted by the packet.
    fn assert_fast<M: Machine>(state: M, event: M::Event, action: M::Action) {
        let t = state.on(event).unwrap();
        assert_eq!(
            (t.next, t.actions.to_vec(), t.note),
            (state, vec![action], None),
            "{state:?} × {event:?}"
        );
        assert!(state.timer().unwrap().restarts_with_traffic());
        assert_eq!(state.gauge(), t.next.gauge());
    }

    #[test]
    fn fast_path_transitions_are_the_machines() {
        use TargetState::Established;
        assert_fast(
            Established,
            TargetEvent::FromClient,
            TargetAction::TranslateToKernel,
        );
        assert_fast(
            Established,
            TargetEvent::FromKernel,
            TargetAction::TranslateToClient,
        );
        for event in [OriginEvent::AckFromClient, OriginEvent::DataFromClient] {
            assert_fast(
                OriginState::Forwarding,
                event,
                OriginAction::ForwardToTarget,
            );
        }
        assert_fast(
            OriginState::Serving,
            OriginEvent::AckFromClient,
            OriginAction::PassToKernel,
        );
        assert_fast(
            OriginState::Serving,
            OriginEvent::FromKernel,
            OriginAction::PassToClient,
        );
    }
}
