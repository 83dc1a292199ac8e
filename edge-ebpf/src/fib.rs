//! IPv4 longest-prefix match by DIR-24-8 (Gupta, Lin, McKeown, 1998): at
//! most two array loads and the leaf. Userspace (edge-userspace's fib.rs)
//! computes every entry and publishes changes with single aligned stores,
//! so a lookup sees the old or the new answer, never a mix.

use aya_ebpf::{bindings::BPF_F_MMAPABLE, macros::map, maps::Array};
use edge_common::{PrefixEntry, fib, limits};

/// One entry per /24 (the address's top 24 bits), two per element.
#[map]
pub static EDGE_FIB4_T24: Array<[u32; 2]> =
    Array::with_max_entries(fib::TBL24_PAIRS, BPF_F_MMAPABLE);

/// 256-entry blocks for /24s holding longer prefixes (indexed by the last byte).
#[map]
pub static EDGE_FIB4_T8: Array<[u32; fib::BLOCK_ENTRIES]> =
    Array::with_max_entries(limits::FIB4_TBL8_BLOCKS, BPF_F_MMAPABLE);

/// Leaf id → the prefix's entry.
#[map]
pub static EDGE_FIB4_LEAF: Array<PrefixEntry> = Array::with_max_entries(limits::FIB4_LEAVES, 0);

/// The entry of the longest registered prefix covering `addr` (network
/// byte order), if any.
#[inline(always)]
pub fn lookup_v4(addr: [u8; 4]) -> Option<&'static PrefixEntry> {
    let a = u32::from_be_bytes(addr);
    let top = a >> 8;
    let pair = EDGE_FIB4_T24.get(top >> 1)?;
    let mut e = *pair.get((top & 1) as usize)?;
    if e & fib::BLOCK != 0 {
        let block = EDGE_FIB4_T8.get(e & fib::INDEX)?;
        e = *block.get((a & 0xFF) as usize)?;
    }
    match e & fib::INDEX {
        0 => None,
        leaf => EDGE_FIB4_LEAF.get(leaf),
    }
}
