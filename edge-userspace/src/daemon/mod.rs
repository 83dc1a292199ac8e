//! edged's state and the handling of every control request.
//!
//! The daemon owns the desired state: the config file's text as last
//! applied, the live changes and drained PoPs (kept on disk, see
//! [`State`]), and what the maps hold. Every change is compiled and
//! validated as a whole, applied as a diff, and only then recorded; a change
//! that fails at any step leaves the maps and the state file as they were.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock, atomic::AtomicBool},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use edge_common::{DSCP_KEEP, NO_POP, POLICY_SLOTS, ProtectionEvent, limits, preference};
use ipnet::IpNet;
use log::{error, info, warn};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::{
    config::{self, Invalid},
    control::{Request, Response},
    dataplane::{
        MapsError, events,
        loader::{self, Dataplane},
        maps::Count,
    },
    desired::{self, Changes, Desired, PopHealthView, View, state::State},
    health::{self, HealthEvent, PopStatus},
    host::routes::{self, RouteEvent, RouteStore},
    plan::{Plan, Probe},
    policy::{self as resolve, Choices, Layout, PopView as PopHealth, Resolved},
};

/// Where the daemon's files are; flags override the config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub pin_path: Option<PathBuf>,
    pub socket_path: Option<PathBuf>,
    pub state_path: Option<PathBuf>,
}

impl Overrides {
    pub fn apply(&self, plan: &mut Plan) {
        if let Some(p) = &self.pin_path {
            plan.pin_path = p.clone();
        }
        if let Some(p) = &self.socket_path {
            plan.socket_path = p.clone();
        }
        if let Some(p) = &self.state_path {
            plan.state_path = p.clone();
        }
    }
}

/// Reads and validates a config file with the live changes of `state`.
pub fn read_config(path: &Path, state: &State, o: &Overrides) -> Result<(String, Plan)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut plan = config::parse_with(&text, &state.live)
        .with_context(|| format!("config {}", path.display()))?;
    o.apply(&mut plan);
    Ok((text, plan))
}

/// The paths a config names (state file included), before any state is read.
pub fn paths(path: &Path, o: &Overrides) -> Result<Plan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut plan = config::parse(&text).with_context(|| format!("config {}", path.display()))?;
    o.apply(&mut plan);
    Ok(plan)
}

/// The running daemon.
pub struct Daemon {
    config_path: PathBuf,
    overrides: Overrides,
    /// The config text the maps were built from (reload re-reads the file;
    /// live changes do not).
    text: String,
    plan: Plan,
    state: State,
    dp: Dataplane,
    current: Desired,
    routes: RouteStore,
    sync: Option<routes::Sync>,
    route_tx: mpsc::Sender<RouteEvent>,
    /// The latest compile: which table each key is, and their contents.
    layout: Layout,
    resolved: Resolved,
    pop_ids: Vec<u32>,
    table_ids: Vec<u32>,
    /// Probe results by PoP name.
    health: BTreeMap<String, PopStatus>,
    /// Recent RTT samples by PoP name (for latency reports).
    rtts: BTreeMap<String, VecDeque<(Instant, Duration)>>,
    monitors: BTreeMap<String, Monitor>,
    health_tx: mpsc::Sender<HealthEvent>,
    /// Times a policy table fell back because every member was down.
    fallbacks: u64,
    events: events::Events,
    /// PoPs whose next hop address did not resolve (plan index).
    unresolved: BTreeSet<u32>,
    /// The next hops the neighbour watcher looks for.
    watched: Arc<RwLock<BTreeSet<(u32, IpAddr)>>>,
    view: Arc<RwLock<Arc<View>>>,
    started: Instant,
}

/// A running probe of one PoP.
struct Monitor {
    probe: Probe,
    drained: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// RTT samples kept per PoP for latency reports.
pub const RTT_WINDOW: Duration = Duration::from_secs(3600);

/// What the methods see of plan PoP `i`: drained counts as down; a PoP
/// without a probe result yet (or without a probe) counts as up.
fn health_of<'a>(
    plan: &'a Plan,
    drained: &'a BTreeSet<String>,
    health: &'a BTreeMap<String, PopStatus>,
    unresolved: &'a BTreeSet<u32>,
) -> impl Fn(u32) -> PopHealth + 'a {
    move |i| {
        let name = &plan.pops[i as usize].name;
        if drained.contains(name) || unresolved.contains(&i) {
            return PopHealth::DOWN;
        }
        match health.get(name) {
            Some(s) => PopHealth {
                up: s.healthy,
                rtt: s.srtt,
            },
            None => PopHealth::UP,
        }
    }
}

