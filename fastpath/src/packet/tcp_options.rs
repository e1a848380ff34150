//! TCP options (RFC 9293 §3.2, RFC 7323, RFC 2018): parsing, emitting, and
//! locating the fields a translation rewrites in place.
//!
//! Options are never re-serialised on the fast path: rewrites patch the
//! timestamp and SACK fields where they lie, so unknown options, padding and
//! the sender's layout survive byte for byte.

use super::error::{Error, Result};
use super::seq::{SeqNum, TsVal};

/// Option kinds.
pub mod kind {
    /// End of option list.
    pub const END_OF_LIST: u8 = 0;
    /// No-operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
}

/// Wire length of the timestamps option.
pub const TIMESTAMPS_LEN: usize = 10;
/// At most four SACK blocks fit in 40 bytes of options.
pub const MAX_SACK_BLOCKS: usize = 4;

/// One SACK block: the received range `[left, right)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlock {
    /// Left edge: first sequence number of the block.
    pub left: SeqNum,
    /// Right edge: sequence number just past the block.
    pub right: SeqNum,
}

/// The one to four blocks of a SACK option, held inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks {
    blocks: [SackBlock; MAX_SACK_BLOCKS],
    len: u8,
}

impl SackBlocks {
    /// The blocks of `blocks`, or `None` if there are none or more than four.
    pub fn from_slice(blocks: &[SackBlock]) -> Option<Self> {
        if blocks.is_empty() || blocks.len() > MAX_SACK_BLOCKS {
            return None;
        }
        // Cannot truncate: at most MAX_SACK_BLOCKS (checked above).
        #[allow(clippy::cast_possible_truncation)]
        let len = blocks.len() as u8;
        let mut s = SackBlocks {
            blocks: [SackBlock::default(); MAX_SACK_BLOCKS],
            len,
        };
        s.blocks[..blocks.len()].copy_from_slice(blocks);
        Some(s)
    }

    /// The blocks.
    pub fn as_slice(&self) -> &[SackBlock] {
        &self.blocks[..usize::from(self.len).min(MAX_SACK_BLOCKS)]
    }
}

