//! Desired map contents and applying them as a diff.
//!
//! A config (plus live changes and drained PoPs) is compiled into the exact
//! contents every table map should hold ([`Desired`]); the maps are read back
//! into the same shape ([`dump`]); [`apply`] writes only the differences, in
//! an order that keeps every intermediate state valid for packets (next hops
//! and tables before the prefixes that use them, removals last), and undoes
//! what it wrote if a write fails half way.

pub mod state;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, Result};
use edge_common::{
    DSCP_KEEP, NO_EXIT, NO_POP, PolicyTable, Pop, PortEntry, PrefixEntry, Settings, default_action,
    limits, map_names, pop_flags, preference,
};
use ipnet::IpNet;
use log::warn;
use state::{Ids, State};

use crate::{
    dataplane::{
        MapsError,
        maps::{Counters, Tables},
    },
    host::netdev,
    plan::{DefaultAction, Fallback, Method, Plan, Preference, Role, Target},
    policy::{Choices, Layout, PopView as PopHealth, Resolved, member_label, resolve},
};

/// What every table map should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub settings: Settings,
    /// ifindex → port.
    pub ports: BTreeMap<u32, PortEntry>,
    /// PoP id → next hop; unused ids hold `Pop::default()`.
    pub pops: Vec<Pop>,
    /// Policy id → table; unused ids hold `PolicyTable::default()` (all `NO_POP`).
    pub policies: Vec<PolicyTable>,
    pub prefixes: BTreeMap<IpNet, PrefixEntry>,
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

/// Names and facts for the ids in the maps: what edgectl and the metrics
/// show. Built together with the [`Desired`] it describes; cheap to clone
/// (the prefix list is shared).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct View {
    /// Bumped on every applied change.
    pub generation: u64,
    pub ports: Vec<PortView>,
    pub pops: Vec<PopView>,
    pub policies: Vec<PolicyView>,
    pub prefixes: Arc<Vec<PrefixView>>,
    /// More-specific entries subnet policies add: (network, table id).
    pub more_specific: Arc<Vec<(IpNet, u32)>>,
    pub default_action: &'static str,
    pub backbone_exit: Option<String>,
    pub transit_exit: Option<String>,
    /// (map name, entries in use, limit) of the maps that fill up.
    pub maps: Vec<(&'static str, u32, u32)>,
    pub routes: RoutesView,
    /// Every PoP's health, in config order.
    pub health: Vec<PopHealthView>,
    /// Times a policy table fell back because every member was down.
    pub fallbacks: u64,
    /// Protection events received: ((prefix, port), count).
    pub protection: Vec<((String, String), u64)>,
}

/// A PoP's health as edgectl and the metrics show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PopHealthView {
    pub pop: String,
    /// `up`, `down`, `drained`, `up (no probe)`, `up (not probed yet)`.
    pub state: &'static str,
    /// What the methods use: healthy and not drained.
    pub up: bool,
    /// Seconds since the state last changed.
    pub since_seconds: Option<f64>,
    /// Smoothed RTT and the recent minimum, milliseconds.
    pub rtt_ms: Option<f64>,
    pub min_rtt_ms: Option<f64>,
    /// Share of the recent probes that failed.
    pub loss: f64,
    pub probes: u64,
}

