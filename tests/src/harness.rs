//! The eBPF object under BPF_PROG_TEST_RUN: loading it with maps filled from a config, the `xdp_md` context, a namespace with the four ports, and the configs the tests share.
//!
//! Everything the tests and binaries take from edge-userspace is re-exported
//! here, so that they name its modules in this one place.

use anyhow::{Context as _, Result};
use aya::{
    Ebpf, EbpfLoader,
    programs::{ProgramError, TestRun as _, TestRunOptions, Xdp},
};
use edge_common::{POLICY_SLOTS, PolicyTable, Pop, PrefixEntry, pop_flags, prog_names};
pub use edge_userspace::{
    config,
    dataplane::{latency, loader, maps},
    desired::{self, state},
    health,
    host::netdev,
    plan, policy,
};

use self::{
    maps::{Counters, Stats, Tables, prefix_slot},
    plan::Plan,
};
use crate::netns::Lab;

/// The four ports (`peer0`, `peer1`: peering, `bb0`: backbone, `tr0`:
/// transit), in the order fixtures/four-ports.toml declares them.
pub const PORTS: [&str; 4] = ["peer0", "peer1", "bb0", "tr0"];
/// This host's own addresses (on bb0): traffic to them is the kernel's.
pub const LOCALS: [&str; 2] = ["198.51.100.254", "2001:db8:ff::fe"];

/// The packet tests' config: the four ports, every kind of PoP, policies
/// and prefixes; unregistered traffic is passed.
pub const PACKET_CONFIG: &str = concat!(
    include_str!("../fixtures/four-ports.toml"),
    include_str!("../fixtures/packet.toml")
);
/// The packet fuzzer's config: the four ports, every kind of PoP (direct
/// on each port, tunnels of both families, a PoP with only an IPv4
/// tunnel), both preferences, protection, DSCP rewrites, weighted
/// policies; unregistered traffic is dropped.
pub const FUZZ_CONFIG: &str = concat!(
    include_str!("../fixtures/four-ports.toml"),
    include_str!("../fixtures/fuzz.toml")
);

/// Prefixes written by hand after the config: one whose policy table is
/// empty, and one whose PoP's egress is not a transmit port.
pub const EMPTY_POLICY_PREFIX: &str = "203.0.113.64/26";
pub const NO_TX_PREFIX: &str = "203.0.113.128/26";
pub const NO_TX_POP: u32 = 200;

/// A namespace holding the four ports (veth pairs, MACs 02:00:00:00:e0:0i)
/// and the host's own addresses; deleted when the `Lab` drops.
pub fn port_lab(tag: &str) -> (Lab, String) {
    let mut lab = Lab::new(tag);
    let ns = lab.add_ns("pkt");
    for (i, port) in PORTS.iter().enumerate() {
        let mac = format!("02:00:00:00:e0:{i:02x}");
        let peer_mac = format!("02:00:00:00:e1:{i:02x}");
        lab.veth((&ns, port, &mac), (&ns, &format!("{port}x"), &peer_mac));
    }
    lab.addr(&ns, "bb0", &format!("{}/32", LOCALS[0]));
    lab.addr(&ns, "bb0", &format!("{}/128", LOCALS[1]));
    (lab, ns)
}

/// The MAC of port `name` in `port_lab`.
pub fn port_mac(name: &str) -> [u8; 6] {
    let i = PORTS.iter().position(|p| *p == name).expect("port") as u8;
    [0x02, 0, 0, 0, 0xe0, i]
}

/// The test-run context of an XDP program: `struct xdp_md { data,
/// data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }`;
/// the kernel requires data_end == the frame's length (net/bpf/test_run.c).
pub fn xdp_md(frame_len: usize, ingress_ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(frame_len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
    ctx
}

/// Runs `frame` once through `prog`, arriving on `ingress_ifindex`, into
/// `out`: (XDP action, output length).
pub fn run_into(
    prog: &Xdp,
    ingress_ifindex: u32,
    frame: &[u8],
    out: &mut [u8],
) -> Result<(u32, usize), ProgramError> {
    let ctx = xdp_md(frame.len(), ingress_ifindex);
    let result = prog.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(out),
        ctx_in: Some(&ctx),
        ..TestRunOptions::new()
    })?;
    Ok((result.return_value, result.data_size_out as usize))
}

/// An XDP program of a loaded object.
pub fn xdp<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Xdp> {
    Ok(ebpf.program(name).context("program")?.try_into()?)
}

/// Loads `programs` of `ebpf` into the kernel (the verifier checks them).
pub fn load_programs(ebpf: &mut Ebpf, programs: &[&str]) -> Result<()> {
    for &name in programs {
        let p: &mut Xdp = ebpf
            .program_mut(name)
            .with_context(|| name.to_string())?
            .try_into()?;
        p.load()
            .with_context(|| format!("verifier rejected {name}"))?;
    }
    Ok(())
}

/// The edge object with `programs` loaded and its maps filled from
/// `config_text`, as edged fills them.
pub fn load(config_text: &str, programs: &[&str]) -> Result<(Ebpf, Tables, Counters, Plan)> {
    load_with(config_text, programs, |_| {})
}

/// [`load`], with `setup` changing the loader first (say, a map's size).
pub fn load_with(
    config_text: &str,
    programs: &[&str],
    setup: impl FnOnce(&mut EbpfLoader),
) -> Result<(Ebpf, Tables, Counters, Plan)> {
    let plan = config::parse(config_text).map_err(|e| anyhow::anyhow!("config: {e:?}"))?;
    let mut loader = EbpfLoader::new();
    setup(&mut loader);
    let mut ebpf = loader
        .load(loader::object())
        .context("loading the edge eBPF object")?;
    load_programs(&mut ebpf, programs)?;
    let mut tables = Tables::take(&mut ebpf)?;
    let counters = Counters::take(&mut ebpf)?;
    crate::reference::write_plan(&mut tables, &plan)?;
    Ok((ebpf, tables, counters, plan))
}

