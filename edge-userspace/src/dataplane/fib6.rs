//! The IPv6 lookup, userspace half: a multibit trie whose every entry the
//! kernel reads (edge-ebpf's fib6.rs) is computed here and written into
//! memory-mapped maps (plain memory in tests).
//!
//! The LPM trie stays the registry of prefixes; this structure is derived
//! from it (see docs/lookup.md). Layout, as the kernel reads it:
//!
//! - the root: 2^16 entries, one per /16 (the first 256 nodes of the node
//!   array);
//! - nodes of 256 entries, one level per further address byte (/24, /32,
//!   ... /128), for an entry that holds two or more prefixes longer than
//!   itself;
//! - tails: an entry holding exactly one longer prefix points to a
//!   [`Tail6`] (the prefix, its leaf, and the entry's answer outside it),
//!   so a sparse region costs 32 bytes a prefix, not a chain of nodes;
//! - leaves: leaf id → [`PrefixEntry`], shared by equal entries.
//!
//! An entry is `NODE | node`, `TAIL | tail`, or a leaf id with the length of
//! the prefix it came from (`edge_common::fib6`): leaves are pushed down,
//! so the entry where the walk stops is the answer. Updates stay atomic
//! from a packet's point of view: leaves, nodes and tails are written
//! before anything points to them and never changed while reachable (a tail
//! that changes is a new tail swapped in); entries change with single
//! aligned 4-byte stores; whatever is freed is reused only after an RCU
//! grace period.

use std::{
    net::Ipv6Addr,
    sync::atomic::{AtomicU32, Ordering},
};

use aya::maps::MapData;
use edge_common::{PrefixEntry, Tail6, fib6, limits, map_names};
use ipnet::Ipv6Net;

use super::{
    MapsError,
    slab::{
        FastMap, Held, Ids, LeafMap, LeafStore, Leaves, Mmap, NO_SLOT, VecLeaves, WithLeaves, full,
        zeroed,
    },
};

const NODE_ENTRIES: usize = fib6::NODE_ENTRIES;
/// Entries of the root (the first [`fib6::ROOT_BLOCKS`] nodes).
const ROOT_ENTRIES: usize = 1 << fib6::ROOT_BITS;
/// Nodes an insert may create (one per level below the root).
const NODE_HEADROOM: u32 = fib6::LEVELS as u32;
/// Tails an insert may take: the new prefix's, one for the tail it splits,
/// one spare for repainting tails one at a time (a new one, then the old
/// one freed). A delete needs the spare only.
const TAIL_HEADROOM: u32 = 3;

/// Where the entries live.
pub trait Store6: LeafStore {
    /// Every node's entries, the root's first.
    fn nodes(&self) -> &[AtomicU32];
    fn tail(&self, i: u32) -> Tail6;
    /// Writes tail `i` (nothing points to it yet).
    fn write_tail(&mut self, i: u32, tail: &Tail6);
    fn tail_limit(&self) -> u32;
}

/// The tables in plain memory: the model alone, for tests and for tools.
pub struct VecStore6 {
    nodes: Vec<AtomicU32>,
    tails: Vec<Tail6>,
    pub leaves: VecLeaves,
}

impl VecStore6 {
    /// `nodes` includes the root's [`fib6::ROOT_BLOCKS`].
    pub fn new(nodes: u32, tails: u32, leaves: u32) -> Self {
        Self {
            nodes: zeroed(nodes as usize * NODE_ENTRIES),
            tails: vec![Tail6::default(); tails as usize],
            leaves: VecLeaves::new(leaves),
        }
    }
}

impl Default for VecStore6 {
    fn default() -> Self {
        Self::new(limits::FIB6_NODES, limits::FIB6_TAILS, limits::FIB6_LEAVES)
    }
}

impl Store6 for VecStore6 {
    fn nodes(&self) -> &[AtomicU32] {
        &self.nodes
    }
    fn tail(&self, i: u32) -> Tail6 {
        self.tails[i as usize]
    }
    fn write_tail(&mut self, i: u32, tail: &Tail6) {
        self.tails[i as usize] = *tail;
    }
    fn tail_limit(&self) -> u32 {
        self.tails.len() as u32
    }
}

