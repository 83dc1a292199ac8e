//! Desired map contents and applying them as a diff.
//!
//! A config (plus live changes and drained PoPs) is compiled into the exact
//! contents every table map should hold ([`Desired`]); the maps are read back
//! into the same shape ([`dump`]); [`apply`] writes only the differences, in
//! an order that keeps every intermediate state valid for packets (next hops
//! and tables before the prefixes that use them, removals last), and undoes
//! what it wrote if a write fails half way.

mod apply;
mod compile;
pub mod delta;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod memory;
pub mod state;
#[cfg(test)]
mod tests_domains;
mod view;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use anyhow::Result;
pub use apply::*;
pub use compile::*;
use edge_common::{LportKey, PolicyTable, Pop, PortEntry, PrefixEntry, Settings, limits};
use ipnet::IpNet;
use state::{Ids, State};
pub use view::*;

use crate::dataplane::{MapsError, maps::Tables};

/// What every table map should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub settings: Settings,
    /// ifindex → the interface's port entry (its untagged port, and
    /// whether tagged frames are looked up in `lports`).
    pub ports: BTreeMap<u32, PortEntry>,
    /// (ifindex, tags) → logical port, for tagged frames.
    pub lports: BTreeMap<LportKey, PortEntry>,
    /// PoP id → next hop; unused ids hold `Pop::default()`.
    pub pops: Vec<Pop>,
    /// Policy id → table; unused ids hold `PolicyTable::default()` (all `NO_POP`).
    pub policies: Vec<PolicyTable>,
    pub prefixes: BTreeMap<IpNet, PrefixEntry>,
    /// (private domain id, network) → prefix.
    pub domain_prefixes: BTreeMap<(u32, IpNet), PrefixEntry>,
    pub locals: BTreeSet<IpAddr>,
}

impl Default for Desired {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            ports: BTreeMap::new(),
            pops: vec![Pop::default(); limits::MAX_POPS as usize],
            policies: vec![PolicyTable::default(); limits::MAX_POLICIES as usize],
            prefixes: BTreeMap::new(),
            lports: BTreeMap::new(),
            domain_prefixes: BTreeMap::new(),
            locals: BTreeSet::new(),
        }
    }
}

/// Reads every table map back.
pub fn dump(tables: &Tables) -> Result<Desired, MapsError> {
    let mut d = Desired {
        settings: tables.settings()?,
        ports: tables.ports()?.into_iter().collect(),
        prefixes: tables.prefixes()?.into_iter().collect(),
        lports: tables.lports()?.into_iter().collect(),
        domain_prefixes: tables
            .domain_prefixes()?
            .into_iter()
            .map(|(d, n, e)| ((d, n), e))
            .collect(),
        locals: tables.locals()?.into_iter().collect(),
        ..Desired::default()
    };
    for id in 0..limits::MAX_POPS {
        d.pops[id as usize] = tables.pop(id)?;
    }
    for id in 0..limits::MAX_POLICIES {
        d.policies[id as usize] = tables.policy(id)?;
    }
    Ok(d)
}
