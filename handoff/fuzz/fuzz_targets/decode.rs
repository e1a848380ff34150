//! The control-channel decoder over arbitrary byte streams, pushed in
//! arbitrary pieces: nothing may panic, every message decoded must encode
//! back to exactly the bytes it came from, and an error must be sticky.
#![no_main]

use baton_handoff::codec::{encode, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size, so that partial frames are
    // exercised as well as whole ones.
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut decoder = Decoder::new();
    let mut consumed = 0;
    let mut reencoded = Vec::new();
    for chunk in stream.chunks(piece) {
        decoder.push(chunk);
        consumed += chunk.len();
        loop {
            match decoder.next() {
                Ok(Some(msg)) => reencoded.extend_from_slice(&encode(&msg)),
                Ok(None) => break,
                Err(err) => {
                    assert_eq!(decoder.next(), Err(err));
                    return;
                }
            }
        }
        assert_eq!(reencoded[..], stream[..consumed - decoder.buffered()]);
    }
});
