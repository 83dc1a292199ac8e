//! Throughput through veth: a generator, the edge and a sink in namespaces, XDP forwarding against the kernel's.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray},
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
    pub seconds: f64,
    /// (offered pps, delivered pps) with XDP forwarding.
    pub xdp: (f64, f64),
    /// The same with the kernel's IP forwarding.
    pub kernel: (f64, f64),
}

pub const TPUT_CONFIG: &str = include_str!("../../../fixtures/bench-throughput.toml");

/// Frames per generator syscall: small, so the generator hands the CPU to
/// the receive processing (softirqs) often instead of overflowing the
/// veth rings.
pub const TPUT_BURST: u32 = 8192;

pub fn sink_count(sink: &Ebpf) -> Result<u64> {
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
    let generator = in_netns(&gen_ns, || -> Result<(Ebpf, u32)> {
        let o = harness::load_bench(&["bench_tx"])?;
        Ok((o, netdev::ifindex("g0")?))
    })?;
    let (mut edge, counters) = in_netns(&edge_ns, || -> Result<(Ebpf, Counters)> {
        let (o, tables, counters, _) =
            harness::load(TPUT_CONFIG, &[prog_names::EDGE, prog_names::PASS])?;
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
            let p = harness::xdp(&generator.0, "bench_tx")?;
            let ctx = harness::xdp_md(FRAME, generator.1);
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
