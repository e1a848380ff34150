//! Framing, below and above the Noise layer. Pure functions and small state
//! machines with no I/O, so that they can be tested on byte arrays.
//!
//! On the TCP stream every Noise message (handshake or transport) is sent as
//! a 2-byte big-endian length followed by that many bytes of ciphertext, as
//! the Noise specification suggests. A Noise message is at most 65535 bytes,
//! so the prefix can never announce more than that.
//!
//! The plaintext of a transport message is one kind byte and a body:
//!
//! | kind | body |
//! |---|---|
//! | 0 `HEARTBEAT` | ignored (empty today) |
//! | 1 `LAST` | the last (often the only) chunk of an application frame |
//! | 2 `MORE` | a chunk with more of the same frame to follow |
//!
//! Application frames larger than one Noise message are cut into chunks and
//! put back together on the other side, up to [`MAX_FRAME_LEN`].

use std::fmt;

/// Bytes of the length prefix before each Noise message.
pub const LEN_PREFIX: usize = 2;
/// The Noise protocol's limit on one message, ciphertext included.
pub const NOISE_MAX_MESSAGE: usize = 65535;
/// The AEAD tag ChaChaPoly appends to every transport message.
pub const NOISE_TAG: usize = 16;
/// The most application bytes one transport message carries (after the kind byte).
pub const MAX_CHUNK: usize = NOISE_MAX_MESSAGE - NOISE_TAG - 1;
/// The largest application frame [`super::PeerChannels::send`] accepts and a
/// receiver reassembles. A peer announcing more is treated as garbage.
pub const MAX_FRAME_LEN: usize = 1 << 20;

const KIND_HEARTBEAT: u8 = 0;
const KIND_LAST: u8 = 1;
const KIND_MORE: u8 = 2;

/// Why bytes from a peer were not a valid frame. Any of these closes the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// A transport message too short to hold a tag and a kind byte.
    BadLength(usize),
    /// A plaintext with an empty body or an unknown kind byte.
    BadKind(Option<u8>),
    /// Chunks adding up to more than [`MAX_FRAME_LEN`].
    Oversize(usize),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BadLength(n) => write!(f, "transport message of {n} bytes is too short"),
            WireError::BadKind(Some(k)) => write!(f, "unknown message kind {k}"),
            WireError::BadKind(None) => write!(f, "empty message"),
            WireError::Oversize(n) => {
                write!(
                    f,
                    "frame of {n}+ bytes exceeds the {MAX_FRAME_LEN}-byte limit"
                )
            }
        }
    }
}

/// One decrypted transport message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Heartbeat,
    Chunk { last: bool, data: &'a [u8] },
}

impl<'a> Message<'a> {
    /// Parses a decrypted plaintext.
    pub fn parse(plaintext: &'a [u8]) -> Result<Message<'a>, WireError> {
        match plaintext.split_first() {
            Some((&KIND_HEARTBEAT, _)) => Ok(Message::Heartbeat),
            Some((&KIND_LAST, data)) => Ok(Message::Chunk { last: true, data }),
            Some((&KIND_MORE, data)) => Ok(Message::Chunk { last: false, data }),
            Some((&k, _)) => Err(WireError::BadKind(Some(k))),
            None => Err(WireError::BadKind(None)),
        }
    }

    /// Writes the plaintext of this message into `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        match *self {
            Message::Heartbeat => out.push(KIND_HEARTBEAT),
            Message::Chunk { last, data } => {
                out.push(if last { KIND_LAST } else { KIND_MORE });
                out.extend_from_slice(data);
            }
        }
    }
}

/// Cuts an application frame into chunk messages, each fitting one Noise
/// message. An empty frame is one empty `LAST` chunk.
pub fn chunks(frame: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let count = frame.len().div_ceil(MAX_CHUNK).max(1);
    (0..count).map(move |i| {
        let start = i * MAX_CHUNK;
        let end = (start + MAX_CHUNK).min(frame.len());
        Message::Chunk {
            last: i + 1 == count,
            data: &frame[start..end],
        }
    })
}

/// Puts chunked application frames back together.
#[derive(Debug, Default)]
pub struct Reassembler {
    partial: Vec<u8>,
}

impl Reassembler {
    /// Adds one chunk; returns the whole frame when `last` completes it.
    pub fn push(&mut self, last: bool, data: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        let total = self.partial.len() + data.len();
        if total > MAX_FRAME_LEN {
            self.partial = Vec::new();
            return Err(WireError::Oversize(total));
        }
        if last && self.partial.is_empty() {
            return Ok(Some(data.to_vec()));
        }
        self.partial.extend_from_slice(data);
        Ok(last.then(|| std::mem::take(&mut self.partial)))
    }

