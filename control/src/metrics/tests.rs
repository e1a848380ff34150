use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::*;

fn server() -> MetricsServer {
    MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Sends `request` and serves until the server closes the connection;
/// returns the whole answer.
fn exchange(server: &mut MetricsServer, request: &[u8]) -> String {
    let mut client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    client.write_all(request).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut answer = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        server.serve_pending(|| "baton_up 1\n".to_string());
        let mut buf = [0u8; 4096];
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "no answer");
        std::thread::sleep(Duration::from_millis(2));
    }
    String::from_utf8(answer).unwrap()
}

#[test]
fn get_metrics_is_answered_with_the_text_format() {
    let mut s = server();
    let answer = exchange(
        &mut s,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("Content-Type: text/plain; version=0.0.4"));
    assert!(answer.contains("Content-Length: 11\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nbaton_up 1\n"), "{answer}");
    assert_eq!(s.counters().get(MetricsCounter::Scrapes), 1);
}

#[test]
fn other_paths_methods_and_garbage_are_answered_and_counted() {
    let mut s = server();
    let a = exchange(&mut s, b"GET / HTTP/1.1\r\n\r\n");
    assert!(a.starts_with("HTTP/1.1 404 "), "{a}");
    let a = exchange(&mut s, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(
        a.starts_with("HTTP/1.1 405 ") && a.contains("Allow: GET"),
        "{a}"
    );
    let a = exchange(&mut s, b"\x16\x03\x01 hello\r\n\r\n");
    assert!(a.starts_with("HTTP/1.1 400 "), "{a}");
    let long = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_REQUEST)
    );
    let a = exchange(&mut s, long.as_bytes());
    assert!(a.starts_with("HTTP/1.1 431 "), "{a}");
    let c = s.counters();
    assert_eq!(c.get(MetricsCounter::NotFound), 1);
    assert_eq!(c.get(MetricsCounter::BadRequests), 3);
    assert_eq!(c.get(MetricsCounter::Scrapes), 0);
}

#[test]
fn a_silent_client_is_dropped_after_the_timeout_and_never_blocks_the_caller() {
    let mut s = server();
    s.timeout = Duration::from_millis(200);
    let mut client = TcpStream::connect(s.local_addr().unwrap()).unwrap();
    client.write_all(b"GET /metr").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.counters().get(MetricsCounter::Timeouts) == 0 {
        let start = Instant::now();
        s.serve_pending(String::new);
        // Printed, not asserted: a poll returns at once whatever the client does.
        if start.elapsed() > Duration::from_millis(50) {
            println!("serve_pending took {:?}", start.elapsed());
        }
        assert!(Instant::now() < deadline, "never timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "closed without an answer");
}

#[test]
fn connections_past_the_limit_are_closed_and_counted() {
    let mut s = server();
    let addr = s.local_addr().unwrap();
    let held: Vec<TcpStream> = (0..MAX_CONNECTIONS + 2)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.counters().get(MetricsCounter::Refused) < 2 {
        s.serve_pending(String::new);
        assert!(Instant::now() < deadline, "not refused");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(s.conns.len(), MAX_CONNECTIONS);
    drop(held);
}
