//! What the control channel's fuzz targets share: the reading half of a
//! peer session and its writing half, without the socket and the cipher,
//! and the piece sizes bytes arrive in.
#![forbid(unsafe_code)]

use baton_control::peers::wire::{
    self, Message, Reassembler, StreamDecoder, WireError, NOISE_MAX_MESSAGE, NOISE_TAG,
};

/// What a session's reader (`session::read_until_end`) does with the
/// bytes of each read. A fuzzer cannot encrypt, so decryption is stood in
/// for by dropping a 16-byte tag: lengths stay those of the real stream.
#[derive(Debug, Default)]
pub struct Reader {
    pub decoder: StreamDecoder,
    pub reassembler: Reassembler,
}

impl Reader {
    /// Takes the bytes of one read, and appends the frames they complete
    /// to `frames`. An error ends the session.
    pub fn read(&mut self, bytes: &[u8], frames: &mut Vec<Vec<u8>>) -> Result<(), WireError> {
        self.decoder.extend(bytes);
        while let Some(ciphertext) = self.decoder.next_message()? {
            let plaintext = ciphertext
                .len()
                .checked_sub(NOISE_TAG)
                .map(|n| &ciphertext[..n])
                .expect("the decoder passes only messages that hold a tag");
            match Message::parse(plaintext)? {
                Message::Heartbeat => {}
                Message::Chunk { last, data } => {
                    if let Some(frame) = self.reassembler.push(last, data)? {
                        frames.push(frame);
                    }
                }
            }
        }
        Ok(())
    }
}

/// What `session::write_frames` puts on the stream for `frame`, with the
/// reader's stand-in for the cipher.
pub fn write_frame(frame: &[u8], out: &mut Vec<u8>) {
    for chunk in wire::chunks(frame) {
        seal(chunk, out);
    }
}

/// What `session::write_heartbeat` puts on the stream.
pub fn write_heartbeat(out: &mut Vec<u8>) {
    seal(Message::Heartbeat, out);
}

fn seal(msg: Message<'_>, out: &mut Vec<u8>) {
    let mut message = Vec::new();
    msg.encode(&mut message);
    message.resize(message.len() + NOISE_TAG, 0);
    assert!(
        message.len() <= NOISE_MAX_MESSAGE,
        "a chunk of {} bytes does not fit one Noise message",
        message.len()
    );
    wire::put_prefixed(out, &message);
}

/// Piece sizes from 1 byte to 64 KiB (what one read returns at most),
/// spread over every order of magnitude, from a seed.
pub struct Pieces(u32);

impl Pieces {
    pub fn new(seed: u16) -> Pieces {
        // xorshift never leaves zero, so the seed never is.
        Pieces(u32::from(seed) | 1 << 16)
    }

    pub fn next_size(&mut self) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        let span = 1usize << (x % 17);
        1 + (x >> 5) as usize % span
    }
}
