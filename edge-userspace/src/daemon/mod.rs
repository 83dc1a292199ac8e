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
use log::{error, info, warn};
use tokio::sync::mpsc;

use crate::{
    analytics,
    config::{self},
    control::{LinkRepair, LinkRepairs, Pins, VethPeer},
    dataplane::{
        events,
        loader::{self, Dataplane, Scope},
    },
    desired::{self, Desired, View, state::State},
    health::{HealthEvent, PopStatus},
    host::{
        routes::{self, RouteEvent, RouteStore},
        veth::{self, Xdp},
    },
    metrics::HostFacts,
    plan::{Limits, Plan, XdpMode},
    policy::{Choices, Layout, Resolved},
};

mod failover;
mod hold;
mod interfaces;
mod latency;
mod live;
pub mod logging;
pub mod notify;
mod permissions;
mod pipeline;
mod requests;
#[cfg(any(test, feature = "fuzzing"))]
pub mod walk;

pub use failover::RTT_WINDOW;
use failover::{Monitor, health_of};
pub use permissions::{config_file_warnings, warn_if_writable};
use pipeline::{route_view, start_sync};
pub use requests::NotFound;

/// edged's flags: where the daemon's files are (overriding the config),
/// and what it may do about the host.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub pin_path: Option<PathBuf>,
    pub socket_path: Option<PathBuf>,
    pub state_path: Option<PathBuf>,
    /// Run even when only edged's own mount namespace sees the pin
    /// directory (`--private-pins`); without it edged refuses to start.
    pub private_pins: bool,
    /// Attach XDP_PASS to the peers of egress veths that would drop
    /// redirected frames (`--veth-peer-pass`).
    pub veth_peer_pass: bool,
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

/// A config file read once, its state file, and the two validated together.
pub struct Loaded {
    /// The file's text.
    pub text: String,
    /// The config with the live changes of `state` applied, flags applied.
    pub plan: Plan,
    pub state: State,
}

/// Reads the config file once, then the state file it (or `--state`)
/// names, and validates the config with the state's live changes: what
/// `edged --check` checks and what a start applies.
pub fn load(path: &Path, o: &Overrides) -> Result<Loaded> {
    let text = config::read_file(path)?;
    let parsed = config::parse_file(&text).with_context(|| format!("config {}", path.display()))?;
    let state_path = o
        .state_path
        .clone()
        .unwrap_or_else(|| parsed.state_path().to_path_buf());
    let state = State::load(&state_path)?;
    let mut plan = parsed
        .validate(&text, &state.live)
        .with_context(|| format!("config {}", path.display()))?;
    o.apply(&mut plan);
    Ok(Loaded { text, plan, state })
}

/// The interfaces `plan` names (ports, PoPs) that do not exist in this
/// network namespace: a start or reload with it fails (`edged --check`
/// warns, since it may run elsewhere than the forwarder).
pub fn missing_interfaces(plan: &Plan) -> Vec<String> {
    interfaces::named(plan)
        .into_iter()
        .filter(|n| crate::host::netdev::ifindex(n).is_err())
        .collect()
}

/// The paths a config names (state file included), before any state is read.
pub fn paths(path: &Path, o: &Overrides) -> Result<Plan> {
    let text = config::read_file(path)?;
    let mut plan = config::parse(&text).with_context(|| format!("config {}", path.display()))?;
    o.apply(&mut plan);
    Ok(plan)
}

/// The daemon-level keys edged takes once, at start: the pin directory,
/// the control socket, the state file, the metrics endpoint, the XDP mode
/// and the prefix maps' sizes. A reload that changes them in the config
/// keeps running with these; the keys it changed are pending until the
/// next restart (`pending_restart` in the reload's reply and in status).
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub pin_path: PathBuf,
    pub socket_path: PathBuf,
    pub read_group: Option<String>,
    pub state_path: PathBuf,
    pub metrics_address: Option<std::net::SocketAddr>,
    pub xdp_mode: XdpMode,
    pub limits: Limits,
    pub bmp_listen: Option<std::net::SocketAddr>,
}

/// A restart-only key the config sets otherwise than edged runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The config key (`pin_path`, `limits.prefixes_v4`, ...).
    pub key: String,
    /// Its value in the config file.
    pub config: String,
    /// The value edged runs with.
    pub running: String,
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (running: {})",
            self.key, self.config, self.running
        )
    }
}