/// One parsed option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list; what follows is padding.
    EndOfList,
    /// No-operation.
    NoOperation,
    /// Maximum segment size.
    MaxSegmentSize(u16),
    /// Window scale shift count.
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks.
    Sack(SackBlocks),
    /// Timestamps: the sender's value and the echo of the peer's.
    Timestamps {
        /// TS Value.
        tsval: TsVal,
        /// TS Echo Reply.
        tsecr: TsVal,
    },
    /// Any other option, kept as it is.
    Unknown {
        /// Kind.
        kind: u8,
        /// The bytes after kind and length.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Appends the option's wire form to `out`. An unknown option whose data
    /// exceeds 253 bytes is truncated to fit the length byte.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match *self {
            TcpOption::EndOfList => out.push(kind::END_OF_LIST),
            TcpOption::NoOperation => out.push(kind::NOP),
            TcpOption::MaxSegmentSize(mss) => {
                out.extend_from_slice(&[kind::MSS, 4]);
                out.extend_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => out.extend_from_slice(&[kind::WINDOW_SCALE, 3, shift]),
            TcpOption::SackPermitted => out.extend_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::Sack(blocks) => {
                let blocks = blocks.as_slice();
                // Cannot truncate: at most 4 blocks, 34 bytes.
                #[allow(clippy::cast_possible_truncation)]
                out.extend_from_slice(&[kind::SACK, (2 + 8 * blocks.len()) as u8]);
                for b in blocks {
                    out.extend_from_slice(&b.left.raw().to_be_bytes());
                    out.extend_from_slice(&b.right.raw().to_be_bytes());
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                // Cannot truncate: TIMESTAMPS_LEN is 10.
                #[allow(clippy::cast_possible_truncation)]
                out.extend_from_slice(&[kind::TIMESTAMPS, TIMESTAMPS_LEN as u8]);
                out.extend_from_slice(&tsval.raw().to_be_bytes());
                out.extend_from_slice(&tsecr.raw().to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                let data = &data[..data.len().min(253)];
                // Cannot truncate: at most 253 + 2 bytes.
                #[allow(clippy::cast_possible_truncation)]
                out.extend_from_slice(&[kind, (data.len() + 2) as u8]);
                out.extend_from_slice(data);
            }
        }
    }
}

/// Position of one option in the option bytes.
#[derive(Debug, Clone, Copy)]
struct RawOption {
    kind: u8,
    start: usize,
    len: usize,
}

/// The option starting at `pos`, validated, or `None` at the end of the
/// list. EOL ends the list; the bytes after it are padding.
fn next_raw(data: &[u8], pos: usize) -> Result<Option<RawOption>> {
    let Some(&kind) = data.get(pos) else {
        return Ok(None);
    };
    if kind == kind::END_OF_LIST || kind == kind::NOP {
        return Ok(Some(RawOption {
            kind,
            start: pos,
            len: 1,
        }));
    }
    let len = usize::from(*data.get(pos + 1).ok_or(Error::BadOption)?);
    if len < 2 || pos + len > data.len() {
        return Err(Error::BadOption);
    }
    let valid = match kind {
        kind::MSS => len == 4,
        kind::WINDOW_SCALE => len == 3,
        kind::SACK_PERMITTED => len == 2,
        kind::TIMESTAMPS => len == TIMESTAMPS_LEN,
        kind::SACK => len >= 10 && (len - 2) % 8 == 0 && (len - 2) / 8 <= MAX_SACK_BLOCKS,
        _ => true,
    };
    if !valid {
        return Err(Error::BadOption);
    }
    Ok(Some(RawOption {
        kind,
        start: pos,
        len,
    }))
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn decode<'a>(data: &'a [u8], raw: RawOption) -> TcpOption<'a> {
    let body = &data[raw.start..raw.start + raw.len];
    match raw.kind {
        kind::END_OF_LIST => TcpOption::EndOfList,
        kind::NOP => TcpOption::NoOperation,
        kind::MSS => TcpOption::MaxSegmentSize(u16::from_be_bytes([body[2], body[3]])),
        kind::WINDOW_SCALE => TcpOption::WindowScale(body[2]),
        kind::SACK_PERMITTED => TcpOption::SackPermitted,
        kind::TIMESTAMPS => TcpOption::Timestamps {
            tsval: TsVal::new(read_u32(body, 2)),
            tsecr: TsVal::new(read_u32(body, 6)),
        },
        kind::SACK => {
            let mut blocks = [SackBlock::default(); MAX_SACK_BLOCKS];
            let count = (raw.len - 2) / 8;
            for (i, block) in blocks.iter_mut().enumerate().take(count) {
                block.left = SeqNum::new(read_u32(body, 2 + 8 * i));
                block.right = SeqNum::new(read_u32(body, 6 + 8 * i));
            }
            // Cannot truncate: next_raw checked count <= MAX_SACK_BLOCKS.
            #[allow(clippy::cast_possible_truncation)]
            let len = count as u8;
            TcpOption::Sack(SackBlocks { blocks, len })
        }
        kind => TcpOption::Unknown {
            kind,
            data: &body[2..],
        },
    }
}

