//! Customer latency as edged runs it (docs/monitoring.md): every
//! `[latency] period_ms` it reads the kernel's per-slot RTT histograms,
//! gives them to the [`Monitor`] with what each slot stands for now, turns
//! the monitor's degradations and recoveries into events, and publishes
//! what the metrics endpoint and `report customers` show.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use ipnet::IpNet;
use log::{Level, warn};

use super::Daemon;
use crate::{
    control::{CustomerRow, Customers, GroupBy},
    latency::{
        Histogram, Objective,
        monitor::{Monitor, Objectives},
        report::{SHARED, Slot},
    },
    metrics::CustomerFacts,
    plan::{LatencyPlan, Plan},
};

/// How often the flow table's fill is counted for the metrics (a walk over
/// its keys: cheap, but not every period of 100 ms).
const FLOWS_EVERY: Duration = Duration::from_secs(10);

/// What edged keeps of customer latency.
pub(super) struct CustomerLatency {
    /// The `[latency]` the monitor runs with; `None`: off.
    plan: Option<LatencyPlan>,
    monitor: Option<Monitor>,
    objectives: Objectives,
    /// What each counter slot stands for, as of view `generation`.
    slots: BTreeMap<u32, Slot>,
    generation: u64,
    started: Instant,
    /// When the next reading is due (time since `started`).
    due: Duration,
    /// Degradations and recoveries since edged started.
    degradations: u64,
    recoveries: u64,
    flows: Option<(u64, u64)>,
    flows_at: Option<Instant>,
    /// The last read failed (logged once until a read succeeds).
    failing: bool,
    /// For the metrics endpoint.
    facts: Arc<RwLock<Arc<CustomerFacts>>>,
}

impl CustomerLatency {
    pub(super) fn new() -> Self {
        Self {
            plan: None,
            monitor: None,
            objectives: Objectives::default(),
            slots: BTreeMap::new(),
            generation: 0,
            started: Instant::now(),
            due: Duration::ZERO,
            degradations: 0,
            recoveries: 0,
            flows: None,
            flows_at: None,
            failing: false,
            facts: Arc::default(),
        }
    }

    pub(super) fn facts(&self) -> Arc<RwLock<Arc<CustomerFacts>>> {
        self.facts.clone()
    }
}

/// The objectives `plan` sets: per registration, and `[latency]
/// rtt_p90_ms` for the rest and for regions.
fn objectives(plan: &Plan, l: &LatencyPlan) -> Objectives {
    let objective = |p90| Objective {
        p90,
        window: l.window,
        hold: l.hold,
        min_samples: l.min_samples,
    };
    Objectives {
        registrations: plan
            .registrations
            .iter()
            .filter_map(|r| Some((r.name.clone(), objective(r.rtt_p90?))))
            .collect(),
        default: l.rtt_p90.map(objective),
    }
}

/// What each counter slot of `view` stands for; a prefix's region from
/// `plan` (registered prefixes only carry one).
fn slots(plan: &Plan, view: &crate::desired::View) -> BTreeMap<u32, Slot> {
    let regions: BTreeMap<IpNet, String> = plan
        .prefixes
        .iter()
        .filter_map(|p| Some((p.net, p.region.as_ref()?.to_string())))
        .collect();
    let mut out: BTreeMap<u32, Slot> = view
        .prefixes
        .iter()
        .filter(|p| p.counter_slot != 0)
        .map(|p| {
            (
                p.counter_slot,
                Slot {
                    prefix: p.prefix.to_string(),
                    registration: p.registration.to_string(),
                    region: regions.get(&p.prefix).cloned(),
                },
            )
        })
        .collect();
    out.insert(
        0,
        Slot {
            prefix: SHARED.into(),
            registration: SHARED.into(),
            region: None,
        },
    );
    out
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3)
}

impl Daemon {
    /// The metrics' view of customer latency.
    pub fn customer_facts(&self) -> Arc<RwLock<Arc<CustomerFacts>>> {
        self.latency.facts()
    }

