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
    /// The registry slot kept with `net` ([`Derived::set_slot`]).
    fn slot(&self, net: Self::Net) -> Option<u32>;
    fn set_slot(&mut self, net: Self::Net, slot: u32);
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
    fn slot(&self, net: Ipv4Net) -> Option<u32> {
        Fib4::slot(self, net)
    }
    fn set_slot(&mut self, net: Ipv4Net, slot: u32) {
        Fib4::set_slot(self, net, slot);
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
    fn slot(&self, net: Ipv6Net) -> Option<u32> {
        Fib6::slot(self, net)
    }
    fn set_slot(&mut self, net: Ipv6Net, slot: u32) {
        Fib6::set_slot(self, net, slot);
    }
}

/// A family's registry: its records in the mapped array and its free
/// slots. Which slot holds which prefix is kept by the tables' model
/// ([`Derived::slot`]), which has a row per prefix already.
struct Registry<F: Derived> {
    records: Mmap,
    /// Free slots below `next`.
    free: Vec<u32>,
    /// Slots from here on are free and were not handed out since the load.
    next: u32,
    _family: std::marker::PhantomData<F>,
}

impl<F: Derived> Registry<F> {
    fn new(map: MapData) -> Result<Self, MapsError> {
        let size = size_of::<F::Record>() as u32;
        Ok(Self {
            records: Mmap::new(map, F::REGISTRY, size)?,
            free: Vec::new(),
            next: 0,
            _family: std::marker::PhantomData,
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

    /// The free slots, from the records; returns what they hold, one
    /// (slot, prefix, entry) per prefix. A prefix found twice (not written
    /// by an edged) keeps its first record; the other is cleared.
    fn load(&mut self) -> Vec<(u32, F::Net, PrefixEntry)> {
        let found: Vec<(u32, F::Net, PrefixEntry)> = self.scan().collect();
        // Only for finding doubles, dropped after.
        let mut seen: FastMap<F::Net, ()> =
            FastMap::with_capacity_and_hasher(found.len(), Default::default());
        let mut held = Vec::with_capacity(found.len());
        for (slot, net, entry) in found {
            if seen.insert(net, ()).is_some() {
                self.clear(slot);
            } else {
                held.push((slot, net, entry));
            }
        }
        drop(seen);
        self.next = held.iter().map(|(s, _, _)| s + 1).max().unwrap_or(0);
        let mut used = vec![false; self.next as usize];
        for (s, _, _) in &held {
            used[*s as usize] = true;
        }
        self.free = (0..self.next)
            .rev()
            .filter(|&s| !used[s as usize])
            .collect();
        held
    }

    fn entry(&self, slot: u32) -> Option<PrefixEntry> {
        let r = self.records.record::<F::Record>(slot)?;
        F::read(&r).map(|(_, e)| e)
    }

    /// Writes `net`'s record at a free slot and returns the slot. Fails
    /// only when every slot is taken.
    fn add(&mut self, net: F::Net, entry: PrefixEntry) -> Result<u32, MapsError> {
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
        Ok(slot)
    }

    /// Rewrites the record at `slot` (`net`'s) with `entry`.
    fn replace(&mut self, slot: u32, net: F::Net, entry: PrefixEntry) {
        self.records.write_record(slot, &F::record(net, entry, 1));
    }

    /// Clears `used` at `slot` and frees it.
    fn remove(&mut self, slot: u32) {
        self.clear(slot);
        self.free.push(slot);
    }

    fn clear(&mut self, slot: u32) {
        self.records
            .write_byte(slot as usize * size_of::<F::Record>() + F::USED_AT, 0);
    }
}

/// A family's registry and derived tables.
pub struct Family<F: Derived> {
    registry: Registry<F>,
    tables: F,
    /// Whether the model (and the registry's free slots) are rebuilt from
    /// the maps, done on the first prefix change: the maps may be pinned
    /// ones in use.
    ready: bool,
}

impl<F: Derived> Family<F> {
    pub fn new(registry: MapData, tables: F) -> Result<Self, MapsError> {
        Ok(Self {
            registry: Registry::new(registry)?,
            tables,
            ready: false,
        })
    }

    /// The tables, whether or not the model is rebuilt yet (for lookups
    /// through the maps alone).
    pub fn tables(&self) -> &F {
        &self.tables
    }

    /// The model, rebuilt from the maps and the registry on first use (the
    /// maps may be pinned ones in use), with each prefix's slot.
    fn model(&mut self) -> Result<&mut F, MapsError> {
        if !self.ready {
            let held = self.registry.load();
            self.tables
                .recover(held.iter().map(|&(_, n, e)| (n, e)).collect())?;
            for (slot, net, _) in held {
                self.tables.set_slot(net, slot);
            }
            self.ready = true;
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
        match self.model()?.slot(n) {
            Some(slot) => {
                let old = self.registry.entry(slot);
                self.registry.replace(slot, n, entry);
                if let Err(e) = self.tables.insert(n, entry) {
                    if let Some(old) = old {
                        self.registry.replace(slot, n, old);
                    }
                    return Err(e);
                }
            }
            None => {
                let slot = self.registry.add(n, entry)?;
                if let Err(e) = self.tables.insert(n, entry) {
                    self.registry.remove(slot);
                    return Err(e);
                }
                self.tables.set_slot(n, slot);
            }
        }
        Ok(())
    }

    /// Unregisters a prefix (tables first, then the registry); true if it
    /// was registered.
    pub fn del(&mut self, net: &IpNet) -> Result<bool, MapsError> {
        let n = F::net(net);
        let slot = self.model()?.slot(n);
        let was = self.tables.remove(n)?.is_some();
        if let Some(slot) = slot {
            self.registry.remove(slot);
        }
        Ok(was)
    }
}
