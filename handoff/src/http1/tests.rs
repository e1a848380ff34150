use proptest::prelude::*;

use super::*;
use crate::seq::SeqNum;

const BASE: u32 = 0xffff_ff00; // streams that wrap around zero

fn at(offset: usize) -> SeqNum {
    SeqNum::new(BASE).add_len(offset)
}

/// Feeds `stream` to `Requests` in the given segment sizes, in order;
/// returns each request's start offset, and the reason if it ended.
fn request_starts(stream: &[u8], sizes: &[usize]) -> (Vec<usize>, Option<&'static str>) {
    let mut requests = Requests::new(at(0));
    let mut starts = Vec::new();
    let mut offset = 0;
    let mut sizes = sizes.iter().copied().cycle();
    while offset < stream.len() {
        let len = sizes
            .next()
            .unwrap_or(stream.len())
            .clamp(1, stream.len() - offset);
        let segment = &stream[offset..offset + len];
        loop {
            match requests.step(at(offset), segment) {
                Seen::Request { start, .. } => {
                    starts.push(start.distance_from(at(0)) as usize);
                }
                Seen::More => break,
                Seen::Gap => panic!("in-order segments make no gap"),
                Seen::Endless(why) => return (starts, Some(why)),
            }
        }
        offset += len;
    }
    (starts, None)
}

#[test]
fn pipelined_requests_in_one_segment_are_found_one_by_one() {
    let a = b"GET /n1/a HTTP/1.1\r\nHost: h\r\n\r\n";
    let b = b"GET /n2/b HTTP/1.1\r\nHost: h\r\n\r\n";
    let c = b"HEAD /n3/c HTTP/1.1\r\nHost: h\r\n\r\n";
    let stream = [&a[..], b, c].concat();
    let mut requests = Requests::new(at(0));
    let Seen::Request { start, head } = requests.step(at(0), &stream) else {
        panic!()
    };
    assert_eq!((start, head.head_method), (at(0), false));
    assert_eq!(requests.head(), a);
    let Seen::Request { start, .. } = requests.step(at(0), &stream) else {
        panic!()
    };
    assert_eq!(start, at(a.len()));
    assert_eq!(requests.head(), b);
    let Seen::Request { start, head } = requests.step(at(0), &stream) else {
        panic!()
    };
    assert_eq!((start, head.head_method), (at(a.len() + b.len()), true));
    assert_eq!(requests.step(at(0), &stream), Seen::More);
    assert!(requests.at_boundary(at(stream.len())));
}

#[test]
fn a_body_is_stepped_over_whatever_order_its_segments_come_in() {
    let post = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10240\r\n\r\n";
    let mut requests = Requests::new(at(0));
    let Seen::Request { head, .. } = requests.step(at(0), post) else {
        panic!()
    };
    assert_eq!(head.body, Body::Length(10240));
    assert_eq!(requests.step(at(0), post), Seen::More);
    // The next request is expected right after the body: the body's own
    // segments end before that, and need no look.
    let next = at(post.len() + 10240);
    assert_eq!(requests.next(), next);
    assert!(requests.at_boundary(next));
    let get = b"GET /n2/x HTTP/1.1\r\n\r\n";
    let Seen::Request { start, .. } = requests.step(next, get) else {
        panic!()
    };
    assert_eq!(start, next);
}

#[test]
fn a_segment_past_the_position_is_a_gap() {
    let mut requests = Requests::new(at(0));
    assert_eq!(requests.step(at(5), b"GET / HTTP/1.1\r\n\r\n"), Seen::Gap);
    // Bytes already read are not read again.
    let get = b"GET / HTTP/1.1\r\n\r\n";
    assert!(matches!(requests.step(at(0), get), Seen::Request { .. }));
    assert_eq!(requests.step(at(0), get), Seen::More);
    assert_eq!(requests.step(at(0), get), Seen::More);
}

#[test]
fn chunked_bodies_with_extensions_and_trailers_are_followed() {
    let stream = [
        &b"POST /c HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"[..],
        b"5;name=value\r\nhello\r\n",
        b"A\r\n0123456789\r\n",
        b"0\r\nChecksum: x\r\n\r\n",
        b"GET /after HTTP/1.1\r\n\r\n",
    ]
    .concat();
    let second = stream.len() - b"GET /after HTTP/1.1\r\n\r\n".len();
    for size in 1..stream.len() {
        assert_eq!(
            request_starts(&stream, &[size]),
            (vec![0, second], None),
            "size {size}"
        );
    }
}

#[test]
fn empty_lines_between_requests_are_skipped() {
    let stream = b"GET /a HTTP/1.1\r\n\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    for size in 1..stream.len() {
        assert_eq!(request_starts(stream, &[size]), (vec![0, 23], None));
    }
}

#[test]
fn framing_ends_where_boundaries_are_ambiguous_or_http_stops() {
    let cases: [(&[u8], &str); 6] = [
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "request has Transfer-Encoding and Content-Length",
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "Content-Length given twice, differently",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "request transfer coding is not chunked",
        ),
        (
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET",
            "the request may switch protocols",
        ),
        (
            b"CONNECT h:443 HTTP/1.1\r\n\r\nGET",
            "the request may switch protocols",
        ),
        (b"GET / HTTP/1.1\nHost: h\n\n", "line ends with a bare LF"),
    ];
    for (stream, why) in cases {
        let mut requests = Requests::new(at(0));
        let mut seen = Seen::More;
        for _ in 0..4 {
            seen = requests.step(at(0), stream);
            if matches!(seen, Seen::Endless(_)) {
                break;
            }
        }
        assert_eq!(
            seen,
            Seen::Endless(why),
            "{}",
            String::from_utf8_lossy(stream)
        );
    }
}

