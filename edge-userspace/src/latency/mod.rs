//! Customer latency, the pure part (docs/monitoring.md): the kernel's
//! per-slot round-trip histograms ([`edge_common::rtt`]) turned into what
//! operators read: samples, min, p50/p90/p99 and the share above an
//! objective ([`Histogram`]); a history of what each period added, so a
//! report can cover the last N minutes ([`History`]); and the objective
//! watch that raises a degradation after a registration or region stays
//! past its objective for a while, and a recovery when it comes back
//! ([`Watch`]). No maps, no clock: time comes in as arguments.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use edge_common::rtt::{BUCKETS, bucket_bounds};

pub mod monitor;
pub mod report;

/// Sample counts by bucket (`edge_common::rtt::bucket`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: BTreeMap<u32, u64>,
}

impl Histogram {
    pub fn from_buckets(buckets: BTreeMap<u32, u64>) -> Self {
        let mut h = Self::default();
        for (b, n) in buckets {
            h.add_bucket(b, n);
        }
        h
    }

    pub fn add_bucket(&mut self, bucket: u32, n: u64) {
        if n != 0 {
            *self.buckets.entry(bucket.min(BUCKETS - 1)).or_default() += n;
        }
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (&b, &n) in &other.buckets {
            self.add_bucket(b, n);
        }
    }

    /// What `self` (a later cumulative reading) holds beyond `earlier`; a
    /// bucket that went down (the slot was cleared and reused) counts
    /// from zero.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut out = Histogram::default();
        for (&b, &n) in &self.buckets {
            let before = earlier.buckets.get(&b).copied().unwrap_or(0);
            out.add_bucket(b, if n >= before { n - before } else { n });
        }
        out
    }

    pub fn buckets(&self) -> &BTreeMap<u32, u64> {
        &self.buckets
    }

    pub fn count(&self) -> u64 {
        self.buckets.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The lower bound of the fastest bucket with a sample.
    pub fn min(&self) -> Option<Duration> {
        let (&b, _) = self.buckets.iter().next()?;
        Some(Duration::from_nanos(bucket_bounds(b).0))
    }

    /// The `q` quantile (0-1), interpolated linearly inside its bucket
    /// (samples taken as spread evenly over the bucket): within half a
    /// bucket's width (at most 1.6 % of the value) of the true one.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the sample sought, 0-based, as a real number.
        let rank = q.clamp(0.0, 1.0) * (total - 1) as f64;
        let mut below = 0u64;
        for (&b, &n) in &self.buckets {
            if (below + n) as f64 > rank {
                let (low, high) = bucket_bounds(b);
                // The open-ended last bucket reports its lower bound.
                if high == u64::MAX {
                    return Some(Duration::from_nanos(low));
                }
                let within = (rank - below as f64 + 0.5) / n as f64;
                let ns = low as f64 + within * (high - low) as f64;
                return Some(Duration::from_nanos(ns as u64));
            }
            below += n;
        }
        self.buckets
            .keys()
            .next_back()
            .map(|&b| Duration::from_nanos(bucket_bounds(b).0))
    }

    /// Samples at or below each bound of `les` (ascending), as a
    /// Prometheus histogram counts them: a bucket counts toward a bound its
    /// upper end does not pass (buckets are at most 3 % wide, so a sample
    /// just below a bound may count only toward the next one).
    pub fn cumulative(&self, les: &[Duration]) -> Vec<u64> {
        les.iter()
            .map(|le| {
                let le = le.as_nanos() as u64;
                self.buckets
                    .iter()
                    .take_while(|(b, _)| bucket_bounds(**b).1 <= le)
                    .map(|(_, n)| n)
                    .sum()
            })
            .collect()
    }

    /// The sum of the samples, each taken at its bucket's midpoint (the
    /// open-ended last bucket at its lower bound), for a Prometheus `_sum`.
    pub fn approximate_sum(&self) -> Duration {
        let ns: f64 = self
            .buckets
            .iter()
            .map(|(&b, &n)| {
                let (low, high) = bucket_bounds(b);
                let mid = if high == u64::MAX {
                    low as f64
                } else {
                    (low as f64 + high as f64) / 2.0
                };
                mid * n as f64
            })
            .sum();
        Duration::from_nanos(ns as u64)
    }

    /// The share (0-1) of samples above `threshold`, a bucket that
    /// straddles it counted in proportion.
    pub fn share_above(&self, threshold: Duration) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let t = threshold.as_nanos() as u64;
        let mut above = 0.0;
        for (&b, &n) in &self.buckets {
            let (low, high) = bucket_bounds(b);
            if low >= t {
                above += n as f64;
            } else if high > t && high != u64::MAX {
                above += n as f64 * (high - t) as f64 / (high - low) as f64;
            } else if high == u64::MAX {
                above += n as f64;
            }
        }
        above / total as f64
    }
}

/// What each period added to each slot's histogram, for the last
/// `keep` periods: a report over the last N minutes sums the periods it
/// covers. Periods hold only slots that got samples.
#[derive(Debug)]
pub struct History {
    period: Duration,
    keep: usize,
    /// The cumulative reading the last period was measured against;
    /// `None` before the first reading.
    last: Option<BTreeMap<u32, Histogram>>,
    /// (end of the period, what it added), oldest first.
    periods: VecDeque<(Duration, BTreeMap<u32, Histogram>)>,
    /// When the first reading was taken.
    since: Option<Duration>,
}

