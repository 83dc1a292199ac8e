//! Packet fuzzing (issue #9): frames from a seeded generator
//! (edge_tests::fuzzgen: random bytes, valid frames with one field mutated,
//! truncations at every header boundary, lying length fields, datagrams
//! too short for their ports with the ports in the Ethernet padding, VLAN
//! stacks, IPv6 extension chains, IPv4 options, fragments, addresses inside and
//! outside the registered prefixes, TTL 0 / 1 / 255, every port role and a
//! non-port as ingress) through the real object with BPF_PROG_TEST_RUN,
//! checking on every frame:
//!
//! - never `XDP_ABORTED` (nor an unknown code);
//! - a passed or dropped frame is byte-identical to the input;
//! - a forwarded frame (`XDP_TX` / `XDP_REDIRECT`) parses with etherparse,
//!   its lengths match the frame, its IPv4 checksums are right, its TTL /
//!   hop limit is exactly one lower (the inner header's when
//!   encapsulated), its outer header is the PoP's tunnel with the inner
//!   packet's length, DS field, DF bit and flow label, its VLAN tags are
//!   kept, its MACs are a PoP's, `XDP_TX` exactly when the PoP's port is the
//!   ingress, and everything after the IP header is unchanged;
//!
//! - the action, the reason the program counted (`EDGE_RSN_STATS`, read
//!   per frame) and, for a forwarded frame, the PoP (by its MACs) are the
//!   ones the reference classifier (edge_tests::expect, written apart from
//!   the kernel program) computes from the frame's bytes and the maps;
//!
//! and at the end that the action and reason counters (per-CPU, summed)
//! add up to the frames run, packets and bytes, and the action counters
//! match the return codes one by one; a run of 50,000 frames or more has
//! expected and met every reason and action, and the padding class.
//!
//! `EDGE_FUZZ_FRAMES` (default 200,000; `cargo xtask fuzz` runs 1,000,000),
//! `EDGE_FUZZ_SEED` (default: from the clock, always printed) and
//! `EDGE_FUZZ_START` (first frame index) select the frames; a failure
//! prints the line that replays the failing frame alone.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use aya::{
    maps::{Map, MapData, PerCpuArray},
    programs::Xdp,
};
use edge_common::{Action, Counter, Pop, Reason, map_names, pop_flags};
use edge_tests::{
    expect::{self, Model, Verdict},
    frames::ipv4_checksum_ok,
    fuzzgen::{Frame, Generator, Kind},
    harness::{
        EMPTY_POLICY_PREFIX, FUZZ_CONFIG, Harness, LOCALS, NO_TX_PREFIX,
        maps::{Count, Stats},
        netdev, port_lab, run_into,
    },
    netns::in_netns,
};
use etherparse::{Ethernet2Slice, Ipv4HeaderSlice, Ipv6HeaderSlice, SingleVlanSlice};
use ipnet::IpNet;

/// The packet tests' four ports, with an MTU no generated frame reaches
/// even encapsulated (frames go up to `fuzzgen::MAX_FRAME` bytes; the
/// PoPs' link MTU is the interface's): the reference does not model the
/// too-big paths, which packet.rs tests byte for byte.
fn fuzz_lab(tag: &str) -> (edge_tests::netns::Lab, String) {
    let (lab, ns) = port_lab(tag);
    for port in edge_tests::harness::PORTS {
        for ifname in [port.to_string(), format!("{port}x")] {
            lab.ip(&ns, &["link", "set", &ifname, "mtu", "9000"]);
        }
    }
    (lab, ns)
}

/// Ingress interfaces: every port role, and one that is not a port.
const INGRESS: [&str; 5] = ["peer0", "peer1", "bb0", "tr0", "lo"];
const ENCAP_TTL: u8 = 60;
const DEFAULT_FRAMES: u64 = 200_000;

struct Fuzz {
    /// The object with fixtures/fuzz.toml's config.
    h: Harness,
    /// Valid PoPs as the kernel sees them: (id, entry).
    pops: Vec<(u32, Pop)>,
    /// DSCP values a forwarded frame may carry besides its own.
    dscps: Vec<u8>,
    ifindex: Vec<u32>,
    /// The maps as the reference classifier reads them.
    model: Model,
}

impl Fuzz {
    fn new() -> Self {
        let h = Harness::new(FUZZ_CONFIG);
        let pops: Vec<(u32, Pop)> = (0..h.plan.pops.len() as u32)
            .map(|id| (id, h.tables.pop(id).expect("PoP entry")))
            .collect();
        let dscps = h.plan.prefixes.iter().filter_map(|p| p.dscp).collect();
        let ifindex = INGRESS
            .iter()
            .map(|i| netdev::ifindex(i).expect("ingress ifindex"))
            .collect();
        let model = Model::from_tables(&h.tables).expect("read the maps back");
        // The hand-written prefixes are in the maps the reference reads.
        assert_eq!(model.prefixes.len(), h.plan.prefixes.len() + 2);
        // A forwarded frame's MACs name one PoP.
        for (i, (_, a)) in pops.iter().enumerate() {
            let same = |(_, b): &(u32, Pop)| (a.src_mac, a.dst_mac) == (b.src_mac, b.dst_mac);
            assert!(!pops[..i].iter().any(same), "two PoPs share their MACs");
        }
        Self {
            h,
            pops,
            dscps,
            ifindex,
            model,
        }
    }

