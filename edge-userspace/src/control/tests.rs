//! The protocol's types: requests and every reply round-trip through JSON,
//! versions are checked both ways, the replies keep the shapes of the views
//! they come from, and docs/protocol.md's examples are what the types say.

use std::{collections::BTreeMap, fmt::Debug, sync::Arc};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::*;
use crate::{config::PrefixSpec, desired};

/// Serialize → deserialize gives the value back, and so does the wire
/// envelope around it.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug + Clone>(v: &T) {
    let text = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(&back, v, "{text}");
    let reply = Response::ok(v.clone());
    let line = serde_json::to_string(&reply).unwrap();
    let back: Response<T> = decode_reply(&line).unwrap_or_else(|e| panic!("{line}: {e:#}"));
    assert_eq!(back, reply, "{line}");
}

fn share(pop: Option<&str>, slots: u64) -> Share {
    Share {
        pop: pop.map(str::to_string),
        share: slots as f64 / 4096.0,
        slots,
    }
}

fn status() -> Status {
    let fill = |used, limit| Fill { limit, used };
    Status {
        backbone_exit: Some("bb-a".into()),
        bmp: Some(Bmp {
            held: vec![crate::analytics::hold::Held {
                ports: vec!["peer0".into()],
                prefix: "192.0.2.0/25".parse().unwrap(),
                registration: "contoso".into(),
                since: 1764688012.75,
            }],
            listen: Some("127.0.0.1:11019".into()),
            totals: Default::default(),
        }),
        config: "/etc/edge/edge.toml".into(),
        default_action: "pass".into(),
        drained: vec!["pop-b".into()],
        generation: 7,
        interface_events: BTreeMap::from([(
            "bb0".to_string(),
            BTreeMap::from([("vanished".to_string(), 1), ("returned".to_string(), 1)]),
        )]),
        link_repairs: LinkRepairs {
            recent: vec![LinkRepair {
                found: "its link pin /sys/fs/bpf/edge/link_peer0 is gone, and XDP with it".into(),
                port: "peer0".into(),
                time: 1_700_000_000.5,
            }],
            total: 1,
        },
        maps: Maps {
            policies: fill(3, 256),
            pops: fill(2, 256),
            ports: fill(5, 64),
            prefixes_v4: fill(4, 1_048_576),
            prefixes_v6: fill(0, 262_144),
        },
        pending_restart: vec!["pin_path".into()],
        pid: 4242,
        pin_path: "/sys/fs/bpf/edge".into(),
        pins: Pins {
            detail: "edged runs in PID 1's mount namespace; bpffs was mounted already".into(),
            scope: "shared".into(),
        },
        policies: 3,
        pops: 2,
        ports: vec![Port {
            absent: false,
            domain: "public".into(),
            id: 0,
            ifindex: 3,
            interface: "peer0".into(),
            name: "peer0".into(),
            role: "peering".into(),
            vlan: vec![],
        }],
        prefixes: PrefixCounts {
            live: 1,
            removed_live: 0,
            total: 4,
        },
        routes: Routes {
            martians: 0,
            resyncs: 1,
            routes: 0,
            skipped: 0,
        },
        socket_path: "/run/edge/edged.sock".into(),
        state_path: "/var/lib/edge/state.json".into(),
        transit_exit: None,
        uptime_seconds: 3600,
        version: "0.1.0".into(),
        veth_peers: vec![VethPeer {
            edged_pass: false,
            gro: Some(false),
            netns: Some("lab-pop".into()),
            peer: Some("eth0".into()),
            port: "peer0".into(),
            reason: "the peer eth0 (netns lab-pop) has no XDP program in native mode and GRO off"
                .into(),
            receives: Some(false),
            up: Some(true),
            xdp: Some("none".into()),
        }],
        warnings: vec!["veth peer0: the peer eth0 (netns lab-pop) drops".into()],
    }
}

