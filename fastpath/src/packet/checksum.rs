//! The Internet checksum (RFC 1071), full and incremental (RFC 1624).
//!
//! The fast path only ever updates checksums incrementally: a rewrite
//! collects the old and new values of every 16-bit word it changes in a
//! [`ChecksumDelta`] and applies the delta once at the end, to the IPv4
//! header checksum and (addresses being part of the pseudo-header) to the
//! TCP checksum. The full computations are for building and verifying
//! packets in tests.

use std::net::Ipv4Addr;

/// Folds a 32-bit ones-complement accumulator to 16 bits (end-around carry).
// Cannot truncate: two folds leave at most 0xffff.
#[inline]
#[allow(clippy::cast_possible_truncation)]
pub fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Unfolded ones-complement sum of `data` as big-endian 16-bit words; an odd
/// trailing byte is padded with zero.
// Cannot truncate: the fold loop leaves no bits above the low 32.
#[allow(clippy::cast_possible_truncation)]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    // Fold 64 -> 32 bits; a packet cannot overflow u64.
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Adds two unfolded sums without losing carries.
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + u32::from(carry)
}

/// The Internet checksum of `data`: the ones-complement of its sum. Over a
/// header whose checksum field holds a valid checksum, this yields zero.
pub fn internet(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Sum of the TCP/UDP pseudo-header for IPv4 (RFC 793 §3.1).
pub fn pseudo_header_ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(protocol) + u32::from(length)
}

/// Accumulated changes to a checksummed region, per RFC 1624 eqn. 3:
/// `HC' = ~(~HC + ~m + m')`, summed over every changed field `m -> m'`.
///
/// Fields are summed 32 bits at a time into a 64-bit accumulator (the
/// ones-complement sum is the same whatever the word size, once folded), and
/// the whole delta is folded once, when applied. Offsets passed to
/// [`Self::dword_at`] are relative to a point with even alignment in the
/// checksummed data (the start of the TCP header is one: the pseudo-header is
/// 12 bytes). A field at an odd offset straddles words, so its bytes count
/// swapped within each 16-bit half (RFC 1071 §2(B)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChecksumDelta(u64);

impl ChecksumDelta {
    /// No change.
    pub const ZERO: ChecksumDelta = ChecksumDelta(0);

    /// Records that an aligned 16-bit word changed from `old` to `new`.
    #[inline]
    pub fn word(&mut self, old: u16, new: u16) {
        self.0 += u64::from(!old) + u64::from(new);
    }

    /// Records that an aligned 32-bit field changed from `old` to `new`.
    #[inline]
    pub fn dword(&mut self, old: u32, new: u32) {
        self.0 += u64::from(!old) + u64::from(new);
    }

    /// Records that a 32-bit field at `offset` changed from `old` to `new`.
    #[inline]
    pub fn dword_at(&mut self, offset: usize, old: u32, new: u32) {
        if offset % 2 == 0 {
            self.dword(old, new);
        } else {
            self.dword(swap_halves(old), swap_halves(new));
        }
    }

    /// Records an IPv4 address change.
    #[inline]
    pub fn addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.dword(u32::from(old), u32::from(new));
    }

    /// Merges the changes recorded in `other`.
    #[inline]
    pub fn merge(&mut self, other: ChecksumDelta) {
        self.0 += other.0;
    }

    /// The checksum after all recorded changes, given the one before.
    // Cannot truncate: two folds of a 64-bit sum leave at most 0xffff_ffff.
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    pub fn apply(self, checksum: u16) -> u16 {
        // A delta holds a few dozen 33-bit terms at most: no carry out of 64.
        let sum = self.0 + u64::from(!checksum);
        let sum = (sum & 0xffff_ffff) + (sum >> 32);
        let sum = (sum & 0xffff_ffff) + (sum >> 32);
        !fold(sum as u32)
    }
}

/// Swaps the bytes within each 16-bit half: how a 32-bit field at an odd
/// offset falls across the checksum's words.
#[inline]
fn swap_halves(x: u32) -> u32 {
    ((x & 0x00ff_00ff) << 8) | ((x >> 8) & 0x00ff_00ff)
}

#[cfg(test)]
mod tests {
    use super::*;

    // IPv4 header from RFC 1071-style worked examples (checksum 0xb861).
    const IPV4_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn valid_header_sums_to_zero() {
        assert_eq!(internet(&IPV4_HEADER), 0);
        let mut h = IPV4_HEADER;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(internet(&h), 0xb861);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full_for_ttl_change() {
        let mut h = IPV4_HEADER;
        let mut d = ChecksumDelta::ZERO;
        d.word(
            u16::from_be_bytes([h[8], h[9]]),
            u16::from_be_bytes([0x3f, h[9]]),
        );
        h[8] = 0x3f;
        let updated = d.apply(0xb861);
        h[10..12].copy_from_slice(&updated.to_be_bytes());
        assert_eq!(internet(&h), 0);
    }

    #[test]
    fn odd_offset_field_update() {
        let mut data = [0u8; 12];
        data[0] = 0xab;
        data[11] = 0xcd;
        data[3..7].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        let before = internet(&data);
        let mut d = ChecksumDelta::ZERO;
        d.dword_at(3, 0x1234_5678, 0xfedc_ba98);
        data[3..7].copy_from_slice(&0xfedc_ba98u32.to_be_bytes());
        assert_eq!(d.apply(before), internet(&data));
    }

    #[test]
    fn fold_handles_double_carry() {
        assert_eq!(fold(0xffff_ffff), 0xffff);
        assert_eq!(fold(0x0001_fffe), 0xffff);
    }
}
