//! Per-packet cost: BPF_PROG_TEST_RUN batches through `bench_reset` of the floor, `edge` (DIR-24-8) and `edge_lpm` (LPM trie), each batch checked.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Instant,
};

use anyhow::{Context as _, Result, ensure};
use aya::{
    Ebpf,
    maps::{Array, LpmTrie, MapData, ProgramArray, lpm_trie::Key},
    programs::{TestRun as _, TestRunOptions},
};
use edge_common::{Action, PrefixEntry, Reason, map_names, prog_names};
use edge_tests::{
    frames::Pkt,
    harness::{
        self,
        maps::{Count, Counters, Ipv6Usage, Stats, Tables},
        netdev,
    },
};
use ipnet::IpNet;
use rand::{Rng, SeedableRng, rngs::SmallRng};

use crate::{
    BB_MAC, CONFIG, CUST_MAC, FRAME, NH_CUST, RUNS, Sizes, TEMPLATES,
    prefixes::{PrefixGen, RealV6, bench_entry_in, host_in},
    report::Report,
};

#[derive(Clone, Debug)]
pub struct Figure {
    pub family: &'static str,
    pub prefixes: usize,
    /// `hot`, `spread` or `miss`.
    pub case: &'static str,
    /// The edge program (DIR-24-8 for IPv4, the multibit trie for IPv6).
    pub fib: Measured,
    /// The edge program built on the LPM trie.
    pub lpm: Measured,
    /// IPv6: what the multibit trie holds for the table.
    pub usage: Option<Ipv6Usage>,
}

/// The family of the real-shaped IPv6 table ([`RealV6`]).
pub const REAL_V6: &str = "IPv6 real-shaped";

/// One program's figure, from RUNS batches each between two floor batches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    /// ns per packet through `bench_reset`, median of the batches.
    pub ns: f64,
    /// The floor run directly, median of the batches adjacent to this program's.
    pub floor: f64,
    /// The floor through `bench_reset` with this figure's templates and
    /// words, median of the adjacent batches.
    pub wrapped_floor: f64,
    /// Median over the batches of (ns − wrapped floor + floor) / floor,
    /// each batch with the mean of the floors measured just before and just after it.
    pub ratio: f64,
}

/// The floor alone, and every floor batch of the run (for its stability).
#[derive(Default)]
pub struct Floor {
    /// Median of the floor's batches at the start (its own frame, the MAC words restored).
    pub direct: f64,
    /// The floor program through `bench_reset` (word restore + tail call), as above.
    pub wrapped: f64,
    /// Every (direct, wrapped) floor pair of the run, in order.
    pub samples: Vec<(f64, f64)>,
}

impl Floor {
    /// What `bench_reset` adds to every wrapped figure.
    pub fn overhead(&self) -> f64 {
        self.wrapped - self.direct
    }
}

/// The median of `v` (the mean of the two middle values for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub struct Bench {
    pub edge: Ebpf,
    pub harness: Ebpf,
    pub tables: Tables,
    pub counters: Counters,
    pub bb0: u32,
    /// The port the batches' frames arrive on (bb0 unless a bench sets
    /// another: frames from the customer arrive on cust0).
    pub ingress: u32,
    pub repeat: u32,
    /// The policy table id of the config's prefix (`to-cust`).
    pub policy: u32,
}

/// The program a batch runs through `bench_reset`.
#[derive(Clone, Copy, PartialEq)]
pub enum Target {
    Floor,
    Edge,
    EdgeLpm,
}

/// What every run of a batch must have done.
pub struct Expect {
    pub action: Action,
    pub reason: Option<Reason>,
    /// Input frames, cycled through by `bench_reset`.
    pub templates: Vec<Vec<u8>>,
    /// Output of template i.
    pub outputs: Vec<Vec<u8>>,
}

