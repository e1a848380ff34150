use super::*;

fn request() -> HandoffRequest {
    HandoffRequest {
        id: 0x0102_0304_0506_0708,
        key: FlowKey {
            client: "198.18.0.10:40000".parse().unwrap(),
            server: "198.18.1.1:80".parse().unwrap(),
        },
        client_mac: [0x02, 0, 0, 0, 0, 0x0c],
        isn_client: SeqNum::new(0x1111_1111),
        isn_origin: SeqNum::new(0x2222_2222),
        client_syn_options: vec![2, 4, 0x05, 0xb4],
        origin_synack_options: vec![1, 3, 3, 7],
        client_window: 502,
        client_tsval: Some(TsVal::new(0xaaaa_aaaa)),
        origin_tsval: None,
        held: b"GET / HTTP/1.1\r\n".to_vec(),
    }
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, DecodeError> {
    let mut decoder = Decoder::new();
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(msg) = decoder.next()? {
        out.push(msg);
    }
    Ok(out)
}

/// Pins the layout documented in docs/handoff.md.
#[test]
fn handoff_request_layout() {
    let frame = encode(&Message::HandoffRequest(request()));
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &b"BT"[..], &[4, 1], &[0, 0, 0, 71],
        &[1, 2, 3, 4, 5, 6, 7, 8],                  // id
        &[198, 18, 0, 10], &[0x9c, 0x40],           // client
        &[198, 18, 1, 1], &[0, 80],                 // server
        &[0x02, 0, 0, 0, 0, 0x0c],                  // client_mac
        &[0x11; 4], &[0x22; 4],                     // isn_client, isn_origin
        &[0x01, 0xf6],                              // client_window
        &[0x01],                                    // flags: client TSval only
        &[0xaa; 4],                                 // client_tsval
        &[4, 2, 4, 0x05, 0xb4],                     // client_syn_options
        &[4, 1, 3, 3, 7],                           // origin_synack_options
        &[0, 0, 0, 16], b"GET / HTTP/1.1\r\n",      // held
    ]
    .concat();
    assert_eq!(frame, expected);
    assert_eq!(
        decode_all(&frame),
        Ok(vec![Message::HandoffRequest(request())])
    );
}