fn stats() -> Stats {
    let count = |packets, bytes| Count { bytes, packets };
    Stats {
        actions: [("backbone".to_string(), count(10, 1500))].into(),
        generation: 7,
        pops: vec![PopCount {
            bytes: 1500,
            packets: 10,
            pop: "pop-a".into(),
        }],
        ports: vec![PortCount {
            bytes: 1500,
            domain: "public".into(),
            packets: 10,
            port: "peer0".into(),
            role: "peering".into(),
        }],
        prefixes: vec![PrefixCount {
            bytes: 1500,
            packets: 10,
            prefix: "192.0.2.0/25".parse().unwrap(),
            registration: "contoso".into(),
            shared: false,
            source: "config".into(),
        }],
        reasons: [("policy".to_string(), count(10, 1500))].into(),
        shared: Some(SharedCount {
            bytes: 300,
            packets: 2,
            prefixes: 934_465,
        }),
    }
}

fn prefix(dscp: Option<u8>, policy: Option<&str>) -> Prefix {
    Prefix {
        counter_slot: 1,
        dscp,
        policy: policy.map(str::to_string),
        preference: "microsoft".into(),
        prefix: "2001:db8:c::/48".parse().unwrap(),
        protect: vec!["peer0".into()],
        registration: "contoso".into(),
        source: "route table 100".into(),
    }
}

fn pop(drained: bool) -> Pop {
    Pop {
        domain: "public".into(),
        drained,
        encap: vec!["vlan 100".into()],
        health: Health {
            down_reason: None,
            loss: 0.25,
            min_rtt_ms: Some(1.5),
            pop: "pop-a".into(),
            probes: 12,
            rtt_ms: None,
            since_seconds: Some(30.125),
            state: "up".into(),
            up: !drained,
        },
        id: 1,
        interface: "bb-a".into(),
        mac: "198.51.100.2 (02:00:00:00:0a:01)".into(),
        mtu: Some(1500),
        name: "pop-a".into(),
        port: None,
        probe: Some("icmp 198.51.100.2 every 1s".into()),
        region: None,
        vlan: "keep".into(),
    }
}

fn policy() -> Policy {
    Policy {
        domain: "public".into(),
        members: vec![Member {
            member: "pop:pop-a".into(),
            priority: 0,
            up: true,
            weight: 1,
        }],
        method: "nearest".into(),
        name: "contoso-nearest".into(),
        tables: vec![Table {
            fallback: Some("transit".into()),
            id: 2,
            key: "contoso-nearest".into(),
            shares: vec![("pop-a".into(), 4096)],
        }],
    }
}

fn registered(internet: bool) -> Lookup {
    Lookup::Registered(Registered {
        address: "192.0.2.1".parse().unwrap(),
        counter_slot: 1,
        domain: "public".into(),
        dscp: (!internet).then_some(46),
        from_customer: Some("pop:bb-a".into()),
        from_customer_pops: vec![share(Some("bb-a"), 1021)],
        policy: Some(
            if internet {
                "pop:tr-a"
            } else {
                "contoso-nearest"
            }
            .into(),
        ),
        preference: if internet { "internet" } else { "microsoft" }.into(),
        prefix: Some("192.0.2.0/25".parse().unwrap()),
        protect: vec![],
        registered: true,
        registration: Some("contoso".into()),
        source: Some("config".into()),
        toward_customer: vec![share(Some("pop-a"), 2048), share(None, 2048)],
    })
}

