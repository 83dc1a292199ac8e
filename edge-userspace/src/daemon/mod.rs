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
    config::{self},
    control::{Pins, VethPeer},
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
    host: HostChecks,
}

/// What edged found when it checked the host: where its pins are visible
/// from (once, at start), and the egress veths' peers (at start, at every
/// reload, and every [`HOST_CHECK_INTERVAL`]).
struct HostChecks {
    pins: loader::PinScope,
    veth_peers: Vec<VethPeer>,
    /// The same, for the metrics endpoint.
    facts: Arc<RwLock<Arc<HostFacts>>>,
}

/// How often edged's loop checks the veth peers again.
pub const HOST_CHECK_INTERVAL: Duration = Duration::from_secs(30);

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
        let pins = check_pins(&plan.pin_path, overrides.private_pins)?;
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
            host: HostChecks {
                pins,
                veth_peers: Vec::new(),
                facts: Arc::default(),
            },
        };
        daemon.sync_monitors();
        daemon.publish_health();
        daemon.check_veth_peers(true);
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
        out
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
        let facts = HostFacts {
            pins_persistent: match self.host.pins.scope {
                Scope::Shared => Some(true),
                Scope::Private => Some(false),
                Scope::Unknown => None,
            },
            veth_peers: found
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
        self.host.veth_peers = found;
    }
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
