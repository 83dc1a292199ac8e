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
    Action, Settings, flow_hash_v4, map_names,
    rtt::{BUCKETS, bucket_bounds, gate},
};
use edge_tests::{
    frames::{L4, Pkt, Segment},
    harness::{
        Harness, PACKET_CONFIG as CONFIG,
        latency::{self, Latency},
        port_lab, port_mac,
    },
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

    /// [`Lab::toward`] without data: a pure ACK.
    fn toward_bare(&self, f: Family, seg: Segment) {
        let pkt = Pkt::udp(f.remote, f.customer).with(|p| {
            p.l4 = L4::Segment(seg);
            p.payload = Vec::new();
        });
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

        // A new flow. A value awaiting its echo holds the flow's place: a
        // newer one, even past the interval, is not taken meanwhile.
        let seg = |ts: u32| {
            Segment::new(RPORT + 9, CPORT, 1)
                .acking(1)
                .timestamps(ts, 0)
        };
        let echo = |ts: u32| {
            Segment::new(CPORT, RPORT + 9, 1)
                .acking(1)
                .timestamps(0, ts)
        };
        let (sent, got) = (lab.stat("ts_sent"), lab.stat("ts_samples"));
        lab.toward(f, seg(10));
        sleep(interval);
        lab.toward(f, seg(11));
        assert_eq!(lab.stat("ts_sent"), sent + 1);
        lab.from(f, echo(11));
        assert_eq!(lab.stat("ts_samples"), got);
        lab.from(f, echo(10));
        assert_eq!(lab.stat("ts_samples"), got + 1);
        // Only the first segment with a value is taken: 13 is first seen
        // within 12's interval, so a later segment still carrying 13 is
        // not taken (its echo may come from the first one); 14 is.
        lab.toward(f, seg(12));
        assert_eq!(lab.stat("ts_sent"), sent + 2);
        lab.toward(f, seg(13));
        lab.from(f, echo(12));
        assert_eq!(lab.stat("ts_samples"), got + 2);
        sleep(interval);
        lab.toward(f, seg(13));
        assert_eq!(lab.stat("ts_sent"), sent + 2);
        lab.toward(f, seg(14));
        assert_eq!(lab.stat("ts_sent"), sent + 3);
    });
}

/// The gate of the IPv4 flow customer:`cport` ↔ remote:`rport`: by the
/// flow hash of the customer's packets, as the forwarder computes it.
fn gate_of(f: Family, cport: u16, rport: u16) -> u32 {
    let octets = |a: &str| a.parse::<std::net::Ipv4Addr>().unwrap().octets();
    let [c, r] = [cport, rport].map(u16::to_be_bytes);
    gate(flow_hash_v4(
        octets(f.customer),
        octets(f.remote),
        6,
        u32::from_ne_bytes([c[0], c[1], r[0], r[1]]),
    ))
}

