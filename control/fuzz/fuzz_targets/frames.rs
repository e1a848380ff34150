//! The control channel's frame reader (length prefixes, message kinds,
//! chunk reassembly) over arbitrary bytes, arriving in arbitrary pieces:
//! nothing may panic, what it buffers stays bounded whatever the peer
//! sends, and no frame it delivers exceeds `MAX_FRAME_LEN`.
//!
//! Input: two bytes seed the piece sizes, one more says how many times the
//! rest repeats to make the stream (a power of two up to 1024), so that
//! short inputs make the long streams that buffer limits are about.
#![no_main]

use baton_control::peers::wire::{LEN_PREFIX, MAX_FRAME_LEN, NOISE_MAX_MESSAGE};
use baton_control_fuzz::{Pieces, Reader};
use libfuzzer_sys::fuzz_target;

/// What the decoder may hold besides the bytes of the last read: a message
/// not yet complete, and the decoded bytes before it, which it drops once
/// they are the larger part.
const DECODER_HOLDS: usize = 2 * (LEN_PREFIX + NOISE_MAX_MESSAGE);

fuzz_target!(|data: &[u8]| {
    let Some((&[s0, s1, repeat], body)) = data.split_first_chunk::<3>() else {
        return;
    };
    let stream = body.repeat(1 << (repeat % 11));
    let mut pieces = Pieces::new(u16::from_be_bytes([s0, s1]));
    let mut reader = Reader::default();
    let mut frames = Vec::new();
    let (mut read, mut delivered) = (0, 0);
    let mut rest = &stream[..];
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(pieces.next_size().min(rest.len()));
        rest = tail;
        let result = reader.read(piece, &mut frames);
        read += piece.len();
        assert!(
            reader.decoder.buffered() <= DECODER_HOLDS + piece.len(),
            "the decoder holds {} bytes after a read of {}",
            reader.decoder.buffered(),
            piece.len()
        );
        assert!(reader.reassembler.buffered() <= MAX_FRAME_LEN);
        for frame in frames.drain(..) {
            assert!(frame.len() <= MAX_FRAME_LEN, "a frame of {}", frame.len());
            delivered += frame.len();
        }
        assert!(
            delivered + reader.reassembler.buffered() <= read,
            "more came out than went in"
        );
        if result.is_err() {
            return; // the session ends
        }
    }
});
