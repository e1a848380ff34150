//! Messages that found their queue full, kept in order until it has
//! room: a worker's messages for the control lcore, and the control
//! lcore's for a peer or a worker.
//!
//! A queue fills when whoever reads it stalls: the control lcore is not
//! scheduled for a while, or the channel to a peer waits out a lost
//! segment's retransmission timeout (200 ms or more), or the peer's control
//! loop falls behind and TCP pushes back, while a busy node sends
//! thousands of handoff messages a second. A message dropped there leaves
//! a connection known to one node only: an origin that never hears
//! HandoffClosed forwards for a target that has forgotten the connection
//! until the idle timeout; one that never hears HandoffAccept gives up on
//! a handoff the target took. So what does not fit waits here, and
//! everything after it waits behind it: the reader sees the messages in
//! the order they were sent.

use std::collections::VecDeque;

/// What a queue did with a message offered to it.
pub enum Offered<T> {
    Taken,
    /// It is full for now: the message is given back.
    Full(T),
    /// It takes nothing any more: its reader is gone (a stopped worker,
    /// a peer down or removed).
    Closed,
}

/// What became of a message given to [`Backlog::send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued.
    Now,
    /// Kept, behind what already waits.
    Later,
    /// Lost: the backlog is full too, or the queue is closed.
    Dropped,
}

/// The messages waiting for one queue, oldest first.
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
    pub fn send(&mut self, message: T, mut try_send: impl FnMut(T) -> Offered<T>) -> Sent {
        if !self.waiting.is_empty() {
            return self.keep(message);
        }
        match try_send(message) {
            Offered::Taken => Sent::Now,
            Offered::Full(message) => self.keep(message),
            Offered::Closed => Sent::Dropped,
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
    pub fn flush(&mut self, mut try_send: impl FnMut(T) -> Offered<T>) -> Result<usize, usize> {
        let mut sent = 0;
        while let Some(message) = self.waiting.pop_front() {
            match try_send(message) {
                Offered::Taken => sent += 1,
                Offered::Full(message) => {
                    self.waiting.push_front(message);
                    break;
                }
                Offered::Closed => return Err(1 + self.clear()),
            }
        }
        Ok(sent)
    }

    /// Forgets what waits (a peer went down: messages are never kept for
    /// a later connection): how many were lost.
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

    fn into(q: &mut (Vec<u32>, usize)) -> impl FnMut(u32) -> Offered<u32> + '_ {
        |m| {
            if q.0.len() < q.1 {
                q.0.push(m);
                Offered::Taken
            } else {
                Offered::Full(m)
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
        assert_eq!(backlog.flush(|_| Offered::Closed), Err(1));
        assert!(backlog.is_empty());
        assert_eq!(backlog.send(3, |_| Offered::Closed), Sent::Dropped);
        assert!(backlog.is_empty());
        assert_eq!(backlog.send(5, into(&mut q)), Sent::Later);
        assert_eq!(backlog.clear(), 1);
    }
}
