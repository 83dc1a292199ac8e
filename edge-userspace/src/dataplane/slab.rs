//! What the IPv4 (DIR-24-8, `fib`) and IPv6 (multibit trie, `fib6`)
//! tables share: id allocators that quarantine freed ids until an RCU grace
//! period, the leaves (leaf id → [`PrefixEntry`], equal entries shared),
//! and shared writable mappings of mmapable array maps.

use std::{
    collections::HashMap,
    os::fd::{AsFd as _, AsRawFd as _},
    sync::atomic::{AtomicU32, AtomicU64},
};

use aya::maps::{Array, MapData};
use edge_common::PrefixEntry;

use super::MapsError;

/// The leaf map of a table, and the grace period its freed ids wait for.
/// The hash maps of the lookup models and the registry index (network →
/// leaf id or slot): foldhash instead of std's SipHash, as a load of a
/// million prefixes makes a million inserts and lookups in them. Seeded
/// anew in each process, so colliding keys cannot be chosen in advance.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What the lookup models keep per registered prefix: its leaf, and the
/// slot of its record in the registry (`prefixes.rs`; [`NO_SLOT`] until
/// the registry gives it one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub leaf: u32,
    pub slot: u32,
}

/// No registry slot.
pub const NO_SLOT: u32 = u32::MAX;

pub trait LeafStore {
    fn write_leaf(&mut self, id: u32, entry: &PrefixEntry) -> Result<(), MapsError>;
    fn read_leaf(&self, id: u32) -> Result<PrefixEntry, MapsError>;
    /// Leaf ids available (leaf 0 included).
    fn leaf_limit(&self) -> u32;
    /// Returns once no lookup that started before the call is still running.
    fn grace(&mut self);
}

/// A table store whose leaves are kept by a [`LeafStore`] of its own.
pub trait WithLeaves {
    type Leaves: LeafStore;
    fn leaves(&self) -> &Self::Leaves;
    fn leaves_mut(&mut self) -> &mut Self::Leaves;
}

impl<T: WithLeaves> LeafStore for T {
    fn write_leaf(&mut self, id: u32, entry: &PrefixEntry) -> Result<(), MapsError> {
        self.leaves_mut().write_leaf(id, entry)
    }
    fn read_leaf(&self, id: u32) -> Result<PrefixEntry, MapsError> {
        self.leaves().read_leaf(id)
    }
    fn leaf_limit(&self) -> u32 {
        self.leaves().leaf_limit()
    }
    fn grace(&mut self) {
        self.leaves_mut().grace();
    }
}

/// Leaves in plain memory (the models alone, for tests and tools); grace
/// periods are only counted.
pub struct VecLeaves {
    leaves: Vec<PrefixEntry>,
    /// Grace periods waited for.
    pub graces: u32,
}

impl VecLeaves {
    pub fn new(limit: u32) -> Self {
        Self {
            leaves: vec![PrefixEntry::default(); limit as usize],
            graces: 0,
        }
    }
}

impl LeafStore for VecLeaves {
    fn write_leaf(&mut self, id: u32, entry: &PrefixEntry) -> Result<(), MapsError> {
        self.leaves[id as usize] = *entry;
        Ok(())
    }
    fn read_leaf(&self, id: u32) -> Result<PrefixEntry, MapsError> {
        Ok(self.leaves[id as usize])
    }
    fn leaf_limit(&self) -> u32 {
        self.leaves.len() as u32
    }
    fn grace(&mut self) {
        self.graces += 1;
    }
}

/// A zeroed `Vec<AtomicU32>` of `n` entries, without touching each one.
pub fn zeroed(n: usize) -> Vec<AtomicU32> {
    let mut v = std::mem::ManuallyDrop::new(vec![0u32; n]);
    // SAFETY: AtomicU32 has the size, alignment and bit validity of u32.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<AtomicU32>(), v.len(), v.capacity()) }
}

pub fn full(map: &'static str, limit: u32) -> MapsError {
    MapsError::MapFull { map, limit }
}

