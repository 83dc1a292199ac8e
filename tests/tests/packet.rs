//! Packet tests (tier 2): the real object, real maps, crafted frames through
//! BPF_PROG_TEST_RUN; return code, output bytes and counters asserted exactly.
//!
//! Each test runs inside its own network namespace holding a veth pair
//! (`in0` ↔ `out0`), so ingress and egress ifindexes are real devices and
//! nothing touches the host's interfaces.

use aya::{
    Ebpf,
    programs::{TestRun as _, TestRunOptions, Xdp},
};
use edge_common::{Action, POP_F_VALID, Pop, PrefixEntry, Reason, map_names, prog_names};
use edge_tests::{
    frames::{Udp, arp_request, ipv4_checksum_ok},
    netns::{Lab, in_netns},
};
use edge_userspace::{
    loader,
    maps::{Counters, Stats, Tables},
    netdev,
};

const EGRESS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0x01];
const INGRESS_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xee, 0x02];
const NH_A: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];
const NH_B: [u8; 6] = [0x02, 0, 0, 0, 0x0b, 0x01];

/// PoP ids written by [`Harness::new`].
const POP_A: u32 = 0; // egress out0: redirect
const POP_B: u32 = 1; // egress in0 (= ingress): XDP_TX
const POP_INVALID: u32 = 2; // never written: no next hop
const POP_NO_TX: u32 = 3; // egress lo, not in the devmap

struct Harness {
    ebpf: Ebpf,
    tables: Tables,
    counters: Counters,
    ingress: u32,
}

impl Harness {
    fn new() -> Self {
        let mut ebpf = loader::load().expect("load object");
        let prog: &mut Xdp = ebpf
            .program_mut(prog_names::EDGE)
            .expect("edge program")
            .try_into()
            .unwrap();
        prog.load().expect("verifier accepts the edge program");
        let mut tables = Tables::take(&mut ebpf).expect("tables");
        let counters = Counters::take(&mut ebpf).expect("counters");

        let ingress = netdev::ifindex("in0").unwrap();
        let egress = netdev::ifindex("out0").unwrap();
        tables.add_tx_port(ingress).unwrap();
        tables.add_tx_port(egress).unwrap();
        let pop = |ifindex, src_mac, dst_mac| Pop {
            ifindex,
            flags: POP_F_VALID,
            src_mac,
            dst_mac,
            _pad: [0; 4],
        };
        tables
            .set_pop(POP_A, pop(egress, EGRESS_MAC, NH_A))
            .unwrap();
        tables
            .set_pop(POP_B, pop(ingress, INGRESS_MAC, NH_B))
            .unwrap();
        tables
            .set_pop(
                POP_NO_TX,
                pop(netdev::ifindex("lo").unwrap(), EGRESS_MAC, NH_A),
            )
            .unwrap();
        for (net, pop) in [
            ("203.0.113.0/24", POP_A),
            ("203.0.0.0/16", POP_B),
            ("198.51.100.0/25", POP_INVALID),
            ("198.51.100.128/25", POP_NO_TX),
            ("2001:db8:a::/48", POP_A),
            ("2001:db8::/32", POP_B),
        ] {
            tables
                .set_prefix(net.parse().unwrap(), PrefixEntry { pop, _reserved: 0 })
                .unwrap();
        }
        Self {
            ebpf,
            tables,
            counters,
            ingress,
        }
    }

    /// Runs one frame arriving on `in0`; returns the XDP action and output frame.
    fn run(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        let prog: &Xdp = self
            .ebpf
            .program(prog_names::EDGE)
            .unwrap()
            .try_into()
            .unwrap();
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
        // The kernel requires data_end == the frame's length (net/bpf/test_run.c).
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&self.ingress.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 256];
        let result = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ..TestRunOptions::new()
            })
            .expect("BPF_PROG_TEST_RUN");
        out.truncate(result.data_size_out as usize);
        (result.return_value, out)
    }

    fn stats(&self) -> Stats {
        self.counters.read().unwrap()
    }
}

/// Runs `body` with a fresh harness in a fresh namespace.
fn with_harness(tag: &str, body: impl FnOnce(&mut Harness) + Send) {
    let mut lab = Lab::new(tag);
    let ns = lab.add_ns("pkt");
    lab.veth(
        (&ns, "in0", "02:00:00:00:ee:02"),
        (&ns, "out0", "02:00:00:00:ee:01"),
    );
    in_netns(&ns, || body(&mut Harness::new()));
}

struct Case {
    name: &'static str,
    input: Vec<u8>,
    action: Action,
    reason: Reason,
    /// Expected output; `None` means byte-identical to the input.
    output: Option<Vec<u8>>,
}

fn forwarded(name: &'static str, udp: Udp, action: Action, src: [u8; 6], dst: [u8; 6]) -> Case {
    Case {
        name,
        input: udp.build(),
        action,
        reason: Reason::Forwarded,
        output: Some(udp.forwarded(src, dst)),
    }
}

fn passed(name: &'static str, input: Vec<u8>, reason: Reason) -> Case {
    Case {
        name,
        input,
        action: Action::Pass,
        reason,
        output: None,
    }
}

