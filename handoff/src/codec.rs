//! The control channel's wire format: versioned, length-delimited frames.
//!
//! ```text
//!  0      2         3      4                8
//!  +------+---------+------+----------------+----------------------+
//!  | "BT" | version | type | body length    | body (length bytes)  |
//!  |      |   = 2   |      | u32 big-endian |                      |
//!  +------+---------+------+----------------+----------------------+
//! ```
//!
//! Every integer is big-endian. The magic catches a peer that is not Baton
//! (or a stream that lost its framing) at the first byte; the version lets a
//! future format be refused cleanly instead of misread. Bodies are at most
//! [`MAX_BODY`] bytes, so a peer cannot make us buffer without bound, and a
//! body must be consumed exactly: trailing bytes are an error, never
//! silently ignored. Body layouts are in `docs/handoff.md`.
//!
//! Decoding never panics on any input. After an error the stream cannot be
//! resynchronised (the length field can no longer be trusted): the
//! [`Decoder`] keeps returning the error, and the channel should be closed
//! and re-established.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::msg::{
    limits, FlowKey, FlowsHeld, HandoffAccept, HandoffCancel, HandoffClosed, HandoffReject,
    HandoffRequest, HeldFlow, Load, Message, RejectReason, Release, ReleaseRefused, Released,
};
use crate::seq::{SeqNum, TsVal};

/// First two bytes of every frame.
pub const MAGIC: [u8; 2] = *b"BT";
/// The only format version this build speaks. Version 2 split the
/// target's and the origin's ends of a handoff (HandoffClosed,
/// HandoffCancel); version 3 added moves (Release, Released,
/// ReleaseRefused); version 4 added Load's flags (draining). A peer of
/// another version is refused at its first frame.
pub const VERSION: u8 = 4;
/// Magic, version, type and body length.
pub const HEADER_LEN: usize = 8;
/// The largest body accepted: a full request (64 KiB of held bytes plus a
/// little) with room to spare.
pub const MAX_BODY: u32 = 128 * 1024;

/// Message type codes.
mod kind {
    pub const HANDOFF_REQUEST: u8 = 1;
    pub const HANDOFF_ACCEPT: u8 = 2;
    pub const HANDOFF_REJECT: u8 = 3;
    pub const HANDOFF_CLOSED: u8 = 4;
    pub const LOAD: u8 = 5;
    pub const HANDOFF_CANCEL: u8 = 6;
    pub const FLOWS_HELD: u8 = 7;
    pub const RELEASE: u8 = 8;
    pub const RELEASED: u8 = 9;
    pub const RELEASE_REFUSED: u8 = 10;
}

/// Bits of the HandoffRequest flags byte.
mod flag {
    pub const CLIENT_TSVAL: u8 = 0x01;
    pub const ORIGIN_TSVAL: u8 = 0x02;
    pub const KNOWN: u8 = CLIENT_TSVAL | ORIGIN_TSVAL;
}

/// Bits of the Load flags byte.
mod load_flag {
    /// The node is draining: it takes no new handoffs.
    pub const DRAINING: u8 = 0x01;
    pub const KNOWN: u8 = DRAINING;
}

