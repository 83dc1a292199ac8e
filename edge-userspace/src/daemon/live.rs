//! Live prefix changes (`prefix add`, `prefix del`, `prefix add --file`):
//! checked against the running plan and written as a delta
//! ([`desired::delta`]), without parsing the config file or compiling the
//! whole plan again, whenever the change touches registered prefixes only;
//! otherwise (a new selection table, a subnet policy, a route entry) through
//! the whole pipeline ([`Daemon::change`]). Either way the change is one
//! transaction: validated whole, written with undo, recorded, or nothing.

use std::{collections::HashSet, sync::Arc};

use anyhow::{Context as _, Result};
use ipnet::IpNet;
use log::error;

use super::*;
use crate::{
    config::{self, Invalid, PrefixSpec, Problem},
    control::{BatchItem, LiveChange},
    desired::{
        Changes,
        delta::{self, Registered, Target},
        state::Stamp,
    },
};

/// The public network a spec names, if it parses (`None` for a private
/// domain's spec: those are [`Daemon::live_private`]'s).
fn net_of(spec: &PrefixSpec) -> Option<IpNet> {
    if spec.private_domain().is_some() {
        return None;
    }
    spec.prefix.parse::<IpNet>().ok()
}

/// Puts back the stamps [`Daemon::stamp`] replaced.
fn unstamp(state: &mut State, old: Vec<(IpNet, Option<Stamp>)>) {
    for (net, stamp) in old.into_iter().rev() {
        match stamp {
            Some(s) => state.stamps.insert(net, s),
            None => state.stamps.remove(&net),
        };
    }
}

/// How to put back a state [`change_state`] changed: what it took out of
/// the live lists (with their places) and how long they were.
#[derive(Debug)]
pub(super) struct StateUndo {
    added_len: usize,
    taken_added: Vec<(usize, PrefixSpec)>,
    removed_len: usize,
    taken_removed: Vec<(usize, IpNet)>,
}

impl StateUndo {
    /// The networks the change took out of `live.removed`: the file's,
    /// registered again by a live entry.
    pub(super) fn unremoved(&self) -> HashSet<IpNet> {
        self.taken_removed.iter().map(|t| t.1).collect()
    }

    /// Puts `state` back as it was before the change.
    pub(super) fn revert(self, state: &mut State) {
        fn merge<T>(now: &mut Vec<T>, len: usize, taken: Vec<(usize, T)>) {
            let kept = len - taken.len();
            now.truncate(kept);
            if taken.is_empty() {
                return;
            }
            let mut kept = std::mem::take(now).into_iter();
            let mut taken = taken.into_iter().peekable();
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                match taken.next_if(|(at, _)| *at == i) {
                    Some((_, t)) => out.push(t),
                    None => out.extend(kept.next()),
                }
            }
            *now = out;
        }
        merge(&mut state.live.added, self.added_len, self.taken_added);
        merge(
            &mut state.live.removed,
            self.removed_len,
            self.taken_removed,
        );
    }
}

