//! Plan + state + health → the exact contents of every map ([`Desired`])
//! and the view that names them.

use std::{collections::BTreeSet, net::IpAddr, sync::Arc, time::Duration};

use anyhow::Result;
use edge_common::{
    DSCP_KEEP, NO_EXIT, NO_POP, PolicyTable, Pop, PortEntry, PrefixEntry, Settings, default_action,
    limits, map_names, pop_flags, preference,
};

use super::*;
use crate::{
    config::{Invalid, Problem},
    host::netdev,
    plan::{DefaultAction, EgressVlan, Fallback, Plan, PlannedPop, Preference, Target},
    policy::{Choices, Layout, PopView as PopHealth, Resolved, member_label, resolve},
};

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
            domain: plan.domain_name(p.domain).to_string(),
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
                    fallback: fallback.map(Fallback::name),
                })
                .collect(),
        })
        .collect()
}

/// What compiling needs to know about this host: interface indexes,
/// MACs and MTUs, local addresses, next hops' MACs. [`Kernel`] asks the
/// kernel (in the calling network namespace); tests give fixed facts.
pub trait Host {
    fn ifindex(&self, interface: &str) -> Result<u32>;
    fn mac(&self, interface: &str) -> Result<[u8; 6]>;
    /// The interface's MTU (largest IP packet), for PoPs without `mtu`.
    fn mtu(&self, interface: &str) -> Result<u32>;
    fn local_addresses(&self) -> Result<Vec<IpAddr>>;
    /// The MAC of next hop `ip` on `interface`, if it resolves in time.
    fn neighbour(&self, interface: &str, ifindex: u32, ip: IpAddr) -> Result<Option<[u8; 6]>>;
    /// Whether `interface` is known to have vanished since edged took it
    /// (deleted, or renamed away): compiled as absent (a port without a
    /// map entry, a PoP that is down) instead of failing the change. An
    /// interface the config names anew must exist.
    fn absent(&self, _interface: &str) -> bool {
        false
    }
    /// Whether `interface` is there but cannot send (down, no carrier):
    /// PoPs on it are compiled down, as when their next hop does not
    /// resolve, so that nothing is redirected into a device that drops it.
    fn no_carrier(&self, _interface: &str) -> bool {
        false
    }
}

/// This host, through ioctls and netlink. Resolving a next hop that is not
/// in the neighbour table blocks up to [`NEIGHBOUR_WAIT`]: call it off the
/// async runtime.
pub struct Kernel;

impl Host for Kernel {
    fn ifindex(&self, interface: &str) -> Result<u32> {
        netdev::ifindex(interface)
    }
    fn mac(&self, interface: &str) -> Result<[u8; 6]> {
        netdev::mac(interface)
    }
    fn mtu(&self, interface: &str) -> Result<u32> {
        netdev::mtu(interface)
    }
    fn local_addresses(&self) -> Result<Vec<IpAddr>> {
        netdev::local_addresses()
    }
    fn neighbour(&self, interface: &str, ifindex: u32, ip: IpAddr) -> Result<Option<[u8; 6]>> {
        crate::host::neigh::resolve(interface, ifindex, ip, NEIGHBOUR_WAIT)
    }
    fn no_carrier(&self, interface: &str) -> bool {
        netdev::running(interface).is_ok_and(|running| !running)
    }
}

/// This host, with the interfaces in `.0` absent: those a running edged
/// took and that have vanished since ([`Host::absent`]).
pub struct KernelWithout<'a>(pub &'a BTreeSet<String>);

