//! Customer latency cost (issue 16): what measuring customer round trips
//! (edge-ebpf/src/rtt.rs, `Settings::rtt`) adds per packet, with it off and
//! on in the same run, through `bench_reset` like every per-packet figure.
//!
//! Each row runs its frames with latency off and on in alternating batches
//! (the order swapped every round), every batch between two floor pairs
//! (`per_packet::Bench::floors`): F, off, F, on, F, on, F, off, F, ...
//! The difference of a round is (on − its floors' wrapper cost) − (off −
//! its floors' wrapper cost), so a disturbance of the machine shifts the
//! floors next to the batches it falls on too.
//!
//! Unsampled rows (packets that take no sample and create no state) run
//! `repeat` times per batch on one or two templates; the flow state they
//! need is written before every batch. Sampled rows change the flow state
//! they find (a state created, a pending value consumed), so the state is
//! written (or removed) for [`FLOWS`] flows before every batch, and the
//! batch runs exactly [`FLOWS`] times, each run a frame of another flow:
//! every run takes the sampled path once.
//!
//! After every batch, besides `run_batch`'s checks (action, reason, output
//! frame, runs), the `EDGE_RTT_STATS` counters must have grown by exactly
//! the row's count per run with latency on, and by 0 with it off; the bench
//! fails otherwise.

use std::{collections::HashSet, fmt::Write as _, net::IpAddr, time::Duration};

use anyhow::{Context as _, Result, ensure};
use aya::maps::{Array, HashMap as AyaHashMap, MapData, MapError, PerCpuArray};
use edge_common::{
    Action, Counter, Reason, Settings, event_family, flow_hash_v4, map_names, prog_names,
    rtt::{RttFlow, RttGate, RttPace, RttState, gate, gate_flags, gate_tag, rtt_stats},
};
use edge_tests::frames::{L4, Pkt, Segment};
use ipnet::IpNet;
use rand::{Rng as _, SeedableRng, rngs::SmallRng};

use crate::{
    BB_MAC, CUST_MAC, FRAME, Sizes, TEMPLATES,
    per_packet::{Bench, Expect, Target, frame_to, median, realtime, swap_macs},
    prefixes::{PrefixGen, bench_entry_in, host_in},
    report::machine,
};

/// The PoP the backbone exit sends to (fixtures/bench.toml, `core`).
const NH_CORE: [u8; 6] = [0x02, 0, 0, 0, 0xc0, 0x01];
/// The customer host (in the bench config's 192.0.2.0/24) and the far end.
const CUSTOMER: &str = "192.0.2.10";
const REMOTE: &str = "198.51.100.7";
const CPORT: u16 = 443;
/// The far end's first port: flow i uses `RPORT + i`.
const RPORT: u16 = 40000;
/// Flows (and templates, and runs per batch) of a sampled row.
pub const FLOWS: usize = TEMPLATES;
/// IPv4 prefixes registered besides the config's (as `IPv4 1000 hot`).
const PREFIXES: usize = 1000;
/// `Settings::rtt_interval_ns` with latency on.
const INTERVAL: Duration = Duration::from_millis(200);
/// The round trip a sampled answer finds (its state is this old), ns.
const RTT_NS: u64 = 40_000_000;
/// The bound on what an unsampled packet may cost more.
pub const LIMIT_NS: f64 = 3.0;
/// The section's heading in BENCHMARKS.md.
pub const HEAD: &str = "## Customer latency cost";

/// What latency off or on measured for a row: medians over its batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Side {
    /// ns per packet through `bench_reset`.
    pub ns: f64,
    /// The program's cost net of the wrapper: ns − (wrapped floor − floor),
    /// the floors those adjacent to the batch.
    pub net: f64,
    /// × floor: net / floor.
    pub ratio: f64,
}

#[derive(Clone, Debug)]
pub struct Row {
    pub name: &'static str,
    /// What the row's packets are and what with latency on they do.
    pub what: &'static str,
    pub sampled: bool,
    /// Unsampled, but sent while its flow awaits an answer (the window
    /// between a value taken and its echo).
    pub window: bool,
    /// Frame length (bytes).
    pub len: usize,
    /// Runs per batch, and rounds (batches of each side).
    pub repeat: u32,
    pub rounds: usize,
    pub floor: f64,
    pub wrapped_floor: f64,
    pub off: Side,
    pub on: Side,
    /// Median over the rounds of (on net − off net).
    pub diff: f64,
    /// Mean over the rounds of the same.
    pub diff_mean: f64,
    /// What the counters showed per run with latency on.
    pub counted: String,
}