impl WithLeaves for VecStore6 {
    type Leaves = VecLeaves;
    fn leaves(&self) -> &VecLeaves {
        &self.leaves
    }
    fn leaves_mut(&mut self) -> &mut VecLeaves {
        &mut self.leaves
    }
}

/// The tables in the kernel's maps: nodes and tails memory-mapped, leaves
/// written with map updates.
pub struct MapStore6 {
    nodes: Mmap,
    tails: Mmap,
    leaves: LeafMap,
}

impl MapStore6 {
    pub fn new(nodes: MapData, tails: MapData, leaves: MapData) -> Result<Self, MapsError> {
        let nodes = Mmap::new(nodes, map_names::FIB6_NODES, (NODE_ENTRIES * 4) as u32)?;
        if nodes.words().len() <= ROOT_ENTRIES {
            return Err(MapsError::Mmap {
                map: map_names::FIB6_NODES,
                what: format!("{} entries, no room beyond the root", nodes.words().len()),
            });
        }
        Ok(Self {
            nodes,
            tails: Mmap::new(tails, map_names::FIB6_TAILS, size_of::<Tail6>() as u32)?,
            leaves: LeafMap::new(map_names::FIB6_LEAVES, leaves)?,
        })
    }
}

impl Store6 for MapStore6 {
    fn nodes(&self) -> &[AtomicU32] {
        self.nodes.words()
    }
    fn tail(&self, i: u32) -> Tail6 {
        self.tails.record(i).unwrap_or_default()
    }
    fn write_tail(&mut self, i: u32, tail: &Tail6) {
        self.tails.write_record(i, tail);
    }
    fn tail_limit(&self) -> u32 {
        self.tails.records::<Tail6>()
    }
}

impl WithLeaves for MapStore6 {
    type Leaves = LeafMap;
    fn leaves(&self) -> &LeafMap {
        &self.leaves
    }
    fn leaves_mut(&mut self) -> &mut LeafMap {
        &mut self.leaves
    }
}

const fn is_node(e: u32) -> bool {
    e & fib6::NODE != 0
}

const fn is_tail(e: u32) -> bool {
    e & (fib6::NODE | fib6::TAIL) == fib6::TAIL
}

/// Node or tail index.
const fn index(e: u32) -> u32 {
    e & fib6::INDEX
}

/// The prefix length a leaf entry came from (0 for "no prefix").
const fn depth(e: u32) -> u8 {
    (e >> fib6::DEPTH_SHIFT) as u8
}

const fn leaf_entry(id: u32, len: u8) -> u32 {
    (len as u32) << fib6::DEPTH_SHIFT | id
}

/// The last address bit (exclusive) an entry of `level` stands for: the
/// root's entries are /16s, level 1's /24s, ... level 14's /128s.
const fn end(level: usize) -> u32 {
    fib6::ROOT_BITS + 8 * level as u32
}

/// The level whose entries a prefix of `len` is painted into.
const fn level_of(len: u8) -> usize {
    if len as u32 <= fib6::ROOT_BITS {
        0
    } else {
        (len as usize - fib6::ROOT_BITS as usize).div_ceil(8)
    }
}

/// `a`'s first `len` bits.
const fn trunc(a: u128, len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len))
    }
}

/// The entry index of `a` in a node of `level` (the root for 0).
const fn offset(a: u128, level: usize) -> usize {
    if level == 0 {
        (a >> (128 - fib6::ROOT_BITS)) as usize
    } else {
        (a >> (128 - end(level))) as usize & (NODE_ENTRIES - 1)
    }
}

/// The first entry of node `n`.
const fn base(n: u32) -> usize {
    n as usize * NODE_ENTRIES
}

fn tail_of(net: u128, len: u8, leaf: u32, fallback: u32) -> Tail6 {
    Tail6 {
        key_hi: (net >> 64) as u64,
        key_lo: net as u64,
        len: len.into(),
        leaf,
        fallback,
        _pad: 0,
    }
}

fn tail_net(t: &Tail6) -> (u128, u8) {
    (
        (u128::from(t.key_hi) << 64) | u128::from(t.key_lo),
        t.len as u8,
    )
}

/// Which leaf entries a paint replaces, by the length they came from.
#[derive(Clone, Copy)]
enum Pick {
    /// Inserting a prefix: every entry from a prefix no longer than it.
    UpTo(u8),
    /// Deleting one: the entries it painted.
    Exactly(u8),
}

