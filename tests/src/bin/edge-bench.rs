//! `cargo xtask bench`: every figure of BENCHMARKS.md, measured in one run
//! on this machine, and the plot of ns/packet against prefix count.
//!
//! - per-packet cost with BPF_PROG_TEST_RUN (repeat 1,000,000, median of 5)
//!   of the full forwarding path, DIR-24-8 (`edge`) and the kernel's LPM
//!   trie (`edge_lpm`), for hits on one hot destination, hits spread over
//!   4096 destinations and misses, against the floor (swap MACs, XDP_TX);
//! - throughput through veth, XDP forwarding against the kernel's own;
//! - control plane: prefix load time, loader RSS, map memory, failover;
//!   edged's path for a whole config of 100k/1M prefixes (compile + apply)
//!   and a reload changing 1% of them; route sync of 100k/1M routes through
//!   a running edged, with its RSS.
//!
//! How every counted run takes the measured path: see `run_batch`.

use std::{
    collections::HashSet,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, ProgramArray},
    programs::{TestRun as _, TestRunAttrs, TestRunOptions, Xdp, XdpMode},
};
use clap::Parser;
use edge_common::{Action, POLICY_SLOTS, PrefixEntry, Reason, prog_names};
use edge_tests::{
    frames::Pkt,
    netns::{Lab, in_netns, netns_command, require_root},
    reference::write_plan,
    topology::Edged,
};
use edge_userspace::{
    config,
    dataplane::{
        loader,
        maps::{Counters, Stats, Tables, prefix_slot},
    },
    desired::{self, state::State},
    host::netdev,
    plan::{Member, Method},
    policy,
    policy::{Choices, PopView as PopHealth},
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rand::{Rng, SeedableRng, rngs::SmallRng};

#[derive(Parser)]
struct Cli {
    /// Write the report here (Markdown).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the plot here (SVG).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Commit measured (for the report).
    #[arg(long, default_value = "unknown")]
    commit: String,
    /// Small sizes and repeat counts, for trying the bench out (not for the record).
    #[arg(long)]
    quick: bool,
    /// Run one section only (`packet`: the per-packet figures, printed to
    /// stderr; no report is written).
    #[arg(long)]
    only: Option<String>,
    /// Internal: load this many prefixes of a family in a fresh process and
    /// print its load time, RSS and map memory as JSON.
    #[arg(long, num_args = 2, value_names = ["FAMILY", "COUNT"])]
    load_only: Option<Vec<String>>,
    /// Internal: compile and apply a config of this many IPv4 prefixes into
    /// fresh maps, then a reload changing 1% of them, in a fresh process
    /// (run in a namespace with the bench's interfaces); prints JSON.
    #[arg(long, value_name = "COUNT")]
    compile_only: Option<usize>,
    /// Only the control-plane section (for working on it, not for the record).
    #[arg(long)]
    control_only: bool,
}

const FRAME: usize = 64;
const TEMPLATES: usize = 4096;
const RUNS: usize = 5;
const BB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xe0, 0x00];
const CUST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xe0, 0x01];
const NH_CUST: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x01];

const CONFIG: &str = r#"
[forwarding]
default_action = "pass"
backbone_exit = "core"

[[ports]]
interface = "bb0"
role = "backbone"
[[ports]]
interface = "cust0"
role = "peering"

[[pops]]
name = "cust"
interface = "cust0"
mac = "02:00:00:00:cc:01"
[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:c0:01"

[[policies]]
name = "to-cust"
method = "weighted"
members = [{ pop = "cust", weight = 1 }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "to-cust"
"#;

fn main() -> Result<()> {
    let cli = Cli::parse();
    require_root();
    if let Some(args) = &cli.load_only {
        return load_only(&args[0], args[1].parse().context("prefix count")?);
    }
    if let Some(n) = cli.compile_only {
        return compile_only(n);
    }
    let sizes = Sizes::new(cli.quick);
    let started = Instant::now();
    let mut report = Report {
        repeat: sizes.repeat,
        ..Report::default()
    };

    if cli.control_only {
        eprintln!("== control plane");
        report.control = control_plane(&sizes)?;
        println!("{}", report.markdown(&cli.commit, cli.quick));
        return Ok(());
    }
    let mut lab = Lab::new("bench");
    let ns = lab.add_ns("pkt");
    lab.veth(
        (&ns, "bb0", &mac(BB_MAC)),
        (&ns, "bb0x", "02:00:00:00:e1:00"),
    );
    lab.veth(
        (&ns, "cust0", &mac(CUST_MAC)),
        (&ns, "cust0x", "02:00:00:00:e1:01"),
    );
    in_netns(&ns, || per_packet(&sizes, &mut report))?;
    drop(lab);
    if cli.only.as_deref() == Some("packet") {
        eprintln!(
            "bench: per-packet only, done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    eprintln!("== throughput through veth");
    report.throughput = throughput(&sizes)?;
    eprintln!("== control plane");
    report.control = control_plane(&sizes)?;
    eprintln!("bench: done in {:.0} s", started.elapsed().as_secs_f64());

    let text = report.markdown(&cli.commit, cli.quick);
    println!("{text}");
    if let Some(out) = &cli.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bench: wrote {}", out.display());
    }
    if let Some(plot) = &cli.plot {
        report.plot(plot)?;
        eprintln!("bench: wrote {}", plot.display());
    }
    Ok(())
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

struct Sizes {
    v4: Vec<usize>,
    v6: Vec<usize>,
    repeat: u32,
    load: Vec<usize>,
    throughput_secs: f64,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                v4: vec![1_000, 20_000],
                v6: vec![1_000, 20_000],
                repeat: 100_000,
                load: vec![20_000],
                throughput_secs: 0.5,
            }
        } else {
            Self {
                v4: vec![1_000, 100_000, 1_000_000],
                v6: vec![1_000, 100_000, 200_000],
                repeat: 1_000_000,
                load: vec![100_000, 1_000_000],
                throughput_secs: 3.0,
            }
        }
    }
}

// ---------------------------------------------------------------- prefixes

/// Random IPv4 prefixes with a length mix like the public routing table
/// (mostly /24, then /22, /23, /21...), plus 1% longer than /24 (customer
/// registrations), in 1.0.0.0-223.255.255.255. Deterministic per seed.
struct PrefixGen {
    rng: SmallRng,
    seen: HashSet<IpNet>,
}

impl PrefixGen {
    fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
            seen: HashSet::new(),
        }
    }

    fn v4_len(&mut self) -> u8 {
        const MIX: [(u8, u32); 10] = [
            (24, 5900),
            (23, 1000),
            (22, 1100),
            (21, 500),
            (20, 450),
            (19, 300),
            (18, 180),
            (17, 120),
            (16, 320),
            (0, 130), // /8-/15 and /25-/32
        ];
        let mut r = self.rng.random_range(0..10_000u32);
        for (len, weight) in MIX {
            if r < weight {
                return match len {
                    0 if r < 30 => self.rng.random_range(8..16),
                    0 => self.rng.random_range(25..=32),
                    l => l,
                };
            }
            r -= weight;
        }
        24
    }

    fn v4(&mut self) -> Ipv4Net {
        loop {
            let len = self.v4_len();
            let a = self.rng.random_range(1u32 << 24..224 << 24);
            let net = Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc();
            if self.seen.insert(IpNet::V4(net)) {
                return net;
            }
        }
    }

    /// IPv6: mostly /48 and /32 (then /44, /40, /36, /29...) in 2000::/3.
    fn v6(&mut self) -> Ipv6Net {
        const MIX: [(u8, u32); 11] = [
            (48, 4800),
            (32, 1300),
            (44, 800),
            (40, 700),
            (36, 400),
            (29, 400),
            (46, 400),
            (47, 300),
            (56, 300),
            (64, 300),
            (28, 300),
        ];
        loop {
            let mut r = self.rng.random_range(0..10_000u32);
            let mut len = 48;
            for (l, weight) in MIX {
                if r < weight {
                    len = l;
                    break;
                }
                r -= weight;
            }
            let a: u128 = self.rng.random::<u128>() & (u128::MAX >> 3) | (1u128 << 125);
            let net = Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc();
            if self.seen.insert(IpNet::V6(net)) {
                return net;
            }
        }
    }
}