pub struct RttReport {
    pub rows: Vec<Row>,
}

/// The flow state a row needs before every batch.
enum Prep {
    Nothing,
    /// These flows have no state.
    Remove(Vec<RttFlow>),
    /// These flows have this state (from the time the batch is armed).
    Set(Vec<RttFlow>, fn(now: u64) -> RttState),
}

struct Case {
    name: &'static str,
    what: &'static str,
    sampled: bool,
    /// See `Row::window`.
    window: bool,
    expect: Expect,
    from_customer: bool,
    prep: Prep,
    /// `EDGE_RTT_STATS` growth per run with latency on (others: 0).
    per_run: &'static [u32],
}

fn v4(a: &str) -> [u8; 16] {
    let mut out = [0; 16];
    let a: std::net::Ipv4Addr = a.parse().expect("an IPv4 address");
    out[..4].copy_from_slice(&a.octets());
    out
}

/// The key of flow i (the customer's port CPORT, the far end's RPORT + i).
fn flow(i: usize) -> RttFlow {
    flow_with(port(i))
}

/// The key as the kernel hashes it (five words, as laid out in memory).
fn words(k: &RttFlow) -> [u64; 5] {
    // SAFETY: `RttFlow` is repr(C), 40 bytes, no padding left undefined.
    unsafe { std::mem::transmute::<RttFlow, [u64; 5]>(*k) }
}

/// The gate (`EDGE_RTT_GATE`, by the flow hash of the customer's
/// packets) and pace (`EDGE_RTT_PACE`, by that of the packets toward it)
/// indexes of flow `k`, as the forwarder computes them.
fn gate_pace(k: &RttFlow) -> (u32, u32) {
    let [c, r] = [k.customer, k.remote].map(|a| [a[0], a[1], a[2], a[3]]);
    let [cp, rp] = [k.customer_port, k.remote_port].map(u16::to_ne_bytes);
    let from = flow_hash_v4(c, r, 6, u32::from_ne_bytes([cp[0], cp[1], rp[0], rp[1]]));
    let toward = flow_hash_v4(r, c, 6, u32::from_ne_bytes([rp[0], rp[1], cp[0], cp[1]]));
    (gate(from), gate(toward))
}

/// The far end's port of flow i: from RPORT up, skipping ports whose flow
/// shares a gate or a pace with an earlier flow, so that every flow of a
/// batch has its own and takes exactly the path its row measures.
fn port(i: usize) -> u16 {
    static PORTS: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    PORTS.get_or_init(|| {
        let (mut gates, mut paces) = (HashSet::new(), HashSet::new());
        let mut out = Vec::with_capacity(FLOWS);
        let mut p = RPORT;
        while out.len() < FLOWS {
            let k = RttFlow {
                remote_port: u16::from_ne_bytes(p.to_be_bytes()),
                ..flow_with(RPORT)
            };
            let (g, pace) = gate_pace(&k);
            if !gates.contains(&g) && !paces.contains(&pace) {
                gates.insert(g);
                paces.insert(pace);
                out.push(p);
            }
            p += 1;
        }
        out
    })[i]
}

/// The key of the flow whose far end uses `remote_port`.
fn flow_with(remote_port: u16) -> RttFlow {
    RttFlow {
        customer: v4(CUSTOMER),
        remote: v4(REMOTE),
        customer_port: u16::from_ne_bytes(CPORT.to_be_bytes()),
        remote_port: u16::from_ne_bytes(remote_port.to_be_bytes()),
        family: event_family::IPV4,
        _pad: [0; 3],
    }
}

fn flows(n: usize) -> Vec<RttFlow> {
    (0..n).map(flow).collect()
}