/// Channels the daemon's owner (edged's loop) reads from.
pub struct Channels {
    /// A watched neighbour changed.
    pub neighbours: mpsc::Receiver<()>,
    pub routes: mpsc::Receiver<RouteEvent>,
    pub health: mpsc::Receiver<HealthEvent>,
    pub protection: mpsc::Receiver<ProtectionEvent>,
}

/// Why a change failed: the word in the reply's `kind`.
fn kind_of(e: &anyhow::Error) -> &'static str {
    let invalid = e.chain().find_map(|c| c.downcast_ref::<Invalid>());
    if invalid.is_some_and(|i| i.0.iter().any(|p| p.map_full)) {
        "map_full"
    } else if invalid.is_some() {
        "invalid"
    } else if e.chain().any(|c| c.downcast_ref::<NotFound>().is_some()) {
        "not_found"
    } else if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<MapsError>(),
            Some(MapsError::MapFull { .. })
        )
    }) {
        "map_full"
    } else {
        "failed"
    }
}

impl Daemon {
    /// Loads the data plane (reusing what an earlier run pinned), applies
    /// the config as a diff and attaches. On a first start that fails,
    /// nothing is left behind; on a restart that fails, the running data
    /// plane is left as it was.
    pub fn start(config_path: &Path, overrides: Overrides) -> Result<(Self, Channels)> {
        let paths = paths(config_path, &overrides)?;
        let state = State::load(&paths.state_path)?;
        let (text, mut plan) = read_config(config_path, &state, &overrides)?;
        // Routes first: a restart must not drop the synced prefixes even
        // for a moment.
        let (route_tx, route_rx) = mpsc::channel(64);
        let mut store = RouteStore::default();
        let sync = start_sync(&plan, &mut store, &route_tx)?;
        routes::extend(&mut plan, &mut store);
        let mut dp = Dataplane::load(&plan.pin_path, plan.limits)?;
        let resumed = dp.resumed;
        let health = BTreeMap::new();
        let result = (|| -> Result<(desired::Compiled, State)> {
            let mut current = desired::dump(&dp.tables).context("reading the pinned maps")?;
            if !resumed {
                // Some maps are new: write every table entry again (the
                // prefixes read back still give their slots and deletions).
                current = Desired {
                    prefixes: current.prefixes,
                    ..Desired::default()
                };
                current.settings.encap_ttl = 0; // never valid: rewritten
            }
            let c = desired::compile(
                &plan,
                &state,
                &current,
                &health_of(&plan, &state.drained, &health, &BTreeSet::new()),
                &Choices::default(),
            )?;
            let changes =
                desired::apply(&mut dp.tables, Some(&mut dp.counters), &current, &c.desired)?;
            let ports: Vec<&str> = plan.ports.iter().map(|p| p.interface.as_str()).collect();
            dp.attach(&ports, plan.xdp_mode)?;
            let state = State {
                ids: c.ids.clone(),
                ..state
            };
            state.save(&plan.state_path)?;
            info!(
                "{}: {} entries written, {} removed",
                if resumed {
                    "reconciled the pinned maps"
                } else {
                    "filled the maps"
                },
                changes.written,
                changes.removed
            );
            Ok((c, state))
        })();
        let (c, state) = match result {
            Ok(r) => r,
            Err(e) => {
                if !resumed {
                    loader::teardown(&plan.pin_path);
                }
                return Err(e);
            }
        };
        let mut view = c.view;
        view.generation = 1;
        view.routes = route_view(&store);
        let (health_tx, health_rx) = mpsc::channel(256);
        let (protection_tx, protection_rx) = mpsc::channel(1024);
        let (neighbour_tx, neighbour_rx) = mpsc::channel(16);
        let watched = Arc::new(RwLock::new(c.next_hops.clone()));
        crate::host::neigh::watch(watched.clone(), neighbour_tx).context("watching neighbours")?;
        if let Some(ring) = dp.events.take() {
            events::spawn(ring, protection_tx, Arc::new(AtomicBool::new(false)))
                .context("starting the event reader")?;
        }
        let mut daemon = Self {
            config_path: config_path.to_path_buf(),
            overrides,
            text,
            plan,
            state,
            dp,
            current: c.desired,
            routes: store,
            sync,
            route_tx,
            layout: c.layout,
            resolved: c.resolved,
            pop_ids: c.pop_ids,
            table_ids: c.table_ids,
            health,
            rtts: BTreeMap::new(),
            monitors: BTreeMap::new(),
            health_tx,
            fallbacks: 0,
            events: events::Events::default(),
            unresolved: c.unresolved,
            watched,
            view: Arc::new(RwLock::new(Arc::new(view))),
            started: Instant::now(),
        };
        daemon.sync_monitors();
        daemon.publish_health();
        Ok((
            daemon,
            Channels {
                neighbours: neighbour_rx,
                routes: route_rx,
                health: health_rx,
                protection: protection_rx,
            },
        ))
    }