    /// What the reference classifier expects for `frame`.
    fn expect(&self, frame: &Frame) -> Verdict {
        expect::expect(&self.model, &frame.bytes, self.ifindex[frame.ingress])
    }

    fn generator(&self, seed: u64) -> Generator {
        let mut prefixes: Vec<IpNet> = self.h.plan.prefixes.iter().map(|p| p.net).collect();
        prefixes.push(EMPTY_POLICY_PREFIX.parse().unwrap());
        prefixes.push(NO_TX_PREFIX.parse().unwrap());
        let locals: Vec<IpAddr> = LOCALS.iter().map(|a| a.parse().unwrap()).collect();
        Generator::new(seed, &prefixes, &locals, INGRESS.len())
    }

    fn stats(&self) -> Stats {
        self.h.stats()
    }
}

/// The program's reason counters (`EDGE_RSN_STATS`, per-CPU), read to
/// learn the reason of each frame. A frame's reason is the counter that
/// moved by one packet and the frame's length; reading all of them per
/// frame would cost one syscall per reason, so only the expected one is
/// read (one syscall): it moved as it should exactly when the kernel agrees
/// (the end-of-run totals show that no frame counted two reasons; a full
/// read every `FULL_READ_EVERY` frames narrows that down to a range).
/// Anything else reads them all and names what moved.
struct ReasonCounters {
    map: PerCpuArray<MapData, Counter>,
    /// What each reason counter held after the last frame: packets, bytes.
    seen: Vec<(u64, u64)>,
}

const FULL_READ_EVERY: u64 = 4096;

impl ReasonCounters {
    /// The program's own map, found through its map ids (the harness took
    /// the object's handle for its `Counters`).
    fn of(prog: &Xdp) -> Self {
        let ids = prog
            .info()
            .expect("program info")
            .map_ids()
            .expect("map ids")
            .expect("the kernel lists a program's maps");
        let data = ids
            .into_iter()
            .map(|id| MapData::from_id(id).expect("map by id"))
            .find(|m| m.info().expect("map info").name_as_str() == Some(map_names::REASON_STATS))
            .expect("the program uses EDGE_RSN_STATS");
        let map = PerCpuArray::try_from(Map::PerCpuArray(data)).expect("a per-CPU array");
        let mut counters = Self {
            map,
            seen: Vec::new(),
        };
        counters.seen = counters.read_all();
        counters
    }

    fn read(&self, reason: u32) -> (u64, u64) {
        let per_cpu = self.map.get(&reason, 0).expect("read EDGE_RSN_STATS");
        per_cpu
            .iter()
            .fold((0, 0), |(p, b), c| (p + c.packets, b + c.bytes))
    }

    fn read_all(&self) -> Vec<(u64, u64)> {
        (0..Reason::COUNT).map(|r| self.read(r)).collect()
    }

    /// The reason counted for the frame just run (`len` bytes), when the
    /// reference expects `expected`.
    fn counted(&mut self, expected: Reason, len: u64) -> Result<Reason, String> {
        let i = expected as usize;
        let (p, b) = self.seen[i];
        if self.read(expected as u32) == (p + 1, b + len) {
            self.seen[i] = (p + 1, b + len);
            return Ok(expected);
        }
        self.moved(len)
    }

    /// Reads every counter: the one reason that moved by exactly this
    /// frame, or what moved instead.
    fn moved(&mut self, len: u64) -> Result<Reason, String> {
        let now = self.read_all();
        let moved: Vec<(Reason, u64, u64)> = Reason::ALL
            .iter()
            .zip(now.iter().zip(&self.seen))
            .filter(|(_, (n, s))| n != s)
            .map(|(r, (n, s))| (*r, n.0 - s.0, n.1 - s.1))
            .collect();
        self.seen = now;
        match moved.as_slice() {
            [(r, 1, bytes)] if *bytes == len => Ok(*r),
            _ => Err(format!(
                "reason counters moved by {:?} for one frame of {len} bytes",
                moved
                    .iter()
                    .map(|(r, p, b)| format!("{} +{p} packets +{b} bytes", r.name()))
                    .collect::<Vec<_>>()
            )),
        }
    }

    /// Whether the counters still hold what the frames counted one by one.
    fn in_step(&mut self) -> Result<(), String> {
        let seen = self.seen.clone();
        let now = self.read_all();
        if now == seen {
            return Ok(());
        }
        self.seen = now.clone();
        Err(format!(
            "reason counters moved besides the frames' own reasons: {:?}",
            Reason::ALL
                .iter()
                .zip(now.iter().zip(&seen))
                .filter(|(_, (n, s))| n != s)
                .map(|(r, (n, s))| format!("{} +{}", r.name(), n.0 - s.0))
                .collect::<Vec<_>>()
        ))
    }
}