/// The bench's helper object (edge-ebpf/src/bench.rs) with `programs` loaded.
pub fn load_bench(programs: &[&str]) -> Result<Ebpf> {
    let mut ebpf = EbpfLoader::new().load(loader::bench_object())?;
    load_programs(&mut ebpf, programs)?;
    Ok(ebpf)
}

/// The edge program loaded from a config, plus `EMPTY_POLICY_PREFIX` and
/// `NO_TX_PREFIX` written by hand; frames run through it one at a time.
pub struct Harness {
    pub ebpf: Ebpf,
    pub tables: Tables,
    pub counters: Counters,
    pub plan: Plan,
}

impl Harness {
    pub fn new(config_text: &str) -> Self {
        Self::new_with(config_text, |_| {})
    }

    /// [`Harness::new`], with `setup` changing the loader first.
    pub fn new_with(config_text: &str, setup: impl FnOnce(&mut EbpfLoader)) -> Self {
        let (ebpf, mut tables, counters, plan) =
            load_with(config_text, &[prog_names::EDGE], setup).expect("load the edge object");
        let empty_policy = plan.policies.len() as u32;
        tables
            .set_policy(empty_policy, &PolicyTable::default())
            .unwrap();
        let no_tx = Pop {
            ifindex: netdev::ifindex("lo").unwrap(),
            flags: pop_flags::VALID,
            src_mac: [2; 6],
            dst_mac: [4; 6],
            ..Pop::default()
        };
        tables.set_pop(NO_TX_POP, no_tx).unwrap();
        let mut to_no_tx = PolicyTable::default();
        to_no_tx.pops[..POLICY_SLOTS].fill(NO_TX_POP as u16);
        tables.set_policy(empty_policy + 1, &to_no_tx).unwrap();
        for (prefix, policy) in [
            (EMPTY_POLICY_PREFIX, empty_policy),
            (NO_TX_PREFIX, empty_policy + 1),
        ] {
            // No counter slot: these test prefixes are not registrations.
            let entry = PrefixEntry {
                policy,
                slot: u32::MAX,
                ..PrefixEntry::default()
            };
            tables.set_prefix(prefix.parse().unwrap(), entry).unwrap();
        }
        Self {
            ebpf,
            tables,
            counters,
            plan,
        }
    }

    /// The edge program.
    pub fn program(&self) -> &Xdp {
        xdp(&self.ebpf, prog_names::EDGE).expect("edge program")
    }

    /// Runs one frame arriving on interface `ingress`; returns the XDP
    /// action and the output frame.
    pub fn run(&self, ingress: &str, frame: &[u8]) -> (u32, Vec<u8>) {
        self.run_on(netdev::ifindex(ingress).unwrap(), frame)
    }

    /// Runs one frame arriving on `ingress_ifindex`; returns the XDP action
    /// and the output frame.
    pub fn run_on(&self, ingress_ifindex: u32, frame: &[u8]) -> (u32, Vec<u8>) {
        let mut out = vec![0u8; frame.len() + 256];
        let (action, len) =
            run_into(self.program(), ingress_ifindex, frame, &mut out).expect("BPF_PROG_TEST_RUN");
        out.truncate(len);
        (action, out)
    }

    /// The counters of every prefix slot the plan uses.
    pub fn stats(&self) -> Stats {
        self.counters
            .read(self.plan.prefixes.len() as u32 + 1)
            .unwrap()
    }

    pub fn pop_id(&self, name: &str) -> u32 {
        self.plan
            .pops
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("PoP {name}")) as u32
    }

    /// The counter slot of the prefix registered as `registration`.
    pub fn slot(&self, registration: &str) -> u32 {
        let i = self
            .plan
            .prefixes
            .iter()
            .position(|p| p.registration == registration)
            .expect("prefix");
        prefix_slot(i)
    }

    pub fn port_id(&self, name: &str) -> Option<u32> {
        self.plan
            .ports
            .iter()
            .position(|p| p.interface == name)
            .map(|i| i as u32)
    }
}

/// Counters that moved between two snapshots: (`kind:name`, packets,
/// bytes), sorted; `kind` is action, reason, prefix, pop or port.
pub fn moved(before: &Stats, after: &Stats) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut diff = |kind: &str, b: &[(String, maps::Count)], a: &[(String, maps::Count)]| {
        for (name, c) in a {
            let old = b
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, c)| *c)
                .unwrap_or_default();
            if *c != old {
                out.push((
                    format!("{kind}:{name}"),
                    c.packets - old.packets,
                    c.bytes - old.bytes,
                ));
            }
        }
    };
    let named = |rows: &[(&'static str, maps::Count)]| {
        rows.iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect::<Vec<_>>()
    };
    let ids = |rows: &[(u32, maps::Count)]| {
        rows.iter()
            .map(|(n, c)| (n.to_string(), *c))
            .collect::<Vec<_>>()
    };
    diff("action", &named(&before.actions), &named(&after.actions));
    diff("reason", &named(&before.reasons), &named(&after.reasons));
    diff("prefix", &ids(&before.prefixes), &ids(&after.prefixes));
    diff("pop", &ids(&before.pops), &ids(&after.pops));
    diff("port", &ids(&before.ports), &ids(&after.ports));
    out.sort();
    out
}
