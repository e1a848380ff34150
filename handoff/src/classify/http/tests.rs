use super::super::{classify, Classification, Request, ServiceKind};

fn http(bytes: &[u8]) -> Classification {
    classify(bytes, ServiceKind::Http)
}

fn done(method: &str, path: &str, host: Option<&str>) -> Classification {
    Classification::Done(Request::Http {
        method: method.into(),
        path: path.into(),
        host: host.map(Into::into),
    })
}

#[test]
fn complete_requests() {
    let cases: &[(&[u8], Classification)] = &[
        (
            b"GET /b/x HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
            done("GET", "/b/x", Some("www.example.com")),
        ),
        (
            b"GET / HTTP/1.1\r\nUser-Agent: curl\r\nhOsT:  Example.COM:8080 \r\n\r\n",
            done("GET", "/", Some("example.com")),
        ),
        (
            b"POST /form?a=1 HTTP/1.1\r\nHost: a.example.\r\nContent-Length: 3\r\n\r\nabc",
            done("POST", "/form?a=1", Some("a.example")),
        ),
        (b"GET /old HTTP/1.0\r\n\r\n", done("GET", "/old", None)),
        (b"GET /x HTTP/1.1\r\nHost:\r\n\r\n", done("GET", "/x", None)),
        (
            b"GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
            done("GET", "/", Some("[2001:db8::1]")),
        ),
        (
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            done("GET", "/", Some("h")),
        ),
        // Absolute form: the target's authority wins over Host.
        (
            b"GET http://user@Proxy.Example:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n",
            done("GET", "/p?q", Some("proxy.example")),
        ),
        (
            b"GET HTTPS://h.example HTTP/1.1\r\n",
            done("GET", "/", Some("h.example")),
        ),
        (
            b"GET http://h?q HTTP/1.1\r\n",
            done("GET", "/?q", Some("h")),
        ),
        (
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            done("OPTIONS", "*", Some("h")),
        ),
        // Host is enough: the rest of the header block need not be held.
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nAccept: */",
            done("GET", "/", Some("h")),
        ),
        // Non-ASCII bytes in the target (obs-text) are kept, lossily.
        (
            b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
            done("GET", "/caf\u{e9}", Some("h")),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            &http(bytes),
            expected,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn every_prefix_of_a_valid_request_needs_more() {
    let request = b"GET /b/x HTTP/1.1\r\nAccept: */*\r\nHost: www.example.com\r\n\r\n";
    let host_end = request.len() - 4;
    for end in 0..host_end {
        assert_eq!(
            http(&request[..end]),
            Classification::NeedMore,
            "{:?}",
            String::from_utf8_lossy(&request[..end])
        );
    }
    for end in host_end + 2..=request.len() {
        assert_eq!(
            http(&request[..end]),
            done("GET", "/b/x", Some("www.example.com"))
        );
    }
}

#[test]
fn garbage_is_invalid_as_early_as_possible() {
    let long_line = [b"GET /".as_slice(), &[b'a'; crate::http1::syntax::MAX_LINE]].concat();
    let long_header = [
        b"GET / HTTP/1.1\r\nX: ".as_slice(),
        &[b'a'; crate::http1::syntax::MAX_LINE],
    ]
    .concat();
    let cases: &[(&[u8], &str)] = &[
        (b"\x16\x03\x01\x02\x00", "method is not a token"),
        (b"G(T", "method is not a token"),
        (b" GET / HTTP/1.1\r\n", "request line starts with a space"),
        (b"GETGETGETGETGETGETGETGETGETGETGET", "method too long"),
        (b"GET /a\x01", "request target has a control character"),
        (b"GET  / HTTP/1.1", "empty request target"),
        (b"GET / HTTP/2", "not an HTTP/1.x request"),
        (
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "not an HTTP/1.x request",
        ),
        (b"GET / HTTP/1.x", "not an HTTP/1.x request"),
        (b"GET / HTTP/1.10", "not an HTTP/1.x request"),
        (b"GET / HTTP/1.1 \r\n", "not an HTTP/1.x request"),
        (b"GET /\r\n", "request line has no HTTP version"),
        (b"GET\r\n", "request line has no target"),
        (b"GET / HTTP/1.1\n", "line ends with a bare LF"),
        (b"GET / HTTP/1.1\r\nHost: h\n", "line ends with a bare LF"),
        (
            b"GET / HTTP/1.1\r\n X: y\r\n",
            "obsolete header line folding",
        ),
        (b"GET / HTTP/1.1\r\n\tX", "obsolete header line folding"),
        (
            b"GET / HTTP/1.1\r\nHost : h\r\n",
            "header name is not a token",
        ),
        (b"GET / HTTP/1.1\r\nHo st", "header name is not a token"),
        (b"GET / HTTP/1.1\r\nNoColon\r\n", "header line has no colon"),
        (b"GET / HTTP/1.1\r\n: v\r\n", "header name is not a token"),
        (
            b"GET / HTTP/1.1\r\nX: a\x00b\r\n",
            "control character in header value",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h:8o\r\n",
            "port in Host is not a number",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a:b:1\r\n",
            "Host has more than one colon",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: [::1\r\n",
            "IPv6 literal in Host has no closing bracket",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: [::1]x\r\n",
            "junk after IPv6 literal in Host",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n",
            "host name has a space, control or non-ASCII character",
        ),
        (&long_line, "request line too long"),
        (&long_header, "header line too long"),
    ];
    for (bytes, reason) in cases {
        assert_eq!(
            http(bytes),
            Classification::Invalid(reason),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn lines_up_to_the_limit_are_accepted() {
    let path = "/".repeat(crate::http1::syntax::MAX_LINE - "GET  HTTP/1.1".len());
    let request = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(http(request.as_bytes()), done("GET", &path, Some("h")));
}