/// Every message but the request, with the layout documented in
/// docs/handoff.md.
fn small_message_cases() -> [(Message, &'static [u8]); 10] {
    [
        (
            Message::HandoffAccept(HandoffAccept {
                id: 9,
                isn_target: SeqNum::new(0xdead_beef),
                client: "198.18.0.100:40000".parse().unwrap(),
            }),
            &[
                b'B', b'T', 4, 2, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 198,
                18, 0, 100, 0x9c, 0x40,
            ],
        ),
        (
            Message::HandoffReject(HandoffReject {
                id: 9,
                client: "198.18.0.100:40000".parse().unwrap(),
                reason: RejectReason::KernelRefused,
            }),
            &[
                b'B', b'T', 4, 3, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100, 0x9c, 0x40,
                2,
            ],
        ),
        (
            Message::HandoffClosed(HandoffClosed {
                id: 9,
                client: "198.18.0.100:40000".parse().unwrap(),
            }),
            &[
                b'B', b'T', 4, 4, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100, 0x9c, 0x40,
            ],
        ),
        (
            Message::FlowsHeld(FlowsHeld {
                flows: vec![HeldFlow {
                    id: 9,
                    key: FlowKey {
                        client: "198.18.0.100:40000".parse().unwrap(),
                        server: "198.18.0.11:80".parse().unwrap(),
                    },
                    client_mac: [2, 0, 0, 0, 0, 0x64],
                }],
                last: true,
            }),
            &[
                b'B', b'T', 4, 7, 0, 0, 0, 29, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100,
                0x9c, 0x40, 198, 18, 0, 11, 0, 80, 2, 0, 0, 0, 0, 0x64,
            ],
        ),
        (
            Message::HandoffCancel(HandoffCancel {
                id: 9,
                client: "198.18.0.100:40000".parse().unwrap(),
            }),
            &[
                b'B', b'T', 4, 6, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100, 0x9c, 0x40,
            ],
        ),
        (
            Message::Load(Load {
                active_connections: 1,
                pending_handoffs: 2,
                handed_in: 3,
                draining: true,
            }),
            &[
                b'B', b'T', 4, 5, 0, 0, 0, 13, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1,
            ],
        ),
        (
            Message::Release(Release {
                id: 9,
                client: "198.18.0.100:40000".parse().unwrap(),
                at: SeqNum::new(0x0102_0304),
                client_ack: SeqNum::new(0x0a0b_0c0d),
            }),
            &[
                b'B', b'T', 4, 8, 0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100, 0x9c, 0x40,
                1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d,
            ],
        ),
        (
            Message::Released(Released {
                id: 9,
                client: "198.18.0.100:40000".parse().unwrap(),
                server_next: SeqNum::new(0x0102_0304),
                tsval: Some(TsVal::new(7)),
            }),
            &[
                b'B', b'T', 4, 9, 0, 0, 0, 23, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100, 0x9c, 0x40,
                1, 2, 3, 4, 1, 0, 0, 0, 7,
            ],
        ),
        (
            Message::Released(Released {
                id: 9,
                client: "198.18.0.100:40000".parse().unwrap(),
                server_next: SeqNum::new(0x0102_0304),
                tsval: None,
            }),
            &[
                b'B', b'T', 4, 9, 0, 0, 0, 19, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100, 0x9c, 0x40,
                1, 2, 3, 4, 0,
            ],
        ),
        (
            Message::ReleaseRefused(ReleaseRefused {
                id: 9,
                client: "198.18.0.100:40000".parse().unwrap(),
            }),
            &[
                b'B', b'T', 4, 10, 0, 0, 0, 14, 0, 0, 0, 0, 0, 0, 0, 9, 198, 18, 0, 100, 0x9c, 0x40,
            ],
        ),
    ]
}

#[test]
fn small_message_layouts() {
    for (msg, bytes) in small_message_cases() {
        assert_eq!(encode(&msg), bytes, "{msg:?}");
        assert_eq!(decode_all(bytes), Ok(vec![msg]));
    }
}

/// The decode fuzz target's seeds (`fuzz/corpus/decode`: a piece size, then
/// a byte stream) are whole messages of this version, so that fuzzing
/// starts from frames the decoder accepts rather than from a version
/// error. After a change of the codec, `BATON_WRITE_FUZZ_SEEDS=1 cargo test
/// -p baton-handoff fuzz_seeds` writes them anew: one per message, and all
/// of them in one stream cut in 7-byte pieces.
#[test]
fn fuzz_seeds_are_messages_of_this_version() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let is_seed = |p: &std::path::Path| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed_")
    };
    if std::env::var_os("BATON_WRITE_FUZZ_SEEDS").is_some() {
        let mut messages: Vec<Message> =
            small_message_cases().into_iter().map(|(m, _)| m).collect();
        messages.push(Message::HandoffRequest(request()));
        for old in std::fs::read_dir(&dir).unwrap() {
            let old = old.unwrap().path();
            if is_seed(&old) {
                std::fs::remove_file(old).unwrap();
            }
        }
        let mut stream = vec![7];
        for (i, msg) in messages.iter().enumerate() {
            let bytes = encode(msg);
            let kind: String = format!("{msg:?}")
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            let mut seed = vec![0xff];
            seed.extend_from_slice(&bytes);
            std::fs::write(
                dir.join(format!("seed_{i:02}_{}", kind.to_lowercase())),
                seed,
            )
            .unwrap();
            stream.extend_from_slice(&bytes);
        }
        std::fs::write(dir.join("seed_stream"), stream).unwrap();
    }
    let mut seeds = 0;
    for seed in std::fs::read_dir(&dir).unwrap() {
        let path = seed.unwrap().path();
        if !is_seed(&path) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let decoded = decode_all(&bytes[1..]);
        assert!(
            decoded.as_ref().is_ok_and(|m| !m.is_empty()),
            "{}: {decoded:?} (rewrite the seeds: BATON_WRITE_FUZZ_SEEDS=1)",
            path.display()
        );
        seeds += 1;
    }
    assert!(seeds > 0, "no seeds in {}", dir.display());
}