/// The 8-byte words `bench_reset` restores for `expect` (bit k: bytes
/// 8k..8k+8): those a program rewrites in some template, or in which the
/// templates differ; plus the two MAC words the floor swaps, so that the
/// floor through the wrapper does the same work as the program. Every
/// other word holds the same bytes in every template and every output,
/// so it never needs restoring.
pub fn words(expect: &Expect) -> u32 {
    fn word(f: &[u8], k: usize) -> &[u8] {
        &f[8 * k..8 * k + 8]
    }
    let mut words = 0b11;
    for k in 0..FRAME / 8 {
        let t0 = word(&expect.templates[0], k);
        if expect
            .templates
            .iter()
            .zip(&expect.outputs)
            .any(|(t, o)| word(t, k) != t0 || word(o, k) != word(t, k))
        {
            words |= 1 << k;
        }
    }
    words
}

/// A frame with its MACs swapped (the floor's output).
pub fn swap_macs(frame: &[u8]) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[..6].copy_from_slice(&frame[6..12]);
    out[6..12].copy_from_slice(&frame[..6]);
    out
}

impl Bench {
    pub fn new(repeat: u32) -> Result<Self> {
        Self::with(repeat, &[prog_names::EDGE, prog_names::EDGE_LPM])
    }

    /// [`Bench::new`] with only `programs` of the edge object loaded.
    pub fn with(repeat: u32, programs: &[&str]) -> Result<Self> {
        let (edge, tables, counters, _) = harness::load(CONFIG, programs)?;
        // The table id compile gave the config's prefix (192.0.2.0/24).
        let policy = tables
            .lookup("192.0.2.1".parse()?)?
            .context("the bench config's prefix is not in the maps")?
            .policy;
        let harness = harness::load_bench(&["bench_floor", "bench_reset"])?;
        let bb0 = netdev::ifindex("bb0")?;
        let mut b = Self {
            edge,
            harness,
            tables,
            counters,
            bb0,
            ingress: bb0,
            repeat,
            policy,
        };
        // The reference tries start with what the config registered.
        for (net, entry) in b.tables.prefixes()? {
            b.set_reference(net, Some(entry))?;
        }
        Ok(b)
    }

    /// Registers a prefix as edged does (registry and edge's tables) and in
    /// the kernel LPM trie `edge_lpm` looks up instead (`EDGE_LPM_V4`/`_V6`,
    /// which edged never writes).
    pub fn set_prefix(&mut self, net: IpNet, entry: PrefixEntry) -> Result<()> {
        self.tables.set_prefix(net, entry)?;
        self.set_reference(net, Some(entry))
    }

    /// Unregisters prefixes from both.
    pub fn del_prefixes(&mut self, nets: &[IpNet]) -> Result<()> {
        self.tables.del_prefixes(nets).1?;
        for net in nets {
            self.set_reference(*net, None)?;
        }
        Ok(())
    }

    /// Writes (`Some`) or removes `net` in the reference LPM trie of its family.
    fn set_reference(&mut self, net: IpNet, entry: Option<PrefixEntry>) -> Result<()> {
        fn write<K: aya::Pod>(
            ebpf: &mut Ebpf,
            name: &str,
            key: Key<K>,
            entry: Option<PrefixEntry>,
        ) -> Result<()> {
            let mut trie: LpmTrie<&mut MapData, K, PrefixEntry> =
                LpmTrie::try_from(ebpf.map_mut(name).with_context(|| name.to_string())?)?;
            match entry {
                Some(e) => trie.insert(&key, e, 0)?,
                None => trie.remove(&key)?,
            }
            Ok(())
        }
        let len = u32::from(net.prefix_len());
        match net.trunc() {
            IpNet::V4(n) => write(
                &mut self.edge,
                map_names::LPM_V4,
                Key::new(len, n.network().octets()),
                entry,
            ),
            IpNet::V6(n) => write(
                &mut self.edge,
                map_names::LPM_V6,
                Key::new(len, n.network().octets()),
                entry,
            ),
        }
    }

