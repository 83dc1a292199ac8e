//! What edged keeps of customer latency between reads of the kernel's
//! histograms: the [`History`] reports are cut from, and the [`Watch`] of
//! every registration and region against its objective. One `tick` per
//! period; everything else is a query.

use std::{collections::BTreeMap, time::Duration};

use super::{
    Change, Histogram, History, Objective, Watch,
    report::{GroupBy, NO_REGION, Row, SHARED, Slot, rows},
};

/// The objectives: per registration, and the default for registrations
/// without one of their own and for regions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Objectives {
    pub registrations: BTreeMap<String, Objective>,
    pub default: Option<Objective>,
}

impl Objectives {
    pub fn of_registration(&self, name: &str) -> Option<&Objective> {
        self.registrations.get(name).or(self.default.as_ref())
    }

    pub fn of_region(&self) -> Option<&Objective> {
        self.default.as_ref()
    }
}

/// History and watch together, and every sample since the monitor began
/// by registration and by region (the Prometheus histograms: they only
/// grow, whatever slots are given to other prefixes).
#[derive(Debug)]
pub struct Monitor {
    history: History,
    watch: Watch,
    totals: Totals,
}

/// Every sample since the monitor began, by registration and by region
/// (prefixes without a region under [`NO_REGION`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub registrations: BTreeMap<String, Histogram>,
    pub regions: BTreeMap<String, Histogram>,
}

impl Monitor {
    /// Reports can reach `retain` back, in steps of `period`.
    pub fn new(period: Duration, retain: Duration) -> Self {
        Self {
            history: History::new(period, retain),
            watch: Watch::default(),
            totals: Totals::default(),
        }
    }