impl Host for KernelWithout<'_> {
    fn ifindex(&self, interface: &str) -> Result<u32> {
        Kernel.ifindex(interface)
    }
    fn mac(&self, interface: &str) -> Result<[u8; 6]> {
        Kernel.mac(interface)
    }
    fn mtu(&self, interface: &str) -> Result<u32> {
        Kernel.mtu(interface)
    }
    fn local_addresses(&self) -> Result<Vec<IpAddr>> {
        Kernel.local_addresses()
    }
    fn neighbour(&self, interface: &str, ifindex: u32, ip: IpAddr) -> Result<Option<[u8; 6]>> {
        Kernel.neighbour(interface, ifindex, ip)
    }
    fn absent(&self, interface: &str) -> bool {
        self.0.contains(interface)
    }
    fn no_carrier(&self, interface: &str) -> bool {
        Kernel.no_carrier(interface)
    }
}

/// The selection tables `plan` needs (built once per change), or the
/// problem when regions and subnet members multiply them past the kernel's
/// limit. Part of checking a config: `edged --check` and `edgectl config
/// check` call it after `config::parse`.
/// The view's row of `p` (edgectl, metrics): the whole compile's and a
/// live delta's alike.
pub(crate) fn prefix_row(
    plan: &Plan,
    p: &crate::plan::PlannedPrefix,
    registration: Arc<str>,
    policy_names: &[Arc<str>],
    counter_slot: u32,
) -> PrefixView {
    PrefixView {
        prefix: p.net,
        registration,
        preference: match p.preference {
            Preference::Microsoft => "microsoft",
            Preference::Internet => "internet",
        },
        policy: p.policy.map(|i| policy_names[i as usize].clone()),
        dscp: p.dscp,
        protect: p
            .allowed_ports()
            .iter()
            .map(|&id| plan.ports[id as usize].name.clone())
            .collect(),
        source: p.origin,
        counter_slot,
    }
}

pub fn layout(plan: &Plan) -> Result<Layout, Invalid> {
    let layout = Layout::new(plan);
    let tables = layout.keys.len();
    if tables > limits::MAX_POLICIES as usize {
        return Err(Invalid(vec![Problem {
            line: None,
            message: format!(
                "{tables} selection tables (policies × prefix regions × subnet members) exceed the limit of {}",
                limits::MAX_POLICIES
            ),
            map_full: false,
        }]));
    }
    Ok(layout)
}

/// [`compile_on`] this host ([`Kernel`]).
pub fn compile(
    plan: &Plan,
    state: &State,
    current: &Desired,
    health: HealthFn<'_>,
    choices: &Choices,
) -> Result<Compiled> {
    compile_on(&Kernel, plan, state, current, health, choices)
}

