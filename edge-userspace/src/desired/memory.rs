//! The table maps held in memory, as a [`MapWriter`]: for root-free tests
//! of `apply` and of the daemon's change pipeline.

use std::net::IpAddr;

use edge_common::{
    LportKey, NO_POP, PolicyTable, Pop, PortEntry, PrefixEntry, Settings, preference,
};
use ipnet::IpNet;

use super::{Desired, MapWriter};
use crate::dataplane::MapsError;

/// Table maps in memory, failing the write numbered `fail_at` (0-based),
/// and recording the order of writes.
#[derive(Default)]
pub(crate) struct Memory {
    pub(crate) maps: Desired,
    pub(crate) writes: usize,
    pub(crate) fail_at: Option<usize>,
    /// Counter slots zeroed.
    pub(crate) reset: Vec<u32>,
    /// Every prefix written, with whether its policy's table and its PoPs
    /// were in place at that moment.
    pub(crate) order_ok: bool,
}

impl Memory {
    pub(crate) fn holding(d: &Desired) -> Self {
        Self {
            maps: d.clone(),
            order_ok: true,
            ..Self::default()
        }
    }

    fn step(&mut self) -> Result<(), MapsError> {
        let n = self.writes;
        self.writes += 1;
        if self.fail_at == Some(n) {
            return Err(MapsError::MapFull {
                map: "memory",
                limit: n as u32,
            });
        }
        Ok(())
    }

    /// A prefix written now finds its table, and the table's PoPs in use
    /// (a microsoft-preference prefix; an internet one uses no table).
    fn check_prefix(&mut self, e: &PrefixEntry) {
        if e.preference != preference::MICROSOFT {
            return;
        }
        let table = &self.maps.policies[e.policy as usize];
        let pops_in_use = table
            .pops
            .iter()
            .filter(|&&p| p != NO_POP)
            .all(|&p| self.maps.pops[p as usize].flags != 0);
        if *table == PolicyTable::default() || !pops_in_use {
            self.order_ok = false;
        }
    }
}

impl MapWriter for Memory {
    fn set_settings(&mut self, settings: Settings) -> Result<(), MapsError> {
        self.step()?;
        self.maps.settings = settings;
        Ok(())
    }
    fn set_port(&mut self, ifindex: u32, entry: PortEntry) -> Result<(), MapsError> {
        self.step()?;
        self.maps.ports.insert(ifindex, entry);
        Ok(())
    }
    fn del_port(&mut self, ifindex: u32) -> Result<(), MapsError> {
        self.step()?;
        self.maps.ports.remove(&ifindex);
        Ok(())
    }
    fn set_pop(&mut self, id: u32, pop: Pop) -> Result<(), MapsError> {
        self.step()?;
        self.maps.pops[id as usize] = pop;
        Ok(())
    }
    fn set_policy(&mut self, id: u32, table: &PolicyTable) -> Result<(), MapsError> {
        self.step()?;
        self.maps.policies[id as usize] = *table;
        Ok(())
    }
    fn add_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        self.step()?;
        self.maps.locals.insert(addr);
        Ok(())
    }
    fn del_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        self.step()?;
        self.maps.locals.remove(&addr);
        Ok(())
    }
    fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        self.step()?;
        self.maps.prefixes.insert(net, entry);
        Ok(())
    }
    fn del_prefix(&mut self, net: IpNet) -> Result<bool, MapsError> {
        self.step()?;
        Ok(self.maps.prefixes.remove(&net).is_some())
    }
    fn set_prefixes(&mut self, items: &[(IpNet, PrefixEntry)]) -> (usize, Result<(), MapsError>) {
        for (i, (net, e)) in items.iter().enumerate() {
            self.check_prefix(e);
            if let Err(err) = self.set_prefix(*net, *e) {
                return (i, Err(err));
            }
        }
        (items.len(), Ok(()))
    }
    fn del_prefixes(&mut self, nets: &[IpNet]) -> (usize, Result<(), MapsError>) {
        for (i, net) in nets.iter().enumerate() {
            if let Err(err) = self.del_prefix(*net) {
                return (i, Err(err));
            }
        }
        (nets.len(), Ok(()))
    }
    fn reset_prefix_slot(&mut self, slot: u32) -> Result<(), MapsError> {
        self.step()?;
        self.reset.push(slot);
        Ok(())
    }
    fn set_lport(&mut self, key: LportKey, entry: PortEntry) -> Result<(), MapsError> {
        self.step()?;
        self.maps.lports.insert(key, entry);
        Ok(())
    }
    fn del_lport(&mut self, key: LportKey) -> Result<bool, MapsError> {
        self.step()?;
        Ok(self.maps.lports.remove(&key).is_some())
    }
    fn set_domain_prefix(
        &mut self,
        domain: u32,
        net: IpNet,
        entry: PrefixEntry,
    ) -> Result<(), MapsError> {
        self.check_prefix(&entry);
        self.step()?;
        self.maps.domain_prefixes.insert((domain, net), entry);
        Ok(())
    }
    fn del_domain_prefix(&mut self, domain: u32, net: IpNet) -> Result<bool, MapsError> {
        self.step()?;
        Ok(self.maps.domain_prefixes.remove(&(domain, net)).is_some())
    }
}