fn host_in(net: IpNet, rng: &mut SmallRng) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let host = rng.random::<u32>() & !u32::from(n.netmask());
            IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | host))
        }
        IpNet::V6(n) => {
            let host = rng.random::<u128>() & !u128::from(n.netmask());
            IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | host))
        }
    }
}

fn bench_entry(i: usize) -> PrefixEntry {
    PrefixEntry {
        slot: prefix_slot(i + 1),
        policy: 0,
        ..PrefixEntry::default()
    }
}

// ---------------------------------------------------------------- per packet

#[derive(Clone, Debug)]
struct Figure {
    family: &'static str,
    prefixes: usize,
    /// `hot`, `spread` or `miss`.
    case: &'static str,
    /// ns per packet, median of the runs, through `bench_reset`.
    fib: f64,
    lpm: f64,
}

#[derive(Default)]
struct Floor {
    direct: f64,
    /// The floor program through `bench_reset` (template copy + tail call).
    wrapped: f64,
}

impl Floor {
    /// What `bench_reset` adds to every wrapped figure.
    fn overhead(&self) -> f64 {
        self.wrapped - self.direct
    }
    /// A wrapped figure, net of `bench_reset`, as a multiple of the floor.
    fn ratio(&self, wrapped: f64) -> f64 {
        (wrapped - self.overhead()) / self.direct
    }
}

struct Bench {
    edge: Ebpf,
    harness: Ebpf,
    tables: Tables,
    counters: Counters,
    bb0: u32,
    repeat: u32,
}

/// The program a batch runs through `bench_reset`.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Floor,
    Edge,
    EdgeLpm,
}

/// What every run of a batch must have done.
struct Expect {
    action: Action,
    reason: Option<Reason>,
    /// Input frames, cycled through by `bench_reset`.
    templates: Vec<Vec<u8>>,
    /// Output of template i.
    outputs: Vec<Vec<u8>>,
}

impl Bench {
    fn new(repeat: u32) -> Result<Self> {
        let plan = config::parse(CONFIG).map_err(|e| anyhow::anyhow!("bench config: {e:?}"))?;
        let mut edge = loader::load()?;
        for name in [prog_names::EDGE, prog_names::EDGE_LPM] {
            let p: &mut Xdp = edge.program_mut(name).context(name)?.try_into()?;
            p.load()
                .with_context(|| format!("verifier rejected {name}"))?;
        }
        let mut tables = Tables::take(&mut edge)?;
        let counters = Counters::take(&mut edge)?;
        write_plan(&mut tables, &plan)?;
        let mut harness = EbpfLoader::new().load(loader::bench_object())?;
        for name in ["bench_floor", "bench_reset"] {
            let p: &mut Xdp = harness.program_mut(name).context(name)?.try_into()?;
            p.load()
                .with_context(|| format!("verifier rejected {name}"))?;
        }
        Ok(Self {
            edge,
            harness,
            tables,
            counters,
            bb0: netdev::ifindex("bb0")?,
            repeat,
        })
    }

    fn xdp<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Xdp> {
        Ok(ebpf.program(name).context("program")?.try_into()?)
    }

    /// Points `bench_reset`'s tail call at `target` and loads the templates.
    fn arm(&mut self, target: Target, templates: &[Vec<u8>]) -> Result<()> {
        ensure!(templates.len().is_power_of_two() && templates.len() <= TEMPLATES);
        let fd = match target {
            Target::Floor => Self::xdp(&self.harness, "bench_floor")?.fd()?,
            Target::Edge => Self::xdp(&self.edge, prog_names::EDGE)?.fd()?,
            Target::EdgeLpm => Self::xdp(&self.edge, prog_names::EDGE_LPM)?.fd()?,
        }
        .try_clone()?;
        let mut progs: ProgramArray<&mut MapData> =
            ProgramArray::try_from(self.harness.map_mut("BENCH_PROGS").context("BENCH_PROGS")?)?;
        progs.set(0, &fd, 0)?;
        let mut frames: Array<&mut MapData, [u64; FRAME / 8]> = Array::try_from(
            self.harness
                .map_mut("BENCH_FRAMES")
                .context("BENCH_FRAMES")?,
        )?;
        for (i, t) in templates.iter().enumerate() {
            ensure!(t.len() == FRAME, "template of {} bytes", t.len());
            let mut words = [0u64; FRAME / 8];
            for (w, c) in words.iter_mut().zip(t.chunks(8)) {
                *w = u64::from_ne_bytes(c.try_into().unwrap());
            }
            frames.set(i as u32, words, 0)?;
        }
        let mut state: Array<&mut MapData, u32> =
            Array::try_from(self.harness.map_mut("BENCH_STATE").context("BENCH_STATE")?)?;
        state.set(0, templates.len() as u32 - 1, 0)?;
        Ok(())
    }

    fn seq(&mut self, set: Option<u32>) -> Result<u32> {
        let mut state: Array<&mut MapData, u32> =
            Array::try_from(self.harness.map_mut("BENCH_STATE").context("BENCH_STATE")?)?;
        if let Some(v) = set {
            state.set(1, v, 0)?;
        }
        Ok(state.get(&1, 0)?)
    }