/// Why a byte stream is not a valid sequence of frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad magic {found:02x?} (expected \"BT\"): not a Baton peer, or framing lost")]
    BadMagic { found: [u8; 2] },
    #[error("unsupported version {0} (this build speaks version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("body length {len} exceeds the limit of {MAX_BODY} bytes")]
    Oversize { len: u32 },
    #[error("{message}: body ends inside field `{field}`")]
    Truncated {
        message: &'static str,
        field: &'static str,
    },
    #[error("{message}: {extra} trailing bytes after the last field")]
    TrailingBytes { message: &'static str, extra: usize },
    #[error("{message}: `{field}` has {len} bytes, more than its limit of {max}")]
    TooLong {
        message: &'static str,
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{message}: unknown flag bits {flags:#04x}")]
    UnknownFlags { message: &'static str, flags: u8 },
}

/// Why a message cannot be encoded: a field exceeds the limit the peer's
/// decoder enforces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` has {len} bytes, more than its limit of {max}")]
pub struct EncodeError {
    pub field: &'static str,
    pub len: usize,
    pub max: usize,
}

/// Encodes one message as a complete frame.
///
/// # Panics
///
/// If a field exceeds its limit (see [`try_encode`]); the peer would refuse
/// the frame, so sending it is a bug. Use [`try_encode`] when the fields
/// come from outside.
pub fn encode(msg: &Message) -> Vec<u8> {
    match try_encode(msg) {
        Ok(frame) => frame,
        Err(err) => panic!("cannot encode {}: {err}", message_name(msg)),
    }
}

/// Encodes one message as a complete frame, or says which field is too long.
pub fn try_encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    check_limits(msg)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body_len_hint(msg));
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(type_code(msg));
    out.extend_from_slice(&[0; 4]); // body length, patched below
    match msg {
        Message::HandoffRequest(m) => encode_request(m, &mut out),
        Message::HandoffAccept(m) => {
            put_u64(&mut out, m.id);
            put_u32(&mut out, m.isn_target.raw());
            put_addr(&mut out, m.client);
        }
        Message::HandoffReject(m) => {
            put_u64(&mut out, m.id);
            put_addr(&mut out, m.client);
            out.push(m.reason.code());
        }
        Message::HandoffClosed(m) => {
            put_u64(&mut out, m.id);
            put_addr(&mut out, m.client);
        }
        Message::FlowsHeld(m) => encode_flows_held(m, &mut out),
        Message::HandoffCancel(m) => {
            put_u64(&mut out, m.id);
            put_addr(&mut out, m.client);
        }
        Message::Load(m) => {
            put_u32(&mut out, m.active_connections);
            put_u32(&mut out, m.pending_handoffs);
            put_u32(&mut out, m.handed_in);
            out.push(if m.draining { load_flag::DRAINING } else { 0 });
        }
        Message::Release(m) => {
            put_u64(&mut out, m.id);
            put_addr(&mut out, m.client);
            put_u32(&mut out, m.at.raw());
            put_u32(&mut out, m.client_ack.raw());
        }
        Message::Released(m) => {
            put_u64(&mut out, m.id);
            put_addr(&mut out, m.client);
            put_u32(&mut out, m.server_next.raw());
            // The TSval is present only when flagged, as in HandoffRequest,
            // so that every message has exactly one encoding.
            out.push(u8::from(m.tsval.is_some()));
            if let Some(ts) = m.tsval {
                put_u32(&mut out, ts.raw());
            }
        }
        Message::ReleaseRefused(m) => {
            put_u64(&mut out, m.id);
            put_addr(&mut out, m.client);
        }
    }
    let body_len = u32::try_from(out.len() - HEADER_LEN).expect("limits keep bodies small");
    out[4..HEADER_LEN].copy_from_slice(&body_len.to_be_bytes());
    Ok(out)
}

fn check_limits(msg: &Message) -> Result<(), EncodeError> {
    if let Message::FlowsHeld(m) = msg {
        if m.flows.len() > limits::FLOWS_HELD {
            return Err(EncodeError {
                field: "flows",
                len: m.flows.len(),
                max: limits::FLOWS_HELD,
            });
        }
    }
    let Message::HandoffRequest(m) = msg else {
        return Ok(());
    };
    let fields: [(&'static str, usize, usize); 3] = [
        (
            "client_syn_options",
            m.client_syn_options.len(),
            limits::TCP_OPTIONS,
        ),
        (
            "origin_synack_options",
            m.origin_synack_options.len(),
            limits::TCP_OPTIONS,
        ),
        ("held", m.held.len(), limits::HELD_BYTES),
    ];
    for (field, len, max) in fields {
        if len > max {
            return Err(EncodeError { field, len, max });
        }
    }
    Ok(())
}

// Cannot truncate: try_encode, the only caller, checked the limits first.
#[allow(clippy::cast_possible_truncation)]
fn encode_request(m: &HandoffRequest, out: &mut Vec<u8>) {
    put_u64(out, m.id);
    put_addr(out, m.key.client);
    put_addr(out, m.key.server);
    out.extend_from_slice(&m.client_mac);
    put_u32(out, m.isn_client.raw());
    put_u32(out, m.isn_origin.raw());
    put_u16(out, m.client_window);
    let mut flags = 0;
    if m.client_tsval.is_some() {
        flags |= flag::CLIENT_TSVAL;
    }
    if m.origin_tsval.is_some() {
        flags |= flag::ORIGIN_TSVAL;
    }
    out.push(flags);
    if let Some(ts) = m.client_tsval {
        put_u32(out, ts.raw());
    }
    if let Some(ts) = m.origin_tsval {
        put_u32(out, ts.raw());
    }
    // Limits were checked: option lists fit a u8 length, held bytes a u32.
    out.push(m.client_syn_options.len() as u8);
    out.extend_from_slice(&m.client_syn_options);
    out.push(m.origin_synack_options.len() as u8);
    out.extend_from_slice(&m.origin_synack_options);
    put_u32(out, m.held.len() as u32);
    out.extend_from_slice(&m.held);
}

/// Fixed part of a HandoffRequest body: id, two addresses, MAC, two ISNs,
/// window, flags.
const REQUEST_FIXED_LEN: usize = 8 + 6 + 6 + 6 + 4 + 4 + 2 + 1;

fn body_len_hint(msg: &Message) -> usize {
    match msg {
        Message::HandoffRequest(m) => {
            REQUEST_FIXED_LEN
                + 8
                + 1
                + m.client_syn_options.len()
                + 1
                + m.origin_synack_options.len()
                + 4
                + m.held.len()
        }
        Message::HandoffAccept(_) => 18,
        Message::HandoffReject(_) => 15,
        Message::HandoffClosed(_) => 14,
        Message::FlowsHeld(m) => 3 + m.flows.len() * HELD_FLOW_LEN,
        Message::HandoffCancel(_) => 14,
        Message::Load(_) => 13,
        Message::Release(_) => 22,
        Message::Released(m) => 19 + if m.tsval.is_some() { 4 } else { 0 },
        Message::ReleaseRefused(_) => 14,
    }
}

fn type_code(msg: &Message) -> u8 {
    match msg {
        Message::HandoffRequest(_) => kind::HANDOFF_REQUEST,
        Message::HandoffAccept(_) => kind::HANDOFF_ACCEPT,
        Message::HandoffReject(_) => kind::HANDOFF_REJECT,
        Message::HandoffClosed(_) => kind::HANDOFF_CLOSED,
        Message::HandoffCancel(_) => kind::HANDOFF_CANCEL,
        Message::FlowsHeld(_) => kind::FLOWS_HELD,
        Message::Load(_) => kind::LOAD,
        Message::Release(_) => kind::RELEASE,
        Message::Released(_) => kind::RELEASED,
        Message::ReleaseRefused(_) => kind::RELEASE_REFUSED,
    }
}

/// The message's name, as used in errors and logs.
pub fn message_name(msg: &Message) -> &'static str {
    name_of(type_code(msg)).unwrap_or("message")
}

fn name_of(code: u8) -> Option<&'static str> {
    Some(match code {
        kind::HANDOFF_REQUEST => "HandoffRequest",
        kind::HANDOFF_ACCEPT => "HandoffAccept",
        kind::HANDOFF_REJECT => "HandoffReject",
        kind::HANDOFF_CLOSED => "HandoffClosed",
        kind::HANDOFF_CANCEL => "HandoffCancel",
        kind::FLOWS_HELD => "FlowsHeld",
        kind::LOAD => "Load",
        kind::RELEASE => "Release",
        kind::RELEASED => "Released",
        kind::RELEASE_REFUSED => "ReleaseRefused",
        _ => return None,
    })
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_addr(out: &mut Vec<u8>, addr: SocketAddrV4) {
    out.extend_from_slice(&addr.ip().octets());
    put_u16(out, addr.port());
}

/// A streaming decoder: push bytes as they arrive, take messages out.
///
/// ```
/// use baton_handoff::codec::{encode, Decoder};
/// use baton_handoff::msg::{HandoffClosed, Message};
///
/// let closed = Message::HandoffClosed(HandoffClosed {
///     id: 7,
///     client: "198.18.0.100:40000".parse().unwrap(),
/// });
/// let frame = encode(&closed);
/// let mut decoder = Decoder::new();
/// decoder.push(&frame[..3]);
/// assert_eq!(decoder.next(), Ok(None)); // a partial frame waits
/// decoder.push(&frame[3..]);
/// assert_eq!(decoder.next(), Ok(Some(closed)));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
    /// The first error; the stream is unusable after it.
    failed: Option<DecodeError>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        // Reclaim consumed space before growing.
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes pushed but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or
    /// the error that makes the stream unusable (returned again on every
    /// later call).
    ///
    /// The header is checked as soon as each of its bytes arrives, so that
    /// garbage is refused at once rather than after a timeout.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.decode_one() {
            Ok(msg) => Ok(msg),
            Err(err) => {
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    fn decode_one(&mut self) -> Result<Option<Message>, DecodeError> {
        let pending = &self.buf[self.start..];
        let Some((code, body_len)) = check_header(pending)? else {
            return Ok(None);
        };
        let Some(body) = pending.get(HEADER_LEN..HEADER_LEN + body_len) else {
            return Ok(None);
        };
        let msg = decode_body(code, body)?;
        self.start += HEADER_LEN + body_len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(msg))
    }
}