/// Compiles `plan` with `state` (drained PoPs, previous ids) and the PoPs'
/// health into the map contents, keeping the counter slots prefixes already
/// have in `current`. Interface facts (ifindex, MACs, addresses) come from
/// `host`; nothing is written.
pub fn compile_on(
    host: &impl Host,
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
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        limits::MAX_PORTS,
    );
    // Private domains are numbered from 1 (0 is the public domain): the
    // previous ids shifted down for `assign`, and back up.
    let domain_ids: Vec<u32> = Ids::assign(
        &state
            .ids
            .domains
            .iter()
            .filter(|(_, id)| **id > 0)
            .map(|(n, &id)| (n.clone(), id - 1))
            .collect(),
        &plan.domains.iter().map(String::as_str).collect::<Vec<_>>(),
        limits::MAX_DOMAINS - 1,
    )
    .into_iter()
    .map(|id| id + 1)
    .collect();
    let domain_id =
        |d: Option<u32>| d.map_or(edge_common::PUBLIC_DOMAIN, |d| domain_ids[d as usize]);
    let pop_ids = Ids::assign(
        &state.ids.pops,
        &plan
            .pops
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        limits::MAX_POPS,
    );
    let layout = layout(plan)?;
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
            .map(|(p, &id)| (p.name.clone(), id))
            .collect(),
        domains: plan
            .domains
            .iter()
            .cloned()
            .zip(domain_ids.iter().copied())
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
            backbone_table: layout
                .backbone_table
                .map_or(NO_EXIT, |k| table_ids[k as usize]),
            transit_table: layout
                .transit_table
                .map_or(NO_EXIT, |k| table_ids[k as usize]),
            encap_ttl: plan.encap_ttl,
            rtt: u8::from(plan.latency.is_some()),
            rtt_interval_ns: plan
                .latency
                .map_or(0, |l| l.sample_interval.as_nanos() as u64),
            ..Settings::default()
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
            .map(|e| plan.policies[e.policy as usize].name.clone()),
        transit_exit: plan
            .transit_exit
            .map(|e| plan.policies[e.policy as usize].name.clone()),
        backbone_table: layout.backbone_table.map(|k| table_ids[k as usize]),
        transit_table: layout.transit_table.map(|k| table_ids[k as usize]),
        prefix_metrics: plan.prefix_metrics,
        ..View::default()
    };

    // Ports: each interface's entry is its untagged port (if any) and
    // says whether its tagged frames have ports of their own (`lports`).
    for interface in plan.interfaces() {
        let on: Vec<usize> = (0..plan.ports.len())
            .filter(|&i| plan.ports[i].interface == interface)
            .collect();
        let absent = host.absent(interface);
        let ifindex = if absent { 0 } else { host.ifindex(interface)? };
        let untagged = on.iter().copied().find(|&i| plan.ports[i].vlan.is_empty());
        let tagged = on.iter().any(|&i| !plan.ports[i].vlan.is_empty());
        for &i in &on {
            let port = &plan.ports[i];
            view.ports.push(PortView {
                id: port_ids[i],
                name: port.name.clone(),
                interface: port.interface.clone(),
                vlan: port.vlan.clone(),
                domain: plan.domain_name(port.domain).to_string(),
                role: role_name(port.role),
                ifindex,
                absent,
            });
        }
        if absent {
            // No map entry: nothing arrives on it, and nothing is sent
            // through it (the kernel dropped its device map entry).
            continue;
        }
        let entry = |i: usize| PortEntry {
            role: plan.ports[i].role.code(),
            id: port_ids[i],
            domain: domain_id(plan.ports[i].domain),
            flags: 0,
        };
        let mut own = untagged.map_or(
            PortEntry {
                flags: edge_common::port_flags::NO_UNTAGGED,
                ..PortEntry::default()
            },
            entry,
        );
        if tagged {
            own.flags |= edge_common::port_flags::TAGGED;
        }
        d.ports.insert(ifindex, own);
        for &i in on.iter().filter(|&&i| !plan.ports[i].vlan.is_empty()) {
            let tag = |n: usize| {
                plan.ports[i]
                    .vlan
                    .get(n)
                    .map_or(0, |v| edge_common::VLAN_PRESENT | v)
            };
            d.lports.insert(
                edge_common::LportKey {
                    ifindex,
                    outer: tag(0),
                    inner: tag(1),
                },
                entry(i),
            );
        }
    }
    let mut unresolved = BTreeSet::new();
    let mut next_hops = BTreeSet::new();
    for (i, pop) in plan.pops.iter().enumerate() {
        if host.absent(&pop.interface) {
            // Down for the methods: its policies fail over as when probes
            // fail, at once.
            unresolved.insert(i as u32);
            view.pops.push(PopView {
                id: pop_ids[i],
                name: pop.name.clone(),
                interface: pop.interface.clone(),
                port: pop.port.map(|p| plan.ports[p as usize].name.clone()),
                vlan: pop.vlan.to_string(),
                domain: plan.domain_name(pop.domain).to_string(),
                mac: format!("{} (interface gone)", mac_text(pop.mac)),
                encap: Vec::new(),
                region: pop.region.as_ref().map(|r| r.to_string()),
                probe: pop.probe.as_ref().map(|p| p.to_string()),
                drained: state.drained.contains(&pop.name),
                mtu: pop.mtu.unwrap_or(0),
            });
            continue;
        }
        let ifindex = host.ifindex(&pop.interface)?;
        // The link MTU the program checks: the config's, else the
        // interface's (as it is now; read again at every change). Never
        // more than the interface's: the device would drop what is larger,
        // unseen by the counters.
        let link = host.mtu(&pop.interface)?;
        let mtu = match pop.mtu {
            Some(m) if m > link => {
                log::warn!(
                    "PoP {}: mtu = {m} exceeds the MTU of {} ({link}): packets are checked against {link}",
                    pop.name,
                    pop.interface
                );
                link
            }
            Some(m) => m,
            None => link,
        };
        if pop.encap_ipv6.is_some() && mtu < PlannedPop::IPV6_TUNNEL_MTU {
            log::warn!(
                "PoP {}: MTU {mtu} leaves IPv6 in its tunnel less than 1280 bytes; senders cannot go below 1280, so large IPv6 packets to it are lost",
                pop.name
            );
        }
        let mut entry = Pop {
            ifindex,
            flags: pop_flags::VALID,
            src_mac: host.mac(&pop.interface)?,
            dst_mac: pop.mac,
            // An IP packet is at most 65535 bytes: a larger MTU never binds.
            mtu: mtu.min(u32::from(u16::MAX)) as u16,
            domain: domain_id(pop.domain),
            ..Pop::default()
        };
        match &pop.vlan {
            EgressVlan::Keep => {}
            EgressVlan::Set(tags) => {
                entry.vlan_mode = edge_common::vlan_mode::SET;
                entry.vlan_count = tags.len() as u8;
                for (slot, &t) in entry.vlan.iter_mut().zip(tags) {
                    *slot = t;
                }
            }
            EgressVlan::Push(t) => {
                entry.vlan_mode = edge_common::vlan_mode::PUSH;
                entry.vlan_count = 1;
                entry.vlan[0] = *t;
            }
        }
        let mut mac = mac_text(pop.mac);
        if let Some(ip) = pop.next_hop {
            next_hops.insert((ifindex, ip));
            match host.neighbour(&pop.interface, ifindex, ip)? {
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
        if host.no_carrier(&pop.interface) {
            // Down until the link runs again (an interface event says so).
            entry.flags = 0;
            unresolved.insert(i as u32);
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
            port: pop.port.map(|p| plan.ports[p as usize].name.clone()),
            vlan: pop.vlan.to_string(),
            domain: plan.domain_name(pop.domain).to_string(),
            mac,
            encap,
            region: pop.region.as_ref().map(|r| r.to_string()),
            probe: pop.probe.as_ref().map(|p| p.to_string()),
            drained: state.drained.contains(&pop.name),
            mtu,
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

    for addr in host.local_addresses()? {
        d.locals.insert(addr);
    }

    // Counter slots: a prefix keeps the slot it has in the maps; new ones
    // take the lowest free slot (slot 0, shared, once they run out). At
    // most `slot_limit` prefixes hold one, so they are looked up in a small
    // hash map rather than in the whole of `current` (a million lookups
    // in a B-tree were a fifth of a compile).
    let limit = delta::slot_limit();
    let held: std::collections::HashMap<IpNet, u32> = current
        .prefixes
        .iter()
        .filter(|(_, e)| e.slot != 0 && e.slot < limit)
        .map(|(n, e)| (*n, e.slot))
        .collect();
    let mut taken = vec![false; limit as usize];
    let mut slots: Vec<Option<u32>> = plan
        .prefixes
        .iter()
        .map(|p| {
            let slot = *held.get(&p.net)?;
            (!std::mem::replace(&mut taken[slot as usize], true)).then_some(slot)
        })
        .collect();
    drop(held);
    // The private domains' prefixes keep theirs too, by (domain, network).
    let held_private: std::collections::HashMap<(u32, IpNet), u32> = current
        .domain_prefixes
        .iter()
        .filter(|(_, e)| e.slot != 0 && e.slot < limit)
        .map(|(k, e)| (*k, e.slot))
        .collect();
    let mut private_slots: Vec<Option<u32>> = plan
        .domain_prefixes
        .iter()
        .map(|(d, p)| {
            let slot = *held_private.get(&(domain_id(Some(*d)), p.net))?;
            (!std::mem::replace(&mut taken[slot as usize], true)).then_some(slot)
        })
        .collect();
    let mut free = (1..limit).filter(|&s| !taken[s as usize]);
    for s in slots
        .iter_mut()
        .chain(private_slots.iter_mut())
        .filter(|s| s.is_none())
    {
        *s = Some(free.next().unwrap_or(0));
    }
    let policy_names: Vec<Arc<str>> = plan
        .policies
        .iter()
        .map(|p| Arc::from(p.name.as_str()))
        .collect();
    let mut registrations: std::collections::HashMap<&str, Arc<str>> =
        std::collections::HashMap::new();
    let mut last: Option<Arc<str>> = None;
    let mut prefixes = Vec::with_capacity(plan.prefixes.len());
    let mut entries_by_prefix = Vec::with_capacity(plan.prefixes.len());
    for (i, (p, slot)) in plan.prefixes.iter().zip(slots).enumerate() {
        let slot = slot.expect("assigned above");
        let entry = PrefixEntry {
            allowed_ports: p
                .allowed_ports()
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
        entries_by_prefix.push(entry);
        // Neighbours in the plan mostly share a registration.
        let registration = match &last {
            Some(r) if **r == *p.registration => r.clone(),
            _ => registrations
                .entry(p.registration.as_str())
                .or_insert_with(|| Arc::from(p.registration.as_str()))
                .clone(),
        };
        last = Some(registration.clone());
        prefixes.push(prefix_row(plan, p, registration, &policy_names, slot));
    }
    // Built in one go from the sorted entries (a later entry for the same
    // network wins, as inserting one by one would): a million inserts
    // cost more than the sort.
    d.prefixes = plan
        .prefixes
        .iter()
        .map(|p| p.net)
        .zip(entries_by_prefix.iter().copied())
        .collect();
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
    // The private domains' prefixes: classified by destination only, so
    // no protection; their own selection tables.
    let mut private_rows = Vec::with_capacity(plan.domain_prefixes.len());
    for (i, ((dom, p), slot)) in plan.domain_prefixes.iter().zip(private_slots).enumerate() {
        let slot = slot.expect("assigned above");
        let entry = PrefixEntry {
            allowed_ports: 0,
            slot,
            policy: layout.domain_table[i].map_or(0, |k| table_ids[k as usize]),
            preference: preference::MICROSOFT,
            dscp: p.dscp.unwrap_or(DSCP_KEEP),
            _pad: [0; 6],
        };
        d.domain_prefixes
            .insert((domain_id(Some(*dom)), p.net), entry);
        let registration = registrations
            .entry(p.registration.as_str())
            .or_insert_with(|| Arc::from(p.registration.as_str()))
            .clone();
        private_rows.push((
            plan.domains[*dom as usize].clone(),
            prefix_row(plan, p, registration, &policy_names, slot),
        ));
    }
    view.domain_prefixes = Arc::new(private_rows);
    view.domains = plan
        .domains
        .iter()
        .cloned()
        .zip(domain_ids.iter().copied())
        .collect();
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
            map_names::DOMAIN_V4,
            d.domain_prefixes
                .keys()
                .filter(|(_, n)| n.addr().is_ipv4())
                .count() as u32,
            limits::MAX_DOMAIN_PREFIXES,
        ),
        (
            map_names::DOMAIN_V6,
            d.domain_prefixes
                .keys()
                .filter(|(_, n)| n.addr().is_ipv6())
                .count() as u32,
            limits::MAX_DOMAIN_PREFIXES,
        ),
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
