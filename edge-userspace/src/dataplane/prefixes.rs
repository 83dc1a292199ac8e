//! One family's prefixes: the registry, and the lookup tables the kernel
//! reads, derived from it (DIR-24-8 for IPv4, `fib`; the multibit trie for
//! IPv6, `fib6`). Written in the order that keeps a crash harmless: the
//! registry first when a prefix comes, the tables first when it goes, so
//! the tables never hold a prefix the registry lacks.
//!
//! The registry is edge's own structure, not a kernel map type: an
//! mmapable array of records (`EDGE_PFX_V4`/`_V6`), one per prefix at a
//! slot edged allocates, which edged writes with memory stores and alone
//! reads (the program never does). It is what survives edged in the pinned
//! maps: a restart reads the records back and rebuilds its models of the
//! tables from them. Before, it was an LPM trie, and writing a million
//! prefixes into it (or into a hash map: the same) took over a second of
//! syscalls; the stores take milliseconds.

use std::{
    collections::hash_map::Entry,
    hash::Hash,
    mem::offset_of,
    net::{Ipv4Addr, Ipv6Addr},
};

use aya::maps::MapData;
use edge_common::{PrefixEntry, Registered4, Registered6, map_names};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    error::MapsError,
    fib::{Fib4, MapStore},
    fib6::{Fib6, MapStore6},
    slab::{FastMap, Mmap},
};

/// Lookup tables derived from a family's registry.
pub trait Derived {
    /// The registry's record (`Registered4`, `Registered6`).
    type Record: Copy;
    type Net: Copy + Eq + Hash;
    /// The registry's map name.
    const REGISTRY: &'static str;
    /// Where a record's `used` byte is.
    const USED_AT: usize;
    /// `net` (of this family), host bits cleared.
    fn net(net: &IpNet) -> Self::Net;
    /// A record of `net` (`used`: 1 or 0).
    fn record(net: Self::Net, entry: PrefixEntry, used: u8) -> Self::Record;
    /// A used record's prefix and entry (`None`: a free slot).
    fn read(record: &Self::Record) -> Option<(Self::Net, PrefixEntry)>;
    fn ipnet(net: Self::Net) -> IpNet;
    fn insert(&mut self, net: Self::Net, e: PrefixEntry) -> Result<Option<PrefixEntry>, MapsError>;
    fn remove(&mut self, net: Self::Net) -> Result<Option<PrefixEntry>, MapsError>;
    /// Rebuilds the model over tables in use from the registry.
    fn recover(&mut self, registry: Vec<(Self::Net, PrefixEntry)>) -> Result<(), MapsError>;
}

impl Derived for Fib4<MapStore> {
    type Record = Registered4;
    type Net = Ipv4Net;
    const REGISTRY: &'static str = map_names::PREFIX_V4;
    const USED_AT: usize = offset_of!(Registered4, used);
    fn net(net: &IpNet) -> Ipv4Net {
        match net {
            IpNet::V4(n) => n.trunc(),
            IpNet::V6(_) => unreachable!("an IPv4 prefix"),
        }
    }
    fn record(net: Ipv4Net, entry: PrefixEntry, used: u8) -> Registered4 {
        Registered4 {
            entry,
            addr: net.network().octets(),
            len: net.prefix_len(),
            used,
            _pad: [0; 2],
        }
    }
    fn read(r: &Registered4) -> Option<(Ipv4Net, PrefixEntry)> {
        // Only edged writes records, with lengths ≤ 32.
        let net = Ipv4Net::new(Ipv4Addr::from(r.addr), r.len).ok()?;
        (r.used == 1).then_some((net, r.entry))
    }
    fn ipnet(net: Ipv4Net) -> IpNet {
        IpNet::V4(net)
    }
    fn insert(&mut self, net: Ipv4Net, e: PrefixEntry) -> Result<Option<PrefixEntry>, MapsError> {
        Fib4::insert(self, net, e)
    }
    fn remove(&mut self, net: Ipv4Net) -> Result<Option<PrefixEntry>, MapsError> {
        Fib4::remove(self, net)
    }
    fn recover(&mut self, registry: Vec<(Ipv4Net, PrefixEntry)>) -> Result<(), MapsError> {
        Fib4::recover(self, registry)
    }
}

