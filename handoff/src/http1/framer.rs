//! One direction of a connection, message by message, in sequence space.

use crate::seq::SeqNum;

/// The longest head (start line and header fields) followed. A longer one
/// ends the framing: the connection stays where it is.
pub const MAX_HEAD: usize = 64 * 1024;

/// The longest chunk-size or trailer line followed.
const MAX_LINE: usize = 1024;

/// The longest body or chunk stepped over. Sequence numbers compare within
/// half their space (2 GiB); a body near that could not be told from one
/// already past, so framing ends there.
const MAX_JUMP: u64 = 1 << 30;

/// How a message's body is delimited, once its head is read (RFC 9112
/// §6.3): the framer cannot tell by itself, since a response's depends on
/// its request (`HEAD`) and its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body: the message ends with its head.
    None,
    /// `Content-Length` octets.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// The rest of the stream, or something that is not HTTP (a body
    /// delimited by the close, a tunnel, an upgrade): no more messages
    /// follow that the framer could tell apart.
    Endless(&'static str),
}

/// What the framer found in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A message's head is complete; the message starts at `start`.
    /// [`Framer::head`] holds it until [`Framer::body`] says how its body
    /// is delimited, which the framer waits for.
    Head { start: SeqNum },
    /// A message ends at `end` (the sequence number after its last byte).
    Done { end: SeqNum },
    /// Everything given is accounted for: more bytes are needed.
    More,
    /// The bytes given start after the framer's position: some before
    /// them are missing (lost, or reordered on the way).
    Gap,
    /// No more messages can be told apart in this stream; the reason.
    Endless(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between messages (empty lines may come first).
    Idle,
    /// Reading a head into the buffer.
    Head,
    /// A head was returned; waiting for [`Framer::body`].
    Paused,
    /// Reading a chunk-size line.
    ChunkSize,
    /// Expecting the CRLF after a chunk's data.
    ChunkEnd,
    /// Reading the trailer section after the last chunk.
    Trailers,
    Endless(&'static str),
}

/// One direction of a connection, followed from a message boundary.
#[derive(Debug, Clone)]
pub struct Framer {
    /// The first byte not yet accounted for: bytes before it were read, or
    /// stepped over as the body they are.
    next: SeqNum,
    phase: Phase,
    /// The head, chunk-size line or trailer line being read (or the CR of
    /// a line end split between segments).
    buf: Vec<u8>,
    /// Where the message being read started.
    start: SeqNum,
}

/// What one phase made of the bytes it was given.
enum Progress {
    /// An answer for the caller.
    Answer(Step),
    /// The phase changed; the rest of the bytes are for the next one.
    Continue,
}

impl Framer {
    /// A framer at a message boundary at `at`.
    pub fn new(at: SeqNum) -> Framer {
        Framer {
            next: at,
            phase: Phase::Idle,
            buf: Vec::new(),
            start: at,
        }
    }

    /// The first byte the framer still needs: a segment that ends at or
    /// before it has nothing for the framer.
    #[inline]
    pub fn next(&self) -> SeqNum {
        self.next
    }

    /// Whether the framer stands between two messages.
    pub fn between_messages(&self) -> bool {
        self.phase == Phase::Idle && self.buf.is_empty()
    }

    /// Why the framing ended, if it did.
    pub fn endless(&self) -> Option<&'static str> {
        match self.phase {
            Phase::Endless(why) => Some(why),
            _ => None,
        }
    }

    /// Ends the framing: nothing more will be told apart.
    pub fn end(&mut self, why: &'static str) {
        self.phase = Phase::Endless(why);
        self.buf = Vec::new();
    }

    /// The head just returned by [`Step::Head`] (empty at other times).
    pub fn head(&self) -> &[u8] {
        match self.phase {
            Phase::Paused => &self.buf,
            _ => &[],
        }
    }

    /// How the body of the message whose head was just returned is
    /// delimited. Returns where the message ends when that is known now
    /// (no body, or a length, whose bytes are stepped over).
    pub fn body(&mut self, body: Body) -> Option<SeqNum> {
        debug_assert_eq!(self.phase, Phase::Paused, "body() without a head");
        self.buf.clear();
        match body {
            Body::None => {
                self.phase = Phase::Idle;
                Some(self.next)
            }
            Body::Length(n) if n < MAX_JUMP => {
                self.jump(n);
                self.phase = Phase::Idle;
                Some(self.next)
            }
            Body::Length(_) => {
                self.end("body too long to follow");
                None
            }
            Body::Chunked => {
                self.phase = Phase::ChunkSize;
                None
            }
            Body::Endless(why) => {
                self.end(why);
                None
            }
        }
    }

    /// Reads what it needs of `payload`, the data of a segment starting at
    /// `seq`, up to the next thing the caller must know. Call it again
    /// with the same segment until it answers [`Step::More`] (or
    /// [`Step::Gap`], or [`Step::Endless`]).
    pub fn step(&mut self, seq: SeqNum, payload: &[u8]) -> Step {
        loop {
            match self.phase {
                Phase::Endless(why) => return Step::Endless(why),
                Phase::Paused => return Step::Head { start: self.start },
                _ => {}
            }
            let skip = self.next.distance_from(seq);
            if skip < 0 {
                return Step::Gap;
            }
            let Some(bytes) = payload.get(skip as usize..).filter(|b| !b.is_empty()) else {
                return Step::More;
            };
            let progress = match self.phase {
                Phase::Idle => self.idle(bytes),
                Phase::Head => self.read_head(bytes),
                Phase::ChunkSize => self.chunk_size(bytes),
                Phase::ChunkEnd => self.chunk_end(bytes),
                Phase::Trailers => self.trailers(bytes),
                Phase::Paused | Phase::Endless(_) => unreachable!("answered above"),
            };
            if let Progress::Answer(step) = progress {
                return step;
            }
        }
    }

    /// Steps over `n` bytes, fewer than [`MAX_JUMP`].
    fn jump(&mut self, n: u64) {
        debug_assert!(n < MAX_JUMP);
        // Cannot truncate: below MAX_JUMP, 2^30.
        #[allow(clippy::cast_possible_truncation)]
        self.consume(n as usize);
    }

    /// Consumes `n` bytes.
    fn consume(&mut self, n: usize) {
        self.next = self.next.add_len(n);
    }

    fn fail(&mut self, why: &'static str) -> Progress {
        self.end(why);
        Progress::Answer(Step::Endless(why))
    }

    /// Empty lines before a message are skipped (RFC 9112 §2.2); anything
    /// else starts one.
    fn idle(&mut self, bytes: &[u8]) -> Progress {
        match (self.buf.as_slice(), bytes[0]) {
            ([], b'\r') | ([b'\r'], b'\n') => {
                if bytes[0] == b'\r' {
                    self.buf.push(b'\r');
                } else {
                    self.buf.clear();
                }
                self.consume(1);
                Progress::Continue
            }
            ([], _) => {
                self.start = self.next;
                self.phase = Phase::Head;
                Progress::Continue
            }
            _ => self.fail("bare CR between messages"),
        }
    }

    fn read_head(&mut self, bytes: &[u8]) -> Progress {
        let before = self.buf.len();
        let room = (MAX_HEAD + 4).saturating_sub(before);
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let from = before.saturating_sub(3);
        let end = find(&self.buf[from..], b"\r\n\r\n").map(|at| from + at + 4);
        // A bare LF would leave the head's end to each parser's taste.
        let head = &self.buf[..end.unwrap_or(self.buf.len())];
        if head.first() == Some(&b'\n')
            || (before.max(1)..head.len()).any(|i| head[i] == b'\n' && head[i - 1] != b'\r')
        {
            return self.fail("line ends with a bare LF");
        }
        match end {
            Some(len) => {
                self.buf.truncate(len);
                self.consume(len - before);
                self.phase = Phase::Paused;
                Progress::Answer(Step::Head { start: self.start })
            }
            None if self.buf.len() > MAX_HEAD => self.fail("head too long"),
            None => {
                self.consume(self.buf.len() - before);
                Progress::Continue
            }
        }
    }

    fn chunk_size(&mut self, bytes: &[u8]) -> Progress {
        let line = match self.read_line(bytes) {
            Ok(Some(line)) => line,
            Ok(None) => return Progress::Continue,
            Err(why) => return self.fail(why),
        };
        // chunk-size [ chunk-ext ]: the extensions mean nothing here.
        let digits = line.split(|&b| b == b';').next().unwrap_or_default();
        let digits = crate::http1::syntax::trim_ows(digits);
        let size = match parse_hex(digits) {
            Some(size) => size,
            None => return self.fail("chunk size is not a hexadecimal number"),
        };
        if size == 0 {
            self.phase = Phase::Trailers;
        } else if size < MAX_JUMP {
            self.jump(size);
            self.phase = Phase::ChunkEnd;
        } else {
            return self.fail("chunk too long to follow");
        }
        Progress::Continue
    }

    fn chunk_end(&mut self, bytes: &[u8]) -> Progress {
        match (self.buf.as_slice(), bytes[0]) {
            ([], b'\r') => {
                self.buf.push(b'\r');
                self.consume(1);
                Progress::Continue
            }
            ([b'\r'], b'\n') => {
                self.buf.clear();
                self.consume(1);
                self.phase = Phase::ChunkSize;
                Progress::Continue
            }
            _ => self.fail("chunk data not followed by CRLF"),
        }
    }

    /// Trailer fields, up to the empty line that ends the message.
    fn trailers(&mut self, bytes: &[u8]) -> Progress {
        match self.read_line(bytes) {
            Ok(Some(line)) if line.is_empty() => {
                self.phase = Phase::Idle;
                Progress::Answer(Step::Done { end: self.next })
            }
            Ok(Some(line)) => match crate::http1::syntax::header(&line) {
                Ok(_) => Progress::Continue,
                Err(why) => self.fail(why),
            },
            Ok(None) => Progress::Continue,
            Err(why) => self.fail(why),
        }
    }

    /// A CRLF-terminated line, gathered in the buffer across segments:
    /// `Ok(None)` while incomplete (all of `bytes` consumed).
    fn read_line(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
        match bytes.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                self.buf.extend_from_slice(&bytes[..=lf]);
                self.consume(lf + 1);
                let mut line = std::mem::take(&mut self.buf);
                line.pop(); // LF
                if line.pop() != Some(b'\r') {
                    return Err("line ends with a bare LF");
                }
                if line.len() > MAX_LINE {
                    return Err("chunk or trailer line too long");
                }
                Ok(Some(line))
            }
            None if self.buf.len() + bytes.len() > MAX_LINE => {
                Err("chunk or trailer line too long")
            }
            None => {
                self.buf.extend_from_slice(bytes);
                self.consume(bytes.len());
                Ok(None)
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A chunk size: hexadecimal digits, at most 16 of them.
fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = char::from(d).to_digit(16)?;
        Some((n << 4) | u64::from(v))
    })
}
