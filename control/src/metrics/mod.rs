//! The metrics endpoint: `GET /metrics` in the Prometheus text format,
//! served by the control lcore (never a worker) from the same snapshot
//! `baton stats` shows.
//!
//! A small HTTP/1.1 responder, polled from the control lcore's loop and
//! never blocking it: sockets are non-blocking, each connection reads one
//! request head of at most [`MAX_REQUEST`] bytes within [`TIMEOUT`], gets
//! one answer and is closed (`Connection: close`). At most
//! [`MAX_CONNECTIONS`] are open at once; more are closed at once. Every
//! way a request can fail is counted ([`MetricsCounter`]).

mod counters;
pub mod exposition;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use counters::{MetricsCounter, MetricsCounters};
pub use exposition::{describe, render, BuildInfo, Catalog, Described};

/// The largest request head read; a longer one is answered 431.
pub const MAX_REQUEST: usize = 8192;
/// How long a connection may take to send its request and read the answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once; more are closed as they come.
pub const MAX_CONNECTIONS: usize = 16;

/// The listening side and its open connections.
pub struct MetricsServer {
    listener: TcpListener,
    conns: Vec<Conn>,
    counters: Arc<MetricsCounters>,
    timeout: Duration,
}

struct Conn {
    stream: TcpStream,
    since: Instant,
    request: Vec<u8>,
    /// The answer, once the request is read, and how much of it is sent.
    answer: Option<(Vec<u8>, usize)>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr} (`metrics.listen`): {source}")]
pub struct BindError {
    addr: SocketAddr,
    source: io::Error,
}

impl MetricsServer {
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer, BindError> {
        let err = |source| BindError { addr, source };
        let listener = TcpListener::bind(addr).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        Ok(MetricsServer {
            listener,
            conns: Vec::new(),
            counters: Arc::new(MetricsCounters::default()),
            timeout: TIMEOUT,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The endpoint's own counters, for the stats snapshot.
    pub fn counters(&self) -> Arc<MetricsCounters> {
        Arc::clone(&self.counters)
    }

    /// Accepts, reads and answers what is ready now, without blocking.
    /// `body` renders the metrics; it is called once per `GET /metrics`.
    pub fn serve_pending(&mut self, body: impl Fn() -> String) {
        self.accept();
        let now = Instant::now();
        let (counters, timeout) = (&self.counters, self.timeout);
        self.conns
            .retain_mut(|conn| match conn.step(&body, counters) {
                Ok(true) => {
                    if now.saturating_duration_since(conn.since) > timeout {
                        counters.add(MetricsCounter::Timeouts, 1);
                        false
                    } else {
                        true
                    }
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::debug!("metrics client: {e}");
                    counters.add(MetricsCounter::IoErrors, 1);
                    false
                }
            });
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) if self.conns.len() >= MAX_CONNECTIONS => {
                    self.counters.add(MetricsCounter::Refused, 1);
                    drop(stream);
                }
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        self.counters.add(MetricsCounter::IoErrors, 1);
                        continue;
                    }
                    self.conns.push(Conn {
                        stream,
                        since: Instant::now(),
                        request: Vec::new(),
                        answer: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("metrics accept: {e}");
                    self.counters.add(MetricsCounter::IoErrors, 1);
                    return;
                }
            }
        }
    }
}

impl Conn {
    /// Moves the connection on; `Ok(true)` while it stays open.
    fn step(&mut self, body: &impl Fn() -> String, counters: &MetricsCounters) -> io::Result<bool> {
        if self.answer.is_none() {
            let mut buf = [0u8; 2048];
            loop {
                match self.stream.read(&mut buf) {
                    Ok(0) => {
                        // Closed before a whole request head.
                        counters.add(MetricsCounter::BadRequests, 1);
                        return Ok(false);
                    }
                    Ok(n) => {
                        self.request.extend_from_slice(&buf[..n]);
                        if let Some(answer) = answer_to(&self.request, body, counters) {
                            self.answer = Some((answer, 0));
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let Some((answer, sent)) = &mut self.answer else {
            return Ok(true);
        };
        while *sent < answer.len() {
            match self.stream.write(&answer[*sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        Ok(false)
    }
}

/// The answer to a request head, once it is whole (or too long).
fn answer_to(
    request: &[u8],
    body: &impl Fn() -> String,
    counters: &MetricsCounters,
) -> Option<Vec<u8>> {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n");
    // Too long whether whole or not: a head still unfinished past the
    // limit will not get shorter.
    if end.unwrap_or(request.len()) > MAX_REQUEST {
        counters.add(MetricsCounter::BadRequests, 1);
        return Some(response(
            431,
            "Request Header Fields Too Large",
            "text/plain",
            "request head too long\n",
        ));
    }
    let end = end?;
    let head = String::from_utf8_lossy(&request[..end]);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let valid = matches!(version, Some("HTTP/1.1" | "HTTP/1.0")) && parts.next().is_none();
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    Some(match (valid, method, path) {
        (false, _, _) => {
            counters.add(MetricsCounter::BadRequests, 1);
            response(400, "Bad Request", "text/plain", "bad request line\n")
        }
        (true, Some("GET"), Some("/metrics")) => {
            counters.add(MetricsCounter::Scrapes, 1);
            response(
                200,
                "OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body(),
            )
        }
        (true, Some("GET"), _) => {
            counters.add(MetricsCounter::NotFound, 1);
            response(
                404,
                "Not Found",
                "text/plain",
                "only /metrics is served here\n",
            )
        }
        (true, _, _) => {
            counters.add(MetricsCounter::BadRequests, 1);
            response(
                405,
                "Method Not Allowed",
                "text/plain",
                "only GET is served here\n",
            )
        }
    })
}

fn response(status: u16, reason: &str, content_type: &str, body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests;
