//! TCP's number spaces as types: sequence numbers and the deltas between
//! two kernels' sequence spaces, timestamp values and the offsets between
//! two kernels' timestamp clocks.
//!
//! A handoff moves a connection from one kernel's numbering to another's,
//! so every one of these numbers travels from a packet into the flow
//! state, into a control message and back into packets. Each keeps its
//! type all the way: a sequence number cannot be added to a timestamp, and
//! a delta cannot be compared as if it were a position. Arithmetic wraps
//! modulo 2^32 (RFC 793 §3.3, RFC 1982, RFC 7323 §5.2); the raw wire value
//! is only ever taken where a header is read or written.

use core::fmt;
use core::ops::{Add, Neg, Sub};

/// A TCP sequence or acknowledgement number.
///
/// Comparisons are window-relative: `a.is_before(b)` when `b` lies less
/// than 2^31 ahead of `a`, so ordering holds across the 2^32 wraparound.
/// There is deliberately no `Ord`: the relation is not transitive over the
/// whole space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(u32);

/// The offset from one sequence space to another: `SeqNum - SeqNum`. A
/// handed-off connection's kernel numbers its data from its own ISN, and
/// `isn_origin - isn_target` takes its numbers into the space the client
/// agreed to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqDelta(u32);

/// A TCP timestamp value (TSval or TSecr), from some kernel's clock.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TsVal(u32);

/// The offset between two kernels' timestamp clocks: `TsVal - TsVal`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TsOffset(u32);

impl SeqNum {
    /// The sequence number with this raw wire value.
    #[inline]
    pub const fn new(raw: u32) -> Self {
        SeqNum(raw)
    }

    /// The raw wire value.
    #[inline]
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Signed distance from `other` to `self` (positive when `self` is later).
    #[inline]
    pub const fn distance_from(self, other: SeqNum) -> i32 {
        // The two's-complement reading of the modular difference is the
        // RFC 1982 comparison.
        self.0.wrapping_sub(other.0) as i32
    }

    /// RFC 793's `self < other`.
    #[inline]
    pub const fn is_before(self, other: SeqNum) -> bool {
        self.distance_from(other) < 0
    }

    /// RFC 793's `self > other`.
    #[inline]
    pub const fn is_after(self, other: SeqNum) -> bool {
        self.distance_from(other) > 0
    }

    /// Whether `self` lies in `[start, start + len)`.
    #[inline]
    pub const fn in_window(self, start: SeqNum, len: u32) -> bool {
        self.0.wrapping_sub(start.0) < len
    }

    /// `self + len`, a length in octets (a payload's, the held bytes'):
    /// sequence space is modular, and so is a length's place in it (RFC 793
    /// §3.3), so only its low 32 bits count.
    #[inline]
    pub const fn add_len(self, len: usize) -> SeqNum {
        // Truncation intended: modulo 2^32, as the sum is.
        #[allow(clippy::cast_possible_truncation)]
        let len = len as u32;
        SeqNum(self.0.wrapping_add(len))
    }

    /// The later of the two.
    #[inline]
    pub const fn max(self, other: SeqNum) -> SeqNum {
        if self.is_after(other) {
            self
        } else {
            other
        }
    }

    /// The earlier of the two.
    #[inline]
    pub const fn min(self, other: SeqNum) -> SeqNum {
        if self.is_before(other) {
            self
        } else {
            other
        }
    }
}

/// `seq + n`: `n` octets (or SYN/FIN flags) later.
impl Add<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs))
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn sub(self, rhs: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs))
    }
}

/// `a - b` is the delta that, added to `b`, gives `a`: how a translation
/// delta such as `isn_a - isn_b` is formed.
impl Sub<SeqNum> for SeqNum {
    type Output = SeqDelta;
    #[inline]
    fn sub(self, rhs: SeqNum) -> SeqDelta {
        SeqDelta(self.0.wrapping_sub(rhs.0))
    }
}

/// A number of the other space: `isn_b + (isn_a - isn_b) == isn_a`.
impl Add<SeqDelta> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn add(self, rhs: SeqDelta) -> SeqNum {
        SeqNum(self.0.wrapping_add(rhs.0))
    }
}

/// Back into the first space: `isn_a - (isn_a - isn_b) == isn_b`.
impl Sub<SeqDelta> for SeqNum {
    type Output = SeqNum;
    #[inline]
    fn sub(self, rhs: SeqDelta) -> SeqNum {
        SeqNum(self.0.wrapping_sub(rhs.0))
    }
}

