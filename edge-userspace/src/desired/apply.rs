//! Applying a [`Desired`] as a diff against what the maps hold, with undo,
//! through a small [`MapWriter`] trait (the real maps, or memory in tests).

use std::{collections::BTreeMap, net::IpAddr};

use anyhow::{Context as _, Result};
use edge_common::{LportKey, PolicyTable, Pop, PortEntry, PrefixEntry, Settings};
use ipnet::IpNet;
use log::warn;

use super::*;
use crate::dataplane::{
    MapsError,
    maps::{Counters, Tables},
};

/// What an [`apply`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub written: usize,
    pub removed: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.written == 0 && self.removed == 0
    }
}

/// One write, and how to undo it.
enum Undo {
    Settings(Settings),
    Port(u32, Option<PortEntry>),
    Pop(u32, Pop),
    Policy(u32, Box<PolicyTable>),
    Prefix(IpNet, Option<PrefixEntry>),
    Local(IpAddr, bool),
    Lport(LportKey, Option<PortEntry>),
    DomainPrefix((u32, IpNet), Option<PrefixEntry>),
}

/// The writes [`apply`] makes: the table maps, and the prefix counters a
/// reused slot must start from zero. Implemented by [`Maps`] (the kernel's)
/// and, in tests, by memory: the diff, its order and its undo are tested
/// without root.
pub trait MapWriter {
    fn set_settings(&mut self, settings: Settings) -> Result<(), MapsError>;
    fn set_port(&mut self, ifindex: u32, entry: PortEntry) -> Result<(), MapsError>;
    fn del_port(&mut self, ifindex: u32) -> Result<(), MapsError>;
    fn set_pop(&mut self, id: u32, pop: Pop) -> Result<(), MapsError>;
    fn set_policy(&mut self, id: u32, table: &PolicyTable) -> Result<(), MapsError>;
    fn add_local(&mut self, addr: IpAddr) -> Result<(), MapsError>;
    fn del_local(&mut self, addr: IpAddr) -> Result<(), MapsError>;
    fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<(), MapsError>;
    fn del_prefix(&mut self, net: IpNet) -> Result<bool, MapsError>;
    /// Writes `items` in order; how many were written, and the error that
    /// stopped it.
    fn set_prefixes(&mut self, items: &[(IpNet, PrefixEntry)]) -> (usize, Result<(), MapsError>);
    /// Removes `nets` in order; how many were removed, and the error that
    /// stopped it.
    fn del_prefixes(&mut self, nets: &[IpNet]) -> (usize, Result<(), MapsError>);
    /// Zeroes the counters of prefix slot `slot` (a slot given to a new prefix).
    fn reset_prefix_slot(&mut self, slot: u32) -> Result<(), MapsError>;
    /// A logical port (tagged frames on an interface).
    fn set_lport(&mut self, key: LportKey, entry: PortEntry) -> Result<(), MapsError>;
    fn del_lport(&mut self, key: LportKey) -> Result<bool, MapsError>;
    /// A private domain's prefix.
    fn set_domain_prefix(
        &mut self,
        domain: u32,
        net: IpNet,
        entry: PrefixEntry,
    ) -> Result<(), MapsError>;
    fn del_domain_prefix(&mut self, domain: u32, net: IpNet) -> Result<bool, MapsError>;
    /// [`MapWriter::reset_prefix_slot`] for each of `slots`.
    fn reset_prefix_slots(&mut self, slots: &[u32]) -> Result<(), MapsError> {
        slots.iter().try_for_each(|&s| self.reset_prefix_slot(s))
    }
}

/// The kernel's maps as a [`MapWriter`]; without `counters`, slots are not
/// zeroed (a loader that just created the maps).
pub struct Maps<'a> {
    pub tables: &'a mut Tables,
    pub counters: Option<&'a mut Counters>,
}

