use std::collections::BTreeMap;

use edge_common::{flow_hash_v4, policy_slot};

use super::*;
use crate::config::parse;

const BASE: &str = r#"
[forwarding]
backbone_exit = "core"
transit_exit = "isp"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "tr0"
role = "transit"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:0a:00"

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:0a:01"

[[pops]]
name = "ams"
interface = "bb0"
mac = "02:00:00:00:0a:02"
region = "world > europe > nl"

[[pops]]
name = "dub"
interface = "bb0"
mac = "02:00:00:00:0a:03"
region = "world > europe > ie"

[[pops]]
name = "nyc"
interface = "bb0"
mac = "02:00:00:00:0a:04"
region = "world > america > us"

[[pops]]
name = "lon"
interface = "bb0"
mac = "02:00:00:00:0a:05"
region = "world > europe > gb"
"#;
const CORE: u16 = 0;
const ISP: u16 = 1;
const AMS: u16 = 2;
const DUB: u16 = 3;
const NYC: u16 = 4;
const LON: u16 = 5;

fn plan(rest: &str) -> Plan {
    parse(&format!("{BASE}{rest}")).unwrap_or_else(|e| panic!("{e}"))
}

/// Health: every PoP up except `down`, with the given RTTs in ms.
fn health(down: &[u16], rtts: &[(u16, u64)]) -> impl Fn(u32) -> PopView {
    let down = down.to_vec();
    let rtts: BTreeMap<u16, u64> = rtts.iter().copied().collect();
    move |p| PopView {
        up: !down.contains(&(p as u16)),
        rtt: rtts.get(&(p as u16)).map(|&ms| Duration::from_millis(ms)),
    }
}

fn run(plan: &Plan, h: &impl Fn(u32) -> PopView) -> (Layout, Resolved) {
    let layout = Layout::new(plan);
    let r = resolve(plan, &layout, h, &Choices::default());
    (layout, r)
}

fn key(policy: &str) -> TableKey {
    TableKey {
        policy: policy.into(),
        region: None,
        subnet_member: None,
        exit: None,
    }
}

fn counts(t: &PolicyTable) -> BTreeMap<u16, usize> {
    let mut c = BTreeMap::new();
    for &p in &t.pops[..POLICY_SLOTS] {
        *c.entry(p).or_default() += 1;
    }
    c
}

fn only(t: &Table) -> u16 {
    let c = counts(&t.pops);
    assert_eq!(c.len(), 1, "{c:?}");
    *c.keys().next().unwrap()
}

const PRIORITY: &str = r#"
[[policies]]
name = "eu"
method = "priority"
members = [{ pop = "ams", priority = 1 }, { pop = "dub", priority = 2 }, { pop = "lon", priority = 3 }]

[[policies]]
name = "us"
method = "priority"
members = [{ pop = "nyc" }]

[[policies]]
name = "us-pass"
method = "priority"
members = [{ pop = "nyc" }]
fallback = "pass"

[[prefixes]]
prefix = "192.0.2.0/26"
policy = "eu"

[[prefixes]]
prefix = "192.0.2.64/26"
policy = "eu"

[[prefixes]]
prefix = "2001:db8:1::/48"
policy = "eu"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "us"

[[prefixes]]
prefix = "203.0.113.0/24"
policy = "us-pass"
"#;

#[test]
fn priority_fails_over_in_order_and_prefixes_never_move() {
    let plan = plan(PRIORITY);
    let (layout, all_up) = run(&plan, &health(&[], &[]));
    // Three prefixes share one table; every prefix points at its key.
    // The exits have tables of their own (their own fallback).
    let exit = |policy: &str, kind| TableKey {
        exit: Some(kind),
        ..key(policy)
    };
    assert_eq!(
        layout.keys,
        vec![
            key("eu"),
            exit("pop:core", ExitKind::Backbone),
            exit("pop:isp", ExitKind::Transit),
            key("us"),
            key("us-pass")
        ]
    );
    assert_eq!(
        layout.prefix_table,
        vec![Some(0), Some(0), Some(0), Some(3), Some(4)]
    );
    assert!(layout.more_specific.is_empty());
    assert_eq!(only(&all_up.tables[&key("eu")]), AMS);

    let ams_down = resolve(&plan, &layout, &health(&[AMS], &[]), &all_up.choices);
    assert_eq!(only(&ams_down.tables[&key("eu")]), DUB);
    let both = resolve(&plan, &layout, &health(&[AMS, DUB], &[]), &all_up.choices);
    assert_eq!(only(&both.tables[&key("eu")]), LON);
    // A failover rewrites the affected policy's table only; the layout
    // (prefix entries) does not depend on health at all.
    assert_eq!(ams_down.changed(&all_up), vec![&key("eu")]);
    assert!(both.changed(&both).is_empty());
    assert_eq!(Layout::new(&plan), layout);
    assert_eq!(ams_down.in_fallback().count(), 0);
}