/// membarrier(MEMBARRIER_CMD_GLOBAL) waits for an RCU grace period
/// (synchronize_rcu), and XDP programs run inside RCU read-side sections:
/// afterwards no lookup can still hold a freed leaf, block, node or tail.
pub fn grace_period() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes no pointers.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if r != 0 {
        // nohz_full kernels refuse it: a lookup takes well under a
        // microsecond, so a long sleep is a safe stand-in.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// An id allocator that quarantines freed ids until a grace period passed.
#[derive(Debug)]
pub struct Ids {
    pub limit: u32,
    next: u32,
    free: Vec<u32>,
    quarantine: Vec<u32>,
}

impl Ids {
    pub fn new(first: u32, limit: u32) -> Self {
        Self {
            limit,
            next: first,
            free: Vec::new(),
            quarantine: Vec::new(),
        }
    }

    /// Everything from `first` not in `used` is free (after `recover`'s grace period).
    pub fn with_used(first: u32, limit: u32, used: &[bool]) -> Self {
        Self {
            limit,
            next: limit,
            free: (first..limit)
                .rev()
                .filter(|&i| !used[i as usize])
                .collect(),
            quarantine: Vec::new(),
        }
    }

    pub fn alloc(&mut self, grace: impl FnOnce()) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        if self.next < self.limit {
            self.next += 1;
            return Some(self.next - 1);
        }
        if self.quarantine.is_empty() {
            return None;
        }
        grace();
        self.free.append(&mut self.quarantine);
        self.free.pop()
    }

    pub fn release(&mut self, i: u32) {
        self.quarantine.push(i);
    }

    /// Ids `alloc` can still hand out (after a grace period for some).
    pub fn available(&self) -> u32 {
        self.limit - self.next + (self.free.len() + self.quarantine.len()) as u32
    }

    pub fn in_use(&self, first: u32) -> u32 {
        self.next - first - (self.free.len() + self.quarantine.len()) as u32
    }
}

/// A leaf's identity: every field of the entry.
type LeafKey = (u64, u32, u32, u8, u8);

fn leaf_key(e: &PrefixEntry) -> LeafKey {
    (e.allowed_ports, e.slot, e.policy, e.preference, e.dscp)
}

/// The leaves of a table: id → entry and users; equal entries share one
/// leaf; a leaf is written before any table entry points to it and never
/// changed while in use.
pub struct Leaves {
    map: &'static str,
    ids: HashMap<LeafKey, u32>,
    /// By leaf id: the entry and the number of prefixes using it.
    leaves: Vec<(PrefixEntry, u32)>,
    alloc: Ids,
}

impl Leaves {
    /// No leaf in use; ids 1..`limit` (0 is "no prefix").
    pub fn new(map: &'static str, limit: u32) -> Self {
        Self {
            map,
            ids: HashMap::new(),
            leaves: Vec::new(),
            alloc: Ids::new(1, limit),
        }
    }

    /// Takes over the leaves a table in use points to (`used`, by id; 0
    /// included), read back from the store; returns their ids. Their users
    /// are counted again as prefixes are inserted; [`Leaves::drop_unused`]
    /// then frees those no prefix took.
    pub fn recover(
        &mut self,
        store: &impl LeafStore,
        used: &[bool],
    ) -> Result<Vec<u32>, MapsError> {
        let limit = store.leaf_limit();
        self.ids.clear();
        self.leaves.clear();
        self.alloc = Ids::with_used(1, limit, used);
        let mut live = Vec::new();
        for id in 1..limit {
            if used[id as usize] {
                let entry = store.read_leaf(id)?;
                self.set(id, entry, 0);
                self.ids.entry(leaf_key(&entry)).or_insert(id);
                live.push(id);
            }
        }
        Ok(live)
    }

    /// Frees the leaves of `live` that no prefix uses.
    pub fn drop_unused(&mut self, live: &[u32]) {
        for &id in live {
            if self.leaves[id as usize].1 == 0 {
                self.forget(id);
            }
        }
    }

    /// The entry of leaf `id`.
    pub fn entry(&self, id: u32) -> PrefixEntry {
        self.leaves[id as usize].0
    }

    /// Whether leaf `id` holds `entry`.
    pub fn holds(&self, id: u32, entry: &PrefixEntry) -> bool {
        leaf_key(&self.leaves[id as usize].0) == leaf_key(entry)
    }

    /// Distinct leaves in use.
    pub fn in_use(&self) -> u32 {
        self.alloc.in_use(1)
    }

    fn set(&mut self, id: u32, entry: PrefixEntry, refs: u32) {
        let i = id as usize;
        if self.leaves.len() <= i {
            self.leaves.resize(i + 1, (PrefixEntry::default(), 0));
        }
        self.leaves[i] = (entry, refs);
    }

    /// A leaf holding `entry`, shared or newly written; counts one more user.
    pub fn acquire(
        &mut self,
        store: &mut impl LeafStore,
        entry: &PrefixEntry,
    ) -> Result<u32, MapsError> {
        if let Some(&id) = self.ids.get(&leaf_key(entry)) {
            self.leaves[id as usize].1 += 1;
            return Ok(id);
        }
        let limit = self.alloc.limit;
        let id = self
            .alloc
            .alloc(|| store.grace())
            .ok_or(full(self.map, limit))?;
        store.write_leaf(id, entry)?;
        self.set(id, *entry, 1);
        self.ids.insert(leaf_key(entry), id);
        Ok(id)
    }

    /// One user fewer; the leaf is freed with its last.
    pub fn release(&mut self, id: u32) {
        let refs = &mut self.leaves[id as usize].1;
        *refs -= 1;
        if *refs == 0 {
            self.forget(id);
        }
    }