impl Pick {
    fn takes(self, d: u8) -> bool {
        match self {
            Self::UpTo(len) => d <= len,
            Self::Exactly(len) => d == len,
        }
    }
}

/// The multibit trie model over a [`Store6`].
pub struct Fib6<S> {
    store: S,
    /// Registered prefixes by length: network → leaf id and registry slot.
    by_len: Vec<FastMap<u128, Held>>,
    leaves: Leaves,
    nodes: Ids,
    tails: Ids,
    /// By node: the registered prefixes longer than the entry pointing to
    /// it (a node exists for two or more; one is a tail, none a leaf).
    below: Vec<u32>,
}

impl<S: Store6> Fib6<S> {
    /// A model over empty tables (fresh maps are zeroed: no prefix anywhere).
    pub fn new(store: S) -> Self {
        let nodes = (store.nodes().len() / NODE_ENTRIES) as u32;
        let (tails, leaves) = (store.tail_limit(), store.leaf_limit());
        Self {
            store,
            by_len: vec![FastMap::default(); 129],
            leaves: Leaves::new(map_names::FIB6_LEAVES, leaves),
            nodes: Ids::new(fib6::ROOT_BLOCKS, nodes),
            tails: Ids::new(0, tails),
            below: vec![0; nodes as usize],
        }
    }

    /// Rebuilds the model over tables that may already be in use (maps
    /// pinned by an earlier daemon) from the registry (`prefixes`, read
    /// from the LPM trie). Nodes, tails and leaves the tables reach are
    /// kept; every registered prefix is placed again, shortest first (the
    /// same values where the tables are consistent, a repair where an
    /// update was cut short).
    pub fn recover(
        &mut self,
        prefixes: impl IntoIterator<Item = (Ipv6Net, PrefixEntry)>,
    ) -> Result<(), MapsError> {
        let store = &mut self.store;
        let nnodes = store.nodes().len() / NODE_ENTRIES;
        let mut used_nodes = vec![false; nnodes];
        let mut used_tails = vec![false; store.tail_limit() as usize];
        let mut used_leaves = vec![false; store.leaf_limit() as usize];
        let mut mark_leaf = |e: u32| {
            if let Some(u) = used_leaves.get_mut((e & fib6::LEAF) as usize) {
                *u = true;
            }
        };
        // (first entry, entries) of the root and of every node reached.
        let mut pending: Vec<(usize, usize)> = vec![(0, ROOT_ENTRIES)];
        while let Some((first, count)) = pending.pop() {
            for slot in &store.nodes()[first..first + count] {
                let e = slot.load(Ordering::Acquire);
                if is_node(e) {
                    let n = index(e) as usize;
                    if n < nnodes && !used_nodes[n] {
                        used_nodes[n] = true;
                        pending.push((base(n as u32), NODE_ENTRIES));
                    }
                } else if is_tail(e) {
                    if let Some(u) = used_tails.get_mut(index(e) as usize) {
                        *u = true;
                        let t = store.tail(index(e));
                        mark_leaf(t.leaf);
                        mark_leaf(t.fallback);
                    }
                } else {
                    mark_leaf(e);
                }
            }
        }
        used_leaves[0] = true;
        used_nodes[..fib6::ROOT_BLOCKS as usize].fill(true);
        // A lookup may still hold something an earlier writer freed.
        store.grace();
        self.by_len = vec![FastMap::default(); 129];
        self.nodes = Ids::with_used(fib6::ROOT_BLOCKS, nnodes as u32, &used_nodes);
        self.tails = Ids::with_used(0, used_tails.len() as u32, &used_tails);
        let live = self.leaves.recover(&self.store, &used_leaves)?;
        let mut prefixes: Vec<_> = prefixes.into_iter().collect();
        prefixes.sort_by_key(|(n, _)| n.prefix_len());
        for (net, entry) in prefixes {
            self.insert(net, entry)?;
        }
        // Leaves the tables pointed to that no prefix uses any more.
        self.leaves.drop_unused(&live);
        self.count_below();
        Ok(())
    }