#[test]
fn partial_frames_wait_byte_by_byte() {
    let msgs = [
        Message::HandoffRequest(request()),
        Message::Load(Load::default()),
        Message::HandoffClosed(HandoffClosed {
            id: 1,
            client: "198.18.0.100:40000".parse().unwrap(),
        }),
    ];
    let stream: Vec<u8> = msgs.iter().flat_map(encode).collect();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for byte in &stream {
        decoder.push(std::slice::from_ref(byte));
        while let Some(msg) = decoder.next().unwrap() {
            out.push(msg);
        }
    }
    assert_eq!(out, msgs);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn header_errors_are_reported_as_soon_as_the_byte_arrives() {
    let cases: [(&[u8], DecodeError); 8] = [
        (b"X", DecodeError::BadMagic { found: [b'X', 0] }),
        (b"BX", DecodeError::BadMagic { found: *b"BX" }),
        (b"GET / HTTP/1.1", DecodeError::BadMagic { found: *b"GE" }),
        // Version 1 named both ends of a handoff HandoffClosed; version 2
        // knew no moves; version 3's Load had no flags (draining).
        (b"BT\x01", DecodeError::UnsupportedVersion(1)),
        (b"BT\x02", DecodeError::UnsupportedVersion(2)),
        (b"BT\x03", DecodeError::UnsupportedVersion(3)),
        (b"BT\x04\x00", DecodeError::UnknownType(0)),
        (b"BT\x04\x0b", DecodeError::UnknownType(11)),
    ];
    for (bytes, err) in cases {
        assert_eq!(decode_all(bytes), Err(err), "{bytes:?}");
    }
}

#[test]
fn oversize_length_is_refused_before_the_body_arrives() {
    let mut bytes = b"BT\x04\x01".to_vec();
    bytes.extend_from_slice(&(MAX_BODY + 1).to_be_bytes());
    assert_eq!(
        decode_all(&bytes),
        Err(DecodeError::Oversize { len: MAX_BODY + 1 })
    );
    // Exactly the limit is a length we are willing to wait for.
    let mut bytes = b"BT\x04\x01".to_vec();
    bytes.extend_from_slice(&MAX_BODY.to_be_bytes());
    assert_eq!(decode_all(&bytes), Ok(vec![]));
}

fn frame(code: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![b'B', b'T', VERSION, code];
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn body_errors() {
    let accept = [0u8; 18];
    let mut accept_long = accept.to_vec();
    accept_long.push(0);
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (
            frame(kind::HANDOFF_ACCEPT, &accept[..11]),
            DecodeError::Truncated {
                message: "HandoffAccept",
                field: "isn_target",
            },
        ),
        (
            frame(kind::HANDOFF_ACCEPT, &accept_long),
            DecodeError::TrailingBytes {
                message: "HandoffAccept",
                extra: 1,
            },
        ),
        (
            frame(kind::HANDOFF_ACCEPT, &accept[..15]),
            DecodeError::Truncated {
                message: "HandoffAccept",
                field: "client",
            },
        ),
        (
            frame(kind::HANDOFF_CLOSED, &[]),
            DecodeError::Truncated {
                message: "HandoffClosed",
                field: "id",
            },
        ),
        (
            frame(kind::FLOWS_HELD, &[0, 0, 2]),
            DecodeError::Truncated {
                message: "FlowsHeld",
                field: "id",
            },
        ),
        (
            frame(kind::FLOWS_HELD, &[2, 0, 0]),
            DecodeError::UnknownFlags {
                message: "FlowsHeld",
                flags: 2,
            },
        ),
        (
            frame(kind::HANDOFF_CANCEL, &[0; 8]),
            DecodeError::Truncated {
                message: "HandoffCancel",
                field: "client",
            },
        ),
        (
            frame(kind::HANDOFF_REJECT, &[0; 14]),
            DecodeError::Truncated {
                message: "HandoffReject",
                field: "reason",
            },
        ),
        (
            frame(kind::LOAD, &[0; 17]),
            DecodeError::TrailingBytes {
                message: "Load",
                extra: 4,
            },
        ),
        (
            frame(kind::LOAD, &[0; 12]),
            DecodeError::Truncated {
                message: "Load",
                field: "flags",
            },
        ),
        (
            frame(kind::LOAD, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]),
            DecodeError::UnknownFlags {
                message: "Load",
                flags: 0x02,
            },
        ),
    ];
    for (bytes, err) in cases {
        assert_eq!(decode_all(&bytes), Err(err));
    }
}

/// Offset of the flags byte in a HandoffRequest body.
const FLAGS_AT: usize = REQUEST_FIXED_LEN - 1;

