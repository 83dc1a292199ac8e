//! Registering and unregistering prefixes without compiling the whole plan
//! again: at a million prefixes a full compile takes seconds, a live `prefix
//! add` must take milliseconds.
//!
//! [`plan_delta`] works out what a change of registered prefixes does to
//! what the last compile left (the plan's prefixes, the layout's table per
//! prefix, the maps' entries, the view's rows, the counter slots in use),
//! exactly as compiling the changed plan as a whole would: the same entries,
//! counter slots, order, rows. It declines (`None`) whenever the change
//! could touch anything but those: a selection table gained or left
//! unused, a subnet policy (whose more-specific entries depend on the other
//! prefixes), a route entry. The caller then compiles the whole plan.
//! [`Delta::commit`] applies it in memory once the maps and the state file
//! took it.

use std::{collections::HashSet, sync::Arc};

use edge_common::{DSCP_KEEP, PrefixEntry, limits, preference};
use ipnet::IpNet;

use super::{Desired, PrefixView};
use crate::{
    plan::{Origin, Plan, PlannedPrefix, Preference},
    policy::{Layout, TableKey, region_sensitive},
};

#[cfg(any(test, feature = "fuzzing"))]
thread_local! {
    /// Tests run out of counter slots sooner.
    pub(crate) static SLOT_LIMIT: std::cell::Cell<u32> =
        const { std::cell::Cell::new(limits::MAX_PREFIX_SLOTS) };
}

/// Counter slots (slot 0 included): `limits::MAX_PREFIX_SLOTS`.
pub(crate) fn slot_limit() -> u32 {
    #[cfg(any(test, feature = "fuzzing"))]
    return SLOT_LIMIT.with(std::cell::Cell::get);
    #[cfg(not(any(test, feature = "fuzzing")))]
    limits::MAX_PREFIX_SLOTS
}

/// The prefix counter slots in use (slot 0, shared, aside) and how many
/// prefixes have none of their own (slot 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slots {
    used: Vec<u64>,
    /// Prefixes counted in slot 0.
    pub zero: usize,
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            used: vec![0; (limits::MAX_PREFIX_SLOTS as usize).div_ceil(64)],
            zero: 0,
        }
    }
}

impl Slots {
    /// The slots of `prefixes` (a view's rows).
    pub fn of(prefixes: &[PrefixView]) -> Self {
        Self::of_all(prefixes.iter())
    }

    /// The slots of every row of `prefixes`.
    pub fn of_all<'a>(prefixes: impl Iterator<Item = &'a PrefixView>) -> Self {
        let mut s = Self::default();
        for p in prefixes {
            match p.counter_slot {
                0 => s.zero += 1,
                slot => s.set(slot, true),
            }
        }
        s
    }

    fn is_used(&self, slot: u32) -> bool {
        self.used[slot as usize / 64] >> (slot % 64) & 1 == 1
    }

    fn set(&mut self, slot: u32, used: bool) {
        let (w, b) = (slot as usize / 64, slot % 64);
        if used {
            self.used[w] |= 1 << b;
        } else {
            self.used[w] &= !(1 << b);
        }
    }

    /// The lowest free slot from `from` on (and below the limit).
    fn free_from(&self, from: u32) -> Option<u32> {
        let mut s = from.max(1);
        while s < slot_limit() {
            if s.is_multiple_of(64) && self.used[s as usize / 64] == u64::MAX {
                s += 64;
            } else if self.is_used(s) {
                s += 1;
            } else {
                return Some(s);
            }
        }
        None
    }
}

/// What the last compile left, as [`plan_delta`] reads it.
pub struct Registered<'a> {
    pub plan: &'a Plan,
    pub layout: &'a Layout,
    pub current: &'a Desired,
    /// The view's rows, in plan order.
    pub prefixes: &'a [PrefixView],
    pub slots: &'a Slots,
    /// Map id of each layout table.
    pub table_ids: &'a [u32],
    /// Map id of each plan port.
    pub port_ids: &'a [u32],
    /// Networks the file registers that live changes removed (`live.removed`).
    pub file_removed: &'a dyn Fn(&IpNet) -> bool,
}

