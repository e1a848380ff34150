//! What a message's head says about where the message ends (RFC 9112
//! §6.3), for requests and for responses.

use super::framer::Body;
use super::syntax::{header, next_line, request_line, trim_ows};

/// A request head, as framing needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// How its body is delimited.
    pub body: Body,
    /// A `HEAD` request: its response has no body, whatever its head says.
    pub head_method: bool,
    /// A `CONNECT` request, or one asking to upgrade the protocol: what
    /// follows may not be HTTP.
    pub switches: bool,
    /// `Connection: close`: no request follows on this connection.
    pub close: bool,
}

/// A response head, as framing needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Transfer-Encoding's final coding is chunked.
    chunked: bool,
    /// Some other Transfer-Encoding: delimited by the close.
    other_coding: bool,
    length: Option<u64>,
    /// `Connection: close`: the server closes after this response.
    pub close: bool,
}

impl RequestHead {
    pub fn parse(head: &[u8]) -> Result<RequestHead, &'static str> {
        let (start, fields) = split_start_line(head)?;
        let Some((method, _target)) = request_line(start, true)? else {
            return Err("incomplete request line");
        };
        let fields = Fields::parse(fields)?;
        let body = match (fields.coding, fields.length) {
            // A request with both is how requests are smuggled past one
            // parser to another (RFC 9112 §6.1): Baton does not pick one.
            (Some(_), Some(_)) => Body::Endless("request has Transfer-Encoding and Content-Length"),
            (Some(Coding::Chunked), None) => Body::Chunked,
            (Some(Coding::Other), None) => Body::Endless("request transfer coding is not chunked"),
            (None, Some(n)) => Body::Length(n),
            (None, None) => Body::None,
        };
        Ok(RequestHead {
            body,
            head_method: method == b"HEAD",
            switches: method == b"CONNECT" || fields.upgrade,
            close: fields.close,
        })
    }
}

impl ResponseHead {
    pub fn parse(head: &[u8]) -> Result<ResponseHead, &'static str> {
        let (start, fields) = split_start_line(head)?;
        let status = status_line(start)?;
        let fields = Fields::parse(fields)?;
        Ok(ResponseHead {
            status,
            chunked: fields.coding == Some(Coding::Chunked),
            other_coding: fields.coding == Some(Coding::Other),
            length: fields.length,
            close: fields.close,
        })
    }

    /// An interim (1xx) response other than 101: the final one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// How this response's body is delimited, as the answer to `request`.
    pub fn body(&self, request: &RequestHead) -> Body {
        match self.status {
            101 => Body::Endless("protocol switched"),
            100..=199 | 204 | 304 => Body::None,
            _ if request.head_method => Body::None,
            200..=299 if request.switches => Body::Endless("tunnel established"),
            _ if self.chunked => Body::Chunked,
            _ if self.other_coding => Body::Endless("body delimited by the close"),
            _ => match self.length {
                Some(n) => Body::Length(n),
                None => Body::Endless("body delimited by the close"),
            },
        }
    }
}

fn split_start_line(head: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    match next_line(head, "start line too long")? {
        Some(split) => Ok(split),
        None => Err("head has no start line"),
    }
}

/// `HTTP/1.x SP 3DIGIT [SP reason]`.
fn status_line(line: &[u8]) -> Result<u16, &'static str> {
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .filter(|r| r.first().is_some_and(u8::is_ascii_digit))
        .map(|r| &r[1..])
        .ok_or("not an HTTP/1.x response")?;
    let code = rest
        .strip_prefix(b" ")
        .and_then(|r| r.get(..3))
        .filter(|c| c.iter().all(u8::is_ascii_digit))
        .ok_or("status line has no status code")?;
    if rest.len() > 4 && rest[4] != b' ' {
        return Err("status code is not three digits");
    }
    Ok(code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0')))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Chunked,
    Other,
}

/// The header fields that delimit a message.
#[derive(Default)]
struct Fields {
    coding: Option<Coding>,
    length: Option<u64>,
    close: bool,
    upgrade: bool,
}

impl Fields {
    fn parse(mut rest: &[u8]) -> Result<Fields, &'static str> {
        let mut fields = Fields::default();
        loop {
            let Some((line, after)) = next_line(rest, "header line too long")? else {
                return Err("head does not end with an empty line");
            };
            rest = after;
            if line.is_empty() {
                return Ok(fields);
            }
            let (name, value) = header(line)?;
            if name.eq_ignore_ascii_case(b"content-length") {
                fields.length(value)?;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                // The last coding listed, over every field line, is the
                // one applied last: only a final chunked delimits the body.
                if let Some(last) = list(value).last() {
                    fields.coding = Some(if last.eq_ignore_ascii_case(b"chunked") {
                        Coding::Chunked
                    } else {
                        Coding::Other
                    });
                }
            } else if name.eq_ignore_ascii_case(b"connection") {
                for option in list(value) {
                    fields.close |= option.eq_ignore_ascii_case(b"close");
                    fields.upgrade |= option.eq_ignore_ascii_case(b"upgrade");
                }
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                fields.upgrade = true;
            }
        }
    }

    /// Content-Length: one number, however often repeated (RFC 9110
    /// §8.6); two different ones are an error.
    fn length(&mut self, value: &[u8]) -> Result<(), &'static str> {
        if value.is_empty() {
            return Err("Content-Length is empty");
        }
        for item in list(value) {
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                return Err("Content-Length is not a number");
            }
            let n = item.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
            if self.length.is_some_and(|m| m != n) {
                return Err("Content-Length given twice, differently");
            }
            self.length = Some(n);
        }
        Ok(())
    }
}

/// The items of a comma-separated field value, trimmed; empty ones skipped.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}
