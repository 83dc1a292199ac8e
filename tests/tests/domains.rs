//! Logical ports, routing domains, egress tags and scope (tier 3): crafted
//! VLAN-tagged frames through edged's XDP program between namespaces, read
//! back raw at the far ends (tests/src/vlan_lab.rs). The contract is
//! docs/config.md: "[[ports]]", "Logical ports and domains", "[[domains]]",
//! "[[pops]]" (`port`, `vlan`), "[[prefixes]]" (`domain`),
//! "[[registrations]]" (`continent`, `scope`) and "Scope".
//!
//! Two assertions fail against edged as it is (findings, kept on purpose):
//! a port renamed by a reload takes the old port's id and keeps its
//! counter ("counters start anew"), and a private domain's fallback event
//! says its traffic "falls back to the kernel (pass)" while it is dropped.
//! Both are checked last in their tests, after everything else.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use edge_tests::{
    frames::{L4, Pkt},
    netns::Lab,
    topology::{Edged, attach_pass, workspace_bin},
    vlan_lab::{RawPort, Rx, mac, quiet_ns, tags},
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// Two customers on one peering interface.
//
//  custs:eth0 ── edge:cust  (peering)   red:  [100] public "cust.100", [101] private "red-pvt"
//                                       blue: [300, 21] public "cust.300.21", [300, 20] private "blue-pvt"
//  bbone:eth0 ── edge:bb    (backbone)  untagged public "bb", [2100] public "bb.2100",
//                                       [2001] "red-bb", [2002] "blue-bb"
// ---------------------------------------------------------------------------

const CUSTS_MAC: &str = "02:00:00:00:e1:01";
const EDGE_CUST_MAC: &str = "02:00:00:00:e1:fe";
const BBONE_MAC: &str = "02:00:00:00:e2:01";
const EDGE_BB_MAC: &str = "02:00:00:00:e2:fe";
const CORE_MAC: &str = "02:00:00:00:0a:01";
const RED_GW_MAC: &str = "02:00:00:00:c1:01";
const RED_ONPREM_MAC: &str = "02:00:00:00:c1:09";
const BLUE_GW_MAC: &str = "02:00:00:00:b1:01";
const HANDOFF_MAC: &str = "02:00:00:00:d1:01";
const DOUBLE_MAC: &str = "02:00:00:00:d2:01";

const TWO_CUSTOMERS: &str = r#"
[daemon]
metrics_address = "127.0.0.1:9477"
reload_settle_ms = 0

[forwarding]
backbone_exit = "core"

[[domains]]
name = "red"

[[domains]]
name = "blue"

[[ports]]
interface = "cust"
vlan = [100]                # red's Microsoft peering: cust.100, public
role = "peering"

[[ports]]
interface = "cust"
name = "red-pvt"
vlan = [101]
role = "peering"
domain = "red"

[[ports]]
interface = "cust"
vlan = [300, 21]            # blue's Microsoft peering (QinQ): cust.300.21
role = "peering"

[[ports]]
interface = "cust"
name = "blue-pvt"
vlan = [300, 20]
role = "peering"
domain = "blue"

[[ports]]
interface = "bb"            # the backbone, untagged: public
role = "backbone"

[[ports]]
interface = "bb"
vlan = [2100]               # a public backbone VLAN: bb.2100
role = "backbone"

[[ports]]
interface = "bb"
name = "red-bb"
vlan = [2001]
role = "backbone"
domain = "red"

[[ports]]
interface = "bb"
name = "blue-bb"
vlan = [2002]
role = "backbone"
domain = "blue"

[[pops]]
name = "core"
interface = "bb"
vlan = []                   # a PoP by interface keeps received tags: strip them
mac = "02:00:00:00:0a:01"

[[pops]]
name = "red-gw"
port = "red-bb"
mac = "02:00:00:00:c1:01"

[[pops]]
name = "blue-gw"
port = "blue-bb"
mac = "02:00:00:00:b1:01"

[[pops]]
name = "red-onprem"
port = "red-pvt"
mac = "02:00:00:00:c1:09"

[[pops]]
name = "handoff"            # a partner's VLAN on the customers' interface
interface = "cust"
vlan_push = 3000
mac = "02:00:00:00:d1:01"

[[pops]]
name = "double"
interface = "cust"
vlan = [400, 41]
mac = "02:00:00:00:d2:01"

[[prefixes]]
prefix = "192.0.2.0/24"
domain = "red"
pop = "red-gw"

[[prefixes]]
prefix = "2001:db8:100::/48"
domain = "red"
pop = "red-gw"

[[prefixes]]
prefix = "2001:db8:100::/48"
domain = "blue"
pop = "blue-gw"

[[prefixes]]
prefix = "203.0.113.0/25"
registration = "partner"
pop = "handoff"

[[prefixes]]
prefix = "203.0.113.128/25"
registration = "partner"
pop = "double"

[[prefixes]]
prefix = "192.0.2.0/24"
domain = "blue"
pop = "blue-gw"

[[prefixes]]
prefix = "198.18.0.0/24"    # red's on-premises network
domain = "red"
pop = "red-onprem"

[[prefixes]]
prefix = "198.51.100.0/25"
registration = "red"
pop = "core"
protect = ["cust.100"]

[[prefixes]]
prefix = "198.51.100.128/25"
registration = "blue"
pop = "core"
protect = ["cust.300.21"]
"#;

/// Frames per stream.
const N: usize = 40;

struct TwoCustomers {
    edge: String,
    custs: String,
    bbone: String,
    _pass: Vec<aya::Ebpf>,
    /// Dropped last: deletes the namespaces.
    _lab: Lab,
}

impl TwoCustomers {
    fn build() -> Self {
        let mut lab = Lab::new("dom");
        let custs = lab.add_ns("custs");
        let edge = lab.add_ns("edge");
        let bbone = lab.add_ns("bbone");
        for ns in [&custs, &edge, &bbone] {
            quiet_ns(&lab, ns);
        }
        lab.veth((&custs, "eth0", CUSTS_MAC), (&edge, "cust", EDGE_CUST_MAC));
        lab.veth((&bbone, "eth0", BBONE_MAC), (&edge, "bb", EDGE_BB_MAC));
        lab.sysctl(&edge, "net.ipv4.ip_forward", "0");
        let pass = [&custs, &bbone].map(|ns| attach_pass(ns, "eth0")).into();
        Self {
            edge,
            custs,
            bbone,
            _pass: pass,
            _lab: lab,
        }
    }
}

/// One stream of crafted frames: where it enters, with what, and where
/// (with which tags and MAC) it must come out, if anywhere.
struct Flow {
    name: &'static str,
    /// Enters from the customers' side (else the backbone's).
    from_customers: bool,
    vlans: Vec<u16>,
    src: &'static str,
    dst: &'static str,
    /// (arrives at the customers' side, tags, destination MAC), or None:
    /// must not arrive anywhere.
    out: Option<(bool, Vec<u16>, &'static str)>,
}

impl Flow {
    fn pkt(&self, seq: usize) -> Pkt {
        let (src_mac, dst_mac) = if self.from_customers {
            (CUSTS_MAC, EDGE_CUST_MAC)
        } else {
            (BBONE_MAC, EDGE_BB_MAC)
        };
        Pkt::udp(self.src, self.dst).with(|p| {
            p.src_mac = mac(src_mac);
            p.dst_mac = mac(dst_mac);
            p.vlans = self.vlans.clone();
            p.ident = seq as u16;
            p.l4 = L4::Udp {
                sport: 40000 + seq as u16,
                dport: 5000,
            };
            p.payload = format!("{} #{seq:04} edge domains test", self.name).into_bytes();
        })
    }