/// With the coarse clock kept (as edged keeps it), packets that can
/// neither give nor ask for a sample stop at the gate: toward the
/// customer nothing is looked at before the flow's interval has passed by
/// that clock (a clock nobody moves takes nothing, however much time
/// really passed); once it has, the first packet arms the gate and the
/// next new value is taken. From the customer, only what answers goes on,
/// also when two flows of one gate await answers at once.
#[test]
fn the_coarse_clock_and_the_gates_decide_what_is_looked_at() {
    let interval = Duration::from_millis(50);
    with_latency("rtt-clock", interval, None, true, |lab| {
        let f = V4;
        let clock = latency::Clock::take(&mut lab.h.ebpf).expect("the clock map");
        let tick = || clock.set(latency::monotonic_ns());
        let seg = |rport: u16, ts: u32| Segment::new(rport, CPORT, 1).acking(1).timestamps(ts, 0);
        let echo = |rport: u16, ts: u32| Segment::new(CPORT, rport, 1).acking(1).timestamps(0, ts);
        tick();
        // Pure ACKs ask nothing (the customer echoes their value only when
        // it next sends), however new their values: nor do they arm.
        lab.toward_bare(f, seg(RPORT, 98));
        lab.toward_bare(f, seg(RPORT, 99));
        assert_eq!(lab.stat("ts_sent"), 0, "pure ACKs take nothing");
        // A new flow: the first data segment arms its pace, a second with
        // the same value is not the first to carry it, the next value is
        // taken.
        lab.toward(f, seg(RPORT, 100));
        lab.toward(f, seg(RPORT, 100));
        assert_eq!(lab.stat("ts_sent"), 0, "arming takes nothing");
        lab.toward(f, seg(RPORT, 101));
        assert_eq!(lab.stat("ts_sent"), 1);
        // An echo of another value answers nothing; the awaited one does.
        lab.from(f, echo(RPORT, 100));
        assert_eq!(lab.stat("ts_samples"), 0);
        lab.from(f, echo(RPORT, 101));
        assert_eq!(lab.stat("ts_samples"), 1);
        // The interval really passes, but the clock stands still (nobody
        // keeps it): nothing is looked at.
        sleep(interval + Duration::from_millis(10));
        lab.toward(f, seg(RPORT, 104));
        lab.toward(f, seg(RPORT, 105));
        assert_eq!(lab.stat("ts_sent"), 1, "a standing clock takes nothing");
        // Kept again: the first packet arms, the next new value is taken.
        tick();
        lab.toward(f, seg(RPORT, 106));
        lab.toward(f, seg(RPORT, 106));
        assert_eq!(lab.stat("ts_sent"), 1);
        lab.toward(f, seg(RPORT, 107));
        assert_eq!(lab.stat("ts_sent"), 2);
        lab.from(f, echo(RPORT, 107));
        assert_eq!(lab.stat("ts_samples"), 2);

        // A handshake goes past the gate whatever the clock; of the
        // customer's ACKs only the one acknowledging the SYN-ACK answers.
        lab.toward(f, Segment::new(RPORT + 1, CPORT, 7000).syn(Some(1)));
        assert_eq!(lab.stat("handshake_sent"), 1);
        lab.from(f, Segment::new(CPORT, RPORT + 1, 1).acking(6000));
        assert_eq!(lab.stat("handshake_samples"), 0);
        lab.from(f, Segment::new(CPORT, RPORT + 1, 1).acking(7001));
        assert_eq!(lab.stat("handshake_samples"), 1);

        // Two flows of one gate awaiting an echo each: the gate keeps the
        // later one's value only, yet both answers give their sample.
        let a = (CPORT, RPORT + 100);
        let b = (CPORT..CPORT + 64)
            .flat_map(|c| (1..u16::MAX).map(move |r| (c, r)))
            .find(|&(c, r)| (c, r) != a && gate_of(f, c, r) == gate_of(f, a.0, a.1))
            .expect("two flows sharing a gate");
        let (sent, got) = (lab.stat("ts_sent"), lab.stat("ts_samples"));
        for ((c, r), val) in [(a, 500), (b, 900)] {
            for v in [val, val + 1] {
                lab.toward(f, Segment::new(r, c, 1).acking(1).timestamps(v, 0));
            }
        }
        assert_eq!(lab.stat("ts_sent"), sent + 2);
        for ((c, r), val) in [(a, 501), (b, 901)] {
            lab.from(f, Segment::new(c, r, 1).acking(1).timestamps(0, val));
        }
        assert_eq!(lab.stat("ts_samples"), got + 2);
        assert_eq!(lab.samples(f.registration).len() as u64, got + 2 + 1);
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

// ---------------------------------------------------------------------------
// Real TCP stacks through the program attached to veths: a remote host on
// the backbone side, two customer hosts on two peering ports, each behind
// a delay line (these machines have no netem) that holds frames toward the
// customer for a known time. The histograms must show each delay.
// ---------------------------------------------------------------------------

mod real {
    use std::{
        io::{Read as _, Write as _},
        net::{SocketAddr, TcpListener, TcpStream},
        time::{Duration, Instant},
    };

    use aya::programs::{Xdp, XdpMode};
    use edge_common::{Settings, prog_names};
    use edge_tests::{
        delayline::DelayLine,
        harness::{latency::Latency, load, maps::prefix_slot},
        netns::{Lab, in_netns},
        topology::attach_pass,
    };
    use edge_userspace::latency::Histogram;

    pub(super) const REMOTE_MAC: &str = "02:00:00:00:71:01";
    pub(super) const EDGE_BB_MAC: &str = "02:00:00:00:71:fe";
    const EDGE_P0_MAC: &str = "02:00:00:00:72:fe";
    const EDGE_P1_MAC: &str = "02:00:00:00:73:fe";
    const NEAR_MAC: &str = "02:00:00:00:72:01";
    const FAR_MAC: &str = "02:00:00:00:73:01";
    pub(super) const REMOTE: &str = "198.18.0.1";
    pub(super) const NEAR: &str = "192.0.2.10";
    pub(super) const FAR: &str = "192.0.2.140";

    pub(super) fn config() -> String {
        format!(
            r#"
[[ports]]
interface = "bb0"
role = "backbone"
[[ports]]
interface = "peer0"
role = "peering"
[[ports]]
interface = "peer1"
role = "peering"

[forwarding]
backbone_exit = "remote"

[[pops]]
name = "remote"
interface = "bb0"
mac = "{REMOTE_MAC}"
[[pops]]
name = "near"
interface = "peer0"
mac = "{NEAR_MAC}"
[[pops]]
name = "far"
interface = "peer1"
mac = "{FAR_MAC}"

[[prefixes]]
prefix = "192.0.2.0/25"
registration = "near"
pop = "near"
[[prefixes]]
prefix = "192.0.2.128/25"
registration = "far"
pop = "far"
"#
        )
    }

    /// The longest the traffic of one customer may take.
    const TRAFFIC_DEADLINE: Duration = Duration::from_secs(60);

    /// Accepts one connection on a non-blocking listener before `deadline`.
    fn accept(server: &TcpListener, deadline: Instant) -> TcpStream {
        loop {
            match server.accept() {
                Ok((c, _)) => {
                    c.set_nonblocking(false).unwrap();
                    return c;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "no connection before the deadline"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// Sends `bytes` over `n` connections from the remote to a customer's
    /// listener (the customer as server: handshake samples at the SYN,
    /// timestamp samples on the data), then `n` the other way round (the
    /// customer as client, data still toward it). Bounded by timeouts.
    pub(super) fn traffic(remote_ns: &str, cust_ns: &str, cust: &str, n: usize, bytes: usize) {
        let cust_addr: SocketAddr = format!("{cust}:8080").parse().unwrap();
        let remote_addr: SocketAddr = format!("{REMOTE}:9090").parse().unwrap();
        let deadline = Instant::now() + TRAFFIC_DEADLINE;
        let listen = |ns: &str, addr| {
            in_netns(ns, || {
                let l = TcpListener::bind(addr).unwrap();
                l.set_nonblocking(true).unwrap();
                l
            })
        };
        std::thread::scope(|s| {
            // The customer's server: reads everything each client sends.
            let server = listen(cust_ns, cust_addr);
            s.spawn(move || {
                for _ in 0..n {
                    let mut c = accept(&server, deadline);
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut buf = [0u8; 65536];
                    while let Ok(k) = c.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                    }
                }
            });
            in_netns(remote_ns, || {
                for _ in 0..n {
                    let mut c = TcpStream::connect_timeout(&cust_addr, Duration::from_secs(5))
                        .expect("remote → customer connect");
                    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
                    c.write_all(&vec![7u8; bytes]).unwrap();
                }
            });
            // The remote's server: sends `bytes` to each customer client.
            let server = listen(remote_ns, remote_addr);
            s.spawn(move || {
                for _ in 0..n {
                    let mut c = accept(&server, deadline);
                    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
                    c.write_all(&vec![9u8; bytes]).unwrap();
                }
            });
            in_netns(cust_ns, || {
                for _ in 0..n {
                    let mut c = TcpStream::connect_timeout(&remote_addr, Duration::from_secs(5))
                        .expect("customer → remote connect");
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut buf = vec![0u8; bytes];
                    c.read_exact(&mut buf).expect("data from the remote");
                }
            });
        });
    }

    /// The lab: a remote host behind the backbone port, two customers
    /// (near, far) behind a delay line each on their peering ports. The
    /// namespaces (edge, remote, dl_near, dl_far, near, far) and the pass
    /// programs the redirects need.
    pub(super) struct RealLab {
        pub(super) lab: Lab,
        pub(super) edge: String,
        pub(super) remote: String,
        pub(super) near: String,
        pub(super) far: String,
        pub(super) dl_near: String,
        pub(super) dl_far: String,
        pub(super) _pass: [aya::Ebpf; 5],
    }

    pub(super) fn real_lab(tag: &str) -> RealLab {
        let mut lab = Lab::new(tag);
        let edge = lab.add_ns("edge");
        let remote = lab.add_ns("remote");
        let (dl_near, dl_far) = (lab.add_ns("dlnear"), lab.add_ns("dlfar"));
        let (near, far) = (lab.add_ns("near"), lab.add_ns("far"));
        lab.veth((&edge, "bb0", EDGE_BB_MAC), (&remote, "r0", REMOTE_MAC));
        for (port, port_mac, dl, cust, cust_mac) in [
            ("peer0", EDGE_P0_MAC, &dl_near, &near, NEAR_MAC),
            ("peer1", EDGE_P1_MAC, &dl_far, &far, FAR_MAC),
        ] {
            lab.veth((&edge, port, port_mac), (dl, "in0", "02:00:00:00:7f:01"));
            lab.veth((dl, "out0", "02:00:00:00:7f:02"), (cust, "eth0", cust_mac));
        }
        // Hosts reach each other through the edge only (static neighbours:
        // the edge's kernel answers nothing, XDP carries every frame).
        lab.addr(&remote, "r0", &format!("{REMOTE}/24"));
        lab.ip(
            &remote,
            &[
                "neigh",
                "add",
                "198.18.0.254",
                "lladdr",
                EDGE_BB_MAC,
                "dev",
                "r0",
                "nud",
                "permanent",
            ],
        );
        lab.ip(
            &remote,
            &["route", "add", "192.0.2.0/24", "via", "198.18.0.254"],
        );
        for (cust, addr, gw, mac) in [
            (&near, NEAR, "192.0.2.126", EDGE_P0_MAC),
            (&far, FAR, "192.0.2.254", EDGE_P1_MAC),
        ] {
            lab.addr(cust, "eth0", &format!("{addr}/25"));
            lab.ip(
                cust,
                &[
                    "neigh",
                    "add",
                    gw,
                    "lladdr",
                    mac,
                    "dev",
                    "eth0",
                    "nud",
                    "permanent",
                ],
            );
            lab.ip(cust, &["route", "add", "198.18.0.0/15", "via", gw]);
        }
        // XDP_REDIRECT into a veth needs a program on its peer; a program
        // there also keeps the peer from sending GSO frames the delay
        // lines could not send on.
        let _pass = [
            attach_pass(&remote, "r0"),
            attach_pass(&dl_near, "in0"),
            attach_pass(&dl_near, "out0"),
            attach_pass(&dl_far, "in0"),
            attach_pass(&dl_far, "out0"),
        ];
        RealLab {
            lab,
            edge,
            remote,
            near,
            far,
            dl_near,
            dl_far,
            _pass,
        }
    }

    #[test]
    fn real_tcp_through_delay_lines_shows_each_delay_per_prefix() {
        let RealLab {
            lab,
            edge,
            remote,
            near,
            far,
            dl_near,
            dl_far,
            _pass,
        } = real_lab("rtt-real");
        let config = config();
        let (_ebpf, lat, slots) = in_netns(&edge, || {
            let (mut ebpf, mut tables, _counters, plan) =
                load(&config, &[prog_names::EDGE]).expect("load");
            let lat = Latency::take(&mut ebpf).unwrap();
            let s = tables.settings().unwrap();
            tables
                .set_settings(Settings {
                    rtt: 1,
                    rtt_interval_ns: 10_000_000,
                    ..s
                })
                .unwrap();
            let prog: &mut Xdp = ebpf
                .program_mut(prog_names::EDGE)
                .unwrap()
                .try_into()
                .unwrap();
            for port in ["bb0", "peer0", "peer1"] {
                prog.attach(port, XdpMode::Driver).expect("attach");
            }
            let slot = |reg: &str| {
                prefix_slot(
                    plan.prefixes
                        .iter()
                        .position(|p| p.registration == reg)
                        .unwrap(),
                )
            };
            (ebpf, lat, [slot("near"), slot("far")])
        });
        let lines = [
            DelayLine::start(
                &dl_near,
                "in0",
                "out0",
                Duration::from_millis(20),
                Duration::ZERO,
            ),
            DelayLine::start(
                &dl_far,
                "in0",
                "out0",
                Duration::from_millis(80),
                Duration::ZERO,
            ),
        ];
        // Both customers answer a ping through the edge first.
        for addr in [NEAR, FAR] {
            lab.exec(&remote, "ping", &["-c", "1", "-W", "2", addr]);
        }
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| traffic(&remote, &near, NEAR, 8, 200_000));
            s.spawn(|| traffic(&remote, &far, FAR, 8, 200_000));
        });
        println!("traffic took {:?}", t.elapsed());
        for l in lines {
            let (toward, back) = l.stop();
            println!("delay line: {toward} frames toward the customer, {back} back");
        }
        let hist = lat.histograms().unwrap();
        let stats = lat.stats().unwrap();
        println!("{stats:?}");
        let stat = |n: &str| stats.iter().find(|(k, _)| *k == n).unwrap().1;
        for (slot, name, delay) in [(slots[0], "near", 20u64), (slots[1], "far", 80)] {
            let h = Histogram::from_buckets(hist.get(&slot).cloned().unwrap_or_default());
            let p50 = h.quantile(0.5).expect("samples");
            println!(
                "{name}: {} samples, min {:?}, p50 {p50:?}, p90 {:?}, p99 {:?}",
                h.count(),
                h.min().unwrap(),
                h.quantile(0.9).unwrap(),
                h.quantile(0.99).unwrap()
            );
            assert!(h.count() >= 32, "{name}: {} samples", h.count());
            let want = Duration::from_millis(delay);
            assert!(
                p50.abs_diff(want) <= Duration::from_millis(2),
                "{name}: p50 {p50:?}, delay {want:?}"
            );
        }
        // 16 connections each way: a handshake sample per connection.
        assert!(stat("handshake_samples") >= 30, "{stats:?}");
        assert!(stat("ts_samples") >= 2, "{stats:?}");
    }
}

/// Customer latency as users see it: edged with `[latency]`, real TCP
/// through delay lines, `edgectl report customers`, the objective's
/// degradation and recovery in `edgectl events` and the metrics.
mod edged {
    use std::{
        io::{Read as _, Write as _},
        net::TcpStream,
        time::{Duration, Instant},
    };

    use edge_tests::{
        delayline::DelayLine,
        netns::in_netns,
        topology::{Edged, EdgedLog},
    };
    use serde_json::Value;

    use super::real::{EDGE_BB_MAC, FAR, NEAR, REMOTE, REMOTE_MAC, config, real_lab, traffic};

    const METRICS: &str = "127.0.0.1:9479";
    const PERIOD_MS: u64 = 250;
    const WINDOW_MS: u64 = 3000;
    const HOLD_MS: u64 = 1500;

    fn edged_config() -> String {
        let regions = config()
            .replace(
                "registration = \"near\"\npop = \"near\"",
                "registration = \"near\"\npop = \"near\"\nregion = \"europe > ie\"",
            )
            .replace(
                "registration = \"far\"\npop = \"far\"",
                "registration = \"far\"\npop = \"far\"\nregion = \"america > us\"",
            );
        format!(
            r#"[daemon]
metrics_address = "{METRICS}"

[latency]
sample_interval_ms = 10
period_ms = {PERIOD_MS}
window_ms = {WINDOW_MS}
hold_ms = {HOLD_MS}
min_samples = 5
rtt_p90_ms = 200
{regions}
[[registrations]]
name = "near"
rtt_p90_ms = 50

[[registrations]]
name = "far"
rtt_p90_ms = 150
"#
        )
    }

    fn scrape(ns: &str) -> String {
        in_netns(ns, || {
            let mut s =
                TcpStream::connect_timeout(&METRICS.parse().unwrap(), Duration::from_secs(2))
                    .expect("metrics endpoint");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: edge\r\n\r\n")
                .unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).unwrap();
            body
        })
    }

    /// The value of the series `series` (name and labels as printed).
    fn metric(body: &str, series: &str) -> Option<f64> {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// The report rows by `by`, keyed.
    fn rows(e: &Edged, by: &str) -> Vec<(String, Value)> {
        let r = e.ctl_ok(&["report", "customers", "--by", by, "--since", "5m"]);
        assert_eq!(r["enabled"], true, "{r}");
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row["key"].as_str().unwrap().to_string(), row.clone()))
            .collect()
    }

    fn latency_events(e: &Edged) -> Vec<String> {
        e.ctl_ok(&["events", "--limit", "1000"])["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|ev| ev["kind"] == "latency")
            .map(|ev| ev["message"].as_str().unwrap().to_string())
            .collect()
    }

    /// Runs traffic to `cust` until an event containing `needle` appears
    /// (or the deadline): how long it took.
    fn traffic_until(
        e: &Edged,
        lab: (&str, &str),
        cust: &str,
        needle: &str,
        deadline: Duration,
    ) -> Duration {
        let t = Instant::now();
        loop {
            if latency_events(e).iter().any(|m| m.contains(needle)) {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < deadline,
                "no event {needle:?} within {deadline:?}: {:?}",
                latency_events(e)
            );
            traffic(lab.0, lab.1, cust, 2, 20_000);
        }
    }

    #[test]
    fn report_events_and_metrics_follow_the_customers_delays() {
        let l = real_lab("rtt-edged");
        let dir = std::env::temp_dir().join("edge-rtt-edged");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("edge.toml");
        std::fs::write(&config, edged_config()).unwrap();
        let pin = std::path::PathBuf::from("/sys/fs/bpf/edge-rtt-edged");
        let (e, log): (Edged, EdgedLog) = Edged::start_logged(&l.edge, &config, &pin, &[]);
        let near_line = DelayLine::start(
            &l.dl_near,
            "in0",
            "out0",
            Duration::from_millis(20),
            Duration::ZERO,
        );
        let far_line = DelayLine::start(
            &l.dl_far,
            "in0",
            "out0",
            Duration::from_millis(80),
            Duration::ZERO,
        );
        for addr in [NEAR, FAR] {
            l.lab.exec(&l.remote, "ping", &["-c", "1", "-W", "2", addr]);
        }
        std::thread::scope(|s| {
            s.spawn(|| traffic(&l.remote, &l.near, NEAR, 8, 200_000));
            s.spawn(|| traffic(&l.remote, &l.far, FAR, 8, 200_000));
        });
        // The next reading takes them in.
        let t = Instant::now();
        while rows(&e, "prefix").len() < 2 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{:?}",
                rows(&e, "prefix")
            );
            std::thread::sleep(Duration::from_millis(PERIOD_MS));
        }
        // Traffic is over: after one more reading, the report holds every
        // sample the kernel took, from the very first (fresh maps: edged's
        // first reading was empty).
        std::thread::sleep(Duration::from_millis(3 * PERIOD_MS));
        let p50 = |row: &Value| row["p50_ms"].as_f64().unwrap();
        let by_prefix = rows(&e, "prefix");
        let kernel = counter(&e, "handshake_samples") + counter(&e, "ts_samples");
        let reported: u64 = by_prefix
            .iter()
            .map(|(_, r)| r["samples"].as_u64().unwrap())
            .sum();
        assert_eq!(reported, kernel, "the report lost samples the kernel took");
        let by_registration = rows(&e, "registration");
        let by_region = rows(&e, "region");
        println!("by prefix: {by_prefix:#?}");
        println!("by region: {by_region:#?}");
        for (by, rows, keys) in [
            ("prefix", &by_prefix, ["192.0.2.0/25", "192.0.2.128/25"]),
            ("registration", &by_registration, ["near", "far"]),
            ("region", &by_region, ["europe > ie", "america > us"]),
        ] {
            assert_eq!(rows.len(), 2, "by {by}: {rows:#?}");
            for (key, delay) in keys.iter().zip([20.0, 80.0]) {
                let row = &rows
                    .iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no row {key}: {rows:#?}"))
                    .1;
                assert!((p50(row) - delay).abs() <= 2.0, "by {by}, {key}: {row}");
                assert!(row["samples"].as_u64().unwrap() >= 16, "{row}");
                for q in ["min_ms", "p90_ms", "p99_ms"] {
                    assert!(row[q].as_f64().unwrap() > 0.0, "{row}");
                }
            }
        }
        // The same samples, however grouped; objectives and shares.
        let samples = |rows: &[(String, Value)]| -> u64 {
            rows.iter()
                .map(|(_, r)| r["samples"].as_u64().unwrap())
                .sum()
        };
        assert_eq!(samples(&by_prefix), samples(&by_registration));
        assert_eq!(samples(&by_prefix), samples(&by_region));
        let near = &by_registration.iter().find(|(k, _)| k == "near").unwrap().1;
        assert_eq!(near["objective_ms"], 50.0, "{near}");
        assert!(near["above_objective"].as_f64().unwrap() < 0.05, "{near}");
        assert_eq!(near["degraded"], false, "{near}");
        let region = &by_region
            .iter()
            .find(|(k, _)| k == "america > us")
            .unwrap()
            .1;
        assert_eq!(region["objective_ms"], 200.0, "{region}");
        let text = e.ctl_text(&["report", "customers", "--by", "prefix"]);
        assert!(
            text.contains("192.0.2.128/25") && text.contains("p90"),
            "{text}"
        );

        // The near customer slows down past its objective (50 ms).
        near_line.set(Duration::from_millis(100), Duration::ZERO);
        let degraded = traffic_until(
            &e,
            (&l.remote, &l.near),
            NEAR,
            "registration near degraded",
            Duration::from_secs(30),
        );
        println!(
            "degradation event {degraded:?} after the delay went up (hold {HOLD_MS} ms, window {WINDOW_MS} ms)"
        );
        assert!(
            degraded <= Duration::from_millis(WINDOW_MS + HOLD_MS),
            "degraded after {degraded:?}"
        );
        assert!(
            log.wait_for("registration near degraded", Duration::from_secs(2))
                .is_some(),
            "{log:?}"
        );
        let body = scrape(&l.edge);
        assert_eq!(
            metric(
                &body,
                "edge_customer_latency_degraded{kind=\"registration\",name=\"near\"}"
            ),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            metric(
                &body,
                "edge_customer_latency_events_total{change=\"degraded\"}"
            ),
            Some(1.0),
            "{body}"
        );
        let near_count = metric(
            &body,
            "edge_customer_rtt_seconds_count{registration=\"near\"}",
        )
        .expect("near's histogram");
        assert!(near_count >= 16.0, "{body}");
        assert!(
            metric(
                &body,
                "edge_customer_rtt_seconds_bucket{le=\"0.05\",registration=\"far\"}"
            ) == Some(0.0)
                && metric(
                    &body,
                    "edge_customer_rtt_seconds_bucket{le=\"0.1\",registration=\"far\"}"
                ) > Some(0.0),
            "far's 80 ms samples between the 50 and 100 ms bounds: {body}"
        );
        assert!(
            metric(
                &body,
                "edge_customer_region_rtt_seconds_count{region=\"europe > ie\"}"
            )
            .is_some(),
            "{body}"
        );
        let report = rows(&e, "registration");
        let near = &report.iter().find(|(k, _)| k == "near").unwrap().1;
        assert_eq!(near["degraded"], true, "{near}");

        // Back to 20 ms: recovered once the window's p90 is back within.
        near_line.set(Duration::from_millis(20), Duration::ZERO);
        let recovered = traffic_until(
            &e,
            (&l.remote, &l.near),
            NEAR,
            "registration near recovered",
            Duration::from_secs(30),
        );
        println!("recovery event {recovered:?} after the delay went down");
        assert!(
            recovered <= Duration::from_millis(WINDOW_MS + 4 * PERIOD_MS + 2000),
            "recovered after {recovered:?}"
        );
        let body = scrape(&l.edge);
        assert_eq!(
            metric(
                &body,
                "edge_customer_latency_degraded{kind=\"registration\",name=\"near\"}"
            ),
            Some(0.0),
            "{body}"
        );
        assert_eq!(
            metric(
                &body,
                "edge_customer_latency_events_total{change=\"recovered\"}"
            ),
            Some(1.0),
            "{body}"
        );
        // The far customer stayed within its objective throughout.
        let events = latency_events(&e);
        assert!(events.iter().all(|m| !m.contains("far")), "{events:?}");
        assert_eq!(events.len(), 2, "{events:?}");

        // A SYN sent twice (crafted on the remote's wire): the customer
        // answers each copy, and neither answer is a sample (Karn).
        retransmitted_syn_gives_no_sample(&e, &l);

        // A flow of 10,000 packets toward a customer with a 500 ms
        // sample interval (a reload): a few samples, not one per packet.
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("sample_interval_ms = 10", "sample_interval_ms = 500"),
        )
        .unwrap();
        e.ctl_ok(&["config", "reload"]);
        long_flow_is_rate_limited(&e, &l, &near_line);
        near_line.stop();
        far_line.stop();
        drop(e);
    }

    fn counter(e: &Edged, name: &str) -> u64 {
        e.ctl_ok(&["report", "customers"])["counters"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {name}"))
    }

    fn mac(s: &str) -> [u8; 6] {
        let mut m = [0u8; 6];
        for (b, h) in m.iter_mut().zip(s.split(':')) {
            *b = u8::from_str_radix(h, 16).unwrap();
        }
        m
    }

    fn retransmitted_syn_gives_no_sample(e: &Edged, l: &super::real::RealLab) {
        use std::os::fd::AsRawFd as _;

        use edge_tests::{
            delayline::bound_packet_socket,
            frames::{L4, Pkt, Segment},
        };
        // Something to answer the SYNs (a listener that never accepts).
        let _listener = in_netns(&l.near, || {
            std::net::TcpListener::bind(format!("{NEAR}:8081")).unwrap()
        });
        let before = |n| counter(e, n);
        let (samples, retransmitted, ambiguous) = (
            before("handshake_samples"),
            before("retransmitted"),
            before("ambiguous"),
        );
        let syn = Pkt::udp(REMOTE, NEAR)
            .with(|p| {
                p.src_mac = mac(REMOTE_MAC);
                p.dst_mac = mac(EDGE_BB_MAC);
                p.l4 = L4::Segment(Segment::new(41000, 8081, 7_000_000).syn(None));
                p.payload = Vec::new();
            })
            .build();
        let sock = bound_packet_socket(&l.remote, "r0");
        // The copy leaves before the answer to the first is back (20 ms):
        // either answer could be to either copy.
        for _ in 0..2 {
            // SAFETY: a valid socket and buffer.
            let sent = unsafe { libc::send(sock.as_raw_fd(), syn.as_ptr().cast(), syn.len(), 0) };
            assert_eq!(
                sent,
                syn.len() as isize,
                "{}",
                std::io::Error::last_os_error()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // Both SYN-ACKs come back through the edge (20 ms away), then one
        // reading.
        let t = Instant::now();
        while counter(e, "ambiguous") < ambiguous + 1 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "no answer to the SYNs came back"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(counter(e, "retransmitted"), retransmitted + 1);
        assert_eq!(
            counter(e, "handshake_samples"),
            samples,
            "an ambiguous answer was sampled"
        );
        println!(
            "a SYN sent twice: retransmitted +1, ambiguous +{}, no sample",
            counter(e, "ambiguous") - ambiguous
        );
    }

    fn long_flow_is_rate_limited(e: &Edged, l: &super::real::RealLab, line: &DelayLine) {
        use std::net::TcpListener;
        let ts_before = counter(e, "ts_samples");
        let frames_before = line.carried().0;
        let server = in_netns(&l.near, || {
            TcpListener::bind(format!("{NEAR}:8082")).unwrap()
        });
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(move || {
                let (mut c, _) = server.accept().unwrap();
                c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 65536];
                while let Ok(k) = c.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                }
            });
            in_netns(&l.remote, || {
                let mut c = TcpStream::connect_timeout(
                    &format!("{NEAR}:8082").parse().unwrap(),
                    Duration::from_secs(5),
                )
                .unwrap();
                c.set_nodelay(true).unwrap();
                c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
                // Small writes, paced: about one segment each, 10,000
                // over a few seconds (several sample intervals).
                while line.carried().0 - frames_before < 10_000 {
                    assert!(
                        t.elapsed() < Duration::from_secs(30),
                        "10,000 frames took too long"
                    );
                    for _ in 0..50 {
                        c.write_all(&[5u8; 100]).unwrap();
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
            });
        });
        let took = t.elapsed();
        let frames = line.carried().0 - frames_before;
        // One more reading takes the last samples in.
        std::thread::sleep(Duration::from_millis(2 * PERIOD_MS));
        let samples = counter(e, "ts_samples") - ts_before;
        // At most one per 500 ms (the first at once), and one pending at a
        // time.
        let allowed = took.as_millis() as u64 / 500 + 2;
        println!(
            "a flow of {frames} frames over {took:?}: {samples} timestamp samples (at most {allowed} allowed)"
        );
        assert!(frames >= 10_000);
        assert!(
            (1..=allowed).contains(&samples),
            "{samples} samples, {allowed} allowed"
        );
    }
}
