//! A fixed, seeded hash that every node computes identically.
//!
//! Consistent hashing only works if all nodes agree on where a key goes, so
//! the hash must not depend on the process (as `std`'s `RandomState` does)
//! nor on the platform. FNV-1a is tiny and stable; its low bits are weak, so
//! the result goes through the MurmurHash3 64-bit finalizer.

/// Seeds that separate the hash's uses from one another.
pub(super) mod seed {
    pub const MAGLEV_OFFSET: u64 = 0x6261_746f_6e2d_6f66; // "baton-of"
    pub const MAGLEV_SKIP: u64 = 0x6261_746f_6e2d_736b; // "baton-sk"
    pub const KEY: u64 = 0x6261_746f_6e2d_6b79; // "baton-ky"
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hashes the concatenation of `parts`, each followed by a 0 byte so that
/// ("ab", "c") and ("a", "bc") differ.
pub(super) fn hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = FNV_OFFSET_BASIS ^ seed;
    for part in parts {
        for &b in part.iter().chain(&[0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
    }
    fmix64(h)
}

/// MurmurHash3's finalizer: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values are part of the protocol between nodes: if they change,
    /// nodes running different builds disagree. Change them only on purpose.
    #[test]
    fn values_are_pinned() {
        assert_eq!(hash(0, &[]), fmix64(FNV_OFFSET_BASIS));
        assert_eq!(
            hash(seed::KEY, &[b"example.com", b"/"]),
            0x42bd_7107_c9ad_dea9
        );
        assert_ne!(hash(0, &[b"ab", b"c"]), hash(0, &[b"a", b"bc"]));
        assert_ne!(
            hash(seed::MAGLEV_OFFSET, &[b"n"]),
            hash(seed::MAGLEV_SKIP, &[b"n"])
        );
    }
}