#[test]
fn all_down_goes_to_the_fallback_and_is_reported() {
    let plan = plan(PRIORITY);
    let (layout, r) = run(&plan, &health(&[NYC, AMS, DUB, LON], &[]));
    // Default fallback with a transit exit: transit.
    assert_eq!(only(&r.tables[&key("us")]), ISP);
    assert_eq!(only(&r.tables[&key("eu")]), ISP);
    // `pass`: every slot NO_POP (the kernel routes it).
    assert_eq!(only(&r.tables[&key("us-pass")]), NO_POP);
    let reported: Vec<(String, Fallback)> = r
        .in_fallback()
        .map(|(k, f)| (k.policy.clone(), f))
        .collect();
    assert_eq!(
        reported,
        [
            ("eu".into(), Fallback::Transit),
            ("us".into(), Fallback::Transit),
            ("us-pass".into(), Fallback::Pass)
        ]
    );
    // One member back: out of fallback.
    let back = resolve(&plan, &layout, &health(&[AMS, DUB, LON], &[]), &r.choices);
    assert_eq!(only(&back.tables[&key("us")]), NYC);
    assert_eq!(back.tables[&key("us")].fallback, None);
    assert_eq!(back.changed(&r), vec![&key("us"), &key("us-pass")]);
}

#[test]
fn without_a_transit_exit_the_default_fallback_is_pass() {
    let text = format!("{BASE}{PRIORITY}").replace("transit_exit = \"isp\"\n", "");
    let plan = parse(&text).unwrap();
    assert!(plan.policies.iter().all(|p| p.fallback == Fallback::Pass));
    let (_, r) = run(&plan, &health(&[NYC], &[]));
    assert_eq!(only(&r.tables[&key("us")]), NO_POP);
}

fn exit_key(policy: &str, kind: ExitKind) -> TableKey {
    TableKey {
        exit: Some(kind),
        ..key(policy)
    }
}

#[test]
fn an_exit_named_by_a_pop_follows_its_health_and_falls_back_to_the_other_exit() {
    let plan = plan(PRIORITY);
    let backbone = exit_key("pop:core", ExitKind::Backbone);
    let transit = exit_key("pop:isp", ExitKind::Transit);
    let (layout, up) = run(&plan, &health(&[], &[]));
    assert_eq!(
        layout.keys[layout.backbone_table.unwrap() as usize],
        backbone
    );
    assert_eq!(layout.keys[layout.transit_table.unwrap() as usize], transit);
    assert_eq!(only(&up.tables[&backbone]), CORE);
    assert_eq!(only(&up.tables[&transit]), ISP);

    // The backbone exit's PoP down: its default fallback is the transit exit.
    let core_down = resolve(&plan, &layout, &health(&[CORE], &[]), &up.choices);
    assert_eq!(only(&core_down.tables[&backbone]), ISP);
    assert_eq!(
        core_down.tables[&backbone].fallback,
        Some(Fallback::Transit)
    );
    assert_eq!(core_down.changed(&up), vec![&backbone]);

    // Both down: the kernel, never a dead PoP; the transit exit's default
    // fallback is pass.
    let both = resolve(&plan, &layout, &health(&[CORE, ISP], &[]), &up.choices);
    assert_eq!(only(&both.tables[&backbone]), NO_POP);
    assert_eq!(both.tables[&backbone].fallback, Some(Fallback::Pass));
    assert_eq!(only(&both.tables[&transit]), NO_POP);

    // A policy falling back to transit takes the transit exit's table: while
    // the transit PoP is down too, the kernel.
    let all = resolve(
        &plan,
        &layout,
        &health(&[ISP, NYC, AMS, DUB, LON], &[]),
        &up.choices,
    );
    assert_eq!(only(&all.tables[&key("us")]), NO_POP);
    assert_eq!(all.tables[&key("us")].fallback, Some(Fallback::Pass));
    assert_eq!(only(&all.tables[&backbone]), CORE);
}