    /// New timings: the report history starts over; the watch (degraded
    /// groups stay degraded until their samples say otherwise) and the
    /// totals (Prometheus counters never go back) are kept.
    pub fn retime(&mut self, period: Duration, retain: Duration) {
        self.history = History::new(period, retain);
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    pub fn watch(&self) -> &Watch {
        &self.watch
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Takes the kernel's cumulative reading at `now` and evaluates every
    /// registration and region with an objective over its window: the
    /// degradations and recoveries this tick.
    pub fn tick(
        &mut self,
        now: Duration,
        reading: BTreeMap<u32, Histogram>,
        slots: &BTreeMap<u32, Slot>,
        objectives: &Objectives,
    ) -> Vec<Change> {
        self.history.record(now, reading);
        if let Some(added) = self.history.last_period() {
            for (slot, h) in added {
                let Some(s) = slots.get(slot) else { continue };
                self.totals
                    .registrations
                    .entry(s.registration.clone())
                    .or_default()
                    .merge(h);
                self.totals
                    .regions
                    .entry(s.region.clone().unwrap_or_else(|| NO_REGION.into()))
                    .or_default()
                    .merge(h);
            }
        }
        let mut changes = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        let windows: BTreeMap<Duration, BTreeMap<u32, Histogram>> = objectives
            .registrations
            .values()
            .chain(objectives.default.iter())
            .map(|o| (o.window, self.history.window(now, o.window)))
            .collect();
        let mut registrations: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        let mut regions: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
        for (slot, s) in slots {
            registrations
                .entry(&s.registration)
                .or_default()
                .push(*slot);
            regions
                .entry(s.region.as_deref().unwrap_or(NO_REGION))
                .or_default()
                .push(*slot);
        }
        let merged = |window: &BTreeMap<u32, Histogram>, members: &[u32]| {
            let mut h = Histogram::default();
            for m in members {
                if let Some(x) = window.get(m) {
                    h.merge(x);
                }
            }
            h
        };
        for (name, members) in &registrations {
            // The shared slot mixes registrations: no verdict on it.
            if *name == SHARED {
                continue;
            }
            let Some(o) = objectives.of_registration(name) else {
                continue;
            };
            let group = format!("registration {name}");
            let h = merged(&windows[&o.window], members);
            changes.extend(self.watch.evaluate(now, &group, &h, o));
            groups.push(group);
        }
        if let Some(o) = objectives.of_region() {
            for (name, members) in &regions {
                if *name == NO_REGION {
                    continue;
                }
                let group = format!("region {name}");
                let h = merged(&windows[&o.window], members);
                changes.extend(self.watch.evaluate(now, &group, &h, o));
                groups.push(group);
            }
        }
        self.watch.retain(|g| groups.iter().any(|k| k == g));
        changes
    }

    /// Forgets a slot given to another prefix.
    pub fn forget(&mut self, slot: u32) {
        self.history.forget(slot);
    }

    /// The report over the last `span` before `now`.
    pub fn report(
        &self,
        now: Duration,
        span: Duration,
        slots: &BTreeMap<u32, Slot>,
        by: GroupBy,
        objectives: &Objectives,
    ) -> Vec<Row> {
        let window = self.history.window(now, span);
        rows(&window, slots, by, |s| match by {
            GroupBy::Region => objectives.of_region().map(|o| o.p90),
            _ => objectives.of_registration(&s.registration).map(|o| o.p90),
        })
    }

    /// Whether `group` (`registration NAME`, `region NAME`) is degraded.
    pub fn degraded(&self, group: &str) -> bool {
        self.watch.degraded(group)
    }
}

#[cfg(test)]
mod tests {
    use edge_common::rtt::bucket;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_registration_and_its_region_degrade_and_recover_with_their_samples() {
        let slots = BTreeMap::from([
            (
                1,
                Slot {
                    prefix: "192.0.2.0/25".into(),
                    registration: "near".into(),
                    region: Some("europe > ie".into()),
                },
            ),
            (
                2,
                Slot {
                    prefix: "192.0.2.128/25".into(),
                    registration: "far".into(),
                    region: None,
                },
            ),
            (
                0,
                Slot {
                    prefix: SHARED.into(),
                    registration: SHARED.into(),
                    region: None,
                },
            ),
        ]);
        let objective = Objective {
            p90: ms(40),
            window: Duration::from_secs(10),
            hold: Duration::from_secs(5),
            min_samples: 5,
        };
        let objectives = Objectives {
            registrations: BTreeMap::from([("near".to_string(), objective)]),
            default: Some(Objective {
                p90: ms(100),
                ..objective
            }),
        };
        let mut m = Monitor::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut cumulative = [
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        ];
        let mut events = Vec::new();
        // 40 s, one reading a second: near answers in 20 ms, then 80 ms
        // from 10 s to 25 s; far always in 60 ms (within the default 100).
        for t in 0..40u64 {
            let near = if (10..25).contains(&t) { 80 } else { 20 };
            for _ in 0..10 {
                cumulative[0].add_bucket(bucket(near * 1_000_000), 1);
                cumulative[1].add_bucket(bucket(60_000_000), 1);
                // The shared slot, far past every objective: no verdict.
                cumulative[2].add_bucket(bucket(900_000_000), 1);
            }
            let reading = BTreeMap::from([
                (1, cumulative[0].clone()),
                (2, cumulative[1].clone()),
                (0, cumulative[2].clone()),
            ]);
            for c in m.tick(Duration::from_secs(t), reading, &slots, &objectives) {
                events.push((t, c.group, c.degraded));
            }
        }
        // Degraded once the window's p90 passed 40 ms and stayed past it 5 s;
        // the region's objective (100 ms) is never passed.
        assert_eq!(events.len(), 2, "{events:?}");
        let (t, group, degraded) = &events[0];
        assert_eq!((group.as_str(), *degraded), ("registration near", true));
        assert!((15..=18).contains(t), "degraded at {t}");
        let (t, group, degraded) = &events[1];
        assert_eq!((group.as_str(), *degraded), ("registration near", false));
        assert!((25..=36).contains(t), "recovered at {t}");
        let report = m.report(
            Duration::from_secs(39),
            Duration::from_secs(5),
            &slots,
            GroupBy::Registration,
            &objectives,
        );
        // The shared slot is reported, with the default objective's share.
        assert_eq!(report.len(), 3);
        assert_eq!(
            (report[0].key.as_str(), report[0].samples),
            ("(shared)", 50)
        );
        let report = &report[1..];
        assert_eq!((report[0].key.as_str(), report[0].samples), ("far", 50));
        assert_eq!(report[0].objective, Some(ms(100)));
        assert!(report[1].p50.unwrap().abs_diff(ms(20)) < ms(1));
    }
}
