//! Readers of the per-CPU counter maps: packets and bytes per action,
//! reason, port, prefix slot and PoP, summed over CPUs.

use std::path::Path;

use aya::maps::{Map, MapData, PerCpuArray};
use edge_common::{Action, Counter, Reason, limits, map_names};
use serde::Serialize;

use super::{
    error::MapsError,
    maps::{open_pinned, typed},
};

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
    /// By reason name (`policy`, `unregistered`, ...), in `Reason::ALL` order.
    pub reasons: Vec<(&'static str, Count)>,
    /// Prefix counter slots with traffic: (slot, count).
    pub prefixes: Vec<(u32, Count)>,
    /// PoPs that received traffic: (PoP id, count).
    pub pops: Vec<(u32, Count)>,
    /// Ports that received traffic: (port id, count).
    pub ports: Vec<(u32, Count)>,
    /// Protection events: `sent`, `rate_limited`, `ring_full` (packets only).
    pub events: Vec<(&'static str, u64)>,
}

impl Stats {
    pub fn reason(&self, r: Reason) -> Count {
        self.reasons[r as usize].1
    }

    pub fn pop(&self, id: u32) -> Count {
        by_id(&self.pops, id)
    }

    pub fn prefix(&self, slot: u32) -> Count {
        by_id(&self.prefixes, slot)
    }

    /// Every prefix slot's count, indexed by slot (up to the highest with
    /// traffic): one lookup per prefix however many there are.
    pub fn prefix_counts(&self) -> Vec<Count> {
        let n = self.prefixes.last().map_or(0, |(s, _)| *s as usize + 1);
        let mut out = vec![Count::default(); n];
        for &(s, c) in &self.prefixes {
            out[s as usize] = c;
        }
        out
    }

    pub fn port(&self, id: u32) -> Count {
        by_id(&self.ports, id)
    }
}

fn by_id(rows: &[(u32, Count)], id: u32) -> Count {
    rows.iter()
        .find(|(i, _)| *i == id)
        .map(|(_, c)| *c)
        .unwrap_or_default()
}

impl Count {
    fn add(self, c: &Count) -> Count {
        Count {
            packets: self.packets + c.packets,
            bytes: self.bytes + c.bytes,
        }
    }
}

const COUNTER_MAPS: [&str; 6] = [
    map_names::ACTION_STATS,
    map_names::REASON_STATS,
    map_names::PREFIX_STATS,
    map_names::POP_STATS,
    map_names::PORT_STATS,
    map_names::EVENT_STATS,
];

/// Readers of the per-CPU counter maps.
pub struct Counters {
    maps: [PerCpuArray<MapData, Counter>; 6],
}

impl Counters {
    pub fn take(ebpf: &mut aya::Ebpf) -> Result<Self, MapsError> {
        Self::from_maps(
            COUNTER_MAPS.map(|map| ebpf.take_map(map).ok_or(MapsError::Missing { map })),
        )
    }

    pub fn open(dir: &Path) -> Result<Self, MapsError> {
        Self::from_maps(COUNTER_MAPS.map(|map| open_pinned(dir, map)))
    }

    fn from_maps(maps: [Result<Map, MapsError>; 6]) -> Result<Self, MapsError> {
        let [a, r, pfx, pop, port, ev] = maps;
        Ok(Self {
            maps: [
                typed(COUNTER_MAPS[0], a?)?,
                typed(COUNTER_MAPS[1], r?)?,
                typed(COUNTER_MAPS[2], pfx?)?,
                typed(COUNTER_MAPS[3], pop?)?,
                typed(COUNTER_MAPS[4], port?)?,
                typed(COUNTER_MAPS[5], ev?)?,
            ],
        })
    }

    /// Sums one index over CPUs.
    fn sum(&self, which: usize, i: u32) -> Result<Count, MapsError> {
        let per_cpu = self.maps[which]
            .get(&i, 0)
            .map_err(|source| MapsError::Map {
                map: COUNTER_MAPS[which],
                source,
            })?;
        Ok(per_cpu.iter().fold(Count::default(), |t, c| {
            t.add(&Count {
                packets: c.packets,
                bytes: c.bytes,
            })
        }))
    }

    /// Every index below `limit` with traffic, summed over CPUs.
    fn nonzero(&self, which: usize, limit: u32) -> Result<Vec<(u32, Count)>, MapsError> {
        let mut out = Vec::new();
        for i in 0..limit.min(self.maps[which].len()) {
            let c = self.sum(which, i)?;
            if c.packets != 0 {
                out.push((i, c));
            }
        }
        Ok(out)
    }

    /// Zeroes a prefix counter slot (before it is given to another prefix).
    pub fn reset_prefix_slot(&mut self, slot: u32) -> Result<(), MapsError> {
        self.reset(2, slot)
    }

    /// Zeroes the counters of port id `id` (an id given to another port).
    pub fn reset_port(&mut self, id: u32) -> Result<(), MapsError> {
        self.reset(4, id)
    }

    /// Zeroes the counters of PoP id `id` (an id given to another PoP).
    pub fn reset_pop(&mut self, id: u32) -> Result<(), MapsError> {
        self.reset(3, id)
    }

    /// Zeroes entry `slot` of counter map `COUNTER_MAPS[map]`.
    fn reset(&mut self, map: usize, slot: u32) -> Result<(), MapsError> {
        let name = COUNTER_MAPS[map];
        let map = &mut self.maps[map];
        let zero = aya::maps::PerCpuValues::try_from(vec![
            Counter::default();
            aya::util::nr_cpus().map_err(
                |(_, e)| MapsError::Cpus(e)
            )?
        ])
        .expect("one value per CPU");
        map.set(slot, zero, 0)
            .map_err(|source| MapsError::Map { map: name, source })
    }

    /// [`Counters::reset_prefix_slot`] for many slots: one
    /// `BPF_MAP_UPDATE_BATCH` per [`super::maps::BATCH`] slots where the
    /// kernel batches (a million-prefix load gives 65,535 slots anew).
    pub fn reset_prefix_slots(&mut self, slots: &[u32]) -> Result<(), MapsError> {
        use super::batch::{BatchError, batch_error, raw_fd, update_batch};
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| MapsError::Cpus(e))?;
        // A per-CPU value in a batch: one value per possible CPU, each
        // rounded up to 8 bytes (`Counter` is).
        const _: () = assert!(size_of::<Counter>().is_multiple_of(8));
        let zero = vec![Counter::default(); cpus * super::maps::BATCH.min(slots.len())];
        let fd = raw_fd(aya::maps::IterableMap::map(&self.maps[2]));
        for (k, chunk) in slots.chunks(super::maps::BATCH).enumerate() {
            match update_batch(fd, chunk, &zero[..chunk.len() * cpus], cpus) {
                Ok(()) => {}
                Err(BatchError::Unsupported) => {
                    for &s in &slots[k * super::maps::BATCH..] {
                        self.reset_prefix_slot(s)?;
                    }
                    return Ok(());
                }
                Err(BatchError::Failed { error, .. }) => {
                    return Err(batch_error(COUNTER_MAPS[2], 0, error));
                }
            }
        }
        Ok(())
    }

    /// A snapshot of every counter; prefix slots are read up to
    /// `prefix_slots` (one syscall per slot: pass the number in use).
    pub fn read(&self, prefix_slots: u32) -> Result<Stats, MapsError> {
        let mut stats = Stats::default();
        for a in Action::ALL {
            stats.actions.push((a.name(), self.sum(0, a as u32)?));
        }
        for &r in Reason::ALL {
            stats.reasons.push((r.name(), self.sum(1, r as u32)?));
        }
        stats.prefixes = self.nonzero(2, prefix_slots)?;
        stats.pops = self.nonzero(3, limits::MAX_POPS)?;
        stats.ports = self.nonzero(4, limits::MAX_PORTS)?;
        for (name, i) in [
            ("sent", edge_common::event_stats::SENT),
            ("rate_limited", edge_common::event_stats::RATE_LIMITED),
            ("ring_full", edge_common::event_stats::RING_FULL),
        ] {
            stats.events.push((name, self.sum(5, i)?.packets));
        }
        Ok(stats)
    }
}

/// Counter slot of the prefix at `index` in a plan: slots 1.. in order,
/// slot 0 shared by prefixes beyond `MAX_PREFIX_SLOTS`.
pub fn prefix_slot(index: usize) -> u32 {
    u32::try_from(index + 1)
        .ok()
        .filter(|&s| s < limits::MAX_PREFIX_SLOTS)
        .unwrap_or(0)
}