impl Running {
    pub fn of(plan: &Plan) -> Self {
        Self {
            pin_path: plan.pin_path.clone(),
            socket_path: plan.socket_path.clone(),
            read_group: plan.read_group.clone(),
            state_path: plan.state_path.clone(),
            metrics_address: plan.metrics_address,
            xdp_mode: plan.xdp_mode,
            limits: plan.limits,
            bmp_listen: plan.bmp_listen,
        }
    }

    /// The keys `plan` (a reload's, flags applied) sets otherwise, in the
    /// order of docs/config.md.
    pub fn pending(&self, plan: &Plan) -> Vec<Pending> {
        let path = |p: &Path| p.display().to_string();
        let addr =
            |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".into(), |a| a.to_string());
        let mode = |m: XdpMode| format!("{m:?}").to_lowercase();
        let group = |g: &Option<String>| g.clone().unwrap_or_else(|| "(root only)".into());
        let rows = [
            ("pin_path", path(&plan.pin_path), path(&self.pin_path)),
            ("xdp_mode", mode(plan.xdp_mode), mode(self.xdp_mode)),
            (
                "metrics_address",
                addr(plan.metrics_address),
                addr(self.metrics_address),
            ),
            (
                "socket_path",
                path(&plan.socket_path),
                path(&self.socket_path),
            ),
            (
                "read_group",
                group(&plan.read_group),
                group(&self.read_group),
            ),
            ("state_path", path(&plan.state_path), path(&self.state_path)),
            (
                "limits.prefixes_v4",
                plan.limits.prefixes_v4.to_string(),
                self.limits.prefixes_v4.to_string(),
            ),
            (
                "limits.prefixes_v6",
                plan.limits.prefixes_v6.to_string(),
                self.limits.prefixes_v6.to_string(),
            ),
            (
                "limits.rtt_flows",
                plan.limits.rtt_flows.to_string(),
                self.limits.rtt_flows.to_string(),
            ),
            (
                "limits.rtt_buckets",
                plan.limits.rtt_buckets.to_string(),
                self.limits.rtt_buckets.to_string(),
            ),
            ("bmp.listen", addr(plan.bmp_listen), addr(self.bmp_listen)),
        ];
        rows.into_iter()
            .filter(|(_, config, running)| config != running)
            .map(|(key, config, running)| Pending {
                key: key.into(),
                config,
                running,
            })
            .collect()
    }

    /// Puts the running values into `plan`: a reload applies everything
    /// else, and these stay as edged started with them.
    pub fn keep(&self, plan: &mut Plan) {
        plan.pin_path = self.pin_path.clone();
        plan.socket_path = self.socket_path.clone();
        plan.read_group = self.read_group.clone();
        plan.state_path = self.state_path.clone();
        plan.metrics_address = self.metrics_address;
        plan.xdp_mode = self.xdp_mode;
        plan.limits = self.limits;
        plan.bmp_listen = self.bmp_listen;
    }
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
    host: HostChecks,
    /// The restart-only keys as edged started with them.
    running: Running,
    /// The restart-only keys the config (as last applied) sets otherwise.
    pending: Vec<Pending>,
    /// The view's rows by counter slot, and the generation they index
    /// (protection events name their prefix through it).
    slot_rows: (u64, Vec<u32>),
    /// Who sent the request being handled (the record of live changes
    /// names them).
    caller: Option<crate::control::Caller>,
    /// Route analytics: the engine the BMP sessions feed.
    analytics: Analytics,
    /// Customer latency: the monitor the kernel's histograms feed.
    latency: latency::CustomerLatency,
}

/// Route analytics as the daemon holds it.
struct Analytics {
    engine: analytics::Shared,
    /// The view generation the engine was last configured from.
    generation: u64,
    /// The holds every change puts into its plan (`hold_on_hijack`).
    holds: analytics::hold::Holds,
    /// When each prefix held now was put into the maps (Unix seconds).
    held_since: BTreeMap<ipnet::IpNet, f64>,
}

