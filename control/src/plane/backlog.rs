//! Messages that found their peer's send queue full, kept in order until
//! it has room.
//!
//! The queue fills when the channel stalls: a lost segment of the
//! channel's TCP connection waits for a retransmission timeout (200 ms or
//! more), or the peer's control loop falls behind and TCP pushes back,
//! while a busy node sends thousands of handoff messages a second. A
//! message dropped there leaves a connection known to one node only: an
//! origin that never hears HandoffClosed forwards for a target that has
//! forgotten the connection until the idle timeout; one that never hears
//! HandoffAccept gives up on a handoff the target took. So what does not
//! fit waits here, and everything after it waits behind it: the peer sees
//! the messages in the order they were sent, as the channel promises.

use std::collections::VecDeque;

/// Messages that may wait for one peer: about five seconds of a stalled
/// channel at 10,000 handoffs a second, and a few MiB at most.
pub const BACKLOG_MESSAGES: usize = 65_536;

/// Why a queue did not take a message.
pub enum Refused<T> {
    /// It is full for now: the message is given back.
    Full(T),
    /// It takes nothing any more (the peer is down, or gone).
    Closed,
}

/// What became of a message given to [`Backlog::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued for the peer.
    Now,
    /// Kept, behind what already waits.
    Later,
    /// Lost: the backlog is full too, or the peer's queue is closed.
    Dropped,
}

/// The messages waiting for one peer, oldest first.
pub struct Backlog<T> {
    waiting: VecDeque<T>,
    max: usize,
}

impl<T> Backlog<T> {
    pub fn new(max: usize) -> Backlog<T> {
        Backlog {
            waiting: VecDeque::new(),
            max,
        }
    }

    /// Queues `message` with `try_send` unless older messages wait (offer
    /// them first, with [`Backlog::flush`]); keeps it when it cannot go.
    pub fn send(
        &mut self,
        message: T,
        mut try_send: impl FnMut(T) -> Result<(), Refused<T>>,
    ) -> Sent {
        if !self.waiting.is_empty() {
            return self.keep(message);
        }
        match try_send(message) {
            Ok(()) => Sent::Now,
            Err(Refused::Full(message)) => self.keep(message),
            Err(Refused::Closed) => Sent::Dropped,
        }
    }

    fn keep(&mut self, message: T) -> Sent {
        if self.waiting.len() >= self.max {
            return Sent::Dropped;
        }
        self.waiting.push_back(message);
        Sent::Later
    }

    /// Queues what waits, oldest first, until the queue is full: how many
    /// went. When the queue is closed, what waits is forgotten: Err with
    /// how many were lost.
    pub fn flush(
        &mut self,
        mut try_send: impl FnMut(T) -> Result<(), Refused<T>>,
    ) -> Result<usize, usize> {
        let mut sent = 0;
        while let Some(message) = self.waiting.pop_front() {
            match try_send(message) {
                Ok(()) => sent += 1,
                Err(Refused::Full(message)) => {
                    self.waiting.push_front(message);
                    break;
                }
                Err(Refused::Closed) => return Err(1 + self.clear()),
            }
        }
        Ok(sent)
    }

    /// Forgets what waits (the peer went down: messages are never kept
    /// for a later connection): how many were lost.
    pub fn clear(&mut self) -> usize {
        let lost = self.waiting.len();
        self.waiting.clear();
        lost
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of `room` places.
    fn queue(room: usize) -> (Vec<u32>, usize) {
        (Vec::new(), room)
    }

    fn into(q: &mut (Vec<u32>, usize)) -> impl FnMut(u32) -> Result<(), Refused<u32>> + '_ {
        |m| {
            if q.0.len() < q.1 {
                q.0.push(m);
                Ok(())
            } else {
                Err(Refused::Full(m))
            }
        }
    }

    #[test]
    fn what_does_not_fit_waits_and_goes_first_once_there_is_room() {
        let mut backlog = Backlog::new(8);
        let mut q = queue(2);
        let sent: Vec<Sent> = (1..=4).map(|m| backlog.send(m, into(&mut q))).collect();
        assert_eq!(sent, [Sent::Now, Sent::Now, Sent::Later, Sent::Later]);
        assert_eq!(backlog.len(), 2);
        // The peer reads one: a waiting message takes its place, and the
        // next one goes behind the others.
        q.0.remove(0);
        assert_eq!(backlog.flush(into(&mut q)), Ok(1));
        assert_eq!(backlog.send(5, into(&mut q)), Sent::Later);
        assert_eq!(q.0, [2, 3]);
        q.1 = 10;
        assert_eq!(backlog.flush(into(&mut q)), Ok(2));
        assert_eq!(q.0, [2, 3, 4, 5]);
        assert!(backlog.is_empty());
        assert_eq!(backlog.send(6, into(&mut q)), Sent::Now);
    }

    #[test]
    fn a_full_backlog_drops_and_a_closed_queue_takes_nothing() {
        let mut backlog = Backlog::new(1);
        let mut q = queue(0);
        assert_eq!(backlog.send(1, into(&mut q)), Sent::Later);
        assert_eq!(backlog.send(2, into(&mut q)), Sent::Dropped);
        // What waits is lost when the queue closes.
        assert_eq!(backlog.flush(|_| Err(Refused::Closed)), Err(1));
        assert!(backlog.is_empty());
        assert_eq!(backlog.send(3, |_| Err(Refused::Closed)), Sent::Dropped);
        assert!(backlog.is_empty());
        assert_eq!(backlog.send(5, into(&mut q)), Sent::Later);
        assert_eq!(backlog.clear(), 1);
    }
}
