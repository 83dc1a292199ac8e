//! Packet tests (tier 2): the real object and maps filled from a real
//! config, crafted frames through BPF_PROG_TEST_RUN; the action, the output
//! bytes and every counter asserted exactly.
//!
//! Each test runs inside its own network namespace holding the ports
//! (`peer0`, `peer1`: peering, `bb0`: backbone, `tr0`: transit), so ingress
//! and egress ifindexes are real devices and nothing touches the host.

use std::net::IpAddr;

use edge_common::{Action, Reason, map_names, prog_names};
use edge_tests::{
    frames::{L4, Pkt, arp_request, ipv4_checksum_ok, lldp},
    harness::{Harness, PACKET_CONFIG as CONFIG, loader, moved, port_lab, port_mac},
    netns::in_netns,
};

const NH_CORE: [u8; 6] = [0x02, 0, 0, 0, 0xc0, 0x01];
const NH_ISP: [u8; 6] = [0x02, 0, 0, 0, 0x15, 0x01];
const NH_AMS: [u8; 6] = [0x02, 0, 0, 0, 0xa0, 0x01];
const NH_FRA: [u8; 6] = [0x02, 0, 0, 0, 0xf0, 0x01];
const NH_CUST: [u8; 6] = [0x02, 0, 0, 0, 0xcc, 0x01];
const ENCAP_TTL: u8 = 60;

/// Runs `body` with a harness built from `config_text` in a fresh namespace
/// holding the four ports.
fn with_harness(tag: &str, config_text: &str, body: impl FnOnce(&Harness) + Send) {
    let (_lab, ns) = port_lab(tag);
    in_netns(&ns, || body(&Harness::new(config_text)));
}

struct Case {
    name: String,
    ingress: &'static str,
    input: Vec<u8>,
    action: Action,
    reason: Reason,
    /// Expected output; `None` means byte-identical to the input.
    output: Option<Vec<u8>>,
    /// The PoP the packet is sent to.
    pop: Option<&'static str>,
    /// The registration the packet is classified into.
    prefix: Option<&'static str>,
}

fn case(
    name: impl Into<String>,
    ingress: &'static str,
    input: Vec<u8>,
    action: Action,
    reason: Reason,
) -> Case {
    Case {
        name: name.into(),
        ingress,
        input,
        action,
        reason,
        output: None,
        pop: None,
        prefix: None,
    }
}

impl Case {
    fn out(self, output: Vec<u8>) -> Self {
        Case {
            output: Some(output),
            ..self
        }
    }
    fn pop(self, pop: &'static str) -> Self {
        Case {
            pop: Some(pop),
            ..self
        }
    }
    fn prefix(self, prefix: &'static str) -> Self {
        Case {
            prefix: Some(prefix),
            ..self
        }
    }
}

const VLANS: [&[u16]; 3] = [&[], &[100], &[100, 200]];

fn tags(vlans: &[u16]) -> String {
    match vlans.len() {
        0 => "untagged".into(),
        1 => "802.1Q".into(),
        _ => "QinQ".into(),
    }
}