    /// Points `bench_reset`'s tail call at `target`.
    pub fn point(&mut self, target: Target) -> Result<()> {
        let fd = match target {
            Target::Floor => harness::xdp(&self.harness, "bench_floor")?.fd()?,
            Target::Edge => harness::xdp(&self.edge, prog_names::EDGE)?.fd()?,
            Target::EdgeLpm => harness::xdp(&self.edge, prog_names::EDGE_LPM)?.fd()?,
        }
        .try_clone()?;
        let mut progs: ProgramArray<&mut MapData> =
            ProgramArray::try_from(self.harness.map_mut("BENCH_PROGS").context("BENCH_PROGS")?)?;
        progs.set(0, &fd, 0)?;
        Ok(())
    }

    /// Loads `expect`'s templates and the words to restore into `bench_reset`.
    ///
    /// `bench_reset` restores the first FRAME bytes only: a longer frame
    /// (a TCP segment with options) must hold the same bytes past them in
    /// every template and every output.
    pub fn arm(&mut self, expect: &Expect) -> Result<()> {
        let templates = &expect.templates;
        ensure!(templates.len().is_power_of_two() && templates.len() <= TEMPLATES);
        let tail = &templates[0][FRAME.min(templates[0].len())..];
        ensure!(
            templates
                .iter()
                .chain(&expect.outputs)
                .all(|f| f.len() == templates[0].len() && f.get(FRAME..) == Some(tail)),
            "the templates and outputs differ past the first {FRAME} bytes"
        );
        let mut frames: Array<&mut MapData, [u64; FRAME / 8]> = Array::try_from(
            self.harness
                .map_mut("BENCH_FRAMES")
                .context("BENCH_FRAMES")?,
        )?;
        for (i, t) in templates.iter().enumerate() {
            ensure!(t.len() >= FRAME, "template of {} bytes", t.len());
            let mut words = [0u64; FRAME / 8];
            for (w, c) in words.iter_mut().zip(t[..FRAME].chunks(8)) {
                *w = u64::from_ne_bytes(c.try_into().unwrap());
            }
            frames.set(i as u32, words, 0)?;
        }
        let mut state: Array<&mut MapData, u32> =
            Array::try_from(self.harness.map_mut("BENCH_STATE").context("BENCH_STATE")?)?;
        state.set(0, templates.len() as u32 - 1, 0)?;
        state.set(2, words(expect), 0)?;
        Ok(())
    }

    pub fn seq(&mut self, set: Option<u32>) -> Result<u32> {
        let mut state: Array<&mut MapData, u32> =
            Array::try_from(self.harness.map_mut("BENCH_STATE").context("BENCH_STATE")?)?;
        if let Some(v) = set {
            state.set(1, v, 0)?;
        }
        Ok(state.get(&1, 0)?)
    }

    pub fn stats(&self) -> Result<Stats> {
        Ok(self.counters.read(0)?)
    }