#[test]
fn every_reply_round_trips() {
    round_trip(&status());
    round_trip(&stats());
    round_trip(&vec![prefix(None, None), prefix(Some(46), Some("p"))]);
    round_trip(&prefix(Some(0), None));
    round_trip(&registered(false));
    round_trip(&registered(true));
    round_trip(&Lookup::Unregistered(Unregistered {
        address: "2001:db8::1".parse().unwrap(),
        default_action: "pass".into(),
        domain: "public".into(),
        registered: false,
    }));
    round_trip(&Changed {
        changes: Changes {
            removed: 1,
            written: 2,
        },
        pending_restart: Vec::new(),
        cleared: Vec::new(),
    });
    round_trip(&Changed {
        changes: Changes {
            removed: 0,
            written: 0,
        },
        pending_restart: vec!["pin_path".into(), "limits.prefixes_v4".into()],
        cleared: vec!["192.0.2.0/24".parse().unwrap()],
    });
    round_trip(&vec![pop(false), pop(true)]);
    round_trip(&vec![policy()]);
    round_trip(&PolicyShow {
        first_prefixes: vec!["192.0.2.0/25".into()],
        policy: policy(),
        prefixes: 1,
        slots: 4096,
        table: vec![share(Some("pop-a"), 4096)],
        tables: vec![KernelTable {
            fallback: None,
            id: 2,
            key: "contoso-nearest".into(),
            table: vec![share(Some("pop-a"), 4096)],
        }],
    });
    round_trip(&Events {
        events: vec![Event {
            kind: "pop".into(),
            message: "pop-b down".into(),
            time: 1_764_000_000.5,
        }],
        received: 3,
    });
    round_trip(&Latency {
        pops: vec![
            PopLatency {
                max_ms: Some(2.5),
                min_ms: Some(0.75),
                p50_ms: Some(1.0),
                p90_ms: Some(2.0),
                p99_ms: Some(2.5),
                pop: "pop-a".into(),
                samples: 4,
            },
            PopLatency {
                max_ms: None,
                min_ms: None,
                p50_ms: None,
                p90_ms: None,
                p99_ms: None,
                pop: "pop-b".into(),
                samples: 0,
            },
        ],
        window_seconds: 300,
    });
    round_trip(&TornDown {
        torn_down: "/sys/fs/bpf/edge".into(),
    });
    // An error reply: `data` is null, whatever the verb's type.
    let e: Response<Status> = Response::error(ErrorKind::NotFound, "no PoP named \"x\"");
    let line = serde_json::to_string(&e).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        json!({"protocol": 1, "ok": false, "error": "no PoP named \"x\"", "kind": "not_found", "data": null})
    );
    assert_eq!(decode_reply::<Status>(&line).unwrap(), e);
}

/// What edged sends for a verb is what the verb's own type reads.
#[test]
fn the_reply_enum_serializes_as_the_verbs_type() {
    let pairs: Vec<(Reply, Value)> = vec![
        (
            Reply::Status(Box::new(status())),
            serde_json::to_value(status()).unwrap(),
        ),
        (
            Reply::Stats(stats()),
            serde_json::to_value(stats()).unwrap(),
        ),
        (
            Reply::Lookup(Box::new(registered(true))),
            serde_json::to_value(registered(true)).unwrap(),
        ),
    ];
    for (reply, want) in pairs {
        assert_eq!(serde_json::to_value(&reply).unwrap(), want);
    }
}

