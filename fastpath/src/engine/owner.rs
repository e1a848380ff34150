//! What the node that serves an HTTP connection follows, so that the
//! connection can move on at a response boundary: the requests its kernel
//! was given, how far the responses to them went, and a move asked of it.
//!
//! A target keeps one for each HTTP connection handed in; the origin keeps
//! one while its own kernel serves (see `origin::Route`, which gives it
//! the requests it routed here). Everything is in the kernel's sequence
//! space; the caller translates.

use std::time::Instant;

use baton_handoff::http1::{Exchange, Idle, RequestHead, Requests, Seen};

use crate::packet::{SeqNum, TsVal};

/// An owner's view of an HTTP connection.
pub(super) struct Owned {
    /// The client's stream, for an owner that is not its origin (the
    /// origin routes each request, and hands the owner its heads).
    requests: Option<Requests>,
    exchange: Exchange,
    /// The kernel's latest timestamp seen, and when: a move starts the next
    /// owner's clock past anything the client can have seen.
    kernel_ts: Option<(TsVal, Instant)>,
    /// A move asked of this owner: where the held request starts, and the
    /// client's latest acknowledgement (kernel space).
    release: Option<(SeqNum, SeqNum)>,
}

/// Whether an owner can give its connection up now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Readiness {
    /// No move was asked, or one is, and a response is not yet whole or
    /// acknowledged.
    Wait,
    /// Every request before the held one has its whole response, and the
    /// client acknowledged all of it: the server's next byte is `server_next`.
    Ready { server_next: SeqNum },
    /// The connection carries no more requests Baton can route.
    Never(&'static str),
}

impl Owned {
    /// An owner whose kernel sends its next byte at `server_at`; with
    /// `client_at`, it follows the client's requests itself from there.
    pub fn new(server_at: SeqNum, client_at: Option<SeqNum>) -> Owned {
        Owned {
            requests: client_at.map(Requests::new),
            exchange: Exchange::new(server_at),
            kernel_ts: None,
            release: None,
        }
    }

    /// The first kernel byte that needs the framing (the fast path passes
    /// kernel segments ending before it).
    pub fn server_next(&self) -> SeqNum {
        self.exchange.server_next()
    }

    /// The origin routed a request here.
    pub fn request(&mut self, head: RequestHead) {
        self.exchange.request(head);
    }

    /// A client segment's data, for an owner that follows the requests
    /// itself. `Err` when it starts past a gap: it must be dropped, and the
    /// client sends the missing bytes again.
    pub fn client_data(&mut self, seq: SeqNum, payload: &[u8]) -> Result<(), ()> {
        let Some(requests) = &mut self.requests else {
            return Ok(());
        };
        loop {
            match requests.step(seq, payload) {
                Seen::Request { head, .. } => self.exchange.request(head),
                Seen::More | Seen::Endless(_) => return Ok(()),
                Seen::Gap => return Err(()),
            }
        }
    }

    /// A kernel segment: its data, and its timestamp.
    pub fn kernel_segment(
        &mut self,
        seq: SeqNum,
        payload: &[u8],
        fin: bool,
        tsval: Option<TsVal>,
        now: Instant,
    ) {
        if let Some(ts) = tsval {
            self.kernel_ts = Some((ts, now));
        }
        if !payload.is_empty() {
            self.exchange.server_segment(seq, payload);
        }
        if fin {
            self.exchange.close();
        }
    }

    /// A move is asked: the held request starts at `at`; `client_ack` is
    /// the client's latest acknowledgement (kernel space).
    pub fn ask_release(&mut self, at: SeqNum, client_ack: SeqNum) {
        self.release = Some((at, client_ack));
    }

    /// A client acknowledgement, while a move is asked.
    pub fn client_ack(&mut self, ack: SeqNum) {
        if let Some((_, latest)) = &mut self.release {
            if ack.is_after(*latest) {
                *latest = ack;
            }
        }
    }

    /// Where the move asked stands.
    pub fn readiness(&self) -> Readiness {
        let Some((at, client_ack)) = self.release else {
            return Readiness::Wait;
        };
        if let Some(why) = self.requests.as_ref().and_then(Requests::endless) {
            return Readiness::Never(why);
        }
        match self.exchange.idle() {
            Idle::Never(why) => return Readiness::Never(why),
            Idle::NotYet => return Readiness::Wait,
            Idle::Yes => {}
        }
        let requests_done = self.requests.as_ref().is_none_or(|r| r.at_boundary(at));
        let server_next = self.exchange.server_next();
        if requests_done && client_ack == server_next {
            Readiness::Ready { server_next }
        } else {
            Readiness::Wait
        }
    }

    /// At least the latest timestamp the kernel can have sent by `now`
    /// (its clock ticks in milliseconds), or None without timestamps.
    pub fn tsval_bound(&self, now: Instant) -> Option<TsVal> {
        let (ts, at) = self.kernel_ts?;
        let elapsed = now.saturating_duration_since(at).as_millis();
        let elapsed = u32::try_from(elapsed).unwrap_or(u32::MAX);
        Some(ts + elapsed.saturating_add(1))
    }
}