    /// One BPF_PROG_TEST_RUN of `self.repeat` runs; returns ns per run.
    ///
    /// Every counted run takes the measured path: `bench_reset` copies a
    /// fresh template frame before each run (so the TTL never runs out
    /// and every run sees the same bytes), and after the batch the bench
    /// checks that (1) the return value is the expected action, (2) the
    /// output frame is exactly the expected rewrite of the last template,
    /// (3) `bench_reset` ran `repeat` times (its sequence counter), and (4)
    /// the program's action and reason counters grew by exactly `repeat`
    /// in the expected action and reason and by 0 in every other.
    pub fn run_batch(&mut self, target: Target, direct: bool, expect: &Expect) -> Result<f64> {
        let input = &expect.templates[0].clone();
        let ctx = harness::xdp_md(input.len(), self.ingress);
        self.seq(Some(0))?;
        let before = self.stats()?;
        let mut out = vec![0u8; input.len() + 256];
        let prog = if direct {
            harness::xdp(&self.harness, "bench_floor")?
        } else {
            harness::xdp(&self.harness, "bench_reset")?
        };
        let t = Instant::now();
        let result = prog.test_run(TestRunOptions {
            data_in: Some(input),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            repeat: self.repeat,
            ..TestRunOptions::new()
        })?;
        // The kernel's own figure: the time of the repeat loop divided by
        // `repeat`, in whole ns. The wall clock around the syscall is not
        // usable: the syscall has a fixed cost of milliseconds here.
        let wall = t.elapsed().as_nanos() as f64 / f64::from(self.repeat);
        let ns = result.duration.as_nanos() as f64;
        if std::env::var_os("EDGE_BENCH_DEBUG").is_some() {
            eprintln!("  batch: kernel {ns} ns/run, wall {wall:.2} ns/run");
        }
        out.truncate(result.data_size_out as usize);
        let action = if target == Target::Floor {
            Action::Tx
        } else {
            expect.action
        };
        if std::env::var_os("EDGE_BENCH_DEBUG").is_some() && result.return_value != action as u32 {
            let after = self.stats()?;
            for ((name, b), (_, a)) in before.reasons.iter().zip(&after.reasons) {
                if a.packets != b.packets {
                    eprintln!("  reason {name}: {}", a.packets - b.packets);
                }
            }
            eprintln!(
                "  out {:02x?}\n  in  {:02x?}\n  words {:b}",
                out,
                input,
                words(expect)
            );
        }
        ensure!(
            result.return_value == action as u32,
            "returned {} instead of {action:?}",
            result.return_value,
        );
        if direct {
            // The floor swaps MACs in place: an even number of runs restores the input.
            ensure!(
                self.repeat.is_multiple_of(2) && out == *input,
                "floor output"
            );
            return Ok(ns);
        }
        let last = (self.repeat as usize - 1) % expect.outputs.len();
        let want = if target == Target::Floor {
            swap_macs(&expect.templates[last])
        } else {
            expect.outputs[last].clone()
        };
        ensure!(
            out == want,
            "output frame differs from the expected rewrite of template {last}"
        );
        ensure!(
            self.seq(None)? == self.repeat,
            "bench_reset did not run every time"
        );
        if target != Target::Floor {
            let after = self.stats()?;
            // `repeat` runs counted under `counted`, none under any other.
            let only =
                |what: &str, counted: &str, before: &[(&str, Count)], after: &[(&str, Count)]| {
                    for ((name, b), (_, a)) in before.iter().zip(after) {
                        let want = if *name == counted {
                            u64::from(self.repeat)
                        } else {
                            0
                        };
                        ensure!(
                            a.packets - b.packets == want,
                            "{what} {name}: {} runs, expected {want}",
                            a.packets - b.packets
                        );
                    }
                    Ok(())
                };
            only(
                "action",
                expect.action.name(),
                &before.actions,
                &after.actions,
            )?;
            let reason = expect.reason.context("reason")?;
            only("reason", reason.name(), &before.reasons, &after.reasons)?;
        }
        ensure!(
            ns > 0.0 && ns <= wall + 1.0,
            "kernel time {ns} ns, wall {wall} ns"
        );
        Ok(ns)
    }

    /// One floor pair: the floor run directly, then through `bench_reset`
    /// with the armed templates and words; leaves the tail call at `back`.
    pub fn floors(&mut self, expect: &Expect, back: Option<Target>) -> Result<(f64, f64)> {
        let direct = self.run_batch(Target::Floor, true, expect)?;
        self.point(Target::Floor)?;
        let wrapped = self.run_batch(Target::Floor, false, expect)?;
        if let Some(t) = back {
            self.point(t)?;
        }
        Ok((direct, wrapped))
    }