    /// Starts, restarts or stops the probe of every PoP to match the plan.
    fn sync_monitors(&mut self) {
        let wanted: BTreeMap<String, (u32, Probe)> = self
            .plan
            .pops
            .iter()
            .zip(&self.pop_ids)
            .filter_map(|(p, &id)| Some((p.name.clone(), (id, p.probe.clone()?))))
            .collect();
        self.monitors
            .retain(|name, m| wanted.get(name).is_some_and(|(_, p)| *p == m.probe));
        self.health.retain(|name, _| wanted.contains_key(name));
        for (name, (id, probe)) in wanted {
            let drained = self.state.drained.contains(&name);
            if let Some(m) = self.monitors.get(&name) {
                m.drained.send_replace(drained);
                continue;
            }
            let (tx, rx) = watch::channel(drained);
            info!("{name}: probing {probe}");
            let task = tokio::spawn(health::run(id, probe.clone(), rx, self.health_tx.clone()));
            self.monitors.insert(
                name,
                Monitor {
                    probe,
                    drained: tx,
                    task,
                },
            );
        }
    }

    /// A probe result or drain change from a PoP's monitor.
    pub fn health_event(&mut self, ev: HealthEvent) {
        let Some(name) = self
            .plan
            .pops
            .iter()
            .zip(&self.pop_ids)
            .find(|(_, id)| **id == ev.pop)
            .map(|(p, _)| p.name.clone())
        else {
            return; // a PoP removed by a reload
        };
        if let Some(rtt) = ev.rtt {
            let samples = self.rtts.entry(name.clone()).or_default();
            samples.push_back((Instant::now(), rtt));
            while samples
                .front()
                .is_some_and(|(t, _)| t.elapsed() > RTT_WINDOW)
            {
                samples.pop_front();
            }
        }
        let was = self.health.get(&name).map(|s| s.healthy);
        let healthy = ev.status.healthy;
        self.health.insert(name.clone(), ev.status);
        if was != Some(healthy) && ev.result.is_some() {
            let message = match (&ev.result, healthy) {
                (_, true) => format!("{name} is UP (its probe answers)"),
                (Some(Err(e)), false) => format!("{name} is DOWN: {e}"),
                _ => format!("{name} is DOWN"),
            };
            self.events.record("pop", message);
        }
        let performance = self
            .plan
            .policies
            .iter()
            .any(|p| p.method == crate::plan::Method::Performance);
        if was != Some(healthy) || (ev.rtt.is_some() && performance) {
            self.retable();
        }
        self.publish_health();
    }