#[test]
fn an_exit_takes_a_policy_with_its_method_and_its_own_fallback() {
    let text = format!(
        "{BASE}{PRIORITY}{}",
        r#"
[[policies]]
name = "exits"
method = "weighted"
members = [{ pop = "core", weight = 1 }, { pop = "lon", weight = 1 }]
fallback = "transit"
"#
    )
    .replace(
        "transit_exit = \"isp\"\n",
        "transit_exit = \"exits\"\ntransit_exit_fallback = \"backbone\"\nbackbone_exit_fallback = \"pass\"\n",
    )
    .replace("backbone_exit = \"core\"", "backbone_exit = \"pop:isp\"");
    let plan = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let transit = exit_key("exits", ExitKind::Transit);
    let backbone = exit_key("pop:isp", ExitKind::Backbone);
    let (layout, up) = run(&plan, &health(&[], &[]));
    // Weighted 1:1 between core and lon.
    let c = counts(&up.tables[&transit].pops);
    assert_eq!(c.keys().copied().collect::<Vec<_>>(), vec![CORE, LON]);
    assert!(c.values().all(|&n| n > 400), "{c:?}");
    // One member down: all its flows to the other, none elsewhere.
    let lon_down = resolve(&plan, &layout, &health(&[LON], &[]), &up.choices);
    assert_eq!(only(&lon_down.tables[&transit]), CORE);
    // Both down: the exit's fallback (the backbone exit), not the
    // policy's own `transit` (itself).
    let both = resolve(&plan, &layout, &health(&[LON, CORE], &[]), &up.choices);
    assert_eq!(only(&both.tables[&transit]), ISP);
    assert_eq!(both.tables[&transit].fallback, Some(Fallback::Backbone));
    // The backbone exit's fallback is pass.
    let isp_down = resolve(&plan, &layout, &health(&[ISP], &[]), &up.choices);
    assert_eq!(only(&isp_down.tables[&backbone]), NO_POP);
}

const WEIGHTED: &str = r#"
[[policies]]
name = "w"
method = "weighted"
members = [{ pop = "ams", weight = 1 }, { pop = "dub", weight = 2 }, { pop = "lon", weight = 3 }, { pop = "nyc", weight = 4 }]