/// A segment with payload enough for a 64-byte frame at least (bench_reset
/// restores 64 bytes), and at least `DATA` bytes after the handshake (a
/// timestamp is taken only from a segment with data).
fn segment(src: &str, dst: &str, seg: Segment, dst_mac: [u8; 6]) -> Pkt {
    const DATA: usize = 10;
    let syn = seg.syn;
    let p = Pkt::udp(src, dst).with(|p| {
        p.dst_mac = dst_mac;
        p.l4 = L4::Segment(seg);
        p.payload = Vec::new();
    });
    let len = p.build().len();
    let data = FRAME.saturating_sub(len).max(if syn { 0 } else { DATA });
    p.with(|p| p.payload = vec![0x5a; data])
}

/// Remote → customer, arriving on bb0.
fn toward(seg: Segment) -> Pkt {
    segment(REMOTE, CUSTOMER, seg, BB_MAC)
}

/// Customer → remote, arriving on cust0 (ports in the customer's view).
fn from(seg: Segment) -> Pkt {
    segment(CUSTOMER, REMOTE, seg, CUST_MAC)
}

/// Forwarded from the customer: to the backbone exit (PoP `core` on bb0).
fn expect_from(pkts: &[Pkt]) -> Expect {
    Expect {
        action: Action::Redirect,
        reason: Some(Reason::Backbone),
        templates: pkts.iter().map(Pkt::build).collect(),
        outputs: pkts
            .iter()
            .map(|p| p.forwarded(BB_MAC, NH_CORE, None))
            .collect(),
    }
}

/// Linux's SYN options: MSS, SACK permitted, timestamps, NOP, window scale.
fn syn_options(seg: Segment) -> Segment {
    seg.option(&[2, 4, 0x05, 0xb4, 4, 2])
        .option(&[8, 10, 0, 0, 0x11, 0x11, 0, 0, 0, 0])
        .option(&[1, 3, 3, 7])
}

