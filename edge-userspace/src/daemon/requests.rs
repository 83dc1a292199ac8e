//! Control requests: each verb of the protocol answered from the daemon's
//! state, and protection events recorded.

use std::{net::IpAddr, sync::Arc, time::Duration};

use anyhow::Result;
use edge_common::{DSCP_KEEP, NO_POP, POLICY_SLOTS, ProtectionEvent, limits, preference};
use ipnet::IpNet;

use super::*;
use crate::{
    config::Invalid,
    control::{
        Changed, Count, ErrorKind, Events, Fill, KernelTable, Latency, Lookup, Maps, Pop, PopCount,
        PopLatency, Port, PortCount, PrefixCount, PrefixCounts, PrefixFilter, Registered, Reply,
        Request, Response, Share, SharedCount, Stats, Status, TornDown, Unregistered,
    },
    dataplane::{MapsError, events, maps},
    desired::View,
};

/// Why a change failed: the reply's `kind`.
pub(super) fn kind_of(e: &anyhow::Error) -> ErrorKind {
    let invalid = e.chain().find_map(|c| c.downcast_ref::<Invalid>());
    if invalid.is_some_and(|i| i.0.iter().any(|p| p.map_full)) {
        ErrorKind::MapFull
    } else if invalid.is_some()
        || e.chain()
            .any(|c| c.downcast_ref::<super::pipeline::Shrunk>().is_some())
    {
        ErrorKind::Invalid
    } else if e.chain().any(|c| c.downcast_ref::<NotFound>().is_some()) {
        ErrorKind::NotFound
    } else if e.chain().any(|c| {
        matches!(
            c.downcast_ref::<MapsError>(),
            Some(MapsError::MapFull { .. })
        )
    }) {
        ErrorKind::MapFull
    } else {
        ErrorKind::Failed
    }
}

/// A named thing that does not exist (reply kind `not_found`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

pub(super) fn not_registered(prefix: IpNet) -> Response {
    Response::error(
        ErrorKind::NotFound,
        format!("prefix {prefix} is not registered"),
    )
}

fn changed(c: crate::desired::Changes) -> Reply {
    Reply::Changed(Changed::from(c))
}