/// Changes `state` in place to register `add` (each replacing the live
/// entry for its network, however spelled) and unregister `del` (a network
/// of the file stays removed: `in_file`), without copying the live lists
/// (a hundred thousand live entries cost milliseconds to copy): the undo
/// puts it back. `registered` says whether a network is registered at all
/// (only then can it have a live entry to replace).
pub(super) fn change_state(
    state: &mut State,
    add: &[PrefixSpec],
    del: &[IpNet],
    in_file: &dyn Fn(&IpNet) -> bool,
    registered: &dyn Fn(&IpNet) -> bool,
) -> StateUndo {
    let mut undo = StateUndo {
        added_len: state.live.added.len(),
        taken_added: Vec::new(),
        removed_len: state.live.removed.len(),
        taken_removed: Vec::new(),
    };
    let added: HashSet<IpNet> = add.iter().filter_map(net_of).collect();
    let nets: HashSet<IpNet> = added
        .iter()
        .copied()
        .chain(del.iter().copied())
        .filter(|n| registered(n))
        .collect();
    if !nets.is_empty() {
        let old = std::mem::take(&mut state.live.added);
        state.live.added.reserve(old.len() + add.len());
        for (i, p) in old.into_iter().enumerate() {
            if net_of(&p).is_some_and(|n| nets.contains(&n)) {
                undo.taken_added.push((i, p));
            } else {
                state.live.added.push(p);
            }
        }
    }
    if !added.is_empty() && !state.live.removed.is_empty() {
        let old = std::mem::take(&mut state.live.removed);
        for (i, n) in old.into_iter().enumerate() {
            if added.contains(&n) {
                undo.taken_removed.push((i, n));
            } else {
                state.live.removed.push(n);
            }
        }
    }
    state.live.added.extend(add.iter().cloned());
    let mut removed: HashSet<IpNet> = state.live.removed.iter().copied().collect();
    for net in del {
        if in_file(net) && removed.insert(*net) {
            state.live.removed.push(*net);
        }
    }
    undo
}

/// What registering `add` and unregistering `del` does to `applied` (whose
/// view rows are `rows`), as a delta: `Ok(None)` when only the whole
/// pipeline can apply it; `Err` when the change is invalid (the problems a
/// whole validation gives).
/// `unremoved`: the networks of the file that `live.removed` held before
/// the change and `add` registers again.
pub(super) fn work_out(
    applied: &Applied,
    rows: &[desired::PrefixView],
    add: &[PrefixSpec],
    del: &[IpNet],
    unremoved: &HashSet<IpNet>,
) -> Result<Option<delta::Delta>> {
    let plan = &applied.plan;
    let current = &applied.current;
    let Some(planned) =
        config::validate_live(plan, add, &|n| current.prefixes.contains_key(n), None)?
    else {
        return Ok(None);
    };
    let Some(port_ids) = plan
        .ports
        .iter()
        .map(|p| applied.state.ids.ports.get(&p.name).copied())
        .collect::<Option<Vec<u32>>>()
    else {
        return Ok(None);
    };
    Ok(delta::plan_delta(
        &Registered {
            plan,
            layout: &applied.layout,
            current,
            prefixes: rows,
            slots: &applied.slots,
            table_ids: &applied.table_ids,
            port_ids: &port_ids,
            file_removed: &|n| unremoved.contains(n),
        },
        planned,
        del,
    ))
}

/// Writes a delta's `writes` and `removals` into the maps (undone on a
/// failed write), then records the state with `save`; a failed record
/// undoes the writes too. Either way, an error leaves the maps as they were.
#[allow(clippy::type_complexity)]
pub(super) fn write_recorded(
    dp: &mut Dataplane,
    writes: &[(
        IpNet,
        edge_common::PrefixEntry,
        Option<edge_common::PrefixEntry>,
    )],
    removals: &[(IpNet, edge_common::PrefixEntry)],
    save: impl FnOnce() -> Result<()>,
) -> Result<Changes> {
    let mut maps = desired::Maps {
        tables: &mut dp.tables,
        counters: Some(&mut dp.counters),
    };
    let changes = desired::apply_prefixes(&mut maps, writes, removals)?;
    if let Err(e) = save() {
        // Keep the maps and the disk in agreement.
        if let Err(u) = desired::undo_prefixes(&mut maps, writes, removals) {
            error!("restoring the maps after a failed state write: {u:#}");
        }
        return Err(e.context("recording the desired state"));
    }
    Ok(changes)
}

/// How many entries the prefix maps (IPv4, IPv6) gain with `writes` and
/// `removals`.
#[allow(clippy::type_complexity)]
pub(super) fn grown(
    writes: &[(
        IpNet,
        edge_common::PrefixEntry,
        Option<edge_common::PrefixEntry>,
    )],
    removals: &[(IpNet, edge_common::PrefixEntry)],
) -> [isize; 2] {
    let family = |n: &IpNet| usize::from(n.addr().is_ipv6());
    let mut grown = [0isize; 2];
    for (net, _, old) in writes {
        if old.is_none() {
            grown[family(net)] += 1;
        }
    }
    for (net, _) in removals {
        grown[family(net)] -= 1;
    }
    grown
}

