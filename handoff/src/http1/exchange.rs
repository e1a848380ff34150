//! An owner's view of a connection: the requests it was given, and how far
//! its server has answered them.

use std::collections::VecDeque;

use super::framer::{Body, Framer, Step};
use super::head::{RequestHead, ResponseHead};
use crate::seq::SeqNum;

/// The server's side of a connection, against the requests it answers.
#[derive(Debug, Clone)]
pub struct Exchange {
    responses: Framer,
    /// Requests whose final response has not ended yet, oldest first.
    waiting: VecDeque<RequestHead>,
    /// The response being read is a final one (not 1xx): its end answers
    /// the oldest request.
    final_response: bool,
    /// The server said it closes the connection (or closed it).
    closing: bool,
}

/// Whether an owner can give its connection up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Every request it was given has its whole response (sent, not
    /// necessarily acknowledged).
    Yes,
    /// A response is still on its way.
    NotYet,
    /// Never: the connection carries no more HTTP exchanges that Baton can
    /// tell apart (the reason), or it is closing.
    Never(&'static str),
}

impl Exchange {
    /// An owner whose server sends its next response from `server_at`.
    pub fn new(server_at: SeqNum) -> Exchange {
        Exchange {
            responses: Framer::new(server_at),
            waiting: VecDeque::new(),
            final_response: false,
            closing: false,
        }
    }

    /// The owner got another request: its response comes after those of
    /// the requests before it.
    pub fn request(&mut self, head: RequestHead) {
        self.waiting.push_back(head);
    }

    /// The first byte of the server's stream still to be read: a server
    /// segment ending at or before it needs no look.
    #[inline]
    pub fn server_next(&self) -> SeqNum {
        self.responses.next()
    }

    /// The server closes the connection (its FIN).
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// Whether every request so far has its whole response.
    pub fn idle(&self) -> Idle {
        if let Some(why) = self.responses.endless() {
            return Idle::Never(why);
        }
        if self.closing {
            return Idle::Never("the server closes the connection");
        }
        if self.waiting.is_empty() && self.responses.between_messages() {
            Idle::Yes
        } else {
            Idle::NotYet
        }
    }

    /// Reads what it needs of `payload`, a server segment's data starting
    /// at `seq`. The server's own segments come in order (retransmissions
    /// fall before [`Exchange::server_next`]); should one not, the framing
    /// ends.
    pub fn server_segment(&mut self, seq: SeqNum, payload: &[u8]) {
        loop {
            match self.responses.step(seq, payload) {
                Step::Head { .. } => self.response_head(),
                Step::Done { .. } => self.response_done(),
                Step::More | Step::Endless(_) => return,
                Step::Gap => {
                    self.responses.end("a gap in the server's stream");
                    return;
                }
            }
        }
    }

    fn response_head(&mut self) {
        let head = match ResponseHead::parse(self.responses.head()) {
            Ok(head) => head,
            Err(why) => {
                self.responses.end(why);
                return;
            }
        };
        // A response no request asked for (a 408 before a close, say) is
        // framed as the answer to a plain GET.
        let request = self.waiting.front().copied().unwrap_or(RequestHead {
            body: Body::None,
            head_method: false,
            switches: false,
            close: false,
        });
        self.closing |= head.close;
        self.final_response = !head.is_interim();
        if self.responses.body(head.body(&request)).is_some() {
            self.response_done();
        }
    }

    fn response_done(&mut self) {
        if std::mem::take(&mut self.final_response) {
            self.waiting.pop_front();
        }
    }
}
