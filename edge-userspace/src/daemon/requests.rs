//! Control requests: each verb of the protocol answered from the daemon's
//! state, and protection events recorded.

use std::{net::IpAddr, sync::Arc, time::Duration};

use anyhow::Result;
use edge_common::{DSCP_KEEP, NO_POP, POLICY_SLOTS, ProtectionEvent, limits, preference};
use ipnet::IpNet;
use serde_json::{Value, json};

use super::*;
use crate::{
    config::{self, Invalid},
    control::{Request, Response},
    dataplane::{MapsError, events, maps::Count},
    desired::View,
};

/// Why a change failed: the word in the reply's `kind`.
pub(super) fn kind_of(e: &anyhow::Error) -> &'static str {
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

/// A named thing that does not exist (reply kind `not_found`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

pub(super) fn not_registered(prefix: IpNet) -> Response {
    Response::error("not_found", format!("prefix {prefix} is not registered"))
}

impl Daemon {
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
                let mut state = self.applied.state.clone();
                let net = spec.prefix.parse::<IpNet>().ok();
                state
                    .live
                    .added
                    .retain(|p| Some(&p.prefix) != Some(&spec.prefix));
                if let Some(net) = net {
                    state.live.removed.retain(|n| *n != net);
                }
                state.live.added.push(spec);
                self.change(self.source.text.clone(), state)
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
                let mut state = self.applied.state.clone();
                state
                    .live
                    .added
                    .retain(|p| p.prefix.parse::<IpNet>().ok() != Some(prefix));
                let in_file = config::parse(&self.source.text)
                    .map(|p| p.prefixes.iter().any(|x| x.net == prefix))
                    .unwrap_or(false);
                if in_file && !state.live.removed.contains(&prefix) {
                    state.live.removed.push(prefix);
                }
                self.change(self.source.text.clone(), state)
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
                if !self.applied.plan.pops.iter().any(|p| p.name == pop) =>
            {
                return (
                    Response::error("not_found", format!("no PoP named {pop:?}")),
                    false,
                );
            }
            Request::PopDrain { pop } => {
                let mut state = self.applied.state.clone();
                state.drained.insert(pop);
                self.change(self.source.text.clone(), state)
                    .map(|c| json!({"changes": c}))
            }
            Request::PopUndrain { pop } => {
                let mut state = self.applied.state.clone();
                state.drained.remove(&pop);
                self.change(self.source.text.clone(), state)
                    .map(|c| json!({"changes": c}))
            }
            Request::PolicyList {} => Ok(json!(self.snapshot().policies)),
            Request::PolicyShow { policy } => self.policy(&policy),
            Request::ConfigReload {} => self.reload().map(|c| json!({"changes": c})),
            Request::Teardown {} => {
                exit = true;
                self.teardown();
                Ok(json!({"torn_down": self.applied.plan.pin_path}))
            }
        };
        let response = match result {
            Ok(data) => Response::ok(data),
            Err(e) => Response::error(kind_of(&e), format!("{e:#}")),
        };
        (response, exit)
    }

    pub(super) fn status(&self) -> Value {
        let view = self.snapshot();
        let v4 = self
            .applied
            .plan
            .prefixes
            .iter()
            .filter(|p| p.net.addr().is_ipv4())
            .count();
        let v6 = self.applied.plan.prefixes.len() - v4;
        let live = self
            .applied
            .plan
            .prefixes
            .iter()
            .filter(|p| p.origin == crate::plan::Origin::Live)
            .count();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config": self.source.config_path,
            "generation": view.generation,
            "pin_path": self.applied.plan.pin_path,
            "state_path": self.applied.plan.state_path,
            "socket_path": self.applied.plan.socket_path,
            "ports": view.ports,
            "default_action": view.default_action,
            "backbone_exit": view.backbone_exit,
            "transit_exit": view.transit_exit,
            "prefixes": {"total": self.applied.plan.prefixes.len(), "live": live, "removed_live": self.applied.state.live.removed.len()},
            "maps": {
                "prefixes_v4": {"used": v4, "limit": self.applied.plan.limits.prefixes_v4},
                "prefixes_v6": {"used": v6, "limit": self.applied.plan.limits.prefixes_v6},
                "pops": {"used": self.applied.plan.pops.len(), "limit": limits::MAX_POPS},
                "policies": {"used": self.applied.plan.policies.len(), "limit": limits::MAX_POLICIES},
                "ports": {"used": self.applied.plan.ports.len(), "limit": limits::MAX_PORTS},
            },
            "pops": self.applied.plan.pops.len(),
            "routes": view.routes,
            "drained": self.applied.state.drained,
            "policies": self.applied.plan.policies.len(),
        })
    }

    pub(super) fn stats(&self, prefix: Option<IpNet>) -> Result<Value> {
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
    pub(super) fn shares(&self, view: &View, policy: u32) -> Result<Vec<Value>> {
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

    pub(super) fn policy(&self, name: &str) -> Result<Value> {
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

    pub(super) fn lookup(&self, address: IpAddr) -> Result<Value> {
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

    /// RTT percentiles per PoP over the last `window`.
    pub(super) fn latency(&self, window: Duration) -> Value {
        let rows: Vec<Value> = self
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
                json!({"pop": p.name, "samples": v.len(), "min_ms": q(0.0), "p50_ms": q(0.5),
                    "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": q(1.0)})
            })
            .collect();
        json!({"window_seconds": window.as_secs(), "pops": rows})
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

    /// Logs violation counts pending from the last interval.
    pub fn flush_events(&mut self) {
        self.events.flush();
    }
}