impl Daemon {
    /// Which of `nets` the config file registers (its entry may be
    /// replaced by a live one): one pass over the prefixes.
    pub(super) fn in_file(&self, nets: &[IpNet]) -> HashSet<IpNet> {
        if nets.is_empty() {
            return HashSet::new();
        }
        let wanted: HashSet<IpNet> = nets.iter().copied().collect();
        let shadowed = &self.applied.plan.shadowed;
        let mut out: HashSet<IpNet> = wanted
            .iter()
            .filter(|n| shadowed.contains(n))
            .copied()
            .collect();
        out.extend(
            self.snapshot()
                .prefixes
                .iter()
                .filter(|p| p.source == crate::plan::Origin::Config && wanted.contains(&p.prefix))
                .map(|p| p.prefix),
        );
        out
    }

    /// Registers `add` (each replacing the entry for its network) and
    /// unregisters `del` (registered, not by a route), as one change.
    /// The live state changes in place (with an undo for every way the
    /// change can fail), so that it is not copied whole.
    pub(super) fn live_change(&mut self, add: Vec<PrefixSpec>, del: Vec<IpNet>) -> Result<Changes> {
        let in_file = self.in_file(&del);
        let stamped = self.stamp(&add, &del, &in_file);
        let mut state = std::mem::take(&mut self.applied.state);
        let undo = change_state(&mut state, &add, &del, &|n| in_file.contains(n), &|n| {
            self.applied.current.prefixes.contains_key(n)
        });
        self.applied.state = state;
        match self.live_delta(&add, &del, &undo.unremoved()) {
            Ok(Some(changes)) => return Ok(changes),
            Ok(None) => {}
            Err(e) => {
                undo.revert(&mut self.applied.state);
                unstamp(&mut self.applied.state, stamped);
                return Err(e);
            }
        }
        // The whole pipeline, from the changed state, with the running one
        // as it was (it records the new state itself when it succeeds).
        let state = self.applied.state.clone();
        undo.revert(&mut self.applied.state);
        unstamp(&mut self.applied.state, stamped);
        self.change(self.source.text.clone(), state)
    }

    /// Records when and by whom `add` and `del` are made (a network of the
    /// file deleted stays a live change; a live entry deleted is none any
    /// more); the stamps they replace, for [`unstamp`].
    fn stamp(
        &mut self,
        add: &[PrefixSpec],
        del: &[IpNet],
        in_file: &HashSet<IpNet>,
    ) -> Vec<(IpNet, Option<Stamp>)> {
        let stamp = Stamp::now(self.caller.map(|c| c.name()));
        let stamps = &mut self.applied.state.stamps;
        let mut old = Vec::with_capacity(add.len() + del.len());
        for net in add.iter().filter_map(net_of) {
            old.push((net, stamps.insert(net, stamp.clone())));
        }
        for &net in del {
            let before = if in_file.contains(&net) {
                stamps.insert(net, stamp.clone())
            } else {
                stamps.remove(&net)
            };
            old.push((net, before));
        }
        old
    }

