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
use edge_common::ProtectionEvent;
use log::info;
use tokio::sync::mpsc;

use crate::{
    config::{self},
    dataplane::{
        events,
        loader::{self, Dataplane},
    },
    desired::{self, Desired, View, state::State},
    health::{HealthEvent, PopStatus},
    host::routes::{self, RouteEvent, RouteStore},
    plan::Plan,
    policy::{Choices, Layout, Resolved},
};

mod failover;
mod pipeline;
mod requests;

pub use failover::RTT_WINDOW;
use failover::{Monitor, health_of};
use pipeline::{route_view, start_sync};
pub use requests::NotFound;

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

/// The running daemon: where its config comes from, what it last applied,
/// the routes and health that feed it, and what it publishes.
pub struct Daemon {
    source: Source,
    applied: Applied,
    routes: Routes,
    failover: Failover,
    dp: Dataplane,
    events: events::Events,
    /// The snapshot `status`, `stats` and the metrics endpoint read.
    view: Arc<RwLock<Arc<View>>>,
    started: Instant,
}

/// Where the config comes from.
struct Source {
    config_path: PathBuf,
    overrides: Overrides,
    /// The config text the maps were built from (reload re-reads the file;
    /// live changes do not).
    text: String,
}

/// The last change that was applied, and what it compiled to.
struct Applied {
    plan: Plan,
    state: State,
    current: Desired,
    /// Which table each key is, and their contents.
    layout: Layout,
    resolved: Resolved,
    /// Map id of each plan PoP and each layout table.
    pop_ids: Vec<u32>,
    table_ids: Vec<u32>,
}

/// The kernel routing tables followed into prefixes.
struct Routes {
    store: RouteStore,
    sync: Option<routes::Sync>,
    tx: mpsc::Sender<RouteEvent>,
}

/// What failover decides from: probe results, next hops, monitors.
struct Failover {
    /// Probe results by PoP name.
    health: BTreeMap<String, PopStatus>,
    /// Recent RTT samples by PoP name (for latency reports).
    rtts: BTreeMap<String, VecDeque<(Instant, Duration)>>,
    monitors: BTreeMap<String, Monitor>,
    health_tx: mpsc::Sender<HealthEvent>,
    /// Times a policy table fell back because every member was down.
    fallbacks: u64,
    /// PoPs whose next hop address did not resolve (plan index).
    unresolved: BTreeSet<u32>,
    /// The next hops the neighbour watcher looks for.
    watched: Arc<RwLock<BTreeSet<(u32, IpAddr)>>>,
}

/// Channels the daemon's owner (edged's loop) reads from.
pub struct Channels {
    /// A watched neighbour changed.
    pub neighbours: mpsc::Receiver<()>,
    pub routes: mpsc::Receiver<RouteEvent>,
    pub health: mpsc::Receiver<HealthEvent>,
    pub protection: mpsc::Receiver<ProtectionEvent>,
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
                // Some maps are new. Ports and local addresses have kernel
                // copies (the transmit map, the index arrays) that may be
                // among the new maps: write them all again, and the
                // settings. The rest is taken as read: the prefixes give
                // their slots and deletions, and the PoP and policy arrays
                // hold what they hold. A new policy array holds zeros, not
                // the unused marker (`NO_POP`) a restart reads back for
                // every unused id, so the first start writes the marker
                // too: a fresh start and a restart leave the same maps, and
                // an unchanged config then writes nothing.
                current = Desired {
                    prefixes: current.prefixes,
                    pops: current.pops,
                    policies: current.policies,
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
            source: Source {
                config_path: config_path.to_path_buf(),
                overrides,
                text,
            },
            applied: Applied {
                plan,
                state,
                current: c.desired,
                layout: c.layout,
                resolved: c.resolved,
                pop_ids: c.pop_ids,
                table_ids: c.table_ids,
            },
            routes: Routes {
                store,
                sync,
                tx: route_tx,
            },
            failover: Failover {
                health,
                rtts: BTreeMap::new(),
                monitors: BTreeMap::new(),
                health_tx,
                fallbacks: 0,
                unresolved: c.unresolved,
                watched,
            },
            dp,
            events: events::Events::default(),
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

    pub fn plan(&self) -> &Plan {
        &self.applied.plan
    }

    /// The names behind the ids, shared with the metrics endpoint.
    pub fn view(&self) -> Arc<RwLock<Arc<View>>> {
        self.view.clone()
    }

    fn snapshot(&self) -> Arc<View> {
        self.view.read().expect("view lock").clone()
    }
}
