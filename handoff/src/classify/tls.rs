//! TLS: the server_name (SNI) of a ClientHello (RFC 8446 §4.1.2, RFC 6066 §3).
//!
//! A ClientHello may be split across TCP segments and, when large (many key
//! shares), across TLS records; the handshake bytes of consecutive
//! handshake records are joined before parsing. Every length is checked
//! against the bytes that contain it, so a lying length is `Invalid`, never
//! an out-of-bounds read. Bytes after the ClientHello (0-RTT early data, a
//! compatibility ChangeCipherSpec) are not looked at.

use super::{normalize_name, Partial, Request};
use crate::msg::limits;

const RECORD_HEADER_LEN: usize = 5;
const CONTENT_HANDSHAKE: u8 = 22;
/// RFC 8446 §5.1: a record's plaintext is at most 2^14 bytes.
const MAX_RECORD: usize = 1 << 14;
const HANDSHAKE_HEADER_LEN: usize = 4;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST: u8 = 0;

pub(super) fn classify(bytes: &[u8]) -> Partial<Request> {
    match client_hello(bytes)? {
        Some(hello) => parse_client_hello(&hello).map(|sni| Some(Request::Tls { sni })),
        None => Ok(None),
    }
}

/// Joins the handshake fragments of the leading records until the whole
/// ClientHello body is there. `Ok(None)` if it is not yet.
fn client_hello(mut bytes: &[u8]) -> Partial<Vec<u8>> {
    let mut handshake = Vec::new();
    loop {
        if let Some(body_len) = hello_header(&handshake)? {
            let end = HANDSHAKE_HEADER_LEN + body_len;
            if handshake.len() >= end {
                handshake.truncate(end);
                handshake.drain(..HANDSHAKE_HEADER_LEN);
                return Ok(Some(handshake));
            }
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        let fragment_len = record_header(bytes)?;
        let available = &bytes[RECORD_HEADER_LEN.min(bytes.len())..];
        let Some(len) = fragment_len else {
            return Ok(None);
        };
        if available.len() < len {
            handshake.extend_from_slice(available);
            // Check the handshake header if it is already in.
            hello_header(&handshake)?;
            return Ok(None);
        }
        handshake.extend_from_slice(&available[..len]);
        bytes = &available[len..];
    }
}

/// Checks whatever part of a record header is present; the fragment length
/// once it is all there.
fn record_header(bytes: &[u8]) -> Result<Option<usize>, &'static str> {
    if bytes[0] != CONTENT_HANDSHAKE {
        return Err("not a TLS handshake record");
    }
    if bytes.get(1).is_some_and(|&major| major != 3) {
        return Err("not a TLS record version");
    }
    let Some(len) = bytes.get(3..RECORD_HEADER_LEN) else {
        return Ok(None);
    };
    match usize::from(u16::from_be_bytes([len[0], len[1]])) {
        0 => Err("empty TLS handshake record"),
        len if len > MAX_RECORD => Err("TLS record longer than 2^14 bytes"),
        len => Ok(Some(len)),
    }
}

/// Checks the handshake header once present; the ClientHello body length.
fn hello_header(handshake: &[u8]) -> Result<Option<usize>, &'static str> {
    let Some(&kind) = handshake.first() else {
        return Ok(None);
    };
    if kind != CLIENT_HELLO {
        return Err("first handshake message is not a ClientHello");
    }
    let Some(len) = handshake.get(1..HANDSHAKE_HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]);
    if len > limits::HELD_BYTES {
        return Err("ClientHello longer than the hold limit");
    }
    Ok(Some(len))
}

/// Parses a complete ClientHello body and returns its SNI host name.
fn parse_client_hello(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader(body);
    let [major, _minor] = r.array("ClientHello truncated in legacy_version")?;
    if major != 3 {
        return Err("ClientHello version is not TLS");
    }
    r.take(32, "ClientHello truncated in random")?;
    let session_id = r.vec8("ClientHello truncated in legacy_session_id")?;
    if session_id.len() > 32 {
        return Err("ClientHello session id longer than 32 bytes");
    }
    let suites = r.vec16("ClientHello truncated in cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err("ClientHello cipher_suites length is not a positive even number");
    }
    if r.vec8("ClientHello truncated in compression_methods")?
        .is_empty()
    {
        return Err("ClientHello has no compression method");
    }
    if r.0.is_empty() {
        return Ok(None); // no extensions at all: no SNI
    }
    let extensions = r.vec16("ClientHello truncated in extensions")?;
    if !r.0.is_empty() {
        return Err("ClientHello has bytes after its extensions");
    }

    let mut r = Reader(extensions);
    let mut sni = None;
    let mut seen_server_name = false;
    while !r.0.is_empty() {
        let kind = u16::from_be_bytes(r.array("extension truncated in its type")?);
        let data = r.vec16("extension longer than the extensions block")?;
        if kind == EXT_SERVER_NAME {
            if seen_server_name {
                return Err("ClientHello has two server_name extensions");
            }
            seen_server_name = true;
            sni = server_name(data)?;
        }
    }
    Ok(sni)
}

/// The `host_name` entry of a server_name extension.
fn server_name(data: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader(data);
    let list = r.vec16("server_name list longer than its extension")?;
    if !r.0.is_empty() {
        return Err("server_name extension has bytes after its list");
    }
    let mut r = Reader(list);
    let mut host = None;
    while !r.0.is_empty() {
        let [name_type] = r.array("server_name entry truncated in its type")?;
        let name = r.vec16("server_name entry longer than its list")?;
        if name_type != NAME_TYPE_HOST {
            continue;
        }
        if host.is_some() {
            return Err("server_name has two host names");
        }
        host = Some(normalize_name(name)?.ok_or("empty server_name host name")?);
    }
    Ok(host)
}

/// Bounds-checked reads off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, err: &'static str) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err(err);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, err: &'static str) -> Result<[u8; N], &'static str> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, err)?);
        Ok(out)
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, err: &'static str) -> Result<&'a [u8], &'static str> {
        let [len] = self.array(err)?;
        self.take(usize::from(len), err)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, err: &'static str) -> Result<&'a [u8], &'static str> {
        let len = u16::from_be_bytes(self.array(err)?);
        self.take(usize::from(len), err)
    }
}

#[cfg(test)]
mod tests;