#[test]
fn requests_round_trip_and_bad_ones_are_errors() {
    let r = Request::PrefixAdd {
        spec: PrefixSpec {
            prefix: "198.51.100.0/24".into(),
            pop: Some("ams".into()),
            ..PrefixSpec::default()
        },
    };
    let line = encode(&r);
    assert_eq!(decode(&line).unwrap(), r);
    assert!(line.starts_with(br#"{"protocol":1,"command":"prefix_add","#));
    assert_eq!(
        decode(br#"{"protocol":1,"command":"pop_drain","pop":"ams"}"#).unwrap(),
        Request::PopDrain { pop: "ams".into() }
    );
    for bad in [
        &b"{"[..],
        b"null",
        b"[1]",
        b"{\"protocol\":1,\"command\":\"rm_rf\"}",
        b"{\"protocol\":1,\"command\":\"prefix_del\",\"prefix\":\"192.0.2.1/24x\"}",
        b"{\"protocol\":1,\"command\":\"status\",\"extra\":1}",
        b"{\"protocol\":1,\"command\":\"pop_drain\",\"pop\":\"a\",\"extra\":1}",
        b"\xff\xfe",
    ] {
        let e = decode(bad).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    }
    let e = decode(&vec![b' '; MAX_REQUEST + 1]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
}

/// edged's side: a request without the version, or with another, gets kind
/// `version` and a message naming the versions, whatever else it says.
#[test]
fn edged_refuses_an_unknown_protocol_version() {
    for (line, says) in [
        (&br#"{"command":"status"}"#[..], "has no \"protocol\" field"),
        (br#"{"command":"rm_rf"}"#, "has no \"protocol\" field"),
        (br#"{"protocol":2,"command":"status"}"#, "speaks protocol 2"),
        (br#"{"protocol":0,"command":"status"}"#, "speaks protocol 0"),
        (
            br#"{"protocol":"1","command":"status"}"#,
            "speaks protocol \"1\"",
        ),
        (
            br#"{"protocol":null,"command":"status"}"#,
            "speaks protocol null",
        ),
        (
            br#"{"protocol":1.5,"command":"status"}"#,
            "speaks protocol 1.5",
        ),
    ] {
        let e = decode(line).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Version, "{e}");
        assert!(e.message.contains(says), "{e}");
        assert!(e.message.contains("edged speaks protocol 1"), "{e}");
        let reply: Response = e.into();
        let v = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            (&v["protocol"], &v["ok"], &v["kind"]),
            (&json!(1), &json!(false), &json!("version"))
        );
    }
}

/// edgectl's side: a reply without the version, or with another, is an
/// error naming both versions (and what an older edged said).
#[test]
fn edgectl_refuses_an_unknown_protocol_version() {
    let newer = r#"{"protocol":2,"ok":true,"data":{"changes":{"removed":0,"written":1}}}"#;
    let e = format!("{:#}", decode_reply::<Changed>(newer).unwrap_err());
    assert!(
        e.contains("edged speaks protocol 2; this edgectl speaks protocol 1"),
        "{e}"
    );
    // An edged from before the version refuses the field it does not know.
    let older = r#"{"ok":false,"error":"malformed request: unknown field `protocol`","kind":"invalid","data":null}"#;
    let e = format!("{:#}", decode_reply::<Changed>(older).unwrap_err());
    assert!(e.contains("no protocol version"), "{e}");
    assert!(e.contains("this edgectl speaks"), "{e}");
    assert!(e.contains("unknown field `protocol`"), "{e}");
    let e = format!("{:#}", decode_reply::<Changed>("not json").unwrap_err());
    assert!(e.contains("not valid JSON"), "{e}");
    // The right version but the wrong shape: an error, not a panic.
    let wrong = r#"{"protocol":1,"ok":true,"data":{"changes":1}}"#;
    assert!(decode_reply::<Changed>(wrong).is_err());
}

/// The reply types keep the JSON the views had when edged sent them as
/// they are (`edgectl --json` output and scripts depend on it).
#[test]
fn replies_keep_the_shape_of_the_views() {
    let p = desired::PrefixView {
        prefix: "192.0.2.0/25".parse().unwrap(),
        registration: "contoso".into(),
        preference: "microsoft",
        policy: Some(Arc::from("contoso-nearest")),
        dscp: Some(46),
        protect: vec!["peer0".into()],
        source: crate::plan::Origin::Route { table: 100 },
        counter_slot: 3,
    };
    assert_eq!(
        serde_json::to_value(Prefix::from(&p)).unwrap(),
        serde_json::to_value(&p).unwrap()
    );
    let pop = desired::PopView {
        id: 1,
        name: "pop-a".into(),
        interface: "bb-a".into(),
        port: None,
        vlan: "keep".into(),
        domain: "public".into(),
        mac: "198.51.100.2 (02:00:00:00:0a:01)".into(),
        encap: vec!["vlan 100".into()],
        region: Some("eu".into()),
        probe: None,
        drained: false,
        mtu: 1500,
    };
    let health = desired::PopHealthView {
        pop: "pop-a".into(),
        state: "up",
        up: true,
        down_reason: None,
        since_seconds: Some(2.5),
        rtt_ms: Some(1.25),
        min_rtt_ms: None,
        loss: 0.0,
        probes: 9,
        rtt_histogram: Default::default(),
    };
    let mut old = serde_json::to_value(&pop).unwrap();
    old["health"] = serde_json::to_value(&health).unwrap();
    assert_eq!(serde_json::to_value(Pop::new(&pop, &health)).unwrap(), old);
    let policy = desired::PolicyView {
        name: "contoso-nearest".into(),
        domain: "public".into(),
        method: "nearest",
        members: vec![desired::MemberView {
            member: "pop:pop-a".into(),
            weight: 2,
            priority: 1,
            up: false,
        }],
        tables: vec![desired::TableView {
            id: 4,
            key: "contoso-nearest eu".into(),
            shares: vec![("pop-a".into(), 4096)],
            fallback: Some("transit"),
        }],
    };
    assert_eq!(
        serde_json::to_value(Policy::from(&policy)).unwrap(),
        serde_json::to_value(&policy).unwrap()
    );
    let port = desired::PortView {
        id: 0,
        name: "peer0".into(),
        interface: "peer0".into(),
        vlan: vec![],
        domain: "public".into(),
        role: "peering",
        ifindex: 7,
        absent: false,
    };
    // The reply adds `absent` (ifindex 0: the interface is gone).
    let mut want = serde_json::to_value(&port).unwrap();
    want["absent"] = false.into();
    assert_eq!(serde_json::to_value(Port::from(&port)).unwrap(), want);
    let routes = desired::RoutesView {
        routes: 3,
        resyncs: 1,
        skipped: 2,
        martians: 1,
    };
    assert_eq!(
        serde_json::to_value(Routes::from(routes)).unwrap(),
        serde_json::to_value(routes).unwrap()
    );
}

/// The fenced examples in docs/protocol.md: every ```json block is tagged
/// `request`, `refused` (a request edged refuses with kind `version`) or
/// `reply TYPE`; a request decodes and survives encode → decode, a reply
/// decodes as its type and re-encodes to the same JSON, and every verb and
/// reply type has an example.
#[test]
fn the_protocol_doc_examples_match_the_types() {
    fn same<T: Serialize + DeserializeOwned>(block: &str) -> Result<(), String> {
        let want: Value = serde_json::from_str(block).map_err(|e| format!("not JSON: {e}"))?;
        let typed: Response<T> = decode_reply(block).map_err(|e| format!("{e:#}"))?;
        let got = serde_json::to_value(&typed).unwrap();
        (got == want)
            .then_some(())
            .ok_or_else(|| format!("re-encodes as {got}"))
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut verbs = std::collections::BTreeSet::new();
    let mut replies = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    let mut blocks = 0;
    let mut lines = doc.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```json") else {
            continue;
        };
        let block: String = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| *l != "```")
            .collect::<Vec<_>>()
            .join("\n");
        blocks += 1;
        let tag: Vec<&str> = info.split_whitespace().collect();
        let checked = match tag[..] {
            ["request"] => match decode(block.as_bytes()) {
                Ok(request) => {
                    let v = serde_json::to_value(&request).unwrap();
                    verbs.insert(v["command"].as_str().unwrap().to_string());
                    // Optional fields are optional: the request, not its
                    // JSON, survives the round trip.
                    let again = decode(&encode(&request)).map_err(|e| e.to_string());
                    (again.as_ref() == Ok(&request))
                        .then_some(())
                        .ok_or_else(|| format!("re-encoded, decodes as {again:?}"))
                }
                Err(e) => Err(e.to_string()),
            },
            ["refused"] => match decode(block.as_bytes()) {
                Err(e) if e.kind == ErrorKind::Version => Ok(()),
                other => Err(format!("not refused for its version: {other:?}")),
            },
            ["reply", ty] => {
                replies.insert(ty.to_string());
                match ty {
                    "Status" => same::<Status>(&block),
                    "Stats" => same::<Stats>(&block),
                    "PrefixList" => same::<PrefixList>(&block),
                    "Prefix" => same::<Prefix>(&block),
                    "Lookup" => same::<Lookup>(&block),
                    "Changed" => same::<Changed>(&block),
                    "PopList" => same::<PopList>(&block),
                    "PolicyList" => same::<PolicyList>(&block),
                    "PolicyShow" => same::<PolicyShow>(&block),
                    "Events" => same::<Events>(&block),
                    "Latency" => same::<Latency>(&block),
                    "Customers" => same::<Customers>(&block),
                    "TornDown" => same::<TornDown>(&block),
                    "LiveList" => same::<LiveList>(&block),
                    "ConfigShow" => same::<ConfigShow>(&block),
                    "RoutePaths" => same::<RoutePaths>(&block),
                    "Anomalies" => same::<Anomalies>(&block),
                    "error" => same::<Value>(&block).and_then(|()| {
                        // Its kind is one the types know.
                        serde_json::from_str::<Response<Value>>(&block)
                            .map_err(|e| format!("not an error reply: {e}"))?;
                        let v: Value = serde_json::from_str(&block).unwrap();
                        (v["ok"] == false && v["data"].is_null())
                            .then_some(())
                            .ok_or_else(|| "an error reply has ok false, data null".into())
                    }),
                    _ => Err(format!("unknown reply type {ty}")),
                }
            }
            ["batch-item"] => serde_json::from_str::<BatchItem>(&block)
                .map_err(|e| format!("not a batch item: {e}"))
                .and_then(|item| {
                    let want: Value = serde_json::from_str(&block).unwrap();
                    (serde_json::to_value(&item).unwrap() == want)
                        .then_some(())
                        .ok_or_else(|| "re-encodes otherwise".into())
                }),
            _ => Err(format!("untagged json block ({info:?})")),
        };
        if let Err(e) = checked {
            problems.push(format!("docs/protocol.md:{}: {e}", n + 1));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(blocks > 0, "no examples found");
    let all_verbs = [
        "status",
        "stats",
        "prefix_add",
        "prefix_del",
        "prefix_batch",
        "prefix_list",
        "prefix_show",
        "prefix_lookup",
        "pop_list",
        "pop_drain",
        "pop_undrain",
        "policy_list",
        "policy_show",
        "events",
        "report_latency",
        "report_customers",
        "config_reload",
        "config_show",
        "live_list",
        "live_clear",
        "teardown",
        "routes_show",
        "routes_anomalies",
    ];
    let missing: Vec<_> = all_verbs.iter().filter(|v| !verbs.contains(**v)).collect();
    assert!(
        missing.is_empty(),
        "verbs without a request example: {missing:?}"
    );
    let all_replies = [
        "Status",
        "Stats",
        "PrefixList",
        "Prefix",
        "Lookup",
        "Changed",
        "PopList",
        "PolicyList",
        "PolicyShow",
        "Events",
        "Latency",
        "Customers",
        "LiveList",
        "ConfigShow",
        "TornDown",
        "RoutePaths",
        "Anomalies",
        "error",
    ];
    let missing: Vec<_> = all_replies
        .iter()
        .filter(|v| !replies.contains(**v))
        .collect();
    assert!(
        missing.is_empty(),
        "reply types without an example: {missing:?}"
    );
}

/// A prefix list straight from the view is the JSON of the list of
/// `Prefix` made from it, whole or in pieces, and decodes as one.
#[test]
fn prefix_rows_are_a_prefix_list() {
    let row = |net: &str, slot| desired::PrefixView {
        prefix: net.parse().unwrap(),
        registration: Arc::from("contoso"),
        preference: "microsoft",
        policy: Some(Arc::from("eu")),
        dscp: Some(46),
        protect: vec!["peer0".into()],
        source: crate::plan::Origin::Route { table: 100 },
        counter_slot: slot,
    };
    let view = Arc::new(desired::View {
        prefixes: Arc::new(
            (0..500)
                .map(|i| row(&format!("10.{}.{}.0/24", i / 256, i % 256), i))
                .collect(),
        ),
        ..desired::View::default()
    });
    for rows in [None, Some(vec![3, 1, 499]), Some(vec![])] {
        let r = PrefixRows {
            view: view.clone(),
            rows: rows.clone(),
        };
        let list: PrefixList = r.iter().map(Prefix::from).collect();
        let whole = serde_json::to_vec(&r).unwrap();
        assert_eq!(whole, serde_json::to_vec(&list).unwrap());
        let pieces: Vec<Vec<u8>> = r.pieces(1000).collect();
        assert!(rows.is_some() || pieces.len() > 10, "{}", pieces.len());
        assert_eq!(pieces.concat(), whole);
        let reply = serde_json::to_string(&Response::ok(Reply::PrefixRows(r))).unwrap();
        let back: Response<PrefixList> = decode_reply(&reply).unwrap();
        assert_eq!(back.data.unwrap(), list);
    }
}

/// `prefix_list`'s rows, written by hand, are the bytes serde writes for
/// them: escapes, unicode, every source, DSCP and protection.
#[test]
fn prefix_rows_encode_as_serde_does() {
    let view = |registration: &str, source, dscp, protect: Vec<String>, policy: Option<&str>| {
        desired::PrefixView {
            prefix: "2001:db8:c::/48".parse().unwrap(),
            registration: registration.into(),
            preference: "internet",
            policy: policy.map(Into::into),
            dscp,
            protect,
            source,
            counter_slot: 65535,
        }
    };
    let rows = vec![
        view("contoso", crate::plan::Origin::Config, None, vec![], None),
        view(
            "quote \" back\\slash \u{1} tab\t é 🙂",
            crate::plan::Origin::Live,
            Some(46),
            vec!["peer0".into(), "pe\"er1".into()],
            Some("pop:a"),
        ),
        view(
            "r",
            crate::plan::Origin::Route {
                table: 4_000_000_000,
            },
            Some(0),
            vec!["p".into()],
            Some("weird\npolicy"),
        ),
        desired::PrefixView {
            prefix: "198.18.0.1/32".parse().unwrap(),
            ..view("x", crate::plan::Origin::Config, None, vec![], None)
        },
    ];
    let r = PrefixRows {
        view: Arc::new(desired::View {
            prefixes: Arc::new(rows),
            ..Default::default()
        }),
        rows: None,
    };
    let by_hand: Vec<u8> = r.pieces(16).flatten().collect();
    let by_serde = serde_json::to_vec(&r.iter().map(PrefixRef::from).collect::<Vec<_>>()).unwrap();
    assert_eq!(
        String::from_utf8(by_hand).unwrap(),
        String::from_utf8(by_serde).unwrap()
    );
}

/// [`write_net`] writes what `Display` writes: random addresses with runs
/// of zero groups of every length and place, every prefix length.
#[test]
fn networks_are_written_as_display_writes_them() {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let check = |net: ipnet::IpNet| {
        let mut out = Vec::new();
        write_net(&mut out, &net);
        assert_eq!(String::from_utf8(out).unwrap(), net.to_string());
    };
    for _ in 0..200_000 {
        let mut groups = [0u16; 8];
        for g in &mut groups {
            *g = match rng.random_range(0..4) {
                0 | 1 => 0,
                2 => rng.random_range(0..16),
                _ => rng.random(),
            };
        }
        let len = rng.random_range(0..=128);
        check(ipnet::IpNet::new(std::net::Ipv6Addr::from(groups).into(), len).unwrap());
        let v4: u32 = rng.random();
        check(
            ipnet::IpNet::new(
                std::net::Ipv4Addr::from(v4).into(),
                rng.random_range(0..=32),
            )
            .unwrap(),
        );
    }
    for text in [
        "::/0",
        "::1/128",
        "::ffff:192.0.2.1/128",
        "1::/16",
        "::2:0:0:3/64",
        "1:0:0:2::3/64",
        "0.0.0.0/0",
    ] {
        check(text.parse().unwrap());
    }
}
