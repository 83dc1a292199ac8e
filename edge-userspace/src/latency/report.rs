//! The customer latency report: a window's per-slot histograms grouped by
//! prefix, registration or region, one row per group.

use std::{collections::BTreeMap, time::Duration};

use super::Histogram;

/// How rows are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Prefix,
    Registration,
    Region,
}

/// What a counter slot stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The prefix (the shared slot of prefixes without one of their own:
    /// `(shared)`).
    pub prefix: String,
    pub registration: String,
    /// The prefix's region path (`europe > ie`), if it has one.
    pub region: Option<String>,
}

/// The group name of prefixes without a region.
pub const NO_REGION: &str = "(none)";

/// The prefix and registration name of the counter slot shared by the
/// prefixes beyond the slots (their registrations mixed): reported, never
/// held to an objective.
pub const SHARED: &str = "(shared)";

/// One row of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The prefix, registration or region.
    pub key: String,
    pub samples: u64,
    pub min: Option<Duration>,
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    pub p99: Option<Duration>,
    /// The objective the share is measured against, if the group has one.
    pub objective: Option<Duration>,
    /// The share (0-1) of samples above the objective.
    pub above: Option<f64>,
}

/// The rows of `window` (slot → its samples) grouped `by`, in key order;
/// `objective` gives a group's objective (by registration for prefix and
/// registration rows, by region for region rows). Groups without samples
/// are left out; slots `slots` does not know are ignored.
pub fn rows(
    window: &BTreeMap<u32, Histogram>,
    slots: &BTreeMap<u32, Slot>,
    by: GroupBy,
    objective: impl Fn(&Slot) -> Option<Duration>,
) -> Vec<Row> {
    let mut groups: BTreeMap<String, (Histogram, Option<Duration>)> = BTreeMap::new();
    for (slot, h) in window {
        let Some(info) = slots.get(slot) else {
            continue;
        };
        let key = match by {
            GroupBy::Prefix => info.prefix.clone(),
            GroupBy::Registration => info.registration.clone(),
            GroupBy::Region => info.region.clone().unwrap_or_else(|| NO_REGION.into()),
        };
        let g = groups.entry(key).or_default();
        g.0.merge(h);
        if g.1.is_none() {
            g.1 = objective(info);
        }
    }
    groups
        .into_iter()
        .filter(|(_, (h, _))| !h.is_empty())
        .map(|(key, (h, objective))| Row {
            key,
            samples: h.count(),
            min: h.min(),
            p50: h.quantile(0.5),
            p90: h.quantile(0.9),
            p99: h.quantile(0.99),
            above: objective.map(|o| h.share_above(o)),
            objective,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use edge_common::rtt::bucket;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn hist(times_ms: &[u64]) -> Histogram {
        let mut h = Histogram::default();
        for t in times_ms {
            h.add_bucket(bucket(t * 1_000_000), 1);
        }
        h
    }

    #[test]
    fn rows_group_slots_by_prefix_registration_and_region() {
        let slot = |prefix: &str, reg: &str, region: Option<&str>| Slot {
            prefix: prefix.into(),
            registration: reg.into(),
            region: region.map(Into::into),
        };
        let slots = BTreeMap::from([
            (1, slot("192.0.2.0/25", "contoso", Some("europe > ie"))),
            (2, slot("2001:db8:c::/48", "contoso", Some("europe > de"))),
            (3, slot("198.51.100.0/24", "fabrikam", None)),
        ]);
        let window = BTreeMap::from([
            (1, hist(&[20, 20, 21])),
            (2, hist(&[80])),
            (3, hist(&[5, 5])),
            // A slot no prefix holds any more: ignored.
            (9, hist(&[1])),
        ]);
        let objective = |s: &Slot| (s.registration == "contoso").then_some(ms(40));
        let by_reg = rows(&window, &slots, GroupBy::Registration, objective);
        assert_eq!(by_reg.len(), 2);
        assert_eq!((by_reg[0].key.as_str(), by_reg[0].samples), ("contoso", 4));
        assert_eq!(by_reg[0].objective, Some(ms(40)));
        assert!((by_reg[0].above.unwrap() - 0.25).abs() < 1e-9);
        assert_eq!(
            (by_reg[1].key.as_str(), by_reg[1].above),
            ("fabrikam", None)
        );
        let by_prefix = rows(&window, &slots, GroupBy::Prefix, objective);
        assert_eq!(
            by_prefix.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            ["192.0.2.0/25", "198.51.100.0/24", "2001:db8:c::/48"]
        );
        let p50 = by_prefix[0].p50.unwrap();
        assert!(p50.abs_diff(ms(20)) < ms(1), "{p50:?}");
        let by_region = rows(&window, &slots, GroupBy::Region, |_| None);
        assert_eq!(
            by_region
                .iter()
                .map(|r| (r.key.as_str(), r.samples))
                .collect::<Vec<_>>(),
            [(NO_REGION, 2), ("europe > de", 1), ("europe > ie", 3)]
        );
    }

    #[test]
    fn prometheus_buckets_are_cumulative_and_the_sum_approximate() {
        let h = hist(&[1, 3, 3, 30, 3000]);
        let les = [ms(2), ms(5), ms(50), ms(10_000)];
        assert_eq!(h.cumulative(&les), [1, 3, 4, 5]);
        let sum = h.approximate_sum().as_secs_f64();
        assert!((sum - 3.037).abs() < 0.05 * 3.037, "{sum}");
    }
}