impl Registered<'_> {
    /// The map entry of new entry `p` with table key `key` and counter
    /// slot `slot`, as a whole compile makes it.
    fn entry(&self, p: &PlannedPrefix, key: Option<u32>, slot: u32) -> PrefixEntry {
        PrefixEntry {
            allowed_ports: p
                .allowed_ports()
                .iter()
                .fold(0u64, |m, &id| m | (1 << self.port_ids[id as usize])),
            slot,
            policy: key.map_or(0, |k| self.table_ids[k as usize]),
            preference: match p.preference {
                Preference::Microsoft => preference::MICROSOFT,
                Preference::Internet => preference::INTERNET,
            },
            dscp: p.dscp.unwrap_or(DSCP_KEEP),
            _pad: [0; 6],
        }
    }
}

/// The layout key index of new entry `p`'s selection table (`Some(None)`:
/// no policy); `None` when the table does not exist yet or the policy is
/// a subnet one (only a whole compile can place those).
fn table_of(
    plan: &Plan,
    sensitive: &[bool],
    layout: &Layout,
    p: &PlannedPrefix,
) -> Option<Option<u32>> {
    let Some(id) = p.policy else {
        return Some(None);
    };
    let policy = plan.policies.get(id as usize)?;
    if policy.method == crate::plan::Method::Subnet {
        return None;
    }
    let key = TableKey {
        policy: policy.name.clone(),
        region: sensitive[id as usize].then(|| p.region.clone().unwrap_or_default()),
        subnet_member: None,
        exit: None,
    };
    Some(Some(layout.keys.binary_search(&key).ok()? as u32))
}

/// Whether a table would be left without prefixes (it then leaves the
/// layout: a whole compile's work) when the entries at `gone` leave and
/// entries with table keys `keys` come.
fn a_table_left_unused(layout: &Layout, gone: &[usize], keys: &[Option<u32>]) -> bool {
    let mut users = vec![0usize; layout.keys.len()];
    for k in layout.prefix_table.iter().flatten() {
        users[*k as usize] += 1;
    }
    for &i in gone {
        if let Some(k) = layout.prefix_table[i] {
            users[k as usize] -= 1;
        }
    }
    for k in keys.iter().flatten() {
        users[*k as usize] += 1;
    }
    gone.iter()
        .filter_map(|&i| layout.prefix_table[i])
        .any(|k| users[k as usize] == 0)
}

/// A change of registered prefixes, worked out: the map writes to make,
/// then [`Delta::commit`] for the rest.
#[derive(Debug)]
pub struct Delta {
    /// Plan indices that leave, ascending.
    gone: Vec<usize>,
    /// New entries (table key, view row), in plan order: inserted where
    /// the entries of the file and live changes end.
    new: Vec<(PlannedPrefix, Option<u32>, PrefixView)>,
    /// Existing entries (plan index) given a counter slot of their own.
    upgrades: Vec<(usize, u32)>,
    /// Map writes: (network, entry, the entry before).
    pub writes: Vec<(IpNet, PrefixEntry, Option<PrefixEntry>)>,
    /// Map removals: (network, the entry before).
    pub removals: Vec<(IpNet, PrefixEntry)>,
    slots: Slots,
    /// `plan.shadowed` changes: (network, shadowed).
    shadow: Vec<(IpNet, bool)>,
}