fn udp(src: &str, dst: &str, f: impl FnOnce(&mut Udp)) -> Udp {
    let mut u = Udp::new(src, dst);
    f(&mut u);
    u
}

fn cases() -> Vec<Case> {
    let v4 = |dst| Udp::new("192.0.2.1", dst);
    let v6 = |dst| Udp::new("2001:db8:c::1", dst);
    let mut ihl_too_small = v4("203.0.113.10").build();
    ihl_too_small[14] = 0x44;
    let mut ihl_past_end = udp("192.0.2.1", "203.0.113.10", |u| u.payload.clear()).build();
    ihl_past_end[14] = 0x4f; // 60-byte header in a 28-byte packet
    let mut v6_in_v4_ethertype = v4("203.0.113.10").build();
    v6_in_v4_ethertype[14] = 0x65;
    let mut v4_in_v6_ethertype = v6("2001:db8:a::10").build();
    v4_in_v6_ethertype[14] = 0x45;
    let eth_only = v4("203.0.113.10").build()[..14].to_vec();
    let short_v4 = v4("203.0.113.10").build()[..14 + 19].to_vec();
    let short_v6 = v6("2001:db8:a::10").build()[..14 + 39].to_vec();
    let short_vlan = udp("192.0.2.1", "203.0.113.10", |u| u.vlans = vec![7]).build()[..16].to_vec();

    vec![
        forwarded(
            "IPv4 to a registered /24: redirect",
            v4("203.0.113.10"),
            Action::Redirect,
            EGRESS_MAC,
            NH_A,
        ),
        forwarded(
            "IPv6 to a registered /48: redirect",
            v6("2001:db8:a::10"),
            Action::Redirect,
            EGRESS_MAC,
            NH_A,
        ),
        forwarded(
            "IPv4, longest prefix wins (/16 → ingress port): XDP_TX",
            v4("203.0.5.5"),
            Action::Tx,
            INGRESS_MAC,
            NH_B,
        ),
        forwarded(
            "IPv6, longest prefix wins (/32 → ingress port): XDP_TX",
            v6("2001:db8:ffff::1"),
            Action::Tx,
            INGRESS_MAC,
            NH_B,
        ),
        forwarded(
            "IPv4 in one 802.1Q tag",
            udp("192.0.2.1", "203.0.113.10", |u| u.vlans = vec![100]),
            Action::Redirect,
            EGRESS_MAC,
            NH_A,
        ),
        forwarded(
            "IPv6 in QinQ (802.1ad + 802.1Q)",
            udp("2001:db8:c::1", "2001:db8:a::1", |u| {
                u.vlans = vec![100, 200]
            }),
            Action::Redirect,
            EGRESS_MAC,
            NH_A,
        ),
        forwarded(
            "IPv4 with 8 bytes of options",
            udp("192.0.2.1", "203.0.113.10", |u| {
                u.ipv4_options = vec![0x94, 4, 0, 0, 1, 1, 1, 0]
            }),
            Action::Redirect,
            EGRESS_MAC,
            NH_A,
        ),
        forwarded(
            "IPv4 TTL 2 is forwarded with TTL 1",
            udp("192.0.2.1", "203.0.113.10", |u| u.ttl = 2),
            Action::Redirect,
            EGRESS_MAC,
            NH_A,
        ),
        forwarded(
            "IPv4 TTL 255",
            udp("192.0.2.1", "203.0.113.10", |u| u.ttl = 255),
            Action::Redirect,
            EGRESS_MAC,
            NH_A,
        ),
        passed(
            "IPv4 unregistered destination",
            v4("192.0.2.99").build(),
            Reason::Unregistered,
        ),
        passed(
            "IPv6 unregistered destination",
            v6("2001:db9::1").build(),
            Reason::Unregistered,
        ),
        passed(
            "IPv4 TTL 1",
            udp("192.0.2.1", "203.0.113.10", |u| u.ttl = 1).build(),
            Reason::TtlExceeded,
        ),
        passed(
            "IPv4 TTL 0",
            udp("192.0.2.1", "203.0.113.10", |u| u.ttl = 0).build(),
            Reason::TtlExceeded,
        ),
        passed(
            "IPv6 hop limit 1",
            udp("2001:db8:c::1", "2001:db8:a::10", |u| u.ttl = 1).build(),
            Reason::TtlExceeded,
        ),
        passed(
            "unregistered with hop limit 1 counts as unregistered",
            udp("fe80::1", "ff02::16", |u| u.ttl = 1).build(),
            Reason::Unregistered,
        ),
        passed(
            "IPv4 TTL 1 inside a VLAN",
            udp("192.0.2.1", "203.0.113.10", |u| {
                u.ttl = 1;
                u.vlans = vec![5]
            })
            .build(),
            Reason::TtlExceeded,
        ),
        passed("ARP is not IP", arp_request(), Reason::NotIp),
        passed(
            "three VLAN tags: the third is not parsed",
            udp("192.0.2.1", "203.0.113.10", |u| u.vlans = vec![1, 2, 3]).build(),
            Reason::NotIp,
        ),
        passed(
            "PoP without a valid next hop",
            v4("198.51.100.1").build(),
            Reason::NoNextHop,
        ),
        passed(
            "PoP egress not in the devmap",
            v4("198.51.100.200").build(),
            Reason::NoTxPort,
        ),
        passed("Ethernet header only", eth_only, Reason::Malformed),
        passed("IPv4 header cut at 19 bytes", short_v4, Reason::Malformed),
        passed("IPv6 header cut at 39 bytes", short_v6, Reason::Malformed),
        passed("VLAN tag cut short", short_vlan, Reason::Malformed),
        passed("IPv4 IHL 4 (< 20 bytes)", ihl_too_small, Reason::Malformed),
        passed(
            "IPv4 IHL 15 past the end of the frame",
            ihl_past_end,
            Reason::Malformed,
        ),
        passed(
            "IPv6 version nibble under the IPv4 EtherType",
            v6_in_v4_ethertype,
            Reason::Malformed,
        ),
        passed(
            "IPv4 version nibble under the IPv6 EtherType",
            v4_in_v6_ethertype,
            Reason::Malformed,
        ),
    ]
}