/// Route sync figures.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RoutesView {
    /// Routes in the followed tables (best per table and network).
    pub routes: usize,
    /// Full dumps (the first included; more mean overruns or table changes).
    pub resyncs: u64,
    /// Routes left out because a prefix map was full.
    pub skipped: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PortView {
    pub id: u32,
    pub interface: String,
    pub role: &'static str,
    pub ifindex: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PopView {
    pub id: u32,
    pub name: String,
    pub interface: String,
    pub mac: String,
    pub encap: Vec<String>,
    pub region: Option<String>,
    /// The probe, described (`icmp 198.51.100.6 every 1s`), if any.
    pub probe: Option<String>,
    pub drained: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyView {
    pub name: String,
    pub method: &'static str,
    pub members: Vec<MemberView>,
    /// The selection tables the policy fills (one, unless regions or
    /// subnets multiply them).
    pub tables: Vec<TableView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberView {
    /// `pop:NAME` or `policy:NAME`.
    pub member: String,
    pub weight: u32,
    pub priority: u32,
    /// For PoPs: healthy and not drained.
    pub up: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableView {
    pub id: u32,
    /// The table's key: policy [region] [subnet member].
    pub key: String,
    /// Slots per PoP name (`none` = to the kernel).
    pub shares: Vec<(String, u32)>,
    /// Set while no member is up and the fallback fills the table.
    pub fallback: Option<&'static str>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PrefixView {
    pub prefix: IpNet,
    pub registration: String,
    pub preference: &'static str,
    pub policy: Option<Arc<str>>,
    pub dscp: Option<u8>,
    pub protect: Vec<String>,
    /// `config`, `live` (edgectl prefix add) or `route table N`.
    pub source: crate::plan::Origin,
    pub counter_slot: u32,
}

impl View {
    pub fn pop_name(&self, id: u32) -> Option<&str> {
        self.pops
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.as_str())
    }

    /// The key of selection table `id`.
    pub fn table_name(&self, id: u32) -> Option<&str> {
        self.policies
            .iter()
            .flat_map(|p| &p.tables)
            .find(|t| t.id == id)
            .map(|t| t.key.as_str())
    }

    pub fn port(&self, id: u32) -> Option<&PortView> {
        self.ports.iter().find(|p| p.id == id)
    }

    pub fn prefix_by_slot(&self, slot: u32) -> Option<&PrefixView> {
        (slot != 0)
            .then(|| self.prefixes.iter().find(|p| p.counter_slot == slot))
            .flatten()
    }

    /// Counter slots to read: one past the highest in use.
    pub fn prefix_slots(&self) -> u32 {
        self.prefixes
            .iter()
            .map(|p| p.counter_slot)
            .max()
            .unwrap_or(0)
            + 1
    }

    pub fn prefix(&self, net: IpNet) -> Option<&PrefixView> {
        self.prefixes.iter().find(|p| p.prefix == net)
    }
}

/// Slots per PoP in `table`, named by `name`, in order of first appearance.
pub fn table_shares(table: &PolicyTable, name: impl Fn(u16) -> String) -> Vec<(String, u32)> {
    let mut shares: Vec<(u16, u32)> = Vec::new();
    for &pop in &table.pops[..edge_common::POLICY_SLOTS] {
        match shares.iter_mut().find(|(p, _)| *p == pop) {
            Some((_, n)) => *n += 1,
            None => shares.push((pop, 1)),
        }
    }
    shares
        .into_iter()
        .map(|(pop, n)| {
            let label = if pop == edge_common::NO_POP {
                "none".to_string()
            } else {
                name(pop)
            };
            (label, n)
        })
        .collect()
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Peering => "peering",
        Role::Backbone => "backbone",
        Role::Transit => "transit",
    }
}

pub fn method_name(m: Method) -> &'static str {
    match m {
        Method::Priority => "priority",
        Method::Weighted => "weighted",
        Method::Multivalue => "multivalue",
        Method::Performance => "performance",
        Method::Geographic => "geographic",
        Method::Subnet => "subnet",
    }
}

fn mac_text(m: [u8; 6]) -> String {
    macaddr::MacAddr6::from(m).to_string().to_lowercase()
}

/// The health of PoPs by plan index, as the methods see it (drain included).
pub type HealthFn<'a> = &'a dyn Fn(u32) -> PopHealth;

/// How long compiling waits for a next hop given by address to resolve.
pub const NEIGHBOUR_WAIT: Duration = Duration::from_millis(500);

/// What compiling a plan gives.
pub struct Compiled {
    pub desired: Desired,
    pub ids: Ids,
    pub view: View,
    pub layout: Layout,
    pub resolved: Resolved,
    /// Map id of each PoP, by plan index.
    pub pop_ids: Vec<u32>,
    /// Map id of each table, by layout key index.
    pub table_ids: Vec<u32>,
    /// PoPs (plan index) whose next hop address did not resolve: down.
    pub unresolved: BTreeSet<u32>,
    /// (ifindex, address) of every next hop given by address.
    pub next_hops: BTreeSet<(u32, IpAddr)>,
}

/// The selection tables of `resolved` by map id, with PoP ids mapped from
/// plan indices to map ids.
pub fn table_entries(
    layout: &Layout,
    resolved: &Resolved,
    pop_ids: &[u32],
    table_ids: &[u32],
) -> Vec<(u32, PolicyTable, Option<Fallback>)> {
    layout
        .keys
        .iter()
        .zip(table_ids)
        .map(|(key, &id)| {
            let (mut t, fallback) = resolved
                .tables
                .get(key)
                .map_or((PolicyTable::default(), None), |t| (t.pops, t.fallback));
            for slot in &mut t.pops[..edge_common::POLICY_SLOTS] {
                if *slot != NO_POP {
                    *slot = pop_ids[usize::from(*slot)] as u16;
                }
            }
            (id, t, fallback)
        })
        .collect()
}

/// Policy views (members' health, tables and their shares) for `plan`.
pub fn policy_views(
    plan: &Plan,
    layout: &Layout,
    entries: &[(u32, PolicyTable, Option<Fallback>)],
    health: HealthFn<'_>,
    pop_name: &dyn Fn(u16) -> String,
) -> Vec<PolicyView> {
    plan.policies
        .iter()
        .map(|p| PolicyView {
            name: p.name.clone(),
            method: method_name(p.method),
            members: p
                .members
                .iter()
                .map(|m| MemberView {
                    member: member_label(plan, m.target),
                    weight: m.weight,
                    priority: m.priority,
                    up: match m.target {
                        Target::Pop(i) => health(i).up,
                        Target::Policy(_) => true,
                    },
                })
                .collect(),
            tables: layout
                .keys
                .iter()
                .zip(entries)
                .filter(|(k, _)| k.policy == p.name)
                .map(|(k, (id, t, fallback))| TableView {
                    id: *id,
                    key: k.to_string(),
                    shares: table_shares(t, pop_name),
                    fallback: fallback.map(|f| match f {
                        Fallback::Transit => "transit",
                        Fallback::Pass => "pass",
                    }),
                })
                .collect(),
        })
        .collect()
}

/// Compiles `plan` with `state` (drained PoPs, previous ids) and the PoPs'
/// health into the map contents, keeping the counter slots prefixes already
/// have in `current`. Interface facts (ifindex, MACs, addresses) are read
/// here, in the calling network namespace; nothing is written.
pub fn compile(
    plan: &Plan,
    state: &State,
    current: &Desired,
    health: HealthFn<'_>,
    choices: &Choices,
) -> Result<Compiled> {
    let port_ids = Ids::assign(
        &state.ids.ports,
        &plan
            .ports
            .iter()
            .map(|p| p.interface.as_str())
            .collect::<Vec<_>>(),
        limits::MAX_PORTS,
    );
    let pop_ids = Ids::assign(
        &state.ids.pops,
        &plan
            .pops
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        limits::MAX_POPS,
    );
    let layout = Layout::new(plan);
    let keys: Vec<String> = layout.keys.iter().map(|k| k.to_string()).collect();
    let table_ids = Ids::assign(
        &state.ids.policies,
        &keys.iter().map(String::as_str).collect::<Vec<_>>(),
        limits::MAX_POLICIES,
    );
    let ids = Ids {
        ports: plan
            .ports
            .iter()
            .zip(&port_ids)
            .map(|(p, &id)| (p.interface.clone(), id))
            .collect(),
        pops: plan
            .pops
            .iter()
            .zip(&pop_ids)
            .map(|(p, &id)| (p.name.clone(), id))
            .collect(),
        policies: keys
            .iter()
            .cloned()
            .zip(table_ids.iter().copied())
            .collect(),
    };

    let mut d = Desired {
        settings: Settings {
            default_action: match plan.default_action {
                DefaultAction::Pass => default_action::PASS,
                DefaultAction::Drop => default_action::DROP,
            },
            backbone_exit: plan.backbone_exit.map_or(NO_EXIT, |i| pop_ids[i as usize]),
            transit_exit: plan.transit_exit.map_or(NO_EXIT, |i| pop_ids[i as usize]),
            encap_ttl: plan.encap_ttl,
            _pad: [0; 3],
        },
        ..Desired::default()
    };
    let mut view = View {
        default_action: match plan.default_action {
            DefaultAction::Pass => "pass",
            DefaultAction::Drop => "drop",
        },
        backbone_exit: plan
            .backbone_exit
            .map(|i| plan.pops[i as usize].name.clone()),
        transit_exit: plan
            .transit_exit
            .map(|i| plan.pops[i as usize].name.clone()),
        ..View::default()
    };

    for (i, port) in plan.ports.iter().enumerate() {
        let ifindex = netdev::ifindex(&port.interface)?;
        d.ports.insert(
            ifindex,
            PortEntry {
                role: port.role.code(),
                id: port_ids[i],
            },
        );
        view.ports.push(PortView {
            id: port_ids[i],
            interface: port.interface.clone(),
            role: role_name(port.role),
            ifindex,
        });
    }
    let mut unresolved = BTreeSet::new();
    let mut next_hops = BTreeSet::new();
    for (i, pop) in plan.pops.iter().enumerate() {
        let ifindex = netdev::ifindex(&pop.interface)?;
        let mut entry = Pop {
            ifindex,
            flags: pop_flags::VALID,
            src_mac: netdev::mac(&pop.interface)?,
            dst_mac: pop.mac,
            ..Pop::default()
        };
        let mut mac = mac_text(pop.mac);
        if let Some(ip) = pop.next_hop {
            next_hops.insert((ifindex, ip));
            match crate::host::neigh::resolve(&pop.interface, ifindex, ip, NEIGHBOUR_WAIT)? {
                Some(m) => {
                    entry.dst_mac = m;
                    mac = format!("{ip} ({})", mac_text(m));
                }
                None => {
                    // Not usable until the neighbour answers: counts as down.
                    entry.flags = 0;
                    unresolved.insert(i as u32);
                    mac = format!("{ip} (unresolved)");
                    log::warn!(
                        "PoP {}: next hop {ip} not in the neighbour table of {} (no answer yet)",
                        pop.name,
                        pop.interface
                    );
                }
            }
        }
        let mut encap = Vec::new();
        if let Some((src, dst)) = pop.encap_ipv4 {
            entry.flags |= pop_flags::ENCAP_IPIP;
            entry.tunnel_src_v4 = src.octets();
            entry.tunnel_dst_v4 = dst.octets();
            encap.push(format!("ipip {src} -> {dst}"));
        }
        if let Some((src, dst)) = pop.encap_ipv6 {
            entry.flags |= pop_flags::ENCAP_IP6IP6;
            entry.tunnel_src_v6 = src.octets();
            entry.tunnel_dst_v6 = dst.octets();
            encap.push(format!("ip6ip6 {src} -> {dst}"));
        }
        d.pops[pop_ids[i] as usize] = entry;
        view.pops.push(PopView {
            id: pop_ids[i],
            name: pop.name.clone(),
            interface: pop.interface.clone(),
            mac,
            encap,
            region: pop.region.as_ref().map(|r| r.to_string()),
            probe: pop.probe.as_ref().map(|p| p.to_string()),
            drained: state.drained.contains(&pop.name),
        });
    }

    // Selection tables: the methods over the PoPs' health (a next hop not
    // resolved counts as down).
    let health = |p: u32| {
        if unresolved.contains(&p) {
            PopHealth::DOWN
        } else {
            health(p)
        }
    };
    let health: HealthFn<'_> = &health;
    let resolved = resolve(plan, &layout, &|p| health(p), choices);
    let entries = table_entries(&layout, &resolved, &pop_ids, &table_ids);
    for (id, t, _) in &entries {
        d.policies[*id as usize] = *t;
    }
    let pop_name = |id: u16| {
        pop_ids
            .iter()
            .position(|&x| x == u32::from(id))
            .map_or_else(|| format!("pop {id}"), |i| plan.pops[i].name.clone())
    };
    view.policies = policy_views(plan, &layout, &entries, health, &pop_name);

    for addr in netdev::local_addresses()? {
        d.locals.insert(addr);
    }

    // Counter slots: a prefix keeps the slot it has in the maps; new ones
    // take the lowest free slot (slot 0, shared, once they run out).
    let mut taken = BTreeSet::new();
    let mut slots: Vec<Option<u32>> = plan
        .prefixes
        .iter()
        .map(|p| {
            let slot = current.prefixes.get(&p.net).map(|e| e.slot)?;
            (slot != 0 && slot < limits::MAX_PREFIX_SLOTS && taken.insert(slot)).then_some(slot)
        })
        .collect();
    let mut free = (1..limits::MAX_PREFIX_SLOTS).filter(|s| !taken.contains(s));
    for s in slots.iter_mut().filter(|s| s.is_none()) {
        *s = Some(free.next().unwrap_or(0));
    }
    let policy_names: Vec<Arc<str>> = plan
        .policies
        .iter()
        .map(|p| Arc::from(p.name.as_str()))
        .collect();
    let mut prefixes = Vec::with_capacity(plan.prefixes.len());
    let mut entries_by_prefix = Vec::with_capacity(plan.prefixes.len());
    for (i, (p, slot)) in plan.prefixes.iter().zip(slots).enumerate() {
        let slot = slot.expect("assigned above");
        let entry = PrefixEntry {
            allowed_ports: p
                .protect
                .iter()
                .fold(0u64, |m, &id| m | (1 << port_ids[id as usize])),
            slot,
            policy: layout.prefix_table[i].map_or(0, |k| table_ids[k as usize]),
            preference: match p.preference {
                Preference::Microsoft => preference::MICROSOFT,
                Preference::Internet => preference::INTERNET,
            },
            dscp: p.dscp.unwrap_or(DSCP_KEEP),
            _pad: [0; 6],
        };
        d.prefixes.insert(p.net, entry);
        entries_by_prefix.push(entry);
        prefixes.push(PrefixView {
            prefix: p.net,
            registration: p.registration.clone(),
            preference: match p.preference {
                Preference::Microsoft => "microsoft",
                Preference::Internet => "internet",
            },
            policy: p.policy.map(|i| policy_names[i as usize].clone()),
            dscp: p.dscp,
            protect: p
                .protect
                .iter()
                .map(|&id| plan.ports[id as usize].interface.clone())
                .collect(),
            source: p.origin,
            counter_slot: slot,
        });
    }
    // Subnet policies: more-specific entries inside their prefix, with the
    // prefix's entry but their own table.
    let mut more = Vec::new();
    for m in &layout.more_specific {
        let entry = PrefixEntry {
            policy: table_ids[m.table as usize],
            ..entries_by_prefix[m.prefix]
        };
        d.prefixes.entry(m.net).or_insert(entry);
        more.push((m.net, entry.policy));
    }
    view.prefixes = Arc::new(prefixes);
    view.more_specific = Arc::new(more);
    let v4 = d.prefixes.keys().filter(|n| n.addr().is_ipv4()).count() as u32;
    let v6 = d.prefixes.len() as u32 - v4;
    view.maps = vec![
        (map_names::PREFIX_V4, v4, plan.limits.prefixes_v4),
        (map_names::PREFIX_V6, v6, plan.limits.prefixes_v6),
        (map_names::POPS, plan.pops.len() as u32, limits::MAX_POPS),
        (
            map_names::POLICIES,
            layout.keys.len() as u32,
            limits::MAX_POLICIES,
        ),
        (map_names::PORTS, plan.ports.len() as u32, limits::MAX_PORTS),
        (
            map_names::LOCAL_V4,
            d.locals.iter().filter(|a| a.is_ipv4()).count() as u32,
            limits::MAX_LOCAL_ADDRS,
        ),
        (
            map_names::LOCAL_V6,
            d.locals.iter().filter(|a| a.is_ipv6()).count() as u32,
            limits::MAX_LOCAL_ADDRS,
        ),
    ];
    Ok(Compiled {
        desired: d,
        ids,
        view,
        layout,
        resolved,
        pop_ids,
        table_ids,
        unresolved,
        next_hops,
    })
}

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
}

