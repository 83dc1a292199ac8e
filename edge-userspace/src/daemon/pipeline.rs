//! The change pipeline: a new config text or state compiled as a whole,
//! applied as a diff with undo, then recorded; route and config reloads.

use std::{
    collections::BTreeSet,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use log::{error, info, warn};
use tokio::sync::mpsc;

use super::*;
use crate::{
    config::{self},
    dataplane::loader::{self},
    desired::{self, Changes, state::State},
    host::routes::{self, RouteEvent, RouteStore},
    plan::Plan,
};

/// What a reading of the config file saw: its metadata (size, modification
/// time, inode) and a hash of its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: (u64, u64),
    hash: u64,
}

/// Reads `path` once: its bytes, what it looked like, and how long ago it
/// was last modified. A file that changed while being read is read again
/// (a bounded number of times).
fn look(path: &Path) -> Result<(Vec<u8>, Seen, Option<Duration>)> {
    use std::{
        hash::{DefaultHasher, Hash as _, Hasher as _},
        os::unix::fs::MetadataExt as _,
    };
    let stat = || {
        std::fs::metadata(path).map(|m| {
            let modified = m.modified().ok();
            let seen = Seen {
                len: m.len(),
                modified,
                inode: (m.dev(), m.ino()),
                hash: 0,
            };
            (seen, modified)
        })
    };
    let reading = || format!("reading {}", path.display());
    let mut tries = 0;
    loop {
        let (before, modified) = stat().with_context(reading)?;
        let bytes = std::fs::read(path).with_context(reading)?;
        let (after, _) = stat().with_context(reading)?;
        tries += 1;
        if before == after && after.len == bytes.len() as u64 || tries == 20 {
            let mut h = DefaultHasher::new();
            bytes.hash(&mut h);
            let seen = Seen {
                hash: h.finish(),
                ..after
            };
            let age = modified.and_then(|m| m.elapsed().ok());
            return Ok((bytes, seen, age));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads a config file that may be being written right now (an editor or
/// `echo > file` that truncates first, a copy in several writes): the text
/// counts once the file's size, modification time, inode and contents have
/// stayed the same for `settle` (`[daemon] reload_settle_ms`). A file last
/// modified longer ago than that counts at once. Gives up when the file
/// keeps changing for ten settle times (at least 5 s). A writer that stalls
/// longer than `settle` half way still fools this: the shrink guard
/// (`check_shrink`) catches most of that, and writing the file atomically
/// (a temporary file renamed over it) all of it.
pub(super) fn read_settled(path: &Path, settle: Duration) -> Result<String> {
    let give_up = Instant::now() + (settle * 10).max(Duration::from_secs(5));
    let step = (settle / 5).clamp(Duration::from_millis(10), Duration::from_millis(100));
    let (mut bytes, mut seen, age) = look(path)?;
    // Unchanged since `stable_since`.
    let mut stable_since = Instant::now()
        .checked_sub(age.unwrap_or_default().min(settle))
        .unwrap_or_else(Instant::now);
    loop {
        let stable = stable_since.elapsed();
        if stable >= settle {
            return config::decode(bytes).with_context(|| format!("config {}", path.display()));
        }
        if Instant::now() >= give_up {
            anyhow::bail!(
                "{} keeps changing (not the same for {} ms within {} s); not reloading",
                path.display(),
                settle.as_millis(),
                (settle * 10).max(Duration::from_secs(5)).as_secs()
            );
        }
        std::thread::sleep(step.min(settle - stable));
        let (again, now, _) = look(path)?;
        if now != seen {
            (bytes, seen) = (again, now);
            stable_since = Instant::now();
        }
    }
}

/// Gives the heap memory a big change freed back to the system. glibc
/// keeps freed memory for reuse, and a change at a million prefixes frees
/// hundreds of MiB of temporaries (the plan's copy, the whole compile's
/// output and diff), which would otherwise stay in edged's RSS for good.
pub(super) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free heap pages back to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Prefixes the config file itself registers (not live changes, not
/// routes).
pub(super) fn file_prefixes(plan: &Plan) -> usize {
    plan.prefixes
        .iter()
        .filter(|p| p.origin == crate::plan::Origin::Config)
        .count()
}

/// A reload refused by the shrink guard (reply kind `invalid`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Shrunk(pub String);

/// The shrink guard: a file registering `now` prefixes where the running
/// one registers `before` is refused when it drops more than `max_percent`
/// of them.
pub(super) fn check_shrink(before: usize, now: usize, max_percent: u32) -> Result<(), Shrunk> {
    if before == 0 || now >= before {
        return Ok(());
    }
    let dropped = before - now;
    if dropped * 100 <= before * max_percent as usize {
        return Ok(());
    }
    Err(Shrunk(format!(
        "refused: the file registers {now} prefixes, {dropped} fewer than the running config's {before} ({}%, more than reload_max_shrink_percent = {max_percent}); the running state is kept. A file caught half-written? Write configs atomically (a temporary file, then rename it over the config). If the cut is meant: `edgectl config reload --force` (SIGHUP cannot force)",
        dropped * 100 / before
    )))
}

/// The kernel tables the plan's route sources follow.
pub(super) fn source_tables(plan: &Plan) -> std::collections::BTreeSet<u32> {
    plan.route_sources.iter().map(|s| s.table).collect()
}

/// Starts following the plan's tables (none: no thread), filling `store`.
pub(super) fn start_sync(
    plan: &Plan,
    store: &mut RouteStore,
    tx: &mpsc::Sender<RouteEvent>,
) -> Result<Option<routes::Sync>> {
    let tables = source_tables(plan);
    if tables.is_empty() {
        return Ok(None);
    }
    let (sync, routes) = routes::Sync::start(tables, routes::SyncOptions::default(), tx.clone())
        .context("starting route sync")?;
    store.apply(RouteEvent::Full(routes));
    Ok(Some(sync))
}

pub(super) fn route_view(store: &RouteStore) -> desired::RoutesView {
    desired::RoutesView {
        routes: store.len(),
        resyncs: store.resyncs,
        skipped: store.skipped,
        martians: store.martians,
    }
}

/// Forgets the live removals of networks the config file no longer
/// registers (`plan.stale_removals`, logged): left in the state, they would
/// silently remove the network again the day the file registers it anew.
pub(super) fn forget_stale_removals(state: &mut State, plan: &mut Plan) {
    let stale = std::mem::take(&mut plan.stale_removals);
    if stale.is_empty() {
        return;
    }
    state.live.removed.retain(|n| !stale.contains(n));
    state.stamps.retain(|n, _| !stale.contains(n));
    info!(
        "live removals forgotten, the config file no longer registers them: {}",
        stale
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The heart of every change: compile `plan` with `state` on `host`, write
/// the difference from `current` through `maps`, then record the state with
/// `save`. A failure at any step leaves the maps (and the record) as they
/// were: a failed write is undone by `apply`, a failed save undoes the
/// whole diff.
#[expect(clippy::too_many_arguments, reason = "one change's every input, named")]
pub(super) fn commit(
    host: &impl desired::Host,
    maps: &mut impl desired::MapWriter,
    current: &Desired,
    plan: &Plan,
    state: State,
    health: &dyn Fn(u32) -> crate::policy::PopView,
    choices: &crate::policy::Choices,
    save: impl FnOnce(&State) -> Result<()>,
) -> Result<(desired::Compiled, State, Changes)> {
    let c = desired::compile_on(host, plan, &state, current, health, choices)?;
    let changes = desired::apply_to(maps, current, &c.desired)?;
    let state = State {
        ids: c.ids.clone(),
        ..state
    };
    if let Err(e) = save(&state) {
        // Keep the maps and the disk in agreement.
        if let Err(u) = desired::apply_to(maps, &c.desired, current) {
            error!("restoring the maps after a failed state write: {u:#}");
        }
        return Err(e.context("recording the desired state"));
    }
    Ok((c, state, changes))
}

impl Daemon {
    /// Validates `text` with `state`, writes the difference into the maps,
    /// then records the state; any failure leaves everything as it was.
    pub(super) fn change(&mut self, text: String, state: State) -> Result<Changes> {
        self.change_checked(text, state, |_| Ok(()), false)
    }

    /// [`Daemon::change`], with `check` refusing the validated plan before
    /// anything is touched. With `delta` (a reload, routes that changed),
    /// a change of the prefixes alone on an unchanged host is applied as a
    /// delta ([`Daemon::reload_delta`]); the other callers change what a
    /// whole compile reads (drained PoPs, next hops, interfaces).
    pub(super) fn change_checked(
        &mut self,
        text: String,
        mut state: State,
        check: impl FnOnce(&Plan) -> Result<()>,
        delta: bool,
    ) -> Result<Changes> {
        let (mut plan, pending) =
            if text == self.source.text && state.live == self.applied.state.live {
                // The same file and live changes (a drain, routes, a reload of
                // an unchanged file): the running plan without its routes is
                // what parsing them would give; a big file is not parsed again.
                let mut plan = self.applied.plan.clone();
                let routes = plan
                    .prefixes
                    .iter()
                    .rev()
                    .take_while(|p| matches!(p.origin, crate::plan::Origin::Route { .. }))
                    .count();
                plan.prefixes.truncate(plan.prefixes.len() - routes);
                check(&plan)?;
                (plan, self.pending.clone())
            } else {
                let mut plan = config::parse_with(&text, &state.live)?;
                check(&plan)?;
                forget_stale_removals(&mut state, &mut plan);
                self.source.overrides.apply(&mut plan);
                // The restart-only keys stay as edged started with them.
                let pending = self.running.pending(&plan);
                self.running.keep(&mut plan);
                (plan, pending)
            };
        let tables = source_tables(&plan);
        if self.routes.sync.as_ref().map(|s| &s.tables) != Some(&tables) {
            // Other tables: follow those instead, from a fresh dump.
            self.routes.sync = None;
            self.routes.store = RouteStore::default();
            self.routes.sync = start_sync(&plan, &mut self.routes.store, &self.routes.tx)?;
        }
        routes::extend(&mut plan, &mut self.routes.store);
        if let Some(holds) = self.holds() {
            crate::analytics::hold::apply(&mut plan, holds);
        }
        let state_path = plan.state_path.clone();
        let drained = state.drained.clone();
        let none = BTreeSet::new();
        // The host as it is now. Interfaces edged already ran with that
        // have vanished since (deleted, renamed away) are compiled as
        // absent rather than failing every change; one the config names
        // anew must exist.
        let was = interfaces::named(&self.applied.plan);
        let names: BTreeSet<String> = was
            .iter()
            .cloned()
            .chain(interfaces::named(&plan))
            .collect();
        let mut seen = interfaces::Facts::read(&names)?;
        let absent = seen.missing(&was);
        // New ports are attached before the change is committed (a port
        // the maps do not know yet passes everything to the kernel), and
        // detached again if it fails; ports that left are detached after.
        let ports: Vec<&str> = plan.interfaces();
        let present: Vec<&str> = ports
            .iter()
            .copied()
            .filter(|p| !absent.contains(*p))
            .collect();
        // A port whose interface is another than the one edged attached to
        // (created again, or back from a rename) needs XDP attached again.
        let returned = present.iter().any(|p| {
            self.host.interfaces.links.get(*p).is_some_and(|before| {
                before.map(|l| l.ifindex)
                    != seen.links.get(*p).copied().flatten().map(|l| l.ifindex)
            })
        });
        let moved = returned || ports != self.applied.plan.interfaces();
        // (A port that does not exist is left to the compile to report.)
        let exist = present
            .iter()
            .all(|p| crate::host::netdev::ifindex(p).is_ok());
        // Only prefixes changed, on the same host: a delta, as for live
        // changes (the same result as the whole pipeline, checked by the
        // walk), its cost following the change rather than the config.
        if delta
            && !moved
            && absent.is_empty()
            && state.drained == self.applied.state.drained
            && seen == self.host.interfaces
            && self.failover.unresolved.is_empty()
            && let Some(changes) = self.reload_delta(&plan, &state)?
        {
            self.source.text = text;
            self.applied.plan = plan;
            self.applied.state = state;
            self.pending = pending;
            return Ok(changes);
        }
        let attached = if moved && exist {
            Some(self.dp.attach_ports(&present, plan.xdp_mode)?)
        } else {
            None
        };
        let committed = {
            let health = health_of(&plan, &drained, &self.failover.health, &none);
            commit(
                &desired::KernelWithout(&absent),
                &mut desired::Maps {
                    tables: &mut self.dp.tables,
                    counters: Some(&mut self.dp.counters),
                },
                &self.applied.current,
                &plan,
                state,
                &health,
                &self.applied.resolved.choices,
                |s| s.save(&state_path),
            )
        };
        let (c, state, changes) = match committed {
            Ok(c) => c,
            Err(e) => {
                if let Some(a) = attached {
                    a.rollback();
                }
                return Err(e);
            }
        };
        if moved {
            match attached {
                Some(a) => a.commit(),
                // The compile resolved every port: they exist now.
                None => match self.dp.attach_ports(&present, plan.xdp_mode) {
                    Ok(a) => a.commit(),
                    Err(e) => error!("attaching the new ports: {e:#}"),
                },
            }
            self.dp.detach_others(&ports);
        }
        let want = c.desired;
        // A port or PoP id that now names another one (renamed, or
        // replaced) counts from zero: its packets are not the old one's.
        let handed_over = |old: &BTreeMap<String, u32>, new: &BTreeMap<String, u32>| {
            new.iter()
                .filter(|(name, id)| old.iter().any(|(n, i)| i == *id && n != *name))
                .map(|(name, id)| (name.clone(), *id))
                .collect::<Vec<_>>()
        };
        for (name, id) in handed_over(&self.applied.state.ids.ports, &state.ids.ports) {
            if let Err(e) = self.dp.counters.reset_port(id) {
                error!("zeroing the counters of port {name} (id {id}): {e}");
            }
        }
        for (name, id) in handed_over(&self.applied.state.ids.pops, &state.ids.pops) {
            if let Err(e) = self.dp.counters.reset_pop(id) {
                error!("zeroing the counters of PoP {name} (id {id}): {e}");
            }
        }
        // Every slot in use, the private domains' too (a live prefix must
        // not take one of theirs).
        self.applied.slots = desired::delta::Slots::of_all(
            c.view
                .prefixes
                .iter()
                .chain(c.view.domain_prefixes.iter().map(|(_, p)| p)),
        );
        let mut view = c.view;
        view.generation = self.snapshot().generation + 1;
        view.routes = route_view(&self.routes.store);
        *self.view.write().expect("view lock") = Arc::new(view);
        let now = interfaces::named(&plan);
        seen.links.retain(|name, _| now.contains(name));
        self.host.interfaces = seen;
        self.source.text = text;
        self.applied.plan = plan;
        self.applied.state = state;
        self.applied.current = want;
        self.applied.layout = c.layout;
        failover::record_fallbacks(
            &mut self.failover.fallbacks,
            &mut self.events,
            &self.applied.resolved,
            &c.resolved,
            &|name| self.applied.plan.is_private_policy(name),
        );
        self.applied.resolved = c.resolved;
        self.failover.unresolved = c.unresolved;
        *self.failover.watched.write().expect("watch set lock") = c.next_hops;
        self.applied.pop_ids = c.pop_ids;
        self.applied.table_ids = c.table_ids;
        self.pending = pending;
        self.sync_monitors();
        self.publish_health();
        Ok(changes)
    }

    /// `plan` (with `state`) as a delta of the running prefixes, applied
    /// and recorded, the view updated; `None` when only the whole pipeline
    /// can apply it ([`desired::delta::plan_reload`]). On an error nothing
    /// changed.
    fn reload_delta(&mut self, plan: &Plan, state: &State) -> Result<Option<Changes>> {
        let Some(port_ids) = plan
            .ports
            .iter()
            .map(|p| state.ids.ports.get(&p.name).copied())
            .collect::<Option<Vec<u32>>>()
        else {
            return Ok(None);
        };
        if state.ids != self.applied.state.ids {
            return Ok(None);
        }
        let view = self.snapshot();
        let Some(d) = desired::delta::plan_reload(
            &desired::delta::Registered {
                plan: &self.applied.plan,
                layout: &self.applied.layout,
                current: &self.applied.current,
                prefixes: &view.prefixes,
                slots: &self.applied.slots,
                table_ids: &self.applied.table_ids,
                port_ids: &port_ids,
                file_removed: &|_| false,
            },
            plan,
        ) else {
            return Ok(None);
        };
        drop(view);
        let changes = super::live::write_recorded(&mut self.dp, &d.writes, &d.removals, || {
            state.save(&plan.state_path)
        })?;
        self.publish_delta(
            super::live::grown(&d.writes, &d.removals),
            |applied, rows| {
                d.commit(desired::delta::ReloadTarget {
                    layout: &mut applied.layout,
                    current: &mut applied.current,
                    prefixes: rows,
                    slots: &mut applied.slots,
                });
            },
        );
        Ok(Some(changes))
    }

    /// Re-reads the config file and applies it. Restart-only keys it
    /// changes are not applied: they are logged (WARN) and listed in
    /// `pending_restart`.
    ///
    /// The running config's reload guard applies (a file caught half
    /// written cannot turn its own guard off): the file is read once it has
    /// settled, and unless `force`, refused when it drops more of the
    /// file's prefixes than `reload_max_shrink_percent`.
    pub fn reload(&mut self, force: bool) -> Result<Changes> {
        let path = self.source.config_path.clone();
        let guard = self.applied.plan.reload;
        super::warn_if_writable(&path);
        let text = read_settled(&path, guard.settle)?;
        let state = self.applied.state.clone();
        let before = file_prefixes(&self.applied.plan);
        let changes = self
            .change_checked(text, state, |plan| {
                if force {
                    let now = file_prefixes(plan);
                    if check_shrink(before, now, guard.max_shrink_percent).is_err() {
                        warn!("reload forced: the file registers {now} prefixes, the running config {before}");
                    }
                    return Ok(());
                }
                Ok(check_shrink(before, file_prefixes(plan), guard.max_shrink_percent)?)
            }, true)
            .with_context(|| format!("config {}", path.display()));
        release_freed();
        let changes = changes?;
        let forced = if force { " (forced)" } else { "" };
        self.audit(
            format!("config {} reloaded{forced}", path.display()),
            &changes,
        );
        if !self.pending.is_empty() {
            warn!(
                "config {}: these keys take effect at the next restart, edged runs on with its own until then: {} (edgectl status: pending_restart)",
                self.source.config_path.display(),
                self.pending
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(changes)
    }

    /// Applies route changes from the sync thread (and any already queued).
    pub fn routes_changed(&mut self, first: RouteEvent, rx: &mut mpsc::Receiver<RouteEvent>) {
        self.routes.store.apply(first);
        let mut events = 1;
        while let Ok(e) = rx.try_recv() {
            self.routes.store.apply(e);
            events += 1;
        }
        let t = Instant::now();
        let (text, state) = (self.source.text.clone(), self.applied.state.clone());
        match self.change_checked(text, state, |_| Ok(()), true) {
            Ok(c) => log::debug!(
                "route sync: {events} batches, {} routes: {} written, {} removed in {:?}",
                self.routes.store.len(),
                c.written,
                c.removed,
                t.elapsed()
            ),
            Err(e) => error!("route sync: applying routes failed: {e:#}"),
        }
        release_freed();
    }

    /// Detaches everything, removes the pins and the state file.
    pub(super) fn teardown(&mut self) {
        loader::teardown(&self.applied.plan.pin_path);
        State::remove(&self.applied.plan.state_path);
        info!(
            "torn down: detached, {} unpinned, state removed",
            self.applied.plan.pin_path.display()
        );
    }
}

#[cfg(test)]
mod tests;