    /// Recomputes the selection tables from the PoPs' health and writes the
    /// ones that changed: a failover touches tables only, however many
    /// prefixes use them.
    fn retable(&mut self) {
        let health = health_of(
            &self.plan,
            &self.state.drained,
            &self.health,
            &self.unresolved,
        );
        let resolved = resolve::resolve(&self.plan, &self.layout, &health, &self.resolved.choices);
        let entries =
            desired::table_entries(&self.layout, &resolved, &self.pop_ids, &self.table_ids);
        let mut written = 0;
        for (id, table, _) in &entries {
            if self.current.policies[*id as usize] == *table {
                continue;
            }
            match self.dp.tables.set_policy(*id, table) {
                Ok(()) => {
                    self.current.policies[*id as usize] = *table;
                    written += 1;
                }
                Err(e) => error!("writing selection table {id}: {e}"),
            }
        }
        for (key, fallback) in resolved.in_fallback() {
            if self
                .resolved
                .tables
                .get(key)
                .is_none_or(|t| t.fallback.is_none())
            {
                self.fallbacks += 1;
                error!("policy {key}: every member is down");
                self.events.record(
                    "fallback",
                    format!(
                        "policy {key}: every member is down; its traffic falls back to {}",
                        match fallback {
                            crate::plan::Fallback::Transit => "the transit exit",
                            crate::plan::Fallback::Pass => "the kernel (pass)",
                        }
                    ),
                );
            }
        }
        if written > 0 {
            info!("failover: {written} selection tables rewritten");
        }
        let pop_ids = self.pop_ids.clone();
        let plan = &self.plan;
        let pop_name = |id: u16| {
            pop_ids
                .iter()
                .position(|&x| x == u32::from(id))
                .map_or_else(|| format!("pop {id}"), |i| plan.pops[i].name.clone())
        };
        let policies = desired::policy_views(plan, &self.layout, &entries, &health, &pop_name);
        self.resolved = resolved;
        let mut view = (*self.snapshot()).clone();
        view.policies = policies;
        *self.view.write().expect("view lock") = Arc::new(view);
    }

    /// Puts the PoPs' health into the shared view (metrics, edgectl).
    fn publish_health(&mut self) {
        let mut view = (*self.snapshot()).clone();
        view.health = self
            .plan
            .pops
            .iter()
            .map(|p| {
                let s = self.health.get(&p.name);
                let drained = self.state.drained.contains(&p.name);
                PopHealthView {
                    pop: p.name.clone(),
                    state: if drained {
                        "drained"
                    } else {
                        match s {
                            None if p.probe.is_none() => "up (no probe)",
                            None => "up (not probed yet)",
                            Some(s) if s.healthy => "up",
                            Some(_) => "down",
                        }
                    },
                    up: !drained && s.is_none_or(|s| s.healthy),
                    since_seconds: s.map(|s| s.last_change.elapsed().as_secs_f64()),
                    rtt_ms: s.and_then(|s| s.srtt).map(|d| d.as_secs_f64() * 1e3),
                    min_rtt_ms: s.and_then(|s| s.min_rtt).map(|d| d.as_secs_f64() * 1e3),
                    loss: s.map_or(0.0, |s| s.loss),
                    probes: s.map_or(0, |s| s.probes),
                }
            })
            .collect();
        view.fallbacks = self.fallbacks;
        *self.view.write().expect("view lock") = Arc::new(view);
    }

    /// A protection event from the kernel.
    pub fn protection_event(&mut self, ev: ProtectionEvent) {
        let view = self.snapshot();
        let (src, _) = events::addresses(&ev);
        let (prefix, registered_on) = match view.prefix_by_slot(ev.slot) {
            Some(p) => (
                format!("{} ({})", p.prefix, p.registration),
                p.protect.join(", "),
            ),
            None => (format!("counter slot {}", ev.slot), "other ports".into()),
        };
        let port = view
            .port(ev.port)
            .map_or_else(|| format!("port {}", ev.port), |p| p.interface.clone());
        self.events.protection(prefix, port, src, &registered_on);
        let mut view = (*view).clone();
        view.protection = self.events.totals();
        *self.view.write().expect("view lock") = Arc::new(view);
    }

    /// A watched next hop appeared, changed or went: compile again.
    pub fn neighbours_changed(&mut self, rx: &mut mpsc::Receiver<()>) {
        while rx.try_recv().is_ok() {}
        match self.change(self.text.clone(), self.state.clone()) {
            Ok(c) if !c.is_empty() => info!(
                "neighbour change: {} written, {} removed",
                c.written, c.removed
            ),
            Ok(_) => {}
            Err(e) => error!("neighbour change: {e:#}"),
        }
    }

    /// Logs violation counts pending from the last interval.
    pub fn flush_events(&mut self) {
        self.events.flush();
    }

