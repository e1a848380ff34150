//! Where HTTP/1.x messages begin and end in a connection's byte streams
//! (RFC 9112 §6), so that every request on a persistent connection can be
//! routed on its own.
//!
//! Baton never needs a message's body, only where it ends. A [`Framer`]
//! follows one direction of a connection in sequence space: it reads each
//! head (request or status line and header fields) and each chunk-size
//! line, and steps over everything else. After a head with
//! `Content-Length: n` its next position jumps `n` bytes ahead, so the
//! segments of the body, in whatever order they come, fall before it and
//! need no look at all: the engine hands a segment to the framer only when
//! it reaches past that position.
//!
//! - [`Requests`]: the client's stream. The origin routes each request by
//!   its head; an owner counts them, and notes which ones get a response
//!   without a body (`HEAD`) or end the stream's HTTP (`CONNECT`, an
//!   upgrade).
//! - [`Exchange`]: an owner's view of both streams, enough to tell when
//!   every request before a point has its whole response: the moment the
//!   connection can move to another node.
//!
//! Bytes the framer cannot place (a head that does not parse, a head past
//! [`MAX_HEAD`]) end its work: the stream is [`Step::Endless`], and the
//! connection stays where it is. Framing is strict in the same ways as
//! classification (see [`syntax`]): where two parsers could disagree about
//! a message boundary, Baton does not guess.

mod exchange;
mod framer;
mod head;
mod requests;
pub mod syntax;
#[cfg(test)]
mod tests;

pub use exchange::{Exchange, Idle};
pub use framer::{Body, Framer, Step, MAX_HEAD};
pub use head::{RequestHead, ResponseHead};
pub use requests::{Requests, Seen};
