//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624),
//! for the IPv4 header: verified on receive, patched on rewrite, computed
//! for an outer tunnel header and for ICMP errors (whose quoted bytes the
//! `bpf_csum_diff` helper sums, `icmp.rs`).
//!
//! Words are summed in memory order (`from_ne_bytes`): the one's complement
//! sum is byte-order independent (RFC 1071 §2(B)), so a sum taken this way
//! is stored back as it is, without swapping.

/// The one's complement sum of the 16-bit words of `h` (`N` even), unfolded.
#[inline(always)]
pub fn sum<const N: usize>(h: &[u8; N]) -> u32 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < N {
        sum += u16::from_ne_bytes([h[i], h[i + 1]]) as u32;
        i += 2;
    }
    sum
}

/// Folds a 32-bit one's complement sum into 16 bits. Two folds suffice for
/// a sum of up to 65 537 words.
#[inline(always)]
pub fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum = (sum & 0xFFFF) + (sum >> 16);
    sum as u16
}

/// Whether a header's words, its checksum field included, sum to 0xFFFF
/// (a correct checksum).
#[inline(always)]
pub fn verify<const N: usize>(h: &[u8; N]) -> bool {
    fold(sum(h)) == 0xFFFF
}

/// [`compute`] for a sum of 32-bit partial sums (`bpf_csum_diff` results
/// added up).
#[inline(always)]
pub fn compute64(sum: u64) -> u16 {
    let sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
    let sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
    !fold(((sum & 0xFFFF) + (sum >> 16)) as u32)
}

/// The checksum field of a header whose words, with the field zeroed, sum
/// to `sum`.
#[inline(always)]
pub fn compute(sum: u32) -> u16 {
    !fold(sum)
}

/// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit word changing
/// from `old` to `new`. All three values in the same (memory) byte order.
#[inline(always)]
pub fn replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold((!check) as u32 + (!old) as u32 + new as u32)
}