    /// RUNS batches of each of `targets` on `expect`, interleaved with
    /// floor pairs: F, A, F, B, F, A, F, B, ..., F. Each program batch is
    /// normalised by the floors just before and just after it, so a
    /// disturbance of the machine touches the batches it falls on, not
    /// every ratio of the run. Every floor pair goes to `samples`.
    pub fn measure(
        &mut self,
        targets: &[Target],
        expect: &Expect,
        samples: &mut Vec<(f64, f64)>,
    ) -> Result<Vec<Measured>> {
        self.arm(expect)?;
        let mut floors = vec![self.floors(expect, None)?];
        let mut batches: Vec<Vec<(f64, usize)>> = vec![Vec::new(); targets.len()];
        for _ in 0..RUNS {
            for (i, &t) in targets.iter().enumerate() {
                self.point(t)?;
                let ns = self.run_batch(t, false, expect)?;
                batches[i].push((ns, floors.len() - 1));
                floors.push(self.floors(expect, None)?);
            }
        }
        samples.extend(&floors);
        Ok(batches
            .iter()
            .map(|b| {
                let adjacent = |j: usize| {
                    let (d0, w0) = floors[j];
                    let (d1, w1) = floors[j + 1];
                    ((d0 + d1) / 2.0, (w0 + w1) / 2.0)
                };
                let ns: Vec<f64> = b.iter().map(|&(ns, _)| ns).collect();
                let direct: Vec<f64> = b.iter().map(|&(_, j)| adjacent(j).0).collect();
                let wrapped: Vec<f64> = b.iter().map(|&(_, j)| adjacent(j).1).collect();
                let ratio: Vec<f64> = b
                    .iter()
                    .map(|&(ns, j)| {
                        let (d, w) = adjacent(j);
                        (ns - w + d) / d
                    })
                    .collect();
                Measured {
                    ns: median(&ns),
                    floor: median(&direct),
                    wrapped_floor: median(&wrapped),
                    ratio: median(&ratio),
                }
            })
            .collect())
    }
}

impl Expect {
    /// Forwarded toward the customer: redirected to cust0, policy reason.
    pub fn forward(pkts: &[Pkt]) -> Self {
        Self {
            action: Action::Redirect,
            reason: Some(Reason::Policy),
            templates: pkts.iter().map(Pkt::build).collect(),
            outputs: pkts
                .iter()
                .map(|p| p.forwarded(CUST_MAC, NH_CUST, None))
                .collect(),
        }
    }

    /// Unregistered, default pass: handed to the kernel untouched.
    pub fn miss(pkts: &[Pkt]) -> Self {
        let templates: Vec<Vec<u8>> = pkts.iter().map(Pkt::build).collect();
        Self {
            action: Action::Pass,
            reason: Some(Reason::Unregistered),
            outputs: templates.clone(),
            templates,
        }
    }
}

/// A 64-byte UDP frame arriving on bb0 toward `dst`.
pub fn frame_to(dst: IpAddr) -> Pkt {
    let (src, headers) = match dst {
        IpAddr::V4(_) => ("198.51.100.7", 14 + 20 + 8),
        IpAddr::V6(_) => ("2001:db8::7", 14 + 40 + 8),
    };
    Pkt::udp(src, &dst.to_string()).with(|p| {
        p.dst_mac = BB_MAC;
        p.payload = vec![0x5a; FRAME - headers];
    })
}

