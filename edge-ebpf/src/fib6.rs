//! IPv6 longest-prefix match through a multibit trie: the root indexed by
//! the address's first 16 bits, then one node of 256 entries per further
//! byte, as deep as the prefixes below go, ending in a leaf or a tail (the
//! one prefix below an entry). Userspace (edge-userspace's fib6.rs)
//! computes every entry and publishes changes with single aligned stores,
//! so a lookup sees the old or the new answer, never a mix.

use aya_ebpf::{bindings::BPF_F_MMAPABLE, macros::map, maps::Array};
use edge_common::{PrefixEntry, Tail6, fib6, limits};

/// The nodes, 256 entries each; the first `fib6::ROOT_BLOCKS` are the
/// root (one entry per /16).
#[map]
pub static EDGE_FIB6_NODE: Array<[u32; fib6::NODE_ENTRIES]> =
    Array::with_max_entries(limits::FIB6_NODES, BPF_F_MMAPABLE);

/// The one prefix below an entry, with the entry's answer outside it.
#[map]
pub static EDGE_FIB6_TAIL: Array<Tail6> =
    Array::with_max_entries(limits::FIB6_TAILS, BPF_F_MMAPABLE);

/// Leaf id → the prefix's entry.
#[map]
pub static EDGE_FIB6_LEAF: Array<PrefixEntry> = Array::with_max_entries(limits::FIB6_LEAVES, 0);

/// The entry of the longest registered prefix covering `addr` (network
/// byte order), if any: one array load per level the prefixes below go
/// (a /48 under a busy /32: four), a tail, then the leaf.
#[inline(always)]
pub fn lookup_v6(addr: [u8; 16]) -> Option<&'static PrefixEntry> {
    let hi = u64::from_be_bytes([
        addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6], addr[7],
    ]);
    let lo = u64::from_be_bytes([
        addr[8], addr[9], addr[10], addr[11], addr[12], addr[13], addr[14], addr[15],
    ]);
    let top = (hi >> 48) as u32;
    let mut e = *EDGE_FIB6_NODE.get(top >> 8)?.get((top & 0xFF) as usize)?;
    // Level n reads address byte n + 1; a fixed bound, unrolled.
    let mut level = 0;
    while level < fib6::LEVELS {
        if e & fib6::NODE == 0 {
            break;
        }
        let byte = if level < 6 {
            hi >> (40 - 8 * level)
        } else {
            lo >> (56 - 8 * (level - 6))
        };
        e = *EDGE_FIB6_NODE
            .get(e & fib6::INDEX)?
            .get((byte & 0xFF) as usize)?;
        level += 1;
    }
    if e & fib6::TAIL != 0 {
        let tail = EDGE_FIB6_TAIL.get(e & fib6::INDEX)?;
        e = if tail.covers(hi, lo) {
            tail.leaf
        } else {
            tail.fallback
        };
    }
    match e & fib6::LEAF {
        0 => None,
        leaf => EDGE_FIB6_LEAF.get(leaf),
    }
}
