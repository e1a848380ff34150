//! Frames and heartbeats as the writer puts them on the stream, read back
//! in arbitrary pieces: every frame up to `MAX_FRAME_LEN` comes back
//! whole, unchanged and in order, heartbeats are not frames, and a frame
//! over the limit (which `PeerChannels::send` refuses to send) ends the
//! session with `Oversize` once the frames before it are delivered.
//!
//! Input: two bytes seed the piece sizes; then items, each a kind byte:
//! 0 a heartbeat; 1 a frame of the bytes that follow a length byte; 2 a
//! long frame, a 3-byte length (up to two chunks past the limit) and a
//! byte its contents are made from.
#![no_main]

use baton_control::peers::wire::{WireError, MAX_CHUNK, MAX_FRAME_LEN};
use baton_control_fuzz::{write_frame, write_heartbeat, Pieces, Reader};
use libfuzzer_sys::fuzz_target;

/// Frame bytes one input may write, to keep each run short.
const BUDGET: usize = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, mut input)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut stream = Vec::new();
    let mut budget = BUDGET;
    while let Some((&kind, rest)) = input.split_first() {
        input = rest;
        let frame = match kind % 3 {
            0 => {
                write_heartbeat(&mut stream);
                continue;
            }
            1 => {
                let (&len, rest) = input.split_first().unwrap_or((&0, &[]));
                let (bytes, rest) = rest.split_at(usize::from(len).min(rest.len()));
                input = rest;
                bytes.to_vec()
            }
            _ => {
                let (&[l2, l1, l0, fill], rest) =
                    input.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
                input = rest;
                let len = u32::from_be_bytes([0, l2, l1, l0]) as usize
                    % (MAX_FRAME_LEN + 2 * MAX_CHUNK + 1);
                (0..len).map(|i| (i as u8).wrapping_mul(fill | 1)).collect()
            }
        };
        let Some(left) = budget.checked_sub(frame.len()) else {
            break;
        };
        budget = left;
        write_frame(&frame, &mut stream);
        let over = frame.len() > MAX_FRAME_LEN;
        written.push(frame);
        if over {
            break; // the reader stops there
        }
    }

    let mut pieces = Pieces::new(u16::from_be_bytes(seed));
    let mut reader = Reader::default();
    let mut frames = Vec::new();
    let mut rest = &stream[..];
    let mut ended = None;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(pieces.next_size().min(rest.len()));
        rest = tail;
        if let Err(e) = reader.read(piece, &mut frames) {
            ended = Some(e);
            break;
        }
    }
    assert!(frames.len() <= written.len());
    assert!(
        frames[..] == written[..frames.len()],
        "frames changed on the way"
    );
    match ended {
        None => assert_eq!(frames.len(), written.len(), "frames lost"),
        Some(WireError::Oversize(_)) => assert!(
            written
                .get(frames.len())
                .is_some_and(|f| f.len() > MAX_FRAME_LEN),
            "a frame within the limit refused"
        ),
        Some(e) => panic!("the reader refused what the writer wrote: {e}"),
    }
});