/// The kernel's outcome against the reference's.
fn agrees(
    verdict: &Verdict,
    action: u32,
    counted: Result<Reason, String>,
    pop: Option<u32>,
) -> Result<(), String> {
    let counted = counted?;
    let action = Action::from_u32(action).expect("checked before");
    if (action, counted, pop) == (verdict.action, verdict.reason, verdict.pop) {
        return Ok(());
    }
    Err(format!(
        "disagrees with the reference, which expects {} ({}), the kernel did {}: reference disagreement",
        verdict.outcome(),
        verdict.why,
        expect::outcome(action, counted, pop),
    ))
}

/// Parses `EDGE_FUZZ_*` numbers: decimal, `0x` hex, `_` separators.
fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}")))
}

struct Failure {
    index: u64,
    frame: Frame,
    action: u32,
    output: Vec<u8>,
    problem: String,
    verdict: Verdict,
}

#[test]
fn packet_fuzz() {
    let seed = env_u64("EDGE_FUZZ_SEED").unwrap_or_else(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        t.as_secs() ^ (u64::from(t.subsec_nanos()) << 20)
    });
    let frames = env_u64("EDGE_FUZZ_FRAMES").unwrap_or(DEFAULT_FRAMES);
    let start = env_u64("EDGE_FUZZ_START").unwrap_or(0);
    assert!(frames > 0, "EDGE_FUZZ_FRAMES=0 tests nothing");
    eprintln!(
        "packet fuzz: seed {seed:#x}, frames {start}..{}",
        start + frames
    );

    let (_lab, ns) = fuzz_lab("fuzz");
    in_netns(&ns, || run(seed, start, frames));
}

