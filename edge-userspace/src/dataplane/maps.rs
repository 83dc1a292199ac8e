//! Typed owners of the pinned maps: one place that writes each map, and the
//! errors that say which map and which limit.

use std::{net::IpAddr, path::Path};

use aya::maps::{
    Array, DevMapHash, HashMap, IterableMap as _, LpmTrie, Map, MapData, MapError, lpm_trie::Key,
    xdp::XdpMapError,
};
use edge_common::{PolicyTable, Pop, PortEntry, PrefixEntry, Settings, limits, map_names};
use ipnet::{IpNet, Ipv4Net};

use super::{
    batch::*,
    error::{MapsError, write_error},
    fib::{self, Fib4, MapStore},
    index::Index,
};

/// Whether a map error says the key is not there: aya returns the delete
/// syscall's ENOENT as a syscall error, not [`MapError::KeyNotFound`]. A
/// delete that finds nothing has reached its goal (the kernel itself drops
/// a device map's entry when the interface goes away).
pub(super) fn not_found(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// A delete's result: `Ok(false)` when the key was not there.
fn deleted(r: Result<(), MapError>) -> Result<bool, MapError> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(super) fn open_pinned(dir: &Path, map: &'static str) -> Result<Map, MapsError> {
    let path = dir.join(map);
    MapData::from_pin(&path)
        .and_then(Map::from_map_data)
        .map_err(|source| MapsError::Pin { path, source })
}

/// The forwarding tables: everything the program reads except counters.
pub struct Tables {
    ports: HashMap<MapData, u32, PortEntry>,
    prefixes_v4: LpmTrie<MapData, [u8; 4], PrefixEntry>,
    prefixes_v6: LpmTrie<MapData, [u8; 16], PrefixEntry>,
    policies: Array<MapData, PolicyTable>,
    pops: Array<MapData, Pop>,
    tx_ports: DevMapHash<MapData>,
    settings: Array<MapData, Settings>,
    local_v4: HashMap<MapData, [u8; 4], u8>,
    local_v6: HashMap<MapData, [u8; 16], u8>,
    /// Sizes of the prefix maps as created (config `[limits]`).
    limit_v4: u32,
    limit_v6: u32,
    /// The IPv4 DIR-24-8 tables the kernel reads, derived from `prefixes_v4`.
    fib4: Fib4<MapStore>,
    /// Whether `fib4`'s model has been rebuilt from the maps (done on the
    /// first IPv4 prefix change: the maps may be pinned ones in use).
    fib4_ready: bool,
    /// Whether the kernel takes batched updates of the LPM tries
    /// (`BPF_MAP_UPDATE_BATCH`); `None` until the first batch tells.
    batch_ok: Option<bool>,
    /// The kernel's array copy of `ports` and filter of `local_v4`/`local_v6`.
    index: Index,
}

/// max_entries of an LPM trie map, as the kernel has it.
fn lpm_size(m: &Result<Map, MapsError>, default: u32) -> u32 {
    match m {
        Ok(Map::LpmTrie(d)) => d.info().map_or(default, |i| i.max_entries()),
        _ => default,
    }
}

const TABLE_MAPS: [&str; 14] = [
    map_names::PORTS,
    map_names::PREFIX_V4,
    map_names::PREFIX_V6,
    map_names::POLICIES,
    map_names::POPS,
    map_names::TX_PORTS,
    map_names::SETTINGS,
    map_names::LOCAL_V4,
    map_names::LOCAL_V6,
    map_names::FIB4_TBL24,
    map_names::FIB4_TBL8,
    map_names::FIB4_LEAVES,
    map_names::PORT_INDEX,
    map_names::LOCAL_BITS,
];

pub(super) fn typed<T: TryFrom<Map, Error = MapError>>(
    map: &'static str,
    m: Map,
) -> Result<T, MapsError> {
    T::try_from(m).map_err(|source| MapsError::Map { map, source })
}

impl Tables {
    /// Takes the maps out of a loaded object.
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        let maps = TABLE_MAPS.map(|map| ebpf.take_map(map).ok_or(MapsError::Missing { map }));
        let mut tables = Self::from_maps(maps)?;
        // The kernel's array copies may be new (pinned maps of an older
        // build) while the registries are reused: bring them in line.
        let (ports, locals) = (tables.ports()?, tables.locals()?);
        tables.index.resync(&ports, &locals)?;
        Ok(tables)
    }

    /// Opens the maps pinned under `dir`.
    pub fn open(dir: &Path) -> Result<Self, MapsError> {
        Self::from_maps(TABLE_MAPS.map(|map| open_pinned(dir, map)))
    }

    fn from_maps(maps: [Result<Map, MapsError>; 14]) -> Result<Self, MapsError> {
        let [
            ports,
            v4,
            v6,
            policies,
            pops,
            tx,
            settings,
            l4,
            l6,
            t24,
            t8,
            leaves,
            port_index,
            local_bits,
        ] = maps;
        let limit_v4 = lpm_size(&v4, limits::MAX_PREFIXES_V4);
        let limit_v6 = lpm_size(&v6, limits::MAX_PREFIXES_V6);
        let array = |map: &'static str, m: Map| match m {
            Map::Array(data) => Ok(data),
            _ => Err(MapsError::Mmap {
                map,
                what: "not an array".into(),
            }),
        };
        let fib4 = MapStore::new(
            array(map_names::FIB4_TBL24, t24?)?,
            array(map_names::FIB4_TBL8, t8?)?,
            array(map_names::FIB4_LEAVES, leaves?)?,
        )?;
        Ok(Self {
            limit_v4,
            limit_v6,
            fib4: Fib4::new(fib4),
            fib4_ready: false,
            batch_ok: None,
            index: Index::new(
                typed(map_names::PORT_INDEX, port_index?)?,
                typed(map_names::LOCAL_BITS, local_bits?)?,
            ),
            ports: typed(map_names::PORTS, ports?)?,
            prefixes_v4: typed(map_names::PREFIX_V4, v4?)?,
            prefixes_v6: typed(map_names::PREFIX_V6, v6?)?,
            policies: typed(map_names::POLICIES, policies?)?,
            pops: typed(map_names::POPS, pops?)?,
            tx_ports: typed(map_names::TX_PORTS, tx?)?,
            settings: typed(map_names::SETTINGS, settings?)?,
            local_v4: typed(map_names::LOCAL_V4, l4?)?,
            local_v6: typed(map_names::LOCAL_V6, l6?)?,
        })
    }

    /// Declares `ifindex` a port: its role and id for the program, and a
    /// transmit target for redirects.
    pub fn set_port(&mut self, ifindex: u32, entry: PortEntry) -> Result<(), MapsError> {
        self.ports
            .insert(ifindex, entry, 0)
            .map_err(|e| write_error(map_names::PORTS, limits::MAX_PORTS, e))?;
        self.index.set_port(ifindex, Some(entry))?;
        self.tx_ports
            .insert(ifindex, ifindex, None, 0)
            .map_err(|e| match e {
                XdpMapError::MapError(e) => write_error(map_names::TX_PORTS, limits::MAX_PORTS, e),
                source => MapsError::Xdp {
                    map: map_names::TX_PORTS,
                    source,
                },
            })
    }

    /// The IPv4 DIR-24-8 model, rebuilt from the maps and the trie on first use.
    fn fib4(&mut self) -> Result<&mut Fib4<MapStore>, MapsError> {
        if !self.fib4_ready {
            let registry = self
                .prefixes_v4
                .iter()
                .map(|r| {
                    r.map(|(k, e)| {
                        let net = Ipv4Net::new(k.data().into(), k.prefix_len() as u8)
                            .expect("the kernel keeps prefix lengths ≤ 32");
                        (net, e)
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| MapsError::Map {
                    map: map_names::PREFIX_V4,
                    source,
                })?;
            self.fib4.recover(registry)?;
            self.fib4_ready = true;
        }
        Ok(&mut self.fib4)
    }

    /// Registers (or replaces) a prefix: in the LPM trie (the registry)
    /// first, then, for IPv4, in the DIR-24-8 tables the kernel reads (on
    /// failure there the trie is restored).
    pub fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        match net {
            IpNet::V4(n) => {
                let n = n.trunc();
                let key = Key::new(n.prefix_len().into(), n.network().octets());
                let old = self.fib4()?.get(n);
                self.prefixes_v4
                    .insert(&key, entry, 0)
                    .map_err(|e| write_error(map_names::PREFIX_V4, self.limit_v4, e))?;
                if let Err(e) = self.fib4.insert(n, entry) {
                    let _ = match old {
                        Some(old) => self.prefixes_v4.insert(&key, old, 0),
                        None => self.prefixes_v4.remove(&key),
                    };
                    return Err(e);
                }
                Ok(())
            }
            IpNet::V6(n) => self
                .prefixes_v6
                .insert(
                    &Key::new(n.prefix_len().into(), n.network().octets()),
                    entry,
                    0,
                )
                .map_err(|e| write_error(map_names::PREFIX_V6, self.limit_v6, e)),
        }
    }

    /// Registers (or replaces) many prefixes, in order, as [`Tables::set_prefix`]
    /// does one at a time, but with the LPM trie written in batches
    /// (`BPF_MAP_UPDATE_BATCH`, one syscall per [`BATCH`] prefixes) where
    /// the kernel supports it. Returns how many were written; on an error,
    /// the ones before that count are written and nothing after it (the
    /// maps hold the old entries of the rest).
    pub fn set_prefixes(
        &mut self,
        items: &[(IpNet, PrefixEntry)],
    ) -> (usize, Result<(), MapsError>) {
        let mut done = 0;
        while done < items.len() {
            let rest = &items[done..];
            // A run of one family, at most BATCH long.
            let v4 = rest[0].0.addr().is_ipv4();
            let run = rest
                .iter()
                .take(BATCH)
                .take_while(|(n, _)| n.addr().is_ipv4() == v4)
                .count();
            let chunk = &rest[..run];
            let result = if self.batch_ok == Some(false) || run < MIN_BATCH {
                self.set_prefixes_one_by_one(chunk)
            } else if v4 {
                self.set_v4_batch(chunk)
            } else {
                self.set_v6_batch(chunk)
            };
            match result {
                (n, Ok(())) => done += n,
                (n, Err(e)) => return (done + n, Err(e)),
            }
        }
        (done, Ok(()))
    }

    fn set_prefixes_one_by_one(
        &mut self,
        items: &[(IpNet, PrefixEntry)],
    ) -> (usize, Result<(), MapsError>) {
        for (i, (net, entry)) in items.iter().enumerate() {
            if let Err(e) = self.set_prefix(*net, *entry) {
                return (i, Err(e));
            }
        }
        (items.len(), Ok(()))
    }

    /// One batch of IPv6 prefixes: the trie is all there is.
    fn set_v6_batch(&mut self, items: &[(IpNet, PrefixEntry)]) -> (usize, Result<(), MapsError>) {
        let keys: Vec<Key<[u8; 16]>> = items
            .iter()
            .map(|(n, _)| Key::new(u32::from(n.prefix_len()), v6_octets(n)))
            .collect();
        let values: Vec<PrefixEntry> = items.iter().map(|(_, e)| *e).collect();
        let fd = raw_fd(self.prefixes_v6.map());
        match update_batch(fd, &keys, &values) {
            Ok(()) => {
                self.batch_ok = Some(true);
                (items.len(), Ok(()))
            }
            Err(BatchError::Unsupported) => {
                self.batch_ok = Some(false);
                self.set_prefixes_one_by_one(items)
            }
            Err(BatchError::Failed { done, error }) => (
                done,
                Err(batch_error(map_names::PREFIX_V6, self.limit_v6, error)),
            ),
        }
    }

    /// One batch of IPv4 prefixes: the trie in one syscall, then the
    /// DIR-24-8 tables one prefix at a time (trie entries whose DIR-24-8
    /// write did not happen are restored).
    fn set_v4_batch(&mut self, items: &[(IpNet, PrefixEntry)]) -> (usize, Result<(), MapsError>) {
        let nets: Vec<Ipv4Net> = items
            .iter()
            .map(|(n, _)| match n {
                IpNet::V4(n) => n.trunc(),
                IpNet::V6(_) => unreachable!("a run of IPv4 prefixes"),
            })
            .collect();
        let fib = match self.fib4() {
            Ok(f) => f,
            Err(e) => return (0, Err(e)),
        };
        let old: Vec<Option<PrefixEntry>> = nets.iter().map(|n| fib.get(*n)).collect();
        let keys: Vec<Key<[u8; 4]>> = nets
            .iter()
            .map(|n| Key::new(n.prefix_len().into(), n.network().octets()))
            .collect();
        let values: Vec<PrefixEntry> = items.iter().map(|(_, e)| *e).collect();
        let fd = raw_fd(self.prefixes_v4.map());
        let in_trie = match update_batch(fd, &keys, &values) {
            Ok(()) => {
                self.batch_ok = Some(true);
                items.len()
            }
            Err(BatchError::Unsupported) => {
                self.batch_ok = Some(false);
                return self.set_prefixes_one_by_one(items);
            }
            Err(BatchError::Failed { done, error }) => {
                // The first `done` are in the trie: restore them.
                self.restore_v4_trie(&keys[..done], &old[..done]);
                return (
                    0,
                    Err(batch_error(map_names::PREFIX_V4, self.limit_v4, error)),
                );
            }
        };
        for (i, (net, (_, entry))) in nets.iter().zip(items).enumerate().take(in_trie) {
            if let Err(e) = self.fib4.insert(*net, *entry) {
                self.restore_v4_trie(&keys[i..in_trie], &old[i..in_trie]);
                return (i, Err(e));
            }
        }
        (in_trie, Ok(()))
    }

    fn restore_v4_trie(&mut self, keys: &[Key<[u8; 4]>], old: &[Option<PrefixEntry>]) {
        for (key, old) in keys.iter().zip(old) {
            let _ = match old {
                Some(old) => self.prefixes_v4.insert(key, *old, 0),
                None => self.prefixes_v4.remove(key),
            };
        }
    }

    /// Unregisters many prefixes, as [`Tables::del_prefix`] does one at a
    /// time, with the trie deletes batched (`BPF_MAP_DELETE_BATCH`) where
    /// the kernel supports it. Returns how many were removed (or were not
    /// registered); on an error, the ones before that count are removed and
    /// nothing after it.
    pub fn del_prefixes(&mut self, nets: &[IpNet]) -> (usize, Result<(), MapsError>) {
        let mut done = 0;
        while done < nets.len() {
            let rest = &nets[done..];
            let v4 = rest[0].addr().is_ipv4();
            let run = rest
                .iter()
                .take(BATCH)
                .take_while(|n| n.addr().is_ipv4() == v4)
                .count();
            let chunk = &rest[..run];
            let result = if self.batch_ok == Some(false) || run < MIN_BATCH {
                self.del_prefixes_one_by_one(chunk)
            } else {
                self.del_batch(chunk, v4)
            };
            match result {
                (n, Ok(())) => done += n,
                (n, Err(e)) => return (done + n, Err(e)),
            }
        }
        (done, Ok(()))
    }

    fn del_prefixes_one_by_one(&mut self, nets: &[IpNet]) -> (usize, Result<(), MapsError>) {
        for (i, net) in nets.iter().enumerate() {
            if let Err(e) = self.del_prefix(*net) {
                return (i, Err(e));
            }
        }
        (nets.len(), Ok(()))
    }

    /// One batch of one family: IPv4 leaves the DIR-24-8 tables first, then
    /// the trie. A prefix the trie does not hold is skipped.
    fn del_batch(&mut self, nets: &[IpNet], v4: bool) -> (usize, Result<(), MapsError>) {
        let mut removed_fib: Vec<(Ipv4Net, PrefixEntry)> = Vec::new();
        if v4 {
            let fib = match self.fib4() {
                Ok(f) => f,
                Err(e) => return (0, Err(e)),
            };
            for (i, n) in nets.iter().enumerate() {
                let IpNet::V4(n) = n else { unreachable!() };
                match fib.remove(n.trunc()) {
                    Ok(Some(old)) => removed_fib.push((n.trunc(), old)),
                    Ok(None) => {}
                    Err(e) => {
                        // Put back what this batch took out.
                        for (n, old) in removed_fib {
                            let _ = self.fib4.insert(n, old);
                        }
                        return (i, Err(e));
                    }
                }
            }
        }
        let (fd, map, key_bytes) = if v4 {
            (raw_fd(self.prefixes_v4.map()), map_names::PREFIX_V4, 8)
        } else {
            (raw_fd(self.prefixes_v6.map()), map_names::PREFIX_V6, 20)
        };
        let mut keys: Vec<u8> = Vec::with_capacity(nets.len() * key_bytes);
        for n in nets {
            keys.extend_from_slice(&u32::from(n.prefix_len()).to_ne_bytes());
            match n {
                IpNet::V4(n) => keys.extend_from_slice(&n.trunc().network().octets()),
                IpNet::V6(_) => keys.extend_from_slice(&v6_octets(n)),
            }
        }
        let mut at = 0;
        while at < nets.len() {
            match delete_batch(fd, &keys[at * key_bytes..], key_bytes, nets.len() - at) {
                Ok(()) => at = nets.len(),
                Err(BatchError::Unsupported) => {
                    self.batch_ok = Some(false);
                    for n in &nets[at..] {
                        let r = match n {
                            IpNet::V4(n) => self.prefixes_v4.remove(&Key::new(
                                n.prefix_len().into(),
                                n.trunc().network().octets(),
                            )),
                            IpNet::V6(_) => self
                                .prefixes_v6
                                .remove(&Key::new(n.prefix_len().into(), v6_octets(n))),
                        };
                        if let Err(source) = deleted(r) {
                            return (at, Err(MapsError::Map { map, source }));
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
                    // The rest stay registered: back into the DIR-24-8 tables.
                    let rest: Vec<Ipv4Net> = nets[at..]
                        .iter()
                        .filter_map(|n| match n {
                            IpNet::V4(n) => Some(n.trunc()),
                            IpNet::V6(_) => None,
                        })
                        .collect();
                    for (n, old) in removed_fib.iter().filter(|(n, _)| rest.contains(n)) {
                        let _ = self.fib4.insert(*n, *old);
                    }
                    return (at, Err(batch_error(map, 0, error)));
                }
            }
        }
        self.batch_ok = Some(true);
        (nets.len(), Ok(()))
    }

    /// Every registered prefix and its entry, read back from the maps.
    pub fn prefixes(&self) -> Result<Vec<(IpNet, PrefixEntry)>, MapsError> {
        let mut out = Vec::new();
        for item in self.prefixes_v4.iter() {
            let (key, entry) = item.map_err(|source| MapsError::Map {
                map: map_names::PREFIX_V4,
                source,
            })?;
            let net = ipnet::Ipv4Net::new(key.data().into(), key.prefix_len() as u8)
                .expect("the kernel holds valid lengths");
            out.push((IpNet::V4(net), entry));
        }
        for item in self.prefixes_v6.iter() {
            let (key, entry) = item.map_err(|source| MapsError::Map {
                map: map_names::PREFIX_V6,
                source,
            })?;
            let net = ipnet::Ipv6Net::new(key.data().into(), key.prefix_len() as u8)
                .expect("the kernel holds valid lengths");
            out.push((IpNet::V6(net), entry));
        }
        Ok(out)
    }

    /// Every port: (ifindex, entry).
    pub fn ports(&self) -> Result<Vec<(u32, PortEntry)>, MapsError> {
        self.ports
            .iter()
            .collect::<Result<_, _>>()
            .map_err(|source| MapsError::Map {
                map: map_names::PORTS,
                source,
            })
    }

    /// Removes a port (and its transmit entry).
    pub fn del_port(&mut self, ifindex: u32) -> Result<(), MapsError> {
        // The kernel drops a device map's entry itself when the
        // interface is deleted: gone already is done.
        let gone = |r: Result<(), MapError>, map| match deleted(r) {
            Ok(_) => Ok(()),
            Err(source) => Err(MapsError::Map { map, source }),
        };
        self.index.set_port(ifindex, None)?;
        gone(self.ports.remove(&ifindex), map_names::PORTS)?;
        gone(self.tx_ports.remove(ifindex), map_names::TX_PORTS)
    }

    pub fn pop(&self, id: u32) -> Result<Pop, MapsError> {
        self.pops.get(&id, 0).map_err(|source| MapsError::Map {
            map: map_names::POPS,
            source,
        })
    }

    pub fn settings(&self) -> Result<Settings, MapsError> {
        self.settings.get(&0, 0).map_err(|source| MapsError::Map {
            map: map_names::SETTINGS,
            source,
        })
    }

    /// This host's addresses as the program knows them.
    pub fn locals(&self) -> Result<Vec<IpAddr>, MapsError> {
        let mut out: Vec<IpAddr> = Vec::new();
        for k in self.local_v4.keys() {
            let k = k.map_err(|source| MapsError::Map {
                map: map_names::LOCAL_V4,
                source,
            })?;
            out.push(std::net::Ipv4Addr::from(k).into());
        }
        for k in self.local_v6.keys() {
            let k = k.map_err(|source| MapsError::Map {
                map: map_names::LOCAL_V6,
                source,
            })?;
            out.push(std::net::Ipv6Addr::from(k).into());
        }
        Ok(out)
    }

    pub fn del_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        let (map, r) = match addr {
            IpAddr::V4(a) => (map_names::LOCAL_V4, self.local_v4.remove(&a.octets())),
            IpAddr::V6(a) => (map_names::LOCAL_V6, self.local_v6.remove(&a.octets())),
        };
        if let Err(source) = deleted(r) {
            return Err(MapsError::Map { map, source });
        }
        let locals = self.locals()?;
        self.index.sync_local(addr, &locals)
    }

    /// Unregisters a prefix; true if it was registered. IPv4 leaves the
    /// DIR-24-8 tables first, then the trie.
    pub fn del_prefix(&mut self, net: IpNet) -> Result<bool, MapsError> {
        let removed = match net {
            IpNet::V4(n) => {
                let n = n.trunc();
                self.fib4()?.remove(n)?;
                self.prefixes_v4
                    .remove(&Key::new(n.prefix_len().into(), n.network().octets()))
            }
            IpNet::V6(n) => {
                let n = n.trunc();
                self.prefixes_v6
                    .remove(&Key::new(n.prefix_len().into(), n.network().octets()))
            }
        };
        let map = match net {
            IpNet::V4(_) => map_names::PREFIX_V4,
            IpNet::V6(_) => map_names::PREFIX_V6,
        };
        deleted(removed).map_err(|source| MapsError::Map { map, source })
    }

    /// The entry of the longest registered prefix covering `addr`, as the
    /// kernel finds it (IPv4: through the DIR-24-8 tables; IPv6: the trie).
    pub fn lookup(&self, addr: IpAddr) -> Result<Option<PrefixEntry>, MapsError> {
        let (map, result) = match addr {
            IpAddr::V4(a) => return fib::lookup_in(self.fib4.store(), a),
            IpAddr::V6(a) => (
                map_names::PREFIX_V6,
                self.prefixes_v6.get(&Key::new(128, a.octets()), 0),
            ),
        };
        match result {
            Ok(entry) => Ok(Some(entry)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(MapsError::Map { map, source }),
        }
    }

    /// A policy's selection table as the kernel sees it.
    pub fn policy(&self, id: u32) -> Result<PolicyTable, MapsError> {
        self.policies.get(&id, 0).map_err(|source| MapsError::Map {
            map: map_names::POLICIES,
            source,
        })
    }

    pub fn set_policy(&mut self, id: u32, table: &PolicyTable) -> Result<(), MapsError> {
        if id >= limits::MAX_POLICIES {
            return Err(MapsError::MapFull {
                map: map_names::POLICIES,
                limit: limits::MAX_POLICIES,
            });
        }
        self.policies
            .set(id, table, 0)
            .map_err(|e| write_error(map_names::POLICIES, limits::MAX_POLICIES, e))
    }

    pub fn set_pop(&mut self, id: u32, pop: Pop) -> Result<(), MapsError> {
        if id >= limits::MAX_POPS {
            return Err(MapsError::MapFull {
                map: map_names::POPS,
                limit: limits::MAX_POPS,
            });
        }
        self.pops
            .set(id, pop, 0)
            .map_err(|e| write_error(map_names::POPS, limits::MAX_POPS, e))
    }

    pub fn set_settings(&mut self, settings: Settings) -> Result<(), MapsError> {
        self.settings
            .set(0, settings, 0)
            .map_err(|e| write_error(map_names::SETTINGS, 1, e))
    }

    /// Marks `addr` as one of this host's own addresses: the program hands
    /// traffic to it to the kernel.
    pub fn add_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        let added = match addr {
            IpAddr::V4(a) => self
                .local_v4
                .insert(a.octets(), 1, 0)
                .map_err(|e| write_error(map_names::LOCAL_V4, limits::MAX_LOCAL_ADDRS, e)),
            IpAddr::V6(a) => self
                .local_v6
                .insert(a.octets(), 1, 0)
                .map_err(|e| write_error(map_names::LOCAL_V6, limits::MAX_LOCAL_ADDRS, e)),
        };
        added?;
        let locals = self.locals()?;
        self.index.sync_local(addr, &locals)
    }
}

/// Prefixes per batched trie write.
pub const BATCH: usize = 4096;
/// Fewer prefixes than this are written one at a time.
const MIN_BATCH: usize = 8;

pub use super::counters::{Count, Counters, Stats, prefix_slot};
