//! Reader of the customer latency maps (`edge_common::rtt`): the per-slot
//! round-trip histograms and the sampling counters, summed over CPUs, and
//! the flow table's fill. The kernel writes them; edged only reads, and
//! clears the histograms of slots no prefix holds any more.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::atomic::Ordering,
    thread::{self, JoinHandle},
    time::Duration,
};

use aya::maps::{HashMap as AyaHashMap, Map, MapData, PerCpuArray, PerCpuHashMap};
use edge_common::{
    Counter, map_names,
    rtt::{CLOCK_TICK_NS, RttBucketKey, RttFlow, RttState, rtt_stats},
};

use super::{
    error::MapsError,
    maps::{open_pinned, typed},
    slab::Mmap,
};

/// Sample counts by bucket (`edge_common::rtt::bucket`), one histogram.
pub type Buckets = BTreeMap<u32, u64>;

/// The latency maps.
pub struct Latency {
    flows: AyaHashMap<MapData, RttFlow, RttState>,
    /// The flow table's size (`[limits] rtt_flows`, as the kernel has it).
    flow_limit: u32,
    hist: PerCpuHashMap<MapData, RttBucketKey, u64>,
    stats: PerCpuArray<MapData, Counter>,
}

const MAPS: [&str; 3] = [
    map_names::RTT_FLOWS,
    map_names::RTT_HIST,
    map_names::RTT_STATS,
];

impl Latency {
    /// Takes the maps out of a loaded object.
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        Self::from_maps(MAPS.map(|map| ebpf.take_map(map).ok_or(MapsError::Missing { map })))
    }

    /// Opens the maps pinned under `dir`.
    pub fn open(dir: &Path) -> Result<Self, MapsError> {
        Self::from_maps(MAPS.map(|map| open_pinned(dir, map)))
    }

    fn from_maps(maps: [Result<Map, MapsError>; 3]) -> Result<Self, MapsError> {
        let [flows, hist, stats] = maps;
        let flows = flows?;
        let flow_limit = match &flows {
            Map::LruHashMap(d) => d.info().map_or(0, |i| i.max_entries()),
            _ => 0,
        };
        Ok(Self {
            flows: typed(map_names::RTT_FLOWS, flows)?,
            flow_limit,
            hist: typed(map_names::RTT_HIST, hist?)?,
            stats: typed(map_names::RTT_STATS, stats?)?,
        })
    }

    /// Every slot's histogram, summed over CPUs (slots without samples are
    /// absent). One pass over the map's keys.
    pub fn histograms(&self) -> Result<BTreeMap<u32, Buckets>, MapsError> {
        let err = |source| MapsError::Map {
            map: map_names::RTT_HIST,
            source,
        };
        let mut out: BTreeMap<u32, Buckets> = BTreeMap::new();
        for item in self.hist.iter() {
            let (key, per_cpu) = item.map_err(err)?;
            let n: u64 = per_cpu.iter().sum();
            if n != 0 {
                *out.entry(key.slot)
                    .or_default()
                    .entry(key.bucket)
                    .or_default() += n;
            }
        }
        Ok(out)
    }

    /// The sampling counters (`rtt_stats::NAMES` order), summed over CPUs.
    pub fn stats(&self) -> Result<Vec<(&'static str, u64)>, MapsError> {
        (0..rtt_stats::COUNT)
            .map(|i| {
                let per_cpu = self.stats.get(&i, 0).map_err(|source| MapsError::Map {
                    map: map_names::RTT_STATS,
                    source,
                })?;
                Ok((
                    rtt_stats::NAMES[i as usize],
                    per_cpu.iter().map(|c| c.packets).sum(),
                ))
            })
            .collect()
    }

    /// Flows in the flow table now, and its size.
    pub fn flows(&self) -> (usize, u32) {
        let n = self.flows.keys().filter(Result::is_ok).count();
        (n, self.flow_limit)
    }

    /// Removes every histogram bucket of `slots` (slots no prefix holds
    /// any more): one pass over the map's keys.
    pub fn clear_slots(
        &mut self,
        slots: &std::collections::BTreeSet<u32>,
    ) -> Result<(), MapsError> {
        let keys: Vec<RttBucketKey> = self
            .hist
            .keys()
            .filter_map(Result::ok)
            .filter(|k| slots.contains(&k.slot))
            .collect();
        for k in keys {
            match self.hist.remove(&k) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(source) => {
                    return Err(MapsError::Map {
                        map: map_names::RTT_HIST,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The coarse clock of customer latency's gates (`EDGE_RTT_CLOCK`,
/// `edge_common::rtt::CLOCK_TICK_NS`): `CLOCK_MONOTONIC`, the clock the
/// kernel's samples are taken with, written by a thread of edged's own so
/// that nothing edged's other work does (a long reload) holds it back.
/// Mapped, so a tick is one store.
pub struct Clock {
    map: Mmap,
}

impl Clock {
    /// Takes the map out of a loaded object.
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        let map = ebpf
            .take_map(map_names::RTT_CLOCK)
            .ok_or(MapsError::Missing {
                map: map_names::RTT_CLOCK,
            })?;
        Self::from_map(map)
    }

    fn from_map(map: aya::maps::Map) -> Result<Self, MapsError> {
        let aya::maps::Map::Array(data) = map else {
            return Err(MapsError::Mmap {
                map: map_names::RTT_CLOCK,
                what: "not an array".into(),
            });
        };
        Ok(Self {
            map: Mmap::new(data, map_names::RTT_CLOCK, 8)?,
        })
    }

    /// Writes `ns` (0: the kernel reads the clock itself on every packet
    /// that could matter).
    pub fn set(&self, ns: u64) {
        self.map.word64().store(ns, Ordering::Relaxed);
    }

    /// Writes the time now.
    pub fn tick(&self) {
        self.set(monotonic_ns());
    }

    /// Ticks every `CLOCK_TICK_NS` from a thread of its own, for the
    /// process's life.
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name("rtt-clock".into())
            .spawn(move || {
                loop {
                    self.tick();
                    thread::sleep(Duration::from_nanos(CLOCK_TICK_NS));
                }
            })
    }
}

/// `CLOCK_MONOTONIC` in ns: what `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}
