//! Logical ports and routing domains (issue 20): the per-packet cost of
//! a public-domain packet on a plain port (the per-packet section's
//! `IPv4 hot` path), on a tagged logical port, of a private-domain packet
//! and of an egress SET, through `bench_reset` like every per-packet
//! figure (`per_packet::Bench::measure`: RUNS batches of `repeat` runs,
//! each between two floor pairs, every batch checked: action, reason,
//! output frame, runs).
//!
//! Every row is one 64-byte UDP frame from bb0 toward the bench config's
//! prefix (or a copy of its path), redirected to cust0:
//!
//! - `public, plain port`: untagged, bb0's entry without `TAGGED`;
//! - `egress SET 1→1`: 802.1Q 100 on the plain bb0, to a copy of the
//!   `cust` PoP that sets tag 7 (the frame keeps its length, as
//!   `bench_reset` needs: the tag is rewritten in place);
//! - `public, logical port`: 802.1Q 100 on bb0 with `TAGGED`, its
//!   `EDGE_LPORTS` entry a public backbone port;
//! - `private domain`: 802.1Q 200 on bb0 with `TAGGED`, a port of domain
//!   1, whose trie holds the prefix, toward a domain-1 copy of `cust`.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use edge_common::{
    DSCP_KEEP, LportKey, POLICY_SLOTS, PolicyTable, PortEntry, PrefixEntry, VLAN_PRESENT,
    port_flags, prog_names, role, vlan_mode,
};
use edge_tests::frames::Pkt;

use crate::{
    BB_MAC, CUST_MAC, FRAME, NH_CUST, Sizes,
    per_packet::{Bench, Expect, Measured, Target, realtime},
};

/// The section's heading in BENCHMARKS.md.
pub const HEAD: &str = "## Logical ports and domains";

/// PoPs and selection tables the rows add (beyond the config's).
const POP_SET: u32 = 100;
const POP_PRIVATE: u32 = 101;
const TABLE_SET: u32 = 100;
const TABLE_PRIVATE: u32 = 101;

pub struct Row {
    pub name: &'static str,
    pub m: Measured,
}

/// A 64-byte UDP frame from bb0 to `dst` with `vlans` (802.1Q).
fn frame(dst: &str, vlans: &[u16]) -> Pkt {
    Pkt::udp("198.51.100.7", dst).with(|p| {
        p.dst_mac = BB_MAC;
        p.vlans = vlans.to_vec();
        p.payload = vec![0x5a; FRAME - 14 - 4 * vlans.len() - 20 - 8];
    })
}

/// `frame` with its one tag's VID set to `vid` (bytes 14..16).
fn retagged(mut frame: Vec<u8>, vid: u16) -> Vec<u8> {
    frame[14..16].copy_from_slice(&vid.to_be_bytes());
    frame
}

