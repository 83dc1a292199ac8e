//! Throughput through veth: a generator, the edge and a sink in namespaces, XDP forwarding against the kernel's.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use aya::{
    Ebpf,
    maps::{Array, MapData, PerCpuArray},
    programs::{TestRun as _, TestRunAttrs, TestRunOptions, Xdp, XdpMode},
};
use edge_common::{Reason, prog_names};
use edge_tests::{
    frames::Pkt,
    harness::{self, maps::Counters, netdev},
    netns::{Lab, in_netns},
};

use crate::{FRAME, Sizes};

#[derive(Default)]
pub struct Throughput {
    /// Seconds per rate.
    pub seconds: f64,
    /// The paced rates offered (pps; infinite: unpaced, as fast as the generator goes).
    pub rates: Vec<f64>,
    /// Per forwarder (`edge`, `kernel`, `xdp-redirect`), per rate: (offered pps, delivered pps).
    pub series: Vec<(&'static str, Vec<(f64, f64)>)>,
}

/// Delivering at least this fraction of the target rate counts as keeping up.
pub const KEEPS_UP: f64 = 0.95;

impl Throughput {
    /// A forwarder's saturation: the most it delivered (pps) at any rate.
    pub fn saturation(&self, mode: &str) -> Option<f64> {
        let (_, pts) = self.series.iter().find(|(m, _)| *m == mode)?;
        pts.iter().map(|p| p.1).reduce(f64::max)
    }
    /// The highest paced target rate (pps) it delivered at least KEEPS_UP of.
    pub fn keeps_up_to(&self, mode: &str) -> Option<f64> {
        let (_, pts) = self.series.iter().find(|(m, _)| *m == mode)?;
        self.rates
            .iter()
            .zip(pts)
            .filter(|(r, p)| r.is_finite() && p.1 >= KEEPS_UP * **r)
            .map(|(r, _)| *r)
            .reduce(f64::max)
    }
}

pub const TPUT_CONFIG: &str = include_str!("../../../fixtures/bench-throughput.toml");

/// Generator calls per second when paced: each BPF_PROG_TEST_RUN sends
/// rate / CALLS_PER_SEC frames, then the generator sleeps until the next
/// call is due (it does not sleep when it is behind: the unpaced case).
/// Few and large: a live-frames call has a fixed cost of tens of ms here.
pub const CALLS_PER_SEC: f64 = 10.0;
/// Frames per call when unpaced.
pub const UNPACED_BATCH: u32 = 1 << 18;

pub fn sink_count(sink: &Ebpf) -> Result<u64> {
    let map: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(sink.map("BENCH_SINK").context("BENCH_SINK")?)?;
    Ok(map.get(&0, 0)?.iter().sum())
}

/// Pins the calling thread to CPU 0: the generator, and with it the veth
/// receive processing its frames trigger (softirqs on the sending CPU),
/// run on one CPU whatever the forwarder.
fn pin_cpu0() -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; plain syscall on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            anyhow::bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Generator namespace → edge namespace → sink namespace, over veth.
/// The generator transmits 64-byte UDP frames with BPF_PROG_TEST_RUN live
/// frames (`bench_gen`: a fresh copy of the frame each time, then XDP_TX
/// out of g0), paced at each of the rates in turn, pinned to CPU 0; the
/// sink counts what arrives with `bench_sink` on s0. The middle namespace
/// forwards with the `edge` program on e0 (XDP), with the kernel
/// (ip_forward, a route and a permanent neighbour; e0 then runs
/// `edge_pass`, since a veth takes XDP frames from its peer only when it
/// runs an XDP program), or with `bench_redirect` (swap MACs,
/// `bpf_redirect` to e1: the least an XDP forwarder does). Each rate runs
/// for a fixed time; all traffic stays in the lab's namespaces, between
/// documentation addresses.
pub fn throughput(sizes: &Sizes) -> Result<Throughput> {
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
        let mut o = harness::load_bench(&["bench_sink"])?;
        let p: &mut Xdp = o.program_mut("bench_sink").context("sink")?.try_into()?;
        p.attach("s0", XdpMode::Driver)?;
        Ok(o)
    })?;
    let frame = Pkt::udp("192.0.2.1", "198.51.100.1")
        .with(|p| {
            p.src_mac = [0x02, 0, 0, 0, 0x10, 0x01];
            p.dst_mac = [0x02, 0, 0, 0, 0x10, 0x02];
            p.payload = vec![0x5a; FRAME - 42];
        })
        .build();
    let mut generator = in_netns(&gen_ns, || -> Result<(Ebpf, u32)> {
        let o = harness::load_bench(&["bench_gen"])?;
        Ok((o, netdev::ifindex("g0")?))
    })?;
    {
        let mut frames: Array<&mut MapData, [u64; FRAME / 8]> = Array::try_from(
            generator
                .0
                .map_mut("BENCH_FRAMES")
                .context("BENCH_FRAMES")?,
        )?;
        let mut words = [0u64; FRAME / 8];
        for (w, c) in words.iter_mut().zip(frame.chunks(8)) {
            *w = u64::from_ne_bytes(c.try_into()?);
        }
        frames.set(0, words, 0)?;
    }
    let (mut edge, counters) = in_netns(&edge_ns, || -> Result<(Ebpf, Counters)> {
        let (o, tables, counters, _) =
            harness::load(TPUT_CONFIG, &[prog_names::EDGE, prog_names::PASS])?;
        // The tables must outlive the run: the maps stay referenced by the program.
        std::mem::forget(tables);
        Ok((o, counters))
    })?;
    let mut baseline = in_netns(&edge_ns, || -> Result<Ebpf> {
        let mut o = harness::load_bench(&["bench_redirect"])?;
        let mut fwd: Array<&mut MapData, u32> =
            Array::try_from(o.map_mut("BENCH_FWD").context("BENCH_FWD")?)?;
        fwd.set(0, netdev::ifindex("e1")?, 0)?;
        Ok(o)
    })?;

    let mut result = Throughput {
        seconds: sizes.throughput_secs,
        rates: sizes.rates.clone(),
        ..Throughput::default()
    };
    for mode in ["edge", "kernel", "xdp-redirect"] {
        lab.sysctl(
            &edge_ns,
            "net.ipv4.ip_forward",
            if mode == "kernel" { "1" } else { "0" },
        );
        let (obj, prog) = match mode {
            "edge" => (&mut edge, prog_names::EDGE),
            "kernel" => (&mut edge, prog_names::PASS),
            _ => (&mut baseline, "bench_redirect"),
        };
        let link = in_netns(&edge_ns, || -> Result<_> {
            let p: &mut Xdp = obj.program_mut(prog).context(prog)?.try_into()?;
            Ok(p.attach("e0", XdpMode::Driver)?)
        })?;
        let mut points = Vec::new();
        for &rate in &sizes.rates {
            let before = counters.read(0)?;
            let delivered0 = sink_count(&sink)?;
            let (generated, secs) = in_netns(&gen_ns, || -> Result<(u64, f64)> {
                pin_cpu0()?;
                let p = harness::xdp(&generator.0, "bench_gen")?;
                let ctx = harness::xdp_md(FRAME, generator.1);
                let batch = if rate.is_finite() {
                    (rate / CALLS_PER_SEC).clamp(1024.0, f64::from(UNPACED_BATCH)) as u32
                } else {
                    UNPACED_BATCH
                };
                let interval = Duration::from_secs_f64(f64::from(batch) / rate);
                let start = Instant::now();
                let mut next = start;
                let mut sent = 0u64;
                // Bounded: stops after the configured time.
                while start.elapsed().as_secs_f64() < sizes.throughput_secs {
                    let r = p.test_run(TestRunOptions {
                        data_in: Some(&frame),
                        ctx_in: Some(&ctx),
                        repeat: batch,
                        attrs: TestRunAttrs::new().xdp_live_frames(64),
                        ..TestRunOptions::new()
                    })?;
                    ensure!(r.return_value == 0, "live frames run failed");
                    sent += u64::from(batch);
                    if rate.is_finite() {
                        next += interval;
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                    }
                }
                Ok((sent, start.elapsed().as_secs_f64()))
            })?;
            // Let the last frames drain.
            std::thread::sleep(Duration::from_millis(100));
            let delivered = sink_count(&sink)? - delivered0;
            let after = counters.read(0)?;
            let redirected =
                after.reason(Reason::Policy).packets - before.reason(Reason::Policy).packets;
            ensure!(delivered > 0, "{mode}: nothing reached the sink");
            if mode == "edge" {
                // The sink also sees the lab's own chatter (IPv6 router
                // solicitations and the like): a few frames more.
                ensure!(
                    redirected + 100 >= delivered,
                    "edge: the sink got {delivered} frames but edge forwarded {redirected}"
                );
            } else {
                ensure!(
                    redirected == 0,
                    "{mode}: edge forwarded {redirected} frames"
                );
            }
            let pt = (generated as f64 / secs, delivered as f64 / secs);
            eprintln!(
                "{mode:<12} rate {:>9}: offered {:.0} pps, delivered {:.0} pps ({:.0}%)",
                if rate.is_finite() {
                    format!("{rate:.0}")
                } else {
                    "unpaced".into()
                },
                pt.0,
                pt.1,
                100.0 * pt.1 / pt.0
            );
            points.push(pt);
        }
        in_netns(&edge_ns, || -> Result<()> {
            let p: &mut Xdp = obj.program_mut(prog).context(prog)?.try_into()?;
            Ok(p.detach(link)?)
        })?;
        result.series.push((mode, points));
    }
    drop((sink, generator, edge, baseline));
    drop(lab);
    Ok(result)
}
