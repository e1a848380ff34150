use super::super::{classify, Classification, Request, ServiceKind};

fn tls(bytes: &[u8]) -> Classification {
    classify(bytes, ServiceKind::Tls)
}

fn sni(name: Option<&str>) -> Classification {
    Classification::Done(Request::Tls {
        sni: name.map(Into::into),
    })
}

fn u16be(n: usize) -> [u8; 2] {
    u16::try_from(n).unwrap().to_be_bytes()
}

fn server_name_ext(names: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, name) in names {
        list.push(*kind);
        list.extend_from_slice(&u16be(name.len()));
        list.extend_from_slice(name);
    }
    let mut data = u16be(list.len()).to_vec();
    data.extend_from_slice(&list);
    ext(0, &data)
}

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend_from_slice(&u16be(data.len()));
    out.extend_from_slice(data);
    out
}

/// A ClientHello body with the given extensions block (None: no block).
fn hello_body(extensions: Option<&[u8]>) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0xab; 32]); // random
    body.push(32);
    body.extend_from_slice(&[0xcd; 32]); // session id
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]); // cipher suites
    body.extend_from_slice(&[1, 0]); // compression: null
    if let Some(extensions) = extensions {
        body.extend_from_slice(&u16be(extensions.len()));
        body.extend_from_slice(extensions);
    }
    body
}

fn handshake(body: &[u8]) -> Vec<u8> {
    let [high, len @ ..] = u32::try_from(body.len()).unwrap().to_be_bytes();
    assert_eq!(high, 0, "a handshake length has 24 bits");
    let mut out = vec![1];
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    out
}

/// Wraps handshake bytes in records of at most `max` bytes each.
fn records(handshake: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in handshake.chunks(max) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&u16be(chunk.len()));
        out.extend_from_slice(chunk);
    }
    out
}

fn client_hello(extensions: &[u8]) -> Vec<u8> {
    records(&handshake(&hello_body(Some(extensions))), 1 << 14)
}

#[test]
fn real_client_hello() {
    let bytes = include_bytes!("../../../tests/fixtures/client_hello_openssl.bin");
    assert_eq!(tls(bytes), sni(Some("shop.example.com")));
    for end in 0..bytes.len() {
        assert_eq!(tls(&bytes[..end]), Classification::NeedMore, "prefix {end}");
    }
}

#[test]
fn built_client_hellos() {
    let grease = ext(0x0a0a, &[]);
    let alpn = ext(16, b"\x00\x03\x02h2");
    let cases: Vec<(Vec<u8>, Classification)> = vec![
        (
            client_hello(
                &[
                    grease.clone(),
                    server_name_ext(&[(0, b"A.Example")]),
                    alpn.clone(),
                ]
                .concat(),
            ),
            sni(Some("a.example")),
        ),
        (client_hello(&alpn), sni(None)),
        (client_hello(&[]), sni(None)),
        (records(&handshake(&hello_body(None)), 1 << 14), sni(None)),
        // Unknown name types are skipped.
        (
            client_hello(&server_name_ext(&[(7, b"x"), (0, b"b.example")])),
            sni(Some("b.example")),
        ),
        // Early data after the ClientHello is not looked at.
        (
            [
                client_hello(&server_name_ext(&[(0, b"c")])),
                vec![23, 3, 3, 0, 1, 0xff],
            ]
            .concat(),
            sni(Some("c")),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(tls(&bytes), expected, "{bytes:02x?}");
    }
}

#[test]
fn client_hello_split_across_records() {
    let big = ext(0xfe0d, &vec![0x5a; 20_000]); // larger than one record
    let hs = handshake(&hello_body(Some(
        &[big, server_name_ext(&[(0, b"big.example")])].concat(),
    )));
    for max in [1, 7, 1000, 1 << 14] {
        let bytes = records(&hs, max);
        assert_eq!(tls(&bytes), sni(Some("big.example")), "records of {max}");
        assert_eq!(tls(&bytes[..bytes.len() - 1]), Classification::NeedMore);
    }
}

#[test]
fn malformed_client_hellos() {
    let body = hello_body(Some(&server_name_ext(&[(0, b"h")])));
    let mut bad_ext_len = body.clone();
    let at = 2 + 32 + 33 + 6 + 2; // extensions length
    bad_ext_len[at + 1] += 1;
    let mut bad_suites = body.clone();
    bad_suites[2 + 32 + 33 + 1] = 3;
    let mut long_session = body.clone();
    long_session[2 + 32] = 33;
    let mut trailing = body.clone();
    trailing[at + 1] -= 1;

    let mut not_hello = handshake(&body);
    not_hello[0] = 2;

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"GET / HTTP/1.1\r\n".to_vec(), "not a TLS handshake record"),
        (vec![0x80, 0x2e, 0x01], "not a TLS handshake record"), // SSLv2 hello
        (vec![22, 2], "not a TLS record version"),
        (vec![22, 3, 1, 0, 0], "empty TLS handshake record"),
        (
            vec![22, 3, 1, 0x40, 0x01],
            "TLS record longer than 2^14 bytes",
        ),
        (
            records(&not_hello, 1 << 14),
            "first handshake message is not a ClientHello",
        ),
        (
            vec![22, 3, 1, 0, 4, 1, 1, 0, 1],
            "ClientHello longer than the hold limit",
        ),
        (
            [
                records(&handshake(&body)[..10], 1 << 14),
                vec![21, 3, 1, 0, 2, 2, 40],
            ]
            .concat(),
            "not a TLS handshake record",
        ),
        (
            records(&handshake(&bad_ext_len), 1 << 14),
            "ClientHello truncated in extensions",
        ),
        (
            records(&handshake(&trailing), 1 << 14),
            "ClientHello has bytes after its extensions",
        ),
        (
            records(&handshake(&bad_suites), 1 << 14),
            "ClientHello cipher_suites length is not a positive even number",
        ),
        (
            records(&handshake(&long_session), 1 << 14),
            "ClientHello session id longer than 32 bytes",
        ),
        (
            records(&handshake(&body[..20]), 1 << 14),
            "ClientHello truncated in random",
        ),
        (
            client_hello(&[server_name_ext(&[(0, b"a")]), server_name_ext(&[(0, b"b")])].concat()),
            "ClientHello has two server_name extensions",
        ),
        (
            client_hello(&server_name_ext(&[(0, b"a"), (0, b"b")])),
            "server_name has two host names",
        ),
        (
            client_hello(&server_name_ext(&[(0, b"")])),
            "empty server_name host name",
        ),
        (
            client_hello(&server_name_ext(&[(0, b"a\x00b")])),
            "host name has a space, control or non-ASCII character",
        ),
        (
            client_hello(&ext(0, &[0, 5, 0])),
            "server_name list longer than its extension",
        ),
        (
            client_hello(&ext(0, &[0, 0, 9])),
            "server_name extension has bytes after its list",
        ),
        (
            client_hello(&ext(0, &[0, 3, 0, 0, 5])),
            "server_name entry longer than its list",
        ),
        (
            client_hello(&[0, 0, 0]),
            "extension longer than the extensions block",
        ),
        (client_hello(&[0]), "extension truncated in its type"),
    ];
    for (bytes, reason) in cases {
        assert_eq!(tls(&bytes), Classification::Invalid(reason), "{bytes:02x?}");
    }
}
