//! One family's prefixes: the LPM trie that is the registry, and the lookup
//! tables the kernel reads, derived from it (DIR-24-8 for IPv4, `fib`; the
//! multibit trie for IPv6, `fib6`). Written in the order that keeps a crash
//! harmless: the registry first when a prefix comes, the tables first when
//! it goes, so the tables never hold a prefix the registry lacks.

use std::net::{Ipv4Addr, Ipv6Addr};

use aya::maps::{IterableMap as _, LpmTrie, MapData, lpm_trie::Key};
use edge_common::{PrefixEntry, map_names};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    batch::*,
    error::{MapsError, write_error},
    fib::{Fib4, MapStore},
    fib6::{Fib6, MapStore6},
    maps::{BATCH, deleted},
};

/// Lookup tables derived from a family's registry trie.
pub trait Derived {
    /// The trie key's data: the address bytes.
    type Addr: aya::Pod + Sync;
    type Net: Copy + PartialEq;
    /// The registry trie's name.
    const TRIE: &'static str;
    /// `net` (of this family), host bits cleared.
    fn net(net: &IpNet) -> Self::Net;
    fn key(net: &Self::Net) -> Key<Self::Addr>;
    fn from_key(key: &Key<Self::Addr>) -> Self::Net;
    fn ipnet(net: Self::Net) -> IpNet;
    /// The entry registered for exactly `net`.
    fn get(&self, net: Self::Net) -> Option<PrefixEntry>;
    fn insert(&mut self, net: Self::Net, e: PrefixEntry) -> Result<Option<PrefixEntry>, MapsError>;
    fn remove(&mut self, net: Self::Net) -> Result<Option<PrefixEntry>, MapsError>;
    /// Rebuilds the model over tables in use from the registry.
    fn recover(&mut self, registry: Vec<(Self::Net, PrefixEntry)>) -> Result<(), MapsError>;
}

