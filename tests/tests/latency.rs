//! Customer latency in the kernel program (issue 16), as packet tests: TCP
//! frames through BPF_PROG_TEST_RUN in both directions of a flow, with the
//! time between them made by the test. Every frame is still forwarded
//! exactly as without measurement (compared byte for byte); the samples
//! are read back from the histogram map, the sampling counters from theirs.
//!
//! Directions (fixtures/packet.toml): toward the customer, frames arrive on
//! the backbone port bb0 and go to PoP `cust` (peer0); from the customer,
//! they arrive on peer0 and go to the backbone exit `core` (bb0).

use std::{
    thread::sleep,
    time::{Duration, Instant},
};

use edge_common::{
    Action, Settings, map_names,
    rtt::{BUCKETS, bucket_bounds},
};
use edge_tests::{
    frames::{L4, Pkt, Segment},
    harness::{Harness, PACKET_CONFIG as CONFIG, latency::Latency, port_lab, port_mac},
    netns::in_netns,
};

const NH_CORE: [u8; 6] = [0x02, 0, 0, 0, 0xc0, 0x01];
const NH_CUST: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x01];

/// The customer host and the far end, per family; the customer's
/// registration.
const V4: Family = Family {
    customer: "192.0.2.10",
    remote: "198.18.0.7",
    registration: "cust-a",
};
const V6: Family = Family {
    customer: "2001:db8:c::10",
    remote: "2001:db8:99::7",
    registration: "cust-a6",
};

#[derive(Clone, Copy)]
struct Family {
    customer: &'static str,
    remote: &'static str,
    registration: &'static str,
}

/// The customer's port and the remote's.
const CPORT: u16 = 443;
const RPORT: u16 = 50000;

struct Lab {
    h: Harness,
    lat: Latency,
}

/// Runs `body` with the packet config loaded in a fresh namespace and
/// customer latency on (one timestamp sample per flow per `interval`);
/// `flows` sets the flow table's size.
fn with_latency(
    tag: &str,
    interval: Duration,
    flows: Option<u32>,
    on: bool,
    body: impl FnOnce(&mut Lab) + Send,
) {
    let (_lab, ns) = port_lab(tag);
    in_netns(&ns, || {
        // One CPU: per-CPU counters and the LRU's lists stay simple to reason about.
        let mut set = nix::sched::CpuSet::new();
        set.set(0).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
        let mut h = Harness::new_with(CONFIG, |l| {
            if let Some(n) = flows {
                l.map_max_entries(map_names::RTT_FLOWS, n);
            }
        });
        let lat = Latency::take(&mut h.ebpf).expect("latency maps");
        let s = h.tables.settings().unwrap();
        h.tables
            .set_settings(Settings {
                rtt: u8::from(on),
                rtt_interval_ns: interval.as_nanos() as u64,
                ..s
            })
            .unwrap();
        body(&mut Lab { h, lat })
    });
}

impl Lab {
    /// Sends `seg` toward the customer (remote → customer, arriving on
    /// bb0) and checks it leaves to PoP `cust` rewritten as usual, nothing more.
    fn toward(&self, f: Family, seg: Segment) {
        let pkt = Pkt::udp(f.remote, f.customer).with(|p| p.l4 = L4::Segment(seg));
        let (action, out) = self.h.run("bb0", &pkt.build());
        assert_eq!(action, Action::Redirect as u32, "toward the customer");
        assert_eq!(out, pkt.forwarded(port_mac("peer0"), NH_CUST, None));
    }

    /// Sends `seg` from the customer (arriving on peer0), its ports swapped
    /// into the customer's view: forwarded to the backbone exit as usual.
    fn from(&self, f: Family, seg: Segment) {
        let pkt = Pkt::udp(f.customer, f.remote).with(|p| p.l4 = L4::Segment(seg));
        let (action, out) = self.h.run("peer0", &pkt.build());
        assert_eq!(action, Action::Redirect as u32, "from the customer");
        assert_eq!(out, pkt.forwarded(port_mac("bb0"), NH_CORE, None));
    }

    fn stat(&self, name: &str) -> u64 {
        self.lat
            .stats()
            .unwrap()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("counter {name}"))
            .1
    }

    /// The samples of `registration`'s slot: (bucket low, bucket high) per
    /// sample, in bucket order.
    fn samples(&self, registration: &str) -> Vec<(Duration, Duration)> {
        let slot = self.h.slot(registration);
        let hist = self.lat.histograms().unwrap();
        let mut out = Vec::new();
        for (&b, &n) in hist.get(&slot).into_iter().flatten() {
            assert!(b < BUCKETS);
            let (lo, hi) = bucket_bounds(b);
            for _ in 0..n {
                out.push((Duration::from_nanos(lo), Duration::from_nanos(hi)));
            }
        }
        out
    }
}