impl Daemon {
    /// Handles one request from `caller` (the peer on the control socket);
    /// `true` when the daemon should exit afterwards.
    pub fn handle(
        &mut self,
        request: Request,
        caller: Option<crate::control::Caller>,
    ) -> (Response, bool) {
        self.caller = caller;
        let mut exit = false;
        let result = match request {
            Request::Status {} => Ok(Reply::Status(Box::new(self.status()))),
            Request::Stats {
                prefix,
                top,
                registration,
                within,
                source,
                domain,
            } => match PrefixFilter::new(registration, within, source) {
                Ok(filter) => self
                    .stats(prefix, top, &filter, domain.as_deref())
                    .map(Reply::Stats),
                Err(e) => return (Response::error(ErrorKind::Invalid, e), false),
            },
            Request::PrefixList {
                top,
                registration,
                within,
                source,
                domain,
            } => match PrefixFilter::new(registration, within, source) {
                Ok(filter) => self
                    .prefix_list(top, &filter, domain.as_deref())
                    .map(Reply::PrefixRows),
                Err(e) => return (Response::error(ErrorKind::Invalid, e), false),
            },
            Request::PrefixShow { prefix, domain } => match self.view_in(domain.as_deref()) {
                Ok(view) => match view.prefix(prefix) {
                    Some(p) => Ok(Reply::Prefix(p.into())),
                    None => return (not_registered(prefix), false),
                },
                Err(e) => Err(e),
            },
            Request::PrefixLookup { address, domain } => self
                .lookup(address, domain.as_deref())
                .map(|l| Reply::Lookup(Box::new(l))),
            Request::PrefixAdd { spec } if spec.private_domain().is_some() => {
                let what = format!(
                    "prefix {} added in domain {} (live)",
                    spec.prefix,
                    spec.private_domain().unwrap_or_default()
                );
                self.live_private(Some(spec), None)
                    .inspect(|c| self.audit(what, c))
                    .map(changed)
            }
            Request::PrefixAdd { spec } => {
                let what = format!("prefix {} added (live)", spec.prefix);
                self.live_change(vec![spec], Vec::new())
                    .inspect(|c| self.audit(what, c))
                    .map(changed)
            }
            Request::PrefixDel {
                prefix,
                domain: Some(domain),
            } if domain != "public" => {
                let what = format!("prefix {prefix} removed from domain {domain} (live)");
                self.live_private(
                    None,
                    Some(crate::config::DomainNet {
                        domain,
                        network: prefix,
                    }),
                )
                .inspect(|c| self.audit(what, c))
                .map(changed)
            }
            Request::PrefixBatch { items, .. } => {
                let what = format!("batch of {} prefix changes applied (live)", items.len());
                self.batch(items)
                    .inspect(|c| self.audit(what, c))
                    .map(changed)
            }
            Request::PrefixDel { prefix, .. } => {
                match self.snapshot().prefix(prefix) {
                    None => return (not_registered(prefix), false),
                    Some(p) if matches!(p.source, crate::plan::Origin::Route { .. }) => {
                        return (
                            Response::error(
                                ErrorKind::Invalid,
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
                let what = format!("prefix {prefix} removed (live)");
                self.live_change(Vec::new(), vec![prefix])
                    .inspect(|c| self.audit(what, c))
                    .map(changed)
            }
            Request::PopList { domain } => self.view_in(domain.as_deref()).map(|view| {
                Reply::PopList(
                    view.pops
                        .iter()
                        .zip(&view.health)
                        .map(|(p, h)| Pop::new(p, h))
                        .collect(),
                )
            }),
            Request::Events { limit } => Ok(Reply::Events(Events {
                events: self
                    .events
                    .recent(limit.min(events::KEEP))
                    .into_iter()
                    .map(|r| crate::control::Event {
                        kind: r.kind.into(),
                        message: r.message,
                        time: r.time,
                    })
                    .collect(),
                received: self.events.received,
            })),
            Request::ReportCustomers { by, since_seconds } => {
                Ok(Reply::Customers(self.report_customers(by, since_seconds)))
            }
            Request::ReportLatency { window_seconds } => Ok(Reply::Latency(self.latency(
                Duration::from_secs(window_seconds.clamp(1, RTT_WINDOW.as_secs())),
            ))),
            Request::PopDrain { pop } | Request::PopUndrain { pop }
                if !self.applied.plan.pops.iter().any(|p| p.name == pop) =>
            {
                return (
                    Response::error(ErrorKind::NotFound, format!("no PoP named {pop:?}")),
                    false,
                );
            }
            Request::PopDrain { pop } => {
                let mut state = self.applied.state.clone();
                let what = format!("PoP {pop} drained (out of every policy and exit)");
                state.drained.insert(pop);
                self.change(self.source.text.clone(), state)
                    .inspect(|c| self.audit(what, c))
                    .map(changed)
            }
            Request::PopUndrain { pop } => {
                let mut state = self.applied.state.clone();
                state.drained.remove(&pop);
                let what = format!("PoP {pop} undrained");
                self.change(self.source.text.clone(), state)
                    .inspect(|c| self.audit(what, c))
                    .map(changed)
            }
            Request::RoutesShow { prefix } => Ok(Reply::RoutePaths(self.routes_show(prefix))),
            Request::RoutesAnomalies { since } => {
                Ok(Reply::Anomalies(self.routes_anomalies(since)))
            }
            Request::PolicyList { domain } => self
                .view_in(domain.as_deref())
                .map(|view| Reply::PolicyList(view.policies.iter().map(Into::into).collect())),
            Request::PolicyShow { policy } => self.policy(&policy).map(Reply::PolicyShow),
            Request::ConfigReload { force } => self.reload(force).map(|c| {
                Reply::Changed(Changed {
                    pending_restart: self.pending_restart(),
                    ..Changed::from(c)
                })
            }),
            Request::LiveList {} => Ok(Reply::LiveList(crate::control::LiveList {
                changes: self.live_changes(),
            })),
            Request::LiveClear { networks, all } => {
                self.live_clear(&networks, all).map(|(c, cleared)| {
                    if !cleared.is_empty() {
                        let mut named: Vec<String> =
                            cleared.iter().take(8).map(ToString::to_string).collect();
                        if cleared.len() > named.len() {
                            named.push(format!("and {} more", cleared.len() - named.len()));
                        }
                        let what = format!(
                            "live changes of {} network{} cleared ({})",
                            cleared.len(),
                            if cleared.len() == 1 { "" } else { "s" },
                            named.join(", ")
                        );
                        self.audit(what, &c);
                    }
                    Reply::Changed(Changed {
                        cleared,
                        ..Changed::from(c)
                    })
                })
            }
            Request::ConfigShow {} => Ok(Reply::ConfigShow(Box::new(crate::control::ConfigShow {
                changes: self.live_changes(),
                config: self.source.config_path.clone(),
                generation: self.snapshot().generation,
                text: self.source.text.clone(),
            }))),
            Request::Teardown {} => {
                exit = true;
                self.teardown();
                Ok(Reply::TornDown(TornDown {
                    torn_down: self.running.pin_path.clone(),
                }))
            }
        };
        let response = match result {
            Ok(data) => Response::ok(data),
            Err(e) => Response::error(kind_of(&e), format!("{e:#}")),
        };
        (response, exit)
    }

    /// An operator's change that applied: an event (kind `change`) and an
    /// INFO line, the audit trail of what was changed when.
    pub(super) fn audit(&mut self, what: String, c: &crate::desired::Changes) {
        self.events.record_at(
            log::Level::Info,
            "change",
            format!("{what}: {} written, {} removed", c.written, c.removed),
        );
    }

    pub(super) fn status(&self) -> Status {
        let view = self.snapshot();
        let plan = &self.applied.plan;
        let v4 = plan
            .prefixes
            .iter()
            .filter(|p| p.net.addr().is_ipv4())
            .count();
        let v6 = plan.prefixes.len() - v4;
        let live = plan
            .prefixes
            .iter()
            .filter(|p| p.origin == crate::plan::Origin::Live)
            .count();
        let fill = |used: usize, limit: u32| Fill {
            limit: u64::from(limit),
            used: used as u64,
        };
        Status {
            backbone_exit: view.backbone_exit.clone(),
            bmp: self
                .running
                .bmp_listen
                .map(|_| self.bmp(&crate::analytics::lock(&self.analytics.engine))),
            config: self.source.config_path.clone(),
            default_action: view.default_action.into(),
            drained: self.applied.state.drained.iter().cloned().collect(),
            generation: view.generation,
            interface_events: self.interface_events(),
            link_repairs: self.link_repairs(),
            maps: Maps {
                policies: fill(plan.policies.len(), limits::MAX_POLICIES),
                pops: fill(plan.pops.len(), limits::MAX_POPS),
                ports: fill(plan.ports.len(), limits::MAX_PORTS),
                prefixes_v4: fill(v4, plan.limits.prefixes_v4),
                prefixes_v6: fill(v6, plan.limits.prefixes_v6),
            },
            pending_restart: self.pending_restart(),
            pid: std::process::id(),
            pin_path: self.running.pin_path.clone(),
            pins: self.pins_status(),
            policies: plan.policies.len(),
            pops: plan.pops.len(),
            ports: view.ports.iter().map(Port::from).collect(),
            prefixes: PrefixCounts {
                live,
                removed_live: self.applied.state.live.removed.len(),
                total: plan.prefixes.len(),
            },
            routes: view.routes.into(),
            socket_path: self.running.socket_path.clone(),
            state_path: self.running.state_path.clone(),
            transit_exit: view.transit_exit.clone(),
            uptime_seconds: self.started.elapsed().as_secs(),
            version: env!("CARGO_PKG_VERSION").into(),
            veth_peers: self.host.veth_peers.clone(),
            warnings: self.warnings(),
        }
    }

    /// The rows of `view`'s prefixes that pass `filter`: (row index,
    /// count of its own slot), the `top` busiest first when given (ties in
    /// list order). Prefixes without a slot of their own count 0 here.
    fn busiest(
        view: &View,
        counts: &[maps::Count],
        filter: &PrefixFilter,
        top: Option<usize>,
        slotted_only: bool,
    ) -> Vec<(usize, maps::Count)> {
        let at = |slot: u32| {
            (slot != 0)
                .then(|| counts.get(slot as usize).copied())
                .flatten()
                .unwrap_or_default()
        };
        let mut rows: Vec<(usize, maps::Count)> = view
            .prefixes
            .iter()
            .enumerate()
            .filter(|(_, p)| !(slotted_only && p.counter_slot == 0) && filter.matches(p))
            .map(|(i, p)| (i, at(p.counter_slot)))
            .collect();
        if let Some(n) = top {
            rows.sort_by(|a, b| {
                (b.1.packets, b.1.bytes)
                    .cmp(&(a.1.packets, a.1.bytes))
                    .then(a.0.cmp(&b.0))
            });
            rows.truncate(n);
        }
        rows
    }

    /// The rows of `prefix list`, from a view snapshot (encoded by the
    /// connection as it sends them).
    /// The published view, or the view from one domain (see
    /// [`View::in_domain`]).
    fn view_in(&self, domain: Option<&str>) -> Result<Arc<View>> {
        let view = self.snapshot();
        match domain {
            None => Ok(view),
            Some(d) => match view.in_domain(d) {
                Some(v) => Ok(Arc::new(v)),
                None => anyhow::bail!(NotFound(format!(
                    "unknown domain {d:?}: public, or a name of [[domains]] in the config"
                ))),
            },
        }
    }

    pub(super) fn prefix_list(
        &self,
        top: Option<usize>,
        filter: &PrefixFilter,
        domain: Option<&str>,
    ) -> Result<crate::control::PrefixRows> {
        let view = self.view_in(domain)?;
        let rows = match top {
            None if filter.is_empty() => None,
            None => Some(
                view.prefixes
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| filter.matches(p))
                    .map(|(i, _)| i as u32)
                    .collect(),
            ),
            Some(_) => {
                let counts = self.dp.counters.read(view.prefix_slots())?.prefix_counts();
                Some(
                    Self::busiest(&view, &counts, filter, top, false)
                        .into_iter()
                        .map(|(i, _)| i as u32)
                        .collect(),
                )
            }
        };
        Ok(crate::control::PrefixRows { view, rows })
    }

    pub(super) fn stats(
        &self,
        prefix: Option<IpNet>,
        top: Option<usize>,
        filter: &PrefixFilter,
        domain: Option<&str>,
    ) -> Result<Stats> {
        let view = self.view_in(domain)?;
        let stats = self.dp.counters.read(view.prefix_slots())?;
        let counts = stats.prefix_counts();
        let count = |c: maps::Count| Count {
            bytes: c.bytes,
            packets: c.packets,
        };
        let row = |p: &crate::desired::PrefixView, c: maps::Count| PrefixCount {
            bytes: c.bytes,
            packets: c.packets,
            prefix: p.prefix,
            registration: p.registration.to_string(),
            shared: p.counter_slot == 0,
            source: p.source.to_string(),
        };
        let other = counts.first().copied().unwrap_or_default();
        let mut shared = None;
        let prefixes = match prefix {
            Some(n) => match view.prefix(n) {
                Some(p) => vec![row(
                    p,
                    counts
                        .get(p.counter_slot as usize)
                        .copied()
                        .unwrap_or_default(),
                )],
                None => anyhow::bail!(NotFound(format!("prefix {n} is not registered"))),
            },
            None => {
                let unslotted = view
                    .prefixes
                    .iter()
                    .filter(|p| p.counter_slot == 0 && filter.matches(p))
                    .count();
                if unslotted > 0 {
                    shared = Some(SharedCount {
                        bytes: other.bytes,
                        packets: other.packets,
                        prefixes: unslotted,
                    });
                }
                Self::busiest(&view, &counts, filter, top, true)
                    .into_iter()
                    .map(|(i, c)| row(&view.prefixes[i], c))
                    .collect()
            }
        };
        let named = |rows: &[(&'static str, maps::Count)]| {
            rows.iter()
                .map(|(n, c)| (n.to_string(), count(*c)))
                .collect()
        };
        Ok(Stats {
            actions: named(&stats.actions),
            generation: view.generation,
            pops: view
                .pops
                .iter()
                .map(|p| {
                    let c = stats.pop(p.id);
                    PopCount {
                        bytes: c.bytes,
                        packets: c.packets,
                        pop: p.name.clone(),
                    }
                })
                .collect(),
            ports: view
                .ports
                .iter()
                .map(|p| {
                    let c = stats.port(p.id);
                    PortCount {
                        bytes: c.bytes,
                        domain: p.domain.clone(),
                        packets: c.packets,
                        port: p.name.clone(),
                        role: p.role.into(),
                    }
                })
                .collect(),
            prefixes,
            reasons: named(&stats.reasons),
            shared,
        })
    }

    /// Shares of a kernel selection table: (PoP name or "kernel", slots).
    pub(super) fn shares(&self, view: &View, policy: u32) -> Result<Vec<Share>> {
        self.shares_in(view, policy, false)
    }

    /// [`Self::shares`]; `private`: a private domain's table, whose empty
    /// slots drop.
    pub(super) fn shares_in(&self, view: &View, policy: u32, private: bool) -> Result<Vec<Share>> {
        let table = self.dp.tables.policy(policy)?;
        let mut shares: Vec<(String, usize)> = Vec::new();
        for &pop in &table.pops[..POLICY_SLOTS] {
            let name = if pop == NO_POP && private {
                "none (dropped)".to_string()
            } else if pop == NO_POP {
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
            .map(|(pop, slots)| Share {
                pop: Some(pop),
                share: slots as f64 / POLICY_SLOTS as f64,
                slots: slots as u64,
            })
            .collect())
    }

    pub(super) fn policy(&self, name: &str) -> Result<crate::control::PolicyShow> {
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
        Ok(crate::control::PolicyShow {
            first_prefixes: users.iter().take(20).cloned().collect(),
            policy: p.into(),
            prefixes: users.len(),
            slots: POLICY_SLOTS,
            table: match p.tables.first() {
                Some(t) => self.shares(&view, t.id)?,
                None => Vec::new(),
            },
            tables: p
                .tables
                .iter()
                .map(|t| -> Result<KernelTable> {
                    Ok(KernelTable {
                        fallback: t.fallback.map(str::to_string),
                        id: t.id,
                        key: t.key.clone(),
                        table: self.shares(&view, t.id)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        })
    }

    pub(super) fn lookup(&self, address: IpAddr, domain: Option<&str>) -> Result<Lookup> {
        let domain = domain.unwrap_or("public");
        let view = self.view_in(Some(domain))?;
        let entry = match view.domain_id(domain) {
            None => self.dp.tables.lookup(address)?,
            Some(id) => self.dp.tables.domain_lookup(id, address)?,
        };
        let private = domain != "public";
        let Some(entry) = entry else {
            return Ok(Lookup::Unregistered(Unregistered {
                address,
                // A private domain's misses are dropped (the kernel's table
                // is the public domain's).
                default_action: if private { "drop" } else { view.default_action }.into(),
                domain: domain.into(),
                registered: false,
            }));
        };
        // The kernel answers with the entry; its prefix is the longest
        // registered one that contains the address.
        let prefix = view
            .prefixes
            .iter()
            .filter(|p| p.prefix.contains(&address))
            .max_by_key(|p| p.prefix.prefix_len());
        let internet = entry.preference == preference::INTERNET;
        if private {
            // Classified by destination only, no exits: the policy's table
            // both ways.
            let shares = self.shares_in(&view, entry.policy, true)?;
            return Ok(Lookup::Registered(Registered {
                address,
                counter_slot: entry.slot,
                domain: domain.into(),
                dscp: (entry.dscp != DSCP_KEEP).then_some(entry.dscp),
                from_customer: None,
                from_customer_pops: Vec::new(),
                policy: view.table_name(entry.policy).map(str::to_string),
                preference: "microsoft".into(),
                prefix: prefix.map(|p| p.prefix),
                protect: Vec::new(),
                registered: true,
                registration: prefix.map(|p| p.registration.to_string()),
                source: prefix.map(|p| p.source.to_string()),
                toward_customer: shares,
            }));
        }
        let protect: Vec<String> = (0..64u32)
            .filter(|i| entry.allowed_ports >> i & 1 == 1)
            .map(|i| {
                view.port(i)
                    .map_or_else(|| format!("port {i}"), |p| p.name.clone())
            })
            .collect();
        let (exit, exit_table) = if internet {
            (&view.transit_exit, view.transit_table)
        } else {
            (&view.backbone_exit, view.backbone_table)
        };
        // What the exit's table holds now (its PoPs, or its fallback's).
        let exit_shares = match exit_table {
            Some(t) => self.shares(&view, t)?,
            None => vec![Share {
                pop: Some("none (to the kernel)".into()),
                share: 1.0,
                slots: POLICY_SLOTS as u64,
            }],
        };
        Ok(Lookup::Registered(Registered {
            address,
            counter_slot: entry.slot,
            domain: domain.into(),
            dscp: (entry.dscp != DSCP_KEEP).then_some(entry.dscp),
            from_customer: exit.clone(),
            from_customer_pops: exit_shares.clone(),
            policy: if internet {
                exit.clone()
            } else {
                view.table_name(entry.policy).map(str::to_string)
            },
            preference: if internet { "internet" } else { "microsoft" }.into(),
            prefix: prefix.map(|p| p.prefix),
            protect,
            registered: true,
            registration: prefix.map(|p| p.registration.to_string()),
            source: prefix.map(|p| p.source.to_string()),
            toward_customer: if internet {
                exit_shares
            } else {
                self.shares(&view, entry.policy)?
            },
        }))
    }

    /// RTT percentiles per PoP over the last `window`.
    pub(super) fn latency(&self, window: Duration) -> Latency {
        let pops = self
            .applied
            .plan
            .pops
            .iter()
            .map(|p| {
                let mut v: Vec<f64> = self
                    .failover
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
                PopLatency {
                    max_ms: q(1.0),
                    min_ms: q(0.0),
                    p50_ms: q(0.5),
                    p90_ms: q(0.9),
                    p99_ms: q(0.99),
                    pop: p.name.clone(),
                    samples: v.len(),
                }
            })
            .collect();
        Latency {
            pops,
            window_seconds: window.as_secs(),
        }
    }

    /// The registered prefix counted in `slot` (not 0), through an index of
    /// the view's rows by slot, built once per generation: events come by
    /// the hundred per second, prefixes by the million.
    fn prefix_by_slot<'v>(
        &mut self,
        view: &'v View,
        slot: u32,
    ) -> Option<&'v crate::desired::PrefixView> {
        if slot == 0 {
            return None;
        }
        if self.slot_rows.0 != view.generation || self.slot_rows.1.is_empty() {
            let mut rows = vec![u32::MAX; limits::MAX_PREFIX_SLOTS as usize];
            for (i, p) in view.prefixes.iter().enumerate() {
                if let Some(r) = rows.get_mut(p.counter_slot as usize) {
                    *r = i as u32;
                }
            }
            self.slot_rows = (view.generation, rows);
        }
        let i = *self.slot_rows.1.get(slot as usize)?;
        view.prefixes
            .get(i as usize)
            .filter(|p| p.counter_slot == slot)
    }

    /// A protection event from the kernel.
    pub fn protection_event(&mut self, ev: ProtectionEvent) {
        let view = self.snapshot();
        let (src, _) = events::addresses(&ev);
        let (prefix, registered_on) = match self.prefix_by_slot(&view, ev.slot) {
            Some(p) => (
                format!("{} ({})", p.prefix, p.registration),
                p.protect.join(", "),
            ),
            None => (format!("counter slot {}", ev.slot), "other ports".into()),
        };
        let port = view
            .port(ev.port)
            .map_or_else(|| format!("port {}", ev.port), |p| p.name.clone());
        self.events.protection(prefix, port, src, &registered_on);
        let mut view = (*view).clone();
        view.protection = self.events.totals();
        *self.view.write().expect("view lock") = Arc::new(view);
    }

    /// Logs violation counts pending from the last interval.
    pub fn flush_events(&mut self) {
        self.events.flush();
    }

    fn bmp(&self, e: &crate::analytics::Engine) -> crate::control::Bmp {
        crate::control::Bmp {
            held: self.held(),
            listen: self.running.bmp_listen.map(|a| a.to_string()),
            totals: e.totals.clone(),
        }
    }

    /// `routes_show`: the paths kept for `prefix` and its more-specifics.
    fn routes_show(&self, prefix: IpNet) -> crate::control::RoutePaths {
        let e = crate::analytics::lock(&self.analytics.engine);
        let registered = e.registered_for(&prefix);
        crate::control::RoutePaths {
            bmp: self.bmp(&e),
            paths: e.routes(prefix),
            prefix,
            registered: registered.map(|(n, _)| n),
            registration: registered.map(|(_, r)| r.to_string()),
        }
    }

    /// `routes_anomalies`: active and cleared anomalies.
    fn routes_anomalies(&self, since: Option<f64>) -> crate::control::Anomalies {
        let e = crate::analytics::lock(&self.analytics.engine);
        let (active, cleared) = e.anomalies(since);
        crate::control::Anomalies {
            active,
            bmp: self.bmp(&e),
            cleared,
        }
    }
}