fn cases(hit: IpAddr) -> Vec<Case> {
    use rtt_stats as st;
    // Unsampled: one flow (0), the templates of one batch its packets.
    let ack_ts_toward: Vec<Pkt> = (0..2)
        .map(|i| {
            toward(
                Segment::new(RPORT, CPORT, 7001)
                    .acking(101)
                    .timestamps(5000 + i, 4000),
            )
        })
        .collect();
    let ack_ts_from = vec![from(
        Segment::new(CPORT, RPORT, 101)
            .acking(7001)
            .timestamps(4000, 4999),
    )];
    let ack_toward = vec![toward(Segment::new(RPORT, CPORT, 7001).acking(101))];
    // Sampled: FLOWS flows, template i a packet of flow i.
    let syn_toward: Vec<Pkt> = (0..FLOWS)
        .map(|i| toward(syn_options(Segment::new(port(i), CPORT, 7000)).syn(None)))
        .collect();
    let handshake_ack: Vec<Pkt> = (0..FLOWS)
        .map(|i| {
            from(
                Segment::new(CPORT, port(i), 101)
                    .acking(7001)
                    .timestamps(4000, 5000),
            )
        })
        .collect();
    let ts_toward: Vec<Pkt> = (0..FLOWS)
        .map(|i| {
            toward(
                Segment::new(port(i), CPORT, 7001)
                    .acking(101)
                    .timestamps(5000, 4000),
            )
        })
        .collect();
    let ts_echo: Vec<Pkt> = (0..FLOWS)
        .map(|i| {
            from(
                Segment::new(CPORT, port(i), 101)
                    .acking(7001)
                    .timestamps(4001, 5000),
            )
        })
        .collect();
    vec![
        Case {
            name: "UDP, 64 B, toward a hit (1000 prefixes, hot)",
            what: "the per-packet bench's `IPv4 1000 hot` frame: not TCP, so latency on costs the test of \
                   `Settings::rtt` after the protocol test",
            sampled: false,
            window: false,
            expect: Expect::forward(&[frame_to(hit)]),
            from_customer: false,
            prep: Prep::Nothing,
            per_run: &[],
        },
        Case {
            name: "TCP ACK without options toward the customer, no flow state",
            what: "an ACK (64 B frame, 10 B payload) without options toward the customer: the data offset and \
                   flags are read, no SYN and no room for timestamps: nothing can be asked (no gate, no clock, \
                   no lookup)",
            sampled: false,
            window: false,
            expect: Expect::forward(&ack_toward),
            from_customer: false,
            prep: Prep::Remove(flows(1)),
            per_run: &[],
        },
        Case {
            name: "TCP data + timestamps toward the customer, established flow, not sampled",
            what: "data segments (76 B: NOP NOP TS as Linux sends them, 10 bytes of data) of one flow sampled less than the interval \
                   (200 ms) ago; the two templates alternate TSval, so every packet carries a new value: the data offset and flags are read, then the flow's pace (`EDGE_RTT_PACE`, indexed by the flow hash the forwarder has computed anyway) and the coarse clock: the interval has not passed (no options read, no clock helper, no lookup)",
            sampled: false,
            window: false,
            expect: Expect::forward(&ack_ts_toward),
            from_customer: false,
            prep: Prep::Set(flows(1), |now| RttState {
                ts_ns: now,
                ts_taken_ns: now,
                ts_val: 4999,
                ts_seen: 4999,
                ..RttState::default()
            }),
            per_run: &[],
        },
        Case {
            name: "TCP ACK + timestamps from the customer, established flow, not an answer",
            what: "the customer's ACKs (76 B with 10 bytes of data, arriving on cust0, to the backbone exit) of one flow whose \
                   state awaits the echo of another value (about one round trip per interval): the gate \
                   awaits a timestamp echo, the packet's TSecr is read and is not the awaited value (no clock \
                   helper, no lookup)",
            sampled: false,
            window: true,
            expect: expect_from(&ack_ts_from),
            from_customer: true,
            prep: Prep::Set(flows(1), |now| RttState {
                ts_ns: now,
                ts_taken_ns: now,
                ts_val: 6000,
                ts_seen: 6000,
                ..RttState::default()
            }),
            per_run: &[],
        },
        Case {
            name: "TCP ACK + timestamps from the customer, nothing awaited",
            what: "the same ACKs of one flow that awaits no answer (its last value was echoed: the common \
                   case between samples): the flow's gate (`EDGE_RTT_GATE`, indexed by the flow hash) read and found closed: no options read, no clock, no lookup",
            sampled: false,
            window: false,
            expect: expect_from(&ack_ts_from),
            from_customer: true,
            prep: Prep::Set(flows(1), |now| RttState {
                ts_taken_ns: now,
                ts_val: 6000,
                ts_seen: 6000,
                ..RttState::default()
            }),
            per_run: &[],
        },
        Case {
            name: "SYN toward the customer: flow state created",
            what: "SYNs (74 B, Linux's options) toward the customer, each of a flow with no state: the \
                   handshake is remembered, a new entry inserted into the LRU hash (far from full: 4096 of \
                   65536 entries, so no eviction); a SYN-ACK toward the customer takes the same path",
            sampled: true,
            window: false,
            expect: Expect::forward(&syn_toward),
            from_customer: false,
            prep: Prep::Remove(flows(FLOWS)),
            per_run: &[st::HANDSHAKE_SENT, st::FLOWS],
        },
        Case {
            name: "the customer's ACK answering a SYN-ACK: handshake sample",
            what: "the customer's ACKs (76 B, with timestamps and data) acknowledging the SYN-ACK its flow's state \
                   remembers from about 40 ms earlier (40 ms before the bench wrote the states): one sample into the histogram of the prefix's slot (the \
                   bucket exists but for the first sample of a bucket); the customer's SYN-ACK answering a \
                   SYN takes the same path without reading timestamps",
            sampled: true,
            window: false,
            expect: expect_from(&handshake_ack),
            from_customer: true,
            prep: Prep::Set(flows(FLOWS), |now| RttState {
                handshake_ns: now - RTT_NS,
                handshake_ack: 7001,
                ..RttState::default()
            }),
            per_run: &[st::HANDSHAKE_SAMPLES],
        },
        Case {
            name: "timestamped data toward the customer, established flow: value taken",
            what: "data segments (76 B) toward the customer, each of a flow whose state has nothing pending and whose \
                   last value was taken 1 s ago (past the interval): the new TSval is remembered",
            sampled: true,
            window: false,
            expect: Expect::forward(&ts_toward),
            from_customer: false,
            prep: Prep::Set(flows(FLOWS), |now| RttState {
                ts_taken_ns: now - 1_000_000_000,
                ts_val: 4000,
                ts_seen: 4999,
                ..RttState::default()
            }),
            per_run: &[st::TS_SENT],
        },
        Case {
            name: "timestamped data toward the customer, new flow: state created with the value",
            what: "the same ACKs, each of a flow with no state (a flow first seen mid-connection): a new \
                   entry inserted with the TSval",
            sampled: true,
            window: false,
            expect: Expect::forward(&ts_toward),
            from_customer: false,
            prep: Prep::Remove(flows(FLOWS)),
            per_run: &[st::TS_SENT, st::FLOWS],
        },
        Case {
            name: "the customer's ACK echoing the pending TSval: timestamp sample",
            what: "the customer's ACKs (76 B) whose TSecr is the value its flow's state took about 40 ms \
                   earlier: one sample into the histogram (as above)",
            sampled: true,
            window: false,
            expect: expect_from(&ts_echo),
            from_customer: true,
            prep: Prep::Set(flows(FLOWS), |now| RttState {
                ts_ns: now - RTT_NS,
                ts_taken_ns: now - RTT_NS,
                ts_val: 5000,
                ts_seen: 5000,
                ..RttState::default()
            }),
            per_run: &[st::TS_SAMPLES],
        },
    ]
}