/// Works out registering `add` (validated live entries for distinct
/// networks; each replaces the entry for its network) and unregistering
/// `remove` (registered networks, none of them in `add`), or `None` when
/// only a whole compile can.
pub fn plan_delta(r: &Registered<'_>, add: Vec<PlannedPrefix>, remove: &[IpNet]) -> Option<Delta> {
    let plan = r.plan;
    let layout = r.layout;
    // Subnet policies add entries that depend on the other prefixes.
    if !layout.more_specific.is_empty() || layout.keys.iter().any(|k| k.subnet_member.is_some()) {
        return None;
    }
    let sensitive = region_sensitive(plan);
    // Each new entry's table must exist already.
    let keys = add
        .iter()
        .map(|p| table_of(plan, &sensitive, layout, p))
        .collect::<Option<Vec<_>>>()?;
    // The entries that leave: removed, and replaced by new ones.
    let targets: HashSet<IpNet> = remove
        .iter()
        .copied()
        .chain(add.iter().map(|p| p.net))
        .filter(|n| r.current.prefixes.contains_key(n))
        .collect();
    let mut gone = Vec::with_capacity(targets.len());
    if !targets.is_empty() {
        for (i, p) in plan.prefixes.iter().enumerate() {
            if targets.contains(&p.net) {
                if matches!(p.origin, Origin::Route { .. }) {
                    return None;
                }
                gone.push(i);
                if gone.len() == targets.len() {
                    break;
                }
            }
        }
        if gone.len() != targets.len() {
            return None; // the maps hold an entry the plan does not (a subnet's)
        }
        if a_table_left_unused(layout, &gone, &keys) {
            return None;
        }
    }
    let routes = plan
        .prefixes
        .iter()
        .rev()
        .take_while(|p| matches!(p.origin, Origin::Route { .. }))
        .count();
    let live_end = plan.prefixes.len() - routes;

    // Counter slots, as a whole compile gives them: an entry keeps the
    // slot its network has in the maps; the others take the lowest free
    // slots in plan order (existing entries without one first, then the
    // new ones, then route entries), slot 0 once they run out.
    let mut slots = r.slots.clone();
    let kept: HashSet<IpNet> = add
        .iter()
        .filter(|p| r.current.prefixes.get(&p.net).is_some_and(|e| e.slot != 0))
        .map(|p| p.net)
        .collect();
    for &i in &gone {
        let row = &r.prefixes[i];
        match row.counter_slot {
            0 => slots.zero -= 1,
            s if !kept.contains(&row.prefix) => slots.set(s, false),
            _ => {}
        }
    }
    let mut free = Free {
        next: slots.free_from(1),
    };
    let mut upgrades = Vec::new();
    let gone_set: HashSet<usize> = gone.iter().copied().collect();
    let upgrade = |range: std::ops::Range<usize>,
                   slots: &mut Slots,
                   free: &mut Free,
                   upgrades: &mut Vec<(usize, u32)>| {
        for i in range {
            if slots.zero == 0 || free.next.is_none() {
                break;
            }
            if r.prefixes[i].counter_slot == 0 && !gone_set.contains(&i) {
                let s = free.take(slots);
                slots.zero -= 1;
                upgrades.push((i, s));
            }
        }
    };
    upgrade(0..live_end, &mut slots, &mut free, &mut upgrades);
    let mut new = Vec::with_capacity(add.len());
    let mut writes = Vec::with_capacity(add.len() + upgrades.len());
    let mut shadow = Vec::new();
    let from_file: HashSet<IpNet> = gone
        .iter()
        .map(|&i| &plan.prefixes[i])
        .filter(|p| p.origin == Origin::Config)
        .map(|p| p.net)
        .collect();
    let policy_names: Vec<Arc<str>> = plan
        .policies
        .iter()
        .map(|p| Arc::from(p.name.as_str()))
        .collect();
    for (p, key) in add.into_iter().zip(keys) {
        let old = r.current.prefixes.get(&p.net).copied();
        let slot = free.keep_or_take(old, &mut slots);
        let entry = r.entry(&p, key, slot);
        // A network of the file's (registered by it, replaced or removed
        // by a live change) is shadowed by a live entry.
        let of_file = r.plan.shadowed.contains(&p.net)
            || (r.file_removed)(&p.net)
            || from_file.contains(&p.net);
        if of_file {
            shadow.push((p.net, true));
        }
        let row = super::compile::prefix_row(
            plan,
            &p,
            Arc::from(p.registration.as_str()),
            &policy_names,
            slot,
        );
        if old != Some(entry) {
            writes.push((p.net, entry, old));
        }
        new.push((p, key, row));
    }
    upgrade(
        live_end..plan.prefixes.len(),
        &mut slots,
        &mut free,
        &mut upgrades,
    );
    for &(i, s) in &upgrades {
        let net = r.prefixes[i].prefix;
        let old = *r.current.prefixes.get(&net)?;
        writes.push((net, PrefixEntry { slot: s, ..old }, Some(old)));
    }
    let mut removals = Vec::with_capacity(remove.len());
    for net in remove {
        removals.push((*net, *r.current.prefixes.get(net)?));
        if r.plan.shadowed.contains(net) {
            shadow.push((*net, false));
        }
    }
    writes.sort_by_key(|w| w.0);
    removals.sort_by_key(|w| w.0);
    Some(Delta {
        gone,
        new,
        upgrades,
        writes,
        removals,
        slots,
        shadow,
    })
}

