//! Properties of the control-channel codec over arbitrary messages and
//! arbitrary byte streams.

use std::net::{Ipv4Addr, SocketAddrV4};

use baton_handoff::codec::{encode, Decoder};
use baton_handoff::msg::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = SocketAddrV4> {
    (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
}

fn request() -> impl Strategy<Value = HandoffRequest> {
    (
        (any::<u64>(), addr(), addr(), any::<[u8; 6]>()),
        (any::<u32>(), any::<u32>(), any::<u16>()),
        (any::<Option<u32>>(), any::<Option<u32>>()),
        (vec(any::<u8>(), 0..=40), vec(any::<u8>(), 0..=40)),
        prop_oneof![vec(any::<u8>(), 0..2000), vec(any::<u8>(), 65536..=65536)],
    )
        .prop_map(
            |(
                (id, client, server, client_mac),
                (isn_client, isn_origin, client_window),
                (client_tsval, origin_tsval),
                (client_syn_options, origin_synack_options),
                held,
            )| HandoffRequest {
                id,
                key: FlowKey { client, server },
                client_mac,
                isn_client: SeqNum::new(isn_client),
                isn_origin: SeqNum::new(isn_origin),
                client_syn_options,
                origin_synack_options,
                client_window,
                client_tsval: client_tsval.map(TsVal::new),
                origin_tsval: origin_tsval.map(TsVal::new),
                held,
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        request().prop_map(Message::HandoffRequest),
        (any::<u64>(), any::<u32>(), addr()).prop_map(|(id, isn_target, client)| {
            Message::HandoffAccept(HandoffAccept {
                id,
                isn_target: SeqNum::new(isn_target),
                client,
            })
        }),
        (any::<u64>(), addr(), any::<u8>()).prop_map(|(id, client, code)| {
            Message::HandoffReject(HandoffReject {
                id,
                client,
                reason: RejectReason::from_code(code),
            })
        }),
        (any::<u64>(), addr())
            .prop_map(|(id, client)| Message::HandoffClosed(HandoffClosed { id, client })),
        (
            vec((any::<u64>(), addr(), addr(), any::<[u8; 6]>()), 0..40),
            any::<bool>()
        )
            .prop_map(|(flows, last)| Message::FlowsHeld(FlowsHeld {
                flows: flows
                    .into_iter()
                    .map(|(id, client, server, client_mac)| HeldFlow {
                        id,
                        key: FlowKey { client, server },
                        client_mac,
                    })
                    .collect(),
                last,
            })),
        (any::<u64>(), addr())
            .prop_map(|(id, client)| Message::HandoffCancel(HandoffCancel { id, client })),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(|(a, p, h, d)| {
            Message::Load(Load {
                active_connections: a,
                pending_handoffs: p,
                handed_in: h,
                draining: d,
            })
        }),
    ]
}

/// Feeds `stream` to a decoder in pieces cut at `cuts` and collects what
/// comes out.
fn decode_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Message> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for pair in cuts.windows(2) {
        decoder.push(&stream[pair[0]..pair[1]]);
        while let Some(msg) = decoder.next().expect("valid stream") {
            out.push(msg);
        }
    }
    assert_eq!(decoder.buffered(), 0);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip_at_any_split(msgs in vec(message(), 1..5), cuts in vec(any::<usize>(), 0..8)) {
        let stream: Vec<u8> = msgs.iter().flat_map(encode).collect();
        prop_assert_eq!(decode_in_pieces(&stream, &cuts), msgs);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..512), cuts in vec(any::<usize>(), 0..4)) {
        let mut decoder = Decoder::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        for end in cuts {
            decoder.push(&bytes[start..end]);
            start = end;
            while let Ok(Some(_)) = decoder.next() {}
        }
    }

    /// Bytes that start like a frame get past the header check, so the body
    /// decoders see arbitrary input too.
    #[test]
    fn random_bodies_never_panic(code in 0u8..8, body in vec(any::<u8>(), 0..256)) {
        let mut frame = vec![b'B', b'T', baton_handoff::codec::VERSION, code];
        frame.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(&body);
        let mut decoder = Decoder::new();
        decoder.push(&frame);
        let _ = decoder.next();
    }

    /// Flipping any byte of a valid frame is either detected or yields some
    /// message; it never panics and never yields more than one message.
    #[test]
    fn corrupted_frames_never_panic(msg in message(), at in any::<usize>(), xor in 1u8..) {
        let mut frame = encode(&msg);
        let at = at % frame.len();
        frame[at] ^= xor;
        let mut decoder = Decoder::new();
        decoder.push(&frame);
        if let Ok(Some(_)) = decoder.next() {
            prop_assert!(!matches!(decoder.next(), Ok(Some(_))));
        }
    }
}
