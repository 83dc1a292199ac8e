//! `cargo xtask bench`: every figure of BENCHMARKS.md, measured in one run
//! on this machine, and the plot of ns/packet against prefix count.
//!
//! - per-packet cost with BPF_PROG_TEST_RUN (repeat 1,000,000, median of 5)
//!   of the full forwarding path, DIR-24-8 (`edge`) and the kernel's LPM
//!   trie (`edge_lpm`), for hits on one hot destination, hits spread over
//!   4096 destinations and misses, against the floor (swap MACs, XDP_TX),
//!   measured between every two program batches;
//! - throughput through veth on one CPU at paced rates with fresh frames:
//!   edge, the kernel's forwarding and a plain XDP redirect;
//! - customer latency cost: the per-packet cost of TCP frames (and the
//!   UDP frame) with customer latency off and on, for packets it samples
//!   and packets it does not (rtt.rs);
//! - logical ports and domains (`--only lports`): the per-packet cost of
//!   a public packet on a plain and on a tagged logical port, of a
//!   private-domain packet and of an egress VLAN SET;
//! - control plane: prefix load time, loader RSS, map memory, failover;
//!   edged's path for a whole config of 100k/1M prefixes (compile + apply)
//!   and a reload changing 1% of them; route sync of 100k/1M routes through
//!   a running edged, with its RSS.
//!
//! How every counted run takes the measured path: see `per_packet::Bench::run_batch`.

mod bmp;
mod control;
mod lports;
mod per_packet;
mod prefixes;
mod report;
mod rtt;
mod scale;
mod throughput;

use std::{path::PathBuf, time::Instant};

use anyhow::{Context as _, Result};
use clap::Parser;
use edge_tests::netns::{Lab, in_netns, require_root};

use crate::{
    control::{compile_only, control_plane, load_only},
    per_packet::per_packet,
    report::Report,
    throughput::throughput,
};

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
    /// stderr, whose section of the report (--out) and plot (--plot) are
    /// rewritten in place; `veth`: the throughput sweep, its
    /// Markdown section printed and its plot written next to `--plot`; no
    /// report is written; `scale`: the control plane at scale, whose section
    /// of the report (--out) is rewritten in place; `bmp`: route analytics
    /// ingest at --scale-sizes announcements, its section printed; `rtt`:
    /// the customer latency cost, whose section of the report (--out) is
    /// rewritten in place, or added before the plots; `lports`: logical
    /// ports and domains, whose section of the report (--out) is rewritten
    /// in place, or added before the plots).
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
    /// Only the control plane at scale (config check, start, live adds, a
    /// batch, reads at 100k and 1M prefixes): JSON lines on stdout.
    #[arg(long)]
    scale_only: bool,
    /// Where edged and edgectl are (default: next to this executable), for
    /// measuring another build.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Prefix counts of the scale section.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000, 1_000_000])]
    scale_sizes: Vec<usize>,
    /// Internal: write the scale section's config of COUNT prefixes (and its
    /// batch file, FILE.batch) and exit.
    #[arg(long, num_args = 2, value_names = ["COUNT", "FILE"])]
    write_scale_config: Option<Vec<String>>,
    /// Longest a step of the scale section may take (seconds).
    #[arg(long, default_value_t = 300)]
    scale_timeout: u64,
    /// Every section but the control plane (per-packet and veth; the
    /// report then has no control-plane figures).
    #[arg(long)]
    skip_control: bool,
}

impl Cli {
    fn scale_options(&self) -> scale::ScaleOptions {
        scale::ScaleOptions {
            bin_dir: self.bin_dir.clone().unwrap_or_else(scale::own_dir),
            sizes: self.scale_sizes.clone(),
            timeout: std::time::Duration::from_secs(self.scale_timeout),
        }
    }
}

pub const FRAME: usize = 64;
pub const TEMPLATES: usize = 4096;
pub const RUNS: usize = 5;
pub const BB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xe0, 0x00];
pub const CUST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xe0, 0x01];
pub const NH_CUST: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x01];

pub const CONFIG: &str = include_str!("../../../fixtures/bench.toml");