/// The lowest free counter slot, taken in turn.
struct Free {
    next: Option<u32>,
}

impl Free {
    /// The next free slot, marked used; 0 once they run out.
    fn take(&mut self, slots: &mut Slots) -> u32 {
        match self.next {
            Some(s) => {
                slots.set(s, true);
                self.next = slots.free_from(s + 1);
                s
            }
            None => 0,
        }
    }

    /// The slot of an entry whose network the maps hold as `before`: the
    /// one it has there, else the next free one (0, counted, once they
    /// run out).
    fn keep_or_take(&mut self, before: Option<PrefixEntry>, slots: &mut Slots) -> u32 {
        match before {
            Some(e) if e.slot != 0 => e.slot,
            _ => {
                let s = self.take(slots);
                if s == 0 {
                    slots.zero += 1;
                }
                s
            }
        }
    }
}

/// Removes the elements at `gone` (ascending indices) from `v`.
fn remove_at<T>(v: &mut Vec<T>, gone: &[usize]) {
    match gone {
        [] => {}
        [i] => {
            v.remove(*i);
        }
        _ => {
            let mut i = 0;
            let mut g = gone.iter().peekable();
            v.retain(|_| {
                let keep = g.peek() != Some(&&i);
                if !keep {
                    g.next();
                }
                i += 1;
                keep
            });
        }
    }
}

/// What [`Delta::commit`] changes in memory.
pub struct Target<'a> {
    pub plan: &'a mut Plan,
    pub layout: &'a mut Layout,
    pub current: &'a mut Desired,
    pub prefixes: &'a mut Vec<PrefixView>,
    pub slots: &'a mut Slots,
}

impl Delta {
    /// Puts the change into the plan, layout, map contents, view rows and
    /// slots: as a compile of the changed plan would have left them.
    pub fn commit(self, t: Target<'_>) {
        for &(i, s) in &self.upgrades {
            t.prefixes[i].counter_slot = s;
        }
        remove_at(&mut t.plan.prefixes, &self.gone);
        remove_at(&mut t.layout.prefix_table, &self.gone);
        remove_at(t.prefixes, &self.gone);
        let routes = t
            .plan
            .prefixes
            .iter()
            .rev()
            .take_while(|p| matches!(p.origin, Origin::Route { .. }))
            .count();
        let at = t.plan.prefixes.len() - routes;
        let n = self.new.len();
        let mut plan_rows = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        let mut rows = Vec::with_capacity(n);
        for (p, k, row) in self.new {
            plan_rows.push(p);
            keys.push(k);
            rows.push(row);
        }
        if at == t.plan.prefixes.len() {
            t.plan.prefixes.extend(plan_rows);
            t.layout.prefix_table.extend(keys);
            t.prefixes.extend(rows);
        } else {
            t.plan.prefixes.splice(at..at, plan_rows);
            t.layout.prefix_table.splice(at..at, keys);
            t.prefixes.splice(at..at, rows);
        }
        for (net, _) in &self.removals {
            t.current.prefixes.remove(net);
        }
        for (net, e, _) in &self.writes {
            t.current.prefixes.insert(*net, *e);
        }
        for (net, on) in self.shadow {
            if on {
                t.plan.shadowed.insert(net);
            } else {
                t.plan.shadowed.remove(&net);
            }
        }
        *t.slots = self.slots;
    }
}

