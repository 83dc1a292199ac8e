//! The IPv4 DIR-24-8 lookup, userspace half: the model that computes every
//! entry the kernel reads (edge-ebpf's fib.rs), and the storage it writes
//! them to (the memory-mapped maps in the daemon, plain memory in tests).
//!
//! The LPM trie stays the registry of prefixes; this structure is derived
//! from it (see docs/lookup.md). Layout, as the kernel reads it:
//!
//! - TBL24: 2^24 `u32` entries, one per /24 (an mmapable array of `[u32; 2]`);
//! - TBL8: blocks of 256 entries, one per /24 holding prefixes longer than /24;
//! - leaves: leaf id → [`PrefixEntry`]; prefixes with equal entries share a leaf.
//!
//! An entry is a leaf id with the length of its prefix in bits 24..30
//! (`edge_common::fib`), or `BLOCK | block index`. Updates stay atomic from
//! a packet's point of view: a leaf is written before any entry points to
//! it and never changed while in use; a block is filled before its pointer
//! is published with one aligned store; entries change with single aligned
//! 4-byte stores; a freed leaf or block is reused only after an RCU grace
//! period (so no lookup still holds it).

use std::{
    net::Ipv4Addr,
    sync::atomic::{AtomicU32, Ordering},
};

use aya::maps::MapData;
use edge_common::{PrefixEntry, fib, limits, map_names};
use ipnet::Ipv4Net;

pub use super::slab::LeafStore;
use super::{
    MapsError,
    slab::{
        FastMap, Held, Ids, LeafMap, Leaves, Mmap, NO_SLOT, VecLeaves, WithLeaves, full, zeroed,
    },
};

/// Entries in TBL24.
pub const TBL24_ENTRIES: usize = 1 << 24;
const BLOCK: usize = fib::BLOCK_ENTRIES;

/// Where the entries live.
pub trait Store: LeafStore {
    /// The 2^24 TBL24 entries.
    fn tbl24(&self) -> &[AtomicU32];
    /// Every TBL8 block, 256 entries each.
    fn tbl8(&self) -> &[AtomicU32];
}

/// The tables in plain memory: the model alone, for tests and for tools.
pub struct VecStore {
    tbl24: Vec<AtomicU32>,
    tbl8: Vec<AtomicU32>,
    pub leaves: VecLeaves,
}

impl VecStore {
    pub fn new(blocks: u32, leaves: u32) -> Self {
        Self {
            tbl24: zeroed(TBL24_ENTRIES),
            tbl8: zeroed(blocks as usize * BLOCK),
            leaves: VecLeaves::new(leaves),
        }
    }
}

impl Default for VecStore {
    fn default() -> Self {
        Self::new(limits::FIB4_TBL8_BLOCKS, limits::FIB4_LEAVES)
    }
}

impl Store for VecStore {
    fn tbl24(&self) -> &[AtomicU32] {
        &self.tbl24
    }
    fn tbl8(&self) -> &[AtomicU32] {
        &self.tbl8
    }
}

impl WithLeaves for VecStore {
    type Leaves = VecLeaves;
    fn leaves(&self) -> &VecLeaves {
        &self.leaves
    }
    fn leaves_mut(&mut self) -> &mut VecLeaves {
        &mut self.leaves
    }
}

/// The tables in the kernel's maps: TBL24 and TBL8 memory-mapped, leaves
/// written with map updates.
pub struct MapStore {
    tbl24: Mmap,
    tbl8: Mmap,
    leaves: LeafMap,
}

impl MapStore {
    pub fn new(tbl24: MapData, tbl8: MapData, leaves: MapData) -> Result<Self, MapsError> {
        let t24 = Mmap::new(tbl24, map_names::FIB4_TBL24, 8)?;
        if t24.words().len() != TBL24_ENTRIES {
            return Err(MapsError::Mmap {
                map: map_names::FIB4_TBL24,
                what: format!("{} entries, expected {TBL24_ENTRIES}", t24.words().len()),
            });
        }
        Ok(Self {
            tbl24: t24,
            tbl8: Mmap::new(tbl8, map_names::FIB4_TBL8, (BLOCK * 4) as u32)?,
            leaves: LeafMap::new(map_names::FIB4_LEAVES, leaves)?,
        })
    }
}