/// Writes the differences between `from` (what the maps hold) and `to`.
/// On a failed write, everything written so far is undone and the error
/// returned: the maps hold `from` again.
pub fn apply(
    tables: &mut Tables,
    counters: Option<&mut Counters>,
    from: &Desired,
    to: &Desired,
) -> Result<Changes> {
    let mut log: Vec<Undo> = Vec::new();
    let result = write_diff(tables, counters, from, to, &mut log);
    match result {
        Ok(()) => {
            let removed = log
                .iter()
                .filter(|u| {
                    matches!(u, Undo::Port(i, Some(_)) if !to.ports.contains_key(i))
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
                if let Err(u) = undo_one(tables, undo) {
                    warn!("undoing a partial apply: {u}");
                }
            }
            Err(e.context(format!(
                "applying the change failed; the {n} writes made were undone"
            )))
        }
    }
}

fn undo_one(tables: &mut Tables, undo: Undo) -> Result<(), MapsError> {
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
    }
}

fn write_diff(
    tables: &mut Tables,
    mut counters: Option<&mut Counters>,
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
    for (&ifindex, new) in &to.ports {
        let old = from.ports.get(&ifindex);
        if old != Some(new) {
            tables.set_port(ifindex, *new)?;
            log.push(Undo::Port(ifindex, old.copied()));
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
    // 2. Prefixes: new and changed, then removed; written in batches (see
    //    `Tables::set_prefixes`), each logged once written.
    let (writes, removals) = prefix_diff(&from.prefixes, &to.prefixes);
    if let Some(c) = counters.as_mut() {
        for &(net, new, old) in &writes {
            if old.map(|o| o.slot) != Some(new.slot) && new.slot != 0 {
                c.reset_prefix_slot(new.slot)
                    .with_context(|| format!("clearing the counter slot of {net}"))?;
            }
        }
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
    for addr in from.locals.difference(&to.locals) {
        tables.del_local(*addr)?;
        log.push(Undo::Local(*addr, true));
    }
    Ok(())
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