/// Whether `a` and `b` differ in their prefixes alone (the registered
/// prefixes and what follows from them: `shadowed`, `stale_removals`).
fn same_but_prefixes(a: &Plan, b: &Plan) -> bool {
    let Plan {
        pin_path,
        socket_path,
        read_group,
        state_path,
        reload,
        xdp_mode,
        limits,
        metrics_address,
        prefix_metrics,
        default_action,
        backbone_exit,
        transit_exit,
        encap_ttl,
        domains,
        ports,
        pops,
        policies,
        prefixes: _,
        domain_prefixes,
        route_sources,
        registrations,
        bmp_listen,
        latency,
        shadowed: _,
        stale_removals: _,
    } = a;
    *pin_path == b.pin_path
        && *socket_path == b.socket_path
        && *read_group == b.read_group
        && *state_path == b.state_path
        && *reload == b.reload
        && *xdp_mode == b.xdp_mode
        && *limits == b.limits
        && *metrics_address == b.metrics_address
        && *prefix_metrics == b.prefix_metrics
        && *default_action == b.default_action
        && *backbone_exit == b.backbone_exit
        && *transit_exit == b.transit_exit
        && *encap_ttl == b.encap_ttl
        && *domains == b.domains
        && *domain_prefixes == b.domain_prefixes
        && *ports == b.ports
        && *pops == b.pops
        && *policies == b.policies
        && *route_sources == b.route_sources
        && *registrations == b.registrations
        && *bmp_listen == b.bmp_listen
        && *latency == b.latency
}

/// A whole new plan that differs from the running one in its prefixes
/// alone (a config reload, routes that came or went), worked out as a
/// delta: [`plan_reload`].
#[derive(Debug)]
pub struct Reload {
    /// Old plan indices that leave, ascending.
    gone: Vec<usize>,
    /// New entries: (index in the new plan, table key, view row),
    /// ascending.
    new: Vec<(usize, Option<u32>, PrefixView)>,
    /// Existing entries (old plan index) given a counter slot of their own.
    upgrades: Vec<(usize, u32)>,
    /// Map writes: (network, entry, the entry before).
    pub writes: Vec<(IpNet, PrefixEntry, Option<PrefixEntry>)>,
    /// Map removals: (network, the entry before).
    pub removals: Vec<(IpNet, PrefixEntry)>,
    slots: Slots,
}

/// More changed entries than this share of the plan: a whole compile.
const RELOAD_MAX_SHARE: usize = 4;