/// Counters that moved: (name, packets, bytes).
type Moved = Vec<(&'static str, u64, u64)>;

fn delta(
    before: &Stats,
    after: &Stats,
) -> (Moved, Moved) {
    let diff = |b: &[(&'static str, edge_userspace::maps::Count)],
                a: &[(&'static str, edge_userspace::maps::Count)]| {
        b.iter()
            .zip(a)
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, y)| (x.0, y.1.packets - x.1.packets, y.1.bytes - x.1.bytes))
            .collect::<Vec<_>>()
    };
    (
        diff(&before.actions, &after.actions),
        diff(&before.reasons, &after.reasons),
    )
}

#[test]
fn fixtures_give_the_expected_action_bytes_and_counters() {
    with_harness("pkt", |h| {
        let cases = cases();
        for case in &cases {
            let before = h.stats();
            let (ret, out) = h.run(&case.input);
            let after = h.stats();
            assert_eq!(
                Action::from_u32(ret),
                Some(case.action),
                "{}: action (counters moved: {:?})",
                case.name,
                delta(&before, &after)
            );
            let expected = case.output.as_ref().unwrap_or(&case.input);
            assert_eq!(&out, expected, "{}: output frame", case.name);
            let len = case.input.len() as u64;
            assert_eq!(
                delta(&before, &after),
                (
                    vec![(case.action.name(), 1, len)],
                    vec![(case.reason.name(), 1, len)]
                ),
                "{}: exactly one action and one reason counted",
                case.name
            );
        }
        let total = h.stats().total();
        assert_eq!(total.packets, cases.len() as u64);
    });
}

#[test]
fn ipv4_checksum_stays_correct_across_many_headers() {
    // The kernel patches the checksum incrementally (RFC 1624); etherparse
    // computes it from scratch. Sweep identification and TTL so the
    // checksum takes thousands of values, including the carry cases.
    with_harness("csum", |h| {
        let mut n = 0;
        for ttl in [2u8, 3, 64, 128, 255] {
            for ident in (0..=u16::MAX).step_by(61) {
                let u = udp("192.0.2.1", "203.0.113.77", |u| {
                    u.ttl = ttl;
                    u.ident = ident;
                });
                let (ret, out) = h.run(&u.build());
                assert_eq!(ret, Action::Redirect as u32);
                assert!(
                    ipv4_checksum_ok(&out[14..34]),
                    "ttl {ttl} ident {ident}: bad checksum"
                );
                assert_eq!(
                    out,
                    u.forwarded(EGRESS_MAC, NH_A),
                    "ttl {ttl} ident {ident}"
                );
                n += 1;
            }
        }
        assert_eq!(h.stats().reason(Reason::Forwarded).packets, n);
    });
}

#[test]
fn object_has_every_map_and_program() {
    with_harness("obj", |_h| {
        let ebpf = loader::load().unwrap();
        for name in map_names::ALL {
            assert!(
                ebpf.map(name).is_some(),
                "map {name} missing from the object"
            );
        }
        for name in [prog_names::EDGE, prog_names::PASS] {
            assert!(
                ebpf.program(name).is_some(),
                "program {name} missing from the object"
            );
        }
    });
}

#[test]
fn lookup_from_userspace_matches_the_kernel() {
    with_harness("lpm", |h| {
        let look = |a: &str| h.tables.lookup(a.parse().unwrap()).unwrap().map(|e| e.pop);
        assert_eq!(look("203.0.113.1"), Some(POP_A));
        assert_eq!(look("203.0.200.1"), Some(POP_B));
        assert_eq!(look("192.0.2.1"), None);
        assert_eq!(look("2001:db8:a::5"), Some(POP_A));
        assert_eq!(look("2001:db8:b::5"), Some(POP_B));
        assert_eq!(look("2001:db9::"), None);
    });
}
