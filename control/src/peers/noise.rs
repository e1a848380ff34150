//! The Noise handshake and the encrypted transport built from it.
//!
//! # Why `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`
//!
//! Baton's configuration gives the cluster one shared secret (the PSK) and no
//! per-node key pairs, so there is no static public key to pin and the XX
//! pattern's static-key exchange would authenticate nothing the PSK does not
//! already. NNpsk0 mixes the PSK in before the first message:
//!
//! - the dialer's first message is already encrypted and authenticated under
//!   the PSK, so a node with the wrong key is rejected on that message,
//!   before the accepting node sends anything back;
//! - the handshake is one round trip (two messages), and the fresh ephemeral
//!   Diffie-Hellman gives every connection its own keys and forward secrecy;
//! - the prologue binds the protocol name and version, so two different
//!   versions of the channel fail the handshake instead of misreading frames.
//!
//! What it does not give: any holder of the PSK can claim any node name.
//! Nodes are one trust domain. If per-node identities are ever configured,
//! `Noise_XXpsk3` with pinned static keys is the upgrade path.
//!
//! A recorded first message can be replayed by an eavesdropper. The accepting
//! side therefore counts a connection as established only once the dialer's
//! first transport message decrypts, which needs the dialer's ephemeral key
//! that a replayer does not have.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use snow::{HandshakeState, StatelessTransportState};

use super::wire::{self, Message, NOISE_MAX_MESSAGE};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";
/// Mixed into the handshake hash: a peer speaking another version fails.
const PROLOGUE: &[u8] = b"baton control channel v1";

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// Decryption failed: the other side has another PSK, or sent garbage.
    #[error("noise: {0} (wrong pre-shared key or not a Baton peer)")]
    Noise(#[from] snow::Error),
    /// The other side authenticated but is not who the configuration expects.
    #[error("{0}")]
    Refused(String),
}

/// Who is who, sent encrypted in the first two handshake messages so that
/// a misconfigured address or name is caught at once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hello {
    from: String,
    to: String,
}

impl Hello {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.from.len() + self.to.len());
        for name in [&self.from, &self.to] {
            // Cannot truncate: names are checked to be at most 255 bytes when
            // the channel starts (and a received one came with a u8 length).
            #[allow(clippy::cast_possible_truncation)]
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
        out
    }

    fn decode(mut bytes: &[u8]) -> Option<Hello> {
        let mut name = || {
            let (&len, rest) = bytes.split_first()?;
            let (s, rest) = rest.split_at_checked(usize::from(len))?;
            bytes = rest;
            String::from_utf8(s.to_vec()).ok()
        };
        let hello = Hello {
            from: name()?,
            to: name()?,
        };
        bytes.is_empty().then_some(hello)
    }
}

pub(super) fn builder(psk: &[u8; 32]) -> Result<snow::Builder<'_>, snow::Error> {
    let params = NOISE_PARAMS.parse().expect("valid Noise parameters");
    snow::Builder::new(params).prologue(PROLOGUE)?.psk(0, psk)
}