/// Works out going from the running plan (`r`) to `new`, a plan that
/// differs from it in its prefixes alone, exactly as compiling `new` as a
/// whole over the maps would: the same map entries, counter slots (kept by
/// network; the others the lowest free ones in plan order), view rows and
/// layout. `None` when only a whole compile can (other settings, policies
/// or PoPs; a selection table gained or left unused; a subnet policy;
/// many changes).
pub fn plan_reload(r: &Registered<'_>, new: &Plan) -> Option<Reload> {
    let (plan, layout) = (r.plan, r.layout);
    if !same_but_prefixes(plan, new) {
        return None;
    }
    if !layout.more_specific.is_empty() || layout.keys.iter().any(|k| k.subnet_member.is_some()) {
        return None;
    }
    // Align the two lists: equal entries kept, the rest leave and come.
    let (old, now) = (&plan.prefixes, &new.prefixes);
    let limit = old.len().max(now.len()) / RELOAD_MAX_SHARE + 16;
    let (gone, came) = align_halves(old, now, limit)?;

    // Each new entry's table must exist already.
    let sensitive = region_sensitive(new);
    let keys = came
        .iter()
        .map(|&j| table_of(new, &sensitive, layout, &now[j]))
        .collect::<Option<Vec<_>>>()?;
    if !gone.is_empty() && a_table_left_unused(layout, &gone, &keys) {
        return None;
    }

    let mut slots = r.slots.clone();
    let came_nets: HashSet<IpNet> = came.iter().map(|&j| now[j].net).collect();
    // The maps' entry for each new entry's network.
    let before: Vec<Option<PrefixEntry>> = came
        .iter()
        .map(|&j| r.current.prefixes.get(&now[j].net).copied())
        .collect();
    let kept: HashSet<IpNet> = came
        .iter()
        .zip(&before)
        .filter(|(_, e)| e.is_some_and(|e| e.slot != 0))
        .map(|(&j, _)| now[j].net)
        .collect();
    for &i in &gone {
        let row = &r.prefixes[i];
        match row.counter_slot {
            0 => slots.zero -= 1,
            s if !kept.contains(&row.prefix) => slots.set(s, false),
            _ => {}
        }
    }
    // Existing entries without a slot of their own, still to pass.
    let mut zero_ahead = slots.zero;
    let mut free = Free {
        next: slots.free_from(1),
    };
    let mut new_slots = vec![0u32; came.len()];
    let mut upgrades = Vec::new();
    let (mut g, mut c, mut i) = (0, 0, 0);
    // Walk the new plan's order: a new entry where one comes, else the
    // next old entry that stays.
    for pos in 0..now.len() {
        if c < came.len() && came[c] == pos {
            new_slots[c] = free.keep_or_take(before[c], &mut slots);
            c += 1;
            continue;
        }
        if free.next.is_none() || zero_ahead == 0 {
            // No old entry can gain a slot any more: the new ones that
            // remain take what is left.
            for k in c..came.len() {
                new_slots[k] = free.keep_or_take(before[k], &mut slots);
            }
            break;
        }
        while g < gone.len() && gone[g] == i {
            g += 1;
            i += 1;
        }
        if r.prefixes[i].counter_slot == 0 {
            zero_ahead -= 1;
            let s = free.take(&mut slots);
            slots.zero -= 1;
            upgrades.push((i, s));
        }
        i += 1;
    }

    let policy_names: Vec<Arc<str>> = new
        .policies
        .iter()
        .map(|p| Arc::from(p.name.as_str()))
        .collect();
    let mut writes = Vec::with_capacity(came.len() + upgrades.len());
    let mut rows = Vec::with_capacity(came.len());
    for (((&j, key), slot), old) in came.iter().zip(keys).zip(new_slots).zip(before) {
        let p = &now[j];
        let entry = r.entry(p, key, slot);
        if old != Some(entry) {
            writes.push((p.net, entry, old));
        }
        let row = super::compile::prefix_row(
            new,
            p,
            Arc::from(p.registration.as_str()),
            &policy_names,
            slot,
        );
        rows.push((j, key, row));
    }
    for &(i, s) in &upgrades {
        let net = r.prefixes[i].prefix;
        let old = *r.current.prefixes.get(&net)?;
        writes.push((net, PrefixEntry { slot: s, ..old }, Some(old)));
    }
    let mut removals = Vec::new();
    for &i in &gone {
        let net = old[i].net;
        if !came_nets.contains(&net) {
            removals.push((net, *r.current.prefixes.get(&net)?));
        }
    }
    writes.sort_by_key(|w| w.0);
    removals.sort_by_key(|w| w.0);
    Some(Reload {
        gone,
        new: rows,
        upgrades,
        writes,
        removals,
        slots,
    })
}

/// Below this many prefixes the lists are aligned in one go.
const ALIGN_SPLIT_MIN: usize = 100_000;

