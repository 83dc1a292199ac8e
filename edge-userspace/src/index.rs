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

use crate::maps::MapsError;

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
