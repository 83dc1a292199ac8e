//! The report: BENCHMARKS.md (Markdown) and benchmarks.svg (the plot of ns/packet against prefix count).

use std::{fmt::Write as _, path::PathBuf};

use anyhow::Result;

use crate::{
    RUNS, TEMPLATES,
    control::Control,
    per_packet::{Figure, Floor, REAL_V6, median},
    throughput::Throughput,
};

#[derive(Default)]
pub struct Report {
    pub repeat: u32,
    pub floor: Floor,
    pub figures: Vec<Figure>,
    pub throughput: Throughput,
    pub control: Control,
    /// The control plane at scale, and the bound on each of its steps.
    pub scale: Vec<crate::scale::ScaleRun>,
    pub scale_timeout: std::time::Duration,
    pub bmp: Vec<crate::bmp::BmpRun>,
    /// The customer latency cost (rtt.rs).
    pub rtt: Option<crate::rtt::RttReport>,
    /// Logical ports and domains (lports.rs).
    pub lports: Vec<crate::lports::Row>,
}

pub fn machine() -> (String, String, usize) {
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

/// Where the veth plot goes: next to the main plot, `NAME-veth.svg`.
pub fn veth_plot_path(plot: &std::path::Path) -> PathBuf {
    let stem = plot
        .file_stem()
        .map_or("benchmarks".into(), |s| s.to_string_lossy());
    plot.with_file_name(format!("{stem}-veth.svg"))
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

impl Report {
    pub fn figure(&self, family: &str, prefixes: usize, case: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|f| f.family == family && f.prefixes == prefixes && f.case == case)
    }

    pub fn markdown(&self, commit: &str, quick: bool) -> String {
        let (cpu, kernel, cores) = machine();
        let f = &self.floor;
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        if quick {
            let _ = writeln!(s, "**Quick run (small sizes): not for the record.**\n");
        }
        let _ = writeln!(
            s,
            "Output of `cargo xtask bench` (tests/src/bin/edge-bench/); every figure comes from one run.\n"
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
        let spread = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (median(v), lo, hi)
        };
        let direct: Vec<f64> = f.samples.iter().map(|p| p.0).collect();
        let wrapped: Vec<f64> = f.samples.iter().map(|p| p.1).collect();
        let cost: Vec<f64> = f.samples.iter().map(|p| p.1 - p.0).collect();
        let (dm, dlo, dhi) = spread(&direct);
        let (wm, wlo, whi) = spread(&wrapped);
        let (cm, clo, chi) = spread(&cost);
        let _ = writeln!(
            s,
            "The floor (swap MACs, `XDP_TX`), run directly: **{:.2} ns** per packet (median of {RUNS} batches at the \
             start). `bench_reset`, the wrapper every other figure runs through, restores the 8-byte words of the \
             frame the program under test rewrites or in which the templates differ, with aligned u64 stores, then \
             tail-calls the program; the floor through it costs {:.2} ns at the start (its own frame, the two MAC \
             words), so the wrapper's own cost is **{:.2} ns** (it was 36-63 ns when it copied the whole 64-byte \
             template byte by byte through the linker's `memmove`).\n",
            f.direct,
            f.wrapped,
            f.overhead(),
        );
        let _ = writeln!(
            s,
            "The floor is measured in every batch sequence, not once: for each row, the bench runs a floor pair (the \
             floor directly, then the floor through `bench_reset` with the row's templates and words, so the \
             wrapper does the same work as for the programs), then alternately a batch of edge and a batch of the \
             trie program, each followed by a floor pair: F, edge, F, trie, F, ... ({RUNS} batches of each \
             program). Each program batch is normalised by the mean of the floor pairs just before and just after \
             it: × floor = (program − wrapped floor + floor) / floor, i.e. the program's cost net of the wrapper as \
             a multiple of the floor; the row shows the median of those {RUNS} ratios, and the raw medians (program, \
             adjacent floor, adjacent wrapped floor) next to them. Over the run's {} floor pairs the floor was \
             {dm:.0} ns (median; {dlo:.0}-{dhi:.0}), through the wrapper {wm:.0} ns ({wlo:.0}-{whi:.0}), so the \
             wrapper {cm:.0} ns ({clo:.0}-{chi:.0}; more with {TEMPLATES} templates, which do not fit in L1).\n",
            f.samples.len(),
        );
        let _ = writeln!(
            s,
            "| family | prefixes | lookups | floor ns | floor through wrapper ns | edge ns (IPv4 DIR-24-8, IPv6 multibit trie) | × floor | LPM trie ns | × floor | trie / edge |"
        );
        let _ = writeln!(s, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        for x in &self.figures {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} |",
                x.family,
                x.prefixes,
                x.case,
                median(&[x.fib.floor, x.lpm.floor]),
                median(&[x.fib.wrapped_floor, x.lpm.wrapped_floor]),
                x.fib.ns,
                x.fib.ratio,
                x.lpm.ns,
                x.lpm.ratio,
                x.lpm.ns / x.fib.ns
            );
        }
        let _ = writeln!(
            s,
            "\nIPv6: edge's multibit trie (docs/lookup.md) against the kernel's LPM trie (`edge_lpm`). `IPv6` is \
             the synthetic table (the length mix below, addresses uniform over 2000::/3: nearly every prefix alone \
             in its /24, the trie's sparse case); `{REAL_V6}` is shaped like the public table \
             (tests/src/bin/edge-bench/prefixes.rs, `RealV6`): lengths per 10,000 prefixes /48 4500, /32 1400, \
             /44 800, /40 700, /36 400, /29 400, /46 300, /47 200, /56 300, /64 300, /28 200, other /33-/47 300, \
             /17-/27 and /49-/63 200, following the public table's length distribution (bgp.potaroo.net, the \
             CIDR report: /48 about half, then /32, /44, /40, /36, /29), carved out of allocations (a /29 or /32 \
             each, one per six prefixes, in the registries' blocks by their share: RIPE 2a00::/12, ARIN, APNIC, \
             2001::/16, LACNIC, AFRINIC) as holders announce them: more-specifics inside their allocation, a few \
             holders deaggregating much more than the rest, a quarter of the /48s provider-independent \
             assignments packed into 16 assignment /32s. What the multibit trie holds for each table (nodes of \
             1 KiB below the root, tails of 32 bytes, leaves):\n"
        );
        for x in self.figures.iter().filter(|x| x.case == "spread") {
            if let Some(u) = x.usage {
                let _ = writeln!(
                    s,
                    "- {} {}: {} nodes ({:.1} MiB), {} tails ({:.1} MiB), {} leaves",
                    x.family,
                    x.prefixes,
                    u.nodes,
                    f64::from(u.nodes) / 1024.0,
                    u.tails,
                    f64::from(u.tails) * 32.0 / 1048576.0,
                    u.leaves
                );
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "### How every counted run takes the measured path\n");
        let _ = writeln!(
            s,
            "Non-live BPF_PROG_TEST_RUN reruns the program on the buffer it already rewrote, so after 254 runs the \
             TTL would be exhausted and the rest would measure the `ttl_exceeded` pass. Instead the bench runs \
             `bench_reset` (edge-ebpf/src/bench.rs): before every run it restores the words of template `n & mask` \
             that can differ from what the frame holds (`n` counts the runs; the other words are the same in every \
             template and every output, so never change) and tail-calls the program under test, so each run starts from a fresh frame with \
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
        let max_of = |family: &str| {
            self.figures
                .iter()
                .filter(|x| x.family == family)
                .map(|x| x.prefixes)
                .max()
                .unwrap_or(0)
        };
        let (v6max, realmax) = (max_of("IPv6"), max_of(REAL_V6));
        target(
            &format!("IPv4, {v4max} prefixes, one hot destination"),
            self.figure("IPv4", v4max, "hot").map(|x| x.fib.ratio),
            2.0,
            "× floor",
        );
        target(
            &format!("IPv4, {v4max} prefixes, {TEMPLATES} spread destinations"),
            self.figure("IPv4", v4max, "spread").map(|x| x.fib.ratio),
            2.5,
            "× floor",
        );
        for (family, max) in [("IPv6", v6max), (REAL_V6, realmax)] {
            target(
                &format!("{family}, {max} prefixes, {TEMPLATES} spread destinations"),
                self.figure(family, max, "spread").map(|x| x.fib.ratio),
                2.5,
                "× floor",
            );
        }

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
                1.0,
                " s",
            );
            target(
                &format!(
                    "reload changing 1% of {} IPv4 prefixes (as edged does it)",
                    l.prefixes
                ),
                Some(l.reload_compile_s + l.reload_apply_s),
                0.15,
                " s",
            );
        }
        if let Some(r) = self.control.sync.last() {
            target(
                &format!("edged's anonymous memory at {} synced routes", r.routes),
                Some(r.anon_kib as f64 / 1024.0),
                200.0,
                " MiB",
            );
        }

        for (family, max) in [("IPv6", v6max), (REAL_V6, realmax)] {
            if let Some(x) = self.figure(family, max, "spread") {
                let r = x.lpm.ns / x.fib.ns;
                let _ = writeln!(
                    s,
                    "| {family}, {max} prefixes, {TEMPLATES} spread destinations, LPM trie ÷ edge ≥ 4 | {r:.2} | {} |",
                    if r >= 4.0 { "yes" } else { "**no**" }
                );
            }
        }
        if let (Some(e), Some(k)) = (
            self.throughput.saturation("edge"),
            self.throughput.saturation("kernel"),
        ) && k > 0.0
        {
            let r = e / k;
            let _ = writeln!(
                s,
                "| veth saturation on one CPU, edge ÷ kernel forwarding ≥ 2× | {r:.2}× | {} |",
                if r >= 2.0 { "yes" } else { "**no**" }
            );
        }
        s += "\nWhat the per-packet cost, the load and reload times and edged's memory are made of, measured piece \
              by piece (which pieces a missed target would need): [docs/performance.md](docs/performance.md).\n";
        s += &self.throughput_markdown();

        let c = &self.control;
        let _ = writeln!(s, "\n## Control plane\n");
        let _ = writeln!(
            s,
            "A fresh loader process (`edge-bench --load-only v4 N`) loads the object and registers N IPv4 prefixes \
             with `Tables::set_prefixes`, as edged's `desired::apply` does: a record into the registry (a store \
             into the memory-mapped `EDGE_PFX_V4` array) and into the DIR-24-8 tables (stores into the \
             memory-mapped maps; a leaf write when the entry is new). The prefixes come in random order.\n"
        );
        let _ = writeln!(
            s,
            "| prefixes | load time | loader VmRSS | of which anonymous | DIR-24-8 maps | registry | all maps |\n|---:|---:|---:|---:|---:|---:|---:|"
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
                 of the prefixes (half get another DSCP, half are replaced by other prefixes) and goes as edged takes a \
                 reload whose prefixes alone changed: `desired::delta::plan_reload` works out the delta from the running \
                 state (reload compile), `desired::apply_prefixes` writes it with undo and the running state takes it in \
                 place (reload apply). The bench then compiles the reloaded config whole (`whole compile`, what every \
                 reload cost before, for comparison) and checks that the delta gave the same map contents, layout, rows \
                 and counter slots, and that the maps hold exactly that.\n"
            );
            let _ = writeln!(
                s,
                "| prefixes | compile | apply | load (compile + apply) | reload: prefixes changed | reload compile | reload apply | reload total | whole compile | process RssAnon |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for f in &c.full {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} s | {:.2} s | **{:.2} s** | {} | {:.3} s | {:.3} s | **{:.3} s** | {:.2} s | {:.0} MiB |",
                    f.prefixes,
                    f.compile_s,
                    f.apply_s,
                    f.compile_s + f.apply_s,
                    f.changed,
                    f.reload_compile_s,
                    f.reload_apply_s,
                    f.reload_compile_s + f.reload_apply_s,
                    f.reload_whole_s,
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
        if !self.scale.is_empty() {
            s.push('\n');
            s += &crate::scale::markdown(&self.scale, self.scale_timeout, commit);
        }
        if !self.bmp.is_empty() {
            s.push('\n');
            s += &crate::bmp::markdown(&self.bmp);
        }
        if let Some(r) = &self.rtt {
            s.push('\n');
            s += &r.markdown(commit, quick);
        }
        if !self.lports.is_empty() {
            s.push('\n');
            s += &crate::lports::section(&self.lports, commit, self.repeat);
        }
        let _ = writeln!(s, "\n![ns per packet against prefix count](benchmarks.svg)");
        let _ = writeln!(
            s,
            "\n![veth: delivered against offered rate](benchmarks-veth.svg)"
        );
        s
    }

    /// The veth throughput section (Markdown).
    pub fn throughput_markdown(&self) -> String {
        let (_, _, cores) = machine();
        let t = &self.throughput;
        let mut s = String::new();
        let _ = writeln!(s, "\n## Throughput through veth\n");
        let rates: Vec<String> = t
            .rates
            .iter()
            .map(|r| {
                if r.is_finite() {
                    format!("{:.0}k", r / 1000.0)
                } else {
                    "unpaced".into()
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "Generator namespace → forwarder namespace → sink namespace over two veth pairs, 64-byte UDP frames. The \
             generator transmits with BPF_PROG_TEST_RUN live frames through `bench_gen`, which writes a fresh copy of \
             the frame over every page before `XDP_TX` (live frames recycle their pages unwritten, so without it the \
             generator would resend frames the forwarder had already rewritten, addressed to the sink: the kernel \
             drops those, which made an earlier version of this bench report XDP at 61× the kernel). It is paced: \
             {:.0} calls a second, each of rate / {:.0} frames, sleeping until the next is due, at the offered rates \
             {} pps (unpaced: back-to-back calls of {} frames), {:.1} s per rate (a short sweep: this machine is \
             shared). The generator is pinned to CPU 0, and the veth receive processing its frames trigger runs \
             there too (softirqs on the sending CPU), so every forwarder gets the same single CPU, shared with the \
             generator and the sink. The sink counts with `bench_sink` (XDP, count and drop). The forwarders, on \
             the same veths: `edge` (the edge program, native XDP, `XDP_REDIRECT` through its devmap), `kernel` (IP \
             forwarding: `edge_pass` on the ingress veth, ip_forward on, a route and a permanent neighbour entry) \
             and `xdp-redirect` (`bench_redirect`: swap MACs, `bpf_redirect` to the egress veth; the least an XDP \
             forwarder does). Offered: frames the generator actually sent per second; delivered: frames the sink \
             counted per second. On one CPU the loop is closed: the forwarding runs in the softirqs between the \
             generator's batches of 64 frames, so a forwarder that cannot keep up slows the generator down rather \
             than dropping (delivered/offered stays near 100%); it shows as the offered rate falling short of the \
             target. Saturation is the most a forwarder delivered at any rate (the unpaced run, normally); it keeps \
             up with a target rate when it delivered at least {:.0}% of it. The {cores} cores are shared with other \
             work, so the figures are for comparison, not line rates.\n",
            crate::throughput::CALLS_PER_SEC,
            crate::throughput::CALLS_PER_SEC,
            rates.join(", "),
            crate::throughput::UNPACED_BATCH,
            t.seconds,
            100.0 * crate::throughput::KEEPS_UP
        );
        let _ = write!(s, "| target rate |");
        for (m, _) in &t.series {
            let _ = write!(s, " {m}: offered pps | delivered pps | delivered/offered |");
        }
        let _ = write!(s, "\n|---|");
        for _ in &t.series {
            let _ = write!(s, "---:|---:|---:|");
        }
        let _ = writeln!(s);
        for (i, r) in rates.iter().enumerate() {
            let _ = write!(s, "| {r} |");
            for (_, pts) in &t.series {
                if let Some(&(o, d)) = pts.get(i) {
                    let _ = write!(s, " {o:.0} | {d:.0} | {:.0}% |", 100.0 * d / o);
                }
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "\n| forwarder | saturation (most delivered at any rate) | keeps up (≥ {:.0}% of the target delivered) up to |\n|---|---:|---:|",
            100.0 * crate::throughput::KEEPS_UP
        );
        for (m, _) in &t.series {
            let _ = writeln!(
                s,
                "| {m} | {:.0} pps | {} |",
                t.saturation(m).unwrap_or(0.0),
                t.keeps_up_to(m)
                    .map_or("—".into(), |r| format!("{r:.0} pps"))
            );
        }
        if let (Some(e), Some(k)) = (t.saturation("edge"), t.saturation("kernel"))
            && k > 0.0
        {
            let _ = writeln!(
                s,
                "\nAt saturation edge delivers **{:.2}×** kernel forwarding{}.",
                e / k,
                t.saturation("xdp-redirect")
                    .map_or(String::new(), |b| format!(
                        " and {:.0}% of the plain XDP redirect baseline",
                        100.0 * e / b
                    ))
            );
        }
        s
    }

    /// Delivered against offered pps per forwarder (the veth sweep).
    pub fn plot_veth(&self, path: &PathBuf) -> Result<()> {
        use plotters::prelude::*;
        let t = &self.throughput;
        let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let xmax = t
            .rates
            .iter()
            .copied()
            .filter(|r| r.is_finite())
            .fold(1.0, f64::max)
            * 1.05
            / 1e6;
        let ymax = t
            .series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.1))
            .fold(1.0, f64::max)
            .max(xmax * 1e6)
            * 1.1
            / 1e6;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "veth forwarding on one CPU: delivered against target rate (64-byte UDP)",
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("target (paced) Mpps")
            .y_desc("delivered Mpps")
            .draw()?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (xmax, xmax)], BLACK.mix(0.3)))?
            .label("delivered = target")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
        let colors = [
            RGBColor(0, 114, 178),
            RGBColor(213, 94, 0),
            RGBColor(0, 158, 115),
        ];
        for ((m, pts), color) in t.series.iter().zip(colors) {
            let paced: Vec<(f64, f64)> = t
                .rates
                .iter()
                .zip(pts)
                .filter(|(r, _)| r.is_finite())
                .map(|(r, p)| (r / 1e6, p.1 / 1e6))
                .collect();
            chart
                .draw_series(LineSeries::new(paced.clone(), color.stroke_width(2)))?
                .label(format!("{m} (dashed: unpaced)"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(paced.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
            if let Some(sat) = t
                .rates
                .iter()
                .zip(pts)
                .find(|(r, _)| !r.is_finite())
                .map(|(_, p)| p.1 / 1e6)
            {
                chart.draw_series(DashedLineSeries::new(
                    [(0.0, sat), (xmax, sat)],
                    6,
                    4,
                    color.stroke_width(1),
                ))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }

    pub fn plot(&self, path: &PathBuf) -> Result<()> {
        use plotters::prelude::*;
        let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let ymax = self
            .figures
            .iter()
            .map(|x| x.fib.ns.max(x.lpm.ns))
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
        let series: [(&str, &str, bool, RGBColor); 9] = [
            ("IPv4", "hot", true, RGBColor(0, 114, 178)),
            ("IPv4", "spread", true, RGBColor(0, 158, 115)),
            ("IPv4", "hot", false, RGBColor(213, 94, 0)),
            ("IPv4", "spread", false, RGBColor(230, 159, 0)),
            ("IPv6", "spread", true, RGBColor(120, 60, 160)),
            ("IPv6", "spread", false, RGBColor(204, 121, 167)),
            (REAL_V6, "spread", true, RGBColor(60, 60, 60)),
            (REAL_V6, "spread", false, RGBColor(170, 170, 170)),
            ("IPv4", "miss", true, RGBColor(86, 180, 233)),
        ];
        for (family, case, fib, color) in series {
            let pts: Vec<(f64, f64)> = self
                .figures
                .iter()
                .filter(|x| x.family == family && x.case == case)
                .map(|x| (x.prefixes as f64, if fib { x.fib.ns } else { x.lpm.ns }))
                .collect();
            let label = format!(
                "{family} {case}, {}",
                match (fib, family) {
                    (true, "IPv4") => "DIR-24-8",
                    (true, _) => "multibit trie",
                    (false, _) => "LPM trie",
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