impl History {
    /// A history of `retain` in periods of `period`.
    pub fn new(period: Duration, retain: Duration) -> Self {
        let keep = (retain.as_nanos() / period.as_nanos().max(1)).max(1) as usize;
        Self {
            period,
            keep,
            last: None,
            periods: VecDeque::new(),
            since: None,
        }
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// The longest span a report can cover.
    pub fn retained(&self) -> Duration {
        self.period * self.keep as u32
    }

    /// Takes the cumulative reading of every slot at `now` (time since any
    /// fixed start): the period ending now gets what was added since the
    /// previous reading. The first reading only sets the base.
    pub fn record(&mut self, now: Duration, reading: BTreeMap<u32, Histogram>) {
        // The first reading is only the base (what the kernel held before
        // this history began), even when it is empty: a fresh map's
        // first samples are the next period's.
        let Some(last) = self.last.replace(reading) else {
            self.since = Some(now);
            return;
        };
        let reading = self.last.as_ref().expect("just set");
        let mut added = BTreeMap::new();
        for (slot, h) in reading {
            let d = match last.get(slot) {
                Some(before) => h.since(before),
                None => h.clone(),
            };
            if !d.is_empty() {
                added.insert(*slot, d);
            }
        }
        self.periods.push_back((now, added));
        while self.periods.len() > self.keep {
            self.periods.pop_front();
        }
    }

    /// How long this history has been recording at `now` (zero before
    /// its first reading).
    pub fn recording(&self, now: Duration) -> Duration {
        self.since.map_or(Duration::ZERO, |s| now.saturating_sub(s))
    }

    /// Forgets `slot`'s past periods (the slot was given to another
    /// prefix: they are not the new prefix's). The last reading stays the
    /// base the next period is measured against, so the next period holds
    /// only what arrives from now on.
    pub fn forget(&mut self, slot: u32) {
        for (_, p) in &mut self.periods {
            p.remove(&slot);
        }
    }

    /// What the most recent period added, by slot.
    pub fn last_period(&self) -> Option<&BTreeMap<u32, Histogram>> {
        self.periods.back().map(|(_, p)| p)
    }

    /// Every slot's samples over the periods that ended within `span`
    /// before `now`.
    pub fn window(&self, now: Duration, span: Duration) -> BTreeMap<u32, Histogram> {
        let from = now.saturating_sub(span);
        let mut out: BTreeMap<u32, Histogram> = BTreeMap::new();
        for (end, p) in &self.periods {
            if *end <= from {
                continue;
            }
            for (slot, h) in p {
                out.entry(*slot).or_default().merge(h);
            }
        }
        out
    }
}

/// A latency objective: the p90 of a group's samples over `window` stays
/// at or below `p90`; a breach that lasts `hold` is a degradation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub p90: Duration,
    pub window: Duration,
    pub hold: Duration,
    /// Fewer samples than this in the window say nothing either way.
    pub min_samples: u64,
}

/// A change of a group's state against its objective.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// `registration NAME` or `region NAME`.
    pub group: String,
    pub degraded: bool,
    /// The p90 that decided it, and the samples it came from.
    pub p90: Duration,
    pub samples: u64,
    pub objective: Duration,
}

#[derive(Clone, Copy, Debug, Default)]
struct GroupState {
    /// When the current breach began (None: within the objective).
    breach_since: Option<Duration>,
    degraded: bool,
}

/// Watches groups against their objectives.
#[derive(Debug, Default)]
pub struct Watch {
    groups: BTreeMap<String, GroupState>,
}

impl Watch {
    /// Evaluates `group`'s window histogram at `now`: a degradation once a
    /// breach has lasted `hold`, a recovery when a degraded group's p90 is
    /// back within the objective. Too few samples change nothing.
    pub fn evaluate(
        &mut self,
        now: Duration,
        group: &str,
        window: &Histogram,
        objective: &Objective,
    ) -> Option<Change> {
        let samples = window.count();
        if samples < objective.min_samples.max(1) {
            return None;
        }
        let p90 = window.quantile(0.9)?;
        let st = self.groups.entry(group.to_string()).or_default();
        let change = |degraded| Change {
            group: group.to_string(),
            degraded,
            p90,
            samples,
            objective: objective.p90,
        };
        if p90 > objective.p90 {
            let since = *st.breach_since.get_or_insert(now);
            if !st.degraded && now.saturating_sub(since) >= objective.hold {
                st.degraded = true;
                return Some(change(true));
            }
        } else {
            st.breach_since = None;
            if st.degraded {
                st.degraded = false;
                return Some(change(false));
            }
        }
        None
    }

    /// Whether `group` is degraded now.
    pub fn degraded(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|g| g.degraded)
    }

    /// Every group watched, and whether it is degraded.
    pub fn groups(&self) -> impl Iterator<Item = (&str, bool)> {
        self.groups.iter().map(|(g, s)| (g.as_str(), s.degraded))
    }

    /// Drops groups no longer configured.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.groups.retain(|g, _| keep(g));
    }
}

#[cfg(test)]
mod tests;