impl Derived for Fib6<MapStore6> {
    type Record = Registered6;
    type Net = Ipv6Net;
    const REGISTRY: &'static str = map_names::PREFIX_V6;
    const USED_AT: usize = offset_of!(Registered6, used);
    fn net(net: &IpNet) -> Ipv6Net {
        match net {
            IpNet::V6(n) => n.trunc(),
            IpNet::V4(_) => unreachable!("an IPv6 prefix"),
        }
    }
    fn record(net: Ipv6Net, entry: PrefixEntry, used: u8) -> Registered6 {
        Registered6 {
            entry,
            addr: net.network().octets(),
            len: net.prefix_len(),
            used,
            _pad: [0; 6],
        }
    }
    fn read(r: &Registered6) -> Option<(Ipv6Net, PrefixEntry)> {
        let net = Ipv6Net::new(Ipv6Addr::from(r.addr), r.len).ok()?;
        (r.used == 1).then_some((net, r.entry))
    }
    fn ipnet(net: Ipv6Net) -> IpNet {
        IpNet::V6(net)
    }
    fn insert(&mut self, net: Ipv6Net, e: PrefixEntry) -> Result<Option<PrefixEntry>, MapsError> {
        Fib6::insert(self, net, e)
    }
    fn remove(&mut self, net: Ipv6Net) -> Result<Option<PrefixEntry>, MapsError> {
        Fib6::remove(self, net)
    }
    fn recover(&mut self, registry: Vec<(Ipv6Net, PrefixEntry)>) -> Result<(), MapsError> {
        Fib6::recover(self, registry)
    }
}

/// A family's registry: its records in the mapped array, and where each
/// prefix's record is.
struct Registry<F: Derived> {
    records: Mmap,
    /// Prefix → slot, built from the records on first use ([`Registry::load`]).
    index: FastMap<F::Net, u32>,
    /// Free slots below `next`.
    free: Vec<u32>,
    /// Slots from here on are free and were not handed out since the load.
    next: u32,
    loaded: bool,
}

impl<F: Derived> Registry<F> {
    fn new(map: MapData) -> Result<Self, MapsError> {
        let size = size_of::<F::Record>() as u32;
        Ok(Self {
            records: Mmap::new(map, F::REGISTRY, size)?,
            index: FastMap::default(),
            free: Vec::new(),
            next: 0,
            loaded: false,
        })
    }

    fn capacity(&self) -> u32 {
        self.records.records::<F::Record>()
    }