impl MapWriter for Maps<'_> {
    fn set_settings(&mut self, settings: Settings) -> Result<(), MapsError> {
        self.tables.set_settings(settings)
    }
    fn set_port(&mut self, ifindex: u32, entry: PortEntry) -> Result<(), MapsError> {
        self.tables.set_port(ifindex, entry)
    }
    fn del_port(&mut self, ifindex: u32) -> Result<(), MapsError> {
        self.tables.del_port(ifindex)
    }
    fn set_pop(&mut self, id: u32, pop: Pop) -> Result<(), MapsError> {
        self.tables.set_pop(id, pop)
    }
    fn set_policy(&mut self, id: u32, table: &PolicyTable) -> Result<(), MapsError> {
        self.tables.set_policy(id, table)
    }
    fn add_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        self.tables.add_local(addr)
    }
    fn del_local(&mut self, addr: IpAddr) -> Result<(), MapsError> {
        self.tables.del_local(addr)
    }
    fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<(), MapsError> {
        self.tables.set_prefix(net, entry)
    }
    fn del_prefix(&mut self, net: IpNet) -> Result<bool, MapsError> {
        self.tables.del_prefix(net)
    }
    fn set_prefixes(&mut self, items: &[(IpNet, PrefixEntry)]) -> (usize, Result<(), MapsError>) {
        self.tables.set_prefixes(items)
    }
    fn del_prefixes(&mut self, nets: &[IpNet]) -> (usize, Result<(), MapsError>) {
        self.tables.del_prefixes(nets)
    }
    fn set_lport(&mut self, key: LportKey, entry: PortEntry) -> Result<(), MapsError> {
        self.tables.set_lport(key, entry)
    }
    fn del_lport(&mut self, key: LportKey) -> Result<bool, MapsError> {
        self.tables.del_lport(key)
    }
    fn set_domain_prefix(
        &mut self,
        domain: u32,
        net: IpNet,
        entry: PrefixEntry,
    ) -> Result<(), MapsError> {
        self.tables.set_domain_prefix(domain, net, entry)
    }
    fn del_domain_prefix(&mut self, domain: u32, net: IpNet) -> Result<bool, MapsError> {
        self.tables.del_domain_prefix(domain, net)
    }
    fn reset_prefix_slot(&mut self, slot: u32) -> Result<(), MapsError> {
        match self.counters.as_mut() {
            Some(c) => c.reset_prefix_slot(slot),
            None => Ok(()),
        }
    }
    fn reset_prefix_slots(&mut self, slots: &[u32]) -> Result<(), MapsError> {
        match self.counters.as_mut() {
            Some(c) => c.reset_prefix_slots(slots),
            None => Ok(()),
        }
    }
}

/// Writes the differences between `from` (what the maps hold) and `to`
/// into the kernel's maps: [`apply_to`] with [`Maps`].
pub fn apply(
    tables: &mut Tables,
    counters: Option<&mut Counters>,
    from: &Desired,
    to: &Desired,
) -> Result<Changes> {
    apply_to(&mut Maps { tables, counters }, from, to)
}

/// Writes the differences between `from` (what the maps hold) and `to`.
/// On a failed write, everything written so far is undone and the error
/// returned: the maps hold `from` again.
pub fn apply_to(w: &mut impl MapWriter, from: &Desired, to: &Desired) -> Result<Changes> {
    let mut log: Vec<Undo> = Vec::new();
    let result = write_diff(w, from, to, &mut log);
    match result {
        Ok(()) => {
            let removed = log
                .iter()
                .filter(|u| {
                    matches!(u, Undo::Port(i, Some(_)) if !to.ports.contains_key(i))
                        || matches!(u, Undo::Lport(k, Some(_)) if !to.lports.contains_key(k))
                        || matches!(u, Undo::DomainPrefix(k, Some(_)) if !to.domain_prefixes.contains_key(k))
                        || matches!(u, Undo::Prefix(n, Some(_)) if !to.prefixes.contains_key(n))
                        || matches!(u, Undo::Local(a, true) if !to.locals.contains(a))
                })
                .count();
            Ok(Changes {
                written: log.len() - removed,
                removed,
            })
        }
        Err(e) => {
            let n = log.len();
            for undo in log.into_iter().rev() {
                if let Err(u) = undo_one(w, undo) {
                    warn!("undoing a partial apply: {u}");
                }
            }
            Err(e.context(format!(
                "applying the change failed; the {n} writes made were undone"
            )))
        }
    }
}

fn undo_one(tables: &mut impl MapWriter, undo: Undo) -> Result<(), MapsError> {
    match undo {
        Undo::Settings(s) => tables.set_settings(s),
        Undo::Port(ifindex, Some(e)) => tables.set_port(ifindex, e),
        Undo::Port(ifindex, None) => tables.del_port(ifindex),
        Undo::Pop(id, p) => tables.set_pop(id, p),
        Undo::Policy(id, t) => tables.set_policy(id, &t),
        Undo::Prefix(net, Some(e)) => tables.set_prefix(net, e),
        Undo::Prefix(net, None) => tables.del_prefix(net).map(|_| ()),
        Undo::Local(addr, true) => tables.add_local(addr),
        Undo::Local(addr, false) => tables.del_local(addr),
        Undo::Lport(key, Some(e)) => tables.set_lport(key, e),
        Undo::Lport(key, None) => tables.del_lport(key).map(|_| ()),
        Undo::DomainPrefix((d, net), Some(e)) => tables.set_domain_prefix(d, net, e),
        Undo::DomainPrefix((d, net), None) => tables.del_domain_prefix(d, net).map(|_| ()),
    }
}