    /// Every live change: the live entries in the order they were made,
    /// then the file's networks removed.
    pub(super) fn live_changes(&self) -> Vec<LiveChange> {
        let state = &self.applied.state;
        let shadowed = &self.applied.plan.shadowed;
        let change = |net: IpNet, kind: &str, spec: Option<&PrefixSpec>| {
            let stamp = state.stamps.get(&net);
            LiveChange {
                domain: None,
                by: stamp.and_then(|s| s.by.clone()),
                kind: kind.into(),
                network: net,
                spec: spec.cloned(),
                time: stamp.map(|s| s.time_ms as f64 / 1e3),
            }
        };
        let added = state.live.added.iter().filter_map(|spec| {
            let net = net_of(spec)?;
            let kind = if shadowed.contains(&net) {
                "replaced"
            } else {
                "added"
            };
            Some(change(net, kind, Some(spec)))
        });
        let removed = state
            .live
            .removed
            .iter()
            .map(|&net| change(net, "removed", None));
        // A private domain's: not stamped (the stamps are the public
        // networks').
        // The file is read again only when there is a private change (its
        // text may hold a million public prefixes).
        let any_private = state
            .live
            .added
            .iter()
            .any(|s| s.private_domain().is_some());
        let file = if any_private {
            self.file_private()
        } else {
            HashSet::new()
        };
        let in_file = |d: &str, n: IpNet| file.contains(&(d.to_string(), n));
        let private_added = state.live.added.iter().filter_map(|spec| {
            let d = spec.private_domain()?;
            let net = spec.prefix.parse::<IpNet>().ok()?;
            Some(LiveChange {
                by: None,
                domain: Some(d.to_string()),
                kind: if in_file(d, net) { "replaced" } else { "added" }.into(),
                network: net,
                spec: Some(spec.clone()),
                time: None,
            })
        });
        let private_removed = state.live.removed_private.iter().map(|d| LiveChange {
            by: None,
            domain: Some(d.domain.clone()),
            kind: "removed".into(),
            network: d.network,
            spec: None,
            time: None,
        });
        added
            .chain(removed)
            .chain(private_added)
            .chain(private_removed)
            .collect()
    }

    /// The (private domain, network) pairs the config file registers (read
    /// from its text: the running plan has the live changes merged in).
    fn file_private(&self) -> HashSet<(String, IpNet)> {
        config::parse(&self.source.text).map_or_else(
            |_| HashSet::new(),
            |p| {
                p.domain_prefixes
                    .iter()
                    .map(|(d, q)| (p.domains[*d as usize].clone(), q.net))
                    .collect()
            },
        )
    }

    /// A private domain's live change: `add` registers a prefix in its
    /// domain (replacing the live or file entry for the network there),
    /// `del` removes one (a live entry, or the file's). Always the whole
    /// pipeline (a private domain is small); checked as the file's entries
    /// are.
    pub(super) fn live_private(
        &mut self,
        add: Option<PrefixSpec>,
        del: Option<config::DomainNet>,
    ) -> Result<Changes> {
        let mut state = self.applied.state.clone();
        let live = &mut state.live;
        if let Some(spec) = add {
            // A prefix that does not parse is the validation's to report.
            if let Ok(net) = spec.prefix.parse::<IpNet>() {
                let d = spec.private_domain().unwrap_or_default().to_string();
                let same = |s: &PrefixSpec| {
                    s.private_domain() == Some(d.as_str())
                        && s.prefix.parse::<IpNet>().ok() == Some(net)
                };
                live.added.retain(|s| !same(s));
                live.removed_private
                    .retain(|x| !(x.domain == d && x.network == net));
            }
            live.added.push(spec);
        }
        if let Some(del) = del {
            let same = |s: &PrefixSpec| {
                s.private_domain() == Some(del.domain.as_str())
                    && s.prefix.parse::<IpNet>().ok() == Some(del.network)
            };
            let had_live = live.added.iter().any(same);
            live.added.retain(|s| !same(s));
            let in_file = self
                .file_private()
                .contains(&(del.domain.clone(), del.network));
            let view = self.snapshot();
            let row = view
                .domain_prefixes
                .iter()
                .find(|(d, p)| *d == del.domain && p.prefix == del.network);
            if let Some((_, p)) = row.filter(|_| !had_live && !in_file)
                && let crate::plan::Origin::Route { .. } = p.source
            {
                return Err(Invalid(vec![Problem {
                    line: None,
                    message: format!(
                        "prefix {} of domain {} comes from {}: withdraw the route (or add a live entry to override it)",
                        del.network, del.domain, p.source
                    ),
                    map_full: false,
                }])
                .into());
            }
            if !had_live && !in_file {
                anyhow::bail!(super::requests::NotFound(format!(
                    "prefix {} is not registered in domain {}",
                    del.network, del.domain
                )));
            }
            if in_file && !live.removed_private.contains(&del) {
                live.removed_private.push(del);
            }
        }
        self.change(self.source.text.clone(), state)
    }

