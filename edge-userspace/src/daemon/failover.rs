//! Failover: probe monitors per PoP, health events, and the selection
//! tables rewritten when a PoP's health (or its next hop) changes.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use log::{error, info};
use tokio::sync::mpsc;

use super::*;
use crate::{
    desired::{self, PopHealthView},
    health::{self, HealthEvent, PopStatus},
    plan::{Plan, Probe},
    policy::{self as resolve, PopView as PopHealth},
};

/// A running probe of one PoP.
pub(super) struct Monitor {
    probe: Probe,
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
pub(super) fn health_of<'a>(
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

/// The tables that fall back in `new` and did not in `old`, each as its
/// `fallback` event's message: after a health change, and after a change (a
/// drain that leaves a policy without members, a reload).
/// `private` tells the policies of private domains, whose `pass` drops.
pub(super) fn new_fallbacks(
    old: &Resolved,
    new: &Resolved,
    private: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    new.in_fallback()
        .filter(|(key, fallback)| {
            old.tables
                .get(*key)
                .is_none_or(|t| t.fallback != Some(*fallback))
        })
        .map(|(key, fallback)| {
            format!(
                "{}{key}: every member is down or drained; its traffic falls back to {}",
                if key.exit.is_some() { "" } else { "policy " },
                match fallback {
                    crate::plan::Fallback::Transit => "the transit exit",
                    crate::plan::Fallback::Backbone => "the backbone exit",
                    crate::plan::Fallback::Pass if private(&key.policy) => {
                        "nothing: dropped and counted (pass, in a private domain)"
                    }
                    crate::plan::Fallback::Pass => "the kernel (pass)",
                }
            )
        })
        .collect()
}

/// The tables that fell back in `old` and no longer do in `new` (a member
/// is up again), each as its `fallback` event's message: the other half of
/// the record.
pub(super) fn ended_fallbacks(old: &Resolved, new: &Resolved) -> Vec<String> {
    old.in_fallback()
        .filter(|(key, _)| new.tables.get(*key).is_some_and(|t| t.fallback.is_none()))
        .map(|(key, _)| {
            format!(
                "{}{key}: a member is up again; its traffic no longer falls back",
                if key.exit.is_some() { "" } else { "policy " },
            )
        })
        .collect()
}

/// Counts, logs and records the tables that started to fall back
/// (`old` → `new`), and records those that stopped.
pub(super) fn record_fallbacks(
    fallbacks: &mut u64,
    events: &mut events::Events,
    old: &Resolved,
    new: &Resolved,
    private: &dyn Fn(&str) -> bool,
) {
    for m in new_fallbacks(old, new, private) {
        *fallbacks += 1;
        events.record_at(log::Level::Error, "fallback", m);
    }
    for m in ended_fallbacks(old, new) {
        events.record_at(log::Level::Info, "fallback", m);
    }
}

impl Daemon {
    /// Starts, restarts or stops the probe of every PoP to match the plan.
    pub(super) fn sync_monitors(&mut self) {
        let wanted: BTreeMap<String, Probe> = self
            .applied
            .plan
            .pops
            .iter()
            .filter_map(|p| Some((p.name.clone(), p.probe.clone()?)))
            .collect();
        self.failover
            .monitors
            .retain(|name, m| wanted.get(name).is_some_and(|p| *p == m.probe));
        self.failover
            .health
            .retain(|name, _| wanted.contains_key(name));
        self.failover
            .carrier_hold
            .retain(|name, _| wanted.contains_key(name));
        for (name, probe) in wanted {
            if self.failover.monitors.contains_key(&name) {
                continue;
            }
            info!("{name}: probing {probe}");
            let task = tokio::spawn(health::run(
                name.clone(),
                probe.clone(),
                self.failover.health_tx.clone(),
            ));
            self.failover.monitors.insert(name, Monitor { probe, task });
        }
    }