/// Runs the calling thread SCHED_FIFO, so that other work on a shared
/// machine (compilers) does not preempt a batch and inflate its time.
/// Batches are short (≤ 1 s) and the kernel's RT throttling still leaves
/// other tasks 5% of each second.
pub fn realtime() -> Result<()> {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: plain syscall on the calling thread with a valid parameter.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        anyhow::bail!("sched_setscheduler: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

pub fn per_packet(sizes: &Sizes, report: &mut Report) -> Result<()> {
    realtime()?;
    let mut b = Bench::new(sizes.repeat)?;
    let floor_pkt = frame_to("198.51.100.1".parse()?);
    let input = floor_pkt.build();
    let floor = Expect {
        action: Action::Tx,
        reason: None,
        outputs: vec![swap_macs(&input)],
        templates: vec![input],
    };
    // The floor alone: RUNS floor pairs on its own frame.
    b.arm(&floor)?;
    let mut start = Vec::new();
    for _ in 0..RUNS {
        start.push(b.floors(&floor, None)?);
    }
    report.floor.direct = median(&start.iter().map(|f| f.0).collect::<Vec<_>>());
    report.floor.wrapped = median(&start.iter().map(|f| f.1).collect::<Vec<_>>());
    report.floor.samples.extend(&start);
    eprintln!(
        "floor: {:.2} ns direct, {:.2} ns through bench_reset",
        report.floor.direct, report.floor.wrapped
    );

    let mut generator = PrefixGen::new(1);
    let mut real = RealV6::new(3, sizes.v6_real.iter().copied().max().unwrap_or(0));
    let mut rng = SmallRng::seed_from_u64(2);
    for family in ["IPv4", "IPv6", REAL_V6] {
        let v4 = family == "IPv4";
        let mut nets: Vec<IpNet> = Vec::new();
        let counts = match family {
            "IPv4" => &sizes.v4,
            "IPv6" => &sizes.v6,
            _ => &sizes.v6_real,
        };
        if family == REAL_V6 {
            // The synthetic IPv6 table goes first (one IPv6 table at a time).
            let v6: Vec<IpNet> = b
                .tables
                .prefixes()?
                .into_iter()
                .filter_map(|(n, _)| matches!(n, IpNet::V6(_)).then_some(n))
                .collect();
            b.del_prefixes(&v6)?;
        }
        for &n in counts {
            let t = Instant::now();
            while nets.len() < n {
                let net = match family {
                    "IPv4" => IpNet::V4(generator.v4()),
                    "IPv6" => IpNet::V6(generator.v6()),
                    _ => IpNet::V6(real.next()),
                };
                b.set_prefix(net, bench_entry_in(nets.len(), b.policy))?;
                nets.push(net);
            }
            eprintln!(
                "{family}: {n} prefixes registered ({:.1} s)",
                t.elapsed().as_secs_f64()
            );
            let usage = (!v4).then(|| b.tables.ipv6_usage());
            if let Some(u) = usage {
                eprintln!(
                    "{family}: {n} prefixes take {} trie nodes, {} tails, {} leaves",
                    u.nodes, u.tails, u.leaves
                );
            }
            let usable = |a: &IpAddr| match a {
                IpAddr::V4(a) => a.octets()[0] != 127,
                IpAddr::V6(_) => true,
            };
            let mut hit = || loop {
                let a = host_in(nets[rng.random_range(0..nets.len())], &mut rng);
                if usable(&a) {
                    return a;
                }
            };
            let hot = vec![hit()];
            let spread: Vec<IpAddr> = (0..TEMPLATES).map(|_| hit()).collect();
            let mut miss = Vec::new();
            while miss.len() < TEMPLATES {
                let a = match family {
                    "IPv4" => IpAddr::V4(Ipv4Addr::from(rng.random_range(1u32 << 24..224 << 24))),
                    "IPv6" => IpAddr::V6(Ipv6Addr::from(
                        rng.random::<u128>() & (u128::MAX >> 3) | (1u128 << 125),
                    )),
                    _ => IpAddr::V6(real.anywhere()),
                };
                if usable(&a) && b.tables.lookup(a)?.is_none() {
                    miss.push(a);
                }
            }
            for (case, dsts) in [("hot", hot), ("spread", spread), ("miss", miss)] {
                let pkts: Vec<Pkt> = dsts.into_iter().map(frame_to).collect();
                let expect = if case == "miss" {
                    Expect::miss(&pkts)
                } else {
                    Expect::forward(&pkts)
                };
                let m = b.measure(
                    &[Target::Edge, Target::EdgeLpm],
                    &expect,
                    &mut report.floor.samples,
                )?;
                let (fib, lpm) = (m[0], m[1]);
                eprintln!(
                    "{family} {n:>9} {case:<6}: floor {:.1} ns ({:.1} wrapped), edge {:6.2} ns ({:.2}x floor), LPM trie {:6.2} ns ({:.2}x)",
                    fib.floor, fib.wrapped_floor, fib.ns, fib.ratio, lpm.ns, lpm.ratio
                );
                report.figures.push(Figure {
                    family,
                    prefixes: n,
                    case,
                    fib,
                    lpm,
                    usage,
                });
            }
        }
    }
    Ok(())
}
