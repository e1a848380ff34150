//! Request classification at the origin: what did the client ask for?
//!
//! The origin holds the first request bytes of a new connection and calls
//! [`classify`] each time more arrive. For HTTP/1.x services it reads the
//! request line and the Host header; for TLS services it reads the SNI of
//! the ClientHello, so that routing needs no decryption.
//!
//! The answer is [`Classification::NeedMore`] until enough bytes are there,
//! and [`Classification::Invalid`] as soon as the bytes cannot be what the
//! service expects, so that garbage is released to the local kernel at once
//! instead of being held until a timeout. The classifier never panics and
//! never reads out of bounds, whatever the input; the reasons it gives are
//! static strings so they can label a counter.

mod http;
mod tls;

use crate::http1::syntax::Partial;

/// What kind of protocol a service port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    Http,
    Tls,
}

/// What the client asked for: the input to the selection policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    Http {
        /// The request method, as sent (methods are case-sensitive).
        method: String,
        /// The request target as sent (path and query), or the path part of
        /// an absolute-form target.
        path: String,
        /// The host, lowercased, without port or trailing dot; `None` when
        /// the request names none (HTTP/1.0 without Host, or an empty Host).
        host: Option<String>,
    },
    Tls {
        /// The `host_name` of the server_name extension, lowercased; `None`
        /// when the client sent no SNI.
        sni: Option<String>,
    },
}

/// The result of looking at the bytes held so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// Enough was read to route the request.
    Done(Request),
    /// The bytes are a valid beginning; wait for more.
    NeedMore,
    /// The bytes cannot be a request of this kind; the reason names why.
    Invalid(&'static str),
}

/// Classifies the request bytes held so far (everything the client sent
/// after its SYN, in order). Cheap to call again as more bytes arrive.
pub fn classify(bytes: &[u8], kind: ServiceKind) -> Classification {
    let result = match kind {
        ServiceKind::Http => http::classify(bytes),
        ServiceKind::Tls => tls::classify(bytes),
    };
    match result {
        Ok(Some(request)) => Classification::Done(request),
        Ok(None) => Classification::NeedMore,
        Err(reason) => Classification::Invalid(reason),
    }
}

/// Normalises a host name for matching: ASCII visible characters only,
/// lowercased, without a trailing dot. `None` for an empty name.
fn normalize_name(name: &[u8]) -> Result<Option<String>, &'static str> {
    if !name.iter().all(|&b| b.is_ascii_graphic()) {
        return Err("host name has a space, control or non-ASCII character");
    }
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() {
        return Ok(None);
    }
    // All bytes are ASCII, so this cannot fail.
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(
            normalize_name(b"WWW.Example.COM."),
            Ok(Some("www.example.com".into()))
        );
        assert_eq!(normalize_name(b""), Ok(None));
        assert_eq!(normalize_name(b"."), Ok(None));
        assert!(normalize_name(b"a b").is_err());
        assert!(normalize_name(b"caf\xc3\xa9").is_err());
        assert!(normalize_name(b"a\x00").is_err());
    }
}