impl SeqDelta {
    /// The delta with this raw value (mod 2^32).
    #[inline]
    pub const fn new(raw: u32) -> Self {
        SeqDelta(raw)
    }

    #[inline]
    pub const fn raw(self) -> u32 {
        self.0
    }
}

/// The delta that undoes this one.
impl Neg for SeqDelta {
    type Output = SeqDelta;
    #[inline]
    fn neg(self) -> SeqDelta {
        SeqDelta(self.0.wrapping_neg())
    }
}

impl TsVal {
    /// The timestamp with this raw wire value.
    #[inline]
    pub const fn new(raw: u32) -> Self {
        TsVal(raw)
    }

    #[inline]
    pub const fn raw(self) -> u32 {
        self.0
    }
}

/// `a - b`: the offset that takes clock `b`'s values to clock `a`'s.
impl Sub<TsVal> for TsVal {
    type Output = TsOffset;
    #[inline]
    fn sub(self, rhs: TsVal) -> TsOffset {
        TsOffset(self.0.wrapping_sub(rhs.0))
    }
}

/// `ts + n`: `n` ticks of the sender's clock later.
impl Add<u32> for TsVal {
    type Output = TsVal;
    #[inline]
    fn add(self, rhs: u32) -> TsVal {
        TsVal(self.0.wrapping_add(rhs))
    }
}

impl Add<TsOffset> for TsVal {
    type Output = TsVal;
    #[inline]
    fn add(self, rhs: TsOffset) -> TsVal {
        TsVal(self.0.wrapping_add(rhs.0))
    }
}

impl Sub<TsOffset> for TsVal {
    type Output = TsVal;
    #[inline]
    fn sub(self, rhs: TsOffset) -> TsVal {
        TsVal(self.0.wrapping_sub(rhs.0))
    }
}

impl TsOffset {
    /// The offset with this raw value (mod 2^32).
    #[inline]
    pub const fn new(raw: u32) -> Self {
        TsOffset(raw)
    }

    #[inline]
    pub const fn raw(self) -> u32 {
        self.0
    }
}

/// The offset that undoes this one.
impl Neg for TsOffset {
    type Output = TsOffset;
    #[inline]
    fn neg(self) -> TsOffset {
        TsOffset(self.0.wrapping_neg())
    }
}

macro_rules! number_formatting {
    ($($ty:ident),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.0)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}

number_formatting!(SeqNum, SeqDelta, TsVal, TsOffset);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_across_wrap() {
        let a = SeqNum::new(u32::MAX - 5);
        let b = a + 10;
        assert_eq!(b.raw(), 4);
        assert!(a.is_before(b));
        assert!(b.is_after(a));
        assert_eq!(b.distance_from(a), 10);
        assert_eq!(a.distance_from(b), -10);
        assert_eq!(b - a, SeqDelta::new(10));
        assert_eq!(b.max(a), b);
        assert_eq!(b.min(a), a);
    }

    #[test]
    fn window_membership_across_wrap() {
        let start = SeqNum::new(u32::MAX - 1);
        assert!(start.in_window(start, 1));
        assert!((start + 3).in_window(start, 4));
        assert!(!(start + 4).in_window(start, 4));
        assert!(!(start - 1).in_window(start, 4));
        assert!(!start.in_window(start, 0));
    }

    #[test]
    fn a_delta_moves_numbers_between_spaces_and_back() {
        let (isn_a, isn_b) = (SeqNum::new(5000), SeqNum::new(u32::MAX - 7));
        let delta = isn_a - isn_b;
        assert_eq!(isn_b + delta, isn_a);
        assert_eq!(isn_a - delta, isn_b);
        assert_eq!((isn_b + 100) + delta, isn_a + 100);
        assert_eq!(isn_a + -delta, isn_b);
    }

    #[test]
    fn a_clock_offset_moves_timestamps_between_clocks_and_back() {
        let (origin, target) = (TsVal::new(7000), TsVal::new(u32::MAX - 1));
        let offset = origin - target;
        assert_eq!(target + offset, origin);
        assert_eq!(origin - offset, target);
        assert_eq!(origin + -offset, target);
        assert_eq!(format!("{offset:?}"), "TsOffset(7002)");
    }
}