/// What edged found when it checked the host: where its pins are visible
/// from (once, at start), and the egress veths' peers (at start, at every
/// reload, and every [`HOST_CHECK_INTERVAL`]).
struct HostChecks {
    pins: loader::PinScope,
    veth_peers: Vec<VethPeer>,
    /// The ports' XDP links found gone and attached again.
    links: LinkChecks,
    /// The same, for the metrics endpoint.
    facts: Arc<RwLock<Arc<HostFacts>>>,
    /// The interfaces and addresses the last change compiled.
    interfaces: interfaces::Facts,
    /// Interface changes seen, by (interface, kind), since edged started.
    interface_events: BTreeMap<(String, interfaces::Kind), u64>,
}

/// What the link checks ([`Daemon::check_links`]) found.
#[derive(Default)]
struct LinkChecks {
    /// Repairs by port, since edged started.
    repairs: BTreeMap<String, u64>,
    /// The most recent repairs, oldest first.
    recent: VecDeque<LinkRepair>,
    /// Ports whose link is gone and could not be repaired (or checked), and why.
    failing: BTreeMap<String, String>,
}

/// Repairs kept for `status`.
const RECENT_REPAIRS: usize = 8;

/// How often edged's loop checks the veth peers again.
pub const HOST_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// How often edged's loop checks that every port runs the program through
/// its pinned link ([`Daemon::check_links`]).
pub const LINK_CHECK_INTERVAL: Duration = Duration::from_secs(2);

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
    /// The prefix counter slots in use (for live changes without a whole
    /// compile).
    slots: desired::delta::Slots,
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
    /// Every answered probe's RTT by PoP name, since edged started.
    rtt_histograms: BTreeMap<String, crate::health::RttHistogram>,
    monitors: BTreeMap<String, Monitor>,
    health_tx: mpsc::Sender<HealthEvent>,
    /// Times a policy table fell back because every member was down.
    fallbacks: u64,
    /// PoPs whose next hop address did not resolve, or whose interface is
    /// gone or without carrier (plan index).
    unresolved: BTreeSet<u32>,
    /// Probed PoPs whose link lost its carrier, by name: down until their
    /// probe has answered `rise` times in a row with the link running
    /// again (the answers so far), so that a short carrier loss does not
    /// move traffic back before the probes can tell.
    carrier_hold: BTreeMap<String, u32>,
    /// The next hops the neighbour watcher looks for.
    watched: Arc<RwLock<BTreeSet<(u32, IpAddr)>>>,
}

/// Channels the daemon's owner (edged's loop) reads from.
pub struct Channels {
    /// A watched neighbour changed.
    pub neighbours: mpsc::Receiver<()>,
    /// An interface or a local address changed: call
    /// [`Daemon::check_links`].
    pub links: mpsc::Receiver<()>,
    pub routes: mpsc::Receiver<RouteEvent>,
    pub health: mpsc::Receiver<HealthEvent>,
    pub protection: mpsc::Receiver<ProtectionEvent>,
}