    /// Frees leaf `id` (reused after a grace period).
    fn forget(&mut self, id: u32) {
        let key = leaf_key(&self.leaves[id as usize].0);
        if self.ids.get(&key) == Some(&id) {
            self.ids.remove(&key);
        }
        self.alloc.release(id);
    }
}

/// A leaf map in the kernel, written with map updates.
pub struct LeafMap {
    name: &'static str,
    leaves: Array<MapData, PrefixEntry>,
}

impl LeafMap {
    pub fn new(name: &'static str, map: MapData) -> Result<Self, MapsError> {
        let leaves = Array::try_from(aya::maps::Map::Array(map))
            .map_err(|source| MapsError::Map { map: name, source })?;
        Ok(Self { name, leaves })
    }
}

impl LeafStore for LeafMap {
    fn write_leaf(&mut self, id: u32, entry: &PrefixEntry) -> Result<(), MapsError> {
        self.leaves
            .set(id, entry, 0)
            .map_err(|source| MapsError::Map {
                map: self.name,
                source,
            })
    }
    fn read_leaf(&self, id: u32) -> Result<PrefixEntry, MapsError> {
        self.leaves.get(&id, 0).map_err(|source| MapsError::Map {
            map: self.name,
            source,
        })
    }
    fn leaf_limit(&self) -> u32 {
        self.leaves.len()
    }
    fn grace(&mut self) {
        grace_period();
    }
}

/// include/uapi/linux/bpf.h: the array can be memory-mapped.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// A shared, writable mapping of an mmapable array map.
pub struct Mmap {
    ptr: *mut u8,
    bytes: usize,
    /// The mapped map's fd, kept so the map shows up as this process's.
    _map: MapData,
}

// SAFETY: the mapping is plain shared memory accessed through atomics, or
// written through `&mut` (records no lookup can reach yet).
unsafe impl Send for Mmap {}
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `map` (an mmapable array of `value_size`-byte values), checking its shape.
    pub fn new(map: MapData, name: &'static str, value_size: u32) -> Result<Self, MapsError> {
        let bad = |what: String| MapsError::Mmap { map: name, what };
        let info = map
            .info()
            .map_err(|source| MapsError::Map { map: name, source })?;
        if info.value_size() != value_size || info.map_flags() & BPF_F_MMAPABLE == 0 {
            return Err(bad(format!(
                "value size {} flags {:#x}: not an mmapable array of {value_size}-byte values",
                info.value_size(),
                info.map_flags()
            )));
        }
        let bytes = info.max_entries() as usize * value_size as usize;
        // SAFETY: a fresh shared mapping of the map's fd; the kernel checks
        // the length against the map, and the mapping is unmapped on drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.fd().as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(bad(format!("mmap: {}", std::io::Error::last_os_error())));
        }
        Ok(Self {
            ptr: ptr.cast(),
            bytes,
            _map: map,
        })
    }

    /// The mapping as `u32` entries.
    pub fn words(&self) -> &[AtomicU32] {
        // SAFETY: the mapping is `bytes` long, page aligned, and lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.bytes / 4) }
    }

    /// The mapping's first 8 bytes as one atomic word.
    pub fn word64(&self) -> &AtomicU64 {
        assert!(self.bytes >= 8, "a mapping of at least 8 bytes");
        // SAFETY: in range, page aligned, and lives as long as self.
        unsafe { &*self.ptr.cast::<AtomicU64>() }
    }

    /// Element `i` of an array of `T`s, if in range.
    pub fn record<T: Copy>(&self, i: u32) -> Option<T> {
        let i = i as usize;
        ((i + 1) * size_of::<T>() <= self.bytes).then(|| {
            // SAFETY: in range, and `T`-aligned (the mapping is page aligned,
            // elements are `size_of::<T>()` apart).
            unsafe { std::ptr::read_volatile(self.ptr.cast::<T>().add(i)) }
        })
    }

    /// Writes element `i` (no lookup may read it yet: a record is written
    /// before anything points to it).
    pub fn write_record<T: Copy>(&mut self, i: u32, value: &T) {
        let i = i as usize;
        assert!(
            (i + 1) * size_of::<T>() <= self.bytes,
            "record {i} out of range"
        );
        // SAFETY: in range and aligned, as in `record`.
        unsafe { std::ptr::write_volatile(self.ptr.cast::<T>().add(i), *value) }
    }

    /// Writes the byte at `offset` (a record's flag, after the record).
    pub fn write_byte(&mut self, offset: usize, value: u8) {
        assert!(offset < self.bytes, "byte {offset} out of range");
        // SAFETY: in range; a byte store needs no alignment.
        unsafe { std::ptr::write_volatile(self.ptr.add(offset), value) }
    }

    /// Elements of `T` the mapping holds.
    pub fn records<T>(&self) -> u32 {
        (self.bytes / size_of::<T>()) as u32
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}