fn run(seed: u64, start: u64, frames: u64) {
    let fuzz = Fuzz::new();
    let generator = fuzz.generator(seed);
    let prog = fuzz.h.program();
    let before = fuzz.stats();
    let mut counters = ReasonCounters::of(prog);
    // What the reference expected, by reason and by rule.
    let mut expected = [0u64; Reason::COUNT as usize];
    let mut rules: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut padded_tagged = 0u64;

    let mut out = vec![0u8; 4096];
    let mut failures: Vec<Failure> = Vec::new();
    let mut failed = 0u64;
    // Problems with the numbers taken out, so a summary groups them.
    let mut problems: BTreeMap<String, u64> = BTreeMap::new();
    let mut returned = [0u64; Action::COUNT as usize];
    let mut kinds: BTreeMap<Kind, u64> = BTreeMap::new();
    let mut bytes = 0u64;
    let started = Instant::now();
    let progress_every = (frames / 10).max(1);
    for n in 0..frames {
        let index = start + n;
        let frame = generator.frame(index);
        let (action, len) = run_into(prog, fuzz.ifindex[frame.ingress], &frame.bytes, &mut out)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN, seed {seed:#x} frame {index}: {e}"));
        let output = &out[..len];
        bytes += frame.bytes.len() as u64;
        *kinds.entry(frame.kind).or_default() += 1;
        if let Some(slot) = returned.get_mut(action as usize) {
            *slot += 1;
        }
        let verdict = fuzz.expect(&frame);
        expected[verdict.reason as usize] += 1;
        *rules.entry(verdict.why).or_default() += 1;
        if verdict.why.contains("padding") && [0x81, 0x88].contains(&frame.bytes[12]) {
            padded_tagged += 1;
        }
        let counted = counters.counted(verdict.reason, frame.bytes.len() as u64);
        let mut result = check(&fuzz, &frame, action, output)
            .and_then(|pop| agrees(&verdict, action, counted, pop));
        if result.is_ok() && (n + 1) % FULL_READ_EVERY == 0 {
            result = counters.in_step().map_err(|e| {
                format!(
                    "{e}, within the {FULL_READ_EVERY} frames up to this one: counters out of step"
                )
            });
        }
        if let Err(problem) = result {
            failed += 1;
            let shape: String = problem
                .split(':')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            *problems
                .entry(format!("{:?}: {shape}", frame.kind))
                .or_default() += 1;
            if failures.len() < 10 {
                failures.push(Failure {
                    index,
                    output: output.to_vec(),
                    frame,
                    action,
                    problem,
                    verdict,
                });
            }
        }
        if (n + 1) % progress_every == 0 {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "packet fuzz: {}/{frames} frames, {:.0} frames/s, {failed} failing",
                n + 1,
                (n + 1) as f64 / secs
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = fuzz.stats();
    let out_of_step = counters.in_step();

    let delta = |rows_a: &[(&'static str, Count)], rows_b: &[(&'static str, Count)]| {
        rows_a
            .iter()
            .zip(rows_b)
            .map(|((name, a), (_, b))| (*name, a.packets - b.packets, a.bytes - b.bytes))
            .collect::<Vec<_>>()
    };
    let actions = delta(&after.actions, &before.actions);
    let reasons = delta(&after.reasons, &before.reasons);
    eprintln!(
        "packet fuzz: seed {seed:#x}: {frames} frames in {secs:.1} s ({:.0} frames/s), {failed} failing",
        frames as f64 / secs
    );
    eprintln!("  kinds: {kinds:?}");
    let nonzero = |rows: &[(&str, u64, u64)]| {
        rows.iter()
            .filter(|r| r.1 > 0)
            .map(|r| format!("{} {}", r.0, r.1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!("  actions: {}", nonzero(&actions));
    eprintln!("  reasons: {}", nonzero(&reasons));
    eprintln!("  the reference's rules, frames each:");
    for (rule, n) in &rules {
        eprintln!("    {n:>9}  {rule}");
    }

    if !failures.is_empty() {
        let mut msg = format!("{failed} of {frames} frames broke an invariant (seed {seed:#x}):\n");
        for (shape, n) in &problems {
            msg += &format!("  {n:>8}  {shape}\n");
        }
        msg += "first failing frames:\n";
        for f in &failures {
            msg += &format!(
                "\nframe {} ({:?}, ingress {}): {}\n  action {}, reference {} ({})\n  input  ({} bytes) {}\n  output ({} bytes) {}\n  replay: EDGE_FUZZ_SEED={seed:#x} EDGE_FUZZ_START={} EDGE_FUZZ_FRAMES=1 cargo xtask test packet_fuzz\n",
                f.index,
                f.frame.kind,
                INGRESS[f.frame.ingress],
                f.problem,
                f.action,
                f.verdict.outcome(),
                f.verdict.why,
                f.frame.bytes.len(),
                hex(&f.frame.bytes),
                f.output.len(),
                hex(&f.output),
                f.index,
            );
        }
        panic!("{msg}");
    }

    out_of_step.unwrap_or_else(|e| panic!("at the end of the run: {e}"));
    // Every frame counted once per action and once per reason, bytes too,
    // and each action counter matches the return codes.
    let total =
        |rows: &[(&str, u64, u64)]| rows.iter().fold((0, 0), |(p, b), r| (p + r.1, b + r.2));
    assert_eq!(
        total(&actions),
        (frames, bytes),
        "action counters: {actions:?}"
    );
    assert_eq!(
        total(&reasons),
        (frames, bytes),
        "reason counters: {reasons:?}"
    );
    for (a, (name, packets, _)) in Action::ALL.iter().zip(&actions) {
        assert_eq!(
            returned[*a as usize], *packets,
            "{name}: returned {} times, counted {packets}",
            returned[*a as usize]
        );
    }
    assert_eq!(returned[Action::Aborted as usize], 0);

    // The kernel's counts are the reference's, reason by reason.
    for r in Reason::ALL {
        assert_eq!(
            reasons[*r as usize].1,
            expected[*r as usize],
            "{}: counted, expected",
            r.name()
        );
    }

    // A big run reaches every outcome, so none of them is left untested,
    // and the class of frames that once read their ports from the
    // Ethernet padding, in every shape.
    if frames >= 50_000 {
        for r in Reason::ALL {
            if *r == Reason::EncapFailed {
                continue; // needs a frame without headroom: never in XDP
            }
            // The fuzz config has no logical ports (the config keys do not
            // exist yet, nor does the reference model them): vlan.rs tests them.
            if *r == Reason::UnknownVlan {
                continue;
            }
            // The generator's packets fit the lab's 9000-byte MTU even
            // encapsulated (fuzz_lab); packet.rs tests the too-big paths.
            if matches!(
                r,
                Reason::TooBig | Reason::TooBigLimited | Reason::TooBigNoDf | Reason::TooBigNoIcmp
            ) {
                continue;
            }
            let n = reasons[*r as usize].1;
            assert!(n > 0, "no frame ended with reason {}", r.name());
        }
        for a in [Action::Drop, Action::Pass, Action::Tx, Action::Redirect] {
            assert!(returned[a as usize] > 0, "no frame got {}", a.name());
        }
        for rule in [
            "IPv4 ports only in the Ethernet padding",
            "IPv6 ports only in the Ethernet padding",
            "ICMPv6 type only in the Ethernet padding",
        ] {
            let n = rules.get(rule).copied().unwrap_or(0);
            assert!(n >= frames / 1000, "{rule}: only {n} frames");
        }
        assert!(
            padded_tagged >= frames / 1000,
            "{padded_tagged} padding-class frames with VLAN tags"
        );
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The invariants for one frame; the PoP a forwarded frame went to.
fn check(fuzz: &Fuzz, frame: &Frame, action: u32, out: &[u8]) -> Result<Option<u32>, String> {
    let input = &frame.bytes;
    match Action::from_u32(action) {
        None => Err(format!("unknown XDP action {action}")),
        Some(Action::Aborted) => Err("XDP_ABORTED".into()),
        Some(Action::Drop | Action::Pass) if out != input.as_slice() => {
            Err("passed or dropped frame was modified".into())
        }
        Some(Action::Drop | Action::Pass) => Ok(None),
        Some(a @ (Action::Tx | Action::Redirect)) => {
            check_forwarded(fuzz, input, out, a, fuzz.ifindex[frame.ingress]).map(Some)
        }
    }
}

/// The link layer with etherparse: (offset of the network header, EtherType).
fn link_layer(frame: &[u8]) -> Result<(usize, u16), String> {
    let eth =
        Ethernet2Slice::from_slice_without_fcs(frame).map_err(|e| format!("Ethernet: {e}"))?;
    let mut ether_type = eth.ether_type().0;
    let mut l3 = eth.header_len();
    for _ in 0..2 {
        if ether_type != 0x8100 && ether_type != 0x88a8 {
            break;
        }
        let tag =
            SingleVlanSlice::from_slice(&frame[l3..]).map_err(|e| format!("VLAN tag: {e}"))?;
        ether_type = tag.ether_type().0;
        l3 += tag.header_len();
    }
    Ok((l3, ether_type))
}

fn check_forwarded(
    fuzz: &Fuzz,
    input: &[u8],
    out: &[u8],
    action: Action,
    ingress: u32,
) -> Result<u32, String> {
    let (l3, ether_type) = link_layer(out)?;
    if out[12..l3] != input[12..l3] {
        return Err("VLAN tags or EtherType changed".into());
    }
    let (src_mac, dst_mac) = (&out[6..12], &out[0..6]);
    let Some((pop_id, pop)) = fuzz
        .pops
        .iter()
        .find(|(_, p)| p.src_mac == src_mac && p.dst_mac == dst_mac)
    else {
        return Err(format!("MACs {src_mac:02x?} → {dst_mac:02x?} are no PoP's"));
    };
    let tx = pop.ifindex == ingress;
    if tx != (action == Action::Tx) {
        return Err(format!(
            "{} to PoP {pop_id} (ifindex {}) arriving on ifindex {ingress}",
            action.name(),
            pop.ifindex
        ));
    }
    match ether_type {
        0x0800 => forwarded_v4(fuzz, pop, input, out, l3),
        0x86dd => forwarded_v6(fuzz, pop, input, out, l3),
        other => Err(format!("forwarded a frame with EtherType {other:#06x}")),
    }
    .map(|()| *pop_id)
}

/// The DS byte of a forwarded packet: the ECN bits kept, the DSCP either
/// kept or one of the configured rewrites.
fn ds_ok(fuzz: &Fuzz, before: u8, after: u8) -> Result<(), String> {
    if before & 3 != after & 3 {
        return Err(format!("ECN changed: {before:#04x} → {after:#04x}"));
    }
    if before >> 2 != after >> 2 && !fuzz.dscps.contains(&(after >> 2)) {
        return Err(format!("DSCP {} is not a configured one", after >> 2));
    }
    Ok(())
}

fn forwarded_v4(fuzz: &Fuzz, pop: &Pop, input: &[u8], out: &[u8], l3: usize) -> Result<(), String> {
    let encap = pop.flags & pop_flags::ENCAP_IPIP != 0;
    let extra = if encap { 20 } else { 0 };
    if out.len() != input.len() + extra {
        return Err(format!(
            "{} bytes out for {} in (encapsulated: {encap})",
            out.len(),
            input.len()
        ));
    }
    let inner_at = l3 + extra;
    let inner = Ipv4HeaderSlice::from_slice(&out[inner_at..])
        .map_err(|e| format!("inner IPv4 header: {e}"))?;
    let ihl = inner.slice().len();
    let total = usize::from(inner.total_len());
    if total < ihl || inner_at + total > out.len() {
        return Err(format!(
            "IPv4 total length {total} does not fit: header {ihl}, {} bytes after L2",
            out.len() - inner_at
        ));
    }
    if !ipv4_checksum_ok(inner.slice()) {
        return Err("inner IPv4 checksum wrong".into());
    }
    let orig = &input[l3..l3 + ihl];
    if inner.ttl() != orig[8].wrapping_sub(1) || orig[8] == 0 {
        return Err(format!("TTL {} → {}", orig[8], inner.ttl()));
    }
    ds_ok(fuzz, orig[1], inner.slice()[1])?;
    // Everything else in the header is the input's.
    let mut expect = orig.to_vec();
    expect[1] = inner.slice()[1];
    expect[8] = inner.ttl();
    expect[10..12].copy_from_slice(&inner.slice()[10..12]);
    if inner.slice() != expect.as_slice() {
        return Err("IPv4 header fields besides TTL, DS and checksum changed".into());
    }
    if out[inner_at + ihl..] != input[l3 + ihl..] {
        return Err("bytes after the IPv4 header changed".into());
    }
    if encap {
        let outer = Ipv4HeaderSlice::from_slice(&out[l3..])
            .map_err(|e| format!("outer IPv4 header: {e}"))?;
        let o = outer.slice();
        let want_len = inner.total_len().wrapping_add(20);
        let problems = [
            (outer.ihl() != 5, "IHL"),
            (outer.protocol().0 != 4, "protocol"),
            (outer.ttl() != ENCAP_TTL, "TTL"),
            (outer.source() != pop.tunnel_src_v4, "source"),
            (outer.destination() != pop.tunnel_dst_v4, "destination"),
            (outer.total_len() != want_len, "total length"),
            (o[1] != inner.slice()[1], "DS field"),
            (outer.dont_fragment() != inner.dont_fragment(), "DF"),
            (
                outer.more_fragments() || outer.fragments_offset().value() != 0,
                "fragment",
            ),
            (!ipv4_checksum_ok(o), "checksum"),
        ];
        if let Some((_, what)) = problems.iter().find(|(bad, _)| *bad) {
            return Err(format!("outer IPv4 header: wrong {what}: {o:02x?}"));
        }
    }
    Ok(())
}

fn forwarded_v6(fuzz: &Fuzz, pop: &Pop, input: &[u8], out: &[u8], l3: usize) -> Result<(), String> {
    let encap = pop.flags & pop_flags::ENCAP_IP6IP6 != 0;
    let extra = if encap { 40 } else { 0 };
    if out.len() != input.len() + extra {
        return Err(format!(
            "{} bytes out for {} in (encapsulated: {encap})",
            out.len(),
            input.len()
        ));
    }
    let inner_at = l3 + extra;
    let inner = Ipv6HeaderSlice::from_slice(&out[inner_at..])
        .map_err(|e| format!("inner IPv6 header: {e}"))?;
    let payload = usize::from(inner.payload_length());
    if inner_at + 40 + payload > out.len() {
        return Err(format!(
            "IPv6 payload length {payload} does not fit: {} bytes after the header",
            out.len() - inner_at - 40
        ));
    }
    let orig = &input[l3..l3 + 40];
    if inner.hop_limit() != orig[7].wrapping_sub(1) || orig[7] == 0 {
        return Err(format!("hop limit {} → {}", orig[7], inner.hop_limit()));
    }
    let tc = |h: &[u8]| (h[0] << 4) | (h[1] >> 4);
    ds_ok(fuzz, tc(orig), inner.traffic_class())?;
    let mut expect = orig.to_vec();
    expect[0..2].copy_from_slice(&inner.slice()[0..2]);
    expect[7] = inner.hop_limit();
    if inner.slice() != expect.as_slice() || (orig[1] & 0x0f) != (inner.slice()[1] & 0x0f) {
        return Err("IPv6 header fields besides hop limit and traffic class changed".into());
    }
    if out[inner_at + 40..] != input[l3 + 40..] {
        return Err("bytes after the IPv6 header changed".into());
    }
    if encap {
        let outer = Ipv6HeaderSlice::from_slice(&out[l3..])
            .map_err(|e| format!("outer IPv6 header: {e}"))?;
        let o = outer.slice();
        let problems = [
            (o[0..4] != inner.slice()[0..4], "traffic class / flow label"),
            (outer.next_header().0 != 41, "next header"),
            (outer.hop_limit() != ENCAP_TTL, "hop limit"),
            (outer.source() != pop.tunnel_src_v6, "source"),
            (outer.destination() != pop.tunnel_dst_v6, "destination"),
            (
                outer.payload_length() != inner.payload_length().wrapping_add(40),
                "payload length",
            ),
        ];
        if let Some((_, what)) = problems.iter().find(|(bad, _)| *bad) {
            return Err(format!("outer IPv6 header: wrong {what}: {o:02x?}"));
        }
    }
    Ok(())
}

/// Runs one frame: (action, output, the reasons counted for it).
fn run_one(fuzz: &Fuzz, ingress: usize, frame: &[u8]) -> (u32, Vec<u8>, Vec<&'static str>) {
    let before = fuzz.stats();
    let (action, out) = fuzz.h.run_on(fuzz.ifindex[ingress], frame);
    let after = fuzz.stats();
    let reasons = after
        .reasons
        .iter()
        .zip(&before.reasons)
        .filter(|((_, a), (_, b))| a.packets != b.packets)
        .map(|((name, _), _)| *name)
        .collect();
    (action, out, reasons)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// What the packet fuzzer found (seed 0x1, before the fix): frames whose
/// IPv4 total length, IPv4 header checksum or IPv6 payload length lies
/// were forwarded (the kernel's ip_rcv() / ip6_rcv_core() drop them).
/// Each now goes to the kernel untouched as `malformed`; the same frames
/// with honest headers, and with Ethernet padding after the IP packet,
/// are still forwarded.
#[test]
fn lying_lengths_and_bad_checksums_are_not_forwarded() {
    use edge_tests::frames::Pkt;
    let (_lab, ns) = fuzz_lab("fzrg");
    in_netns(&ns, || {
        let fuzz = Fuzz::new();
        let bb0 = INGRESS.iter().position(|i| *i == "bb0").unwrap();
        let v4 = Pkt::udp("203.0.113.200", "192.0.2.200").build();
        let v6 = Pkt::udp("2001:db8:1234::1", "2001:db8:d::10").build();
        let (l3, v4_len, v6_len) = (14, v4.len() - 14, v6.len() - 54);
        let with = |f: &[u8], edit: &dyn Fn(&mut Vec<u8>)| {
            let mut f = f.to_vec();
            edit(&mut f);
            f
        };
        let v4_total = |n: u16| {
            with(&v4, &|f| {
                f[l3 + 2..l3 + 4].copy_from_slice(&n.to_be_bytes());
                edge_tests::fuzzgen::set_ipv4_checksum(&mut f[l3..l3 + 20]);
            })
        };
        let v6_payload = |n: u16| {
            with(&v6, &|f| {
                f[l3 + 4..l3 + 6].copy_from_slice(&n.to_be_bytes())
            })
        };
        let padded = |f: &[u8]| with(f, &|f| f.extend_from_slice(&[0; 6]));

        // Honest frames, with and without padding: forwarded, well-formed.
        for (name, frame) in [
            ("IPv4", v4.clone()),
            ("IPv4 with Ethernet padding", padded(&v4)),
            ("IPv6", v6.clone()),
            ("IPv6 with Ethernet padding", padded(&v6)),
        ] {
            let (action, out, reasons) = run_one(&fuzz, bb0, &frame);
            assert_eq!(action, Action::Redirect as u32, "{name}");
            assert_eq!(reasons, ["transit"], "{name}");
            let f = Frame {
                bytes: frame,
                ingress: bb0,
                kind: Kind::Valid,
            };
            let pop = check(&fuzz, &f, action, &out).unwrap_or_else(|e| panic!("{name}: {e}"));
            agrees(&fuzz.expect(&f), action, Ok(Reason::Transit), pop)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }

        let mut cases: Vec<(String, usize, Vec<u8>)> = vec![
            (
                "IPv4 total length one over the frame".into(),
                bb0,
                v4_total(v4_len as u16 + 1),
            ),
            ("IPv4 total length 19".into(), bb0, v4_total(19)),
            ("IPv4 total length 0".into(), bb0, v4_total(0)),
            ("IPv4 total length 65535".into(), bb0, v4_total(65535)),
            (
                "IPv4 bad header checksum".into(),
                bb0,
                with(&v4, &|f| f[l3 + 11] ^= 0x10),
            ),
            (
                "IPv6 payload length one over the frame".into(),
                bb0,
                v6_payload(v6_len as u16 + 1),
            ),
            ("IPv6 payload length 65535".into(), bb0, v6_payload(65535)),
            // The ports must come from inside the datagram, never from the
            // Ethernet padding after it (the rest of the frame is padding).
            (
                "IPv4 total length 22: the ports in the padding".into(),
                bb0,
                v4_total(22),
            ),
            (
                "IPv4 total length 20: no UDP header".into(),
                bb0,
                v4_total(20),
            ),
            (
                "IPv6 payload length 2: the ports in the padding".into(),
                bb0,
                v6_payload(2),
            ),
            ("IPv6 payload length 0".into(), bb0, v6_payload(0)),
        ];
        // The frames the fuzzer reported, as it printed them.
        for (index, ingress, hex) in [
            (
                250,
                "bb0",
                "699b305a259e786f25c7b02481008a4c81005b79080045a9002a5fc84000c629ed9bc6336432cb00713713",
            ),
            (
                307,
                "peer0",
                "e9e48102b1352011be26f0d90800450300133bdf40000201c2f3c63364ed4867068d5be7c05b5f14b400e373cfcdfd6f2984bcaa684aa0d91a98665fb2220a55cd5f9073091c",
            ),
            (
                362,
                "tr0",
                "e2686639ac858cdb4205c83f080045d1001356c940006830bcc0cb007111c000024d",
            ),
            (
                236,
                "peer1",
                "86b892e340b47238136c566a86dd6365838d003229d620010db8000fc7fb187618fb66707b7820010db8000e9f990dfab1c849c0444b",
            ),
            (
                276,
                "peer0",
                "95d1e4b42bc130a1aa7e9d57810071de88a8a14086dd6d73757d0091a34020010db8000aa8042ca14f734c3efcbf20010db8000a57025da2e0c556ade24474d62bed5db7e9f924882c0a33f1389129",
            ),
            (
                500,
                "tr0",
                "06546943ddb824de2c9c968586dd649216780002043820010db8000cd729f1e6e6145222dab120010db8000db13de183c86268bff584e3",
            ),
        ] {
            let ingress = INGRESS.iter().position(|i| *i == ingress).unwrap();
            cases.push((format!("seed 0x1 frame {index}"), ingress, unhex(hex)));
        }
        for (name, ingress, frame) in cases {
            let (action, out, reasons) = run_one(&fuzz, ingress, &frame);
            assert_eq!(action, Action::Pass as u32, "{name}");
            assert_eq!(reasons, ["malformed"], "{name}");
            assert_eq!(out, frame, "{name}: output");
            // The reference classifier knows each of them.
            let f = Frame {
                bytes: frame,
                ingress,
                kind: Kind::LyingLength,
            };
            agrees(&fuzz.expect(&f), action, Ok(Reason::Malformed), None)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    });
}

/// The checker is not vacuous: real outputs pass it, and each way a
/// program could get a frame wrong is caught, a wrong action, reason or
/// PoP (against the reference classifier) too.
#[test]
fn checker_catches_broken_outputs() {
    use edge_tests::frames::Pkt;
    let (_lab, ns) = fuzz_lab("fzck");
    in_netns(&ns, || {
        let fuzz = Fuzz::new();
        let at = |name: &str| INGRESS.iter().position(|i| *i == name).unwrap();
        // (ingress, frame, action): transit in place, IPv4 and IPv6 tunnels.
        let cases = [
            (
                at("bb0"),
                Pkt::udp("203.0.113.200", "192.0.2.200").build(),
                Action::Redirect,
            ),
            (
                at("tr0"),
                Pkt::udp("203.0.113.200", "198.51.100.10").build(),
                Action::Redirect,
            ),
            (
                at("tr0"),
                Pkt::udp("2001:db8:1234::1", "2001:db8:a::10").build(),
                Action::Redirect,
            ),
        ];
        for (ingress, input, want) in cases {
            let (action, out, _) = run_one(&fuzz, ingress, &input);
            assert_eq!(action, want as u32);
            let frame = Frame {
                bytes: input.clone(),
                ingress,
                kind: Kind::Valid,
            };
            let pop = check(&fuzz, &frame, action, &out).expect("the real output passes");
            let verdict = fuzz.expect(&frame);
            let reason = verdict.reason;
            agrees(&verdict, action, Ok(reason), pop).expect("the real outcome agrees");
            for (what, action, reason, pop) in [
                ("another action", Action::Pass as u32, Ok(reason), pop),
                ("another reason", action, Ok(Reason::Backbone), pop),
                ("another PoP", action, Ok(reason), pop.map(|p| p + 1)),
                ("no PoP", action, Ok(reason), None),
                ("two reasons counted", action, Err("moved".to_string()), pop),
            ] {
                assert!(
                    agrees(&verdict, action, reason, pop).is_err(),
                    "{what} got past the reference"
                );
            }
            let encap = out.len() > input.len();
            let v4 = out[12..14] == [0x08, 0x00];
            let inner = 14 + out.len() - input.len();
            let ttl_at = inner + if v4 { 8 } else { 7 };
            let mut broken: Vec<(&str, u32, Vec<u8>)> = vec![
                ("aborted", 0, out.clone()),
                ("unknown action", 9, out.clone()),
                ("TX to another port", Action::Tx as u32, out.clone()),
                ("passed but modified", Action::Pass as u32, out.clone()),
                ("dropped but modified", Action::Drop as u32, out.clone()),
            ];
            let mut edit = |what: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
                let mut o = out.clone();
                f(&mut o);
                broken.push((what, action, o));
            };
            edit("TTL not decremented", &|o| o[ttl_at] += 1);
            edit("TTL decremented twice", &|o| o[ttl_at] -= 1);
            edit("payload changed", &|o| *o.last_mut().unwrap() ^= 1);
            edit("frame grew", &|o| o.push(0));
            edit("frame shrank", &|o| {
                o.pop();
            });
            edit("unknown MAC", &|o| o[0] ^= 1);
            edit("EtherType changed", &|o| o[12] ^= 0x80);
            edit("ECN changed", &|o| {
                o[inner + 1] ^= if v4 { 1 } else { 0x10 }
            });
            if v4 {
                edit("checksum wrong", &|o| o[inner + 11] ^= 1);
                edit("identification changed", &|o| o[inner + 4] ^= 1);
                edit("total length beyond the frame", &|o| o[inner + 2] ^= 0x40);
            } else {
                edit("flow label changed", &|o| o[inner + 3] ^= 1);
                edit("payload length beyond the frame", &|o| o[inner + 4] ^= 0x40);
            }
            if encap {
                edit("outer TTL", &|o| o[14 + if v4 { 8 } else { 7 }] ^= 1);
                edit("outer destination", &|o| {
                    let n = o.len();
                    o[if v4 { 14 + 19 } else { 14 + 39 }.min(n - 1)] ^= 1
                });
                edit("outer length", &|o| o[14 + if v4 { 3 } else { 5 }] ^= 1);
            }
            for (what, action, o) in broken {
                assert!(
                    check(&fuzz, &frame, action, &o).is_err(),
                    "{what} got through the checker"
                );
            }
        }
    });
}
