//! TCP sequence numbers: 32-bit values compared within a window, modulo 2^32
//! (RFC 793 §3.3, RFC 1982).

use core::fmt;
use core::ops::{Add, Sub};

/// A TCP sequence or acknowledgement number.
///
/// Arithmetic wraps. Comparisons are window-relative: `a.is_before(b)` when
/// `b` lies less than 2^31 ahead of `a`, so ordering holds across the 2^32
/// wraparound. There is deliberately no `Ord`: the relation is not transitive
/// over the whole space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(u32);

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

/// `a - b` is the modular offset that, added to `b`, gives `a`. This is how a
/// translation delta such as `isn_a - isn_b` is formed.
impl Sub<SeqNum> for SeqNum {
    type Output = u32;
    #[inline]
    fn sub(self, rhs: SeqNum) -> u32 {
        self.0.wrapping_sub(rhs.0)
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

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
        assert_eq!(b - a, 10);
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
}