fn write_diff(
    tables: &mut impl MapWriter,
    from: &Desired,
    to: &Desired,
    log: &mut Vec<Undo>,
) -> Result<()> {
    // 1. Next hops, ports, tables and settings: new and changed entries
    //    first, so the prefixes written next find everything they use.
    for (id, (old, new)) in from.pops.iter().zip(&to.pops).enumerate() {
        if old != new && new.flags != 0 {
            tables.set_pop(id as u32, *new)?;
            log.push(Undo::Pop(id as u32, *old));
        }
    }
    for addr in to.locals.difference(&from.locals) {
        tables.add_local(*addr)?;
        log.push(Undo::Local(*addr, false));
    }
    for (id, (old, new)) in from.policies.iter().zip(&to.policies).enumerate() {
        if old != new && *new != PolicyTable::default() {
            tables.set_policy(id as u32, new)?;
            log.push(Undo::Policy(id as u32, Box::new(*old)));
        }
    }
    if from.settings != to.settings {
        tables.set_settings(to.settings)?;
        log.push(Undo::Settings(from.settings));
    }
    // The private domains' prefixes (their tables are written), then the
    // logical ports, then the interfaces' entries: a port's domain and
    // tags find their entries in place when packets start to use them.
    for (&(d, net), new) in &to.domain_prefixes {
        let old = from.domain_prefixes.get(&(d, net));
        if old != Some(new) {
            if old.is_none_or(|o| o.slot != new.slot) {
                tables.reset_prefix_slot(new.slot)?;
            }
            tables.set_domain_prefix(d, net, *new)?;
            log.push(Undo::DomainPrefix((d, net), old.copied()));
        }
    }
    for (&key, new) in &to.lports {
        let old = from.lports.get(&key);
        if old != Some(new) {
            tables.set_lport(key, *new)?;
            log.push(Undo::Lport(key, old.copied()));
        }
    }
    for (&ifindex, new) in &to.ports {
        let old = from.ports.get(&ifindex);
        if old != Some(new) {
            tables.set_port(ifindex, *new)?;
            log.push(Undo::Port(ifindex, old.copied()));
        }
    }
    // 2. Prefixes: new and changed, then removed.
    let (writes, removals) = prefix_diff(&from.prefixes, &to.prefixes);
    write_prefixes(tables, &writes, &removals, true, log)?;
    // 3. What nothing uses any more.
    for (id, (old, new)) in from.policies.iter().zip(&to.policies).enumerate() {
        if old != new && *new == PolicyTable::default() {
            tables.set_policy(id as u32, new)?;
            log.push(Undo::Policy(id as u32, Box::new(*old)));
        }
    }
    for (id, (old, new)) in from.pops.iter().zip(&to.pops).enumerate() {
        if old != new && new.flags == 0 {
            tables.set_pop(id as u32, *new)?;
            log.push(Undo::Pop(id as u32, *old));
        }
    }
    for (&ifindex, old) in &from.ports {
        if !to.ports.contains_key(&ifindex) {
            tables.del_port(ifindex)?;
            log.push(Undo::Port(ifindex, Some(*old)));
        }
    }
    for (&key, old) in &from.lports {
        if !to.lports.contains_key(&key) {
            tables.del_lport(key)?;
            log.push(Undo::Lport(key, Some(*old)));
        }
    }
    for (&(d, net), old) in &from.domain_prefixes {
        if !to.domain_prefixes.contains_key(&(d, net)) {
            tables.del_domain_prefix(d, net)?;
            log.push(Undo::DomainPrefix((d, net), Some(*old)));
        }
    }
    for addr in from.locals.difference(&to.locals) {
        tables.del_local(*addr)?;
        log.push(Undo::Local(*addr, true));
    }
    Ok(())
}

