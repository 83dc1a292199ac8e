//! The kernel's fast copies of two hash maps (see docs/lookup.md):
//!
//! - `EDGE_PORT_IDX`: ifindex → port for ifindexes below
//!   `limits::PORT_INDEX`, written with every `EDGE_PORTS` change;
//! - `EDGE_LOCAL_BITS`: a bitmap over `edge_common::local_bit` of this
//!   host's addresses, in front of `EDGE_LOCAL_V4`/`EDGE_LOCAL_V6`.
//!
//! The hash maps stay the registries (listed by `Tables::ports` and
//! `Tables::locals`). A bit is set after its address enters the hash and
//! cleared only when no remaining address needs it, so the filter never
//! hides a local address.

use std::net::IpAddr;

use aya::maps::{Array, MapData};
use edge_common::{PortEntry, PortSlot, limits, local_bit, map_names};

use super::MapsError;

pub struct Index {
    ports: Array<MapData, PortSlot>,
    local_bits: Array<MapData, u64>,
}

fn err(map: &'static str) -> impl Fn(aya::maps::MapError) -> MapsError {
    move |source| MapsError::Map { map, source }
}

/// The filter bit of an address.
pub fn bit_of(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            local_bit([o[2], o[3]])
        }
        IpAddr::V6(a) => {
            let o = a.octets();
            local_bit([o[14], o[15]])
        }
    }
}

impl Index {
    pub fn new(ports: Array<MapData, PortSlot>, local_bits: Array<MapData, u64>) -> Self {
        Self { ports, local_bits }
    }

    /// Mirrors a port write (`None`: removed). Ifindexes beyond the array
    /// are served by the hash alone.
    pub fn set_port(&mut self, ifindex: u32, entry: Option<PortEntry>) -> Result<(), MapsError> {
        if ifindex >= limits::PORT_INDEX {
            return Ok(());
        }
        let slot = match entry {
            Some(entry) => PortSlot {
                entry,
                valid: 1,
                _pad: 0,
            },
            None => PortSlot::default(),
        };
        self.ports
            .set(ifindex, slot, 0)
            .map_err(err(map_names::PORT_INDEX))
    }

    /// Makes both maps agree with the registries (`ports`: every port,
    /// `locals`: every local address), writing only what differs. Run when
    /// the maps are taken at load: they may be pinned ones from a build
    /// without them (created empty) or cut short by a crash.
    pub fn resync(
        &mut self,
        ports: &[(u32, PortEntry)],
        locals: &[IpAddr],
    ) -> Result<(), MapsError> {
        let mut want = vec![PortSlot::default(); limits::PORT_INDEX as usize];
        for &(ifindex, entry) in ports {
            if let Some(slot) = want.get_mut(ifindex as usize) {
                *slot = PortSlot {
                    entry,
                    valid: 1,
                    _pad: 0,
                };
            }
        }
        for (i, slot) in want.into_iter().enumerate() {
            let i = i as u32;
            if self.ports.get(&i, 0).map_err(err(map_names::PORT_INDEX))? != slot {
                self.ports
                    .set(i, slot, 0)
                    .map_err(err(map_names::PORT_INDEX))?;
            }
        }
        let mut words = vec![0u64; (limits::LOCAL_BITS / 64) as usize];
        for a in locals {
            let b = bit_of(*a);
            words[(b / 64) as usize] |= 1 << (b % 64);
        }
        for (i, value) in words.into_iter().enumerate() {
            let i = i as u32;
            if self
                .local_bits
                .get(&i, 0)
                .map_err(err(map_names::LOCAL_BITS))?
                != value
            {
                self.local_bits
                    .set(i, value, 0)
                    .map_err(err(map_names::LOCAL_BITS))?;
            }
        }
        Ok(())
    }

    /// Recomputes the filter word of `addr` from `locals` (every local
    /// address after the change) and writes it if it changed.
    pub fn sync_local(&mut self, addr: IpAddr, locals: &[IpAddr]) -> Result<(), MapsError> {
        let word = bit_of(addr) / 64;
        let mut value = 0u64;
        for a in locals {
            let b = bit_of(*a);
            if b / 64 == word {
                value |= 1 << (b % 64);
            }
        }
        let old = self
            .local_bits
            .get(&word, 0)
            .map_err(err(map_names::LOCAL_BITS))?;
        if old != value {
            self.local_bits
                .set(word, value, 0)
                .map_err(err(map_names::LOCAL_BITS))?;
        }
        Ok(())
    }
}