    /// A probe result from a PoP's monitor.
    pub fn health_event(&mut self, ev: HealthEvent) {
        let name = ev.pop.clone();
        if !self.applied.plan.pops.iter().any(|p| p.name == name) {
            return; // a PoP removed by a reload
        }
        if let Ok(rtt) = ev.result {
            self.failover
                .rtt_histograms
                .entry(name.clone())
                .or_default()
                .observe(rtt);
            let samples = self.failover.rtts.entry(name.clone()).or_default();
            samples.push_back((Instant::now(), rtt));
            while samples
                .front()
                .is_some_and(|(t, _)| t.elapsed() > RTT_WINDOW)
            {
                samples.pop_front();
            }
        }
        let was = self.failover.health.get(&name).map(|s| s.healthy);
        let mut status = ev.status;
        if let Some(answers) = self.failover.carrier_hold.get_mut(&name) {
            let i = self.applied.plan.pops.iter().position(|p| p.name == name);
            let runs = i.is_some_and(|i| !self.failover.unresolved.contains(&(i as u32)));
            *answers = if ev.result.is_ok() && runs {
                *answers + 1
            } else {
                0
            };
            let rise = i
                .and_then(|i| self.applied.plan.pops[i].probe.as_ref())
                .map_or(1, |p| p.rise);
            if *answers >= rise {
                self.failover.carrier_hold.remove(&name);
            } else if status.healthy {
                status.healthy = false;
                status.last_change = self
                    .failover
                    .health
                    .get(&name)
                    .map_or(status.last_change, |s| s.last_change);
            }
        }
        let healthy = status.healthy;
        self.failover.health.insert(name.clone(), status);
        if was != Some(healthy) {
            let message = match (&ev.result, healthy) {
                (_, true) => format!("{name} is UP (its probe answers)"),
                (Err(e), false) => format!("{name} is DOWN: {e}"),
                _ => format!("{name} is DOWN"),
            };
            let level = if healthy {
                log::Level::Info
            } else {
                log::Level::Warn
            };
            self.events.record_at(level, "pop", message);
        }
        let performance = self
            .applied
            .plan
            .policies
            .iter()
            .any(|p| p.method == crate::plan::Method::Performance);
        if was != Some(healthy) || (ev.result.is_ok() && performance) {
            self.retable();
        }
        self.publish_health();
    }

    /// Recomputes the selection tables from the PoPs' health and writes the
    /// ones that changed: a failover touches tables only, however many
    /// prefixes use them.
    pub(super) fn retable(&mut self) {
        let health = health_of(
            &self.applied.plan,
            &self.applied.state.drained,
            &self.failover.health,
            &self.failover.unresolved,
        );
        let resolved = resolve::resolve(
            &self.applied.plan,
            &self.applied.layout,
            &health,
            &self.applied.resolved.choices,
        );
        let entries = desired::table_entries(
            &self.applied.layout,
            &resolved,
            &self.applied.pop_ids,
            &self.applied.table_ids,
        );
        let mut written = 0;
        for (id, table, _) in &entries {
            if self.applied.current.policies[*id as usize] == *table {
                continue;
            }
            match self.dp.tables.set_policy(*id, table) {
                Ok(()) => {
                    self.applied.current.policies[*id as usize] = *table;
                    written += 1;
                }
                Err(e) => error!("writing selection table {id}: {e}"),
            }
        }
        let plan = &self.applied.plan;
        record_fallbacks(
            &mut self.failover.fallbacks,
            &mut self.events,
            &self.applied.resolved,
            &resolved,
            &|name| plan.is_private_policy(name),
        );
        if written > 0 {
            info!("failover: {written} selection tables rewritten");
        }
        let pop_ids = self.applied.pop_ids.clone();
        let plan = &self.applied.plan;
        let pop_name = |id: u16| {
            pop_ids
                .iter()
                .position(|&x| x == u32::from(id))
                .map_or_else(|| format!("pop {id}"), |i| plan.pops[i].name.clone())
        };
        let policies =
            desired::policy_views(plan, &self.applied.layout, &entries, &health, &pop_name);
        self.applied.resolved = resolved;
        let mut view = (*self.snapshot()).clone();
        view.policies = policies;
        *self.view.write().expect("view lock") = Arc::new(view);
    }