    /// Reads the kernel's histograms when a period has passed (called often
    /// from edged's loop; does nothing in between or when `[latency]` is off).
    pub fn latency_tick(&mut self) {
        let l = &mut self.latency;
        let plan = self.applied.plan.latency;
        if plan != l.plan {
            // On, off, or new timings: history and watch start over (the
            // kernel's histograms are kept; the next reading is the base).
            // New timings: the report history starts over; degraded groups
            // stay degraded and the totals keep counting (see
            // `Monitor::retime`). Off: everything goes.
            match (plan, l.monitor.as_mut()) {
                (Some(p), Some(m)) => {
                    if l.plan
                        .is_some_and(|o| o.period != p.period || o.retain != p.retain)
                    {
                        m.retime(p.period, p.retain);
                    }
                }
                (Some(p), None) => l.monitor = Some(Monitor::new(p.period, p.retain)),
                (None, _) => l.monitor = None,
            }
            l.generation = 0;
            l.plan = plan;
            l.due = Duration::ZERO;
        }
        let Some(lp) = plan else {
            if l.monitor.take().is_some() || l.facts.read().is_ok_and(|f| f.enabled) {
                *l.facts.write().unwrap_or_else(|e| e.into_inner()) = Arc::default();
            }
            return;
        };
        let now = l.started.elapsed();
        if now < l.due {
            return;
        }
        l.due = now + lp.period;
        l.objectives = objectives(&self.applied.plan, &lp);
        let view = self.view.read().expect("view lock").clone();
        if view.generation != l.generation {
            let new = slots(&self.applied.plan, &view);
            let mut freed = BTreeSet::new();
            if let Some(m) = l.monitor.as_mut() {
                for (slot, old) in &l.slots {
                    match new.get(slot) {
                        Some(s) if s == old => {}
                        Some(_) => m.forget(*slot),
                        None => {
                            m.forget(*slot);
                            freed.insert(*slot);
                        }
                    }
                }
            }
            // Slots no prefix holds any more: their buckets go, so the
            // histogram map keeps room for the slots in use.
            if !freed.is_empty()
                && let Err(e) = self.dp.latency.clear_slots(&freed)
            {
                warn!(
                    "customer latency: clearing {} freed slots: {e}",
                    freed.len()
                );
            }
            l.slots = new;
            l.generation = view.generation;
        }
        let reading = match self.dp.latency.histograms() {
            Ok(h) => {
                l.failing = false;
                h.into_iter()
                    .map(|(slot, b)| (slot, Histogram::from_buckets(b)))
                    .collect()
            }
            Err(e) => {
                if !l.failing {
                    warn!(
                        "customer latency: reading the kernel's histograms failed (retried every period): {e}"
                    );
                }
                l.failing = true;
                return;
            }
        };
        let monitor = l
            .monitor
            .get_or_insert_with(|| Monitor::new(lp.period, lp.retain));
        let changes = monitor.tick(now, reading, &l.slots, &l.objectives);
        let mut records = Vec::new();
        for c in changes {
            let (level, text) = if c.degraded {
                l.degradations += 1;
                (Level::Warn, "degraded")
            } else {
                l.recoveries += 1;
                (Level::Info, "recovered")
            };
            records.push((
                level,
                format!(
                    "{} {text}: customer RTT p90 {:.1} ms over the last {} s ({} samples), objective {:.1} ms",
                    c.group,
                    c.p90.as_secs_f64() * 1e3,
                    lp.window.as_secs(),
                    c.samples,
                    c.objective.as_secs_f64() * 1e3
                ),
            ));
        }
        if l.flows_at.is_none_or(|t| t.elapsed() >= FLOWS_EVERY) {
            let (n, limit) = self.dp.latency.flows();
            l.flows = Some((n as u64, u64::from(limit)));
            l.flows_at = Some(Instant::now());
        }
        let counters = self.dp.latency.stats().unwrap_or_default();
        let monitor = l.monitor.as_ref().expect("created above");
        let facts = CustomerFacts {
            enabled: true,
            totals: monitor.totals().clone(),
            groups: monitor
                .watch()
                .groups()
                .map(|(g, d)| (g.to_string(), d))
                .collect(),
            degradations: l.degradations,
            recoveries: l.recoveries,
            counters,
            flows: l.flows,
        };
        *l.facts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(facts);
        for (level, text) in records {
            self.events.record_at(level, "latency", text);
        }
    }

    /// `report_customers`.
    pub(super) fn report_customers(&self, by: GroupBy, since_seconds: u64) -> Customers {
        let l = &self.latency;
        let (counters, flows, flow_limit) = match l.plan {
            Some(_) => {
                let (n, limit) = self.dp.latency.flows();
                (
                    self.dp.latency.stats().unwrap_or_default(),
                    n as u64,
                    u64::from(limit),
                )
            }
            None => (Vec::new(), 0, 0),
        };
        let mut out = Customers {
            by,
            enabled: l.plan.is_some(),
            counters: counters
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            flows,
            flow_limit,
            degraded: Vec::new(),
            period_seconds: l.plan.map_or(0.0, |p| p.period.as_secs_f64()),
            covered_seconds: 0.0,
            since_seconds,
            rows: Vec::new(),
        };
        let (Some(_), Some(m)) = (l.plan, l.monitor.as_ref()) else {
            return out;
        };
        let now = l.started.elapsed();
        let span = Duration::from_secs(since_seconds);
        out.covered_seconds = span
            .min(m.history().retained())
            .min(m.history().recording(now))
            .as_secs_f64();
        out.degraded = m
            .watch()
            .groups()
            .filter(|(_, d)| *d)
            .map(|(g, _)| g.to_string())
            .collect();
        out.rows = m
            .report(now, span, &l.slots, by.into(), &l.objectives)
            .into_iter()
            .map(|r| {
                let degraded = match by {
                    GroupBy::Prefix => None,
                    GroupBy::Registration => r
                        .objective
                        .map(|_| m.degraded(&format!("registration {}", r.key))),
                    GroupBy::Region => r
                        .objective
                        .map(|_| m.degraded(&format!("region {}", r.key))),
                };
                CustomerRow {
                    key: r.key,
                    samples: r.samples,
                    min_ms: ms(r.min),
                    p50_ms: ms(r.p50),
                    p90_ms: ms(r.p90),
                    p99_ms: ms(r.p99),
                    objective_ms: ms(r.objective),
                    above_objective: r.above.map(|a| (a * 1e4).round() / 1e4),
                    degraded,
                }
            })
            .collect();
        out
    }
}