    /// Drops the live changes of `networks` (every one with `all`) from the
    /// overlay, as one change through the whole pipeline: each network goes
    /// back to the config file's entry, or to nothing. The networks
    /// cleared, in the order given (`all`: in `live list`'s order).
    pub(super) fn live_clear(
        &mut self,
        networks: &[IpNet],
        all: bool,
    ) -> Result<(Changes, Vec<IpNet>)> {
        let live: Vec<IpNet> = self.live_changes().iter().map(|c| c.network).collect();
        let cleared: Vec<IpNet> = if all {
            live
        } else {
            let known: HashSet<IpNet> = live.into_iter().collect();
            let missing: Vec<String> = networks
                .iter()
                .filter(|n| !known.contains(n))
                .map(ToString::to_string)
                .collect();
            if !missing.is_empty() {
                anyhow::bail!(super::requests::NotFound(format!(
                    "no live change for {} (`edgectl live list` shows them); nothing was cleared",
                    missing.join(", ")
                )));
            }
            let mut seen = HashSet::new();
            networks
                .iter()
                .copied()
                .filter(|n| seen.insert(*n))
                .collect()
        };
        if cleared.is_empty() {
            return Ok((Changes::default(), cleared));
        }
        let gone: HashSet<IpNet> = cleared.iter().copied().collect();
        let mut state = self.applied.state.clone();
        // Every domain's changes of those networks.
        state.live.added.retain(|spec| {
            spec.prefix
                .parse::<IpNet>()
                .map_or(true, |n| !gone.contains(&n))
        });
        state.live.removed.retain(|n| !gone.contains(n));
        state
            .live
            .removed_private
            .retain(|d| !gone.contains(&d.network));
        state.stamps.retain(|n, _| !gone.contains(n));
        let changes = self.change(self.source.text.clone(), state)?;
        Ok((changes, cleared))
    }

    /// A batch of live changes as one transaction: every item checked
    /// first (each problem with the item's line), then applied as one
    /// change, or nothing.
    pub(super) fn batch(&mut self, items: Vec<BatchItem>) -> Result<Changes> {
        let n = items.len();
        let mut problems = Vec::new();
        let mut add = Vec::new();
        let mut add_lines = Vec::new();
        let mut del: Vec<(IpNet, usize)> = Vec::new();
        let mut seen: std::collections::HashMap<IpNet, usize> = Default::default();
        for (i, item) in items.into_iter().enumerate() {
            let line = item.line.unwrap_or(i + 1);
            let bad = |message: String| Problem {
                line: Some(line),
                message,
                map_full: false,
            };
            let net = match (&item.add, item.del) {
                (Some(spec), None) => net_of(spec),
                (None, Some(net)) => Some(net),
                _ => {
                    problems.push(bad("an item adds or deletes one prefix".into()));
                    continue;
                }
            };
            if let Some(net) = net
                && let Some(first) = seen.insert(net, line)
            {
                problems.push(bad(format!(
                    "prefix {net} is already in this batch (line {first})"
                )));
                continue;
            }
            match (item.add, item.del) {
                (Some(spec), _) => {
                    add.push(spec);
                    add_lines.push(line);
                }
                (_, Some(net)) => del.push((net, line)),
                _ => {}
            }
        }
        // What is deleted must be registered, and not by a route.
        if !del.is_empty() {
            let wanted: std::collections::HashMap<IpNet, crate::plan::Origin> = {
                let nets: HashSet<IpNet> = del.iter().map(|d| d.0).collect();
                self.snapshot()
                    .prefixes
                    .iter()
                    .filter(|p| nets.contains(&p.prefix))
                    .map(|p| (p.prefix, p.source))
                    .collect()
            };
            for &(net, line) in &del {
                let message = match wanted.get(&net) {
                    None => format!("prefix {net} is not registered"),
                    Some(source @ crate::plan::Origin::Route { .. }) => format!(
                        "prefix {net} comes from {source}: withdraw the route (or add a live entry to override it)"
                    ),
                    Some(_) => continue,
                };
                problems.push(Problem {
                    line: Some(line),
                    message,
                    map_full: false,
                });
            }
        }
        let current = &self.applied.current;
        if let Err(Invalid(p)) = config::validate_live(
            &self.applied.plan,
            &add,
            &|n| current.prefixes.contains_key(n),
            Some(&add_lines),
        ) {
            problems.extend(p);
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            return Err(anyhow::Error::new(Invalid(problems))
                .context(format!("batch of {n} items refused; nothing was applied")));
        }
        let del = del.into_iter().map(|d| d.0).collect();
        self.live_change(add, del)
            .with_context(|| format!("batch of {n} items; nothing was applied"))
    }