impl Store for MapStore {
    fn tbl24(&self) -> &[AtomicU32] {
        self.tbl24.words()
    }
    fn tbl8(&self) -> &[AtomicU32] {
        self.tbl8.words()
    }
}

impl WithLeaves for MapStore {
    type Leaves = LeafMap;
    fn leaves(&self) -> &LeafMap {
        &self.leaves
    }
    fn leaves_mut(&mut self) -> &mut LeafMap {
        &mut self.leaves
    }
}

/// The value of an entry: leaf id or block index.
const fn index(e: u32) -> u32 {
    e & fib::INDEX
}

/// The prefix length an entry came from (0 for "no prefix").
const fn depth(e: u32) -> u8 {
    ((e & !fib::BLOCK) >> fib::DEPTH_SHIFT) as u8
}

const fn leaf_entry(id: u32, len: u8) -> u32 {
    (len as u32) << fib::DEPTH_SHIFT | id
}

/// The DIR-24-8 model over a [`Store`].
pub struct Fib4<S> {
    store: S,
    /// Registered prefixes by length: network (host order) → leaf id and
    /// registry slot.
    by_len: Vec<FastMap<u32, Held>>,
    leaves: Leaves,
    blocks: Ids,
}

impl<S: Store> Fib4<S> {
    /// A model over empty tables (fresh maps are zeroed: no prefix anywhere).
    pub fn new(store: S) -> Self {
        let blocks = (store.tbl8().len() / BLOCK) as u32;
        let leaves = store.leaf_limit();
        Self {
            store,
            by_len: vec![FastMap::default(); 33],
            leaves: Leaves::new(map_names::FIB4_LEAVES, leaves),
            blocks: Ids::new(0, blocks),
        }
    }