pub fn lports(sizes: &Sizes) -> Result<Vec<Row>> {
    realtime()?;
    let mut b = Bench::with(sizes.repeat, &[prog_names::EDGE])?;
    let bb0 = b.bb0;
    let (_, bb0_entry) = b
        .tables
        .ports()?
        .into_iter()
        .find(|(i, _)| *i == bb0)
        .context("bb0's port entry")?;
    let cust = u32::from(b.tables.policy(b.policy)?.pops[0]);
    let mut pop = b.tables.pop(cust)?;
    pop.vlan_mode = vlan_mode::SET;
    pop.vlan_count = 1;
    pop.vlan = [7, 0];
    b.tables.set_pop(POP_SET, pop)?;
    let mut pop = b.tables.pop(cust)?;
    pop.domain = 1;
    b.tables.set_pop(POP_PRIVATE, pop)?;
    for (table, to) in [(TABLE_SET, POP_SET), (TABLE_PRIVATE, POP_PRIVATE)] {
        let mut t = PolicyTable::default();
        t.pops[..POLICY_SLOTS].fill(to as u16);
        b.tables.set_policy(table, &t)?;
    }
    let entry = |policy| PrefixEntry {
        policy,
        slot: 0,
        dscp: DSCP_KEEP,
        ..PrefixEntry::default()
    };
    b.tables
        .set_prefix("198.18.0.0/24".parse()?, entry(TABLE_SET))?;
    b.tables
        .set_domain_prefix(1, "192.0.2.0/24".parse()?, entry(TABLE_PRIVATE))?;
    let key = |vid: u16| LportKey {
        ifindex: bb0,
        outer: VLAN_PRESENT | vid,
        inner: 0,
    };
    let lport = |id, domain| PortEntry {
        role: role::BACKBONE,
        id,
        domain,
        flags: 0,
    };
    b.tables.set_lport(key(100), lport(10, 0))?;
    b.tables.set_lport(key(200), lport(11, 1))?;

    let forward = |p: &Pkt| Expect::forward(std::slice::from_ref(p));
    let set = {
        let p = frame("198.18.0.1", &[100]);
        Expect {
            outputs: vec![retagged(p.forwarded(CUST_MAC, NH_CUST, None), 7)],
            ..forward(&p)
        }
    };
    let rows: [(&'static str, bool, Expect); 4] = [
        (
            "public, plain port",
            false,
            forward(&frame("192.0.2.1", &[])),
        ),
        ("egress SET 1→1", false, set),
        (
            "public, logical port",
            true,
            forward(&frame("192.0.2.1", &[100])),
        ),
        ("private domain", true, forward(&frame("192.0.2.1", &[200]))),
    ];
    let mut out = Vec::new();
    let mut samples = Vec::new();
    for (name, tagged, expect) in rows {
        let flags = if tagged { port_flags::TAGGED } else { 0 };
        b.tables.set_port(bb0, PortEntry { flags, ..bb0_entry })?;
        let m = b.measure(&[Target::Edge], &expect, &mut samples)?[0];
        eprintln!(
            "{name:<22}: {:6.2} ns (floor {:.2}, wrapped floor {:.2}; net {:.2} ns)",
            m.ns,
            m.floor,
            m.wrapped_floor,
            m.ns - m.wrapped_floor + m.floor
        );
        out.push(Row { name, m });
    }
    Ok(out)
}

/// The section (Markdown): heading, method, the rows' raw ns, their
/// adjacent floors and net cost.
pub fn section(rows: &[Row], commit: &str, repeat: u32) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{HEAD}\n");
    let _ = writeln!(
        s,
        "The per-packet cost of logical ports and routing domains (issue 20), from `edge-bench --only lports` (tests/src/bin/edge-bench/lports.rs) at commit {commit}. Method: the per-packet section's (BPF_PROG_TEST_RUN through `bench_reset`, the kernel's time per run in whole ns, the batch thread SCHED_FIFO), {} batches of {repeat} runs per row, each between two floor pairs; the figures are the medians of the batches, net = ns − (wrapped floor − floor). Every row is a 64-byte UDP frame from bb0 to the bench config's 192.0.2.0/24 (or a copy of its path), redirected to cust0 and checked (action, reason, output frame, runs): `public, plain port` is untagged on bb0 without `TAGGED` (the per-packet section's `IPv4 hot` path); `egress SET 1→1` is tagged 100 on the plain bb0 toward a PoP that sets tag 7 (the frame keeps its length, as `bench_reset` needs); `public, logical port` is tagged 100 on bb0 with `TAGGED`, a public backbone logical port; `private domain` is tagged 200, a port of domain 1 whose trie holds 192.0.2.0/24, toward a domain-1 PoP.\n",
        crate::RUNS
    );
    s += &markdown(rows);
    s
}

/// The rows as a Markdown table (raw ns, the adjacent floors, net).
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| row | ns/packet (through bench_reset) | floor | floor through bench_reset | net (ns − wrapped floor + floor) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.name,
            r.m.ns,
            r.m.floor,
            r.m.wrapped_floor,
            r.m.ns - r.m.wrapped_floor + r.m.floor
        );
    }
    s
}