fn main() -> Result<()> {
    let cli = Cli::parse();
    require_root();
    if let Some(args) = &cli.load_only {
        return load_only(&args[0], args[1].parse().context("prefix count")?);
    }
    if let Some(n) = cli.compile_only {
        return compile_only(n);
    }
    if let Some(args) = &cli.write_scale_config {
        let n: usize = args[0].parse().context("prefix count")?;
        std::fs::write(&args[1], scale::config_text(n))?;
        std::fs::write(format!("{}.batch", args[1]), scale::batch_text(n))?;
        return Ok(());
    }
    if cli.scale_only {
        let runs = scale::scale(&cli.scale_options())?;
        scale::print_json(&runs);
        return Ok(());
    }
    if cli.only.as_deref() == Some("bmp") {
        let runs = bmp::ingest(&cli.scale_options().bin_dir, &cli.scale_sizes)?;
        print!("{}", bmp::markdown(&runs));
        return Ok(());
    }
    if cli.only.as_deref() == Some("scale") {
        let o = cli.scale_options();
        let runs = scale::scale(&o)?;
        scale::print_json(&runs);
        let section = scale::markdown(&runs, o.timeout, &cli.commit);
        if let Some(out) = &cli.out {
            let doc = std::fs::read_to_string(out).unwrap_or_default();
            std::fs::write(out, scale::replace_section(&doc, &section))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("bench: rewrote the scale section of {}", out.display());
        }
        return Ok(());
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
    let (lab, ns) = bench_lab("bench", "pkt");
    if cli.only.as_deref() == Some("veth") {
        drop(lab);
        eprintln!("== throughput through veth");
        report.throughput = throughput(&sizes)?;
        print!("{}", report.throughput_markdown());
        if let Some(plot) = &cli.plot {
            report.plot_veth(&report::veth_plot_path(plot))?;
        }
        return Ok(());
    }
    if cli.only.as_deref() == Some("rtt") {
        eprintln!("== customer latency cost");
        let rtt = in_netns(&ns, || rtt::rtt(&sizes, cli.quick))?;
        drop(lab);
        let section = format!(
            "{}\n_This section: `edge-bench --only rtt` at commit {}; the rest of the report may come from another run._\n",
            rtt.markdown(&cli.commit, cli.quick),
            cli.commit
        );
        println!("{section}");
        if let Some(out) = &cli.out {
            let doc = std::fs::read_to_string(out).unwrap_or_default();
            std::fs::write(out, scale::replace_named_section(&doc, rtt::HEAD, &section))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "bench: rewrote the customer latency section of {}",
                out.display()
            );
        }
        eprintln!(
            "bench: customer latency only, done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if cli.only.as_deref() == Some("lports") {
        eprintln!("== logical ports and domains");
        let rows = in_netns(&ns, || lports::lports(&sizes))?;
        drop(lab);
        let section = lports::section(&rows, &cli.commit, sizes.repeat);
        println!("{section}");
        if let Some(out) = &cli.out {
            let doc = std::fs::read_to_string(out).unwrap_or_default();
            std::fs::write(
                out,
                scale::replace_named_section(&doc, lports::HEAD, &section),
            )
            .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "bench: rewrote the logical ports section of {}",
                out.display()
            );
        }
        return Ok(());
    }
    in_netns(&ns, || per_packet(&sizes, &mut report))?;
    if cli.only.as_deref() != Some("packet") {
        eprintln!("== customer latency cost");
        report.rtt = Some(in_netns(&ns, || rtt::rtt(&sizes, cli.quick))?);
        eprintln!("== logical ports and domains");
        report.lports = in_netns(&ns, || lports::lports(&sizes))?;
    }
    drop(lab);
    if cli.only.as_deref() == Some("packet") {
        // Only the per-packet section of the report (and its plot) is
        // rewritten; the Targets table is the full run's.
        const HEAD: &str = "## Per-packet cost";
        let text = report.markdown(&cli.commit, cli.quick);
        let start = text
            .find(HEAD)
            .context("the report has a per-packet section")?;
        let end = text[start + HEAD.len()..]
            .find("\n## ")
            .map_or(text.len(), |i| start + HEAD.len() + i + 1);
        let section = format!(
            "{}\n\n_This section: `edge-bench --only packet` at commit {}; the rest of the report may come from another run._\n",
            text[start..end].trim_end(),
            cli.commit
        );
        if let Some(out) = &cli.out {
            let doc = std::fs::read_to_string(out).unwrap_or_default();
            std::fs::write(out, scale::replace_named_section(&doc, HEAD, &section))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("bench: rewrote the per-packet section of {}", out.display());
        }
        if let Some(plot) = &cli.plot {
            report.plot(plot)?;
            eprintln!("bench: wrote {}", plot.display());
        }
        eprintln!(
            "bench: per-packet only, done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    eprintln!("== throughput through veth");
    report.throughput = throughput(&sizes)?;
    if !cli.skip_control {
        eprintln!("== control plane");
        report.control = control_plane(&sizes)?;
        if !cli.quick {
            let o = cli.scale_options();
            report.scale = scale::scale(&o)?;
            report.scale_timeout = o.timeout;
            report.bmp = bmp::ingest(&o.bin_dir, &o.sizes)?;
        }
    }
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
        let veth = report::veth_plot_path(plot);
        report.plot_veth(&veth)?;
        eprintln!("bench: wrote {}", veth.display());
    }
    Ok(())
}

/// A namespace `ns` with the bench config's ports, bb0 and cust0 (veth
/// pairs with their peers in the same namespace); deleted when the `Lab`
/// drops.
pub fn bench_lab(tag: &str, ns: &str) -> (Lab, String) {
    let mut lab = Lab::new(tag);
    let ns = lab.add_ns(ns);
    lab.veth(
        (&ns, "bb0", &mac(BB_MAC)),
        (&ns, "bb0x", "02:00:00:00:e1:00"),
    );
    lab.veth(
        (&ns, "cust0", &mac(CUST_MAC)),
        (&ns, "cust0x", "02:00:00:00:e1:01"),
    );
    (lab, ns)
}

fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub struct Sizes {
    pub v4: Vec<usize>,
    pub v6: Vec<usize>,
    /// Sizes of the real-shaped IPv6 table.
    pub v6_real: Vec<usize>,
    pub repeat: u32,
    pub load: Vec<usize>,
    pub throughput_secs: f64,
    /// Offered rates of the veth throughput bench, pps (infinite: unpaced).
    pub rates: Vec<f64>,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                v4: vec![1_000, 20_000],
                v6: vec![1_000, 20_000],
                v6_real: vec![20_000],
                repeat: 100_000,
                load: vec![20_000],
                throughput_secs: 0.3,
                rates: vec![200_000.0, 800_000.0, f64::INFINITY],
            }
        } else {
            Self {
                v4: vec![1_000, 100_000, 1_000_000],
                v6: vec![1_000, 100_000, 200_000],
                v6_real: vec![100_000, 200_000],
                repeat: 1_000_000,
                load: vec![100_000, 1_000_000],
                throughput_secs: 1.0,
                rates: vec![
                    250_000.0,
                    500_000.0,
                    1_000_000.0,
                    2_000_000.0,
                    4_000_000.0,
                    f64::INFINITY,
                ],
            }
        }
    }
}