/// Encrypts transport messages. One per connection direction; owns the
/// send nonce.
pub struct Sealer {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl Sealer {
    /// Appends `msg`, encrypted and length-prefixed, to `out`.
    pub fn seal_into(&mut self, msg: Message<'_>, out: &mut Vec<u8>) -> Result<(), snow::Error> {
        msg.encode(&mut self.plaintext);
        self.ciphertext.resize(NOISE_MAX_MESSAGE, 0);
        let n = self
            .transport
            .write_message(self.nonce, &self.plaintext, &mut self.ciphertext)?;
        self.nonce += 1;
        wire::put_prefixed(out, &self.ciphertext[..n]);
        Ok(())
    }
}

/// Decrypts transport messages; owns the receive nonce.
pub struct Opener {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    plaintext: Vec<u8>,
}

impl Opener {
    /// Decrypts one ciphertext (without its length prefix).
    pub fn open(&mut self, ciphertext: &[u8]) -> Result<&[u8], snow::Error> {
        self.plaintext.resize(NOISE_MAX_MESSAGE, 0);
        let n = self
            .transport
            .read_message(self.nonce, ciphertext, &mut self.plaintext)?;
        self.nonce += 1;
        Ok(&self.plaintext[..n])
    }
}

fn split(hs: HandshakeState) -> Result<(Sealer, Opener), snow::Error> {
    let transport = Arc::new(hs.into_stateless_transport_mode()?);
    Ok((
        Sealer {
            transport: Arc::clone(&transport),
            nonce: 0,
            plaintext: Vec::new(),
            ciphertext: Vec::new(),
        },
        Opener {
            transport,
            nonce: 0,
            plaintext: Vec::new(),
        },
    ))
}

/// The dialing side: proves the PSK, checks it reached `peer`, and sends the
/// first heartbeat that confirms the session to the accepting side.
pub fn dial(
    stream: &mut TcpStream,
    psk: &[u8; 32],
    me: &str,
    peer: &str,
    deadline: Instant,
) -> Result<(Sealer, Opener), HandshakeError> {
    let mut hs = builder(psk)?.build_initiator()?;
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let hello = Hello {
        from: me.to_owned(),
        to: peer.to_owned(),
    };
    let n = hs.write_message(&hello.encode(), &mut buf)?;
    write_prefixed(stream, &buf[..n], deadline)?;

    let reply = read_prefixed(stream, deadline)?;
    let n = hs.read_message(&reply, &mut buf)?;
    match Hello::decode(&buf[..n]) {
        Some(h) if h.from == peer && h.to == me => {}
        Some(h) => {
            return Err(HandshakeError::Refused(format!(
                "reached node {:?} (which expected {:?}) instead of {peer:?}",
                h.from, h.to
            )))
        }
        None => return Err(HandshakeError::Refused("malformed hello".into())),
    }

    let (mut sealer, opener) = split(hs)?;
    let mut out = Vec::new();
    sealer.seal_into(Message::Heartbeat, &mut out)?;
    write_prefixed_raw(stream, &out, deadline)?;
    Ok((sealer, opener))
}

/// What the accepting side learned about a dialer that failed the handshake.
#[derive(Debug)]
pub struct AcceptFailure {
    /// The node name the dialer proved it holds the PSK for, if it got that far.
    pub claimed: Option<String>,
    pub error: HandshakeError,
}

/// The accepting side. `expects(name)` says whether node `name` is one that
/// dials this node. Returns the peer's name once its first transport
/// message has decrypted.
pub fn accept(
    stream: &mut TcpStream,
    psk: &[u8; 32],
    me: &str,
    expects: impl Fn(&str) -> bool,
    deadline: Instant,
) -> Result<(String, Sealer, Opener), AcceptFailure> {
    let mut claimed = None;
    accept_inner(stream, psk, me, expects, deadline, &mut claimed)
        .map_err(|error| AcceptFailure { claimed, error })
}

fn accept_inner(
    stream: &mut TcpStream,
    psk: &[u8; 32],
    me: &str,
    expects: impl Fn(&str) -> bool,
    deadline: Instant,
    claimed: &mut Option<String>,
) -> Result<(String, Sealer, Opener), HandshakeError> {
    let mut hs = builder(psk)?.build_responder()?;
    let mut buf = vec![0u8; NOISE_MAX_MESSAGE];
    let first = read_prefixed(stream, deadline)?;
    let n = hs.read_message(&first, &mut buf)?;
    let hello = Hello::decode(&buf[..n])
        .ok_or_else(|| HandshakeError::Refused("malformed hello".into()))?;
    *claimed = Some(hello.from.clone());
    if hello.to != me {
        return Err(HandshakeError::Refused(format!(
            "node {:?} meant to reach {:?}, this is {me:?}",
            hello.from, hello.to
        )));
    }
    if !expects(&hello.from) {
        return Err(HandshakeError::Refused(format!(
            "node {:?} is not a peer that dials {me:?}",
            hello.from
        )));
    }

    let reply = Hello {
        from: me.to_owned(),
        to: hello.from.clone(),
    };
    let n = hs.write_message(&reply.encode(), &mut buf)?;
    write_prefixed(stream, &buf[..n], deadline)?;

    let (sealer, mut opener) = split(hs)?;
    let confirm = read_prefixed(stream, deadline)?;
    let plaintext = opener.open(&confirm)?;
    if Message::parse(plaintext) != Ok(Message::Heartbeat) {
        return Err(HandshakeError::Refused(
            "first transport message is not a heartbeat".into(),
        ));
    }
    Ok((hello.from, sealer, opener))
}

fn write_prefixed(stream: &mut TcpStream, msg: &[u8], deadline: Instant) -> io::Result<()> {
    let mut out = Vec::with_capacity(msg.len() + wire::LEN_PREFIX);
    wire::put_prefixed(&mut out, msg);
    write_prefixed_raw(stream, &out, deadline)
}

fn write_prefixed_raw(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(bytes)
}

/// Reads one length-prefixed message, all of it before `deadline`: a peer
/// that trickles bytes cannot hold the handshake open longer than that.
fn read_prefixed(stream: &mut TcpStream, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut len = [0u8; wire::LEN_PREFIX];
    read_exact_by(stream, &mut len, deadline)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_exact_by(stream, &mut msg, deadline)?;
    Ok(msg)
}

fn read_exact_by(stream: &mut TcpStream, mut buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn remaining(deadline: Instant) -> io::Result<std::time::Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "handshake took too long",
        ))
    } else {
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_rejects_trailing_bytes() {
        let h = Hello {
            from: "node-a".into(),
            to: "node-b".into(),
        };
        let bytes = h.encode();
        assert_eq!(Hello::decode(&bytes), Some(h));
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Hello::decode(&long), None);
        assert_eq!(Hello::decode(&bytes[..3]), None);
        assert_eq!(Hello::decode(&[]), None);
    }

    #[test]
    fn in_memory_handshake_and_transport() {
        let psk = [7u8; 32];
        let mut i = builder(&psk).unwrap().build_initiator().unwrap();
        let mut r = builder(&psk).unwrap().build_responder().unwrap();
        let mut m = vec![0u8; NOISE_MAX_MESSAGE];
        let mut p = vec![0u8; NOISE_MAX_MESSAGE];
        let n = i.write_message(b"hi", &mut m).unwrap();
        assert_eq!(r.read_message(&m[..n], &mut p).unwrap(), 2);
        let n = r.write_message(b"", &mut m).unwrap();
        i.read_message(&m[..n], &mut p).unwrap();
        let (mut si, _) = split(i).unwrap();
        let (_, mut or) = split(r).unwrap();
        let mut out = Vec::new();
        sealer_roundtrip(&mut si, &mut or, &mut out, b"payload");
        sealer_roundtrip(&mut si, &mut or, &mut out, b"second");
    }

    fn sealer_roundtrip(s: &mut Sealer, o: &mut Opener, out: &mut Vec<u8>, data: &[u8]) {
        out.clear();
        s.seal_into(Message::Chunk { last: true, data }, out)
            .unwrap();
        let plain = o.open(&out[wire::LEN_PREFIX..]).unwrap();
        assert_eq!(
            Message::parse(plain),
            Ok(Message::Chunk { last: true, data })
        );
    }

    #[test]
    fn wrong_psk_fails_on_the_first_message() {
        let mut i = builder(&[1u8; 32]).unwrap().build_initiator().unwrap();
        let mut r = builder(&[2u8; 32]).unwrap().build_responder().unwrap();
        let mut m = vec![0u8; NOISE_MAX_MESSAGE];
        let mut p = vec![0u8; NOISE_MAX_MESSAGE];
        let n = i.write_message(b"hello", &mut m).unwrap();
        assert!(r.read_message(&m[..n], &mut p).is_err());
    }
}