[[policies]]
name = "mv"
method = "multivalue"
members = [{ pop = "ams", weight = 9 }, { pop = "dub" }, { pop = "lon" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "w"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "mv"
"#;

/// The PoP of each of 100,000 flows (varied source addresses and ports).
fn flows(t: &PolicyTable) -> Vec<u16> {
    (0..100_000u32)
        .map(|i| {
            let src = [192, 0, 2, (i % 251) as u8];
            let ports = u32::from_ne_bytes([(i >> 8) as u8, (i >> 16) as u8, 0x01, 0xbb]);
            t.pops[policy_slot(flow_hash_v4(src, [203, 0, 113, 7], 6, ports))]
        })
        .collect()
}

#[test]
fn weighted_spreads_flows_by_weight_and_a_leaving_member_moves_only_its_share() {
    let plan = plan(WEIGHTED);
    let (layout, before) = run(&plan, &health(&[], &[]));
    let f_before = flows(&before.tables[&key("w")].pops);
    let share = |f: &[u16], pop: u16| f.iter().filter(|&&p| p == pop).count() as f64 / 1e5;
    for (pop, weight) in [(AMS, 1.0), (DUB, 2.0), (LON, 3.0), (NYC, 4.0)] {
        let s = share(&f_before, pop);
        assert!((s - weight / 10.0).abs() < 0.01, "PoP {pop}: {s}");
    }
    // LON (weight 3 of 10) leaves: its 30% of flows move, little else.
    let after = resolve(&plan, &layout, &health(&[LON], &[]), &before.choices);
    let f_after = flows(&after.tables[&key("w")].pops);
    let moved = f_before
        .iter()
        .zip(&f_after)
        .filter(|(a, b)| a != b)
        .count() as f64
        / 1e5;
    let own = share(&f_before, LON);
    println!("weighted: LON held {own:.4} of 100,000 flows; {moved:.4} moved when it left");
    assert!(
        moved >= own && moved < own * 1.2,
        "moved {moved}, own {own}"
    );
    assert_eq!(share(&f_after, LON), 0.0);
    // The others keep their relative weights: 1:2:4 of the whole.
    for (pop, weight) in [(AMS, 1.0), (DUB, 2.0), (NYC, 4.0)] {
        let s = share(&f_after, pop);
        assert!((s - weight / 7.0).abs() < 0.01, "PoP {pop}: {s}");
    }
    // Coming back restores the same table (consistent, not path-dependent).
    let again = resolve(&plan, &layout, &health(&[], &[]), &after.choices);
    assert_eq!(again.tables[&key("w")], before.tables[&key("w")]);
}

#[test]
fn multivalue_spreads_evenly_over_the_healthy_members() {
    let plan = plan(WEIGHTED);
    let (layout, r) = run(&plan, &health(&[], &[]));
    assert_eq!(
        counts(&r.tables[&key("mv")].pops),
        [(AMS, 341), (DUB, 340), (LON, 340)].into(),
        "weights are ignored"
    );
    let r = resolve(&plan, &layout, &health(&[DUB], &[]), &r.choices);
    assert_eq!(
        counts(&r.tables[&key("mv")].pops),
        [(AMS, 511), (LON, 510)].into()
    );
}

const PERFORMANCE: &str = r#"
[[policies]]
name = "fast"
method = "performance"
members = [{ pop = "ams" }, { pop = "dub" }, { pop = "lon" }]

[[policies]]
name = "fast-tight"
method = "performance"
members = [{ pop = "ams" }, { pop = "dub" }]
hysteresis_ms = 0
hysteresis_percent = 0

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "fast"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "fast-tight"
"#;

#[test]
fn performance_takes_the_lowest_rtt_with_hysteresis() {
    let plan = plan(PERFORMANCE);
    let layout = Layout::new(&plan);
    let step = |rtts: &[(u16, u64)], down: &[u16], prev: &Choices| {
        let r = resolve(&plan, &layout, &health(down, rtts), prev);
        (
            only(&r.tables[&key("fast")]),
            only(&r.tables[&key("fast-tight")]),
            r.choices,
        )
    };
    // No RTT yet: priority order.
    let (fast, _, c) = step(&[], &[], &Choices::default());
    assert_eq!(fast, AMS);
    assert_eq!(c.get("fast", None), Some("pop:ams"));
    // First RTTs: the lowest wins at once (the current one has none).
    let (fast, tight, c) = step(&[(AMS, 40), (DUB, 30), (LON, 35)], &[], &c);
    assert_eq!((fast, tight), (DUB, DUB));
    // Noise below max(5 ms, 10 %): LON 1 ms better, then 3 ms; DUB stays.
    let (fast, tight, c) = step(&[(AMS, 40), (DUB, 30), (LON, 29)], &[], &c);
    assert_eq!(fast, DUB, "1 ms better does not move it");
    assert_eq!(tight, DUB, "AMS is slower");
    let (fast, _, c) = step(&[(AMS, 40), (DUB, 30), (LON, 25)], &[], &c);
    assert_eq!(fast, DUB, "exactly 5 ms better does not move it");
    // The percentage counts at larger RTTs: at 100 ms the threshold is
    // 10 ms; 8 ms better stays, 11 ms better moves.
    let (fast, _, c) = step(&[(AMS, 140), (DUB, 100), (LON, 92)], &[], &c);
    assert_eq!(fast, DUB);
    let (fast, _, c) = step(&[(AMS, 140), (DUB, 100), (LON, 89)], &[], &c);
    assert_eq!(fast, LON, "a real improvement moves it");
    assert_eq!(c.get("fast", None), Some("pop:lon"));
    // Without hysteresis any improvement moves.
    let (_, tight, c) = step(&[(AMS, 99), (DUB, 100)], &[], &c);
    assert_eq!(tight, AMS);
    // The chosen member going down moves at once, whatever the RTTs.
    let (fast, _, c) = step(&[(AMS, 140), (DUB, 100), (LON, 89)], &[LON], &c);
    assert_eq!(fast, DUB);
    // And stays there when LON returns only marginally better.
    let (fast, _, _) = step(&[(AMS, 140), (DUB, 100), (LON, 95)], &[], &c);
    assert_eq!(fast, DUB);
}

const GEO: &str = r#"
[[policies]]
name = "geo"
method = "geographic"
members = [{ pop = "ams" }, { pop = "dub" }, { pop = "lon", weight = 3 }, { pop = "nyc" }, { pop = "core", region = "world" }]

[[prefixes]]
prefix = "192.0.2.0/26"
policy = "geo"
region = "world > europe > ie"

[[prefixes]]
prefix = "192.0.2.64/26"
policy = "geo"
region = "World > Europe > IE"

[[prefixes]]
prefix = "192.0.2.128/26"
policy = "geo"
region = "world > europe > fr"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "geo"
region = "world > asia > jp"

[[prefixes]]
prefix = "203.0.113.0/24"
policy = "geo"
"#;

fn region_key(policy: &str, region: &str) -> TableKey {
    TableKey {
        policy: policy.into(),
        region: Some(if region.is_empty() {
            Region::default()
        } else {
            Region::parse(region).unwrap()
        }),
        subnet_member: None,
        exit: None,
    }
}

#[test]
fn geographic_takes_the_most_specific_region_and_falls_back_up() {
    let plan = plan(GEO);
    let ie = region_key("geo", "world > europe > ie");
    let fr = region_key("geo", "world > europe > fr");
    let jp = region_key("geo", "world > asia > jp");
    let root = region_key("geo", "");
    let (layout, r) = run(&plan, &health(&[], &[]));
    // One table per distinct region (and one per exit); region names are
    // case-insensitive.
    assert_eq!(layout.keys.len(), 6);
    assert_eq!(layout.table_of(0), Some(&ie));
    assert_eq!(layout.table_of(1), Some(&ie));
    assert_eq!(layout.table_of(4), Some(&root));
    // ie has a member: it alone.
    assert_eq!(only(&r.tables[&ie]), DUB);
    // fr has no member: up to europe (ams, dub, lon by weight 1:1:3).
    assert_eq!(
        counts(&r.tables[&fr].pops),
        [(AMS, 204), (DUB, 204), (LON, 613)].into()
    );
    // asia has none, europe is not an ancestor: up to world, everyone.
    assert_eq!(counts(&r.tables[&jp].pops).len(), 5);
    assert_eq!(counts(&r.tables[&root].pops).len(), 5);

    // dub down: ie falls back to europe.
    let r = resolve(&plan, &layout, &health(&[DUB], &[]), &r.choices);
    assert_eq!(counts(&r.tables[&ie].pops), [(AMS, 255), (LON, 766)].into());
    // All of europe down: world (nyc and core).
    let r = resolve(&plan, &layout, &health(&[AMS, DUB, LON], &[]), &r.choices);
    assert_eq!(
        counts(&r.tables[&ie].pops)
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [CORE, NYC]
    );
    assert_eq!(r.tables[&ie], r.tables[&jp]);
    // Everyone down: the fallback.
    let r = resolve(
        &plan,
        &layout,
        &health(&[AMS, DUB, LON, NYC, CORE], &[]),
        &r.choices,
    );
    assert_eq!(only(&r.tables[&ie]), ISP);
    // The four region tables, and the backbone exit (core is down too).
    assert_eq!(r.in_fallback().count(), 5);
}

const SUBNET: &str = r#"
[[policies]]
name = "eu"
method = "priority"
members = [{ pop = "ams" }, { pop = "dub" }]

[[policies]]
name = "sites"
method = "subnet"
members = [
  { pop = "nyc", subnets = ["192.0.2.0/26", "2001:db8:1:100::/56", "10.0.0.0/8"] },
  { policy = "eu", subnets = ["192.0.2.128/25", "198.51.100.0/23"] },
  { pop = "lon", subnets = ["192.0.2.192/27"] },
  { pop = "core" },
]

[[prefixes]]
prefix = "192.0.2.0/24"
registration = "contoso"
policy = "sites"

[[prefixes]]
prefix = "192.0.2.224/27"
registration = "fabrikam"
pop = "ams"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "sites"

[[prefixes]]
prefix = "2001:db8:1::/48"
policy = "sites"
"#;

fn subnet_key(member: &str) -> TableKey {
    TableKey {
        policy: "sites".into(),
        region: None,
        subnet_member: Some(member.into()),
        exit: None,
    }
}

#[test]
fn subnet_expands_into_more_specific_entries_with_derived_tables() {
    let plan = plan(SUBNET);
    let (layout, r) = run(&plan, &health(&[], &[]));
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    let entries: Vec<(usize, IpNet, &TableKey)> = layout
        .more_specific
        .iter()
        .map(|m| (m.prefix, m.net, &layout.keys[m.table as usize]))
        .collect();
    assert_eq!(
        entries,
        vec![
            // Inside 192.0.2.0/24: the mappings, but not inside
            // fabrikam's 192.0.2.224/27 (none is).
            (0, net("192.0.2.0/26"), &subnet_key("pop:nyc")),
            (0, net("192.0.2.128/25"), &subnet_key("policy:eu")),
            (0, net("192.0.2.192/27"), &subnet_key("pop:lon")),
            (3, net("2001:db8:1:100::/56"), &subnet_key("pop:nyc")),
        ]
    );
    // The registered prefixes themselves: the rest of the /24 goes to
    // the fallback member; 198.51.100.0/24 lies inside a mapping.
    assert_eq!(layout.table_of(0), Some(&subnet_key("pop:core")));
    assert_eq!(layout.table_of(2), Some(&subnet_key("policy:eu")));
    assert_eq!(layout.table_of(3), Some(&subnet_key("pop:core")));
    assert_eq!(only(&r.tables[&subnet_key("pop:nyc")]), NYC);
    assert_eq!(only(&r.tables[&subnet_key("policy:eu")]), AMS);
    assert_eq!(only(&r.tables[&subnet_key("pop:lon")]), LON);
    assert_eq!(only(&r.tables[&subnet_key("pop:core")]), CORE);

    // A mapped member down: its subnets go to the fallback member; the
    // nested policy fails over inside; no LPM entry changes.
    let down = resolve(&plan, &layout, &health(&[NYC, AMS], &[]), &r.choices);
    assert_eq!(only(&down.tables[&subnet_key("pop:nyc")]), CORE);
    assert_eq!(only(&down.tables[&subnet_key("policy:eu")]), DUB);
    assert_eq!(
        down.changed(&r),
        vec![
            &key("pop:ams"),
            &subnet_key("policy:eu"),
            &subnet_key("pop:nyc")
        ],
        "fabrikam's own table, and the two affected subnet tables"
    );
    // Fallback member down too: the policy's fallback (transit).
    let down = resolve(&plan, &layout, &health(&[NYC, CORE], &[]), &r.choices);
    assert_eq!(only(&down.tables[&subnet_key("pop:nyc")]), ISP);
    assert_eq!(only(&down.tables[&subnet_key("pop:core")]), ISP);
    assert_eq!(
        down.tables[&subnet_key("pop:nyc")].fallback,
        Some(Fallback::Transit)
    );
    assert_eq!(only(&down.tables[&subnet_key("policy:eu")]), AMS);
}

#[test]
fn subnet_expansion_leaves_more_specific_registrations_alone() {
    // A mapping inside fabrikam's registered /27 is not added: fabrikam
    // keeps its own traffic.
    let text = SUBNET.replace("\"192.0.2.192/27\"", "\"192.0.2.240/28\"");
    let plan = plan(&text);
    let layout = Layout::new(&plan);
    assert!(
        layout
            .more_specific
            .iter()
            .all(|m| m.net != "192.0.2.240/28".parse::<IpNet>().unwrap()),
        "{:?}",
        layout.more_specific
    );
    assert_eq!(layout.more_specific.len(), 3);
    // And a mapping equal to another registration is not added either.
    let text = SUBNET.replace("\"192.0.2.192/27\"", "\"192.0.2.224/27\"");
    assert_eq!(Layout::new(&self::plan(&text)).more_specific.len(), 3);
}

const NESTED: &str = r#"
[[policies]]
name = "eu"
method = "priority"
members = [{ pop = "ams" }, { pop = "dub" }]

[[policies]]
name = "global"
method = "weighted"
members = [{ policy = "eu", weight = 3 }, { pop = "nyc", weight = 1 }]

[[policies]]
name = "near"
method = "geographic"
members = [{ policy = "eu", region = "world > europe" }, { pop = "nyc" }]

[[policies]]
name = "top"
method = "priority"
members = [{ policy = "near" }, { pop = "core" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "global"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "top"
region = "world > europe > ie"

[[prefixes]]
prefix = "203.0.113.0/24"
policy = "top"
region = "world > america"
"#;

#[test]
fn nested_policies_resolve_recursively() {
    let plan = plan(NESTED);
    let (layout, r) = run(&plan, &health(&[], &[]));
    assert_eq!(
        counts(&r.tables[&key("global")].pops),
        [(AMS, 766), (NYC, 255)].into(),
        "eu's share goes to its priority choice"
    );
    // A nested geographic policy makes the outer one region-keyed.
    let top_eu = region_key("top", "world > europe > ie");
    let top_am = region_key("top", "world > america");
    assert_eq!(layout.table_of(1), Some(&top_eu));
    assert_eq!(only(&r.tables[&top_eu]), AMS);
    assert_eq!(only(&r.tables[&top_am]), NYC);

    // AMS down: eu picks DUB, in the slots eu held (consistent).
    let r2 = resolve(&plan, &layout, &health(&[AMS], &[]), &r.choices);
    let (before, after) = (
        &r.tables[&key("global")].pops,
        &r2.tables[&key("global")].pops,
    );
    for s in 0..POLICY_SLOTS {
        let expect = if before.pops[s] == AMS {
            DUB
        } else {
            before.pops[s]
        };
        assert_eq!(after.pops[s], expect);
    }
    // All of eu down: it counts as down in global (NYC takes all) and in
    // near (europe falls back to world: NYC).
    let r3 = resolve(&plan, &layout, &health(&[AMS, DUB], &[]), &r.choices);
    assert_eq!(only(&r3.tables[&key("global")]), NYC);
    assert_eq!(only(&r3.tables[&top_eu]), NYC);
    // Everything under near down: top takes its next member, not a
    // fallback of the nested policies.
    let r4 = resolve(&plan, &layout, &health(&[AMS, DUB, NYC], &[]), &r.choices);
    assert_eq!(only(&r4.tables[&top_eu]), CORE);
    assert_eq!(r4.tables[&top_eu].fallback, None);
    assert_eq!(only(&r4.tables[&key("global")]), ISP);
}

#[test]
fn performance_over_nested_policies_uses_their_fastest_pop() {
    let plan = plan(
        r#"
[[policies]]
name = "eu"
method = "weighted"
members = [{ pop = "ams" }, { pop = "dub" }]

[[policies]]
name = "fast"
method = "performance"
members = [{ policy = "eu" }, { pop = "nyc" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "fast"
"#,
    );
    let layout = Layout::new(&plan);
    let r = resolve(
        &plan,
        &layout,
        &health(&[], &[(AMS, 50), (DUB, 20), (NYC, 30)]),
        &Choices::default(),
    );
    assert_eq!(
        counts(&r.tables[&key("fast")].pops)
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [AMS, DUB]
    );
    assert_eq!(r.choices.get("fast", None), Some("policy:eu"));
    // DUB down: eu's fastest is now AMS (50 ms), NYC is 20 ms better.
    let r = resolve(
        &plan,
        &layout,
        &health(&[DUB], &[(AMS, 50), (DUB, 20), (NYC, 30)]),
        &r.choices,
    );
    assert_eq!(only(&r.tables[&key("fast")]), NYC);
}

#[test]
fn flat_table_still_serves_pop_only_policies() {
    // `policy::table` (used by the loader until it calls `resolve`) and
    // `resolve` agree on flat policies.
    let plan = plan(WEIGHTED);
    let (_, r) = run(&plan, &health(&[DUB], &[]));
    let p = &plan.policies[0];
    assert_eq!(
        policy::table(p.method, &p.members, |x| x != u32::from(DUB)),
        r.tables[&key("w")].pops
    );
}