fn request_body() -> Vec<u8> {
    encode(&Message::HandoffRequest(request()))[HEADER_LEN..].to_vec()
}

#[test]
fn request_body_errors() {
    let mut unknown_flags = request_body();
    unknown_flags[FLAGS_AT] |= 0x80;

    // flags=0 and no TS fields: the option length is the byte after flags.
    let mut no_ts = request_body();
    no_ts[FLAGS_AT] = 0;
    no_ts.drain(FLAGS_AT + 1..FLAGS_AT + 5);
    let mut long_options = no_ts.clone();
    long_options[FLAGS_AT + 1] = 41;

    let mut long_held = no_ts[..no_ts.len() - 16 - 4].to_vec();
    long_held.extend_from_slice(&(64 * 1024 + 1u32).to_be_bytes());

    let mut short_held = request_body();
    short_held.pop();

    let cases = [
        (
            unknown_flags,
            DecodeError::UnknownFlags {
                message: "HandoffRequest",
                flags: 0x81,
            },
        ),
        (
            long_options,
            DecodeError::TooLong {
                message: "HandoffRequest",
                field: "client_syn_options",
                len: 41,
                max: 40,
            },
        ),
        (
            long_held,
            DecodeError::TooLong {
                message: "HandoffRequest",
                field: "held",
                len: 65537,
                max: 65536,
            },
        ),
        (
            short_held,
            DecodeError::Truncated {
                message: "HandoffRequest",
                field: "held",
            },
        ),
        (
            request_body()[..18].to_vec(),
            DecodeError::Truncated {
                message: "HandoffRequest",
                field: "server",
            },
        ),
    ];
    for (body, err) in cases {
        assert_eq!(decode_all(&frame(kind::HANDOFF_REQUEST, &body)), Err(err));
    }
}

#[test]
fn errors_are_sticky() {
    let mut decoder = Decoder::new();
    decoder.push(b"XX");
    let err = decoder.next().unwrap_err();
    decoder.push(&encode(&Message::Load(Load::default())));
    assert_eq!(decoder.next(), Err(err));
}

#[test]
fn messages_before_an_error_are_delivered() {
    let mut bytes = encode(&Message::Load(Load::default()));
    bytes.extend_from_slice(b"garbage");
    let mut decoder = Decoder::new();
    decoder.push(&bytes);
    assert_eq!(decoder.next(), Ok(Some(Message::Load(Load::default()))));
    assert!(decoder.next().is_err());
}

#[test]
fn try_encode_refuses_what_the_peer_would_refuse() {
    let mut req = request();
    req.held = vec![0; limits::HELD_BYTES + 1];
    assert_eq!(
        try_encode(&Message::HandoffRequest(req.clone())),
        Err(EncodeError {
            field: "held",
            len: 65537,
            max: 65536
        })
    );
    req.held.pop();
    req.client_syn_options = vec![1; 41];
    assert_eq!(
        try_encode(&Message::HandoffRequest(req)).unwrap_err().field,
        "client_syn_options"
    );
}

#[test]
fn largest_request_fits_the_body_limit() {
    let mut req = request();
    req.held = vec![0; limits::HELD_BYTES];
    req.client_syn_options = vec![1; limits::TCP_OPTIONS];
    req.origin_synack_options = vec![1; limits::TCP_OPTIONS];
    req.origin_tsval = Some(TsVal::new(1));
    let msg = Message::HandoffRequest(req);
    let frame = encode(&msg);
    assert!(frame.len() - HEADER_LEN <= MAX_BODY as usize);
    assert_eq!(decode_all(&frame), Ok(vec![msg]));
}

#[test]
fn decoder_reclaims_consumed_space() {
    let frame = encode(&Message::HandoffClosed(HandoffClosed {
        id: 1,
        client: "198.18.0.100:40000".parse().unwrap(),
    }));
    let mut decoder = Decoder::new();
    for _ in 0..10_000 {
        decoder.push(&frame);
        decoder.push(&frame[..3]);
        assert!(decoder.next().unwrap().is_some());
        decoder.push(&frame[3..]);
        assert!(decoder.next().unwrap().is_some());
    }
    assert_eq!(decoder.buffered(), 0);
    assert!(decoder.buf.capacity() < 4096);
}