/// `EDGE_RTT_STATS`, summed over CPUs.
fn rtt_counts(b: &Bench) -> Result<Vec<u64>> {
    let map: PerCpuArray<&MapData, Counter> =
        PerCpuArray::try_from(b.edge.map(map_names::RTT_STATS).context("EDGE_RTT_STATS")?)?;
    (0..rtt_stats::COUNT)
        .map(|i| Ok(map.get(&i, 0)?.iter().map(|c| c.packets).sum()))
        .collect()
}

fn set_latency(b: &mut Bench, on: bool) -> Result<()> {
    let s = b.tables.settings()?;
    b.tables.set_settings(Settings {
        rtt: u8::from(on),
        rtt_interval_ns: INTERVAL.as_nanos() as u64,
        ..s
    })?;
    Ok(())
}

fn prepare(b: &mut Bench, prep: &Prep) -> Result<()> {
    // The gate and pace each flow's state implies, as the kernel would have
    // left them (armed: the flow's previous packet came after its interval
    // passed).
    let gate = |k: &RttFlow, s: &RttState| RttGate {
        pending_ns: s.handshake_ns.max(s.ts_ns),
        await_ack: s.handshake_ack,
        await_ts: s.ts_val,
        owner: gate_tag(&words(k)),
        flags: if s.handshake_ns != 0 {
            gate_flags::HANDSHAKE
        } else {
            0
        } | if s.ts_ns != 0 { gate_flags::TS } else { 0 },
    };
    let pace = |s: &RttState| RttPace {
        next_ns: if s.ts_taken_ns == 0 {
            0
        } else {
            s.ts_taken_ns + INTERVAL.as_nanos() as u64
        },
        ts_seen: s.ts_seen,
        armed: 1,
    };
    // A flow without state: its pace armed by its previous packet, whose
    // TSval (4999) differs from the rows' packets'.
    let fresh = (
        RttGate::default(),
        RttPace {
            ts_seen: 4999,
            armed: 1,
            ..RttPace::default()
        },
    );
    let now = edge_userspace::dataplane::latency::monotonic_ns();
    // The coarse clock as edged keeps it.
    let mut clock: Array<&mut MapData, u64> = Array::try_from(
        b.edge
            .map_mut(map_names::RTT_CLOCK)
            .context("EDGE_RTT_CLOCK")?,
    )?;
    clock.set(0, now, 0)?;
    let gates: Vec<(RttFlow, (RttGate, RttPace))> = match prep {
        Prep::Nothing => Vec::new(),
        Prep::Remove(keys) => keys.iter().map(|k| (*k, fresh)).collect(),
        Prep::Set(keys, state) => {
            let s = state(now);
            let mut map: AyaHashMap<&mut MapData, RttFlow, RttState> = AyaHashMap::try_from(
                b.edge
                    .map_mut(map_names::RTT_FLOWS)
                    .context("EDGE_RTT_FLOWS")?,
            )?;
            for k in keys {
                map.insert(k, s, 0)?;
            }
            keys.iter().map(|k| (*k, (gate(k, &s), pace(&s)))).collect()
        }
    };
    if let Prep::Remove(keys) = prep {
        let mut map: AyaHashMap<&mut MapData, RttFlow, RttState> = AyaHashMap::try_from(
            b.edge
                .map_mut(map_names::RTT_FLOWS)
                .context("EDGE_RTT_FLOWS")?,
        )?;
        for k in keys {
            // A missing key's delete is a syscall error (ENOENT), not
            // `KeyNotFound`: look first.
            match map.get(k, 0) {
                Ok(_) => map.remove(k)?,
                Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for (k, (g, p)) in gates {
        let (gi, pi) = gate_pace(&k);
        Array::<&mut MapData, RttGate>::try_from(
            b.edge
                .map_mut(map_names::RTT_GATE)
                .context("EDGE_RTT_GATE")?,
        )?
        .set(gi, g, 0)?;
        Array::<&mut MapData, RttPace>::try_from(
            b.edge
                .map_mut(map_names::RTT_PACE)
                .context("EDGE_RTT_PACE")?,
        )?
        .set(pi, p, 0)?;
    }
    Ok(())
}

/// One program batch of `case` with latency `on`, its flow state prepared
/// first; checks the rtt counters. Returns ns per run.
fn batch(b: &mut Bench, case: &Case, on: bool) -> Result<f64> {
    set_latency(b, on)?;
    prepare(b, &case.prep)?;
    b.point(Target::Edge)?;
    let before = rtt_counts(b)?;
    let ns = b.run_batch(Target::Edge, false, &case.expect)?;
    let after = rtt_counts(b)?;
    for (i, (a, z)) in before.iter().zip(&after).enumerate() {
        let per_run = u64::from(on && case.per_run.contains(&(i as u32)));
        let want = per_run * u64::from(b.repeat);
        ensure!(
            z - a == want,
            "{} (latency {}): rtt counter {} grew by {}, expected {want}",
            case.name,
            if on { "on" } else { "off" },
            rtt_stats::NAMES[i],
            z - a
        );
    }
    Ok(ns)
}

fn measure(b: &mut Bench, case: &Case, repeat: u32, rounds: usize) -> Result<Row> {
    b.repeat = repeat;
    b.ingress = if case.from_customer {
        edge_tests::harness::netdev::ifindex("cust0")?
    } else {
        b.bb0
    };
    let expect = &case.expect;
    b.arm(expect)?;
    let mut floors = vec![b.floors(expect, None)?];
    // (ns, index of the floor pair before it) per side.
    let mut sides: [Vec<(f64, usize)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for on in order {
            let ns = batch(b, case, on)?;
            sides[usize::from(on)].push((ns, floors.len() - 1));
            floors.push(b.floors(expect, None)?);
        }
    }
    set_latency(b, false)?;
    b.ingress = b.bb0;
    let adjacent = |j: usize| {
        let (d0, w0) = floors[j];
        let (d1, w1) = floors[j + 1];
        ((d0 + d1) / 2.0, (w0 + w1) / 2.0)
    };
    let net = |&(ns, j): &(f64, usize)| {
        let (d, w) = adjacent(j);
        ns - w + d
    };
    let side = |v: &[(f64, usize)]| Side {
        ns: median(&v.iter().map(|x| x.0).collect::<Vec<_>>()),
        net: median(&v.iter().map(net).collect::<Vec<_>>()),
        ratio: median(
            &v.iter()
                .map(|x| net(x) / adjacent(x.1).0)
                .collect::<Vec<_>>(),
        ),
    };
    let diffs: Vec<f64> = sides[1]
        .iter()
        .zip(&sides[0])
        .map(|(on, off)| net(on) - net(off))
        .collect();
    let counted = if case.per_run.is_empty() {
        "none".to_string()
    } else {
        case.per_run
            .iter()
            .map(|&i| format!("{} +1", rtt_stats::NAMES[i as usize]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Ok(Row {
        name: case.name,
        what: case.what,
        sampled: case.sampled,
        window: case.window,
        len: expect.templates[0].len(),
        repeat,
        rounds,
        floor: median(&floors.iter().map(|f| f.0).collect::<Vec<_>>()),
        wrapped_floor: median(&floors.iter().map(|f| f.1).collect::<Vec<_>>()),
        off: side(&sides[0]),
        on: side(&sides[1]),
        diff: median(&diffs),
        diff_mean: diffs.iter().sum::<f64>() / diffs.len() as f64,
        counted,
    })
}

/// Every row, IPv4, with 1000 prefixes registered besides the config's.
pub fn rtt(sizes: &Sizes, quick: bool) -> Result<RttReport> {
    realtime()?;
    // The edge program only (the LPM trie variant is not measured here).
    let mut b = Bench::with(sizes.repeat, &[prog_names::EDGE])?;
    let mut generator = PrefixGen::new(1);
    let mut rng = SmallRng::seed_from_u64(2);
    let mut nets = Vec::new();
    while nets.len() < PREFIXES {
        let net = IpNet::V4(generator.v4());
        b.tables
            .set_prefix(net, bench_entry_in(nets.len(), b.policy))?;
        nets.push(net);
    }
    // A hit as the per-packet bench draws them (not in 127/8).
    let hit = loop {
        let a = host_in(nets[rng.random_range(0..nets.len())], &mut rng);
        if !matches!(a, IpAddr::V4(v) if v.octets()[0] == 127) {
            break a;
        }
    };
    // The floor's frame, to warm up.
    let warm = frame_to("198.51.100.1".parse()?).build();
    let floor = Expect {
        action: Action::Tx,
        reason: None,
        outputs: vec![swap_macs(&warm)],
        templates: vec![warm],
    };
    b.arm(&floor)?;
    b.floors(&floor, None)?;
    let (unsampled, sampled) = if quick { (5, 11) } else { (21, 41) };
    let mut rows = Vec::new();
    for case in cases(hit) {
        let (repeat, rounds) = if case.sampled {
            (FLOWS as u32, sampled)
        } else {
            (sizes.repeat, unsampled)
        };
        let row = measure(&mut b, &case, repeat, rounds)?;
        eprintln!(
            "rtt: {}: off {:.1} ns, on {:.1} ns (floor {:.1}, wrapped {:.1}); on − off {:+.2} ns (median of {} rounds; mean {:+.2})",
            row.name,
            row.off.ns,
            row.on.ns,
            row.floor,
            row.wrapped_floor,
            row.diff,
            row.rounds,
            row.diff_mean
        );
        rows.push(row);
    }
    Ok(RttReport { rows })
}

impl RttReport {
    /// The "Customer latency cost" section of BENCHMARKS.md.
    pub fn markdown(&self, commit: &str, quick: bool) -> String {
        let (cpu, kernel, cores) = machine();
        let mut s = String::new();
        let _ = writeln!(s, "{HEAD}\n");
        if quick {
            let _ = writeln!(s, "**Quick run (small sizes): not for the record.**\n");
        }
        let _ = writeln!(
            s,
            "What measuring customer round trips (edge-ebpf/src/rtt.rs, `[latency] enabled`) costs per packet \
             (issue 16), from `edge-bench --only rtt` (tests/src/bin/edge-bench/rtt.rs) at commit {commit}, on \
             {cpu}, {cores} cores, kernel {kernel}. IPv4 only; the table holds the bench config's 192.0.2.0/24 \
             (the customer, host 192.0.2.10) and 1000 generated prefixes. Toward the customer, frames arrive on \
             the backbone port and go to the customer's PoP; from the customer, they arrive on the peering port \
             and go to the backbone exit.\n"
        );
        let _ = writeln!(
            s,
            "Method: the per-packet bench's (BPF_PROG_TEST_RUN through `bench_reset`, the kernel's time per run \
             in whole ns, the batch thread SCHED_FIFO). Each row runs the same frames with latency off \
             (`Settings::rtt` = 0) and on (rtt = 1, interval {} ms) in alternating batches, the order swapped \
             every round, each batch between two floor pairs (the floor directly and through `bench_reset` with \
             the row's templates): F, off, F, on, F, on, F, off, F, ... A batch's net cost is its time minus the \
             wrapper's cost measured by the floor pairs just before and after it (wrapped floor − floor); \
             **on − off** is the median over the rounds of (on net − off net) of the same round (the mean next \
             to it). The raw columns are the medians of the batches' times. `bench_reset` restores the first 64 \
             bytes of a template; the TCP frames are up to 74 bytes and the bytes past 64 are the same in every \
             template and output (checked).\n",
            INTERVAL.as_millis()
        );
        let _ = writeln!(
            s,
            "Unsampled rows run {} times per batch on one or two templates; the flow state they need is \
             written before every batch, with the flow's gate (`EDGE_RTT_GATE`) and pace (`EDGE_RTT_PACE`) as the kernel would have left them, and the coarse clock (`EDGE_RTT_CLOCK`) set to the time then, as edged keeps it \
             (for the timestamp rows: a value taken just now, pending or already echoed, so no run takes a sample \
             however long the batch; for the plain ACK: no state). Sampled rows change the state they find \
             (created, or a pending value consumed), so before every batch the bench writes (or removes) the state, gate and pace of {FLOWS} flows, each flow with a gate and a pace of its own, and the batch runs exactly \
             {FLOWS} times on {FLOWS} templates, the i-th run a packet of flow i: every run takes the sampled path \
             once. Their batches are short (about a millisecond), so their times are noisier, and the state was \
             just written by userspace (in cache, where a real flow's may not be). After every batch the bench \
             checks, besides the action, reason, output frame and run count of every batch: the `EDGE_RTT_STATS` \
             counters grew by exactly the row's count per run (on) and by 0 (off, and every counter the row does \
             not name); it fails otherwise. For a sampled row, on − off is what taking the sample or creating the \
             state adds to forwarding the same packet with latency off; each run touches another flow's entry, as \
             packets of many flows would.\n",
            self.rows
                .iter()
                .find(|r| !r.sampled)
                .map_or(0, |r| r.repeat)
        );
        let _ = writeln!(
            s,
            "| packet | bytes | runs × rounds | floor ns | floor through wrapper ns | off ns | on ns | off net ns (× floor) | on net ns (× floor) | **on − off** ns (median) | mean | rtt counters per run (on) |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for (sampled, window, title) in [
            (
                false,
                false,
                "*Not sampled: no handshake, no sample, no state created*",
            ),
            (
                false,
                true,
                "*Not sampled, in a sampling window: the customer's packets while its flow awaits an echo*",
            ),
            (true, false, "*Sampled, or creating state*"),
        ] {
            let _ = writeln!(s, "| {title} | | | | | | | | | | | |");
            for r in self
                .rows
                .iter()
                .filter(|r| r.sampled == sampled && r.window == window)
            {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} × {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} ({:.2}) | {:.1} ({:.2}) | **{:+.1}** | {:+.2} | {} |",
                    r.name,
                    r.len,
                    r.repeat,
                    r.rounds,
                    r.floor,
                    r.wrapped_floor,
                    r.off.ns,
                    r.on.ns,
                    r.off.net,
                    r.off.ratio,
                    r.on.net,
                    r.on.ratio,
                    r.diff,
                    r.diff_mean,
                    r.counted
                );
            }
        }
        let _ = writeln!(s, "\nWhat each row measures:\n");
        for r in &self.rows {
            let _ = writeln!(s, "- {}: {}.", r.name, r.what);
        }
        let worst = |window: bool| {
            self.rows
                .iter()
                .filter(|r| !r.sampled && r.window == window)
                .map(|r| r.diff)
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let (between, during) = (worst(false), worst(true));
        let _ = writeln!(
            s,
            "\n{}: on packets that are not handshake or sampled timestamp packets, latency on costs at most \
             **{between:+.1} ns** more per packet (the largest median on − off of the unsampled rows outside a \
             sampling window), against the issue's bound of {LIMIT_NS} ns. The customer's packets while its flow \
             awaits an echo (one round trip per interval per flow: with a {} ms interval and a 40 ms round trip, \
             one in {} of a busy flow's packets from the customer) cost up to **{during:+.1} ns**: {}.",
            if between <= LIMIT_NS {
                "Within the bound"
            } else {
                "**Not within the bound**"
            },
            INTERVAL.as_millis(),
            INTERVAL.as_millis() / 40,
            if during <= LIMIT_NS {
                "within the bound too"
            } else {
                "above the bound (their TSecr is read and compared with the awaited value)"
            }
        );
        s
    }
}