impl Derived for Fib4<MapStore> {
    type Addr = [u8; 4];
    type Net = Ipv4Net;
    const TRIE: &'static str = map_names::PREFIX_V4;
    fn net(net: &IpNet) -> Ipv4Net {
        match net {
            IpNet::V4(n) => n.trunc(),
            IpNet::V6(_) => unreachable!("an IPv4 prefix"),
        }
    }
    fn key(net: &Ipv4Net) -> Key<[u8; 4]> {
        Key::new(net.prefix_len().into(), net.network().octets())
    }
    fn from_key(key: &Key<[u8; 4]>) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::from(key.data()), key.prefix_len() as u8)
            .expect("the kernel keeps prefix lengths ≤ 32")
    }
    fn ipnet(net: Ipv4Net) -> IpNet {
        IpNet::V4(net)
    }
    fn get(&self, net: Ipv4Net) -> Option<PrefixEntry> {
        Fib4::get(self, net)
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
    type Addr = [u8; 16];
    type Net = Ipv6Net;
    const TRIE: &'static str = map_names::PREFIX_V6;
    fn net(net: &IpNet) -> Ipv6Net {
        match net {
            IpNet::V6(n) => n.trunc(),
            IpNet::V4(_) => unreachable!("an IPv6 prefix"),
        }
    }
    fn key(net: &Ipv6Net) -> Key<[u8; 16]> {
        Key::new(net.prefix_len().into(), net.network().octets())
    }
    fn from_key(key: &Key<[u8; 16]>) -> Ipv6Net {
        Ipv6Net::new(Ipv6Addr::from(key.data()), key.prefix_len() as u8)
            .expect("the kernel keeps prefix lengths ≤ 128")
    }
    fn ipnet(net: Ipv6Net) -> IpNet {
        IpNet::V6(net)
    }
    fn get(&self, net: Ipv6Net) -> Option<PrefixEntry> {
        Fib6::get(self, net)
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

/// One batch of [`Family::set_batch`].
struct Batch<F: Derived> {
    nets: Vec<F::Net>,
    keys: Vec<Key<F::Addr>>,
    values: Vec<PrefixEntry>,
    /// The entry each network had before (`None`: not registered).
    old: Vec<Option<PrefixEntry>>,
}

/// A family's registry and derived tables.
pub struct Family<F: Derived> {
    trie: LpmTrie<MapData, F::Addr, PrefixEntry>,
    tables: F,
    /// Whether the tables' model has been rebuilt from the maps (done on
    /// the first prefix change: the maps may be pinned ones in use).
    ready: bool,
    /// The trie's size as created (config `[limits]`).
    pub limit: u32,
}

impl<F: Derived> Family<F> {
    pub fn new(trie: LpmTrie<MapData, F::Addr, PrefixEntry>, tables: F, limit: u32) -> Self {
        Self {
            trie,
            tables,
            ready: false,
            limit,
        }
    }

    /// The tables, whether or not the model is rebuilt yet (for lookups
    /// through the maps alone).
    pub fn tables(&self) -> &F {
        &self.tables
    }

    /// The model, rebuilt from the maps and the trie on first use.
    fn model(&mut self) -> Result<&mut F, MapsError> {
        if !self.ready {
            let registry = self
                .trie
                .iter()
                .map(|r| r.map(|(k, e)| (F::from_key(&k), e)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| MapsError::Map {
                    map: F::TRIE,
                    source,
                })?;
            self.tables.recover(registry)?;
            self.ready = true;
        }
        Ok(&mut self.tables)
    }

    /// Every registered prefix and its entry, read back from the trie.
    pub fn list(&self, out: &mut Vec<(IpNet, PrefixEntry)>) -> Result<(), MapsError> {
        for item in self.trie.iter() {
            let (key, entry) = item.map_err(|source| MapsError::Map {
                map: F::TRIE,
                source,
            })?;
            out.push((F::ipnet(F::from_key(&key)), entry));
        }
        Ok(())
    }

    /// Registers (or replaces) a prefix: in the trie first, then in the
    /// tables (on failure there the trie is restored).
    pub fn set(&mut self, net: &IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        let n = F::net(net);
        let key = F::key(&n);
        let old = self.model()?.get(n);
        self.trie
            .insert(&key, entry, 0)
            .map_err(|e| write_error(F::TRIE, self.limit, e))?;
        if let Err(e) = self.tables.insert(n, entry) {
            self.restore(&[key], &[old]);
            return Err(e);
        }
        Ok(())
    }

    /// Registers many prefixes: the trie in batches of [`BATCH`]
    /// (`BPF_MAP_UPDATE_BATCH`, one syscall each), the tables one prefix at
    /// a time after their batch is in the trie. The two overlap: while the
    /// tables take batch k, another thread writes batch k + 1 into the trie
    /// (the trie stays ahead: the tables never hold a prefix it lacks).
    /// Returns how many were written; on an error, the ones before that
    /// count are written (trie entries beyond it are restored) and nothing
    /// after it. `batch_ok` learns whether the kernel batches.
    pub fn set_batch(
        &mut self,
        items: &[(IpNet, PrefixEntry)],
        batch_ok: &mut Option<bool>,
    ) -> (usize, Result<(), MapsError>) {
        let chunks: Vec<&[(IpNet, PrefixEntry)]> = items.chunks(BATCH).collect();
        let Some(first) = chunks.first() else {
            return (0, Ok(()));
        };
        let mut cur = match self.prepare(first) {
            Ok(b) => b,
            Err(e) => return (0, Err(e)),
        };
        let fd = raw_fd(self.trie.map());
        match update_batch(fd, &cur.keys, &cur.values, 1) {
            Ok(()) => *batch_ok = Some(true),
            Err(BatchError::Unsupported) => {
                *batch_ok = Some(false);
                return self.set_each(items);
            }
            Err(BatchError::Failed { done, error }) => {
                // The first `done` are in the trie: restore them.
                self.restore(&cur.keys[..done], &cur.old[..done]);
                return (0, Err(batch_error(F::TRIE, self.limit, error)));
            }
        }
        let mut done = 0;
        for k in 0..chunks.len() {
            let next = match chunks.get(k + 1).map(|c| self.prepare(c)).transpose() {
                Ok(n) => n,
                Err(e) => {
                    let (n, r) = self.paint(&cur, chunks[k]);
                    return (done + n, r.and(Err(e)));
                }
            };
            let (painted, written) = std::thread::scope(|s| {
                let writer = next.as_ref().map(|n| {
                    let (keys, values) = (&n.keys[..], &n.values[..]);
                    s.spawn(move || update_batch(fd, keys, values, 1))
                });
                let painted = self.paint(&cur, chunks[k]);
                (painted, writer.map(|w| w.join().expect("the trie writer")))
            });
            // What of the next batch is in the trie.
            let (ahead, error) = match written {
                None | Some(Ok(())) => (next.as_ref().map_or(0, |n| n.keys.len()), None),
                Some(Err(BatchError::Unsupported)) => (0, None),
                Some(Err(BatchError::Failed { done, error })) => (done, Some(error)),
            };
            if let (n, Err(e)) = painted {
                if let Some(n) = &next {
                    self.restore(&n.keys[..ahead], &n.old[..ahead]);
                }
                return (done + n, Err(e));
            }
            done += chunks[k].len();
            let Some(n) = next else { break };
            if let Some(error) = error {
                self.restore(&n.keys[..ahead], &n.old[..ahead]);
                return (done, Err(batch_error(F::TRIE, self.limit, error)));
            }
            if ahead < n.keys.len() {
                // The kernel stopped batching (it did batch the first).
                let (m, r) = self.set_each(&items[done..]);
                return (done + m, r);
            }
            cur = n;
        }
        (done, Ok(()))
    }

    /// A batch's trie keys and values, and what the model holds for its
    /// networks now (to restore the trie from).
    fn prepare(&mut self, items: &[(IpNet, PrefixEntry)]) -> Result<Batch<F>, MapsError> {
        let tables = self.model()?;
        let nets: Vec<F::Net> = items.iter().map(|(n, _)| F::net(n)).collect();
        Ok(Batch {
            old: nets.iter().map(|n| tables.get(*n)).collect(),
            keys: nets.iter().map(F::key).collect(),
            values: items.iter().map(|(_, e)| *e).collect(),
            nets,
        })
    }

    /// The tables' part of a batch already in the trie; trie entries whose
    /// table write did not happen are restored.
    fn paint(
        &mut self,
        b: &Batch<F>,
        items: &[(IpNet, PrefixEntry)],
    ) -> (usize, Result<(), MapsError>) {
        for (i, (net, (_, entry))) in b.nets.iter().zip(items).enumerate() {
            if let Err(e) = self.tables.insert(*net, *entry) {
                self.restore(&b.keys[i..], &b.old[i..]);
                return (i, Err(e));
            }
        }
        (items.len(), Ok(()))
    }

    /// [`Family::set`] for each of `items`, in order.
    pub fn set_each(&mut self, items: &[(IpNet, PrefixEntry)]) -> (usize, Result<(), MapsError>) {
        for (i, (net, entry)) in items.iter().enumerate() {
            if let Err(e) = self.set(net, *entry) {
                return (i, Err(e));
            }
        }
        (items.len(), Ok(()))
    }

    fn restore(&mut self, keys: &[Key<F::Addr>], old: &[Option<PrefixEntry>]) {
        for (key, old) in keys.iter().zip(old) {
            let _ = match old {
                Some(old) => self.trie.insert(key, *old, 0),
                None => self.trie.remove(key),
            };
        }
    }

    /// Unregisters a prefix (tables first, then the trie); true if it was
    /// registered.
    pub fn del(&mut self, net: &IpNet) -> Result<bool, MapsError> {
        let n = F::net(net);
        self.model()?.remove(n)?;
        deleted(self.trie.remove(&F::key(&n))).map_err(|source| MapsError::Map {
            map: F::TRIE,
            source,
        })
    }

    /// Unregisters many prefixes: the tables first, then the trie in one
    /// batch (`BPF_MAP_DELETE_BATCH`) where the kernel supports it. A
    /// prefix the trie does not hold is skipped. Returns how many were
    /// removed (or were not registered); on an error, the ones before that
    /// count are removed and nothing after it.
    pub fn del_batch(
        &mut self,
        nets: &[IpNet],
        batch_ok: &mut Option<bool>,
    ) -> (usize, Result<(), MapsError>) {
        let nets: Vec<F::Net> = nets.iter().map(F::net).collect();
        let mut removed: Vec<(F::Net, PrefixEntry)> = Vec::new();
        let tables = match self.model() {
            Ok(t) => t,
            Err(e) => return (0, Err(e)),
        };
        for (i, n) in nets.iter().enumerate() {
            match tables.remove(*n) {
                Ok(Some(old)) => removed.push((*n, old)),
                Ok(None) => {}
                Err(e) => {
                    // Put back what this batch took out.
                    for (n, old) in removed {
                        let _ = tables.insert(n, old);
                    }
                    return (i, Err(e));
                }
            }
        }
        let keys: Vec<Key<F::Addr>> = nets.iter().map(F::key).collect();
        let key_bytes = size_of::<Key<F::Addr>>();
        // SAFETY: `Key` is `#[repr(C, packed)]` plain data: its bytes are the
        // kernel's key layout.
        let bytes = unsafe {
            std::slice::from_raw_parts(keys.as_ptr().cast::<u8>(), keys.len() * key_bytes)
        };
        let fd = raw_fd(self.trie.map());
        let mut at = 0;
        while at < nets.len() {
            match delete_batch(fd, &bytes[at * key_bytes..], key_bytes, nets.len() - at) {
                Ok(()) => at = nets.len(),
                Err(BatchError::Unsupported) => {
                    *batch_ok = Some(false);
                    for key in &keys[at..] {
                        if let Err(source) = deleted(self.trie.remove(key)) {
                            return (
                                at,
                                Err(MapsError::Map {
                                    map: F::TRIE,
                                    source,
                                }),
                            );
                        }
                        at += 1;
                    }
                }
                Err(BatchError::Failed { done, error }) => {
                    at += done;
                    if error.raw_os_error() == Some(libc::ENOENT) {
                        at += 1; // not registered: nothing to remove
                        continue;
                    }
                    // The rest stay registered: back into the tables.
                    let rest = &nets[at..];
                    for (n, old) in removed.iter().filter(|(n, _)| rest.contains(n)) {
                        let _ = self.tables.insert(*n, *old);
                    }
                    return (at, Err(batch_error(F::TRIE, 0, error)));
                }
            }
        }
        *batch_ok = Some(true);
        (nets.len(), Ok(()))
    }
}