/// A sample of a round trip the test made at least `at_least` long: its
/// bucket reaches past `at_least` and starts before `at_least` plus
/// generous slack (the machine may be busy).
fn assert_sample_at_least(sample: (Duration, Duration), at_least: Duration) {
    let (lo, hi) = sample;
    assert!(
        hi > at_least,
        "bucket {lo:?}..{hi:?} ends before {at_least:?}"
    );
    assert!(
        lo < at_least + Duration::from_millis(250),
        "bucket {lo:?}..{hi:?} far beyond {at_least:?}"
    );
}

/// Linux's SYN options: MSS, SACK permitted, timestamps, NOP, window scale
/// (a SYN's timestamps are not used; they are there to be ignored).
fn syn_options(seg: Segment, ts_val: u32) -> Segment {
    let mut ts = [8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    ts[2..6].copy_from_slice(&ts_val.to_be_bytes());
    seg.option(&[2, 4, 0x05, 0xb4, 4, 2])
        .option(&ts)
        .option(&[1, 3, 3, 7])
}

#[test]
fn handshakes_give_one_sample_per_role_and_family() {
    with_latency("rtt-hs", Duration::from_millis(100), None, true, |lab| {
        for (i, f) in [V4, V6].into_iter().enumerate() {
            let base = lab.stat("handshake_samples");
            // Customer as client: its SYN asks nothing of it; the SYN-ACK
            // toward it does, and its ACK answers.
            lab.from(f, syn_options(Segment::new(CPORT, RPORT, 100), 1).syn(None));
            assert_eq!(
                lab.stat("flows"),
                2 * i as u64,
                "a SYN from the customer creates no state"
            );
            lab.toward(
                f,
                syn_options(Segment::new(RPORT, CPORT, 7000), 9).syn(Some(101)),
            );
            assert_eq!(lab.stat("flows"), 2 * i as u64 + 1);
            sleep(Duration::from_millis(20));
            // An ACK of something else answers nothing.
            lab.from(f, Segment::new(CPORT, RPORT, 101).acking(6999));
            assert_eq!(lab.stat("handshake_samples"), base);
            lab.from(f, Segment::new(CPORT, RPORT, 101).acking(7001));
            assert_eq!(lab.stat("handshake_samples"), base + 1);
            // Its later packets acknowledge the same number: no second sample.
            lab.from(f, Segment::new(CPORT, RPORT, 101).acking(7001));
            assert_eq!(lab.stat("handshake_samples"), base + 1);

            // Customer as server: the SYN toward it asks, its SYN-ACK answers.
            lab.toward(
                f,
                syn_options(Segment::new(RPORT + 1, CPORT, 9000), 5).syn(None),
            );
            sleep(Duration::from_millis(30));
            lab.from(
                f,
                syn_options(Segment::new(CPORT, RPORT + 1, 500), 6).syn(Some(9001)),
            );
            assert_eq!(lab.stat("handshake_samples"), base + 2);

            let samples = lab.samples(f.registration);
            assert_eq!(samples.len(), 2, "{}: {samples:?}", f.registration);
            // In bucket order: the 20 ms round trip, then the 30 ms one.
            assert_sample_at_least(samples[0], Duration::from_millis(20));
            assert_sample_at_least(samples[1], Duration::from_millis(30));
        }
        assert_eq!(lab.stat("handshake_sent"), 4);
        assert_eq!(lab.stat("retransmitted") + lab.stat("ambiguous"), 0);
        assert_eq!(lab.stat("hist_full") + lab.stat("flow_failed"), 0);
    });
}

#[test]
fn a_retransmitted_handshake_gives_no_sample() {
    with_latency("rtt-karn", Duration::from_millis(100), None, true, |lab| {
        let f = V4;
        // The SYN-ACK toward a client, sent twice.
        let synack = Segment::new(RPORT, CPORT, 7000).syn(Some(101));
        lab.toward(f, synack);
        lab.toward(f, synack);
        assert_eq!(lab.stat("retransmitted"), 1);
        lab.from(f, Segment::new(CPORT, RPORT, 101).acking(7001));
        // The SYN toward a server, sent twice.
        let syn = Segment::new(RPORT + 1, CPORT, 9000).syn(None);
        lab.toward(f, syn);
        lab.toward(f, syn);
        lab.from(f, Segment::new(CPORT, RPORT + 1, 500).syn(Some(9001)));
        assert_eq!(lab.stat("retransmitted"), 2);
        assert_eq!(lab.stat("ambiguous"), 2);
        assert_eq!(lab.stat("handshake_samples"), 0);
        assert!(lab.samples(f.registration).is_empty());
        // A new connection on the same ports (another sequence number) is
        // measured again.
        lab.toward(f, Segment::new(RPORT, CPORT, 123_456).syn(Some(1)));
        lab.from(f, Segment::new(CPORT, RPORT, 1).acking(123_457));
        assert_eq!(lab.stat("handshake_samples"), 1);
    });
}

#[test]
fn timestamps_sample_a_long_flow_at_most_once_per_interval() {
    let interval = Duration::from_millis(50);
    with_latency("rtt-ts", interval, None, true, |lab| {
        let f = V4;
        // 5,000 data segments toward the customer, each echoed at once:
        // 10,000 packets.
        let t = Instant::now();
        for i in 0..5000u32 {
            let val = 1_000 + i;
            lab.toward(
                f,
                Segment::new(RPORT, CPORT, 1 + i * 100)
                    .acking(1)
                    .timestamps(val, 77),
            );
            lab.from(
                f,
                Segment::new(CPORT, RPORT, 1)
                    .acking(1 + i * 100)
                    .timestamps(88, val),
            );
        }
        let elapsed = t.elapsed();
        let samples = lab.stat("ts_samples");
        let allowed = (elapsed.as_nanos() / interval.as_nanos()) as u64 + 1;
        println!("10000 packets in {elapsed:?}: {samples} timestamp samples (at most {allowed})");
        assert!(
            samples >= 1 && samples <= allowed,
            "{samples} samples, at most {allowed}"
        );
        assert_eq!(lab.stat("ts_sent"), samples, "every value taken was echoed");
        assert_eq!(lab.samples(f.registration).len() as u64, samples);

        // The timestamps first without the two NOPs: read too; an echo
        // after a known wait gives its sample, a stale one nothing.
        sleep(interval);
        let mut ts = [8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        ts[2..6].copy_from_slice(&424_242u32.to_be_bytes());
        lab.toward(
            f,
            Segment::new(RPORT, CPORT, 1)
                .acking(1)
                .option(&ts)
                .option(&[1, 1]),
        );
        sleep(Duration::from_millis(40));
        lab.from(
            f,
            Segment::new(CPORT, RPORT, 1)
                .acking(1)
                .timestamps(88, 424_241),
        );
        assert_eq!(lab.stat("ts_samples"), samples);
        lab.from(
            f,
            Segment::new(CPORT, RPORT, 1)
                .acking(1)
                .timestamps(88, 424_242),
        );
        assert_eq!(lab.stat("ts_samples"), samples + 1);
        // Behind another option (a SACK block), which no common stack
        // sends: not looked for (docs/monitoring.md), no sample, still forwarded.
        sleep(interval);
        ts[2..6].copy_from_slice(&525_252u32.to_be_bytes());
        let sack = [5, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        lab.toward(
            f,
            Segment::new(RPORT, CPORT, 1)
                .acking(1)
                .option(&sack)
                .option(&ts),
        );
        lab.from(
            f,
            Segment::new(CPORT, RPORT, 1)
                .acking(1)
                .timestamps(88, 525_252),
        );
        assert_eq!(lab.stat("ts_samples"), samples + 1);
        let all = lab.samples(f.registration);
        let slowest = *all.last().unwrap();
        assert_sample_at_least(slowest, Duration::from_millis(40));
    });
}

#[test]
fn nothing_is_measured_when_latency_is_off() {
    with_latency("rtt-off", Duration::from_millis(100), None, false, |lab| {
        lab.toward(V4, Segment::new(RPORT, CPORT, 7000).syn(Some(101)));
        lab.from(V4, Segment::new(CPORT, RPORT, 101).acking(7001));
        lab.toward(
            V4,
            Segment::new(RPORT, CPORT, 7001)
                .acking(101)
                .timestamps(5, 6),
        );
        let stats = lab.lat.stats().unwrap();
        assert!(stats.iter().all(|(_, n)| *n == 0), "{stats:?}");
        assert_eq!(lab.lat.flows().0, 0);
        assert!(lab.lat.histograms().unwrap().is_empty());
    });
}

#[test]
fn a_full_flow_table_forgets_its_oldest_flows_and_keeps_measuring() {
    const SIZE: u32 = 16;
    const FLOWS: u16 = 200;
    with_latency(
        "rtt-lru",
        Duration::from_millis(100),
        Some(SIZE),
        true,
        |lab| {
            let f = V4;
            for i in 0..FLOWS {
                lab.toward(f, Segment::new(RPORT + i, CPORT, 7000).syn(Some(101)));
            }
            assert_eq!(lab.stat("flows"), u64::from(FLOWS), "every flow created");
            assert_eq!(lab.stat("flow_failed"), 0, "the LRU map makes room");
            let (held, size) = lab.lat.flows();
            assert_eq!(size, SIZE);
            assert!(
                held <= SIZE as usize,
                "{held} flows held in a table of {SIZE}"
            );
            // The first flow was evicted: its answer gives nothing.
            lab.from(f, Segment::new(CPORT, RPORT, 101).acking(7001));
            assert_eq!(lab.stat("handshake_samples"), 0);
            // The last one is still there.
            lab.from(f, Segment::new(CPORT, RPORT + FLOWS - 1, 101).acking(7001));
            assert_eq!(lab.stat("handshake_samples"), 1);
            assert_eq!(lab.samples(f.registration).len(), 1);
        },
    );
}