    /// Every used record: (slot, prefix, entry).
    fn scan(&self) -> impl Iterator<Item = (u32, F::Net, PrefixEntry)> + '_ {
        (0..self.capacity()).filter_map(|i| {
            let r = self.records.record::<F::Record>(i)?;
            F::read(&r).map(|(n, e)| (i, n, e))
        })
    }

    /// Builds the index and the free slots from the records; returns what
    /// they hold. A prefix found twice (not written by this edged) keeps
    /// its first record; the other is cleared.
    fn load(&mut self) -> Vec<(F::Net, PrefixEntry)> {
        let found: Vec<(u32, F::Net, PrefixEntry)> = self.scan().collect();
        let mut index = FastMap::with_capacity_and_hasher(found.len(), Default::default());
        let mut held = Vec::with_capacity(found.len());
        let mut doubles = Vec::new();
        for (slot, net, entry) in found {
            match index.entry(net) {
                Entry::Occupied(_) => doubles.push(slot),
                Entry::Vacant(v) => {
                    v.insert(slot);
                    held.push((net, entry));
                }
            }
        }
        self.next = index.values().map(|s| s + 1).max().unwrap_or(0);
        self.index = index;
        for slot in doubles {
            self.clear_slot(slot);
        }
        let mut used = vec![false; self.next as usize];
        for &s in self.index.values() {
            used[s as usize] = true;
        }
        self.free = (0..self.next)
            .rev()
            .filter(|&s| !used[s as usize])
            .collect();
        self.loaded = true;
        held
    }

    fn get(&self, net: F::Net) -> Option<PrefixEntry> {
        let slot = *self.index.get(&net)?;
        let r = self.records.record::<F::Record>(slot)?;
        F::read(&r).map(|(_, e)| e)
    }

    /// Writes `net`'s record (in place if it has one); returns the entry it
    /// had. Fails only when every slot is taken.
    fn put(&mut self, net: F::Net, entry: PrefixEntry) -> Result<Option<PrefixEntry>, MapsError> {
        if let Some(&slot) = self.index.get(&net) {
            let old = self.get(net);
            self.records.write_record(slot, &F::record(net, entry, 1));
            return Ok(old);
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None if self.next < self.capacity() => {
                self.next += 1;
                self.next - 1
            }
            None => {
                return Err(MapsError::MapFull {
                    map: F::REGISTRY,
                    limit: self.capacity(),
                });
            }
        };
        // The record first, then its `used` byte: a crash between the two
        // leaves a free slot.
        self.records.write_record(slot, &F::record(net, entry, 0));
        self.records
            .write_byte(slot as usize * size_of::<F::Record>() + F::USED_AT, 1);
        self.index.insert(net, slot);
        Ok(None)
    }

    /// Clears `net`'s record; returns the entry it had.
    fn remove(&mut self, net: F::Net) -> Option<PrefixEntry> {
        let old = self.get(net);
        let slot = self.index.remove(&net)?;
        self.clear_slot(slot);
        self.free.push(slot);
        old
    }

    fn clear_slot(&mut self, slot: u32) {
        self.records
            .write_byte(slot as usize * size_of::<F::Record>() + F::USED_AT, 0);
    }

    /// Puts back what `net` had before a write whose tables part failed.
    fn restore(&mut self, net: F::Net, old: Option<PrefixEntry>) {
        match old {
            Some(e) => {
                let _ = self.put(net, e);
            }
            None => {
                self.remove(net);
            }
        }
    }
}

/// A family's registry and derived tables.
pub struct Family<F: Derived> {
    registry: Registry<F>,
    tables: F,
}

impl<F: Derived> Family<F> {
    pub fn new(registry: MapData, tables: F) -> Result<Self, MapsError> {
        Ok(Self {
            registry: Registry::new(registry)?,
            tables,
        })
    }

    /// The tables, whether or not the model is rebuilt yet (for lookups
    /// through the maps alone).
    pub fn tables(&self) -> &F {
        &self.tables
    }

    /// The model, rebuilt from the maps and the registry on first use (the
    /// maps may be pinned ones in use).
    fn model(&mut self) -> Result<&mut F, MapsError> {
        if !self.registry.loaded {
            let held = self.registry.load();
            self.tables.recover(held)?;
        }
        Ok(&mut self.tables)
    }

    /// Every registered prefix and its entry, read back from the registry.
    pub fn list(&self, out: &mut Vec<(IpNet, PrefixEntry)>) -> Result<(), MapsError> {
        out.extend(self.registry.scan().map(|(_, n, e)| (F::ipnet(n), e)));
        Ok(())
    }

    /// Registers (or replaces) a prefix: in the registry first, then in the
    /// tables (on failure there the registry is restored).
    pub fn set(&mut self, net: &IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        let n = F::net(net);
        self.model()?;
        let old = self.registry.put(n, entry)?;
        if let Err(e) = self.tables.insert(n, entry) {
            self.registry.restore(n, old);
            return Err(e);
        }
        Ok(())
    }

    /// Unregisters a prefix (tables first, then the registry); true if it
    /// was registered.
    pub fn del(&mut self, net: &IpNet) -> Result<bool, MapsError> {
        let n = F::net(net);
        self.model()?.remove(n)?;
        Ok(self.registry.remove(n).is_some())
    }
}