/// Writes `writes` ((network, entry, entry before)) then removes
/// `removals` ((network, entry before)), in batches (see
/// `Tables::set_prefixes`), each logged once written; with `reset`, a
/// counter slot given to a prefix anew is zeroed first.
fn write_prefixes(
    tables: &mut impl MapWriter,
    writes: &[(IpNet, PrefixEntry, Option<PrefixEntry>)],
    removals: &[(IpNet, PrefixEntry)],
    reset: bool,
    log: &mut Vec<Undo>,
) -> Result<()> {
    if reset {
        let slots: Vec<u32> = writes
            .iter()
            .filter(|(_, new, old)| old.map(|o| o.slot) != Some(new.slot) && new.slot != 0)
            .map(|(_, new, _)| new.slot)
            .collect();
        tables.reset_prefix_slots(&slots).with_context(|| {
            format!(
                "clearing the counter slots given anew ({} prefixes)",
                slots.len()
            )
        })?;
    }
    log.reserve(writes.len() + removals.len());
    let items: Vec<(IpNet, PrefixEntry)> = writes.iter().map(|&(n, e, _)| (n, e)).collect();
    let (done, result) = tables.set_prefixes(&items);
    log.extend(
        writes[..done]
            .iter()
            .map(|&(net, _, old)| Undo::Prefix(net, old)),
    );
    if let Err(e) = result {
        let net = items[done].0;
        return Err(anyhow::Error::new(e).context(format!("writing prefix {net}")));
    }
    let nets: Vec<IpNet> = removals.iter().map(|&(n, _)| n).collect();
    let (done, result) = tables.del_prefixes(&nets);
    log.extend(
        removals[..done]
            .iter()
            .map(|&(net, old)| Undo::Prefix(net, Some(old))),
    );
    result?;
    Ok(())
}

/// Writes the prefixes of a change worked out without a whole compile
/// ([`super::delta::Delta`]): `writes` ((network, entry, entry before)),
/// then `removals` ((network, entry before)). On a failed write everything
/// written so far is undone and the error returned.
pub fn apply_prefixes(
    w: &mut impl MapWriter,
    writes: &[(IpNet, PrefixEntry, Option<PrefixEntry>)],
    removals: &[(IpNet, PrefixEntry)],
) -> Result<Changes> {
    let mut log = Vec::new();
    match write_prefixes(w, writes, removals, true, &mut log) {
        Ok(()) => Ok(Changes {
            written: writes.len(),
            removed: removals.len(),
        }),
        Err(e) => {
            let n = log.len();
            for undo in log.into_iter().rev() {
                if let Err(u) = undo_one(w, undo) {
                    warn!("undoing a partial apply: {u}");
                }
            }
            Err(e.context(format!(
                "applying the change failed; the {n} writes made were undone"
            )))
        }
    }
}

/// Reverses a completed [`apply_prefixes`] (when the change cannot be
/// recorded): the maps hold what they held before it.
pub fn undo_prefixes(
    w: &mut impl MapWriter,
    writes: &[(IpNet, PrefixEntry, Option<PrefixEntry>)],
    removals: &[(IpNet, PrefixEntry)],
) -> Result<()> {
    let back: Vec<(IpNet, PrefixEntry, Option<PrefixEntry>)> = removals
        .iter()
        .map(|&(net, old)| (net, old, None))
        .chain(
            writes
                .iter()
                .filter_map(|&(net, new, old)| old.map(|o| (net, o, Some(new)))),
        )
        .collect();
    let gone: Vec<(IpNet, PrefixEntry)> = writes
        .iter()
        .filter(|w| w.2.is_none())
        .map(|&(net, new, _)| (net, new))
        .collect();
    let mut log = Vec::new();
    // Slots taken back keep their counters: nothing is zeroed.
    write_prefixes(w, &back, &gone, false, &mut log)
}

/// The prefixes to write ((network, new entry, old entry)) and to remove
/// ((network, old entry)) to go from `from` to `to`, in network order: one
/// merge walk over both sorted maps.
#[allow(clippy::type_complexity)]
fn prefix_diff(
    from: &BTreeMap<IpNet, PrefixEntry>,
    to: &BTreeMap<IpNet, PrefixEntry>,
) -> (
    Vec<(IpNet, PrefixEntry, Option<PrefixEntry>)>,
    Vec<(IpNet, PrefixEntry)>,
) {
    let mut writes = Vec::new();
    let mut removals = Vec::new();
    let mut a = from.iter().peekable();
    let mut b = to.iter().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(&(&n, &old)), None) => {
                removals.push((n, old));
                a.next();
            }
            (None, Some(&(&n, &new))) => {
                writes.push((n, new, None));
                b.next();
            }
            (Some(&(&na, &old)), Some(&(&nb, &new))) => match na.cmp(&nb) {
                std::cmp::Ordering::Less => {
                    removals.push((na, old));
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    writes.push((nb, new, None));
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if old != new {
                        writes.push((nb, new, Some(old)));
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    (writes, removals)
}

#[cfg(test)]
mod tests;