    /// RTT percentiles per PoP over the last `window`.
    fn latency(&self, window: Duration) -> Value {
        let rows: Vec<Value> = self
            .plan
            .pops
            .iter()
            .map(|p| {
                let mut v: Vec<f64> = self
                    .rtts
                    .get(&p.name)
                    .into_iter()
                    .flatten()
                    .filter(|(t, _)| t.elapsed() <= window)
                    .map(|(_, d)| d.as_secs_f64() * 1e3)
                    .collect();
                v.sort_by(f64::total_cmp);
                let q = |q: f64| {
                    (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * q).round() as usize])
                };
                json!({"pop": p.name, "samples": v.len(), "min_ms": q(0.0), "p50_ms": q(0.5),
                    "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": q(1.0)})
            })
            .collect();
        json!({"window_seconds": window.as_secs(), "pops": rows})
    }

    /// Applies route changes from the sync thread (and any already queued).
    pub fn routes_changed(&mut self, first: RouteEvent, rx: &mut mpsc::Receiver<RouteEvent>) {
        self.routes.apply(first);
        let mut events = 1;
        while let Ok(e) = rx.try_recv() {
            self.routes.apply(e);
            events += 1;
        }
        let t = Instant::now();
        match self.change(self.text.clone(), self.state.clone()) {
            Ok(c) => log::debug!(
                "route sync: {events} batches, {} routes: {} written, {} removed in {:?}",
                self.routes.len(),
                c.written,
                c.removed,
                t.elapsed()
            ),
            Err(e) => error!("route sync: applying routes failed: {e:#}"),
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The names behind the ids, shared with the metrics endpoint.
    pub fn view(&self) -> Arc<RwLock<Arc<View>>> {
        self.view.clone()
    }

    fn snapshot(&self) -> Arc<View> {
        self.view.read().expect("view lock").clone()
    }

    /// Validates `text` with `state`, writes the difference into the maps,
    /// then records the state; any failure leaves everything as it was.
    fn change(&mut self, text: String, state: State) -> Result<Changes> {
        let mut plan = config::parse_with(&text, &state.live)?;
        self.overrides.apply(&mut plan);
        let tables = source_tables(&plan);
        if self.sync.as_ref().map(|s| &s.tables) != Some(&tables) {
            // Other tables: follow those instead, from a fresh dump.
            self.sync = None;
            self.routes = RouteStore::default();
            self.sync = start_sync(&plan, &mut self.routes, &self.route_tx)?;
        }
        routes::extend(&mut plan, &mut self.routes);
        if plan.pin_path != self.plan.pin_path
            || plan.limits != self.plan.limits
            || plan.xdp_mode != self.plan.xdp_mode
        {
            warn!("pin_path, xdp_mode and [limits] take effect at the next restart");
        }
        let c = desired::compile(
            &plan,
            &state,
            &self.current,
            &health_of(&plan, &state.drained, &self.health, &BTreeSet::new()),
            &self.resolved.choices,
        )?;
        let want = c.desired;
        let mut view = c.view;
        let changes = desired::apply(
            &mut self.dp.tables,
            Some(&mut self.dp.counters),
            &self.current,
            &want,
        )?;
        let state = State {
            ids: c.ids,
            ..state
        };
        if let Err(e) = state.save(&plan.state_path) {
            // Keep the maps and the disk in agreement.
            if let Err(u) = desired::apply(&mut self.dp.tables, None, &want, &self.current) {
                error!("restoring the maps after a failed state write: {u:#}");
            }
            return Err(e.context("recording the desired state"));
        }
        let ports: Vec<&str> = plan.ports.iter().map(|p| p.interface.as_str()).collect();
        if ports
            != self
                .plan
                .ports
                .iter()
                .map(|p| p.interface.as_str())
                .collect::<Vec<_>>()
        {
            self.dp.attach(&ports, plan.xdp_mode)?;
        }
        view.generation = self.snapshot().generation + 1;
        view.routes = route_view(&self.routes);
        *self.view.write().expect("view lock") = Arc::new(view);
        self.text = text;
        self.plan = plan;
        self.state = state;
        self.current = want;
        self.layout = c.layout;
        self.resolved = c.resolved;
        self.unresolved = c.unresolved;
        *self.watched.write().expect("watch set lock") = c.next_hops;
        self.pop_ids = c.pop_ids;
        self.table_ids = c.table_ids;
        self.sync_monitors();
        self.publish_health();
        Ok(changes)
    }

    /// Re-reads the config file and applies it.
    pub fn reload(&mut self) -> Result<Changes> {
        let text = read_settled(&self.config_path)?;
        let state = self.state.clone();
        self.change(text, state)
            .with_context(|| format!("config {}", self.config_path.display()))
    }

    /// Handles one request; `true` when the daemon should exit afterwards.
    pub fn handle(&mut self, request: Request) -> (Response, bool) {
        let mut exit = false;
        let result = match request {
            Request::Status {} => Ok(self.status()),
            Request::Stats { prefix } => self.stats(prefix),
            Request::PrefixList {} => Ok(json!(self.snapshot().prefixes)),
            Request::PrefixShow { prefix } => match self.snapshot().prefix(prefix) {
                Some(p) => Ok(json!(p)),
                None => return (not_registered(prefix), false),
            },
            Request::PrefixLookup { address } => self.lookup(address),
            Request::PrefixAdd { spec } => {
                let mut state = self.state.clone();
                let net = spec.prefix.parse::<IpNet>().ok();
                state
                    .live
                    .added
                    .retain(|p| Some(&p.prefix) != Some(&spec.prefix));
                if let Some(net) = net {
                    state.live.removed.retain(|n| *n != net);
                }
                state.live.added.push(spec);
                self.change(self.text.clone(), state)
                    .map(|c| json!({"changes": c}))
            }
            Request::PrefixDel { prefix } => {
                match self.snapshot().prefix(prefix) {
                    None => return (not_registered(prefix), false),
                    Some(p) if matches!(p.source, crate::plan::Origin::Route { .. }) => {
                        return (
                            Response::error(
                                "invalid",
                                format!(
                                    "prefix {prefix} comes from {}: withdraw the route (or add a live entry to override it)",
                                    p.source
                                ),
                            ),
                            false,
                        );
                    }
                    Some(_) => {}
                }
                let mut state = self.state.clone();
                state
                    .live
                    .added
                    .retain(|p| p.prefix.parse::<IpNet>().ok() != Some(prefix));
                let in_file = config::parse(&self.text)
                    .map(|p| p.prefixes.iter().any(|x| x.net == prefix))
                    .unwrap_or(false);
                if in_file && !state.live.removed.contains(&prefix) {
                    state.live.removed.push(prefix);
                }
                self.change(self.text.clone(), state)
                    .map(|c| json!({"changes": c}))
            }
            Request::PopList {} => {
                let view = self.snapshot();
                Ok(json!(
                    view.pops
                        .iter()
                        .zip(&view.health)
                        .map(|(p, h)| {
                            let mut v = json!(p);
                            v["health"] = json!(h);
                            v
                        })
                        .collect::<Vec<_>>()
                ))
            }
            Request::Events { limit } => Ok(json!({
                "received": self.events.received,
                "events": self.events.recent(limit.min(events::KEEP)),
            })),
            Request::ReportLatency { window_seconds } => Ok(self.latency(Duration::from_secs(
                window_seconds.clamp(1, RTT_WINDOW.as_secs()),
            ))),
            Request::PopDrain { pop } | Request::PopUndrain { pop }
                if !self.plan.pops.iter().any(|p| p.name == pop) =>
            {
                return (
                    Response::error("not_found", format!("no PoP named {pop:?}")),
                    false,
                );
            }
            Request::PopDrain { pop } => {
                let mut state = self.state.clone();
                state.drained.insert(pop);
                self.change(self.text.clone(), state)
                    .map(|c| json!({"changes": c}))
            }
            Request::PopUndrain { pop } => {
                let mut state = self.state.clone();
                state.drained.remove(&pop);
                self.change(self.text.clone(), state)
                    .map(|c| json!({"changes": c}))
            }
            Request::PolicyList {} => Ok(json!(self.snapshot().policies)),
            Request::PolicyShow { policy } => self.policy(&policy),
            Request::ConfigReload {} => self.reload().map(|c| json!({"changes": c})),
            Request::Teardown {} => {
                exit = true;
                self.teardown();
                Ok(json!({"torn_down": self.plan.pin_path}))
            }
        };
        let response = match result {
            Ok(data) => Response::ok(data),
            Err(e) => Response::error(kind_of(&e), format!("{e:#}")),
        };
        (response, exit)
    }

    /// Detaches everything, removes the pins and the state file.
    fn teardown(&mut self) {
        loader::teardown(&self.plan.pin_path);
        State::remove(&self.plan.state_path);
        info!(
            "torn down: detached, {} unpinned, state removed",
            self.plan.pin_path.display()
        );
    }

    fn status(&self) -> Value {
        let view = self.snapshot();
        let v4 = self
            .plan
            .prefixes
            .iter()
            .filter(|p| p.net.addr().is_ipv4())
            .count();
        let v6 = self.plan.prefixes.len() - v4;
        let live = self
            .plan
            .prefixes
            .iter()
            .filter(|p| p.origin == crate::plan::Origin::Live)
            .count();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config": self.config_path,
            "generation": view.generation,
            "pin_path": self.plan.pin_path,
            "state_path": self.plan.state_path,
            "socket_path": self.plan.socket_path,
            "ports": view.ports,
            "default_action": view.default_action,
            "backbone_exit": view.backbone_exit,
            "transit_exit": view.transit_exit,
            "prefixes": {"total": self.plan.prefixes.len(), "live": live, "removed_live": self.state.live.removed.len()},
            "maps": {
                "prefixes_v4": {"used": v4, "limit": self.plan.limits.prefixes_v4},
                "prefixes_v6": {"used": v6, "limit": self.plan.limits.prefixes_v6},
                "pops": {"used": self.plan.pops.len(), "limit": limits::MAX_POPS},
                "policies": {"used": self.plan.policies.len(), "limit": limits::MAX_POLICIES},
                "ports": {"used": self.plan.ports.len(), "limit": limits::MAX_PORTS},
            },
            "pops": self.plan.pops.len(),
            "routes": view.routes,
            "drained": self.state.drained,
            "policies": self.plan.policies.len(),
        })
    }

    fn stats(&self, prefix: Option<IpNet>) -> Result<Value> {
        let view = self.snapshot();
        let stats = self.dp.counters.read(view.prefix_slots())?;
        let count = |c: Count| json!({"packets": c.packets, "bytes": c.bytes});
        let mut prefixes = Vec::new();
        for p in view.prefixes.iter() {
            if prefix.is_some_and(|n| n != p.prefix) {
                continue;
            }
            let c = stats.prefix(p.counter_slot);
            prefixes.push(json!({
                "prefix": p.prefix, "registration": p.registration, "source": p.source,
                "packets": c.packets, "bytes": c.bytes,
            }));
        }
        if let Some(n) = prefix
            && prefixes.is_empty()
        {
            anyhow::bail!(NotFound(format!("prefix {n} is not registered")));
        }
        let named = |rows: &[(&'static str, Count)]| -> Value {
            rows.iter()
                .map(|(n, c)| (n.to_string(), count(*c)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        Ok(json!({
            "generation": view.generation,
            "actions": named(&stats.actions),
            "reasons": named(&stats.reasons),
            "prefixes": prefixes,
            "pops": view.pops.iter().map(|p| {
                let c = stats.pop(p.id);
                json!({"pop": p.name, "packets": c.packets, "bytes": c.bytes})
            }).collect::<Vec<_>>(),
            "ports": view.ports.iter().map(|p| {
                let c = stats.port(p.id);
                json!({"port": p.interface, "role": p.role, "packets": c.packets, "bytes": c.bytes})
            }).collect::<Vec<_>>(),
        }))
    }

    /// Shares of a kernel selection table: (PoP name or "kernel", slots).
    fn shares(&self, view: &View, policy: u32) -> Result<Vec<Value>> {
        let table = self.dp.tables.policy(policy)?;
        let mut shares: Vec<(String, usize)> = Vec::new();
        for &pop in &table.pops[..POLICY_SLOTS] {
            let name = if pop == NO_POP {
                "none (to the kernel)".to_string()
            } else {
                view.pop_name(u32::from(pop))
                    .map_or_else(|| format!("pop {pop}"), str::to_string)
            };
            match shares.iter_mut().find(|(n, _)| *n == name) {
                Some((_, n)) => *n += 1,
                None => shares.push((name, 1)),
            }
        }
        Ok(shares
            .into_iter()
            .map(|(pop, slots)| {
                json!({"pop": pop, "slots": slots,
                    "share": slots as f64 / POLICY_SLOTS as f64})
            })
            .collect())
    }

    fn policy(&self, name: &str) -> Result<Value> {
        let view = self.snapshot();
        let Some(p) = view.policies.iter().find(|p| p.name == name) else {
            anyhow::bail!(NotFound(format!("no policy named {name:?}")));
        };
        let users: Vec<String> = view
            .prefixes
            .iter()
            .filter(|x| x.policy.as_deref() == Some(name))
            .map(|x| x.prefix.to_string())
            .collect();
        Ok(json!({
            "policy": p,
            "table": match p.tables.first() {
                Some(t) => json!(self.shares(&view, t.id)?),
                None => json!([]),
            },
            "tables": p.tables.iter().map(|t| -> Result<Value> {
                Ok(json!({"key": t.key, "id": t.id, "fallback": t.fallback,
                    "table": self.shares(&view, t.id)?}))
            }).collect::<Result<Vec<_>>>()?,
            "slots": POLICY_SLOTS,
            "prefixes": users.len(),
            "first_prefixes": users.iter().take(20).collect::<Vec<_>>(),
        }))
    }

    fn lookup(&self, address: IpAddr) -> Result<Value> {
        let view = self.snapshot();
        let Some(entry) = self.dp.tables.lookup(address)? else {
            return Ok(json!({"address": address, "registered": false,
                "default_action": view.default_action}));
        };
        // The kernel answers with the entry; its prefix is the longest
        // registered one that contains the address.
        let prefix = view
            .prefixes
            .iter()
            .filter(|p| p.prefix.contains(&address))
            .max_by_key(|p| p.prefix.prefix_len());
        let internet = entry.preference == preference::INTERNET;
        let protected: Vec<String> = (0..64u32)
            .filter(|i| entry.allowed_ports >> i & 1 == 1)
            .map(|i| {
                view.port(i)
                    .map_or_else(|| format!("port {i}"), |p| p.interface.clone())
            })
            .collect();
        Ok(json!({
            "address": address,
            "registered": true,
            "prefix": prefix.map(|p| p.prefix),
            "registration": prefix.map(|p| p.registration.clone()),
            "source": prefix.map(|p| p.source),
            "counter_slot": entry.slot,
            "preference": if internet { "internet" } else { "microsoft" },
            "policy": if internet { None } else { view.table_name(entry.policy).map(str::to_string) },
            "dscp": (entry.dscp != DSCP_KEEP).then_some(entry.dscp),
            "protect": protected,
            "from_customer": if internet { view.transit_exit.clone() } else { view.backbone_exit.clone() },
            "toward_customer": if internet {
                vec![json!({"pop": view.transit_exit, "slots": POLICY_SLOTS, "share": 1.0})]
            } else {
                self.shares(&view, entry.policy)?
            },
        }))
    }
}

/// Reads a config file that may be being written right now (an editor or
/// `echo > file` that truncates first): the text counts once two reads
/// 50 ms apart agree. Write configs atomically (a rename) all the same.
fn read_settled(path: &Path) -> Result<String> {
    let read =
        || std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
    let mut text = read()?;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(50));
        let again = read()?;
        if again == text {
            return Ok(text);
        }
        text = again;
    }
    anyhow::bail!("{} keeps changing; not reloading", path.display())
}

/// The kernel tables the plan's route sources follow.
fn source_tables(plan: &Plan) -> std::collections::BTreeSet<u32> {
    plan.route_sources.iter().map(|s| s.table).collect()
}

/// Starts following the plan's tables (none: no thread), filling `store`.
fn start_sync(
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

fn route_view(store: &RouteStore) -> desired::RoutesView {
    desired::RoutesView {
        routes: store.len(),
        resyncs: store.resyncs,
        skipped: store.skipped,
    }
}

/// A named thing that does not exist (reply kind `not_found`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

fn not_registered(prefix: IpNet) -> Response {
    Response::error("not_found", format!("prefix {prefix} is not registered"))
}
