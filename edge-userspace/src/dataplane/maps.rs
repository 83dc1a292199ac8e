//! Typed owners of the pinned maps: one place that writes each map, and the
//! errors that say which map and which limit.

use std::{net::IpAddr, path::Path};

use aya::maps::{
    Array, DevMapHash, HashMap, Map, MapData, MapError,
    lpm_trie::{Key, LpmTrie},
    xdp::XdpMapError,
};
use edge_common::{
    DomainKey4, DomainKey6, LportKey, PolicyTable, Pop, PortEntry, PrefixEntry, Settings, limits,
    map_names,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{
    error::{MapsError, write_error},
    fib::{self, Fib4, MapStore},
    fib6::{self, Fib6, MapStore6},
    index::Index,
    prefixes::Family,
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
pub(super) fn deleted(r: Result<(), MapError>) -> Result<bool, MapError> {
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
    /// The IPv4 registry and the DIR-24-8 tables derived from it.
    v4: Family<Fib4<MapStore>>,
    /// The IPv6 registry and the multibit trie derived from it.
    v6: Family<Fib6<MapStore6>>,
    policies: Array<MapData, PolicyTable>,
    pops: Array<MapData, Pop>,
    tx_ports: DevMapHash<MapData>,
    settings: Array<MapData, Settings>,
    local_v4: HashMap<MapData, [u8; 4], u8>,
    local_v6: HashMap<MapData, [u8; 16], u8>,
    /// Logical ports: (ifindex, VLAN tags) → port.
    lports: HashMap<MapData, LportKey, PortEntry>,
    /// The private routing domains' prefixes (domain id, then the address).
    domain_v4: LpmTrie<MapData, DomainKey4, PrefixEntry>,
    domain_v6: LpmTrie<MapData, DomainKey6, PrefixEntry>,
    /// The kernel's array copy of `ports` and filter of `local_v4`/`local_v6`.
    index: Index,
}

const TABLE_MAPS: [&str; 20] = [
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
    map_names::FIB6_NODES,
    map_names::FIB6_TAILS,
    map_names::FIB6_LEAVES,
    map_names::LPORTS,
    map_names::DOMAIN_V4,
    map_names::DOMAIN_V6,
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

    fn from_maps(maps: [Result<Map, MapsError>; 20]) -> Result<Self, MapsError> {
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
            n6,
            t6,
            leaves6,
            lports,
            domain_v4,
            domain_v6,
        ] = maps;
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
        let fib6 = MapStore6::new(
            array(map_names::FIB6_NODES, n6?)?,
            array(map_names::FIB6_TAILS, t6?)?,
            array(map_names::FIB6_LEAVES, leaves6?)?,
        )?;
        Ok(Self {
            v4: Family::new(array(map_names::PREFIX_V4, v4?)?, Fib4::new(fib4))?,
            v6: Family::new(array(map_names::PREFIX_V6, v6?)?, Fib6::new(fib6))?,
            index: Index::new(
                typed(map_names::PORT_INDEX, port_index?)?,
                typed(map_names::LOCAL_BITS, local_bits?)?,
            ),
            ports: typed(map_names::PORTS, ports?)?,
            policies: typed(map_names::POLICIES, policies?)?,
            pops: typed(map_names::POPS, pops?)?,
            tx_ports: typed(map_names::TX_PORTS, tx?)?,
            settings: typed(map_names::SETTINGS, settings?)?,
            local_v4: typed(map_names::LOCAL_V4, l4?)?,
            local_v6: typed(map_names::LOCAL_V6, l6?)?,
            lports: typed(map_names::LPORTS, lports?)?,
            domain_v4: typed(map_names::DOMAIN_V4, domain_v4?)?,
            domain_v6: typed(map_names::DOMAIN_V6, domain_v6?)?,
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

    /// Registers (or replaces) a prefix: in the registry first, then in
    /// the tables the kernel reads (IPv4: DIR-24-8, IPv6: the multibit
    /// trie); on failure there the registry is restored.
    pub fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        match net {
            IpNet::V4(_) => self.v4.set(&net, entry),
            IpNet::V6(_) => self.v6.set(&net, entry),
        }
    }

    /// Registers (or replaces) many prefixes, in order, as
    /// [`Tables::set_prefix`] does. Returns how many were written; on an
    /// error, the ones before that count are written and nothing after it
    /// (the maps hold the old entries of the rest).
    pub fn set_prefixes(
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

    /// Unregisters many prefixes, as [`Tables::del_prefix`] does. Returns
    /// how many were removed (or were not registered); on an error, the
    /// ones before that count are removed and nothing after it.
    pub fn del_prefixes(&mut self, nets: &[IpNet]) -> (usize, Result<(), MapsError>) {
        for (i, net) in nets.iter().enumerate() {
            if let Err(e) = self.del_prefix(*net) {
                return (i, Err(e));
            }
        }
        (nets.len(), Ok(()))
    }

    /// Every registered prefix and its entry, read back from the maps.
    pub fn prefixes(&self) -> Result<Vec<(IpNet, PrefixEntry)>, MapsError> {
        let mut out = Vec::new();
        self.v4.list(&mut out)?;
        self.v6.list(&mut out)?;
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

    /// Unregisters a prefix; true if it was registered. It leaves the
    /// tables the kernel reads first, then the trie.
    pub fn del_prefix(&mut self, net: IpNet) -> Result<bool, MapsError> {
        match net {
            IpNet::V4(_) => self.v4.del(&net),
            IpNet::V6(_) => self.v6.del(&net),
        }
    }

    /// The entry of the longest registered prefix covering `addr`, as the
    /// kernel finds it (through the DIR-24-8 tables or the IPv6 trie).
    pub fn lookup(&self, addr: IpAddr) -> Result<Option<PrefixEntry>, MapsError> {
        match addr {
            IpAddr::V4(a) => fib::lookup_in(self.v4.tables().store(), a),
            IpAddr::V6(a) => fib6::lookup_in(self.v6.tables().store(), a),
        }
    }

    /// What the IPv6 multibit trie holds (as the model counts it: after
    /// the first IPv6 change since the maps were taken).
    pub fn ipv6_usage(&self) -> Ipv6Usage {
        let t = self.v6.tables();
        Ipv6Usage {
            nodes: t.nodes_in_use(),
            tails: t.tails_in_use(),
            leaves: t.leaves_in_use(),
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

/// Logical ports and private routing domains.
impl Tables {
    /// Declares (or replaces) a logical port: frames arriving on
    /// `key.ifindex` with exactly `key`'s VLAN tags are port `entry`. The
    /// interface's own entry ([`Tables::set_port`], with
    /// `port_flags::TAGGED`) makes the program look here, and is the
    /// transmit target.
    pub fn set_lport(&mut self, key: LportKey, entry: PortEntry) -> Result<(), MapsError> {
        self.lports
            .insert(key, entry, 0)
            .map_err(|e| write_error(map_names::LPORTS, limits::MAX_LPORTS, e))
    }

    /// Removes a logical port; true if it was there.
    pub fn del_lport(&mut self, key: LportKey) -> Result<bool, MapsError> {
        deleted(self.lports.remove(&key)).map_err(|source| MapsError::Map {
            map: map_names::LPORTS,
            source,
        })
    }

    /// Every logical port: (key, entry), in key order.
    pub fn lports(&self) -> Result<Vec<(LportKey, PortEntry)>, MapsError> {
        let mut out = self
            .lports
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| MapsError::Map {
                map: map_names::LPORTS,
                source,
            })?;
        out.sort_by_key(|(k, _)| *k);
        Ok(out)
    }

    /// Registers (or replaces) `net` in private routing domain `domain`
    /// (not [`edge_common::PUBLIC_DOMAIN`], whose prefixes are
    /// [`Tables::set_prefix`]'s). Host bits of `net` are cleared.
    pub fn set_domain_prefix(
        &mut self,
        domain: u32,
        net: IpNet,
        entry: PrefixEntry,
    ) -> Result<(), MapsError> {
        let limit = limits::MAX_DOMAIN_PREFIXES;
        match net.trunc() {
            IpNet::V4(n) => self
                .domain_v4
                .insert(&domain_key4(domain, n), entry, 0)
                .map_err(|e| write_error(map_names::DOMAIN_V4, limit, e)),
            IpNet::V6(n) => self
                .domain_v6
                .insert(&domain_key6(domain, n), entry, 0)
                .map_err(|e| write_error(map_names::DOMAIN_V6, limit, e)),
        }
    }

    /// Unregisters `net` from private domain `domain`; true if it was there.
    pub fn del_domain_prefix(&mut self, domain: u32, net: IpNet) -> Result<bool, MapsError> {
        let (map, r) = match net.trunc() {
            IpNet::V4(n) => (
                map_names::DOMAIN_V4,
                self.domain_v4.remove(&domain_key4(domain, n)),
            ),
            IpNet::V6(n) => (
                map_names::DOMAIN_V6,
                self.domain_v6.remove(&domain_key6(domain, n)),
            ),
        };
        deleted(r).map_err(|source| MapsError::Map { map, source })
    }

    /// Every private domain's prefixes: (domain, prefix, entry), sorted by
    /// domain, then prefix (IPv4 first).
    pub fn domain_prefixes(&self) -> Result<Vec<(u32, IpNet, PrefixEntry)>, MapsError> {
        let err = |map| move |source| MapsError::Map { map, source };
        let mut out = Vec::new();
        for item in self.domain_v4.iter() {
            let (k, e) = item.map_err(err(map_names::DOMAIN_V4))?;
            let (domain, len, d) = split_key(&k);
            let a = std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&d[4..]).expect("4 bytes"));
            out.push((
                domain,
                IpNet::V4(Ipv4Net::new(a, len).map_err(bad_len(map_names::DOMAIN_V4))?),
                e,
            ));
        }
        for item in self.domain_v6.iter() {
            let (k, e) = item.map_err(err(map_names::DOMAIN_V6))?;
            let (domain, len, d) = split_key(&k);
            let a = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&d[4..]).expect("16 bytes"));
            out.push((
                domain,
                IpNet::V6(Ipv6Net::new(a, len).map_err(bad_len(map_names::DOMAIN_V6))?),
                e,
            ));
        }
        out.sort_by_key(|(d, n, _)| (*d, *n));
        Ok(out)
    }

    /// The entry of the longest prefix of private domain `domain` covering
    /// `addr`, as the kernel finds it.
    pub fn domain_lookup(
        &self,
        domain: u32,
        addr: IpAddr,
    ) -> Result<Option<PrefixEntry>, MapsError> {
        let found = |map, r: Result<PrefixEntry, MapError>| match r {
            Ok(e) => Ok(Some(e)),
            Err(e) if not_found(&e) => Ok(None),
            Err(source) => Err(MapsError::Map { map, source }),
        };
        match addr {
            IpAddr::V4(a) => {
                let key = domain_key4(domain, Ipv4Net::new(a, 32).expect("/32"));
                found(map_names::DOMAIN_V4, self.domain_v4.get(&key, 0))
            }
            IpAddr::V6(a) => {
                let key = domain_key6(domain, Ipv6Net::new(a, 128).expect("/128"));
                found(map_names::DOMAIN_V6, self.domain_v6.get(&key, 0))
            }
        }
    }
}

/// The `EDGE_DOM_V4` key of `net` in `domain`: the domain id big endian,
/// then the address; 32 bits more than the prefix.
fn domain_key4(domain: u32, net: Ipv4Net) -> Key<DomainKey4> {
    let mut data = [0u8; 8];
    data[..4].copy_from_slice(&domain.to_be_bytes());
    data[4..].copy_from_slice(&net.addr().octets());
    Key::new(32 + u32::from(net.prefix_len()), data)
}

/// The `EDGE_DOM_V6` key of `net` in `domain`, as [`domain_key4`].
fn domain_key6(domain: u32, net: Ipv6Net) -> Key<DomainKey6> {
    let mut data = [0u8; 20];
    data[..4].copy_from_slice(&domain.to_be_bytes());
    data[4..].copy_from_slice(&net.addr().octets());
    Key::new(32 + u32::from(net.prefix_len()), data)
}

/// A domain key's domain id, prefix length and whole data (the address
/// from byte 4).
fn split_key<const N: usize>(k: &Key<[u8; N]>) -> (u32, u8, [u8; N]) {
    let d = k.data();
    let domain = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    (domain, k.prefix_len().saturating_sub(32) as u8, d)
}

/// A key read back whose prefix length does not fit its family (the
/// kernel never holds one: every key is written by this module).
fn bad_len(map: &'static str) -> impl Fn(ipnet::PrefixLenError) -> MapsError {
    move |e| MapsError::Mmap {
        map,
        what: format!("a key read back has a bad prefix length: {e}"),
    }
}

/// Nodes (below the root), tails and leaves the IPv6 multibit trie uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Usage {
    pub nodes: u32,
    pub tails: u32,
    pub leaves: u32,
}

/// Prefixes per batched trie write.
pub const BATCH: usize = 4096;

pub use super::counters::{Count, Counters, Stats, prefix_slot};