/// Checks whatever part of the header is present. Returns the type code and
/// body length once the whole header is there.
fn check_header(bytes: &[u8]) -> Result<Option<(u8, usize)>, DecodeError> {
    let present = bytes.len().min(MAGIC.len());
    if bytes[..present] != MAGIC[..present] {
        let mut found = [0; 2];
        found[..present].copy_from_slice(&bytes[..present]);
        return Err(DecodeError::BadMagic { found });
    }
    if let Some(&version) = bytes.get(2) {
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
    }
    let Some(&code) = bytes.get(3) else {
        return Ok(None);
    };
    if name_of(code).is_none() {
        return Err(DecodeError::UnknownType(code));
    }
    let Some(len_bytes) = bytes.get(4..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    if len > MAX_BODY {
        return Err(DecodeError::Oversize { len });
    }
    Ok(Some((code, len as usize)))
}

/// Decodes one complete body of the given (known) type.
fn decode_body(code: u8, body: &[u8]) -> Result<Message, DecodeError> {
    let message = name_of(code).unwrap_or("message");
    let mut r = Reader { body, message };
    let msg = match code {
        kind::HANDOFF_REQUEST => Message::HandoffRequest(decode_request(&mut r)?),
        kind::HANDOFF_ACCEPT => Message::HandoffAccept(HandoffAccept {
            id: r.u64("id")?,
            isn_target: SeqNum::new(r.u32("isn_target")?),
            client: r.addr("client")?,
        }),
        kind::HANDOFF_REJECT => Message::HandoffReject(HandoffReject {
            id: r.u64("id")?,
            client: r.addr("client")?,
            reason: RejectReason::from_code(r.u8("reason")?),
        }),
        kind::HANDOFF_CLOSED => Message::HandoffClosed(HandoffClosed {
            id: r.u64("id")?,
            client: r.addr("client")?,
        }),
        kind::FLOWS_HELD => Message::FlowsHeld(decode_flows_held(&mut r)?),
        kind::HANDOFF_CANCEL => Message::HandoffCancel(HandoffCancel {
            id: r.u64("id")?,
            client: r.addr("client")?,
        }),
        kind::LOAD => {
            let active_connections = r.u32("active_connections")?;
            let pending_handoffs = r.u32("pending_handoffs")?;
            let handed_in = r.u32("handed_in")?;
            let flags = r.u8("flags")?;
            if flags & !load_flag::KNOWN != 0 {
                return Err(DecodeError::UnknownFlags { message, flags });
            }
            Message::Load(Load {
                active_connections,
                pending_handoffs,
                handed_in,
                draining: flags & load_flag::DRAINING != 0,
            })
        }
        kind::RELEASE => Message::Release(Release {
            id: r.u64("id")?,
            client: r.addr("client")?,
            at: SeqNum::new(r.u32("at")?),
            client_ack: SeqNum::new(r.u32("client_ack")?),
        }),
        kind::RELEASED => {
            let id = r.u64("id")?;
            let client = r.addr("client")?;
            let server_next = SeqNum::new(r.u32("server_next")?);
            let has_tsval = match r.u8("flags")? {
                0 => false,
                1 => true,
                flags => return Err(DecodeError::UnknownFlags { message, flags }),
            };
            let tsval = if has_tsval {
                Some(TsVal::new(r.u32("tsval")?))
            } else {
                None
            };
            Message::Released(Released {
                id,
                client,
                server_next,
                tsval,
            })
        }
        kind::RELEASE_REFUSED => Message::ReleaseRefused(ReleaseRefused {
            id: r.u64("id")?,
            client: r.addr("client")?,
        }),
        other => return Err(DecodeError::UnknownType(other)),
    };
    if !r.body.is_empty() {
        return Err(DecodeError::TrailingBytes {
            message,
            extra: r.body.len(),
        });
    }
    Ok(msg)
}

/// A held connection's bytes: id, client, server, client MAC.
const HELD_FLOW_LEN: usize = 8 + 6 + 6 + 6;

/// Bits of the FlowsHeld flags byte.
const HELD_LAST: u8 = 0x01;

fn encode_flows_held(m: &FlowsHeld, out: &mut Vec<u8>) {
    out.push(if m.last { HELD_LAST } else { 0 });
    // Cannot truncate: try_encode checked the count against FLOWS_HELD.
    #[allow(clippy::cast_possible_truncation)]
    put_u16(out, m.flows.len() as u16);
    for f in &m.flows {
        put_u64(out, f.id);
        put_addr(out, f.key.client);
        put_addr(out, f.key.server);
        out.extend_from_slice(&f.client_mac);
    }
}

fn decode_flows_held(r: &mut Reader<'_>) -> Result<FlowsHeld, DecodeError> {
    let flags = r.u8("flags")?;
    if flags & !HELD_LAST != 0 {
        return Err(DecodeError::UnknownFlags {
            message: r.message,
            flags,
        });
    }
    let count = usize::from(r.u16("count")?);
    if count > limits::FLOWS_HELD {
        return Err(DecodeError::TooLong {
            message: r.message,
            field: "flows",
            len: count,
            max: limits::FLOWS_HELD,
        });
    }
    let mut flows = Vec::with_capacity(count);
    for _ in 0..count {
        flows.push(HeldFlow {
            id: r.u64("id")?,
            key: FlowKey {
                client: r.addr("client")?,
                server: r.addr("server")?,
            },
            client_mac: r.array::<6>("client_mac")?,
        });
    }
    Ok(FlowsHeld {
        flows,
        last: flags & HELD_LAST != 0,
    })
}

fn decode_request(r: &mut Reader<'_>) -> Result<HandoffRequest, DecodeError> {
    let id = r.u64("id")?;
    let client = r.addr("client")?;
    let server = r.addr("server")?;
    let client_mac = r.array::<6>("client_mac")?;
    let isn_client = SeqNum::new(r.u32("isn_client")?);
    let isn_origin = SeqNum::new(r.u32("isn_origin")?);
    let client_window = r.u16("client_window")?;
    let flags = r.u8("flags")?;
    if flags & !flag::KNOWN != 0 {
        return Err(DecodeError::UnknownFlags {
            message: r.message,
            flags,
        });
    }
    let client_tsval = match flags & flag::CLIENT_TSVAL {
        0 => None,
        _ => Some(TsVal::new(r.u32("client_tsval")?)),
    };
    let origin_tsval = match flags & flag::ORIGIN_TSVAL {
        0 => None,
        _ => Some(TsVal::new(r.u32("origin_tsval")?)),
    };
    let len = usize::from(r.u8("client_syn_options")?);
    let client_syn_options = r.list("client_syn_options", len, limits::TCP_OPTIONS)?;
    let len = usize::from(r.u8("origin_synack_options")?);
    let origin_synack_options = r.list("origin_synack_options", len, limits::TCP_OPTIONS)?;
    let len = r.u32("held")? as usize;
    let held = r.list("held", len, limits::HELD_BYTES)?;
    Ok(HandoffRequest {
        id,
        key: FlowKey { client, server },
        client_mac,
        isn_client,
        isn_origin,
        client_syn_options,
        origin_synack_options,
        client_window,
        client_tsval,
        origin_tsval,
        held,
    })
}

/// Reads fields off the front of a body; every read is bounds-checked and
/// names the field it was reading when the body ran out.
struct Reader<'a> {
    body: &'a [u8],
    message: &'static str,
}

impl Reader<'_> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&[u8], DecodeError> {
        if self.body.len() < n {
            return Err(DecodeError::Truncated {
                message: self.message,
                field,
            });
        }
        let (head, rest) = self.body.split_at(n);
        self.body = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    fn addr(&mut self, field: &'static str) -> Result<SocketAddrV4, DecodeError> {
        let ip = Ipv4Addr::from(self.array::<4>(field)?);
        Ok(SocketAddrV4::new(ip, self.u16(field)?))
    }

    /// A byte list whose length was just read; the limit is checked before
    /// the bytes are looked at, so an oversized list is reported as such
    /// even when the body is also truncated.
    fn list(
        &mut self,
        field: &'static str,
        len: usize,
        max: usize,
    ) -> Result<Vec<u8>, DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong {
                message: self.message,
                field,
                len,
                max,
            });
        }
        Ok(self.take(field, len)?.to_vec())
    }
}

#[cfg(test)]
mod tests;