    /// Puts the PoPs' health into the shared view (metrics, edgectl).
    pub(super) fn publish_health(&mut self) {
        let mut view = (*self.snapshot()).clone();
        view.health =
            self.applied
                .plan
                .pops
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let s = self.failover.health.get(&p.name);
                    let drained = self.applied.state.drained.contains(&p.name);
                    let unresolved = self.failover.unresolved.contains(&(i as u32));
                    let down_reason = if unresolved {
                        Some(match self.host.interfaces.links.get(&p.interface) {
                            Some(None) => format!("interface {} is gone", p.interface),
                            Some(Some(l)) if !l.running => {
                                format!("no carrier on {}", p.interface)
                            }
                            _ => match p.next_hop {
                                Some(ip) => format!("next hop {ip} does not resolve"),
                                None => "not resolved".to_string(),
                            },
                        })
                    } else {
                        self.failover.carrier_hold.get(&p.name).map(|answers| {
                            format!(
                                "{} runs again after a carrier loss: {answers} of {} probe answers in a row",
                                p.interface,
                                p.probe.as_ref().map_or(1, |p| p.rise)
                            )
                        })
                    };
                    PopHealthView {
                        pop: p.name.clone(),
                        state: if drained {
                            "drained"
                        } else if down_reason.is_some() {
                            "down"
                        } else {
                            match s {
                                None if p.probe.is_none() => "up (no probe)",
                                None => "up (not probed yet)",
                                Some(s) if s.healthy => "up",
                                Some(_) => "down",
                            }
                        },
                        up: !drained && down_reason.is_none() && s.is_none_or(|s| s.healthy),
                        down_reason,
                        since_seconds: s.map(|s| s.last_change.elapsed().as_secs_f64()),
                        rtt_ms: s.and_then(|s| s.srtt).map(|d| d.as_secs_f64() * 1e3),
                        min_rtt_ms: s.and_then(|s| s.min_rtt).map(|d| d.as_secs_f64() * 1e3),
                        loss: s.map_or(0.0, |s| s.loss),
                        probes: s.map_or(0, |s| s.probes),
                        rtt_histogram: self
                            .failover
                            .rtt_histograms
                            .get(&p.name)
                            .copied()
                            .unwrap_or_default(),
                    }
                })
                .collect();
        view.fallbacks = self.failover.fallbacks;
        *self.view.write().expect("view lock") = Arc::new(view);
    }

    /// A watched next hop appeared, changed or went: compile again.
    pub fn neighbours_changed(&mut self, rx: &mut mpsc::Receiver<()>) {
        while rx.try_recv().is_ok() {}
        match self.change(self.source.text.clone(), self.applied.state.clone()) {
            Ok(c) if !c.is_empty() => info!(
                "neighbour change: {} written, {} removed",
                c.written, c.removed
            ),
            Ok(_) => {}
            Err(e) => error!("neighbour change: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::health::Health;

    /// Drain lives in one place, the state: a drained PoP is down for the
    /// methods whatever its probes say, and up again (with its probes'
    /// verdict) when undrained.
    #[test]
    fn drained_and_unresolved_pops_are_down_for_the_methods() {
        let text = "[[ports]]\ninterface = \"bb0\"\nrole = \"backbone\"\n\n[[pops]]\nname = \"a\"\ninterface = \"bb0\"\nmac = \"02:00:00:00:00:01\"\n\n[[pops]]\nname = \"b\"\ninterface = \"bb0\"\nmac = \"02:00:00:00:00:02\"\n\n[[pops]]\nname = \"c\"\ninterface = \"bb0\"\nmac = \"02:00:00:00:00:03\"\n";
        let plan = crate::config::parse(text).unwrap();
        let t0 = Instant::now();
        let mut probed = Health::new(2, 3, t0);
        probed.record(Some(Duration::from_millis(7)), t0);
        let health = BTreeMap::from([("a".to_string(), probed.status())]);
        let mut drained = BTreeSet::from(["a".to_string()]);
        let unresolved = BTreeSet::from([2]);
        let view =
            |drained: &BTreeSet<String>, i| health_of(&plan, drained, &health, &unresolved)(i);
        assert_eq!(view(&drained, 0), PopHealth::DOWN, "drained, probes say up");
        assert_eq!(view(&drained, 1), PopHealth::UP, "no probe");
        assert_eq!(view(&drained, 2), PopHealth::DOWN, "next hop unresolved");
        drained.clear();
        assert_eq!(
            view(&drained, 0),
            PopHealth {
                up: true,
                rtt: Some(Duration::from_millis(7))
            }
        );
    }

    /// A table that starts to fall back is one event, whatever emptied it
    /// (a probe or a drain); one that stays in fallback is not another.
    #[test]
    fn a_policy_left_without_members_is_one_fallback_event() {
        let text = "[[ports]]\ninterface = \"bb0\"\nrole = \"backbone\"\n\n[[pops]]\nname = \"a\"\ninterface = \"bb0\"\nmac = \"02:00:00:00:00:01\"\n\n[[policies]]\nname = \"only-a\"\nmethod = \"priority\"\nfallback = \"pass\"\nmembers = [{ pop = \"a\" }]\n\n[[prefixes]]\nprefix = \"198.51.100.0/24\"\npolicy = \"only-a\"\n";
        let plan = crate::config::parse(text).unwrap();
        let layout = crate::policy::Layout::new(&plan);
        let choices = crate::policy::Choices::default();
        let up = resolve::resolve(&plan, &layout, &|_| PopHealth::UP, &choices);
        let drained = resolve::resolve(&plan, &layout, &|_| PopHealth::DOWN, &choices);
        assert!(new_fallbacks(&up, &up, &|_| false).is_empty());
        assert_eq!(
            new_fallbacks(&up, &drained, &|_| false),
            [
                "policy only-a: every member is down or drained; its traffic falls back to the kernel (pass)"
            ]
        );
        assert!(new_fallbacks(&drained, &drained, &|_| false).is_empty());
        let mut count = 0;
        let mut events = events::Events::default();
        record_fallbacks(&mut count, &mut events, &up, &drained, &|_| false);
        assert_eq!(count, 1);
        assert_eq!(events.recent(10).len(), 1);
        // And back: one event that it ended, not counted as a fallback.
        assert!(ended_fallbacks(&up, &drained).is_empty());
        record_fallbacks(&mut count, &mut events, &drained, &up, &|_| false);
        assert_eq!(count, 1);
        let recent = events.recent(10);
        assert_eq!(
            recent.last().map(|r| r.message.as_str()),
            Some("policy only-a: a member is up again; its traffic no longer falls back")
        );
    }
}