    /// The frame as it must arrive.
    fn expected(&self, seq: usize) -> Option<Vec<u8>> {
        let (to_customers, vlans, pop_mac) = self.out.as_ref()?;
        let src_mac = if *to_customers {
            EDGE_CUST_MAC
        } else {
            EDGE_BB_MAC
        };
        Some(self.pkt(seq).with(|p| p.vlans = vlans.clone()).forwarded(
            mac(src_mac),
            mac(pop_mac),
            None,
        ))
    }
}

/// The flow (one of `names`) and sequence number a received frame carries.
fn marker(frame: &[u8], names: &[&'static str]) -> Option<(&'static str, usize)> {
    names.iter().find_map(|&name| {
        let tag = format!("{name} #");
        let at = frame.windows(tag.len()).position(|w| w == tag.as_bytes())?;
        let digits = frame.get(at + tag.len()..at + tag.len() + 4)?;
        Some((name, std::str::from_utf8(digits).ok()?.parse().ok()?))
    })
}

fn counter(stats: &Value, group: &str, name: &str) -> u64 {
    stats[group][name]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("{group}/{name} missing in {stats}"))
}

/// `"port"` / `"pop"` rows of `edgectl stats` as name → packets.
fn rows(stats: &Value, group: &str, key: &str) -> BTreeMap<String, u64> {
    stats[group]
        .as_array()
        .unwrap_or_else(|| panic!("{group} missing in {stats}"))
        .iter()
        .map(|r| {
            (
                r[key].as_str().unwrap().to_string(),
                r["packets"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .collect()
}

fn write_config(ns: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{ns}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Removes the config file on drop, also when the test panics.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends `N` frames of every flow, then checks every frame that arrived
/// at either side (tags, MACs, TTL, checksums, payload: byte for byte)
/// and that each flow that must arrive did, every frame exactly once.
fn exchange(at_custs: &RawPort, at_bbone: &RawPort, flows: &[Flow]) {
    let names: Vec<&'static str> = flows.iter().map(|f| f.name).collect();
    for seq in 0..N {
        for f in flows {
            let port = if f.from_customers { at_custs } else { at_bbone };
            port.send(&f.pkt(seq).build());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let quiet = Duration::from_millis(500);
    let got_bbone = at_bbone.drain(quiet, Duration::from_secs(5));
    let got_custs = at_custs.drain(quiet, Duration::from_secs(5));

    // Every frame that arrived is one of ours, where and as it must be.
    let mut seen: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (to_customers, got) in [(false, &got_bbone), (true, &got_custs)] {
        for Rx { frame, .. } in got.iter() {
            let (name, seq) = marker(frame, &names).unwrap_or_else(|| {
                panic!(
                    "a frame that is not the test's arrived at the {} side: {frame:02x?}",
                    if to_customers {
                        "customers'"
                    } else {
                        "backbone"
                    }
                )
            });
            let f = flows
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("unknown flow {name}"));
            let Some((side, _, _)) = &f.out else {
                panic!(
                    "{name} #{seq} must not be forwarded, arrived at the {} side with tags {:?}: {frame:02x?}",
                    if to_customers {
                        "customers'"
                    } else {
                        "backbone"
                    },
                    tags(frame).0
                );
            };
            assert_eq!(
                *side,
                to_customers,
                "{name} #{seq} arrived on the wrong side, tags {:?}",
                tags(frame).0
            );
            let want = f.expected(seq).unwrap();
            assert_eq!(
                frame,
                &want,
                "{name} #{seq}: arrived (tags {:?}) differs from expected (tags {:?})",
                tags(frame).0,
                tags(&want).0
            );
            seen.entry(f.name).or_default().push(seq);
        }
    }
    for f in flows.iter().filter(|f| f.out.is_some()) {
        let mut s = seen.get(f.name).cloned().unwrap_or_default();
        s.sort_unstable();
        assert_eq!(
            s,
            (0..N).collect::<Vec<_>>(),
            "{}: every frame exactly once",
            f.name
        );
    }
    println!(
        "exchange: {} frames at the backbone, {} at the customers' side, every one as expected",
        got_bbone.len(),
        got_custs.len()
    );
}

#[test]
fn two_customers_share_one_peering_interface() {
    let lab = TwoCustomers::build();
    let config = TempFile(write_config(&lab.edge, TWO_CUSTOMERS));
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let edged = Edged::start(&lab.edge, &config.0, &pin);
    let at_custs = RawPort::open(&lab.custs, "eth0");
    let at_bbone = RawPort::open(&lab.bbone, "eth0");

    // The ports as edged names them: default names of tagged ports, tags,
    // domains.
    let status = edged.ctl_ok(&["status"]);
    let ports: BTreeMap<String, (Value, Value)> = status["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("{status}"))
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                (p["vlan"].clone(), p["domain"].clone()),
            )
        })
        .collect();
    let want: BTreeMap<String, (Value, Value)> = [
        ("cust.100", json!([100]), "public"),
        ("red-pvt", json!([101]), "red"),
        ("cust.300.21", json!([300, 21]), "public"),
        ("blue-pvt", json!([300, 20]), "blue"),
        ("bb", json!([]), "public"),
        ("bb.2100", json!([2100]), "public"),
        ("red-bb", json!([2001]), "red"),
        ("blue-bb", json!([2002]), "blue"),
    ]
    .into_iter()
    .map(|(n, v, d)| (n.to_string(), (v, json!(d))))
    .collect();
    assert_eq!(ports, want, "{status}");

    let flows = [
        // (a) red's private peering to its network behind its gateways.
        Flow {
            name: "a-red-pvt",
            from_customers: true,
            vlans: vec![101],
            src: "198.18.0.5",
            dst: "192.0.2.9",
            out: Some((false, vec![2001], RED_GW_MAC)),
        },
        // (b) blue's, the same addresses, QinQ in, one tag out.
        Flow {
            name: "b-blue-pvt",
            from_customers: true,
            vlans: vec![300, 20],
            src: "198.18.0.5",
            dst: "192.0.2.9",
            out: Some((false, vec![2002], BLUE_GW_MAC)),
        },
        // (c) red's public prefix on its Microsoft peering: the backbone exit.
        Flow {
            name: "c-red-pub",
            from_customers: true,
            vlans: vec![100],
            src: "198.51.100.10",
            dst: "203.0.113.50",
            out: Some((false, vec![], CORE_MAC)),
        },
        // (d) blue's public prefix on its (QinQ) Microsoft peering.
        Flow {
            name: "d-blue-pub",
            from_customers: true,
            vlans: vec![300, 21],
            src: "198.51.100.130",
            dst: "203.0.113.50",
            out: Some((false, vec![], CORE_MAC)),
        },
        // (e) red's public prefix as source on blue's public VLAN: a spoof.
        Flow {
            name: "e-spoof",
            from_customers: true,
            vlans: vec![300, 21],
            src: "198.51.100.10",
            dst: "203.0.113.50",
            out: None,
        },
        // (f) tags no port claims: [999], the outer tag of blue's QinQ
        // alone, no tag at all on an interface without an untagged port,
        // and [2003] on the backbone.
        Flow {
            name: "f-unknown-999",
            from_customers: true,
            vlans: vec![999],
            src: "198.18.0.5",
            dst: "192.0.2.9",
            out: None,
        },
        Flow {
            name: "f-unknown-300",
            from_customers: true,
            vlans: vec![300],
            src: "198.51.100.130",
            dst: "203.0.113.50",
            out: None,
        },
        Flow {
            name: "f-unknown-untagged",
            from_customers: true,
            vlans: vec![],
            src: "198.51.100.10",
            dst: "203.0.113.50",
            out: None,
        },
        Flow {
            name: "f-unknown-2003",
            from_customers: false,
            vlans: vec![2003],
            src: "192.0.2.9",
            dst: "198.18.0.5",
            out: None,
        },
        // (g) blue's private peering toward red's on-premises network:
        // not in blue's domain, dropped (a private domain's miss).
        Flow {
            name: "g-blue-to-red",
            from_customers: true,
            vlans: vec![300, 20],
            src: "192.0.2.9",
            dst: "198.18.0.5",
            out: None,
        },
        // (r) from red's gateways (bb tagged 2001) back to red's
        // on-premises network: out on cust tagged 101.
        Flow {
            name: "r-red-back",
            from_customers: false,
            vlans: vec![2001],
            src: "192.0.2.9",
            dst: "198.18.0.5",
            out: Some((true, vec![101], RED_ONPREM_MAC)),
        },
        // (a6, b6) both private domains in IPv6, the same network in each.
        Flow {
            name: "a6-red-pvt",
            from_customers: true,
            vlans: vec![101],
            src: "2001:db8:a::5",
            dst: "2001:db8:100::9",
            out: Some((false, vec![2001], RED_GW_MAC)),
        },
        Flow {
            name: "b6-blue-pvt",
            from_customers: true,
            vlans: vec![300, 20],
            src: "2001:db8:a::5",
            dst: "2001:db8:100::9",
            out: Some((false, vec![2002], BLUE_GW_MAC)),
        },
        // (h) public traffic toward PoPs that write tags: `vlan_push` on
        // an untagged frame (one 802.1Q tag), on a tagged one (802.1ad
        // outside the received tag), and `vlan = [400, 41]`.
        Flow {
            name: "h-push-untagged",
            from_customers: false,
            vlans: vec![],
            src: "192.0.2.77",
            dst: "203.0.113.10",
            out: Some((true, vec![3000], HANDOFF_MAC)),
        },
        Flow {
            name: "h-push-tagged",
            from_customers: false,
            vlans: vec![2100],
            src: "192.0.2.77",
            dst: "203.0.113.10",
            out: Some((true, vec![3000, 2100], HANDOFF_MAC)),
        },
        Flow {
            name: "h-double",
            from_customers: false,
            vlans: vec![2100],
            src: "192.0.2.77",
            dst: "203.0.113.200",
            out: Some((true, vec![400, 41], DOUBLE_MAC)),
        },
    ];

    let before = edged.ctl_ok(&["stats"]);
    exchange(&at_custs, &at_bbone, &flows);

    // Counters: exactly what was sent, per reason, port and PoP.
    let after = edged.ctl_ok(&["stats"]);
    let n = N as u64;
    let reasons: BTreeMap<&str, u64> = [
        "backbone",
        "policy",
        "protection",
        "unknown_vlan",
        "unregistered",
        "no_next_hop",
        "not_ip",
        "malformed",
    ]
    .into_iter()
    .map(|r| {
        (
            r,
            counter(&after, "reasons", r) - counter(&before, "reasons", r),
        )
    })
    .collect();
    let want_reasons: BTreeMap<&str, u64> = [
        ("backbone", 2 * n),
        ("policy", 8 * n),
        ("protection", n),
        ("unknown_vlan", 4 * n),
        ("unregistered", n),
        ("no_next_hop", 0),
        ("not_ip", 0),
        ("malformed", 0),
    ]
    .into_iter()
    .collect();
    assert_eq!(reasons, want_reasons, "{after}");
    let actions: BTreeMap<&str, u64> = ["redirect", "drop", "pass", "tx"]
        .into_iter()
        .map(|a| {
            (
                a,
                counter(&after, "actions", a) - counter(&before, "actions", a),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("redirect", 10 * n),
            ("drop", 2 * n),
            ("pass", 4 * n),
            ("tx", 0)
        ]
        .into_iter()
        .collect(),
        "{after}"
    );
    let ports = delta(
        &rows(&after, "ports", "port"),
        &rows(&before, "ports", "port"),
    );
    let want_ports: BTreeMap<String, u64> = [
        ("cust.100", n),
        ("red-pvt", 2 * n),
        ("cust.300.21", 2 * n),
        ("blue-pvt", 3 * n),
        ("bb", n),
        ("bb.2100", 2 * n),
        ("red-bb", n),
        ("blue-bb", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(ports, want_ports, "{after}");
    let pops = delta(&rows(&after, "pops", "pop"), &rows(&before, "pops", "pop"));
    let want_pops: BTreeMap<String, u64> = [
        ("core", 2 * n),
        ("red-gw", 2 * n),
        ("blue-gw", 2 * n),
        ("red-onprem", n),
        ("handoff", 2 * n),
        ("double", n),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(pops, want_pops, "{after}");

    // One domain's view: only its ports, PoPs and prefixes.
    let red = edged.ctl_ok(&["stats", "--domain", "red"]);
    assert_eq!(
        rows(&red, "ports", "port"),
        [("red-pvt".to_string(), 2 * n), ("red-bb".to_string(), n)]
            .into_iter()
            .collect(),
        "{red}"
    );
    assert_eq!(
        rows(&red, "pops", "pop"),
        [("red-gw".to_string(), 2 * n), ("red-onprem".to_string(), n)]
            .into_iter()
            .collect(),
        "{red}"
    );
    assert_eq!(
        rows(&red, "prefixes", "prefix"),
        [
            ("192.0.2.0/24".to_string(), n),
            ("198.18.0.0/24".to_string(), n),
            ("2001:db8:100::/48".to_string(), n),
        ]
        .into_iter()
        .collect(),
        "{red}"
    );
    let blue = edged.ctl_ok(&["stats", "--domain", "blue"]);
    assert_eq!(
        rows(&blue, "ports", "port"),
        [("blue-pvt".to_string(), 3 * n), ("blue-bb".to_string(), 0)]
            .into_iter()
            .collect(),
        "{blue}"
    );

    // What the operator sees for 192.0.2.9, per domain.
    for (domain, pop) in [("red", "red-gw"), ("blue", "blue-gw")] {
        let o = edged.ctl(&["prefix", "lookup", "--domain", domain, "192.0.2.9"]);
        let v = &o.json["data"];
        assert_eq!(o.code, Some(0), "{o:?}");
        assert_eq!(
            (
                &v["domain"],
                &v["registered"],
                &v["prefix"],
                &v["from_customer"]
            ),
            (
                &json!(domain),
                &json!(true),
                &json!("192.0.2.0/24"),
                &Value::Null
            ),
            "{v}"
        );
        assert_eq!(
            v["toward_customer"],
            json!([{"pop": pop, "slots": 1021, "share": 1.0}]),
            "{v}"
        );
    }
    let o = edged.ctl(&["prefix", "lookup", "192.0.2.9"]);
    assert_eq!(o.code, Some(3), "{o:?}");
    assert_eq!(
        (
            &o.json["data"]["domain"],
            &o.json["data"]["registered"],
            &o.json["data"]["default_action"]
        ),
        (&json!("public"), &json!(false), &json!("pass")),
        "{o:?}"
    );
    let o = edged.ctl(&["prefix", "lookup", "--domain", "blue", "198.18.0.5"]);
    assert_eq!(o.code, Some(3), "{o:?}");
    assert_eq!(
        (
            &o.json["data"]["registered"],
            &o.json["data"]["default_action"]
        ),
        (&json!(false), &json!("drop")),
        "{o:?}"
    );

    // The metrics carry each port's domain.
    let text =
        edge_tests::topology::http_get(&lab.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
    let series = |port: &str| -> Vec<&str> {
        text.lines()
            .filter(|l| {
                l.starts_with("edge_port_received_packets_total{")
                    && l.contains(&format!("port=\"{port}\""))
            })
            .collect()
    };
    for (port, role, domain, packets) in [
        ("red-pvt", "peering", "red", 2 * n),
        ("blue-pvt", "peering", "blue", 3 * n),
        ("cust.300.21", "peering", "public", 2 * n),
        ("red-bb", "backbone", "red", n),
        ("bb.2100", "backbone", "public", 2 * n),
    ] {
        let found = series(port);
        assert_eq!(found.len(), 1, "{port}: {found:?}");
        let line = found[0];
        assert!(
            line.contains(&format!("role=\"{role}\""))
                && line.contains(&format!("domain=\"{domain}\""))
                && line.ends_with(&format!(" {packets}")),
            "{line}"
        );
    }

    let public = edged.ctl_ok(&["stats", "--domain", "public"]);
    assert_eq!(
        (
            rows(&public, "ports", "port")
                .into_keys()
                .collect::<Vec<_>>(),
            rows(&public, "pops", "pop").into_keys().collect::<Vec<_>>()
        ),
        (
            vec![
                "bb".to_string(),
                "bb.2100".into(),
                "cust.100".into(),
                "cust.300.21".into()
            ],
            vec!["core".to_string(), "double".into(), "handoff".into()]
        ),
        "{public}"
    );
    let o = edged.ctl(&["stats", "--domain", "green"]);
    assert_eq!(o.code, Some(3), "an unknown domain is not_found: {o:?}");
    let list = edged.ctl_ok(&["prefix", "list", "--domain", "blue"]);
    let listed: Vec<&str> = list
        .as_array()
        .or_else(|| list["prefixes"].as_array())
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|p| p["prefix"].as_str().unwrap())
        .collect();
    // In the file's order.
    assert_eq!(listed, ["2001:db8:100::/48", "192.0.2.0/24"], "{list}");

    // Live prefixes are public: a private domain's PoP or port is refused.
    for args in [
        &["prefix", "add", "203.0.113.64/26", "--pop", "red-gw"][..],
        &[
            "prefix",
            "add",
            "203.0.113.64/26",
            "--pop",
            "core",
            "--protect",
            "red-pvt",
        ][..],
    ] {
        let o = edged.ctl(args);
        println!("{args:?}: {:?} {}", o.code, o.json);
        assert_eq!(o.code, Some(2), "refused as invalid: {args:?} {o:?}");
    }
    let o = edged.ctl(&["prefix", "lookup", "203.0.113.70"]);
    assert_eq!(o.json["data"]["prefix"], "203.0.113.0/25", "{o:?}");

    // A reload moves blue's private peering to [300, 22]: the port keeps
    // its name, so its id and counter; [300, 20] is no port's any more.
    let ids = |edged: &Edged| -> BTreeMap<String, u64> {
        let status = edged.ctl_ok(&["status"]);
        status["ports"]
            .as_array()
            .unwrap_or_else(|| panic!("{status}"))
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["id"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let ids_before = ids(&edged);
    let moved = TWO_CUSTOMERS.replace("vlan = [300, 20]", "vlan = [300, 22]");
    assert_ne!(moved, TWO_CUSTOMERS);
    std::fs::write(&config.0, moved).unwrap();
    let reply = edged.ctl_ok(&["config", "reload"]);
    println!("reload: {reply}");
    assert_eq!(ids(&edged), ids_before, "port ids kept across the reload");
    let before = edged.ctl_ok(&["stats"]);
    exchange(
        &at_custs,
        &at_bbone,
        &[
            Flow {
                name: "b-old-vlan",
                from_customers: true,
                vlans: vec![300, 20],
                src: "198.18.0.5",
                dst: "192.0.2.9",
                out: None,
            },
            Flow {
                name: "b-new-vlan",
                from_customers: true,
                vlans: vec![300, 22],
                src: "198.18.0.5",
                dst: "192.0.2.9",
                out: Some((false, vec![2002], BLUE_GW_MAC)),
            },
        ],
    );
    let after = edged.ctl_ok(&["stats"]);
    let d = |g: &str, k: &str| counter(&after, g, k) - counter(&before, g, k);
    assert_eq!(
        (d("reasons", "unknown_vlan"), d("reasons", "policy")),
        (n, n),
        "{after}"
    );
    let ports = delta(
        &rows(&after, "ports", "port"),
        &rows(&before, "ports", "port"),
    );
    assert_eq!(
        ports.iter().filter(|(_, v)| **v > 0).collect::<Vec<_>>(),
        vec![(&"blue-pvt".to_string(), &n)],
        "{after}"
    );
    assert_eq!(
        rows(&after, "ports", "port")["blue-pvt"],
        4 * n,
        "the port's counter goes on across the reload"
    );
    drop(edged);
}

/// The health of PoP `name` in `edgectl pop list`: (state, down_reason).
fn pop_health(edged: &Edged, name: &str) -> (String, String) {
    let list = edged.ctl_ok(&["pop", "list"]);
    let row = list
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no PoP {name}: {list}"))
        .clone();
    (
        row["health"]["state"].as_str().unwrap_or("-").to_string(),
        row["health"]["down_reason"]
            .as_str()
            .unwrap_or("-")
            .to_string(),
    )
}

/// PoPs given by `port =` a tagged port follow their interface's carrier
/// like PoPs given by `interface` (docs/operations.md, "Interfaces that
/// change"): the backbone interface goes down, red's gateway is down at
/// once, red's private traffic toward it is dropped as `no_next_hop` (a
/// private domain's policy falls back to `pass`, which drops), and the
/// public exit's traffic goes to the kernel; back up, forwarded again.
/// Then edged is stopped: the data plane goes on forwarding both domains;
/// started again it keeps the ports' ids.
#[test]
fn pops_on_tagged_ports_follow_their_carrier_and_edged_restarts() {
    let lab = TwoCustomers::build();
    let config = TempFile(write_config(&lab.edge, TWO_CUSTOMERS));
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let mut edged = Edged::start(&lab.edge, &config.0, &pin);
    let at_custs = RawPort::open(&lab.custs, "eth0");
    let at_bbone = RawPort::open(&lab.bbone, "eth0");
    let red = |name| Flow {
        name,
        from_customers: true,
        vlans: vec![101],
        src: "198.18.0.5",
        dst: "192.0.2.9",
        out: Some((false, vec![2001], RED_GW_MAC)),
    };
    let public = |name| Flow {
        name,
        from_customers: true,
        vlans: vec![100],
        src: "198.51.100.10",
        dst: "203.0.113.50",
        out: Some((false, vec![], CORE_MAC)),
    };
    exchange(&at_custs, &at_bbone, &[red("a-before"), public("c-before")]);

    lab._lab.ip(&lab.edge, &["link", "set", "bb", "down"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while pop_health(&edged, "red-gw").0 != "down" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pop in ["red-gw", "blue-gw", "core"] {
        let (state, why) = pop_health(&edged, pop);
        assert_eq!(state, "down", "{pop}: {why}");
        assert!(why.contains("no carrier on bb"), "{pop}: {why}");
    }
    // The fallback event of red's gateway policy (checked at the end).
    let deadline = Instant::now() + Duration::from_secs(3);
    let fallback_event = loop {
        let events = edged.ctl_ok(&["events"]);
        let found = events["events"].as_array().and_then(|l| {
            l.iter()
                .filter(|e| e["kind"] == "fallback")
                .filter_map(|e| e["message"].as_str())
                .find(|m| m.starts_with("policy pop:red-gw:"))
                .map(str::to_string)
        });
        if let Some(m) = found {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no fallback event for pop:red-gw: {events}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let onprem = pop_health(&edged, "red-onprem");
    assert!(
        onprem.0.starts_with("up"),
        "red-onprem is on cust: {onprem:?}"
    );
    let before = edged.ctl_ok(&["stats"]);
    let down = |name| Flow {
        out: None,
        ..red(name)
    };
    let down_public = |name| Flow {
        out: None,
        ..public(name)
    };
    exchange(
        &at_custs,
        &at_bbone,
        &[down("a-bb-down"), down_public("c-bb-down")],
    );
    let after = edged.ctl_ok(&["stats"]);
    let d = |g: &str, k: &str| counter(&after, g, k) - counter(&before, g, k);
    let n = N as u64;
    assert_eq!(
        [
            d("reasons", "no_next_hop"),
            d("actions", "drop"),
            d("actions", "pass"),
            d("actions", "redirect")
        ],
        [2 * n, n, n, 0],
        "red's private traffic dropped, the public exit's to the kernel: {after}"
    );

    lab._lab.ip(&lab.edge, &["link", "set", "bb", "up"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !pop_health(&edged, "red-gw").0.starts_with("up") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The veth needs a moment before it carries frames again.
    std::thread::sleep(Duration::from_millis(300));
    exchange(&at_custs, &at_bbone, &[red("a-bb-up"), public("c-bb-up")]);

    // edged stopped: the pinned program forwards on; restarted: same ids.
    let ids = |edged: &Edged| edged.ctl_ok(&["status"])["ports"].clone();
    let ids_before = ids(&edged);
    edged.stop();
    exchange(
        &at_custs,
        &at_bbone,
        &[red("a-no-edged"), public("c-no-edged")],
    );
    edged.restart();
    assert_eq!(ids(&edged), ids_before, "ports across a restart");
    exchange(
        &at_custs,
        &at_bbone,
        &[red("a-restarted"), public("c-restarted")],
    );
    // TTL 1 in a private domain: `ttl_exceeded`, handed to the kernel
    // (docs/config.md's reason table; the private domain section changes
    // only misses and PoPs that are down).
    let before = edged.ctl_ok(&["stats"]);
    let ttl1 = red("a-ttl1").pkt(0).with(|p| p.ttl = 1).build();
    for _ in 0..5 {
        at_custs.send(&ttl1);
    }
    let arrived = at_bbone.drain(Duration::from_millis(300), Duration::from_secs(2));
    assert!(arrived.is_empty(), "TTL 1 forwarded: {arrived:?}");
    let after = edged.ctl_ok(&["stats"]);
    let d = |g: &str, k: &str| counter(&after, g, k) - counter(&before, g, k);
    assert_eq!(
        [d("reasons", "ttl_exceeded"), d("actions", "pass")],
        [5, 5],
        "{after}"
    );

    let stats = edged.ctl_ok(&["stats", "--domain", "red"]);
    // Counters live in the pinned maps: every frame of red's private
    // peering since the start (five rounds; the one while bb was down too).
    assert_eq!(
        rows(&stats, "ports", "port")["red-pvt"],
        5 * n + 5,
        "{stats}"
    );
    assert_eq!(rows(&stats, "pops", "pop")["red-gw"], 4 * n, "{stats}");
    drop(edged);
    // A private domain's policy falls back to `pass`, which drops (as
    // asserted above from the counters; docs/config.md, "Logical ports
    // and domains"): its event must not tell the operator that the
    // customer's private traffic goes to the host's kernel, which is what
    // the docs say never happens.
    println!("fallback event: {fallback_event}");
    assert!(
        !fallback_event.contains("to the kernel"),
        "the fallback event of a private domain's policy says its traffic goes to the kernel, but it is dropped: {fallback_event:?}"
    );
}

/// TWO_CUSTOMERS with blue gone and green in its place: its ports on
/// blue's tags, its gateway PoP, and prefixes of its own (not
/// 192.0.2.0/24). Domain, port and PoP ids freed by blue may be reused.
fn green_instead_of_blue() -> String {
    let mut c = TWO_CUSTOMERS.to_string();
    for (from, to) in [
        (
            "[[domains]]\nname = \"blue\"",
            "[[domains]]\nname = \"green\"",
        ),
        (
            "name = \"blue-pvt\"\nvlan = [300, 20]\nrole = \"peering\"\ndomain = \"blue\"",
            "name = \"green-pvt\"\nvlan = [300, 20]\nrole = \"peering\"\ndomain = \"green\"",
        ),
        (
            "name = \"blue-bb\"\nvlan = [2002]\nrole = \"backbone\"\ndomain = \"blue\"",
            "name = \"green-bb\"\nvlan = [2002]\nrole = \"backbone\"\ndomain = \"green\"",
        ),
        (
            "name = \"blue-gw\"\nport = \"blue-bb\"\nmac = \"02:00:00:00:b1:01\"",
            "name = \"green-gw\"\nport = \"green-bb\"\nmac = \"02:00:00:00:9e:01\"",
        ),
        (
            "prefix = \"192.0.2.0/24\"\ndomain = \"blue\"\npop = \"blue-gw\"",
            "prefix = \"198.18.0.0/24\"\ndomain = \"green\"\npop = \"green-gw\"",
        ),
        (
            "prefix = \"2001:db8:100::/48\"\ndomain = \"blue\"\npop = \"blue-gw\"",
            "prefix = \"2001:db8:200::/48\"\ndomain = \"green\"\npop = \"green-gw\"",
        ),
    ] {
        assert!(c.contains(from), "{from}");
        c = c.replace(from, to);
    }
    assert!(!c.contains("domain = \"blue\""), "{c}");
    c
}

/// A reload replaces the blue domain by green (on blue's tags): blue's
/// prefixes must not survive under an id green takes over, green's own
/// prefixes answer on its ports, red is untouched, and blue is unknown.
#[test]
fn a_reload_replaces_a_domain_without_leaking_its_prefixes() {
    let lab = TwoCustomers::build();
    let config = TempFile(write_config(&lab.edge, TWO_CUSTOMERS));
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let edged = Edged::start(&lab.edge, &config.0, &pin);
    let at_custs = RawPort::open(&lab.custs, "eth0");
    let at_bbone = RawPort::open(&lab.bbone, "eth0");
    let flow = |name, vlans: Vec<u16>, dst: &'static str, out| Flow {
        name,
        from_customers: true,
        vlans,
        src: if dst.contains(':') {
            "2001:db8:a::77"
        } else {
            "198.18.0.77"
        },
        dst,
        out,
    };
    exchange(
        &at_custs,
        &at_bbone,
        &[flow(
            "b-blue",
            vec![300, 20],
            "192.0.2.9",
            Some((false, vec![2002], BLUE_GW_MAC)),
        )],
    );
    let ids = |edged: &Edged| {
        let s = edged.ctl_ok(&["status"]);
        (s["ports"].clone(), edged.ctl_ok(&["pop", "list"]))
    };
    let (_, pops_before) = ids(&edged);
    std::fs::write(&config.0, green_instead_of_blue()).unwrap();
    let reply = edged.ctl_ok(&["config", "reload"]);
    println!("reload (blue -> green): {reply}");
    let (ports, pops) = ids(&edged);
    let id_of = |list: &Value, key: &str, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p[key] == name)
            .map(|p| p["id"].clone())
    };
    println!(
        "ids: blue-gw was {:?}, green-gw is {:?}; green-pvt {:?}",
        id_of(&pops_before, "name", "blue-gw"),
        id_of(&pops, "name", "green-gw"),
        id_of(&ports, "name", "green-pvt")
    );

    let before = edged.ctl_ok(&["stats"]);
    exchange(
        &at_custs,
        &at_bbone,
        &[
            // blue's network is not green's: a miss, dropped.
            flow("g-blue-net", vec![300, 20], "192.0.2.9", None),
            flow("g-blue-net6", vec![300, 20], "2001:db8:100::9", None),
            // green's own.
            flow(
                "g-green-net",
                vec![300, 20],
                "198.18.0.5",
                Some((false, vec![2002], "02:00:00:00:9e:01")),
            ),
            flow(
                "g-green-net6",
                vec![300, 20],
                "2001:db8:200::5",
                Some((false, vec![2002], "02:00:00:00:9e:01")),
            ),
            // red's unchanged.
            flow(
                "a-red",
                vec![101],
                "192.0.2.9",
                Some((false, vec![2001], RED_GW_MAC)),
            ),
        ],
    );
    let after = edged.ctl_ok(&["stats"]);
    let d = |g: &str, k: &str| counter(&after, g, k) - counter(&before, g, k);
    let n = N as u64;
    assert_eq!(
        [d("reasons", "unregistered"), d("reasons", "policy")],
        [2 * n, 3 * n],
        "{after}"
    );
    let o = edged.ctl(&["prefix", "lookup", "--domain", "green", "192.0.2.9"]);
    assert_eq!(
        (o.code, &o.json["data"]["registered"]),
        (Some(3), &json!(false)),
        "{o:?}"
    );
    let o = edged.ctl(&["prefix", "lookup", "--domain", "blue", "192.0.2.9"]);
    assert_eq!(o.code, Some(3), "blue is gone: {o:?}");
    assert_eq!(o.json["kind"], "not_found", "{o:?}");
    drop(edged);
}

/// The peering interface with all the tagged ports is deleted and created
/// again (a new index): edged compiles every port on it back in
/// (docs/operations.md, "Interfaces that change"), so both customers'
/// public and private peerings work again, both ways.
#[test]
fn a_recreated_interface_brings_all_its_tagged_ports_back() {
    let lab = TwoCustomers::build();
    let config = TempFile(write_config(&lab.edge, TWO_CUSTOMERS));
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let edged = Edged::start(&lab.edge, &config.0, &pin);
    let at_bbone = RawPort::open(&lab.bbone, "eth0");
    let flows = |tag: &str| -> Vec<Flow> {
        let name = |s: &str| -> &'static str { format!("{s}-{tag}").leak() };
        vec![
            Flow {
                name: name("a"),
                from_customers: true,
                vlans: vec![101],
                src: "198.18.0.5",
                dst: "192.0.2.9",
                out: Some((false, vec![2001], RED_GW_MAC)),
            },
            Flow {
                name: name("b"),
                from_customers: true,
                vlans: vec![300, 20],
                src: "198.18.0.5",
                dst: "192.0.2.9",
                out: Some((false, vec![2002], BLUE_GW_MAC)),
            },
            Flow {
                name: name("d"),
                from_customers: true,
                vlans: vec![300, 21],
                src: "198.51.100.130",
                dst: "203.0.113.50",
                out: Some((false, vec![], CORE_MAC)),
            },
            Flow {
                name: name("e"),
                from_customers: true,
                vlans: vec![300, 21],
                src: "198.51.100.10",
                dst: "203.0.113.50",
                out: None,
            },
            Flow {
                name: name("r"),
                from_customers: false,
                vlans: vec![2001],
                src: "192.0.2.9",
                dst: "198.18.0.5",
                out: Some((true, vec![101], RED_ONPREM_MAC)),
            },
        ]
    };
    let ifindex = |edged: &Edged| -> Vec<(String, Value, Value)> {
        let s = edged.ctl_ok(&["status"]);
        s["ports"]
            .as_array()
            .unwrap_or_else(|| panic!("{s}"))
            .iter()
            .filter(|p| p["interface"] == "cust")
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["ifindex"].clone(),
                    p["absent"].clone(),
                )
            })
            .collect()
    };
    {
        let at_custs = RawPort::open(&lab.custs, "eth0");
        exchange(&at_custs, &at_bbone, &flows("first"));
    }
    let before = ifindex(&edged);
    lab._lab.ip(&lab.edge, &["link", "del", "cust"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while ifindex(&edged).iter().any(|p| p.2 != true) {
        assert!(
            Instant::now() < deadline,
            "cust not gone: {:?}",
            ifindex(&edged)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    lab._lab.veth(
        (&lab.custs, "eth0", CUSTS_MAC),
        (&lab.edge, "cust", EDGE_CUST_MAC),
    );
    let _pass = attach_pass(&lab.custs, "eth0");
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let now = ifindex(&edged);
        if now.iter().all(|p| p.2 == false) && now.iter().all(|p| p.1 != before[0].1) {
            break now;
        }
        assert!(Instant::now() < deadline, "cust not back: {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("cust recreated: {before:?} -> {after:?}");
    // The veths need a moment before they carry frames.
    std::thread::sleep(Duration::from_millis(300));
    let at_custs = RawPort::open(&lab.custs, "eth0");
    let stats_before = edged.ctl_ok(&["stats"]);
    exchange(&at_custs, &at_bbone, &flows("again"));
    let stats_after = edged.ctl_ok(&["stats"]);
    let d = |k: &str| counter(&stats_after, "reasons", k) - counter(&stats_before, "reasons", k);
    assert_eq!(
        [d("protection"), d("unknown_vlan"), d("unknown_port")],
        [N as u64, 0, 0],
        "{stats_after}"
    );
    drop(edged);
}

/// A reload renames red's public port (`cust.100` → `red-pub`, `protect`
/// following): a new id, its counter starting anew (docs/config.md,
/// "[[ports]]"), and protection holding red's prefix to the renamed port.
/// A reload that would mix domains is refused whole, nothing changed.
#[test]
fn a_reload_renames_a_port_and_protection_follows() {
    let lab = TwoCustomers::build();
    let config = TempFile(write_config(&lab.edge, TWO_CUSTOMERS));
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let edged = Edged::start(&lab.edge, &config.0, &pin);
    let at_custs = RawPort::open(&lab.custs, "eth0");
    let at_bbone = RawPort::open(&lab.bbone, "eth0");
    let red_public = |name, out| Flow {
        name,
        from_customers: true,
        vlans: vec![100],
        src: "198.51.100.10",
        dst: "203.0.113.50",
        out,
    };
    let spoof = |name| Flow {
        name,
        from_customers: true,
        vlans: vec![300, 21],
        src: "198.51.100.10",
        dst: "203.0.113.50",
        out: None,
    };
    let core = Some((false, vec![], CORE_MAC));
    exchange(
        &at_custs,
        &at_bbone,
        &[red_public("c-before", core.clone()), spoof("e-before")],
    );
    let port_ids = |edged: &Edged| -> BTreeMap<String, u64> {
        let s = edged.ctl_ok(&["status"]);
        s["ports"]
            .as_array()
            .unwrap_or_else(|| panic!("{s}"))
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["id"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let ids_before = port_ids(&edged);

    // Refused whole: blue's prefix toward red's gateway.
    let mixed = TWO_CUSTOMERS.replace(
        "prefix = \"2001:db8:100::/48\"\ndomain = \"blue\"\npop = \"blue-gw\"",
        "prefix = \"2001:db8:100::/48\"\ndomain = \"blue\"\npop = \"red-gw\"",
    );
    assert_ne!(mixed, TWO_CUSTOMERS);
    std::fs::write(&config.0, &mixed).unwrap();
    let o = edged.ctl(&["config", "reload"]);
    println!("reload mixing domains: {:?} {}", o.code, o.json);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(o.json.to_string().contains("red-gw"), "{o:?}");
    assert_eq!(port_ids(&edged), ids_before);

    let renamed = TWO_CUSTOMERS
        .replace(
            "interface = \"cust\"\nvlan = [100]",
            "interface = \"cust\"\nname = \"red-pub\"\nvlan = [100]",
        )
        .replace("protect = [\"cust.100\"]", "protect = [\"red-pub\"]");
    assert!(renamed.contains("name = \"red-pub\"") && renamed.contains("[\"red-pub\"]"));
    std::fs::write(&config.0, &renamed).unwrap();
    let reply = edged.ctl_ok(&["config", "reload"]);
    println!("reload renaming cust.100: {reply}");
    let ids_after = port_ids(&edged);
    println!("port ids: {ids_before:?} -> {ids_after:?}");
    assert!(!ids_after.contains_key("cust.100"), "{ids_after:?}");
    for (name, id) in &ids_before {
        if name != "cust.100" {
            assert_eq!(ids_after.get(name), Some(id), "{name} keeps its id");
        }
    }
    let before = edged.ctl_ok(&["stats"]);
    // Checked at the end: the counter of the renamed port right after.
    let at_rename = rows(&before, "ports", "port").get("red-pub").copied();
    exchange(
        &at_custs,
        &at_bbone,
        &[red_public("c-renamed", core), spoof("e-renamed")],
    );
    let after = edged.ctl_ok(&["stats"]);
    let d = |k: &str| counter(&after, "reasons", k) - counter(&before, "reasons", k);
    let n = N as u64;
    assert_eq!([d("backbone"), d("protection")], [n, n], "{after}");
    let o = edged.ctl(&["prefix", "lookup", "198.51.100.10"]);
    assert_eq!(o.json["data"]["protect"], json!(["red-pub"]), "{o:?}");
    drop(edged);
    assert_eq!(
        at_rename,
        Some(0),
        "a renamed port's counter starts anew (docs/config.md, [[ports]]: \"Changing a port's name gives it a new id (counters start anew)\"); red-pub took cust.100's id {} and its {n} packets",
        ids_after["red-pub"]
    );
}

// ---------------------------------------------------------------------------
// Scope: a continent connection never fails over out of its continent.
//
//  src:eth0 ── edge:src0 (backbone)   the sender, toward the customers
//  ams:eth0 ── edge:nl0  (backbone)   PoP ams, world > europe > nl
//  dub:eth0 ── edge:ie0  (backbone)   PoP dub, world > europe > ie
//  nyc:eth0 ── edge:us0  (backbone)   PoP nyc, world > america > us
// ---------------------------------------------------------------------------

const SCOPE: &str = r#"
[daemon]
metrics_address = ""

[[ports]]
interface = "src0"
role = "backbone"

[[ports]]
interface = "nl0"
role = "backbone"

[[ports]]
interface = "ie0"
role = "backbone"

[[ports]]
interface = "us0"
role = "backbone"

[[pops]]
name = "ams"
interface = "nl0"
mac = "02:00:00:00:51:01"
region = "world > europe > nl"

[[pops]]
name = "dub"
interface = "ie0"
mac = "02:00:00:00:52:01"
region = "world > europe > ie"

[[pops]]
name = "nyc"
interface = "us0"
mac = "02:00:00:00:53:01"
region = "world > america > us"

[[policies]]
name = "eu-std-order"
method = "priority"
members = [{ pop = "ams" }, { pop = "dub" }]

[[policies]]
name = "eu-premium-order"
method = "priority"
members = [{ pop = "ams" }, { pop = "dub" }, { pop = "nyc" }]

[[prefixes]]
prefix = "203.0.113.0/25"
registration = "eu-std"
policy = "eu-std-order"

[[prefixes]]
prefix = "203.0.113.128/25"
registration = "eu-premium"
policy = "eu-premium-order"

[[registrations]]
name = "eu-std"
continent = "world > europe"

[[registrations]]
name = "eu-premium"
continent = "world > europe"
scope = "global"
"#;

const SRC_MAC: &str = "02:00:00:00:50:01";
const EDGE_SRC_MAC: &str = "02:00:00:00:50:fe";
/// (namespace name, edge interface, PoP MAC, edge MAC)
const SITES: [(&str, &str, &str, &str); 3] = [
    ("ams", "nl0", "02:00:00:00:51:01", "02:00:00:00:51:fe"),
    ("dub", "ie0", "02:00:00:00:52:01", "02:00:00:00:52:fe"),
    ("nyc", "us0", "02:00:00:00:53:01", "02:00:00:00:53:fe"),
];
const STD_DST: &str = "203.0.113.10";
const PREMIUM_DST: &str = "203.0.113.200";

#[test]
fn a_continent_registration_may_not_name_a_pop_outside_it() {
    // No lab: the check looks at the file only (still as root, as edged).
    edge_tests::netns::require_root();
    let bad = SCOPE.replace(
        "name = \"eu-std-order\"\nmethod = \"priority\"\nmembers = [{ pop = \"ams\" }, { pop = \"dub\" }]",
        "name = \"eu-std-order\"\nmethod = \"priority\"\nmembers = [{ pop = \"ams\" }, { pop = \"dub\" }, { pop = \"nyc\" }]",
    );
    assert_ne!(bad, SCOPE);
    let dir = std::env::temp_dir().join(format!("edge-scope-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let (good_path, bad_path) = (dir.join("good.toml"), dir.join("bad.toml"));
    std::fs::write(&good_path, SCOPE).unwrap();
    std::fs::write(&bad_path, &bad).unwrap();
    let check = |path: &PathBuf| {
        std::process::Command::new(workspace_bin("edgectl"))
            .args(["config", "check"])
            .arg(path)
            .output()
            .expect("run edgectl")
    };
    let good = check(&good_path);
    assert_eq!(good.status.code(), Some(0), "{good:?}");
    let out = check(&bad_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("edgectl config check (eu-std-order lists nyc): {stderr}");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains("eu-std-order") && stderr.contains("nyc"),
        "the problem names the policy and the PoP: {stderr}"
    );
    // The line of the problem: the registration's or the policy's.
    assert!(stderr.contains("line "), "{stderr}");
    // edged --check says the same, exit code 2.
    let out = std::process::Command::new(workspace_bin("edged"))
        .arg("--check")
        .arg("--config")
        .arg(&bad_path)
        .arg("--state")
        .arg(dir.join("state.json"))
        .output()
        .expect("run edged --check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr.contains("eu-std-order") && stderr.contains("nyc"),
        "{stderr}"
    );
}

/// The scope rules at validation, case by case (docs/config.md, "Scope"):
/// what `edgectl config check` accepts, and what it refuses (exit 2) with
/// the policy and the PoPs named.
#[test]
fn scope_is_checked_through_nesting_domains_route_sources_and_region_paths() {
    edge_tests::netns::require_root();
    let eu_std = "name = \"eu-std-order\"\nmethod = \"priority\"\nmembers = [{ pop = \"ams\" }, { pop = \"dub\" }]";
    assert!(SCOPE.contains(eu_std));
    let with_std = |members: &str, extra: &str| {
        SCOPE.replace(
            eu_std,
            &format!("name = \"eu-std-order\"\nmethod = \"priority\"\nmembers = {members}"),
        ) + extra
    };
    let extra_pop = |name: &str, region: Option<&str>| {
        format!(
            "\n[[pops]]\nname = \"{name}\"\ninterface = \"us0\"\nmac = \"02:00:00:00:53:09\"\n{}",
            region.map_or(String::new(), |r| format!("region = \"{r}\"\n"))
        )
    };
    // (what, config, refused, words the problem must hold)
    let cases: Vec<(&str, String, bool, Vec<&str>)> = vec![
        (
            "a nested policy reaching nyc",
            with_std(
                "[{ pop = \"ams\" }, { policy = \"far\" }]",
                "\n[[policies]]\nname = \"far\"\nmethod = \"priority\"\nmembers = [{ pop = \"nyc\" }]\n",
            ),
            true,
            vec!["eu-std", "nyc"],
        ),
        (
            "a PoP without a region",
            with_std(
                "[{ pop = \"ams\" }, { pop = \"lost\" }]",
                &extra_pop("lost", None),
            ),
            true,
            vec!["eu-std-order", "lost"],
        ),
        (
            "a region that only starts with the continent's letters",
            with_std(
                "[{ pop = \"ams\" }, { pop = \"riga\" }]",
                &extra_pop("riga", Some("world > europe-east > lv")),
            ),
            true,
            vec!["eu-std-order", "riga"],
        ),
        (
            "a PoP at the continent itself",
            with_std(
                "[{ pop = \"ams\" }, { pop = \"eu\" }]",
                &extra_pop("eu", Some("world > europe")),
            ),
            false,
            vec![],
        ),
        (
            "the continent written in other case and spacing",
            SCOPE.replace(
                "name = \"eu-std\"\ncontinent = \"world > europe\"",
                "name = \"eu-std\"\ncontinent = \"World>EUROPE\"",
            ),
            false,
            vec![],
        ),
        (
            "a private domain's prefix of the registration toward nyc's VLAN",
            SCOPE.to_string()
                + "\n[[domains]]\nname = \"priv\"\n\n[[ports]]\ninterface = \"us0\"\nname = \"priv-us\"\nvlan = [5]\nrole = \"backbone\"\ndomain = \"priv\"\n\n[[pops]]\nname = \"priv-nyc\"\nport = \"priv-us\"\nmac = \"02:00:00:00:53:05\"\nregion = \"world > america > us\"\n\n[[prefixes]]\nprefix = \"192.0.2.0/24\"\ndomain = \"priv\"\nregistration = \"eu-std\"\npop = \"priv-nyc\"\n",
            true,
            vec!["eu-std", "priv-nyc"],
        ),
        (
            "a route source of the registration toward nyc",
            SCOPE.to_string()
                + "\n[[route_sources]]\ntable = 200\nregistration = \"eu-std\"\npop = \"nyc\"\n",
            true,
            vec!["eu-std", "nyc"],
        ),
        (
            "scope continent without a continent",
            SCOPE.replace(
                "name = \"eu-std\"\ncontinent = \"world > europe\"",
                "name = \"eu-std\"\nscope = \"continent\"",
            ),
            true,
            vec!["eu-std", "continent"],
        ),
    ];
    let dir = std::env::temp_dir().join(format!("edge-scope-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let mut wrong = Vec::new();
    for (i, (what, text, refused, words)) in cases.iter().enumerate() {
        assert_ne!(text, SCOPE, "{what}: the variant changes nothing");
        let path = dir.join(format!("case{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(workspace_bin("edgectl"))
            .args(["config", "check"])
            .arg(&path)
            .output()
            .expect("run edgectl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{what}: exit {:?} {stderr}", out.status.code());
        let want = if *refused { Some(2) } else { Some(0) };
        if out.status.code() != want || !words.iter().all(|w| stderr.contains(w)) {
            wrong.push(format!(
                "{what}: exit {:?} (want {want:?}), words {words:?}: {stderr}",
                out.status.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Arrivals at one PoP: (when, destination is eu-std's, sequence number).
type Arrivals = Arc<Mutex<Vec<(Instant, bool, u32)>>>;

fn spawn_arrivals(port: RawPort, done: Arc<AtomicBool>) -> (Arrivals, std::thread::JoinHandle<()>) {
    let log: Arrivals = Arc::default();
    let l = log.clone();
    let h = std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            let Some(rx) = port.recv(Duration::from_millis(50)) else {
                continue;
            };
            let f = &rx.frame;
            // Untagged IPv4 to 203.0.113.x, UDP, sequence number first.
            if f.len() < 46 || f[12..14] != [0x08, 0x00] || f[30..33] != [203, 0, 113] {
                panic!("{}: an unexpected frame {f:02x?}", port.what);
            }
            let seq = u32::from_be_bytes([f[42], f[43], f[44], f[45]]);
            l.lock().unwrap().push((rx.at, f[33] < 128, seq));
        }
    });
    (log, h)
}

/// Waits (bounded) for the first arrival in `log` after `t` of eu-std's
/// (`std`) or eu-premium's stream; its delay after `t`.
fn first_arrival(log: &Arrivals, std: bool, t: Instant, limit: Duration) -> Option<Duration> {
    let deadline = t + limit;
    loop {
        if let Some(at) = log
            .lock()
            .unwrap()
            .iter()
            .find(|(at, s, _)| *at >= t && *s == std)
            .map(|(at, _, _)| *at)
        {
            return Some(at - t);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn count_since(log: &Arrivals, std: bool, t: Instant) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|(at, s, _)| *at >= t && *s == std)
        .count()
}

fn scope_frame(dst: &str, seq: u32) -> Vec<u8> {
    let mut payload = seq.to_be_bytes().to_vec();
    payload.extend_from_slice(b" edge scope test");
    Pkt::udp("198.51.100.77", dst)
        .with(|p| {
            p.src_mac = mac(SRC_MAC);
            p.dst_mac = mac(EDGE_SRC_MAC);
            p.payload = payload;
        })
        .build()
}

/// Both streams (eu-std's and eu-premium's), one frame each per
/// millisecond from the sender's namespace, at most 20 s; stopped by
/// [`Sender::finish`] or on drop.
struct Sender {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl Sender {
    fn start(src: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, src) = (stop.clone(), src.to_string());
        let thread = std::thread::spawn(move || {
            let port = RawPort::open(&src, "eth0");
            let start = Instant::now();
            let mut seq = 0u32;
            while !s.load(Ordering::Relaxed) && seq < 20_000 {
                port.send(&scope_frame(STD_DST, seq));
                port.send(&scope_frame(PREMIUM_DST, seq));
                seq += 1;
                if let Some(w) = (start + Duration::from_millis(u64::from(seq)))
                    .checked_duration_since(Instant::now())
                {
                    std::thread::sleep(w);
                }
            }
            seq
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it; the frames sent per stream.
    fn finish(mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_continent_registration_does_not_fail_over_out_of_its_continent() {
    let mut lab = Lab::new("scope");
    let edge = lab.add_ns("edge");
    let src = lab.add_ns("src");
    let sites: Vec<String> = SITES.iter().map(|s| lab.add_ns(s.0)).collect();
    for ns in sites.iter().chain([&edge, &src]) {
        quiet_ns(&lab, ns);
    }
    lab.veth((&src, "eth0", SRC_MAC), (&edge, "src0", EDGE_SRC_MAC));
    for (ns, (_, port, pop_mac, edge_mac)) in sites.iter().zip(SITES) {
        lab.veth((ns, "eth0", pop_mac), (&edge, port, edge_mac));
    }
    lab.sysctl(&edge, "net.ipv4.ip_forward", "0");
    let _pass: Vec<aya::Ebpf> = sites.iter().map(|ns| attach_pass(ns, "eth0")).collect();
    let config = TempFile(write_config(&edge, SCOPE));
    let pin = PathBuf::from(format!("/sys/fs/bpf/{edge}"));
    let edged = Edged::start(&edge, &config.0, &pin);

    let done = Arc::new(AtomicBool::new(false));
    let (logs, receivers): (Vec<Arrivals>, Vec<_>) = sites
        .iter()
        .map(|ns| spawn_arrivals(RawPort::open(ns, "eth0"), done.clone()))
        .unzip();
    let [ams, dub, nyc] = [&logs[0], &logs[1], &logs[2]];

    let sender = Sender::start(&src);

    // Both at ams, their first choice.
    let t = Instant::now();
    for std in [true, false] {
        assert!(
            first_arrival(ams, std, t, Duration::from_secs(3)).is_some(),
            "{} reaches ams",
            if std { "eu-std" } else { "eu-premium" }
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        (count_since(dub, true, t) + count_since(dub, false, t)),
        0,
        "nothing at dub while ams is up"
    );
    assert_eq!(count_since(nyc, true, t) + count_since(nyc, false, t), 0);

    // ams's link goes down: both to dub.
    let down_nl = Instant::now();
    lab.ip(&edge, &["link", "set", "nl0", "down"]);
    let std_to_dub = first_arrival(dub, true, down_nl, Duration::from_secs(5));
    let premium_to_dub = first_arrival(dub, false, down_nl, Duration::from_secs(5));
    println!(
        "scope: nl0 down -> eu-std at dub after {std_to_dub:?}, eu-premium at dub after {premium_to_dub:?}"
    );
    let (Some(std_to_dub), Some(premium_to_dub)) = (std_to_dub, premium_to_dub) else {
        panic!(
            "after ams's link went down: eu-std at dub {std_to_dub:?}, eu-premium {premium_to_dub:?}"
        );
    };

    // dub's too: eu-premium to nyc; eu-std stays in Europe, so nowhere.
    std::thread::sleep(Duration::from_millis(300));
    let down_ie = Instant::now();
    lab.ip(&edge, &["link", "set", "ie0", "down"]);
    let premium_to_nyc = first_arrival(nyc, false, down_ie, Duration::from_secs(5));
    println!("scope: ie0 down -> eu-premium at nyc after {premium_to_nyc:?}");
    std::thread::sleep(Duration::from_millis(500));
    let sent = sender.finish();
    let std_at_nyc = count_since(nyc, true, down_ie);
    let lookups = (
        edged.ctl_ok(&["prefix", "lookup", STD_DST]),
        edged.ctl_ok(&["prefix", "lookup", PREMIUM_DST]),
    );
    let pops = edged.ctl_ok(&["pop", "list"]);
    println!(
        "scope: sent {sent} frames per stream; at ams {}, dub {}, nyc {} (eu-std at nyc: {std_at_nyc})",
        ams.lock().unwrap().len(),
        dub.lock().unwrap().len(),
        nyc.lock().unwrap().len()
    );
    let premium_to_nyc =
        premium_to_nyc.expect("eu-premium (global) reaches nyc after ams and dub went down");
    assert_eq!(std_at_nyc, 0, "eu-std (scope continent) must not reach nyc");
    assert_eq!(
        lookups.0["toward_customer"],
        json!([{"pop": "none (to the kernel)", "slots": 1021, "share": 1.0}]),
        "{}",
        lookups.0
    );
    assert_eq!(
        lookups.1["toward_customer"],
        json!([{"pop": "nyc", "slots": 1021, "share": 1.0}]),
        "{}",
        lookups.1
    );
    for p in ["ams", "dub"] {
        let row = pops
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == p)
            .unwrap_or_else(|| panic!("{pops}"));
        assert!(
            row["health"]["down_reason"]
                .as_str()
                .is_some_and(|r| r.contains("no carrier")),
            "{row}"
        );
    }

    // Counted exactly now that nothing moves: M frames each.
    const M: u32 = 100;
    let before = edged.ctl_ok(&["stats"]);
    let t = Instant::now();
    let port = RawPort::open(&src, "eth0");
    for seq in 0..M {
        port.send(&scope_frame(STD_DST, 100_000 + seq));
        port.send(&scope_frame(PREMIUM_DST, 100_000 + seq));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = edged.ctl_ok(&["stats"]);
    let d = |g: &str, n: &str| counter(&after, g, n) - counter(&before, g, n);
    assert_eq!(
        (
            count_since(nyc, false, t),
            count_since(nyc, true, t),
            count_since(ams, true, t) + count_since(dub, true, t)
        ),
        (M as usize, 0, 0),
        "eu-premium at nyc, eu-std nowhere"
    );
    assert_eq!(
        (
            d("reasons", "no_next_hop"),
            d("reasons", "policy"),
            d("actions", "pass")
        ),
        (u64::from(M), u64::from(M), u64::from(M)),
        "{after}"
    );

    // Live prefixes are held to the same scope.
    let o = edged.ctl(&[
        "prefix",
        "add",
        "203.0.113.64/26",
        "--registration",
        "eu-std",
        "--pop",
        "nyc",
    ]);
    let said = format!("{}{}", o.json, o.stderr);
    println!(
        "scope: live eu-std prefix toward nyc: exit {:?}: {said}",
        o.code
    );
    assert!(
        o.code.is_some_and(|c| c != 0)
            && said.contains("nyc")
            && said.contains("outside the continent"),
        "{o:?}"
    );
    let o = edged.ctl(&[
        "prefix",
        "add",
        "203.0.113.64/26",
        "--registration",
        "eu-premium",
        "--pop",
        "nyc",
    ]);
    assert_eq!(o.code, Some(0), "a global registration may use nyc: {o:?}");
    edged.ctl_ok(&["prefix", "del", "203.0.113.64/26"]);

    // The links come back: a PoP without a probe is up at once.
    let sender = Sender::start(&src);
    std::thread::sleep(Duration::from_millis(200));
    let up_ie = Instant::now();
    lab.ip(&edge, &["link", "set", "ie0", "up"]);
    let back_std = first_arrival(dub, true, up_ie, Duration::from_secs(5));
    let back_premium = first_arrival(dub, false, up_ie, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let up_nl = Instant::now();
    lab.ip(&edge, &["link", "set", "nl0", "up"]);
    let home_std = first_arrival(ams, true, up_nl, Duration::from_secs(5));
    let home_premium = first_arrival(ams, false, up_nl, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let sent2 = sender.finish();
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    for r in receivers {
        r.join().unwrap();
    }
    println!(
        "scope: carrier back ({sent2} frames per stream): ie0 up -> at dub: eu-std {back_std:?}, eu-premium {back_premium:?}; nl0 up -> at ams: eu-std {home_std:?}, eu-premium {home_premium:?}"
    );
    println!(
        "scope failover times: nl0 down -> dub: eu-std {:.1} ms, eu-premium {:.1} ms; ie0 down -> nyc: eu-premium {:.1} ms",
        std_to_dub.as_secs_f64() * 1e3,
        premium_to_dub.as_secs_f64() * 1e3,
        premium_to_nyc.as_secs_f64() * 1e3
    );
    assert!(
        std_to_dub.max(premium_to_dub).max(premium_to_nyc) < Duration::from_secs(2),
        "a carrier loss takes a PoP down at once"
    );
    for (what, t) in [
        ("eu-std back at dub", back_std),
        ("eu-premium back at dub", back_premium),
        ("eu-std back at ams", home_std),
        ("eu-premium back at ams", home_premium),
    ] {
        assert!(
            t.is_some_and(|t| t < Duration::from_secs(3)),
            "{what}: {t:?} (an unprobed PoP is up as soon as its link runs again)"
        );
    }
    drop(edged);
}