    fn stats(&self) -> Result<Stats> {
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
    fn run_batch(&mut self, target: Target, direct: bool, expect: &Expect) -> Result<f64> {
        let input = &expect.templates[0].clone();
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(FRAME as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&self.bb0.to_ne_bytes());
        self.seq(Some(0))?;
        let before = self.stats()?;
        let mut out = vec![0u8; FRAME + 256];
        let prog = if direct {
            Self::xdp(&self.harness, "bench_floor")?
        } else {
            Self::xdp(&self.harness, "bench_reset")?
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
        ensure!(
            result.return_value == expect.action as u32,
            "returned {} instead of {:?}",
            result.return_value,
            expect.action
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
        ensure!(
            out == expect.outputs[last],
            "output frame differs from the expected rewrite of template {last}"
        );
        ensure!(
            self.seq(None)? == self.repeat,
            "bench_reset did not run every time"
        );
        if target != Target::Floor {
            let after = self.stats()?;
            for ((name, b), (_, a)) in before.actions.iter().zip(&after.actions) {
                let want = if *name == expect.action.name() {
                    u64::from(self.repeat)
                } else {
                    0
                };
                ensure!(
                    a.packets - b.packets == want,
                    "action {name}: {} runs, expected {want}",
                    a.packets - b.packets
                );
            }
            let reason = expect.reason.context("reason")?;
            for ((name, b), (_, a)) in before.reasons.iter().zip(&after.reasons) {
                let want = if *name == reason.name() {
                    u64::from(self.repeat)
                } else {
                    0
                };
                ensure!(
                    a.packets - b.packets == want,
                    "reason {name}: {} runs, expected {want}",
                    a.packets - b.packets
                );
            }
        }
        ensure!(
            ns > 0.0 && ns <= wall + 1.0,
            "kernel time {ns} ns, wall {wall} ns"
        );
        Ok(ns)
    }

    /// Median ns/packet of RUNS batches.
    fn measure(&mut self, target: Target, direct: bool, expect: &Expect) -> Result<f64> {
        if !direct {
            let templates: Vec<Vec<u8>> = expect.templates.clone();
            self.arm(target, &templates)?;
        }
        let mut v = Vec::new();
        for _ in 0..RUNS {
            v.push(self.run_batch(target, direct, expect)?);
        }
        v.sort_by(f64::total_cmp);
        Ok(v[RUNS / 2])
    }
}

impl Expect {
    /// Forwarded toward the customer: redirected to cust0, policy reason.
    fn forward(pkts: &[Pkt]) -> Self {
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
    fn miss(pkts: &[Pkt]) -> Self {
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
fn frame_to(dst: IpAddr) -> Pkt {
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
fn realtime() -> Result<()> {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: plain syscall on the calling thread with a valid parameter.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        anyhow::bail!("sched_setscheduler: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn per_packet(sizes: &Sizes, report: &mut Report) -> Result<()> {
    realtime()?;
    let mut b = Bench::new(sizes.repeat)?;
    let floor_pkt = frame_to("198.51.100.1".parse()?);
    let input = floor_pkt.build();
    let mut swapped = input.clone();
    swapped[..6].copy_from_slice(&input[6..12]);
    swapped[6..12].copy_from_slice(&input[..6]);
    let floor = Expect {
        action: Action::Tx,
        reason: None,
        templates: vec![input],
        outputs: vec![swapped],
    };
    report.floor.direct = b.measure(Target::Floor, true, &floor)?;
    report.floor.wrapped = b.measure(Target::Floor, false, &floor)?;
    eprintln!(
        "floor: {:.2} ns direct, {:.2} ns through bench_reset",
        report.floor.direct, report.floor.wrapped
    );

    let mut generator = PrefixGen::new(1);
    let mut rng = SmallRng::seed_from_u64(2);
    for family in ["IPv4", "IPv6"] {
        let v4 = family == "IPv4";
        let mut nets: Vec<IpNet> = Vec::new();
        for &n in if v4 { &sizes.v4 } else { &sizes.v6 } {
            let t = Instant::now();
            while nets.len() < n {
                let net = if v4 {
                    IpNet::V4(generator.v4())
                } else {
                    IpNet::V6(generator.v6())
                };
                b.tables.set_prefix(net, bench_entry(nets.len()))?;
                nets.push(net);
            }
            eprintln!(
                "{family}: {n} prefixes registered ({:.1} s)",
                t.elapsed().as_secs_f64()
            );
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
                let a = if v4 {
                    IpAddr::V4(Ipv4Addr::from(rng.random_range(1u32 << 24..224 << 24)))
                } else {
                    IpAddr::V6(Ipv6Addr::from(
                        rng.random::<u128>() & (u128::MAX >> 3) | (1u128 << 125),
                    ))
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
                let fib = b.measure(Target::Edge, false, &expect)?;
                let lpm = b.measure(Target::EdgeLpm, false, &expect)?;
                eprintln!(
                    "{family} {n:>9} {case:<6}: edge {fib:6.2} ns ({:.2}x floor), LPM trie {lpm:6.2} ns ({:.2}x)",
                    report.floor.ratio(fib),
                    report.floor.ratio(lpm)
                );
                report.figures.push(Figure {
                    family,
                    prefixes: n,
                    case,
                    fib,
                    lpm,
                });
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- throughput

#[derive(Default)]
struct Throughput {
    seconds: f64,
    /// (offered pps, delivered pps) with XDP forwarding.
    xdp: (f64, f64),
    /// The same with the kernel's IP forwarding.
    kernel: (f64, f64),
}

const TPUT_CONFIG: &str = r#"
[forwarding]
default_action = "pass"
backbone_exit = "core"

[[ports]]
interface = "e0"
role = "backbone"
[[ports]]
interface = "e1"
role = "peering"

[[pops]]
name = "sink"
interface = "e1"
mac = "02:00:00:00:10:04"
[[pops]]
name = "core"
interface = "e0"
mac = "02:00:00:00:10:01"

[[prefixes]]
prefix = "198.51.100.0/24"
pop = "sink"
"#;

/// Frames per generator syscall: small, so the generator hands the CPU to
/// the receive processing (softirqs) often instead of overflowing the
/// veth rings.
const TPUT_BURST: u32 = 8192;

fn sink_count(sink: &Ebpf) -> Result<u64> {
    let map: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(sink.map("BENCH_SINK").context("BENCH_SINK")?)?;
    Ok(map.get(&0, 0)?.iter().sum())
}

/// Generator namespace → edge namespace → sink namespace, over veth.
/// The generator transmits 64-byte UDP frames with BPF_PROG_TEST_RUN live
/// frames (`bench_tx`, XDP_TX out of g0); the sink counts what arrives with
/// `bench_sink` on s0. The edge forwards with the `edge` program on e0
/// (XDP), or with the kernel (ip_forward, a route and a permanent
/// neighbour; e0 then runs `edge_pass`, since a veth takes XDP frames
/// from its peer only when it runs an XDP program). Each mode runs for a
/// fixed time; all traffic stays in the lab's namespaces, between
/// documentation addresses.
fn throughput(sizes: &Sizes) -> Result<Throughput> {
    let mut lab = Lab::new("tput");
    let gen_ns = lab.add_ns("gen");
    let edge_ns = lab.add_ns("edge");
    let sink_ns = lab.add_ns("sink");
    lab.veth(
        (&gen_ns, "g0", "02:00:00:00:10:01"),
        (&edge_ns, "e0", "02:00:00:00:10:02"),
    );
    lab.veth(
        (&edge_ns, "e1", "02:00:00:00:10:03"),
        (&sink_ns, "s0", "02:00:00:00:10:04"),
    );
    lab.addr(&gen_ns, "g0", "192.0.2.1/24");
    lab.addr(&edge_ns, "e0", "192.0.2.254/24");
    lab.addr(&edge_ns, "e1", "198.51.100.254/24");
    lab.addr(&sink_ns, "s0", "198.51.100.1/24");
    lab.ip(
        &edge_ns,
        &[
            "neigh",
            "replace",
            "198.51.100.1",
            "lladdr",
            "02:00:00:00:10:04",
            "dev",
            "e1",
            "nud",
            "permanent",
        ],
    );

    let sink = in_netns(&sink_ns, || -> Result<Ebpf> {
        let mut o = EbpfLoader::new().load(loader::bench_object())?;
        let p: &mut Xdp = o.program_mut("bench_sink").context("sink")?.try_into()?;
        p.load()?;
        p.attach("s0", XdpMode::Driver)?;
        Ok(o)
    })?;
    let generator = in_netns(&gen_ns, || -> Result<(Ebpf, u32)> {
        let mut o = EbpfLoader::new().load(loader::bench_object())?;
        let p: &mut Xdp = o.program_mut("bench_tx").context("tx")?.try_into()?;
        p.load()?;
        Ok((o, netdev::ifindex("g0")?))
    })?;
    let (mut edge, counters) = in_netns(&edge_ns, || -> Result<(Ebpf, Counters)> {
        let plan = config::parse(TPUT_CONFIG).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut o = loader::load()?;
        for name in [prog_names::EDGE, prog_names::PASS] {
            let p: &mut Xdp = o.program_mut(name).context(name)?.try_into()?;
            p.load()?;
        }
        let mut tables = Tables::take(&mut o)?;
        let counters = Counters::take(&mut o)?;
        write_plan(&mut tables, &plan)?;
        // The tables must outlive the run: the maps stay referenced by the program.
        std::mem::forget(tables);
        Ok((o, counters))
    })?;
    let frame = Pkt::udp("192.0.2.1", "198.51.100.1")
        .with(|p| {
            p.src_mac = [0x02, 0, 0, 0, 0x10, 0x01];
            p.dst_mac = [0x02, 0, 0, 0, 0x10, 0x02];
            p.payload = vec![0x5a; FRAME - 42];
        })
        .build();

    let mut result = Throughput {
        seconds: sizes.throughput_secs,
        ..Throughput::default()
    };
    for mode in ["xdp", "kernel"] {
        let prog = if mode == "xdp" {
            prog_names::EDGE
        } else {
            prog_names::PASS
        };
        lab.sysctl(
            &edge_ns,
            "net.ipv4.ip_forward",
            if mode == "xdp" { "0" } else { "1" },
        );
        let link = in_netns(&edge_ns, || -> Result<_> {
            let p: &mut Xdp = edge.program_mut(prog).context(prog)?.try_into()?;
            Ok(p.attach("e0", XdpMode::Driver)?)
        })?;
        let before = counters.read(0)?;
        let delivered0 = sink_count(&sink)?;
        let (generated, secs) = in_netns(&gen_ns, || -> Result<(u64, f64)> {
            let p = Bench::xdp(&generator.0, "bench_tx")?;
            let mut ctx = [0u8; 24];
            ctx[4..8].copy_from_slice(&(FRAME as u32).to_ne_bytes());
            ctx[12..16].copy_from_slice(&generator.1.to_ne_bytes());
            let start = Instant::now();
            let mut sent = 0u64;
            // Bounded: stops after the configured time.
            while start.elapsed().as_secs_f64() < sizes.throughput_secs {
                let r = p.test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ctx_in: Some(&ctx),
                    repeat: TPUT_BURST,
                    attrs: TestRunAttrs::new().xdp_live_frames(64),
                    ..TestRunOptions::new()
                })?;
                ensure!(r.return_value == 0, "live frames run failed");
                sent += u64::from(TPUT_BURST);
            }
            Ok((sent, start.elapsed().as_secs_f64()))
        })?;
        // Let the last frames drain.
        std::thread::sleep(Duration::from_millis(100));
        let delivered = sink_count(&sink)? - delivered0;
        let after = counters.read(0)?;
        let redirected =
            after.reason(Reason::Policy).packets - before.reason(Reason::Policy).packets;
        in_netns(&edge_ns, || -> Result<()> {
            let p: &mut Xdp = edge.program_mut(prog).context(prog)?.try_into()?;
            Ok(p.detach(link)?)
        })?;
        ensure!(delivered > 0, "{mode}: nothing reached the sink");
        if mode == "xdp" {
            // The sink also sees the lab's own chatter (IPv6 router
            // solicitations and the like): a few frames more.
            ensure!(
                redirected + 100 >= delivered,
                "xdp: the sink got {delivered} frames but edge forwarded {redirected}"
            );
        } else {
            ensure!(
                redirected == 0,
                "kernel mode: edge forwarded {redirected} frames"
            );
        }
        let rates = (generated as f64 / secs, delivered as f64 / secs);
        eprintln!(
            "{mode}: offered {:.0} pps, delivered {:.0} pps ({delivered} frames in {secs:.1} s)",
            rates.0, rates.1
        );
        if mode == "xdp" {
            result.xdp = rates;
        } else {
            result.kernel = rates;
        }
    }
    drop((sink, generator, edge));
    drop(lab);
    Ok(result)
}

// ---------------------------------------------------------------- control plane

/// (prefixes, seconds, loader VmRSS KiB, RssAnon KiB, map memory by name).
type Load = (usize, f64, u64, u64, Vec<(String, u64)>);

#[derive(Default)]
struct Control {
    /// (prefixes, seconds, loader VmRSS KiB, RssAnon KiB, map memory by name).
    loads: Vec<Load>,
    /// Rewriting every policy table after a PoP failure: (policies, members, ms).
    failover: (u32, usize, f64),
    /// edged's path for a whole config, and a 1% reload.
    full: Vec<FullLoad>,
    /// Route sync through a running edged.
    sync: Vec<SyncRun>,
}

fn control_plane(sizes: &Sizes) -> Result<Control> {
    let mut c = Control::default();
    let exe = std::env::current_exe()?;
    for &n in &sizes.load {
        let out = Command::new(&exe)
            .args(["--load-only", "v4", &n.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the loader")?;
        ensure!(out.status.success(), "loader of {n} prefixes failed");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let maps = v["maps"]
            .as_object()
            .context("maps")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect();
        let secs = v["load_s"].as_f64().context("load_s")?;
        eprintln!("load of {n} IPv4 prefixes: {secs:.2} s");
        c.loads.push((
            n,
            secs,
            v["vm_rss_kib"].as_u64().unwrap_or(0),
            v["rss_anon_kib"].as_u64().unwrap_or(0),
            maps,
        ));
    }

    // Failover: every policy table rewritten with one member down.
    let mut ebpf = loader::load()?;
    let mut tables = Tables::take(&mut ebpf)?;
    let policies = edge_common::limits::MAX_POLICIES;
    let members: Vec<Member> = (0..8)
        .map(|pop| Member::pop(pop, 1 + pop % 3, pop))
        .collect();
    let mut times = Vec::new();
    for run in 0..RUNS {
        let down = run as u32 % 8;
        let t = Instant::now();
        for id in 0..policies {
            let table = policy::table(Method::Weighted, &members, |p| p != down);
            tables.set_policy(id, &table)?;
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let check = tables.policy(policies - 1)?;
        ensure!(
            check.pops[..POLICY_SLOTS]
                .iter()
                .all(|&p| u32::from(p) != down)
        );
    }
    times.sort_by(f64::total_cmp);
    c.failover = (policies, members.len(), times[RUNS / 2]);
    eprintln!(
        "failover: {policies} policy tables rewritten in {:.2} ms",
        c.failover.2
    );
    drop(tables);
    drop(ebpf);

    c.full = full_loads(sizes)?;
    for &n in &sizes.load {
        eprintln!("route sync: {n} IPv4 routes through edged");
        c.sync.push(route_sync(n)?);
    }
    Ok(c)
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory the kernel charges for each of this process's maps (fdinfo memlock).
fn map_memory() -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for fd in std::fs::read_dir("/proc/self/fdinfo")? {
        let Ok(info) = std::fs::read_to_string(fd?.path()) else {
            continue;
        };
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(id), Some(memlock)) = (field("map_id:"), field("memlock:")) {
            let info = aya::maps::MapInfo::from_id(id as u32)?;
            out.push((info.name_as_str().unwrap_or("?").to_string(), memlock));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `--load-only FAMILY COUNT`: a fresh process loads the object and
/// registers COUNT prefixes, like edged does, then reports.
fn load_only(family: &str, n: usize) -> Result<()> {
    ensure!(family == "v4", "only v4 loads are measured");
    let mut generator = PrefixGen::new(1);
    let nets: Vec<Ipv4Net> = (0..n).map(|_| generator.v4()).collect();
    drop(generator);
    let mut ebpf = loader::load()?;
    let mut tables = Tables::take(&mut ebpf)?;
    let items: Vec<(IpNet, PrefixEntry)> = nets
        .iter()
        .enumerate()
        .map(|(i, net)| (IpNet::V4(*net), bench_entry(i)))
        .collect();
    let t = Instant::now();
    for (k, chunk) in items.chunks(200_000).enumerate() {
        let (_, result) = tables.set_prefixes(chunk);
        result?;
        eprintln!("  loading: {} of {n}", k * 200_000 + chunk.len());
    }
    let secs = t.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let maps: serde_json::Map<String, serde_json::Value> = map_memory()?
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "load_s": secs,
            "vm_rss_kib": status_kib(&status, "VmRSS:"),
            "rss_anon_kib": status_kib(&status, "RssAnon:"),
            "maps": maps,
        })
    );
    drop(tables);
    Ok(())
}

// ---------------------------------------------------------------- daemon path

/// The bench config with one policy for every prefix the bench adds.
fn planned(net: Ipv4Net, dscp: Option<u8>) -> edge_userspace::plan::PlannedPrefix {
    edge_userspace::plan::PlannedPrefix {
        net: IpNet::V4(net),
        registration: "bench".into(),
        origin: edge_userspace::plan::Origin::Config,
        preference: edge_userspace::plan::Preference::Microsoft,
        policy: Some(0),
        dscp,
        protect: Vec::new(),
        region: None,
    }
}

/// `--compile-only COUNT`: edged's path for a whole config in a fresh
/// process: `desired::compile` then `desired::apply` into fresh maps, then a
/// reload where 1% of the prefixes change (half get another DSCP, half are
/// replaced by other prefixes). Prints JSON.
fn compile_only(n: usize) -> Result<()> {
    let mut plan = config::parse(CONFIG).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut generator = PrefixGen::new(1);
    for p in &plan.prefixes {
        generator.seen.insert(p.net);
    }
    plan.prefixes
        .extend((0..n).map(|_| planned(generator.v4(), None)));
    let mut ebpf = loader::load()?;
    let mut tables = Tables::take(&mut ebpf)?;
    let mut counters = Counters::take(&mut ebpf)?;
    let up = |_| PopHealth::UP;
    let empty = desired::dump(&tables)?;

    let t = Instant::now();
    let c = desired::compile(&plan, &State::default(), &empty, &up, &Choices::default())?;
    let compile_s = t.elapsed().as_secs_f64();
    eprintln!("  {n} prefixes: compiled in {compile_s:.2} s");
    let t = Instant::now();
    let changes = desired::apply(&mut tables, Some(&mut counters), &empty, &c.desired)?;
    let apply_s = t.elapsed().as_secs_f64();
    eprintln!(
        "  {n} prefixes: applied in {apply_s:.2} s ({} written)",
        changes.written
    );

    // The reload: 1% of the bench's prefixes change.
    let base = plan.prefixes.len() - n;
    let mut reloaded = plan.clone();
    let mut changed = 0;
    for (k, i) in (base..plan.prefixes.len()).step_by(100).enumerate() {
        let p = &mut reloaded.prefixes[i];
        if k % 2 == 0 {
            p.dscp = Some(46);
        } else {
            *p = planned(generator.v4(), None);
        }
        changed += 1;
    }
    let state = State {
        ids: c.ids.clone(),
        ..State::default()
    };
    let t = Instant::now();
    let c2 = desired::compile(&reloaded, &state, &c.desired, &up, &Choices::default())?;
    let reload_compile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let reload = desired::apply(&mut tables, Some(&mut counters), &c.desired, &c2.desired)?;
    let reload_apply_s = t.elapsed().as_secs_f64();
    eprintln!(
        "  reload changing {changed} prefixes: compiled in {reload_compile_s:.2} s, applied in {reload_apply_s:.3} s ({} written, {} removed)",
        reload.written, reload.removed
    );
    // What the maps hold is what was compiled.
    let held = tables.prefixes()?;
    ensure!(
        held.len() == c2.desired.prefixes.len()
            && held
                .iter()
                .all(|(net, e)| c2.desired.prefixes.get(net) == Some(e)),
        "the maps do not hold the reloaded config"
    );
    for p in reloaded.prefixes.iter().skip(base).step_by(997) {
        let want = c2.desired.prefixes[&p.net];
        let got = tables.lookup(p.net.addr())?;
        ensure!(
            got.is_some_and(|g| g.policy == want.policy),
            "lookup of {} in the DIR-24-8 tables",
            p.net
        );
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    println!(
        "{}",
        serde_json::json!({
            "compile_s": compile_s,
            "apply_s": apply_s,
            "written": changes.written,
            "reload_changed": changed,
            "reload_compile_s": reload_compile_s,
            "reload_apply_s": reload_apply_s,
            "reload_written": reload.written,
            "reload_removed": reload.removed,
            "vm_rss_kib": status_kib(&status, "VmRSS:"),
            "rss_anon_kib": status_kib(&status, "RssAnon:"),
        })
    );
    Ok(())
}

/// One `--compile-only` run: (prefixes, compile s, apply s, changed, reload
/// compile s, reload apply s, RssAnon KiB).
#[derive(Clone, Copy, Default)]
struct FullLoad {
    prefixes: usize,
    compile_s: f64,
    apply_s: f64,
    changed: u64,
    reload_compile_s: f64,
    reload_apply_s: f64,
    rss_anon_kib: u64,
}

fn full_loads(sizes: &Sizes) -> Result<Vec<FullLoad>> {
    let mut lab = Lab::new("benchcp");
    let ns = lab.add_ns("cp");
    lab.veth(
        (&ns, "bb0", &mac(BB_MAC)),
        (&ns, "bb0x", "02:00:00:00:e1:00"),
    );
    lab.veth(
        (&ns, "cust0", &mac(CUST_MAC)),
        (&ns, "cust0x", "02:00:00:00:e1:01"),
    );
    let exe = std::env::current_exe()?;
    let mut out = Vec::new();
    for &n in &sizes.load {
        eprintln!("daemon path: config of {n} IPv4 prefixes");
        let o = netns_command(&ns, &exe)
            .args(["--compile-only", &n.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the compile-only process")?;
        ensure!(o.status.success(), "compile-only of {n} prefixes failed");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
        let f = |k: &str| v[k].as_f64().with_context(|| k.to_string());
        out.push(FullLoad {
            prefixes: n,
            compile_s: f("compile_s")?,
            apply_s: f("apply_s")?,
            changed: v["reload_changed"].as_u64().unwrap_or(0),
            reload_compile_s: f("reload_compile_s")?,
            reload_apply_s: f("reload_apply_s")?,
            rss_anon_kib: v["rss_anon_kib"].as_u64().unwrap_or(0),
        });
    }
    drop(lab);
    Ok(out)
}

// ---------------------------------------------------------------- route sync

#[derive(Clone, Copy, Default)]
struct SyncRun {
    routes: usize,
    /// `ip -batch` alone.
    install_s: f64,
    /// From the batch's start until edgectl status shows every route in the maps.
    synced_s: f64,
    resyncs: u64,
    /// edged's VmRSS and RssAnon with every route in the maps, KiB.
    rss_kib: u64,
    anon_kib: u64,
}

/// An edged in a namespace follows table 200; `ip -batch` installs N
/// blackhole /32s in 10.0.0.0/8 there (routes only: nothing is sent).
fn route_sync(n: usize) -> Result<SyncRun> {
    let mut lab = Lab::new("benchrt");
    let ns = lab.add_ns("rt");
    lab.veth(
        (&ns, "bb0", &mac(BB_MAC)),
        (&ns, "bb0x", "02:00:00:00:e1:00"),
    );
    lab.veth(
        (&ns, "cust0", &mac(CUST_MAC)),
        (&ns, "cust0x", "02:00:00:00:e1:01"),
    );
    let dir = std::env::temp_dir().join(format!("edge-bench-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("edged.toml");
    std::fs::write(
        &config,
        format!(
            "{CONFIG}\n[[route_sources]]\ntable = 200\nregistration = \"bgp\"\npolicy = \"to-cust\"\n"
        ),
    )?;
    let pin = PathBuf::from(format!("/sys/fs/bpf/edge-bench-rt-{}", std::process::id()));
    let edged = Edged::start(&ns, &config, &pin);
    let used = |edged: &Edged| -> u64 {
        edged.ctl_ok(&["status"])["maps"]["prefixes_v4"]["used"]
            .as_u64()
            .unwrap_or(0)
    };
    let base = used(&edged);
    let batch = dir.join("routes.batch");
    let mut text = String::with_capacity(n * 48);
    for i in 0..n as u32 {
        let a = Ipv4Addr::from((10u32 << 24) | i);
        let _ = writeln!(text, "route add blackhole {a}/32 table 200");
    }
    std::fs::write(&batch, text)?;
    let t = Instant::now();
    let mut ip = netns_command(&ns, std::path::Path::new("ip"))
        .arg("-batch")
        .arg(&batch)
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("ip -batch")?;
    let mut install_s = None;
    let mut shown = 0;
    let want = base + n as u64;
    loop {
        if install_s.is_none()
            && let Some(status) = ip.try_wait()?
        {
            ensure!(status.success(), "ip -batch failed");
            install_s = Some(t.elapsed().as_secs_f64());
            eprintln!("  ip -batch done after {:.1} s", install_s.unwrap());
        }
        let u = used(&edged);
        if u / 100_000 != shown {
            shown = u / 100_000;
            eprintln!(
                "  {} of {n} routes in the maps after {:.1} s",
                u.saturating_sub(base),
                t.elapsed().as_secs_f64()
            );
        }
        if u >= want && install_s.is_some() {
            break;
        }
        ensure!(
            t.elapsed() < Duration::from_secs(600),
            "route sync of {n} routes: {u} of {want} after 600 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let synced_s = t.elapsed().as_secs_f64();
    let s = edged.ctl_ok(&["status"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", edged.pid()))?;
    let run = SyncRun {
        routes: n,
        install_s: install_s.unwrap_or(synced_s),
        synced_s,
        resyncs: s["routes"]["resyncs"].as_u64().unwrap_or(0),
        rss_kib: status_kib(&status, "VmRSS:"),
        anon_kib: status_kib(&status, "RssAnon:"),
    };
    eprintln!(
        "route sync of {n} routes: all in the maps after {synced_s:.1} s (ip -batch {:.1} s), {} full dumps, edged VmRSS {} MiB",
        run.install_s,
        run.resyncs,
        run.rss_kib / 1024
    );
    drop(edged);
    drop(lab);
    std::fs::remove_dir_all(&dir)?;
    Ok(run)
}

// ---------------------------------------------------------------- report

#[derive(Default)]
struct Report {
    repeat: u32,
    floor: Floor,
    figures: Vec<Figure>,
    throughput: Throughput,
    control: Control,
}

fn machine() -> (String, String, usize) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    (cpu, kernel, cores)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

impl Report {
    fn figure(&self, family: &str, prefixes: usize, case: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|f| f.family == family && f.prefixes == prefixes && f.case == case)
    }

    fn markdown(&self, commit: &str, quick: bool) -> String {
        let (cpu, kernel, cores) = machine();
        let f = &self.floor;
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        if quick {
            let _ = writeln!(s, "**Quick run (small sizes): not for the record.**\n");
        }
        let _ = writeln!(
            s,
            "Output of `cargo xtask bench` (tests/src/bin/edge-bench.rs); every figure comes from one run.\n"
        );
        let _ = writeln!(s, "| machine | kernel | commit |\n|---|---|---|");
        let _ = writeln!(s, "| {cpu}, {cores} cores | {kernel} | {commit} |\n");
        let _ = writeln!(s, "## Per-packet cost (BPF_PROG_TEST_RUN)\n");
        let _ = writeln!(
            s,
            "64-byte UDP frames arriving on a backbone port, classified by destination, forwarded to the PoP of the \
             prefix's policy (parse, classify, policy, rewrite, redirect decision), or for misses handed to the kernel \
             (unregistered, default pass). Each figure is the median of {RUNS} runs of {} repetitions, each run \
             timed by the kernel (BPF_PROG_TEST_RUN's duration: the repeat loop's time over `repeat`, whole ns; \
             the batch thread runs SCHED_FIFO so other work on the machine does not preempt it). `hot`: one destination; `spread`: {TEMPLATES} destinations drawn across \
             the table, a different one each packet; `miss`: {TEMPLATES} addresses no prefix covers.\n",
            self.repeat
        );
        let _ = writeln!(
            s,
            "The floor (swap MACs, `XDP_TX`): **{:.2} ns** per packet. `bench_reset` (copy of a fresh 64-byte \
             template before every run, then a tail call into the program under test) adds {:.2} ns, measured as the \
             floor through it ({:.2} ns) minus the floor; the ratios below subtract it: (figure − {:.2}) / {:.2}.\n",
            f.direct,
            f.overhead(),
            f.wrapped,
            f.overhead(),
            f.direct
        );
        let _ = writeln!(
            s,
            "| family | prefixes | lookups | edge (DIR-24-8 for IPv4) ns | × floor | LPM trie ns | × floor | trie / edge |"
        );
        let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---:|---:|");
        for x in &self.figures {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                x.family,
                x.prefixes,
                x.case,
                x.fib,
                f.ratio(x.fib),
                x.lpm,
                f.ratio(x.lpm),
                x.lpm / x.fib
            );
        }
        let _ = writeln!(
            s,
            "\nIPv6 has no DIR-24-8: both programs use the LPM trie for it, so its two columns measure the same path.\n"
        );
        let _ = writeln!(s, "### How every counted run takes the measured path\n");
        let _ = writeln!(
            s,
            "Non-live BPF_PROG_TEST_RUN reruns the program on the buffer it already rewrote, so after 254 runs the \
             TTL would be exhausted and the rest would measure the `ttl_exceeded` pass. Instead the bench runs \
             `bench_reset` (edge-ebpf/src/bench.rs): before every run it copies template `n & mask` into the frame \
             (`n` counts the runs) and tail-calls the program under test, so each run starts from a fresh frame with \
             TTL 64. After each batch the bench checks, and fails the whole bench otherwise: the return value is the \
             expected action; the output frame equals the expected rewrite of the last template (built independently \
             with etherparse); `bench_reset` counted exactly `repeat` runs; and the program's action and reason \
             counters grew by exactly `repeat` in the expected action and reason (`redirect`/`policy` for hits, \
             `pass`/`unregistered` for misses) and by 0 in every other (so no run was `ttl_exceeded`).\n"
        );

        let _ = writeln!(s, "## Targets\n");
        let _ = writeln!(s, "| target | measured | met |\n|---|---|---|");
        let mut target = |name: &str, value: Option<f64>, limit: f64, unit: &str| {
            if let Some(v) = value {
                let _ = writeln!(
                    s,
                    "| {name} ≤ {limit}{unit} | {v:.2}{unit} | {} |",
                    if v <= limit { "yes" } else { "**no**" }
                );
            }
        };
        let v4max = self
            .figures
            .iter()
            .filter(|x| x.family == "IPv4")
            .map(|x| x.prefixes)
            .max()
            .unwrap_or(0);
        let v6max = self
            .figures
            .iter()
            .filter(|x| x.family == "IPv6")
            .map(|x| x.prefixes)
            .max()
            .unwrap_or(0);
        target(
            &format!("IPv4, {v4max} prefixes, one hot destination"),
            self.figure("IPv4", v4max, "hot").map(|x| f.ratio(x.fib)),
            1.6,
            "× floor",
        );
        target(
            &format!("IPv4, {v4max} prefixes, {TEMPLATES} spread destinations"),
            self.figure("IPv4", v4max, "spread").map(|x| f.ratio(x.fib)),
            2.5,
            "× floor",
        );
        target(
            &format!("IPv6, {v6max} prefixes, {TEMPLATES} spread destinations"),
            self.figure("IPv6", v6max, "spread").map(|x| f.ratio(x.fib)),
            2.5,
            "× floor",
        );
        if let Some(l) = self.control.loads.last() {
            target(
                &format!("load of {} IPv4 prefixes", l.0),
                Some(l.1),
                2.0,
                " s",
            );
            let fib: u64 =
                l.4.iter()
                    .filter(|(n, _)| n.starts_with("EDGE_FIB4"))
                    .map(|(_, b)| b)
                    .sum();
            target(
                &format!("map memory of the IPv4 lookup at {} prefixes", l.0),
                Some(mib(fib)),
                128.0,
                " MiB",
            );
        }
        if let Some(l) = self.control.full.last() {
            target(
                &format!(
                    "load of {} IPv4 prefixes as edged does it (compile + apply)",
                    l.prefixes
                ),
                Some(l.compile_s + l.apply_s),
                2.0,
                " s",
            );
        }

        let t = &self.throughput;
        let _ = writeln!(s, "\n## Throughput through veth\n");
        let _ = writeln!(
            s,
            "Generator namespace → edge namespace → sink namespace over two veth pairs, 64-byte UDP frames, {:.0} s \
             per mode. The generator transmits with BPF_PROG_TEST_RUN live frames (`bench_tx`: `XDP_TX` out of its \
             veth), the sink counts with `bench_sink` (XDP, count and drop). The edge forwards with the `edge` program \
             (native XDP on the veth, `XDP_REDIRECT` through the devmap) or with the kernel's IP forwarding \
             (`edge_pass` on the ingress veth, ip_forward on, a route and a permanent neighbour entry). Everything \
             shares this machine's {cores} cores, so the figures are for comparison, not line rates.\n",
            t.seconds
        );
        let _ = writeln!(
            s,
            "| forwarding | offered pps | delivered pps |\n|---|---:|---:|"
        );
        let _ = writeln!(s, "| XDP (edge) | {:.0} | {:.0} |", t.xdp.0, t.xdp.1);
        let _ = writeln!(
            s,
            "| kernel IP forwarding | {:.0} | {:.0} |",
            t.kernel.0, t.kernel.1
        );
        if t.kernel.1 > 0.0 {
            let _ = writeln!(
                s,
                "\nXDP delivers **{:.2}×** the kernel's rate.",
                t.xdp.1 / t.kernel.1
            );
        }
        if t.kernel.0 > 0.0 && t.kernel.1 < 0.1 * t.kernel.0 {
            let _ = writeln!(
                s,
                "\n**Caveat:** the kernel path delivered under 10% of what was offered. The generator floods from \
                 process context (BPF_PROG_TEST_RUN live frames) on the same {cores} cores the forwarding softirqs \
                 need, and the cause of the kernel path's collapse under that overload is not established, so \
                 this ratio is not a fair measure of XDP's advantage; a rate-limited generator would give one."
            );
        }

        let c = &self.control;
        let _ = writeln!(s, "\n## Control plane\n");
        let _ = writeln!(
            s,
            "A fresh loader process (`edge-bench --load-only v4 N`) loads the object and registers N IPv4 prefixes \
             with `Tables::set_prefixes`, as edged's `desired::apply` does: into the LPM trie (the registry) in \
             batches of 4096 (`BPF_MAP_UPDATE_BATCH`, one syscall per batch), and into the DIR-24-8 tables (stores \
             into the memory-mapped maps; a leaf write when the entry is new). The prefixes come in random order.\n"
        );
        let _ = writeln!(
            s,
            "| prefixes | load time | loader VmRSS | of which anonymous | DIR-24-8 maps | LPM trie | all maps |\n|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (n, secs, rss, anon, maps) in &c.loads {
            let sum = |p: &str| -> u64 {
                maps.iter()
                    .filter(|(m, _)| m.starts_with(p))
                    .map(|(_, b)| b)
                    .sum()
            };
            let _ = writeln!(
                s,
                "| {n} | {secs:.2} s | {:.0} MiB | {:.0} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
                *rss as f64 / 1024.0,
                *anon as f64 / 1024.0,
                mib(sum("EDGE_FIB4")),
                mib(sum("EDGE_PFX_V4")),
                mib(sum("EDGE_"))
            );
        }
        let _ = writeln!(
            s,
            "\nMap memory is what the kernel charges (fdinfo `memlock`). VmRSS includes the touched pages of the \
             memory-mapped DIR-24-8 tables (shared with the kernel, not a copy).\n"
        );
        let _ = writeln!(
            s,
            "Failover: rewriting all {} policy tables (weighted Maglev, {} members, one down) with `policy::table` \
             and `Tables::set_policy`: **{:.2} ms** (median of {RUNS}).",
            c.failover.0, c.failover.1, c.failover.2
        );
        if !c.full.is_empty() {
            let _ = writeln!(
                s,
                "\n### A whole config, as edged applies it\n\n\
                 edged's own path for a config of N IPv4 prefixes (every prefix with a policy), in a fresh process \
                 (`edge-bench --compile-only N`) with fresh maps: `desired::compile` (the exact contents of every map) \
                 then `desired::apply` (the diff against the empty maps, written with undo). The reload then changes 1% \
                 of the prefixes (half get another DSCP, half are replaced by other prefixes) and compiles and applies \
                 again from the state after the load. Afterwards the bench checks the maps hold exactly what was compiled.\n"
            );
            let _ = writeln!(
                s,
                "| prefixes | compile | apply | load (compile + apply) | reload: prefixes changed | reload compile | reload apply | reload total | process RssAnon |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for f in &c.full {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} s | {:.2} s | **{:.2} s** | {} | {:.2} s | {:.3} s | **{:.2} s** | {:.0} MiB |",
                    f.prefixes,
                    f.compile_s,
                    f.apply_s,
                    f.compile_s + f.apply_s,
                    f.changed,
                    f.reload_compile_s,
                    f.reload_apply_s,
                    f.reload_compile_s + f.reload_apply_s,
                    f.rss_anon_kib as f64 / 1024.0
                );
            }
        }
        if !c.sync.is_empty() {
            let _ = writeln!(
                s,
                "\n### Route sync\n\n\
                 edged runs in a namespace with a `[[route_sources]]` entry for table 200; `ip -batch` installs N \
                 blackhole /32 routes in 10.0.0.0/8 into table 200 (routes only, nothing is sent). Synced: the time from \
                 the batch's start until `edgectl status` shows every one of them in the prefix map. Full dumps count the \
                 first one at start; more mean netlink overruns (each a full resync). RSS is edged's, with every route \
                 in the maps.\n"
            );
            let _ = writeln!(
                s,
                "| routes | ip -batch | synced | routes/s | full dumps | edged VmRSS | of which anonymous |\n|---:|---:|---:|---:|---:|---:|---:|"
            );
            for r in &c.sync {
                let _ = writeln!(
                    s,
                    "| {} | {:.1} s | **{:.1} s** | {:.0} | {} | {:.0} MiB | {:.0} MiB |",
                    r.routes,
                    r.install_s,
                    r.synced_s,
                    r.routes as f64 / r.synced_s,
                    r.resyncs,
                    r.rss_kib as f64 / 1024.0,
                    r.anon_kib as f64 / 1024.0
                );
            }
        }
        let _ = writeln!(s, "\n![ns per packet against prefix count](benchmarks.svg)");
        s
    }

    fn plot(&self, path: &PathBuf) -> Result<()> {
        use plotters::prelude::*;
        let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let ymax = self
            .figures
            .iter()
            .map(|x| x.fib.max(x.lpm))
            .fold(self.floor.direct, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "edge: ns per packet (BPF_PROG_TEST_RUN, 64-byte UDP)",
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d((500f64..2_000_000f64).log_scale(), 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("registered prefixes")
            .y_desc("ns / packet")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        let series: [(&str, &str, bool, RGBColor); 6] = [
            ("IPv4", "hot", true, RGBColor(0, 114, 178)),
            ("IPv4", "spread", true, RGBColor(0, 158, 115)),
            ("IPv4", "hot", false, RGBColor(213, 94, 0)),
            ("IPv4", "spread", false, RGBColor(230, 159, 0)),
            ("IPv6", "spread", false, RGBColor(204, 121, 167)),
            ("IPv4", "miss", true, RGBColor(86, 180, 233)),
        ];
        for (family, case, fib, color) in series {
            let pts: Vec<(f64, f64)> = self
                .figures
                .iter()
                .filter(|x| x.family == family && x.case == case)
                .map(|x| (x.prefixes as f64, if fib { x.fib } else { x.lpm }))
                .collect();
            let label = format!(
                "{family} {case}, {}",
                if fib && family == "IPv4" {
                    "DIR-24-8"
                } else {
                    "LPM trie"
                }
            );
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
        }
        let floor = self.floor.direct;
        chart
            .draw_series(LineSeries::new(
                [(500f64, floor), (2_000_000f64, floor)],
                BLACK.stroke_width(1),
            ))?
            .label("floor (swap MACs, XDP_TX)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }
}