fn v4v6(v4: (&str, &str), v6: (&str, &str)) -> [(&'static str, Pkt); 2] {
    [
        ("IPv4", Pkt::udp(v4.0, v4.1)),
        ("IPv6", Pkt::udp(v6.0, v6.1)),
    ]
}

fn tunnel(family: &str) -> (IpAddr, IpAddr) {
    if family == "IPv4" {
        (
            "198.51.100.1".parse().unwrap(),
            "203.0.113.1".parse().unwrap(),
        )
    } else {
        (
            "2001:db8:ff::1".parse().unwrap(),
            "2001:db8:ff::2".parse().unwrap(),
        )
    }
}

fn forwarding_cases() -> Vec<Case> {
    use Action::{Redirect, Tx};
    let mut cases = Vec::new();
    for vlans in VLANS {
        let t = tags(vlans);
        // From the customer, microsoft preference: into the backbone here.
        for (fam, p) in v4v6(
            ("192.0.2.10", "203.0.113.200"),
            ("2001:db8:c::10", "2001:db8:1234::1"),
        ) {
            let p = p.with(|p| p.vlans = vlans.to_vec());
            let reg = if fam == "IPv4" { "cust-a" } else { "cust-a6" };
            cases.push(
                case(
                    format!("{fam} {t}: customer (microsoft) → backbone exit"),
                    "peer0",
                    p.build(),
                    Redirect,
                    Reason::Backbone,
                )
                .out(p.forwarded(port_mac("bb0"), NH_CORE, None))
                .pop("core")
                .prefix(reg),
            );
        }
        // From the customer, internet preference: to transit, DSCP EF.
        for (fam, p) in v4v6(
            ("192.0.2.200", "203.0.113.200"),
            ("2001:db8:d::10", "2001:db8:1234::1"),
        ) {
            let p = p.with(|p| p.vlans = vlans.to_vec());
            let reg = if fam == "IPv4" {
                "cust-b"
            } else {
                "2001:db8:d::/48"
            };
            cases.push(
                case(
                    format!("{fam} {t}: customer (internet) → transit, DSCP ef"),
                    "peer0",
                    p.build(),
                    Redirect,
                    Reason::Transit,
                )
                .out(p.forwarded(port_mac("tr0"), NH_ISP, Some(46)))
                .pop("isp")
                .prefix(reg),
            );
        }
        // Toward the customer, microsoft preference: the policy's PoP.
        for (fam, p) in v4v6(
            ("203.0.113.200", "192.0.2.10"),
            ("2001:db8:1234::1", "2001:db8:c::10"),
        ) {
            let p = p.with(|p| p.vlans = vlans.to_vec());
            let reg = if fam == "IPv4" { "cust-a" } else { "cust-a6" };
            cases.push(
                case(
                    format!("{fam} {t}: backbone → customer via its policy"),
                    "bb0",
                    p.build(),
                    Redirect,
                    Reason::Policy,
                )
                .out(p.forwarded(port_mac("peer0"), NH_CUST, None))
                .pop("cust")
                .prefix(reg),
            );
        }
        // Toward a remote PoP through the tunnel, DSCP AF41, ECN kept.
        for (fam, p) in v4v6(
            ("203.0.113.200", "198.51.100.10"),
            ("2001:db8:1234::1", "2001:db8:a::10"),
        ) {
            let p = p.with(|p| p.vlans = vlans.to_vec());
            let reg = if fam == "IPv4" {
                "198.51.100.0/25"
            } else {
                "2001:db8:a::/48"
            };
            cases.push(
                case(
                    format!("{fam} {t}: transit → remote PoP, encapsulated, DSCP af41"),
                    "tr0",
                    p.build(),
                    Redirect,
                    Reason::Policy,
                )
                .out(p.encapsulated(port_mac("bb0"), NH_AMS, Some(34), tunnel(fam), ENCAP_TTL))
                .pop("ams")
                .prefix(reg),
            );
        }
        // Protection: a protected prefix on the wrong peering port.
        for (fam, p) in v4v6(
            ("192.0.2.10", "203.0.113.200"),
            ("2001:db8:c::10", "2001:db8:1234::1"),
        ) {
            let p = p.with(|p| p.vlans = vlans.to_vec());
            let reg = if fam == "IPv4" { "cust-a" } else { "cust-a6" };
            cases.push(
                case(
                    format!("{fam} {t}: protected prefix on another peering port is dropped"),
                    "peer1",
                    p.build(),
                    Action::Drop,
                    Reason::Protection,
                )
                .prefix(reg),
            );
        }
    }
    for (fam, p) in v4v6(
        ("203.0.113.200", "192.0.2.10"),
        ("2001:db8:1234::1", "2001:db8:c::10"),
    ) {
        let reg = if fam == "IPv4" { "cust-a" } else { "cust-a6" };
        cases.push(
            case(
                format!("{fam}: transit → customer (microsoft) via its policy"),
                "tr0",
                p.build(),
                Redirect,
                Reason::Policy,
            )
            .out(p.forwarded(port_mac("peer0"), NH_CUST, None))
            .pop("cust")
            .prefix(reg),
        );
    }
    for (fam, p) in v4v6(
        ("203.0.113.200", "192.0.2.200"),
        ("2001:db8:1234::1", "2001:db8:d::10"),
    ) {
        let reg = if fam == "IPv4" {
            "cust-b"
        } else {
            "2001:db8:d::/48"
        };
        cases.push(
            case(
                format!("{fam}: backbone → customer (internet) via transit"),
                "bb0",
                p.build(),
                Redirect,
                Reason::Transit,
            )
            .out(p.forwarded(port_mac("tr0"), NH_ISP, Some(46)))
            .pop("isp")
            .prefix(reg),
        );
        cases.push(
            case(
                format!("{fam}: transit → customer (internet): egress = ingress, XDP_TX"),
                "tr0",
                p.build(),
                Tx,
                Reason::Transit,
            )
            .out(p.forwarded(port_mac("tr0"), NH_ISP, Some(46)))
            .pop("isp")
            .prefix(reg),
        );
    }
    for (fam, p) in v4v6(
        ("203.0.113.200", "198.51.100.10"),
        ("2001:db8:1234::1", "2001:db8:a::10"),
    ) {
        let reg = if fam == "IPv4" {
            "198.51.100.0/25"
        } else {
            "2001:db8:a::/48"
        };
        let p = p.with(|p| p.tos = 0b11);
        cases.push(
            case(format!("{fam}: backbone → remote PoP on the same port: XDP_TX, encapsulated, ECN CE kept"), "bb0", p.build(), Tx, Reason::Policy)
                .out(p.encapsulated(port_mac("bb0"), NH_AMS, Some(34), tunnel(fam), ENCAP_TTL))
                .pop("ams")
                .prefix(reg),
        );
    }
    let fra = Pkt::udp("198.51.100.200", "203.0.113.10");
    let icmp = fra.with(|p| p.l4 = L4::Icmp { ty: 8 });
    let tcp = fra.with(|p| {
        p.l4 = L4::Tcp {
            sport: 443,
            dport: 51000,
        }
    });
    let df_clear = fra.with(|p| p.dont_fragment = false);
    for (what, p) in [
        ("UDP", fra),
        ("ICMP echo", icmp),
        ("TCP", tcp),
        ("UDP without DF", df_clear),
    ] {
        cases.push(
            case(
                format!("IPv4 {what}: transit → PoP, DS field untouched"),
                "tr0",
                p.build(),
                Redirect,
                Reason::Policy,
            )
            .out(p.forwarded(port_mac("bb0"), NH_FRA, None))
            .pop("fra")
            .prefix("203.0.113.0/26"),
        );
    }
    let echo6 =
        Pkt::udp("2001:db8:c::10", "2001:db8:1234::1").with(|p| p.l4 = L4::Icmp { ty: 128 });
    cases.push(
        case(
            "IPv6 ICMPv6 echo from the customer → backbone exit",
            "peer0",
            echo6.build(),
            Redirect,
            Reason::Backbone,
        )
        .out(echo6.forwarded(port_mac("bb0"), NH_CORE, None))
        .pop("core")
        .prefix("cust-a6"),
    );
    let ttl2 = Pkt::udp("203.0.113.200", "192.0.2.10").with(|p| p.ttl = 2);
    cases.push(
        case(
            "IPv4 TTL 2 is forwarded with TTL 1",
            "bb0",
            ttl2.build(),
            Redirect,
            Reason::Policy,
        )
        .out(ttl2.forwarded(port_mac("peer0"), NH_CUST, None))
        .pop("cust")
        .prefix("cust-a"),
    );
    let open = Pkt::udp("192.0.2.200", "203.0.113.200");
    cases.push(
        case(
            "IPv4: an unprotected prefix may arrive on any peering port",
            "peer1",
            open.build(),
            Redirect,
            Reason::Transit,
        )
        .out(open.forwarded(port_mac("tr0"), NH_ISP, Some(46)))
        .pop("isp")
        .prefix("cust-b"),
    );
    cases
}

fn passed_cases() -> Vec<Case> {
    use Action::Pass;
    let mut cases = Vec::new();
    let to_cust = Pkt::udp("203.0.113.200", "192.0.2.10");
    let to_cust6 = Pkt::udp("2001:db8:1234::1", "2001:db8:c::10");
    let from_cust = Pkt::udp("192.0.2.10", "203.0.113.200");

    let ttl = |p: &Pkt, t: u8| p.with(|p| p.ttl = t).build();
    cases.push(
        case(
            "IPv4 TTL 1 toward the customer",
            "bb0",
            ttl(&to_cust, 1),
            Pass,
            Reason::TtlExceeded,
        )
        .prefix("cust-a"),
    );
    cases.push(
        case(
            "IPv4 TTL 0",
            "bb0",
            ttl(&to_cust, 0),
            Pass,
            Reason::TtlExceeded,
        )
        .prefix("cust-a"),
    );
    cases.push(
        case(
            "IPv6 hop limit 1",
            "bb0",
            ttl(&to_cust6, 1),
            Pass,
            Reason::TtlExceeded,
        )
        .prefix("cust-a6"),
    );
    cases.push(
        case(
            "IPv4 TTL 1 from the customer",
            "peer0",
            ttl(&from_cust, 1),
            Pass,
            Reason::TtlExceeded,
        )
        .prefix("cust-a"),
    );
    let tagged = to_cust.with(|p| (p.ttl, p.vlans) = (1, vec![5]));
    cases.push(
        case(
            "IPv4 802.1Q TTL 1",
            "bb0",
            tagged.build(),
            Pass,
            Reason::TtlExceeded,
        )
        .prefix("cust-a"),
    );

    cases.push(case(
        "IPv4 unregistered destination",
        "bb0",
        Pkt::udp("203.0.113.200", "203.0.113.250").build(),
        Pass,
        Reason::Unregistered,
    ));
    cases.push(case(
        "IPv6 unregistered destination",
        "bb0",
        Pkt::udp("2001:db8:c::10", "2001:db8:1234::1").build(),
        Pass,
        Reason::Unregistered,
    ));
    cases.push(case(
        "IPv4 unregistered customer source",
        "peer0",
        Pkt::udp("203.0.113.250", "192.0.2.10").build(),
        Pass,
        Reason::Unregistered,
    ));
    cases.push(case(
        "IPv6 unregistered customer source",
        "peer0",
        Pkt::udp("2001:db8:1234::1", "2001:db8:c::10").build(),
        Pass,
        Reason::Unregistered,
    ));

    cases.push(case(
        "IPv4 to this host (registered range)",
        "tr0",
        Pkt::udp("203.0.113.200", "198.51.100.254").build(),
        Pass,
        Reason::Local,
    ));
    cases.push(case(
        "IPv6 to this host",
        "tr0",
        Pkt::udp("2001:db8:1234::1", "2001:db8:ff::fe").build(),
        Pass,
        Reason::Local,
    ));

    // Same last two bytes as the local 2001:db8:ff::fe: its EDGE_LOCAL_BITS
    // bit is set, the exact lookup says "not local", the packet is forwarded.
    let near_local = Pkt::udp("2001:db8:1234::1", "2001:db8:c::fe");
    cases.push(
        case(
            "IPv6 sharing a local address's filter bit is forwarded",
            "tr0",
            near_local.build(),
            Action::Redirect,
            Reason::Policy,
        )
        .out(near_local.forwarded(port_mac("peer0"), NH_CUST, None))
        .pop("cust")
        .prefix("cust-a6"),
    );

    cases.push(case(
        "IPv4 multicast (OSPF)",
        "peer0",
        Pkt::udp("192.0.2.10", "224.0.0.5").build(),
        Pass,
        Reason::Control,
    ));
    cases.push(case(
        "IPv4 limited broadcast",
        "peer0",
        Pkt::udp("192.0.2.10", "255.255.255.255").build(),
        Pass,
        Reason::Control,
    ));
    cases.push(case(
        "IPv6 multicast",
        "peer0",
        Pkt::udp("2001:db8:c::10", "ff02::1").build(),
        Pass,
        Reason::Control,
    ));
    cases.push(case(
        "IPv6 link-local source",
        "bb0",
        Pkt::udp("fe80::1", "2001:db8:c::10").build(),
        Pass,
        Reason::Control,
    ));
    let nd = |ty| {
        Pkt::udp("2001:db8:c::10", "2001:db8:c::20")
            .with(|p| (p.l4, p.ttl) = (L4::Icmp { ty }, 255))
            .build()
    };
    cases.push(case(
        "IPv6 neighbour solicitation between global addresses",
        "peer0",
        nd(135),
        Pass,
        Reason::Control,
    ));
    cases.push(case(
        "IPv6 neighbour advertisement",
        "peer0",
        nd(136),
        Pass,
        Reason::Control,
    ));
    cases.push(case(
        "IPv6 router advertisement",
        "peer0",
        nd(134),
        Pass,
        Reason::Control,
    ));

    cases.push(case(
        "IPv4 with options",
        "bb0",
        to_cust
            .with(|p| p.ipv4_options = vec![0x94, 4, 0, 0])
            .build(),
        Pass,
        Reason::Ipv4Options,
    ));
    cases.push(case(
        "IPv4 802.1Q with options",
        "bb0",
        to_cust
            .with(|p| (p.ipv4_options, p.vlans) = (vec![1, 1, 1, 0], vec![9]))
            .build(),
        Pass,
        Reason::Ipv4Options,
    ));
    cases.push(case(
        "IPv4 first fragment (MF)",
        "bb0",
        to_cust
            .with(|p| (p.more_fragments, p.dont_fragment) = (true, false))
            .build(),
        Pass,
        Reason::Fragment,
    ));
    cases.push(case(
        "IPv4 last fragment (offset)",
        "bb0",
        to_cust
            .with(|p| (p.frag_offset, p.dont_fragment) = (185, false))
            .build(),
        Pass,
        Reason::Fragment,
    ));
    cases.push(case(
        "IPv6 fragment header",
        "bb0",
        to_cust6.with(|p| p.v6_ext = Some(44)).build(),
        Pass,
        Reason::Fragment,
    ));
    for (ext, name) in [
        (0, "hop-by-hop"),
        (43, "routing"),
        (60, "destination options"),
    ] {
        cases.push(case(
            format!("IPv6 {name} header"),
            "bb0",
            to_cust6.with(|p| p.v6_ext = Some(ext)).build(),
            Pass,
            Reason::Ipv6Extension,
        ));
    }

    cases.push(case("ARP", "peer0", arp_request(None), Pass, Reason::NotIp));
    cases.push(case(
        "ARP in 802.1Q",
        "peer0",
        arp_request(Some(10)),
        Pass,
        Reason::NotIp,
    ));
    cases.push(case("LLDP", "peer0", lldp(), Pass, Reason::NotIp));
    cases.push(case(
        "three VLAN tags: the third is not parsed",
        "bb0",
        to_cust.with(|p| p.vlans = vec![1, 2, 3]).build(),
        Pass,
        Reason::NotIp,
    ));

    let v4 = to_cust.build();
    let v6 = to_cust6.build();
    let cut = |f: &[u8], n: usize| f[..n].to_vec();
    let mut ihl4 = v4.clone();
    ihl4[14] = 0x44;
    let mut v6_in_v4 = v4.clone();
    v6_in_v4[14] = 0x65;
    let mut v4_in_v6 = v6.clone();
    v4_in_v6[14] = 0x45;
    let vlan = to_cust.with(|p| p.vlans = vec![7]).build();
    let qinq = to_cust.with(|p| p.vlans = vec![7, 8]).build();
    let tcp6 = to_cust6
        .with(|p| p.l4 = L4::Tcp { sport: 1, dport: 2 })
        .build();
    let icmp6 = Pkt::udp("2001:db8:1234::1", "2001:db8:c::10")
        .with(|p| (p.l4, p.payload) = (L4::Icmp { ty: 128 }, vec![]))
        .build();
    for (name, frame) in [
        ("Ethernet header only, IPv4 EtherType", cut(&v4, 14)),
        ("Ethernet header only, IPv6 EtherType", cut(&v6, 14)),
        ("IPv4 header cut at 1 byte", cut(&v4, 15)),
        ("IPv4 header cut at 19 bytes", cut(&v4, 33)),
        ("IPv6 header cut at 1 byte", cut(&v6, 15)),
        ("IPv6 header cut at 39 bytes", cut(&v6, 53)),
        ("802.1Q tag cut short", cut(&vlan, 16)),
        ("QinQ inner tag cut short", cut(&qinq, 20)),
        ("IPv4 in 802.1Q cut at 10 bytes", cut(&vlan, 28)),
        ("IPv4 UDP ports cut short", cut(&v4, 36)),
        ("IPv6 TCP ports cut short", cut(&tcp6, 57)),
        ("ICMPv6 with no type byte", cut(&icmp6, 54)),
        ("IPv4 IHL 4 (< 20 bytes)", ihl4),
        ("IPv6 version nibble under the IPv4 EtherType", v6_in_v4),
        ("IPv4 version nibble under the IPv6 EtherType", v4_in_v6),
    ] {
        cases.push(case(name, "bb0", frame, Pass, Reason::Malformed));
    }

    cases.push(case(
        "ingress interface that is not a port",
        "lo",
        v4.clone(),
        Pass,
        Reason::UnknownPort,
    ));
    cases.push(
        case(
            "IPv6 to a PoP with only an IPv4 tunnel",
            "tr0",
            Pkt::udp("2001:db8:1234::1", "2001:db8:e::10").build(),
            Pass,
            Reason::NoNextHop,
        )
        .prefix("2001:db8:e::/48"),
    );
    cases.push(case(
        "policy with no PoP up",
        "tr0",
        Pkt::udp("198.51.100.200", "203.0.113.70").build(),
        Pass,
        Reason::NoNextHop,
    ));
    cases.push(case(
        "PoP egress not a transmit port",
        "tr0",
        Pkt::udp("198.51.100.200", "203.0.113.130").build(),
        Pass,
        Reason::NoTxPort,
    ));
    cases
}

type Moved = Vec<(String, u64, u64)>;

fn run_cases(h: &Harness, cases: &[Case]) {
    for c in cases {
        let before = h.stats();
        let (ret, out) = h.run(c.ingress, &c.input);
        let after = h.stats();
        let counted = moved(&before, &after);
        assert_eq!(
            Action::from_u32(ret),
            Some(c.action),
            "{}: action (counters moved: {counted:?})",
            c.name
        );
        let expected = c.output.as_ref().unwrap_or(&c.input);
        assert_eq!(&out, expected, "{}: output frame", c.name);
        if c.output.is_some() && out.len() >= 34 && out[12..14] == [0x08, 0x00] {
            assert!(ipv4_checksum_ok(&out[14..34]), "{}: IPv4 checksum", c.name);
        }

        let len = c.input.len() as u64;
        let mut expect: Moved = vec![
            (format!("action:{}", c.action.name()), 1, len),
            (format!("reason:{}", c.reason.name()), 1, len),
        ];
        if let Some(port) = h.port_id(c.ingress) {
            expect.push((format!("port:{port}"), 1, len));
        }
        if let Some(pop) = c.pop {
            expect.push((format!("pop:{}", h.pop_id(pop)), 1, len));
        }
        if let Some(reg) = c.prefix {
            expect.push((format!("prefix:{}", h.slot(reg)), 1, len));
        }
        expect.sort();
        assert_eq!(counted, expect, "{}: counters", c.name);
    }
}

#[test]
fn forwarding_fixtures() {
    let cases = forwarding_cases();
    assert!(cases.len() >= 40, "{} forwarding cases", cases.len());
    with_harness("fwd", CONFIG, |h| run_cases(h, &cases));
}

#[test]
fn pass_and_drop_fixtures() {
    let cases = passed_cases();
    assert!(cases.len() >= 40, "{} pass cases", cases.len());
    with_harness("pass", CONFIG, |h| run_cases(h, &cases));
}

#[test]
fn unregistered_traffic_gets_the_configured_default() {
    let config = CONFIG.replace("default_action = \"pass\"", "default_action = \"drop\"");
    let cases = vec![
        case(
            "IPv4 unregistered, default drop",
            "bb0",
            Pkt::udp("203.0.113.200", "203.0.113.250").build(),
            Action::Drop,
            Reason::Unregistered,
        ),
        case(
            "IPv6 unregistered, default drop",
            "bb0",
            Pkt::udp("2001:db8:c::1", "2001:db8:1234::1").build(),
            Action::Drop,
            Reason::Unregistered,
        ),
        // Control traffic still reaches the kernel.
        case(
            "ARP, default drop",
            "bb0",
            arp_request(None),
            Action::Pass,
            Reason::NotIp,
        ),
    ];
    with_harness("dflt", &config, |h| run_cases(h, &cases));
}

/// Martians (RFC 1812 5.3.7, RFC 4291) are dropped and counted even with
/// default routes registered, which cover every address; control traffic
/// from the unspecified address (DHCP, DAD) still reaches the kernel.
#[test]
fn martians_are_dropped_even_under_a_default_route() {
    let config = format!(
        "{CONFIG}\n[[prefixes]]\nprefix = \"0.0.0.0/0\"\npop = \"isp\"\n\n[[prefixes]]\nprefix = \"::/0\"\npop = \"isp\"\n"
    );
    let drop = |name: &str, ingress, src: &str, dst: &str| {
        case(
            format!("{name}: {src} → {dst}"),
            ingress,
            Pkt::udp(src, dst).build(),
            Action::Drop,
            Reason::Martian,
        )
    };
    let mut cases = vec![
        drop("loopback destination", "bb0", "203.0.113.200", "127.0.0.1"),
        drop("loopback source", "peer0", "127.0.0.1", "203.0.113.200"),
        drop(
            "this-network destination",
            "bb0",
            "203.0.113.200",
            "0.1.2.3",
        ),
        drop("unspecified source", "bb0", "0.0.0.0", "203.0.113.200"),
        drop("link-local source", "bb0", "169.254.1.1", "203.0.113.200"),
        drop("multicast source", "bb0", "224.0.0.5", "203.0.113.200"),
        drop("class E source", "peer0", "240.0.0.1", "203.0.113.200"),
        drop(
            "broadcast source",
            "bb0",
            "255.255.255.255",
            "203.0.113.200",
        ),
        drop(
            "IPv6 loopback destination",
            "bb0",
            "2001:db8:1234::1",
            "::1",
        ),
        drop("IPv6 unspecified source", "bb0", "::", "2001:db8:1234::1"),
        drop(
            "IPv6 multicast source",
            "bb0",
            "ff02::1",
            "2001:db8:1234::1",
        ),
        drop(
            "IPv4-mapped destination",
            "bb0",
            "2001:db8:1234::1",
            "::ffff:192.0.2.1",
        ),
        drop(
            "IPv4-mapped source",
            "peer0",
            "::ffff:192.0.2.1",
            "2001:db8:1234::1",
        ),
    ];
    cases.extend([
        case(
            "DHCP discover 0.0.0.0 → 255.255.255.255 is control",
            "bb0",
            Pkt::udp("0.0.0.0", "255.255.255.255").build(),
            Action::Pass,
            Reason::Control,
        ),
        case(
            "from :: to a solicited-node group (DAD) is control",
            "bb0",
            Pkt::udp("::", "ff02::1:ff00:1").build(),
            Action::Pass,
            Reason::Control,
        ),
    ]);
    // Neighbours of the special ranges are forwarded by the default route.
    let neighbours = [
        Pkt::udp("203.0.113.200", "128.0.0.1").build(),
        Pkt::udp("2001:db8:1234::1", "::2").build(),
    ];
    with_harness("mart", &config, |h| {
        run_cases(h, &cases);
        for frame in &neighbours {
            let before = h.stats();
            let (ret, _) = h.run("bb0", frame);
            let counted = moved(&before, &h.stats());
            assert_eq!(Action::from_u32(ret), Some(Action::Redirect), "{counted:?}");
            assert!(
                counted.iter().any(|(n, _, _)| n == "reason:policy"),
                "{counted:?}"
            );
        }
    });
}

#[test]
fn ipv4_checksum_stays_correct_across_many_headers() {
    // The kernel patches the checksum incrementally (RFC 1624) for the TTL
    // and the DS field; etherparse computes it from scratch. Sweep the
    // identification, TTL and ECN so the checksum takes thousands of values.
    with_harness("csum", CONFIG, |h| {
        let mut n = 0;
        for ttl in [2u8, 3, 64, 255] {
            for ident in (0..=u16::MAX).step_by(97) {
                let p = Pkt::udp("203.0.113.200", "192.0.2.200").with(|p| {
                    (p.ttl, p.ident, p.tos) =
                        (ttl, ident, (ident % 4) as u8 | ((ident % 64) as u8) << 2)
                });
                let (ret, out) = h.run("bb0", &p.build());
                assert_eq!(ret, Action::Redirect as u32);
                assert!(
                    ipv4_checksum_ok(&out[14..34]),
                    "ttl {ttl} ident {ident}: bad checksum"
                );
                assert_eq!(
                    out,
                    p.forwarded(port_mac("tr0"), NH_ISP, Some(46)),
                    "ttl {ttl} ident {ident}"
                );
                n += 1;
            }
        }
        assert_eq!(h.stats().reason(Reason::Transit).packets, n);
    });
}

/// Runs `flows` different flows through the weighted policy and returns how
/// many went to each next hop (by destination MAC).
fn spread(h: &Harness, flows: u32, v6: bool) -> (u32, u32) {
    let (mut ams, mut fra) = (0, 0);
    for i in 0..flows {
        let (src, dst) = if v6 {
            (
                format!("2001:db8:77::{:x}", i / 500 + 1),
                "2001:db8:f::10".to_string(),
            )
        } else {
            (
                format!("203.0.113.{}", 200 + i / 10_000),
                "198.51.100.130".to_string(),
            )
        };
        let p = Pkt::udp(&src, &dst).with(|p| {
            p.l4 = L4::Udp {
                sport: 1024 + (i % 50_000) as u16,
                dport: 443,
            }
        });
        let (ret, out) = h.run("tr0", &p.build());
        assert!(
            ret == Action::Redirect as u32 || ret == Action::Tx as u32,
            "flow {i}: action {ret}"
        );
        match out[0..6].try_into().unwrap() {
            NH_AMS => ams += 1,
            NH_FRA => fra += 1,
            other => panic!("flow {i} went to {other:02x?}"),
        }
    }
    (ams, fra)
}

#[test]
fn flows_spread_by_weight_and_never_split() {
    with_harness("flow", CONFIG, |h| {
        for v6 in [false, true] {
            let flows = 10_000;
            let (ams, fra) = spread(h, flows, v6);
            let share = f64::from(ams) / f64::from(flows);
            println!("v6 {v6}: {flows} flows, ams (weight 1) {ams}, fra (weight 3) {fra}");
            // Weights 1:3 → 25% / 75%, within 5% of each weight.
            assert!(
                (share - 0.25).abs() < 0.25 * 0.05,
                "v6 {v6}: ams got {ams}, fra {fra} of {flows}"
            );
            assert!(
                (f64::from(fra) / f64::from(flows) - 0.75).abs() < 0.75 * 0.05,
                "v6 {v6}: fra {fra}"
            );
        }
        // One flow, many packets: always the same next hop.
        for sport in [1000u16, 2000, 3000, 4000] {
            let p = Pkt::udp("203.0.113.201", "198.51.100.131")
                .with(|p| p.l4 = L4::Udp { sport, dport: 443 });
            let first = h.run("tr0", &p.build()).1[0..6].to_vec();
            for _ in 0..500 {
                assert_eq!(
                    h.run("tr0", &p.build()).1[0..6],
                    first[..],
                    "flow with source port {sport} split"
                );
            }
        }
    });
}

#[test]
fn object_has_every_map_and_program() {
    edge_tests::netns::require_root();
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
}

#[test]
fn lookup_from_userspace_matches_the_kernel() {
    with_harness("lpm", CONFIG, |h| {
        let slot = |a: &str| h.tables.lookup(a.parse().unwrap()).unwrap().map(|e| e.slot);
        assert_eq!(slot("192.0.2.1"), Some(h.slot("cust-a")));
        assert_eq!(slot("192.0.2.129"), Some(h.slot("cust-b")));
        assert_eq!(slot("203.0.113.250"), None);
        assert_eq!(slot("2001:db8:c::5"), Some(h.slot("cust-a6")));
        assert_eq!(slot("2001:db9::"), None);
    });
}

/// The prefix registry (`EDGE_PFX_V4`/`_V6`: records in an mmapable array
/// that edged writes with stores and reads back on a restart): what a
/// second owner of the pinned maps reads is exactly what was registered
/// (entries, and the tables' lookups through the model it rebuilds), the
/// slots of removed prefixes are used again, a full registry refuses the
/// next prefix with `MapFull` and keeps what it held, and a record whose
/// `used` byte was never written (edged stopped between its two stores) is
/// no prefix.
#[test]
fn the_registry_is_read_back_and_reuses_its_slots() {
    use aya::{
        EbpfLoader,
        maps::{Array, MapData},
    };
    use edge_common::{PrefixEntry, Registered4};
    use edge_tests::harness::maps::Tables;
    use edge_userspace::dataplane::MapsError;
    use ipnet::IpNet;

    edge_tests::netns::require_root();
    const CAP: u32 = 64;
    let dir = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/edge-test-registry-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // The pins go however the test ends.
    struct Pins(std::path::PathBuf);
    impl Drop for Pins {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _pins = Pins(dir.clone());
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(map_names::PREFIX_V4, CAP)
        .map_max_entries(map_names::PREFIX_V6, CAP)
        .load(loader::object())
        .unwrap();
    for name in map_names::ALL {
        ebpf.map(name).unwrap().pin(dir.join(name)).unwrap();
    }
    // A record edged left without its `used` byte, at slot 0.
    {
        let mut raw: Array<MapData, Registered4> = Array::try_from(aya::maps::Map::Array(
            MapData::from_pin(dir.join(map_names::PREFIX_V4)).unwrap(),
        ))
        .unwrap();
        let torn = Registered4 {
            entry: PrefixEntry {
                slot: 9,
                ..PrefixEntry::default()
            },
            addr: [203, 0, 113, 0],
            len: 24,
            used: 0,
            _pad: [0; 2],
        };
        raw.set(0, torn, 0).unwrap();
    }
    let entry = |k: u32| PrefixEntry {
        slot: k + 1,
        policy: k % 7,
        ..PrefixEntry::default()
    };
    let v4 = |a: u8, k: u32| -> IpNet { format!("198.{a}.{k}.0/24").parse().unwrap() };
    let v6 = |k: u32| -> IpNet { format!("2001:db8:{k:x}::/48").parse().unwrap() };
    let mut want: Vec<(IpNet, PrefixEntry)> = (0..CAP).map(|k| (v4(18, k), entry(k))).collect();
    want.extend((0..5).map(|k| (v6(k), entry(100 + k))));

    let mut t = Tables::take(&mut ebpf).unwrap();
    let (n, r) = t.set_prefixes(&want);
    assert_eq!((n, r.is_ok()), (want.len(), true), "{r:?}");
    // Full: the next IPv4 prefix is refused, nothing is lost.
    let extra = (v4(19, 200), entry(200));
    match t.set_prefix(extra.0, extra.1) {
        Err(MapsError::MapFull { map, limit }) => {
            assert_eq!((map, limit), (map_names::PREFIX_V4, CAP));
        }
        other => panic!("a full registry took a prefix: {other:?}"),
    }
    let sorted = |mut v: Vec<(IpNet, PrefixEntry)>| {
        v.sort_by_key(|(n, _)| *n);
        v
    };
    assert_eq!(sorted(t.prefixes().unwrap()), sorted(want.clone()));
    assert_eq!(t.lookup("198.19.200.1".parse().unwrap()).unwrap(), None);
    // Half go; as many others take their slots (the registry holds CAP).
    let gone: Vec<IpNet> = (0..CAP).step_by(2).map(|k| v4(18, k)).collect();
    assert_eq!(t.del_prefixes(&gone).0, gone.len());
    want.retain(|(n, _)| !gone.contains(n));
    let others: Vec<(IpNet, PrefixEntry)> =
        (0..CAP / 2).map(|k| (v4(19, k), entry(300 + k))).collect();
    let (n, r) = t.set_prefixes(&others);
    assert_eq!(
        (n, r.is_ok()),
        (others.len(), true),
        "slots were not reused: {r:?}"
    );
    want.extend(others);
    // A changed entry is written in place.
    t.set_prefix(v4(18, 1), entry(999)).unwrap();
    want.iter_mut().find(|(n, _)| *n == v4(18, 1)).unwrap().1 = entry(999);
    drop(t);
    drop(ebpf);

    // A second owner (edged after a restart) reads the pinned maps.
    let mut t = Tables::open(&dir).unwrap();
    assert_eq!(sorted(t.prefixes().unwrap()), sorted(want.clone()));
    for (net, e) in &want {
        assert_eq!(t.lookup(net.addr()).unwrap(), Some(*e), "{net}");
    }
    assert_eq!(t.lookup("203.0.113.1".parse().unwrap()).unwrap(), None);
    // Its model is rebuilt from the records: removals and additions work.
    assert!(t.del_prefix(v4(19, 3)).unwrap());
    assert!(!t.del_prefix(v4(19, 3)).unwrap(), "removed twice");
    assert_eq!(t.lookup("198.19.3.1".parse().unwrap()).unwrap(), None);
    t.set_prefix(extra.0, extra.1).unwrap();
    assert_eq!(
        t.lookup("198.19.200.1".parse().unwrap()).unwrap(),
        Some(extra.1)
    );
}

#[test]
fn protection_events_are_rate_limited_in_the_kernel() {
    use aya::maps::{Map, MapData, RingBuf};
    use edge_common::{EVENT_BURST, EVENT_RATE, ProtectionEvent, map_names};
    with_harness("events", CONFIG, |h| {
        // One CPU: the budget is per CPU.
        let mut set = nix::sched::CpuSet::new();
        set.set(0).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
        let id = match h.ebpf.map(map_names::EVENTS).expect("ring buffer") {
            Map::RingBuf(d) => d.info().unwrap().id(),
            _ => panic!("EDGE_EVENTS is not a ring buffer"),
        };
        let mut ring = RingBuf::try_from(Map::RingBuf(MapData::from_id(id).unwrap())).unwrap();
        let spoof = Pkt::udp("192.0.2.10", "203.0.113.200").build();
        const N: u64 = 5000;
        let before = h.stats();
        let t = std::time::Instant::now();
        for _ in 0..N {
            let (action, out) = h.run("peer1", &spoof);
            assert_eq!(action, Action::Drop as u32);
            assert_eq!(out, spoof);
        }
        let secs = t.elapsed().as_secs_f64();
        let after = h.stats();
        let moved =
            after.reason(Reason::Protection).packets - before.reason(Reason::Protection).packets;
        assert_eq!(moved, N, "every spoofed frame dropped and counted");
        let mut events = Vec::new();
        while let Some(item) = ring.next() {
            let ev: ProtectionEvent = unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
            events.push(ev);
        }
        let sent = events.len() as u64;
        let allowed = EVENT_BURST + (EVENT_RATE as f64 * secs).ceil() as u64;
        println!(
            "{N} violations in {secs:.3} s: {sent} events sent (burst {EVENT_BURST} + {EVENT_RATE}/s)"
        );
        assert!(
            sent >= EVENT_BURST.min(N) && sent <= allowed,
            "{sent} events, allowed {allowed}"
        );
        let count = |name: &str| after.events.iter().find(|(n, _)| *n == name).unwrap().1;
        assert_eq!(count("sent"), sent);
        assert_eq!(count("rate_limited"), N - sent);
        assert_eq!(count("ring_full"), 0);
        let ev = events[0];
        assert_eq!(
            (ev.family, &ev.src[..4], &ev.dst[..4]),
            (4, &[192, 0, 2, 10][..], &[203, 0, 113, 200][..])
        );
        assert_eq!(ev.slot, h.slot("cust-a"));
        assert_eq!(Some(ev.port), h.port_id("peer1"));
    });
}

// ---------------------------------------------------------------------------
// Tunnel MTU (issue 14, item 3): a packet longer than its PoP's link MTU
// with the tunnel header is never sent (the device would drop it, silently
// for edge's counters). The ICMP error that path MTU discovery needs goes
// back to the sender, built in XDP and compared byte for byte with one
// etherparse builds; or the kernel gets the packet.
// ---------------------------------------------------------------------------

/// The ICMP errors' source: PoP ams's tunnel source of the family.
fn ams_source(fam: &str) -> IpAddr {
    tunnel(fam).0
}

/// An IPv4 and an IPv6 UDP packet from transit toward ams (tunnels of both
/// families on bb0), with their registrations.
fn toward_ams() -> [(&'static str, Pkt, &'static str); 2] {
    [
        (
            "IPv4",
            Pkt::udp("203.0.113.200", "198.51.100.10"),
            "198.51.100.0/25",
        ),
        (
            "IPv6",
            Pkt::udp("2001:db8:1234::1", "2001:db8:a::10"),
            "2001:db8:a::/48",
        ),
    ]
}

/// The boundary toward ams when its link MTU is `link`: the longest packet
/// that fits is encapsulated into exactly `link` bytes; one byte more gets
/// the ICMP error reporting `link` minus the tunnel header, for every VLAN
/// depth, arriving on another port (transit) and on the PoP's own (bb0).
fn boundary_cases(link: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    for vlans in VLANS {
        let t = tags(vlans);
        for (fam, p, reg) in toward_ams() {
            let outer = if fam == "IPv4" { 20 } else { 40 };
            let fits = link - outer;
            let p = p.with(|p| p.vlans = vlans.to_vec());
            for ingress in ["tr0", "bb0"] {
                let fwd = if ingress == "bb0" {
                    Action::Tx
                } else {
                    Action::Redirect
                };
                let ok = p.sized(fits);
                cases.push(
                    case(
                        format!("{fam} {t} from {ingress}: {fits} bytes fit a {link}-byte link in the tunnel"),
                        ingress,
                        ok.build(),
                        fwd,
                        Reason::Policy,
                    )
                    .out(ok.encapsulated(port_mac("bb0"), NH_AMS, Some(34), tunnel(fam), ENCAP_TTL))
                    .pop("ams")
                    .prefix(reg),
                );
                let big = p.sized(fits + 1);
                cases.push(
                    case(
                        format!(
                            "{fam} {t} from {ingress}: {} bytes get an ICMP error saying {fits}",
                            fits + 1
                        ),
                        ingress,
                        big.build(),
                        Action::Tx,
                        Reason::TooBig,
                    )
                    .out(big.too_big_reply(ams_source(fam), fits as u32))
                    .prefix(reg),
                );
            }
        }
    }
    cases
}

/// Everything besides the boundary, for a 1500-byte link: what gets an
/// ICMP error and what goes to the kernel.
fn too_big_cases() -> Vec<Case> {
    use Action::{Pass, Redirect, Tx};
    let mut cases = Vec::new();
    let [(_, v4, reg4), (_, v6, reg6)] = toward_ams();
    let src4 = ams_source("IPv4");
    let src6 = ams_source("IPv6");

    // What is answered: any transport, ICMP queries, the largest frames.
    let tcp = v4.with(|p| {
        p.l4 = L4::Tcp {
            sport: 443,
            dport: 51000,
        }
    });
    let tcp6 = v6.with(|p| {
        p.l4 = L4::Tcp {
            sport: 443,
            dport: 51000,
        }
    });
    let echo = v4.with(|p| p.l4 = L4::Icmp { ty: 8 });
    let echo6 = v6.with(|p| p.l4 = L4::Icmp { ty: 128 });
    let other = v4.with(|p| p.l4 = L4::Other(47));
    for (what, p, n, mtu, src, reg) in [
        ("IPv4 TCP", &tcp, 1500, 1480, src4, reg4),
        ("IPv4 ICMP echo", &echo, 1481, 1480, src4, reg4),
        ("IPv4 GRE", &other, 1481, 1480, src4, reg4),
        ("IPv4 of 3000 bytes", &v4, 3000, 1480, src4, reg4),
        ("IPv6 TCP", &tcp6, 1500, 1460, src6, reg6),
        ("IPv6 ICMPv6 echo", &echo6, 1461, 1460, src6, reg6),
        ("IPv6 of 3000 bytes", &v6, 3000, 1460, src6, reg6),
    ] {
        let p = p.sized(n);
        cases.push(
            case(
                format!("{what}, {n} bytes: ICMP error"),
                "tr0",
                p.build(),
                Tx,
                Reason::TooBig,
            )
            .out(p.too_big_reply(src, mtu))
            .prefix(reg),
        );
    }

    // IPv4 without DF: the kernel may fragment it.
    let no_df = v4.with(|p| p.dont_fragment = false).sized(1481);
    cases.push(
        case(
            "IPv4 without DF, too big: to the kernel",
            "tr0",
            no_df.build(),
            Pass,
            Reason::TooBigNoDf,
        )
        .prefix(reg4),
    );
    let no_df_fits = v4.with(|p| p.dont_fragment = false).sized(1480);
    cases.push(
        case(
            "IPv4 without DF that fits: encapsulated",
            "tr0",
            no_df_fits.build(),
            Redirect,
            Reason::Policy,
        )
        .out(no_df_fits.encapsulated(port_mac("bb0"), NH_AMS, Some(34), tunnel("IPv4"), ENCAP_TTL))
        .pop("ams")
        .prefix(reg4),
    );

    // No ICMP error about an ICMP error (RFC 1812 4.3.2.7, RFC 4443 2.4 (e)).
    for ty in [3u8, 4, 5, 11, 12] {
        let mut p = v4.with(|p| p.l4 = L4::Other(1)).sized(1481);
        p.payload[..4].copy_from_slice(&[ty, 1, 0, 0]);
        cases.push(
            case(
                format!("IPv4 ICMP error type {ty}, too big: to the kernel"),
                "tr0",
                p.build(),
                Pass,
                Reason::TooBigNoIcmp,
            )
            .prefix(reg4),
        );
    }
    let mut query = v4.with(|p| p.l4 = L4::Other(1)).sized(1481);
    query.payload[..4].copy_from_slice(&[13, 0, 0, 0]);
    cases.push(
        case(
            "IPv4 ICMP timestamp (a query), too big: ICMP error",
            "tr0",
            query.build(),
            Tx,
            Reason::TooBig,
        )
        .out(query.too_big_reply(src4, 1480))
        .prefix(reg4),
    );
    for ty in [1u8, 2, 3, 4, 127] {
        let p = v6.with(|p| p.l4 = L4::Icmp { ty }).sized(1461);
        cases.push(
            case(
                format!("IPv6 ICMPv6 error type {ty}, too big: to the kernel"),
                "tr0",
                p.build(),
                Pass,
                Reason::TooBigNoIcmp,
            )
            .prefix(reg6),
        );
    }

    // Senders that are not one host are martians: dropped before the MTU
    // step, so no ICMP error ever goes to them (icmp.rs checks again).
    for (src, dst, n) in [
        ("0.0.0.0", "198.51.100.10", 1481),
        ("127.0.0.1", "198.51.100.10", 1481),
        ("224.0.0.1", "198.51.100.10", 1481),
        ("255.255.255.255", "198.51.100.10", 1481),
        ("::", "2001:db8:a::10", 1461),
        ("ff0e::1", "2001:db8:a::10", 1461),
    ] {
        let p = Pkt::udp(src, dst).sized(n);
        cases.push(case(
            format!("from {src}, too big: a martian, no ICMP error"),
            "tr0",
            p.build(),
            Action::Drop,
            Reason::Martian,
        ));
    }
    // Frames to a link-layer broadcast or multicast address.
    for (fam, p, reg, mac) in [
        ("IPv4", &v4, reg4, [0xff; 6]),
        ("IPv4", &v4, reg4, [0x01, 0, 0x5e, 0, 0, 1]),
        ("IPv6", &v6, reg6, [0x33, 0x33, 0, 0, 0, 1]),
    ] {
        let p = p
            .with(|p| p.dst_mac = mac)
            .sized(if fam == "IPv4" { 1481 } else { 1461 });
        cases.push(
            case(
                format!("{fam} sent to {mac:02x?}, too big: no ICMP error"),
                "tr0",
                p.build(),
                Pass,
                Reason::TooBigNoIcmp,
            )
            .prefix(reg),
        );
    }

    // PoPs without a tunnel (no address of this host to answer from): the
    // egress MTU is checked all the same, oversized packets go to the kernel.
    let fra = Pkt::udp("198.51.100.200", "203.0.113.10");
    let cust6 = Pkt::udp("2001:db8:1234::1", "2001:db8:c::10");
    for (fam, p, ingress, pop, nh, port, reg) in [
        ("IPv4", &fra, "tr0", "fra", NH_FRA, "bb0", "203.0.113.0/26"),
        ("IPv6", &cust6, "bb0", "cust", NH_CUST, "peer0", "cust-a6"),
    ] {
        let fits = p.sized(1500);
        cases.push(
            case(
                format!("{fam} to direct PoP {pop}: 1500 bytes fit"),
                ingress,
                fits.build(),
                Redirect,
                Reason::Policy,
            )
            .out(fits.forwarded(port_mac(port), nh, None))
            .pop(pop)
            .prefix(reg),
        );
        let big = p.sized(1501);
        cases.push(
            case(
                format!("{fam} to direct PoP {pop}: 1501 bytes to the kernel"),
                ingress,
                big.build(),
                Pass,
                Reason::TooBigNoIcmp,
            )
            .prefix(reg),
        );
    }

    // Earlier steps come first: TTL, protection.
    let ttl1 = v4.with(|p| p.ttl = 1).sized(1481);
    cases.push(
        case(
            "IPv4 TTL 1, too big: time exceeded first",
            "tr0",
            ttl1.build(),
            Pass,
            Reason::TtlExceeded,
        )
        .prefix(reg4),
    );
    let spoof = Pkt::udp("192.0.2.10", "203.0.113.200").sized(1600);
    cases.push(
        case(
            "spoofed, too big: protection first",
            "peer1",
            spoof.build(),
            Action::Drop,
            Reason::Protection,
        )
        .prefix("cust-a"),
    );
    cases
}

#[test]
fn oversized_packets_get_an_icmp_error_for_the_pops_link_mtu() {
    // The veths' MTU, 1500, read from the interfaces when the config compiles.
    let mut cases = boundary_cases(1500);
    cases.extend(too_big_cases());
    assert!(cases.len() >= 55, "{} cases", cases.len());
    with_harness("mtu", CONFIG, |h| {
        assert_eq!(h.tables.pop(h.pop_id("ams")).unwrap().mtu, 1500);
        run_cases(h, &cases);
    });
}

#[test]
fn every_length_around_the_mtu_is_forwarded_or_answered_exactly() {
    // A sweep: IPv4 and IPv6, UDP and TCP, every VLAN depth, lengths
    // around the boundary and the largest frames.
    with_harness("mtusweep", CONFIG, |h| {
        let mut n = 0;
        for vlans in VLANS {
            for (fam, p, _) in toward_ams() {
                let outer = if fam == "IPv4" { 20 } else { 40 };
                let fits = 1500 - outer;
                let tcp = p.with(|p| p.l4 = L4::Tcp { sport: 1, dport: 2 });
                for p in [p, tcp] {
                    let p = p.with(|p| p.vlans = vlans.to_vec());
                    for len in (fits - 40..fits + 40).chain([2000, 3000, 3400]) {
                        let p = p.sized(len);
                        let (action, out) = h.run("tr0", &p.build());
                        if len <= fits {
                            assert_eq!(action, Action::Redirect as u32, "{fam} {len}");
                            assert_eq!(
                                out,
                                p.encapsulated(
                                    port_mac("bb0"),
                                    NH_AMS,
                                    Some(34),
                                    tunnel(fam),
                                    ENCAP_TTL
                                ),
                                "{fam} {vlans:?} {len}"
                            );
                        } else {
                            assert_eq!(action, Action::Tx as u32, "{fam} {len}");
                            assert_eq!(
                                out,
                                p.too_big_reply(ams_source(fam), fits as u32),
                                "{fam} {vlans:?} {len}"
                            );
                            // Under the ICMP rate limit: a token (1 ms at
                            // 1000/s) back before the next one.
                            std::thread::sleep(std::time::Duration::from_micros(1100));
                        }
                        n += 1;
                    }
                }
            }
        }
        println!("{n} packets around the MTU");
    });
}

#[test]
fn the_mtu_key_overrides_the_interface() {
    let config = CONFIG.replace(
        "encap_ipv6 = { source = \"2001:db8:ff::1\", destination = \"2001:db8:ff::2\" }",
        "encap_ipv6 = { source = \"2001:db8:ff::1\", destination = \"2001:db8:ff::2\" }\nmtu = 1400",
    );
    assert_ne!(config, CONFIG);
    let cases = boundary_cases(1400);
    with_harness("mtucfg", &config, |h| {
        assert_eq!(h.tables.pop(h.pop_id("ams")).unwrap().mtu, 1400);
        assert_eq!(h.tables.pop(h.pop_id("fra")).unwrap().mtu, 1500);
        run_cases(h, &cases);
    });
}

#[test]
fn the_interface_mtu_is_read_when_the_config_compiles() {
    // bb0 (where ams is) with a larger MTU: the boundary moves with it.
    let (lab, ns) = port_lab("mtuif");
    lab.ip(&ns, &["link", "set", "bb0", "mtu", "2000"]);
    let cases = boundary_cases(2000);
    in_netns(&ns, || {
        let h = Harness::new(CONFIG);
        assert_eq!(h.tables.pop(h.pop_id("ams")).unwrap().mtu, 2000);
        run_cases(&h, &cases);
    });
    // A link below 568 bytes: IPv4 errors quote the header and 8 bytes
    // (RFC 792); IPv6 cannot run there (below 1280): no ICMP error.
    let (lab, ns) = port_lab("mtusmall");
    lab.ip(&ns, &["link", "set", "bb0", "mtu", "400"]);
    let [(_, v4, reg4), (_, v6, reg6)] = toward_ams();
    let fits = v4.sized(380);
    let big = v4.sized(381);
    let big6 = v6.sized(1000);
    let cases = vec![
        case(
            "IPv4, 380 bytes fit a 400-byte link",
            "tr0",
            fits.build(),
            Action::Redirect,
            Reason::Policy,
        )
        .out(fits.encapsulated(port_mac("bb0"), NH_AMS, Some(34), tunnel("IPv4"), ENCAP_TTL))
        .pop("ams")
        .prefix(reg4),
        case(
            "IPv4, 381 bytes: ICMP error quoting 28 bytes",
            "tr0",
            big.build(),
            Action::Tx,
            Reason::TooBig,
        )
        .out(big.too_big_reply(ams_source("IPv4"), 380))
        .prefix(reg4),
        case(
            "IPv6 on a link below 1280: to the kernel",
            "tr0",
            big6.build(),
            Action::Pass,
            Reason::TooBigNoIcmp,
        )
        .prefix(reg6),
    ];
    assert_eq!(big.too_big_reply(ams_source("IPv4"), 380).len(), 14 + 56);
    in_netns(&ns, || {
        let h = Harness::new(CONFIG);
        assert_eq!(h.tables.pop(h.pop_id("ams")).unwrap().mtu, 400);
        run_cases(&h, &cases);
    });
}

#[test]
fn icmp_errors_are_rate_limited_in_the_kernel() {
    use edge_common::{ICMP_BURST, ICMP_RATE};
    with_harness("mturate", CONFIG, |h| {
        // One CPU: the budget is per CPU.
        let mut set = nix::sched::CpuSet::new();
        set.set(0).unwrap();
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
        let [(_, v4, _), (_, v6, _)] = toward_ams();
        let big = [v4.sized(1481), v6.sized(1461)];
        let frames = big.each_ref().map(Pkt::build);
        let replies = [
            big[0].too_big_reply(ams_source("IPv4"), 1480),
            big[1].too_big_reply(ams_source("IPv6"), 1460),
        ];
        const N: u64 = 4000;
        let before = h.stats();
        let t = std::time::Instant::now();
        let (mut sent, mut limited) = (0u64, 0u64);
        for i in 0..N {
            let k = (i % 2) as usize;
            let (action, out) = h.run("tr0", &frames[k]);
            match Action::from_u32(action) {
                Some(Action::Tx) => {
                    assert_eq!(out, replies[k], "frame {i}");
                    sent += 1;
                }
                Some(Action::Drop) => {
                    assert_eq!(out, frames[k], "a dropped frame is untouched");
                    limited += 1;
                }
                other => panic!("frame {i}: {other:?}"),
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let after = h.stats();
        let moved = |r: Reason| after.reason(r).packets - before.reason(r).packets;
        let allowed = ICMP_BURST + (ICMP_RATE as f64 * secs).ceil() as u64;
        println!(
            "{N} oversized packets in {secs:.3} s: {sent} ICMP errors (burst {ICMP_BURST} + {ICMP_RATE}/s), {limited} dropped"
        );
        assert!(
            sent >= ICMP_BURST.min(N) && sent <= allowed,
            "{sent} ICMP errors, allowed {allowed}"
        );
        // Implied by the bound whenever the loop outran the rate (it runs
        // in milliseconds); said for the reader.
        assert!(allowed >= N || limited > 0);
        assert_eq!(moved(Reason::TooBig), sent);
        assert_eq!(moved(Reason::TooBigLimited), limited);
        assert_eq!(sent + limited, N);
    });
}