#[test]
fn a_head_longer_than_the_limit_ends_the_framing() {
    let mut requests = Requests::new(at(0));
    let long = [&b"GET / HTTP/1.1\r\nX: "[..], &vec![b'a'; MAX_HEAD]].concat();
    assert_eq!(requests.step(at(0), &long), Seen::Endless("head too long"));
}

fn exchange_after(requests: &[&[u8]]) -> Exchange {
    let mut exchange = Exchange::new(at(0));
    for r in requests {
        exchange.request(RequestHead::parse(r).unwrap());
    }
    exchange
}

const GET: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\n\r\n";

#[test]
fn an_exchange_is_idle_when_every_response_has_ended() {
    let mut exchange = exchange_after(&[GET, HEAD, GET]);
    assert_eq!(exchange.idle(), Idle::NotYet);
    let first = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    exchange.server_segment(at(0), first);
    // The body is stepped over: the next response comes after it.
    assert_eq!(exchange.server_next(), at(first.len() + 5));
    // The HEAD's response says 100 bytes, and has none.
    let second = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    let third = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let rest = [&second[..], third].concat();
    let from = first.len() + 5;
    exchange.server_segment(at(from), &rest[..rest.len() - 3]);
    assert_eq!(
        exchange.idle(),
        Idle::NotYet,
        "the chunked body has not ended"
    );
    exchange.server_segment(at(from), &rest);
    assert_eq!(exchange.idle(), Idle::Yes);
    assert_eq!(exchange.server_next(), at(from + rest.len()));
}

#[test]
fn an_exchange_never_idles_once_the_server_closes_or_switches() {
    /// The requests an owner was given, its server's answer, and then.
    type Case<'a> = (&'a [&'a [u8]], &'a [u8], Idle);
    let cases: [Case; 4] = [
        (
            &[GET],
            b"HTTP/1.1 200 OK\r\n\r\nbody until the close",
            Idle::Never("body delimited by the close"),
        ),
        (
            &[GET],
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            Idle::Never("the server closes the connection"),
        ),
        (
            &[b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"],
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            Idle::Never("protocol switched"),
        ),
        (
            &[b"CONNECT h:1 HTTP/1.1\r\n\r\n"],
            b"HTTP/1.1 200 OK\r\n\r\n",
            Idle::Never("tunnel established"),
        ),
    ];
    for (requests, response, idle) in cases {
        let mut exchange = exchange_after(requests);
        exchange.server_segment(at(0), response);
        assert_eq!(
            exchange.idle(),
            idle,
            "{}",
            String::from_utf8_lossy(response)
        );
    }
    let mut exchange = exchange_after(&[]);
    exchange.close();
    assert!(matches!(exchange.idle(), Idle::Never(_)));
}

#[test]
fn no_content_and_not_modified_have_no_body() {
    let mut exchange = exchange_after(&[GET, GET]);
    let responses =
        b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n";
    exchange.server_segment(at(0), responses);
    assert_eq!(exchange.idle(), Idle::Yes);
}

/// A message of the kind a client sends.
fn arb_request() -> impl Strategy<Value = Vec<u8>> {
    let body = prop::collection::vec(any::<u8>(), 0..300);
    (0..3u8, body, prop::collection::vec(1..40usize, 1..5)).prop_map(|(kind, body, chunks)| {
        match kind {
            0 => b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            1 => [
                format!("POST /p HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
                &body,
            ]
            .concat(),
            _ => {
                let mut m = b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                let mut rest = &body[..];
                for c in chunks {
                    let n = c.min(rest.len());
                    if n == 0 {
                        break;
                    }
                    m.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                    m.extend_from_slice(&rest[..n]);
                    m.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                m.extend_from_slice(b"0\r\n\r\n");
                m
            }
        }
    })
}

proptest! {
    /// However a stream of requests is cut into segments, the same
    /// requests are found at the same places.
    #[test]
    fn segmentation_does_not_change_the_requests_found(
        messages in prop::collection::vec(arb_request(), 1..6),
        sizes in prop::collection::vec(1..64usize, 1..8),
    ) {
        let mut starts = Vec::new();
        let mut offset = 0;
        for m in &messages {
            starts.push(offset);
            offset += m.len();
        }
        let stream = messages.concat();
        prop_assert_eq!(request_starts(&stream, &sizes), (starts, None));
    }

    /// Garbage never panics the framers.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), cut in 0..400usize) {
        let cut = cut.min(bytes.len());
        let mut requests = Requests::new(at(0));
        let mut exchange = exchange_after(&[GET]);
        for (seq, part) in [(at(0), &bytes[..cut]), (at(cut), &bytes[cut..])] {
            for _ in 0..64 {
                if !matches!(requests.step(seq, part), Seen::Request { .. }) {
                    break;
                }
            }
            exchange.server_segment(seq, part);
        }
    }
}