impl Daemon {
    /// Loads the data plane (reusing what an earlier run pinned), applies
    /// the config as a diff and attaches. On a first start that fails,
    /// nothing is left behind; on a restart that fails, the running data
    /// plane is left exactly as it was (program, links, maps, state file).
    /// `loaded` is the config file as [`load`] read it.
    pub fn start(
        config_path: &Path,
        overrides: Overrides,
        loaded: Loaded,
    ) -> Result<(Self, Channels)> {
        let Loaded {
            text,
            mut plan,
            mut state,
        } = loaded;
        pipeline::forget_stale_removals(&mut state, &mut plan);
        // Before anything changes: a state file that cannot be written
        // (read-only or missing directory, a file where the directory
        // belongs) would fail the start half way.
        State::check_writable(&plan.state_path).with_context(|| {
            format!(
                "the state file {} cannot be written; nothing was changed",
                plan.state_path.display()
            )
        })?;
        let pins = check_pins(&plan.pin_path, overrides.private_pins)?;
        // Routes first: a restart must not drop the synced prefixes even
        // for a moment.
        let (route_tx, route_rx) = mpsc::channel(64);
        let mut store = RouteStore::default();
        let sync = start_sync(&plan, &mut store, &route_tx)?;
        routes::extend(&mut plan, &mut store);
        let seen = interfaces::Facts::read(&interfaces::named(&plan))?;
        let mut dp = Dataplane::load(&plan.pin_path, plan.limits)?;
        let (c, state) = match install(&mut dp, &plan, state) {
            Ok(r) => r,
            Err(e) => {
                let fresh = dp.fresh;
                dp.discard();
                return Err(e.context(if fresh {
                    "the first start failed; nothing is left behind"
                } else {
                    "the restart failed; the running forwarder is left as it was (program, links, maps, state file)"
                }));
            }
        };
        let slots = desired::delta::Slots::of_all(
            c.view
                .prefixes
                .iter()
                .chain(c.view.domain_prefixes.iter().map(|(_, p)| p)),
        );
        let mut view = c.view;
        view.generation = 1;
        view.routes = route_view(&store);
        let (health_tx, health_rx) = mpsc::channel(256);
        let (protection_tx, protection_rx) = mpsc::channel(1024);
        let (neighbour_tx, neighbour_rx) = mpsc::channel(16);
        let watched = Arc::new(RwLock::new(c.next_hops.clone()));
        crate::host::neigh::watch(watched.clone(), neighbour_tx).context("watching neighbours")?;
        let (link_tx, link_rx) = mpsc::channel(1);
        crate::host::links::watch(link_tx).context("watching links and addresses")?;
        if let Some(clock) = dp.clock.take() {
            clock.spawn().context("starting customer latency's clock")?;
        }
        if let Some(ring) = dp.events.take() {
            events::spawn(ring, protection_tx, Arc::new(AtomicBool::new(false)))
                .context("starting the event reader")?;
        }
        let running = Running::of(&plan);
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
                slots,
            },
            routes: Routes {
                store,
                sync,
                tx: route_tx,
            },
            failover: Failover {
                health: BTreeMap::new(),
                rtts: BTreeMap::new(),
                rtt_histograms: BTreeMap::new(),
                monitors: BTreeMap::new(),
                health_tx,
                fallbacks: 0,
                unresolved: c.unresolved,
                carrier_hold: BTreeMap::new(),
                watched,
            },
            dp,
            events: events::Events::default(),
            view: Arc::new(RwLock::new(Arc::new(view))),
            started: Instant::now(),
            host: HostChecks {
                pins,
                veth_peers: Vec::new(),
                links: LinkChecks::default(),
                facts: Arc::default(),
                interfaces: seen,
                interface_events: BTreeMap::new(),
            },
            running,
            pending: Vec::new(),
            slot_rows: (0, Vec::new()),
            caller: None,
            analytics: Analytics {
                engine: analytics::Shared::default(),
                generation: 0,
                holds: Default::default(),
                held_since: BTreeMap::new(),
            },
            latency: latency::CustomerLatency::new(),
        };
        daemon.sync_analytics();
        daemon.sync_monitors();
        daemon.publish_health();
        daemon.check_veth_peers(true);
        Ok((
            daemon,
            Channels {
                neighbours: neighbour_rx,
                links: link_rx,
                routes: route_rx,
                health: health_rx,
                protection: protection_rx,
            },
        ))
    }

    /// The route analytics engine (for the BMP listener and the metrics).
    pub fn analytics(&self) -> analytics::Shared {
        self.analytics.engine.clone()
    }

    /// Gives the engine the registrations and registered prefixes of the
    /// change last applied, when there was one since the last call; then
    /// the holds ([`Daemon::sync_holds`]).
    pub fn sync_analytics(&mut self) {
        self.configure_analytics();
        self.sync_holds();
    }

    fn configure_analytics(&mut self) {
        let generation = self.snapshot().generation;
        if generation == self.analytics.generation {
            return;
        }
        self.analytics.generation = generation;
        let plan = &self.applied.plan;
        // Registrations without origin ASNs only set a latency objective.
        let watched: Vec<_> = plan
            .registrations
            .iter()
            .filter(|r| !r.origin_asns.is_empty())
            .cloned()
            .collect();
        let names: BTreeSet<&str> = watched.iter().map(|r| r.name.as_str()).collect();
        let events = {
            let mut e = analytics::lock(&self.analytics.engine);
            e.configure(
                &watched,
                plan.prefixes
                    .iter()
                    .filter(|p| names.contains(p.registration.as_str()))
                    .map(|p| (p.net, p.registration.as_str())),
                analytics::now(),
            );
            e.take_events()
        };
        for ev in events {
            self.route_event(ev);
        }
    }

    /// A route analytics event: into the event log (`route`).
    pub fn route_event(&mut self, ev: analytics::Event) {
        let level = if ev.raised {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        self.events.record_at(level, "route", ev.message);
    }

    /// Drops the paths of routers whose BMP session ended and that did
    /// not come back in time (every [`events::LOG_INTERVAL`]).
    pub fn analytics_tick(&mut self) {
        let events = {
            let mut e = analytics::lock(&self.analytics.engine);
            e.sweep(analytics::now());
            e.take_events()
        };
        for ev in events {
            self.route_event(ev);
        }
        self.sync_holds();
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

    /// What edged found about the host, shared with the metrics endpoint.
    pub fn host_facts(&self) -> Arc<RwLock<Arc<HostFacts>>> {
        self.host.facts.clone()
    }

    /// Where the pin directory is visible from.
    pub fn pins(&self) -> &loader::PinScope {
        &self.host.pins
    }

    /// `status.pins`.
    fn pins_status(&self) -> Pins {
        Pins {
            detail: self.host.pins.detail.clone(),
            scope: self.host.pins.scope.word().into(),
        }
    }

    /// `status.warnings`: private or unknown pins, veth peers that drop
    /// (or may drop) redirected frames.
    fn warnings(&self) -> Vec<String> {
        let pins = &self.host.pins;
        let mut out = Vec::new();
        match pins.scope {
            Scope::Shared => {}
            Scope::Private => out.push(format!(
                "pins private to edged's mount namespace ({}): the data plane stops when edged stops or restarts",
                pins.detail
            )),
            Scope::Unknown => out.push(format!(
                "cannot tell whether the pins outlive edged ({})",
                pins.detail
            )),
        }
        for v in &self.host.veth_peers {
            if v.receives != Some(true) {
                out.push(format!("veth {}: {}", v.port, v.reason));
            }
        }
        for (port, why) in &self.host.links.failing {
            out.push(format!("{port}: {why}"));
        }
        if !self.pending.is_empty() {
            out.push(format!(
                "the config changes keys that take effect at the next restart: {}",
                self.pending
                    .iter()
                    .map(Pending::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out
    }

    /// `status.pending_restart`: the restart-only keys the config sets
    /// otherwise than edged runs with.
    fn pending_restart(&self) -> Vec<String> {
        self.pending.iter().map(|p| p.key.clone()).collect()
    }

    /// `status.interface_events`.
    fn interface_events(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for ((i, k), n) in &self.host.interface_events {
            out.entry(i.clone())
                .or_default()
                .insert(k.word().into(), *n);
        }
        out
    }

    /// `status.link_repairs`.
    fn link_repairs(&self) -> LinkRepairs {
        LinkRepairs {
            recent: self.host.links.recent.iter().cloned().collect(),
            total: self.host.links.repairs.values().sum(),
        }
    }

    /// Checks that every port runs the program through its pinned link,
    /// and attaches it again where not: a deleted link pin (which detaches
    /// XDP from the port), an interface that lost its link (deleted and
    /// created again). Each repair is a WARN line, counted in status
    /// (`link_repairs`) and the metrics (`edge_link_repairs_total`); a port
    /// that cannot be repaired is an ERROR line (once) and a warning in
    /// status until it can. Run every [`LINK_CHECK_INTERVAL`] and after
    /// every reload.
    pub fn check_links(&mut self) {
        // Interfaces gone or back first: the maps must know a recreated
        // port's new index before XDP runs on it again.
        let mut changed = self.follow_host();
        let mode = self.running.xdp_mode;
        let ports: Vec<String> = self
            .applied
            .plan
            .interfaces()
            .into_iter()
            .map(String::from)
            .collect();
        // A port the config no longer names (renamed in it, removed) has
        // nothing left to warn about.
        let before = self.host.links.failing.len();
        self.host.links.failing.retain(|p, _| ports.contains(p));
        changed |= self.host.links.failing.len() != before;
        for port in ports {
            if crate::host::netdev::ifindex(&port).is_err() {
                self.link_failing(
                    &port,
                    "the interface is gone (deleted or renamed): the port is absent until an interface of that name appears".into(),
                );
                continue;
            }
            let found = match self.dp.check_link(&port) {
                Ok(None) => {
                    if self.host.links.failing.remove(&port).is_some() {
                        info!("{port}: XDP runs on it again through its pinned link");
                    }
                    continue;
                }
                Ok(Some(found)) => found,
                Err(e) => {
                    self.link_failing(&port, format!("cannot check its XDP link: {e:#}"));
                    continue;
                }
            };
            match self.dp.repair_link(&port, mode) {
                Ok(program) => {
                    warn!(
                        "{port}: {found}: attached XDP again (program {program}) and pinned the link; the port forwarded nothing meanwhile (edgectl status: link_repairs)"
                    );
                    self.host.links.failing.remove(&port);
                    *self.host.links.repairs.entry(port.clone()).or_default() += 1;
                    if self.host.links.recent.len() == RECENT_REPAIRS {
                        self.host.links.recent.pop_front();
                    }
                    self.host.links.recent.push_back(LinkRepair {
                        found,
                        port,
                        time: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0.0, |d| d.as_secs_f64()),
                    });
                    changed = true;
                }
                Err(e) => {
                    self.link_failing(&port, format!("{found}; attaching XDP again failed: {e:#}"))
                }
            }
        }
        if changed {
            self.publish_facts();
        }
    }

    /// A port whose link is gone and stays so: an ERROR line when the
    /// reason is new, a warning in status meanwhile.
    fn link_failing(&mut self, port: &str, why: String) {
        if self.host.links.failing.get(port) != Some(&why) {
            error!("{port}: {why} (edgectl status lists it under warnings)");
            self.host.links.failing.insert(port.to_string(), why);
        }
    }

    /// Publishes what edged found about the host for the metrics endpoint.
    fn publish_facts(&self) {
        let facts = HostFacts {
            link_repairs: self
                .host
                .links
                .repairs
                .iter()
                .map(|(p, n)| (p.clone(), *n))
                .collect(),
            interface_events: self
                .host
                .interface_events
                .iter()
                .map(|((i, k), n)| (i.clone(), k.word(), *n))
                .collect(),
            pins_persistent: match self.host.pins.scope {
                Scope::Shared => Some(true),
                Scope::Private => Some(false),
                Scope::Unknown => None,
            },
            veth_peers: self
                .host
                .veth_peers
                .iter()
                .map(|v| {
                    (
                        v.port.clone(),
                        v.peer.clone().unwrap_or_default(),
                        v.receives,
                    )
                })
                .collect(),
        };
        *self.host.facts.write().expect("host facts lock") = Arc::new(facts);
    }

    /// Checks the peer of every egress veth port (one a PoP leaves
    /// through): whether it receives what XDP redirects into the port.
    /// With `act` (start, reload), also applies `--veth-peer-pass`: attaches
    /// XDP_PASS to the peers that need it, and detaches what edged attached
    /// to peers of ports that are no longer egress veths (all of them
    /// without the flag). Logs what changed since the last check (all of it
    /// the first time), and publishes the result for status and metrics.
    pub fn check_veth_peers(&mut self, act: bool) {
        let plan = &self.applied.plan;
        let mut egress: Vec<&str> = plan
            .pops
            .iter()
            .map(|p| p.interface.as_str())
            .filter(|i| plan.ports.iter().any(|p| p.interface == *i))
            // A vanished interface is reported as such (warnings, events).
            .filter(|i| !matches!(self.host.interfaces.links.get(*i), Some(None)))
            .collect();
        egress.sort();
        egress.dedup();
        let pass = self.source.overrides.veth_peer_pass;
        if act {
            self.dp.detach_peer_passes(if pass { &egress } else { &[] });
        }
        // Redirects from generic-mode XDP go through the kernel's stack.
        let native = plan
            .ports
            .iter()
            .any(|p| matches!(veth::xdp_of(&p.interface), Ok(Xdp::Native(_))));
        let mut found = Vec::new();
        for port in egress {
            let mut peer = match veth::peer(port) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => {
                    found.push(VethPeer {
                        edged_pass: false,
                        gro: None,
                        netns: None,
                        peer: None,
                        port: port.into(),
                        reason: format!("cannot read the peer of veth {port}: {e:#}"),
                        receives: None,
                        up: None,
                        xdp: None,
                    });
                    continue;
                }
            };
            let needs = !matches!(peer.xdp, Xdp::Native(_)) && peer.gro == Ok(false);
            if act && pass && native && needs {
                match self.dp.attach_peer_pass(port, &peer) {
                    Ok(id) => {
                        info!(
                            "{port}: attached XDP_PASS (program {id}) to its peer {} (--veth-peer-pass), so that it receives redirected frames",
                            peer.label()
                        );
                        match veth::peer(port) {
                            Ok(Some(p)) => peer = p,
                            other => warn!("{port}: reading its peer again: {other:?}"),
                        }
                    }
                    Err(e) => error!(
                        "{port}: attaching XDP_PASS to its peer {}: {e:#}",
                        peer.label()
                    ),
                }
            }
            let (receives, reason) = if native {
                peer.receives(port)
            } else {
                (
                    Some(true),
                    "edge's ports run XDP in generic mode: redirected frames take the kernel's stack to the peer".into(),
                )
            };
            let ours = self.dp.peer_pass(port);
            found.push(VethPeer {
                edged_pass: ours.map(Xdp::Native) == Some(peer.xdp),
                gro: peer.gro.as_ref().ok().copied(),
                netns: peer.netns_name(),
                peer: Some(peer.name.clone()),
                port: port.into(),
                reason,
                receives,
                up: Some(peer.up),
                xdp: Some(peer.xdp.word().into()),
            });
        }
        for v in &found {
            let before = self.host.veth_peers.iter().find(|b| b.port == v.port);
            if before.is_some_and(|b| (b.receives, &b.reason) == (v.receives, &v.reason)) {
                continue;
            }
            match v.receives {
                Some(true) => info!("veth {}: {}", v.port, v.reason),
                Some(false) => warn!(
                    "veth {}: {} (edgectl status lists it under warnings)",
                    v.port, v.reason
                ),
                None => warn!("veth {}: {}", v.port, v.reason),
            }
        }
        self.host.veth_peers = found;
        self.publish_facts();
    }
}

/// A start's one transaction: compiles `plan`, writes the state file's new
/// contents aside, writes the maps, attaches (replacing the program on the
/// pinned links), and only then records the state, puts new maps in place
/// and detaches ports that left. A failure at any step undoes the steps
/// before it: the writes into running maps are reversed, each link runs
/// its old program again, links attached anew are detached; the caller
/// discards what the load created ([`Dataplane::discard`]).
fn install(dp: &mut Dataplane, plan: &Plan, state: State) -> Result<(desired::Compiled, State)> {
    let health = BTreeMap::new();
    let mut current = desired::dump(&dp.tables).context("reading the pinned maps")?;
    if !dp.resumed {
        // New maps. Ports and local addresses have kernel copies (the
        // transmit map, the index arrays): write them all, and the
        // settings. The rest is taken as read: the prefixes give their
        // slots and deletions, and the PoP and policy arrays hold what they
        // hold. A new policy array holds zeros, not the unused marker
        // (`NO_POP`) a restart reads back for every unused id, so the first
        // start writes the marker too: a fresh start and a restart leave
        // the same maps, and an unchanged config then writes nothing.
        current = Desired {
            prefixes: current.prefixes,
            pops: current.pops,
            policies: current.policies,
            ..Desired::default()
        };
        current.settings.encap_ttl = 0; // never valid: rewritten
    }
    let c = desired::compile(
        plan,
        &state,
        &current,
        &health_of(plan, &state.drained, &health, &BTreeSet::new()),
        &Choices::default(),
    )?;
    let state = State {
        ids: c.ids.clone(),
        ..state
    };
    // Recorded last, written first: a full disk shows here, before the
    // kernel is touched.
    let record = state.prepare(&plan.state_path).with_context(|| {
        format!(
            "writing the state file {}; nothing was changed",
            plan.state_path.display()
        )
    })?;
    let changes = desired::apply(&mut dp.tables, Some(&mut dp.counters), &current, &c.desired)?;
    // Reverses the writes into maps the running program reads (a restart
    // over them); new maps are discarded whole. Counter slots are left
    // alone: the slots written were free ones.
    let undo = |dp: &mut Dataplane| {
        if dp.resumed
            && let Err(e) = desired::apply(&mut dp.tables, None, &c.desired, &current)
        {
            error!("putting the running maps back after a failed restart: {e:#}");
        }
    };
    let ports: Vec<&str> = plan.interfaces();
    let attached = match dp.attach_ports(&ports, plan.xdp_mode) {
        Ok(a) => a,
        Err(e) => {
            undo(dp);
            return Err(e);
        }
    };
    if let Err(e) = record.commit() {
        attached.rollback();
        undo(dp);
        return Err(e.context("recording the desired state"));
    }
    // Done: nothing below undoes the start.
    attached.commit();
    if let Err(e) = dp.commit_maps() {
        error!("{e:#}");
    }
    dp.detach_others(&ports);
    info!(
        "{}: {} entries written, {} removed",
        if dp.resumed {
            "reconciled the pinned maps"
        } else {
            "filled the maps"
        },
        changes.written,
        changes.removed
    );
    Ok((c, state))
}

/// Where the pins under `dir` are visible from: logged, and a start
/// refused when only edged's own mount namespace sees them, unless
/// `private_pins` (`--private-pins`). Pins nothing else can see vanish with
/// edged, and the data plane with them, at every stop or restart, which is
/// what edged is there to prevent, and nothing would say so until traffic
/// is lost: refusing at start makes it seen while someone is looking.
fn check_pins(dir: &Path, private_pins: bool) -> Result<loader::PinScope> {
    let mounted = loader::ensure_bpffs(dir)?;
    let pins = loader::pin_scope(dir, mounted);
    match pins.scope {
        Scope::Shared => info!(
            "pins under {} outlive edged ({})",
            dir.display(),
            pins.detail
        ),
        Scope::Private if !private_pins => anyhow::bail!(
            "the pin directory {} is visible only in edged's own mount namespace ({}): the pinned maps and links would vanish when edged exits, and the data plane with them, at every stop or restart. Started with `ip netns exec`? Start edged with `nsenter --net=/run/netns/NS edged ...` instead (docs/operations.md, \"Running in a network namespace\"), or pass --private-pins to run without persistence",
            dir.display(),
            pins.detail
        ),
        Scope::Private => warn!(
            "RUNNING WITHOUT PERSISTENCE (--private-pins): the pin directory {} is visible only in edged's own mount namespace ({}); the data plane stops when edged stops or restarts",
            dir.display(),
            pins.detail
        ),
        Scope::Unknown => warn!(
            "cannot tell whether the pins under {} outlive edged ({}): if edged runs in a mount namespace of its own without the host's bpffs, the data plane stops when edged stops",
            dir.display(),
            pins.detail
        ),
    }
    Ok(pins)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[daemon]
pin_path = "/sys/fs/bpf/a"
socket_path = "/run/a/edged.sock"
state_path = "/var/lib/a/state.json"

[[ports]]
interface = "peer0"
role = "peering"
"#;

    /// A reload's restart-only keys (issue 15, item 7): listed as pending,
    /// with config and running values, and the plan keeps the running ones;
    /// a flag that overrides a key makes its config value irrelevant.
    #[test]
    fn restart_only_keys_changed_by_a_reload_are_pending_not_taken() {
        let start = config::parse(CONFIG).unwrap();
        let running = Running::of(&start);
        assert!(running.pending(&start).is_empty());
        let text = CONFIG
            .replace("/sys/fs/bpf/a", "/sys/fs/bpf/b")
            .replace("/run/a/", "/run/b/")
            .replace("/var/lib/a/", "/var/lib/b/")
            .replace(
                "[daemon]",
                "[daemon]\nxdp_mode = \"generic\"\nmetrics_address = \"\"\nread_group = \"edge-read\"",
            )
            .replace("[[ports]]", "[limits]\nprefixes_v4 = 1000\n\n[[ports]]");
        let mut plan = config::parse(&text).unwrap();
        let pending = running.pending(&plan);
        let keys: Vec<&str> = pending.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pin_path",
                "xdp_mode",
                "metrics_address",
                "socket_path",
                "read_group",
                "state_path",
                "limits.prefixes_v4"
            ]
        );
        assert_eq!(
            pending[0].to_string(),
            "pin_path /sys/fs/bpf/b (running: /sys/fs/bpf/a)"
        );
        assert_eq!(
            pending[2].to_string(),
            "metrics_address off (running: 127.0.0.1:9477)"
        );
        running.keep(&mut plan);
        assert_eq!(Running::of(&plan), running);
        assert!(running.pending(&plan).is_empty());

        // --pin-path given: the config's pin_path changes nothing.
        let o = Overrides {
            pin_path: Some("/sys/fs/bpf/flag".into()),
            ..Overrides::default()
        };
        let mut start = config::parse(CONFIG).unwrap();
        o.apply(&mut start);
        let running = Running::of(&start);
        let mut plan = config::parse(&CONFIG.replace("/sys/fs/bpf/a", "/sys/fs/bpf/b")).unwrap();
        o.apply(&mut plan);
        assert!(running.pending(&plan).is_empty());
    }
}
