//! The client's stream: one request after another.

use super::framer::{Framer, Step};
use super::head::RequestHead;
use crate::seq::SeqNum;

/// The client's side of a connection, request by request.
#[derive(Debug, Clone)]
pub struct Requests {
    framer: Framer,
    /// The head just seen, whose body the framer steps over once the
    /// caller has read it.
    seen: Option<RequestHead>,
}

/// What [`Requests::step`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A request's head, complete: the request starts at `start`. Its
    /// bytes are [`Requests::head`] until the next step.
    Request { start: SeqNum, head: RequestHead },
    /// Everything given is accounted for.
    More,
    /// The bytes given start after the stream's position: some before them
    /// are missing.
    Gap,
    /// No more requests can be told apart (the reason): the last one asked
    /// to switch protocols, or to close, or the bytes are not HTTP/1.x.
    Endless(&'static str),
}

impl Requests {
    /// The client's stream, at a request boundary at `at`.
    pub fn new(at: SeqNum) -> Requests {
        Requests {
            framer: Framer::new(at),
            seen: None,
        }
    }

    /// The first byte the stream still needs (see [`Framer::next`]).
    #[inline]
    pub fn next(&self) -> SeqNum {
        self.framer.next()
    }

    /// Whether the stream stands at a request boundary at `at`: every
    /// request before it was seen whole, and none has begun after.
    pub fn at_boundary(&self, at: SeqNum) -> bool {
        self.seen.is_none() && self.framer.between_messages() && self.framer.next() == at
    }

    /// Why no more requests can be told apart, if so.
    pub fn endless(&self) -> Option<&'static str> {
        self.framer.endless()
    }

    /// The bytes of the head [`Seen::Request`] returned.
    pub fn head(&self) -> &[u8] {
        self.framer.head()
    }

    /// Reads `payload`, a client segment's data starting at `seq`, up to
    /// the next request head. Call it again with the same segment until it
    /// answers something other than [`Seen::Request`].
    pub fn step(&mut self, seq: SeqNum, payload: &[u8]) -> Seen {
        if let Some(head) = self.seen.take() {
            self.framer.body(head.body);
            if head.switches {
                self.framer.end("the request may switch protocols");
            } else if head.close {
                self.framer.end("the client closes after this request");
            }
        }
        loop {
            return match self.framer.step(seq, payload) {
                Step::Head { start } => match RequestHead::parse(self.framer.head()) {
                    Ok(head) => {
                        self.seen = Some(head);
                        Seen::Request { start, head }
                    }
                    Err(why) => {
                        self.framer.end(why);
                        Seen::Endless(why)
                    }
                },
                // A request's end matters only as the next one's start.
                Step::Done { .. } => continue,
                Step::More => Seen::More,
                Step::Gap => Seen::Gap,
                Step::Endless(why) => Seen::Endless(why),
            };
        }
    }
}