/// [`align`] of `old` and `now`, as two halves aligned at once on two
/// threads for long lists: the pass reads every entry of both lists (two
/// times a hundred megabytes at a million prefixes) and is bound by memory,
/// not by the compares, so two cores read it in about half the time. The
/// halves meet at an entry near the middle of `old` found equal in `now`
/// close to the same place (the lists keep the config's order, and a
/// reload moves an entry by the count of entries added or removed before
/// it); without one nearby, the lists are aligned in one go. Any meeting
/// point gives a correct delta; an entry equal on both sides gives the
/// same one as a single pass.
fn align_halves(
    old: &[PlannedPrefix],
    now: &[PlannedPrefix],
    limit: usize,
) -> Option<(Vec<usize>, Vec<usize>)> {
    if old.len() < ALIGN_SPLIT_MIN || now.len() < ALIGN_SPLIT_MIN {
        return align(old, now, limit);
    }
    let Some((i_mid, j_mid)) = meeting_point(old, now) else {
        return align(old, now, limit);
    };
    let (front, back) = std::thread::scope(|s| {
        let back = s.spawn(|| align(&old[i_mid..], &now[j_mid..], limit));
        (
            align(&old[..i_mid], &now[..j_mid], limit),
            back.join().expect("the aligning thread"),
        )
    });
    let ((mut gone, mut came), (gone_back, came_back)) = (front?, back?);
    gone.extend(gone_back.iter().map(|i| i + i_mid));
    came.extend(came_back.iter().map(|j| j + j_mid));
    (gone.len() + came.len() <= limit).then_some((gone, came))
}

/// An entry of `old` near its middle and the equal entry of `now` within
/// [`MEET_WITHIN`] places of it, if any.
fn meeting_point(old: &[PlannedPrefix], now: &[PlannedPrefix]) -> Option<(usize, usize)> {
    let mid = old.len() / 2;
    (mid..(mid + 16).min(old.len())).find_map(|i| {
        let near = |j: usize| (now.get(j) == Some(&old[i])).then_some((i, j));
        (0..=MEET_WITHIN).find_map(|d| near(i + d).or_else(|| i.checked_sub(d).and_then(near)))
    })
}

/// How far from an entry's place in `old` its equal in `now` is looked for.
const MEET_WITHIN: usize = 4096;

/// Lines `now` up with `old`: equal entries are kept, the others leave
/// (`old` indexes) and come (`now` indexes). `None` past `limit` changes.
fn align(
    old: &[PlannedPrefix],
    now: &[PlannedPrefix],
    limit: usize,
) -> Option<(Vec<usize>, Vec<usize>)> {
    let (mut i, mut j) = (0, 0);
    let mut gone = Vec::new();
    let mut came = Vec::new();
    while i < old.len() && j < now.len() {
        if old[i] == now[j] {
            i += 1;
            j += 1;
        } else if old.get(i + 1) == Some(&now[j]) {
            gone.push(i);
            i += 1;
        } else if now.get(j + 1) == Some(&old[i]) {
            came.push(j);
            j += 1;
        } else {
            gone.push(i);
            came.push(j);
            i += 1;
            j += 1;
        }
        if gone.len() + came.len() > limit {
            return None;
        }
    }
    gone.extend(i..old.len());
    came.extend(j..now.len());
    (gone.len() + came.len() <= limit).then_some((gone, came))
}

/// What [`Reload::commit`] changes in memory (the plan is replaced whole
/// by the new one).
pub struct ReloadTarget<'a> {
    pub layout: &'a mut Layout,
    pub current: &'a mut Desired,
    pub prefixes: &'a mut Vec<PrefixView>,
    pub slots: &'a mut Slots,
}

/// `v` without the elements at `gone` (ascending) and with `new` (final
/// index, element; ascending) put in.
fn splice_at<T>(v: &mut Vec<T>, gone: &[usize], new: Vec<(usize, T)>) {
    if gone.len() == new.len() && gone.iter().zip(&new).all(|(g, (n, _))| g == n) {
        // Entries replaced where they stand: nothing moves.
        for (at, x) in new {
            v[at] = x;
        }
        return;
    }
    remove_at(v, gone);
    if new.is_empty() {
        return;
    }
    let old = std::mem::take(v);
    v.reserve(old.len() + new.len());
    let mut rest = old.into_iter();
    for (at, x) in new {
        while v.len() < at {
            v.push(rest.next().expect("a final index within the new length"));
        }
        v.push(x);
    }
    v.extend(rest);
}

