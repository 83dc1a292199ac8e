//! Typed owners of the pinned maps: one place that writes each map, and the
//! errors that say which map and which limit.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use aya::maps::{
    Array, DevMapHash, LpmTrie, Map, MapData, MapError, PerCpuArray, lpm_trie::Key,
    xdp::XdpMapError,
};
use edge_common::{Action, Counter, Pop, PrefixEntry, Reason, limits, map_names};
use ipnet::IpNet;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    #[error("map {map} is full (limit {limit} entries)")]
    MapFull { map: &'static str, limit: u32 },
    #[error("map {map}: {source}")]
    Map { map: &'static str, source: MapError },
    #[error("map {map}: {source}")]
    Xdp {
        map: &'static str,
        source: XdpMapError,
    },
    #[error("map {map} not found in the eBPF object")]
    Missing { map: &'static str },
    #[error("opening pinned map {path}: {source}")]
    Pin { path: PathBuf, source: MapError },
}

/// Turns a failed write into `MapFull` when the kernel says the map is full
/// (E2BIG for hash maps, ENOSPC for LPM tries).
fn write_error(map: &'static str, limit: u32, source: MapError) -> MapsError {
    if let MapError::SyscallError(e) = &source
        && matches!(e.io_error.raw_os_error(), Some(libc::E2BIG | libc::ENOSPC))
    {
        return MapsError::MapFull { map, limit };
    }
    MapsError::Map { map, source }
}

fn open_pinned(dir: &Path, map: &'static str) -> Result<Map, MapsError> {
    let path = dir.join(map);
    MapData::from_pin(&path)
        .and_then(Map::from_map_data)
        .map_err(|source| MapsError::Pin { path, source })
}

/// The forwarding tables: prefixes, PoPs and transmit ports.
pub struct Tables {
    prefixes_v4: LpmTrie<MapData, [u8; 4], PrefixEntry>,
    prefixes_v6: LpmTrie<MapData, [u8; 16], PrefixEntry>,
    pops: Array<MapData, Pop>,
    tx_ports: DevMapHash<MapData>,
}

impl Tables {
    /// Takes the maps out of a loaded object.
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        let mut take = |map: &'static str| ebpf.take_map(map).ok_or(MapsError::Missing { map });
        Self::from_maps(
            take(map_names::PREFIX_V4)?,
            take(map_names::PREFIX_V6)?,
            take(map_names::POPS)?,
            take(map_names::TX_PORTS)?,
        )
    }

    /// Opens the maps pinned under `dir`.
    pub fn open(dir: &Path) -> Result<Self, MapsError> {
        Self::from_maps(
            open_pinned(dir, map_names::PREFIX_V4)?,
            open_pinned(dir, map_names::PREFIX_V6)?,
            open_pinned(dir, map_names::POPS)?,
            open_pinned(dir, map_names::TX_PORTS)?,
        )
    }

    fn from_maps(v4: Map, v6: Map, pops: Map, tx: Map) -> Result<Self, MapsError> {
        let map = |map: &'static str| move |source: MapError| MapsError::Map { map, source };
        Ok(Self {
            prefixes_v4: LpmTrie::try_from(v4).map_err(map(map_names::PREFIX_V4))?,
            prefixes_v6: LpmTrie::try_from(v6).map_err(map(map_names::PREFIX_V6))?,
            pops: Array::try_from(pops).map_err(map(map_names::POPS))?,
            tx_ports: DevMapHash::try_from(tx).map_err(map(map_names::TX_PORTS))?,
        })
    }

    /// Registers (or replaces) a prefix.
    pub fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        match net {
            IpNet::V4(n) => self
                .prefixes_v4
                .insert(
                    &Key::new(n.prefix_len().into(), n.network().octets()),
                    entry,
                    0,
                )
                .map_err(|e| write_error(map_names::PREFIX_V4, limits::MAX_PREFIXES_V4, e)),
            IpNet::V6(n) => self
                .prefixes_v6
                .insert(
                    &Key::new(n.prefix_len().into(), n.network().octets()),
                    entry,
                    0,
                )
                .map_err(|e| write_error(map_names::PREFIX_V6, limits::MAX_PREFIXES_V6, e)),
        }
    }

    /// The entry of the longest registered prefix covering `addr`, as the kernel would find it.
    pub fn lookup(&self, addr: IpAddr) -> Result<Option<PrefixEntry>, MapsError> {
        let result = match addr {
            IpAddr::V4(a) => self.prefixes_v4.get(&Key::new(32, a.octets()), 0),
            IpAddr::V6(a) => self.prefixes_v6.get(&Key::new(128, a.octets()), 0),
        };
        match result {
            Ok(entry) => Ok(Some(entry)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(MapsError::Map {
                map: map_names::PREFIX_V4,
                source,
            }),
        }
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

    /// Lets the program redirect to `ifindex`.
    pub fn add_tx_port(&mut self, ifindex: u32) -> Result<(), MapsError> {
        self.tx_ports
            .insert(ifindex, ifindex, None, 0)
            .map_err(|e| match e {
                XdpMapError::MapError(e) => {
                    write_error(map_names::TX_PORTS, limits::MAX_TX_PORTS, e)
                }
                source => MapsError::Xdp {
                    map: map_names::TX_PORTS,
                    source,
                },
            })
    }
}

/// Packets and bytes, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

/// A snapshot of the program's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// By action name (`pass`, `redirect`, ...), in `Action::ALL` order.
    pub actions: Vec<(&'static str, Count)>,
    /// By reason name (`forwarded`, `unregistered`, ...), in `Reason::ALL` order.
    pub reasons: Vec<(&'static str, Count)>,
}

impl Stats {
    pub fn action(&self, a: Action) -> Count {
        self.actions[a as usize].1
    }

    pub fn reason(&self, r: Reason) -> Count {
        self.reasons[r as usize].1
    }

    pub fn total(&self) -> Count {
        self.actions
            .iter()
            .fold(Count::default(), |t, (_, c)| Count {
                packets: t.packets + c.packets,
                bytes: t.bytes + c.bytes,
            })
    }
}

/// Readers of the per-CPU counter maps.
pub struct Counters {
    actions: PerCpuArray<MapData, Counter>,
    reasons: PerCpuArray<MapData, Counter>,
}

impl Counters {
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        let mut take = |map: &'static str| ebpf.take_map(map).ok_or(MapsError::Missing { map });
        Self::from_maps(
            take(map_names::ACTION_STATS)?,
            take(map_names::REASON_STATS)?,
        )
    }

    pub fn open(dir: &Path) -> Result<Self, MapsError> {
        Self::from_maps(
            open_pinned(dir, map_names::ACTION_STATS)?,
            open_pinned(dir, map_names::REASON_STATS)?,
        )
    }

    fn from_maps(actions: Map, reasons: Map) -> Result<Self, MapsError> {
        Ok(Self {
            actions: PerCpuArray::try_from(actions).map_err(|source| MapsError::Map {
                map: map_names::ACTION_STATS,
                source,
            })?,
            reasons: PerCpuArray::try_from(reasons).map_err(|source| MapsError::Map {
                map: map_names::REASON_STATS,
                source,
            })?,
        })
    }

    pub fn read(&self) -> Result<Stats, MapsError> {
        let sum = |map: &PerCpuArray<MapData, Counter>, name: &'static str, i: u32| {
            let per_cpu = map
                .get(&i, 0)
                .map_err(|source| MapsError::Map { map: name, source })?;
            Ok::<_, MapsError>(per_cpu.iter().fold(Count::default(), |t, c| Count {
                packets: t.packets + c.packets,
                bytes: t.bytes + c.bytes,
            }))
        };
        let mut stats = Stats::default();
        for a in Action::ALL {
            stats.actions.push((
                a.name(),
                sum(&self.actions, map_names::ACTION_STATS, a as u32)?,
            ));
        }
        for r in Reason::ALL {
            stats.reasons.push((
                r.name(),
                sum(&self.reasons, map_names::REASON_STATS, r as u32)?,
            ));
        }
        Ok(stats)
    }
}

/// The counters as an aligned text table.
pub fn render_stats(stats: &Stats) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{:<16} {:>14} {:>16}", "action", "packets", "bytes");
    for (name, c) in &stats.actions {
        let _ = writeln!(out, "{name:<16} {:>14} {:>16}", c.packets, c.bytes);
    }
    let _ = writeln!(out, "\n{:<16} {:>14} {:>16}", "reason", "packets", "bytes");
    for (name, c) in &stats.reasons {
        let _ = writeln!(out, "{name:<16} {:>14} {:>16}", c.packets, c.bytes);
    }
    out
}
