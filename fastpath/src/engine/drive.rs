//! The one driver of both state machines.
//!
//! The machines decide (`baton_handoff::state`); a role's executor carries
//! out one action at a time (`origin`, `target`); everything between the
//! two is here, written once: feed the event, carry out the actions in
//! order, then commit the step (the new state, its timer, the gauges, the
//! note's counters) or, when an action cannot be carried out for the
//! packet at hand, roll it back (the flow keeps its state, timer and
//! gauges; the note is not counted). Invalid transitions are counted and
//! change nothing.

use std::time::{Duration, Instant};

use baton_handoff::state::{Event, Machine, Side, TimerKind, Transition};

use super::api::{EngineConfig, Verdict};
use super::flow::{Flow, FlowKey, Handoff, Role, Timer};
use super::parts::Parts;
use super::Engine;
use crate::counters::Counter;
use crate::packet::TcpFrame;

/// What a transition acts on besides the flow.
pub(super) enum Input<'a> {
    /// The packet of a packet event, its parse, and who sent it.
    Packet(&'a mut [u8], &'a TcpFrame, Side),
    /// The policy chose this peer; the request gets this id.
    Chosen(Handoff),
    /// A signal without data: a message or a timer.
    Nothing,
}

/// What carrying out one action made of the packet: `Ok(Some(verdict))`
/// says where it goes, `Ok(None)` leaves that to the other actions, and
/// `Err(verdict)` means the packet cannot be taken as the transition
/// assumes: the step is rolled back, and the packet goes as `verdict` says.
pub(super) type Carried = Result<Option<Verdict>, Verdict>;

/// A role's flow state: its machine, and what each action does.
pub(super) trait Executor {
    type M: Machine;

    /// This role's flow, if `role` is one.
    fn of(role: &mut Role) -> Option<&mut Self>;

    fn state(&self) -> Self::M;

    fn set_state(&mut self, state: Self::M);

    /// How long a state's timer runs, for this flow.
    fn duration(&self, cfg: &EngineConfig, timer: <Self::M as Machine>::Timer) -> Duration;

    /// The event an expiry of the flow's timer is: `Timeout`, unless the
    /// flow paces retransmissions and its budget allows another.
    fn expiry(&self, cfg: &EngineConfig) -> <Self::M as Machine>::Event;

    /// Carries out one action of a transition.
    fn carry_out(
        &mut self,
        parts: &mut Parts<'_>,
        key: FlowKey,
        action: <Self::M as Machine>::Action,
        input: &mut Input<'_>,
        now: Instant,
    ) -> Carried;
}

/// What a step left to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Driven {
    /// Where the packet goes (`Consumed` for a signal).
    pub verdict: Verdict,
    /// The flow reached a final state: forget it.
    pub finished: bool,
}

/// Feeds `event` to the flow's machine and carries the step out. None when
/// the event is not valid in the flow's state (counted; nothing changes).
pub(super) fn drive<X: Executor>(
    flow: &mut X,
    timer: Timer<'_>,
    parts: &mut Parts<'_>,
    key: FlowKey,
    event: <X::M as Machine>::Event,
    mut input: Input<'_>,
    now: Instant,
) -> Option<Driven> {
    let state = flow.state();
    let Transition {
        next,
        actions,
        note,
    } = match state.on(event) {
        Ok(transition) => transition,
        Err(invalid) => {
            parts.count(Counter::InvalidTransition, 1);
            tracing::debug!("flow {key:?}: {invalid}");
            return None;
        }
    };
    debug_assert!(
        event.carries_packet() || !matches!(input, Input::Packet(..)),
        "a packet came with the signal {}",
        event.name()
    );
    let mut verdict = Verdict::Consumed;
    for action in actions {
        match flow.carry_out(parts, key, action, &mut input, now) {
            Ok(Some(fate)) => verdict = fate,
            Ok(None) => {}
            Err(fate) => {
                return Some(Driven {
                    verdict: fate,
                    finished: false,
                })
            }
        }
    }
    // Commit. A new state arms its timer, and so does a state its own
    // timer's event left in place (a retransmission).
    if let Some(kind) = next.timer() {
        let passed = matches!(verdict, Verdict::ToHost | Verdict::ToWire);
        let at = parts.timers.deadline(now, flow.duration(parts.cfg, kind));
        if next != state || event.is_expiry() {
            timer.set(parts, key, at);
        } else if passed && kind.restarts_with_traffic() {
            *timer.deadline = at;
        }
    }
    parts.gauges.moved(state.gauge(), next.gauge());
    if let Some(note) = note {
        parts.note(note);
        parts.outcomes.note(note, &key, now);
    }
    flow.set_state(next);
    Some(Driven {
        verdict,
        finished: next.is_final(),
    })
}

impl Engine {
    /// Feeds `event` to the machine of flow `key`, if it is a flow of role
    /// `X`, and forgets the flow when it ends. None when there is no such
    /// flow, or the event was invalid.
    pub(super) fn step<X: Executor>(
        &mut self,
        key: FlowKey,
        event: <X::M as Machine>::Event,
        input: Input<'_>,
        now: Instant,
    ) -> Option<Driven> {
        let (
            Flow {
                deadline,
                armed,
                role,
            },
            mut parts,
        ) = self.flow_and_parts(&key)?;
        let flow = X::of(role)?;
        let driven = drive(
            flow,
            Timer { deadline, armed },
            &mut parts,
            key,
            event,
            input,
            now,
        )?;
        if driven.finished {
            self.remove(&key);
        }
        Some(driven)
    }

    /// The timer of flow `key`, of role `X`, expired: feeds its machine
    /// the event that is (see [`Executor::expiry`]).
    pub(super) fn expire<X: Executor>(&mut self, key: FlowKey, now: Instant) {
        let cfg = &self.cfg;
        let Some(event) = self
            .flows
            .get_mut(&key)
            .and_then(|f| X::of(&mut f.role))
            .map(|f| f.expiry(cfg))
        else {
            return;
        };
        self.step::<X>(key, event, Input::Nothing, now);
    }

    /// Adds a new flow of role `X`, made by `make` in its machine's start
    /// state, carries out the start's actions, and arms the state's timer.
    pub(super) fn open<X: Executor>(
        &mut self,
        key: FlowKey,
        make: impl FnOnce(X::M) -> Role,
        mut input: Input<'_>,
        now: Instant,
    ) -> Verdict {
        let start = X::M::start();
        let mut role = make(start.next);
        let mut verdict = Verdict::Consumed;
        let mut after = Duration::ZERO;
        let (_, mut parts) = self.table_and_parts();
        if let Some(flow) = X::of(&mut role) {
            for action in start.actions {
                if let Ok(Some(fate)) = flow.carry_out(&mut parts, key, action, &mut input, now) {
                    verdict = fate;
                }
            }
            if let Some(kind) = start.next.timer() {
                after = flow.duration(parts.cfg, kind);
            }
        }
        let deadline = self.timers.deadline(now, after);
        self.insert(key, deadline, role);
        verdict
    }
}