impl Reload {
    /// Changed entries (map writes and removals).
    pub fn len(&self) -> usize {
        self.writes.len() + self.removals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts the change into the layout, map contents, view rows and slots:
    /// as a compile of the new plan would have left them.
    pub fn commit(self, t: ReloadTarget<'_>) {
        for &(i, s) in &self.upgrades {
            t.prefixes[i].counter_slot = s;
        }
        let mut keys = Vec::with_capacity(self.new.len());
        let mut rows = Vec::with_capacity(self.new.len());
        for (j, k, row) in self.new {
            keys.push((j, k));
            rows.push((j, row));
        }
        splice_at(&mut t.layout.prefix_table, &self.gone, keys);
        splice_at(t.prefixes, &self.gone, rows);
        for (net, _) in &self.removals {
            t.current.prefixes.remove(net);
        }
        for (net, e, _) in &self.writes {
            t.current.prefixes.insert(*net, *e);
        }
        *t.slots = self.slots;
    }
}

#[cfg(test)]
mod tests {
    use ipnet::{IpNet, Ipv4Net};

    use super::{ALIGN_SPLIT_MIN, align, align_halves, meeting_point};
    use crate::plan::{Origin, PlannedPrefix, Preference};

    fn planned(i: u32, dscp: Option<u8>) -> PlannedPrefix {
        PlannedPrefix {
            net: IpNet::V4(Ipv4Net::new((0x0a00_0000 + i * 7).into(), 32).unwrap()),
            registration: "r".into(),
            origin: Origin::Config,
            preference: Preference::Microsoft,
            policy: Some(0),
            dscp,
            protect: Vec::new(),
            region: None,
            held: Vec::new(),
        }
    }

    /// Long lists are aligned as two halves on two threads: the same
    /// entries leave and come as when aligned in one go, for changes on
    /// both sides of the middle, entries removed and added before it (the
    /// halves meet off the middle of `now`), and at the meeting point.
    #[test]
    fn halves_align_as_one_pass_does() {
        let n = (ALIGN_SPLIT_MIN * 2) as u32;
        let old: Vec<PlannedPrefix> = (0..n).map(|i| planned(i, None)).collect();
        let mut now = old.clone();
        for i in (0..n as usize).step_by(997) {
            now[i].dscp = Some(46);
        }
        // Removed and added before the middle (one at a time, as the pass
        // lines them up): the rest of `now` moves.
        for at in [9000, 7000, 3000, 1000] {
            now.remove(at);
        }
        for k in 0..6 {
            now.insert(11_000 + 2000 * k as usize, planned(n + k, None));
        }
        // Changed at the middle itself.
        now[old.len() / 2 + 15].dscp = Some(10);
        now.push(planned(n + 100, None));
        let limit = old.len() / 4 + 16;
        // The halves meet where `now` has moved by the two more entries.
        let mid = old.len() / 2;
        assert_eq!(meeting_point(&old, &now), Some((mid, mid + 2)));
        let one = align(&old, &now, limit).expect("within the limit");
        let two = align_halves(&old, &now, limit).expect("within the limit");
        assert_eq!(one, two);
        // Came: the 6 added, the changed (every 997th, the middle's), the
        // one pushed; gone: the 4 removed and the changed.
        let changed = (n as usize).div_ceil(997) + 1;
        assert_eq!((one.0.len(), one.1.len()), (4 + changed, 6 + changed + 1));
        // Lists with nothing in common near the middle: aligned in one go
        // (and past the limit here).
        let other: Vec<PlannedPrefix> = (0..n).map(|i| planned(i + n, None)).collect();
        assert_eq!(align_halves(&old, &other, limit), None);
    }
}
