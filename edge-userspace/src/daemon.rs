//! edged's state and the handling of every control request.
//!
//! The daemon owns the desired state: the config file's text as last
//! applied, the live changes and drained PoPs (kept on disk, see
//! [`State`]), and what the maps hold. Every change is compiled and
//! validated as a whole, applied as a diff, and only then recorded; a change
//! that fails at any step leaves the maps and the state file as they were.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Instant,
};

use anyhow::{Context as _, Result};
use edge_common::{DSCP_KEEP, NO_POP, POLICY_SLOTS, limits, preference};
use ipnet::IpNet;
use log::{error, info, warn};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    config::{self, Invalid, Plan},
    control::{Request, Response},
    desired::{self, Changes, Desired, View},
    loader::{self, Dataplane},
    maps::{Count, MapsError},
    routes::{self, RouteEvent, RouteStore},
    state::State,
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
    view: Arc<RwLock<Arc<View>>>,
    started: Instant,
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
    pub fn start(
        config_path: &Path,
        overrides: Overrides,
    ) -> Result<(Self, mpsc::Receiver<RouteEvent>)> {
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
        let result = (|| -> Result<(Desired, State, View)> {
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
            let (want, ids, view) = desired::compile(&plan, &state, &current)?;
            let changes = desired::apply(&mut dp.tables, Some(&mut dp.counters), &current, &want)?;
            let ports: Vec<&str> = plan.ports.iter().map(|p| p.interface.as_str()).collect();
            dp.attach(&ports, plan.xdp_mode)?;
            let state = State { ids, ..state };
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
            Ok((want, state, view))
        })();
        let (current, state, mut view) = match result {
            Ok(r) => r,
            Err(e) => {
                if !resumed {
                    loader::teardown(&plan.pin_path);
                }
                return Err(e);
            }
        };
        view.generation = 1;
        view.routes = route_view(&store);
        let daemon = Self {
            config_path: config_path.to_path_buf(),
            overrides,
            text,
            plan,
            state,
            dp,
            current,
            routes: store,
            sync,
            route_tx,
            view: Arc::new(RwLock::new(Arc::new(view))),
            started: Instant::now(),
        };
        Ok((daemon, route_rx))
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
        let (want, ids, mut view) = desired::compile(&plan, &state, &self.current)?;
        let changes = desired::apply(
            &mut self.dp.tables,
            Some(&mut self.dp.counters),
            &self.current,
            &want,
        )?;
        let state = State { ids, ..state };
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
        Ok(changes)
    }

    /// Re-reads the config file and applies it.
    pub fn reload(&mut self) -> Result<Changes> {
        let text = std::fs::read_to_string(&self.config_path)
            .with_context(|| format!("reading {}", self.config_path.display()))?;
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
                    Some(p) if p.source.starts_with("route") => {
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
            Request::PopList {} => Ok(json!(self.snapshot().pops)),
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
            .filter(|p| p.origin == config::Origin::Live)
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
        let slots = view
            .prefixes
            .iter()
            .map(|p| p.counter_slot)
            .max()
            .unwrap_or(0)
            + 1;
        let stats = self.dp.counters.read(slots)?;
        let count = |c: Count| json!({"packets": c.packets, "bytes": c.bytes});
        let mut prefixes = Vec::new();
        for p in &view.prefixes {
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
            "table": self.shares(&view, p.id)?,
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
            "source": prefix.map(|p| p.source.clone()),
            "counter_slot": entry.slot,
            "preference": if internet { "internet" } else { "microsoft" },
            "policy": if internet { None } else { view.policy_name(entry.policy).map(str::to_string) },
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