    /// Bytes of the frame being put together.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }
}

/// Splits the byte stream read from a socket into length-prefixed
/// transport messages (still encrypted).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Where the next undecoded message starts in `buf`.
    start: usize,
}

impl StreamDecoder {
    /// Appends bytes as read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        // Compact lazily: only once the consumed prefix is the larger part.
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete ciphertext, if one has fully arrived.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, WireError> {
        let pending = &self.buf[self.start..];
        if pending.len() < LEN_PREFIX {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
        if len < NOISE_TAG + 1 {
            return Err(WireError::BadLength(len));
        }
        if pending.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        let begin = self.start + LEN_PREFIX;
        self.start = begin + len;
        Ok(Some(&self.buf[begin..begin + len]))
    }

    /// Bytes held, decoded or not: what the decoder costs in memory.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Appends `message` to `out` with its length prefix.
pub fn put_prefixed(out: &mut Vec<u8>, message: &[u8]) {
    debug_assert!(message.len() <= NOISE_MAX_MESSAGE);
    // Cannot truncate: every message is a Noise message, written into a
    // buffer of NOISE_MAX_MESSAGE (65535) bytes.
    #[allow(clippy::cast_possible_truncation)]
    out.extend_from_slice(&(message.len() as u16).to_be_bytes());
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips() {
        let mut out = Vec::new();
        for msg in [
            Message::Heartbeat,
            Message::Chunk {
                last: true,
                data: b"",
            },
            Message::Chunk {
                last: true,
                data: b"hello",
            },
            Message::Chunk {
                last: false,
                data: b"part",
            },
        ] {
            msg.encode(&mut out);
            assert_eq!(Message::parse(&out), Ok(msg));
        }
    }

    #[test]
    fn bad_plaintexts_are_rejected() {
        assert_eq!(Message::parse(&[]), Err(WireError::BadKind(None)));
        assert_eq!(Message::parse(&[7, 1, 2]), Err(WireError::BadKind(Some(7))));
    }

    #[test]
    fn chunking_covers_the_frame_exactly() {
        for len in [
            0,
            1,
            MAX_CHUNK - 1,
            MAX_CHUNK,
            MAX_CHUNK + 1,
            3 * MAX_CHUNK + 5,
        ] {
            let frame: Vec<u8> = (0..=u8::MAX).cycle().take(len).collect();
            let parts: Vec<_> = chunks(&frame).collect();
            assert_eq!(parts.len(), len.div_ceil(MAX_CHUNK).max(1), "len {len}");
            let mut r = Reassembler::default();
            let mut done = None;
            for (i, m) in parts.iter().enumerate() {
                let Message::Chunk { last, data } = *m else {
                    panic!("not a chunk")
                };
                assert!(data.len() <= MAX_CHUNK);
                assert_eq!(last, i + 1 == parts.len());
                done = r.push(last, data).unwrap();
            }
            assert_eq!(done.as_deref(), Some(&frame[..]));
        }
    }

    #[test]
    fn reassembly_caps_the_frame_size() {
        let mut r = Reassembler::default();
        let chunk = vec![0u8; MAX_CHUNK];
        let mut result = Ok(None);
        for _ in 0..=(MAX_FRAME_LEN / MAX_CHUNK) {
            result = r.push(false, &chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(WireError::Oversize(_))));
    }

    #[test]
    fn stream_decoder_handles_split_and_joined_messages() {
        let a = [1u8; 20];
        let b = [2u8; 17];
        let mut wire = Vec::new();
        put_prefixed(&mut wire, &a);
        put_prefixed(&mut wire, &b);
        let mut d = StreamDecoder::default();
        let mut seen = Vec::new();
        // One byte at a time: every split point is exercised.
        for byte in &wire {
            d.extend(std::slice::from_ref(byte));
            while let Some(m) = d.next_message().unwrap() {
                seen.push(m.to_vec());
            }
        }
        assert_eq!(seen, vec![a.to_vec(), b.to_vec()]);
    }

    #[test]
    fn stream_decoder_rejects_short_lengths() {
        let mut d = StreamDecoder::default();
        d.extend(&[0, 3, 1, 2, 3]);
        assert_eq!(d.next_message(), Err(WireError::BadLength(3)));
    }
}