    /// Counts, for every node, the registered prefixes below it.
    fn count_below(&mut self) {
        self.below.fill(0);
        for (len, nets) in self.by_len.iter().enumerate() {
            let target = level_of(len as u8);
            for &p in nets.keys() {
                let mut slot = offset(p, 0);
                for level in 0..target {
                    let e = self.store.nodes()[slot].load(Ordering::Relaxed);
                    if !is_node(e) {
                        break;
                    }
                    self.below[index(e) as usize] += 1;
                    slot = base(index(e)) + offset(p, level + 1);
                }
            }
        }
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

    /// Nodes in use below the root.
    pub fn nodes_in_use(&self) -> u32 {
        self.nodes.in_use(fib6::ROOT_BLOCKS)
    }

    /// Tails in use.
    pub fn tails_in_use(&self) -> u32 {
        self.tails.in_use(0)
    }

    /// Distinct leaves in use.
    pub fn leaves_in_use(&self) -> u32 {
        self.leaves.in_use()
    }

    /// The entry registered for exactly `net`.
    pub fn get(&self, net: Ipv6Net) -> Option<PrefixEntry> {
        let held = self.by_len[net.prefix_len() as usize].get(&u128::from(net.network()))?;
        Some(self.leaves.entry(held.leaf))
    }

    /// The registry slot of `net`, as for [`super::fib::Fib4::slot`].
    pub fn slot(&self, net: Ipv6Net) -> Option<u32> {
        let held = self.by_len[net.prefix_len() as usize].get(&u128::from(net.network()))?;
        (held.slot != NO_SLOT).then_some(held.slot)
    }

    /// Keeps `net`'s registry slot with it; false if `net` is not registered.
    pub fn set_slot(&mut self, net: Ipv6Net, slot: u32) -> bool {
        match self.by_len[net.prefix_len() as usize].get_mut(&u128::from(net.network())) {
            Some(held) => {
                held.slot = slot;
                true
            }
            None => false,
        }
    }

    /// Longest-prefix match through the tables, as the kernel does it.
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<PrefixEntry> {
        match entry_of(&self.store, addr) & fib6::LEAF {
            0 => None,
            id => Some(self.leaves.entry(id)),
        }
    }

    /// Registers (or replaces) `net`; returns the entry it replaced.
    pub fn insert(
        &mut self,
        net: Ipv6Net,
        entry: PrefixEntry,
    ) -> Result<Option<PrefixEntry>, MapsError> {
        let (p, len) = (u128::from(net.network()), net.prefix_len());
        let held = self.by_len[len as usize].get(&p).copied();
        let old = held.map(|h| h.leaf);
        if let Some(old) = old
            && self.leaves.holds(old, &entry)
        {
            // Nothing changes, but a recovering model places it again.
            self.place(p, len, leaf_entry(old, len), false);
            return Ok(Some(entry));
        }
        self.headroom(NODE_HEADROOM, TAIL_HEADROOM)?;
        let id = self.leaves.acquire(&mut self.store, &entry)?;
        self.place(p, len, leaf_entry(id, len), old.is_none());
        self.by_len[len as usize].insert(
            p,
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
    pub fn remove(&mut self, net: Ipv6Net) -> Result<Option<PrefixEntry>, MapsError> {
        let (p, len) = (u128::from(net.network()), net.prefix_len());
        if !self.by_len[len as usize].contains_key(&p) {
            return Ok(None);
        }
        self.headroom(0, 1)?;
        let id = self.by_len[len as usize]
            .remove(&p)
            .expect("checked above")
            .leaf;
        let parent = (0..len)
            .rev()
            .find_map(|l| {
                let held = self.by_len[l as usize].get(&trunc(p, l.into()))?;
                Some(leaf_entry(held.leaf, l))
            })
            .unwrap_or(0);
        let target = level_of(len);
        let mut slot = offset(p, 0);
        // (entry pointing to the node, node, the entry's level)
        let mut path = Vec::new();
        let mut painted = true;
        for level in 0..target {
            let e = self.load(slot);
            if is_node(e) {
                path.push((slot, index(e), level));
                slot = base(index(e)) + offset(p, level + 1);
                continue;
            }
            if is_tail(e) && tail_net(&self.store.tail(index(e))) == (p, len) {
                // The one prefix below this entry: the entry's own answer again.
                let fallback = self.store.tail(index(e)).fallback;
                self.publish(slot, fallback);
                self.tails.release(index(e));
            }
            painted = false;
            break;
        }
        if painted {
            self.paint(
                slot,
                1 << (end(target) - u32::from(len)),
                Pick::Exactly(len),
                parent,
            );
        }
        for &(_, n, _) in &path {
            self.below[n as usize] -= 1;
        }
        for &(slot, n, level) in path.iter().rev() {
            if !self.shrink(slot, n, level, p) {
                break;
            }
        }
        let e = self.leaves.entry(id);
        self.leaves.release(id);
        Ok(Some(e))
    }

    /// Fails (with the map and its limit) unless an insert or delete can
    /// take every node and tail it may need: it then never stops half way.
    fn headroom(&self, nodes: u32, tails: u32) -> Result<(), MapsError> {
        if self.nodes.available() < nodes {
            return Err(full(map_names::FIB6_NODES, self.nodes.limit));
        }
        if self.tails.available() < tails {
            return Err(full(map_names::FIB6_TAILS, self.tails.limit));
        }
        Ok(())
    }

    fn load(&self, slot: usize) -> u32 {
        self.store.nodes()[slot].load(Ordering::Acquire)
    }

    /// One aligned store: a lookup sees the entry before or after it.
    /// Release: what the new value points to is visible first.
    fn publish(&self, slot: usize, value: u32) {
        self.store.nodes()[slot].store(value, Ordering::Release);
    }

    fn alloc_node(&mut self) -> u32 {
        let store = &mut self.store;
        self.nodes
            .alloc(|| store.grace())
            .expect("headroom checked before the update")
    }

    /// A new tail holding `tail`, written before anything points to it.
    fn new_tail(&mut self, tail: &Tail6) -> u32 {
        let store = &mut self.store;
        let t = self
            .tails
            .alloc(|| store.grace())
            .expect("headroom checked before the update");
        self.store.write_tail(t, tail);
        t
    }

    /// Replaces the tail `slot` points to by a copy holding `tail`.
    fn swap_tail(&mut self, slot: usize, old: u32, tail: &Tail6) {
        let t = self.new_tail(tail);
        self.publish(slot, fib6::TAIL | t);
        self.tails.release(old);
    }

    /// Puts `p/len` with leaf entry `value` into the tables from the root.
    /// `new`: the prefix was not registered (the nodes passed count it).
    fn place(&mut self, p: u128, len: u8, value: u32, new: bool) {
        let target = level_of(len);
        let mut slot = offset(p, 0);
        let mut path = Vec::new();
        let mut level = 0;
        while level < target {
            let e = self.load(slot);
            if !is_node(e) {
                break;
            }
            path.push(index(e));
            level += 1;
            slot = base(index(e)) + offset(p, level);
        }
        self.place_at(slot, level, p, len, value);
        if new {
            for n in path {
                self.below[n as usize] += 1;
            }
        }
    }

    /// Puts `p/len` into entry `slot` of `level` (no node there, or the
    /// level where the prefix is painted).
    fn place_at(&mut self, slot: usize, level: usize, p: u128, len: u8, value: u32) {
        if level == level_of(len) {
            self.paint(
                slot,
                1 << (end(level) - u32::from(len)),
                Pick::UpTo(len),
                value,
            );
            return;
        }
        let e = self.load(slot);
        if !is_tail(e) {
            // A leaf: the prefix becomes the entry's one tail.
            let t = self.new_tail(&tail_of(p, len, value, e));
            self.publish(slot, fib6::TAIL | t);
            return;
        }
        let old = self.store.tail(index(e));
        let (q, qlen) = tail_net(&old);
        if (q, qlen) == (p, len) {
            if old.leaf != value {
                self.swap_tail(slot, index(e), &Tail6 { leaf: value, ..old });
            }
            return;
        }
        // Two prefixes below the entry: a node, filled with the entry's own
        // answer, holding both, then published with one store.
        let n = self.alloc_node();
        let first = base(n);
        for s in &self.store.nodes()[first..first + NODE_ENTRIES] {
            s.store(old.fallback, Ordering::Relaxed);
        }
        self.place_at(first + offset(q, level + 1), level + 1, q, qlen, old.leaf);
        let slot_p = first + offset(p, level + 1);
        self.place_in(slot_p, level + 1, p, len, value);
        self.below[n as usize] = 2;
        self.publish(slot, fib6::NODE | n);
        self.tails.release(index(e));
    }

    /// [`Fib6::place_at`] through the nodes below `slot` (a node being
    /// built holds the ones its own placements made).
    fn place_in(&mut self, mut slot: usize, mut level: usize, p: u128, len: u8, value: u32) {
        while level < level_of(len) {
            let e = self.load(slot);
            if !is_node(e) {
                break;
            }
            level += 1;
            slot = base(index(e)) + offset(p, level);
        }
        self.place_at(slot, level, p, len, value);
    }

    /// Writes `value` into the `count` entries from `first` (of one node)
    /// whose leaf `pick` takes, through nodes below and into tails'
    /// fallbacks.
    fn paint(&mut self, first: usize, count: usize, pick: Pick, value: u32) {
        for slot in first..first + count {
            let e = self.load(slot);
            if is_node(e) {
                self.paint(base(index(e)), NODE_ENTRIES, pick, value);
            } else if is_tail(e) {
                let t = self.store.tail(index(e));
                if pick.takes(depth(t.fallback)) && t.fallback != value {
                    self.swap_tail(
                        slot,
                        index(e),
                        &Tail6 {
                            fallback: value,
                            ..t
                        },
                    );
                }
            } else if pick.takes(depth(e)) && e != value {
                self.publish(slot, value);
            }
        }
    }

    /// After a delete below node `n` (pointed to by `slot`, an entry of
    /// `level` on the path to `p`): a node left with no prefix below
    /// becomes its (uniform) leaf, one left with one becomes that prefix's
    /// tail. Whether it shrank.
    fn shrink(&mut self, slot: usize, n: u32, level: usize, p: u128) -> bool {
        let first = base(n);
        let entries: Vec<u32> = self.store.nodes()[first..first + NODE_ENTRIES]
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect();
        let shallow = |e: u32| !is_node(e) && !is_tail(e) && u32::from(depth(e)) <= end(level);
        let value = match self.below[n as usize] {
            // Every entry is the leaf of the prefixes covering the whole node.
            0 if entries.iter().all(|&e| e == entries[0] && shallow(e)) => entries[0],
            1 => {
                let Some(fallback) = entries.iter().copied().find(|&e| shallow(e)) else {
                    return false;
                };
                let Some(i) = entries.iter().position(|&e| !shallow(e)) else {
                    return false;
                };
                let e = entries[i];
                let tail = if is_node(e) {
                    // Not compact (a model recovered over such tables): leave it.
                    return false;
                } else if is_tail(e) {
                    let tail = self.store.tail(index(e));
                    self.tails.release(index(e));
                    Tail6 { fallback, ..tail }
                } else {
                    let net = trunc(p, end(level)) | (i as u128) << (128 - end(level + 1));
                    tail_of(net, depth(e), e, fallback)
                };
                fib6::TAIL | self.new_tail(&tail)
            }
            _ => return false,
        };
        self.publish(slot, value);
        self.nodes.release(n);
        true
    }
}

/// The leaf entry (or "none") the tables hold for `addr`, read as the kernel reads it.
fn entry_of(store: &impl Store6, addr: Ipv6Addr) -> u32 {
    let a = u128::from(addr);
    let nodes = store.nodes();
    let mut e = nodes[offset(a, 0)].load(Ordering::Acquire);
    for level in 1..=fib6::LEVELS {
        if !is_node(e) {
            break;
        }
        e = nodes[base(index(e)) + offset(a, level)].load(Ordering::Acquire);
    }
    if is_tail(e) {
        let t = store.tail(index(e));
        e = if t.covers((a >> 64) as u64, a as u64) {
            t.leaf
        } else {
            t.fallback
        };
    }
    e
}

/// Longest-prefix match through the tables and the leaf map alone (no
/// model needed): what the kernel finds.
pub fn lookup_in(store: &impl Store6, addr: Ipv6Addr) -> Result<Option<PrefixEntry>, MapsError> {
    match entry_of(store, addr) & fib6::LEAF {
        0 => Ok(None),
        id => store.read_leaf(id).map(Some),
    }
}

#[cfg(test)]
mod tests;