/// Iterator over the options of a TCP header.
///
/// Yields each option in order, then stops after an EOL or at the end of
/// the bytes. A malformed option yields one `Err` and ends the iteration.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over the option bytes `data`.
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptions {
            data,
            pos: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match next_raw(self.data, self.pos) {
            Ok(Some(raw)) => {
                self.pos = raw.start + raw.len;
                self.done = raw.kind == kind::END_OF_LIST;
                Some(Ok(decode(self.data, raw)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// What a SYN or SYN-ACK's options say about the connection: what a
/// replay and its translation need.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SynOptions {
    pub window_scale: Option<u8>,
    pub tsval: Option<TsVal>,
}

impl SynOptions {
    /// Reads the options up to the first malformed one.
    pub fn parse(options: &[u8]) -> SynOptions {
        let mut found = SynOptions::default();
        for option in TcpOptions::new(options).map_while(Result::ok) {
            match option {
                TcpOption::WindowScale(shift) => found.window_scale = Some(shift),
                TcpOption::Timestamps { tsval, .. } => found.tsval = Some(tsval),
                _ => {}
            }
        }
        found
    }
}

/// Where the fields a translation rewrites lie in the option bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteSites {
    /// Offset of the timestamps option (its kind byte).
    pub timestamps: Option<usize>,
    /// Offset of the SACK option (its kind byte) and its block count.
    pub sack: Option<(usize, usize)>,
}

impl RewriteSites {
    /// Validates every option and finds the timestamps and SACK options.
    /// A repeated option keeps its first position, as Linux reads it.
    #[inline(always)]
    pub fn locate(options: &[u8]) -> Result<Self> {
        // What Linux puts on every segment of a connection with timestamps,
        // and nothing else: NOP, NOP, TS. Recognised at once.
        if options.len() == 12 && options[..4] == [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10] {
            return Ok(RewriteSites {
                timestamps: Some(2),
                sack: None,
            });
        }
        Self::scan(options)
    }

    #[inline(never)]
    fn scan(options: &[u8]) -> Result<Self> {
        let mut sites = RewriteSites::default();
        let mut pos = 0;
        while let Some(raw) = next_raw(options, pos)? {
            match raw.kind {
                kind::END_OF_LIST => break,
                kind::TIMESTAMPS if sites.timestamps.is_none() => {
                    sites.timestamps = Some(raw.start);
                }
                kind::SACK if sites.sack.is_none() => {
                    sites.sack = Some((raw.start, (raw.len - 2) / 8));
                }
                _ => {}
            }
            pos = raw.start + raw.len;
        }
        Ok(sites)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linux_data_segment_layout_is_located_as_a_full_scan_finds_it() {
        let linux = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(RewriteSites::locate(&linux), RewriteSites::scan(&linux));
        assert_eq!(RewriteSites::locate(&linux).unwrap().timestamps, Some(2));
    }

    // Options of a Linux SYN: MSS 1460, SACK-perm, TS, NOP, wscale 7.
    const SYN_OPTIONS: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x8d, 0x1d, 0xc6, 0x53, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    #[test]
    fn parses_syn_options() {
        let opts: Vec<_> = TcpOptions::new(&SYN_OPTIONS).map(Result::unwrap).collect();
        assert_eq!(
            opts,
            vec![
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps {
                    tsval: TsVal::new(0x8d1d_c653),
                    tsecr: TsVal::new(0)
                },
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );
    }

    #[test]
    fn emit_round_trips() {
        let mut out = Vec::new();
        for o in TcpOptions::new(&SYN_OPTIONS) {
            o.unwrap().emit(&mut out);
        }
        assert_eq!(out, SYN_OPTIONS);
    }

    #[test]
    fn sack_and_unknown() {
        let data = [
            1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 5, 254, 4, 0xab,
            0xcd, 0, 9, 9,
        ];
        let opts: Vec<_> = TcpOptions::new(&data).map(Result::unwrap).collect();
        let TcpOption::Sack(blocks) = opts[2] else {
            panic!("expected SACK, got {:?}", opts[2]);
        };
        assert_eq!(
            blocks.as_slice(),
            &[
                SackBlock {
                    left: SeqNum::new(1),
                    right: SeqNum::new(2)
                },
                SackBlock {
                    left: SeqNum::new(0xffff_fff0),
                    right: SeqNum::new(5)
                },
            ]
        );
        assert_eq!(
            opts[3],
            TcpOption::Unknown {
                kind: 254,
                data: &[0xab, 0xcd]
            }
        );
        assert_eq!(opts[4], TcpOption::EndOfList);
        assert_eq!(opts.len(), 5, "bytes after EOL are padding");
        let sites = RewriteSites::locate(&data).unwrap();
        assert_eq!(sites.sack, Some((2, 2)));
        assert_eq!(sites.timestamps, None);
    }

    #[test]
    fn malformed_options() {
        for bad in [
            &[2u8][..],                   // kind without length
            &[2, 3, 0],                   // MSS with length 3
            &[8, 10, 0, 0, 0],            // runs past the end
            &[254, 1],                    // length below 2
            &[5, 9, 0, 0, 0, 0, 0, 0, 0], // SACK not a whole number of blocks
            &[5, 2],                      // SACK with no block
        ] {
            let last = TcpOptions::new(bad).last().unwrap();
            assert_eq!(last, Err(Error::BadOption), "{bad:?}");
            assert_eq!(RewriteSites::locate(bad), Err(Error::BadOption), "{bad:?}");
        }
    }

    #[test]
    fn locate_finds_timestamps() {
        let sites = RewriteSites::locate(&SYN_OPTIONS).unwrap();
        assert_eq!(sites.timestamps, Some(6));
        assert_eq!(sites.sack, None);
    }

    #[test]
    fn sack_blocks_bounds() {
        assert!(SackBlocks::from_slice(&[]).is_none());
        assert!(SackBlocks::from_slice(&[SackBlock::default(); 5]).is_none());
        assert_eq!(
            SackBlocks::from_slice(&[SackBlock::default(); 4])
                .unwrap()
                .as_slice()
                .len(),
            4
        );
    }
}