    /// The change as a delta, if it can be one (`None`: compile the whole
    /// plan). `applied.state` is already the state after it; on an error
    /// the caller puts it back.
    fn live_delta(
        &mut self,
        add: &[PrefixSpec],
        del: &[IpNet],
        unremoved: &HashSet<IpNet>,
    ) -> Result<Option<Changes>> {
        let plan = &self.applied.plan;
        if !plan.route_sources.is_empty() {
            // Routes come and go behind live entries: the whole pipeline
            // decides which one registers a network.
            let tables: Vec<u32> = plan.route_sources.iter().map(|s| s.table).collect();
            let store = &self.routes.store;
            if store.skipped > 0
                || add
                    .iter()
                    .filter_map(net_of)
                    .chain(del.iter().copied())
                    .any(|n| store.has_net(tables.iter().copied(), &n))
            {
                return Ok(None);
            }
        }
        let view = self.snapshot();
        let Some(d) = work_out(&self.applied, &view.prefixes, add, del, unremoved)? else {
            return Ok(None);
        };
        drop(view);
        let (state, path) = (&self.applied.state, &self.applied.plan.state_path);
        let changes = write_recorded(&mut self.dp, &d.writes, &d.removals, || state.save(path))?;
        self.publish_delta(grown(&d.writes, &d.removals), |applied, rows| {
            d.commit(Target {
                plan: &mut applied.plan,
                layout: &mut applied.layout,
                current: &mut applied.current,
                prefixes: rows,
                slots: &mut applied.slots,
            });
        });
        Ok(Some(changes))
    }

    /// Publishes a change of prefixes made without a whole compile: `commit`
    /// puts it into the running state and the view's rows, the map counts
    /// grow by `grown` (IPv4, IPv6: [`grown`]), and the view gets a new
    /// generation. The view is taken out of its lock and changed in place
    /// when no reader holds it (else copied).
    pub(super) fn publish_delta(
        &mut self,
        grown: [isize; 2],
        commit: impl FnOnce(&mut Applied, &mut Vec<desired::PrefixView>),
    ) {
        let mut slot = self.view.write().expect("view lock");
        let old = std::mem::take(&mut *slot);
        let mut view = Arc::try_unwrap(old).unwrap_or_else(|shared| (*shared).clone());
        commit(&mut self.applied, Arc::make_mut(&mut view.prefixes));
        for (map, used, _) in &mut view.maps {
            let g = match *map {
                m if m == edge_common::map_names::PREFIX_V4 => grown[0],
                m if m == edge_common::map_names::PREFIX_V6 => grown[1],
                _ => 0,
            };
            *used = (*used as isize + g) as u32;
        }
        view.generation += 1;
        view.routes = pipeline::route_view(&self.routes.store);
        *slot = Arc::new(view);
    }
}