    /// Rebuilds the model over tables that may already be in use (maps
    /// pinned by an earlier daemon) from the registry (`prefixes`, read
    /// from the LPM trie). Leaves and blocks the tables point to are kept;
    /// every registered prefix is painted again (same values where the
    /// tables are consistent, a repair where an update was cut short).
    pub fn recover(
        &mut self,
        prefixes: impl IntoIterator<Item = (Ipv4Net, PrefixEntry)>,
    ) -> Result<(), MapsError> {
        let store = &mut self.store;
        let nblocks = store.tbl8().len() / BLOCK;
        let mut used_blocks = vec![false; nblocks];
        let mut used_leaves = vec![false; store.leaf_limit() as usize];
        let mut mark = |e: u32| {
            if let Some(u) = used_leaves.get_mut(index(e) as usize) {
                *u = true;
            }
        };
        for e in store.tbl24() {
            let e = e.load(Ordering::Acquire);
            if e & fib::BLOCK == 0 {
                mark(e);
                continue;
            }
            let b = index(e) as usize;
            if b < nblocks && !used_blocks[b] {
                used_blocks[b] = true;
                for e in &store.tbl8()[b * BLOCK..(b + 1) * BLOCK] {
                    mark(e.load(Ordering::Acquire));
                }
            }
        }
        used_leaves[0] = true;
        // A lookup may still hold something an earlier writer freed.
        store.grace();
        self.by_len = vec![FastMap::default(); 33];
        self.blocks = Ids::with_used(0, nblocks as u32, &used_blocks);
        let live = self.leaves.recover(&self.store, &used_leaves)?;
        let mut prefixes: Vec<_> = prefixes.into_iter().collect();
        prefixes.sort_by_key(|(n, _)| n.prefix_len());
        for (net, entry) in prefixes {
            self.insert(net, entry)?;
        }
        // Leaves the tables pointed to that no prefix uses any more.
        self.leaves.drop_unused(&live);
        Ok(())
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Registered prefixes.
    pub fn len(&self) -> usize {
        self.by_len.iter().map(FastMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// TBL8 blocks in use.
    pub fn blocks_in_use(&self) -> u32 {
        self.blocks.in_use(0)
    }

    /// Distinct leaves in use.
    pub fn leaves_in_use(&self) -> u32 {
        self.leaves.in_use()
    }

    /// The registry slot of `net` (as [`Fib4::set_slot`] gave it).
    pub fn slot(&self, net: Ipv4Net) -> Option<u32> {
        let held = self.by_len[net.prefix_len() as usize].get(&u32::from(net.network()))?;
        (held.slot != NO_SLOT).then_some(held.slot)
    }

    /// Keeps `net`'s registry slot with it (the registry has no index of
    /// its own: this map has a row per prefix already). False if `net` is
    /// not registered.
    pub fn set_slot(&mut self, net: Ipv4Net, slot: u32) -> bool {
        match self.by_len[net.prefix_len() as usize].get_mut(&u32::from(net.network())) {
            Some(held) => {
                held.slot = slot;
                true
            }
            None => false,
        }
    }

    /// The entry registered for exactly `net`.
    pub fn get(&self, net: Ipv4Net) -> Option<PrefixEntry> {
        let held = self.by_len[net.prefix_len() as usize].get(&u32::from(net.network()))?;
        Some(self.leaves.entry(held.leaf))
    }

    /// Longest-prefix match through the tables, as the kernel does it.
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<PrefixEntry> {
        match index(entry_of(&self.store, addr)) {
            0 => None,
            id => Some(self.leaves.entry(id)),
        }
    }

    /// Registers (or replaces) `net`; returns the entry it replaced.
    pub fn insert(
        &mut self,
        net: Ipv4Net,
        entry: PrefixEntry,
    ) -> Result<Option<PrefixEntry>, MapsError> {
        let (n, len) = (u32::from(net.network()), net.prefix_len());
        let held = self.by_len[len as usize].get(&n).copied();
        let old = held.map(|h| h.leaf);
        if let Some(old) = old
            && self.leaves.holds(old, &entry)
        {
            // Nothing changes, but a recovering model repaints.
            self.paint(n, len, leaf_entry(old, len), |d| d <= len);
            return Ok(Some(entry));
        }
        let id = self.leaves.acquire(&mut self.store, &entry)?;
        if len > 24
            && let Err(e) = self.split((n >> 8) as usize)
        {
            self.leaves.release(id);
            return Err(e);
        }
        self.paint(n, len, leaf_entry(id, len), |d| d <= len);
        self.by_len[len as usize].insert(
            n,
            Held {
                leaf: id,
                slot: held.map_or(NO_SLOT, |h| h.slot),
            },
        );
        Ok(old.map(|old| {
            let e = self.leaves.entry(old);
            self.leaves.release(old);
            e
        }))
    }

    /// Unregisters `net`; returns its entry if it was registered.
    pub fn remove(&mut self, net: Ipv4Net) -> Result<Option<PrefixEntry>, MapsError> {
        let (n, len) = (u32::from(net.network()), net.prefix_len());
        let Some(Held { leaf: id, .. }) = self.by_len[len as usize].remove(&n) else {
            return Ok(None);
        };
        let parent = (0..len)
            .rev()
            .find_map(|l| {
                let p = if l == 0 {
                    0
                } else {
                    n & (u32::MAX << (32 - l))
                };
                self.by_len[l as usize]
                    .get(&p)
                    .map(|h| leaf_entry(h.leaf, l))
            })
            .unwrap_or(0);
        self.paint(n, len, parent, |d| d == len);
        if len > 24 {
            self.merge((n >> 8) as usize);
        }
        let e = self.leaves.entry(id);
        self.leaves.release(id);
        Ok(Some(e))
    }

    /// Makes TBL24 entry `i` a block (filled with its current entry first).
    fn split(&mut self, i: usize) -> Result<(), MapsError> {
        let e = self.store.tbl24()[i].load(Ordering::Acquire);
        if e & fib::BLOCK != 0 {
            return Ok(());
        }
        let store = &mut self.store;
        let limit = self.blocks.limit;
        let b = self
            .blocks
            .alloc(|| store.grace())
            .ok_or(full(map_names::FIB4_TBL8, limit))? as usize;
        for slot in &self.store.tbl8()[b * BLOCK..(b + 1) * BLOCK] {
            slot.store(e, Ordering::Relaxed);
        }
        // Release: the block's entries are visible before the pointer.
        self.store.tbl24()[i].store(fib::BLOCK | b as u32, Ordering::Release);
        Ok(())
    }

    /// Turns TBL24 entry `i` back into a leaf when its block no longer holds
    /// anything longer than /24 (all 256 entries are then the same).
    fn merge(&mut self, i: usize) {
        let e = self.store.tbl24()[i].load(Ordering::Acquire);
        if e & fib::BLOCK == 0 {
            return;
        }
        let b = index(e) as usize;
        let block = &self.store.tbl8()[b * BLOCK..(b + 1) * BLOCK];
        if block.iter().all(|s| depth(s.load(Ordering::Relaxed)) <= 24) {
            let leaf = block[0].load(Ordering::Relaxed);
            self.store.tbl24()[i].store(leaf, Ordering::Release);
            self.blocks.release(b as u32);
        }
    }

    /// Writes `value` into every entry covering `n/len` whose prefix length
    /// satisfies `pick`, through blocks.
    fn paint(&self, n: u32, len: u8, value: u32, pick: impl Fn(u8) -> bool) {
        let (t24, t8) = (self.store.tbl24(), self.store.tbl8());
        let set = |slot: &AtomicU32| {
            let e = slot.load(Ordering::Relaxed);
            if pick(depth(e)) && e != value {
                slot.store(value, Ordering::Release);
            }
        };
        if len <= 24 {
            let first = (n >> 8) as usize;
            for slot in &t24[first..first + (1usize << (24 - len))] {
                let e = slot.load(Ordering::Acquire);
                if e & fib::BLOCK != 0 {
                    let b = index(e) as usize;
                    t8[b * BLOCK..(b + 1) * BLOCK].iter().for_each(set);
                } else {
                    set(slot);
                }
            }
        } else {
            let e = t24[(n >> 8) as usize].load(Ordering::Acquire);
            debug_assert!(
                e & fib::BLOCK != 0,
                "a prefix longer than /24 lives in a block"
            );
            let b = index(e) as usize;
            let first = b * BLOCK + (n & 0xFF) as usize;
            t8[first..first + (1usize << (32 - len))]
                .iter()
                .for_each(set);
        }
    }
}

/// The entry (leaf or "none") the tables hold for `addr`, read as the kernel reads it.
fn entry_of(store: &impl Store, addr: Ipv4Addr) -> u32 {
    let a = u32::from(addr);
    let e = store.tbl24()[(a >> 8) as usize].load(Ordering::Acquire);
    if e & fib::BLOCK == 0 {
        return e;
    }
    store.tbl8()[index(e) as usize * BLOCK + (a & 0xFF) as usize].load(Ordering::Acquire)
}

/// Longest-prefix match through the tables and the leaf map alone (no
/// model needed): what the kernel finds.
pub fn lookup_in(store: &impl Store, addr: Ipv4Addr) -> Result<Option<PrefixEntry>, MapsError> {
    match index(entry_of(store, addr)) {
        0 => Ok(None),
        id => store.read_leaf(id).map(Some),
    }
}

#[cfg(test)]
mod tests;
