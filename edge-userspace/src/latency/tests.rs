use std::{collections::BTreeMap, time::Duration};

use edge_common::rtt::bucket;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A histogram of the given round-trip times.
fn of(times: &[Duration]) -> Histogram {
    let mut h = Histogram::default();
    for t in times {
        h.add_bucket(bucket(t.as_nanos() as u64), 1);
    }
    h
}

/// `n` samples spread evenly over `lo..hi`.
fn spread(n: u64, lo: Duration, hi: Duration) -> Vec<Duration> {
    (0..n)
        .map(|i| lo + (hi - lo).mul_f64(i as f64 / n as f64))
        .collect()
}

fn close(a: Duration, b: Duration, tolerance: f64) -> bool {
    let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
    (a - b).abs() <= tolerance * b
}

#[test]
fn quantiles_are_within_the_bucket_resolution() {
    let times = spread(10_000, ms(1), ms(200));
    let h = of(&times);
    assert_eq!(h.count(), 10_000);
    for q in [0.5, 0.9, 0.99] {
        let exact = times[(q * 9_999.0) as usize];
        let got = h.quantile(q).unwrap();
        assert!(close(got, exact, 0.02), "q{q}: {got:?} vs {exact:?}");
    }
    assert!(h.min().unwrap() <= ms(1) && h.min().unwrap() > ms(1).mul_f64(0.96));
}

#[test]
fn one_fixed_delay_is_reported_within_two_milliseconds() {
    // The topology test's promise: p50 within ±2 ms of 20 ms and 80 ms
    // delays, plus a little jitter.
    for d in [20, 80] {
        let h = of(&spread(500, ms(d), ms(d) + Duration::from_micros(300)));
        let p50 = h.quantile(0.5).unwrap();
        assert!(p50.abs_diff(ms(d)) <= ms(2), "{d} ms: p50 {p50:?}");
    }
}

#[test]
fn the_share_above_an_objective_counts_straddling_buckets_in_part() {
    let h = of(&[ms(10), ms(20), ms(50), ms(100)]);
    assert_eq!(h.share_above(ms(5)), 1.0);
    assert_eq!(h.share_above(ms(200)), 0.0);
    let half = h.share_above(ms(30));
    assert!((half - 0.5).abs() < 1e-9, "{half}");
    assert_eq!(Histogram::default().share_above(ms(1)), 0.0);
    assert_eq!(Histogram::default().quantile(0.5), None);
}

#[test]
fn a_history_reports_what_each_window_added() {
    let mut hist = History::new(secs(10), secs(60));
    assert_eq!(hist.retained(), secs(60));
    let mut cumulative = Histogram::default();
    let reading = |h: &Histogram| BTreeMap::from([(7u32, h.clone())]);
    // The first reading is the base: samples from before edged looked.
    cumulative.merge(&of(&[ms(500); 3]));
    hist.record(secs(0), reading(&cumulative));
    // Then one sample of 20 ms per period for 9 periods.
    for i in 1..=9 {
        cumulative.merge(&of(&[ms(20)]));
        hist.record(secs(10 * i), reading(&cumulative));
    }
    let now = secs(90);
    assert_eq!(hist.window(now, secs(30))[&7].count(), 3);
    // Only 6 periods are kept.
    assert_eq!(hist.window(now, secs(3600))[&7].count(), 6);
    assert!(hist.window(now, secs(30))[&7].quantile(0.5).unwrap() < ms(21));
    // A slot given to another prefix starts over.
    hist.forget(7);
    assert!(hist.window(now, secs(3600)).is_empty());
    // A reading that went down (the kernel histogram was cleared) counts from zero.
    hist.record(secs(100), reading(&of(&[ms(30)])));
    assert_eq!(hist.window(secs(100), secs(10))[&7].count(), 1);
}

#[test]
fn an_objective_degrades_after_its_hold_and_recovers() {
    let objective = Objective {
        p90: ms(40),
        window: secs(60),
        hold: secs(30),
        min_samples: 10,
    };
    let mut w = Watch::default();
    let good = of(&[ms(20); 50]);
    let bad = of(&[ms(80); 50]);
    let few = of(&[ms(80); 5]);
    assert_eq!(
        w.evaluate(secs(0), "registration a", &good, &objective),
        None
    );
    // A breach, not held long enough yet.
    assert_eq!(
        w.evaluate(secs(10), "registration a", &bad, &objective),
        None
    );
    assert_eq!(
        w.evaluate(secs(30), "registration a", &bad, &objective),
        None
    );
    // Too few samples say nothing.
    assert_eq!(
        w.evaluate(secs(35), "registration a", &few, &objective),
        None
    );
    let c = w
        .evaluate(secs(40), "registration a", &bad, &objective)
        .expect("degraded after 30 s");
    assert!(c.degraded && c.p90 > ms(40) && c.samples == 50);
    assert!(w.degraded("registration a"));
    // Once: no second event while it stays degraded.
    assert_eq!(
        w.evaluate(secs(50), "registration a", &bad, &objective),
        None
    );
    let c = w
        .evaluate(secs(60), "registration a", &good, &objective)
        .expect("recovered");
    assert!(!c.degraded);
    // A breach interrupted by a good reading starts its hold again.
    assert_eq!(
        w.evaluate(secs(70), "registration a", &bad, &objective),
        None
    );
    assert_eq!(
        w.evaluate(secs(80), "registration a", &good, &objective),
        None
    );
    assert_eq!(
        w.evaluate(secs(105), "registration a", &bad, &objective),
        None
    );
    assert_eq!(
        w.evaluate(secs(120), "registration a", &bad, &objective),
        None
    );
    assert!(
        w.evaluate(secs(135), "registration a", &bad, &objective)
            .is_some()
    );
    // Groups are independent; dropped groups are forgotten.
    assert!(!w.degraded("region eu"));
    w.retain(|g| g != "registration a");
    assert!(!w.degraded("registration a"));
}

#[test]
fn a_fresh_maps_first_samples_count_after_an_empty_first_reading() {
    let mut hist = History::new(secs(1), secs(60));
    let reading = |h: &Histogram| BTreeMap::from([(3u32, h.clone())]);
    // edged's first reading of new maps: nothing yet. It is the base.
    hist.record(secs(0), BTreeMap::new());
    assert_eq!(hist.recording(secs(5)), secs(5));
    // The kernel's first samples are the next period's.
    hist.record(secs(1), reading(&of(&[ms(20); 4])));
    assert_eq!(hist.window(secs(1), secs(10))[&3].count(), 4);
    // Then only what each period added.
    hist.record(secs(2), reading(&of(&[ms(20); 6])));
    assert_eq!(hist.window(secs(2), secs(10))[&3].count(), 6);
}
